// The Kafka adapter (kafkajs behind a small, framework-free API): topics, an idempotent publisher,
// an at-least-once consumer-group runner, and a lease for work that must run in one instance.
export { KafkaClient } from './client.js';
export { ConsumerRunner } from './consumer-runner.js';
export { backoffMs, sleep, stderrLog } from './helpers.js';
export { KafkaLease } from './lease.js';
export type { LeaseOptions, LeaseState, LeaseTerm } from './lease.js';
export { KafkaPublisher } from './publisher.js';
export type {
  BackoffOptions,
  ConsumerOptions,
  ConsumerState,
  HandlerContext,
  IncomingMessage,
  KafkaClientOptions,
  KafkaLog,
  KafkaLogLevel,
  OutgoingMessage,
  PartitionOffsets,
  TopicMessages,
  TopicSpec,
} from './types.js';
