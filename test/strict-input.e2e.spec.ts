// Strict input, tried as a hostile client would: the findings of the review one by one (fields
// named like Object.prototype members, null taken as absent, bodies that are not UTF-8, an
// over-long path segment), then a fuzz of 2,000+ malformed requests over every write route with a
// fixed seed, and of 1,000 malformed gRPC messages to every gRPC write method. Every answer is a 4xx with a documented code in the {code, message, details} shape,
// nothing hangs, and the store does not move.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { PROTO } from './support/grpc-client.js';
import { seeded } from './support/random.js';
import { ROOT, Service, TEST_CALLERS, discharge, freePort, http, removeDir, startService, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;
const auth = writeAuthFile([]);
let service: Service;
let grpcPort: number;

beforeAll(async () => {
  grpcPort = await freePort();
  service = await startService({ args: ['--auth', auth.file, '--grpc-port', String(grpcPort)] });
  // a settled visit and a person with a category, so reversal and person routes reach their validation
  expect((await http(service.url, 'POST', '/v1/settlements', discharge({ visitId: 'strict-1' }))).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await service?.stop();
  if (service) removeDir(service.dataDir);
  removeDir(auth.dir);
});

const position = async () => (await http(service.url, 'GET', '/ready')).body.position as number;

/** Every code the README's error table documents. */
const DOCUMENTED = new Set([...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]!));

/** Raw bytes to a route, as the caller the route needs. */
async function raw(method: string, path: string, body: Buffer | string, contentType = 'application/json') {
  const token = path.startsWith('/v1/settlements') ? TEST_CALLERS.hospitals['h-county']! : TEST_CALLERS.admin;
  const r = await fetch(`${service.url}${path}`, {
    method,
    headers: { 'content-type': contentType, authorization: `Bearer ${token}` },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await r.text();
  let parsed: Obj | string = text;
  try {
    parsed = JSON.parse(text) as Obj;
  } catch {
    // kept as text: the test then fails on its shape
  }
  return { status: r.status, body: parsed as Obj };
}

describe('strict input', () => {
  it('refuses fields named like Object.prototype members on every validated route, recording nothing', async () => {
    const before = await position();
    const routes: Array<[string, Obj]> = [
      ['/v1/settlements', discharge({ visitId: 'strict-proto' })],
      ['/v1/settlements/preview', discharge({ visitId: 'strict-proto' })],
      ['/v1/persons/p-strict/categories', { category: 'dibao', validFrom: '2012-01-01' }],
      [
        '/v1/funds/allocations',
        { region: '360827', year: 2012, fund: '610100', allocationId: 'a-strict', amountFen: 100, source: 'central' },
      ],
    ];
    for (const [path, body] of routes) {
      for (const name of ['hasOwnProperty', 'isPrototypeOf', '__defineGetter__', 'toString', 'valueOf']) {
        const r = await http(service.url, 'POST', path, { ...body, [name]: 'x' });
        const fields = (r.body.details as Obj[]).map((d) => d.field);
        expect([path, name, r.status, r.body.code, fields.includes(name)]).toEqual([path, name, 400, 'VALIDATION_FAILED', true]);
      }
    }
    expect(await position()).toBe(before);
  });

  it('refuses null as a value (it is not "absent"): an amount, an end date', async () => {
    const before = await position();
    const settle = await http(service.url, 'POST', '/v1/settlements', { ...discharge({ visitId: 'strict-null' }), preSelfPayFen: null });
    expect([settle.status, settle.body.code, settle.body.details]).toEqual([
      400,
      'VALIDATION_FAILED',
      [{ field: 'preSelfPayFen', problem: 'must not be null: leave the field out instead' }],
    ]);
    const person = await http(service.url, 'POST', '/v1/persons/p-strict/categories', {
      category: 'dibao',
      validFrom: '2012-01-01',
      validTo: null,
    });
    expect([person.status, person.body.details?.[0]?.field]).toEqual([400, 'validTo']);
    expect(await position()).toBe(before);
  });

  it('refuses a body that is not valid UTF-8 instead of storing replacement characters', async () => {
    const before = await position();
    const body = Buffer.concat([
      Buffer.from(JSON.stringify(discharge({ visitId: 'strict-utf8' })).slice(0, -1)),
      Buffer.from(',"x":"\xff\xfe"}', 'latin1'),
    ]);
    const r = await raw('POST', '/v1/settlements', body);
    expect([r.status, r.body.code, r.body.details]).toEqual([
      400,
      'VALIDATION_FAILED',
      [{ field: '(body)', problem: 'the body is not valid UTF-8' }],
    ]);
    expect(await position()).toBe(before);
  });

  it('answers an over-long path segment in the service’s error shape, without echoing the URL', async () => {
    const long = 'x'.repeat(150);
    const r = await http(service.url, 'GET', `/v1/settlements/h-county/${long}`);
    expect([r.status, r.body.code, r.body.details?.[0]?.field]).toEqual([400, 'VALIDATION_FAILED', '(path)']);
    expect(JSON.stringify(r.body)).not.toContain(long);
  });

  it('answers 1,000 malformed gRPC messages to Settle, Preview and Reverse (fixed seed) with a documented code, never INTERNAL or a hang, and changes nothing', async () => {
    const random = seeded(20_261_208);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const definition = protoLoader.loadSync(PROTO, { longs: Number, defaults: true, oneofs: false }) as unknown as Record<
      string,
      Record<string, { path: string; requestSerialize(value: Obj): Buffer }>
    >;
    const methods = definition['medaid.settlement.v1.SettlementService']!;
    // Bases whose every valid variant records nothing: strict-1 is settled (a changed re-post conflicts), no-such-visit is not.
    const settled = discharge({ visitId: 'strict-1' });
    const bases: Array<[string, Obj]> = [
      ['Settle', settled],
      ['Preview', settled],
      ['Reverse', { hospitalId: 'h-county', visitId: 'no-such-visit', reason: 'fuzz' }],
    ];
    const NEVER_TEXT = ['', ' ', 'x'.repeat(600), '\u0000', 'a\u0007b', '\ud800'];
    const NEVER_NUMBER = [-1, -(2 ** 40), 2 ** 53 + 2];
    const varint = (n: number) => {
      const out: number[] = [];
      for (; n > 127; n = Math.floor(n / 128)) out.push((n % 128) | 128);
      out.push(n);
      return Buffer.from(out);
    };
    const mutate = (method: string, body: Obj): Buffer => {
      const encode = (value: Obj) => methods[method]!.requestSerialize(value);
      switch (Math.floor(random() * 5)) {
        case 0: // random bytes
          return Buffer.from(Array.from({ length: 1 + Math.floor(random() * 200) }, () => Math.floor(random() * 256)));
        case 1: {
          // cut inside the first fields (never where the rest would read as defaults)
          const bytes = encode(body);
          return bytes.subarray(0, 1 + Math.floor(random() * Math.min(40, bytes.length - 2)));
        }
        case 2: // an unknown field appended, or a known field with the wrong wire type
          return random() < 0.5
            ? Buffer.concat([encode(body), varint((90 + Math.floor(random() * 900)) * 8), varint(Math.floor(random() * 1e6))])
            : Buffer.concat([varint(1 * 8 + 0), varint(7), encode(body)]);
        default: {
          // a field set to a value it never takes
          const copy: Obj = { ...body };
          const key = pick(Object.keys(copy).filter((k) => typeof copy[k] === 'string' || typeof copy[k] === 'number'));
          copy[key] = typeof copy[key] === 'number' ? pick(NEVER_NUMBER) : pick(NEVER_TEXT);
          return encode(copy);
        }
      }
    };
    const client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
    const send = (path: string, bytes: Buffer) =>
      new Promise<{ status: grpc.status; code: string | undefined }>((resolve) => {
        const metadata = new grpc.Metadata();
        metadata.set('authorization', `Bearer ${TEST_CALLERS.hospitals['h-county']}`);
        client.makeUnaryRequest(
          path,
          (b: Buffer) => b,
          (b: Buffer) => b,
          bytes,
          metadata,
          { deadline: Date.now() + 10_000 },
          (error: grpc.ServiceError | null) =>
            resolve({ status: error?.code ?? grpc.status.OK, code: error?.metadata?.get('medaid-error-code')[0]?.toString() }),
        );
      });
    const before = await position();
    const wrong: string[] = [];
    // (a hospitalId mutated away from the caller's own is refused by access control first: PERMISSION_DENIED, as HTTP's 403)
    const refusals = new Set([
      grpc.status.INVALID_ARGUMENT,
      grpc.status.FAILED_PRECONDITION,
      grpc.status.ABORTED,
      grpc.status.NOT_FOUND,
      grpc.status.PERMISSION_DENIED,
    ]);
    try {
      for (let i = 0; i < 1_000; i++) {
        const [method, body] = pick(bases);
        const bytes = mutate(method, body);
        const r = await send(methods[method]!.path, bytes);
        if (!refusals.has(r.status) || r.code === undefined || !DOCUMENTED.has(r.code))
          wrong.push(`#${i} ${method}: ${grpc.status[r.status]} ${r.code} for ${bytes.toString('hex').slice(0, 80)}`);
      }
    } finally {
      client.close();
    }
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(await position()).toBe(before);
  }, 300_000);

  it('answers 2,000 malformed requests over every write route (fixed seed) with a documented 4xx, never a 5xx or a hang, and changes nothing', async () => {
    const random = seeded(20_261_207);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const valid: Array<[string, Obj]> = [
      ['/v1/settlements', discharge({ visitId: 'fuzz-1' })],
      ['/v1/settlements/preview', discharge({ visitId: 'fuzz-1' })],
      ['/v1/settlements/h-county/strict-1/reversal', { reason: 'fuzz' }],
      ['/v1/persons/p-fuzz/categories', { category: 'dibao', validFrom: '2012-01-01' }],
      ['/v1/persons/p-fuzz/category-revocations', { category: 'dibao', from: '2012-06-01' }],
      ['/v1/persons/p-fuzz/approvals', { category: 'dibao', validFrom: '2012-01-01', validTo: '2012-12-31', approvedBy: 'x' }],
      ['/v1/persons/p-fuzz/death', { dateOfDeath: '2012-05-01' }],
      [
        '/v1/funds/allocations',
        { region: '360827', year: 2012, fund: '610100', allocationId: 'a-fuzz', amountFen: 100, source: 'central' },
      ],
      ['/v1/funds/enrolment-subsidies', { region: '360827', year: 2012 }],
      ['/v1/adjustments', { settlementId: 'h-county/strict-1/1', layerId: 'aid', deltaFen: 100, reason: 'fuzz' }],
      ['/v1/adjustments/00000000-0000-0000-0000-000000000000/approval', {}],
      ['/v1/policies', JSON.parse(readFileSync(join(ROOT, 'apps/medaid/assets/demo-policy.json'), 'utf8')) as Obj],
      [
        '/v1/simulations',
        { year: 2013, drafts: [JSON.parse(readFileSync(join(ROOT, 'apps/medaid/assets/demo-policy.json'), 'utf8')) as Obj] },
      ],
    ];
    // Values no field of any of these routes takes.
    const NEVER = [null, true, false, { '!': 1 }, [[[]]], -1.5, 'x'.repeat(600), '\u0000', 1e300];
    const PROTO = ['hasOwnProperty', 'isPrototypeOf', '__defineGetter__', 'propertyIsEnumerable', 'toLocaleString', 'constructor'];
    const mutate = (body: Obj): Buffer | string => {
      const copy: Obj = { ...body };
      switch (Math.floor(random() * 7)) {
        case 0: // a field of the route set to a value it never takes
        case 1: {
          const keys = Object.keys(copy);
          copy[pick(keys)] = pick(NEVER);
          return JSON.stringify(copy);
        }
        case 2: // a field named like a prototype member, or a random unknown one
          copy[random() < 0.5 ? pick(PROTO) : `f${Math.floor(random() * 1e6)}`] = pick([1, 'x', null, {}]);
          return JSON.stringify(copy);
        case 3: // JSON that is not an object
          return JSON.stringify(pick([[copy], 'text', 42, null, true]));
        case 4: {
          // truncated JSON (never the whole of it)
          const text = JSON.stringify(copy);
          return text.slice(0, Math.floor(random() * Math.min(40, text.length - 1)));
        }
        case 5: // bytes that are not UTF-8
          return Buffer.from(Array.from({ length: 1 + Math.floor(random() * 64) }, () => 0x80 + Math.floor(random() * 0x80)));
        default: // deep nesting
          return `${'['.repeat(500)}${']'.repeat(500)}`;
      }
    };
    const before = await position();
    const wrong: string[] = [];
    const N = 2_100;
    for (let i = 0; i < N; i++) {
      const [path, body] = pick(valid);
      const payload = mutate(body);
      const r = await raw('POST', path, payload);
      const shaped = typeof r.body === 'object' && r.body !== null && typeof r.body.message === 'string' && Array.isArray(r.body.details);
      if (r.status < 400 || r.status >= 500 || !shaped || !DOCUMENTED.has(r.body.code))
        wrong.push(
          `#${i} ${path}: ${r.status} ${typeof r.body === 'object' ? r.body.code : String(r.body).slice(0, 80)} for ${String(payload).slice(0, 120)}`,
        );
    }
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(await position()).toBe(before);
  }, 300_000);
});
