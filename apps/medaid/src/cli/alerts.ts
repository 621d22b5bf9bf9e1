// `medaid alerts export --from D --to D`: the monitoring flags (防止因病返贫致贫动态监测) of a period
// as CSV, for the office that passes them on to 民政 and 乡村振兴 every ten days or every month. It
// reads the event log through the port (any store, only read, so the service may run), keeps the
// flags whose flagging discharge falls in the period — the same period GET /v1/alerts filters on —
// and follows them to the end of the log, so each row says whether the flag still stands or a
// reversal cleared it. One row per flag event, in log order: a person flagged, cleared and flagged
// again shows both. Person ids only (no names or identity numbers); money in integer fen.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HighMedicalCostClearedData, HighMedicalCostFlaggedData, isCalendarDate, isId } from '#domain';
import { followLog } from '../ledger/audit-support.js';
import { openEventStore, storeUrlFrom } from '../infrastructure/runtime.js';
import { writeAll } from './audit-report.js';
import { csvField } from './report-format.js';

export const ALERTS_USAGE = `medaid alerts export --from YYYY-MM-DD --to YYYY-MM-DD [--region R] [--category C]
                     [--threshold ID] [--status standing|cleared] [--out FILE]
                     [--data DIR] [--store esdb://…|postgres://…]

  The monitoring flags (HighMedicalCostFlagged) whose flagging discharge is dated from --from to
  --to (inclusive), as CSV (RFC 4180, CRLF, a header line): person, year, threshold, the line and
  the self-pay that crossed it (integer fen), category and region at the flag, the settlement, when
  it was recorded, and whether it stands or which reversal cleared it. Read from the event log
  (only read: the service may be running); --out writes a file instead of stdout. Progress on
  stderr every 2 s. --data DIR (default ./data, or $MEDAID_DATA) is the embedded store's
  directory; --store (or $EVENTSTORE_CONNECTION_STRING) reads EventStoreDB or PostgreSQL instead.`;

export const ALERT_CSV_HEADER = [
  'position',
  'person_id',
  'year',
  'threshold_id',
  'per',
  'above_fen',
  'amount_fen',
  'category',
  'region',
  'discharge_date',
  'settlement_id',
  'flagged_at',
  'status',
  'cleared_by_settlement',
  'cleared_amount_fen',
] as const;

interface Row {
  position: number;
  flag: HighMedicalCostFlaggedData;
  flaggedAtMs: number;
  clearing: HighMedicalCostClearedData | null;
}

export interface AlertsIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const PROGRESS_EVERY_MS = 2_000;

export async function runAlerts(argv: string[], io: AlertsIo = process): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.stdout.write(`${ALERTS_USAGE}\n`);
    return 0;
  }
  if (name !== 'export') throw new Error(`unknown alerts command "${name}" (export)\n\n${ALERTS_USAGE}`);
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      region: { type: 'string' },
      category: { type: 'string' },
      threshold: { type: 'string' },
      status: { type: 'string' },
      out: { type: 'string' },
      data: { type: 'string', default: process.env.MEDAID_DATA ?? 'data' },
      store: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(`${ALERTS_USAGE}\n`);
    return 0;
  }
  for (const option of ['from', 'to'] as const)
    if (!isCalendarDate(values[option]))
      throw new Error(`--${option} must be a date YYYY-MM-DD, not ${values[option] === undefined ? '(missing)' : `"${values[option]}"`}`);
  const from = values.from!;
  const to = values.to!;
  if (from > to) throw new Error(`--from ${from} is after --to ${to}`);
  for (const option of ['region', 'category', 'threshold'] as const)
    if (values[option] !== undefined && !isId(values[option])) throw new Error(`--${option} must be an id (letters, digits, ._:-; 1–64)`);
  if (values.status !== undefined && values.status !== 'standing' && values.status !== 'cleared')
    throw new Error(`--status must be standing or cleared, not "${values.status}"`);

  const storeUrl = storeUrlFrom(values.store, process.env);
  const dataDir = resolve(values.data);
  // Opening the embedded store creates it: a mistyped --data must fail, not export nothing.
  if (storeUrl === undefined && !existsSync(join(dataDir, 'events.sqlite')))
    throw new Error(`no event store in ${dataDir} (events.sqlite); give --data DIR`);

  const started = performance.now();
  let last = started;
  let events = 0;
  const rows: Row[] = [];
  /** The latest flag row of each person, year and threshold: a clearing ends it. */
  const open = new Map<string, Row>();
  const store = await openEventStore(dataDir, { storeUrl });
  try {
    const head = await store.headPosition();
    await followLog(store, Number.MAX_SAFE_INTEGER, (page) => {
      for (const e of page) {
        events += 1;
        if (e.type === 'HighMedicalCostFlagged') {
          const flag = e.data as HighMedicalCostFlaggedData;
          if (flag.dischargeDate < from || flag.dischargeDate > to) continue;
          if (values.region !== undefined && flag.region !== values.region) continue;
          if (values.category !== undefined && flag.category !== values.category) continue;
          if (values.threshold !== undefined && flag.thresholdId !== values.threshold) continue;
          const row: Row = { position: e.position, flag, flaggedAtMs: e.createdMs, clearing: null };
          rows.push(row);
          open.set(keyOf(flag), row);
        } else if (e.type === 'HighMedicalCostCleared') {
          const clearing = e.data as HighMedicalCostClearedData;
          const row = open.get(keyOf(clearing));
          if (row === undefined) continue;
          row.clearing = clearing;
          open.delete(keyOf(clearing));
        }
      }
      const now = performance.now();
      if (now - last >= PROGRESS_EVERY_MS) {
        last = now;
        const at = page.length === 0 ? 0 : page[page.length - 1]!.position;
        const share = head > 0 ? ` (${Math.min(100, Math.floor((at / head) * 100))} % of the log)` : '';
        io.stderr.write(`alerts export: ${events} events read${share}, ${rows.length} flags so far\n`);
      }
    });
  } finally {
    await store.close();
  }
  const kept = values.status === undefined ? rows : rows.filter((r) => (r.clearing === null ? 'standing' : 'cleared') === values.status);
  const text = alertsToCsv(kept);
  if (values.out !== undefined) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(values.out, text, { mode: 0o600 });
  } else await writeAll(io.stdout, text);
  io.stderr.write(
    `alerts export: ${kept.length} flags of ${from} to ${to} from ${events} events (${((performance.now() - started) / 1000).toFixed(1)} s)\n`,
  );
  return 0;
}

const keyOf = (a: { personId: string; year: number; thresholdId: string }) => `${a.personId}\u0000${a.year}\u0000${a.thresholdId}`;

export function alertsToCsv(rows: readonly Row[]): string {
  const lines = [ALERT_CSV_HEADER.join(',')];
  for (const { position, flag: f, flaggedAtMs, clearing: c } of rows)
    lines.push(
      [
        String(position),
        f.personId,
        String(f.year),
        f.thresholdId,
        f.per,
        String(f.aboveFen),
        String(f.amountFen),
        f.category,
        f.region,
        f.dischargeDate,
        f.settlementId,
        new Date(flaggedAtMs).toISOString(),
        c === null ? 'standing' : 'cleared',
        c?.settlementId ?? '',
        c === null ? '' : String(c.amountFen),
      ]
        .map(csvField)
        .join(','),
    );
  return `${lines.join('\r\n')}\r\n`;
}
