// The published schemas as the running service serves them: the list, each file as committed under
// proto/json-schema/ (so a client can fetch them from the service it talks to), and 404 for an unknown name.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, Service, http, removeDir, startService } from './support/service.js';

let service: Service;
beforeAll(async () => {
  service = await startService();
});
afterAll(async () => {
  await service.stop();
  removeDir(service.dataDir);
});

describe('GET /schemas', () => {
  it('lists every schema, and serves each exactly as committed under schemas/', async () => {
    const list = await http(service.url, 'GET', '/schemas');
    expect(list.status).toBe(200);
    const names = list.body.map((s: { name: string }) => s.name);
    expect(names).toEqual(
      expect.arrayContaining(['discharge', 'reversal', 'kafka-settle-discharge', 'kafka-outcome', 'settlement-result', 'event', 'error']),
    );
    for (const { url, name } of list.body as Array<{ url: string; name: string }>) {
      const one = await http(service.url, 'GET', url);
      expect([name, one.status, one.headers.get('content-type')]).toEqual([name, 200, 'application/schema+json; charset=utf-8']);
      expect(one.body).toEqual(JSON.parse(readFileSync(join(ROOT, 'proto', 'json-schema', `${name}.schema.json`), 'utf8')));
    }
    const missing = await http(service.url, 'GET', '/schemas/nothing.schema.json');
    expect([missing.status, missing.body.code]).toEqual([404, 'NOT_FOUND']);
  });
});
