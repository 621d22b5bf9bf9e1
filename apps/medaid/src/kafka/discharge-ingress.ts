// Ingress: discharge commands from Kafka run through the same CommandBus commands as HTTP, and the
// outcome is published before the consumer commits the offset (the runner commits after handle()
// resolves). Redelivery is expected (a crash between execution and commit), so handling a message
// twice must change nothing the second time:
// - a settlement is idempotent per visit: the second time it is a `duplicate`;
// - before executing, the visit's recorded events are checked for this very message (its
//   correlation id names topic, partition, offset and timestamp): if found, the outcome it had the
//   first time is published again (duplicate: false, as then), and a redelivered message can never
//   act on a later settlement of the same visit. So one message always yields the same outcome;
// - a ReverseSettlement that finds the visit already reversed with the same reason is the same
//   reversal posted again (e.g. by a producer retry): it answers like a duplicate, not ALREADY_REVERSED.
// Poison goes to the dead-letter topic; store overload (HTTP's 503 cases) is retried, never dead-lettered;
// any other thrown error is retried twice, then dead-lettered as INTERNAL so one bad message cannot block its partition.
import { CommandBus } from '@nestjs/cqrs';
import { Result, SettledData, settlementResult } from '#domain';
import type { SettlementResult } from '#domain';
import type { HandlerContext, IncomingMessage, KafkaPublisher, OutgoingMessage } from '#kafka';
import { ReverseSettlement, SettleDischarge } from '../commands/settlements/settlement.handlers.js';
import type { SettleOutcome } from '../commands/settlements/settlement.handlers.js';
import { logUnexpected } from '../shared/log.js';
import { retryableStoreCode } from '../shared/store-failures.js';
import { readVisit, reversalEvent, settledEvent } from '../shared/lookups.js';
import { CommandMeta, EventWriter } from '../shared/writer.js';
import type { Actor } from '../shared/writer.js';
import { IngressCommand, PoisonError, decodeDischargeMessage } from './discharge-message.js';
import type { KafkaTopics } from './kafka-settings.js';

/** Who is recorded as the actor of commands that came from Kafka (no credentials on that path yet). */
export const KAFKA_ACTOR: Actor = { kind: 'anonymous', id: 'kafka' };

/** A thrown error that is not the store's transient refusal is retried this often, then dead-lettered as INTERNAL. */
const MAX_INTERNAL_ATTEMPTS = 3;
/** Outcomes computed but not yet published (kept across retries of the publish); bounded. */
const MAX_PENDING_OUTCOMES = 1_000;
/** A visit rarely has more than a few settlements; the redelivery check reads at most this many. */
const MAX_ATTEMPTS_CHECKED = 50;
/** Error details carried in a dead-letter header are cut to this size. */
const MAX_ERROR_HEADER_BYTES = 16 * 1024;

export type Outcome = { ok: true; result: SettlementResult } | { ok: false; error: { code: string; message: string; details: unknown[] } };

type Pending = { kind: 'outcome'; outcome: Outcome; key: string | null; commandType: string } | { kind: 'dead-letter'; error: PoisonError };

export class DischargeIngress {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly bus: CommandBus,
    private readonly writer: EventWriter,
    private readonly publisher: Pick<KafkaPublisher, 'send'>,
    private readonly topics: KafkaTopics,
  ) {}

  /** The consumer runner's handler: resolves once the outcome (or dead letter) was acknowledged by Kafka. */
  readonly handle = async (message: IncomingMessage, context: HandlerContext): Promise<void> => {
    const id = correlationIdOf(message);
    let pending = this.pending.get(id);
    if (pending === undefined) {
      pending = await this.decide(message, context);
      if (this.pending.size >= MAX_PENDING_OUTCOMES) this.pending.delete(this.pending.keys().next().value!);
      this.pending.set(id, pending);
    }
    // A failed publish throws: the runner retries this message and finds the outcome kept above,
    // so the command is not executed again within this process.
    await this.publisher.send([
      pending.kind === 'outcome' ? this.outcomeMessage(message, pending) : this.deadLetter(message, pending.error),
    ]);
    this.pending.delete(id);
  };

  private async decide(message: IncomingMessage, context: HandlerContext): Promise<Pending> {
    const decoded = decodeDischargeMessage(message.value);
    if (!decoded.ok) return { kind: 'dead-letter', error: decoded.error };
    const { command } = decoded;
    try {
      const outcome = await this.execute(command, { actor: KAFKA_ACTOR, correlationId: correlationIdOf(message) });
      return {
        kind: 'outcome',
        outcome,
        key: (await this.personOf(command, outcome)) ?? message.key?.toString('utf8') ?? null,
        commandType: command.type,
      };
    } catch (error) {
      // The store refusing or failing is no fault of the message: retried (the runner backs off), never dead-lettered.
      if (isStoreFailure(error) || context.attempt < MAX_INTERNAL_ATTEMPTS) throw error;
      logUnexpected('kafka ingress: command failed; dead-lettered', error, {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
      });
      return { kind: 'dead-letter', error: { code: 'INTERNAL', message: 'internal error', details: [] } };
    }
  }

  private async execute(command: IngressCommand, meta: CommandMeta): Promise<Outcome> {
    const replayed = await this.recordedBy(command.hospitalId, command.visitId, meta.correlationId);
    if (replayed !== null) return { ok: true, result: replayed };
    if (command.type === 'SettleDischarge') {
      const r: Result<SettleOutcome> = await this.bus.execute(new SettleDischarge(command.discharge, meta));
      return r.ok ? { ok: true, result: r.value.result } : { ok: false, error: r.error };
    }
    const r: Result<SettlementResult> = await this.bus.execute(
      new ReverseSettlement(command.hospitalId, command.visitId, command.reason, meta),
    );
    if (r.ok) return { ok: true, result: r.value };
    if (r.error.code === 'ALREADY_REVERSED') {
      const same = await this.sameReversal(command.hospitalId, command.visitId, command.reason);
      if (same !== null) return { ok: true, result: same };
    }
    return { ok: false, error: r.error };
  }

  /** The outcome this very message (same correlation id) recorded when it was first handled; null if it recorded nothing. */
  private async recordedBy(hospitalId: string, visitId: string, correlationId: string): Promise<SettlementResult | null> {
    const view = await readVisit(this.writer.store, hospitalId, visitId);
    for (const a of view.attempts.slice(-MAX_ATTEMPTS_CHECKED)) {
      const settled = settledEvent(view, a.settlementId)!;
      const record = () => this.writer.state.settlementRecord(settled.data as SettledData);
      if (correlationOf(settled.metadata) === correlationId) return settlementResult(record(), 'settled', false);
      if (a.reversalRevision === null) continue;
      const reversed = reversalEvent(view, a.settlementId);
      if (correlationOf(reversed?.metadata) === correlationId) return settlementResult(record(), 'reversed', false);
    }
    return null;
  }

  /** The visit's last settlement, when it was reversed with this very reason: the same reversal again. */
  private async sameReversal(hospitalId: string, visitId: string, reason: string): Promise<SettlementResult | null> {
    const view = await readVisit(this.writer.store, hospitalId, visitId);
    const last = view.attempts.at(-1);
    if (last === undefined || last.reversalRevision === null) return null;
    const reversed = reversalEvent(view, last.settlementId);
    if ((reversed?.data as { reason?: unknown } | undefined)?.reason !== reason) return null;
    return settlementResult(
      this.writer.state.settlementRecord(settledEvent(view, last.settlementId)!.data as SettledData),
      'reversed',
      true,
    );
  }

  private async personOf(command: IngressCommand, outcome: Outcome): Promise<string | null> {
    if (outcome.ok) return outcome.result.personId;
    if (command.type === 'SettleDischarge') return command.discharge.personId;
    return (await readVisit(this.writer.store, command.hospitalId, command.visitId)).attempts.at(-1)?.personId ?? null;
  }

  private outcomeMessage(source: IncomingMessage, pending: Extract<Pending, { kind: 'outcome' }>) {
    const message: OutgoingMessage = {
      key: pending.key,
      value: JSON.stringify(pending.outcome),
      headers: { ...sourceHeaders(source), 'command-type': pending.commandType },
    };
    return { topic: this.topics.settlements, messages: [message] };
  }

  /** The original bytes, key and headers, plus where they came from and why they were refused. */
  private deadLetter(source: IncomingMessage, error: PoisonError) {
    const message: OutgoingMessage = {
      key: source.key,
      value: source.value,
      headers: {
        ...source.headers,
        ...sourceHeaders(source),
        'error-code': error.code,
        'error-message': error.message,
        error: boundedJson(error),
      },
    };
    return { topic: this.topics.dlq, messages: [message] };
  }
}

/**
 * The retryable store conditions (shared/store-failures.ts: HTTP's 503 cases), and a failed writer
 * thread (HTTP 500, but it says nothing about the message: every command fails alike).
 */
export function isStoreFailure(error: unknown): boolean {
  return retryableStoreCode(error) !== undefined || (error as { code?: unknown } | null)?.code === 'STORE_WRITER_FAILED';
}

/** Stable across redeliveries of one message, different for any other message. */
export function correlationIdOf(m: IncomingMessage): string {
  return `kafka:${m.topic}:${m.partition}:${m.offset}:${m.timestamp}`;
}

function correlationOf(metadata: unknown): string | undefined {
  const id = (metadata as { correlationId?: unknown } | null | undefined)?.correlationId;
  return typeof id === 'string' ? id : undefined;
}

function sourceHeaders(m: IncomingMessage): Record<string, string> {
  return { 'source-topic': m.topic, 'source-partition': String(m.partition), 'source-offset': m.offset, 'source-timestamp': m.timestamp };
}

function boundedJson(error: PoisonError): string {
  const full = JSON.stringify({ code: error.code, message: error.message, details: error.details });
  if (Buffer.byteLength(full) <= MAX_ERROR_HEADER_BYTES) return full;
  const details = [];
  for (const d of error.details) {
    details.push(d);
    if (Buffer.byteLength(JSON.stringify(details)) > MAX_ERROR_HEADER_BYTES / 2) break;
  }
  return JSON.stringify({ code: error.code, message: error.message.slice(0, 1_000), details, truncated: true });
}
