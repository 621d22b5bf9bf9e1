// The record of every read of personal data (PIPL): who read what about whom, when and from
// where — an append-only, hash-chained log in the data directory (DIR/access-log.sqlite), which
// auditors query (GET /v1/access-log) and `medaid audit verify` checks.
//
// - What is recorded: one entry per answered read of a person's or a settlement's data (HTTP and
//   gRPC), with the actor {kind, id}, the route, the person it is about (when the answer names
//   one), the subject (`person p-1`, `settlement h/v`, `list …`), the caller's address and the
//   request id. Never a token and never the data itself.
// - Chain: each entry's hash is SHA-256 over the canonical JSON of its fields and the hash before
//   it, so altering, removing or inserting an entry breaks the chain at that seq.
// - Cost: a read only queues its entry; the queue is written in one transaction per turn of the
//   event loop (WAL, synchronous=NORMAL): a crash may lose the last turn's entries, never reorder
//   or corrupt the chain. Settlements are not reads and write nothing here.
// - Several instances (--shared): each keeps its own log in its own data directory.
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { canonicalJson } from '#domain';

export const ACCESS_LOG_FILE = 'access-log.sqlite';

export interface AccessRead {
  atMs: number;
  actorKind: string;
  actorId: string;
  /** The route (`GET /v1/persons/:personId`) or gRPC method (`grpc SettlementService/Get`). */
  action: string;
  /** The person the answer is about; null for lists and settlements of unknown visits. */
  personId: string | null;
  /** What was read: `person p-1`, `settlement h-county/v-1`, `list /v1/settlements?…`. */
  subject: string;
  /** The caller's address. */
  from: string;
  requestId: string;
}

export interface AccessEntry extends AccessRead {
  seq: number;
  prevHash: string;
  hash: string;
}

const GENESIS = '0'.repeat(64);
/** Most entries queued before a write is forced at once (bounds memory under a flood of reads). */
const MAX_QUEUED = 10_000;

/** The hash of an entry: its fields and the hash before it. */
export function accessEntryHash(e: AccessRead & { seq: number; prevHash: string }): string {
  const body = canonicalJson({
    seq: e.seq,
    atMs: e.atMs,
    actorKind: e.actorKind,
    actorId: e.actorId,
    action: e.action,
    personId: e.personId,
    subject: e.subject,
    from: e.from,
    requestId: e.requestId,
    prevHash: e.prevHash,
  });
  return createHash('sha256').update(body).digest('hex');
}

export class AccessLog {
  private readonly insert: Statement;
  private queue: AccessRead[] = [];
  private scheduled = false;
  private lastSeq: number;
  private lastHash: string;

  private constructor(private readonly db: Db) {
    this.insert = db.prepare(
      `INSERT INTO access_log (seq, at_ms, actor_kind, actor_id, action, person_id, subject, source, request_id, prev_hash, hash)
       VALUES (@seq, @atMs, @actorKind, @actorId, @action, @personId, @subject, @from, @requestId, @prevHash, @hash)`,
    );
    const last = db.prepare('SELECT seq, hash FROM access_log ORDER BY seq DESC LIMIT 1').get() as
      { seq: number; hash: string } | undefined;
    this.lastSeq = last?.seq ?? 0;
    this.lastHash = last?.hash ?? GENESIS;
  }

  static open(path: string, options: { readonly?: boolean } = {}): AccessLog {
    const db = new Database(path, { readonly: options.readonly === true, fileMustExist: options.readonly === true });
    if (options.readonly !== true) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(`CREATE TABLE IF NOT EXISTS access_log (
        seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL,
        action TEXT NOT NULL, person_id TEXT, subject TEXT NOT NULL, source TEXT NOT NULL, request_id TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS access_log_person ON access_log (person_id, seq);`);
    }
    return new AccessLog(db);
  }

  /** Queues the entry; it is written (and chained) at the end of this turn of the event loop. */
  record(read: AccessRead): void {
    this.queue.push(read);
    if (this.queue.length >= MAX_QUEUED) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes what is queued, in one transaction. */
  flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.db.transaction(() => {
      for (const read of batch) {
        const entry = { ...read, seq: this.lastSeq + 1, prevHash: this.lastHash, hash: '' };
        entry.hash = accessEntryHash(entry);
        this.insert.run(entry);
        this.lastSeq = entry.seq;
        this.lastHash = entry.hash;
      }
    })();
  }

  /** Entries in seq order after `afterSeq`, of one person when given; at most `limit`. */
  query(filter: { personId?: string; afterSeq?: number; limit: number }): AccessEntry[] {
    this.flush(); // a read of the log sees every read before it
    const rows = this.db
      .prepare(
        `SELECT * FROM access_log WHERE seq > @after ${filter.personId === undefined ? '' : 'AND person_id = @personId'} ORDER BY seq LIMIT @limit`,
      )
      .all({ after: filter.afterSeq ?? 0, personId: filter.personId, limit: filter.limit }) as Row[];
    return rows.map(fromRow);
  }

  /** Checks the chain from the first entry: returns the entries read and one message per broken link. */
  verify(): { entries: number; problems: string[] } {
    this.flush();
    const problems: string[] = [];
    let prev = GENESIS;
    let expectedSeq = 1;
    let entries = 0;
    for (const row of this.db.prepare('SELECT * FROM access_log ORDER BY seq').iterate() as IterableIterator<Row>) {
      const e = fromRow(row);
      entries++;
      if (e.seq !== expectedSeq) problems.push(`access log: seq ${e.seq} follows ${expectedSeq - 1} (entries removed or inserted)`);
      if (e.prevHash !== prev) problems.push(`access log: seq ${e.seq} does not chain to the entry before it`);
      if (accessEntryHash(e) !== e.hash) problems.push(`access log: seq ${e.seq} was altered (its hash does not match its fields)`);
      prev = e.hash;
      expectedSeq = e.seq + 1;
    }
    return { entries, problems };
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}

interface Row {
  seq: number;
  at_ms: number;
  actor_kind: string;
  actor_id: string;
  action: string;
  person_id: string | null;
  subject: string;
  source: string;
  request_id: string;
  prev_hash: string;
  hash: string;
}

function fromRow(r: Row): AccessEntry {
  return {
    seq: r.seq,
    atMs: r.at_ms,
    actorKind: r.actor_kind,
    actorId: r.actor_id,
    action: r.action,
    personId: r.person_id,
    subject: r.subject,
    from: r.source,
    requestId: r.request_id,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}
