// The record of every read of personal data: reads over HTTP and gRPC, by different callers,
// appear in the access log with who, what, about whom and from where; auditors (only) query it by
// person; settlements write nothing there; and `medaid audit verify` catches an altered entry.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { connect } from './support/grpc-client.js';
import { BIN, ROOT, Service, discharge, freePort, http, removeDir, startService, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;
const TOKENS = {
  admin: 'alog-admin-token-0123456789abcdef',
  auditor: 'alog-auditor-token-0123456789abcdef',
  hospital: 'alog-hospital-token-0123456789abcd',
};
const auth = writeAuthFile([
  { token: TOKENS.admin, kind: 'admin', id: 'clerk-zhang' },
  { token: TOKENS.auditor, kind: 'auditor', id: 'audit-li' },
  { token: TOKENS.hospital, kind: 'hospital', id: 'h-county' },
]);
const as = (token: string) => ({ authorization: `Bearer ${token}` });
let service: Service;
let grpcPort: number;

beforeAll(async () => {
  grpcPort = await freePort();
  service = await startService({ args: ['--auth', auth.file, '--grpc-port', String(grpcPort)] });
}, 60_000);

afterAll(async () => {
  await service?.stop();
  if (service) removeDir(service.dataDir);
  removeDir(auth.dir);
});

/** The reads of a person's data, but the auditors' reads of the log itself (recorded too: the last test). */
const logOf = async (personId: string) =>
  ((await http(service.url, 'GET', `/v1/access-log?personId=${personId}`, undefined, as(TOKENS.auditor))).body.entries as Obj[]).filter(
    (e) => e.action !== 'GET /v1/access-log',
  );

describe('the access log', () => {
  it('records each read of a person or a settlement: who, what, about whom, from where; settling records nothing', async () => {
    const settled = await http(
      service.url,
      'POST',
      '/v1/settlements',
      discharge({ visitId: 'alog-1', personId: 'p-alog' }),
      as(TOKENS.hospital),
    );
    expect(settled.status).toBe(201);
    expect(await logOf('p-alog')).toEqual([]); // a settlement is not a read
    expect((await http(service.url, 'GET', '/v1/settlements/h-county/alog-1', undefined, as(TOKENS.hospital))).status).toBe(200);
    expect((await http(service.url, 'GET', '/v1/persons/p-alog', undefined, as(TOKENS.admin))).status).toBe(200);
    const client = connect(grpcPort);
    try {
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${TOKENS.auditor}`);
      expect((await client.call('Get', { hospitalId: 'h-county', visitId: 'alog-1' }, metadata)).ok).toBe(true);
    } finally {
      client.close();
    }
    const entries = await logOf('p-alog');
    expect(entries.map((e) => [e.actorKind, e.actorId, e.action, e.subject])).toEqual([
      ['hospital', 'h-county', 'GET /v1/settlements/:hospitalId/:visitId', 'settlement h-county/alog-1'],
      ['admin', 'clerk-zhang', 'GET /v1/persons/:personId', 'person p-alog'],
      ['auditor', 'audit-li', 'grpc SettlementService/Get', 'settlement h-county/alog-1'],
    ]);
    for (const e of entries) {
      expect(e.from).toMatch(/127\.0\.0\.1/);
      expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(typeof e.atMs).toBe('number');
    }
    // a refused read is not an answered read
    expect((await http(service.url, 'GET', '/v1/persons/p-alog', undefined, as(TOKENS.hospital))).status).toBe(403);
    expect(await logOf('p-alog')).toHaveLength(3);
    // reading the log is for auditors, and is itself recorded (with the person it asked about)
    expect((await http(service.url, 'GET', '/v1/access-log?personId=p-alog', undefined, as(TOKENS.admin))).status).toBe(403);
    const all = (await http(service.url, 'GET', '/v1/access-log?personId=p-alog', undefined, as(TOKENS.auditor))).body.entries as Obj[];
    expect(all.filter((e) => e.action === 'GET /v1/access-log').map((e) => [e.actorId, e.subject])[0]).toEqual([
      'audit-li',
      'list /v1/access-log?personId=p-alog',
    ]);
  });

  it('is checked by audit verify: clean as written, and an altered entry is named by its seq', async () => {
    await service.stop();
    const verify = () => spawnSync(process.execPath, [BIN, 'audit', 'verify', '--data', service.dataDir], { cwd: ROOT, encoding: 'utf8' });
    const clean = verify();
    expect(clean.stdout).toMatch(/\(e\) access log: .* reads recorded, hash chain problems: 0/);
    expect(clean.status).toBe(0);
    const db = new Database(join(service.dataDir, 'access-log.sqlite'));
    db.prepare("UPDATE access_log SET actor_id = 'someone-else' WHERE seq = 2").run();
    db.close();
    const altered = verify();
    expect(altered.status).toBe(1);
    expect(altered.stdout).toContain('access log: seq 2 was altered');
    service = await startService({ dataDir: service.dataDir, args: ['--auth', auth.file, '--grpc-port', String(grpcPort)] });
  }, 60_000);
});
