// The PostgreSQL adapter against the machine's real PostgreSQL server: the shared contract, then
// what only a shared database can show — several stores (as several service instances would have)
// appending to one log at once, real child processes among them.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { AppendConditionFailedError, WrongExpectedRevisionError, type EventData, type RecordedEvent } from '#event-store';
import { CONTRACT_TAG_RULES, eventStoreContract, rejection, waitFor } from '../../../test/contract/event-store.contract.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/postgres.js';
import { PostgresEventStore, PostgresStoreClosedError, PostgresStoreInUseError, PostgresUnavailableError } from './index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CHILD_SCRIPT = join(ROOT, 'test/fixtures/pg-append-loop.mjs');

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('store');
});

afterAll(async () => {
  await db?.drop();
});

const open = (options: { pollIntervalMs?: number } = {}) =>
  PostgresEventStore.connect({ connectionString: db.url, tagRules: CONTRACT_TAG_RULES, ...options });

eventStoreContract('PostgresEventStore on the real PostgreSQL server', async () => {
  const store = await open();
  return { store, cleanup: () => store.close() };
});

function event(type = 'Tested', data: unknown = { n: 1 }): EventData {
  return { id: randomUUID(), type, data };
}

describe('PostgresEventStore, several stores on one database', () => {
  it('given four stores appending at once, then the log is contiguous and every subscriber sees it whole, in order, with no gap filled in later', async () => {
    const stores = await Promise.all([open(), open(), open(), open()]);
    const watcher = await open({ pollIntervalMs: 50 });
    try {
      const head = await watcher.headPosition();
      const seen: RecordedEvent[] = [];
      const sub = watcher.subscribeToAll((e) => void seen.push(e), { fromPosition: head });
      const streams = Array.from({ length: 40 }, () => `many-${randomUUID()}`);
      // 40 streams × 10 appends of 1–3 events, each store appending to every stream, concurrently
      let expected = 0;
      const work = streams.flatMap((stream, s) =>
        Array.from({ length: 10 }, (_, i) => {
          const events = Array.from({ length: 1 + ((s + i) % 3) }, () => event());
          expected += events.length;
          return stores[(s + i) % stores.length]!.appendToStream(stream, events, { expectedRevision: 'any' });
        }),
      );
      await Promise.all(work);
      await waitFor(() => seen.length >= expected, `${expected} events`);
      await sub.unsubscribe();

      expect(seen.map((e) => e.position)).toEqual(Array.from({ length: expected }, (_, i) => head + 1 + i));
      const all = await watcher.readAll({ fromPosition: head });
      expect(all.map((e) => e.id)).toEqual(seen.map((e) => e.id));
      for (const stream of streams) {
        const revisions = (await watcher.readStream(stream)).map((e) => e.revision);
        expect(revisions).toEqual(revisions.map((_, i) => i));
      }
    } finally {
      await Promise.all([...stores, watcher].map((s) => s.close()));
    }
  });

  it('given 300 appends at once from one store, then they share transactions (group commit) and each gets its own outcome', async () => {
    const store = await open();
    try {
      const streams = Array.from({ length: 300 }, () => `group-${randomUUID()}`);
      await store.appendToStream(streams[7]!, [event()], { expectedRevision: 'no_stream' });
      const before = store.stats();
      const outcomes = await Promise.allSettled(
        streams.map((s) => store.appendToStream(s, [event(), event()], { expectedRevision: 'no_stream' })),
      );
      const after = store.stats();

      expect(after.appends - before.appends).toBe(300);
      expect(after.transactions - before.transactions).toBeLessThan(100);
      // the one whose stream existed is refused alone; the others are written, in order, positions apart
      expect(outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason)).toEqual([
        expect.any(WrongExpectedRevisionError),
      ]);
      expect(outcomes[7]!.status).toBe('rejected');
      const positions = outcomes
        .filter((o) => o.status === 'fulfilled')
        .map((o) => (o as PromiseFulfilledResult<{ position: number }>).value.position);
      expect(new Set(positions).size).toBe(299);
      expect(await store.readStream(streams[7]!)).toHaveLength(1);
      for (const s of [streams[0]!, streams[299]!]) expect((await store.readStream(s)).map((e) => e.revision)).toEqual([0, 1]);
    } finally {
      await store.close();
    }
  });

  it('given stores in three processes racing for the same revisions of one stream, then each revision has exactly one winner', async () => {
    const stream = `race-${randomUUID()}`;
    const children = [0, 1, 2].map((n) => runChild(db.url, stream, 30, `child-${n}`));
    const results = await Promise.all(children);
    const store = await open();
    try {
      const events = await store.readStream(stream);
      const wins = results.flatMap((r) => r.wins);
      // every acknowledged append is in the stream at the revision it was told, and nothing else is
      expect(events).toHaveLength(wins.length);
      expect(new Set(wins.map((w) => w.revision)).size).toBe(wins.length);
      for (const w of wins) expect(events[w.revision]!.id).toBe(w.id);
      expect(results.reduce((n, r) => n + r.conflicts, 0)).toBeGreaterThan(0); // they did race
      expect(results.every((r) => r.errors === 0)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('given an event already recorded by one store, when another store retries the append, then it is answered without writing', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const stream = `retry-${randomUUID()}`;
      const events = [event(), event()];
      const first = await a.appendToStream(stream, events, { expectedRevision: 'no_stream' });
      await expect(b.appendToStream(stream, events, { expectedRevision: 'no_stream' })).resolves.toEqual(first);
      await expect(b.appendToStream(stream, events, { expectedRevision: 'any' })).resolves.toEqual(first);
      expect(await b.readStream(stream)).toHaveLength(2);
      expect(await rejection(b.appendToStream(stream, [event()], { expectedRevision: 0 }))).toBeInstanceOf(WrongExpectedRevisionError);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('given two stores racing on one tag condition, then exactly one append is written', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const h = `H-${randomUUID()}`;
      const settle = (s: PostgresEventStore) =>
        s.appendToStream(`p-${randomUUID()}`, [event('Settled', { visit: { hospital: h, id: 'v' } })], {
          expectedRevision: 'no_stream',
          condition: { tag: 'visit', key: [h, 'v'], afterPosition: 0 },
        });
      const outcomes = await Promise.allSettled([a, b, a, b, a, b].map(settle));
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(AppendConditionFailedError);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('PostgresEventStore, the exclusive writer lock', () => {
  const exclusive = () => PostgresEventStore.connect({ connectionString: db.url, tagRules: CONTRACT_TAG_RULES, exclusive: true });

  it('given a store holding the lock, then a second exclusive store is refused as STORE_IN_USE until the first closes', async () => {
    const first = await exclusive();
    const refused = await rejection(exclusive());
    expect(refused).toBeInstanceOf(PostgresStoreInUseError);
    expect((refused as PostgresStoreInUseError).code).toBe('STORE_IN_USE');
    const reader = await open(); // readers (medaid audit) need no lock
    await reader.close();
    await first.close();
    const second = await exclusive();
    await second.close();
  });

  it('given the lock connection killed by the server, then the store refuses every later append', async () => {
    const store = await exclusive();
    try {
      const stream = `fenced-${randomUUID()}`;
      await store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' });
      await PostgresEventStore.admin(
        db.url,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'medaid-writer-lock'`,
      );
      let refused: unknown;
      for (let i = 0; i < 200 && refused === undefined; i++) {
        await new Promise((r) => setTimeout(r, 10));
        refused = await store.appendToStream(stream, [event()], { expectedRevision: 'any' }).then(
          () => undefined,
          (e: unknown) => e,
        );
      }
      expect(refused).toBeInstanceOf(PostgresUnavailableError);
      // and another process may be the writer now
      const next = await exclusive();
      await next.close();
    } finally {
      await store.close();
    }
  });
});

describe('PostgresEventStore, failures', () => {
  it('given a server that is not there, then connecting fails as STORE_UNAVAILABLE', async () => {
    const error = await rejection(PostgresEventStore.connect({ connectionString: 'postgres://postgres@127.0.0.1:1/none' }));
    expect(error).toBeInstanceOf(PostgresUnavailableError);
    expect((error as PostgresUnavailableError).code).toBe('STORE_UNAVAILABLE');
  });

  it('given a closed store, then appends are refused as STORE_CLOSED and nothing is written', async () => {
    const store = await open();
    const stream = `closed-${randomUUID()}`;
    await store.close();
    expect(await rejection(store.appendToStream(stream, [event()], { expectedRevision: 'any' }))).toBeInstanceOf(PostgresStoreClosedError);
    const other = await open();
    try {
      expect(await other.readStream(stream)).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('given ids, types or keys with U+0000, which PostgreSQL text cannot hold, then the append is refused before the database', async () => {
    const store = await open();
    try {
      const stream = `nul-${randomUUID()}`;
      expect(await rejection(store.appendToStream(`${stream}\u0000`, [event()], { expectedRevision: 'any' }))).toBeInstanceOf(TypeError);
      expect(await rejection(store.appendToStream(stream, [event('A\u0000')], { expectedRevision: 'any' }))).toBeInstanceOf(TypeError);
      const settled = event('Settled', { visit: { hospital: 'h\u0000', id: 'v' } });
      expect(await rejection(store.appendToStream(stream, [settled], { expectedRevision: 'any' }))).toBeInstanceOf(TypeError);
      // data may hold it: JSON escapes it
      await store.appendToStream(stream, [event('Tested', { text: 'a\u0000b' })], { expectedRevision: 'no_stream' });
      expect((await store.readStream(stream))[0]!.data).toEqual({ text: 'a\u0000b' });
    } finally {
      await store.close();
    }
  });
});

interface ChildResult {
  wins: Array<{ revision: number; id: string }>;
  conflicts: number;
  errors: number;
}

/** test/fixtures/pg-append-loop.mjs: appends `count` times at the revision it last read, reporting each outcome. */
function runChild(url: string, stream: string, count: number, label: string): Promise<ChildResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CHILD_SCRIPT, url, stream, String(count), label], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${label} exited ${code}: ${err}`));
      resolvePromise(JSON.parse(out) as ChildResult);
    });
  });
}
