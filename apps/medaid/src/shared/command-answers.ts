// Every settlement command that comes with an idempotency key is decided once, whatever is replayed
// or retried: its answer is recorded in the log (CommandAnswered, in a stream of its own per key,
// appended with "no stream yet"), and a later command with the key is answered from that record —
// the same outcome, even when the visit has moved on since (a reversal, a second settlement) —
// (for a Kafka message keyed by its own coordinates, only when it recorded no events: see writer.ts)
// never decided again, however old. The record holds references, not copies: a settlement's figures
// are rebuilt from its own DischargeSettled event. The same key with a different command is refused
// (IDEMPOTENCY_KEY_REUSED). Keys: a Kafka message's request-id header (or its coordinates), an HTTP
// Idempotency-Key header, gRPC idempotency-key metadata; each scoped by who sent it.
import { hash } from 'node:crypto';
import {
  AnsweredOutcome,
  CommandAnsweredData,
  Result,
  SettledData,
  SettlementResult,
  commandStream,
  fail,
  ok,
  settlementResult,
} from '#domain';
import { WrongExpectedRevisionError, deterministicEventId } from '#event-store';
import { readVisit, settledEvent } from './lookups.js';
import { CommandMeta, EventWriter } from './writer.js';

/** What a settlement command answers (a reversal is never "created"). */
export interface SettlementAnswer {
  result: SettlementResult;
  created: boolean;
}

/** Most characters of an idempotency key as a client sends it. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;
const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** A client's key is 1..200 printable ASCII characters without spaces; anything else is refused. */
export const isIdempotencyKey = (key: string) => KEY_PATTERN.test(key);

/**
 * The command's metadata with the idempotency key a caller sent over HTTP (`Idempotency-Key`) or gRPC
 * (`idempotency-key`): one key space for both, scoped by the caller, so a retry over either finds it.
 */
export function withApiKey(meta: CommandMeta, raw: string | undefined, field: string): Result<CommandMeta> {
  if (raw === undefined) return ok(meta);
  if (!isIdempotencyKey(raw))
    return fail('VALIDATION_FAILED', `${field}: must be 1..200 printable ASCII characters without spaces`, [
      { field, problem: 'must be 1..200 printable ASCII characters without spaces' },
    ]);
  return ok({ ...meta, idempotencyKey: `api:${meta.actor.kind}:${meta.actor.id}:${raw}` });
}

/**
 * Runs `decide` at most once per key (serialised within the process; across processes the store's
 * "no stream yet" makes one record win and the other command's answer is the recorded one). Without
 * a key it simply runs. `replayed` says the answer came from the record.
 */
export async function answerOnce(
  writer: EventWriter,
  meta: CommandMeta,
  commandType: CommandAnsweredData['commandType'],
  command: unknown,
  decide: () => Promise<Result<SettlementAnswer>>,
): Promise<Result<SettlementAnswer> & { replayed?: boolean }> {
  const key = meta.idempotencyKey;
  if (key === undefined) return decide();
  const fingerprint = hash('sha256', JSON.stringify([commandType, command]), 'hex');
  const stream = commandStream(hash('sha256', key, 'hex'));
  return writer.locks.run(`command:${key}`, async () => {
    const recorded = await recordedAnswer(writer, stream);
    if (recorded !== undefined) return answerFrom(writer, recorded, fingerprint);
    const answer = await decide();
    // A message's own coordinates: its events (with its correlation id) answer a replay; only a command
    // that recorded nothing (a duplicate, a rejection) needs its answer kept. One append less per settlement.
    if (meta.idempotencyScope === 'message' && answer.ok && recordedEvents(commandType, answer.value)) return answer;
    const data: CommandAnsweredData = { key, commandType, fingerprint, outcome: outcomeOf(answer) };
    try {
      await writer.append(stream, -1, [{ id: deterministicEventId('CommandAnswered', key), type: 'CommandAnswered', data }], meta);
    } catch (error) {
      if (!(error instanceof WrongExpectedRevisionError)) throw error;
      // Another process answered a command with this key first: its answer is the one.
      const theirs = await recordedAnswer(writer, stream);
      if (theirs === undefined) throw error;
      return answerFrom(writer, theirs, fingerprint);
    }
    return answer;
  });
}

/** Whether the command's answer means it recorded events: a new settlement, or a reversal. */
const recordedEvents = (commandType: CommandAnsweredData['commandType'], a: SettlementAnswer) =>
  commandType === 'SettleDischarge' ? a.created : a.result.status === 'reversed' && !a.result.duplicate;

/** The answer recorded for a key the caller sent (as withApiKey scopes it), or undefined when none was. */
export async function answeredUnder(writer: EventWriter, meta: CommandMeta, raw: string): Promise<CommandAnsweredData | undefined> {
  const keyed = withApiKey(meta, raw, 'key');
  if (!keyed.ok || keyed.value.idempotencyKey === undefined) return undefined;
  return recordedAnswer(writer, commandStream(hash('sha256', keyed.value.idempotencyKey, 'hex')));
}

async function recordedAnswer(writer: EventWriter, stream: string): Promise<CommandAnsweredData | undefined> {
  const [event] = await writer.store.readStream(stream, { maxCount: 1 });
  return event?.data as CommandAnsweredData | undefined;
}

function outcomeOf(answer: Result<SettlementAnswer>): AnsweredOutcome {
  if (!answer.ok) return { ok: false, error: answer.error };
  const { result, created } = answer.value;
  return {
    ok: true,
    hospitalId: result.hospitalId,
    visitId: result.visitId,
    settlementId: result.settlementId,
    status: result.status === 'reversed' ? 'reversed' : 'settled',
    duplicate: result.duplicate,
    created,
  };
}

async function answerFrom(
  writer: EventWriter,
  recorded: CommandAnsweredData,
  fingerprint: string,
): Promise<Result<SettlementAnswer> & { replayed: true }> {
  if (recorded.fingerprint !== fingerprint) {
    const refused = fail('IDEMPOTENCY_KEY_REUSED', `idempotency key already answered another ${recorded.commandType} command`, [
      { field: 'idempotencyKey', problem: 'already used for a different command' },
    ]);
    return { ...refused, replayed: true };
  }
  const o = recorded.outcome;
  if (!o.ok) return { ok: false, error: o.error, replayed: true };
  const settled = settledEvent(await readVisit(writer.store, o.hospitalId, o.visitId), o.settlementId);
  if (settled === undefined) throw new Error(`the recorded answer names settlement ${o.settlementId}, which is not in the log`);
  const result = settlementResult(writer.state.settlementRecord(settled.data as SettledData), o.status, o.duplicate);
  return { ...ok({ result, created: o.created }), replayed: true };
}
