// PostgreSQL adapter of the event-store port, with node-postgres (the only module that may import
// it). Several service instances may share one database: every append is one call of a server-side
// function that checks and writes under one lock (postgres-schema.ts says why the global order
// needs it), so expected revisions, event-id idempotency and tag conditions hold across processes.
// Subscriptions read pages of the log after their checkpoint; a LISTEN connection wakes them at
// each commit (NOTIFY is sent by the append function), and they also poll, so a lost connection
// or notification delays delivery by at most the poll interval, never loses an event.
import pg from 'pg';
import {
  AppendConditionFailedError,
  EventIdConflictError,
  WrongExpectedRevisionError,
  checkConditions,
  conditionsOf,
  checkLimit,
  checkMaxCount,
  checkNonNegative,
  checkTagRules,
  prepareEvents,
  readPages,
  PagedSubscriptions,
  type AppendCondition,
  type AppendOptions,
  type ExpectedRevision,
  type PreparedEvent,
  type AppendResult,
  type EventData,
  type EventStore,
  type LogPosition,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeToAllOptions,
  type Subscription,
  type TagRule,
  tagKey,
} from '#event-store';
import { schemaSql } from './postgres-schema.js';

const SUBSCRIPTION_PAGE_SIZE = 500;
/** Conditions one append may carry (each one indexed lookup under the append lock). */
const MAX_CONDITIONS = 16;
const DEFAULT_POLL_MS = 1_000;
/** Serialises the schema set-up of instances starting together (CREATE OR REPLACE races otherwise). */
const SCHEMA_LOCK_KEY = 7_356_001;

export interface PostgresEventStoreOptions {
  /** postgres://user@host:port/database (libpq-style parameters such as sslmode are passed on). */
  connectionString: string;
  /** The schema the tables live in (default `medaid`); instances sharing a log share it. */
  schema?: string;
  tagRules?: readonly TagRule[];
  /** Connections in the pool (default 10). Appends are serialised in the database; reads run side by side. */
  poolSize?: number;
  /** Most UTF-8 bytes of one event's data + metadata JSON (default 1 MiB). */
  maxEventBytes?: number;
  /** How often a subscription looks for events when no notification came (default 1,000 ms). */
  pollIntervalMs?: number;
  /** Most milliseconds a statement may run (default 30,000); beyond, STORE_DEADLINE_EXCEEDED. */
  statementTimeoutMs?: number;
  /**
   * Be the only writer of the schema: a session advisory lock, held on a connection of its own for
   * as long as the store is open. Another store asking for it fails to connect (STORE_IN_USE); if the
   * lock's connection breaks, every later append is refused (STORE_UNAVAILABLE), for another process
   * may hold the lock by then. For a service whose decision state is its own (one instance per log).
   */
  exclusive?: boolean;
}

/** Another process holds the schema's writer lock (PostgresEventStoreOptions.exclusive). */
export class PostgresStoreInUseError extends Error {
  readonly code = 'STORE_IN_USE';
  constructor(schema: string) {
    super(`another medaid process is the writer of PostgreSQL schema ${schema} (its advisory lock is held)`);
  }
}

/** The database cannot be reached, or the connection broke: an append in flight may or may not be recorded. */
export class PostgresUnavailableError extends Error {
  readonly code = 'STORE_UNAVAILABLE';
  constructor(operation: string, options: { cause: unknown }) {
    super(`PostgreSQL failed ${operation}: ${options.cause instanceof Error ? options.cause.message : String(options.cause)}`, options);
  }
}

/** A statement ran past its timeout; an append may or may not be recorded (a retry with the same ids is safe). */
export class PostgresDeadlineExceededError extends Error {
  readonly code = 'STORE_DEADLINE_EXCEEDED';
  constructor(operation: string, options: { cause: unknown }) {
    super(`PostgreSQL did not answer ${operation} in time`, options);
  }
}

export class PostgresStoreClosedError extends Error {
  readonly code = 'STORE_CLOSED';
  constructor() {
    super('event store is closed');
  }
}

interface EventRow {
  position: string;
  stream_id: string;
  revision: number;
  event_id: string;
  type: string;
  data: string;
  metadata: string | null;
  created_ms: string;
}

interface AppendRow {
  outcome: 'written' | 'retried' | 'revision' | 'event_id' | 'condition';
  next_revision: number | null;
  last_position: string | null;
  detail: string | null;
}

interface PendingAppend {
  streamId: string;
  expected: ExpectedRevision;
  prepared: PreparedEvent[];
  conditions: readonly AppendCondition[];
  conditionKeys: string[];
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

/** Most appends in one group commit. */
const MAX_BATCH_APPENDS = 500;

const COLUMNS = 'e.position, e.stream_id, e.revision, e.event_id, e.type, e.data, e.metadata, e.created_ms';

export class PostgresEventStore implements EventStore {
  readonly maxAppendConditions = MAX_CONDITIONS;
  private readonly subscriptions: PagedSubscriptions;
  private readonly appends = new Set<Promise<unknown>>();
  private listener: pg.Client | undefined;
  /** The exclusive writer lock's connection, when asked for; undefined once lost (then appends are refused). */
  private lockHolder: pg.Client | undefined;
  private lockLost = false;
  private listening: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  /** Appends waiting for the next group commit, and whether one is in the database now. */
  private readonly queue: PendingAppend[] = [];
  private committing = false;
  /** Group commits run (one database transaction each), and the appends they carried. */
  private readonly counters = { transactions: 0, appends: 0 };

  private constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    readonly tagRules: readonly TagRule[],
    private readonly options: Required<Pick<PostgresEventStoreOptions, 'maxEventBytes' | 'pollIntervalMs' | 'connectionString'>>,
  ) {
    this.subscriptions = new PagedSubscriptions((after, limit) => this.page(after, limit), {
      pageSize: SUBSCRIPTION_PAGE_SIZE,
      pollIntervalMs: options.pollIntervalMs,
      closedError: () => new PostgresStoreClosedError(),
      beforeRead: () => this.ensureListening(),
    });
  }

  static async connect(options: PostgresEventStoreOptions): Promise<PostgresEventStore> {
    const schema = options.schema ?? 'medaid';
    if (!/^[a-z_][a-z0-9_]{0,40}$/.test(schema)) throw new TypeError('schema must be 1..41 of a-z, 0-9, _ (not starting with a digit)');
    const tagRules = [...checkTagRules(options.tagRules ?? [])];
    const poolSize = checkLimit('poolSize', options.poolSize ?? 10, 1_000);
    const maxEventBytes = checkLimit('maxEventBytes', options.maxEventBytes ?? 1024 * 1024, 64 * 1024 * 1024);
    const pollIntervalMs = checkLimit('pollIntervalMs', options.pollIntervalMs ?? DEFAULT_POLL_MS, 60_000);
    const statementTimeoutMs = checkLimit('statementTimeoutMs', options.statementTimeoutMs ?? 30_000, 3_600_000);
    const pool = new pg.Pool({
      connectionString: options.connectionString,
      max: poolSize,
      statement_timeout: statementTimeoutMs,
      application_name: 'medaid',
    });
    // An idle connection that breaks is dropped by the pool; the error must not crash the process.
    pool.on('error', () => {});
    try {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK_KEY]);
        await client.query(schemaSql(schema));
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => {});
      throw translate('connecting', error);
    }
    const store = new PostgresEventStore(pool, schema, tagRules, {
      maxEventBytes,
      pollIntervalMs,
      connectionString: options.connectionString,
    });
    if (options.exclusive === true) {
      try {
        await store.takeWriterLock();
      } catch (error) {
        await store.close();
        throw error;
      }
    }
    return store;
  }

  private async takeWriterLock(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.connectionString, application_name: 'medaid-writer-lock' });
    const lost = () => {
      if (this.lockHolder !== client) return;
      this.lockHolder = undefined;
      this.lockLost = this.closing === undefined;
      client.end().catch(() => {});
    };
    client.on('error', lost);
    client.on('end', lost);
    try {
      await client.connect();
      const r = await client.query<{ taken: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS taken', [
        `medaid-writer:${this.schema}`,
      ]);
      if (r.rows[0]?.taken !== true) throw new PostgresStoreInUseError(this.schema);
    } catch (error) {
      await client.end().catch(() => {});
      throw error instanceof PostgresStoreInUseError ? error : translate('taking the writer lock', error);
    }
    this.lockHolder = client;
  }

  /** Group commits so far: how many transactions carried how many appends. */
  stats(): Readonly<{ transactions: number; appends: number }> {
    return { ...this.counters };
  }

  /** One statement on its own connection (CREATE / DROP DATABASE for operators' scripts and tests). */
  static async admin(connectionString: string, statement: string): Promise<void> {
    const client = new pg.Client({ connectionString, application_name: 'medaid-admin' });
    try {
      await client.connect();
      await client.query(statement);
    } catch (error) {
      throw translate('running an administrative statement', error);
    } finally {
      await client.end().catch(() => {});
    }
  }

  appendToStream(streamId: string, events: readonly EventData[], options: AppendOptions): Promise<AppendResult> {
    if (this.closing !== undefined) return Promise.reject(new PostgresStoreClosedError());
    if (this.lockLost) return Promise.reject(new PostgresUnavailableError('appending', { cause: new Error('the writer lock was lost') }));
    const appending = this.append(streamId, events, options);
    this.appends.add(appending);
    void appending.then(
      () => this.appends.delete(appending),
      () => this.appends.delete(appending),
    );
    return appending;
  }

  /** Checks the request at once (bad input is refused before the database), then queues it for the next group commit. */
  private append(streamId: string, events: readonly EventData[], options: AppendOptions): Promise<AppendResult> {
    try {
      return this.enqueue(streamId, events, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private enqueue(streamId: string, events: readonly EventData[], options: AppendOptions): Promise<AppendResult> {
    const { events: prepared } = prepareEvents(streamId, events, options?.expectedRevision, this.options.maxEventBytes, this.tagRules);
    const conditions = checkConditions(conditionsOf(options), MAX_CONDITIONS);
    checkText('streamId', streamId);
    for (const e of prepared) {
      checkText('event id', e.id);
      checkText('event type', e.type);
      for (let t = 1; t < e.tags.length; t += 2) checkText('tag key', e.tags[t]!);
    }
    const conditionKeys = conditions.map((c) => checkText('condition key', tagKey(c.key)));
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ streamId, expected: options.expectedRevision, prepared, conditions, conditionKeys, resolve, reject });
      this.flush();
    });
  }

  /**
   * Group commit: while one batch is in the database, the appends that arrive wait and go together
   * in the next, one transaction and one WAL flush for all of them (appends are serialised in the
   * database anyway: postgres-schema.ts). An append alone is sent at once.
   */
  private flush(): void {
    if (this.committing || this.queue.length === 0) return;
    this.committing = true;
    const batch = this.queue.splice(0, MAX_BATCH_APPENDS);
    void this.commit(batch).finally(() => {
      this.committing = false;
      this.flush();
    });
  }

  private async commit(batch: PendingAppend[]): Promise<void> {
    const streams: string[] = [];
    const expected: string[] = [];
    const counts: number[] = [];
    const ids: string[] = [];
    const types: string[] = [];
    const data: string[] = [];
    const metadata: Array<string | null> = [];
    const tagEvents: number[] = [];
    const tags: string[] = [];
    const keys: string[] = [];
    const conditionAppends: number[] = [];
    const conditionTags: string[] = [];
    const conditionKeys: string[] = [];
    const conditionAfters: number[] = [];
    batch.forEach((a, i) => {
      streams.push(a.streamId);
      expected.push(String(a.expected));
      counts.push(a.prepared.length);
      for (const e of a.prepared) {
        ids.push(e.id);
        types.push(e.type);
        data.push(e.dataJson);
        metadata.push(e.metadataJson);
        for (let t = 0; t < e.tags.length; t += 2) {
          tagEvents.push(ids.length);
          tags.push(e.tags[t]!);
          keys.push(e.tags[t + 1]!);
        }
      }
      a.conditions.forEach((c, k) => {
        conditionAppends.push(i + 1);
        conditionTags.push(c.tag);
        conditionKeys.push(a.conditionKeys[k]!);
        conditionAfters.push(c.afterPosition);
      });
    });
    let rows: AppendRow[];
    this.counters.transactions++;
    this.counters.appends += batch.length;
    try {
      const r = await this.query<AppendRow & { idx: number }>(
        'appending',
        `SELECT * FROM ${this.schema}.append_batch($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
        [
          streams,
          expected,
          counts,
          ids,
          types,
          data,
          metadata,
          tagEvents,
          tags,
          keys,
          conditionAppends,
          conditionTags,
          conditionKeys,
          conditionAfters,
          Date.now(),
        ],
      );
      rows = r.rows.sort((x, y) => x.idx - y.idx);
    } catch (error) {
      // Not known whether the transaction committed: every append of it may or may not be recorded.
      for (const a of batch) a.reject(error);
      return;
    }
    batch.forEach((a, i) => {
      const row = rows[i]!;
      switch (row.outcome) {
        case 'written':
        case 'retried':
          return a.resolve({ nextExpectedRevision: row.next_revision!, position: Number(row.last_position) });
        case 'revision':
          return a.reject(
            new WrongExpectedRevisionError(a.streamId, a.expected, row.next_revision! < 0 ? 'no_stream' : row.next_revision!),
          );
        case 'event_id':
          return a.reject(new EventIdConflictError(a.streamId, row.detail!));
        case 'condition':
          return a.reject(new AppendConditionFailedError(a.streamId, a.conditions[Number(row.detail)]!));
      }
    });
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const from = checkNonNegative('fromRevision', options.fromRevision ?? 0);
    const limit = limitOf(options.maxCount);
    const r = await this.query<EventRow>(
      'reading a stream',
      `SELECT ${COLUMNS} FROM ${this.schema}.events e WHERE e.stream_id = $1 AND e.revision >= $2 ORDER BY e.revision LIMIT $3`,
      [streamId, from, limit],
    );
    return r.rows.map(toRecorded);
  }

  async readByTag(tag: string, key: readonly string[], options: { maxCount?: number } = {}): Promise<RecordedEvent[]> {
    const limit = limitOf(options.maxCount);
    if (key.some((k) => k.includes('\u0000'))) return [];
    const r = await this.query<EventRow>(
      'reading by tag',
      `SELECT ${COLUMNS} FROM ${this.schema}.tags t JOIN ${this.schema}.events e ON e.position = t.position
       WHERE t.tag = $1 AND t.key = $2 ORDER BY t.position LIMIT $3`,
      [tag, tagKey(key), limit],
    );
    return r.rows.map(toRecorded);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const from = checkNonNegative('fromPosition', options.fromPosition ?? 0);
    return this.page(from, limitOf(options.maxCount));
  }

  /** Pages of the global log after fromPosition (exclusive) up to the head, memory bounded by pageSize. */
  readAllPages(fromPosition: LogPosition = 0, pageSize = 1_000): AsyncGenerator<RecordedEvent[], void, undefined> {
    const from = checkNonNegative('fromPosition', fromPosition);
    return readPages((after, limit) => this.page(after, limit), from, checkLimit('pageSize', pageSize, 10_000));
  }

  async headPosition(): Promise<LogPosition> {
    const r = await this.query<{ position: string }>('reading the head', `SELECT position FROM ${this.schema}.log_head WHERE id = 1`, []);
    return Number(r.rows[0]!.position);
  }

  subscribeToAll(handler: (event: RecordedEvent) => void | Promise<void>, options: SubscribeToAllOptions = {}): Subscription {
    return this.subscriptions.subscribe(handler, options, this.closing !== undefined);
  }

  /** Idempotent. Appends in flight are answered first. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await Promise.allSettled([...this.appends]);
    await this.subscriptions.close();
    await this.listening?.catch(() => {});
    await this.listener?.end().catch(() => {});
    const lock = this.lockHolder;
    this.lockHolder = undefined;
    await lock?.end().catch(() => {}); // ending the session releases its advisory lock
    await this.pool.end();
  }

  private async page(after: LogPosition, limit: number | null): Promise<RecordedEvent[]> {
    const r = await this.query<EventRow>(
      'reading the log',
      `SELECT ${COLUMNS} FROM ${this.schema}.events e WHERE e.position > $1 ORDER BY e.position LIMIT $2`,
      [after, limit],
    );
    return r.rows.map(toRecorded);
  }

  private async query<R extends pg.QueryResultRow>(operation: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (error) {
      throw translate(operation, error);
    }
  }

  /** One LISTEN connection for all subscriptions, opened by the first; reopened by the next poll if it breaks. */
  private ensureListening(): void {
    if (this.listening !== undefined || this.closing !== undefined) return;
    const client = new pg.Client({ connectionString: this.options.connectionString, application_name: 'medaid-listen' });
    const drop = () => {
      if (this.listener === client) this.listener = undefined;
      this.listening = undefined;
      client.end().catch(() => {});
    };
    client.on('error', drop);
    client.on('end', drop);
    client.on('notification', () => this.subscriptions.wakeAll());
    this.listener = client;
    this.listening = client
      .connect()
      .then(() => client.query(`LISTEN "${this.schema}_appended"`))
      .then(
        () => undefined,
        () => drop(),
      );
  }
}

function toRecorded(row: EventRow): RecordedEvent {
  return {
    streamId: row.stream_id,
    revision: row.revision,
    position: Number(row.position),
    id: row.event_id,
    type: row.type,
    data: JSON.parse(row.data) as unknown,
    metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as unknown),
    createdMs: Number(row.created_ms),
  };
}

/** PostgreSQL reads LIMIT NULL as "no limit". */
function limitOf(maxCount: number | undefined): number | null {
  const n = checkMaxCount(maxCount);
  return n < 0 ? null : n;
}

/** PostgreSQL text cannot hold U+0000 (JSON escapes it in data; ids, types and keys must not carry it). */
function checkText(name: string, value: string): string {
  if (value.includes('\u0000')) throw new TypeError(`${name} must not contain U+0000`);
  return value;
}

/** The SQLSTATE classes of a connection that is gone or a server that is going away. */
const UNAVAILABLE = /^(08|53|57P0[1-3]|58)/;

function translate(operation: string, error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === '57014') return new PostgresDeadlineExceededError(operation, { cause: error });
  if (typeof code === 'string' && (UNAVAILABLE.test(code) || /^E[A-Z]+$/.test(code)))
    return new PostgresUnavailableError(operation, { cause: error });
  if (error instanceof Error && /Connection terminated|connection timeout|Client has encountered a connection error/i.test(error.message))
    return new PostgresUnavailableError(operation, { cause: error });
  return error;
}
