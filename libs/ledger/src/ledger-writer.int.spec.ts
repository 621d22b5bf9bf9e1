// The ledger writer against real files and real crashes: a child process follows a generated log
// (and records reversals while it does) and is killed with SIGKILL mid-stream, twice; a third run
// finishes. Then every event that moves money is posted exactly once, in log order, with the
// lines the posting rules give, and the hash chain is intact.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyReportEvent, buildYearReport, initialReportState } from '#domain';
import type { RecordedEvent } from '#event-store';
import { SqliteEventStore, SqliteLogReader } from '#event-store-sqlite';
import {
  BEHIND_MESSAGE,
  FOREIGN_JOURNAL_MESSAGE,
  JournalEntry,
  JournalLine,
  JournalThread,
  LedgerWriter,
  LedgerWriterStatus,
  LogFollower,
  PolicyFunds,
  ThreadLedgerFollower,
  inThisThread,
  PostingContext,
  SqliteJournal,
  checkBalanced,
  postingsFor,
  reversibleSettlementOf,
  verifyChain,
} from './index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const GENERATE = join(ROOT, 'test/fixtures/generate-log.mjs');
const WRITER = join(ROOT, 'test/fixtures/ledger-writer.mjs');
const EVENTS = 6_000;

interface Head {
  position: number;
  events: number;
  seq: number;
}

/** Runs the writer child; with killAfter, SIGKILLs it once its checkpoint passed that position and it appended minAppended reversals. */
type Follower = 'writer' | 'thread';

async function runWriter(
  dir: string,
  follower: Follower,
  mode: 'append' | 'finish',
  killAfter?: number,
  minAppended = 0,
): Promise<{ signal: NodeJS.Signals | null; last: Head | null; stderr: string }> {
  const child = spawn(process.execPath, [WRITER, dir, mode, follower], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let buffered = '';
  let stderr = '';
  let last: Head | null = null;
  let appended = 0;
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const msg = JSON.parse(line) as Head | { done: Head } | { appended: number };
      if ('position' in msg) last = msg;
      if ('appended' in msg) appended = msg.appended;
      if (killAfter !== undefined && last !== null && last.position > killAfter && appended >= minAppended && child.exitCode === null)
        child.kill('SIGKILL');
    }
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.once('exit', (c, s) => res([c, s])));
  if (killAfter === undefined && code !== 0) throw new Error(`writer exited with ${code}: ${stderr}`);
  return { signal, last, stderr };
}

async function allEvents(store: SqliteEventStore): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for await (const page of store.readAllPages(0, 5_000)) out.push(...page);
  return out;
}

/** What the posting rules give for the log, computed here independently of the journal. */
function expectedEntries(events: RecordedEvent[]): Array<{ position: number; eventId: string; lines: JournalLine[] }> {
  const funds = new PolicyFunds();
  const posted = new Map<string, JournalLine[][]>();
  const ctx: PostingContext = { layerFunds: (id, v) => funds.get(id, v), postedFor: (id) => posted.get(id) ?? [] };
  const out: Array<{ position: number; eventId: string; lines: JournalLine[] }> = [];
  for (const e of events) {
    funds.observe(e);
    const lines = postingsFor(e, ctx);
    const settlementId = reversibleSettlementOf(e);
    if (settlementId !== null && lines.length > 0) posted.set(settlementId, [...(posted.get(settlementId) ?? []), lines]);
    if (lines.length > 0) out.push({ position: e.position, eventId: e.id, lines });
  }
  return out;
}

// Both ways of following the log: LedgerWriter on the main thread (EventStoreDB), and the journal
// thread reading the embedded log itself (ThreadLedgerFollower, the service on SQLite).
describe.each<Follower>(['writer', 'thread'])('ledger %s (child processes, kill -9)', (follower) => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'medaid-ledger-int-'));
    const generated = spawnSync(process.execPath, [GENERATE, join(dir, 'events.sqlite'), String(EVENTS), '600'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    if (generated.status !== 0) throw new Error(`generate-log failed: ${generated.stderr}`);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('given a writer killed with SIGKILL twice mid-stream while reversals are recorded, then after a restart every event is posted exactly once and the chain is intact', async () => {
    // Given: a writer that follows the log and records reversals, killed about a third of the way in
    const first = await runWriter(dir, follower, 'append', Math.floor(EVENTS * (0.2 + Math.random() * 0.2)), 100);
    expect(first.signal).toBe('SIGKILL');
    expect(first.last!.position).toBeLessThan(EVENTS);
    // … and again, after it went on from its checkpoint
    const second = await runWriter(dir, follower, 'finish', first.last!.position + 500 + Math.floor(Math.random() * 1_000));
    expect(second.signal).toBe('SIGKILL');
    // (after each kill the projections are exactly at their checkpoint: committed with it, never apart)
    await expectProjectionsAtCheckpoint(dir);

    // When: it runs to the end
    await runWriter(dir, follower, 'finish');

    // Then: the journal covers the whole log, once per event, as the posting rules say
    const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
    const journal = SqliteJournal.open(join(dir, 'ledger.sqlite'), { readonly: true });
    try {
      const events = await allEvents(store);
      expect(events.filter((e) => e.type === 'SettlementReversed').length).toBeGreaterThan(50);
      const head = journal.head();
      expect(head.position).toBe(events[events.length - 1]!.position);
      expect(head.events).toBe(events.length);
      expect(second.last!.position).toBeLessThan(head.position); // both kills came before the end of the log
      const entries: JournalEntry[] = [];
      for (let page = journal.entries(0, 1_000); page.length > 0; page = journal.entries(page[page.length - 1]!.seq, 1_000))
        entries.push(...page);
      const expected = expectedEntries(events);
      expect(entries.map((e) => ({ position: e.position, eventId: e.eventId, lines: e.lines }))).toEqual(expected);
      expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
      expect(verifyChain(entries)).toEqual([]);
      for (const e of entries) expect(checkBalanced(e)).toBeNull();
      // A settlement and its reversal net to zero: what the hospitals are owed is what the active settlements paid.
      const reversed = new Set(
        events.filter((e) => e.type === 'SettlementReversed').map((e) => (e.data as { settlementId: string }).settlementId),
      );
      const paidByActive = events
        .filter((e) => e.type === 'DischargeSettled' && !reversed.has((e.data as { settlementId: string }).settlementId))
        .reduce((sum, e) => sum + (e.data as { layers: number[][] }).layers.reduce((t, l) => t + l[4]!, 0), 0);
      const owed = journal
        .balances()
        .filter((b) => b.account.startsWith('hospital/'))
        .reduce((sum, b) => sum + b.creditFen - b.debitFen, 0);
      expect(owed).toBe(paidByActive);
      expect(paidByActive).toBeGreaterThan(0);
      // and the settlement projection has every settlement once, reversed where the log reversed it
      expect(journal.projections.checkpoint()).toBe(head.position);
      await expectProjectionsAtCheckpoint(dir);
    } finally {
      journal.close();
      await store.close();
    }
  }, 120_000);
});

/** The settlement projection holds exactly the settlements (and reversals) of the log up to the projections' checkpoint. */
async function expectProjectionsAtCheckpoint(dir: string): Promise<void> {
  const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const journal = SqliteJournal.open(join(dir, 'ledger.sqlite'), { readonly: true });
  try {
    const upTo = journal.projections.checkpoint();
    expect(upTo).toBeGreaterThan(0);
    const events = (await allEvents(store)).filter((e) => e.position <= upTo);
    const reversed = new Set(
      events.filter((e) => e.type === 'SettlementReversed').map((e) => (e.data as { settlementId: string }).settlementId),
    );
    const expected = events
      .filter((e) => e.type === 'DischargeSettled')
      .map((e) => [
        (e.data as { settlementId: string }).settlementId,
        reversed.has((e.data as { settlementId: string }).settlementId) ? 'reversed' : 'settled',
      ]);
    const rows = journal.projections.settlements({ limit: 1_000_000 }).map((r) => [r.settlementId, r.status]);
    expect(rows.sort()).toEqual(expected.sort());
    // The year report's projection too: at its own checkpoint, every year as the audit's fold of the log up to there says.
    const reportAt = journal.report.checkpoint();
    expect(reportAt).toBe(upTo);
    const state = initialReportState();
    for (const e of events) applyReportEvent(state, e);
    const years = journal.report.years();
    expect(years.length).toBeGreaterThan(0);
    for (const year of years) expect(journal.report.yearReport(year)).toEqual(buildYearReport(state, year));
    expect(years.some((year) => journal.report.yearReport(year).overall.personTimes > 100)).toBe(true);
  } finally {
    journal.close();
    await store.close();
  }
}

/** A local allocation of amountFen to fund 610100 of 360827 for 2013. */
const allocation = (amountFen: number) => ({
  id: randomUUID(),
  type: 'FundAllocated',
  data: { fund: '610100', region: '360827', year: 2013, source: 'local', amountFen, reference: 'x' },
});

/** The 2013 balances once allocations of 1, 2 … 30 fen are posted (465 fen in all). */
const BALANCES_OF_1_TO_30 = [
  { account: 'fund/610100/360827/2013', year: 2013, debitFen: 0, creditFen: 465 },
  { account: 'funding/local/360827/2013', year: 2013, debitFen: 465, creditFen: 0 },
];

/** A log that writes nothing, for followers whose lines a test does not look at. */
const quiet = () => {};

describe('ledger writer (in process)', () => {
  it('given appends while it follows the log (journal on its thread), when it stops, then everything recorded before the stop is posted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medaid-ledger-live-'));
    const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
    const thread = await JournalThread.start(join(dir, 'ledger.sqlite'));
    const journal = thread.reader;
    try {
      const writer = new LedgerWriter(store, thread, { log: quiet, lingerMs: 1_000 }); // a long linger: stop() must flush, not the timer
      await writer.start();
      for (let i = 1; i <= 30; i++) await store.appendToStream('fund-610100-360827', [allocation(i)], { expectedRevision: 'any' });
      await writer.stop();
      expect(journal.head()).toMatchObject({ position: await store.headPosition(), events: 30, seq: 30 });
      expect(journal.balances(2013)).toEqual(BALANCES_OF_1_TO_30);
    } finally {
      await thread.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('given a journal of another log, then the writer refuses to post into it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medaid-ledger-other-'));
    const stores = [
      await SqliteEventStore.open({ path: join(dir, 'a.sqlite') }),
      await SqliteEventStore.open({ path: join(dir, 'b.sqlite') }),
    ] as const;
    const journal = SqliteJournal.open(join(dir, 'ledger.sqlite'));
    try {
      // Given a journal that posted log a, and a log b just as long but with other events
      for (const store of stores)
        for (let i = 1; i <= 3; i++) await store.appendToStream('fund-610100-360827', [allocation(i)], { expectedRevision: 'any' });
      const first = new LedgerWriter(stores[0], inThisThread(journal), { log: quiet });
      await first.start();
      await first.stop();
      expect(journal.head().seq).toBe(3);
      // When a writer starts on log b with it
      const logged: string[] = [];
      const second = new LedgerWriter(stores[1], inThisThread(journal), { log: (level, msg) => logged.push(`${level}: ${msg}`) });
      await second.start();
      await stores[1].appendToStream('fund-610100-360827', [allocation(99)], { expectedRevision: 'any' });
      await second.stop();
      // Then it says so and writes nothing
      expect(second.status().state).toBe('failed');
      expect(logged.join('\n')).toMatch(/error: the ledger checkpoint names an event this log does not have/);
      expect(journal.head().seq).toBe(3);
    } finally {
      journal.close();
      for (const store of stores) await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ledger follower on the journal thread (the embedded log read there)', () => {
  it('given appends while it follows the log, when it stops, then everything recorded before the stop is posted, and catchUp waits for new events', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medaid-ledger-follow-'));
    const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
    const thread = await JournalThread.start(join(dir, 'ledger.sqlite'));
    try {
      // A long linger: catchUp and stop must wake it, not the timer
      const follower = new ThreadLedgerFollower(store, thread, join(dir, 'events.sqlite'), {
        maxBatchEvents: 7,
        lingerMs: 60_000,
        retryMs: 100,
      });
      await follower.start();
      expect(follower.status()).toEqual({ state: 'following', position: 0, entriesWritten: 0 });
      for (let i = 1; i <= 10; i++) await store.appendToStream('fund-610100-360827', [allocation(i)], { expectedRevision: 'any' });
      expect(await follower.catchUp(10_000)).toBe(true);
      expect(follower.status()).toMatchObject({ state: 'following', position: await store.headPosition(), entriesWritten: 10 });
      for (let i = 11; i <= 30; i++) await store.appendToStream('fund-610100-360827', [allocation(i)], { expectedRevision: 'any' });
      await follower.stop();
      expect(follower.status()).toEqual({ state: 'stopped', position: await store.headPosition(), entriesWritten: 30 });
      expect(thread.reader.head()).toMatchObject({ position: await store.headPosition(), events: 30, seq: 30 });
      expect(thread.reader.balances(2013)).toEqual(BALANCES_OF_1_TO_30);
      // Stopped: a later event is not posted
      await store.appendToStream('fund-610100-360827', [allocation(99)], { expectedRevision: 'any' });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(thread.reader.head().seq).toBe(30);
    } finally {
      await thread.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('given a journal of another log, then the follower refuses to post into it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medaid-ledger-follow-other-'));
    const stores = [
      await SqliteEventStore.open({ path: join(dir, 'a.sqlite') }),
      await SqliteEventStore.open({ path: join(dir, 'b.sqlite') }),
    ] as const;
    const thread = await JournalThread.start(join(dir, 'ledger.sqlite'));
    try {
      // Given a journal that posted log a, and a log b just as long but with other events
      for (const store of stores)
        for (let i = 1; i <= 3; i++) await store.appendToStream('fund-610100-360827', [allocation(i)], { expectedRevision: 'any' });
      const first = new ThreadLedgerFollower(stores[0], thread, join(dir, 'a.sqlite'), { log: quiet });
      await first.start();
      await first.stop();
      expect(thread.reader.head().seq).toBe(3);
    } finally {
      await thread.close();
    }
    // When a follower starts on log b with it (a new thread, as at the next start of the service)
    const again = await JournalThread.start(join(dir, 'ledger.sqlite'));
    try {
      const logged: string[] = [];
      const second = new ThreadLedgerFollower(stores[1], again, join(dir, 'b.sqlite'), {
        log: (level, msg) => logged.push(`${level}: ${msg}`),
      });
      await second.start();
      await stores[1].appendToStream('fund-610100-360827', [allocation(99)], { expectedRevision: 'any' });
      expect(await second.catchUp(200)).toBe(false);
      await second.stop(200);
      // Then it says so, through the log it was given (the refusal is logged on the journal's thread), and writes nothing
      expect(second.status().state).toBe('failed');
      expect(again.reader.head().seq).toBe(3);
      expect(logged).toEqual([`error: ${FOREIGN_JOURNAL_MESSAGE}`, `warn: ${BEHIND_MESSAGE}`, `warn: ${BEHIND_MESSAGE}`]);
    } finally {
      await again.close();
      for (const store of stores) await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('given a read of the log that fails, then it says so, waits, and posts from its checkpoint once the log reads again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medaid-ledger-follow-fail-'));
    const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
    const journal = SqliteJournal.open(join(dir, 'ledger.sqlite'));
    const reader = SqliteLogReader.open(join(dir, 'events.sqlite'));
    const seen: LedgerWriterStatus[] = [];
    const logged: string[] = [];
    let failNext = 2;
    let follower: LogFollower | undefined;
    try {
      for (let i = 1; i <= 5; i++) await store.appendToStream('fund-610100-360827', [allocation(i)], { expectedRevision: 'any' });
      const flaky = {
        readAll: (o: { fromPosition: number; maxCount: number }) => {
          if (failNext > 0) {
            failNext -= 1;
            throw new Error('disk I/O error');
          }
          return reader.readAll(o);
        },
        readStream: (streamId: string) => reader.readStream(streamId),
      };
      follower = new LogFollower(
        journal,
        flaky,
        { maxBatchEvents: 100, lingerMs: 5, retryMs: 10 },
        (s) => seen.push(s),
        (level, msg) => logged.push(`${level}: ${msg}`),
      );
      follower.start();
      const deadline = Date.now() + 10_000;
      while (follower.status().position < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(follower.status()).toEqual({ state: 'following', position: 5, entriesWritten: 5 });
      expect(seen.map((s) => s.state)).toEqual(['following', 'retrying', 'retrying', 'following']);
      expect(logged).toEqual([
        'error: ledger writer failed; following the log again from the checkpoint',
        'error: ledger writer failed; following the log again from the checkpoint',
      ]);
      expect(journal.head()).toMatchObject({ position: 5, events: 5, seq: 5 });
    } finally {
      follower?.halt();
      reader.close();
      journal.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
