// (k) What access control and the record of reads cost (issue 14), each against a baseline run
// side by side in this run, on the same build:
//   - HTTP settlements with credentials (every hospital's token from --auth; then every hospital's
//     JWT, ES256, checked against the JWKS) against the same service started open (no --auth);
//   - HTTP settlements while auditors read settlements at a fixed rate (every read recorded in the
//     access log) against settlements alone, same service;
//   - the access log itself, in process: entries recorded (hash-chained, one transaction per turn)
//     against the same rows inserted into SQLite without a chain.
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { NODE_FLAGS, ROOT, dischargeFor, dist, freePort, pool, removeDir, scaled, setting, startServer, tempDir } from './common.js';
import { measure, post, seedPersons } from './http.js';

const BIN = join(ROOT, 'bin/medaid.js');
const LEVELS = ['township', 'county', 'city', 'province', 'out_of_province'];
/** Every hospitalId dischargeFor() uses. */
const HOSPITALS = LEVELS.flatMap((level) => Array.from({ length: 37 }, (_, i) => `h-${level}-${i}`));
const ADMIN = 'bench-admin-token-0123456789abcdef';
const AUDITOR = 'bench-auditor-token-0123456789abcdef';
const ISSUER = 'https://idp.bench.example';
/** Reads per second while settling (BENCH_READ_RATE). */
const READ_RATE = setting('BENCH_READ_RATE', 1_000);

async function credentials(dir) {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'b1', alg: 'ES256' }] }));
  const tokens = Object.fromEntries(HOSPITALS.map((h) => [h, `bench-${h}-token-0123456789abcdef`]));
  writeFileSync(
    join(dir, 'auth.json'),
    JSON.stringify({
      tokens: [
        { token: ADMIN, kind: 'admin', id: 'bench-admin' },
        { token: AUDITOR, kind: 'auditor', id: 'bench-auditor' },
        ...HOSPITALS.map((h) => ({ token: tokens[h], kind: 'hospital', id: h })),
      ],
      jwt: { jwks: 'jwks.json', issuer: ISSUER, audience: 'medaid' },
    }),
  );
  const jwts = {};
  for (const h of HOSPITALS)
    jwts[h] = `Bearer ${await new SignJWT({ medaid_role: 'hospital', medaid_hospital: h })
      .setProtectedHeader({ alg: 'ES256', kid: 'b1' })
      .setIssuer(ISSUER)
      .setAudience('medaid')
      .setExpirationTime('2h')
      .sign(privateKey)}`;
  return { tokens: Object.fromEntries(HOSPITALS.map((h) => [h, `Bearer ${tokens[h]}`])), jwts };
}

async function serve(dir, name, args) {
  const port = await freePort();
  const server = await startServer(
    name,
    [...NODE_FLAGS, BIN, 'serve', '--data', join(dir, name), '--port', String(port), '--quiet', ...args],
    `http://127.0.0.1:${port}/ready`,
  );
  return { port, server, base: `http://127.0.0.1:${port}` };
}

/** The access log in process: N entries in turns of `turn` against the same rows in plain SQLite. */
async function accessLogAlone(dir, n, turn) {
  const { AccessLog } = await import(dist('apps/medaid/src/access-log/access-log.js'));
  const read = (i) => ({
    atMs: 1_700_000_000_000 + i,
    actorKind: 'auditor',
    actorId: 'bench-auditor',
    action: 'GET /v1/settlements/:hospitalId/:visitId',
    personId: `p${String(i % 2000).padStart(6, '0')}`,
    subject: `settlement h-county-${i % 37}/read${i}`,
    from: '127.0.0.1',
    requestId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  });
  const log = AccessLog.open(join(dir, 'access-log.sqlite'));
  let t = performance.now();
  for (let i = 0; i < n; i += turn) {
    for (let j = i; j < Math.min(n, i + turn); j++) log.record(read(j));
    log.flush();
  }
  const logged = n / ((performance.now() - t) / 1000);
  log.close?.();
  const db = new Database(join(dir, 'plain.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE t (seq INTEGER PRIMARY KEY, at_ms INTEGER, actor_kind TEXT, actor_id TEXT, action TEXT, person_id TEXT,
    subject TEXT, source TEXT, request_id TEXT); CREATE INDEX t_person ON t (person_id, seq);`);
  const insert = db.prepare('INSERT INTO t VALUES (@seq, @atMs, @actorKind, @actorId, @action, @personId, @subject, @from, @requestId)');
  t = performance.now();
  for (let i = 0; i < n; i += turn) {
    db.transaction(() => {
      for (let j = i; j < Math.min(n, i + turn); j++) insert.run({ seq: j + 1, ...read(j) });
    })();
  }
  const plain = n / ((performance.now() - t) / 1000);
  db.close();
  return { logged, plain };
}

export async function benchAccess() {
  const persons = scaled('BENCH_PERSONS', 2_000, 50);
  const connections = setting('BENCH_HTTP_CONNECTIONS', 50);
  const seconds = scaled('BENCH_HTTP_SECONDS', 10, 1);
  const warmupSeconds = scaled('BENCH_HTTP_WARMUP', 2, 1);
  const options = { connections, seconds, warmupSeconds, persons };
  const dir = tempDir('access');
  try {
    const { tokens, jwts } = await credentials(dir);
    const result = {};
    // The baseline: the same service, open (a local trial).
    const open = await serve(dir, 'open', []);
    try {
      await seedPersons(open.base, persons);
      result.open = await measure(open.port, { ...options, prefix: 'open' });
    } finally {
      await open.server.stop();
    }
    const secured = await serve(dir, 'secured', ['--auth', join(dir, 'auth.json')]);
    try {
      await seedPersons(secured.base, persons, { authorization: `Bearer ${ADMIN}` });
      // the settlements the auditors read while (k)'s third run settles
      const readable = Array.from({ length: 500 }, (_, i) => dischargeFor(i, i % persons, 'read'));
      await pool(readable.length, 16, async (i) => {
        const r = await post(`${secured.base}/v1/settlements`, readable[i], { authorization: tokens[readable[i].hospitalId] });
        if (r.status !== 201) throw new Error(`read sample: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      });
      result.token = await measure(secured.port, { ...options, prefix: 'tok', tokens });
      result.jwt = await measure(secured.port, { ...options, prefix: 'jwt', tokens: jwts });
      // tokens again after the JWTs: the store grows during the runs, so JWTs are compared with both sides of them
      result.token2 = await measure(secured.port, { ...options, prefix: 'tok2', tokens });
      const reads = { paths: readable.map((d) => `/v1/settlements/${d.hospitalId}/${d.visitId}`), authorization: `Bearer ${AUDITOR}` };
      const [settling, reading] = await Promise.all([
        measure(secured.port, { ...options, prefix: 'mix', tokens }),
        measure(secured.port, { ...options, connections: 10, overallRate: READ_RATE, prefix: 'r', reads }),
      ]);
      result.mixed = settling;
      result.reads = reading;
      const logged = await fetch(`${secured.base}/v1/access-log?limit=1&afterSeq=0`, { headers: { authorization: `Bearer ${AUDITOR}` } });
      if (logged.status !== 200) throw new Error(`access log: HTTP ${logged.status}`);
    } finally {
      await secured.server.stop();
    }
    const n = scaled('BENCH_ACCESS_LOG_ENTRIES', 200_000, 1_000);
    result.log = await accessLogAlone(dir, n, 100);
    result.notes =
      `autocannon ${connections} connections, ${warmupSeconds} s warm-up + ${seconds} s each, ${persons} persons, ` +
      `${HOSPITALS.length} hospitals each with its own token / JWT; reads: ${READ_RATE}/s open loop of 500 settlements as the auditor, ` +
      `${Math.round(result.reads.ok2xx)} answered (each recorded) alongside ${Math.round(result.mixed.ok2xx)} settlements; ` +
      `access log alone: ${n} entries in turns of 100`;
    return result;
  } finally {
    removeDir(dir);
  }
}
