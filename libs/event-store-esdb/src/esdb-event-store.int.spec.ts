// The EventStoreDB adapter, through the real @eventstore/db-client over real gRPC: the shared contract
// against the protocol test double (test/esdb-double — NOT EventStoreDB) always, and against a real
// EventStoreDB when EVENTSTORE_CONNECTION_STRING is set; then what only the double can stage: dropped
// subscriptions, restarts, a server that does not answer, system events, lost idempotency caches.
import { randomUUID } from 'node:crypto';
import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { EventIdConflictError, WrongExpectedRevisionError, type EventData, type RecordedEvent, type Subscription } from '#event-store';
import {
  CONTRACT_TAG_RULES,
  eventStoreContract,
  rejection,
  waitFor as waitForCondition,
} from '../../../test/contract/event-store.contract.js';
import { EsdbDouble } from '../../../test/esdb-double/index.js';
import { EsdbDeadlineExceededError, EsdbEventStore, EsdbStoreClosedError, type EsdbEventStoreOptions } from './index.js';

const REAL_ESDB = process.env['EVENTSTORE_CONNECTION_STRING'];
const WAIT_TIMEOUT_MS = 15_000;

function event(type = 'Tested', data: unknown = { n: 1 }): EventData {
  return { id: randomUUID(), type, data };
}

/** Waits longer than the contract's default: resubscriptions back off up to seconds. */
const waitFor = (condition: () => boolean, what: string) => waitForCondition(condition, what, WAIT_TIMEOUT_MS);

eventStoreContract('EsdbEventStore on the protocol test double (not EventStoreDB)', async () => {
  const double = await EsdbDouble.start();
  const store = await EsdbEventStore.connect(double.connectionString, { tagRules: CONTRACT_TAG_RULES });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await double.stop();
    },
  };
});

// A real server is shared by the tests (the contract reads from the head it finds and uses fresh streams).
(REAL_ESDB === undefined ? describe.skip : describe)('on a real EventStoreDB (skipped unless EVENTSTORE_CONNECTION_STRING is set)', () => {
  eventStoreContract('EsdbEventStore on EventStoreDB', async () => {
    const store = await EsdbEventStore.connect(REAL_ESDB!, { tagRules: CONTRACT_TAG_RULES });
    return { store, cleanup: () => store.close() };
  });
});

describe('EsdbEventStore on the protocol test double (not EventStoreDB)', () => {
  let double: EsdbDouble;
  const opened: EsdbEventStore[] = [];
  const subscriptions: Subscription[] = [];

  async function connect(options: EsdbEventStoreOptions = {}): Promise<EsdbEventStore> {
    const store = await EsdbEventStore.connect(double.connectionString, options);
    opened.push(store);
    return store;
  }

  /** Subscribes from a position and collects every delivered event of the given stream. */
  function collect(store: EsdbEventStore, stream: string, fromPosition = 0, onError?: (error: unknown) => void): RecordedEvent[] {
    const seen: RecordedEvent[] = [];
    subscriptions.push(
      store.subscribeToAll((e) => void (e.streamId === stream && seen.push(e)), { fromPosition, ...(onError ? { onError } : {}) }),
    );
    return seen;
  }

  beforeEach(async () => {
    double = await EsdbDouble.start();
  });

  afterEach(async () => {
    await Promise.all(subscriptions.splice(0).map((s) => s.unsubscribe()));
    await Promise.all(opened.splice(0).map((s) => s.close()));
    await double.stop();
  });

  describe('positions', () => {
    it('given appends, then positions are safe integers, increasing, not contiguous, and the same in stream reads, $all and the append result', async () => {
      const store = await connect();
      const stream = `pos-${randomUUID()}`;
      const first = await store.appendToStream(stream, [event(), event(), event()], { expectedRevision: 'no_stream' });
      const second = await store.appendToStream(stream, [event()], { expectedRevision: 2 });

      const read = await store.readStream(stream);
      const all = (await store.readAll()).filter((e) => e.streamId === stream);

      const positions = read.map((e) => e.position);
      expect(positions.every(Number.isSafeInteger)).toBe(true);
      for (let i = 1; i < positions.length; i++) expect(positions[i]!).toBeGreaterThan(positions[i - 1]! + 1);
      expect(all.map((e) => e.position)).toEqual(positions);
      expect([first.position, second.position]).toEqual([positions[2], positions[3]]);
      expect(await store.headPosition()).toBe(second.position);
    });
  });

  describe('system events', () => {
    it("given system events in $all (the server's own and $-streams), then reads, headPosition and subscriptions never return them", async () => {
      const store = await connect();
      const stream = `sys-${randomUUID()}`;
      await store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' });
      double.appendSystemEvent('$settings', 'update-default-acl'); // a user-looking type in a system stream
      double.appendSystemEvent(`$$${stream}`, '$metadata');
      const last = await store.appendToStream(stream, [event()], { expectedRevision: 0 });
      double.appendSystemEvent('$ce-sys', '$>');
      const delivered: RecordedEvent[] = [];
      subscriptions.push(store.subscribeToAll((e) => void delivered.push(e)));

      const all = await store.readAll();
      await waitFor(() => delivered.length >= 2, 'the subscription to deliver both events');
      await new Promise((resolve) => setTimeout(resolve, 50));

      expect(all.map((e) => e.streamId)).toEqual([stream, stream]);
      expect(delivered.map((e) => e.streamId)).toEqual([stream, stream]);
      expect(await store.headPosition()).toBe(last.position);
      expect(await store.readStream('$settings')).toEqual([]);
    });

    it("given only the server's own events, then headPosition is 0 and readAll is empty", async () => {
      const store = await connect();
      expect(await store.headPosition()).toBe(0);
      expect(await store.readAll()).toEqual([]);
    });
  });

  describe('resubscription', () => {
    it('given a live subscription, when the server drops it, then it resubscribes from the last delivered event: none lost, none twice', async () => {
      const store = await connect({ resubscribeMinBackoffMs: 10 });
      const stream = `drop-${randomUUID()}`;
      const before = [event(), event()];
      await store.appendToStream(stream, before, { expectedRevision: 'no_stream' });
      const seen = collect(store, stream);
      await waitFor(() => seen.length === 2 && double.liveSubscriptions === 1, 'catch-up');

      expect(double.dropSubscriptions()).toBe(1);
      const after = [event(), event(), event()];
      await store.appendToStream(stream, after, { expectedRevision: 1 });
      await waitFor(() => seen.length >= 5, 'the events appended after the drop');
      await new Promise((resolve) => setTimeout(resolve, 100));

      expect(seen.map((e) => e.id)).toEqual([...before, ...after].map((e) => e.id));
      expect(double.liveSubscriptions).toBe(1);
    });

    it('given a live subscription, when the server restarts while events are appended, then every event arrives exactly once', async () => {
      const store = await connect({ resubscribeMinBackoffMs: 20 });
      const stream = `restart-${randomUUID()}`;
      const seen = collect(store, stream);
      const written: string[] = [];
      for (let i = 0; i < 5; i++) {
        const e = event();
        await store.appendToStream(stream, [e], { expectedRevision: i === 0 ? 'no_stream' : i - 1 });
        written.push(e.id);
      }
      await waitFor(() => seen.length === 5, 'the first five events');

      await double.restart();
      for (let i = 5; i < 10; i++) {
        const e = event();
        await store.appendToStream(stream, [e], { expectedRevision: i - 1 });
        written.push(e.id);
      }
      await waitFor(() => seen.length >= 10, 'the events appended after the restart');
      await new Promise((resolve) => setTimeout(resolve, 100));

      expect(seen.map((e) => e.id)).toEqual(written);
    });

    it('given a server that stays down, then the subscription gives up after its attempts and calls onError once', async () => {
      const store = await connect({ resubscribeMinBackoffMs: 5, resubscribeMaxBackoffMs: 20, maxResubscribeAttempts: 3 });
      const errors: unknown[] = [];
      collect(store, 'none', 0, (error) => errors.push(error));
      await waitFor(() => double.liveSubscriptions === 1, 'the subscription');

      await double.stop();
      await waitFor(() => errors.length === 1, 'onError');
      await new Promise((resolve) => setTimeout(resolve, 100));

      expect(errors).toHaveLength(1);
      expect((errors[0] as { code?: string }).code).toBe('STORE_UNAVAILABLE');
    });
  });

  describe('deadlines', () => {
    it('given a server that accepts calls but never answers, then append and read fail with the deadline error within about the deadline', async () => {
      const store = await connect({ deadlineMs: 300 });
      const stream = `stall-${randomUUID()}`;
      double.stall();

      const started = Date.now();
      const [appendError, readError] = await Promise.all([
        rejection(store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' })),
        rejection(store.readStream(stream)),
      ]);
      const elapsedMs = Date.now() - started;

      expect(appendError).toBeInstanceOf(EsdbDeadlineExceededError);
      expect(readError).toBeInstanceOf(EsdbDeadlineExceededError);
      expect(elapsedMs).toBeGreaterThanOrEqual(250);
      expect(elapsedMs).toBeLessThan(2_000);
    });

    it('given a server that does not answer, when connecting, then connect fails within the deadline', async () => {
      double.stall();
      const started = Date.now();
      const error = await rejection(EsdbEventStore.connect(double.connectionString, { deadlineMs: 300 }));
      expect(error).toBeInstanceOf(EsdbDeadlineExceededError);
      expect(Date.now() - started).toBeLessThan(2_000);
    });
  });

  describe('idempotency where EventStoreDB itself would not recognise the retry', () => {
    it('given an append with any, when retried after the server restarted (its id cache is gone) by a new process, then nothing is written twice', async () => {
      const stream = `any-restart-${randomUUID()}`;
      const events = [event(), event()];
      const original = await (await connect()).appendToStream(stream, events, { expectedRevision: 'any' });
      await double.restart();

      const retry = await (await connect()).appendToStream(stream, events, { expectedRevision: 'any' });

      expect(retry).toEqual(original);
      expect(double.log.lastRevision(stream)).toBe(1);
    });

    it('given an exact retry whose ids match but whose types differ, then EventIdConflictError (EventStoreDB compares ids only)', async () => {
      const store = await connect();
      const stream = `types-${randomUUID()}`;
      const original = event('Opened');
      await store.appendToStream(stream, [original], { expectedRevision: 'no_stream' });

      const error = await rejection(store.appendToStream(stream, [{ ...original, type: 'Closed' }], { expectedRevision: 'no_stream' }));

      expect(error).toBeInstanceOf(EventIdConflictError);
    });

    it('given a retry that matches only its first event at the expected place, then EventIdConflictError, not a stale revision', async () => {
      const store = await connect();
      const stream = `partial-${randomUUID()}`;
      const [a, b] = [event(), event()];
      await store.appendToStream(stream, [a, b], { expectedRevision: 'no_stream' });

      const error = await rejection(store.appendToStream(stream, [a, event()], { expectedRevision: 'no_stream' }));

      expect(error).toBeInstanceOf(EventIdConflictError);
      expect(error).not.toBeInstanceOf(WrongExpectedRevisionError);
      expect(double.log.lastRevision(stream)).toBe(1);
    });

    it('given an id already recorded in this stream, when appended again at the head with an exact revision, then EventIdConflictError and nothing written', async () => {
      const store = await connect();
      const stream = `again-${randomUUID()}`;
      const first = event();
      await store.appendToStream(stream, [first, event()], { expectedRevision: 'no_stream' });

      const error = await rejection(store.appendToStream(stream, [first], { expectedRevision: 1 }));

      expect(error).toBeInstanceOf(EventIdConflictError);
      expect(double.log.lastRevision(stream)).toBe(1);
    });
  });

  describe('without BatchAppend (servers before 21.10 answer appends on Streams.Append)', () => {
    it('given the plain Append call, then appends, retries and wrong expected revisions behave the same', async () => {
      await double.stop();
      double = await EsdbDouble.start({ batchAppend: false });
      const store = await connect();
      const stream = `plain-${randomUUID()}`;
      const events = [event(), event()];

      const first = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
      const retry = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
      const stale = await rejection(store.appendToStream(stream, [event()], { expectedRevision: 0 }));

      expect(first.nextExpectedRevision).toBe(1);
      expect(retry).toEqual(first);
      expect(stale).toBeInstanceOf(WrongExpectedRevisionError);
      expect(stale).toMatchObject({ expected: 0, actual: 1 });
    });
  });

  describe('an append written by the server but answered as timed out (its commit outlived the deadline)', () => {
    it.each([
      ['BatchAppend', true, 'no_stream'],
      ['BatchAppend', true, 'any'],
      ['Streams.Append', false, 'no_stream'],
    ] as const)(
      'given %s with %s, then the caller hears STORE_DEADLINE_EXCEEDED, and its retry with the same ids is answered as the write, not written twice',
      async (_call, batchAppend, expectedRevision) => {
        await double.stop();
        double = await EsdbDouble.start({ batchAppend });
        const store = await connect();
        const stream = `late-${randomUUID()}`;
        const events = [event(), event()];
        double.timeOutAfterCommit(stream);

        const timedOut = await rejection(store.appendToStream(stream, events, { expectedRevision }));

        expect((timedOut as { code?: string }).code).toBe('STORE_DEADLINE_EXCEEDED');
        expect((await store.readStream(stream)).map((e) => e.id)).toEqual(events.map((e) => e.id)); // it was written
        const retried = await store.appendToStream(stream, events, { expectedRevision });
        expect(retried.nextExpectedRevision).toBe(1);
        expect((await store.readStream(stream)).map((e) => e.id)).toEqual(events.map((e) => e.id));
        expect(retried.position).toBe((await store.readStream(stream))[1]!.position);
      },
    );
  });

  describe("EventStoreDB's maximum append size (1 MiB by default), which the double holds too", () => {
    it.each([
      ['BatchAppend', true],
      ['Streams.Append', false],
    ])(
      'given events under the per-event limit that together pass it, then %s refuses the append whole (RangeError, not retried) and writes nothing',
      async (_call, batchAppend) => {
        await double.stop();
        double = await EsdbDouble.start({ batchAppend });
        const store = await connect();
        const stream = `big-${randomUUID()}`;
        const big = () => event('Tested', { text: 'x'.repeat(400 * 1024) });

        const refused = await rejection(store.appendToStream(stream, [big(), big(), big()], { expectedRevision: 'no_stream' }));

        expect(refused).toBeInstanceOf(RangeError);
        expect((refused as Error).message).toContain('maximum append size (1048576 bytes)');
        expect(await store.readStream(stream)).toEqual([]);
        // two of them fit
        await expect(store.appendToStream(stream, [big(), big()], { expectedRevision: 'no_stream' })).resolves.toMatchObject({
          nextExpectedRevision: 1,
        });
      },
    );
  });

  it('given a closed store, then calls fail with STORE_CLOSED and a later subscription reports it through onError', async () => {
    const store = await connect();
    await store.close();
    const errors: unknown[] = [];

    const appendError = await rejection(store.appendToStream(`closed-${randomUUID()}`, [event()], { expectedRevision: 'any' }));
    const readError = await rejection(store.readAll());
    store.subscribeToAll(() => undefined, { onError: (error) => errors.push(error) });
    await waitFor(() => errors.length === 1, 'onError');

    expect(appendError).toBeInstanceOf(EsdbStoreClosedError);
    expect(readError).toBeInstanceOf(EsdbStoreClosedError);
    expect(errors[0]).toBeInstanceOf(EsdbStoreClosedError);
  });
});
