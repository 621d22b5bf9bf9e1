// What the service held in memory as comparable rows (kind, key, canonical JSON): each fund
// account of its decision state. The service saves them when it stops; `medaid audit replay`
// rebuilds them from the log and compares row by row. (Persons and visits are no longer held by
// the service — it reads them from the log itself when it decides — so there is nothing of
// theirs to compare.)
import { FundAccount, canonicalJson } from '#domain';
import type { SnapshotRow } from '#ledger';

export const SNAPSHOT_KINDS = ['fund'] as const;

export function* snapshotRows(model: { funds: ReadonlyMap<string, FundAccount> }): Generator<SnapshotRow> {
  for (const [key, account] of model.funds) yield { kind: 'fund', key, value: canonicalJson(account) };
}
