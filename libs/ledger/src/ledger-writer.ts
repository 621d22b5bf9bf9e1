// The one writer of the journal: follows the store's global log from the journal's checkpoint
// (EventStore.subscribeToAll) and posts each page of events in ONE transaction together with the
// new checkpoint, so a crash between two pages re-posts nothing and skips nothing. It runs in the
// service process next to the request path, so it batches: events are buffered up to
// maxBatchEvents or lingerMs and one transaction (one fsync) covers each batch, written through a
// JournalSink — in the service a JournalThread, so the hashing, inserts and fsync happen off the
// request path's thread. One batch is written while the next forms; when that one is full too the
// subscription waits (back-pressure: memory stays bounded).
import { policyKey, policyStream } from '#domain';
import { CheckpointedFollower, doublingDelayMs } from '#event-store';
import type { EventStore, LogPosition, RecordedEvent } from '#event-store';
import { checkBalanced, sealWithBody } from './journal.js';
import type { JournalEntry, JournalLine } from './journal.js';
import { entryYear, postingsFor, reversibleSettlementOf } from './postings.js';
import type { PostingContext } from './postings.js';
import type { Balance, JournalHead, SqliteJournal } from './sqlite-journal.js';

/** What the ledger needs of a recorded event. */
export type LogEvent = Pick<RecordedEvent, 'position' | 'id' | 'type' | 'streamId' | 'data'> & { createdMs?: number };

export type LedgerLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export const stderrLedgerLog: LedgerLog = (level, msg, fields = {}) =>
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);

/**
 * The fund of each layer of every policy version, learnt from PolicyPublished events as they
 * pass. A writer that starts past them (from a checkpoint) loads the policy's stream on demand.
 */
export class PolicyFunds {
  private readonly byKey = new Map<string, string[]>();

  observe(event: Pick<LogEvent, 'type' | 'data'>): void {
    if (event.type !== 'PolicyPublished') return;
    const { policy } = event.data as { policy: { policyId: string; version: number; layers: Array<{ fund: string }> } };
    const key = policyKey(policy.policyId, policy.version);
    if (!this.byKey.has(key))
      this.byKey.set(
        key,
        policy.layers.map((l) => l.fund),
      );
  }

  get(policyId: string, version: number): readonly string[] | undefined {
    return this.byKey.get(policyKey(policyId, version));
  }

  learn(policyId: string, version: number, layerFunds: readonly string[]): void {
    this.byKey.set(policyKey(policyId, version), [...layerFunds]);
  }

  /** The layer funds of every policy version the events' settlements name (for another thread's PolicyFunds). */
  namedBy(events: readonly LogEvent[]): Array<[policyId: string, version: number, layerFunds: string[]]> {
    const out = new Map<string, [string, number, string[]]>();
    for (const e of events) {
      if (e.type !== 'DischargeSettled') continue;
      const { policyId, version } = (e.data as { policy: { policyId: string; version: number } }).policy;
      const funds = this.get(policyId, version);
      if (funds !== undefined) out.set(policyKey(policyId, version), [policyId, version, [...funds]]);
    }
    return [...out.values()];
  }

  /** Learns every policy the events name (published in the batch, or loaded from `policy-{id}`). */
  async prepare(events: readonly LogEvent[], store: Pick<EventStore, 'readStream'>): Promise<void> {
    for (const policyId of this.missing(events)) for (const e of await store.readStream(policyStream(policyId))) this.observe(e);
  }

  /** prepare() with a synchronous read of a stream (the log read on the journal's own thread). */
  prepareSync(events: readonly LogEvent[], readStream: (streamId: string) => ReadonlyArray<Pick<LogEvent, 'type' | 'data'>>): void {
    for (const policyId of this.missing(events)) for (const e of readStream(policyStream(policyId))) this.observe(e);
  }

  /** Observes the events; returns the policies their settlements name that are still unknown. */
  private missing(events: readonly LogEvent[]): Set<string> {
    for (const e of events) this.observe(e);
    const missing = new Set<string>();
    for (const e of events) {
      if (e.type !== 'DischargeSettled') continue;
      const { policyId, version } = (e.data as { policy: { policyId: string; version: number } }).policy;
      if (this.get(policyId, version) === undefined) missing.add(policyId);
    }
    return missing;
  }
}

/**
 * Posts events (in log order, after the checkpoint) in one transaction with the new checkpoint.
 * Events at or before the checkpoint are skipped: a batch delivered twice is posted once.
 * Returns the number of entries written.
 */
export function postBatch(journal: SqliteJournal, events: readonly LogEvent[], funds: PolicyFunds): number {
  if (events.length === 0) return 0;
  try {
    return journal.transaction(() => postInTransaction(journal, events, funds));
  } catch (error) {
    journal.report.forget(); // its state in memory may be ahead of the rolled-back tables
    throw error;
  }
}

function postInTransaction(journal: SqliteJournal, events: readonly LogEvent[], funds: PolicyFunds): number {
  const head = journal.head();
  let previous: Pick<JournalEntry, 'seq' | 'hash'> | null = head.hash === null ? null : { seq: head.seq, hash: head.hash };
  let { position, events: count, eventId } = head;
  let written = 0;
  const balances = new Map<string, Balance>();
  const ctx: PostingContext = { layerFunds: (id, version) => funds.get(id, version), postedFor: (id) => journal.postedFor(id) };
  for (const e of events) {
    if (e.position <= position) continue;
    funds.observe(e);
    const lines = postingsFor(e, ctx);
    if (lines.length > 0) {
      const { entry, body } = sealWithBody(previous, {
        position: e.position,
        eventId: e.id,
        eventType: e.type,
        streamId: e.streamId,
        lines,
      });
      const unbalanced = checkBalanced(entry);
      if (unbalanced !== null) throw new Error(`invariant violated: the entry for event ${e.id} ${unbalanced}`);
      journal.insert(entry, body, reversibleSettlementOf(e));
      addToBalances(balances, lines, entryYear(lines));
      previous = entry;
      written += 1;
    }
    position = e.position;
    eventId = e.id;
    count += 1;
  }
  journal.addBalances(balances.values());
  journal.setCheckpoint(position, count, eventId);
  journal.projections.applyBatch(events);
  journal.report.applyBatch(events);
  return written;
}

/** Sums lines per account and year: one upsert per account per batch instead of one per line. */
export function addToBalances(balances: Map<string, Balance>, lines: readonly JournalLine[], year: number): void {
  for (const l of lines) {
    const key = `${l.account}\u0000${year}`;
    const b = balances.get(key);
    if (b === undefined) balances.set(key, { account: l.account, year, debitFen: l.debitFen, creditFen: l.creditFen });
    else {
      b.debitFen += l.debitFen;
      b.creditFen += l.creditFen;
    }
  }
}

/** Where the writer posts: the journal in this thread, or a JournalThread (journal-thread.ts). */
export interface JournalSink {
  /** The committed checkpoint and the last entry. */
  head(): JournalHead;
  /** Posts a batch (log order) in one transaction with the new checkpoint; resolves with the entries written. */
  post(events: readonly LogEvent[], funds: PolicyFunds): Promise<number>;
}

/** The journal written in this thread (tests, tools); the service uses a JournalThread. */
export function inThisThread(journal: SqliteJournal): JournalSink {
  return { head: () => journal.head(), post: async (events, funds) => postBatch(journal, events, funds) };
}

export interface LedgerWriterOptions {
  /** Most events posted in one transaction (default 1000). */
  maxBatchEvents?: number;
  /** How long a partial batch waits for more events (default 50 ms): at most ~20 fsyncs/s on the request path's thread. */
  lingerMs?: number;
  /** Wait before following the log again after a failure (default 1 s, doubling to 30 s). */
  retryMs?: number;
  log?: LedgerLog;
}

export type LedgerWriterState = 'starting' | 'following' | 'retrying' | 'failed' | 'stopped';

export interface LedgerWriterStatus {
  state: LedgerWriterState;
  position: LogPosition;
  entriesWritten: number;
}

/** What the service needs of the one writer of its journal, wherever it reads the log. */
export interface LedgerFollower {
  /** Follows the log from the journal's checkpoint; returns at once. */
  start(): Promise<void>;
  /** Posts what the log holds now (bounded by deadlineMs), then stops following it. */
  stop(deadlineMs?: number): Promise<void>;
  /** Waits until every event recorded when called is posted; false when the deadline came first. */
  catchUp(deadlineMs?: number): Promise<boolean>;
  status(): LedgerWriterStatus;
}

/**
 * The journal's checkpoint must name an event of this log (the one at its position): otherwise
 * the journal posted another log, and posting on would chain two logs into one journal. Returns
 * the problem to log, or null.
 */
export function foreignCheckpoint(
  checkpoint: JournalHead,
  atCheckpoint: Pick<LogEvent, 'position' | 'id'> | undefined,
): Record<string, unknown> | null {
  if (checkpoint.position === 0 || (atCheckpoint?.position === checkpoint.position && atCheckpoint.id === checkpoint.eventId)) return null;
  return {
    checkpoint: checkpoint.position,
    checkpointEventId: checkpoint.eventId,
    found: atCheckpoint === undefined ? null : { position: atCheckpoint.position, id: atCheckpoint.id },
  };
}

export const BEHIND_MESSAGE = 'ledger writer behind the log; it continues from its checkpoint at the next start';

export const RETRY_MESSAGE = 'ledger writer failed; following the log again from the checkpoint';

export const FOREIGN_JOURNAL_MESSAGE =
  'the ledger checkpoint names an event this log does not have; the ledger is NOT written (ledger.sqlite belongs to another log?)';

/**
 * The writer of the journal when the log is not the embedded one (EventStoreDB): the one
 * checkpointed follower of the log on this thread, reading pages of $all after the journal's
 * checkpoint and posting each through the sink (a JournalThread: hashing, inserts and fsync happen
 * off this thread) in one transaction with the new checkpoint.
 */
export class LedgerWriter implements LedgerFollower {
  private refused = false;
  private entriesWritten = 0;
  private readonly funds = new PolicyFunds();
  private readonly follower: CheckpointedFollower<LogEvent>;
  private readonly log: LedgerLog;

  constructor(
    private readonly store: EventStore,
    private readonly journal: JournalSink,
    options: LedgerWriterOptions = {},
  ) {
    this.log = options.log ?? stderrLedgerLog;
    const sink = {
      checkpoint: () => journal.head().followFrom,
      commit: async (page: readonly LogEvent[]) => {
        await this.funds.prepare(page, store);
        this.entriesWritten += await journal.post(page, this.funds);
      },
    };
    this.follower = new CheckpointedFollower<LogEvent>(store, sink, {
      maxPageEvents: options.maxBatchEvents ?? 1_000,
      idleMs: options.lingerMs ?? 50,
      retryDelayMs: doublingDelayMs(options.retryMs ?? 1_000),
      onFailure: (error, at) => this.log('error', RETRY_MESSAGE, { error: String(error), position: at.position, retryInMs: at.retryInMs }),
    });
  }

  /** Follows the log from the journal's checkpoint; returns at once. */
  async start(): Promise<void> {
    const checkpoint = this.journal.head();
    const [atCheckpoint] =
      checkpoint.position === 0 ? [] : await this.store.readAll({ fromPosition: checkpoint.position - 1, maxCount: 1 });
    const foreign = foreignCheckpoint(checkpoint, atCheckpoint);
    if (foreign !== null) {
      // An operator must move the file away.
      this.refused = true;
      this.log('error', FOREIGN_JOURNAL_MESSAGE, foreign);
      return;
    }
    await this.follower.start();
  }

  /** Posts what the log holds now (bounded by deadlineMs), then stops following it. */
  async stop(deadlineMs = 5_000): Promise<void> {
    await this.catchUp(deadlineMs);
    await this.follower.stop();
  }

  /** Waits until every event recorded when called is posted; false when the deadline came first. */
  async catchUp(deadlineMs = 20_000): Promise<boolean> {
    const { position } = this.follower.status();
    const head = await this.store.headPosition().catch(() => position);
    const caughtUp = !this.refused && (await this.follower.reach(head, deadlineMs));
    if (!caughtUp) this.log('warn', BEHIND_MESSAGE, { position: this.follower.status().position, head });
    return caughtUp;
  }

  status(): LedgerWriterStatus {
    const { state, position } = this.follower.status();
    return { state: this.refused ? 'failed' : state, position, entriesWritten: this.entriesWritten };
  }
}
