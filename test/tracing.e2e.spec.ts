// OpenTelemetry: with an OTLP endpoint configured, a settlement posted over HTTP is exported as one
// trace — the server span (continuing the caller's traceparent), the command, the store's append —
// to a real HTTP receiver speaking OTLP/HTTP JSON, as a collector would. No span names a person.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { connect, type Client } from './support/grpc-client.js';
import { otlpReceiver, type OtlpReceiver } from './support/otlp.js';
import { Service, discharge, freePort, http, removeDir, startService } from './support/service.js';

type Obj = Record<string, any>;
let receiver: OtlpReceiver;
let service: Service;
let client: Client;
const spans = () => receiver.spans();

beforeAll(async () => {
  receiver = await otlpReceiver();
  const grpcPort = await freePort();
  service = await startService({
    args: ['--grpc-port', String(grpcPort)],
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_SERVICE_NAME: 'medaid-test' },
  });
  client = connect(grpcPort);
});

afterAll(async () => {
  client?.close();
  await service?.stop();
  if (service) removeDir(service.dataDir);
  await receiver?.close();
});

describe('traces (OTLP/HTTP, when configured)', () => {
  it('given a settlement posted with a traceparent, then its trace goes HTTP → command → append, under the caller’s trace, naming no person', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const body = discharge({ personId: 'p-traced-5e1d', visitId: 'v-traced-1' });
    const r = await http(service.url, 'POST', '/v1/settlements', body, { traceparent: `00-${traceId}-${callerSpan}-01` });
    expect(r.status).toBe(201);
    for (let i = 0; i < 200 && !spans().some((s) => s.name === 'POST /v1/settlements'); i++)
      await new Promise((res) => setTimeout(res, 25));

    const trace = spans().filter((s) => s.traceId === traceId);
    const server = trace.find((s) => s.name === 'POST /v1/settlements');
    const command = trace.find((s) => s.name === 'medaid.SettleDischarge');
    const append = trace.find((s) => s.name === 'medaid.store.append' && s.parentSpanId === command?.spanId);
    expect([server?.parentSpanId, server?.kind, server?.service]).toEqual([callerSpan, 2, 'medaid-test']); // 2 = SERVER
    expect(command?.parentSpanId).toBe(server!.spanId);
    expect(append).toBeDefined();
    const attr = (s: Obj, key: string) => s.attributes.find((a: Obj) => a.key === key)?.value;
    expect(attr(server!, 'http.response.status_code')).toEqual({ intValue: 201 });
    expect(attr(command!, 'medaid.outcome')).toEqual({ stringValue: 'settled' });
    expect(attr(append!, 'medaid.stream.kind')).toEqual({ stringValue: 'person' });
    expect(JSON.stringify(receiver.exported)).not.toContain('p-traced-5e1d');
    expect(JSON.stringify(receiver.exported)).not.toContain('v-traced-1');
    expect(receiver.exported[0]!.contentType).toContain('application/json');
  });

  it('given a settlement over gRPC with a traceparent in its metadata, then the call is a server span with the command inside', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const metadata = new grpc.Metadata();
    metadata.set('traceparent', `00-${traceId}-b7ad6b7169203331-01`);
    const reply = await client.call('Settle', discharge({ personId: 'p-traced-grpc', visitId: 'v-traced-g' }), metadata);
    expect(reply.ok).toBe(true);
    for (let i = 0; i < 200 && !spans().some((s) => s.traceId === traceId && s.name.endsWith('/Settle')); i++)
      await new Promise((res) => setTimeout(res, 25));

    const trace = spans().filter((s) => s.traceId === traceId);
    const server = trace.find((s) => s.name === 'medaid.settlement.v1.SettlementService/Settle');
    expect([server?.parentSpanId, server?.kind]).toEqual(['b7ad6b7169203331', 2]);
    expect(trace.find((s) => s.name === 'medaid.SettleDischarge')?.parentSpanId).toBe(server!.spanId);
    expect(JSON.stringify(receiver.exported)).not.toContain('p-traced-grpc');
  });
});
