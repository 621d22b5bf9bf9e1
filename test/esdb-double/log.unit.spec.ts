// PROTOCOL TEST DOUBLE — this is NOT EventStoreDB. Pins the EventStoreDB append semantics the double
// reproduces (including their gaps), so the adapter tests that bridge those gaps cannot pass vacuously.
import { randomUUID } from 'node:crypto';
import { describe, it, expect } from '@jest/globals';
import { DoubleLog, type Proposed } from './log.js';

function proposed(type = 'Tested'): Proposed {
  return { id: randomUUID(), type, contentType: 'application/json', data: Buffer.from('{}'), metadata: Buffer.alloc(0) };
}

describe("the protocol test double's log (EventStoreDB semantics, not EventStoreDB)", () => {
  it('given an exact retry at the expected place, then it is idempotent: the original revisions and no position', () => {
    const log = new DoubleLog();
    const events = [proposed(), proposed()];
    log.append('s', { kind: 'no_stream' }, events);
    log.append('s', { kind: 'revision', revision: 1 }, [proposed()]);

    expect(log.append('s', { kind: 'no_stream' }, events)).toEqual({ kind: 'success', lastRevision: 1, position: undefined });
    expect(log.lastRevision('s')).toBe(2);
  });

  it('given an exact retry with other types but the same ids, then it is still idempotent (ids only are compared)', () => {
    const log = new DoubleLog();
    const original = proposed('Opened');
    log.append('s', { kind: 'no_stream' }, [original]);

    expect(log.append('s', { kind: 'no_stream' }, [{ ...original, type: 'Closed' }])).toMatchObject({ kind: 'success', lastRevision: 0 });
  });

  it('given a retry matching only its first event, then wrong expected version with the current revision', () => {
    const log = new DoubleLog();
    const [a, b] = [proposed(), proposed()];
    log.append('s', { kind: 'no_stream' }, [a, b]);

    expect(log.append('s', { kind: 'no_stream' }, [a, proposed()])).toEqual({ kind: 'wrong_expected_version', current: 1 });
  });

  it('given an any retry, then it is idempotent only while the id cache remembers it: after a restart it is written again', () => {
    const log = new DoubleLog();
    const events = [proposed()];
    log.append('s', { kind: 'any' }, events);
    expect(log.append('s', { kind: 'any' }, events)).toMatchObject({ kind: 'success', lastRevision: 0 });

    log.forgetIdCache();

    expect(log.append('s', { kind: 'any' }, events)).toMatchObject({ kind: 'success', lastRevision: 1 });
  });

  it('given an id recorded in one stream, when appended to another, then it is written there too (no global id index)', () => {
    const log = new DoubleLog();
    const shared = proposed();
    log.append('a', { kind: 'no_stream' }, [shared]);

    expect(log.append('b', { kind: 'any' }, [shared])).toMatchObject({ kind: 'success', lastRevision: 0 });
  });

  it('given appends, then positions increase but are not contiguous, and $all reads forwards from a position include it', () => {
    const log = new DoubleLog();
    log.append('s', { kind: 'no_stream' }, [proposed(), proposed(), proposed()]);
    const all = log.readAll('start', false, 10);

    expect(all[1]!.position).toBeGreaterThan(all[0]!.position + 1);
    expect(log.readAll(all[1]!.position, false, 10).map((e) => e.position)).toEqual([all[1]!.position, all[2]!.position]);
    expect(log.readAll(all[1]!.position, true, 10).map((e) => e.position)).toEqual([all[0]!.position]);
  });
});
