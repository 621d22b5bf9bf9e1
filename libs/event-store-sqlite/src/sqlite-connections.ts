// The SQLite files of the embedded event store: the schema and its migrations (tags indexed at
// open when their rules change), the writer thread's connection (write-batch.ts runs on it) and
// the read-only connections of the log (the store's own reads, and the journal thread's). With
// projections.ts and sqlite-journal.ts of the ledger, the only modules that import better-sqlite3.
import Database from 'better-sqlite3';
import { tagKey } from '#event-store';
import type { ReadStreamOptions, RecordedEvent, TagRule, LogPosition, ReadAllOptions } from '#event-store';
import { checkMaxCount, checkNonNegative } from '#event-store';
import { StoreClosedError } from './errors.js';
import type { IdRow, WriteConnection } from './write-batch.js';

/** 2: the tags table (version 1 files are upgraded in place, their events tagged on the way). */
const SCHEMA_VERSION = 2;
/** Another process holding the write lock makes us wait (synchronously) at most this long. */
const BUSY_TIMEOUT_MS = 5_000;
/** Bounds the WAL file left on disk after a checkpoint. */
const JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
const PAGE_SIZE_BYTES = 16 * 1024;
const CACHE_SIZE_KIB = 64 * 1024;

interface EventRow {
  position: number;
  stream_id: string;
  revision: number;
  event_id: string;
  type: string;
  data: string;
  metadata: string | null;
  created_ms: number;
}

const COLUMNS = 'position, stream_id, revision, event_id, type, data, metadata, created_ms';

/**
 * A read-only view of an existing log file, on the thread that opens it: the store's own reads,
 * and another thread's (the ledger follows the embedded log on its journal thread with one of
 * these, so the request path's thread does not read and parse every event a second time). WAL
 * lets it read alongside the writer; a read sees every commit acknowledged before it started.
 */
export class SqliteLogReader {
  private readonly stmt;

  private constructor(private readonly db: Database.Database) {
    this.stmt = {
      readStream: db.prepare<[string, number, number], EventRow>(
        `SELECT ${COLUMNS} FROM events WHERE stream_id = ? AND revision >= ? ORDER BY revision LIMIT ?`,
      ),
      readAll: db.prepare<[number, number], EventRow>(`SELECT ${COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?`),
      head: db.prepare<[], number | null>('SELECT MAX(position) FROM events').pluck(),
      byTag: db.prepare<[string, string, number], EventRow>(
        `SELECT ${COLUMNS} FROM events WHERE position IN (SELECT position FROM tags WHERE tag = ? AND key = ?) ORDER BY position LIMIT ?`,
      ),
      tagRules: db.prepare<[], string>("SELECT value FROM meta WHERE key = 'tag_rules'").pluck(),
    };
  }

  /** The rules the file's tags were made with ([] when none). */
  tagRules(): TagRule[] {
    const json = this.statements().tagRules.get();
    return json === undefined ? [] : (JSON.parse(json) as TagRule[]);
  }

  readByTag(tag: string, key: readonly string[], maxCount?: number): RecordedEvent[] {
    return this.statements().byTag.all(tag, tagKey(key), checkMaxCount(maxCount)).map(toRecorded);
  }

  /** Opens the file (which must exist, with its schema) read-only. */
  static open(path: string): SqliteLogReader {
    return new SqliteLogReader(openReadConnection(path));
  }

  readStream(streamId: string, options: ReadStreamOptions = {}): RecordedEvent[] {
    const fromRevision = checkNonNegative('fromRevision', options.fromRevision ?? 0);
    return this.statements().readStream.all(streamId, fromRevision, checkMaxCount(options.maxCount)).map(toRecorded);
  }

  readAll(options: ReadAllOptions = {}): RecordedEvent[] {
    return this.readAllNow(checkNonNegative('fromPosition', options.fromPosition ?? 0), checkMaxCount(options.maxCount));
  }

  /** Events after fromPosition (exclusive), in log order; limit -1 = all. */
  readAllNow(fromPosition: LogPosition, limit: number): RecordedEvent[] {
    return this.statements().readAll.all(fromPosition, limit).map(toRecorded);
  }

  headPosition(): LogPosition {
    return this.statements().head.get() ?? 0;
  }

  close(): void {
    this.db.close();
  }

  private statements(): SqliteLogReader['stmt'] {
    if (!this.db.open) throw new StoreClosedError();
    return this.stmt;
  }
}

/** A read connection: reads only, opened once the writer has created the schema. */
function openReadConnection(path: string): Database.Database {
  const db = new Database(path, { fileMustExist: true });
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma('query_only = ON'); // every write goes through the writer thread's transaction
    db.pragma(`cache_size = -${CACHE_SIZE_KIB}`);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** The writer thread's connection (see sqlite-writer.worker.ts): migrates, then serves writeBatch. */
export function openWriteConnection(path: string, tagRules: readonly TagRule[] | null): WriteConnection & { close(): void } {
  const db = new Database(path);
  try {
    migrate(db);
    if (tagRules !== null) reindex(db, tagRules);
  } catch (error) {
    db.close();
    throw error;
  }
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const rollback = db.prepare('ROLLBACK');
  // ORDER BY … LIMIT 1 walks the (stream_id, revision) index backwards: one probe.
  const lastRevision = db
    .prepare<[string], number>('SELECT revision FROM events WHERE stream_id = ? ORDER BY revision DESC LIMIT 1')
    .pluck();
  const byEventId = db.prepare<[string], IdRow>('SELECT stream_id, revision, position, type FROM events WHERE event_id = ?');
  const insert = db.prepare<[string, number, string, string, string, string | null, number]>(
    'INSERT INTO events (stream_id, revision, event_id, type, data, metadata, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const taggedAfter = db
    .prepare<[string, string, number], number>('SELECT 1 FROM tags WHERE tag = ? AND key = ? AND position > ? LIMIT 1')
    .pluck();
  const insertTag = db.prepare<[string, string, number]>('INSERT INTO tags (tag, key, position) VALUES (?, ?, ?)');
  return {
    begin: () => void begin.run(),
    commit: () => void commit.run(),
    rollbackIfOpen: () => {
      if (db.inTransaction) rollback.run();
    },
    lastRevision: (streamId) => lastRevision.get(streamId),
    eventById: (eventId) => byEventId.get(eventId),
    insert: (...row) => Number(insert.run(...row).lastInsertRowid),
    taggedAfter: (tag, key, after) => taggedAfter.get(tag, key, after) !== undefined,
    insertTag: (tag, key, position) => void insertTag.run(tag, key, position),
    close: () => db.close(),
  };
}

function migrate(db: Database.Database): void {
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`); // first, so that the steps below wait for other processes
  // Takes effect only on a new file. 16 KiB pages hold ~10 events of 1.5 KB: fewer WAL frames per
  // commit; measured here, the COMMIT of a 1000-event batch took about half the time of 4 KiB pages.
  db.pragma(`page_size = ${PAGE_SIZE_BYTES}`);
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') throw new Error(`SQLite refused WAL mode (got ${String(mode)}); use a file on a local disk`);
  db.pragma('synchronous = FULL'); // WAL + NORMAL may lose the last commits on power loss; FULL does not
  db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
  db.pragma(`cache_size = -${CACHE_SIZE_KIB}`); // keeps the two random-key indexes' hot pages in memory
  // Checkpoint at the size the WAL is truncated back to: a hot index page modified by many commits is
  // copied into the database once per checkpoint, so rarer checkpoints copy less (measured ~10% more appends/s).
  db.pragma(`wal_autocheckpoint = ${JOURNAL_SIZE_LIMIT_BYTES / PAGE_SIZE_BYTES}`);
  db.transaction(() => {
    // position is the rowid: max + 1 on insert, so strictly increasing in commit order as rows are
    // never deleted. The two UNIQUE indexes serve the revision probe and the event-id probe.
    db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
      CREATE TABLE IF NOT EXISTS events (
        position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, revision INTEGER NOT NULL, event_id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT, created_ms INTEGER NOT NULL, UNIQUE (stream_id, revision)
      ) STRICT;
      -- Which events carry which tag and key (TagRule): written in the append's transaction.
      CREATE TABLE IF NOT EXISTS tags (tag TEXT NOT NULL, key TEXT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (tag, key, position)) STRICT, WITHOUT ROWID;`);
    const version = db.prepare<[], string>("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get();
    if (version === undefined || Number(version) === 1) {
      // A version-1 file has no tags yet: its rules are none, so the first open with rules indexes it.
      db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(
        String(SCHEMA_VERSION),
      );
    } else if (Number(version) !== SCHEMA_VERSION)
      throw new Error(`unsupported event store schema version ${version}, expected ${SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * Tags the whole log by these rules when the file was indexed with others (or none): one pass
 * in SQL, in one transaction. The key is made as tagsOf() makes it: text or integer values only.
 */
function reindex(db: Database.Database, rules: readonly TagRule[]): void {
  const json = JSON.stringify(rules);
  const stored = db.prepare<[], string>("SELECT value FROM meta WHERE key = 'tag_rules'").pluck();
  if ((stored.get() ?? '[]') === json) return;
  db.transaction(() => {
    if ((stored.get() ?? '[]') === json) return; // another process did it while we waited for the lock
    db.exec('DELETE FROM tags');
    for (const rule of rules) {
      const part = (path: string) => `(CASE WHEN json_type(data, '${path}') IN ('text', 'integer') THEN json_extract(data, '${path}') END)`;
      const key = rule.fields.length === 0 ? "''" : rule.fields.map(part).join(' || char(31) || ');
      db.prepare(
        `INSERT INTO tags (tag, key, position) SELECT ?, k, position FROM (SELECT ${key} AS k, position FROM events WHERE type = ?) WHERE k IS NOT NULL`,
      ).run(rule.tag, rule.eventType);
    }
    db.prepare("INSERT INTO meta (key, value) VALUES ('tag_rules', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(json);
  }).immediate();
}

function toRecorded(row: EventRow): RecordedEvent {
  const metadata: unknown = row.metadata === null ? null : JSON.parse(row.metadata);
  const { stream_id: streamId, revision, position, event_id: id, type, created_ms: createdMs } = row;
  return { streamId, revision, position, id, type, data: JSON.parse(row.data) as unknown, metadata, createdMs };
}
