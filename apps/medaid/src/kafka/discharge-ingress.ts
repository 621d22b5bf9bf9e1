// Ingress: discharge commands from Kafka run through the same CommandBus commands as HTTP, and the
// outcome is published before the consumer commits the offset (the runner commits after handle()
// resolves). Every command is decided once, whatever is replayed — a redelivery after a crash, or an
// operator resetting the group to the earliest offset:
// - each message carries an idempotency key: its `request-id` header (scoped by hospital) when the
//   producer sends one, else its coordinates (topic, partition, offset, timestamp). The command's
//   answer is recorded with that key (shared/command-answers.ts), and a message whose key was
//   answered gets that answer again, however old, even when the visit has moved on since;
// - a message whose events were recorded but whose answer was not (a crash between the two appends,
//   or a log from before answers were recorded) is found by its correlation id in the visit's events.
// Every outcome names its command type, hospital, visit, the producer's request id and the source
// coordinates, keyed `hospitalId:visitId`. A message refused by validation (or whose key is not its
// body's `hospitalId:visitId`) gets an outcome with the error and a dead letter; bytes that are not a
// JSON object go only to the dead letters. Store overload (HTTP's 503 cases) is retried, never
// dead-lettered; any other thrown error is retried twice, then dead-lettered as INTERNAL so one bad
// message cannot block its partition.
import { CommandBus } from '@nestjs/cqrs';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Result, SettledData, settlementResult } from '#domain';
import type { SettlementResult } from '#domain';
import type { HandlerContext, IncomingMessage, KafkaPublisher, OutgoingMessage, TopicMessages } from '#kafka';
import { ReverseSettlement, SettleDischarge } from '../commands/settlements/settlement.handlers.js';
import type { SettleOutcome } from '../commands/settlements/settlement.handlers.js';
import { isIdempotencyKey } from '../shared/command-answers.js';
import { logUnexpected } from '../shared/log.js';
import { inConsumerSpan, inSpan, traceHeaders } from '../shared/tracing.js';
import { SpanKind, type Span } from '@opentelemetry/api';
import { retryableStoreCode } from '../shared/store-failures.js';
import { readVisit, reversalEvent, settledEvent } from '../shared/lookups.js';
import { CommandMeta, EventWriter } from '../shared/writer.js';
import type { Actor } from '../shared/writer.js';
import { IngressCommand, PoisonError, decodeKeyedMessage, visitKey } from './discharge-message.js';
import type { KafkaTopics } from './kafka-settings.js';

/** Who is recorded as the actor of commands that came from Kafka on a local trial (no credentials configured). */
export const KAFKA_ACTOR: Actor = { kind: 'anonymous', id: 'kafka' };
/** With credentials: the header that proves which hospital sent a message (README, "Security"). */
export const SIGNATURE_HEADER = 'medaid-signature';

/**
 * With credentials configured: the signing key of a hospital (http/auth.ts), by which a message
 * proves that its hospital sent it. Null on a local trial: messages are taken unsigned.
 */
export type HospitalKeys = { kafkaKeyOf(hospitalId: string): Buffer | undefined } | null;
/** The header a producer may set to its own id of the request: echoed on the outcome, and its idempotency key. */
export const REQUEST_ID_HEADER = 'request-id';

/** A thrown error that is not the store's transient refusal is retried this often, then dead-lettered as INTERNAL. */
const MAX_INTERNAL_ATTEMPTS = 3;
/** Outcomes computed but not yet published (kept across retries of the publish); bounded. */
const MAX_PENDING_OUTCOMES = 1_000;
/** A visit rarely has more than a few settlements; the redelivery check reads at most this many. */
const MAX_ATTEMPTS_CHECKED = 50;
/** Error details carried in a dead-letter header are cut to this size. */
const MAX_ERROR_HEADER_BYTES = 16 * 1024;

export type Outcome =
  { ok: true; created: boolean; result: SettlementResult } | { ok: false; error: { code: string; message: string; details: unknown[] } };

/** What links an outcome to its request; null where a refused message did not say. */
interface Correlation {
  commandType: string | null;
  hospitalId: string | null;
  visitId: string | null;
  requestId: string | null;
}

type Pending =
  | { kind: 'outcome'; outcome: Outcome; correlation: Correlation }
  | { kind: 'refused'; error: PoisonError; correlation: Correlation }
  | { kind: 'dead-letter'; error: PoisonError };

/** What a span says of a message's fate: ok, or the code it was answered (or dead-lettered) with. */
const outcomeCode = (p: Pending): string => (p.kind === 'outcome' ? (p.outcome.ok ? 'ok' : p.outcome.error.code) : p.error.code);

export class DischargeIngress {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly bus: CommandBus,
    private readonly writer: EventWriter,
    private readonly publisher: Pick<KafkaPublisher, 'send'>,
    private readonly topics: KafkaTopics,
    private readonly keys: HospitalKeys = null,
  ) {}

  /** The consumer runner's handler: resolves once the outcome (or dead letter) was acknowledged by Kafka. */
  readonly handle = (message: IncomingMessage, context: HandlerContext): Promise<void> =>
    // one CONSUMER span per message (continuing the sender's traceparent); the command's spans are its children
    inConsumerSpan(
      `${message.topic} process`,
      {
        'messaging.system': 'kafka',
        'messaging.operation': 'process',
        'messaging.destination.name': message.topic,
        'messaging.kafka.destination.partition': message.partition,
        'messaging.kafka.message.offset': Number(message.offset),
      },
      message.headers,
      (span) => this.handleMessage(message, context, span),
    );

  private async handleMessage(message: IncomingMessage, context: HandlerContext, span: Span): Promise<void> {
    const id = correlationIdOf(message);
    let pending = this.pending.get(id);
    if (pending === undefined) {
      pending = await this.decide(message, context);
      if (this.pending.size >= MAX_PENDING_OUTCOMES) this.pending.delete(this.pending.keys().next().value!);
      this.pending.set(id, pending);
    }
    span.setAttribute('medaid.outcome', outcomeCode(pending));
    // A failed publish throws: the runner retries this message and finds the outcome kept above,
    // so the command is not executed again within this process (nor in another: its answer is recorded).
    const messages = this.messagesOf(message, pending);
    await inSpan(
      `${messages[0]!.topic} publish`,
      { 'messaging.system': 'kafka', 'messaging.operation': 'publish', 'messaging.destination.name': messages[0]!.topic },
      () => {
        // the outcome (and dead letter) carry the trace on: a consumer of the outcome topic continues it
        const trace = traceHeaders();
        for (const t of messages) for (const m of t.messages) m.headers = { ...m.headers, ...trace };
        return this.publisher.send(messages);
      },
      SpanKind.PRODUCER,
    );
    this.pending.delete(id);
  }

  private async decide(message: IncomingMessage, context: HandlerContext): Promise<Pending> {
    const requestId = requestIdOf(message);
    const decoded = decodeKeyedMessage(message.key, message.value);
    if (!decoded.ok || requestId === undefined) {
      const body = decoded.ok ? decoded.command : decoded.body;
      if (body === undefined) return { kind: 'dead-letter', error: decoded.ok ? BAD_REQUEST_ID : decoded.error };
      const { type = null, hospitalId = null, visitId = null } = body;
      const correlation = { commandType: type, hospitalId, visitId, requestId: requestId ?? null };
      return { kind: 'refused', error: decoded.ok ? BAD_REQUEST_ID : decoded.error, correlation };
    }
    const { command } = decoded;
    const correlation = { commandType: command.type, hospitalId: command.hospitalId, visitId: command.visitId, requestId };
    const unproven = this.keys === null ? null : unsigned(this.keys, command.hospitalId, message);
    if (unproven !== null) return { kind: 'refused', error: unproven, correlation };
    const meta: CommandMeta = {
      actor: this.keys === null ? KAFKA_ACTOR : { kind: 'hospital', id: command.hospitalId },
      correlationId: correlationIdOf(message),
      idempotencyKey: requestId === null ? correlationIdOf(message) : `kafka-request:${command.hospitalId}:${requestId}`,
      idempotencyScope: requestId === null ? 'message' : 'client',
    };
    try {
      return { kind: 'outcome', outcome: await this.execute(command, meta), correlation };
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
    // (a settlement this message recorded was created by it: `created`, as over gRPC and HTTP's 201)
    if (replayed !== null) return { ok: true, created: replayed.status === 'settled', result: replayed };
    if (command.type === 'SettleDischarge') {
      const r: Result<SettleOutcome> = await this.bus.execute(new SettleDischarge(command.discharge, meta));
      return r.ok ? { ok: true, created: r.value.created, result: r.value.result } : { ok: false, error: r.error };
    }
    const r: Result<SettlementResult> = await this.bus.execute(
      new ReverseSettlement(command.hospitalId, command.visitId, command.reason, meta),
    );
    return r.ok ? { ok: true, created: false, result: r.value } : { ok: false, error: r.error };
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

  private messagesOf(source: IncomingMessage, pending: Pending): TopicMessages[] {
    if (pending.kind === 'dead-letter') return [this.deadLetter(source, pending.error)];
    if (pending.kind === 'outcome') return [this.outcomeMessage(source, pending.outcome, pending.correlation)];
    const { code, message, details } = pending.error;
    const refused: Outcome = { ok: false, error: { code, message, details } };
    return [this.outcomeMessage(source, refused, pending.correlation), this.deadLetter(source, pending.error)];
  }

  /** The outcome with everything that links it to its request, keyed by its visit. */
  private outcomeMessage(source: IncomingMessage, outcome: Outcome, c: Correlation): TopicMessages {
    const { ok, ...answer } = outcome;
    const value = {
      ok,
      commandType: c.commandType,
      hospitalId: c.hospitalId,
      visitId: c.visitId,
      requestId: c.requestId,
      source: { topic: source.topic, partition: source.partition, offset: source.offset, timestamp: source.timestamp },
      ...answer,
    };
    const message: OutgoingMessage = {
      key: c.hospitalId !== null && c.visitId !== null ? visitKey(c.hospitalId, c.visitId) : source.key,
      value: JSON.stringify(value),
      headers: {
        ...sourceHeaders(source),
        ...(c.commandType === null ? {} : { 'command-type': c.commandType }),
        ...(c.requestId === null ? {} : { [REQUEST_ID_HEADER]: c.requestId }),
      },
    };
    return { topic: this.topics.settlements, messages: [message] };
  }

  /** The original bytes, key and headers, plus where they came from and why they were refused. */
  private deadLetter(source: IncomingMessage, error: PoisonError): TopicMessages {
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

/** The producer's request id: null when absent, undefined when present but not a valid key. */
function requestIdOf(m: IncomingMessage): string | null | undefined {
  const raw = m.headers[REQUEST_ID_HEADER];
  if (raw === undefined) return null;
  const text = raw.toString('utf8');
  return isIdempotencyKey(text) ? text : undefined;
}

const REQUEST_ID_PROBLEM = 'must be 1..200 printable ASCII characters without spaces';
const BAD_REQUEST_ID: PoisonError = {
  code: 'VALIDATION_FAILED',
  message: `(header ${REQUEST_ID_HEADER}): ${REQUEST_ID_PROBLEM}`,
  details: [{ field: `(header ${REQUEST_ID_HEADER})`, problem: REQUEST_ID_PROBLEM }],
};

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

/**
 * Why a message does not prove that the hospital it names sent it, or null when it does: its
 * `medaid-signature` header must be `sha256=<hex HMAC-SHA256 of the value's bytes>` under that
 * hospital's key. Compared in constant time; nothing is recorded for a message refused here.
 */
function unsigned(keys: NonNullable<HospitalKeys>, hospitalId: string, message: IncomingMessage): PoisonError | null {
  const field = `(header ${SIGNATURE_HEADER})`;
  const refuse = (problem: string): PoisonError => ({
    code: 'UNAUTHENTICATED',
    message: `${field}: ${problem}`,
    details: [{ field, problem }],
  });
  const header = message.headers[SIGNATURE_HEADER]?.toString('latin1');
  if (header === undefined) return refuse(`is missing: a message must be signed by its hospital (sha256=<hex HMAC-SHA256 of the value>)`);
  const key = keys.kafkaKeyOf(hospitalId);
  const given = /^sha256=([0-9a-f]{64})$/.exec(header)?.[1];
  if (given === undefined) return refuse('must be sha256=<64 lowercase hex digits>');
  const expected = createHmac('sha256', key ?? Buffer.alloc(32))
    .update(message.value ?? Buffer.alloc(0))
    .digest();
  // An unknown hospital is checked against a throw-away key: the same time, the same answer.
  if (!timingSafeEqual(expected, Buffer.from(given, 'hex')) || key === undefined)
    return refuse(`is not the signature of hospital ${hospitalId} over this message`);
  return null;
}
