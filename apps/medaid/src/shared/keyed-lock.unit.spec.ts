// KeyedLock: commands about one key run one at a time, in arrival order; other keys do not wait;
// a failure does not block the next; an idle key is forgotten.
import { describe, expect, it } from '@jest/globals';
import { KeyedLock } from './keyed-lock.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('KeyedLock', () => {
  it('runs the work of one key one at a time, in arrival order, and other keys alongside', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    let running = 0;
    let most = 0;
    const job = (key: string, name: string, fail = false) =>
      lock.run(key, async () => {
        running += key === 'a' ? 1 : 0;
        most = Math.max(most, running);
        log.push(`start ${name}`);
        await tick();
        await tick();
        log.push(`end ${name}`);
        running -= key === 'a' ? 1 : 0;
        if (fail) throw new Error(name);
        return name;
      });
    const results = Promise.allSettled([job('a', 'a1'), job('a', 'a2', true), job('b', 'b1'), job('a', 'a3')]);
    const settled = await results;
    expect(settled.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['a1', 'a2', 'b1', 'a3']);
    expect(settled[1]!.status).toBe('rejected');
    expect(most).toBe(1);
    // a1 ran alone on a; b1 started while a1 ran; a2 after a1 ended, a3 after a2 (which failed) ended
    expect(log.indexOf('start b1')).toBeLessThan(log.indexOf('end a1'));
    expect(log.filter((l) => l.endsWith('a1') || l.endsWith('a2') || l.endsWith('a3'))).toEqual([
      'start a1',
      'end a1',
      'start a2',
      'end a2',
      'start a3',
      'end a3',
    ]);
  });

  it('starts the work of an idle key at once, and forgets the key when its queue is empty', async () => {
    const lock = new KeyedLock();
    let started = false;
    const done = lock.run('k', async () => {
      started = true;
      await tick();
    });
    expect(started).toBe(true);
    await done;
    await tick();
    expect((lock as unknown as { tails: Map<string, unknown> }).tails.size).toBe(0);
  });

  it('turns work that throws before its first await into a rejection, and runs the next work of the key', async () => {
    const lock = new KeyedLock();
    const thrown = lock.run('k', (() => {
      throw new Error('at once');
    }) as unknown as () => Promise<void>);
    const next = lock.run('k', async () => 'next');
    await expect(thrown).rejects.toThrow('at once');
    await expect(next).resolves.toBe('next');
  });
});
