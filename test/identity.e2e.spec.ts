// Identity from where offices have it, end to end on real processes: the service on HTTPS and gRPC
// over TLS, hospitals identified by client certificates (made here with openssl: a client CA, a
// rogue CA), an identity provider's JWTs checked against the JWKS it serves over HTTP. Every HTTP
// route × every certificate caller answers what the access table says; a wrong certificate is
// refused; "required" refuses a connection without one in the handshake.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { HTTP_KEYS, VISIT, callOf, expected } from './support/access-matrix.js';
import type { Caller } from './support/access-matrix.js';
import { connect } from './support/grpc-client.js';
import type { Client } from './support/grpc-client.js';
import { Service, discharge, freePort, removeDir, startService, tempDir, writeAuthFile } from './support/service.js';
import { AUDIENCE, ISSUER, httpsCall, makeIdentityProvider, makePki } from './support/tls.js';
import type { IdentityProvider, Pem, Pki } from './support/tls.js';

type Obj = Record<string, any>;
let pki: Pki;
let idp: IdentityProvider;
let jwksServer: Server;
let jwksFetches = 0;
let service: Service;
let grpcPort: number;
let auth: { dir: string; file: string };
const pems: Record<string, Pem> = {};

interface CertCaller extends Caller {
  pem?: Pem;
}
const callers: CertCaller[] = [];

const tlsSection = (mode: 'optional' | 'required') => ({
  cert: pki.serverCertFile,
  key: pki.serverKeyFile,
  clientCa: pki.caFile,
  clientCertificates: mode,
  clients: [
    { subject: { CN: 'his.h-a', O: 'medaid test' }, kind: 'hospital', id: 'h-a' },
    { subject: { CN: 'his.h-b' }, kind: 'hospital', id: 'h-b' },
    { subject: { CN: 'office.audit' }, kind: 'auditor', id: 'audit-cert' },
  ],
});

const call = (caller: CertCaller, key: string) => {
  const { method, path, body } = callOf(key);
  return httpsCall(service.url, method, path, { ca: pki.ca, pem: caller.pem, body, headers: caller.headers });
};

/** A gRPC client over TLS that trusts the server and presents `pem`, if any. */
const grpcClient = (pem?: Pem): Client =>
  connect(grpcPort, undefined, grpc.credentials.createSsl(pki.ca, pem?.key ?? null, pem?.cert ?? null));

beforeAll(async () => {
  const dir = tempDir('medaid-pki-');
  pki = makePki(dir);
  pems.ha = pki.client('his.h-a');
  pems.hb = pki.client('his.h-b');
  pems.auditor = pki.client('office.audit');
  pems.unmapped = pki.client('his.unknown');
  pems.rogue = pki.rogue('his.h-a'); // the right name, from a CA the service does not trust
  idp = await makeIdentityProvider();
  jwksServer = createServer((_req, res) => {
    jwksFetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(idp.jwks));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/jwks.json`;
  auth = writeAuthFile([], { jwt: { jwks: jwksUrl, issuer: ISSUER, audience: AUDIENCE }, tls: tlsSection('optional') });
  const bearer = async (claims: Obj) => ({ authorization: `Bearer ${await idp.sign(claims)}` });
  callers.push(
    { name: 'no certificate, no token', headers: {}, actor: { kind: 'anonymous', id: 'anonymous' } },
    { name: 'certificate of h-a (its own visit)', headers: {}, pem: pems.ha, actor: { kind: 'hospital', id: 'h-a' } },
    { name: 'certificate of h-b (on h-a’s visit)', headers: {}, pem: pems.hb, actor: { kind: 'hospital', id: 'h-b' } },
    { name: 'certificate of the auditor', headers: {}, pem: pems.auditor, actor: { kind: 'auditor', id: 'audit-cert' } },
    { name: 'certificate of no configured client', headers: {}, pem: pems.unmapped, actor: 'invalid' },
    { name: 'wrong certificate (another CA)', headers: {}, pem: pems.rogue, actor: 'invalid' },
    {
      name: 'wrong certificate with a valid admin JWT',
      headers: await bearer({ medaid_role: 'admin', sub: 'office-9' }),
      pem: pems.rogue,
      actor: 'invalid',
    },
    {
      name: 'admin JWT over TLS',
      headers: await bearer({ medaid_role: 'admin', sub: 'office-9' }),
      actor: { kind: 'admin', id: 'office-9' },
    },
    {
      name: 'h-b JWT with h-a’s certificate (the token speaks)',
      headers: await bearer({ medaid_role: 'hospital', medaid_hospital: 'h-b', sub: 'his-b' }),
      pem: pems.ha,
      actor: { kind: 'hospital', id: 'h-b' },
    },
  );
  grpcPort = await freePort();
  service = await startService({
    args: ['--auth', auth.file, '--grpc-port', String(grpcPort)],
    tls: { ca: pki.ca },
  });
}, 120_000);

afterAll(async () => {
  await service?.stop();
  if (service) removeDir(service.dataDir);
  jwksServer?.close();
  if (auth) removeDir(auth.dir);
  if (pki) removeDir(pki.dir);
});

const position = async () => (await httpsCall(service.url, 'GET', '/ready', { ca: pki.ca })).body.position as number;

describe('mutual TLS and JWTs, route by route', () => {
  it('serves HTTPS only: a plain HTTP request gets no answer of the service', async () => {
    await expect(fetch(service.url.replace('https:', 'http:') + '/health')).rejects.toThrow();
    const health = await httpsCall(service.url, 'GET', '/health', { ca: pki.ca });
    expect(health.status).toBe(200);
  });

  it('over HTTPS: each certificate (or JWT) caller gets what the access table says on every route', async () => {
    const before = await position();
    const wrong: string[] = [];
    let refused = 0;
    let allowed = 0;
    for (const key of HTTP_KEYS) {
      for (const caller of callers) {
        const want = expected(key, caller);
        const r = await call(caller, key);
        const got = r.status === 401 || r.status === 403 ? `${r.status} ${r.body?.code}` : 'allowed';
        if (want === 'allowed') allowed++;
        else refused++;
        if (want !== 'allowed' && got === want) continue; // refused as expected
        if (want === 'allowed' && got === 'allowed') continue;
        wrong.push(`${key} as ${caller.name}: ${r.status} ${r.body?.code}, expected ${want}`);
      }
    }
    expect(wrong).toEqual([]);
    expect([refused > 100, allowed > 30]).toEqual([true, true]);
    // the settlement went through for h-a's certificate (or the h-b JWT was refused on h-a's visit)
    const read = await call({ name: 'ha', headers: {}, pem: pems.ha, actor: 'invalid' }, 'GET /v1/settlements/:hospitalId/:visitId');
    expect([read.status, read.body.current?.settlement?.hospitalId ?? read.body.current?.hospitalId]).toEqual([200, 'h-a']);
    expect(await position()).toBeGreaterThan(before);
  });

  it('names why a certificate is refused, and fetched the JWKS from its URL', async () => {
    const rogue = await httpsCall(service.url, 'GET', '/v1/policies', { ca: pki.ca, pem: pems.rogue });
    expect([rogue.status, rogue.body.code, rogue.body.message]).toEqual([401, 'UNAUTHENTICATED', expect.stringContaining('not trusted')]);
    const unmapped = await httpsCall(service.url, 'GET', '/v1/policies', { ca: pki.ca, pem: pems.unmapped });
    expect(unmapped.body.message).toContain('not one of the configured clients');
    expect(jwksFetches).toBeGreaterThanOrEqual(1);
  });

  it('over gRPC with TLS: a hospital’s certificate settles its own visit only; a wrong certificate is not an identity', async () => {
    const own = grpcClient(pems.ha);
    const other = grpcClient(pems.hb);
    const rogue = grpcClient(pems.rogue);
    const none = grpcClient();
    try {
      const request = discharge({ hospitalId: 'h-a', visitId: 'tls-g1', personId: 'p-tls' });
      const settled = await own.call('Settle', request);
      expect(settled.ok).toBe(true);
      const foreign = await other.call('Get', { hospitalId: 'h-a', visitId: 'tls-g1' });
      expect(foreign.ok ? 'ok' : foreign.code).toBe('FORBIDDEN');
      expect((await other.call('Get', { hospitalId: 'h-b', visitId: 'none' })).ok ? 'ok' : 'refused').toBe('refused');
      for (const client of [rogue, none]) {
        const r = await client.call('Get', { hospitalId: 'h-a', visitId: 'tls-g1' });
        expect(r.ok ? 'ok' : [r.code, r.status]).toEqual(['UNAUTHENTICATED', grpc.status.UNAUTHENTICATED]);
      }
      // a JWT in the metadata, over TLS without a certificate
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${await idp.sign({ medaid_role: 'auditor', sub: 'audit-9' })}`);
      const read = await none.call('Get', { hospitalId: 'h-a', visitId: 'tls-g1' }, metadata);
      expect(read.ok).toBe(true);
      const expired = new grpc.Metadata();
      expired.set(
        'authorization',
        `Bearer ${await idp.sign({ medaid_role: 'auditor', sub: 'a' }, { expiresIn: Math.floor(Date.now() / 1000) - 60 })}`,
      );
      const late = await none.call('Get', { hospitalId: 'h-a', visitId: 'tls-g1' }, expired);
      expect(late.ok ? 'ok' : [late.code, late.message]).toEqual(['UNAUTHENTICATED', expect.stringContaining('expired')]);
    } finally {
      for (const c of [own, other, rogue, none]) c.close();
    }
  });
});

describe('"clientCertificates": "required"', () => {
  it('refuses a connection without a trusted certificate in the handshake, on HTTPS and gRPC; a trusted one is served', async () => {
    const strict = writeAuthFile([], { tls: tlsSection('required') });
    const port = await freePort();
    const strictService = await startService({
      args: ['--auth', strict.file, '--grpc-port', String(port)],
      tls: { ca: pki.ca, pem: pems.ha },
    });
    try {
      await expect(httpsCall(strictService.url, 'GET', '/health', { ca: pki.ca })).rejects.toThrow();
      await expect(httpsCall(strictService.url, 'GET', '/health', { ca: pki.ca, pem: pems.rogue })).rejects.toThrow();
      const ok = await httpsCall(strictService.url, 'POST', '/v1/settlements/preview', { ca: pki.ca, pem: pems.ha, body: VISIT });
      expect(ok.status).toBe(200);
      const bare = connect(port, undefined, grpc.credentials.createSsl(pki.ca));
      const withCert = connect(port, undefined, grpc.credentials.createSsl(pki.ca, pems.ha!.key, pems.ha!.cert));
      try {
        const refused = await bare.call('Preview', VISIT);
        expect(refused.ok ? 'ok' : refused.status).toBe(grpc.status.UNAVAILABLE);
        expect((await withCert.call('Preview', VISIT)).ok).toBe(true);
      } finally {
        bare.close();
        withCert.close();
      }
    } finally {
      await strictService.stop();
      removeDir(strictService.dataDir);
      removeDir(strict.dir);
    }
  }, 60_000);
});
