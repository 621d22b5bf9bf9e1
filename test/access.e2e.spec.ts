// Access control end to end, generated from the one table of rules (apps/medaid/src/http/access.ts):
// every HTTP route and every gRPC method, called as every kind of caller (anonymous, an unknown
// token, an administrator, an auditor, the visit's hospital, another hospital acting on that
// visit — each by a token of the file and by an identity provider's JWT — and an expired and a
// forged JWT), answers what the table says; a refused call records nothing. The table is checked
// against the routes the service really serves (its OpenAPI document), both ways. And: without
// credentials the service stays on loopback unless told --insecure.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { spawnSync } from 'node:child_process';
import { ACCESS_RULES } from '../apps/medaid/src/http/access.js';
import { HTTP_KEYS as httpKeys, VISIT, callOf, expected } from './support/access-matrix.js';
import type { Caller } from './support/access-matrix.js';
import { connect } from './support/grpc-client.js';
import type { Client } from './support/grpc-client.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BIN,
  ROOT,
  Service,
  anonymous,
  discharge,
  freePort,
  http,
  removeDir,
  startService,
  tempDir,
  writeAuthFile,
} from './support/service.js';
import { AUDIENCE, ISSUER, makeIdentityProvider } from './support/tls.js';

type Obj = Record<string, any>;
const TOKENS = {
  admin: 'access-admin-token-0123456789abcdef',
  auditor: 'access-auditor-token-0123456789abcdef',
  ha: 'access-hospital-a-token-0123456789abc',
  hb: 'access-hospital-b-token-0123456789abc',
};
let auth: { dir: string; file: string };

const CALLERS: Caller[] = [
  { name: 'anonymous', headers: anonymous(), actor: { kind: 'anonymous', id: 'anonymous' } },
  { name: 'unknown token', headers: { authorization: 'Bearer not-a-token-of-this-service-at-all' }, actor: 'invalid' },
  { name: 'admin', headers: { authorization: `Bearer ${TOKENS.admin}` }, actor: { kind: 'admin', id: 'office-1' } },
  { name: 'auditor', headers: { authorization: `Bearer ${TOKENS.auditor}` }, actor: { kind: 'auditor', id: 'audit-1' } },
  { name: 'hospital h-a (its own visit)', headers: { authorization: `Bearer ${TOKENS.ha}` }, actor: { kind: 'hospital', id: 'h-a' } },
  { name: 'hospital h-b (on h-a’s visit)', headers: { authorization: `Bearer ${TOKENS.hb}` }, actor: { kind: 'hospital', id: 'h-b' } },
];

let service: Service;
let client: Client;
let grpcPort: number;

beforeAll(async () => {
  // The same callers again with JWTs of an identity provider (the service reads its JWKS file),
  // and tokens it must refuse on every route: expired, and signed by a key not in the JWKS.
  const dir = tempDir('medaid-auth-');
  const idp = await makeIdentityProvider();
  const forger = await makeIdentityProvider();
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(idp.jwks));
  auth = writeAuthFile(
    [
      { token: TOKENS.admin, kind: 'admin', id: 'office-1' },
      { token: TOKENS.auditor, kind: 'auditor', id: 'audit-1' },
      { token: TOKENS.ha, kind: 'hospital', id: 'h-a' },
      { token: TOKENS.hb, kind: 'hospital', id: 'h-b' },
    ],
    { jwt: { jwks: 'jwks.json', issuer: ISSUER, audience: AUDIENCE, clockToleranceSeconds: 0 } },
    dir,
  );
  const jwt = (token: string) => ({ authorization: `Bearer ${token}` });
  CALLERS.push(
    {
      name: 'admin (JWT)',
      headers: jwt(await idp.sign({ medaid_role: 'admin', sub: 'office-2' })),
      actor: { kind: 'admin', id: 'office-2' },
    },
    {
      name: 'auditor (JWT)',
      headers: jwt(await idp.sign({ medaid_role: 'auditor', sub: 'audit-2' })),
      actor: { kind: 'auditor', id: 'audit-2' },
    },
    {
      name: 'hospital h-a (JWT, its own visit)',
      headers: jwt(await idp.sign({ medaid_role: 'hospital', medaid_hospital: 'h-a', sub: 'his-a' })),
      actor: { kind: 'hospital', id: 'h-a' },
    },
    {
      name: 'hospital h-b (JWT, on h-a’s visit)',
      headers: jwt(await idp.sign({ medaid_role: 'hospital', medaid_hospital: 'h-b', sub: 'his-b' })),
      actor: { kind: 'hospital', id: 'h-b' },
    },
    {
      name: 'expired JWT',
      headers: jwt(await idp.sign({ medaid_role: 'admin', sub: 'office-2' }, { expiresIn: Math.floor(Date.now() / 1000) - 5 })),
      actor: 'invalid',
    },
    { name: 'forged JWT', headers: jwt(await forger.sign({ medaid_role: 'admin', sub: 'office-2' })), actor: 'invalid' },
  );
  grpcPort = await freePort();
  service = await startService({ args: ['--auth', auth.file, '--grpc-port', String(grpcPort)] });
  client = connect(grpcPort);
}, 60_000);

afterAll(async () => {
  client?.close();
  await service?.stop();
  if (service) removeDir(service.dataDir);
  removeDir(auth.dir);
});

const position = async () => (await http(service.url, 'GET', '/ready')).body.position as number;

describe('access control, route by route and caller by caller', () => {
  it('declares a rule for every route the service serves, and serves every route the table declares', async () => {
    const doc = await http(service.url, 'GET', '/docs-json', undefined, { authorization: `Bearer ${TOKENS.auditor}` });
    expect(doc.status).toBe(200);
    const served = Object.entries(doc.body.paths as Record<string, Obj>).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path.replace(/\{([A-Za-z]+)\}/g, ':$1')}`),
    );
    expect(served.filter((k) => ACCESS_RULES[k] === undefined)).toEqual([]);
    // (the OpenAPI pages themselves are not in the document they serve)
    expect(httpKeys.filter((k) => !served.includes(k) && k !== 'GET /docs').sort()).toEqual([]);
    expect((await http(service.url, 'GET', '/docs', undefined, anonymous())).status).toBe(401);
  });

  it('over HTTP: refuses each caller the table refuses with its 401 or 403, and records nothing for any refused call', async () => {
    const before = await position();
    const wrong: string[] = [];
    let refused = 0;
    for (const key of httpKeys) {
      const { method, path, body } = callOf(key);
      for (const caller of CALLERS) {
        const want = expected(key, caller);
        if (want === 'allowed') continue;
        refused++;
        const r = await http(service.url, method, path, body, caller.headers);
        const got = `${r.status} ${r.body?.code}`;
        if (got !== want || !Array.isArray(r.body?.details)) wrong.push(`${key} as ${caller.name}: ${got}, expected ${want}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(refused).toBeGreaterThan(100);
    // the role is checked before the body is read: a caller without a token learns nothing from a malformed one
    const malformed = await http(service.url, 'POST', '/v1/settlements', '{"hospitalId": ', anonymous());
    expect([malformed.status, malformed.body.code]).toEqual([401, 'UNAUTHENTICATED']);
    expect(await position()).toBe(before);
  });

  it('over HTTP: lets each caller the table allows through (the answer is then the route’s own, never 401 or 403)', async () => {
    const wrong: string[] = [];
    for (const key of httpKeys) {
      const { method, path, body } = callOf(key);
      for (const caller of CALLERS) {
        if (expected(key, caller) !== 'allowed') continue;
        const r = await http(service.url, method, path, body, caller.headers);
        if (r.status === 401 || r.status === 403) wrong.push(`${key} as ${caller.name}: ${r.status} ${r.body?.code}`);
      }
    }
    expect(wrong).toEqual([]);
    // the hospital's own settlement went through and is readable by it, the office and the auditor — not by h-b
    const read = async (token: string) =>
      (await http(service.url, 'GET', '/v1/settlements/h-a/acc-1', undefined, { authorization: `Bearer ${token}` })).status;
    expect([await read(TOKENS.ha), await read(TOKENS.admin), await read(TOKENS.auditor), await read(TOKENS.hb)]).toEqual([
      200, 200, 200, 403,
    ]);
  });

  it('over gRPC: the same rules, from the authorization metadata; an unknown token is UNAUTHENTICATED, not anonymous', async () => {
    const requests: Record<string, Obj> = {
      Settle: discharge({ hospitalId: 'h-a', visitId: 'acc-g', personId: 'p-acc' }),
      Preview: VISIT,
      Reverse: { hospitalId: 'h-a', visitId: 'acc-none', reason: 'access test' },
      Get: { hospitalId: 'h-a', visitId: 'acc-1' },
    };
    const before = await position();
    const wrong: string[] = [];
    for (const method of ['Preview', 'Reverse', 'Get', 'Settle'] as const) {
      for (const caller of CALLERS) {
        const metadata = new grpc.Metadata();
        if (caller.headers.authorization !== undefined) metadata.set('authorization', caller.headers.authorization);
        const want = expected(`grpc SettlementService/${method}`, caller);
        const r = await client.call(method, requests[method]!, metadata);
        const got = r.ok ? 'allowed' : r.code === 'UNAUTHENTICATED' || r.code === 'FORBIDDEN' ? `${r.code}` : 'allowed';
        const wantCode = want === 'allowed' ? 'allowed' : want.split(' ')[1];
        if (got !== wantCode)
          wrong.push(`${method} as ${caller.name}: ${r.ok ? 'ok' : `${r.code} (${grpc.status[r.status]})`}, expected ${want}`);
        if (!r.ok && r.code === 'UNAUTHENTICATED') expect(r.status).toBe(grpc.status.UNAUTHENTICATED);
        if (!r.ok && r.code === 'FORBIDDEN') expect(r.status).toBe(grpc.status.PERMISSION_DENIED);
      }
    }
    expect(wrong).toEqual([]);
    // only h-a's own Settle recorded something (one settlement of acc-g)
    const after = await http(service.url, 'GET', '/v1/settlements/h-a/acc-g', undefined, { authorization: `Bearer ${TOKENS.auditor}` });
    expect([after.status, after.body.history?.length]).toEqual([200, 1]);
    expect(await position()).toBeGreaterThan(before);
  });
});

describe('secure by default', () => {
  it('without credentials, refuses to listen beyond loopback, and with --insecure starts with a warning', async () => {
    const refused = spawnSync(process.execPath, [BIN, 'serve', '--data', '/nonexistent-medaid', '--host', '0.0.0.0', '--port', '0'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('refusing to listen on 0.0.0.0 without credentials');
    const open = await startService({ args: ['--host', '0.0.0.0', '--insecure'] });
    try {
      expect(open.stderr()).toContain('INSECURE');
    } finally {
      await open.stop();
      removeDir(open.dataDir);
    }
    const trial = await startService({});
    try {
      expect(trial.stderr()).toContain('running OPEN for a local trial');
    } finally {
      await trial.stop();
      removeDir(trial.dataDir);
    }
  }, 60_000);
});

describe('abuse limits', () => {
  it('limits each caller per minute with 429 RATE_LIMITED and Retry-After (probes not counted), and sends security headers on every answer', async () => {
    const limited = await startService({ env: { MEDAID_RATE_LIMIT_PER_MINUTE: '5' } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await http(limited.url, 'GET', '/v1/policies')).status);
      for (let i = 0; i < 5; i++) statuses.push((await http(limited.url, 'GET', '/health')).status);
      const over = await http(limited.url, 'GET', '/v1/policies');
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 200]);
      expect([over.status, over.body.code, Array.isArray(over.body.details), Number(over.headers.get('retry-after')) > 0]).toEqual([
        429,
        'RATE_LIMITED',
        true,
        true,
      ]);
      for (const answer of [over, await http(limited.url, 'GET', '/health'), await http(limited.url, 'GET', '/v1/nothing')]) {
        expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
        expect(answer.headers.get('content-security-policy')).toContain("object-src 'none'");
        expect(answer.headers.get('strict-transport-security')).toContain('max-age=');
      }
    } finally {
      await limited.stop();
      removeDir(limited.dataDir);
    }
  }, 60_000);
});
