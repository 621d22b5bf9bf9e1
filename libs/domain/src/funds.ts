// Funds (资金): what each fund of a region has for a year — allocations (上级下拨 from the level
// above, 本级配套 the region's own matching money, 结转 carried over from the year before) and
// subsidies received — against what it has paid; the balance, and the usage rate (资金使用率) that
// the seed documents report. An extension of the spec (README, "Funds"): a fund that the policy
// says may not be overdrawn limits the layers it pays to its remaining balance. Pure.
import { ALLOCATION_SOURCES, AllocationSource, FundAllocatedData } from './events.js';
import { Policy } from './policy.js';
import { Fen, Result, byCodePoint, fail, isFen, isId, ok } from './primitives.js';

export interface FundAccount {
  fund: string;
  region: string;
  year: number;
  allocatedFen: Record<AllocationSource, Fen>;
  /** Money moved in from another fund (资助参保: the aid fund pays the insurance premium). */
  receivedFen: Fen;
  /** Payouts net of reversals and adjustments, and money moved out to another fund. */
  paidFen: Fen;
}

export const fundKey = (fund: string, region: string, year: number) => `${fund}|${region}|${year}`;

/** An allocation's identity: the same reference for the same fund, region and year is the same allocation. */
export const allocationKey = (a: Pick<FundAllocatedData, 'fund' | 'region' | 'year' | 'reference'>) =>
  JSON.stringify([a.fund, a.region, a.year, a.reference]);

/**
 * The one order of fund accounts, wherever they are listed (GET /v1/funds, the year report): by fund
 * code, then region, then year, texts in code-point order.
 */
export function byFundRegionYear(a: FundPlace, b: FundPlace): number {
  return byCodePoint(a.fund, b.fund) || byCodePoint(a.region, b.region) || (a.year ?? 0) - (b.year ?? 0);
}
/** Where a fund's money is: a year's report lists one year and leaves it out. */
type FundPlace = { fund: string; region: string; year?: number };

export function emptyFundAccount(fund: string, region: string, year: number): FundAccount {
  return { fund, region, year, allocatedFen: { superior: 0, local: 0, carryover: 0 }, receivedFen: 0, paidFen: 0 };
}

/** Everything that came into the fund for the year. */
export function fundIncomeFen(a: FundAccount): Fen {
  return a.allocatedFen.superior + a.allocatedFen.local + a.allocatedFen.carryover + a.receivedFen;
}

export function fundBalanceFen(a: FundAccount): Fen {
  return fundIncomeFen(a) - a.paidFen;
}

/** 资金使用率 in basis points (paid / income, rounded down); null when nothing came in. */
export function usageRateBp(a: FundAccount): number | null {
  const income = fundIncomeFen(a);
  return income === 0 ? null : Math.floor((a.paidFen * 10_000) / income);
}

/**
 * What each fund that may not be overdrawn still has for (region, year), less what is reserved by
 * settlements being recorded right now. Funds the policy does not list, or lists as
 * mayOverdraw: true, have no limit and are absent from the result.
 */
export function fundRoomFor(
  policy: Policy,
  region: string,
  year: number,
  account: (key: string) => FundAccount | undefined,
  reservedFen: (key: string) => Fen,
): Record<string, Fen> {
  const room: Record<string, Fen> = {};
  for (const f of policy.funds ?? []) {
    if (f.mayOverdraw) continue;
    const key = fundKey(f.code, region, year);
    const a = account(key);
    room[f.code] = Math.max(0, (a === undefined ? 0 : fundBalanceFen(a)) - reservedFen(key));
  }
  return room;
}

export interface AllocateFund {
  fund: string;
  region: string;
  year: number;
  source: string;
  amountFen: number;
  reference: string;
}

export function decideAllocation(c: AllocateFund): Result<FundAllocatedData> {
  const problems: Array<{ field: string; problem: string }> = [];
  if (typeof c.fund !== 'string' || c.fund.length < 1 || c.fund.length > 64)
    problems.push({ field: 'fund', problem: 'must be a text of 1 to 64 characters' });
  if (!isId(c.region)) problems.push({ field: 'region', problem: 'must match ^[A-Za-z0-9._:-]{1,64}$' });
  if (!(Number.isInteger(c.year) && c.year >= 2000 && c.year <= 2100))
    problems.push({ field: 'year', problem: 'must be an integer from 2000 to 2100' });
  if (!ALLOCATION_SOURCES.includes(c.source as AllocationSource))
    problems.push({ field: 'source', problem: `must be one of ${ALLOCATION_SOURCES.join(', ')}` });
  if (!isFen(c.amountFen) || c.amountFen === 0)
    problems.push({ field: 'amountFen', problem: 'must be an integer number of fen from 1 to 100000000000' });
  if (typeof c.reference !== 'string' || c.reference.length < 1 || c.reference.length > 200)
    problems.push({ field: 'reference', problem: 'must be a text of 1 to 200 characters' });
  if (problems.length > 0) return fail('VALIDATION_FAILED', `invalid allocation: ${problems[0]!.field} ${problems[0]!.problem}`, problems);
  const { fund, region, year, amountFen, reference } = c;
  return ok({ fund, region, year, source: c.source as AllocationSource, amountFen, reference });
}

export function applyAllocation(a: FundAccount, e: FundAllocatedData): FundAccount {
  return { ...a, allocatedFen: { ...a.allocatedFen, [e.source]: a.allocatedFen[e.source] + e.amountFen } };
}
