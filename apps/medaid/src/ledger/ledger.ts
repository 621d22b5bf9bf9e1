// The service's ledger: the journal in DIR/ledger.sqlite, written on a thread of its own by the
// one writer following the event log from the journal's checkpoint, and read here (GET /v1/ledger).
// Started by the runtime once the decision state is at the head of the log; stopped before the
// store closes, after posting everything the log holds (SIGTERM). Then the fund accounts the
// service held are saved next to the journal, so that `medaid audit replay` can compare what the
// service held in memory with a rebuild from the log. The query projections (projections.ts)
// and the year report's are written in the journal's transactions; year reports are built from
// it on a thread of their own (report-thread.ts).
import { join } from 'node:path';
import type { EventStore } from '#event-store';
import { JournalThread, LedgerWriter, ReportThread, SqliteJournal, ThreadLedgerFollower } from '#ledger';
import type { LedgerFollower } from '#ledger';
import type { FundAccount } from '#domain';
import { logLine } from '../shared/log.js';
import { snapshotRows } from './read-model-snapshot.js';

export const LEDGER_FILE = 'ledger.sqlite';

export class Ledger {
  private constructor(
    private readonly path: string,
    private readonly thread: JournalThread,
    readonly writer: LedgerFollower,
  ) {
    this.reports = new ReportThread(path);
  }

  /** Builds year reports from the report projection, off the request thread. */
  readonly reports: ReportThread;

  /**
   * With `eventsPath` (the embedded store's file) the journal thread reads the log itself; without
   * (EventStoreDB) a LedgerWriter follows the store here and sends it the batches.
   */
  static async start(store: EventStore, dataDir: string, eventsPath?: string): Promise<Ledger> {
    const path = join(dataDir, LEDGER_FILE);
    const thread = await JournalThread.start(path);
    const writer =
      eventsPath === undefined
        ? new LedgerWriter(store, thread, { log: logLine })
        : new ThreadLedgerFollower(store, thread, eventsPath, { log: logLine });
    const ledger = new Ledger(path, thread, writer);
    await ledger.writer.start();
    return ledger;
  }

  /** The journal, read-only, on this thread. */
  get journal(): SqliteJournal {
    return this.thread.reader;
  }

  /** Posts what the store holds now (bounded), then stops following the log. Never throws: the store must close next. */
  async stop(): Promise<void> {
    await this.writer.stop().catch((error: unknown) => logLine('error', 'ledger writer: stopping failed', { error: String(error) }));
  }

  /**
   * After the store closed (nothing more can change the state): closes the journal and saves the
   * fund accounts when given (the runtime passes the state only if commands changed it since the
   * start; a state only read from the log would tell an audit nothing).
   */
  async close(model: { position: number; eventCount: number; funds: ReadonlyMap<string, FundAccount> } | null): Promise<void> {
    await this.reports.close();
    await this.thread.close();
    if (model === null) return;
    try {
      const journal = SqliteJournal.open(this.path);
      try {
        journal.writeSnapshot({ position: model.position, events: model.eventCount }, snapshotRows(model));
      } finally {
        journal.close();
      }
    } catch (error) {
      logLine('error', 'ledger: could not save the read-model snapshot', { error: String(error) });
    }
  }

  status() {
    return this.writer.status();
  }
}
