// The journal's store, `DIR/ledger.sqlite` (better-sqlite3; with the event store's adapter the
// only file that imports it). A file of its own next to the log, not tables in events.sqlite:
// the journal is a projection the service writes while the event store's writer thread owns
// events.sqlite, it works the same when the events live in EventStoreDB, and an auditor can
// rebuild it into a fresh file and compare. WAL + synchronous=FULL; the entries of a batch and
// the checkpoint (the log position up to which every event is posted) commit in ONE
// transaction, so after a crash each event is posted exactly once.
//
// Tables: journal (one row per entry; `body` is the canonical JSON that is hashed, the other
// columns are copies for queries), journal_accounts (which entries touch which account: GET
// /v1/ledger?account=…), balances (per account and year, kept in the same transaction),
// checkpoint, and a snapshot of the service's fund accounts (written by the service when it stops;
// `medaid audit replay` compares against it). Amounts live in the body only, under the hash.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { noReportAnomalies } from '#domain';
import type { JournalEntry, JournalLine } from './journal.js';
import { PROJECTION_TABLES_SQL, ProjectionTables } from './projections.js';
import { REPORT_TABLES, REPORT_TABLES_SQL, ReportTables } from './report-tables.js';

/**
 * 2: the query projections (projections.ts) next to the journal; 3: the year report's (report-tables.ts).
 * An older file gains the newer tables, empty, at open; the follower fills them from the log.
 */
const SCHEMA_VERSION = 4;
const BUSY_TIMEOUT_MS = 5_000;
const MAX_PAGE = 10_000;
const CACHE_SIZE_KIB = 16 * 1024;

export interface JournalHead {
  /** Every event up to this log position is posted. */
  position: number;
  /** Events read (posting or not) up to the checkpoint. */
  events: number;
  /** The id of the event at the checkpoint: tells whether the journal belongs to this log. */
  eventId: string | null;
  /** The last entry's seq and hash (0 and null when the journal is empty). */
  seq: number;
  hash: string | null;
  /** Where the follower reads the log from: the lower of the journal's and the projections' checkpoints. */
  followFrom: number;
}

/** A journal row as stored, column by column: an audit compares these with the hashed body. */
export interface StoredEntry {
  seq: number;
  position: number;
  eventId: string;
  eventType: string;
  streamId: string;
  settlementId: string | null;
  body: string;
  prevHash: string;
  hash: string;
}
export interface Balance {
  account: string;
  year: number;
  debitFen: number;
  creditFen: number;
}
export interface SnapshotMeta {
  position: number;
  events: number;
  writtenMs: number;
}
export interface SnapshotRow {
  kind: string;
  key: string;
  value: string;
}

export interface JournalOpenOptions {
  /** Only read (audits): no schema change, no write. */
  readonly?: boolean;
  /** synchronous=FULL (default). A throw-away rebuild (audit replay) turns it off. */
  durable?: boolean;
}

export class SqliteJournal {
  private readonly stmt;
  /** The query projections in the same file, written in the journal's transactions. */
  readonly projections: ProjectionTables;
  /** The year report's projection, written in the same transactions. */
  readonly report: ReportTables;

  private constructor(private readonly db: Database.Database) {
    this.projections = new ProjectionTables(db);
    this.report = new ReportTables(db);
    this.stmt = {
      head: db.prepare<[], { position: number; events: number; event_id: string | null; seq: number | null; hash: string | null }>(
        'SELECT c.position, c.events, c.event_id, j.seq, j.hash FROM checkpoint c LEFT JOIN (SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1) j WHERE c.id = 1',
      ),
      insertEntry: db.prepare(
        'INSERT INTO journal (seq, position, event_id, event_type, stream_id, settlement_id, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      insertAccount: db.prepare('INSERT INTO journal_accounts (account, seq) VALUES (?, ?)'),
      addBalance: db.prepare(`INSERT INTO balances (account, year, debit_fen, credit_fen) VALUES (?, ?, ?, ?)
        ON CONFLICT (account, year) DO UPDATE SET debit_fen = debit_fen + excluded.debit_fen, credit_fen = credit_fen + excluded.credit_fen`),
      setCheckpoint: db.prepare('UPDATE checkpoint SET position = ?, events = ?, event_id = ?, updated_ms = ? WHERE id = 1'),
      settlementLines: db
        .prepare<[string], string>(
          "SELECT body FROM journal WHERE settlement_id = ? AND event_type = 'DischargeSettled' ORDER BY seq LIMIT 1",
        )
        .pluck(),
      postedFor: db
        .prepare<[string], string>(
          "SELECT body FROM journal WHERE settlement_id = ? AND event_type IN ('DischargeSettled', 'AdjustmentApplied') ORDER BY seq",
        )
        .pluck(),
      entries: db.prepare<[number, number], { body: string; hash: string }>(
        'SELECT body, hash FROM journal WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      entriesOf: db.prepare<[string, number, number], { body: string; hash: string }>(
        'SELECT body, hash FROM journal WHERE seq IN (SELECT seq FROM journal_accounts WHERE account = ? AND seq > ? ORDER BY seq LIMIT ?) ORDER BY seq',
      ),
      stored: db.prepare<[number, number, number], Record<string, unknown>>(
        'SELECT seq, position, event_id, event_type, stream_id, settlement_id, body, prev_hash, hash FROM journal WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?',
      ),
      storedRows: db.prepare<[number, number, number], { seq: number; row: string }>(
        `SELECT seq, json_array(seq, position, event_id, event_type, stream_id, settlement_id, body, prev_hash, hash) AS row
        FROM journal WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
      ),
      indexedAccounts: db.prepare<[], string>('SELECT DISTINCT account FROM journal_accounts ORDER BY account').pluck(),
      indexedSeqs: db.prepare<[string], number>('SELECT seq FROM journal_accounts WHERE account = ? ORDER BY seq').pluck(),
      balances: db.prepare<[], Record<string, unknown>>('SELECT account, year, debit_fen, credit_fen FROM balances ORDER BY year, account'),
      balancesOf: db.prepare<[number], Record<string, unknown>>(
        'SELECT account, year, debit_fen, credit_fen FROM balances WHERE year = ? ORDER BY account',
      ),
      snapshotMeta: db.prepare<[], { position: number; events: number; written_ms: number }>(
        'SELECT position, events, written_ms FROM snapshot_meta WHERE id = 1',
      ),
      snapshotRows: db.prepare<[string, string, number], SnapshotRow>(
        'SELECT kind, key, value FROM snapshot_rows WHERE kind = ? AND key > ? ORDER BY key LIMIT ?',
      ),
    };
  }

  static open(path: string, options: JournalOpenOptions = {}): SqliteJournal {
    if (options.readonly) {
      const db = new Database(path, { readonly: true, fileMustExist: true });
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      const version = db.prepare<[], string>("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get();
      if (Number(version) !== SCHEMA_VERSION) {
        db.close();
        throw new Error(`${path}: unsupported ledger schema version ${String(version)}, expected ${SCHEMA_VERSION}`);
      }
      return new SqliteJournal(db);
    }
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    try {
      migrate(db, options.durable ?? true);
      return new SqliteJournal(db);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  head(): JournalHead {
    const row = this.stmt.head.get()!;
    const followFrom = Math.min(row.position, this.projections.checkpoint(), this.report.checkpoint());
    return { position: row.position, events: row.events, eventId: row.event_id, seq: row.seq ?? 0, hash: row.hash, followFrom };
  }

  /** Runs fn in one IMMEDIATE transaction: all of it is written, or none. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Inside transaction(): the entry and the accounts it touches (balances: addBalances, once per batch). */
  insert(entry: JournalEntry, body: string, settlementId: string | null): void {
    this.stmt.insertEntry.run(
      entry.seq,
      entry.position,
      entry.eventId,
      entry.eventType,
      entry.streamId,
      settlementId,
      body,
      entry.prevHash,
      entry.hash,
    );
    for (const account of new Set(entry.lines.map((l) => l.account))) this.stmt.insertAccount.run(account, entry.seq);
  }

  /** Inside transaction(): adds what a batch debited and credited per account and year. */
  addBalances(deltas: Iterable<Balance>): void {
    for (const b of deltas) this.stmt.addBalance.run(b.account, b.year, b.debitFen, b.creditFen);
  }

  /** Inside transaction(): every event up to `position` (the event `eventId`) is posted; `events` read in all. */
  setCheckpoint(position: number, events: number, eventId: string | null): void {
    this.stmt.setCheckpoint.run(position, events, eventId, Date.now());
  }

  /**
   * Runs fn inside one read transaction: every read sees the journal as it was at the first one,
   * while the writer goes on (WAL). An audit of a running service reads a consistent journal so.
   */
  async readConsistently<T>(fn: () => Promise<T>): Promise<T> {
    this.db.exec('BEGIN DEFERRED');
    try {
      return await fn();
    } finally {
      if (this.db.inTransaction) this.db.exec('COMMIT');
    }
  }

  /** The lines of a settlement's own entry (its payouts as settled); [] when it paid nothing. */
  settlementLines(settlementId: string): JournalLine[] {
    const body = this.stmt.settlementLines.get(settlementId);
    return body === undefined ? [] : (JSON.parse(body) as JournalEntry).lines;
  }

  /** The lines of the entries a reversal of the settlement mirrors (see PostingContext.postedFor). */
  postedFor(settlementId: string): JournalLine[][] {
    return this.stmt.postedFor.all(settlementId).map((body) => (JSON.parse(body) as JournalEntry).lines);
  }

  /** Entries after a seq, in seq order; with an account, only those with a line on it. */
  entries(afterSeq: number, limit: number, account?: string): JournalEntry[] {
    const n = pageSize(limit);
    const rows = account === undefined ? this.stmt.entries.all(afterSeq, n) : this.stmt.entriesOf.all(account, afterSeq, n);
    return rows.map((r) => {
      // The body is canonical (sorted keys); shown in the entry's own order, hash last.
      const { seq, position, eventId, eventType, streamId, lines, prevHash } = JSON.parse(r.body) as Omit<JournalEntry, 'hash'>;
      return {
        seq,
        position,
        eventId,
        eventType,
        streamId,
        lines: lines.map((l) => ({ account: l.account, debitFen: l.debitFen, creditFen: l.creditFen })),
        prevHash,
        hash: r.hash,
      };
    });
  }

  stored(afterSeq: number, uptoSeq: number, limit: number): StoredEntry[] {
    return this.stmt.stored.all(afterSeq, uptoSeq, pageSize(limit)).map((r) => ({
      seq: r.seq as number,
      position: r.position as number,
      eventId: r.event_id as string,
      eventType: r.event_type as string,
      streamId: r.stream_id as string,
      settlementId: r.settlement_id as string | null,
      body: r.body as string,
      prevHash: r.prev_hash as string,
      hash: r.hash as string,
    }));
  }

  /** The same rows as stored(), each as one text made by SQLite: an audit's quick comparison. */
  storedRows(afterSeq: number, uptoSeq: number, limit: number): Array<{ seq: number; row: string }> {
    return this.stmt.storedRows.all(afterSeq, uptoSeq, pageSize(limit));
  }

  /** Every account in the account index. */
  indexedAccounts(): string[] {
    return this.stmt.indexedAccounts.all();
  }

  /** The seqs the account index lists for an account, ascending. */
  indexedSeqs(account: string): number[] {
    return this.stmt.indexedSeqs.all(account);
  }

  /** Per account (and year): what was debited and credited. */
  balances(year?: number): Balance[] {
    const rows = year === undefined ? this.stmt.balances.all() : this.stmt.balancesOf.all(year);
    return rows.map((r) => ({
      account: r.account as string,
      year: r.year as number,
      debitFen: r.debit_fen as number,
      creditFen: r.credit_fen as number,
    }));
  }

  /** Replaces the read-model snapshot with these rows, in one transaction. */
  writeSnapshot(meta: Omit<SnapshotMeta, 'writtenMs'>, rows: Iterable<SnapshotRow>): void {
    const insert = this.db.prepare('INSERT INTO snapshot_rows (kind, key, value) VALUES (?, ?, ?)');
    this.transaction(() => {
      this.db.exec('DELETE FROM snapshot_rows; DELETE FROM snapshot_meta;');
      for (const r of rows) insert.run(r.kind, r.key, r.value);
      this.db
        .prepare('INSERT INTO snapshot_meta (id, position, events, written_ms) VALUES (1, ?, ?, ?)')
        .run(meta.position, meta.events, Date.now());
    });
  }

  snapshotMeta(): SnapshotMeta | null {
    const row = this.stmt.snapshotMeta.get();
    return row === undefined ? null : { position: row.position, events: row.events, writtenMs: row.written_ms };
  }

  /** Snapshot rows of one kind with key > afterKey, in key order. */
  snapshotRows(kind: string, afterKey: string, limit: number): SnapshotRow[] {
    return this.stmt.snapshotRows.all(kind, afterKey, pageSize(limit));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function pageSize(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new Error(`page size must be 1 to ${MAX_PAGE}, not ${limit}`);
  return limit;
}

function migrate(db: Database.Database, durable: boolean): void {
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // The account index takes an insert at each account's end (hundreds of hospitals): keep those pages cached.
  db.pragma(`cache_size = -${CACHE_SIZE_KIB}`);
  if (durable) {
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`SQLite refused WAL mode (got ${String(mode)}); use a file on a local disk`);
    // FULL: an entry is durable when its transaction commits, like the events it posts.
    db.pragma('synchronous = FULL');
  } else {
    // A throw-away file written by one process (audit replay): no rollback journal on disk, no fsync.
    db.pragma('journal_mode = MEMORY');
    db.pragma('synchronous = OFF');
  }
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
      -- position UNIQUE: one entry per event, whatever happens (the event id adds nothing to that
      -- and would cost a random-key index).
      CREATE TABLE IF NOT EXISTS journal (
        seq INTEGER PRIMARY KEY, position INTEGER NOT NULL UNIQUE, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
        stream_id TEXT NOT NULL, settlement_id TEXT, body TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
      ) STRICT;
      CREATE INDEX IF NOT EXISTS journal_by_settlement ON journal (settlement_id) WHERE settlement_id IS NOT NULL;
      CREATE TABLE IF NOT EXISTS journal_accounts (account TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (account, seq)) STRICT, WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS balances (
        account TEXT NOT NULL, year INTEGER NOT NULL, debit_fen INTEGER NOT NULL, credit_fen INTEGER NOT NULL, PRIMARY KEY (account, year)
      ) STRICT, WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS checkpoint (
        id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, events INTEGER NOT NULL, event_id TEXT, updated_ms INTEGER
      ) STRICT;
      INSERT OR IGNORE INTO checkpoint (id, position, events, event_id, updated_ms) VALUES (1, 0, 0, NULL, NULL);
      CREATE TABLE IF NOT EXISTS snapshot_meta (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, events INTEGER NOT NULL, written_ms INTEGER NOT NULL) STRICT;
      CREATE TABLE IF NOT EXISTS snapshot_rows (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, key)) STRICT, WITHOUT ROWID;`);
    // The settlements list of a ledger before schema 4 lacks the reversal's time (reconciliation):
    // the lists are dropped and rebuilt from the start of the log by the follower (the journal keeps its place).
    const columns = db.prepare<[], string>("SELECT name FROM pragma_table_info('settlements')").pluck().all();
    if (columns.length > 0 && !columns.includes('reversed_at_ms'))
      db.exec(
        'DROP TABLE settlements; DROP TABLE IF EXISTS person_categories; DROP TABLE IF EXISTS alerts; DROP TABLE IF EXISTS projection_checkpoint',
      );
    db.exec(PROJECTION_TABLES_SQL);
    db.exec(REPORT_TABLES_SQL);
    const version = db.prepare<[], string>("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get();
    if (version === undefined || Number(version) === 1 || Number(version) === 2 || Number(version) === 3) {
      // 4 adds the monitoring flags to the report projection: a projection of 3 is folded again from
      // the start of the log (the follower reads from the lowest checkpoint; the journal keeps its own)
      if (Number(version) === 3) {
        for (const table of REPORT_TABLES) if (table !== 'report_meta') db.prepare(`DELETE FROM ${table}`).run();
        db.prepare(`UPDATE report_meta SET position = 0, events = 0, anomalies = ?`).run(JSON.stringify(noReportAnomalies()));
      }
      db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(
        String(SCHEMA_VERSION),
      );
    } else if (Number(version) !== SCHEMA_VERSION)
      throw new Error(`unsupported ledger schema version ${version}, expected ${SCHEMA_VERSION}`);
  }).immediate();
}
