// Opens the event store — the embedded SQLite store in the data directory by default, an
// EventStoreDB/KurrentDB cluster or a PostgreSQL database when a connection string is given — and brings the decision
// state to the head of the log from its snapshot. This is the one file of the service that knows
// which event-store adapter is in use.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MEDAID_TAG_RULES } from '#domain';
import { EventStore } from '#event-store';
import { SqliteEventStore } from '#event-store-sqlite';
import { Ledger } from '../ledger/ledger.js';
import { logLine } from '../shared/log.js';
import { DEFAULT_PERSON_CACHE, DecisionState } from '../shared/decision-state.js';
import { EventWriter } from '../shared/writer.js';
import { startDecisionState, writeDecisionSnapshot, writeDecisionSnapshotAsync } from './decision-snapshot.js';

/** How often the decision snapshot is written while the log moves. */
const SNAPSHOT_INTERVAL_MS = 10_000;

export interface MedaidRuntime {
  store: EventStore;
  state: DecisionState;
  writer: EventWriter;
  /** The journal (DIR/ledger.sqlite) and its writer, following the log. */
  ledger: Ledger;
  dataDir: string;
  /** Which store: "sqlite" (embedded, in dataDir), "esdb" (EventStoreDB/KurrentDB) or "postgres". */
  storeKind: StoreKind;
  /** Start-up: events read after the decision snapshot (the tail), from which position, and how long it took. */
  rebuilt: { events: number; fromPosition: number; ms: number };
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** `esdb://…` (or `kurrentdb://…`) or `postgres://…`: use that store instead of the embedded one. */
  storeUrl?: string;
  /** Persons kept in the decision cache (default MEDAID_PERSON_CACHE or 20,000). */
  personCacheSize?: number;
}

export type StoreKind = 'sqlite' | 'esdb' | 'postgres';

const ESDB_URL = /^(esdb|esdb\+discover|kurrentdb|kurrentdb\+discover|kdb|kdb\+discover):\/\//;
const POSTGRES_URL = /^postgres(ql)?:\/\//;

/** The store a `--store` / EVENTSTORE_CONNECTION_STRING value names; undefined = the embedded default. */
export function storeUrlFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const value = flag ?? (env.EVENTSTORE_CONNECTION_STRING || undefined);
  if (value === undefined || value === 'sqlite') return undefined;
  if (!ESDB_URL.test(value) && !POSTGRES_URL.test(value)) {
    // (the value may hold a password: only its scheme is repeated)
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(value)?.[0] ?? 'no scheme';
    throw new Error(`--store must be "sqlite", an esdb:// or a postgres:// connection string, not ${scheme}`);
  }
  return value;
}

export function storeKindOf(url: string | undefined): StoreKind {
  return url === undefined ? 'sqlite' : POSTGRES_URL.test(url) ? 'postgres' : 'esdb';
}

export async function openRuntime(dataDir: string, options: RuntimeOptions = {}): Promise<MedaidRuntime> {
  mkdirSync(dataDir, { recursive: true });
  // The lock also guards the data directory in EventStoreDB mode (it holds the relay checkpoint).
  const releaseLock = acquireLock(join(dataDir, 'medaid.lock'));
  try {
    // The embedded store's file, which the ledger's thread reads too; none with EventStoreDB.
    let eventsPath: string | undefined;
    let store: EventStore;
    const started = performance.now();
    if (options.storeUrl === undefined) {
      eventsPath = join(dataDir, 'events.sqlite');
      store = await SqliteEventStore.open({ path: eventsPath, tagRules: MEDAID_TAG_RULES });
    } else {
      // the only writer of the log: the decision state and the snapshot are this process's own
      store = await connectShared(options.storeUrl, { exclusive: true });
    }
    const { state, snapshotPosition, tailEvents, ignoredSnapshot } = await startDecisionState(
      store,
      dataDir,
      options.personCacheSize ?? personCacheFromEnv(),
    );
    if (ignoredSnapshot !== null) logLine('warn', 'decision snapshot ignored; the whole log was read', { reason: ignoredSnapshot });
    let snapshotAt = snapshotPosition;
    const snapshot = () => {
      if (state.position === snapshotAt) return;
      try {
        writeDecisionSnapshot(dataDir, state);
        snapshotAt = state.position;
      } catch (error) {
        logLine('error', 'decision snapshot not written; the next start reads a longer tail', { error: String(error) });
      }
    };
    snapshot();
    let writing: Promise<void> = Promise.resolve();
    const snapshotInBackground = () => {
      if (state.position === snapshotAt) return;
      writing = writeDecisionSnapshotAsync(dataDir, state).then(
        (position) => void (snapshotAt = position),
        (error: unknown) => logLine('error', 'decision snapshot not written; the next start reads a longer tail', { error: String(error) }),
      );
    };
    // Appends to EventStoreDB or PostgreSQL (over several connections) may be acknowledged out of
    // log order: their snapshot is written only when nothing can be in flight (after start-up and at a clean stop).
    const timer =
      options.storeUrl === undefined ? setInterval(() => void writing.then(snapshotInBackground), SNAPSHOT_INTERVAL_MS).unref() : undefined;
    const writer = new EventWriter(store, state);
    const ledger = await Ledger.start(store, dataDir, eventsPath);
    const eventsAtStart = state.eventCount;
    let closed = false;
    return {
      store,
      state,
      writer,
      ledger,
      dataDir,
      storeKind: storeKindOf(options.storeUrl),
      rebuilt: { events: tailEvents, fromPosition: snapshotPosition, ms: Math.round(performance.now() - started) },
      async close() {
        if (closed) return;
        closed = true;
        clearInterval(timer);
        await ledger.stop(); // posts what the log holds, before the store closes
        await store.close(); // every append acknowledged and applied: the state is at the head
        await writing;
        snapshot();
        await ledger.close(state.eventCount > eventsAtStart ? state : null); // funds saved for audit replay only if commands moved them
        releaseLock();
      },
    };
  } catch (e) {
    releaseLock();
    throw e;
  }
}

/** The store alone, for readers (medaid audit): no lock, no decision state, no ledger; nothing is appended. */
export async function openEventStore(dataDir: string, options: RuntimeOptions = {}): Promise<EventStore> {
  return options.storeUrl === undefined
    ? SqliteEventStore.open({ path: join(dataDir, 'events.sqlite'), tagRules: MEDAID_TAG_RULES })
    : connectShared(options.storeUrl, { exclusive: false });
}

/**
 * Loaded only when asked for: the EventStoreDB client (gRPC, protobuf) adds ~0.3 s to every start.
 * `exclusive`: on PostgreSQL, hold the schema's writer lock (a second service on the log is refused);
 * on EventStoreDB there is no such lock — one replica, as deploy/ says.
 */
async function connectShared(url: string, { exclusive }: { exclusive: boolean }): Promise<EventStore> {
  if (storeKindOf(url) === 'postgres') {
    const { PostgresEventStore } = await import('#event-store-postgres');
    return PostgresEventStore.connect({ connectionString: url, tagRules: MEDAID_TAG_RULES, exclusive });
  }
  const { EsdbEventStore } = await import('#event-store-esdb');
  return EsdbEventStore.connect(url, { tagRules: MEDAID_TAG_RULES });
}

function personCacheFromEnv(): number {
  const text = process.env.MEDAID_PERSON_CACHE;
  if (text === undefined || text === '') return DEFAULT_PERSON_CACHE;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > 10_000_000)
    throw new Error(`MEDAID_PERSON_CACHE must be an integer from 1 to 10000000, not "${text}"`);
  return n;
}

/**
 * One service per data directory: the fund accounts in memory and the decision snapshot assume it
 * is the only writer. A lock left by a killed process (kill -9) is taken over once its pid is gone.
 */
function acquireLock(path: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new Error(`data directory is in use by process ${pid} (${path}); one medaid process per data directory`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new Error(`could not take the lock ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
