// The relay over a real SQLite store, with a publisher that fails on cue in place of the broker
// (the e2e suite runs it against a real one): the checkpoint moves only after an acknowledged
// send, a failed batch is sent again whole and in order, one batch is in flight at a time, a
// restart resumes from the checkpoint, and stop() flushes what is recorded.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { TopicMessages } from '#kafka';
import { SqliteEventStore } from '#event-store-sqlite';
import { EventRelay, carriesPayouts } from './event-relay.js';
import { RelayCheckpoint } from './relay-checkpoint.js';

const TOPICS = { events: 'medaid.events.v1', payouts: 'medaid.payouts.v1', alerts: 'medaid.alerts.v1' };
const quiet = () => undefined;

/** Stands in for Kafka: fails the sends it is told to, records the acknowledged ones. */
class ScriptedPublisher {
  readonly acked: TopicMessages[][] = [];
  failNext = 0;
  inFlight = 0;
  maxInFlight = 0;
  /** Checkpoint value seen when each send started: must be behind the batch being sent. */
  readonly checkpointAtSend: Array<{ checkpoint: number; first: number }> = [];
  constructor(private readonly checkpoint: RelayCheckpoint) {}

  async send(batches: readonly TopicMessages[]): Promise<void> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const first = Number(batches[0]!.messages[0]!.headers!['log-position']);
      this.checkpointAtSend.push({ checkpoint: await this.checkpoint.read(), first });
      await new Promise((r) => setTimeout(r, 2));
      if (this.failNext > 0) {
        this.failNext -= 1;
        throw new Error('broker unavailable');
      }
      this.acked.push([...batches]);
    } finally {
      this.inFlight -= 1;
    }
  }

  positions(topic: string): number[] {
    return this.acked.flatMap((b) =>
      b.filter((t) => t.topic === topic).flatMap((t) => t.messages.map((m) => Number(m.headers!['log-position']))),
    );
  }
}

let dir: string;
let store: SqliteEventStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'medaid-relay-'));
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function record(count: number, streams = 3): Promise<void> {
  for (let i = 0; i < count; i++) {
    const streamId = `person-${i % streams}`;
    const type =
      i % 4 === 0
        ? 'DischargeSettled'
        : i % 10 === 3
          ? 'HighMedicalCostFlagged'
          : i % 10 === 7
            ? 'HighMedicalCostCleared'
            : 'CategoryAssigned';
    await store.appendToStream(streamId, [{ id: randomUUID(), type, data: { i } }], { expectedRevision: 'any' });
  }
}

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('EventRelay', () => {
  it('given Kafka failing at first, when it recovers, then every event is published once acknowledged, in log order, and only then checkpointed', async () => {
    await record(120);
    const checkpoint = new RelayCheckpoint(join(dir, 'relay.json'));
    const publisher = new ScriptedPublisher(checkpoint);
    publisher.failNext = 3;
    const relay = new EventRelay(store, publisher, checkpoint, TOPICS, quiet, {
      maxBatchEvents: 25,
      retryBackoff: { initialMs: 1, maxMs: 5 },
    });
    await relay.start();
    await until('all relayed', () => relay.position === 120);

    expect(publisher.positions(TOPICS.events)).toEqual(range(1, 120));
    expect(publisher.positions(TOPICS.payouts)).toEqual(range(1, 120).filter((p) => (p - 1) % 4 === 0));
    // the monitoring flags and clearings once more on their own topic, in log order
    const alerts = range(1, 120).filter((p) => (p - 1) % 4 !== 0 && ((p - 1) % 10 === 3 || (p - 1) % 10 === 7));
    expect(alerts.length).toBeGreaterThan(10);
    expect(publisher.positions(TOPICS.alerts)).toEqual(alerts);
    expect(publisher.maxInFlight).toBe(1);
    expect(publisher.acked.every((b) => b[0]!.messages.length <= 25)).toBe(true);
    expect(publisher.checkpointAtSend.every(({ checkpoint: c, first }) => c < first)).toBe(true);
    // The failed batch was sent again from the same first event, not skipped.
    expect(publisher.checkpointAtSend.slice(0, 4).map((s) => s.first)).toEqual([1, 1, 1, 1]);
    expect(await checkpoint.read()).toBe(120);

    // Live: events recorded after the catch-up follow.
    await record(7);
    await until('live events relayed', () => relay.position === 127);
    await relay.stop();
  });

  it('given a relay restarted with its checkpoint, then it publishes only what came after', async () => {
    await record(30);
    const checkpoint = new RelayCheckpoint(join(dir, 'relay.json'));
    const first = new ScriptedPublisher(checkpoint);
    const relay = new EventRelay(store, first, checkpoint, TOPICS, quiet);
    await relay.start();
    await until('first run', () => relay.position === 30);
    await relay.stop();

    await record(10);
    const second = new ScriptedPublisher(checkpoint);
    const again = new EventRelay(store, second, checkpoint, TOPICS, quiet);
    await again.start();
    await until('second run', () => again.position === 40);
    expect(second.positions(TOPICS.events)).toEqual(range(31, 40));
    await again.stop();
  });

  it('given events recorded just before stop, then stop() publishes them before it returns', async () => {
    const checkpoint = new RelayCheckpoint(join(dir, 'relay.json'));
    const publisher = new ScriptedPublisher(checkpoint);
    const relay = new EventRelay(store, publisher, checkpoint, TOPICS, quiet, { lingerMs: 50 });
    await relay.start();
    await record(15);
    await relay.stop();
    expect(publisher.positions(TOPICS.events)).toEqual(range(1, 15));
    expect(await checkpoint.read()).toBe(15);
  });

  it('given Kafka down at stop, then stop() returns without publishing and the checkpoint keeps those events for the next start', async () => {
    const checkpoint = new RelayCheckpoint(join(dir, 'relay.json'));
    const publisher = new ScriptedPublisher(checkpoint);
    publisher.failNext = Number.MAX_SAFE_INTEGER;
    const relay = new EventRelay(store, publisher, checkpoint, TOPICS, quiet, { retryBackoff: { initialMs: 1, maxMs: 20 } });
    await relay.start();
    await record(5);
    await until('a failed attempt', () => relay.state === 'retrying');
    const started = Date.now();
    await relay.stop(5_000);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(publisher.acked).toEqual([]);
    expect(await checkpoint.read()).toBe(0);
  });

  it('tells payout-bearing events: settlements, reversals, and later settlement-shaped types; not policies', () => {
    expect(carriesPayouts({ type: 'DischargeSettled', data: {} })).toBe(true);
    expect(carriesPayouts({ type: 'SettlementReversed', data: {} })).toBe(true);
    expect(carriesPayouts({ type: 'SettlementCorrected', data: { layers: [[null, 0, 0, 0, 0, null]] } })).toBe(true);
    expect(carriesPayouts({ type: 'PolicyPublished', data: { policy: { layers: [{}] } } })).toBe(false);
    expect(carriesPayouts({ type: 'CategoryAssigned', data: { personId: 'p' } })).toBe(false);
  });
});
