// Opens the embedded durable store (SQLite, the default) and rebuilds the read model from it.
// This is the one file of the service that knows which event-store adapter is in use.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EventStore } from '#event-store';
import { SqliteEventStore } from '#event-store-sqlite';
import { ReadModel } from '../shared/read-model.js';
import { EventWriter } from '../shared/writer.js';

export interface MedaidRuntime {
  store: EventStore;
  model: ReadModel;
  writer: EventWriter;
  dataDir: string;
  /** Events read at start-up and how long the rebuild took. */
  rebuilt: { events: number; ms: number };
  close(): Promise<void>;
}

export async function openRuntime(dataDir: string): Promise<MedaidRuntime> {
  mkdirSync(dataDir, { recursive: true });
  const releaseLock = acquireLock(join(dataDir, 'medaid.lock'));
  try {
    const store = await SqliteEventStore.open({ path: join(dataDir, 'events.sqlite') });
    const model = new ReadModel();
    const started = performance.now();
    const events = await model.rebuild(store);
    const writer = new EventWriter(store, model);
    let closed = false;
    return {
      store, model, writer, dataDir, rebuilt: { events, ms: Math.round(performance.now() - started) },
      async close() {
        if (closed) return;
        closed = true;
        await store.close();
        releaseLock();
      },
    };
  } catch (e) {
    releaseLock();
    throw e;
  }
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
