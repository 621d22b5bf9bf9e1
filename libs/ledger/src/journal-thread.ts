// The journal's writes on a thread of their own (worker_threads), as the event store's commits
// are: hashing, the inserts and the fsync of each batch (synchronous=FULL) never stall the thread
// that answers requests. That thread keeps a read-only connection to the same file (WAL) for
// GET /v1/ledger and the checkpoint. One batch is in flight at a time (the writer waits for each),
// so the thread needs no queue; what it is sent is bounded by the writer's maxBatchEvents. On the
// embedded store the thread instead reads the log itself (follow(), ThreadLedgerFollower) and is
// sent only start, wake and halt.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EventStore } from '#event-store';
import { BEHIND_MESSAGE, stderrLedgerLog } from './ledger-writer.js';
import type { JournalSink, LedgerFollower, LedgerLog, LedgerWriterStatus, LogEvent, PolicyFunds } from './ledger-writer.js';
import type { LogFollowerOptions } from './log-follower.js';
import { SqliteJournal } from './sqlite-journal.js';
import type { JournalHead } from './sqlite-journal.js';

export interface JournalWorkerData {
  medaidLedgerJournal: true;
  path: string;
}
export type ToJournal =
  | { type: 'post'; events: LogEvent[]; policies: Array<[policyId: string, version: number, layerFunds: string[]]> }
  | { type: 'follow'; eventsPath: string; options: LogFollowerOptions }
  | { type: 'wake' }
  | { type: 'halt' }
  | { type: 'close' };
export type FromJournal =
  | { type: 'ready' }
  | { type: 'open_failed'; message: string }
  | { type: 'posted'; written: number }
  | { type: 'failed'; message: string }
  | ({ type: 'status' } & LedgerWriterStatus)
  | { type: 'halted' }
  /** A line the follower logs on the thread: this side writes it with the follower's log. */
  | { type: 'log'; level: Parameters<LedgerLog>[0]; msg: string; fields: Record<string, unknown> };

/** Opening the file and creating the schema (which may wait busy_timeout for another process). */
const START_TIMEOUT_MS = 30_000;

export class JournalThread implements JournalSink {
  private waiting: { resolve: (m: FromJournal) => void; reject: (e: Error) => void } | null = null;
  private exited = false;
  private readonly exit: Promise<void>;
  /** Told every status the thread reports when it follows the log itself (follow()). */
  private onStatus: ((status: LedgerWriterStatus) => void) | undefined;
  /** Writes what the follower on the thread logs (given to follow()). */
  private log: LedgerLog | undefined;
  /** A 'follow' request waits for its first status as its reply. */
  private followStarting = false;

  private constructor(
    private readonly worker: Worker,
    /** Reads on this thread. */ readonly reader: SqliteJournal,
  ) {
    worker.on('message', (m: FromJournal) => {
      if (m.type === 'log') return this.log?.(m.level, m.msg, m.fields);
      if (m.type !== 'status') return this.settle(m);
      const { type: _, ...status } = m;
      this.onStatus?.(status);
      // The reply to 'follow' is its first status.
      if (this.waiting !== null && this.followStarting) {
        this.followStarting = false;
        this.settle(m);
      }
    });
    worker.on('error', (error) => this.broken(error));
    this.exit = new Promise((resolve) =>
      worker.once('exit', () => {
        this.exited = true;
        this.broken(new Error('the ledger journal thread exited'));
        resolve();
      }),
    );
  }

  /** Starts the thread on `path` (created if missing) and opens this thread's read connection. */
  static async start(path: string): Promise<JournalThread> {
    const workerData: JournalWorkerData = { medaidLedgerJournal: true, path };
    const worker = new Worker(workerScript(), { workerData });
    const first = await new Promise<FromJournal>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ledger journal thread not ready after ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      worker.once('message', (m: FromJournal) => {
        clearTimeout(timer);
        resolve(m);
      });
      worker.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    }).catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    });
    if (first.type !== 'ready') {
      await worker.terminate();
      throw new Error(`ledger journal ${path}: ${first.type === 'open_failed' ? first.message : first.type}`);
    }
    worker.unref(); // an idle ledger does not keep the process alive
    return new JournalThread(worker, SqliteJournal.open(path, { readonly: true }));
  }

  head(): JournalHead {
    return this.reader.head();
  }

  /**
   * The thread follows the embedded log at eventsPath itself (log-follower.ts) and reports its
   * status after every batch; resolves with the first, once it has checked the checkpoint. What
   * it logs there is written here with `log`.
   */
  async follow(
    eventsPath: string,
    options: LogFollowerOptions,
    onStatus: (status: LedgerWriterStatus) => void,
    log: LedgerLog,
  ): Promise<LedgerWriterStatus> {
    this.onStatus = onStatus;
    this.log = log;
    this.followStarting = true;
    const reply = await this.request({ type: 'follow', eventsPath, options });
    if (reply.type === 'status') {
      const { type: _, ...status } = reply;
      return status;
    }
    throw new Error(reply.type === 'failed' ? reply.message : `unexpected reply ${reply.type}`);
  }

  /** Asks the follower to look at the log now. */
  wake(): void {
    if (!this.exited) this.worker.postMessage({ type: 'wake' } satisfies ToJournal);
  }

  /** Stops the follower between two batches. */
  async halt(): Promise<void> {
    const reply = await this.request({ type: 'halt' });
    if (reply.type !== 'halted') throw new Error(reply.type === 'failed' ? reply.message : `unexpected reply ${reply.type}`);
  }

  async post(events: readonly LogEvent[], funds: PolicyFunds): Promise<number> {
    const reply = await this.request({ type: 'post', events: [...events], policies: funds.namedBy(events) });
    if (reply.type === 'posted') return reply.written;
    throw new Error(reply.type === 'failed' ? reply.message : `unexpected reply ${reply.type}`);
  }

  /** Closes the write connection (SQLite checkpoints the WAL there, off this thread), then the reader. */
  async close(): Promise<void> {
    if (!this.exited) {
      this.worker.ref(); // the exit is awaited even when nothing else keeps the process alive
      this.worker.postMessage({ type: 'close' } satisfies ToJournal);
      await this.exit;
    }
    this.reader.close();
  }

  private request(message: ToJournal): Promise<FromJournal> {
    if (this.exited) return Promise.reject(new Error('the ledger journal thread has exited'));
    if (this.waiting !== null) return Promise.reject(new Error('invariant violated: one journal batch at a time'));
    this.worker.ref(); // a batch under way keeps the process alive until it is committed
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage(message);
    });
  }

  private settle(m: FromJournal): void {
    const waiting = this.waiting;
    this.waiting = null;
    if (!this.exited) this.worker.unref();
    waiting?.resolve(m);
  }

  private broken(error: Error): void {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.reject(error);
  }
}

/**
 * The one writer of the journal when the log is the embedded store's: the journal thread reads
 * events.sqlite itself (see log-follower.ts); this side only tells it to start, to look now and
 * to stop, and keeps the status it reports after every batch. The request path's thread reads and
 * parses no event for the ledger.
 */
export class ThreadLedgerFollower implements LedgerFollower {
  private latest: LedgerWriterStatus = { state: 'starting', position: 0, entriesWritten: 0 };
  private readonly options: LogFollowerOptions;
  private readonly log: LedgerLog;

  constructor(
    private readonly store: Pick<EventStore, 'headPosition'>,
    private readonly thread: JournalThread,
    private readonly eventsPath: string,
    options: Partial<LogFollowerOptions> & { log?: LedgerLog } = {},
  ) {
    const { log, ...followerOptions } = options;
    this.options = { maxBatchEvents: 1_000, lingerMs: 50, retryMs: 1_000, ...followerOptions };
    this.log = log ?? stderrLedgerLog;
  }

  async start(): Promise<void> {
    this.latest = await this.thread.follow(this.eventsPath, this.options, (status) => (this.latest = status), this.log);
  }

  async stop(deadlineMs = 5_000): Promise<void> {
    await this.catchUp(deadlineMs);
    try {
      await this.thread.halt();
    } catch {
      // the thread is gone: nothing follows the log any more either way
    }
    if (this.latest.state !== 'failed') this.latest = { ...this.latest, state: 'stopped' };
  }

  async catchUp(deadlineMs = 20_000): Promise<boolean> {
    const head = await this.store.headPosition().catch(() => this.latest.position);
    const deadline = Date.now() + deadlineMs;
    this.thread.wake();
    while (this.latest.position < head && this.latest.state === 'following' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const caughtUp = this.latest.position >= head;
    if (!caughtUp) this.log('warn', BEHIND_MESSAGE, { position: this.latest.position, head });
    return caughtUp;
  }

  status(): LedgerWriterStatus {
    return { ...this.latest };
  }
}

/**
 * The compiled worker script beside this module. Under jest this module is the TypeScript source,
 * which a Worker cannot load: the compiled copy in dist/ is used instead (npm test builds first).
 */
function workerScript(): URL {
  const here = import.meta.url;
  const script = here.endsWith('.ts')
    ? new URL('../../../dist/libs/ledger/src/journal-writer.worker.js', here)
    : new URL('./journal-writer.worker.js', here);
  if (!existsSync(fileURLToPath(script)))
    throw new Error(`ledger journal script ${fileURLToPath(script)} is missing: build first (npm run build)`);
  return script;
}
