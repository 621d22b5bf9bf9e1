// Kafka settings from the environment: off unless KAFKA_BROKERS is set, defaults, and refusals.
import { describe, expect, it } from '@jest/globals';
import { kafkaSettingsFromEnv } from './kafka-settings.js';

describe('kafkaSettingsFromEnv', () => {
  it('given no KAFKA_BROKERS (or an empty one), then Kafka is off', () => {
    expect(kafkaSettingsFromEnv({})).toBeNull();
    expect(kafkaSettingsFromEnv({ KAFKA_BROKERS: ' ' })).toBeNull();
  });

  it('given only KAFKA_BROKERS, then the defaults apply: group medaid, 3 partitions, the v1 topic names', () => {
    expect(kafkaSettingsFromEnv({ KAFKA_BROKERS: '127.0.0.1:19092, kafka-2:9092' })).toEqual({
      brokers: ['127.0.0.1:19092', 'kafka-2:9092'],
      groupId: 'medaid',
      topicPrefix: '',
      partitions: 3,
      sessionTimeoutMs: 10_000,
      topics: {
        discharges: 'medaid.discharges.v1',
        settlements: 'medaid.settlements.v1',
        dlq: 'medaid.discharges.dlq.v1',
        events: 'medaid.events.v1',
        payouts: 'medaid.payouts.v1',
        alerts: 'medaid.alerts.v1',
      },
    });
  });

  it('given a prefix, a group and a partition count, then they are used', () => {
    const s = kafkaSettingsFromEnv({
      KAFKA_BROKERS: 'k:1',
      KAFKA_TOPIC_PREFIX: 'staging.',
      KAFKA_GROUP_ID: 'medaid-a',
      KAFKA_TOPIC_PARTITIONS: '12',
    });
    expect([s?.topics.events, s?.groupId, s?.partitions]).toEqual(['staging.medaid.events.v1', 'medaid-a', 12]);
  });

  it.each([
    [{ KAFKA_BROKERS: 'no-port' }, /KAFKA_BROKERS/],
    [{ KAFKA_BROKERS: 'k:1', KAFKA_TOPIC_PARTITIONS: '0' }, /KAFKA_TOPIC_PARTITIONS/],
    [{ KAFKA_BROKERS: 'k:1', KAFKA_TOPIC_PARTITIONS: '3.5' }, /KAFKA_TOPIC_PARTITIONS/],
    [{ KAFKA_BROKERS: 'k:1', KAFKA_TOPIC_PREFIX: 'bad/prefix' }, /KAFKA_TOPIC_PREFIX/],
    [{ KAFKA_BROKERS: 'k:1', KAFKA_GROUP_ID: 'a b' }, /KAFKA_GROUP_ID/],
    [{ KAFKA_BROKERS: 'k:1', KAFKA_SESSION_TIMEOUT_MS: '1000' }, /KAFKA_SESSION_TIMEOUT_MS/],
  ])('given %j, then start-up refuses it', (env, message) => {
    expect(() => kafkaSettingsFromEnv(env)).toThrow(message);
  });
});
