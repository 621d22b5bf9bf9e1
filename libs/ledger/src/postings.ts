// The posting rules: which accounts an event debits and credits. Every payout leaves a fund
// (debit fund/…) and becomes what the fund owes the hospital (credit hospital/…/receivable);
// money comes into a fund from a funding source (上级下拨 / 本级配套 / 结转); an enrolment subsidy
// (资助参保) moves money from the aid fund to the insurance fund. A reversal is the exact mirror of
// what it reverses, so the pair nets to zero on every account. Events that move no money post
// nothing. Pure.
// The events' data are the domain's event catalogue (libs/domain/src/events.ts).
import {
  AdjustmentAppliedData,
  EnrolmentSubsidyGrantedData,
  Fen,
  FundAllocatedData,
  SettledData,
  SettlementReversedData,
  assert,
} from '#domain';
import { JournalLine, mirror } from './journal.js';

export const fundAccount = (fund: string, region: string, year: number) => `fund/${fund}/${region}/${year}`;
export const hospitalAccount = (hospitalId: string) => `hospital/${hospitalId}/receivable`;
export const fundingAccount = (source: string, region: string, year: number) => `funding/${source}/${region}/${year}`;

/** The year of an entry: that of its fund accounts (every entry touches a fund). */
export function entryYear(lines: readonly JournalLine[]): number {
  for (const { account } of lines) {
    if (account.startsWith('fund/') || account.startsWith('funding/')) {
      const year = Number(account.slice(account.lastIndexOf('/') + 1));
      if (Number.isSafeInteger(year)) return year;
    }
  }
  throw new Error(`invariant violated: an entry touches a fund account (${lines.map((l) => l.account).join(', ')})`);
}

/** Event types that may post; a reversal mirrors the entries of these two types for its settlement. */
export const POSTING_TYPES: ReadonlySet<string> = new Set([
  'DischargeSettled',
  'SettlementReversed',
  'AdjustmentApplied',
  'EnrolmentSubsidyGranted',
  'FundAllocated',
]);
export const REVERSIBLE_TYPES: ReadonlySet<string> = new Set(['DischargeSettled', 'AdjustmentApplied']);

export interface PostingContext {
  /** The fund of each layer of a policy version, in the policy's order; undefined when unknown. */
  layerFunds(policyId: string, version: number): readonly string[] | undefined;
  /**
   * The lines of the entries posted so far for a settlement — its DischargeSettled entry, then
   * those of the adjustments applied to it — oldest first; [] when none moved money.
   */
  postedFor(settlementId: string): ReadonlyArray<readonly JournalLine[]>;
}

/** The settlement whose entries a reversal would mirror: set on DischargeSettled and AdjustmentApplied. */
export function reversibleSettlementOf(event: { type: string; data: unknown }): string | null {
  return REVERSIBLE_TYPES.has(event.type) ? (event.data as { settlementId: string }).settlementId : null;
}

/** The lines an event posts, in a fixed order; [] when it moves no money. */
export function postingsFor(event: { type: string; data: unknown }, ctx: PostingContext): JournalLine[] {
  switch (event.type) {
    case 'DischargeSettled':
      return settlementLines(event.data as SettledData, ctx);
    case 'SettlementReversed': {
      // Mirrors what was posted for the settlement, adjustments included: the settlement then nets to zero.
      const { settlementId } = event.data as SettlementReversedData;
      return ctx.postedFor(settlementId).flatMap((lines) => mirror(lines));
    }
    case 'AdjustmentApplied': {
      const a = event.data as AdjustmentAppliedData;
      assert(Number.isSafeInteger(a.deltaFen), 'an adjustment moves an integer number of fen');
      const payout = transfer(fundAccount(a.fund, a.region, a.year), hospitalAccount(a.hospitalId), Math.abs(a.deltaFen));
      return a.deltaFen < 0 ? mirror(payout) : payout;
    }
    case 'EnrolmentSubsidyGranted': {
      const s = event.data as EnrolmentSubsidyGrantedData;
      return transfer(fundAccount(s.fromFund, s.region, s.year), fundAccount(s.toFund, s.region, s.year), s.amountFen);
    }
    case 'FundAllocated': {
      const f = event.data as FundAllocatedData;
      return transfer(fundingAccount(f.source, f.region, f.year), fundAccount(f.fund, f.region, f.year), f.amountFen);
    }
    default:
      return [];
  }
}

/** Per layer that pays, in the policy's layer order: debit the layer's fund, credit the hospital. */
function settlementLines(s: SettledData, ctx: PostingContext): JournalLine[] {
  const funds = ctx.layerFunds(s.policy.policyId, s.policy.version);
  if (funds === undefined)
    throw new Error(`settlement ${s.settlementId} names policy ${s.policy.policyId} v${s.policy.version}, which is not in the log`);
  assert(funds.length === s.layers.length, 'a settlement records one result per layer of its policy');
  const hospital = hospitalAccount(s.discharge.hospitalId);
  return s.layers.flatMap(([, , , , payFen], i) => transfer(fundAccount(funds[i]!, s.discharge.region, s.year), hospital, payFen));
}

/** Debit `from`, credit `to`; nothing for 0 fen. */
function transfer(from: string, to: string, fen: Fen): JournalLine[] {
  assert(Number.isSafeInteger(fen) && fen >= 0, 'a posting moves a non-negative integer number of fen');
  if (fen === 0) return [];
  return [
    { account: from, debitFen: fen, creditFen: 0 },
    { account: to, debitFen: 0, creditFen: fen },
  ];
}
