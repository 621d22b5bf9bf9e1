// Kafka is off unless KAFKA_BROKERS is set; everything else has a default. Read once at start.

export interface KafkaTopics {
  /** Commands in: SettleDischarge / ReverseSettlement, key hospitalId:visitId. */
  discharges: string;
  /** Outcomes of those commands, key personId. */
  settlements: string;
  /** Messages that can never succeed (not JSON, unknown type, invalid fields), as they came. */
  dlq: string;
  /** Every recorded event, key streamId. */
  events: string;
  /** Events that carry payouts (DischargeSettled, SettlementReversed), key streamId. */
  payouts: string;
  /** Monitoring flags and their clearings (HighMedicalCostFlagged / HighMedicalCostCleared), as on events, key streamId. */
  alerts: string;
}

export interface KafkaSettings {
  brokers: string[];
  groupId: string;
  topicPrefix: string;
  partitions: number;
  sessionTimeoutMs: number;
  topics: KafkaTopics;
}

const TOPIC_PREFIX_PATTERN = /^[A-Za-z0-9._-]{0,100}$/;
const GROUP_ID_PATTERN = /^[A-Za-z0-9._:-]{1,200}$/;
const BROKER_PATTERN = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$/;

export function topicNames(prefix: string): KafkaTopics {
  return {
    discharges: `${prefix}medaid.discharges.v1`,
    settlements: `${prefix}medaid.settlements.v1`,
    dlq: `${prefix}medaid.discharges.dlq.v1`,
    events: `${prefix}medaid.events.v1`,
    payouts: `${prefix}medaid.payouts.v1`,
    alerts: `${prefix}medaid.alerts.v1`,
  };
}

/** null when KAFKA_BROKERS is unset or empty; throws on a setting that is present but wrong. */
export function kafkaSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaSettings | null {
  const raw = env.KAFKA_BROKERS?.trim() ?? '';
  if (raw === '') return null;
  const brokers = raw
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  const bad = brokers.find((b) => !BROKER_PATTERN.test(b));
  if (bad !== undefined) throw new Error(`KAFKA_BROKERS: "${bad}" is not host:port`);
  if (brokers.length > 100) throw new Error('KAFKA_BROKERS: at most 100 brokers');
  const groupId = env.KAFKA_GROUP_ID?.trim() || 'medaid';
  if (!GROUP_ID_PATTERN.test(groupId)) throw new Error(`KAFKA_GROUP_ID must match ${GROUP_ID_PATTERN.source}`);
  const topicPrefix = env.KAFKA_TOPIC_PREFIX?.trim() ?? '';
  if (!TOPIC_PREFIX_PATTERN.test(topicPrefix)) throw new Error(`KAFKA_TOPIC_PREFIX must match ${TOPIC_PREFIX_PATTERN.source}`);
  const partitions = integerSetting(env, 'KAFKA_TOPIC_PARTITIONS', 3, 1, 1_000);
  // The broker's group.min.session.timeout.ms is 6 s by default: nothing shorter is accepted.
  const sessionTimeoutMs = integerSetting(env, 'KAFKA_SESSION_TIMEOUT_MS', 10_000, 6_000, 300_000);
  return { brokers, groupId, topicPrefix, partitions, sessionTimeoutMs, topics: topicNames(topicPrefix) };
}

function integerSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) throw new Error(`${name} must be an integer from ${min} to ${max}, not "${raw}"`);
  return value;
}
