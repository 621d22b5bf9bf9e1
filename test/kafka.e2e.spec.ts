// Kafka end to end, against a real broker (deploy/kafka-local, started here when KAFKA_BROKERS is not
// set) and the real service as a child process: discharges in through a consumer group, outcomes
// and dead letters out, every recorded event relayed in stream order; then faults: the broker
// stopped and restarted mid-stream, and the service killed with SIGKILL mid-stream and restarted.
// Each test has its own topics (KAFKA_TOPIC_PREFIX) and consumer groups, deleted at the end.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT,
  Service,
  TEST_CALLERS,
  discharge,
  freePort,
  http,
  removeDir,
  startService,
  tempDir,
  writeAuthFile,
} from './support/service.js';
import { createHmac } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { connect } from './support/grpc-client.js';
import { schemaValidator } from './support/schemas.js';
import { PostgresEventStore } from '#event-store-postgres';
import { createTestDatabase } from './support/postgres.js';
import { otlpReceiver } from './support/otlp.js';
import {
  Broker,
  Collected,
  KafkaProbe,
  acquireBroker,
  brokerRunning,
  kafkaLocalAsync,
  relayedEvents,
  releaseBroker,
} from './support/kafka-probe.js';

type Obj = Record<string, any>;
const RUN = `t${Date.now().toString(36)}${process.pid}`;
let broker: Broker;
let tests = 0;

beforeAll(() => {
  broker = acquireBroker();
}, 240_000);

afterAll(() => {
  if (broker) releaseBroker(broker);
}, 60_000);

interface Rig {
  probe: KafkaProbe;
  service: Service;
  env: Record<string, string>;
  dataDir: string;
}

/** A service with Kafka on, its own topics and group, and a probe on those topics. */
async function rig(args: string[] = [], extraEnv: Record<string, string> = {}): Promise<Rig> {
  const prefix = `${RUN}-${++tests}.`;
  const probe = new KafkaProbe(broker.brokers, prefix);
  await probe.start();
  const env = {
    KAFKA_BROKERS: broker.brokers,
    KAFKA_TOPIC_PREFIX: prefix,
    KAFKA_GROUP_ID: `medaid-${prefix}`,
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
    ...extraEnv,
  };
  const dataDir = tempDir();
  const service = await startService({ dataDir, env, args });
  return { probe, service, env, dataDir };
}

const checkSchema = schemaValidator();

async function teardown(r: Rig | undefined): Promise<void> {
  if (r === undefined) return;
  // whatever the test did, everything the service sent matches its published schema
  const violations = [
    ...r.probe.on(r.probe.topics.settlements).flatMap((m) => checkSchema('kafka-outcome', m.json)),
    ...r.probe.on(r.probe.topics.events).flatMap((m) => checkSchema('event', m.json)),
    ...r.probe.on(r.probe.topics.payouts).flatMap((m) => checkSchema('payout', m.json)),
    ...r.probe
      .on(r.probe.topics.dlq)
      .flatMap((m) => (m.headers.error === undefined ? [] : checkSchema('error', JSON.parse(m.headers.error)))),
  ];
  await r.service.stop();
  await r.probe.close();
  removeDir(r.dataDir);
  expect(violations.slice(0, 10)).toEqual([]);
}

const settle = (fields: Obj) => ({ type: 'SettleDischarge', ...discharge(fields) });
const keyOf = (d: Obj) => `${d.hospitalId}:${d.visitId}`;

async function readyEvents(url: string): Promise<number> {
  const r = await http(url, 'GET', '/ready');
  expect(r.status).toBe(200);
  return r.body.events as number;
}

/** Waits until every event the store holds was relayed, then checks stream order and payouts. */
async function expectLogRelayed(r: Rig, timeoutMs = 30_000): Promise<void> {
  const total = await readyEvents(r.service.url);
  await r.probe.waitFor(
    `${total} events on ${r.probe.topics.events}`,
    () => relayedEvents(r.probe.on(r.probe.topics.events)).events.length >= total,
    timeoutMs,
  );
  const { events, problems } = relayedEvents(r.probe.on(r.probe.topics.events));
  expect(problems).toEqual([]);
  expect(events).toHaveLength(total);
  const payoutIds = new Set(
    events.filter((e) => ['DischargeSettled', 'SettlementReversed'].includes(e.headers['event-type']!)).map((e) => e.headers['event-id']),
  );
  await r.probe.waitFor(
    'payouts',
    () => new Set(r.probe.on(r.probe.topics.payouts).map((m) => m.headers['event-id'])).size >= payoutIds.size,
    timeoutMs,
  );
  const payouts = relayedEvents(r.probe.on(r.probe.topics.payouts));
  expect(payouts.problems.filter((p) => !p.includes('was due'))).toEqual([]); // payouts skip other events: revisions have gaps there
  expect(new Set(payouts.events.map((e) => e.headers['event-id']))).toEqual(payoutIds);
}

/** Every visit settled exactly once: one outcome per message, ok and new, and one settlement in its history. */
async function expectSettledOnce(r: Rig, visits: Obj[]): Promise<void> {
  const byVisit = new Map<string, Obj[]>();
  for (const o of r.probe.outcomes())
    byVisit.set(`${o.json.result?.hospitalId}/${o.json.result?.visitId}`, [
      ...(byVisit.get(`${o.json.result?.hospitalId}/${o.json.result?.visitId}`) ?? []),
      o.json,
    ]);
  for (const d of visits) {
    const outcomes = byVisit.get(`${d.hospitalId}/${d.visitId}`) ?? [];
    expect(outcomes.map((o) => [o.ok, o.result.duplicate, o.result.settlementId])).toEqual([
      [true, false, `${d.hospitalId}/${d.visitId}/1`],
    ]);
    const got = await http(r.service.url, 'GET', `/v1/settlements/${d.hospitalId}/${d.visitId}`);
    expect(got.status).toBe(200);
    expect(got.body.history).toHaveLength(1);
  }
}

/** Many discharges over a few persons, so each person stream gets many events in a row. */
function manyDischarges(n: number, tag: string): Obj[] {
  return Array.from({ length: n }, (_, i) => discharge({ visitId: `${tag}-${i}`, personId: `p-${tag}-${i % 8}`, totalFen: 100_000 + i }));
}

describe('Kafka ingress and relay', () => {
  it('given a discharge on medaid.discharges.v1, when the service consumes it, then its result is on medaid.settlements.v1', async () => {
    let r: Rig | undefined;
    try {
      r = await rig();
      const d = discharge({ visitId: 'k-1', personId: 'p-k1' });
      await r.probe.produce([{ key: keyOf(d), value: settle(d) }]);
      await r.probe.waitFor('one outcome', () => r!.probe.outcomes().length === 1);
      const [outcome] = r.probe.outcomes();
      expect(outcome!.key).toBe('h-county:k-1');
      expect(outcome!.headers).toMatchObject({
        'source-topic': r.probe.topics.discharges,
        'source-offset': '0',
        'command-type': 'SettleDischarge',
      });
      const viaHttp = await http(r.service.url, 'GET', '/v1/settlements/h-county/k-1');
      expect(outcome!.json).toEqual({
        ok: true,
        commandType: 'SettleDischarge',
        hospitalId: 'h-county',
        visitId: 'k-1',
        requestId: null,
        source: { topic: r.probe.topics.discharges, partition: outcome!.partition, offset: '0', timestamp: outcome!.json.source.timestamp },
        created: true,
        result: { ...viaHttp.body.current, duplicate: false, settledAtMs: undefined, reversal: undefined },
      });
      expect(outcome!.json.result).toMatchObject({ status: 'settled', personId: 'p-k1', totalFen: d.totalFen });
      expect(outcome!.json.result.fundPayFen + outcome!.json.result.patientPayFen).toBe(d.totalFen);
      // /ready shows Kafka's state next to the store's (informational: HTTP works without Kafka)
      const ready = await http(r.service.url, 'GET', '/ready');
      expect([ready.status, ready.body.store, ready.body.kafka?.state]).toEqual([200, 'sqlite', 'running']);
    } finally {
      await teardown(r);
    }
  });

  it('given the same discharge produced three times, then it is settled once: three results, two of them duplicates; a repeated reversal is ALREADY_REVERSED as over HTTP', async () => {
    let r: Rig | undefined;
    try {
      r = await rig();
      const d = discharge({ visitId: 'k-dup', personId: 'p-dup' });
      await r.probe.produce([1, 2, 3].map(() => ({ key: keyOf(d), value: settle(d) })));
      await r.probe.waitFor('three outcomes', () => r!.probe.outcomes().length === 3);
      expect(r.probe.outcomes().map((o) => [o.json.ok, o.json.result.duplicate, o.json.result.settlementId])).toEqual([
        [true, false, 'h-county/k-dup/1'],
        [true, true, 'h-county/k-dup/1'],
        [true, true, 'h-county/k-dup/1'],
      ]);
      const reversal = { type: 'ReverseSettlement', hospitalId: d.hospitalId, visitId: d.visitId, reason: '费用明细录入错误' };
      await r.probe.produce([
        { key: keyOf(d), value: reversal },
        { key: keyOf(d), value: reversal },
        { key: keyOf(d), value: { ...reversal, reason: 'another reason' } },
      ]);
      await r.probe.waitFor('six outcomes', () => r!.probe.outcomes().length === 6);
      expect(
        r.probe
          .outcomes()
          .slice(3)
          .map((o) => (o.json.ok ? [o.json.result.status, o.json.result.duplicate] : [o.json.error.code])),
      ).toEqual([['reversed', false], ['ALREADY_REVERSED'], ['ALREADY_REVERSED']]);
      const got = await http(r.service.url, 'GET', `/v1/settlements/${d.hospitalId}/${d.visitId}`);
      expect(got.body.history.map((h: Obj) => h.status)).toEqual(['reversed']);
      // the same over HTTP, as the spec says
      const again = await http(r.service.url, 'POST', `/v1/settlements/${d.hospitalId}/${d.visitId}/reversal`, { reason: reversal.reason });
      expect([again.status, again.body.code]).toEqual([409, 'ALREADY_REVERSED']);
    } finally {
      await teardown(r);
    }
  });

  it("given a day's topic (settlements, duplicates, conflicts, refusals, reversals), when the group is reset to the earliest offset, then the replay answers every message as the first time and records nothing", async () => {
    let r: Rig | undefined;
    try {
      r = await rig();
      // the case the issue reproduced: settle, re-post, reverse one visit, one message at a time
      const d = discharge({ visitId: 'k-replay', personId: 'p-replay' });
      const reversal = (v: Obj) => ({ type: 'ReverseSettlement', hospitalId: v.hospitalId, visitId: v.visitId, reason: '重复结算' });
      for (const [i, value] of [settle(d), settle(d), reversal(d)].entries()) {
        await r.probe.produce([{ key: keyOf(d), value }]);
        await r.probe.waitFor(`outcome ${i + 1}`, () => r!.probe.on(r!.probe.topics.settlements).length === i + 1);
      }
      // and the rest of the day, all at once: 30 visits, re-posts, conflicts, refusals, reversals
      const day = manyDischarges(30, 'day');
      const messages = [
        ...day.map((v) => ({ key: keyOf(v), value: settle(v) })),
        ...day.slice(0, 8).map((v) => ({ key: keyOf(v), value: settle(v) })),
        ...day.slice(8, 12).map((v) => ({ key: keyOf(v), value: settle({ ...v, totalFen: 123_456 }) })),
        ...day.slice(12, 16).map((v) => ({ key: keyOf(v), value: { ...settle(v), totalFen: -1 } })),
        ...day.slice(16, 22).map((v) => ({ key: keyOf(v), value: reversal(v) })),
        ...day.slice(16, 19).map((v) => ({ key: keyOf(v), value: settle(v) })), // settled again after the reversal
      ];
      await r.probe.produce(messages);
      const total = 3 + messages.length;
      await r.probe.waitFor(`${total} outcomes`, () => r!.probe.on(r!.probe.topics.settlements).length === total);
      const first = r.probe.on(r.probe.topics.settlements).map((m) => m.json as Obj);
      expect(first.slice(0, 3).map((o) => [o.commandType, o.result.status, o.result.duplicate])).toEqual([
        ['SettleDischarge', 'settled', false],
        ['SettleDischarge', 'settled', true],
        ['ReverseSettlement', 'reversed', false],
      ]);
      const eventsBefore = await readyEvents(r.service.url);
      // when the service stops, the operator resets its group to the earliest offset, and it starts again
      await r.service.stop();
      await r.probe.replayDischarges(r.env.KAFKA_GROUP_ID!);
      r.service = await startService({ dataDir: r.dataDir, env: r.env });
      await r.probe.waitFor('the replayed outcomes', () => r!.probe.on(r!.probe.topics.settlements).length >= 2 * total, 60_000);
      // then every replayed message is answered exactly as the first time, and nothing new is recorded
      const bySource = (outcomes: Obj[]) =>
        new Map(outcomes.map((o) => [`${o.source.partition}/${o.source.offset}`, JSON.stringify(o)] as const));
      const all = r.probe.on(r.probe.topics.settlements).map((m) => m.json as Obj);
      expect(bySource(all.slice(total))).toEqual(bySource(first));
      expect(await readyEvents(r.service.url)).toBe(eventsBefore);
      const got = await http(r.service.url, 'GET', `/v1/settlements/${d.hospitalId}/${d.visitId}`);
      expect(got.body.history.map((h: Obj) => [h.settlementId, h.status])).toEqual([[`${d.hospitalId}/k-replay/1`, 'reversed']]);
    } finally {
      await teardown(r);
    }
  });

  it('gives the same outcome, code and details over HTTP, gRPC and Kafka for every error a settlement command can meet', async () => {
    let r: Rig | undefined;
    const grpcPort = await freePort();
    const client = connect(grpcPort);
    try {
      r = await rig(['--grpc-port', String(grpcPort)]);
      const url = r.service.url;
      // Given a settled visit, a reversed one, and a person who died on 2012-02-01
      expect((await http(url, 'POST', '/v1/settlements', discharge({ visitId: 't-settled', personId: 'p-t' }))).status).toBe(201);
      expect((await http(url, 'POST', '/v1/settlements', discharge({ visitId: 't-reversed', personId: 'p-t' }))).status).toBe(201);
      expect((await http(url, 'POST', '/v1/settlements/h-county/t-reversed/reversal', { reason: 'x' })).status).toBe(200);
      expect((await http(url, 'POST', '/v1/persons/p-dead/death', { date: '2012-02-01' })).status).toBe(200);

      type Command =
        | { type: 'SettleDischarge'; [k: string]: unknown }
        | { type: 'ReverseSettlement'; hospitalId: string; visitId: string; reason: string };
      const settleOf = (fields: Obj): Command => ({ type: 'SettleDischarge', ...discharge(fields) });
      const reverseOf = (visitId: string): Command => ({ type: 'ReverseSettlement', hospitalId: 'h-county', visitId, reason: 'x' });
      const viaHttp = async ({ type, ...body }: Command, key?: string) => {
        const headers: Record<string, string> = key === undefined ? {} : { 'idempotency-key': key };
        const reply =
          type === 'SettleDischarge'
            ? await http(url, 'POST', '/v1/settlements', body, headers)
            : await http(url, 'POST', `/v1/settlements/h-county/${body.visitId}/reversal`, { reason: body.reason }, headers);
        return reply.status < 300 ? { code: 'OK', details: [] } : { code: reply.body.code, details: reply.body.details };
      };
      const viaGrpc = async ({ type, ...body }: Command, key?: string) => {
        const metadata = new grpc.Metadata();
        if (key !== undefined) metadata.set('idempotency-key', key);
        const reply = await client.call(type === 'SettleDischarge' ? 'Settle' : 'Reverse', body, metadata);
        return reply.ok ? { code: 'OK', details: [] } : { code: reply.code, details: reply.details };
      };
      const viaKafka = async (command: Command, key?: string) => {
        const before = r!.probe.outcomes().length;
        const visit = command.visitId as string;
        await r!.probe.produce([
          { key: `h-county:${visit}`, value: command, ...(key === undefined ? {} : { headers: { 'request-id': key } }) },
        ]);
        await r!.probe.waitFor('the outcome', () => r!.probe.outcomes().length > before);
        const { json } = r!.probe.outcomes().at(-1)!;
        return json.ok ? { code: 'OK', details: [] } : { code: json.error.code, details: json.error.details };
      };
      const cases: Array<[code: string, command: Command, before?: Command]> = [
        ['VALIDATION_FAILED', settleOf({ visitId: 't-bad', totalFen: -1 })],
        ['NO_POLICY_IN_FORCE', settleOf({ visitId: 't-np', region: '999999' })],
        ['PERSON_DECEASED', settleOf({ visitId: 't-dead', personId: 'p-dead' })],
        ['VISIT_CONFLICT', settleOf({ visitId: 't-settled', personId: 'p-t', totalFen: 123_456 })],
        ['SETTLEMENT_NOT_FOUND', reverseOf('t-never')],
        ['ALREADY_REVERSED', reverseOf('t-reversed')],
        // a key first used for one command, then sent with another
        ['IDEMPOTENCY_KEY_REUSED', settleOf({ visitId: 't-k2', personId: 'p-k' }), settleOf({ visitId: 't-k1', personId: 'p-k' })],
      ];
      for (const [code, command, before] of cases) {
        const answers: Obj = {};
        for (const [transport, send] of [
          ['http', viaHttp],
          ['grpc', viaGrpc],
          ['kafka', viaKafka],
        ] as const) {
          const key = before === undefined ? undefined : `reused-${transport}`;
          if (before !== undefined) expect((await send(before, key)).code).toBe('OK');
          answers[transport] = await send(command, key);
        }
        // then each transport answers with the code and exactly the same details
        expect([code, answers.http.code]).toEqual([code, code]);
        expect([code, answers.grpc]).toEqual([code, answers.http]);
        expect([code, answers.kafka]).toEqual([code, answers.http]);
      }
    } finally {
      client.close();
      await teardown(r);
    }
  });

  it("serves Apache Kafka's own console producer and consumer: settle, duplicate, conflict, a validation error, a reversal", async () => {
    let r: Rig | undefined;
    try {
      r = await rig();
      const d = discharge({ visitId: 'k-console', personId: 'p-console' });
      const key = keyOf(d);
      // Given the lines a vendor types into kafka-console-producer (headers, TAB, key|value)
      const lines = [
        ['his-c1', settle(d)],
        ['his-c2', settle(d)],
        ['his-c3', settle({ ...d, totalFen: 123_456 })],
        ['his-c4', { ...settle(d), totalFen: '100' }],
        ['his-c5', { type: 'ReverseSettlement', hospitalId: d.hospitalId, visitId: d.visitId, reason: '录入错误' }],
      ].map(([id, value]) => `request-id:${id}\t${key}|${JSON.stringify(value)}`);
      const tool = (args: string[], input?: string) =>
        spawnSync('bash', [join(ROOT, 'deploy/kafka-local/kafka-local.sh'), ...args], { input, encoding: 'utf8', timeout: 180_000 });
      const produced = tool(
        [
          'console-producer',
          '--bootstrap-server',
          broker.brokers,
          '--topic',
          r.probe.topics.discharges,
          '--reader-property',
          'parse.key=true',
          '--reader-property',
          'key.separator=|',
          '--reader-property',
          'parse.headers=true',
        ],
        `${lines.join('\n')}\n`,
      );
      expect([produced.status, produced.stderr.slice(-2000)]).toEqual([0, produced.status === 0 ? produced.stderr.slice(-2000) : '']);
      // when kafka-console-consumer reads the outcomes
      const consumed = tool([
        'console-consumer',
        '--bootstrap-server',
        broker.brokers,
        '--topic',
        r.probe.topics.settlements,
        '--from-beginning',
        '--max-messages',
        '5',
        '--timeout-ms',
        '60000',
        '--formatter-property',
        'print.key=true',
        '--formatter-property',
        'key.separator=|',
      ]);
      expect(consumed.status).toBe(0);
      const outcomes = consumed.stdout
        .trim()
        .split('\n')
        .map((line) => ({ key: line.slice(0, line.indexOf('|')), json: JSON.parse(line.slice(line.indexOf('|') + 1)) as Obj }))
        .sort((a, b) => a.json.requestId.localeCompare(b.json.requestId));
      // then each has its answer, keyed by the visit and naming the producer's request id
      expect(
        outcomes.map((o) => [o.key, o.json.requestId, o.json.ok ? [o.json.result.status, o.json.result.duplicate] : o.json.error.code]),
      ).toEqual([
        [key, 'his-c1', ['settled', false]],
        [key, 'his-c2', ['settled', true]],
        [key, 'his-c3', 'VISIT_CONFLICT'],
        [key, 'his-c4', 'VALIDATION_FAILED'],
        [key, 'his-c5', ['reversed', false]],
      ]);
      await r.probe.waitFor('the dead letter', () => r!.probe.on(r!.probe.topics.dlq).length === 1);
    } finally {
      await teardown(r);
    }
  });

  it('given poison and refused messages between good ones, then each refused one gets an outcome and a dead letter, poison only a dead letter, and the partition keeps moving', async () => {
    let r: Rig | undefined;
    try {
      r = await rig();
      const a = discharge({ visitId: 'k-a', personId: 'p-poison' });
      const b = discharge({ visitId: 'k-b', personId: 'p-poison' });
      // one partition for all, chosen by the producer: the order is the point
      await r.probe.produce(
        [
          { key: keyOf(a), value: settle(a) },
          { key: keyOf(a), value: 'not json {' },
          { key: keyOf(a), value: { type: 'PublishPolicy', policy: {} } },
          { key: keyOf(b), value: { ...settle(b), totalFen: '100' } },
          { key: keyOf(b), value: settle({ ...b, region: 'nowhere' }) }, // a business rejection: an outcome only
          { key: keyOf(b), value: settle(b) },
          { key: 'h-county:wrong-key', value: settle(b) }, // the key rule
        ].map((m) => ({ ...m, partition: 0 })),
      );
      await r.probe.waitFor(
        'six outcomes and four dead letters',
        () => r!.probe.outcomes().length === 6 && r!.probe.on(r!.probe.topics.dlq).length >= 4,
      );
      // messages of different keys are handled side by side: compared in offset order
      const byOffset = (x: Collected, y: Collected) => Number(x.headers['source-offset']) - Number(y.headers['source-offset']);
      const dlq = r.probe.on(r.probe.topics.dlq).sort(byOffset);
      expect(dlq.map((m) => [m.headers['source-offset'], m.headers['error-code'], m.key])).toEqual([
        ['1', 'VALIDATION_FAILED', keyOf(a)],
        ['2', 'VALIDATION_FAILED', keyOf(a)],
        ['3', 'VALIDATION_FAILED', keyOf(b)],
        ['6', 'VALIDATION_FAILED', 'h-county:wrong-key'],
      ]);
      expect(dlq[0]!.value).toBe('not json {');
      expect(JSON.parse(dlq[1]!.headers.error!).details).toEqual([
        { field: 'type', problem: 'must be one of SettleDischarge, ReverseSettlement' },
      ]);
      // The same details HTTP gives for the same fields.
      const viaHttp = await http(r.service.url, 'POST', '/v1/settlements/preview', { ...b, totalFen: '100' });
      expect(JSON.parse(dlq[2]!.headers.error!)).toEqual({
        code: 'VALIDATION_FAILED',
        message: viaHttp.body.message,
        details: viaHttp.body.details,
      });
      expect(JSON.parse(dlq[2]!.value!)).toEqual({ ...settle(b), totalFen: '100' });
      expect(dlq.every((m) => m.headers['source-topic'] === r!.probe.topics.discharges && m.headers['source-partition'] === '0')).toBe(
        true,
      );
      const outcomes = r.probe.outcomes().sort(byOffset);
      expect(outcomes.map((o) => [o.headers['source-offset'], o.key, o.json.ok ? o.json.result.visitId : o.json.error.code])).toEqual([
        ['0', keyOf(a), 'k-a'],
        ['2', keyOf(a), 'VALIDATION_FAILED'],
        ['3', keyOf(b), 'VALIDATION_FAILED'],
        ['4', keyOf(b), 'NO_POLICY_IN_FORCE'],
        ['5', keyOf(b), 'k-b'],
        ['6', keyOf(b), 'VALIDATION_FAILED'],
      ]);
      expect(outcomes[1]!.json).toMatchObject({ commandType: 'PublishPolicy', hospitalId: null, visitId: null });
      expect(outcomes[5]!.json).toMatchObject({ commandType: 'SettleDischarge', hospitalId: 'h-county', visitId: 'k-b' });
      expect(outcomes[5]!.json.error.details.map((d: Obj) => d.field)).toEqual(['(key)']);
    } finally {
      await teardown(r);
    }
  });

  it('given settlements over HTTP and Kafka, then every recorded event reaches medaid.events.v1 in stream order and payouts reach medaid.payouts.v1', async () => {
    let r: Rig | undefined;
    try {
      r = await rig();
      const url = r.service.url;
      expect((await http(url, 'POST', '/v1/persons/p-ev-0/categories', { category: 'dibao', validFrom: '2012-01-01' })).status).toBe(200);
      const visits = manyDischarges(24, 'ev');
      for (const d of visits.slice(0, 12)) expect((await http(url, 'POST', '/v1/settlements', d)).status).toBe(201);
      await r.probe.produce(visits.slice(12).map((d) => ({ key: keyOf(d), value: settle(d) })));
      expect((await http(url, 'POST', '/v1/settlements/h-county/ev-0/reversal', { reason: 'wrong amount' })).status).toBe(200);
      await r.probe.waitFor('12 outcomes', () => r!.probe.outcomes().length === 12);
      await expectLogRelayed(r);
      const types = new Set(r.probe.on(r.probe.topics.events).map((e) => e.headers['event-type']));
      // no CommandAnswered: a Kafka message keyed by its own coordinates that recorded a settlement is
      // answered on replay from that settlement (its correlation id); only what recorded nothing keeps an answer
      expect(types).toEqual(new Set(['PolicyPublished', 'CategoryAssigned', 'DischargeSettled', 'SettlementReversed']));
      // the events topic carries a settlement a consumer reads without the policy: the API's result
      const settledEvent = r.probe
        .on(r.probe.topics.events)
        .find((e) => e.json.type === 'DischargeSettled' && e.json.data.visitId === 'ev-0');
      const viaHttp = await http(url, 'GET', '/v1/settlements/h-county/ev-0');
      const { status: _s, settledAtMs: _t, reversal: _r, duplicate: _d, ...settlement } = viaHttp.body.history[0];
      expect(settledEvent!.json.data).toEqual({ ...settlement, status: 'settled' });
      expect(settledEvent!.json.data.layers[0]).toMatchObject({ layerId: 'basic', kind: 'insurance', fund: '390100' });
      // and the payouts topic a plain payout record per settlement and per reversal, which cancel out
      const payouts = r.probe.on(r.probe.topics.payouts).filter((e) => e.json.settlementId === 'h-county/ev-0/1');
      expect(payouts.map((p) => p.json.kind).sort()).toEqual(['reversal', 'settlement']);
      const [paid, back] = ['settlement', 'reversal'].map((k) => payouts.find((p) => p.json.kind === k)!.json as Obj);
      expect(paid!.payouts.length).toBeGreaterThan(0);
      expect(back!.payouts).toEqual(paid!.payouts.map((p: Obj) => ({ ...p, amountFen: -p.amountFen })));
      expect([paid!.fundPayFen + back!.fundPayFen, paid!.fundPayFen]).toEqual([0, settlement.fundPayFen]);
      expect(paid!.payouts.reduce((sum: number, p: Obj) => sum + p.amountFen, 0)).toBe(settlement.fundPayFen);
      expect(back).toMatchObject({ streamId: 'person-p-ev-0', hospitalId: 'h-county', visitId: 'ev-0', personId: 'p-ev-0' });

      // under a policy with a monitoring line, a flag and its clearing reach medaid.alerts.v1 (and the events topic)
      const demo = JSON.parse(readFileSync(join(ROOT, 'apps/medaid/assets/demo-policy.json'), 'utf8')) as Obj;
      const monitored = {
        ...demo,
        version: demo.version + 1,
        monitoring: { thresholds: [{ id: 'year-8000', per: 'year', aboveFen: 800_000 }] },
      };
      expect((await http(url, 'POST', '/v1/policies', monitored)).status).toBe(201);
      const big = discharge({ visitId: 'ev-big', personId: 'p-ev-big', totalFen: 2_000_000, fullOwnPayFen: 1_500_000 });
      expect((await http(url, 'POST', '/v1/settlements', big)).status).toBe(201);
      expect((await http(url, 'POST', '/v1/settlements/h-county/ev-big/reversal', { reason: 'wrong person' })).status).toBe(200);
      await r.probe.waitFor('a flag and its clearing', () => r!.probe.on(r!.probe.topics.alerts).length >= 2);
      const alerts = r.probe.on(r.probe.topics.alerts);
      expect(alerts.map((m) => [m.json.type, m.json.data.personId, m.json.data.thresholdId])).toEqual([
        ['HighMedicalCostFlagged', 'p-ev-big', 'year-8000'],
        ['HighMedicalCostCleared', 'p-ev-big', 'year-8000'],
      ]);
      expect(alerts.every((m) => m.headers['event-id'] === m.json.id && m.key === 'person-p-ev-big')).toBe(true);
      await expectLogRelayed(r);
    } finally {
      await teardown(r);
    }
  });
});

describe('Kafka in the traces', () => {
  it('given a discharge with a traceparent header, then its trace goes consume → command → append → publish, and the outcome carries it on; the relay publishes in spans of its own', async () => {
    let r: Rig | undefined;
    const receiver = await otlpReceiver();
    try {
      r = await rig([], { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: '50' });
      const traceId = '5bf92f3577b34da6a3ce929d0e0e4737';
      const producerSpan = '10f067aa0ba902b8';
      const d = discharge({ visitId: 'k-traced', personId: 'p-kafka-traced-7f3a' });
      await r.probe.produce([{ key: keyOf(d), value: settle(d), headers: { traceparent: `00-${traceId}-${producerSpan}-01` } }]);
      await r.probe.waitFor('one outcome', () => r!.probe.outcomes().length === 1);
      const [outcome] = r.probe.outcomes();
      expect(outcome!.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      await receiver.waitFor((s) => s.traceId === traceId && s.kind === 4);
      await receiver.waitFor((s) => s.name === `${r!.probe.topics.events} publish`);
      const trace = receiver.spans().filter((s) => s.traceId === traceId);
      const consume = trace.find((s) => s.name === `${r!.probe.topics.discharges} process`);
      const command = trace.find((s) => s.name === 'medaid.SettleDischarge');
      const publish = trace.find((s) => s.name === `${r!.probe.topics.settlements} publish`);
      expect([consume?.kind, consume?.parentSpanId]).toEqual([5, producerSpan]); // 5 = CONSUMER
      expect(command?.parentSpanId).toBe(consume!.spanId);
      expect(trace.some((s) => s.name === 'medaid.store.append' && s.parentSpanId === command!.spanId)).toBe(true);
      expect([publish?.kind, publish?.parentSpanId]).toEqual([4, consume!.spanId]); // 4 = PRODUCER
      expect(outcome!.headers.traceparent).toBe(`00-${traceId}-${publish!.spanId}-01`);
      const attr = (s: Obj, key: string) => s.attributes.find((a: Obj) => a.key === key)?.value;
      expect(attr(consume!, 'medaid.outcome')).toEqual({ stringValue: 'ok' });
      const relay = receiver.spans().find((s) => s.name === `${r!.probe.topics.events} publish`);
      expect([relay?.kind, attr(relay!, 'messaging.system')]).toEqual([4, { stringValue: 'kafka' }]);
      expect(JSON.stringify(receiver.exported)).not.toContain('p-kafka-traced-7f3a');
    } finally {
      await teardown(r);
      await receiver.close();
    }
  });
});

describe('Kafka with credentials', () => {
  it('settles a discharge only when its signature proves its hospital sent it; unsigned, forged or malformed ones get UNAUTHENTICATED and a dead letter, and nothing is recorded', async () => {
    let r: Rig | undefined;
    const auth = writeAuthFile([]);
    try {
      r = await rig(['--auth', auth.file]);
      const keyOf_ = (hospitalId: string) => createHmac('sha256', TEST_CALLERS.hospitals[hospitalId]!).update('medaid-kafka-v1').digest();
      const sign = (hospitalId: string, value: string) => `sha256=${createHmac('sha256', keyOf_(hospitalId)).update(value).digest('hex')}`;
      const cases = [
        { visitId: 'sig-ok', signer: 'h-county', header: (v: string) => sign('h-county', v) },
        { visitId: 'sig-none', signer: null, header: () => undefined },
        { visitId: 'sig-other', signer: 'h-a', header: (v: string) => sign('h-a', v) },
        { visitId: 'sig-bad', signer: null, header: () => 'sha256=xyz' },
      ];
      await r.probe.produce(
        cases.map((c) => {
          const d = settle(discharge({ visitId: c.visitId, personId: 'p-sig' }));
          const value = JSON.stringify(d);
          const header = c.header(value);
          return { key: keyOf(d), value, ...(header === undefined ? {} : { headers: { 'medaid-signature': header } }) };
        }),
      );
      await r.probe.waitFor('four outcomes', () => r!.probe.outcomes().length >= 4);
      const byVisit = new Map(r.probe.outcomes().map((o) => [o.json.visitId ?? o.json.result?.visitId, o.json]));
      expect(cases.map((c) => [c.visitId, byVisit.get(c.visitId)?.ok, byVisit.get(c.visitId)?.error?.code ?? null])).toEqual([
        ['sig-ok', true, null],
        ['sig-none', false, 'UNAUTHENTICATED'],
        ['sig-other', false, 'UNAUTHENTICATED'],
        ['sig-bad', false, 'UNAUTHENTICATED'],
      ]);
      await r.probe.waitFor('three dead letters', () => r!.probe.on(r!.probe.topics.dlq).length >= 3);
      const reasons = r.probe.on(r.probe.topics.dlq).map((m) => JSON.parse(m.headers.error!).code);
      expect(reasons).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED']);
      // only the signed discharge was recorded, as the hospital's own act
      for (const c of cases)
        expect((await http(r.service.url, 'GET', `/v1/settlements/h-county/${c.visitId}`)).status).toBe(c.visitId === 'sig-ok' ? 200 : 404);
    } finally {
      await teardown(r);
      removeDir(auth.dir);
    }
  }, 120_000);
});

describe('Kafka under faults', () => {
  it('given the broker stopped and restarted mid-stream, then each discharge is settled exactly once and every event reaches Kafka in order', async () => {
    if (!broker.controllable) {
      process.stderr.write('skipped: KAFKA_BROKERS is not the kafka-local broker, so this test cannot stop it\n');
      return;
    }
    let r: Rig | undefined;
    try {
      r = await rig();
      const visits = manyDischarges(1500, 'bk'); // enough that the ingress (64 at a time) is still busy when the broker stops
      await r.probe.produce(visits.map((d) => ({ key: keyOf(d), value: settle(d) })));
      await r.probe.waitFor('the first outcomes', () => r!.probe.outcomes().length >= 20);
      await kafkaLocalAsync('stop');
      expect(r.probe.outcomes().length).toBeLessThan(visits.length); // really mid-stream
      // HTTP settlement keeps working while Kafka is down; its events are relayed later.
      const offline = manyDischarges(5, 'offline');
      for (const d of offline) expect((await http(r.service.url, 'POST', '/v1/settlements', d)).status).toBe(201);
      await kafkaLocalAsync('start');
      await r.probe.waitFor('all outcomes', () => r!.probe.outcomes().length >= visits.length, 45_000);
      expect(r.probe.outcomes()).toHaveLength(visits.length);
      await expectSettledOnce(r, visits);
      await expectLogRelayed(r);
    } finally {
      if (!brokerRunning()) await kafkaLocalAsync('start');
      await teardown(r);
    }
  }, 120_000);

  it('given SIGTERM mid-stream, then the message in hand is finished and committed, the relay flushes, and a restart goes on without any redelivery', async () => {
    let r: Rig | undefined;
    try {
      r = await rig();
      const visits = manyDischarges(1500, 'term');
      await r.probe.produce(visits.map((d) => ({ key: keyOf(d), value: settle(d) })));
      await r.probe.waitFor('the first outcomes', () => r!.probe.outcomes().length >= 20);
      const stopped = Date.now();
      const exit = await r.service.stop('SIGTERM');
      expect(exit.code === 0 || exit.signal === 'SIGTERM').toBe(true);
      expect(Date.now() - stopped).toBeLessThan(15_000);
      const relayStop = r.service
        .stderr()
        .split('\n')
        .filter((l) => l.includes('kafka relay stopped'))
        .map((l) => JSON.parse(l));
      expect(relayStop).toHaveLength(1);
      expect(relayStop[0].position).toBe(relayStop[0].head); // everything recorded was relayed before the store closed
      r.service = await startService({ dataDir: r.dataDir, env: r.env });
      const ready = await http(r.service.url, 'GET', '/ready');
      expect(ready.body.rebuilt.events).toBeLessThan(1 + visits.length); // really mid-stream: work was left for the restart
      await r.probe.waitFor('all outcomes', () => r!.probe.outcomes().length >= visits.length, 45_000);
      await expectSettledOnce(r, visits);
      await expectLogRelayed(r);
      // A clean stop commits what it published: no message was handled twice, so no outcome was published twice.
      expect(r.probe.on(r.probe.topics.settlements)).toHaveLength(visits.length);
    } finally {
      await teardown(r);
    }
  }, 120_000);

  it('given the service killed with SIGKILL mid-stream and restarted, then each discharge is settled exactly once and every event reaches Kafka in order', async () => {
    let r: Rig | undefined;
    try {
      r = await rig();
      const visits = manyDischarges(1500, 'kill');
      await r.probe.produce(visits.map((d) => ({ key: keyOf(d), value: settle(d) })));
      await r.probe.waitFor('the first outcomes', () => r!.probe.outcomes().length >= 40);
      const killed = await r.service.stop('SIGKILL');
      expect(killed.signal).toBe('SIGKILL');
      const before = r.probe.outcomes().length;
      expect(before).toBeLessThan(visits.length); // really mid-stream
      r.service = await startService({ dataDir: r.dataDir, env: r.env });
      await r.probe.waitFor('all outcomes', () => r!.probe.outcomes().length >= visits.length, 45_000);
      expect(r.probe.outcomes()).toHaveLength(visits.length);
      await expectSettledOnce(r, visits);
      await expectLogRelayed(r);
    } finally {
      await teardown(r);
    }
  }, 120_000);

  it('given two instances sharing a PostgreSQL store in one consumer group, when one is killed -9 mid-stream, then the other takes its partitions and every discharge is settled once', async () => {
    let r: Rig | undefined;
    let other: Service | undefined;
    const db = await createTestDatabase('kafka');
    try {
      r = await rig(['--store', db.url, '--shared']);
      other = await startService({ env: r.env, args: ['--store', db.url, '--shared'] });
      const visits = manyDischarges(600, 'two');
      // both members of the group before the stream starts: the partitions are spread over them
      for (let i = 0; i < 200; i++) {
        const states = await Promise.all([r.service, other].map(async (s) => (await http(s.url, 'GET', '/ready')).body.kafka?.ingress));
        if (states.every((st) => st === 'running')) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await r.probe.produce(visits.map((d) => ({ key: keyOf(d), value: settle(d) })));
      await r.probe.waitFor('the first outcomes', () => r!.probe.outcomes().length >= 60);
      expect((await r.service.stop('SIGKILL')).signal).toBe('SIGKILL');
      expect(r.probe.outcomes().length).toBeLessThan(visits.length); // really mid-stream
      // the survivor gets the dead member's partitions after its session times out (6 s) and handles what it left
      await r.probe.waitFor(
        'an outcome for every visit',
        () => new Set(r!.probe.outcomes().map((o) => o.json.result?.visitId)).size >= visits.length,
        60_000,
      );
      // each visit answered ok, always with the one settlement recorded for it (a redelivery is answered again, not settled again)
      const byVisit = new Map<string, Set<string>>();
      for (const o of r.probe.outcomes()) {
        expect(o.json.ok).toBe(true);
        byVisit.set(o.json.result.visitId, (byVisit.get(o.json.result.visitId) ?? new Set()).add(o.json.result.settlementId));
      }
      expect([...byVisit.values()].filter((ids) => ids.size !== 1)).toEqual([]);
      const store = await PostgresEventStore.connect({ connectionString: db.url });
      try {
        const settled = (await store.readAll()).filter((e) => e.type === 'DischargeSettled');
        expect(settled).toHaveLength(visits.length);
        expect(new Set(settled.map((e) => (e.data as Obj).discharge.visitId)).size).toBe(visits.length);
      } finally {
        await store.close();
      }
      // every event reached the events topic (relayed by whichever instance held the relay lease)
      await r.probe.waitFor(
        'every settlement relayed',
        () => new Set(r!.probe.on(r!.probe.topics.events).map((e) => e.headers['event-id'])).size >= visits.length + 1,
        30_000,
      );
    } finally {
      await other?.stop();
      if (other) removeDir(other.dataDir);
      try {
        await teardown(r);
      } finally {
        await db.drop();
      }
    }
  }, 180_000);

  it('given two instances sharing a PostgreSQL store, then one relays under a Kafka lease (each event on the topic once), and when it is killed -9 the other takes over from the checkpoint in the lease within seconds', async () => {
    let r: Rig | undefined;
    let other: Service | undefined;
    const db = await createTestDatabase('relaylease');
    const lease = async (s: Service) => (await http(s.url, 'GET', '/ready')).body.kafka?.relayLease as string | undefined;
    try {
      r = await rig(['--store', db.url, '--shared']);
      other = await startService({ env: r.env, args: ['--store', db.url, '--shared'] });
      const services = [r.service, other];
      // both members of the lease group, one of them holding it
      let states: Array<string | undefined> = [];
      for (let i = 0; i < 600; i++) {
        states = await Promise.all(services.map(lease));
        if (states.filter((st) => st === 'held').length === 1 && states.includes('standby')) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(states.sort()).toEqual(['held', 'standby']);
      const holder = (await lease(r.service)) === 'held' ? r.service : other;
      const survivor = holder === r.service ? other : r.service;
      const settleOver = async (visits: Obj[]) => {
        for (const [i, d] of visits.entries()) {
          const res = await http(services[i % 2]!.url, 'POST', '/v1/settlements', d);
          expect(res.status).toBe(201);
        }
      };
      const eventIds = () => r!.probe.on(r!.probe.topics.events).map((m) => m.headers['event-id']!);
      const before = manyDischarges(120, 'lease1');
      await settleOver(before);
      await r.probe.waitFor('the first settlements relayed', () => new Set(eventIds()).size >= before.length + 1, 30_000);
      // one relay, so each settlement on the topic exactly once (not once per instance)
      const settledIds = r.probe
        .on(r.probe.topics.events)
        .filter((m) => m.headers['event-type'] === 'DischargeSettled')
        .map((m) => m.headers['event-id']);
      expect(settledIds).toHaveLength(before.length);
      expect(new Set(settledIds).size).toBe(before.length);

      expect((await holder.stop('SIGKILL')).signal).toBe('SIGKILL');
      const killedAt = Date.now();
      const after = manyDischarges(80, 'lease2');
      for (const d of after) expect((await http(survivor.url, 'POST', '/v1/settlements', d)).status).toBe(201);
      for (let i = 0; i < 600 && (await lease(survivor)) !== 'held'; i++) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await lease(survivor)).toBe('held');
      const takeoverMs = Date.now() - killedAt;
      expect(takeoverMs).toBeLessThan(30_000); // session timeout 6 s, then one rebalance

      // everything recorded reaches the topic once the survivor relays: from the checkpoint the
      // dead holder left in the lease, so at most its unacknowledged tail again
      const store = await PostgresEventStore.connect({ connectionString: db.url });
      let recorded: string[];
      try {
        recorded = (await store.readAll()).map((e) => e.id);
      } finally {
        await store.close();
      }
      await r.probe.waitFor('every recorded event relayed', () => new Set(eventIds()).size >= recorded.length, 30_000);
      const { events, problems } = relayedEvents(r.probe.on(r.probe.topics.events));
      expect(problems).toEqual([]);
      expect(events.map((e) => e.headers['event-id']).sort()).toEqual(recorded.sort()); // (partitions interleave; order is per stream)
      const duplicates = eventIds().length - recorded.length;
      expect(duplicates).toBeLessThan(before.length);
      process.stdout.write(`relay lease: takeover after kill -9 in ${takeoverMs} ms, ${duplicates} events relayed twice\n`);
    } finally {
      await other?.stop();
      if (other) removeDir(other.dataDir);
      try {
        await teardown(r);
      } finally {
        await db.drop();
      }
    }
  }, 180_000);
});
