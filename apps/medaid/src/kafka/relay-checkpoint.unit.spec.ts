// The relay checkpoint file: absent means "from the start", it only moves forward, and a write
// leaves either the old or the new value (write-then-rename), never a temporary file.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RelayCheckpoint } from './relay-checkpoint.js';

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
