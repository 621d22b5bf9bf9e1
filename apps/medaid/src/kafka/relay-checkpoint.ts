// The relay's durable checkpoint: the global log position up to which every event is known to be
// in Kafka. It lives in the data directory, next to the log it points into, rather than in Kafka:
// it is read at start without a broker, it goes away with the data it refers to (a wiped data
// directory can never inherit a stale checkpoint), and Kafka offer no atomic "messages plus my
// checkpoint" write for a non-transactional producer anyway. Written with write-then-rename and
// fsync of the file and of the directory, so after a crash it is either the old or the new value.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

export class RelayCheckpoint {
  private last = 0;

  constructor(readonly path: string) {}

  /** The position last written; 0 when there is no checkpoint yet (relay everything). */
  async read(): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return (this.last = 0);
      throw error;
    }
    const position = (JSON.parse(text) as { position?: unknown }).position;
    if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < 0) {
      throw new Error(`${this.path}: not a relay checkpoint`);
    }
    return (this.last = position);
  }

  async write(position: number): Promise<void> {
    // Invariant: the checkpoint only moves forward; moving it back would be harmless (republish),
    // moving it past what Kafka acknowledged would lose events, so the caller must never do that.
    if (!Number.isSafeInteger(position) || position < this.last)
      throw new Error(`relay checkpoint must not go back from ${this.last} to ${position}`);
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
