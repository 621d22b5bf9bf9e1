// The read model's projections as comparable rows (kind, key, canonical JSON): each person's
// year-to-date counters (yearBase, used) with the stream revision and the active settlements, each
// visit's settlements (the idempotency index), each fund account. The service saves them when it
// stops; `medaid audit replay` rebuilds them from the log and compares row by row.
import { activeSettlements, canonicalJson } from '#domain';
import type { SnapshotRow } from '#ledger';
import type { ReadModel } from '../shared/read-model.js';

export const SNAPSHOT_KINDS = ['person', 'visit', 'fund'] as const;

export function* snapshotRows(model: ReadModel): Generator<SnapshotRow> {
  for (const [personId, { state, revision }] of model.persons) {
    const active = activeSettlements(state).map((a) => a.settlementId);
    yield { kind: 'person', key: personId, value: canonicalJson({ revision, years: state.years, active }) };
  }
  for (const [key, attempts] of model.visits) yield { kind: 'visit', key, value: canonicalJson(attempts) };
  for (const [key, account] of model.funds) yield { kind: 'fund', key, value: canonicalJson(account) };
}
