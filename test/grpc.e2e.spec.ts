// The gRPC API over a real gRPC client (@grpc/grpc-js + @grpc/proto-loader loading the service's
// own .proto) against the real service as a child process: settle, duplicate, preview, reverse and
// get; every error class with its status code and trailers; edge validation that changes nothing;
// the shared scenarios giving the same results as HTTP; and SIGTERM draining gRPC calls too.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BAD_REQUEST, ERROR_INFO, RPC_STATUS } from '../apps/medaid/src/grpc/rich-status.js';
import { PROTO, connect, type Client, type Reply } from './support/grpc-client.js';
import { BIN, ROOT, SCENARIOS, Service, discharge, freePort, http, removeDir, startService, tempDir } from './support/service.js';

type Obj = Record<string, any>;

/** A gRPC result as the HTTP API writes it: without `created`, absent optional fields as null. */
function asHttpJson({ created: _created, aidBlockedReason, layers, ...rest }: Obj): Obj {
  return {
    ...rest,
    aidBlockedReason: aidBlockedReason ?? null,
    layers: layers.map(({ ruleId, cappedBy, ...layer }: Obj) => ({ ...layer, ruleId: ruleId ?? null, cappedBy: cappedBy ?? null })),
  };
}

const value = (r: Reply): Obj => {
  if (!r.ok) throw new Error(`expected OK, got ${grpc.status[r.status]} ${r.code}: ${r.message}`);
  return r.value;
};
const position = async (url: string) => (await http(url, 'GET', '/ready')).body.position as number;

describe('SettlementService', () => {
  let service: Service;
  let client: Client;
  let grpcPort: number;
  const protoDirs: string[] = [];
  beforeAll(async () => {
    // Given a service with the demo policy and gRPC on, a dibao person and a deceased one
    grpcPort = await freePort();
    service = await startService({ args: ['--grpc-port', String(grpcPort)], quiet: false });
    client = connect(grpcPort);
    expect((await http(service.url, 'POST', '/v1/persons/p-dibao/categories', { category: 'dibao', validFrom: '2012-01-01' })).status).toBe(
      200,
    );
    expect((await http(service.url, 'POST', '/v1/persons/p-dead/death', { date: '2012-01-31' })).status).toBe(200);
  });
  afterAll(async () => {
    client.close();
    await service.stop();
    for (const dir of [service.dataDir, ...protoDirs]) removeDir(dir);
  });

  it('logs its gRPC address when it starts', () => {
    const line = service
      .stderr()
      .split('\n')
      .find((l) => l.includes('"medaid listening"'))!;
    expect(JSON.parse(line).grpcAddress).toEqual({ address: '127.0.0.1', port: grpcPort });
  });

  it('settles a new discharge (created), then answers the identical one as a duplicate with the same id', async () => {
    const d = discharge({ visitId: 'g-1', personId: 'p-dibao', fullOwnPayFen: 0 });
    const first = value(await client.call('Settle', d));
    const before = await position(service.url);
    const again = value(await client.call('Settle', d));
    expect([first.created, first.duplicate, first.status]).toEqual([true, false, 'settled']);
    expect([again.created, again.duplicate, again.settlementId]).toEqual([false, true, first.settlementId]);
    expect({ ...again, duplicate: false, created: true }).toEqual(first);
    expect(await position(service.url)).toBe(before);
    // and the settlement is the one HTTP shows
    const viaHttp = await http(service.url, 'GET', '/v1/settlements/h-county/g-1');
    expect(asHttpJson(first)).toEqual({ ...viaHttp.body.current, settledAtMs: undefined, reversal: undefined });
    expect(first.category).toBe('dibao');
    expect(first.totalFen).toBe(first.fundPayFen + first.patientPayFen);
  });

  it('answers a Settle retried with its idempotency-key as the first time, after a reversal, over gRPC and HTTP alike', async () => {
    const keyed = (key: string) => {
      const metadata = new grpc.Metadata();
      metadata.set('idempotency-key', key);
      return metadata;
    };
    const d = discharge({ visitId: 'g-idem', personId: 'p-dibao' });
    const first = value(await client.call('Settle', d, keyed('g-key-1')));
    expect((await http(service.url, 'POST', '/v1/settlements/h-county/g-idem/reversal', { reason: 'wrong' })).status).toBe(200);
    // the retry is answered from the record: the same settlement, created, never a second one
    expect(value(await client.call('Settle', d, keyed('g-key-1')))).toEqual(first);
    // one key space for both transports (per caller)
    const viaHttp = await http(service.url, 'POST', '/v1/settlements', d, { 'idempotency-key': 'g-key-1' });
    expect([viaHttp.status, viaHttp.body.settlementId]).toEqual([201, first.settlementId]);
    const history = await http(service.url, 'GET', '/v1/settlements/h-county/g-idem');
    expect(history.body.history).toHaveLength(1);
    // a malformed key is refused on the metadata, in medaid's trailers and in gRPC's rich error model
    const bad = await client.call('Settle', d, keyed('has space'));
    expect(!bad.ok && [bad.status, bad.code, bad.details.map((x) => x.field)]).toEqual([
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      ['(metadata idempotency-key)'],
    ]);
    const rich = RPC_STATUS.toObject(RPC_STATUS.decode(!bad.ok ? bad.rich! : Buffer.alloc(0))) as {
      code: number;
      details: Array<{ typeUrl: string; value: Uint8Array }>;
    };
    expect(rich.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(ERROR_INFO.toObject(ERROR_INFO.decode(rich.details[0]!.value))).toEqual({ reason: 'VALIDATION_FAILED', domain: 'medaid.cn' });
    expect(BAD_REQUEST.toObject(BAD_REQUEST.decode(rich.details[1]!.value))).toMatchObject({
      fieldViolations: [{ field: '(metadata idempotency-key)' }],
    });
  });

  it("echoes the caller's request id and logs one line per call with it", async () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-request-id', 'grpc-req-1');
    const r = await client.call('Preview', discharge({ visitId: 'g-log' }), metadata);
    expect(r.ok && r.headers?.get('x-request-id')).toEqual(['grpc-req-1']);
    await new Promise((res) => setTimeout(res, 200));
    const line = JSON.parse(
      service
        .stdout()
        .split('\n')
        .find((l) => l.includes('"grpc-req-1"'))!,
    );
    expect([line.rpc, line.status, line.outcome, typeof line.durationMs]).toEqual([
      '/medaid.settlement.v1.SettlementService/Preview',
      'OK',
      'ok',
      'number',
    ]);
  });

  it('previews without recording, with the id the settlement would get', async () => {
    const before = await position(service.url);
    const preview = value(await client.call('Preview', discharge({ visitId: 'g-2', personId: 'p-dibao' })));
    expect([preview.status, preview.created, preview.duplicate, preview.settlementId]).toEqual(['preview', false, false, 'h-county/g-2/1']);
    expect(await position(service.url)).toBe(before);
    expect((await client.call('Get', { hospitalId: 'h-county', visitId: 'g-2' })).ok).toBe(false);
  });

  it('reverses, settles the visit again, and gets the whole history', async () => {
    const d = discharge({ visitId: 'g-3', personId: 'p-dibao', totalFen: 2_000_000 });
    const settled = value(await client.call('Settle', d));
    const reversed = value(await client.call('Reverse', { hospitalId: 'h-county', visitId: 'g-3', reason: '费用明细录入错误' }));
    expect({ ...reversed, status: 'settled', created: true }).toEqual(settled);
    const resettled = value(await client.call('Settle', { ...d, totalFen: 1_500_000 }));
    expect([resettled.created, resettled.settlementId]).toEqual([true, 'h-county/g-3/2']);

    const view = value(await client.call('Get', { hospitalId: 'h-county', visitId: 'g-3' }));
    expect(view.history.map((h: Obj) => [h.settlement.settlementId, h.settlement.status, h.reversal?.reason ?? null])).toEqual([
      ['h-county/g-3/1', 'reversed', '费用明细录入错误'],
      ['h-county/g-3/2', 'settled', null],
    ]);
    expect(view.current).toEqual(view.history[1]);
    // field for field what GET /v1/settlements/{h}/{v} answers
    const viaHttp = (await http(service.url, 'GET', '/v1/settlements/h-county/g-3')).body;
    const asHttp = (e: Obj) => ({ ...asHttpJson(e.settlement), settledAtMs: e.settledAtMs, reversal: e.reversal ?? null });
    expect({ current: asHttp(view.current), history: view.history.map(asHttp) }).toStrictEqual(viaHttp);
  });

  type Case = [
    name: string,
    method: 'Settle' | 'Preview' | 'Reverse' | 'Get',
    request: Obj,
    status: grpc.status,
    code: string,
    field?: string,
  ];
  const cases: Case[] = [
    [
      'a negative amount',
      'Settle',
      discharge({ visitId: 'e-1', totalFen: -1 }),
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      'totalFen',
    ],
    [
      'an amount above the bound',
      'Settle',
      discharge({ visitId: 'e-2', overLimitFen: 100_000_000_001 }),
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      'overLimitFen',
    ],
    [
      'an amount beyond 2^53',
      'Settle',
      discharge({ visitId: 'e-3', totalFen: '9223372036854775807' }),
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      'totalFen',
    ],
    [
      'a missing identifier',
      'Settle',
      discharge({ visitId: 'e-4', scheme: undefined }),
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      'scheme',
    ],
    [
      'a date that does not exist',
      'Preview',
      discharge({ visitId: 'e-5', dischargeDate: '2012-02-30' }),
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      'dischargeDate',
    ],
    [
      'an unknown visit type',
      'Preview',
      discharge({ visitId: 'e-6', visitType: 'daycare' }),
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      'visitType',
    ],
    [
      'a negative in-scope amount',
      'Settle',
      discharge({ visitId: 'e-7', totalFen: 100, fullOwnPayFen: 101 }),
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      'totalFen',
    ],
    [
      'an external payment for no layer',
      'Settle',
      discharge({ visitId: 'e-8', externalPayments: { nope: 1 } }),
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      'externalPayments.nope',
    ],
    [
      'no policy in force',
      'Settle',
      discharge({ visitId: 'e-9', region: '999999' }),
      grpc.status.FAILED_PRECONDITION,
      'NO_POLICY_IN_FORCE',
      'dischargeDate',
    ],
    [
      'admission after the death date',
      'Settle',
      discharge({ visitId: 'e-10', personId: 'p-dead' }),
      grpc.status.FAILED_PRECONDITION,
      'PERSON_DECEASED',
      'admissionDate',
    ],
    [
      'a different discharge for a settled visit',
      'Settle',
      discharge({ visitId: 'e-settled', totalFen: 999 }),
      grpc.status.ABORTED,
      'VISIT_CONFLICT',
      'visitId',
    ],
    [
      'reversing a visit never settled',
      'Reverse',
      { hospitalId: 'h-county', visitId: 'never', reason: 'x' },
      grpc.status.NOT_FOUND,
      'SETTLEMENT_NOT_FOUND',
    ],
    ['reversing twice', 'Reverse', { hospitalId: 'h-county', visitId: 'e-reversed', reason: 'x' }, grpc.status.ABORTED, 'ALREADY_REVERSED'],
    [
      'a reversal without a reason',
      'Reverse',
      { hospitalId: 'h-county', visitId: 'e-settled' },
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      'reason',
    ],
    [
      'a reversal reason over 500 characters',
      'Reverse',
      { hospitalId: 'h-county', visitId: 'e-settled', reason: 'x'.repeat(501) },
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      'reason',
    ],
    ['getting a visit never settled', 'Get', { hospitalId: 'h-county', visitId: 'nobody' }, grpc.status.NOT_FOUND, 'NOT_FOUND'],
    [
      'getting with a malformed identifier',
      'Get',
      { hospitalId: 'h county', visitId: 'x' },
      grpc.status.INVALID_ARGUMENT,
      'VALIDATION_FAILED',
      'hospitalId',
    ],
  ];

  describe('every error class', () => {
    beforeAll(async () => {
      // (and a settled visit and a reversed one)
      value(await client.call('Settle', discharge({ visitId: 'e-settled' })));
      value(await client.call('Settle', discharge({ visitId: 'e-reversed' })));
      value(await client.call('Reverse', { hospitalId: 'h-county', visitId: 'e-reversed', reason: '录入错误' }));
    });

    it.each(cases)('%s → %s', async (...row: Case) => {
      const [, method, request, status, code, field] = row;
      const before = await position(service.url);
      // When the bad call is made
      const r = await client.call(method, request);
      // then it gets the status, with the medaid code and the field in the trailers, no stack, and records nothing
      expect(r.ok ? 'OK' : { status: grpc.status[r.status], code: r.code }).toEqual({ status: grpc.status[status], code });
      if (r.ok) return;
      expect(r.message.length).toBeGreaterThan(0);
      expect(JSON.stringify(r)).not.toMatch(/\bat .+\.(js|ts):\d+/);
      if (field !== undefined) expect(r.details.map((d) => d.field)).toContain(field);
      expect(await position(service.url)).toBe(before);
    });
  });

  it('refuses a message over 1 MiB with RESOURCE_EXHAUSTED before reading it', async () => {
    const before = await position(service.url);
    const r = await client.call('Reverse', { hospitalId: 'h-county', visitId: 'e-settled', reason: 'x'.repeat(1024 * 1024 + 1) });
    expect(r.ok ? 'OK' : grpc.status[r.status]).toBe('RESOURCE_EXHAUSTED');
    expect(await position(service.url)).toBe(before);
  });

  describe('what a client with another .proto sends', () => {
    /** The service's .proto with one line changed, as a client built from a different contract has it. */
    const variant = (from: string, to: string) => {
      const dir = tempDir('medaid-proto-');
      protoDirs.push(dir);
      const file = join(dir, 'settlement.proto');
      const text = readFileSync(PROTO, 'utf8');
      expect(text).toContain(from);
      writeFileSync(file, text.replace(from, to));
      return file;
    };
    it.each([
      ['a non-integer fen (double)', 'int64 total_fen = 11;', 'double total_fen = 11;', { totalFen: 100.5 }, 'totalFen'],
      [
        'an unknown field',
        'map<string, int64> external_payments = 15;',
        'map<string, int64> external_payments = 15;\n  int64 discount = 99;',
        { discount: 1 },
        '#99',
      ],
      [
        'a number where the spec has a text',
        'string hospital_level = 7;',
        'int32 hospital_level = 7;',
        { hospitalLevel: 2 },
        'hospitalLevel',
      ],
    ])('%s is INVALID_ARGUMENT and changes nothing', async (_name, from, to, fields, field) => {
      const other = connect(grpcPort, variant(from, to));
      try {
        const before = await position(service.url);
        const d = { ...discharge({ visitId: `w-${field}` }), ...fields };
        for (const method of ['Settle', 'Preview'] as const) {
          const r = await other.call(method, d);
          expect(r.ok ? 'OK' : [r.status, r.code, r.details.map((x) => x.field)]).toEqual([
            grpc.status.INVALID_ARGUMENT,
            'VALIDATION_FAILED',
            [field],
          ]);
        }
        expect(await position(service.url)).toBe(before);
        expect((await http(service.url, 'GET', `/v1/settlements/h-county/w-${encodeURIComponent(field)}`)).status).toBe(404);
      } finally {
        other.close();
      }
    });
  });
});

// ---- the shared scenarios: gRPC results are the HTTP results ---------------------------------

const scenarios = readdirSync(SCENARIOS)
  .filter((f) => f.endsWith('.commands.jsonl'))
  .sort();
const lines = (file: string) =>
  readFileSync(join(SCENARIOS, file), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
const DISCHARGE_TEXT = [
  'hospitalId',
  'visitId',
  'personId',
  'region',
  'scheme',
  'visitType',
  'hospitalLevel',
  'admissionDate',
  'dischargeDate',
];
const DISCHARGE_FEN = ['fullOwnPayFen', 'overLimitFen', 'preSelfPayFen'];
const isFenLike = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v);

/** Whether a discharge of a command file can be said in protobuf at all ("100" as a fen cannot). */
function expressible(c: Obj): boolean {
  return (
    Object.keys(c).every((k) => [...DISCHARGE_TEXT, ...DISCHARGE_FEN, 'totalFen', 'diagnosisCodes', 'externalPayments'].includes(k)) &&
    DISCHARGE_TEXT.every((k) => typeof c[k] === 'string') &&
    isFenLike(c.totalFen) &&
    DISCHARGE_FEN.every((k) => c[k] === undefined || c[k] === null || isFenLike(c[k])) &&
    (c.diagnosisCodes === undefined ||
      (Array.isArray(c.diagnosisCodes) && c.diagnosisCodes.every((x: unknown) => typeof x === 'string'))) &&
    (c.externalPayments === undefined ||
      (typeof c.externalPayments === 'object' && Object.values(c.externalPayments ?? {}).every(isFenLike)))
  );
}

/** The HTTP request of a command that has no gRPC method (policies, persons). */
function httpRequest({ type, ...fields }: Obj): [string, string, unknown] | null {
  const { personId, ...rest } = fields;
  const person = (suffix: string): [string, string, unknown] => ['POST', `/v1/persons/${encodeURIComponent(personId)}/${suffix}`, rest];
  switch (type) {
    case 'PublishPolicy':
      return ['POST', '/v1/policies', fields.policy];
    case 'AssignCategory':
      return person('categories');
    case 'RevokeCategory':
      return person('category-revocations');
    case 'GrantApproval':
      return person('approvals');
    case 'RecordDeath':
      return person('death');
    case 'SettleDischarge':
      return ['POST', '/v1/settlements', fields];
    default:
      return null;
  }
}

/** The HTTP route and body of a gRPC command. */
function httpTwin(method: 'Settle' | 'Preview' | 'Reverse', fields: Obj): [string, unknown] {
  if (method === 'Settle') return ['/v1/settlements', fields];
  if (method === 'Preview') return ['/v1/settlements/preview', fields];
  return [
    `/v1/settlements/${encodeURIComponent(fields.hospitalId)}/${encodeURIComponent(fields.visitId)}/reversal`,
    { reason: fields.reason },
  ];
}

describe('the shared scenarios over gRPC', () => {
  const started: Service[] = [];
  afterAll(async () => {
    for (const s of started) {
      await s.stop();
      removeDir(s.dataDir);
    }
  });

  it.each(scenarios)('%s: each result equals the expected line and the HTTP answer, field for field', async (file) => {
    // Given a service with an empty store and gRPC on
    const port = await freePort();
    const service = await startService({ demoPolicy: false, args: ['--grpc-port', String(port)] });
    started.push(service);
    const client = connect(port);
    const expected = lines(file.replace('.commands.', '.expected.'));
    let compared = 0;
    try {
      for (const [i, line] of lines(file).entries()) {
        const { type, ...fields } = JSON.parse(line) as Obj;
        const method =
          type === 'SettleDischarge' ? 'Settle' : type === 'PreviewDischarge' ? 'Preview' : type === 'ReverseSettlement' ? 'Reverse' : null;
        if (method === null || (method !== 'Reverse' && !expressible(fields))) {
          const request = httpRequest({ type, ...fields });
          if (request !== null) await http(service.url, ...request);
          continue;
        }
        // When the command is made over gRPC
        const r = await client.call(method, fields);
        // then it is what the shared file expects (which is what HTTP and simulate print)
        const { settlementId: _id, ...result } = r.ok ? asHttpJson(r.value) : {};
        const got = r.ok ? { ok: true, result } : { ok: false, error: { code: r.code } };
        expect({ i, ...got }).toStrictEqual({ i, ...JSON.parse(expected[i]!) });
        compared++;
        // and HTTP answers the same command the same, field for field (a settle as its duplicate, with the same id;
        // a reversal that succeeded cannot be repeated: its expected line is the HTTP answer)
        if (method === 'Reverse' && r.ok) continue;
        const viaHttp = await http(service.url, 'POST', ...httpTwin(method, fields));
        if (r.ok) expect(viaHttp.body).toStrictEqual({ ...asHttpJson(r.value), ...(method === 'Settle' ? { duplicate: true } : {}) });
        else expect(viaHttp.body.code).toBe(r.code);
      }
    } finally {
      client.close();
    }
    expect(compared).toBeGreaterThan(0);
  });
});

describe('starting and stopping', () => {
  it('refuses a --grpc-port that is not a port', () => {
    const dataDir = tempDir();
    const r = spawnSync(process.execPath, [BIN, 'serve', '--data', dataDir, '--grpc-port', '65536'], { cwd: ROOT, encoding: 'utf8' });
    removeDir(dataDir);
    expect([r.status, r.stderr.trim()]).toEqual([1, 'medaid: --grpc-port must be 0 to 65535, not 65536']);
  });

  it('leaves gRPC off without a port', async () => {
    const service = await startService();
    await service.stop();
    removeDir(service.dataDir);
    expect(service.stderr()).toContain('"medaid listening"');
    expect(service.stderr()).not.toContain('grpcAddress');
  });

  it('SIGTERM drains gRPC calls too: every OK survives a restart, the rest recorded nothing, and the process exits promptly', async () => {
    // Given a service with gRPC on through GRPC_PORT and 60 settlements in flight over one channel
    const port = await freePort();
    const dataDir = tempDir();
    const service = await startService({ dataDir, env: { GRPC_PORT: String(port) } });
    const client = connect(port);
    const load = Array.from({ length: 80 }, (_, i) =>
      discharge({ personId: `p-term-${i % 6}`, visitId: `term-${i}`, totalFen: 500_000 + i }),
    );
    let answered = 0;
    let termAt = 0;
    let late: Array<Promise<Reply>> = [];
    // When SIGTERM arrives once the first 10 answers are in, and 20 more calls come 50 ms later
    const inFlight = await Promise.all(
      load.slice(0, 60).map(async (d) => {
        const r = await client.call('Settle', d);
        if (++answered === 10) {
          termAt = Date.now();
          service.process.kill('SIGTERM');
          await new Promise((res) => setTimeout(res, 50));
          late = load.slice(60).map((d2) => client.call('Settle', d2));
        }
        return r;
      }),
    );
    const outcomes = [...inFlight, ...(await Promise.all(late))];
    let grace: NodeJS.Timeout | undefined;
    const exit = await Promise.race([service.exited, new Promise<null>((r) => (grace = setTimeout(() => r(null), 10_000)))]);
    clearTimeout(grace);
    const exitMs = Date.now() - termAt;
    client.close();
    if (exit === null) await service.stop('SIGKILL');
    // Then it ended on its own within the grace period, with nothing logged as an error
    expect({ exited: exit !== null, signal: exit?.signal }).toEqual({ exited: true, signal: 'SIGTERM' });
    expect(exitMs).toBeLessThan(10_000);
    expect(service.stderr()).not.toMatch(/"level":"error"/);
    // and each call either settled or was refused as UNAVAILABLE, which a client may retry
    expect(outcomes.filter((o) => !o.ok && o.status !== grpc.status.UNAVAILABLE)).toEqual([]);
    expect(outcomes.filter((o) => o.ok).length).toBeGreaterThanOrEqual(10);
    // and after a restart every OK is recorded as answered, and nothing else is
    const again = await startService({ dataDir, args: ['--grpc-port', String(port)] });
    const reader = connect(port);
    try {
      for (const [i, o] of outcomes.entries()) {
        const view = await reader.call('Get', { hospitalId: 'h-county', visitId: `term-${i}` });
        if (o.ok) expect(view.ok && view.value.current.settlement).toEqual({ ...o.value, created: false });
        else expect(view.ok ? 'recorded' : view.code).toBe('NOT_FOUND');
      }
    } finally {
      reader.close();
      await again.stop();
      removeDir(dataDir);
    }
  }, 60_000);
});
