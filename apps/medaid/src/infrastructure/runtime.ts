// Opens the event store — the embedded SQLite store in the data directory by default, an
// EventStoreDB/KurrentDB cluster or a PostgreSQL database when a connection string is given — and brings the decision
// state to the head of the log from its snapshot. This is the one file of the service that knows
// which event-store adapter is in use.
import type { NhsaConfig } from '../nhsa/config.js';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FUND_SCOPE_TAG_RULES, MEDAID_TAG_RULES, SettlementReversedData } from '#domain';
import { CheckpointedFollower, EventStore, doublingDelayMs } from '#event-store';
import { SqliteEventStore } from '#event-store-sqlite';
import { Ledger } from '../ledger/ledger.js';
import { ACCESS_LOG_FILE, AccessLog } from '../access-log/access-log.js';
import { logLine } from '../shared/log.js';
import { DEFAULT_PERSON_CACHE, DecisionState } from '../shared/decision-state.js';
import { EventWriter } from '../shared/writer.js';
import { refundOf, startDecisionState, writeDecisionSnapshot, writeDecisionSnapshotAsync } from './decision-snapshot.js';

/** How often the decision snapshot is written while the log moves. */
const SNAPSHOT_INTERVAL_MS = 10_000;

export interface MedaidRuntime {
  store: EventStore;
  state: DecisionState;
  writer: EventWriter;
  /** The journal (DIR/ledger.sqlite) and its writer, following the log. */
  ledger: Ledger;
  /** The hash-chained record of every read of personal data (DIR/access-log.sqlite). */
  accessLog: AccessLog;
  dataDir: string;
  /** Which store: "sqlite" (embedded, in dataDir), "esdb" (EventStoreDB/KurrentDB) or "postgres". */
  storeKind: StoreKind;
  /** Its connection string (undefined: the embedded store), for readers of their own (simulations). */
  storeUrl: string | undefined;
  /** Start-up: events read after the decision snapshot (the tail), from which position, and how long it took. */
  rebuilt: { events: number; fromPosition: number; ms: number };
  /** With `shared`: the follower that advances the decision state (its status for /ready); null otherwise. */
  stateFollower: CheckpointedFollower | null;
  /** The national platform's interface (`--nhsa FILE`): which institution is which hospital; null when off. */
  nhsa?: NhsaConfig | null;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** `esdb://…` (or `kurrentdb://…`) or `postgres://…`: use that store instead of the embedded one. */
  storeUrl?: string;
  /** Persons kept in the decision cache (default MEDAID_PERSON_CACHE or 20,000). */
  personCacheSize?: number;
  /**
   * Other instances write to the same store (`--shared`): no writer lock; the decision state
   * follows the log (every instance's events) instead of being advanced by this process's appends.
   */
  shared?: boolean;
}

export type StoreKind = 'sqlite' | 'esdb' | 'postgres';

const ESDB_URL = /^(esdb|esdb\+discover|kurrentdb|kurrentdb\+discover|kdb|kdb\+discover):\/\//;
const POSTGRES_URL = /^postgres(ql)?:\/\//;

/** The store `--store`, else $MEDAID_STORE, else $EVENTSTORE_CONNECTION_STRING names; undefined = the embedded default. */
export function storeUrlFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const value = flag ?? (env.MEDAID_STORE || env.EVENTSTORE_CONNECTION_STRING || undefined);
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
  const shared = options.shared === true;
  if (shared && options.storeUrl === undefined)
    throw new Error('--shared needs a store other instances can reach: --store esdb://… or postgres://…');
  mkdirSync(dataDir, { recursive: true });
  // The lock also guards the data directory in EventStoreDB mode (it holds the relay checkpoint).
  const releaseLock = acquireLock(join(dataDir, 'medaid.lock'));
  let opened: EventStore | undefined;
  try {
    // The embedded store's file, which the ledger's thread reads too; none with EventStoreDB.
    let eventsPath: string | undefined;
    let store: EventStore;
    const started = performance.now();
    if (options.storeUrl === undefined) {
      eventsPath = join(dataDir, 'events.sqlite');
      store = await SqliteEventStore.open({ path: eventsPath, tagRules: MEDAID_TAG_RULES });
    } else {
      // Alone, the only writer of the log: the decision state and the snapshot are this process's own.
      store = await connectShared(options.storeUrl, { exclusive: !shared });
    }
    opened = store;
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
    if (shared && (store.maxAppendConditions ?? 1) < 2) {
      const limited = [...state.registry.byKey.values()].find((p) => (p.policy.funds ?? []).some((f) => !f.mayOverdraw));
      if (limited !== undefined)
        throw new Error(
          `cannot run --shared on this store: policy ${limited.policy.policyId} v${limited.policy.version} lists a fund that may not be overdrawn, whose limit this store cannot hold for several instances (PostgreSQL can)`,
        );
    }
    const stateFollower = shared ? followLog(store, state) : null;
    await stateFollower?.start();
    const writer = new EventWriter(store, state, stateFollower === null ? undefined : (position) => reachOrWarn(stateFollower, position));
    const ledger = await Ledger.start(store, dataDir, eventsPath);
    const accessLog = AccessLog.open(join(dataDir, ACCESS_LOG_FILE));
    const eventsAtStart = state.eventCount;
    let closed = false;
    return {
      store,
      state,
      writer,
      ledger,
      accessLog,
      dataDir,
      storeKind: storeKindOf(options.storeUrl),
      storeUrl: options.storeUrl,
      rebuilt: { events: tailEvents, fromPosition: snapshotPosition, ms: Math.round(performance.now() - started) },
      stateFollower,
      async close() {
        if (closed) return;
        closed = true;
        clearInterval(timer);
        await stateFollower?.stop();
        await ledger.stop(); // posts what the log holds, before the store closes
        await store.close(); // every append acknowledged and applied: the state is at the head
        await writing;
        snapshot();
        await ledger.close(state.eventCount > eventsAtStart ? state : null); // funds saved for audit replay only if commands moved them
        accessLog.close();
        releaseLock();
      },
    };
  } catch (e) {
    await opened?.close().catch(() => {}); // its connections would keep a failed start from exiting
    releaseLock();
    throw e;
  }
}

/** How long an acknowledged append waits for the follower to apply it before the answer goes anyway. */
const REACH_DEADLINE_MS = 10_000;

/**
 * The decision state of an instance that shares its store: every event of the log, its own and
 * the other instances', applied in log order (a reversal's refund read from its visit).
 */
function followLog(store: EventStore, state: DecisionState): CheckpointedFollower {
  return new CheckpointedFollower(
    store,
    {
      checkpoint: () => state.position,
      commit: async (page) => {
        for (const e of page) {
          if (e.position <= state.position) continue;
          const taken =
            e.type === 'SettlementReversed'
              ? await refundOf(store, e.data as SettlementReversedData, e.position, state.registry)
              : undefined;
          state.apply(e, taken, e.id);
        }
      },
    },
    {
      maxPageEvents: 500,
      idleMs: 20,
      retryDelayMs: doublingDelayMs(100, 5_000),
      onFailure: (error, at) => logLine('warn', 'decision state: cannot read the log; retrying', { error: String(error), ...at }),
    },
  );
}

/**
 * The append is durable whatever happens here: if the follower cannot apply it in time, the
 * answer goes anyway (a later decision on stale state is refused by the store's expected revision
 * and decided again).
 */
async function reachOrWarn(follower: CheckpointedFollower, position: number): Promise<void> {
  if (!(await follower.reach(position, REACH_DEADLINE_MS)))
    logLine('warn', 'decision state: an acknowledged append was not applied in time', { position, follower: follower.status() });
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
    return PostgresEventStore.connect({ connectionString: url, tagRules: [...MEDAID_TAG_RULES, ...FUND_SCOPE_TAG_RULES], exclusive });
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
