// What `medaid audit verify` and `medaid audit replay` share: one pass over the log in pages up to
// a position, progress on stderr, and a bounded list of problems.
import { CheckpointedFollower } from '#event-store';
import type { EventStore, RecordedEvent } from '#event-store';
import type { JournalLine } from '#ledger';

/** Events per read: bounds memory (a settlement event is ~1 KB parsed to a few KB). */
export const PAGE_EVENTS = 5_000;
/** Problems kept for printing; the rest are only counted. */
export const MAX_LISTED_PROBLEMS = 100;
const PROGRESS_EVERY_MS = 2_000;

/**
 * One pass over the log after `from` up to `upTo` (inclusive), page by page in global order: the
 * log's one follower (CheckpointedFollower), run once instead of following the log's head.
 */
export async function followLog(
  store: EventStore,
  upTo: number,
  apply: (page: readonly RecordedEvent[]) => void | Promise<void>,
  from = 0,
): Promise<void> {
  const once = { checkpoint: () => from, commit: apply };
  await new CheckpointedFollower(store, once, { maxPageEvents: PAGE_EVENTS, idleMs: 0, retryDelayMs: () => 0 }).runTo(upTo);
}

export class Problems {
  readonly listed: string[] = [];
  count = 0;
  readonly byCheck = new Map<string, number>();

  add(check: string, message: string): void {
    this.count += 1;
    this.byCheck.set(check, (this.byCheck.get(check) ?? 0) + 1);
    if (this.listed.length < MAX_LISTED_PROBLEMS) this.listed.push(message);
  }

  /** The listed problems, and how many more there are. */
  print(out: NodeJS.WritableStream, noun = 'problem'): void {
    for (const p of this.listed) out.write(`  - ${p}\n`);
    if (this.count > this.listed.length) out.write(`  … and ${this.count - this.listed.length} more ${noun}s (${this.count} in all)\n`);
  }
}

/**
 * One line on stderr at most every 2 s while the log is read. The embedded store reads
 * synchronously, so a timer would not get to run: the time is checked after each page.
 */
export class Progress {
  private readonly started = performance.now();
  private last = this.started;
  events = 0;

  constructor(
    private readonly label: string,
    private readonly err: NodeJS.WritableStream,
    private readonly head: number,
  ) {}

  page(events: number, position: number): void {
    this.events += events;
    const now = performance.now();
    if (now - this.last < PROGRESS_EVERY_MS) return;
    this.last = now;
    const share = this.head > 0 ? `, ${Math.min(100, Math.floor((position / this.head) * 100))} % of the log` : '';
    this.err.write(
      `${this.label}: ${this.events.toLocaleString('en-US')} events read (${this.rate().toLocaleString('en-US')}/s${share})\n`,
    );
  }

  /** The last line, always: how many events, how long, how fast. */
  done(): void {
    this.err.write(
      `${this.label}: ${this.events.toLocaleString('en-US')} events read in ${this.seconds().toFixed(1)} s (${this.rate().toLocaleString('en-US')}/s)\n`,
    );
  }

  note(message: string): void {
    this.err.write(`${this.label}: ${message}\n`);
  }

  rate(): number {
    const seconds = (performance.now() - this.started) / 1000;
    return seconds > 0 ? Math.round(this.events / seconds) : 0;
  }

  seconds(): number {
    return (performance.now() - this.started) / 1000;
  }
}

/** Lines as auditors read them: "D fund/… 100, C hospital/… 100". */
export function describeLines(lines: readonly JournalLine[]): string {
  return lines.map((l) => (l.debitFen > 0 ? `D ${l.account} ${l.debitFen}` : `C ${l.account} ${l.creditFen}`)).join(', ') || '(none)';
}

/**
 * Equal as JSON documents (what canonicalJson compares, without building the strings): same
 * primitives, same arrays in order, same keys with equal values in any order; undefined = absent.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let keys = 0;
  for (const k of Object.keys(x)) {
    if (x[k] === undefined) continue;
    keys += 1;
    if (!Object.hasOwn(y, k) || !sameJson(x[k], y[k])) return false;
  }
  return keys === Object.keys(y).filter((k) => y[k] !== undefined).length;
}
