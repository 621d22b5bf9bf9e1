import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import Database from 'better-sqlite3';
import {
  AppendConditionFailedError,
  EventIdConflictError,
  WrongExpectedRevisionError,
  type EventData,
  type RecordedEvent,
} from '#event-store';
import { CONTRACT_TAG_RULES, eventStoreContract } from '../../../test/contract/event-store.contract.js';
import { SqliteEventStore, StoreClosedError, StoreOverloadedError, type SqliteEventStoreOptions } from './index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BUILT_ADAPTER = join(ROOT, 'dist/libs/event-store-sqlite/src/index.js');
const CHILD_SCRIPT = join(ROOT, 'test/fixtures/append-loop.mjs');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'medaid-es-'));
}

interface Ack {
  streamId: string;
  ids: string[];
  position: number;
}

/** Runs test/fixtures/append-loop.mjs on the file and SIGKILLs it killDelayMs after ackCount acknowledgements. */
async function runAndKill(
  path: string,
  ackCount: number,
  killDelayMs: number,
): Promise<{ signal: NodeJS.Signals | null; stderr: string; acks: Ack[] }> {
  const child = spawn(process.execPath, [CHILD_SCRIPT, path], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const acks: Ack[] = [];
  let buffered = '';
  let stderr = '';
  let killScheduled = false;
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!; // a line cut by the kill is not a complete acknowledgement
    for (const line of lines) acks.push(JSON.parse(line) as Ack);
    if (acks.length >= ackCount && !killScheduled) {
      killScheduled = true;
      setTimeout(() => child.kill('SIGKILL'), killDelayMs);
    }
  });
  const signal = await new Promise<NodeJS.Signals | null>((done) => child.on('close', (_code, signal) => done(signal)));
  return { signal, stderr, acks };
}

function event(data: unknown = { n: 1 }): EventData {
  return { id: randomUUID(), type: 'Tested', data };
}

eventStoreContract('SqliteEventStore', async () => {
  const dir = tempDir();
  const store = await SqliteEventStore.open({ path: join(dir, 'events.db'), tagRules: CONTRACT_TAG_RULES });
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteEventStore', () => {
  let dir: string;
  let path: string;
  const opened: SqliteEventStore[] = [];

  async function open(options: Partial<SqliteEventStoreOptions> = {}): Promise<SqliteEventStore> {
    const store = await SqliteEventStore.open({ path, ...options });
    opened.push(store);
    return store;
  }

  beforeEach(() => {
    dir = tempDir();
    path = join(dir, 'nested', 'events.db');
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('given a new file in a missing directory, when opened, then the log is empty and positions start at 1', async () => {
    const store = await open();
    expect(await store.headPosition()).toBe(0);
    expect(await store.readAll()).toEqual([]);

    const result = await store.appendToStream('s', [event()], { expectedRevision: 'no_stream' });

    expect(result).toEqual({ nextExpectedRevision: 0, position: 1 });
  });

  it('given appended events, when the store is closed and reopened, then they are all still there', async () => {
    const first = await open();
    const events = [event({ a: 1 }), event({ b: 2 })];
    await first.appendToStream('durable', events, { expectedRevision: 'no_stream' });
    await first.close();

    const second = await open();

    expect((await second.readStream('durable')).map((e) => [e.id, e.data])).toEqual(events.map((e) => [e.id, e.data]));
    expect(await second.headPosition()).toBe(2);
    expect(await second.appendToStream('durable', [event()], { expectedRevision: 1 })).toEqual({ nextExpectedRevision: 2, position: 3 });
  });

  describe('group commit', () => {
    it('given 500 appends fired at once, then they are committed in far fewer than 500 transactions', async () => {
      const store = await open();
      const before = store.stats().transactions;

      const results = await Promise.all(
        Array.from({ length: 500 }, (_, i) => store.appendToStream(`g-${i}`, [event()], { expectedRevision: 'no_stream' })),
      );

      expect(store.stats().transactions - before).toBeLessThanOrEqual(2);
      expect(new Set(results.map((r) => r.position)).size).toBe(500);
      expect(store.stats().committedEvents).toBe(500);
    });

    it('given maxBatchAppends 100, when 500 appends are fired at once, then they take 5 transactions', async () => {
      const store = await open({ maxBatchAppends: 100 });
      await Promise.all(Array.from({ length: 500 }, (_, i) => store.appendToStream(`g-${i}`, [event()], { expectedRevision: 'any' })));
      expect(store.stats().transactions).toBe(5);
    });

    it('given a batch with one append failing its revision check, then only that one is rejected and the others commit', async () => {
      const store = await open();
      await store.appendToStream('busy', [event()], { expectedRevision: 'no_stream' });
      const before = store.stats().transactions;

      const outcomes = await Promise.allSettled([
        store.appendToStream('ok-1', [event()], { expectedRevision: 'no_stream' }),
        store.appendToStream('busy', [event(), event()], { expectedRevision: 5 }),
        store.appendToStream('ok-2', [event()], { expectedRevision: 'no_stream' }),
      ]);

      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(WrongExpectedRevisionError);
      expect(store.stats().transactions - before).toBe(1);
      expect(await store.readStream('busy')).toHaveLength(1);
      expect((await store.readAll()).map((e) => e.streamId)).toEqual(['busy', 'ok-1', 'ok-2']);
    });

    it('given appends to one stream in one batch, then each sees the previous ones (revisions chain inside the transaction)', async () => {
      const store = await open();
      const outcomes = await Promise.allSettled([
        store.appendToStream('chain', [event()], { expectedRevision: 'no_stream' }),
        store.appendToStream('chain', [event()], { expectedRevision: 0 }),
        store.appendToStream('chain', [event()], { expectedRevision: 0 }),
        store.appendToStream('chain', [event()], { expectedRevision: 1 }),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      expect((await store.readStream('chain')).map((e) => e.revision)).toEqual([0, 1, 2]);
    });

    it('given appends queued but not yet committed, when close() is called, then they are committed and acknowledged', async () => {
      const store = await open();
      const pending = Array.from({ length: 50 }, (_, i) => store.appendToStream(`c-${i}`, [event()], { expectedRevision: 'no_stream' }));
      expect(store.stats().pendingAppends).toBe(50);

      await store.close();
      const results = await Promise.all(pending);
      const reopened = await open();

      expect(results).toHaveLength(50);
      expect(await reopened.readAll()).toHaveLength(50);
    });

    it('given a closed store, when appending, then StoreClosedError; and close() is idempotent', async () => {
      const store = await open();
      await store.close();
      await store.close();
      const error = await store.appendToStream('late', [event()], { expectedRevision: 'any' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreClosedError);
      expect(error).toMatchObject({ code: 'STORE_CLOSED' });
      await expect(store.readAll()).rejects.toBeInstanceOf(StoreClosedError);
    });

    it('given maxPendingAppends 10, when 15 appends are fired at once, then 5 are rejected with StoreOverloadedError', async () => {
      const store = await open({ maxPendingAppends: 10 });

      const outcomes = await Promise.allSettled(
        Array.from({ length: 15 }, (_, i) => store.appendToStream(`o-${i}`, [event()], { expectedRevision: 'any' })),
      );

      const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(outcomes.slice(0, 10).every((o) => o.status === 'fulfilled')).toBe(true);
      expect(rejected).toHaveLength(5);
      for (const r of rejected) {
        expect(r.reason).toBeInstanceOf(StoreOverloadedError);
        expect(r.reason).toMatchObject({ code: 'STORE_OVERLOADED' });
      }
      expect(await store.headPosition()).toBe(10);
    });
  });

  describe('validation', () => {
    it('given invalid appends, then they are rejected without writing', async () => {
      const store = await open();
      const dup = event();
      await expect(store.appendToStream('v', [], { expectedRevision: 'any' })).rejects.toBeInstanceOf(RangeError);
      await expect(store.appendToStream('', [event()], { expectedRevision: 'any' })).rejects.toBeInstanceOf(TypeError);
      await expect(store.appendToStream('v', [event()], { expectedRevision: -1 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.appendToStream('v', [dup, dup], { expectedRevision: 'any' })).rejects.toBeInstanceOf(EventIdConflictError);
      await expect(store.appendToStream('v', [{ ...event(), type: '' }], { expectedRevision: 'any' })).rejects.toBeInstanceOf(TypeError);
      expect(await store.headPosition()).toBe(0);
    });

    it('given maxEventBytes 100, when an event is larger, then RangeError', async () => {
      const store = await open({ maxEventBytes: 100 });
      await expect(store.appendToStream('big', [event({ s: 'x'.repeat(200) })], { expectedRevision: 'any' })).rejects.toBeInstanceOf(
        RangeError,
      );
      await expect(store.appendToStream('big', [event({ s: 'x'.repeat(50) })], { expectedRevision: 'any' })).resolves.toBeDefined();
    });

    it('given a retry whose second id is not where the original put it, then EventIdConflictError and nothing is written', async () => {
      const store = await open();
      const [a, b] = [event(), event()];
      await store.appendToStream('r', [a, b], { expectedRevision: 'no_stream' });
      await expect(store.appendToStream('r', [a, event()], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(EventIdConflictError);
      expect(await store.headPosition()).toBe(2);
    });
  });

  it('given two stores on one file, when both append to one stream with the same expected revision, then exactly one wins', async () => {
    const [one, two] = [await open(), await open()];
    await one.appendToStream('shared', [event()], { expectedRevision: 'no_stream' });

    const outcomes = await Promise.allSettled([
      one.appendToStream('shared', [event()], { expectedRevision: 0 }),
      two.appendToStream('shared', [event()], { expectedRevision: 0 }),
    ]);

    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'rejected')[0]).toMatchObject({ reason: expect.any(WrongExpectedRevisionError) });
    expect((await two.readStream('shared')).map((e) => e.revision)).toEqual([0, 1]);
  });

  it('given 1,200 events, when read with readAllPages of 500, then pages of 500, 500, 200 in order', async () => {
    const store = await open();
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        store.appendToStream(
          `p-${i}`,
          Array.from({ length: 100 }, () => event()),
          { expectedRevision: 'no_stream' },
        ),
      ),
    );

    const sizes: number[] = [];
    const positions: number[] = [];
    for await (const page of store.readAllPages(0, 500)) {
      sizes.push(page.length);
      positions.push(...page.map((e) => e.position));
    }

    expect(sizes).toEqual([500, 500, 200]);
    expect(positions).toEqual(Array.from({ length: 1200 }, (_, i) => i + 1));
  });

  it('given more events than one catch-up page while appends continue, then a subscription sees every position exactly once in order', async () => {
    const store = await open();
    await store.appendToStream(
      'bulk',
      Array.from({ length: 1_100 }, () => event()),
      { expectedRevision: 'no_stream' },
    );
    const seen: RecordedEvent[] = [];
    const subscription = store.subscribeToAll(async (e) => {
      seen.push(e);
      if (e.position % 100 === 0) await new Promise((r) => setImmediate(r));
    });
    await Promise.all(Array.from({ length: 300 }, (_, i) => store.appendToStream(`live-${i % 7}`, [event()], { expectedRevision: 'any' })));

    const deadline = Date.now() + 10_000;
    while (seen.length < 1_400 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await subscription.unsubscribe();

    expect(seen.map((e) => e.position)).toEqual(Array.from({ length: 1_400 }, (_, i) => i + 1));
  });

  it('given a live subscription, when the store closes, then the subscription ends', async () => {
    const store = await open();
    const subscription = store.subscribeToAll(() => undefined);
    await new Promise((r) => setTimeout(r, 10));
    expect(store.stats().subscriptions).toBe(1);

    await store.close();

    expect(store.stats().subscriptions).toBe(0);
    await subscription.unsubscribe();
  });

  it('given a closed store, when subscribing, then onError receives StoreClosedError', async () => {
    const store = await open();
    await store.close();
    const errors: unknown[] = [];

    const subscription = store.subscribeToAll(() => undefined, { onError: (e) => errors.push(e) });
    await subscription.unsubscribe();

    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(StoreClosedError);
  });

  it('given a writer process killed with SIGKILL (3 rounds), then every acknowledged append is present and no append is partial', async () => {
    expect(existsSync(BUILT_ADAPTER)).toBe(true); // build first: npx tsc -p tsconfig.build.json (npm test does)
    const acked: Ack[] = [];
    for (let round = 0; round < 3; round++) {
      // A random delay after the threshold decorrelates the kill from the child's flush cycle.
      const { signal, stderr, acks } = await runAndKill(path, 500 + round * 100, Math.random() * 30);
      expect(stderr).toBe('');
      expect(signal).toBe('SIGKILL');
      expect(acks.length).toBeGreaterThanOrEqual(500);
      acked.push(...acks);
    }

    const store = await open();
    const all = await store.readAll();
    const byId = new Map(all.map((e) => [e.id, e]));
    for (const ack of acked) {
      const recorded = ack.ids.map((id) => byId.get(id));
      expect(recorded.every((e) => e?.streamId === ack.streamId)).toBe(true);
      expect(recorded[2]!.position).toBe(ack.position);
    }
    const streams = new Map<string, RecordedEvent[]>();
    for (const e of all) streams.set(e.streamId, [...(streams.get(e.streamId) ?? []), e]);
    expect(streams.size).toBe(10);
    for (const events of streams.values()) {
      expect(events.map((e) => e.revision)).toEqual(events.map((_, i) => i));
      expect(events.length % 3).toBe(0);
      for (let i = 0; i < events.length; i += 3) {
        const parts = events.slice(i, i + 3).map((e) => e.data as { append: number; part: number });
        expect(parts.map((p) => p.part)).toEqual([0, 1, 2]);
        expect(new Set(parts.map((p) => p.append)).size).toBe(1);
      }
    }
  });

  describe('writer thread', () => {
    /** Lets the batch scheduled by the appends just made leave for the writer thread (it is sent on a microtask). */
    const afterSend = () => Promise.resolve();

    it('given a batch in flight, when more appends arrive, then they wait and form the next batch', async () => {
      const store = await open();
      const first = Array.from({ length: 10 }, (_, i) => store.appendToStream(`a-${i}`, [event()], { expectedRevision: 'no_stream' }));
      await afterSend();
      const second = Array.from({ length: 10 }, (_, i) => store.appendToStream(`b-${i}`, [event()], { expectedRevision: 'no_stream' }));
      expect(store.stats().pendingAppends).toBe(20);

      const [a, b] = [await Promise.all(first), await Promise.all(second)];

      expect(store.stats().transactions).toBe(2);
      expect(Math.max(...a.map((r) => r.position))).toBeLessThan(Math.min(...b.map((r) => r.position)));
      expect(store.stats()).toMatchObject({ committedAppends: 20, committedEvents: 20, pendingAppends: 0 });
    });

    it('given a batch in flight and more queued, when close() is called, then every append is committed and acknowledged', async () => {
      const store = await open();
      const first = Array.from({ length: 30 }, (_, i) => store.appendToStream(`f-${i}`, [event()], { expectedRevision: 'no_stream' }));
      await afterSend();
      const second = Array.from({ length: 30 }, (_, i) => store.appendToStream(`f-${i}`, [event()], { expectedRevision: 0 }));

      await store.close();
      const outcomes = await Promise.allSettled([...first, ...second]);
      const reopened = await open();

      expect(outcomes.every((o) => o.status === 'fulfilled')).toBe(true);
      expect(await reopened.readAll()).toHaveLength(60);
    });

    it('given the writer thread dies, then in-flight and queued appends are rejected, later ones fail fast, reads and close() still work', async () => {
      const store = await open();
      await store.appendToStream('before', [event()], { expectedRevision: 'no_stream' });
      const inFlight = Array.from({ length: 5 }, (_, i) => store.appendToStream(`d-${i}`, [event()], { expectedRevision: 'any' }));
      await afterSend();
      const queued = Array.from({ length: 5 }, (_, i) => store.appendToStream(`q-${i}`, [event()], { expectedRevision: 'any' }));

      // White box: the only way to kill the thread from outside; terminate() ends it like a crash would.
      await (store as unknown as { committer: { worker: { terminate(): Promise<number> } } }).committer.worker.terminate();
      const [flown, waited] = [await Promise.allSettled(inFlight), await Promise.allSettled(queued)];

      // The in-flight batch may have committed just before the thread stopped: acknowledged or failed, never hanging.
      for (const o of flown) if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'STORE_WRITER_FAILED' });
      for (const o of waited) expect(o).toMatchObject({ status: 'rejected', reason: { code: 'STORE_WRITER_FAILED' } });
      await expect(store.appendToStream('later', [event()], { expectedRevision: 'any' })).rejects.toMatchObject({
        code: 'STORE_WRITER_FAILED',
      });
      expect(store.stats().pendingAppends).toBe(0);
      expect(await store.readStream('before')).toHaveLength(1);
      await store.close();
      await expect(store.appendToStream('closed', [event()], { expectedRevision: 'any' })).rejects.toBeInstanceOf(StoreClosedError);
    });

    it('given a file of another schema version, when opened, then open() rejects with the reason', async () => {
      await (await open()).close();
      const db = new Database(path);
      db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
      db.close();

      await expect(SqliteEventStore.open({ path })).rejects.toThrow('unsupported event store schema version 99, expected 2');
    });

    it('given another connection holding the write lock beyond busy_timeout, then that batch is rejected with SQLITE_BUSY and the next one commits', async () => {
      const store = await open();
      await store.appendToStream('lock', [event()], { expectedRevision: 'no_stream' });
      const blocker = new Database(path);
      blocker.prepare('BEGIN IMMEDIATE').run();
      let outcome: unknown;
      try {
        outcome = await store.appendToStream('lock', [event()], { expectedRevision: 0 }).catch((e: unknown) => e);
      } finally {
        blocker.prepare('ROLLBACK').run();
        blocker.close();
      }

      expect(outcome).toMatchObject({ code: 'SQLITE_BUSY' });
      expect(store.stats().transactions).toBe(1);
      await expect(store.appendToStream('lock', [event()], { expectedRevision: 0 })).resolves.toEqual({
        nextExpectedRevision: 1,
        position: 2,
      });
    });
  });

  describe('tags on disk', () => {
    let dir: string;
    let path: string;
    beforeEach(() => {
      dir = tempDir();
      path = join(dir, 'events.sqlite');
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const tagRows = (file: string) => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare('SELECT tag, key, position FROM tags ORDER BY tag, key, position').all();
      } finally {
        db.close();
      }
    };
    const settled = (hospital: string, id: string) => ({ id: randomUUID(), type: 'Settled', data: { visit: { hospital, id } } });

    it('given a version-1 file, when opened with tag rules, then it is upgraded and its events tagged exactly as appends would tag them', async () => {
      // the same appends, once into a store that tags as it writes, once into a file made version 1 and tagged at open
      const appends = Array.from(
        { length: 30 },
        (_, i) =>
          [
            `p-${i % 7}`,
            [
              settled(`H${i % 3}`, `v${i % 5}`),
              { id: randomUUID(), type: 'Other', data: { i } },
              { id: randomUUID(), type: 'Reversed', data: { hospital: `H${i % 3}`, id: 7 } },
            ],
          ] as const,
      );
      const live = await SqliteEventStore.open({ path, tagRules: CONTRACT_TAG_RULES });
      for (const [stream, events] of appends) await live.appendToStream(stream, events, { expectedRevision: 'any' });
      await live.close();
      const old = join(dir, 'old.sqlite');
      const plain = await SqliteEventStore.open({ path: old });
      for (const [stream, events] of appends) await plain.appendToStream(stream, events, { expectedRevision: 'any' });
      await plain.close();
      const db = new Database(old);
      db.exec("DROP TABLE tags; UPDATE meta SET value = '1' WHERE key = 'schema_version'; DELETE FROM meta WHERE key = 'tag_rules'");
      db.close();

      const upgraded = await SqliteEventStore.open({ path: old, tagRules: CONTRACT_TAG_RULES });
      const v = await upgraded.readByTag('visit', ['H1', 'v1']);
      await upgraded.close();

      expect(tagRows(path).length).toBeGreaterThan(30);
      expect(tagRows(old)).toEqual(tagRows(path));
      expect(v.length).toBeGreaterThan(0);
    });

    it('given two stores on one file (two writer connections, as two processes would have), when both append on the same condition, then exactly one is written', async () => {
      const a = await SqliteEventStore.open({ path, tagRules: CONTRACT_TAG_RULES });
      const b = await SqliteEventStore.open({ path });
      try {
        expect(b.tagRules).toEqual(CONTRACT_TAG_RULES); // the file's rules, without being told
        for (let round = 0; round < 20; round++) {
          const condition = { tag: 'visit', key: ['H', `v${round}`], afterPosition: 0 };
          const outcomes = await Promise.allSettled(
            [a, b, a, b].map((s, i) =>
              s.appendToStream(`p-${round}-${i}`, [settled('H', `v${round}`)], { expectedRevision: 'no_stream', condition }),
            ),
          );
          expect([round, outcomes.filter((o) => o.status === 'fulfilled').length]).toEqual([round, 1]);
          expect(
            outcomes
              .filter((o) => o.status === 'rejected')
              .every((o) => (o as PromiseRejectedResult).reason instanceof AppendConditionFailedError),
          ).toBe(true);
        }
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
});
