// `medaid audit verify`: one pass over the event log, checking
//  (a) every settlement: recomputed by the domain (settle) from its recorded input, the policy
//      version it names and the person's state before it, equals what was recorded; the version
//      is the one in force at that point of the log; no fund that may not be overdrawn is, after
//      any event that takes money from it (settlements, raises, subsidies); the monitoring flags
//      recorded right after a settlement, and the clearings right after a reversal, are exactly
//      the ones the rules give (flagsOf / clearedBy), and there are no others;
//  (b) the journal's hash chain, and (c) that each entry balances (journal-check.ts);
//  (d) that every payout — each paying layer of a settlement, each reversal, each applied
//      adjustment, each subsidy, each allocation — is in the journal exactly once with the right
//      accounts and amounts, and nothing else is: the expected entries are derived from the events
//      alone (never from the journal) and merged with the journal by log position.
// The state before each event comes from the service's own read model, applied event by event.
import { createHash } from 'node:crypto';
import {
  AdjustmentAppliedData,
  EnrolmentSubsidyGrantedData,
  Fen,
  Policy,
  PersonEvent,
  PolicyRef,
  SettledData,
  clearedBy,
  dischargeFingerprint,
  flagsOf,
  findActive,
  fundBalanceFen,
  fundKey,
  personStream,
  policyKey,
  selectPolicy,
  settle,
  toSettledData,
} from '#domain';
import type { EventStore, RecordedEvent } from '#event-store';
import { JournalLine, PostingContext, SqliteJournal, postingsFor, reversibleSettlementOf } from '#ledger';
import { ReadModel } from '../shared/read-model.js';
import { Problems, Progress, describeLines, followLog, sameJson } from './audit-support.js';
import { CheckedEntry, JournalCursor } from './journal-check.js';

export interface VerifyOptions {
  /** A service holds the data directory: the journal may lag the log (checked up to its checkpoint). */
  serviceRunning: boolean;
  progress: Progress;
}

export interface VerifyResult {
  head: number;
  events: number;
  settlements: number;
  journal: { checkpoint: number; entries: number; expected: number };
  problems: Problems;
}

export async function verifyAudit(store: EventStore, journal: SqliteJournal, options: VerifyOptions): Promise<VerifyResult> {
  // One read transaction: a running service's writer goes on, this audit sees the journal as it was.
  return journal.readConsistently(() => verifyConsistent(store, journal, options));
}

async function verifyConsistent(store: EventStore, journal: SqliteJournal, options: VerifyOptions): Promise<VerifyResult> {
  const problems = new Problems();
  const jHead = journal.head(); // one statement: the checkpoint and the entries it covers are consistent
  const head = await store.headPosition();
  if (jHead.position > head)
    problems.add('payouts', `the journal's checkpoint ${jHead.position} is after the end of the log (${head}): it belongs to another log`);
  else if (jHead.position < head && !options.serviceRunning) {
    problems.add(
      'payouts',
      `the journal is behind the log: events after position ${jHead.position} (up to ${head}) are not posted; start the service to let it catch up`,
    );
  }
  const cursor = new JournalCursor(journal, jHead.seq, jHead.position, problems);
  const pass = new VerifyPass(problems, cursor, jHead.position);
  await followLog(store, head, (page) => {
    for (const e of page) pass.event(e);
    options.progress.page(page.length, page[page.length - 1]!.position);
  });
  pass.finish();
  cursor.finish();
  return {
    head,
    events: pass.events,
    settlements: pass.settlements,
    journal: { checkpoint: jHead.position, entries: cursor.entries, expected: pass.expected },
    problems,
  };
}

class VerifyPass {
  private readonly model = new ReadModel();
  /** What the events say was posted per settlement (for the mirror of its reversal); never read from the journal. */
  private readonly posted = new Map<string, JournalLine[][]>();
  private readonly ctx: PostingContext = {
    layerFunds: (id, version) => this.model.registry.byKey.get(policyKey(id, version))?.policy.layers.map((l) => l.fund),
    postedFor: (id) => this.posted.get(id) ?? [],
  };
  private lastJournalPosition = 0;
  /** Settlements whose policy lists funds that may not be overdrawn, with those funds: they govern the settlement's adjustments too. */
  private readonly limitedSettlements = new Map<string, ReadonlySet<string>>();
  private readonly limitedByPolicy = new WeakMap<Policy, ReadonlySet<string> | null>();
  /** The monitoring events the last settlement or reversal must be followed by, in its stream, in this order. */
  private follow: { streamId: string; what: string; events: PersonEvent[] } | null = null;
  events = 0;
  settlements = 0;
  expected = 0;

  constructor(
    private readonly problems: Problems,
    private readonly cursor: JournalCursor,
    private readonly checkpoint: number,
  ) {}

  event(e: RecordedEvent): void {
    this.events += 1;
    this.checkMonitoring(e);
    if (e.type === 'DischargeSettled') this.checkSettlement(e);
    if (e.type === 'SettlementReversed') this.checkReversal(e);
    if (e.position <= this.checkpoint) this.checkPosting(e);
    this.model.apply(e.streamId, e.revision, e.position, e.type, e.data);
    this.checkFundsNotOverdrawn(e);
  }

  /** Journal entries the events never asked for; monitoring events owed at the end of the log. */
  finish(): void {
    this.owedMonitoring();
    for (let j = this.cursor.next(); j !== null; j = this.cursor.next()) this.extra(j);
  }

  // ---- (a) settlements -------------------------------------------------------------------------

  private checkSettlement(e: RecordedEvent): void {
    this.settlements += 1;
    const s = e.data as SettledData;
    const at = `settlement ${s.settlementId} (${e.streamId}@${e.revision}, position ${e.position})`;
    const policy = this.model.registry.byKey.get(policyKey(s.policy.policyId, s.policy.version))?.policy;
    if (policy === undefined) {
      this.problems.add('settlements', `${at}: names policy ${s.policy.policyId} v${s.policy.version}, which is not published before it`);
      return;
    }
    const d = s.discharge;
    const inForce = selectPolicy(this.model.registry.byKey.values(), d.region, d.dischargeDate)?.policy;
    if (inForce !== undefined && (inForce.policyId !== policy.policyId || inForce.version !== policy.version)) {
      this.problems.add(
        'settlements',
        `${at}: settled under ${policy.policyId} v${policy.version}, but ${inForce.policyId} v${inForce.version} was in force on ${d.dischargeDate}`,
      );
    }
    if (personStream(d.personId) !== e.streamId)
      this.problems.add('settlements', `${at}: the discharge is of person ${d.personId}, recorded in another person's stream`);
    // The service records the digest of the canonical discharge (fingerprintOf); without one, settle() records the canonical form itself.
    const canonical = dischargeFingerprint(d);
    if (s.fingerprint !== canonical && s.fingerprint !== createHash('sha256').update(canonical).digest('hex'))
      this.problems.add('settlements', `${at}: the fingerprint is not that of the recorded discharge`);
    const state = this.model.person(d.personId).state;
    const recomputed = settle(d, policy, s.settlementId, state, s.fingerprint, fundRoomUsed(policy, s));
    if (!recomputed.ok) {
      this.problems.add(
        'settlements',
        `${at}: the domain rejects it when recomputed: ${recomputed.error.code} ${recomputed.error.message}`,
      );
      return;
    }
    const again = toSettledData(recomputed.value);
    if (!sameJson(again, s)) this.problems.add('settlements', `${at}: recomputed differently: ${differences(policy, s, again)}`);
    this.follow = { streamId: e.streamId, what: at, events: flagsOf(recomputed.value, policy, state) };
  }

  /**
   * The monitoring flags (HighMedicalCostFlagged) a settlement gives and the clearings a reversal
   * gives are recorded in the same append, right after it: each such event must be the next one
   * owed, and nothing owed may be missing when another event comes.
   */
  private checkMonitoring(e: RecordedEvent): void {
    const monitoring = e.type === 'HighMedicalCostFlagged' || e.type === 'HighMedicalCostCleared';
    if (!monitoring) {
      this.owedMonitoring();
      return;
    }
    const owed = this.follow !== null && this.follow.streamId === e.streamId ? this.follow.events.shift() : undefined;
    const at = `${e.type} at position ${e.position} (${e.streamId}@${e.revision})`;
    if (owed === undefined) this.problems.add('monitoring', `${at}: no settlement or reversal before it in its append gives it`);
    else if (owed.type !== e.type || !sameJson(owed.data, e.data))
      this.problems.add(
        'monitoring',
        `${at}: the rules give ${owed.type} ${JSON.stringify(owed.data)} there, not ${JSON.stringify(e.data)}`,
      );
  }

  private owedMonitoring(): void {
    if (this.follow === null) return;
    for (const missing of this.follow.events)
      this.problems.add(
        'monitoring',
        `${this.follow.what}: ${missing.type} ${JSON.stringify(missing.data)} should follow it and is not recorded`,
      );
    this.follow = null;
  }

  private checkReversal(e: RecordedEvent): void {
    const { settlementId, personId } = e.data as { settlementId: string; personId: string };
    const state = this.model.person(personId).state;
    const reversed = findActive(state, settlementId);
    if (reversed !== undefined)
      this.follow = {
        streamId: e.streamId,
        what: `reversal of ${settlementId} at position ${e.position}`,
        events: clearedBy(state, reversed, personId),
      };
    if (reversed === undefined) {
      this.problems.add(
        'settlements',
        `reversal at position ${e.position} (${e.streamId}@${e.revision}): settlement ${settlementId} is not active`,
      );
    }
  }

  /**
   * After any event that takes money from a fund — a settlement (its paying layers, external
   * payments included), an applied raise, a subsidy — each fund it took from that the governing
   * policy says may not be overdrawn still has money (≥ 0) for the region and year. The governing
   * policy is the settlement's for a settlement and its adjustments, the recorded one for a subsidy.
   */
  private checkFundsNotOverdrawn(e: RecordedEvent): void {
    const taking = this.takenFrom(e);
    if (taking === null) return;
    taking.funds.forEach((fund, i) => {
      if (taking.funds.indexOf(fund) !== i) return; // two layers of one fund: one check
      const account = this.model.funds.get(fundKey(fund, taking.region, taking.year));
      const balance = account === undefined ? 0 : fundBalanceFen(account);
      if (balance < 0)
        this.problems.add(
          'funds',
          `${taking.what} (position ${e.position}): fund ${fund} (${taking.region}, ${taking.year}) may not be overdrawn, and is by ${-balance} fen`,
        );
    });
  }

  /**
   * The funds that may not be overdrawn an event took money from, with where; null when it took
   * from none. Most policies list no such fund: their events cost one lookup here.
   */
  private takenFrom(e: RecordedEvent): { what: string; funds: string[]; region: string; year: number } | null {
    switch (e.type) {
      case 'DischargeSettled': {
        const s = e.data as SettledData;
        const policy = this.policyOf(s.policy);
        const limited = this.limitedFunds(policy);
        if (limited === null) return null;
        this.limitedSettlements.set(s.settlementId, limited);
        const funds = s.layers.flatMap((l, i) => (l[4] > 0 && limited.has(policy!.layers[i]!.fund) ? [policy!.layers[i]!.fund] : []));
        return { what: `settlement ${s.settlementId}`, funds, region: s.discharge.region, year: s.year };
      }
      case 'AdjustmentApplied': {
        const a = e.data as AdjustmentAppliedData;
        if (a.deltaFen <= 0 || this.limitedSettlements.get(a.settlementId)?.has(a.fund) !== true) return null;
        return { what: `adjustment ${a.adjustmentId} of settlement ${a.settlementId}`, funds: [a.fund], region: a.region, year: a.year };
      }
      case 'EnrolmentSubsidyGranted': {
        const g = e.data as EnrolmentSubsidyGrantedData;
        if (this.limitedFunds(this.policyOf(g.policy))?.has(g.fromFund) !== true) return null;
        return { what: `enrolment subsidy of ${g.personId} for ${g.year}`, funds: [g.fromFund], region: g.region, year: g.year };
      }
      default:
        return null;
    }
  }

  private policyOf(ref: PolicyRef): Policy | undefined {
    return this.model.registry.byKey.get(policyKey(ref.policyId, ref.version))?.policy;
  }

  /** The codes a policy lists with mayOverdraw: false, worked out once per policy; null when none. */
  private limitedFunds(policy: Policy | undefined): ReadonlySet<string> | null {
    if (policy?.funds === undefined) return null;
    let limited = this.limitedByPolicy.get(policy);
    if (limited === undefined) {
      const codes = policy.funds.filter((f) => !f.mayOverdraw).map((f) => f.code);
      this.limitedByPolicy.set(policy, (limited = codes.length === 0 ? null : new Set(codes)));
    }
    return limited;
  }

  // ---- (d) payouts in the journal ---------------------------------------------------------------

  private checkPosting(e: RecordedEvent): void {
    let lines: JournalLine[];
    try {
      lines = postingsFor(e, this.ctx);
    } catch (error) {
      this.problems.add(
        'payouts',
        `event ${e.id} (${e.type}, position ${e.position}): cannot say what it posts: ${(error as Error).message}`,
      );
      return;
    }
    const settlementId = reversibleSettlementOf(e);
    if (settlementId !== null && lines.length > 0) this.posted.set(settlementId, [...(this.posted.get(settlementId) ?? []), lines]);
    if (e.type === 'SettlementReversed') this.posted.delete((e.data as { settlementId: string }).settlementId);
    if (lines.length === 0) return;
    this.expected += 1;
    // Journal entries before this event's position were not asked for by any event.
    for (let j = this.cursor.peek(); j !== null && j.position < e.position; j = this.cursor.peek()) this.extra(this.cursor.next()!);
    const j = this.cursor.peek();
    if (j === null || j.position > e.position) {
      this.problems.add(
        'payouts',
        `event ${e.id} (${e.type}, ${e.streamId}, position ${e.position}) is not in the journal; it posts ${describeLines(lines)}`,
      );
      return;
    }
    this.cursor.next();
    this.lastJournalPosition = j.position;
    const at = `seq ${j.seq}`;
    if (j.eventId !== e.id || j.eventType !== e.type || j.streamId !== e.streamId) {
      this.problems.add(
        'payouts',
        `${at}: says event ${j.eventId} (${j.eventType}, ${j.streamId}); the event at position ${e.position} is ${e.id} (${e.type}, ${e.streamId})`,
      );
    }
    if (!sameJson(j.lines, lines)) {
      this.problems.add(
        'payouts',
        `${at}: posts ${describeLines(j.lines)}; event ${e.id} (${e.type}, position ${e.position}) posts ${describeLines(lines)}`,
      );
    }
    if (j.settlementId !== settlementId)
      this.problems.add('index', `${at}: column settlement_id is ${String(j.settlementId)}, the event says ${String(settlementId)}`);
  }

  private extra(j: CheckedEntry): void {
    const twice = j.position === this.lastJournalPosition;
    this.problems.add(
      'payouts',
      twice
        ? `seq ${j.seq}: posts event ${j.eventId} (position ${j.position}) a second time`
        : `seq ${j.seq}: posts ${describeLines(j.lines)} for event ${j.eventId} (${j.eventType}, position ${j.position}), which moves no money or is not in the log`,
    );
  }
}

/**
 * The room of each fund that may not be overdrawn, as the recorded settlement met it: where a
 * layer was capped by its fund, what that fund's layers had taken up to and including it; no
 * limit elsewhere. The service's room was the balance less what concurrent settlements had
 * reserved, which the log does not record; the fund's balance is checked separately.
 */
function fundRoomUsed(policy: Policy, s: SettledData): Record<string, Fen> {
  const taken: Record<string, Fen> = {};
  const room: Record<string, Fen> = {};
  s.layers.forEach(([, , , , payFen, cappedBy], i) => {
    const fund = policy.layers[i]?.fund;
    if (fund === undefined) return;
    taken[fund] = (taken[fund] ?? 0) + payFen;
    if (cappedBy === `fund:${fund}` && room[fund] === undefined) room[fund] = taken[fund]!;
  });
  return room;
}

const LAYER_FIELDS = ['ruleId', 'baseFen', 'belowThresholdFen', 'rawFen', 'payFen', 'cappedBy'] as const;

/** The first few fields in which two settlements differ, in an auditor's words. */
function differences(policy: Policy, recorded: SettledData, again: SettledData): string {
  const out: string[] = [];
  for (const field of ['year', 'category', 'aidBlockedReason'] as const) {
    if (recorded[field] !== again[field]) out.push(`${field} recorded ${String(recorded[field])}, recomputed ${String(again[field])}`);
  }
  recorded.layers.forEach((layer, i) => {
    LAYER_FIELDS.forEach((name, k) => {
      if (layer[k] !== again.layers[i]?.[k])
        out.push(`layer ${policy.layers[i]?.id ?? i} ${name} recorded ${String(layer[k])}, recomputed ${String(again.layers[i]?.[k])}`);
    });
  });
  if (!sameJson(recorded.contributions, again.contributions)) out.push('the contributions to the year counters differ');
  if (out.length === 0) out.push('fields other than the result differ');
  return out.slice(0, 4).join('; ') + (out.length > 4 ? `; and ${out.length - 4} more` : '');
}
