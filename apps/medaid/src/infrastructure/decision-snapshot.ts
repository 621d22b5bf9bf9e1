// The decision snapshot (DIR/decision-snapshot.json): the fund accounts and counters of the
// decision state at a log position, so that start-up reads only the events after it (the tail),
// not the whole log. Written after start-up, every SNAPSHOT_INTERVAL_MS while the log moves, and
// at a clean stop; each write replaces the file atomically (write, fsync, rename). It names the
// event at its position: a snapshot of another log (a data directory copied over) is ignored and
// the whole log is read instead. Losing it costs only time, never correctness.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { FundAccount, PolicyRegistry, POLICIES_TAG, ALLOCATIONS_TAG, FundAllocatedData, SettlementReversedData } from '#domain';
import type { EventStore } from '#event-store';
import { DecisionState, takenBy } from '../shared/decision-state.js';
import { readVisit } from '../shared/lookups.js';

export const SNAPSHOT_FILE = 'decision-snapshot.json';
const FORMAT = 1;
/** Events read per page of the tail. */
const TAIL_PAGE = 2_000;

interface SnapshotFile {
  format: number;
  position: number;
  eventId: string | null;
  events: number;
  funds: FundAccount[];
  writtenMs: number;
}

export function readDecisionSnapshot(dataDir: string): SnapshotFile | null {
  let text: string;
  try {
    text = readFileSync(join(dataDir, SNAPSHOT_FILE), 'utf8');
  } catch {
    return null;
  }
  try {
    const s = JSON.parse(text) as SnapshotFile;
    if (s.format !== FORMAT || !Number.isSafeInteger(s.position) || !Array.isArray(s.funds)) return null;
    return s;
  } catch {
    return null; // a torn file cannot happen (rename), but a hand-edited one can: start from the log
  }
}

/** The snapshot's text, taken synchronously: the state at one position, whatever is appended while it is written. */
function snapshotText(state: DecisionState): { position: number; text: string } {
  const body: SnapshotFile = {
    format: FORMAT,
    position: state.position,
    eventId: state.positionEventId,
    events: state.eventCount,
    funds: state.fundAccounts(),
    writtenMs: Date.now(),
  };
  return { position: state.position, text: JSON.stringify(body) };
}

/** Written off the event loop (the fsync of a file here takes 0.2–5 ms): while the service runs. Resolves with the position written. */
export async function writeDecisionSnapshotAsync(dataDir: string, state: DecisionState): Promise<number> {
  const { position, text } = snapshotText(state);
  const path = join(dataDir, SNAPSHOT_FILE);
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  const dir = await open(dataDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return position;
}

/** Written at once (start-up, a clean stop). */
export function writeDecisionSnapshot(dataDir: string, state: DecisionState): void {
  const { text } = snapshotText(state);
  const path = join(dataDir, SNAPSHOT_FILE);
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  const dir = openSync(dataDir, 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

export interface StartedState {
  state: DecisionState;
  snapshotPosition: number;
  tailEvents: number;
  ignoredSnapshot: string | null;
}

/**
 * The decision state at the head of the log: policies and allocations read by their tags, the
 * fund accounts from the snapshot, then every event after the snapshot applied (a reversal's
 * refund read from its visit). Without a usable snapshot the tail is the whole log (once).
 */
export async function startDecisionState(store: EventStore, dataDir: string, personCacheSize: number): Promise<StartedState> {
  const state = new DecisionState(personCacheSize);
  for (const e of await store.readByTag(POLICIES_TAG, [])) state.learnPolicy(e);
  for (const e of await store.readByTag(ALLOCATIONS_TAG, [])) state.learnAllocation(e.data as FundAllocatedData);
  const snapshot = readDecisionSnapshot(dataDir);
  let ignoredSnapshot: string | null = null;
  if (snapshot !== null && snapshot.position > 0) {
    const [at] = await store.readAll({ fromPosition: snapshot.position - 1, maxCount: 1 });
    if (at?.position === snapshot.position && at.id === snapshot.eventId)
      state.restore(snapshot.position, snapshot.eventId, snapshot.events, snapshot.funds);
    else ignoredSnapshot = `the snapshot names event ${snapshot.eventId} at position ${snapshot.position}, which this log does not have`;
  }
  const snapshotPosition = state.position;
  let tailEvents = 0;
  for (;;) {
    const page = await store.readAll({ fromPosition: state.position, maxCount: TAIL_PAGE });
    for (const e of page) {
      const taken =
        e.type === 'SettlementReversed' ? await refundOf(store, e.data as SettlementReversedData, e.position, state.registry) : undefined;
      state.apply(e, taken, e.id);
    }
    tailEvents += page.length;
    if (page.length < TAIL_PAGE) break;
  }
  return { state, snapshotPosition, tailEvents, ignoredSnapshot };
}

/** What a reversed settlement gave back to funds: what it took, read from its visit's events before the reversal. */
export async function refundOf(store: EventStore, r: SettlementReversedData, position: number, registry: PolicyRegistry) {
  const view = await readVisit(store, r.hospitalId, r.visitId);
  return takenBy(
    r.settlementId,
    view.events.filter((e) => e.position < position),
    registry,
  );
}
