// The Kafka adapter (kafkajs behind a small, framework-free API): topics, an idempotent publisher
// and an at-least-once consumer-group runner.
export { KafkaClient } from './client.js';
export { ConsumerRunner } from './consumer-runner.js';
export { backoffMs, sleep, stderrLog } from './helpers.js';
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
