// Facts about a person (spec §4): categories (特困/低保/低保边缘 …), approvals (审批表) and death
// (死亡比对). One handler serves the four commands: they differ only in the event they record.
import { Command, CommandHandler, ICommandHandler } from '@nestjs/cqrs';
import { PersonCommand, Result, activeSettlements, decidePerson, ok } from '#domain';
import { PersonEntry } from '../../shared/decision-state.js';
import { CommandMeta, EventWriter, personEventId } from '../../shared/writer.js';

export type PersonFactCommand = Exclude<PersonCommand, { type: 'SettleDischarge' | 'ReverseSettlement' }>;

export class RecordPersonFact extends Command<Result<{ personId: string }>> {
  constructor(
    readonly command: PersonFactCommand,
    readonly meta: CommandMeta,
  ) {
    super();
  }
}

@CommandHandler(RecordPersonFact)
export class RecordPersonFactHandler implements ICommandHandler<RecordPersonFact> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ command, meta }: RecordPersonFact): Promise<Result<{ personId: string }>> {
    const { state: model } = this.writer;
    const { value } = await this.writer.decideForPerson<Result<{ personId: string }>>(command.personId, meta, (entry: PersonEntry) => {
      const decided = decidePerson(command, entry.state, model.personContext);
      if (!decided.ok) return { error: decided };
      const eventIds = decided.value.map((e, i) => personEventId(command.personId, entry.revision + 1 + i, e.type));
      return { events: decided.value, eventIds, value: ok({ personId: command.personId }) };
    });
    return value;
  }
}

/** GET /v1/persons/{personId}: what is recorded and the year-to-date bases and counters. */
export function personView(personId: string, entry: PersonEntry) {
  const { state } = entry;
  return {
    personId,
    revision: entry.revision,
    categories: Object.entries(state.categories).flatMap(([category, intervals]) =>
      intervals.map((i) => ({ category, validFrom: i.from, validTo: i.to })),
    ),
    approvals: state.approvals,
    deathDate: state.deathDate,
    years: Object.entries(state.years).map(([year, y]) => ({
      year: Number(year),
      activeSettlements: activeSettlements(state).filter((a) => a.year === Number(year)).length,
      yearBaseFen: y.yearBase,
      usedFen: y.used,
    })),
    // monitoring flags standing (README, "Monitoring thresholds"): year, threshold, the settlement that raised it
    alerts: Object.values(state.alerts ?? {}).map(({ year, thresholdId, per, aboveFen, settlementId }) => ({
      year,
      thresholdId,
      per,
      aboveFen,
      settlementId,
    })),
  };
}
