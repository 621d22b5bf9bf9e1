// Opens the event store — the embedded SQLite store in the data directory by default, or an
// EventStoreDB/KurrentDB cluster when a connection string is given — and rebuilds the read model
// from it. This is the one file of the service that knows which event-store adapter is in use.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EventStore } from '#event-store';
import { SqliteEventStore } from '#event-store-sqlite';
import { Ledger } from '../ledger/ledger.js';
import { ReadModel } from '../shared/read-model.js';
import { EventWriter } from '../shared/writer.js';

export interface MedaidRuntime {
  store: EventStore;
  model: ReadModel;
  writer: EventWriter;
  /** The journal (DIR/ledger.sqlite) and its writer, following the log. */
  ledger: Ledger;
  dataDir: string;
  /** Which store: "sqlite" (embedded, in dataDir) or "esdb" (EventStoreDB/KurrentDB). */
  storeKind: 'sqlite' | 'esdb';
  /** Events read at start-up and how long the rebuild took. */
  rebuilt: { events: number; ms: number };
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** `esdb://…` (or `kurrentdb://…`): use that EventStoreDB/KurrentDB instead of the embedded store. */
  storeUrl?: string;
}

/** The store a `--store` / EVENTSTORE_CONNECTION_STRING value names; undefined = the embedded default. */
export function storeUrlFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const value = flag ?? (env.EVENTSTORE_CONNECTION_STRING || undefined);
  if (value === undefined || value === 'sqlite') return undefined;
  if (!/^(esdb|esdb\+discover|kurrentdb|kurrentdb\+discover|kdb|kdb\+discover):\/\//.test(value)) {
    throw new Error(`--store must be "sqlite" or an esdb:// connection string, not "${value}"`);
  }
  return value;
}

export async function openRuntime(dataDir: string, options: RuntimeOptions = {}): Promise<MedaidRuntime> {
  mkdirSync(dataDir, { recursive: true });
  // The lock also guards the data directory in EventStoreDB mode (it holds the relay checkpoint).
  const releaseLock = acquireLock(join(dataDir, 'medaid.lock'));
  try {
    // The embedded store's file, which the ledger's thread reads too; none with EventStoreDB.
    let eventsPath: string | undefined;
    let store: EventStore;
    if (options.storeUrl === undefined) {
      eventsPath = join(dataDir, 'events.sqlite');
      store = await SqliteEventStore.open({ path: eventsPath });
    } else {
      store = await connectEsdb(options.storeUrl);
    }
    const model = new ReadModel();
    const started = performance.now();
    const events = await model.rebuild(store);
    const writer = new EventWriter(store, model);
    const ledger = await Ledger.start(store, dataDir, eventsPath);
    let closed = false;
    return {
      store, model, writer, ledger, dataDir, storeKind: options.storeUrl === undefined ? 'sqlite' : 'esdb', rebuilt: { events, ms: Math.round(performance.now() - started) },
      async close() {
        if (closed) return;
        closed = true;
        await ledger.stop(); // posts what the log holds, before the store closes
        await store.close();
        await ledger.close(model.eventCount > events ? model : null); // counters saved only if commands moved them
        releaseLock();
      },
    };
  } catch (e) {
    releaseLock();
    throw e;
  }
}

/** The store alone, for readers (medaid audit): no lock, no read model, no ledger; nothing is appended. */
export async function openEventStore(dataDir: string, options: RuntimeOptions = {}): Promise<EventStore> {
  return options.storeUrl === undefined ? SqliteEventStore.open({ path: join(dataDir, 'events.sqlite') }) : connectEsdb(options.storeUrl);
}

/** Loaded only when asked for: the EventStoreDB client (gRPC, protobuf) adds ~0.3 s to every start. */
async function connectEsdb(url: string): Promise<EventStore> {
  const { EsdbEventStore } = await import('#event-store-esdb');
  return EsdbEventStore.connect(url);
}

/**
 * One service per data directory: the read model assumes it is the only writer. A lock left by
 * a killed process (kill -9) is taken over once its pid is gone.
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
