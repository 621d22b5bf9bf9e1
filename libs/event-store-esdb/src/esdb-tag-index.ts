// The event-store port's tags (TagRule) on EventStoreDB, for ONE writing process: EventStoreDB has
// no index of events by their data and no append condition across streams, so this process keeps
// the index itself — built from $all when it connects, advanced by its own appends — and checks an
// append's condition against it with the appends of that tag and key queued one at a time. Its
// memory grows with the tagged events (about 100 B each), and another process's appends are not
// seen: running several instances on one EventStoreDB needs the database's own way (a stream per
// visit appended with an expected revision), which the multi-instance work brings.
import { tagKey, tagsOf, type AppendCondition, type RecordedEvent, type TagRule } from '#event-store';

interface TaggedRef {
  streamId: string;
  revision: number;
  position: number;
}

export class EsdbTagIndex {
  private readonly refs = new Map<string, TaggedRef[]>();
  private readonly tails = new Map<string, Promise<unknown>>();

  constructor(readonly rules: readonly TagRule[]) {}

  /** Indexes a recorded event (from the catch-up at connect, or an append read back). */
  add(event: Pick<RecordedEvent, 'type' | 'data' | 'streamId' | 'revision' | 'position'>): void {
    for (const [tag, key] of tagsOf(this.rules, event.type, event.data)) {
      const id = `${tag}\u0000${key}`;
      const list = this.refs.get(id);
      const ref = { streamId: event.streamId, revision: event.revision, position: event.position };
      if (list === undefined) this.refs.set(id, [ref]);
      else if (!list.some((r) => r.position === ref.position)) list.push(ref);
    }
  }

  refsOf(tag: string, key: readonly string[]): readonly TaggedRef[] {
    return this.refs.get(`${tag}\u0000${tagKey(key)}`) ?? [];
  }

  holds(condition: AppendCondition): boolean {
    return !this.refsOf(condition.tag, condition.key).some((r) => r.position > condition.afterPosition);
  }

  /** Runs conditional appends of one tag and key one after another (unconditional ones run at once). */
  serialised<T>(condition: AppendCondition | undefined, work: () => Promise<T>): Promise<T> {
    if (condition === undefined) return work();
    const id = `${condition.tag}\u0000${tagKey(condition.key)}`;
    const result = (this.tails.get(id) ?? Promise.resolve()).then(work, work);
    const tail = result.catch(() => undefined);
    this.tails.set(id, tail);
    void tail.then(() => {
      if (this.tails.get(id) === tail) this.tails.delete(id);
    });
    return result;
  }
}
