// GET /metrics: the Prometheus text format, read from a real service after real traffic over HTTP
// and gRPC, parsed sample by sample. It counts what happened and names no person or visit.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect, type Client } from './support/grpc-client.js';
import { Service, discharge, freePort, http, removeDir, startService } from './support/service.js';

let service: Service;
let client: Client;

beforeAll(async () => {
  const grpcPort = await freePort();
  service = await startService({ args: ['--grpc-port', String(grpcPort)] });
  client = connect(grpcPort);
});

afterAll(async () => {
  client?.close();
  await service?.stop();
  if (service) removeDir(service.dataDir);
});

/** Samples of the text format: `name{labels} value` → value, keyed by `name{labels}` as printed. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const metrics = async () => {
  const r = await fetch(`${service.url}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toContain('text/plain');
  return r.text();
};

describe('GET /metrics', () => {
  it('counts requests, settlement outcomes, conflicts and appends, and shows the lags, without a person or visit id', async () => {
    const person = 'p-metrics-7f3a';
    const visit = 'v-metrics-91c2';
    const body = discharge({ personId: person, visitId: visit, totalFen: 2_000_000 });
    expect((await http(service.url, 'POST', '/v1/settlements', body)).status).toBe(201);
    expect((await http(service.url, 'POST', '/v1/settlements', body)).status).toBe(200); // duplicate
    expect((await http(service.url, 'POST', '/v1/settlements', { ...body, totalFen: 2_000_001 })).status).toBe(409); // conflict
    expect((await http(service.url, 'POST', '/v1/settlements', { ...body, totalFen: -1 })).status).toBe(400);
    expect((await http(service.url, 'POST', `/v1/settlements/h-county/${visit}/reversal`, { reason: 'wrong' })).status).toBe(200);
    const viaGrpc = await client.call('Settle', { ...discharge({ personId: person, visitId: `${visit}-g` }) });
    expect(viaGrpc.ok).toBe(true);

    const text = await metrics();
    const s = samples(text);
    const get = (key: string) => s.get(key) ?? 0;
    expect(get('medaid_settlement_commands_total{command="SettleDischarge",outcome="settled"}')).toBe(2);
    expect(get('medaid_settlement_commands_total{command="SettleDischarge",outcome="duplicate"}')).toBe(1);
    expect(get('medaid_settlement_commands_total{command="SettleDischarge",outcome="VISIT_CONFLICT"}')).toBe(1);
    expect(get('medaid_settlement_commands_total{command="ReverseSettlement",outcome="reversed"}')).toBe(1);
    expect(get('medaid_http_requests_total{method="POST",route="/v1/settlements",status="201",outcome="ok"}')).toBe(1);
    expect(get('medaid_http_requests_total{method="POST",route="/v1/settlements",status="400",outcome="VALIDATION_FAILED"}')).toBe(1);
    expect(get('medaid_grpc_calls_total{rpc="/medaid.settlement.v1.SettlementService/Settle",status="OK",outcome="ok"}')).toBe(1);
    // the demo policy, two settlements and a reversal were appended, each timed
    expect(get('medaid_store_append_duration_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(get('medaid_log_position')).toBeGreaterThanOrEqual(4);
    expect(s.has('medaid_journal_behind_events')).toBe(true);
    expect(s.has('medaid_process_resident_memory_bytes')).toBe(true);
    expect(text).not.toContain(person);
    expect(text).not.toContain(visit);
  });
});
