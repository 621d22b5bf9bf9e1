// The data types of the Kafka adapter's API, shared by its modules: the log, the client's options,
// topics and messages going out and coming in, and the consumer runner's options and state.

export type KafkaLogLevel = 'error' | 'warn' | 'info';
export type KafkaLog = (level: KafkaLogLevel, msg: string, fields?: Record<string, unknown>) => void;

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
  /** The partition, when the sender chooses it (tests); otherwise the key's. */
  partition?: number;
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
  /** After each batch: messages of the partition after the last one handled (the consumer's lag there). */
  onLag?: (topic: string, partition: number, lag: number) => void;
}

export type ConsumerState = 'idle' | 'connecting' | 'running' | 'reconnecting' | 'stopped';
