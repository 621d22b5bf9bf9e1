// Egress relay (transactional outbox over the event log): follows $all from a durable checkpoint
// and publishes every recorded event to medaid.events.v1, and the payout-bearing ones also to
// medaid.payouts.v1. The store's log is the outbox: an event is recorded first and relayed after,
// so HTTP settlement never waits for Kafka and keeps working while the broker is down. It is the
// log's one checkpointed follower (#event-store's CheckpointedFollower) with Kafka as the sink.
// - Order: one batch in flight at a time, events in log order, key = streamId, and an idempotent
//   producer, so the first copy of each event in a partition appears in stream order.
// - No loss: the checkpoint moves only after Kafka acknowledged the whole batch. A failed send is
//   followed again from the checkpoint after a backoff (the same events, whole and in order); a
//   crash in between republishes from the checkpoint; consumers drop the duplicates by the
//   event-id header.
// - Bounded: one page of the log (maxBatchEvents) in hand, sent in batches of at most maxBatchBytes.
import { SpanKind } from '@opentelemetry/api';
import { inSpan } from '../shared/tracing.js';
import { CheckpointedFollower } from '#event-store';
import type { EventStore, RecordedEvent } from '#event-store';
import { backoffMs } from '#kafka';
import type { BackoffOptions, KafkaLog, KafkaPublisher, OutgoingMessage, TopicMessages } from '#kafka';
import type { RelayCheckpointStore } from './relay-checkpoint.js';
import type { Presented } from './public-events.js';

/** Event types that carry payouts (a reversal takes back the payouts of the settlement it names). */
export const PAYOUT_EVENT_TYPES: ReadonlySet<string> = new Set(['DischargeSettled', 'SettlementReversed']);

/**
 * Listed types, and any later type shaped like a settlement: its data has per-layer results
 * (`layers`, as DischargeSettled records them). A policy's layers sit under data.policy, so
 * PolicyPublished is not mistaken for one.
 */
export function carriesPayouts(event: Pick<RecordedEvent, 'type' | 'data'>): boolean {
  if (PAYOUT_EVENT_TYPES.has(event.type)) return true;
  const layers = (event.data as { layers?: unknown } | null)?.layers;
  return Array.isArray(layers) && layers.length > 0;
}

export interface RelayOptions {
  /** Most events read from the log at once (default 500). */
  maxBatchEvents?: number;
  /** Most bytes (values + headers) in one send (default 512 KiB, half of Kafka's default request batch limit); a larger single event goes alone. */
  maxBatchBytes?: number;
  /** How long to wait before reading the log again when it had nothing new (default 10 ms). */
  lingerMs?: number;
  retryBackoff?: BackoffOptions;
  /** The public form of each event and its payout record (public-events.ts); default: the stored form, and the event itself as its payout. */
  present?: (event: RecordedEvent) => Promise<Presented>;
}

export type RelayState = 'idle' | 'publishing' | 'retrying' | 'stopped';

interface Prepared {
  position: number;
  type: string;
  bytes: number;
  event: OutgoingMessage;
  payout: OutgoingMessage | null;
}

const ALERT_EVENTS: ReadonlySet<string> = new Set(['HighMedicalCostFlagged', 'HighMedicalCostCleared']);

/** A send Kafka refused (rather than a read of the log that failed): said so in the log. */
class SendFailed extends Error {}

export class EventRelay {
  state: RelayState = 'idle';
  /** Every event up to here is acknowledged by Kafka (and checkpointed). */
  position = 0;
  private readonly follower: CheckpointedFollower;
  private readonly maxBatchBytes: number;
  private readonly present: ((event: RecordedEvent) => Promise<Presented>) | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly publisher: Pick<KafkaPublisher, 'send'>,
    private readonly checkpoint: RelayCheckpointStore,
    private readonly topics: { events: string; payouts: string; alerts: string },
    private readonly log: KafkaLog,
    options: RelayOptions = {},
  ) {
    const maxBatchEvents = options.maxBatchEvents ?? 500;
    this.maxBatchBytes = options.maxBatchBytes ?? 512 * 1024;
    this.present = options.present;
    const backoff = options.retryBackoff ?? { initialMs: 200, maxMs: 5_000 };
    if (!(maxBatchEvents >= 1 && maxBatchEvents <= 10_000)) throw new Error('maxBatchEvents must be 1 to 10,000');
    const sink = { checkpoint: () => this.position, commit: (page: readonly RecordedEvent[]) => this.publish(page) };
    this.follower = new CheckpointedFollower(store, sink, {
      maxPageEvents: maxBatchEvents,
      idleMs: options.lingerMs ?? 10,
      retryDelayMs: (failures) => backoffMs(failures, backoff),
      onFailure: (error, at) => this.failed(error, at.failures),
    });
  }

  async start(): Promise<void> {
    let from = await this.checkpoint.read().catch((error: unknown) => {
      // Relaying everything again is safe (consumers drop duplicates by event id); skipping events is not.
      this.log('warn', 'kafka relay checkpoint unreadable; relaying from the start', {
        checkpoint: this.checkpoint.where,
        error: String(error),
      });
      return 0;
    });
    const head = await this.store.headPosition();
    if (from > head) {
      // The checkpoint points past the end of this log: it belongs to another store. Republish all.
      this.log('warn', 'kafka relay checkpoint is ahead of the event log; relaying from the start', { checkpoint: from, head });
      from = 0;
    }
    this.position = from;
    await this.follower.start();
  }

  /**
   * Flushes what is recorded up to now (bounded by deadlineMs, and not at all while Kafka is
   * failing: the checkpoint keeps those events for the next start), then stops reading the log.
   */
  async stop(deadlineMs = 5_000): Promise<void> {
    const head = await this.store.headPosition().catch(() => this.position);
    if (this.state !== 'retrying') await this.follower.reach(head, deadlineMs);
    await this.follower.stop();
    this.state = 'stopped';
    this.log('info', 'kafka relay stopped', { position: this.position, head });
  }

  /** Stops at once, without a last flush (another instance relays from here on); the batch in flight ends first. */
  async abandon(): Promise<void> {
    if (this.state === 'stopped') return;
    await this.follower.stop();
    this.state = 'stopped';
    this.log('info', 'kafka relay handed over', { position: this.position });
  }

  /** Sends the page in batches bounded by bytes, moving the checkpoint after each acknowledged one. */
  private async publish(page: readonly RecordedEvent[]): Promise<void> {
    let batch: Prepared[] = [];
    let bytes = 0;
    for (const event of page) {
      const prepared = prepare(event, this.present === undefined ? undefined : await this.present(event));
      if (batch.length > 0 && bytes + prepared.bytes > this.maxBatchBytes) {
        await this.send(batch);
        [batch, bytes] = [[], 0];
      }
      batch.push(prepared);
      bytes += prepared.bytes;
    }
    if (batch.length > 0) await this.send(batch);
  }

  private async send(batch: Prepared[]): Promise<void> {
    const last = batch[batch.length - 1]!.position;
    const messages: TopicMessages[] = [
      { topic: this.topics.events, messages: batch.map((p) => p.event) },
      { topic: this.topics.payouts, messages: batch.flatMap((p) => (p.payout === null ? [] : [p.payout])) },
      // the monitoring flags again on a topic of their own, for 民政 / 乡村振兴 systems that want only them
      { topic: this.topics.alerts, messages: batch.flatMap((p) => (ALERT_EVENTS.has(p.type) ? [p.event] : [])) },
    ];
    try {
      // one PRODUCER span per batch (the relay follows the log, outside any request's trace)
      await inSpan(
        `${this.topics.events} publish`,
        {
          'messaging.system': 'kafka',
          'messaging.operation': 'publish',
          'messaging.destination.name': this.topics.events,
          'messaging.batch.message_count': batch.length,
        },
        () => this.publisher.send(messages),
        SpanKind.PRODUCER,
      );
    } catch (error) {
      throw new SendFailed(String(error));
    }
    await this.checkpoint.write(last);
    this.position = last;
    if (this.state === 'retrying') this.log('info', 'kafka relay publishing again', { position: last });
    this.state = 'publishing';
  }

  private failed(error: unknown, attempt: number): void {
    if (this.state === 'stopped') return;
    const fields = { error: error instanceof SendFailed ? error.message : String(error), attempt, position: this.position };
    if (error instanceof SendFailed) {
      if (this.state !== 'retrying' || attempt % 10 === 0) this.log('warn', 'kafka relay cannot publish; retrying', fields);
    } else
      this.log('warn', 'kafka relay: reading the event log or writing the checkpoint failed; following again from the checkpoint', fields);
    this.state = 'retrying';
  }
}

function prepare(e: RecordedEvent, presented: Presented | undefined): Prepared {
  const value = JSON.stringify({
    id: e.id,
    type: e.type,
    streamId: e.streamId,
    revision: e.revision,
    position: e.position,
    createdMs: e.createdMs,
    data: presented === undefined ? e.data : presented.data,
    metadata: e.metadata,
  });
  const headers = {
    'event-id': e.id,
    'event-type': e.type,
    'stream-id': e.streamId,
    'stream-revision': String(e.revision),
    'log-position': String(e.position),
  };
  const event: OutgoingMessage = { key: e.streamId, value, headers };
  const payout =
    presented === undefined
      ? carriesPayouts(e)
        ? event
        : null
      : presented.payout === null
        ? null
        : { key: e.streamId, value: JSON.stringify(presented.payout), headers };
  const bytes =
    Buffer.byteLength(value) +
    (payout === null || payout === event ? 0 : Buffer.byteLength(payout.value as string)) +
    Buffer.byteLength(e.streamId) +
    200;
  return { position: e.position, type: e.type, bytes, payout, event };
}
