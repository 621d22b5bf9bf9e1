// Publishing a policy (spec §3): validated in the domain, never edited; a change is a new version.
import { Command, CommandHandler, ICommandHandler } from '@nestjs/cqrs';
import { PolicyRef, Result, decidePublish, ok, policyStream } from '#domain';
import { CommandMeta, EventWriter, policyEventId } from '../../shared/writer.js';

export interface PublishOutcome extends PolicyRef {
  created: boolean;
}

export class PublishPolicy extends Command<Result<PublishOutcome>> {
  constructor(
    readonly document: unknown,
    readonly meta: CommandMeta,
  ) {
    super();
  }
}

@CommandHandler(PublishPolicy)
export class PublishPolicyHandler implements ICommandHandler<PublishPolicy> {
  constructor(private readonly writer: EventWriter) {}

  // One publication at a time, so "published last" (the tie-break between policies with the
  // same effectiveFrom) is the order of the log.
  async execute({ document, meta }: PublishPolicy): Promise<Result<PublishOutcome>> {
    return this.writer.locks.run('policies', async () => {
      const decided = decidePublish(document, this.writer.state.registry);
      if (!decided.ok) return decided;
      const { policy, events } = decided.value;
      if (events.length > 0) {
        const ids = events.map(() => policyEventId(policy.policyId, policy.version));
        await this.writer.append(
          policyStream(policy.policyId),
          'any',
          events.map((e, i) => ({ id: ids[i]!, type: e.type, data: e.data })),
          meta,
        );
      }
      return ok({ policyId: policy.policyId, version: policy.version, created: events.length > 0 });
    });
  }
}
