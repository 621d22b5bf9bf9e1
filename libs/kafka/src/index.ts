// The Kafka adapter (kafkajs behind a small, framework-free API): topics, an idempotent publisher
// and an at-least-once consumer-group runner.
export { ConsumerRunner, KafkaClient, KafkaPublisher, backoffMs, sleep, stderrLog } from './kafka-client.js';
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
} from './kafka-client.js';
