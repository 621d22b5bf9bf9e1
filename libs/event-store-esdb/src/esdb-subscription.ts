// The port's subscribeToAll on EventStoreDB: catch-up and live through one server subscription at a
// time, resubscribed from the last delivered position when it drops (backing off, a bounded number of
// times in a row without progress), each event delivered exactly once. The server subscription itself
// is opened by esdb-event-store.ts (the only importer of the client), as a feed of the port's events.
import { EsdbStoreClosedError, EsdbUnavailableError, checkNonNegative, pause, type ResolvedOptions } from './esdb-support.js';
import type { LogPosition, RecordedEvent, SubscribeToAllOptions, Subscription } from '#event-store';

/** One server subscription from an exclusive position: its events (undefined for those never shown), and a stop. */
export interface ServerFeed {
  events: AsyncIterable<RecordedEvent | undefined>;
  stop(): void;
}

type Handler = (event: RecordedEvent) => void | Promise<void>;

interface LiveSubscription {
  checkpoint: LogPosition;
  stopped: boolean;
  stop: () => void;
  signal: Promise<void>;
  done: Promise<void>;
}

class HandlerFailure {
  constructor(readonly error: unknown) {}
}

export class EsdbSubscriptions {
  private readonly live = new Set<LiveSubscription>();

  constructor(
    private readonly open: (from: LogPosition) => ServerFeed,
    private readonly options: ResolvedOptions,
    private readonly translate: (error: unknown) => unknown,
  ) {}

  subscribe(handler: Handler, options: SubscribeToAllOptions, closed: boolean): Subscription {
    let stop!: () => void;
    const signal = new Promise<void>((resolve) => (stop = resolve));
    const sub: LiveSubscription = { checkpoint: options.fromPosition ?? 0, stopped: false, stop, signal, done: Promise.resolve() };
    if (!closed) this.live.add(sub); // once closed, close() would never stop it: fail it instead
    // Started on a microtask so the handler never runs before subscribeToAll has returned.
    sub.done = Promise.resolve().then(() => this.pump(sub, handler, options.onError, closed));
    return {
      unsubscribe: async () => {
        // Do not await this from inside the handler: it waits for that very handler call to end.
        halt(sub);
        await sub.done;
      },
    };
  }

  /** Stops every subscription; resolves when none runs a handler any more. */
  async stopAll(): Promise<void> {
    const subs = [...this.live];
    subs.forEach(halt);
    await Promise.allSettled(subs.map((s) => s.done));
  }

  private async pump(
    sub: LiveSubscription,
    handler: Handler,
    onError: ((error: unknown) => void) | undefined,
    closed: boolean,
  ): Promise<void> {
    try {
      if (closed) throw new EsdbStoreClosedError();
      checkNonNegative('fromPosition', sub.checkpoint);
      let failures = 0;
      while (!sub.stopped) {
        const { delivered, error } = await this.follow(sub, handler);
        if (sub.stopped) return;
        failures = delivered ? 1 : failures + 1;
        if (failures > this.options.maxResubscribeAttempts) throw error;
        const backoffMs = Math.min(this.options.resubscribeMaxBackoffMs, this.options.resubscribeMinBackoffMs * 2 ** (failures - 1));
        await pause(backoffMs, sub);
      }
    } catch (error) {
      halt(sub);
      try {
        onError?.(error instanceof HandlerFailure ? error.error : error);
      } catch {
        // a throwing onError must not become an unhandled rejection
      }
    } finally {
      this.live.delete(sub);
    }
  }

  /** Runs one server subscription until it drops (resolves) or the handler throws (rejects with HandlerFailure). */
  private async follow(sub: LiveSubscription, handler: Handler): Promise<{ delivered: boolean; error: unknown }> {
    const feed = this.open(sub.checkpoint);
    void sub.signal.then(() => feed.stop());
    let delivered = false;
    try {
      for await (const event of feed.events) {
        if (sub.stopped) break;
        if (event === undefined || event.position <= sub.checkpoint) continue; // exactly once across resubscriptions
        try {
          await handler(event);
        } catch (error) {
          throw new HandlerFailure(error);
        }
        sub.checkpoint = event.position;
        delivered = true;
      }
      return { delivered, error: new EsdbUnavailableError('subscribeToAll', { cause: 'the server ended the subscription' }) };
    } catch (error) {
      if (error instanceof HandlerFailure) throw error;
      return { delivered, error: this.translate(error) };
    } finally {
      feed.stop();
    }
  }
}

function halt(sub: LiveSubscription): void {
  sub.stopped = true;
  sub.stop();
}
