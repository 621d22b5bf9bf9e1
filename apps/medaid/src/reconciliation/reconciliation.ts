// 对账 with a hospital: what medaid recorded for it in a period, as totals (what 3201 compares) and
// as the list of records behind them (what 3202 compares line by line). A record is a settlement at
// the time it was recorded, or a reversal at the time it was recorded, with the settlement's
// amounts negative — as the platform counts them: a settlement reversed in the next month stays in
// this month's totals and comes back negative in the next. The amounts are those the settlement
// paid (its journal entry); adjustments an office applied later are not the hospital's records and
// are left out. Periods are calendar days in Beijing time (UTC+8), the platform's.
import type { JournalLine, SqliteJournal } from '#ledger';
import { csvField } from '../cli/report-format.js';
import { BEIJING_OFFSET_MS, beijingClock } from '../shared/beijing-time.js';

/** At most this many records in one period (a county hospital's year is far below it). */
export const MAX_RECORDS = 200_000;

export interface ReconciliationRecord {
  kind: 'settlement' | 'reversal';
  settlementId: string;
  visitId: string;
  personId: string;
  recordedAtMs: number;
  /** Negative for a reversal. */
  totalFen: number;
  fundPayFen: number;
  patientPayFen: number;
  /** Fund code → what it paid (negative for a reversal). */
  funds: Record<string, number>;
}

export interface ReconciliationTotals {
  hospitalId: string;
  from: string;
  to: string;
  /** 结算笔数 as 3201 counts it: settlement records plus reversal records. */
  records: number;
  settlements: number;
  reversals: number;
  /** Net over the records (reversals negative). */
  medfeeSumFen: number;
  fundPaySumFen: number;
  patientPaySumFen: number;
  byFund: Array<{ fund: string; fen: number }>;
  /** The lists' position: records up to here are counted. */
  asOfPosition: number;
}

/** The first and the last millisecond (exclusive) of a period of Beijing days. */
export function periodMs(from: string, to: string): [number, number] {
  const day = (d: string) => Date.UTC(Number(d.slice(0, 4)), Number(d.slice(5, 7)) - 1, Number(d.slice(8, 10)));
  return [day(from) - BEIJING_OFFSET_MS, day(to) + 86_400_000 - BEIJING_OFFSET_MS];
}

/** The records of a hospital in a period, in time order; null when there are more than MAX_RECORDS. */
export function reconciliationRecords(journal: SqliteJournal, hospitalId: string, from: string, to: string): ReconciliationRecord[] | null {
  const [fromMs, toMs] = periodMs(from, to);
  const rows = journal.projections.reconciliationRows(hospitalId, fromMs, toMs, MAX_RECORDS + 1);
  if (rows.length > MAX_RECORDS) return null;
  return rows.map((r) => {
    const sign = r.kind === 'reversal' ? -1 : 1;
    const funds = fundsOf(journal.settlementLines(r.settlement_id));
    let fundPayFen = 0;
    for (const fund of Object.keys(funds)) {
      fundPayFen += funds[fund]!;
      funds[fund] = sign * funds[fund]! || 0;
    }
    return {
      kind: r.kind,
      settlementId: r.settlement_id,
      visitId: r.visit_id,
      personId: r.person_id,
      recordedAtMs: r.at_ms,
      totalFen: sign * r.total_fen,
      fundPayFen: sign * fundPayFen || 0,
      patientPayFen: sign * (r.total_fen - fundPayFen) || 0,
      funds,
    };
  });
}

/** What a settlement's entry took from each fund: its debits of `fund/{code}/{region}/{year}`. */
function fundsOf(lines: readonly JournalLine[]): Record<string, number> {
  const funds: Record<string, number> = {};
  for (const l of lines) {
    if (!l.account.startsWith('fund/')) continue;
    const code = l.account.split('/')[1]!;
    funds[code] = (funds[code] ?? 0) + l.debitFen - l.creditFen;
  }
  return funds;
}

export function totalsOf(
  hospitalId: string,
  from: string,
  to: string,
  records: readonly ReconciliationRecord[],
  asOfPosition: number,
): ReconciliationTotals {
  const byFund = new Map<string, number>();
  let [medfee, fundPay, patientPay, settlements] = [0, 0, 0, 0];
  for (const r of records) {
    medfee += r.totalFen;
    fundPay += r.fundPayFen;
    patientPay += r.patientPayFen;
    if (r.kind === 'settlement') settlements += 1;
    for (const [fund, fen] of Object.entries(r.funds)) byFund.set(fund, (byFund.get(fund) ?? 0) + fen);
  }
  return {
    hospitalId,
    from,
    to,
    records: records.length,
    settlements,
    reversals: records.length - settlements,
    medfeeSumFen: medfee,
    fundPaySumFen: fundPay,
    patientPaySumFen: patientPay,
    byFund: [...byFund].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([fund, fen]) => ({ fund, fen })),
    asOfPosition,
  };
}

/** yyyy-MM-ddTHH:mm:ss.SSS+08:00 */
export function beijingTime(ms: number): string {
  return `${beijingClock(ms).toISOString().slice(0, 23)}+08:00`;
}

export const RECONCILIATION_CSV_HEADER = [
  'kind',
  'settlement_id',
  'visit_id',
  'person_id',
  'recorded_at',
  'total_fen',
  'fund_pay_fen',
  'patient_pay_fen',
  'funds',
] as const;

/** The records as CSV (RFC 4180, CRLF); `funds` as `code:fen` pairs joined by `;`. */
export function recordsToCsv(records: readonly ReconciliationRecord[]): string {
  const lines = [RECONCILIATION_CSV_HEADER.join(',')];
  for (const r of records)
    lines.push(
      [
        r.kind,
        r.settlementId,
        r.visitId,
        r.personId,
        beijingTime(r.recordedAtMs),
        String(r.totalFen),
        String(r.fundPayFen),
        String(r.patientPayFen),
        Object.entries(r.funds)
          .map(([fund, fen]) => `${fund}:${fen}`)
          .join(';'),
      ]
        .map(csvField)
        .join(','),
    );
  return `${lines.join('\r\n')}\r\n`;
}
