// Tags on EventStoreDB across processes: markers in a stream per tag and key, fences for markers left
// behind. Real @eventstore/db-client over real gRPC to test/esdb-double — a PROTOCOL TEST DOUBLE, not
// EventStoreDB. Several connections stand for several processes (each has its own caches); a writer
// that stopped between its marker and its events is staged by writing its marker into the double's log
// directly, and its late second step by appending to the log at the revision it had reserved.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { AppendConditionFailedError, WrongExpectedRevisionError, tagKey, type EventData } from '#event-store';
import { CONTRACT_TAG_RULES } from '../../../test/contract/event-store.contract.js';
import { EsdbDouble } from '../../../test/esdb-double/index.js';
import { FENCE_TYPE, MARKER_TYPE, tagStreamOf } from './esdb-tags.js';
import { EsdbEventStore } from './index.js';

const settled = (hospital: string, id: string, n = 1): EventData => ({
  id: randomUUID(),
  type: 'Settled',
  data: { visit: { hospital, id }, n },
});

const proposed = (e: { id: string; type: string; data: unknown }) => ({
  id: e.id,
  type: e.type,
  contentType: 'application/json',
  data: Buffer.from(JSON.stringify(e.data)),
  metadata: Buffer.alloc(0),
});

describe('tags on EventStoreDB, across connections (against the protocol test double, not EventStoreDB)', () => {
  let double: EsdbDouble;
  const opened: EsdbEventStore[] = [];

  async function connect(): Promise<EsdbEventStore> {
    const store = await EsdbEventStore.connect(double.connectionString, { tagRules: CONTRACT_TAG_RULES });
    opened.push(store);
    return store;
  }

  /** Writes, as a writer that then stopped would have, the marker of an append of `event` to `stream` after `last`. */
  function strandedMarker(hospital: string, visit: string, stream: string, last: number, event: EventData): string {
    const key = tagKey([hospital, visit]);
    const marker = {
      id: randomUUID(),
      type: MARKER_TYPE,
      data: { tag: 'visit', key, stream, firstRevision: last + 1, count: 1, first: event.id, ids: [event.id] },
    };
    const outcome = double.log.append(tagStreamOf('visit', key), { kind: 'any' }, [proposed(marker)]);
    expect(outcome.kind).toBe('success');
    return marker.id;
  }

  /** Connection a's conditional append to p-a, paused in the server after its marker (its events' append held). */
  async function pausedWriter() {
    const [a, b] = [await connect(), await connect()];
    const h = `H-${randomUUID()}`;
    const condition = { tag: 'visit', key: [h, 'v'], afterPosition: 0 };
    const release = double.holdAppends('p-a');
    const paused = a.appendToStream('p-a', [settled(h, 'v', 1)], { expectedRevision: 'no_stream', condition });
    paused.catch(() => undefined);
    for (let i = 0; i < 400 && double.heldAppends('p-a') === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(double.heldAppends('p-a')).toBe(1);
    return { a, b, h, condition, release, paused };
  }

  beforeEach(async () => {
    double = await EsdbDouble.start();
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    await double.stop();
  });

  it('given two connections racing on one visit, when each appends ten times on the same condition, then exactly one append is written', async () => {
    const [a, b] = [await connect(), await connect()];
    const h = `H-${randomUUID()}`;
    const condition = { tag: 'visit', key: [h, 'v'], afterPosition: 0 };

    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).appendToStream(`p-${randomUUID()}`, [settled(h, 'v', i)], { expectedRevision: 'no_stream', condition }),
      ),
    );

    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes.filter((o) => o.status === 'rejected')) {
      expect((o as PromiseRejectedResult).reason).toBeInstanceOf(AppendConditionFailedError);
    }
    // both connections (and a third, opened afterwards, which reads no history when it connects) see the one event
    for (const store of [a, b, await connect()]) expect(await store.readByTag('visit', [h, 'v'])).toHaveLength(1);
  });

  it('given a tagged append by one connection, when another connection opened before it reads the tag, then it finds the event', async () => {
    const [a, b] = [await connect(), await connect()];
    const h = `H-${randomUUID()}`;
    const written = await a.appendToStream('p-1', [settled(h, 'v')], { expectedRevision: 'no_stream' });

    const found = await b.readByTag('visit', [h, 'v']);

    expect(found.map((e) => [e.streamId, e.position])).toEqual([['p-1', written.position]]);
    // and the adapter's own streams are not in $all or the head
    expect((await b.readAll()).map((e) => e.streamId)).toEqual(['p-1']);
    expect(await b.headPosition()).toBe(written.position);
  });

  it('given a writer stopped between its marker and its events, when another appends on the visit, then it fences the marker and the late write fails', async () => {
    const store = await connect();
    const h = `H-${randomUUID()}`;
    const stalled = settled(h, 'v', 1);
    await store.appendToStream('p-x', [{ id: randomUUID(), type: 'Other', data: {} }], { expectedRevision: 'no_stream' });
    const marker = strandedMarker(h, 'v', 'p-x', 0, stalled);
    // a reader does not wait for it: the stalled append is not recorded
    expect(await store.readByTag('visit', [h, 'v'])).toEqual([]);

    // when another writer settles the visit on the condition that nothing was recorded for it
    const winner = await store.appendToStream('p-y', [settled(h, 'v', 2)], {
      expectedRevision: 'no_stream',
      condition: { tag: 'visit', key: [h, 'v'], afterPosition: 0 },
    });

    // then it is written, after a fence at the end of the stalled writer's stream
    expect(winner.nextExpectedRevision).toBe(0);
    const raw = double.log.readStream('p-x', 'start', false, 10)!;
    expect(raw.map((e) => [e.type, JSON.parse(e.data.toString()).marker])).toEqual([
      ['Other', undefined],
      [FENCE_TYPE, marker],
    ]);
    // and the stalled writer's second step (its events after the revision it reserved) cannot land
    expect(double.log.append('p-x', { kind: 'revision', revision: 0 }, [proposed(stalled)]).kind).toBe('wrong_expected_version');
    expect((await store.readByTag('visit', [h, 'v'])).map((e) => (e.data as { n: number }).n)).toEqual([2]);
    // and the fence is the adapter's own: reads skip it, and an append expecting revision 0 is placed after it
    expect((await store.readStream('p-x')).map((e) => e.type)).toEqual(['Other']);
    const next = await store.appendToStream('p-x', [settled(h, 'w')], { expectedRevision: 0 });
    expect(next.nextExpectedRevision).toBe(2);
    expect((await store.readStream('p-x')).map((e) => [e.type, e.revision])).toEqual([
      ['Other', 0],
      ['Settled', 2],
    ]);
    expect((await store.readByTag('visit', [h, 'w'])).map((e) => e.revision)).toEqual([2]);
  });

  it('given a writer that lands its events while another waits on its marker, then the other sees them and its condition fails', async () => {
    const store = await connect();
    const h = `H-${randomUUID()}`;
    const slow = settled(h, 'v', 1);
    strandedMarker(h, 'v', 'p-slow', -1, slow);
    const racing = store.appendToStream('p-other', [settled(h, 'v', 2)], {
      expectedRevision: 'no_stream',
      condition: { tag: 'visit', key: [h, 'v'], afterPosition: 0 },
    });
    // the slow writer's second step comes within the wait
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(double.log.append('p-slow', { kind: 'no_stream' }, [proposed(slow)]).kind).toBe('success');

    expect(
      await racing.then(
        () => 'written',
        (error: unknown) => error,
      ),
    ).toBeInstanceOf(AppendConditionFailedError);
    expect((await store.readByTag('visit', [h, 'v'])).map((e) => e.streamId)).toEqual(['p-slow']);
  });

  it('given a writer paused between its marker and its events, when another appends on the visit meanwhile, then exactly one is written', async () => {
    const { a, b, h, condition, release, paused } = await pausedWriter();

    // when b appends on the same condition meanwhile: it waits a moment, then its fence for a's marker
    // is queued behind a's held write; both are released (a's write lands first, so b's fence fails and
    // b finds a's events)
    const racing = b.appendToStream('p-b', [settled(h, 'v', 2)], { expectedRevision: 'no_stream', condition });
    for (let i = 0; i < 400 && double.heldAppends('p-a') < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    release();

    // then exactly one of them is written, and the visit shows exactly that one
    const outcomes = await Promise.allSettled([paused, racing]);
    const written = outcomes.filter((o) => o.status === 'fulfilled');
    expect(written).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect([WrongExpectedRevisionError, AppendConditionFailedError].some((type) => refused.reason instanceof type)).toBe(true);
    const visit = await b.readByTag('visit', [h, 'v']);
    expect(visit).toHaveLength(1);
    expect(visit[0]!.streamId).toBe(outcomes[0]!.status === 'fulfilled' ? 'p-a' : 'p-b');
  });

  it('given a writer paused between its marker and its events, when its fence is written first, then its own write fails with a conflict', async () => {
    const { b, h, condition, release, paused } = await pausedWriter();
    const [marker] = double.log.readStream(tagStreamOf('visit', tagKey([h, 'v'])), 'start', false, 1)!;

    // the fence another writer would append, staged ahead of a's held write
    const fence = { id: randomUUID(), type: FENCE_TYPE, data: { marker: marker!.id } };
    expect(double.log.append('p-a', { kind: 'no_stream' }, [proposed(fence)]).kind).toBe('success');
    release();

    expect(
      await paused.then(
        () => 'written',
        (error: unknown) => error,
      ),
    ).toBeInstanceOf(WrongExpectedRevisionError);
    expect(await b.readByTag('visit', [h, 'v'])).toEqual([]);
    expect(double.log.readStream('p-a', 'start', false, 10)!.map((e) => e.type)).toEqual([FENCE_TYPE]);
    // and the visit is open again for the next writer
    await expect(b.appendToStream('p-b', [settled(h, 'v', 2)], { expectedRevision: 'no_stream', condition })).resolves.toMatchObject({
      nextExpectedRevision: 0,
    });
  });
});
