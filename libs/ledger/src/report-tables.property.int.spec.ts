// The year report's projection on disk against the audit's fold in memory: random logs (policies,
// settlements over two years, re-used settlement ids, reversals of active and unknown settlements,
// adjustments of known and unknown layers, repeated subsidies, allocations, monitoring flags and
// clearings, some of flags that do not stand), posted through the
// journal's own postBatch in random batches on a real SQLite file, with transactions made to fail
// after the report's tables were written (they roll back; the batch is posted again) and the file
// closed and opened again between batches. Every year's report must equal the memory fold's, and
// the projection must stand exactly at its checkpoint.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Policy, ReportEvent, SettledData, applyReportEvent, buildYearReport, initialReportState } from '#domain';
import { PolicyFunds, postBatch } from './ledger-writer.js';
import type { LogEvent } from './ledger-writer.js';
import { REPORT_TABLES } from './report-tables.js';
import { SqliteJournal } from './sqlite-journal.js';

const YEARS = [2012, 2013];
const policy = (version: number): Policy => ({
  policyId: 'county',
  version,
  region: 'r1',
  effectiveFrom: '2012-01-01',
  categories: [
    { code: 'tekun', name: `特困 v${version}` },
    { code: 'dibao', name: '低保' },
  ],
  layers: [
    { id: 'basic', kind: 'insurance', fund: '390100', rules: [{ id: 'b', bands: [{ uptoFen: null, ratioBp: 5000 }] }] },
    { id: 'aid', kind: 'aid', fund: '610100', rules: [{ id: 'a', bands: [{ uptoFen: null, ratioBp: 7000 }] }] },
  ],
  funds: [{ code: '610100', name: `救助 v${version}`, mayOverdraw: true }],
});

type Step =
  | { kind: 'policy'; version: number }
  | { kind: 'settle'; id: number; person: number; version: number; year: number; category: string; total: number; pays: [number, number] }
  | { kind: 'reverse'; id: number }
  | { kind: 'adjust'; id: number; layer: string; delta: number }
  | { kind: 'subsidy'; person: number; year: number; amount: number }
  | { kind: 'allocate'; year: number; source: 'superior' | 'local' | 'carryover'; amount: number }
  | { kind: 'flag'; person: number; year: number; threshold: string; category: string }
  | { kind: 'clear'; person: number; year: number; threshold: string };

const id = fc.integer({ min: 0, max: 30 });
const person = fc.integer({ min: 0, max: 12 });
const year = fc.constantFrom(...YEARS);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('policy' as const), version: fc.integer({ min: 1, max: 3 }) }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      id,
      person,
      version: fc.integer({ min: 1, max: 3 }),
      year,
      category: fc.constantFrom('tekun', 'dibao', 'none'),
      total: fc.integer({ min: 1, max: 1_000_000 }),
      pays: fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 10_000 })), // shares of the total (bp of half)
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('reverse' as const), id }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('adjust' as const),
      id,
      layer: fc.constantFrom('basic', 'aid', 'nope'),
      delta: fc.integer({ min: -5_000, max: 5_000 }).filter((d) => d !== 0),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('subsidy' as const), person, year, amount: fc.integer({ min: 0, max: 40_000 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('allocate' as const),
      year,
      source: fc.constantFrom('superior' as const, 'local' as const, 'carryover' as const),
      amount: fc.integer({ min: 1, max: 9_000_000 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('flag' as const),
      person,
      year,
      threshold: fc.constantFrom('t-year', 't-once'),
      category: fc.constantFrom('tekun', 'dibao', 'none'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('clear' as const), person, year, threshold: fc.constantFrom('t-year', 't-once') }),
  },
);

/** The log the steps make: each event at the next position, in the person's stream. */
function logOf(steps: readonly Step[]): LogEvent[] {
  return steps.map((s, i) => {
    const position = i + 1;
    const base = { id: `e${position}`, position, revision: 0, createdMs: 1_000 + position };
    switch (s.kind) {
      case 'policy':
        return { ...base, streamId: 'policy-county', type: 'PolicyPublished', data: { policy: policy(s.version) } };
      case 'settle': {
        const date = `${s.year}-05-10`;
        const data: SettledData = {
          settlementId: `s${s.id}`,
          fingerprint: `fp${position}`,
          policy: { policyId: 'county', version: s.version },
          year: s.year,
          category: s.category,
          aidBlockedReason: null,
          contributions: { yearBase: {}, used: {} },
          discharge: {
            hospitalId: 'h1',
            visitId: `v${s.id}`,
            personId: `p${s.person}`,
            region: 'r1',
            scheme: 'nrcms',
            visitType: s.id % 3 === 0 ? 'outpatient' : 'inpatient',
            hospitalLevel: 'county',
            admissionDate: date,
            dischargeDate: date,
            diagnosisCodes: [],
            totalFen: s.total,
            fullOwnPayFen: 0,
            overLimitFen: 0,
            preSelfPayFen: 0,
            externalPayments: {},
          },
          layers: s.pays
            .map((bp) => Math.floor((s.total * bp) / 20_000))
            .map((pay, l) => [['b', 'a'][l]!, 0, 0, pay, pay, null]) as SettledData['layers'],
        };
        return { ...base, streamId: `person-p${s.person}`, type: 'DischargeSettled', data };
      }
      case 'reverse':
        return {
          ...base,
          streamId: 'person-x',
          type: 'SettlementReversed',
          data: { personId: 'x', settlementId: `s${s.id}`, hospitalId: 'h1', visitId: `v${s.id}`, reason: '录入错误' },
        };
      case 'adjust':
        return {
          ...base,
          streamId: 'person-x',
          type: 'AdjustmentApplied',
          data: {
            adjustmentId: `adj${position}`,
            settlementId: `s${s.id}`,
            hospitalId: 'h1',
            visitId: `v${s.id}`,
            layerId: s.layer,
            fund: s.layer === 'basic' ? '390100' : '610100',
            region: 'r1',
            year: 2012,
            deltaFen: s.delta,
            contributions: { yearBase: {}, used: {} },
            requestedBy: { kind: 'admin', id: 'maker' },
            approvedBy: { kind: 'admin', id: 'checker' },
          },
        };
      case 'subsidy':
        return {
          ...base,
          streamId: `person-p${s.person}`,
          type: 'EnrolmentSubsidyGranted',
          data: {
            personId: `p${s.person}`,
            year: s.year,
            region: 'r1',
            category: 'tekun',
            amountFen: s.amount,
            fromFund: '610100',
            toFund: '390100',
            policy: { policyId: 'county', version: 1 },
            asOf: `${s.year}-01-01`,
          },
        };
      case 'allocate':
        return {
          ...base,
          streamId: 'funds',
          type: 'FundAllocated',
          data: { fund: '610100', region: 'r1', year: s.year, source: s.source, amountFen: s.amount, reference: 'x' },
        };
      case 'flag':
        return {
          ...base,
          streamId: `person-p${s.person}`,
          type: 'HighMedicalCostFlagged',
          data: {
            personId: `p${s.person}`,
            year: s.year,
            thresholdId: s.threshold,
            per: s.threshold === 't-year' ? 'year' : 'settlement',
            aboveFen: 600_000,
            amountFen: 700_000,
            settlementId: `s${position}`,
            category: s.category,
            region: 'r1',
            dischargeDate: `${s.year}-05-10`,
          },
        };
      case 'clear':
        return {
          ...base,
          streamId: `person-p${s.person}`,
          type: 'HighMedicalCostCleared',
          data: { personId: `p${s.person}`, year: s.year, thresholdId: s.threshold, amountFen: 0, settlementId: `s${position}` },
        };
    }
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'medaid-report-tables-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the year report projection on disk', () => {
  it('given random logs posted in random batches with failed transactions and reopenings, then every year equals the fold in memory, at its checkpoint', () => {
    let run = 0;
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 1, maxLength: 120 }),
        fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
        (steps, sizes, failures) => {
          // Every version is published first: the journal's postings refuse a settlement of an unknown policy.
          const published: Step[] = [1, 2, 3].map((version) => ({ kind: 'policy', version }));
          const events = logOf([...published, ...steps]);
          const path = join(dir, `ledger-${run++}.sqlite`);
          let journal = SqliteJournal.open(path, { durable: false });
          try {
            const funds = new PolicyFunds(); // the policies' layer funds, as the service gives the journal's thread
            for (let at = 0, b = 0; at < events.length; b++) {
              const batch = events.slice(at, at + sizes[b % sizes.length]!);
              if (failures[b % failures.length]) {
                // The transaction fails after the report's tables were written: all of it rolls back.
                const report = journal.report;
                const apply = report.applyBatch.bind(report);
                report.applyBatch = (e) => {
                  apply(e);
                  throw new Error('disk full');
                };
                expect(() => postBatch(journal, batch, funds)).toThrow('disk full');
                report.applyBatch = apply;
                expect(report.checkpoint()).toBe(at === 0 ? 0 : events[at - 1]!.position);
                if (b % 3 === 0) {
                  // … and the process goes away: the next one opens the file afresh
                  journal.close();
                  journal = SqliteJournal.open(path, { durable: false });
                }
              }
              postBatch(journal, batch, funds);
              at += batch.length;
            }
            const state = initialReportState();
            for (const e of events) applyReportEvent(state, e as ReportEvent);
            expect(journal.report.checkpoint()).toBe(events.length);
            for (const y of YEARS) expect(journal.report.yearReport(y)).toEqual(buildYearReport(state, y));
            // A projection written in one go equals one written batch by batch with failures.
            const whole = SqliteJournal.open(join(dir, `ledger-${run++}.sqlite`), { durable: false });
            try {
              postBatch(whole, events, new PolicyFunds());
              for (const table of REPORT_TABLES) expect([...whole.report.dump(table)]).toEqual([...journal.report.dump(table)]);
            } finally {
              whole.close();
            }
          } finally {
            journal.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
