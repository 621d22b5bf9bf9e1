// The relay's durable checkpoint: the global log position up to which every event is known to be
// in Kafka. Two kinds. One instance (the embedded store, or a store it writes alone): a file in the
// data directory (RelayCheckpoint). Several instances on one store (--shared): only the holder of
// the relay's Kafka lease relays, and the checkpoint goes with the lease (LeaseCheckpoint), so the
// next holder goes on where the last one stopped.
//
// The file lives in the data directory, next to the log it points into, rather than in Kafka:
// it is read at start without a broker, it goes away with the data it refers to (a wiped data
// directory can never inherit a stale checkpoint), and Kafka offer no atomic "messages plus my
// checkpoint" write for a non-transactional producer anyway. Written with write-then-rename and
// fsync of the file and of the directory, so after a crash it is either the old or the new value.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { LeaseTerm } from '#kafka';

export interface RelayCheckpointStore {
  /** Where it is kept, for log lines. */
  readonly where: string;
  /** The position last written; 0 when there is none yet (relay everything). */
  read(): Promise<number>;
  /** Moves it forward (never back); only after Kafka acknowledged every event up to position. */
  write(position: number): Promise<void>;
}

export class RelayCheckpoint implements RelayCheckpointStore {
  private last = 0;

  constructor(readonly path: string) {}

  get where(): string {
    return this.path;
  }

  /** The position last written; 0 when there is no checkpoint yet (relay everything). */
  async read(): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return (this.last = 0);
      throw error;
    }
    return (this.last = parsePosition(text, this.path));
  }

  async write(position: number): Promise<void> {
    forward(this.last, position);
    const tmp = `${this.path}.tmp`;
    await mkdir(dirname(this.path), { recursive: true });
    const file = await open(tmp, 'w');
    try {
      await file.writeFile(`${JSON.stringify({ position, writtenAt: new Date().toISOString() })}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.path);
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync(); // makes the rename itself durable
    } finally {
      await dir.close();
    }
    this.last = position;
  }
}

/**
 * The checkpoint of one term of the relay's Kafka lease: the metadata of the lease partition's
 * committed offset. The coordinator refuses the write once the term is over, so a holder that lost
 * the lease cannot move the next holder's checkpoint.
 */
export class LeaseCheckpoint implements RelayCheckpointStore {
  private last = 0;

  constructor(
    private readonly term: LeaseTerm,
    readonly where: string,
  ) {}

  async read(): Promise<number> {
    const state = await this.term.readState();
    return (this.last = state === null ? 0 : parsePosition(state, this.where));
  }

  async write(position: number): Promise<void> {
    forward(this.last, position);
    await this.term.writeState(JSON.stringify({ position }));
    this.last = position;
  }
}

function parsePosition(text: string, where: string): number {
  const position = (JSON.parse(text) as { position?: unknown }).position;
  if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < 0) throw new Error(`${where}: not a relay checkpoint`);
  return position;
}

/**
 * Invariant: the checkpoint only moves forward; moving it back would be harmless (republish),
 * moving it past what Kafka acknowledged would lose events, so the caller must never do that.
 */
function forward(last: number, position: number): void {
  if (!Number.isSafeInteger(position) || position < last) throw new Error(`relay checkpoint must not go back from ${last} to ${position}`);
}
