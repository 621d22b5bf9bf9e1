// Reads the journal as stored, entry by entry in seq order, and checks what needs no event log:
// the hash chain (b), that each entry balances (c), and that the row's columns, the account
// index and the balances table agree with the hashed body. The payout check (d) of
// audit-verify.ts walks the same cursor alongside the log.
import { ChainVerifier, JournalEntry, JournalLine, SqliteJournal, StoredEntry, checkBalanced, entryYear } from '#ledger';
import { Problems } from './audit-support.js';

const PAGE_ENTRIES = 2_000;
const MAX_SEQS_NAMED = 5;

/** An entry as read (no lines when its body could not be read). */
export interface CheckedEntry {
  seq: number;
  position: number;
  eventId: string;
  eventType: string;
  streamId: string;
  lines: JournalLine[];
  /** The stored settlement_id column (what a reversal's lookup finds the entry by). */
  settlementId: string | null;
}

export class JournalCursor {
  private page: CheckedEntry[] = [];
  private index = 0;
  private afterSeq = 0;
  private done = false;
  private readonly chain = new ChainVerifier();
  /** From the bodies: per account and year, the sums; per account, the seqs touching it. */
  private readonly sums = new Map<string, { account: string; year: number; debitFen: number; creditFen: number }>();
  private readonly seqsByAccount = new Map<string, number[]>();
  entries = 0;

  /** Reads entries with seq ≤ uptoSeq, which must all post events at or before checkpoint (the journal's own). */
  constructor(
    private readonly journal: SqliteJournal,
    private readonly uptoSeq: number,
    private readonly checkpoint: number,
    private readonly problems: Problems,
  ) {}

  peek(): CheckedEntry | null {
    if (this.index >= this.page.length) this.load();
    return this.page[this.index] ?? null;
  }

  next(): CheckedEntry | null {
    const e = this.peek();
    if (e !== null) this.index += 1;
    return e;
  }

  /** Reads what is left (so every entry is checked), then compares the account index and the balances table with the bodies. */
  finish(): void {
    while (this.next() !== null) {
      /* each entry is checked as its page loads */
    }
    this.checkAccountIndex();
    this.checkBalancesTable();
  }

  private load(): void {
    this.page = [];
    this.index = 0;
    if (this.done) return;
    const rows = this.journal.stored(this.afterSeq, this.uptoSeq, PAGE_ENTRIES);
    if (rows.length < PAGE_ENTRIES) this.done = true;
    if (rows.length === 0) return;
    this.afterSeq = rows[rows.length - 1]!.seq;
    for (const row of rows) this.page.push(this.check(row));
  }

  private check(row: StoredEntry): CheckedEntry {
    const at = `seq ${row.seq}`;
    let body: Omit<JournalEntry, 'hash'> | null = null;
    try {
      body = JSON.parse(row.body) as Omit<JournalEntry, 'hash'>;
      if (body === null || typeof body !== 'object' || !Array.isArray(body.lines)) throw new Error('not an entry');
    } catch {
      this.problems.add('chain', `${at}: the stored body is not a journal entry`);
      body = null;
    }
    this.entries += 1;
    const entry: JournalEntry =
      body === null
        ? {
            seq: row.seq,
            position: row.position,
            eventId: row.eventId,
            eventType: row.eventType,
            streamId: row.streamId,
            lines: [],
            prevHash: row.prevHash,
            hash: row.hash,
          }
        : { ...body, hash: row.hash };
    for (const p of this.chain.next(entry, body === null ? undefined : row.body))
      this.problems.add('chain', `seq ${p.seq}: hash chain broken: ${p.problem}`);
    if (body !== null) {
      const unbalanced = checkBalanced(entry);
      if (unbalanced !== null) this.problems.add('balance', `${at}: does not balance: ${unbalanced}`);
      this.checkColumns(row, entry);
      this.remember(entry);
    }
    if (entry.position > this.checkpoint)
      this.problems.add('chain', `${at}: posts position ${entry.position}, after the journal's checkpoint ${this.checkpoint}`);
    const { seq, position, eventId, eventType, streamId, lines } = entry;
    return { seq, position, eventId, eventType, streamId, lines, settlementId: row.settlementId };
  }

  /** The columns are copies of the body, for queries: they must say the same (settlement_id is checked against the event). */
  private checkColumns(row: StoredEntry, entry: JournalEntry): void {
    const columns: Array<[string, unknown, unknown]> = [
      ['seq', row.seq, entry.seq],
      ['position', row.position, entry.position],
      ['event_id', row.eventId, entry.eventId],
      ['event_type', row.eventType, entry.eventType],
      ['stream_id', row.streamId, entry.streamId],
      ['prev_hash', row.prevHash, entry.prevHash],
    ];
    for (const [name, column, inBody] of columns) {
      if (column !== inBody)
        this.problems.add('index', `seq ${row.seq}: column ${name} is ${String(column)}, the hashed entry says ${String(inBody)}`);
    }
  }

  private remember(entry: JournalEntry): void {
    let year: number;
    try {
      year = entryYear(entry.lines);
    } catch {
      this.problems.add('balance', `seq ${entry.seq}: touches no fund account`);
      return;
    }
    for (const l of entry.lines) {
      const key = `${l.account}\u0000${year}`;
      const sum = this.sums.get(key) ?? { account: l.account, year, debitFen: 0, creditFen: 0 };
      sum.debitFen += l.debitFen;
      sum.creditFen += l.creditFen;
      this.sums.set(key, sum);
      const seqs = this.seqsByAccount.get(l.account) ?? [];
      if (seqs[seqs.length - 1] !== entry.seq) seqs.push(entry.seq);
      this.seqsByAccount.set(l.account, seqs);
    }
  }

  /** GET /v1/ledger?account= answers from the index: per account, it lists exactly the entries with a line on it. */
  private checkAccountIndex(): void {
    const accounts = new Set([...this.seqsByAccount.keys(), ...this.journal.indexedAccounts()]);
    for (const account of accounts) {
      const fromBodies = this.seqsByAccount.get(account) ?? [];
      const indexed = this.journal.indexedSeqs(account).filter((seq) => seq <= this.uptoSeq);
      const listed = new Set(indexed);
      const missing = fromBodies.filter((seq) => !listed.has(seq));
      const inBodies = new Set(fromBodies);
      const extra = indexed.filter((seq) => !inBodies.has(seq));
      if (missing.length > 0) this.problems.add('index', `the account index misses ${account} on seq ${named(missing)}`);
      if (extra.length > 0)
        this.problems.add('index', `the account index lists ${account} on seq ${named(extra)}, whose entries have no line on it`);
    }
  }

  private checkBalancesTable(): void {
    const table = new Map(this.journal.balances().map((b) => [`${b.account}\u0000${b.year}`, b]));
    for (const [key, sum] of this.sums) {
      const row = table.get(key);
      table.delete(key);
      if (row === undefined)
        this.problems.add(
          'balances',
          `balances: ${sum.account} ${sum.year} is missing (the entries sum to D ${sum.debitFen} C ${sum.creditFen})`,
        );
      else if (row.debitFen !== sum.debitFen || row.creditFen !== sum.creditFen) {
        this.problems.add(
          'balances',
          `balances: ${sum.account} ${sum.year} is D ${row.debitFen} C ${row.creditFen}, the entries sum to D ${sum.debitFen} C ${sum.creditFen}`,
        );
      }
    }
    for (const row of table.values())
      this.problems.add('balances', `balances: ${row.account} ${row.year} (D ${row.debitFen} C ${row.creditFen}) has no entries`);
  }
}

function named(seqs: number[]): string {
  return seqs.slice(0, MAX_SEQS_NAMED).join(', ') + (seqs.length > MAX_SEQS_NAMED ? ` and ${seqs.length - MAX_SEQS_NAMED} more` : '');
}
