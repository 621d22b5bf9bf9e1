// Allocating money to a fund. Idempotent per (fund, region, year, reference): the same allocation
// posted again is answered as it was recorded; the same reference with other content is a conflict.
import { Command, CommandHandler, ICommandHandler } from '@nestjs/cqrs';
import { AllocateFund, FundAllocatedData, Result, allocationKey, decideAllocation, fail, fundStream, ok } from '#domain';
import { WrongExpectedRevisionError, deterministicEventId } from '#event-store';
import { CommandMeta, EventWriter } from '../../shared/writer.js';

export interface AllocationOutcome {
  allocation: FundAllocatedData;
  created: boolean;
}

export class AllocateFundCommand extends Command<Result<AllocationOutcome>> {
  constructor(
    readonly input: AllocateFund,
    readonly meta: CommandMeta,
  ) {
    super();
  }
}

@CommandHandler(AllocateFundCommand)
export class AllocateFundHandler implements ICommandHandler<AllocateFundCommand> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ input, meta }: AllocateFundCommand): Promise<Result<AllocationOutcome>> {
    const decided = decideAllocation(input);
    if (!decided.ok) return decided;
    const allocation = decided.value;
    const key = allocationKey(allocation);
    const stream = fundStream(allocation.fund, allocation.region);
    // One allocation of a fund and region at a time here; against other instances, the expected revision.
    return this.writer.locks.run(`allocation:${stream}`, async () => {
      for (let attempt = 1; ; attempt++) {
        const recorded = this.writer.state.allocations.get(key);
        if (recorded !== undefined) {
          if (JSON.stringify(recorded) === JSON.stringify(allocation)) return ok({ allocation: recorded, created: false });
          return fail(
            'ALLOCATION_CONFLICT',
            `an allocation with reference "${allocation.reference}" is already recorded for fund ${allocation.fund}, region ${allocation.region}, ${allocation.year}, with other content`,
            [{ field: 'reference', problem: 'already recorded with other content' }],
          );
        }
        // The stream holds one event per allocation of the fund and region the state knows.
        const known = [...this.writer.state.allocations.values()].filter(
          (a) => a.fund === allocation.fund && a.region === allocation.region,
        ).length;
        const id = deterministicEventId('FundAllocated', key, JSON.stringify(allocation));
        try {
          await this.writer.append(stream, known - 1, [{ id, type: 'FundAllocated', data: allocation }], meta);
        } catch (error) {
          if (!(error instanceof WrongExpectedRevisionError) || attempt >= 3) throw error;
          await this.writer.catchUp(); // another instance allocated to this fund: decided again on it
          continue;
        }
        return ok({ allocation, created: true });
      }
    });
  }
}
