// Idempotency keys over HTTP against the real service (a child process on a real SQLite file): a
// request retried with its Idempotency-Key gets the first answer, never a new decision — after a
// reversal, after a restart — and a key reused for another command is refused. (Kafka's replay is in
// kafka.e2e.spec.ts, gRPC's idempotency-key metadata in grpc.e2e.spec.ts.)
import { afterEach, describe, expect, it } from '@jest/globals';
import { Service, discharge, http, removeDir, startService } from './support/service.js';

const services: Service[] = [];
async function start(dataDir?: string): Promise<Service> {
  const s = await startService(dataDir === undefined ? {} : { dataDir });
  services.push(s);
  return s;
}
afterEach(async () => {
  const dirs = new Set(services.map((s) => s.dataDir));
  for (const s of services.splice(0)) await s.stop();
  dirs.forEach(removeDir);
});

const key = (k: string) => ({ 'idempotency-key': k });

describe('Idempotency-Key over HTTP', () => {
  it('given a settlement posted with a key and then reversed, when the post is retried with the key, then it gets the first answer and nothing is settled again', async () => {
    let service = await start();
    const body = discharge({ visitId: 'v-idem', personId: 'p-idem', totalFen: 2_000_000 });
    const first = await http(service.url, 'POST', '/v1/settlements', body, key('his-req-1'));
    expect([first.status, first.body.settlementId, first.headers.get('idempotent-replayed')]).toEqual([201, 'h-county/v-idem/1', null]);
    expect((await http(service.url, 'POST', '/v1/settlements/h-county/v-idem/reversal', { reason: '录入错误' })).status).toBe(200);

    const retried = await http(service.url, 'POST', '/v1/settlements', body, key('his-req-1'));

    expect([retried.status, retried.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect(retried.body).toEqual(first.body);
    const visit = await http(service.url, 'GET', '/v1/settlements/h-county/v-idem');
    expect(visit.body.history.map((h: { settlementId: string; status: string }) => [h.settlementId, h.status])).toEqual([
      ['h-county/v-idem/1', 'reversed'],
    ]);

    // and after a restart, from the record in the log
    await service.stop();
    service = await start(service.dataDir);
    const afterRestart = await http(service.url, 'POST', '/v1/settlements', body, key('his-req-1'));
    expect([afterRestart.status, afterRestart.body]).toEqual([201, first.body]);
    // while the same post without the key (or with a new one) is a new command: the visit is settled again
    const fresh = await http(service.url, 'POST', '/v1/settlements', body, key('his-req-2'));
    expect([fresh.status, fresh.body.settlementId]).toEqual([201, 'h-county/v-idem/2']);
  });

  it('given a reversal posted with a key, when it is retried with the key, then it is the same reversal, not ALREADY_REVERSED', async () => {
    const service = await start();
    const body = discharge({ visitId: 'v-rev', personId: 'p-rev' });
    expect((await http(service.url, 'POST', '/v1/settlements', body)).status).toBe(201);
    const path = '/v1/settlements/h-county/v-rev/reversal';
    const first = await http(service.url, 'POST', path, { reason: 'wrong' }, key('rev-1'));
    const retried = await http(service.url, 'POST', path, { reason: 'wrong' }, key('rev-1'));
    expect([first.status, retried.status, retried.headers.get('idempotent-replayed')]).toEqual([200, 200, 'true']);
    expect(retried.body).toEqual(first.body);
    const unkeyed = await http(service.url, 'POST', path, { reason: 'wrong' });
    expect([unkeyed.status, unkeyed.body.code]).toEqual([409, 'ALREADY_REVERSED']);
  });

  it('given a key already used, when another command is sent with it, then 422 IDEMPOTENCY_KEY_REUSED and nothing is recorded', async () => {
    const service = await start();
    const a = discharge({ visitId: 'v-a', personId: 'p-k' });
    expect((await http(service.url, 'POST', '/v1/settlements', a, key('k-1'))).status).toBe(201);
    const other = await http(service.url, 'POST', '/v1/settlements', { ...a, visitId: 'v-b' }, key('k-1'));
    expect([other.status, other.body.code, other.body.details]).toEqual([
      422,
      'IDEMPOTENCY_KEY_REUSED',
      [{ field: 'idempotencyKey', problem: 'already used for a different command' }],
    ]);
    expect((await http(service.url, 'GET', '/v1/settlements/h-county/v-b')).status).toBe(404);
  });

  it.each([
    ['a space', 'has space'],
    ['too long', 'x'.repeat(201)],
    ['a tab', 'has\ttab'],
  ])('given a key with %s, then 400 VALIDATION_FAILED on the header and nothing is settled', async (_what, bad) => {
    const service = await start();
    const reply = await fetch(`${service.url}/v1/settlements`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': bad },
      body: JSON.stringify(discharge({ visitId: 'v-bad' })),
    });
    const json = (await reply.json()) as { code: string; details: Array<{ field: string }> };
    expect([reply.status, json.code, json.details.map((d) => d.field)]).toEqual([400, 'VALIDATION_FAILED', ['(header Idempotency-Key)']]);
    expect((await http(service.url, 'GET', '/v1/settlements/h-county/v-bad')).status).toBe(404);
  });
});
