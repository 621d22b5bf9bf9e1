// The relay checkpoint file: absent means "from the start", it only moves forward, and a write
// leaves either the old or the new value (write-then-rename), never a temporary file.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LeaseTerm } from '#kafka';
import { LeaseCheckpoint, RelayCheckpoint } from './relay-checkpoint.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'medaid-checkpoint-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('RelayCheckpoint', () => {
  it('given no file, then the checkpoint is 0 (relay everything)', async () => {
    expect(await new RelayCheckpoint(join(dir, 'c.json')).read()).toBe(0);
  });

  it('given a written position, then a new reader sees it and no temporary file is left', async () => {
    const path = join(dir, 'c.json');
    const checkpoint = new RelayCheckpoint(path);
    await checkpoint.write(41);
    await checkpoint.write(42);
    expect(await new RelayCheckpoint(path).read()).toBe(42);
    expect(readdirSync(dir)).toEqual(['c.json']);
  });

  it('given a position behind the last one, then the write is refused and the file keeps the last one', async () => {
    const path = join(dir, 'c.json');
    const checkpoint = new RelayCheckpoint(path);
    await checkpoint.write(10);
    await expect(checkpoint.write(9)).rejects.toThrow(/must not go back/);
    expect(await new RelayCheckpoint(path).read()).toBe(10);
  });

  it('given a file that is not a checkpoint, then reading it fails loudly', async () => {
    const path = join(dir, 'c.json');
    writeFileSync(path, '{"position": -1}');
    await expect(new RelayCheckpoint(path).read()).rejects.toThrow(/not a relay checkpoint/);
    expect(existsSync(path)).toBe(true);
  });
});

describe('LeaseCheckpoint', () => {
  /** A term whose state is one string, and that can be ended (the coordinator then refuses commits). */
  function term(initial: string | null) {
    const end = new AbortController();
    let state = initial;
    const t: LeaseTerm = {
      join: 1,
      ended: end.signal,
      readState: async () => state,
      writeState: async (s) => {
        if (end.signal.aborted) throw new Error('the lease term is over');
        state = s;
      },
    };
    return { t, end, state: () => state };
  }

  it('given a lease with no state yet, then the checkpoint is 0; a written position is what the next holder reads', async () => {
    const first = term(null);
    const checkpoint = new LeaseCheckpoint(first.t, 'lease');
    expect(await checkpoint.read()).toBe(0);
    await checkpoint.write(41);
    expect(await new LeaseCheckpoint(term(first.state()).t, 'lease').read()).toBe(41);
  });

  it('refuses to move back, and a state that is not a checkpoint', async () => {
    const checkpoint = new LeaseCheckpoint(term('{"position":10}').t, 'lease');
    expect(await checkpoint.read()).toBe(10);
    await expect(checkpoint.write(9)).rejects.toThrow('must not go back');
    await expect(new LeaseCheckpoint(term('{"position":-1}').t, 'lease').read()).rejects.toThrow('not a relay checkpoint');
  });

  it('given the term ended, then a write fails and the position stays where the lease has it', async () => {
    const held = term('{"position":5}');
    const checkpoint = new LeaseCheckpoint(held.t, 'lease');
    await checkpoint.read();
    held.end.abort();
    await expect(checkpoint.write(7)).rejects.toThrow('term is over');
    expect(held.state()).toBe('{"position":5}');
  });
});
