// Enrolment subsidies (资助参保) for a region and year: every person holding a category of the
// policy in force on `asOf` gets the subsidy of that category, once per year (idempotent: a re-run
// grants only what is missing). Persons are decided one at a time each, a bounded number at once.
import { Command, CommandHandler, ICommandHandler } from '@nestjs/cqrs';
import { Fen, IsoDate, Result, SubsidyDecision, decideSubsidy, fail, ok, selectPolicy } from '#domain';
import { deterministicEventId } from '#event-store';
import { CommandMeta, EventWriter } from '../../shared/writer.js';

/** Persons decided at once: bounds the appends in flight. */
const CONCURRENCY = 64;

export interface SubsidyRun {
  region: string;
  year: number;
  asOf: IsoDate;
  policy: { policyId: string; version: number };
  granted: number;
  alreadyGranted: number;
  grantedFen: Fen;
  byCategory: Record<string, { persons: number; amountFen: Fen }>;
}

export class GrantEnrolmentSubsidies extends Command<Result<SubsidyRun>> {
  constructor(readonly region: string, readonly year: number, readonly asOf: IsoDate, readonly meta: CommandMeta) { super(); }
}

export const subsidyEventId = (personId: string, year: number) => deterministicEventId('EnrolmentSubsidyGranted', personId, String(year));

@CommandHandler(GrantEnrolmentSubsidies)
export class GrantEnrolmentSubsidiesHandler implements ICommandHandler<GrantEnrolmentSubsidies> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ region, year, asOf, meta }: GrantEnrolmentSubsidies): Promise<Result<SubsidyRun>> {
    const { model } = this.writer;
    const policy = selectPolicy(model.registry.byKey.values(), region, asOf)?.policy;
    if (policy === undefined) {
      return fail('NO_POLICY_IN_FORCE', `no published policy of region ${region} is in force on ${asOf}`, [{ field: 'asOf', problem: `no policy of region ${region} in force on this date` }]);
    }
    if (policy.enrolmentSubsidy === undefined) {
      return fail('VALIDATION_FAILED', `policy ${policy.policyId} v${policy.version} defines no enrolment subsidy`, [{ field: 'region', problem: 'the policy in force defines no enrolmentSubsidy' }]);
    }
    const run: SubsidyRun = { region, year, asOf, policy: { policyId: policy.policyId, version: policy.version }, granted: 0, alreadyGranted: 0, grantedFen: 0, byCategory: {} };
    const personIds = [...model.persons.keys()].sort();
    let next = 0;
    const worker = async () => {
      while (next < personIds.length) {
        const personId = personIds[next++]!;
        await this.writer.decideForPerson<Result<SubsidyDecision>>(personId, meta, (entry) => {
          const decided = decideSubsidy(personId, entry.state, policy, year, asOf);
          if (!decided.ok) return { error: decided };
          const d = decided.value;
          if (d.kind !== 'grant') return { events: [], eventIds: [], value: decided };
          return { events: [{ type: 'EnrolmentSubsidyGranted', data: d.data }], eventIds: [subsidyEventId(personId, year)], value: decided };
        }).then(({ value, firstRevision }) => {
          if (value.ok && value.value.kind === 'already') run.alreadyGranted++;
          if (firstRevision === null || !value.ok || value.value.kind !== 'grant') return;
          const { category, amountFen } = value.value.data;
          run.granted++;
          run.grantedFen += amountFen;
          const c = (run.byCategory[category] ??= { persons: 0, amountFen: 0 });
          c.persons++;
          c.amountFen += amountFen;
        });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    return ok(run);
  }
}
