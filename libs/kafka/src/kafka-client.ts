// The Kafka adapter: the only module of the repository that imports kafkajs. Framework-free, so
// the service wires it however it likes. Three things, each with its limits stated:
// - topics: create the missing ones (admin);
// - KafkaPublisher: an idempotent producer (acks = all, one request in flight, so the messages of
//   one key keep their order), replaced by a fresh one after any failed send;
// - ConsumerRunner: a consumer group that hands messages one at a time per partition to a
//   handler and commits an offset only after the handler resolved (at-least-once), with bounded
//   batches, bounded retries, a supervisor that reconnects after a crash, and a clean stop.
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import type { Consumer, EachBatchPayload, KafkaMessage, LogEntry, Producer } from 'kafkajs';

export type KafkaLogLevel = 'error' | 'warn' | 'info';
export type KafkaLog = (level: KafkaLogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** JSON lines on stderr, like the rest of the service's own log. */
export const stderrLog: KafkaLog = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
};

export interface KafkaClientOptions {
  brokers: readonly string[];
  clientId: string;
  log?: KafkaLog;
  /** TCP connect timeout per broker (default 3 s). */
  connectionTimeoutMs?: number;
  /** Timeout of one request (default 15 s); a fetch long-polls for at most 1 s of it. */
  requestTimeoutMs?: number;
}

export interface TopicSpec {
  topic: string;
  partitions: number;
}
export interface PartitionOffsets {
  partition: number;
  low: string;
  high: string;
}

export interface OutgoingMessage {
  key: string | Buffer | null;
  value: string | Buffer | null;
  headers?: Record<string, string | Buffer>;
}
export interface TopicMessages {
  topic: string;
  messages: OutgoingMessage[];
}

export interface IncomingMessage {
  topic: string;
  partition: number;
  /** Kafka offsets are 64-bit: kept as the decimal string kafkajs gives. */
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer>;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/** Exponential backoff with jitter: attempt 1 waits about initialMs, doubling up to maxMs. */
export function backoffMs(attempt: number, { initialMs, maxMs }: BackoffOptions): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Waits ms, or less when the signal aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Most distinct kafkajs messages remembered for rate limiting (bounds the map). */
const MAX_RATE_LIMITED_MESSAGES = 200;
/** The same kafkajs complaint is logged at most once per this period: a broker outage repeats it many times a second. */
const REPEAT_LOG_PERIOD_MS = 10_000;

export class KafkaClient {
  readonly kafka: Kafka;
  readonly log: KafkaLog;

  constructor(options: KafkaClientOptions) {
    if (options.brokers.length === 0) throw new Error('at least one Kafka broker is needed');
    this.log = options.log ?? stderrLog;
    const lastLogged = new Map<string, number>();
    const log = this.log;
    this.kafka = new Kafka({
      brokers: [...options.brokers],
      clientId: options.clientId,
      connectionTimeout: options.connectionTimeoutMs ?? 3_000,
      requestTimeout: options.requestTimeoutMs ?? 15_000,
      retry: { initialRetryTime: 200, maxRetryTime: 3_000, retries: 5 },
      logLevel: logLevel.WARN,
      logCreator: () => (entry: LogEntry) => {
        const { message, timestamp: _t, logger: _l, stack: _s, ...extra } = entry.log;
        // We limit the idempotent producer's retries on purpose (a failed producer is replaced, see
        // KafkaPublisher), so kafkajs's warning about that is expected and not repeated.
        if (message.startsWith('Limiting retries for the idempotent producer')) return;
        const now = Date.now();
        const key = `${entry.namespace}:${message}`;
        if (now - (lastLogged.get(key) ?? 0) < REPEAT_LOG_PERIOD_MS) return;
        if (lastLogged.size >= MAX_RATE_LIMITED_MESSAGES) lastLogged.clear();
        lastLogged.set(key, now);
        log(entry.level === logLevel.ERROR ? 'error' : 'warn', `kafkajs: ${message}`, { namespace: entry.namespace, ...extra });
      },
    });
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

  consumer(options: ConsumerOptions): ConsumerRunner {
    return new ConsumerRunner(this, options);
  }
}

/**
 * Sends with an idempotent producer: acks from all in-sync replicas, one request in flight per
 * broker, so a retried request can neither duplicate nor reorder the messages of one partition.
 * kafkajs retries a send a bounded number of times; when it gives up, the producer is thrown away
 * and the next send starts a fresh one (new producer id, fresh sequence numbers). Re-sending the
 * same messages after that may duplicate them in Kafka, never reorder them: callers that need
 * exactly-once (the relay) give every message an id for consumers to drop duplicates by.
 */
/** Tries of ensureTopics on retriable broker answers (about 30 s with its backoff). */
const ENSURE_TOPICS_ATTEMPTS = 14;

/** Bound one coalesced request: at most this many sends, and no more sends once this many bytes are in. */
const MAX_COALESCED_SENDS = 500;
const MAX_COALESCED_BYTES = 4 * 1024 * 1024;
const sizeOf = (x: unknown) => (typeof x === 'string' ? Buffer.byteLength(x) : Buffer.isBuffer(x) ? x.length : 0);

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
      const producer = this.client.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner, // murmur2, the Java client's: same key, same partition
        retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 },
      });
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

export interface HandlerContext {
  /** 1 on the first delivery in this process, counting up on each retry. */
  attempt: number;
  /** Aborted when the runner stops: long waits inside the handler should end. */
  signal: AbortSignal;
  /** Keeps the group membership alive during long work. */
  heartbeat(): Promise<void>;
}

export interface ConsumerOptions {
  groupId: string;
  topics: readonly string[];
  /** Where a group with no committed offset starts: the earliest message (default) or only new ones. */
  fromBeginning?: boolean;
  /** Called once per message, in offset order per partition; the offset is committed after it resolves. */
  handle(message: IncomingMessage, context: HandlerContext): Promise<void>;
  /** Partitions handled at the same time (default 1, at most 64). */
  partitionsConcurrently?: number;
  /**
   * Messages of one partition handled at the same time (default 1, at most 1,000). Messages with
   * the same key are still handled one after the other, in offset order; offsets are committed
   * only up to the last message before which every message was handled.
   */
  messagesConcurrently?: number;
  /** Commit at least every this many handled messages of a partition (default 100, at most 10,000). */
  commitEveryMessages?: number;
  /** Most bytes fetched per partition in one request (default 1 MiB, at most 64 MiB). */
  maxBytesPerPartition?: number;
  /** A member that stops heartbeating is dropped from the group after this (default 10 s, broker minimum 6 s). */
  sessionTimeoutMs?: number;
  /** Tries per message in one delivery (default 10); after that the consumer restarts and the message is fetched again. */
  maxAttempts?: number;
  retryBackoff?: BackoffOptions;
}

export type ConsumerState = 'idle' | 'connecting' | 'running' | 'reconnecting' | 'stopped';

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
    return this.client.kafka.consumer({
      groupId: this.options.groupId,
      sessionTimeout: this.options.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: 1_000,
      maxBytesPerPartition: this.options.maxBytesPerPartition ?? 1024 * 1024,
      maxBytes: 8 * 1024 * 1024,
      maxWaitTimeInMs: 1_000,
      allowAutoTopicCreation: false,
      retry: { initialRetryTime: 300, maxRetryTime: 3_000, retries: 5 },
    });
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
