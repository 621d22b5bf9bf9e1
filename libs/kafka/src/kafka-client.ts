// The kafkajs boundary: the only module of the repository that imports kafkajs (checked by
// test/architecture.unit.spec.ts). It builds every kafkajs object with the settings handed to it:
// the client (timeouts, retries, and its log forwarded with repeats rate-limited), the idempotent
// producer of KafkaPublisher and the group consumer of ConsumerRunner. The modules on top
// (client.ts, publisher.ts, consumer-runner.ts) use these objects through the kafkajs types
// re-exported here.
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import type { Consumer, LogEntry, Producer } from 'kafkajs';
import type { ConsumerOptions, KafkaClientOptions, KafkaLog } from './types.js';

export type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';

/** Most distinct kafkajs messages remembered for rate limiting (bounds the map). */
const MAX_RATE_LIMITED_MESSAGES = 200;
/** The same kafkajs complaint is logged at most once per this period: a broker outage repeats it many times a second. */
const REPEAT_LOG_PERIOD_MS = 10_000;

/** The kafkajs client of a KafkaClient; kafkajs's warnings and errors go to log. */
export function createKafka(options: KafkaClientOptions, log: KafkaLog): Kafka {
  const lastLogged = new Map<string, number>();
  return new Kafka({
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

/** A KafkaPublisher's producer, not connected yet: idempotent, one request in flight, bounded retries. */
export function createIdempotentProducer(kafka: Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner, // murmur2, the Java client's: same key, same partition
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 },
  });
}

/** A ConsumerRunner's group consumer, not connected yet (one per connection attempt). */
export function createGroupConsumer(kafka: Kafka, options: ConsumerOptions): Consumer {
  return kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeoutMs ?? 10_000,
    heartbeatInterval: 1_000,
    maxBytesPerPartition: options.maxBytesPerPartition ?? 1024 * 1024,
    maxBytes: 8 * 1024 * 1024,
    maxWaitTimeInMs: 1_000,
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 300, maxRetryTime: 3_000, retries: 5 },
  });
}

/** A KafkaLease's group member, not connected yet: it fetches nothing (its topic stays empty) and heartbeats every second. */
export function createLeaseConsumer(kafka: Kafka, groupId: string, sessionTimeoutMs: number): Consumer {
  return kafka.consumer({
    groupId,
    sessionTimeout: sessionTimeoutMs,
    heartbeatInterval: 1_000,
    maxWaitTimeInMs: 1_000,
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 300, maxRetryTime: 3_000, retries: 5 },
  });
}
