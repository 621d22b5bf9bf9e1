// The journal (总账): append-only double-entry entries, one per event that moves money, each
// sealed with the SHA-256 of the one before it. Corrections are new entries (a reversal is the
// mirror of what it reverses), never edits, so a changed, removed or reordered entry breaks the
// chain at its seq. Pure: no I/O; node:crypto is only the hash function.
import { hash } from 'node:crypto';
import { Fen, canonicalJson } from '#domain';

/** One line of an entry: exactly one of debitFen / creditFen is > 0. */
export interface JournalLine {
  account: string;
  debitFen: Fen;
  creditFen: Fen;
}

export interface JournalEntry {
  /** 1, 2, 3 … without gaps. */
  seq: number;
  /** Global log position of the event the entry posts. */
  position: number;
  eventId: string;
  eventType: string;
  streamId: string;
  lines: JournalLine[];
  /** The previous entry's hash; GENESIS_HASH for seq 1. */
  prevHash: string;
  /** SHA-256 hex of prevHash + canonical JSON of the entry without `hash`. */
  hash: string;
}

export type UnsealedEntry = Omit<JournalEntry, 'hash'>;
/** What an event posts, before it gets its place in the chain. */
export type EntryDraft = Pick<JournalEntry, 'position' | 'eventId' | 'eventType' | 'streamId' | 'lines'>;

export const GENESIS_HASH = '0'.repeat(64);
/** Most lines of one entry: a reversal mirrors a settlement (≤ 20 layers × 2) and its adjustments. */
export const MAX_LINES = 1_000;

/**
 * The canonical text of an entry — canonicalJson of it without `hash` (keys sorted at every
 * level) — which is what is hashed and what is stored. Written out for the entry's fixed shape:
 * the generic canonicalJson was the largest cost of posting (a unit test holds the two equal).
 */
export function entryBody(entry: UnsealedEntry): string {
  let lines = '';
  for (const l of entry.lines) {
    lines += `${lines === '' ? '' : ','}{"account":${JSON.stringify(l.account)},"creditFen":${int(l.creditFen)},"debitFen":${int(l.debitFen)}}`;
  }
  return (
    `{"eventId":${JSON.stringify(entry.eventId)},"eventType":${JSON.stringify(entry.eventType)},"lines":[${lines}],` +
    `"position":${int(entry.position)},"prevHash":${JSON.stringify(entry.prevHash)},"seq":${int(entry.seq)},"streamId":${JSON.stringify(entry.streamId)}}`
  );
}

/** The slow, generic form of entryBody: the definition it must agree with. */
export function canonicalEntryBody(entry: UnsealedEntry): string {
  const { seq, position, eventId, eventType, streamId, lines, prevHash } = entry;
  return canonicalJson({
    seq,
    position,
    eventId,
    eventType,
    streamId,
    lines: lines.map(({ account, debitFen, creditFen }) => ({ account, debitFen, creditFen })),
    prevHash,
  });
}

function int(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`invariant violated: a journal number is a safe integer, not ${n}`);
  return String(n);
}

export function hashOf(prevHash: string, body: string): string {
  return hash('sha256', prevHash + body, 'hex'); // the same bytes as update(prevHash).update(body)
}

/** Chains a draft after `previous` (null: the first entry). */
export function sealEntry(previous: Pick<JournalEntry, 'seq' | 'hash'> | null, draft: EntryDraft): JournalEntry {
  return sealWithBody(previous, draft).entry;
}

/** sealEntry, and the canonical body it hashed (what the store keeps). */
export function sealWithBody(
  previous: Pick<JournalEntry, 'seq' | 'hash'> | null,
  draft: EntryDraft,
): { entry: JournalEntry; body: string } {
  const unsealed: UnsealedEntry = {
    seq: (previous?.seq ?? 0) + 1,
    position: draft.position,
    eventId: draft.eventId,
    eventType: draft.eventType,
    streamId: draft.streamId,
    lines: draft.lines.map(({ account, debitFen, creditFen }) => ({ account, debitFen, creditFen })),
    prevHash: previous?.hash ?? GENESIS_HASH,
  };
  const body = entryBody(unsealed);
  return { entry: { ...unsealed, hash: hashOf(unsealed.prevHash, body) }, body };
}

/** Why an entry does not balance, or null when it does (Σ debit = Σ credit, one side per line). */
export function checkBalanced(entry: Pick<JournalEntry, 'lines'>): string | null {
  if (entry.lines.length < 2) return `has ${entry.lines.length} line(s); an entry has at least a debit and a credit`;
  if (entry.lines.length > MAX_LINES) return `has ${entry.lines.length} lines, more than ${MAX_LINES}`;
  let debitFen = 0;
  let creditFen = 0;
  for (const [i, l] of entry.lines.entries()) {
    if (typeof l.account !== 'string' || l.account.length === 0) return `line ${i} has no account`;
    if (!isAmount(l.debitFen) || !isAmount(l.creditFen))
      return `line ${i} (${l.account}) has an amount that is not a non-negative integer of fen`;
    if (l.debitFen > 0 === l.creditFen > 0) return `line ${i} (${l.account}) must have exactly one of debitFen / creditFen above 0`;
    debitFen += l.debitFen;
    creditFen += l.creditFen;
  }
  return debitFen === creditFen ? null : `debits ${debitFen} ≠ credits ${creditFen}`;
}

const isAmount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export interface ChainProblem {
  /** The seq at which the chain breaks (for a missing entry: the seq that is missing). */
  seq: number;
  problem: string;
}

/**
 * Checks entries one at a time, in the order stored, so a journal of any size is verified in
 * pages. After a break it continues from the entry it found, so one tampered entry is reported
 * once or twice, not as every entry after it.
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  private lastPosition = 0;
  count = 0;

  /** `body`: the entry's text as stored, when at hand (hashing it saves re-serialising the entry). */
  next(entry: JournalEntry, body?: string): ChainProblem[] {
    const problems: ChainProblem[] = [];
    const seq = this.expectedSeq;
    if (entry.seq !== seq) {
      problems.push({
        seq: Math.min(seq, entry.seq),
        problem:
          entry.seq > seq
            ? `entry ${seq === entry.seq - 1 ? seq : `${seq}…${entry.seq - 1}`} missing (next entry has seq ${entry.seq})`
            : `entry ${entry.seq} out of order (expected seq ${seq})`,
      });
    }
    if (entry.prevHash !== this.prevHash) problems.push({ seq: entry.seq, problem: 'prevHash is not the hash of the entry before it' });
    if (hashOf(entry.prevHash, body ?? entryBody(entry)) !== entry.hash)
      problems.push({ seq: entry.seq, problem: 'hash does not match the entry' });
    if (!(entry.position > this.lastPosition))
      problems.push({ seq: entry.seq, problem: `position ${entry.position} does not follow ${this.lastPosition}` });
    this.expectedSeq = entry.seq + 1;
    this.prevHash = entry.hash;
    this.lastPosition = Math.max(this.lastPosition, entry.position);
    this.count += 1;
    return problems;
  }
}

/** Every break of the chain, in order; [] when the entries form an intact chain from seq 1. */
export function verifyChain(entries: Iterable<JournalEntry>): ChainProblem[] {
  const verifier = new ChainVerifier();
  const problems: ChainProblem[] = [];
  for (const entry of entries) problems.push(...verifier.next(entry));
  return problems;
}

/** The mirror of lines: every debit becomes a credit of the same amount and vice versa. */
export function mirror(lines: readonly JournalLine[]): JournalLine[] {
  return lines.map((l) => ({ account: l.account, debitFen: l.creditFen, creditFen: l.debitFen }));
}
