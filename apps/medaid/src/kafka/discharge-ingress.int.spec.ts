// The ingress handler over a real store and read model, with the command bus and the publisher in
// the place of NestJS and the broker (the e2e suite runs the real ones): what is retried, what is
// dead-lettered, and that a failed publish never executes the command a second time.
import 'reflect-metadata';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { MEDAID_TAG_RULES } from '#domain';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandBus } from '@nestjs/cqrs';
import type { HandlerContext, IncomingMessage, TopicMessages } from '#kafka';
import { SqliteEventStore, StoreClosedError, StoreOverloadedError } from '#event-store-sqlite';
import { DecisionState } from '../shared/decision-state.js';
import { EventWriter } from '../shared/writer.js';
import { DischargeIngress, correlationIdOf } from './discharge-ingress.js';
import { topicNames } from './kafka-settings.js';

const TOPICS = topicNames('');
const DISCHARGE = {
  type: 'SettleDischarge',
  hospitalId: 'h-county',
  visitId: 'v-1',
  personId: 'p-1',
  region: '360827',
  scheme: 'nrcms',
  visitType: 'inpatient',
  hospitalLevel: 'county',
  admissionDate: '2012-03-01',
  dischargeDate: '2012-03-10',
  totalFen: 1_000_000,
};
const RESULT = { settlementId: 'h-county/v-1/1', personId: 'p-1' };

function message(value: unknown, offset = '7'): IncomingMessage {
  return {
    topic: TOPICS.discharges,
    partition: 2,
    offset,
    timestamp: '1700000000000',
    key: Buffer.from('h-county:v-1'),
    value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
    headers: { trace: Buffer.from('abc') },
  };
}
/** What every outcome of message() carries besides its answer. */
const correlation = (commandType: string) => ({
  commandType,
  hospitalId: 'h-county',
  visitId: 'v-1',
  requestId: null,
  source: { topic: TOPICS.discharges, partition: 2, offset: '7', timestamp: '1700000000000' },
});
const context = (attempt: number): HandlerContext => ({ attempt, signal: new AbortController().signal, heartbeat: async () => undefined });

class Recorder {
  readonly sent: TopicMessages[] = [];
  failNext = 0;
  async send(batches: readonly TopicMessages[]): Promise<void> {
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new Error('broker unavailable');
    }
    this.sent.push(...batches);
  }
}

let dir: string;
let store: SqliteEventStore;
let writer: EventWriter;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'medaid-ingress-'));
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), tagRules: MEDAID_TAG_RULES });
  writer = new EventWriter(store, new DecisionState());
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function ingress(execute: (command: unknown) => Promise<unknown>, publisher: Recorder) {
  const bus = { execute } as unknown as CommandBus;
  return new DischargeIngress(bus, writer, publisher, TOPICS);
}

describe('DischargeIngress', () => {
  it.each([
    ['overloaded', () => new StoreOverloadedError(50_000)],
    ['closed', () => new StoreClosedError()],
  ])('given the store %s, then the message is retried on every attempt and never dead-lettered', async (_what, error) => {
    const publisher = new Recorder();
    const handler = ingress(async () => {
      throw error();
    }, publisher);
    for (const attempt of [1, 2, 3, 10]) await expect(handler.handle(message(DISCHARGE), context(attempt))).rejects.toThrow(/store/);
    expect(publisher.sent).toEqual([]);
  });

  it('given an unexpected error, then it is retried twice and then dead-lettered as INTERNAL with the original message', async () => {
    const publisher = new Recorder();
    const handler = ingress(async () => {
      throw new TypeError('a bug');
    }, publisher);
    await expect(handler.handle(message(DISCHARGE), context(1))).rejects.toThrow('a bug');
    await expect(handler.handle(message(DISCHARGE), context(2))).rejects.toThrow('a bug');
    await handler.handle(message(DISCHARGE), context(3));
    expect(publisher.sent).toHaveLength(1);
    const [dead] = publisher.sent;
    expect(dead!.topic).toBe(TOPICS.dlq);
    expect(dead!.messages[0]!.value).toEqual(Buffer.from(JSON.stringify(DISCHARGE)));
    expect(dead!.messages[0]!.headers).toMatchObject({
      trace: Buffer.from('abc'),
      'error-code': 'INTERNAL',
      'source-partition': '2',
      'source-offset': '7',
    });
    expect(JSON.stringify(dead)).not.toContain('a bug'); // no stack or internals leave the service
  });

  it('given the outcome cannot be published at first, then the retry publishes it without executing the command again', async () => {
    const publisher = new Recorder();
    publisher.failNext = 2;
    const executed: unknown[] = [];
    const handler = ingress(async (command) => {
      executed.push(command);
      return { ok: true, value: { result: RESULT, created: true } };
    }, publisher);
    await expect(handler.handle(message(DISCHARGE), context(1))).rejects.toThrow('broker unavailable');
    await expect(handler.handle(message(DISCHARGE), context(2))).rejects.toThrow('broker unavailable');
    await handler.handle(message(DISCHARGE), context(3));
    expect(executed).toHaveLength(1);
    expect((executed[0] as { meta: unknown }).meta).toEqual({
      actor: { kind: 'anonymous', id: 'kafka' },
      correlationId: correlationIdOf(message(DISCHARGE)),
      idempotencyKey: correlationIdOf(message(DISCHARGE)),
      idempotencyScope: 'message',
    });
    expect(publisher.sent).toEqual([
      {
        topic: TOPICS.settlements,
        messages: [
          {
            key: 'h-county:v-1',
            value: JSON.stringify({ ok: true, ...correlation('SettleDischarge'), created: true, result: RESULT }),
            headers: {
              'source-topic': TOPICS.discharges,
              'source-partition': '2',
              'source-offset': '7',
              'source-timestamp': '1700000000000',
              'command-type': 'SettleDischarge',
            },
          },
        ],
      },
    ]);
  });

  it('given a business rejection, then it is an outcome keyed by the visit and naming it, not a dead letter', async () => {
    const publisher = new Recorder();
    const error = { code: 'NO_POLICY_IN_FORCE', message: 'none', details: [] };
    const handler = ingress(async () => ({ ok: false, error }), publisher);
    await handler.handle(message(DISCHARGE), context(1));
    expect(publisher.sent.map((b) => [b.topic, b.messages[0]!.key, b.messages[0]!.value])).toEqual([
      [TOPICS.settlements, 'h-county:v-1', JSON.stringify({ ok: false, ...correlation('SettleDischarge'), error })],
    ]);
  });

  it('given a request-id header, then it is echoed on the outcome and is the idempotency key, scoped by the hospital', async () => {
    const publisher = new Recorder();
    const executed: Array<{ meta: { idempotencyKey?: string } }> = [];
    const handler = ingress(async (command) => {
      executed.push(command as { meta: { idempotencyKey?: string } });
      return { ok: true, value: { result: RESULT, created: true } };
    }, publisher);
    const m = message(DISCHARGE);
    m.headers['request-id'] = Buffer.from('his-0001');
    await handler.handle(m, context(1));
    expect(executed[0]!.meta.idempotencyKey).toBe('kafka-request:h-county:his-0001');
    const [sent] = publisher.sent;
    expect(JSON.parse(sent!.messages[0]!.value as string)).toMatchObject({ requestId: 'his-0001', hospitalId: 'h-county' });
    expect(sent!.messages[0]!.headers).toMatchObject({ 'request-id': 'his-0001', 'command-type': 'SettleDischarge' });
  });

  it.each([
    ['invalid fields', { ...DISCHARGE, totalFen: -1 }, 'h-county:v-1', 'totalFen'],
    ['a key that is not the visit', DISCHARGE, 'p-1', '(key)'],
  ])('given %s, then the producer gets an outcome with the error as well as the dead letter', async (_what, body, key, field) => {
    const publisher = new Recorder();
    const handler = ingress(async () => {
      throw new Error('must not run');
    }, publisher);
    const m = { ...message(body), key: Buffer.from(key) };
    await handler.handle(m, context(1));
    expect(publisher.sent.map((b) => b.topic)).toEqual([TOPICS.settlements, TOPICS.dlq]);
    const outcome = JSON.parse(publisher.sent[0]!.messages[0]!.value as string);
    expect(outcome).toMatchObject({ ok: false, commandType: 'SettleDischarge', hospitalId: 'h-county', visitId: 'v-1' });
    expect(outcome.error.details.map((d: { field: string }) => d.field)).toContain(field);
    expect(publisher.sent[0]!.messages[0]!.key).toBe('h-county:v-1');
  });

  it('given poison, then it is dead-lettered at once without reaching the bus', async () => {
    const publisher = new Recorder();
    const handler = ingress(async () => {
      throw new Error('must not run');
    }, publisher);
    await handler.handle(message('{oops'), context(1));
    expect(publisher.sent.map((b) => [b.topic, b.messages[0]!.headers!['error-code'], b.messages[0]!.value])).toEqual([
      [TOPICS.dlq, 'VALIDATION_FAILED', Buffer.from('{oops')],
    ]);
  });
});
