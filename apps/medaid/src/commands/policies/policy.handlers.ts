// Publishing a policy (spec §3): validated in the domain, never edited; a change is a new version.
import { Command, CommandHandler, ICommandHandler } from '@nestjs/cqrs';
import { Policy, PolicyRef, Result, decidePublish, fail, ok, policyStream } from '#domain';
import { WrongExpectedRevisionError } from '#event-store';
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
      for (let attempt = 1; ; attempt++) {
        const { registry } = this.writer.state;
        const decided = decidePublish(document, registry);
        if (!decided.ok) return decided;
        const { policy, events } = decided.value;
        if (events.length === 0) return ok({ policyId: policy.policyId, version: policy.version, created: false });
        const refused = sharedFundLimit(this.writer, policy);
        if (refused !== null) return refused;
        // The policy's stream holds one event per version the registry knows: expecting exactly that
        // revision, another instance's publication of the same policy in the meantime is a conflict.
        const known = [...registry.byKey.values()].filter((p) => p.policy.policyId === policy.policyId).length;
        const ids = events.map((e) => policyEventId(policy.policyId, policy.version, e.data));
        try {
          await this.writer.append(
            policyStream(policy.policyId),
            known - 1,
            events.map((e, i) => ({ id: ids[i]!, type: e.type, data: e.data })),
            meta,
          );
        } catch (error) {
          if (!(error instanceof WrongExpectedRevisionError) || attempt >= 3) throw error;
          await this.writer.catchUp(); // decided again on what the other instance published
          continue;
        }
        return ok({ policyId: policy.policyId, version: policy.version, created: true });
      }
    });
  }
}

/**
 * Instances sharing a store hold a fund's limit through the store: a payment from it is appended
 * on condition that no other came since it was decided (writer.ts, fund-scope). A store that takes
 * one condition per append (EventStoreDB: the visit's) cannot, so such a fund is refused there, at publication.
 */
export function sharedFundLimit(writer: EventWriter, policy: Policy): Result<never> | null {
  if (!writer.shared || (writer.store.maxAppendConditions ?? 1) >= 2) return null;
  const i = (policy.funds ?? []).findIndex((f) => !f.mayOverdraw);
  if (i < 0) return null;
  const problem =
    'a fund that may not be overdrawn needs one service instance on this store: instances sharing an EventStoreDB (--shared) cannot hold its limit yet';
  return fail('INVALID_POLICY', `invalid policy: funds[${i}].mayOverdraw ${problem}`, [{ field: `funds[${i}].mayOverdraw`, problem }]);
}
