// `medaid audit replay`: rebuilds every projection from the event log alone into a fresh
// temporary database — the journal (with the ledger writer's own posting code, so entries,
// hashes and balances must come out byte for byte the same) and the read model's per-person
// counters, visit index and fund accounts — and compares them with the live ones: the journal in
// DIR/ledger.sqlite entry by entry (every column, hashes included), its account index, its
// balances and checkpoint, the query projections and the year report's (table by table, row by row), and the read-model snapshot the service saved when it last stopped.
// Each is compared at the position the live one was written up to, so replay works while the
// service runs too.
import type { EventStore } from '#event-store';
import { PolicyFunds, REPORT_TABLES, SqliteJournal, postBatch } from '#ledger';
import type { SnapshotMeta } from '#ledger';
import { ReadModel } from '../shared/read-model.js';
import { Problems, Progress, followLog } from './audit-support.js';
import { SNAPSHOT_KINDS, snapshotRows } from './read-model-snapshot.js';

const PAGE_ROWS = 5_000;

export interface ReplayOptions {
  serviceRunning: boolean;
  progress: Progress;
}

export interface ReplayResult {
  head: number;
  events: number;
  journal: { position: number; entries: number };
  /** The live read-model snapshot compared, or null when the service never saved one. */
  snapshot: (SnapshotMeta & { rows: number }) | null;
  differences: Problems;
}

/** `rebuilt` is a fresh, empty journal file (the temporary database). */
export async function replayAudit(
  store: EventStore,
  live: SqliteJournal,
  rebuilt: SqliteJournal,
  options: ReplayOptions,
): Promise<ReplayResult> {
  // One read transaction: a running service's writer goes on, this audit sees the journal as it was.
  return live.readConsistently(() => replayConsistent(store, live, rebuilt, options));
}

async function replayConsistent(
  store: EventStore,
  live: SqliteJournal,
  rebuilt: SqliteJournal,
  options: ReplayOptions,
): Promise<ReplayResult> {
  const differences = new Problems();
  const liveHead = live.head();
  const snapshot = live.snapshotMeta();
  const head = await store.headPosition();
  if (liveHead.position > head)
    differences.add('journal', `the live journal's checkpoint ${liveHead.position} is after the end of the log (${head})`);
  else if (liveHead.position < head && !options.serviceRunning)
    differences.add('journal', `the live journal is behind the log: posted up to ${liveHead.position} of ${head}`);
  if (snapshot !== null && snapshot.position > head)
    differences.add('read model', `the read-model snapshot is at position ${snapshot.position}, after the end of the log (${head})`);

  // One pass: events up to the live checkpoint are posted into the fresh journal, events up to the
  // snapshot's position applied to a fresh read model (the service's own class).
  const model = new ReadModel();
  const funds = new PolicyFunds();
  const journalUpTo = Math.min(liveHead.position, head);
  const modelUpTo = snapshot === null ? 0 : Math.min(snapshot.position, head);
  let events = 0;
  await followLog(store, Math.max(journalUpTo, modelUpTo), (page) => {
    const toPost = page.filter((e) => e.position <= journalUpTo);
    if (toPost.length > 0) postBatch(rebuilt, toPost, funds);
    for (const e of page) if (e.position <= modelUpTo) model.apply(e.streamId, e.revision, e.position, e.type, e.data);
    events += page.length;
    options.progress.page(page.length, page[page.length - 1]!.position);
  });
  if (snapshot !== null) rebuilt.writeSnapshot({ position: model.position, events: model.eventCount }, snapshotRows(model));

  options.progress.note('comparing the live projections with the rebuilt ones');
  compareJournals(live, rebuilt, differences);
  compareProjections(live, rebuilt, differences, options.serviceRunning);
  compareReports(live, rebuilt, differences, options.serviceRunning);
  let rows = 0;
  if (snapshot !== null) rows = compareSnapshots(live, rebuilt, differences);
  return {
    head,
    events,
    journal: { position: liveHead.position, entries: liveHead.seq },
    snapshot: snapshot === null ? null : { ...snapshot, rows },
    differences,
  };
}

function compareJournals(live: SqliteJournal, rebuilt: SqliteJournal, differences: Problems): void {
  const [l, r] = [live.head(), rebuilt.head()];
  if (l.position !== r.position || l.events !== r.events) {
    differences.add(
      'journal',
      `checkpoint: live at position ${l.position} after ${l.events} events, rebuilt at ${r.position} after ${r.events}`,
    );
  }
  const uptoSeq = Math.max(l.seq, r.seq);
  for (let afterSeq = 0; afterSeq < uptoSeq;) {
    // Quickly first: a page whose rows are the same texts on both sides needs nothing more.
    const quickA = live.storedRows(afterSeq, uptoSeq, PAGE_ROWS);
    const quickB = rebuilt.storedRows(afterSeq, uptoSeq, PAGE_ROWS);
    if (quickA.length === PAGE_ROWS && quickA.length === quickB.length && quickA.every((x, i) => x.row === quickB[i]!.row)) {
      afterSeq = quickA[quickA.length - 1]!.seq;
      continue;
    }
    const a = live.stored(afterSeq, uptoSeq, PAGE_ROWS);
    const b = rebuilt.stored(afterSeq, uptoSeq, PAGE_ROWS);
    // Up to the smaller last seq of two full pages (a side with gaps reaches further); the rest comes next.
    const bound = Math.min(
      a.length === PAGE_ROWS ? a[a.length - 1]!.seq : uptoSeq,
      b.length === PAGE_ROWS ? b[b.length - 1]!.seq : uptoSeq,
    );
    const within = (x: { seq: number }) => x.seq <= bound;
    compareKeyed(
      'journal',
      a.filter(within),
      b.filter(within),
      (e) => e.seq,
      (e) => `seq ${e.seq}`,
      differences,
      ['position', 'eventId', 'eventType', 'streamId', 'settlementId', 'body', 'prevHash', 'hash'],
    );
    afterSeq = bound;
  }
  for (const account of new Set([...live.indexedAccounts(), ...rebuilt.indexedAccounts()])) {
    const [a, b] = [live.indexedSeqs(account), rebuilt.indexedSeqs(account)];
    const differ = a.length !== b.length || a.some((seq, i) => seq !== b[i]);
    if (differ)
      differences.add(
        'journal',
        `account index of ${account}: live lists ${a.length} entries, rebuilt ${b.length}; first difference at seq ${firstDifference(a, b)}`,
      );
  }
  compareKeyed(
    'balances',
    live.balances(),
    rebuilt.balances(),
    (b) => `${b.account}\u0000${b.year}`,
    (b) => `balance ${b.account} ${b.year}`,
    differences,
    ['debitFen', 'creditFen'],
  );
}

/** The query projections (settlements, alerts, persons by category), row by row, when both are at the same position. */
function compareProjections(live: SqliteJournal, rebuilt: SqliteJournal, differences: Problems, serviceRunning: boolean): void {
  const [l, r] = [live.projections.checkpoint(), rebuilt.projections.checkpoint()];
  if (l !== r) {
    // A running service's projections move on while the audit reads; a stopped one's must be where its journal is.
    if (!serviceRunning) differences.add('projections', `checkpoint: live at position ${l}, rebuilt at ${r}`);
    return;
  }
  const byPosition = [
    { rows: (p: SqliteJournal, after: number) => p.projections.settlementRowsAfter(after, PAGE_ROWS), what: 'settlement' },
    { rows: (p: SqliteJournal, after: number) => p.projections.alertRowsAfter(after, PAGE_ROWS), what: 'alert' },
  ];
  for (const { rows, what } of byPosition)
    for (let after = 0; ;) {
      const a = rows(live, after);
      const b = rows(rebuilt, after);
      if (a.length === 0 && b.length === 0) break;
      const bound = Math.min(
        a.length === PAGE_ROWS ? a[a.length - 1]!.position : Infinity,
        b.length === PAGE_ROWS ? b[b.length - 1]!.position : Infinity,
      );
      const within = (x: { position: number }) => x.position <= bound;
      compareKeyed(
        'projections',
        a.filter(within),
        b.filter(within),
        (x) => x.position,
        (x) => `${what} row at position ${x.position}`,
        differences,
        ['row'],
      );
      if (bound === Infinity) break;
      after = bound;
    }
  const keyText = (k: readonly unknown[]) => JSON.stringify(k);
  for (let after: [string, string, string, number] = ['', '', '', 0]; ;) {
    const a = live.projections.categoryRowsAfter(after, PAGE_ROWS);
    const b = rebuilt.projections.categoryRowsAfter(after, PAGE_ROWS);
    if (a.length === 0 && b.length === 0) break;
    const lastA = a.length === PAGE_ROWS ? a[a.length - 1]!.key : null;
    const lastB = b.length === PAGE_ROWS ? b[b.length - 1]!.key : null;
    const upTo = lastA === null ? lastB : lastB === null ? lastA : compareKeys(lastA, lastB) <= 0 ? lastA : lastB;
    const within = (x: { key: [string, string, string, number] }) => upTo === null || compareKeys(x.key, upTo) <= 0;
    compareKeyed(
      'projections',
      a.filter(within),
      b.filter(within),
      (x) => keyText(x.key),
      (x) => `person category row ${keyText(x.key)}`,
      differences,
      ['row'],
    );
    if (upTo === null) break;
    after = upTo;
  }
}

/**
 * The year report's projection, table by table and row by row in key order, streamed from both
 * files, when both are at the same position. A report is a function of these rows (the same
 * buildYearReport for both), so equal rows mean equal reports for every year.
 */
function compareReports(live: SqliteJournal, rebuilt: SqliteJournal, differences: Problems, serviceRunning: boolean): void {
  const [l, r] = [live.report.checkpoint(), rebuilt.report.checkpoint()];
  if (l !== r) {
    if (!serviceRunning) differences.add('report', `checkpoint: live at position ${l}, rebuilt at ${r}`);
    return;
  }
  for (const table of REPORT_TABLES) {
    const a = live.report.dump(table);
    const b = rebuilt.report.dump(table);
    let x = a.next();
    let y = b.next();
    while (!x.done || !y.done) {
      const order = x.done ? 1 : y.done ? -1 : byteOrder(x.value.key, y.value.key);
      if (order === 0) {
        if (x.value!.row !== y.value!.row)
          differences.add('report', `${table} ${x.value!.key}: live ${short(x.value!.row)}, rebuilt ${short(y.value!.row)}`);
        x = a.next();
        y = b.next();
      } else if (order < 0) {
        differences.add('report', `${table} ${x.value!.key}: in the live projection only`);
        x = a.next();
      } else {
        differences.add('report', `${table} ${y.value!.key}: in the rebuilt projection only`);
        y = b.next();
      }
    }
  }
}

/** SQLite's order of texts (their UTF-8 bytes), which differs from JavaScript's for characters beyond U+FFFF. */
function byteOrder(a: string, b: string): number {
  return a === b ? 0 : Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function compareKeys(a: readonly [string, string, string, number], b: readonly [string, string, string, number]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] as string) < (b[i] as string) ? -1 : 1;
  return a[3] - b[3];
}

function compareSnapshots(live: SqliteJournal, rebuilt: SqliteJournal, differences: Problems): number {
  const [l, r] = [live.snapshotMeta()!, rebuilt.snapshotMeta()!];
  if (l.position !== r.position || l.events !== r.events) {
    differences.add(
      'read model',
      `read model: live at position ${l.position} after ${l.events} events, rebuilt at ${r.position} after ${r.events}`,
    );
  }
  let rows = 0;
  for (const kind of SNAPSHOT_KINDS) {
    let afterKey = '';
    for (;;) {
      const a = live.snapshotRows(kind, afterKey, PAGE_ROWS);
      const b = rebuilt.snapshotRows(kind, afterKey, PAGE_ROWS);
      if (a.length === 0 && b.length === 0) break;
      // Compare only up to the smaller last key of two full pages; the rest comes with the next pages.
      const lastA = a.length === PAGE_ROWS ? a[a.length - 1]!.key : null;
      const lastB = b.length === PAGE_ROWS ? b[b.length - 1]!.key : null;
      const upTo = lastA === null ? lastB : lastB === null ? lastA : lastA < lastB ? lastA : lastB;
      const within = (x: { key: string }) => upTo === null || x.key <= upTo;
      const [pa, pb] = [a.filter(within), b.filter(within)];
      rows += pa.length;
      compareKeyed(
        'read model',
        pa,
        pb,
        (x) => x.key,
        (x) => `${kind} ${x.key}`,
        differences,
        ['value'],
      );
      if (upTo === null) break;
      afterKey = upTo;
    }
  }
  return rows;
}

/** Rows of one page on both sides, matched by key: missing, extra, and every differing field. */
function compareKeyed<T extends object>(
  check: string,
  live: readonly T[],
  rebuilt: readonly T[],
  keyOf: (x: T) => string | number,
  name: (x: T) => string,
  differences: Problems,
  fields: Array<keyof T>,
): void {
  const byKey = new Map(rebuilt.map((x) => [keyOf(x), x]));
  for (const a of live) {
    const b = byKey.get(keyOf(a));
    byKey.delete(keyOf(a));
    if (b === undefined) {
      differences.add(check, `${name(a)}: in the live projection only`);
      continue;
    }
    const differing = fields.filter((f) => a[f] !== b[f]);
    if (differing.length > 0) {
      differences.add(check, `${name(a)}: ${differing.map((f) => `${String(f)} live ${short(a[f])}, rebuilt ${short(b[f])}`).join('; ')}`);
    }
  }
  for (const b of byKey.values()) differences.add(check, `${name(b)}: in the rebuilt projection only`);
}

function firstDifference(a: number[], b: number[]): number {
  for (let i = 0; ; i++) if (a[i] !== b[i]) return Math.min(a[i] ?? Infinity, b[i] ?? Infinity);
}

function short(v: unknown): string {
  const s = String(v);
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}
