// A ledger.sqlite of schema 3 (before the monitoring counts and the reversal's time in the
// settlements list) opened by this version: the lists and the report are emptied and folded again
// from the start of the log, the journal keeps its entries and its checkpoint, and afterwards the
// lists hold what a fresh fold gives (a reversal with its time, for reconciliation).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Policy, SettledData } from '#domain';
import { LogEvent, PolicyFunds, postBatch } from './ledger-writer.js';
import { SqliteJournal } from './sqlite-journal.js';

const policy: Policy = {
  policyId: 'county',
  version: 1,
  region: 'r1',
  effectiveFrom: '2012-01-01',
  categories: [{ code: 'dibao', name: '低保' }],
  layers: [{ id: 'basic', kind: 'insurance', fund: '390100', rules: [{ id: 'b', bands: [{ uptoFen: null, ratioBp: 5000 }] }] }],
};
const settled = (id: string): SettledData => ({
  settlementId: `h1/${id}/1`,
  fingerprint: `fp-${id}`,
  policy: { policyId: 'county', version: 1 },
  year: 2012,
  category: 'none',
  aidBlockedReason: null,
  contributions: { yearBase: {}, used: {} },
  discharge: {
    hospitalId: 'h1',
    visitId: id,
    personId: 'p1',
    region: 'r1',
    scheme: 'nrcms',
    visitType: 'inpatient',
    hospitalLevel: 'county',
    admissionDate: '2012-05-01',
    dischargeDate: '2012-05-10',
    diagnosisCodes: [],
    totalFen: 10_000,
    fullOwnPayFen: 0,
    overLimitFen: 0,
    preSelfPayFen: 0,
    externalPayments: {},
  },
  layers: [['b', 0, 0, 5_000, 5_000, null]] as SettledData['layers'],
});
const events: LogEvent[] = [
  { id: 'e1', position: 1, createdMs: 1_000, streamId: 'policy-county', type: 'PolicyPublished', data: { policy } },
  { id: 'e2', position: 2, createdMs: 2_000, streamId: 'person-p1', type: 'DischargeSettled', data: settled('v1') },
  { id: 'e3', position: 3, createdMs: 3_000, streamId: 'person-p1', type: 'DischargeSettled', data: settled('v2') },
  {
    id: 'e4',
    position: 4,
    createdMs: 4_000,
    streamId: 'person-p1',
    type: 'SettlementReversed',
    data: { personId: 'p1', settlementId: 'h1/v1/1', hospitalId: 'h1', visitId: 'v1', reason: '录入错误' },
  },
];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'medaid-ledger-upgrade-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a ledger of schema 3', () => {
  it('given a journal written before the reversal time and the monitoring counts, when opened, then the lists and the report are folded again and the journal is kept', () => {
    const path = join(dir, 'ledger.sqlite');
    const journal = SqliteJournal.open(path, { durable: false });
    postBatch(journal, events, new PolicyFunds());
    const entries = journal.head();
    journal.close();
    // as schema 3 left it: no reversed_at_ms, version 3
    const db = new Database(path);
    db.exec(`DROP INDEX settlements_by_hospital_reversal; ALTER TABLE settlements DROP COLUMN reversed_at_ms;
      DROP TABLE report_alerts; UPDATE meta SET value = '3' WHERE key = 'schema_version'`);
    db.close();

    const upgraded = SqliteJournal.open(path, { durable: false });
    try {
      expect([upgraded.projections.checkpoint(), upgraded.report.checkpoint()]).toEqual([0, 0]);
      // the journal kept its entries and its place; the follower starts again from the start of the log
      expect(upgraded.head()).toEqual({ ...entries, followFrom: 0 });
      expect(upgraded.projections.settlementRowsAfter(0, 10)).toEqual([]);
      postBatch(upgraded, events, new PolicyFunds()); // the follower reads from the lowest checkpoint
      expect(upgraded.head()).toEqual(entries); // nothing posted twice
      expect(upgraded.projections.reconciliationRows('h1', 0, 10_000, 10).map((r) => [r.kind, r.settlement_id, r.at_ms])).toEqual([
        ['settlement', 'h1/v1/1', 2_000],
        ['settlement', 'h1/v2/1', 3_000],
        ['reversal', 'h1/v1/1', 4_000],
      ]);
      expect(upgraded.report.yearReport(2012).overall.personTimes).toBe(1);
    } finally {
      upgraded.close();
    }
  });
});
