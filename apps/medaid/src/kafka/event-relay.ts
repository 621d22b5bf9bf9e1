// Egress relay (transactional outbox over the event log): follows $all from a durable checkpoint
// and publishes every recorded event to medaid.events.v1, and the payout-bearing ones also to
// medaid.payouts.v1. The store's log is the outbox: an event is recorded first and relayed after,
// so HTTP settlement never waits for Kafka and keeps working while the broker is down.
// - Order: one batch in flight at a time, events in log order, key = streamId, and an idempotent
//   producer, so the first copy of each event in a partition appears in stream order.
// - No loss: the checkpoint moves only after Kafka acknowledged the whole batch. A crash in between
//   republishes from the checkpoint; consumers drop the duplicates by the event-id header.
// - Bounded: at most one batch in flight, one waiting behind it and one forming (maxBatchEvents,
//   maxBatchBytes); while they wait for Kafka the subscription handler waits too, which stops
//   reading the log — but reading the next batch overlaps with publishing the one before.
import type { EventStore, RecordedEvent, Subscription } from '#event-store';
import { backoffMs, sleep } from '#kafka';
import type { BackoffOptions, KafkaLog, KafkaPublisher, OutgoingMessage, TopicMessages } from '#kafka';
import type { RelayCheckpoint } from './relay-checkpoint.js';

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
  /** Most events in one batch (default 500). */
  maxBatchEvents?: number;
  /** Most bytes (values + headers) in one batch (default 512 KiB, half of Kafka's default request batch limit); a larger single event goes alone. */
  maxBatchBytes?: number;
  /** How long a partial batch waits for more events (default 10 ms). */
  lingerMs?: number;
  retryBackoff?: BackoffOptions;
}

export type RelayState = 'idle' | 'publishing' | 'retrying' | 'stopped';

interface Prepared {
  position: number;
  bytes: number;
  event: OutgoingMessage;
  payout: boolean;
}

export class EventRelay {
  state: RelayState = 'idle';
  /** Every event up to here is acknowledged by Kafka (and checkpointed). */
  position = 0;
  private buffer: Prepared[] = [];
  private bufferBytes = 0;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private subscription: Subscription | undefined;
  private readonly stopping = new AbortController();
  private readonly maxBatchEvents: number;
  private readonly maxBatchBytes: number;
  private readonly lingerMs: number;
  private readonly backoff: BackoffOptions;

  constructor(
    private readonly store: EventStore,
    private readonly publisher: Pick<KafkaPublisher, 'send'>,
    private readonly checkpoint: RelayCheckpoint,
    private readonly topics: { events: string; payouts: string },
    private readonly log: KafkaLog,
    options: RelayOptions = {},
  ) {
    this.maxBatchEvents = options.maxBatchEvents ?? 500;
    this.maxBatchBytes = options.maxBatchBytes ?? 512 * 1024;
    this.lingerMs = options.lingerMs ?? 10;
    this.backoff = options.retryBackoff ?? { initialMs: 200, maxMs: 5_000 };
    if (!(this.maxBatchEvents >= 1 && this.maxBatchEvents <= 10_000)) throw new Error('maxBatchEvents must be 1 to 10,000');
  }

  async start(): Promise<void> {
    let from = await this.checkpoint.read().catch((error: unknown) => {
      // Relaying everything again is safe (consumers drop duplicates by event id); skipping events is not.
      this.log('warn', 'kafka relay checkpoint unreadable; relaying from the start', { path: this.checkpoint.path, error: String(error) });
      return 0;
    });
    const head = await this.store.headPosition();
    if (from > head) {
      // The checkpoint points past the end of this log: it belongs to another store. Republish all.
      this.log('warn', 'kafka relay checkpoint is ahead of the event log; relaying from the start', { checkpoint: from, head });
      from = 0;
    }
    this.position = from;
    this.subscribe();
  }

  /**
   * Flushes what is recorded up to now (bounded by deadlineMs, and not at all while Kafka is
   * failing: the checkpoint keeps those events for the next start), then stops reading the log.
   */
  async stop(deadlineMs = 5_000): Promise<void> {
    const head = await this.store.headPosition().catch(() => this.position);
    const deadline = Date.now() + deadlineMs;
    while (this.subscription !== undefined && this.position < head && this.state !== 'retrying' && Date.now() < deadline) await sleep(20);
    this.stopping.abort();
    clearTimeout(this.timer);
    await this.subscription?.unsubscribe();
    await this.chain;
    this.state = 'stopped';
    this.log('info', 'kafka relay stopped', { position: this.position, head });
  }

  private subscribe(): void {
    if (this.stopping.signal.aborted) return;
    this.subscription = this.store.subscribeToAll((event) => this.onEvent(event), {
      fromPosition: this.position,
      onError: (error) => void this.resubscribe(error),
    });
  }

  /** The subscription failed (e.g. a read error): wait, drop what was not acknowledged, and follow again from the checkpoint. */
  private async resubscribe(error: unknown): Promise<void> {
    this.subscription = undefined;
    if (this.stopping.signal.aborted) return;
    this.log('warn', 'kafka relay: reading the event log failed; following again from the checkpoint', {
      error: String(error),
      position: this.position,
    });
    await this.chain;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.buffer = [];
    this.bufferBytes = 0;
    await sleep(backoffMs(1, this.backoff), this.stopping.signal);
    this.subscribe();
  }

  private async onEvent(event: RecordedEvent): Promise<void> {
    if (this.stopping.signal.aborted) return;
    const prepared = prepare(event);
    if (this.buffer.length > 0 && (this.buffer.length >= this.maxBatchEvents || this.bufferBytes + prepared.bytes > this.maxBatchBytes)) {
      // The full batch goes behind the one in flight; reading goes on into the next batch once the
      // one in flight is acknowledged (backpressure: one in flight, one waiting, one forming).
      const inFlight = this.chain;
      void this.flush();
      await inFlight;
    }
    this.buffer.push(prepared);
    this.bufferBytes += prepared.bytes;
    this.timer ??= setTimeout(() => void this.flush(), this.lingerMs);
  }

  /** Publishes the forming batch after the one in flight; resolves when it is acknowledged (or stopping). */
  private flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer;
    this.buffer = [];
    this.bufferBytes = 0;
    if (batch.length === 0) return this.chain;
    this.chain = this.chain.then(() => this.publish(batch));
    return this.chain;
  }

  private async publish(batch: Prepared[]): Promise<void> {
    const last = batch[batch.length - 1]!.position;
    if (last <= this.position) return; // already relayed before a resubscription
    const messages: TopicMessages[] = [
      { topic: this.topics.events, messages: batch.map((p) => p.event) },
      { topic: this.topics.payouts, messages: batch.filter((p) => p.payout).map((p) => p.event) },
    ];
    for (let attempt = 1; !this.stopping.signal.aborted; attempt++) {
      try {
        await this.publisher.send(messages);
        await this.checkpoint.write(last);
        this.position = last;
        if (this.state === 'retrying') this.log('info', 'kafka relay publishing again', { position: last });
        this.state = 'publishing';
        return;
      } catch (error) {
        if (this.state !== 'retrying' || attempt % 10 === 0)
          this.log('warn', 'kafka relay cannot publish; retrying', { error: String(error), attempt, position: this.position });
        this.state = 'retrying';
        await sleep(backoffMs(attempt, this.backoff), this.stopping.signal);
      }
    }
  }
}

function prepare(e: RecordedEvent): Prepared {
  const value = JSON.stringify({
    id: e.id,
    type: e.type,
    streamId: e.streamId,
    revision: e.revision,
    position: e.position,
    createdMs: e.createdMs,
    data: e.data,
    metadata: e.metadata,
  });
  const headers = {
    'event-id': e.id,
    'event-type': e.type,
    'stream-id': e.streamId,
    'stream-revision': String(e.revision),
    'log-position': String(e.position),
  };
  const bytes = Buffer.byteLength(value) + Buffer.byteLength(e.streamId) + 200;
  return { position: e.position, bytes, payout: carriesPayouts(e), event: { key: e.streamId, value, headers } };
}
