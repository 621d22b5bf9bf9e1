// ConsumerRunner: the at-least-once consumer-group runner. A supervisor (re)connects the group
// member; each batch is handled in waves (same key in order, bounded retries per message), and an
// offset is committed only once every message before it was handled.
import type { KafkaClient } from './client.js';
import { backoffMs, sleep } from './helpers.js';
import { createGroupConsumer } from './kafka-client.js';
import type { Consumer, EachBatchPayload, KafkaMessage } from './kafka-client.js';
import type { BackoffOptions, ConsumerOptions, ConsumerState, IncomingMessage } from './types.js';

/** How long a sleeping retry may go without a heartbeat, well inside any session timeout. */
const HEARTBEAT_SLICE_MS = 1_000;

/**
 * A consumer group member that survives broker outages: kafkajs restarts itself after most
 * failures; when it gives up (a crash it will not restart from), this runner builds a new consumer
 * after a backoff. Messages are handled one at a time per partition; an offset is committed only
 * after its handler resolved, so a crash re-delivers at most the uncommitted tail.
 */
export class ConsumerRunner {
  state: ConsumerState = 'idle';
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly maxAttempts: number;
  private readonly commitEvery: number;
  private readonly wave: number;
  private readonly backoff: BackoffOptions;

  constructor(
    private readonly client: KafkaClient,
    private readonly options: ConsumerOptions,
  ) {
    this.maxAttempts = limit('maxAttempts', options.maxAttempts ?? 10, 1_000);
    this.commitEvery = limit('commitEveryMessages', options.commitEveryMessages ?? 100, 10_000);
    limit('partitionsConcurrently', options.partitionsConcurrently ?? 1, 64);
    this.wave = limit('messagesConcurrently', options.messagesConcurrently ?? 1, 1_000);
    limit('maxBytesPerPartition', options.maxBytesPerPartition ?? 1024 * 1024, 64 * 1024 * 1024);
    this.backoff = options.retryBackoff ?? { initialMs: 100, maxMs: 5_000 };
  }

  start(): void {
    this.loop ??= this.supervise();
  }

  /** Lets the message being handled finish (its offset is committed), then leaves the group. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    this.state = 'stopped';
  }

  private async supervise(): Promise<void> {
    const { signal } = this.stopping;
    const stopped = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    for (let failures = 0; !signal.aborted;) {
      this.state = failures === 0 ? 'connecting' : 'reconnecting';
      const consumer = this.createConsumer();
      const crashed = new Promise<Error>((resolve) => {
        consumer.on(consumer.events.CRASH, (event) => {
          if (!event.payload.restart) resolve(event.payload.error);
        });
      });
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [...this.options.topics], fromBeginning: this.options.fromBeginning ?? true });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: this.options.partitionsConcurrently ?? 1,
          eachBatch: (payload) => this.eachBatch(payload),
        });
        this.state = 'running';
        failures = 0;
        const crash = await Promise.race([crashed, stopped]);
        if (crash) throw crash;
      } catch (error) {
        failures += 1;
        if (!signal.aborted)
          this.client.log('warn', 'kafka consumer failed; reconnecting', { groupId: this.options.groupId, error: String(error), failures });
      }
      await consumer.disconnect().catch(() => undefined);
      if (!signal.aborted) await sleep(backoffMs(failures, { initialMs: 500, maxMs: 10_000 }), signal);
    }
  }

  private createConsumer(): Consumer {
    return createGroupConsumer(this.client.kafka, this.options);
  }

  private async eachBatch({
    batch,
    resolveOffset,
    heartbeat,
    commitOffsetsIfNecessary,
    isRunning,
    isStale,
  }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    let lastHandled: string | undefined;
    let uncommitted = 0;
    const commit = async () => {
      if (lastHandled === undefined || uncommitted === 0) return;
      const offset = (BigInt(lastHandled) + 1n).toString(); // the committed offset is the next one to read
      await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset }] }] });
      uncommitted = 0;
    };
    try {
      for (let start = 0; start < batch.messages.length; start += this.wave) {
        if (this.stopping.signal.aborted || !isRunning() || isStale()) break;
        const wave = batch.messages.slice(start, start + this.wave);
        const outcomes = await Promise.allSettled(this.handleWave(topic, partition, wave, heartbeat));
        // Only a prefix of fully handled messages may be committed: a later one handled before an
        // earlier one failed is handled again after redelivery (handlers are idempotent).
        let done = 0;
        while (done < wave.length && outcomes[done]!.status === 'fulfilled' && (outcomes[done] as PromiseFulfilledResult<boolean>).value)
          done++;
        for (const message of wave.slice(0, done)) {
          resolveOffset(message.offset);
          lastHandled = message.offset;
          uncommitted++;
        }
        if (uncommitted >= this.commitEvery) await commit();
        const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
        if (done < wave.length) break; // stopping: left uncommitted, delivered again later
        await heartbeat();
      }
    } finally {
      const next = lastHandled === undefined ? batch.firstOffset() : (BigInt(lastHandled) + 1n).toString();
      if (next !== null) this.options.onLag?.(topic, partition, Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(next))));
      // Commit what was handled even when the batch ends with an error, so it is not handled again.
      await commit().catch((error: unknown) =>
        this.client.log('warn', 'kafka offset commit failed; those messages will be delivered again', {
          topic,
          partition,
          error: String(error),
        }),
      );
    }
  }

  /** Starts a wave: messages with the same key one after another, others at once. */
  private handleWave(
    topic: string,
    partition: number,
    wave: readonly KafkaMessage[],
    heartbeat: () => Promise<void>,
  ): Array<Promise<boolean>> {
    const tails = new Map<string, Promise<boolean>>();
    return wave.map((message) => {
      const key = message.key === null ? `offset:${message.offset}` : `key:${message.key.toString('base64')}`;
      const previous = tails.get(key) ?? Promise.resolve(true);
      const handled = previous.then((ok) => (ok ? this.handleWithRetry(toIncoming(topic, partition, message), heartbeat) : false));
      tails.set(
        key,
        handled.catch(() => false),
      );
      return handled;
    });
  }

  /** true when handled; false when stopping first; throws after maxAttempts. */
  private async handleWithRetry(message: IncomingMessage, heartbeat: () => Promise<void>): Promise<boolean> {
    const { signal } = this.stopping;
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return false;
      try {
        await this.options.handle(message, { attempt, signal, heartbeat });
        return true;
      } catch (error) {
        if (attempt >= this.maxAttempts) throw error;
        if (attempt === 1 || attempt % 5 === 0) {
          this.client.log('warn', 'kafka message handler failed; retrying', {
            topic: message.topic,
            partition: message.partition,
            offset: message.offset,
            attempt,
            error: String(error),
          });
        }
        for (let left = backoffMs(attempt, this.backoff); left > 0 && !signal.aborted; left -= HEARTBEAT_SLICE_MS) {
          await heartbeat().catch(() => undefined); // a failing heartbeat surfaces at the next one outside the retry
          await sleep(Math.min(left, HEARTBEAT_SLICE_MS), signal);
        }
      }
    }
  }
}

function toIncoming(topic: string, partition: number, m: KafkaMessage): IncomingMessage {
  const headers: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(m.headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) headers[name] = Buffer.isBuffer(first) ? first : Buffer.from(first);
  }
  return { topic, partition, offset: m.offset, timestamp: m.timestamp, key: m.key, value: m.value, headers };
}

function limit(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`${name} must be an integer from 1 to ${max}, not ${value}`);
  return value;
}
