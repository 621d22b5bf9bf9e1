// KafkaPublisher: the idempotent publisher. Concurrent sends are coalesced into bounded requests,
// one in flight at a time; a producer that failed a send is replaced by a fresh one.
import type { KafkaClient } from './client.js';
import { createIdempotentProducer } from './kafka-client.js';
import type { Producer } from './kafka-client.js';
import type { TopicMessages } from './types.js';

/** Bound one coalesced request: at most this many sends, and no more sends once this many bytes are in. */
const MAX_COALESCED_SENDS = 500;
const MAX_COALESCED_BYTES = 4 * 1024 * 1024;
const sizeOf = (x: unknown) => (typeof x === 'string' ? Buffer.byteLength(x) : Buffer.isBuffer(x) ? x.length : 0);

/**
 * Sends with an idempotent producer: acks from all in-sync replicas, one request in flight per
 * broker, so a retried request can neither duplicate nor reorder the messages of one partition.
 * kafkajs retries a send a bounded number of times; when it gives up, the producer is thrown away
 * and the next send starts a fresh one (new producer id, fresh sequence numbers). Re-sending the
 * same messages after that may duplicate them in Kafka, never reorder them: callers that need
 * exactly-once (the relay) give every message an id for consumers to drop duplicates by.
 */
export class KafkaPublisher {
  private producer: Promise<Producer> | undefined;
  private closed = false;

  constructor(
    private readonly client: KafkaClient,
    readonly name: string,
  ) {}

  /**
   * Resolves when every message was acknowledged by the broker; rejects otherwise (nothing is
   * retried here after that). Sends that arrive while one is under way go together in the next
   * request, in arrival order: with one request in flight, many concurrent callers still get
   * their messages out in few round trips.
   */
  send(batches: readonly TopicMessages[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`publisher ${this.name} is closed`));
    const topicMessages = batches
      .filter((b) => b.messages.length > 0)
      .map((b) => ({ topic: b.topic, messages: b.messages.map((m) => ({ ...m })) }));
    if (topicMessages.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ topicMessages, resolve, reject });
      if (!this.sending) void this.drain();
    });
  }

  private readonly queue: Array<{ topicMessages: TopicMessages[]; resolve: () => void; reject: (error: unknown) => void }> = [];
  private sending = false;

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      while (this.queue.length > 0) {
        if (this.closed) {
          for (const r of this.queue.splice(0)) r.reject(new Error(`publisher ${this.name} is closed`));
          break;
        }
        let count = 0;
        let bytes = 0;
        while (count < this.queue.length && count < MAX_COALESCED_SENDS && (count === 0 || bytes < MAX_COALESCED_BYTES)) {
          bytes += this.queue[count]!.topicMessages.reduce(
            (s, t) => s + t.messages.reduce((n, m) => n + sizeOf(m.value) + sizeOf(m.key), 0),
            0,
          );
          count++;
        }
        const requests = this.queue.splice(0, count);
        const pending = this.connected();
        try {
          const producer = await pending;
          await producer.sendBatch({ acks: -1, topicMessages: requests.flatMap((r) => r.topicMessages) });
          for (const r of requests) r.resolve();
        } catch (error) {
          this.discard(pending);
          for (const r of requests) r.reject(error);
        }
      }
    } finally {
      this.sending = false;
    }
  }

  async disconnect(): Promise<void> {
    this.closed = true;
    const pending = this.producer;
    this.producer = undefined;
    if (pending) await pending.then((p) => p.disconnect()).catch(() => undefined);
  }

  private connected(): Promise<Producer> {
    if (this.producer === undefined) {
      const producer = createIdempotentProducer(this.client.kafka);
      this.producer = producer.connect().then(
        () => producer,
        (error: unknown) => {
          void producer.disconnect().catch(() => undefined);
          throw error;
        },
      );
    }
    return this.producer;
  }

  private discard(pending: Promise<Producer>): void {
    if (this.producer === pending) this.producer = undefined;
    void pending.then((p) => p.disconnect()).catch(() => undefined);
  }
}
