// The event-store port's tags (TagRule) on EventStoreDB, in the database's own way: a stream per tag
// and key, appended with an expected revision. EventStoreDB has no index of events by their data and no
// append that spans streams, so an append of tagged events is two steps:
// 1. a marker in each (tag, key) stream — the stream, the revision the append will take, its event ids.
//    For the tag and key of the append's condition the marker is appended at the exact revision the
//    condition was checked at, so two conditional appends of one key cannot both pass;
// 2. the events, at an exact revision of their own stream (`any` is made exact from the stream's end).
// A marker is resolved by reading its stream from the revision it names: the append's first event there
// makes it live; another event, or a fence naming it, makes it dead; the end of the stream leaves it
// pending (the writer is between the two steps, or crashed there). A conditional append that meets
// another writer's pending marker waits a moment, then appends a fence at that stream's end, which no
// later write of that marker's events can pass (they are appended at an exact revision): so a crash
// between the steps never blocks a visit, and a slow writer fails with a conflict instead of landing
// late. Fences and markers are the adapter's own events: reads, $all and subscriptions never return them,
// and an append whose expected revision stands just before fences aimed at others is placed after them.
// An unconditional tagged append reserved after a conditional one may still land before it in the log.
import { createHash, randomUUID } from 'node:crypto';
import {
  AppendConditionFailedError,
  WrongExpectedRevisionError,
  tagKey,
  tagsOf,
  type AppendCondition,
  type ExpectedRevision,
  type RecordedEvent,
  type TagRule,
} from '#event-store';
import type { PreparedEvent } from './esdb-support.js';

/** Streams of tag markers: `@tag-<tag>-<sha-256 of the key>`. The port's callers may not write there. */
export const TAG_STREAM_PREFIX = '@tag-';
export const MARKER_TYPE = '@tagged';
export const FENCE_TYPE = '@fence';

/** Whether an event is one of the adapter's own (a marker or a fence), never shown to the port's callers. */
export const isAdapterEvent = (streamId: string, type: string): boolean =>
  streamId.startsWith(TAG_STREAM_PREFIX) || type === MARKER_TYPE || type === FENCE_TYPE;

export function tagStreamOf(tag: string, key: string): string {
  return `${TAG_STREAM_PREFIX}${tag}-${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

interface MarkerData {
  tag: string;
  key: string;
  stream: string;
  /** Where the append's first event goes (its stream's last revision + 1 when the marker was written). */
  firstRevision: number;
  count: number;
  /** The append's first event id: finding it at the place makes the marker live. */
  first: string;
  /** The ids of the append's events that carry this tag and key. */
  ids: string[];
}

interface FenceData {
  marker: string;
}

type Resolved = { kind: 'live'; revision: number; events: RecordedEvent[] } | { kind: 'dead' } | { kind: 'pending'; last: number };

type Scan =
  | { kind: 'found'; revision: number }
  | { kind: 'fenced' }
  | { kind: 'taken'; revision: number }
  | { kind: 'open'; last: number }
  | { kind: 'behind' };

/** What the tags need of the adapter: raw stream reads and exact appends, its own events included. */
export interface RawStreams {
  /** Up to maxCount events from a revision ([] when the stream does not exist or ends before it). */
  read(streamId: string, fromRevision: number, maxCount: number): Promise<RecordedEvent[]>;
  /** Appends after the stream's last revision (-1: none) or anywhere; false when `last` is not the stream's end. */
  write(streamId: string, events: PreparedEvent[], last: number | 'any'): Promise<boolean>;
  /** The stream's last revision, the adapter's own events included (-1 when it does not exist). */
  lastRevision(streamId: string): Promise<number>;
}

const PAGE = 500;
/** Waits before another writer's pending marker is fenced: it is usually between its two steps for a millisecond. */
const FENCE_GRACE_MS = [10, 40, 150];
/** Markers resolved at once when reading a tag. */
const RESOLVE_CONCURRENCY = 16;
/** Bound on re-placing an `any` append that keeps meeting other writers. */
const MAX_PLACEMENTS = 20;

/** Markers this connection wrote, remembered to recognise its own earlier attempts of an append. */
const OWN_MARKERS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class EsdbTags {
  private readonly ownMarkers = new Set<string>();

  constructor(
    readonly rules: readonly TagRule[],
    private readonly raw: RawStreams,
  ) {}

  /** Events carrying the tag and key, in log order: the live markers' events. */
  async read(tag: string, key: readonly string[], maxCount: number): Promise<RecordedEvent[]> {
    const { markers } = await this.markers(tag, tagKey(key));
    const resolved = await mapLimited(markers, RESOLVE_CONCURRENCY, (m) => this.resolve(m));
    const byPosition = new Map<number, RecordedEvent>(); // a retried append may have two live markers
    for (const r of resolved) if (r.kind === 'live') for (const e of r.events) byPosition.set(e.position, e);
    return [...byPosition.values()].sort((a, b) => a.position - b.position).slice(0, maxCount);
  }

  /**
   * Appends the events (markers first, then the events at an exact revision) on the condition if
   * one is given; resolves with the revision of the first event as stored (a retry finds it).
   */
  async append(
    streamId: string,
    events: PreparedEvent[],
    expected: ExpectedRevision,
    condition: AppendCondition | undefined,
    /** Called once the condition holds, before anything is written, with the revision the events would take. */
    beforeWrite: (firstRevision: number) => void,
  ): Promise<number> {
    const groups = this.groups(events);
    const exact = typeof expected === 'number' || expected === 'no_stream';
    for (let placement = 1; ; placement++) {
      let last = exact ? (expected === 'no_stream' ? -1 : expected) : await this.raw.lastRevision(streamId);
      if (expected === 'stream_exists' && last < 0) throw new WrongExpectedRevisionError(streamId, expected, 'no_stream');
      const own = new Set<string>();
      if (condition !== undefined) {
        const retried = await this.reserve(streamId, events, last, exact, condition, groups, own, beforeWrite);
        if (retried !== undefined) return retried;
      } else beforeWrite(last + 1);
      for (const [stream, group] of groups) {
        if (condition !== undefined && stream === tagStreamOf(condition.tag, tagKey(condition.key))) continue;
        own.add(await this.writeMarker(stream, group, streamId, events, last, 'any'));
      }
      for (;;) {
        if (await this.raw.write(streamId, events, last)) return last + 1;
        const scan = await this.scan(streamId, last + 1, events[0]!.id, own);
        if (scan.kind === 'found') return scan.revision;
        if (scan.kind === 'open') {
          last = scan.last; // only fences aimed at others stand before the end
          continue;
        }
        if (exact || placement >= MAX_PLACEMENTS) {
          const actual = await this.raw.lastRevision(streamId);
          throw new WrongExpectedRevisionError(streamId, expected, actual < 0 ? 'no_stream' : actual);
        }
        break; // any / stream_exists: another writer appended first; place the append again
      }
    }
  }

  /**
   * Checks the condition against every marker of its tag and key (fencing other writers' pending
   * ones) and appends this append's marker right after them. Resolves with the first revision when
   * the append is already recorded (a retry), else undefined.
   */
  private async reserve(
    streamId: string,
    events: PreparedEvent[],
    last: number,
    exact: boolean,
    condition: AppendCondition,
    groups: Map<string, TagGroup>,
    own: Set<string>,
    beforeWrite: (firstRevision: number) => void,
  ): Promise<number | undefined> {
    const key = tagKey(condition.key);
    const stream = tagStreamOf(condition.tag, key);
    const group = groups.get(stream) ?? { tag: condition.tag, key, ids: [] };
    const violates = (r: Resolved) => r.kind === 'live' && r.events.some((e) => e.position > condition.afterPosition);
    for (;;) {
      const { markers, last: tagLast } = await this.markers(condition.tag, key);
      const resolved = await mapLimited(markers, RESOLVE_CONCURRENCY, (m) => this.resolve(m));
      const pending: RecordedEvent[] = [];
      for (const [i, r] of resolved.entries()) {
        const data = markers[i]!.data as MarkerData;
        // Only this connection's own earlier attempt is the same append: another process's (even with the
        // same ids) is another writer, whose append the condition is checked against.
        const ours = this.ownMarkers.has(markers[i]!.id) && data.stream === streamId && data.first === events[0]!.id;
        // This very append, recorded by an earlier attempt: the same append (the condition is not checked again).
        if (r.kind === 'live' && ours && (!exact || data.firstRevision === last + 1)) return r.revision;
        if (r.kind === 'pending' && !ours) pending.push(markers[i]!); // ours pending: an earlier attempt that never wrote
      }
      if (resolved.some(violates)) throw new AppendConditionFailedError(streamId, condition);
      for (const m of pending) if (violates(await this.settle(m))) throw new AppendConditionFailedError(streamId, condition);
      beforeWrite(last + 1);
      try {
        own.add(await this.writeMarker(stream, group, streamId, events, last, tagLast));
        return undefined;
      } catch (error) {
        if (!(error instanceof MarkerPlaceTaken)) throw error; // another writer reserved first: check again
      }
    }
  }

  /** Resolves another writer's pending marker: waits a moment for its events, then fences it. */
  private async settle(marker: RecordedEvent): Promise<Resolved> {
    for (const ms of FENCE_GRACE_MS) {
      await sleep(ms);
      const r = await this.resolve(marker);
      if (r.kind !== 'pending') return r;
    }
    const data = marker.data as MarkerData;
    for (;;) {
      const r = await this.resolve(marker);
      if (r.kind !== 'pending') return r;
      const fence: PreparedEvent = {
        id: randomUUID(),
        type: FENCE_TYPE,
        data: { marker: marker.id } satisfies FenceData,
        metadataJson: undefined,
      };
      if (await this.raw.write(data.stream, [fence], r.last)) return { kind: 'dead' };
    }
  }

  private async resolve(marker: RecordedEvent): Promise<Resolved> {
    const m = marker.data as MarkerData;
    const scan = await this.scan(m.stream, m.firstRevision, m.first, new Set([marker.id]));
    if (scan.kind === 'open') return { kind: 'pending', last: scan.last };
    if (scan.kind !== 'found') return { kind: 'dead' };
    const ids = new Set(m.ids);
    const appended = await this.raw.read(m.stream, scan.revision, m.count);
    return { kind: 'live', revision: scan.revision, events: appended.filter((e) => ids.has(e.id)) };
  }

  /**
   * Reads a stream from a revision past the fences not aimed at `markers`: the first other event is
   * the one with `firstId` (found) or not (taken); a fence aimed at them means fenced; the end, open;
   * a stream that ends before the revision, behind.
   */
  private async scan(streamId: string, fromRevision: number, firstId: string, markers: ReadonlySet<string>): Promise<Scan> {
    for (let from = fromRevision; ;) {
      const page = await this.raw.read(streamId, from, PAGE);
      for (const e of page) {
        if (e.type !== FENCE_TYPE)
          return e.id === firstId ? { kind: 'found', revision: e.revision } : { kind: 'taken', revision: e.revision };
        if (markers.has((e.data as FenceData).marker)) return { kind: 'fenced' };
      }
      if (page.length > 0 && page.length < PAGE) return { kind: 'open', last: page[page.length - 1]!.revision };
      if (page.length === 0) {
        // The end, or short of the revision: an expected revision the stream never had (its write fails at once).
        const last = from === 0 ? -1 : await this.raw.lastRevision(streamId);
        return last >= from - 1 ? { kind: 'open', last } : { kind: 'behind' };
      }
      from = page[page.length - 1]!.revision + 1;
    }
  }

  /** The markers of a tag and key in the order they were reserved, and the tag stream's last revision. */
  private async markers(tag: string, key: string): Promise<{ markers: RecordedEvent[]; last: number }> {
    const stream = tagStreamOf(tag, key);
    const markers: RecordedEvent[] = [];
    for (let from = 0; ;) {
      const page = await this.raw.read(stream, from, PAGE);
      for (const e of page) {
        const data = e.data as MarkerData | null;
        if (e.type === MARKER_TYPE && data?.tag === tag && data.key === key) markers.push(e);
      }
      if (page.length < PAGE) return { markers, last: page.length > 0 ? page[page.length - 1]!.revision : from - 1 };
      from = page[page.length - 1]!.revision + 1;
    }
  }

  private async writeMarker(
    stream: string,
    group: TagGroup,
    streamId: string,
    events: PreparedEvent[],
    last: number,
    tagLast: number | 'any',
  ): Promise<string> {
    const data: MarkerData = {
      tag: group.tag,
      key: group.key,
      stream: streamId,
      firstRevision: last + 1,
      count: events.length,
      first: events[0]!.id,
      ids: group.ids,
    };
    const marker: PreparedEvent = { id: randomUUID(), type: MARKER_TYPE, data, metadataJson: undefined };
    if (!(await this.raw.write(stream, [marker], tagLast))) throw new MarkerPlaceTaken();
    if (this.ownMarkers.size >= OWN_MARKERS) this.ownMarkers.delete(this.ownMarkers.values().next().value!);
    this.ownMarkers.add(marker.id);
    return marker.id;
  }

  /** The append's events by the tag stream each (tag, key) they carry goes to. */
  private groups(events: readonly PreparedEvent[]): Map<string, TagGroup> {
    const groups = new Map<string, TagGroup>();
    for (const e of events) {
      for (const [tag, key] of tagsOf(this.rules, e.type, e.data)) {
        const stream = tagStreamOf(tag, key);
        const group = groups.get(stream) ?? { tag, key, ids: [] };
        if (!group.ids.includes(e.id)) group.ids.push(e.id);
        groups.set(stream, group);
      }
    }
    return groups;
  }
}

interface TagGroup {
  tag: string;
  key: string;
  ids: string[];
}

class MarkerPlaceTaken extends Error {}

async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}
