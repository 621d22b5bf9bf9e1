// The service's Prometheus metrics (prom-client), served at GET /metrics in the text format. One
// registry per process: counters and histograms are updated where the work happens; the lags are
// gauges read from the runtime when scraped. No label carries a person, a visit or any other id —
// routes are patterns, outcomes are error codes.
import client from 'prom-client';

const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'medaid_' });

/** Latency buckets in seconds: from a fraction of a millisecond (an append on the embedded store) to seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const httpRequests = new client.Counter({
  name: 'medaid_http_requests_total',
  help: 'HTTP requests answered, by method, route pattern, status and outcome (ok or the error code).',
  labelNames: ['method', 'route', 'status', 'outcome'] as const,
  registers: [registry],
});
const httpDuration = new client.Histogram({
  name: 'medaid_http_request_duration_seconds',
  help: 'Time to answer an HTTP request, by method and route pattern.',
  labelNames: ['method', 'route'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});
const grpcCalls = new client.Counter({
  name: 'medaid_grpc_calls_total',
  help: 'gRPC calls answered, by method, gRPC status and outcome (ok or the error code).',
  labelNames: ['rpc', 'status', 'outcome'] as const,
  registers: [registry],
});
const grpcDuration = new client.Histogram({
  name: 'medaid_grpc_call_duration_seconds',
  help: 'Time to answer a gRPC call, by method.',
  labelNames: ['rpc'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});
const commands = new client.Counter({
  name: 'medaid_settlement_commands_total',
  help: 'Settlement commands decided (every transport), by command and outcome: settled, duplicate, reversed, replayed, or the error code.',
  labelNames: ['command', 'outcome'] as const,
  registers: [registry],
});
const appendDuration = new client.Histogram({
  name: 'medaid_store_append_duration_seconds',
  help: 'Time from an append to its acknowledgement by the event store (durable).',
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});
const appendConflicts = new client.Counter({
  name: 'medaid_store_append_conflicts_total',
  help: 'Appends the store refused because another writer got there first, by kind (revision, condition).',
  labelNames: ['kind'] as const,
  registers: [registry],
});
const decideRetries = new client.Counter({
  name: 'medaid_decide_retries_total',
  help: "Commands decided again after a conflict on the person's stream.",
  registers: [registry],
});
const storeRetries = new client.Counter({
  name: 'medaid_store_unavailable_total',
  help: 'Commands answered "retry" because the store could not take them (STORE_UNAVAILABLE, STORE_OVERLOADED, …), by code.',
  labelNames: ['code'] as const,
  registers: [registry],
});
const logPosition = new client.Gauge({
  name: 'medaid_log_position',
  help: "Position of the last event in the service's decision state.",
  registers: [registry],
});
const journalBehind = new client.Gauge({
  name: 'medaid_journal_behind_events',
  help: 'Log positions the hash-chained journal (and its projections) has not posted yet.',
  registers: [registry],
});
const relayBehind = new client.Gauge({
  name: 'medaid_kafka_relay_behind_events',
  help: 'Log positions not yet relayed to the events topic (absent without Kafka).',
  registers: [registry],
});
const relayLease = new client.Gauge({
  name: 'medaid_kafka_relay_lease_held',
  help: 'With several instances on one store: 1 while this instance holds the relay lease (relays the events), 0 while it stands by.',
  registers: [registry],
});
const ingressLag = new client.Gauge({
  name: 'medaid_kafka_ingress_lag_messages',
  help: 'Messages of the discharges topic not yet handled, by partition, as of the last batch fetched (absent without Kafka).',
  labelNames: ['partition'] as const,
  registers: [registry],
});
const personCache = new client.Gauge({
  name: 'medaid_person_cache_persons',
  help: 'Persons held in the decision cache.',
  registers: [registry],
});

export const metrics = {
  http(method: string, route: string, status: number, outcome: string, seconds: number): void {
    httpRequests.inc({ method, route, status: String(status), outcome });
    httpDuration.observe({ method, route }, seconds);
  },
  grpc(rpc: string, status: string, outcome: string, seconds: number): void {
    grpcCalls.inc({ rpc, status, outcome });
    grpcDuration.observe({ rpc }, seconds);
  },
  command(command: 'SettleDischarge' | 'ReverseSettlement', outcome: string): void {
    commands.inc({ command, outcome });
  },
  append(seconds: number): void {
    appendDuration.observe(seconds);
  },
  conflict(kind: 'revision' | 'condition'): void {
    appendConflicts.inc({ kind });
  },
  decideRetry(): void {
    decideRetries.inc();
  },
  storeRefused(code: string): void {
    storeRetries.inc({ code });
  },
  relayLeaseHeld(held: boolean): void {
    relayLease.set(held ? 1 : 0);
    if (!held) relayBehind.reset(); // another instance relays: its lag is on its own /metrics
  },
  ingressLag(partition: number, lag: number): void {
    ingressLag.set({ partition: String(partition) }, lag);
  },
};

export interface MetricsSources {
  position: number;
  journalPosition: number;
  relayedPosition: number | null;
  cachedPersons: number;
}

/** The text format, with the lags read now. */
export async function scrape(sources: MetricsSources): Promise<{ contentType: string; body: string }> {
  logPosition.set(sources.position);
  journalBehind.set(Math.max(0, sources.position - sources.journalPosition));
  if (sources.relayedPosition !== null) relayBehind.set(Math.max(0, sources.position - sources.relayedPosition));
  personCache.set(sources.cachedPersons);
  return { contentType: registry.contentType, body: await registry.metrics() };
}
