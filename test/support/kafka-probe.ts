// The Kafka side of the e2e tests: a real broker (deploy/kafka-local, started here when
// KAFKA_BROKERS is not set), and a probe that produces commands and collects what the service
// publishes — through the same #kafka adapter as the service, so only one file imports kafkajs.
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { KafkaClient } from '#kafka';
import type { ConsumerRunner, IncomingMessage, KafkaPublisher } from '#kafka';
import { ROOT } from './service.js';

const KAFKA_LOCAL = join(ROOT, 'deploy/kafka-local/kafka-local.sh');

export interface Broker {
  brokers: string;
  /** Whether these tests may stop and start it (kafka-local's broker at that very address). */
  controllable: boolean;
  /** Whether these tests started it (and so stop it at the end). */
  startedHere: boolean;
}

function kafkaLocal(command: 'start' | 'stop' | 'status'): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', [KAFKA_LOCAL, command], { encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const brokersOf = (stdout: string) => /KAFKA_BROKERS=(\S+)/.exec(stdout)?.[1];

export function acquireBroker(): Broker {
  const status = kafkaLocal('status');
  const local = status.status === 0 ? brokersOf(status.stdout) : undefined;
  const fromEnv = process.env.KAFKA_BROKERS?.trim();
  if (fromEnv) return { brokers: fromEnv, controllable: local === fromEnv, startedHere: false };
  if (local !== undefined) return { brokers: local, controllable: true, startedHere: false };
  const started = kafkaLocal('start');
  const brokers = brokersOf(started.stdout);
  if (started.status !== 0 || brokers === undefined) throw new Error(`kafka-local.sh start failed: ${started.stderr.slice(-2000)}`);
  return { brokers, controllable: true, startedHere: true };
}

/** kafka-local.sh stop|start without blocking the event loop (the service's and the probe's clients keep running). */
export function kafkaLocalAsync(command: 'start' | 'stop'): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [KAFKA_LOCAL, command], { timeout: 120_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`kafka-local.sh ${command} failed: ${String(stderr).slice(-2000)}`));
      else resolve();
    });
  });
}

export function brokerRunning(): boolean {
  return kafkaLocal('status').status === 0;
}

/** For afterAll: stops the broker only when these tests started it. */
export function releaseBroker(broker: Broker): void {
  if (broker.startedHere) kafkaLocal('stop');
}

export interface Collected {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  headers: Record<string, string>;
  value: string | null;
  json: any;
}

export const topicsOf = (prefix: string) => ({
  discharges: `${prefix}medaid.discharges.v1`,
  settlements: `${prefix}medaid.settlements.v1`,
  dlq: `${prefix}medaid.discharges.dlq.v1`,
  events: `${prefix}medaid.events.v1`,
  payouts: `${prefix}medaid.payouts.v1`,
  alerts: `${prefix}medaid.alerts.v1`,
});

/** Produces to the discharge topic and collects, in per-partition order, every output topic. */
export class KafkaProbe {
  readonly topics: ReturnType<typeof topicsOf>;
  readonly received: Collected[] = [];
  private readonly client: KafkaClient;
  private readonly publisher: KafkaPublisher;
  private collector: ConsumerRunner | undefined;

  constructor(
    readonly brokers: string,
    readonly prefix: string,
  ) {
    this.topics = topicsOf(prefix);
    // Quiet: the fault tests stop the broker on purpose, and kafkajs complains loudly about it.
    this.client = new KafkaClient({ brokers: brokers.split(','), clientId: 'medaid-test-probe', log: () => undefined });
    this.publisher = this.client.publisher('probe');
  }

  async start(): Promise<void> {
    await this.client.ensureTopics(Object.values(this.topics).map((topic) => ({ topic, partitions: 3 })));
    this.collector = this.client.consumer({
      groupId: `probe-${this.prefix}`,
      topics: [this.topics.settlements, this.topics.dlq, this.topics.events, this.topics.payouts, this.topics.alerts],
      partitionsConcurrently: 12,
      handle: async (m) => {
        this.received.push(collected(m));
      },
    });
    this.collector.start();
  }

  /** Produces `{type, …fields}` commands; a string is sent as raw bytes. */
  async produce(messages: Array<{ key: string; value: unknown; partition?: number; headers?: Record<string, string> }>): Promise<void> {
    await this.publisher.send([
      {
        topic: this.topics.discharges,
        messages: messages.map((m) => ({
          ...(m.partition === undefined ? {} : { partition: m.partition }),
          ...(m.headers === undefined ? {} : { headers: m.headers }),
          key: m.key,
          value: typeof m.value === 'string' ? m.value : JSON.stringify(m.value),
        })),
      },
    ]);
  }

  /** Resets a consumer group (stopped) to the earliest offset of the discharges topic, as an operator does to replay it. */
  async replayDischarges(groupId: string): Promise<void> {
    await this.client.resetOffsetsToEarliest(groupId, this.topics.discharges);
  }

  on(topic: string): Collected[] {
    return this.received.filter((m) => m.topic === topic);
  }

  /** Outcomes on medaid.settlements.v1, one per source message (re-published copies dropped). */
  outcomes(): Collected[] {
    const seen = new Set<string>();
    return this.on(this.topics.settlements).filter((m) => {
      const source = `${m.headers['source-partition']}/${m.headers['source-offset']}`;
      if (seen.has(source)) return false;
      seen.add(source);
      return true;
    });
  }

  async waitFor(what: string, predicate: () => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (received ${this.received.length} messages)`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    await this.collector?.stop();
    await this.publisher.disconnect();
    await this.client.deleteTopics(Object.values(this.topics)).catch(() => undefined);
  }
}

function collected(m: IncomingMessage): Collected {
  const value = m.value?.toString('utf8') ?? null;
  let json: unknown = null;
  try {
    json = value === null ? null : JSON.parse(value);
  } catch {
    // raw bytes (a dead letter of a message that was not JSON)
  }
  const headers = Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, v.toString('utf8')]));
  return { topic: m.topic, partition: m.partition, offset: m.offset, key: m.key?.toString('utf8') ?? null, headers, value, json };
}

/**
 * Checks the relayed log as a consumer would: drop duplicates by event-id (keeping the first copy),
 * then every stream must show revisions 0, 1, 2, … in order with none missing. Returns the
 * de-duplicated events.
 */
export function relayedEvents(messages: Collected[]): { events: Collected[]; problems: string[] } {
  const seen = new Set<string>();
  const events = messages.filter((m) => {
    const id = m.headers['event-id']!;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  const next = new Map<string, number>();
  const problems: string[] = [];
  for (const e of events) {
    const stream = e.headers['stream-id']!;
    const revision = Number(e.headers['stream-revision']);
    const expected = next.get(stream) ?? 0;
    if (revision !== expected) problems.push(`${stream}: revision ${revision} where ${expected} was due`);
    if (e.key !== stream || e.json?.id !== e.headers['event-id'] || e.json?.revision !== revision)
      problems.push(`${stream}@${revision}: key, headers and value disagree`);
    next.set(stream, Math.max(expected, revision + 1));
  }
  return { events, problems };
}
