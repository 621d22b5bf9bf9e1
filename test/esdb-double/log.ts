// PROTOCOL TEST DOUBLE — this is NOT EventStoreDB. The in-memory log behind test/esdb-double/: streams
// with revisions, one global log with byte-offset positions, and the append checks of EventStoreDB's
// IndexCommitter.CheckCommit as they are documented and published (EventStore/EventStore), including
// their gaps, because the adapter must cope with those gaps:
// - an exact expected revision (or no_stream) below the current revision is an idempotent retry when the
//   proposed ids are the stream's events from expected + 1 on (ids only — types are not compared);
//   when only some match it is "corrupted idempotency", which EventStoreDB reports as wrong expected version;
// - with any / stream_exists, a retry is recognised only through a bounded in-memory cache of recently
//   committed event ids, which a restart empties: afterwards the same events are simply written again;
// - event ids are not unique across streams: the same id may be written to two streams;
// - an idempotent append answers with the original revisions but no position.
// Positions are byte offsets of records (commit = prepare, as for every event appended over gRPC), so they
// increase but are not contiguous.

export type Expected = { kind: 'revision'; revision: number } | { kind: 'no_stream' } | { kind: 'any' } | { kind: 'stream_exists' };

export interface Proposed {
  id: string;
  type: string;
  contentType: string;
  data: Buffer;
  metadata: Buffer;
}

export interface StoredEvent extends Proposed {
  stream: string;
  revision: number;
  position: number;
  /** 100-ns ticks since the Unix epoch, as EventStoreDB's "created" metadata. */
  createdTicks: bigint;
}

export type AppendOutcome =
  { kind: 'success'; lastRevision: number; position: number | undefined } | { kind: 'wrong_expected_version'; current: number | undefined };

/** EventStoreDB's first user records come after its own start-up records; any offset will do. */
const FIRST_POSITION = 1_536;
/** Fixed part of a prepare record (header, ids, flags), roughly as in the real log format. */
const RECORD_OVERHEAD_BYTES = 88;
/** EventStoreDB bounds its committed-events cache too (CommitedEventsMemCacheLimit). */
const ID_CACHE_LIMIT = 100_000;

export class DoubleLog {
  private readonly all: StoredEvent[] = [];
  private readonly streams = new Map<string, StoredEvent[]>();
  private nextPosition = FIRST_POSITION;
  private idCache = new Map<string, { stream: string; revision: number }>();
  private readonly listeners = new Set<() => void>();

  get size(): number {
    return this.all.length;
  }

  lastRevision(stream: string): number {
    return (this.streams.get(stream)?.length ?? 0) - 1;
  }

  /** What a restart loses: the idempotency cache lives in memory only. */
  forgetIdCache(): void {
    this.idCache = new Map();
  }

  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  append(stream: string, expected: Expected, proposed: readonly Proposed[]): AppendOutcome {
    const current = this.lastRevision(stream);
    const check = this.checkCommit(stream, expected, proposed, current);
    if (check.kind !== 'ok') return check;
    if (proposed.length === 0) return { kind: 'success', lastRevision: current, position: undefined };
    const createdTicks = BigInt(Date.now()) * 10_000n;
    let events = this.streams.get(stream);
    if (events === undefined) this.streams.set(stream, (events = []));
    let position = 0;
    for (const p of proposed) {
      position = this.nextPosition;
      const stored: StoredEvent = { ...p, stream, revision: events.length, position, createdTicks };
      events.push(stored);
      this.all.push(stored);
      this.nextPosition +=
        RECORD_OVERHEAD_BYTES + Buffer.byteLength(stream) + Buffer.byteLength(p.type) + p.data.length + p.metadata.length;
      this.remember(p.id, stream, stored.revision);
    }
    this.listeners.forEach((listener) => listener());
    return { kind: 'success', lastRevision: events.length - 1, position };
  }

  private checkCommit(stream: string, expected: Expected, proposed: readonly Proposed[], current: number): AppendOutcome | { kind: 'ok' } {
    const wrong = { kind: 'wrong_expected_version', current: current < 0 ? undefined : current } as const;
    if (expected.kind === 'stream_exists' && current < 0) return wrong;
    if (expected.kind === 'any' || expected.kind === 'stream_exists') {
      let first: number | undefined;
      let last = -1;
      for (const [i, p] of proposed.entries()) {
        const cached = this.idCache.get(p.id);
        if (cached === undefined || cached.stream !== stream) return i === 0 ? { kind: 'ok' } : wrong;
        first ??= cached.revision;
        last = cached.revision;
      }
      if (first === undefined) return { kind: 'ok' };
      return last - first === proposed.length - 1 ? { kind: 'success', lastRevision: last, position: undefined } : wrong;
    }
    const expectedRevision = expected.kind === 'no_stream' ? -1 : expected.revision;
    if (expectedRevision > current) return wrong;
    if (expectedRevision === current) return { kind: 'ok' };
    const events = this.streams.get(stream) ?? [];
    for (const [i, p] of proposed.entries()) {
      if (events[expectedRevision + 1 + i]?.id !== p.id) return wrong; // first: WEV; later: corrupted idempotency, also WEV
    }
    return { kind: 'success', lastRevision: expectedRevision + proposed.length, position: undefined };
  }

  private remember(id: string, stream: string, revision: number): void {
    if (this.idCache.size >= ID_CACHE_LIMIT) this.idCache.delete(this.idCache.keys().next().value!);
    this.idCache.set(id, { stream, revision });
  }

  /** Forwards from a revision (inclusive), or backwards from it (inclusive); undefined when the stream does not exist. */
  readStream(stream: string, from: number | 'start' | 'end', backwards: boolean, count: number): StoredEvent[] | undefined {
    const events = this.streams.get(stream);
    if (events === undefined) return undefined;
    if (!backwards) {
      const start = from === 'start' ? 0 : from === 'end' ? events.length : from;
      return events.slice(start, start + count);
    }
    const start = from === 'end' ? events.length - 1 : from === 'start' ? 0 : Math.min(from, events.length - 1);
    return events.slice(Math.max(0, start - count + 1), start + 1).reverse();
  }

  /** Forwards: position >= from (inclusive, like EventStoreDB); backwards: position < from. */
  readAll(from: number | 'start' | 'end', backwards: boolean, count: number): StoredEvent[] {
    if (!backwards) {
      const start = from === 'start' ? 0 : from === 'end' ? this.all.length : this.indexAtOrAfter(from);
      return this.all.slice(start, start + count);
    }
    const end = from === 'end' ? this.all.length : from === 'start' ? 0 : this.indexAtOrAfter(from);
    return this.all.slice(Math.max(0, end - count), end).reverse();
  }

  /** The events from the index on (for subscriptions, which keep an index into the log). */
  eventsFrom(index: number, count: number): StoredEvent[] {
    return this.all.slice(index, index + count);
  }

  /** Index of the first event whose position is >= position (binary search: positions increase). */
  indexAtOrAfter(position: number): number {
    let [low, high] = [0, this.all.length];
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.all[mid]!.position < position) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
