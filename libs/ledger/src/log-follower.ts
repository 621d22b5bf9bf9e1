// The ledger's writer when the log is the embedded one (events.sqlite): it runs on the journal's
// own thread and reads the log there with a connection of its own, so the thread that answers
// requests neither reads nor parses any event for the ledger (with EventStoreDB the LedgerWriter
// follows the log on the main thread and sends the batches here). Same rules as LedgerWriter:
// each page of the log after the journal's checkpoint is posted in ONE transaction with the new
// checkpoint (a crash re-posts nothing and skips nothing), a journal of another log is refused,
// and a failure is retried from the committed checkpoint after a pause that doubles.
import type { LogPosition, RecordedEvent } from '#event-store';
import { FOREIGN_JOURNAL_MESSAGE, PolicyFunds, RETRY_MESSAGE, foreignCheckpoint, postBatch, retryDelayMs } from './ledger-writer.js';
import type { LedgerLog, LedgerWriterState, LedgerWriterStatus } from './ledger-writer.js';
import type { SqliteJournal } from './sqlite-journal.js';

/** The reads the follower makes of the log, synchronous (SqliteLogReader). */
export interface SyncLogReader {
  readAll(options: { fromPosition: LogPosition; maxCount: number }): RecordedEvent[];
  readStream(streamId: string): RecordedEvent[];
}

export interface LogFollowerOptions {
  /** Most events posted in one transaction. */
  maxBatchEvents: number;
  /** How long to wait before looking again when the last read found less than a full batch. */
  lingerMs: number;
  /** First wait after a failure (doubling to 30 s). */
  retryMs: number;
}

export class LogFollower {
  private state: LedgerWriterState = 'starting';
  private position: LogPosition = 0;
  private entriesWritten = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly funds = new PolicyFunds();

  constructor(
    private readonly journal: SqliteJournal,
    private readonly reader: SyncLogReader,
    private readonly options: LogFollowerOptions,
    /** Told after every change: start, each batch posted, failures, halt. */
    private readonly onStatus: (status: LedgerWriterStatus) => void,
    private readonly log: LedgerLog,
  ) {}

  status(): LedgerWriterStatus {
    return { state: this.state, position: this.position, entriesWritten: this.entriesWritten };
  }

  /** Checks that the journal belongs to this log, then follows it. */
  start(): void {
    const checkpoint = this.journal.head();
    this.position = checkpoint.followFrom;
    const [atCheckpoint] = checkpoint.position === 0 ? [] : this.reader.readAll({ fromPosition: checkpoint.position - 1, maxCount: 1 });
    const foreign = foreignCheckpoint(checkpoint, atCheckpoint);
    if (foreign !== null) {
      this.state = 'failed';
      this.log('error', FOREIGN_JOURNAL_MESSAGE, foreign);
    } else {
      this.state = 'following';
      this.schedule(0);
    }
    this.onStatus(this.status());
  }

  /** Looks at the log now instead of at the end of the linger (someone waits for the ledger). */
  wake(): void {
    if (this.state === 'following' && this.timer !== undefined) this.schedule(0);
  }

  /** Stops following; what is posted stays posted. */
  halt(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.state !== 'failed') this.state = 'stopped';
    this.onStatus(this.status());
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    // setTimeout even for 0: the thread reads its messages (wake, halt) between two batches.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.step();
    }, ms);
  }

  /** Posts the next page of the log, if any; then looks again at once (full page) or after the linger. */
  private step(): void {
    if (this.state !== 'following' && this.state !== 'retrying') return;
    let full = false;
    try {
      const page = this.reader.readAll({ fromPosition: this.position, maxCount: this.options.maxBatchEvents });
      if (page.length > 0) {
        this.funds.prepareSync(page, (streamId) => this.reader.readStream(streamId));
        this.entriesWritten += postBatch(this.journal, page, this.funds);
        this.position = page[page.length - 1]!.position;
        full = page.length === this.options.maxBatchEvents;
      }
      const recovered = this.state === 'retrying';
      this.state = 'following';
      this.failures = 0;
      if (page.length > 0 || recovered) this.onStatus(this.status());
    } catch (error) {
      this.failures += 1;
      this.state = 'retrying';
      const waitMs = retryDelayMs(this.options.retryMs, this.failures);
      this.log('error', RETRY_MESSAGE, { error: String(error), position: this.position, retryInMs: waitMs });
      try {
        this.position = this.journal.head().followFrom; // what the failed transaction did not commit is read again
      } catch {
        // the journal cannot even be read: the next step fails and waits longer
      }
      this.onStatus(this.status());
      this.schedule(waitMs);
      return;
    }
    this.schedule(full ? 0 : this.options.lingerMs);
  }
}
