// KafkaClient, the entry point of the Kafka adapter (kafkajs behind a small, framework-free API, so
// the service wires it however it likes). Three things, each with its limits stated:
// - topics: create the missing ones, delete, read watermarks (admin), here;
// - KafkaPublisher (publisher.ts): an idempotent producer (acks = all, one request in flight, so
//   the messages of one key keep their order), replaced by a fresh one after any failed send;
// - ConsumerRunner (consumer-runner.ts): a consumer group that hands messages one at a time per
//   partition to a handler and commits an offset only after the handler resolved (at-least-once),
//   with bounded batches, bounded retries, a supervisor that reconnects after a crash, and a clean stop.
// What is handed to kafkajs itself is built in kafka-client.ts.
import { ConsumerRunner } from './consumer-runner.js';
import { backoffMs, sleep, stderrLog } from './helpers.js';
import { createKafka } from './kafka-client.js';
import type { Kafka } from './kafka-client.js';
import { KafkaLease } from './lease.js';
import type { LeaseOptions } from './lease.js';
import { KafkaPublisher } from './publisher.js';
import type { ConsumerOptions, KafkaClientOptions, KafkaLog, PartitionOffsets, TopicSpec } from './types.js';

/** Tries of ensureTopics on retriable broker answers (about 30 s with its backoff). */
const ENSURE_TOPICS_ATTEMPTS = 14;

export class KafkaClient {
  readonly kafka: Kafka;
  readonly log: KafkaLog;

  constructor(options: KafkaClientOptions) {
    if (options.brokers.length === 0) throw new Error('at least one Kafka broker is needed');
    this.log = options.log ?? stderrLog;
    this.kafka = createKafka(options, this.log);
  }

  /**
   * Creates the topics that do not exist yet; returns the names created. Existing topics are left
   * as they are. A broker that has just started may answer "does not host this topic-partition"
   * while its metadata settles: such retriable answers are retried for up to ~30 s.
   */
  async ensureTopics(specs: readonly TopicSpec[]): Promise<string[]> {
    for (const s of specs) {
      if (!Number.isInteger(s.partitions) || s.partitions < 1 || s.partitions > 1_000)
        throw new Error(`${s.topic}: partitions must be 1 to 1000`);
    }
    const created = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      try {
        for (const topic of await this.createMissing(specs)) created.add(topic);
        return [...created];
      } catch (error) {
        if ((error as { retriable?: unknown }).retriable !== true || attempt >= ENSURE_TOPICS_ATTEMPTS) throw error;
        await sleep(backoffMs(attempt, { initialMs: 250, maxMs: 3_000 }));
      }
    }
  }

  private async createMissing(specs: readonly TopicSpec[]): Promise<string[]> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const missing = specs.filter((s) => !existing.has(s.topic));
      if (missing.length === 0) return [];
      await admin.createTopics({ waitForLeaders: true, topics: missing.map((s) => ({ topic: s.topic, numPartitions: s.partitions })) });
      return missing.map((s) => s.topic);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async deleteTopics(topics: readonly string[]): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const present = topics.filter((t) => existing.has(t));
      if (present.length > 0) await admin.deleteTopics({ topics: present });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Moves a consumer group (with no member running) back to the earliest offset of a topic: an operator's replay. */
  async resetOffsetsToEarliest(groupId: string, topic: string): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await admin.resetOffsets({ groupId, topic, earliest: true });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Partitions of a topic with their low and high watermarks (offsets as decimal strings). */
  async topicOffsets(topic: string): Promise<PartitionOffsets[]> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, low: p.low, high: p.high }));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  publisher(name: string): KafkaPublisher {
    return new KafkaPublisher(this, name);
  }

  /** A lease held by one member of a group at a time (lease.ts); its topic must exist with one partition. */
  lease(options: LeaseOptions): KafkaLease {
    return new KafkaLease(this, options);
  }

  consumer(options: ConsumerOptions): ConsumerRunner {
    return new ConsumerRunner(this, options);
  }
}
