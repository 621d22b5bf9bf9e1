// The ledger's writer when the log is the embedded one (events.sqlite): it runs on the journal's
// own thread and reads the log there with a connection of its own, so the thread that answers
// requests neither reads nor parses any event for the ledger (with EventStoreDB the LedgerWriter
// follows the log on the main thread and sends the batches here). Both are the one checkpointed
// follower of the log (#event-store's CheckpointedFollower) with the journal as its sink: each page
// after the journal's checkpoint is posted in ONE transaction with the new checkpoint (a crash
// re-posts nothing and skips nothing), a journal of another log is refused, and a failure is
// retried from the committed checkpoint after a pause that doubles.
import { CheckpointedFollower, doublingDelayMs, type LogPosition, type RecordedEvent } from '#event-store';
import { FOREIGN_JOURNAL_MESSAGE, PolicyFunds, RETRY_MESSAGE, foreignCheckpoint, postBatch } from './ledger-writer.js';
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
  private refused = false;
  private entriesWritten = 0;
  private readonly funds = new PolicyFunds();
  private readonly follower: CheckpointedFollower;

  constructor(
    private readonly journal: SqliteJournal,
    private readonly reader: SyncLogReader,
    options: LogFollowerOptions,
    /** Told after every change: start, each batch posted, failures, halt. */
    private readonly onStatus: (status: LedgerWriterStatus) => void,
    private readonly log: LedgerLog,
  ) {
    const sink = {
      checkpoint: () => journal.head().followFrom,
      commit: (page: readonly RecordedEvent[]) => {
        this.funds.prepareSync(page, (streamId) => reader.readStream(streamId));
        this.entriesWritten += postBatch(journal, page, this.funds);
      },
    };
    this.follower = new CheckpointedFollower(reader, sink, {
      maxPageEvents: options.maxBatchEvents,
      idleMs: options.lingerMs,
      retryDelayMs: doublingDelayMs(options.retryMs),
      onFailure: (error, at) => log('error', RETRY_MESSAGE, { error: String(error), position: at.position, retryInMs: at.retryInMs }),
      onStatus: () => onStatus(this.status()),
    });
  }

  status(): LedgerWriterStatus {
    const { state, position } = this.follower.status();
    const shown: LedgerWriterState = this.refused ? 'failed' : state;
    return { state: shown, position, entriesWritten: this.entriesWritten };
  }

  /** Checks that the journal belongs to this log, then follows it. */
  start(): void {
    const checkpoint = this.journal.head();
    const [atCheckpoint] = checkpoint.position === 0 ? [] : this.reader.readAll({ fromPosition: checkpoint.position - 1, maxCount: 1 });
    const foreign = foreignCheckpoint(checkpoint, atCheckpoint);
    if (foreign === null) {
      void this.follower.start();
      return;
    }
    this.refused = true;
    this.log('error', FOREIGN_JOURNAL_MESSAGE, foreign);
    this.onStatus(this.status());
  }

  /** Looks at the log now instead of at the end of the linger (someone waits for the ledger). */
  wake(): void {
    this.follower.wake();
  }

  /** Stops following; what is posted stays posted. A page is posted within one turn of this thread, so none is under way here. */
  halt(): void {
    void this.follower.stop();
  }
}
