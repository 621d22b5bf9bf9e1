// The one checkpointed follower of the log, over an in-memory log and sink: pages committed in log
// order with their checkpoint, failures retried from the committed checkpoint (nothing skipped,
// nothing applied twice), waiting for a position, stopping, and a one-off pass up to a position.
import { describe, expect, it } from '@jest/globals';
import { CheckpointedFollower, doublingDelayMs, type FollowerStatus } from './follower.js';

interface Ev {
  position: number;
}

/** A log with gaps between positions, as EventStoreDB's are. */
function memoryLog(count: number) {
  const events: Ev[] = Array.from({ length: count }, (_, i) => ({ position: 10 * (i + 1) }));
  return {
    events,
    reads: 0,
    readAll(o: { fromPosition: number; maxCount: number }) {
      this.reads += 1;
      return events.filter((e) => e.position > o.fromPosition).slice(0, o.maxCount);
    },
  };
}

/** Commits atomically: a failing commit changes nothing. */
function memorySink(failOn: (page: readonly Ev[], attempt: number) => boolean = () => false) {
  const sink = {
    applied: [] as number[],
    pages: [] as number[],
    committed: 0,
    attempts: 0,
    checkpoint: () => sink.committed,
    commit(page: readonly Ev[]) {
      sink.attempts += 1;
      if (failOn(page, sink.attempts)) throw new Error('disk full');
      if (page[0]!.position <= sink.committed) throw new Error('a page at or before the checkpoint');
      sink.applied.push(...page.map((e) => e.position));
      sink.pages.push(page.length);
      sink.committed = page[page.length - 1]!.position;
    },
  };
  return sink;
}

const until = async (what: string, ok: () => boolean, ms = 5_000) => {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

describe('CheckpointedFollower', () => {
  it('given a log and a sink at a checkpoint, then it commits every later event once, in order, in pages of at most the maximum', async () => {
    const log = memoryLog(25);
    const sink = memorySink();
    sink.committed = 50; // events 10..50 were applied before
    const follower = new CheckpointedFollower(log, sink, { maxPageEvents: 7, idleMs: 5, retryDelayMs: () => 5 });
    await follower.start();
    await until('the head', () => follower.status().position === 250);
    await follower.stop();
    expect(sink.applied).toEqual(log.events.slice(5).map((e) => e.position));
    expect(sink.pages).toEqual([7, 7, 6]);
    expect(follower.status()).toEqual({ state: 'stopped', position: 250, failures: 0 });
  });

  it('given commits that fail, then it waits, reads again from the committed checkpoint and skips nothing', async () => {
    const log = memoryLog(30);
    const sink = memorySink((page, attempt) => page[0]!.position === 110 && attempt <= 4);
    const seen: FollowerStatus[] = [];
    const failures: Array<{ failures: number; position: number; retryInMs: number }> = [];
    const follower = new CheckpointedFollower(log, sink, {
      maxPageEvents: 10,
      idleMs: 5,
      retryDelayMs: doublingDelayMs(2),
      onFailure: (_error, at) => failures.push(at),
      onStatus: (s) => seen.push(s),
    });
    await follower.start();
    await until('the head', () => follower.status().position === 300);
    await follower.stop();
    expect(sink.applied).toEqual(log.events.map((e) => e.position));
    expect(failures).toEqual([
      { failures: 1, position: 100, retryInMs: 2 },
      { failures: 2, position: 100, retryInMs: 4 },
      { failures: 3, position: 100, retryInMs: 8 },
    ]);
    expect(seen.map((s) => s.state)).toEqual([
      'following',
      'following',
      'retrying',
      'retrying',
      'retrying',
      'following',
      'following',
      'stopped',
    ]);
  });

  it('given reads of the log that fail, then it retries them without committing anything twice', async () => {
    const log = memoryLog(12);
    let failReads = 3;
    const flaky = {
      readAll: (o: { fromPosition: number; maxCount: number }) => {
        if (failReads-- > 0) return Promise.reject(new Error('unavailable'));
        return Promise.resolve(log.readAll(o));
      },
    };
    const sink = memorySink();
    const follower = new CheckpointedFollower(flaky, sink, { maxPageEvents: 5, idleMs: 5, retryDelayMs: () => 1 });
    await follower.start();
    await until('the head', () => follower.status().position === 120);
    await follower.stop();
    expect(sink.applied).toEqual(log.events.map((e) => e.position));
  });

  it('given a position not yet in the log, then reach waits for it and answers false at the deadline; wake reads at once', async () => {
    const log = memoryLog(3);
    const sink = memorySink();
    const follower = new CheckpointedFollower(log, sink, { maxPageEvents: 100, idleMs: 60_000, retryDelayMs: () => 1 });
    await follower.start();
    expect(await follower.reach(30, 2_000)).toBe(true);
    expect(await follower.reach(40, 50)).toBe(false);
    log.events.push({ position: 40 });
    // The idle wait is a minute: only reach's wake makes it read the new event.
    expect(await follower.reach(40, 2_000)).toBe(true);
    await follower.stop();
    expect(await follower.reach(50, 2_000)).toBe(false);
  });

  it('given a stop while a page is being committed, then stop waits for it and nothing is read or committed after', async () => {
    const log = memoryLog(50);
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    const sink = memorySink();
    const slow = {
      checkpoint: sink.checkpoint,
      commit: async (page: readonly Ev[]) => {
        await held;
        sink.commit(page);
      },
    };
    const follower = new CheckpointedFollower(log, slow, { maxPageEvents: 10, idleMs: 5, retryDelayMs: () => 1 });
    await follower.start();
    await until('the first read', () => log.reads === 1);
    const stopped = follower.stop();
    release();
    await stopped;
    const reads = log.reads;
    await new Promise((r) => setTimeout(r, 30));
    expect(sink.applied).toHaveLength(10);
    expect(log.reads).toBe(reads);
    expect(follower.status()).toMatchObject({ state: 'stopped', position: 100 });
  });

  it('given runTo a position, then it applies exactly the events up to it and returns where it is', async () => {
    const log = memoryLog(40);
    const sink = memorySink();
    const follower = new CheckpointedFollower(log, sink, { maxPageEvents: 6, idleMs: 5, retryDelayMs: () => 1 });
    expect(await follower.runTo(215)).toBe(210);
    expect(sink.applied).toEqual(log.events.slice(0, 21).map((e) => e.position));
    expect(await follower.runTo()).toBe(400);
    expect(sink.applied).toHaveLength(40);
  });

  it('given a page size out of bounds, then it is refused', () => {
    const sink = memorySink();
    for (const maxPageEvents of [0, 10_001, 1.5])
      expect(() => new CheckpointedFollower(memoryLog(1), sink, { maxPageEvents, idleMs: 1, retryDelayMs: () => 1 })).toThrow(RangeError);
  });
});
