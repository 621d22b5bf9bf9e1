// subscribeToAll for stores that can read a page of the log after a position (SQLite, PostgreSQL):
// catch-up and live are one loop — read a page after the checkpoint, hand its events to the handler
// one at a time, or wait to be woken (the store's commit, a notification) or for the poll interval.
import { checkNonNegative } from './append-input.js';
import type { LogPosition, RecordedEvent, SubscribeToAllOptions, Subscription } from './index.js';

/** Events with position > after, in log order, at most `limit` of them. */
export type PageReader = (after: LogPosition, limit: number) => RecordedEvent[] | Promise<RecordedEvent[]>;

export interface PagedSubscriptionsOptions {
  pageSize: number;
  /** Also look for events this often when not woken (a store whose wake-ups may be lost); default: only when woken. */
  pollIntervalMs?: number;
  /** The error a subscription opened after close fails with. */
  closedError: () => Error;
  /** Called before each read (a store may start its notification listener there). */
  beforeRead?: () => void;
}

interface LiveSubscription {
  checkpoint: LogPosition;
  stopped: boolean;
  wake: (() => void) | undefined;
  done: Promise<void>;
}

export class PagedSubscriptions {
  private readonly live = new Set<LiveSubscription>();
  /** Incremented by every wake-up: a subscription that read nothing reads again if it moved meanwhile. */
  private wakeups = 0;
  private closed = false;

  constructor(
    private readonly readPage: PageReader,
    private readonly options: PagedSubscriptionsOptions,
  ) {}

  get size(): number {
    return this.live.size;
  }

  /** `storeClosing`: the store is closing, and close() may have run already: the subscription fails at once. */
  subscribe(
    handler: (event: RecordedEvent) => void | Promise<void>,
    options: SubscribeToAllOptions = {},
    storeClosing = false,
  ): Subscription {
    const sub: LiveSubscription = { checkpoint: options.fromPosition ?? 0, stopped: false, wake: undefined, done: Promise.resolve() };
    const closed = this.closed || storeClosing; // close() would never stop it: fail it instead
    if (!closed) this.live.add(sub);
    // Started on a microtask so the handler never runs before subscribe has returned.
    sub.done = Promise.resolve().then(() => this.pump(sub, handler, options.onError, closed));
    return {
      unsubscribe: async () => {
        // Do not await this from inside the handler: it waits for that very handler call to end.
        sub.stopped = true;
        wake(sub);
        await sub.done;
      },
    };
  }

  /** Something was committed: every waiting subscription reads again. */
  wakeAll(): void {
    this.wakeups++;
    this.live.forEach(wake);
  }

  /** Stops every subscription; resolves when no handler call is running. Later subscriptions fail at once. */
  async close(): Promise<void> {
    this.closed = true;
    const subs = [...this.live];
    for (const sub of subs) {
      sub.stopped = true;
      wake(sub);
    }
    await Promise.all(subs.map((sub) => sub.done));
  }

  private async pump(
    sub: LiveSubscription,
    handler: (event: RecordedEvent) => void | Promise<void>,
    onError: ((error: unknown) => void) | undefined,
    closed: boolean,
  ): Promise<void> {
    try {
      if (closed) throw this.options.closedError();
      checkNonNegative('fromPosition', sub.checkpoint);
      while (!sub.stopped) {
        this.options.beforeRead?.();
        const seen = this.wakeups;
        const page = await this.readPage(sub.checkpoint, this.options.pageSize);
        if (page.length === 0) {
          if (this.wakeups !== seen || sub.stopped) continue;
          await this.sleep(sub);
          continue;
        }
        for (const event of page) {
          if (sub.stopped) return;
          await handler(event);
          sub.checkpoint = event.position;
        }
        // Let appends and other subscriptions run between pages during a long catch-up.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      sub.stopped = true;
      try {
        onError?.(error);
      } catch {
        // a failing error handler must not hide the subscription's end
      }
    } finally {
      this.live.delete(sub);
    }
  }

  private sleep(sub: LiveSubscription): Promise<void> {
    const { pollIntervalMs } = this.options;
    return new Promise<void>((resolve) => {
      const timer = pollIntervalMs === undefined ? undefined : setTimeout(() => wake(sub), pollIntervalMs);
      sub.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

function wake(sub: LiveSubscription): void {
  const resolve = sub.wake;
  sub.wake = undefined;
  resolve?.();
}

/** Pages of the log after fromPosition (exclusive) up to the head, memory bounded by pageSize. */
export async function* readPages(
  readPage: PageReader,
  fromPosition: LogPosition,
  pageSize: number,
): AsyncGenerator<RecordedEvent[], void, undefined> {
  let position = fromPosition;
  for (;;) {
    const page = await readPage(position, pageSize);
    if (page.length === 0) return;
    yield page;
    position = page[page.length - 1]!.position;
    if (page.length < pageSize) return;
  }
}
