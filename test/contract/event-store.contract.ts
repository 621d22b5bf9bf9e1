// The contract every adapter of the event-store port must pass (SQLite now, EventStoreDB later).
// It assumes no other writer during a test but not an empty store: it reads from the head it
// finds, uses fresh stream ids, and never assumes positions are contiguous (only increasing).
import { randomUUID } from 'node:crypto';
import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import {
  AppendConditionFailedError,
  EventIdConflictError,
  WrongExpectedRevisionError,
  type TagRule,
  type AppendResult,
  type EventData,
  type EventStore,
  type RecordedEvent,
  type Subscription,
} from '#event-store';

export interface OpenedStore {
  store: EventStore;
  cleanup: () => Promise<void>;
}

/** The tag rules every adapter under the contract is opened with. */
export const CONTRACT_TAG_RULES: TagRule[] = [
  { tag: 'visit', eventType: 'Settled', fields: ['$.visit.hospital', '$.visit.id'] },
  { tag: 'visit', eventType: 'Reversed', fields: ['$.hospital', '$.id'] },
  { tag: 'all-policies', eventType: 'Published', fields: [] },
];

const WAIT_TIMEOUT_MS = 10_000;

function event(type = 'Tested', data: unknown = { n: 1 }, metadata?: unknown): EventData {
  return metadata === undefined ? { id: randomUUID(), type, data } : { id: randomUUID(), type, data, metadata };
}

function streamName(label: string): string {
  return `${label}-${randomUUID()}`;
}

/** Polls until the condition holds; shared with the adapters' own tests. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = WAIT_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The error a promise rejects with; fails when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

export function eventStoreContract(name: string, open: () => Promise<OpenedStore>): void {
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore;
    let cleanup: () => Promise<void>;
    const subscriptions: Subscription[] = [];

    beforeEach(async () => {
      ({ store, cleanup } = await open());
    });

    afterEach(async () => {
      await Promise.all(subscriptions.splice(0).map((s) => s.unsubscribe()));
      await cleanup();
    });

    /** Subscribes and collects only the events of the given streams (a shared store has others). */
    function collect(streams: readonly string[], fromPosition: number): { seen: RecordedEvent[]; subscription: Subscription } {
      const seen: RecordedEvent[] = [];
      const wanted = new Set(streams);
      const subscription = store.subscribeToAll(
        (e) => {
          if (wanted.has(e.streamId)) seen.push(e);
        },
        { fromPosition },
      );
      subscriptions.push(subscription);
      return { seen, subscription };
    }

    describe('append and read one stream', () => {
      it('given a new stream, when events are appended, then readStream returns them in revision order with their content', async () => {
        const stream = streamName('order');
        const events = [event('Opened', { a: 1 }, { correlationId: 'c-1' }), event('Closed', { b: [2, 'x'] })];

        const result = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
        const read = await store.readStream(stream);

        expect(result.nextExpectedRevision).toBe(1);
        expect(read.map((e) => [e.streamId, e.revision, e.id, e.type])).toEqual([
          [stream, 0, events[0]!.id, 'Opened'],
          [stream, 1, events[1]!.id, 'Closed'],
        ]);
        expect(read[0]!.data).toEqual({ a: 1 });
        expect(read[0]!.metadata).toEqual({ correlationId: 'c-1' });
        expect(read[1]!.data).toEqual({ b: [2, 'x'] });
        expect(read[1]!.metadata).toBeNull();
        expect(read[1]!.position).toBe(result.position);
        expect(read[0]!.position).toBeLessThan(read[1]!.position);
        expect(typeof read[0]!.createdMs).toBe('number');
      });

      it('given a missing stream, when it is read, then the result is empty', async () => {
        expect(await store.readStream(streamName('missing'))).toEqual([]);
      });

      it('given a stream of 5 events, when read from revision 2 with maxCount 2, then revisions 2 and 3 are returned', async () => {
        const stream = streamName('paged');
        await store.appendToStream(stream, [event(), event(), event(), event(), event()], { expectedRevision: 'no_stream' });

        const read = await store.readStream(stream, { fromRevision: 2, maxCount: 2 });

        expect(read.map((e) => e.revision)).toEqual([2, 3]);
      });
    });

    describe('expected revision', () => {
      async function streamWith(count: number): Promise<string> {
        const stream = streamName('rev');
        await store.appendToStream(
          stream,
          Array.from({ length: count }, () => event()),
          { expectedRevision: 'no_stream' },
        );
        return stream;
      }

      it('given a stream at revision 1, when appending with expected revision 1, then it succeeds at revision 2', async () => {
        const stream = await streamWith(2);
        const result = await store.appendToStream(stream, [event()], { expectedRevision: 1 });
        expect(result.nextExpectedRevision).toBe(2);
      });

      it('given a stream at revision 1, when appending with expected revision 0, then WrongExpectedRevisionError and nothing is written', async () => {
        const stream = await streamWith(2);

        const error = await rejection(store.appendToStream(stream, [event()], { expectedRevision: 0 }));

        expect(error).toBeInstanceOf(WrongExpectedRevisionError);
        expect(error).toMatchObject({ code: 'WRONG_EXPECTED_REVISION', streamId: stream, expected: 0, actual: 1 });
        expect(await store.readStream(stream)).toHaveLength(2);
      });

      it('given a missing stream, when appending with a numeric expected revision, then WrongExpectedRevisionError with actual no_stream', async () => {
        const stream = streamName('rev');
        const error = await rejection(store.appendToStream(stream, [event()], { expectedRevision: 0 }));
        expect(error).toBeInstanceOf(WrongExpectedRevisionError);
        expect(error).toMatchObject({ actual: 'no_stream' });
        expect(await store.readStream(stream)).toEqual([]);
      });

      it('given an existing stream, when appending with no_stream, then WrongExpectedRevisionError', async () => {
        const stream = await streamWith(1);
        const error = await rejection(store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' }));
        expect(error).toBeInstanceOf(WrongExpectedRevisionError);
        expect(error).toMatchObject({ expected: 'no_stream', actual: 0 });
      });

      it('given an existing stream, when appending with stream_exists, then it succeeds', async () => {
        const stream = await streamWith(1);
        const result = await store.appendToStream(stream, [event()], { expectedRevision: 'stream_exists' });
        expect(result.nextExpectedRevision).toBe(1);
      });

      it('given a missing stream, when appending with stream_exists, then WrongExpectedRevisionError and the stream stays missing', async () => {
        const stream = streamName('rev');
        const error = await rejection(store.appendToStream(stream, [event()], { expectedRevision: 'stream_exists' }));
        expect(error).toBeInstanceOf(WrongExpectedRevisionError);
        expect(error).toMatchObject({ actual: 'no_stream' });
        expect(await store.readStream(stream)).toEqual([]);
      });

      it('given a missing then an existing stream, when appending with any, then both appends succeed', async () => {
        const stream = streamName('rev');
        const first = await store.appendToStream(stream, [event()], { expectedRevision: 'any' });
        const second = await store.appendToStream(stream, [event(), event()], { expectedRevision: 'any' });
        expect([first.nextExpectedRevision, second.nextExpectedRevision]).toEqual([0, 2]);
        expect((await store.readStream(stream)).map((e) => e.revision)).toEqual([0, 1, 2]);
      });
    });

    describe('idempotency by event id', () => {
      it('given an append with no_stream, when it is retried with the same ids, then the same result is returned and nothing is written', async () => {
        const stream = streamName('idem');
        const events = [event(), event()];
        const first = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
        const head = await store.headPosition();

        const retry = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });

        expect(retry).toEqual(first);
        expect(await store.readStream(stream)).toHaveLength(2);
        expect(await store.headPosition()).toBe(head);
      });

      it('given an append with a numeric expected revision, when retried after later appends, then it returns the original result', async () => {
        const stream = streamName('idem');
        await store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' });
        const events = [event(), event()];
        const original = await store.appendToStream(stream, events, { expectedRevision: 0 });
        await store.appendToStream(stream, [event()], { expectedRevision: 2 });

        const retry = await store.appendToStream(stream, events, { expectedRevision: 0 });

        expect(retry).toEqual(original);
        expect(await store.readStream(stream)).toHaveLength(4);
      });

      it('given an append with any, when it is retried, then the original result is returned and nothing is written', async () => {
        const stream = streamName('idem');
        await store.appendToStream(stream, [event()], { expectedRevision: 'any' });
        const events = [event()];
        const original = await store.appendToStream(stream, events, { expectedRevision: 'any' });

        const retry = await store.appendToStream(stream, events, { expectedRevision: 'any' });

        expect(retry).toEqual(original);
        expect(await store.readStream(stream)).toHaveLength(2);
      });

      it('given an event recorded in one stream, when its id is appended to another stream, then EventIdConflictError and nothing is written', async () => {
        const shared = event();
        await store.appendToStream(streamName('a'), [shared], { expectedRevision: 'no_stream' });
        const other = streamName('b');

        const error = await rejection(store.appendToStream(other, [shared], { expectedRevision: 'any' }));

        expect(error).toBeInstanceOf(EventIdConflictError);
        expect(error).toMatchObject({ code: 'EVENT_ID_CONFLICT', eventId: shared.id });
        expect(await store.readStream(other)).toEqual([]);
      });
    });

    describe('global order ($all)', () => {
      it('given appends to several streams, when readAll from the previous head, then they come in append order with increasing positions', async () => {
        const head = await store.headPosition();
        const [a, b, c] = [streamName('a'), streamName('b'), streamName('c')];
        const appended: string[] = [];
        for (const [stream, expectedRevision] of [
          [a, 'no_stream'],
          [b, 'no_stream'],
          [a, 0],
          [c, 'no_stream'],
          [b, 0],
        ] as const) {
          const e = event();
          await store.appendToStream(stream, [e], { expectedRevision });
          appended.push(e.id);
        }

        const all = await store.readAll({ fromPosition: head });

        expect(all.map((e) => e.id)).toEqual(appended);
        for (let i = 1; i < all.length; i++) expect(all[i]!.position).toBeGreaterThan(all[i - 1]!.position);
        expect(all[0]!.position).toBeGreaterThan(head);
        expect(await store.headPosition()).toBe(all[all.length - 1]!.position);
      });

      it('given events in $all, when readAll from one of their positions, then that event is excluded and maxCount limits the result', async () => {
        const head = await store.headPosition();
        const stream = streamName('excl');
        const events = [event(), event(), event(), event()];
        await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
        const all = await store.readAll({ fromPosition: head });

        const after = await store.readAll({ fromPosition: all[0]!.position });
        const limited = await store.readAll({ fromPosition: all[0]!.position, maxCount: 2 });

        expect(after.map((e) => e.id)).toEqual(events.slice(1).map((e) => e.id));
        expect(limited.map((e) => e.id)).toEqual(events.slice(1, 3).map((e) => e.id));
      });

      it('given an append, when headPosition is read, then it is the position of the last appended event', async () => {
        const before = await store.headPosition();
        const result = await store.appendToStream(streamName('head'), [event(), event()], { expectedRevision: 'no_stream' });
        expect(result.position).toBeGreaterThan(before);
        expect(await store.headPosition()).toBe(result.position);
      });
    });

    describe('concurrency', () => {
      it('given 200 appends to 200 streams fired at once, then all succeed with distinct positions and every stream holds its event', async () => {
        const streams = Array.from({ length: 200 }, (_, i) => streamName(`conc-${i}`));
        const events = streams.map(() => event());

        const results = await Promise.all(streams.map((s, i) => store.appendToStream(s, [events[i]!], { expectedRevision: 'no_stream' })));

        expect(new Set(results.map((r) => r.position)).size).toBe(200);
        const reads = await Promise.all(streams.map((s) => store.readStream(s)));
        expect(reads.map((r) => r.map((e) => e.id))).toEqual(events.map((e) => [e.id]));
      });

      it('given two concurrent appends to one stream with the same expected revision, then exactly one wins', async () => {
        const stream = streamName('race');
        await store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' });
        const [x, y] = [event(), event()];

        const outcomes = await Promise.allSettled([
          store.appendToStream(stream, [x], { expectedRevision: 0 }),
          store.appendToStream(stream, [y], { expectedRevision: 0 }),
        ]);

        const won = outcomes.filter((o): o is PromiseFulfilledResult<AppendResult> => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0]!.reason).toBeInstanceOf(WrongExpectedRevisionError);
        const read = await store.readStream(stream);
        expect(read).toHaveLength(2);
        expect([x.id, y.id]).toContain(read[1]!.id);
      });
    });

    describe('subscribeToAll', () => {
      it('given existing events, when subscribing from the start, then they are caught up and later live events follow in order, exactly once', async () => {
        const [a, b] = [streamName('sub-a'), streamName('sub-b')];
        const past = [event(), event(), event()];
        await store.appendToStream(a, past.slice(0, 2), { expectedRevision: 'no_stream' });
        await store.appendToStream(b, past.slice(2), { expectedRevision: 'no_stream' });
        const { seen } = collect([a, b], 0);
        await waitFor(() => seen.length >= 3, 'catch-up');

        const live = [event(), event(), event()];
        await store.appendToStream(b, [live[0]!], { expectedRevision: 0 });
        await store.appendToStream(a, live.slice(1), { expectedRevision: 1 });
        const sentinel = event('Sentinel');
        await store.appendToStream(a, [sentinel], { expectedRevision: 3 });
        await waitFor(() => seen.some((e) => e.id === sentinel.id), 'the sentinel');

        expect(seen.map((e) => e.id)).toEqual([...past, ...live, sentinel].map((e) => e.id));
        for (let i = 1; i < seen.length; i++) expect(seen[i]!.position).toBeGreaterThan(seen[i - 1]!.position);
        expect(seen[0]!.data).toEqual({ n: 1 });
      });

      it('given a checkpoint, when subscribing from it, then only events after it are delivered', async () => {
        const stream = streamName('ckpt');
        const first = await store.appendToStream(stream, [event(), event()], { expectedRevision: 'no_stream' });
        const later = [event(), event()];
        await store.appendToStream(stream, later, { expectedRevision: 1 });

        const { seen } = collect([stream], first.position);
        await waitFor(() => seen.length >= 2, 'events after the checkpoint');
        const sentinel = event('Sentinel');
        await store.appendToStream(stream, [sentinel], { expectedRevision: 3 });
        await waitFor(() => seen.some((e) => e.id === sentinel.id), 'the sentinel');

        expect(seen.map((e) => e.id)).toEqual([...later, sentinel].map((e) => e.id));
      });

      it('given an async handler, then it is called one event at a time', async () => {
        const stream = streamName('serial');
        const head = await store.headPosition();
        let running = 0;
        let maxRunning = 0;
        let handled = 0;
        subscriptions.push(
          store.subscribeToAll(
            async (e) => {
              if (e.streamId !== stream) return;
              running++;
              maxRunning = Math.max(maxRunning, running);
              await new Promise((resolve) => setTimeout(resolve, 2));
              running--;
              handled++;
            },
            { fromPosition: head },
          ),
        );

        await Promise.all(Array.from({ length: 10 }, () => store.appendToStream(stream, [event()], { expectedRevision: 'any' })));
        await waitFor(() => handled === 10, 'ten handled events');

        expect(maxRunning).toBe(1);
      });

      it('given a subscription, when unsubscribed, then later events are not delivered to it', async () => {
        const stream = streamName('unsub');
        const head = await store.headPosition();
        const { seen, subscription } = collect([stream], head);
        const first = event();
        await store.appendToStream(stream, [first], { expectedRevision: 'no_stream' });
        await waitFor(() => seen.length === 1, 'the first event');

        await subscription.unsubscribe();
        await store.appendToStream(stream, [event()], { expectedRevision: 0 });
        const witness = collect([stream], head);
        await waitFor(() => witness.seen.length === 2, 'the witness subscription to see both events');
        await new Promise((resolve) => setTimeout(resolve, 50));

        expect(seen.map((e) => e.id)).toEqual([first.id]);
      });

      it('given a handler call in progress, when unsubscribing, then unsubscribe resolves only after that call ends', async () => {
        const stream = streamName('unsub-wait');
        const head = await store.headPosition();
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let entered = false;
        const subscription = store.subscribeToAll(
          async (e) => {
            if (e.streamId !== stream) return;
            entered = true;
            await gate;
          },
          { fromPosition: head },
        );
        await store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' });
        await waitFor(() => entered, 'the handler to start');

        let unsubscribed = false;
        const stopping = subscription.unsubscribe().then(() => (unsubscribed = true));
        await new Promise((resolve) => setTimeout(resolve, 30));
        const beforeRelease = unsubscribed;
        release();
        await stopping;

        expect(beforeRelease).toBe(false);
        expect(unsubscribed).toBe(true);
      });

      it('given a handler that throws, then onError receives the error and delivery stops', async () => {
        const stream = streamName('fail');
        const head = await store.headPosition();
        const errors: unknown[] = [];
        let calls = 0;
        subscriptions.push(
          store.subscribeToAll(
            (e) => {
              if (e.streamId !== stream) return;
              calls++;
              throw new Error('handler failed');
            },
            { fromPosition: head, onError: (error) => errors.push(error) },
          ),
        );

        await store.appendToStream(stream, [event(), event()], { expectedRevision: 'no_stream' });
        await waitFor(() => errors.length === 1, 'onError');
        await new Promise((resolve) => setTimeout(resolve, 30));

        expect((errors[0] as Error).message).toBe('handler failed');
        expect(calls).toBe(1);
      });
    });

    describe('tags', () => {
      const settled = (hospital: string, id: string, n = 1) => event('Settled', { visit: { hospital, id }, n });

      it('given tagged events in several streams, when read by tag and key, then exactly those come back in log order', async () => {
        const h = `H-${randomUUID()}`;
        await store.appendToStream(streamName('p'), [settled(h, 'v1', 1), event('Other', { visit: { hospital: h, id: 'v1' } })], {
          expectedRevision: 'no_stream',
        });
        await store.appendToStream(streamName('p'), [settled(h, 'v2', 2)], { expectedRevision: 'no_stream' });
        await store.appendToStream(streamName('q'), [event('Reversed', { hospital: h, id: 'v1' }), settled(h, 'v1', 3)], {
          expectedRevision: 'no_stream',
        });
        await store.appendToStream(streamName('q'), [event('Settled', { visit: { hospital: h } })], { expectedRevision: 'no_stream' }); // no id: untagged

        const v1 = await store.readByTag('visit', [h, 'v1']);
        expect(v1.map((e) => [e.type, (e.data as { n?: number }).n])).toEqual([
          ['Settled', 1],
          ['Reversed', undefined],
          ['Settled', 3],
        ]);
        expect(v1.map((e) => e.position)).toEqual([...v1.map((e) => e.position)].sort((a, b) => a - b));
        expect((await store.readByTag('visit', [h, 'v2'])).map((e) => e.type)).toEqual(['Settled']);
        expect(await store.readByTag('visit', [h, 'nothing'])).toEqual([]);
        expect(await store.readByTag('visit', [h, 'v1'], { maxCount: 1 })).toHaveLength(1);
      });

      it('given a condition, when a tagged event came after its position, then the append is refused and writes nothing; otherwise it is written', async () => {
        const h = `H-${randomUUID()}`;
        const first = await store.appendToStream(streamName('p'), [settled(h, 'v')], { expectedRevision: 'no_stream' });
        const seen = (await store.readByTag('visit', [h, 'v'])).at(-1)!.position;
        expect(seen).toBe(first.position);
        await store.appendToStream(streamName('p'), [settled(h, 'v')], { expectedRevision: 'no_stream' }); // another writer got there first
        const late = streamName('late');

        const refused = await rejection(
          store.appendToStream(late, [settled(h, 'v')], {
            expectedRevision: 'no_stream',
            condition: { tag: 'visit', key: [h, 'v'], afterPosition: seen },
          }),
        );

        expect(refused).toBeInstanceOf(AppendConditionFailedError);
        expect(await store.readStream(late)).toEqual([]);
        expect(await store.readByTag('visit', [h, 'v'])).toHaveLength(2);
        const now = (await store.readByTag('visit', [h, 'v'])).at(-1)!.position;
        await expect(
          store.appendToStream(late, [settled(h, 'v')], {
            expectedRevision: 'no_stream',
            condition: { tag: 'visit', key: [h, 'v'], afterPosition: now },
          }),
        ).resolves.toMatchObject({ nextExpectedRevision: 0 });
        // another key's events do not matter
        await expect(
          store.appendToStream(streamName('x'), [settled(h, 'w')], {
            expectedRevision: 'no_stream',
            condition: { tag: 'visit', key: [h, 'w'], afterPosition: 0 },
          }),
        ).resolves.toMatchObject({ nextExpectedRevision: 0 });
      });

      it('given many concurrent appends on the same condition, then exactly one is written', async () => {
        const h = `H-${randomUUID()}`;
        const outcomes = await Promise.allSettled(
          Array.from({ length: 20 }, () =>
            store.appendToStream(streamName('p'), [settled(h, 'v')], {
              expectedRevision: 'no_stream',
              condition: { tag: 'visit', key: [h, 'v'], afterPosition: 0 },
            }),
          ),
        );

        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        expect(
          outcomes
            .filter((o) => o.status === 'rejected')
            .every((o) => (o as PromiseRejectedResult).reason instanceof AppendConditionFailedError),
        ).toBe(true);
        expect(await store.readByTag('visit', [h, 'v'])).toHaveLength(1);
      });

      it('given an event id recorded at another place and a condition that no longer holds, then the condition is what the append fails on', async () => {
        const h = `H-${randomUUID()}`;
        const stream = streamName('p');
        const e = settled(h, 'v');
        await store.appendToStream(stream, [e], { expectedRevision: 'no_stream' });
        await store.appendToStream(stream, [event()], { expectedRevision: 0 });

        // the same event id, at the end of the stream now, on condition that the visit has no event yet
        const refused = await rejection(
          store.appendToStream(stream, [e], { expectedRevision: 1, condition: { tag: 'visit', key: [h, 'v'], afterPosition: 0 } }),
        );

        expect(refused).toBeInstanceOf(AppendConditionFailedError);
        expect(await store.readStream(stream)).toHaveLength(2);
      });

      it('given two conditions, then the append is written only when both hold, and a refusal names the one that failed (or, where one is the most, two are refused)', async () => {
        const h = `H-${randomUUID()}`;
        const two = (afterV: number, afterW: number) => [
          { tag: 'visit', key: [h, 'v'], afterPosition: afterV },
          { tag: 'visit', key: [h, 'w'], afterPosition: afterW },
        ];
        if ((store.maxAppendConditions ?? 1) < 2) {
          expect(
            await rejection(
              store.appendToStream(streamName('p'), [settled(h, 'x')], { expectedRevision: 'no_stream', condition: two(0, 0) }),
            ),
          ).toBeInstanceOf(RangeError);
          return;
        }
        const w = await store.appendToStream(streamName('p'), [settled(h, 'w')], { expectedRevision: 'no_stream' });
        const late = streamName('late');

        const refused = await rejection(
          store.appendToStream(late, [settled(h, 'x')], { expectedRevision: 'no_stream', condition: two(0, 0) }),
        );

        expect(refused).toBeInstanceOf(AppendConditionFailedError);
        expect((refused as AppendConditionFailedError).condition.key).toEqual([h, 'w']);
        expect(await store.readStream(late)).toEqual([]);
        await expect(
          store.appendToStream(late, [settled(h, 'x')], { expectedRevision: 'no_stream', condition: two(0, w.position) }),
        ).resolves.toMatchObject({
          nextExpectedRevision: 0,
        });
      });

      it('given an append already recorded, when retried with its condition, then it is the same append (the condition is not checked again)', async () => {
        const h = `H-${randomUUID()}`;
        const stream = streamName('p');
        const e = settled(h, 'v');
        const condition = { tag: 'visit', key: [h, 'v'], afterPosition: 0 };
        const first = await store.appendToStream(stream, [e], { expectedRevision: 'no_stream', condition });

        await expect(store.appendToStream(stream, [e], { expectedRevision: 'no_stream', condition })).resolves.toEqual(first);
        expect(await store.readByTag('visit', [h, 'v'])).toHaveLength(1);
      });
    });
  });
}
