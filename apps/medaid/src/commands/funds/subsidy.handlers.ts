// Enrolment subsidies (资助参保) for a region and year: every person holding a category of the
// policy in force on `asOf` gets the subsidy of that category, once per year (idempotent: a re-run
// grants only what is missing). When the paying fund may not be overdrawn, the run first decides
// every person, then grants in the domain's order (planSubsidies: most favourable category first,
// then personId) while the fund has room, holding that room until each grant is recorded; the
// rest are reported short of funds, and a run after a new allocation grants them. Persons are
// recorded one at a time each, a bounded number at once.
import { Command, CommandHandler, ICommandHandler } from '@nestjs/cqrs';
import {
  CATEGORY_TAG,
  CategoryAssignedData,
  Fen,
  IsoDate,
  Policy,
  Result,
  SubsidyCandidate,
  SubsidyDecision,
  decideSubsidy,
  fail,
  fundKey,
  fundBalanceFen,
  fundRoomFor,
  ok,
  planSubsidies,
  selectPolicy,
} from '#domain';
import { deterministicEventId } from '#event-store';
import { CommandMeta, EventWriter } from '../../shared/writer.js';

/** Persons recorded at once: bounds the appends in flight. */
const CONCURRENCY = 64;
/** Persons short of funds named in the answer; the rest are only counted. */
export const MAX_LISTED_SHORT = 1_000;

interface Tally {
  persons: number;
  amountFen: Fen;
  byCategory: Record<string, { persons: number; amountFen: Fen }>;
}

export interface SubsidyRun {
  region: string;
  year: number;
  asOf: IsoDate;
  policy: { policyId: string; version: number };
  granted: number;
  alreadyGranted: number;
  grantedFen: Fen;
  byCategory: Tally['byCategory'];
  /** Not granted because the paying fund, which may not be overdrawn, had no room for them (in grant order). */
  shortOfFunds: Tally & { personIds: string[] };
}

export class GrantEnrolmentSubsidies extends Command<Result<SubsidyRun>> {
  constructor(
    readonly region: string,
    readonly year: number,
    readonly asOf: IsoDate,
    readonly meta: CommandMeta,
  ) {
    super();
  }
}

export const subsidyEventId = (personId: string, year: number) => deterministicEventId('EnrolmentSubsidyGranted', personId, String(year));

function countIn(byCategory: Tally['byCategory'], c: SubsidyCandidate): void {
  const t = (byCategory[c.category] ??= { persons: 0, amountFen: 0 });
  t.persons++;
  t.amountFen += c.amountFen;
}

@CommandHandler(GrantEnrolmentSubsidies)
export class GrantEnrolmentSubsidiesHandler implements ICommandHandler<GrantEnrolmentSubsidies> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ region, year, asOf, meta }: GrantEnrolmentSubsidies): Promise<Result<SubsidyRun>> {
    const { state: model } = this.writer;
    const policy = selectPolicy(model.registry.byKey.values(), region, asOf)?.policy;
    if (policy === undefined) {
      return fail('NO_POLICY_IN_FORCE', `no published policy of region ${region} is in force on ${asOf}`, [
        { field: 'asOf', problem: `no policy of region ${region} in force on this date` },
      ]);
    }
    const rules = policy.enrolmentSubsidy;
    if (rules === undefined) {
      return fail('VALIDATION_FAILED', `policy ${policy.policyId} v${policy.version} defines no enrolment subsidy`, [
        { field: 'region', problem: 'the policy in force defines no enrolmentSubsidy' },
      ]);
    }
    const run: SubsidyRun = {
      region,
      year,
      asOf,
      policy: { policyId: policy.policyId, version: policy.version },
      granted: 0,
      alreadyGranted: 0,
      grantedFen: 0,
      byCategory: {},
      shortOfFunds: { persons: 0, amountFen: 0, byCategory: {}, personIds: [] },
    };
    // Every person decided first (reading their streams), then planned in one synchronous step
    // with the planned room held before the next await: no settlement or other run can take the
    // room this plan counts on. Each grant is decided again on the person as they are then.
    const candidates = await this.candidates(policy, year, asOf, run);
    const room = fundRoomFor(
      policy,
      region,
      year,
      (k) => model.funds.get(k),
      (k) => model.fundReserved.get(k) ?? 0,
    )[rules.fromFund];
    const plan = planSubsidies(policy, candidates, room);
    for (const c of plan.shortOfFunds) {
      run.shortOfFunds.persons++;
      run.shortOfFunds.amountFen += c.amountFen;
      countIn(run.shortOfFunds.byCategory, c);
      if (run.shortOfFunds.personIds.length < MAX_LISTED_SHORT) run.shortOfFunds.personIds.push(c.personId);
    }
    const key = fundKey(rules.fromFund, region, year);
    const held = plan.grant.map((c) => (room === undefined ? () => {} : model.reserveFunds([[key, c.amountFen]])));
    let next = 0;
    const worker = async () => {
      while (next < plan.grant.length) {
        const i = next++;
        try {
          await this.grant(plan.grant[i]!, policy, year, asOf, meta, run, room === undefined ? undefined : key);
        } finally {
          held[i]!();
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    } finally {
      held.forEach((release) => release()); // a failed worker leaves no room held
    }
    return ok(run);
  }

  /**
   * The subsidy of every person who ever held one of the policy's categories (the store's
   * `category` tag), as their state stands now; those already granted are only counted.
   */
  private async candidates(policy: Policy, year: number, asOf: IsoDate, run: SubsidyRun): Promise<SubsidyCandidate[]> {
    const out: SubsidyCandidate[] = [];
    const { store, state } = this.writer;
    const persons = new Set<string>();
    for (const category of policy.categories) {
      for (const e of await store.readByTag(CATEGORY_TAG, [category.code])) persons.add((e.data as CategoryAssignedData).personId);
    }
    for (const personId of persons) {
      const entry = await state.person(store, personId);
      const decided = decideSubsidy(personId, entry.state, policy, year, asOf);
      if (!decided.ok) continue;
      if (decided.value.kind === 'already') run.alreadyGranted++;
      if (decided.value.kind === 'grant')
        out.push({ personId, category: decided.value.data.category, amountFen: decided.value.data.amountFen });
    }
    return out;
  }

  /**
   * Records one planned grant, decided again on the person's state at the revision it is appended
   * to. Granted only as planned: a person whose subsidy changed meanwhile (granted by a concurrent
   * run, or a new category) is left to that run or the next one, never paid beyond the room held.
   */
  private async grant(
    planned: SubsidyCandidate,
    policy: Policy,
    year: number,
    asOf: IsoDate,
    meta: CommandMeta,
    run: SubsidyRun,
    /** The fund key when it may not be overdrawn (its room for this grant is held by the run). */
    limitedKey?: string,
  ): Promise<void> {
    const { personId } = planned;
    const { state } = this.writer;
    let short = false;
    const { value, firstRevision } = await this.writer.decideForPerson<Result<SubsidyDecision>>(personId, meta, (entry) => {
      const decided = decideSubsidy(personId, entry.state, policy, year, asOf);
      if (!decided.ok) return { error: decided };
      const d = decided.value;
      if (d.kind !== 'grant' || d.data.amountFen !== planned.amountFen) return { events: [], eventIds: [], value: decided };
      // Instances sharing the store: the plan counted on the fund as it was; other instances may
      // have paid from it since. Still within it, with every hold of this instance (this grant's too)?
      if (limitedKey !== undefined && this.writer.shared) {
        const account = state.funds.get(limitedKey);
        short = (account === undefined ? 0 : fundBalanceFen(account)) - (state.fundReserved.get(limitedKey) ?? 0) < 0;
        if (short) return { events: [], eventIds: [], value: decided };
      }
      return {
        events: [{ type: 'EnrolmentSubsidyGranted', data: d.data }],
        eventIds: [subsidyEventId(personId, year)],
        value: decided,
        ...(limitedKey !== undefined ? { fundScope: { region: d.data.region, year } } : {}),
      };
    });
    if (short && firstRevision === null) {
      run.shortOfFunds.persons++;
      run.shortOfFunds.amountFen += planned.amountFen;
      countIn(run.shortOfFunds.byCategory, planned);
      if (run.shortOfFunds.personIds.length < MAX_LISTED_SHORT) run.shortOfFunds.personIds.push(planned.personId);
      return;
    }
    if (value.ok && value.value.kind === 'already') run.alreadyGranted++;
    if (firstRevision === null || !value.ok || value.value.kind !== 'grant') return;
    run.granted++;
    run.grantedFen += planned.amountFen;
    countIn(run.byCategory, planned);
  }
}
