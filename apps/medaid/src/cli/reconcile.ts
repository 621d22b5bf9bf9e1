// `medaid reconcile --hospital H --from D --to D`: 对账 of a hospital for a period, from the journal
// and the lists in DIR/ledger.sqlite (read-only: the service may be running), the same figures as
// GET /v1/reconciliation/{hospitalId}: the totals (JSON), or with --details the records behind them
// (JSON or CSV). As of the lists' checkpoint, which the output names (asOfPosition).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isCalendarDate, isId } from '#domain';
import { SqliteJournal } from '#ledger';
import { LEDGER_FILE } from '../ledger/ledger.js';
import { MAX_RECORDS, reconciliationRecords, recordsToCsv, totalsOf } from '../reconciliation/reconciliation.js';
import { writeAll } from './audit-report.js';

export const RECONCILE_USAGE = `medaid reconcile --hospital ID --from YYYY-MM-DD --to YYYY-MM-DD [--details] [--format json|csv] [--data DIR]

  对账 of a hospital for a period (calendar days in Beijing time, at most 366): the totals — records
  (settlements and reversals, each a record, as 3201 counts them), net medical fees, fund pay and
  patient pay, by fund (integer fen) — or with --details the records behind them, in time order
  (--format csv for a spreadsheet). Read from DIR/ledger.sqlite (default ./data, or $MEDAID_DATA)
  without a lock, so the service may be running; the output says up to which log position it counts.`;

export async function runReconcile(args: string[], io: { stdout: NodeJS.WritableStream } = process): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      hospital: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      details: { type: 'boolean', default: false },
      format: { type: 'string', default: 'json' },
      data: { type: 'string', default: process.env.MEDAID_DATA ?? 'data' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(`${RECONCILE_USAGE}\n`);
    return 0;
  }
  if (!isId(values.hospital)) throw new Error(`--hospital must be a hospital id\n\n${RECONCILE_USAGE}`);
  for (const option of ['from', 'to'] as const)
    if (!isCalendarDate(values[option])) throw new Error(`--${option} must be a date YYYY-MM-DD\n\n${RECONCILE_USAGE}`);
  const [from, to, hospitalId] = [values.from!, values.to!, values.hospital!];
  const days = (Date.parse(to) - Date.parse(from)) / 86_400_000;
  if (days < 0 || days >= 366) throw new Error('--to must be on or after --from, and at most 365 days after it');
  if (values.format !== 'json' && values.format !== 'csv') throw new Error(`--format must be json or csv, not "${values.format}"`);
  if (values.format === 'csv' && !values.details) throw new Error('--format csv is for --details (the totals are JSON)');
  const path = join(resolve(values.data), LEDGER_FILE);
  if (!existsSync(path)) throw new Error(`no ledger in ${resolve(values.data)} (${LEDGER_FILE}); give --data DIR`);
  const journal = SqliteJournal.open(path, { readonly: true });
  try {
    const asOfPosition = journal.projections.checkpoint();
    const records = reconciliationRecords(journal, hospitalId, from, to);
    if (records === null) throw new Error(`the period holds more than ${MAX_RECORDS} records; ask for a shorter one`);
    const text = !values.details
      ? `${JSON.stringify(totalsOf(hospitalId, from, to, records, asOfPosition), null, 2)}\n`
      : values.format === 'csv'
        ? recordsToCsv(records)
        : `${JSON.stringify({ items: records, asOfPosition }, null, 2)}\n`;
    await writeAll(io.stdout, text);
  } finally {
    journal.close();
  }
  return 0;
}
