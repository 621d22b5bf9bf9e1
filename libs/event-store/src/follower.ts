// The one way medaid follows the global log: a checkpointed follower. It reads the log in pages
// after its sink's committed checkpoint and hands each page to the sink, which commits the page's
// effect together with the new checkpoint (one SQLite transaction for the ledger and the
// projections; a Kafka acknowledgement then the checkpoint file for the relay). So a crash between
// two pages re-applies nothing and skips nothing, whatever the sink is.
//
// It polls pages rather than holding a subscription: the same loop then reads the embedded log
// synchronously on the journal's thread, EventStoreDB over gRPC, and a whole log once for an audit,
// and a failure has one answer — wait (doubling), then read again from the committed checkpoint.
// A full page is followed at once; after a short one it waits `idleMs`, or less when woken
// (someone just appended, or waits for the follower). One page is applied at a time, so memory is
// bounded by maxPageEvents. No framework, no clock inside a page.
import type { LogPosition, RecordedEvent } from './index.js';

/** The log as the follower reads it: a page of events after a position, in log order. */
export interface LogPages<E extends { position: LogPosition }> {
  readAll(options: { fromPosition: LogPosition; maxCount: number }): readonly E[] | Promise<readonly E[]>;
}

/** Where a page goes. */
export interface FollowerSink<E extends { position: LogPosition }> {
  /** The committed checkpoint: every event up to it has been applied. Read at start and after a failure. */
  checkpoint(): LogPosition | Promise<LogPosition>;
  /** Applies the page (log order, every event after the checkpoint) and moves the checkpoint to its last event, atomically. */
  commit(page: readonly E[]): void | Promise<void>;
}

export type FollowerState = 'starting' | 'following' | 'retrying' | 'stopped';

export interface FollowerStatus {
  state: FollowerState;
  /** Every event up to here is committed by the sink. */
  position: LogPosition;
  /** Failures in a row (0 while it goes well). */
  failures: number;
}

export interface FollowerOptions {
  /** Most events read and committed at once (1 to 10,000). */
  maxPageEvents: number;
  /** How long to wait after a page that was not full before reading again (unless woken). */
  idleMs: number;
  /** The wait after the n-th failure in a row. */
  retryDelayMs: (failures: number) => number;
  /** Told of every failure (what to log), with the position it follows again from. */
  onFailure?: (error: unknown, at: { failures: number; position: LogPosition; retryInMs: number }) => void;
  /** Told after every change of status: start, each committed page, failures, recovery, stop. */
  onStatus?: (status: FollowerStatus) => void;
}

/** The usual retry: from `firstMs`, doubling, at most 30 s. */
export const doublingDelayMs =
  (firstMs: number, maxMs = 30_000) =>
  (failures: number): number =>
    Math.min(maxMs, firstMs * 2 ** Math.min(Math.max(failures - 1, 0), 16));

export class CheckpointedFollower<E extends { position: LogPosition } = RecordedEvent> {
  private state: FollowerState = 'starting';
  private position: LogPosition = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The step under way, if any: stop() waits for it. */
  private running: Promise<void> | undefined;
  private readonly waiters = new Set<{ position: LogPosition; resolve: () => void }>();

  constructor(
    private readonly log: LogPages<E>,
    private readonly sink: FollowerSink<E>,
    private readonly options: FollowerOptions,
  ) {
    if (!(Number.isInteger(options.maxPageEvents) && options.maxPageEvents >= 1 && options.maxPageEvents <= 10_000))
      throw new RangeError('maxPageEvents must be 1 to 10,000');
  }

  status(): FollowerStatus {
    return { state: this.state, position: this.position, failures: this.failures };
  }

  /** Reads the sink's checkpoint and follows the log from there; returns once it follows. */
  async start(): Promise<void> {
    this.position = await this.sink.checkpoint();
    this.state = 'following';
    this.report();
    this.schedule(0);
  }

  /** Reads the log now instead of at the end of the idle wait. */
  wake(): void {
    if (this.state === 'following' && this.timer !== undefined) this.schedule(0);
  }

  /** Resolves true once every event up to `position` is committed; false when stopped or the deadline came first. */
  async reach(position: LogPosition, deadlineMs: number): Promise<boolean> {
    if (this.position >= position) return true;
    if (this.state === 'stopped') return false;
    let waiter: { position: LogPosition; resolve: () => void } | undefined;
    let timer: NodeJS.Timeout | undefined;
    const reached = new Promise<void>((resolve) => this.waiters.add((waiter = { position, resolve })));
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs)));
    this.wake();
    await Promise.race([reached, late]);
    clearTimeout(timer);
    this.waiters.delete(waiter!);
    return this.position >= position;
  }

  /** Stops following after the page in hand; what is committed stays committed. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.state = 'stopped';
    await this.running;
    for (const w of this.waiters) w.resolve();
    this.report();
  }

  /**
   * Without a timer: applies every page up to `upTo` (or to the end of the log), then returns the
   * position reached. For a one-off pass (an audit, a rebuild); a failure is thrown, not retried.
   */
  async runTo(upTo: LogPosition = Number.MAX_SAFE_INTEGER): Promise<LogPosition> {
    this.position = await this.sink.checkpoint();
    for (;;) {
      const max = Math.min(this.options.maxPageEvents, Math.max(0, upTo - this.position));
      const page =
        max === 0 ? [] : (await this.log.readAll({ fromPosition: this.position, maxCount: max })).filter((e) => e.position <= upTo);
      if (page.length === 0) return this.position;
      await this.sink.commit(page);
      this.position = page[page.length - 1]!.position;
    }
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    // A timer even for 0 ms: a thread reads its messages (wake, stop) between two pages.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.step().finally(() => (this.running = undefined));
    }, ms);
  }

  private async step(): Promise<void> {
    if (this.state !== 'following' && this.state !== 'retrying') return;
    let full = false;
    try {
      const page = await this.log.readAll({ fromPosition: this.position, maxCount: this.options.maxPageEvents });
      if (this.isStopped()) return;
      if (page.length > 0) {
        await this.sink.commit(page);
        this.position = page[page.length - 1]!.position;
        full = page.length === this.options.maxPageEvents;
      }
      const recovered = this.state === 'retrying';
      if (!this.isStopped()) this.state = 'following';
      this.failures = 0;
      if (page.length > 0 || recovered) this.advanced();
    } catch (error) {
      await this.failed(error);
      return;
    }
    // Someone waits for a position not yet read (an append just acknowledged): read again soon, not after idleMs.
    if (!this.isStopped()) this.schedule(full ? 0 : this.waitedFor() ? Math.min(this.options.idleMs, 2) : this.options.idleMs);
  }

  private waitedFor(): boolean {
    for (const w of this.waiters) if (w.position > this.position) return true;
    return false;
  }

  /** Follows again from the committed checkpoint after a pause: what the failed commit did not commit is read again. */
  private async failed(error: unknown): Promise<void> {
    this.failures += 1;
    const retryInMs = this.options.retryDelayMs(this.failures);
    try {
      this.position = await this.sink.checkpoint();
    } catch {
      // the checkpoint cannot even be read: the next step fails and waits longer
    }
    if (this.state === 'stopped') return;
    this.state = 'retrying';
    this.options.onFailure?.(error, { failures: this.failures, position: this.position, retryInMs });
    this.report();
    this.schedule(retryInMs);
  }

  /** Read after an await: stop() may have come in meanwhile. */
  private isStopped(): boolean {
    return this.state === 'stopped';
  }

  private advanced(): void {
    for (const w of this.waiters) if (this.position >= w.position) w.resolve();
    this.report();
  }

  private report(): void {
    this.options.onStatus?.(this.status());
  }
}
