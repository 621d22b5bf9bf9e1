// KafkaLease: work that must run in one instance at a time (the event relay), held through Kafka's
// own group coordinator instead of a leader of ours. Every instance is a member of one consumer
// group on a topic with a single partition; the member the coordinator assigns that partition
// holds the lease. A member that dies stops heartbeating and is dropped after its session timeout
// (the broker's minimum is 6 s), and the partition goes to a survivor; a member that stops cleanly
// leaves the group and hands the lease over at once. No message is ever produced to the topic.
//
// A term carries a small state (the relay's checkpoint) as the metadata of the offset the holder
// commits on that partition. The coordinator takes a commit only from a member of the current
// generation, so a member that lost the lease (a rebalance it has not noticed yet) cannot move the
// state; the next holder reads it when its term begins.
//
// What the lease does not do: fence the work itself. Between a holder's loss and its noticing
// (at most one heartbeat, 1 s, plus the work in hand) two members may both be working; for the
// relay this means a few events published twice, which consumers drop by event id.
import type { KafkaClient } from './client.js';
import { backoffMs, sleep } from './helpers.js';
import { createLeaseConsumer } from './kafka-client.js';
import type { Consumer } from './kafka-client.js';

export type LeaseState = 'idle' | 'connecting' | 'standby' | 'held' | 'stopped';

/** One holder's time with the lease, from assignment until it is revoked or the member stops. */
export interface LeaseTerm {
  /** Which of this member's group joins assigned the lease (1, 2, …). */
  readonly join: number;
  /** Aborted when the term ends (revoked, crashed or stopping). */
  readonly ended: AbortSignal;
  /** The state the last holder committed; null when none was ever committed. */
  readState(): Promise<string | null>;
  /** Commits the state; refused by the coordinator once the term is over (throws then). */
  writeState(state: string): Promise<void>;
}

export interface LeaseOptions {
  groupId: string;
  /** A topic with exactly one partition, used only for its assignment (create it first). */
  topic: string;
  /** How long after a holder's last heartbeat another member may take over (default 6 s, the broker minimum). */
  sessionTimeoutMs?: number;
  /** The term began: start the work. Not called again before onEnded of this term resolved. */
  onAcquired(term: LeaseTerm): Promise<void>;
  /** The term ended: stop the work now (the state may no longer be written). */
  onEnded(term: LeaseTerm): Promise<void>;
}

/** Most bytes of state (Kafka's default offset.metadata.max.bytes is 4096). */
const MAX_STATE_BYTES = 4_000;

export class KafkaLease {
  state: LeaseState = 'idle';
  /** Terms this member has held (for /ready and the tests). */
  terms = 0;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private term: (LeaseTerm & { end: AbortController }) | null = null;
  private joins = 0;
  /** Term transitions, one after the other: a new term starts only after the last one's onEnded. */
  private transitions: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: KafkaClient,
    private readonly options: LeaseOptions,
  ) {}

  get held(): boolean {
    return this.term !== null;
  }

  start(): void {
    this.loop ??= this.supervise();
  }

  /** Ends a term held (onEnded runs first, so the work can finish its last write), then leaves the group. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    this.state = 'stopped';
  }

  private async supervise(): Promise<void> {
    const { signal } = this.stopping;
    const stopped = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    for (let failures = 0; !signal.aborted;) {
      this.state = 'connecting';
      const consumer = createLeaseConsumer(this.client.kafka, this.options.groupId, this.options.sessionTimeoutMs ?? 6_000);
      const crashed = new Promise<Error>((resolve) => {
        consumer.on(consumer.events.CRASH, (event) => {
          this.lose();
          if (!event.payload.restart) resolve(event.payload.error);
        });
      });
      consumer.on(consumer.events.REBALANCING, () => this.lose());
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        const partitions = event.payload.memberAssignment[this.options.topic] ?? [];
        this.joins += 1;
        if (partitions.includes(0)) this.acquire(consumer, this.joins);
        else {
          this.lose();
          this.state = 'standby';
        }
      });
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [this.options.topic], fromBeginning: true });
        await consumer.run({ autoCommit: false, eachBatch: async () => undefined });
        if (this.state === 'connecting') this.state = 'standby';
        failures = 0;
        const crash = await Promise.race([crashed, stopped]);
        if (crash) throw crash;
      } catch (error) {
        failures += 1;
        if (!signal.aborted)
          this.client.log('warn', 'kafka lease member failed; joining again', {
            groupId: this.options.groupId,
            error: String(error),
            failures,
          });
      }
      // The work stops before the member leaves, so its last state is committed while the term is still valid.
      this.lose();
      await this.transitions;
      await consumer.disconnect().catch(() => undefined);
      if (!signal.aborted) await sleep(backoffMs(failures, { initialMs: 500, maxMs: 10_000 }), signal);
    }
  }

  private acquire(consumer: Consumer, join: number): void {
    this.lose();
    const end = new AbortController();
    const { groupId, topic } = this.options;
    const term = {
      join,
      end,
      ended: end.signal,
      readState: async () => {
        const admin = this.client.kafka.admin();
        await admin.connect();
        try {
          const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
          const committed = offsets?.partitions.find((p) => p.partition === 0);
          return committed === undefined || committed.offset === '-1' ? null : (committed.metadata ?? null);
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      },
      writeState: async (state: string) => {
        if (Buffer.byteLength(state) > MAX_STATE_BYTES) throw new Error(`lease state over ${MAX_STATE_BYTES} bytes`);
        if (end.signal.aborted) throw new Error('the lease term is over');
        await consumer.commitOffsets([{ topic, partition: 0, offset: '0', metadata: state }]);
        // kafkajs skips a commit silently once its consumer stopped running: refuse that too.
        if (end.signal.aborted) throw new Error('the lease term ended during the write');
      },
    };
    this.term = term;
    this.state = 'held';
    this.terms += 1;
    this.client.log('info', 'kafka lease acquired', { groupId, join });
    this.transitions = this.transitions.then(() =>
      end.signal.aborted
        ? undefined
        : this.options
            .onAcquired(term)
            .catch((error: unknown) =>
              this.client.log('error', 'kafka lease: starting the work failed', { groupId, error: String(error) }),
            ),
    );
  }

  private lose(): void {
    const term = this.term;
    if (term === null) return;
    this.term = null;
    if (this.state === 'held') this.state = 'standby';
    term.end.abort();
    this.client.log('info', 'kafka lease released', { groupId: this.options.groupId, join: term.join });
    this.transitions = this.transitions.then(() =>
      this.options
        .onEnded(term)
        .catch((error: unknown) => this.client.log('error', 'kafka lease: stopping the work failed', { error: String(error) })),
    );
  }
}
