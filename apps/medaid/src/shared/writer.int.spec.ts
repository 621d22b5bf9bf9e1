// decideForPerson against a real SQLite store with a competing writer that always appends to the
// person's stream first: the command is decided again each time, then refused as STORE_CONTENDED
// (retry; nothing recorded) instead of failing as an internal error.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { EventStore } from '#event-store';
import { SqliteEventStore } from '#event-store-sqlite';
import { DecisionState } from './decision-state.js';
import { retryableStoreCode } from './store-failures.js';
import { EventWriter, StoreContendedError, SYSTEM_ACTOR } from './writer.js';

const dirs: string[] = [];
const stores: EventStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(): Promise<SqliteEventStore> {
  const dir = mkdtempSync(join(tmpdir(), 'medaid-writer-'));
  dirs.push(dir);
  const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  stores.push(store);
  return store;
}

const meta = { actor: SYSTEM_ACTOR, correlationId: 'test' };
const fact = () => ({ type: 'PersonDied', data: { personId: 'p-1', date: '2012-01-01' } });

describe('EventWriter.decideForPerson', () => {
  it('given another writer that always appends to the person first, then it decides 8 times and refuses with STORE_CONTENDED, recording nothing of its own', async () => {
    const real = await open();
    let decisions = 0;
    // every append of ours finds the other writer's event just recorded before it
    const contended: EventStore = Object.assign(Object.create(real) as EventStore, {
      appendToStream: async (...args: Parameters<EventStore['appendToStream']>) => {
        await real.appendToStream(args[0], [{ id: randomUUID(), type: 'Other', data: {} }], { expectedRevision: 'any' });
        return real.appendToStream(...args);
      },
    });
    const writer = new EventWriter(contended, new DecisionState());
    const error = await writer
      .decideForPerson('p-1', meta, () => {
        decisions++;
        return { events: [fact() as never], eventIds: [randomUUID()], value: 'done' };
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(StoreContendedError);
    expect(retryableStoreCode(error)).toBe('STORE_CONTENDED');
    expect(decisions).toBe(8);
    expect((await real.readStream('person-p-1')).map((e) => e.type)).toEqual(Array(8).fill('Other'));
  });

  it('given another writer that appends first once, then the command is decided again and recorded', async () => {
    const real = await open();
    let first = true;
    const once: EventStore = Object.assign(Object.create(real) as EventStore, {
      appendToStream: async (...args: Parameters<EventStore['appendToStream']>) => {
        if (first) await real.appendToStream(args[0], [{ id: randomUUID(), type: 'Other', data: {} }], { expectedRevision: 'any' });
        first = false;
        return real.appendToStream(...args);
      },
    });
    const writer = new EventWriter(once, new DecisionState());
    const { value } = await writer.decideForPerson('p-1', meta, () => ({
      events: [fact() as never],
      eventIds: [randomUUID()],
      value: 'done',
    }));
    expect(value).toBe('done');
    expect((await real.readStream('person-p-1')).map((e) => e.type)).toEqual(['Other', 'PersonDied']);
  });
});
