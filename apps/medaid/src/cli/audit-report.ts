// `medaid audit report --year Y`: the year report (医疗救助 年度统计) an auditor writes from the log
// alone. It reads the whole log through the event-store port, in global order and in pages, folds
// it with the domain's report projection (libs/domain/src/report.ts) and prints one format.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ReportState, applyReportEvent, buildYearReport, initialReportState, parseReportYear } from '#domain';
import { EventStore } from '#event-store';
import { followLog } from '../ledger/audit-support.js';
import { openEventStore, storeUrlFrom } from '../infrastructure/runtime.js';
import { reportToCsv, reportToTable } from './report-format.js';

export const AUDIT_REPORT_USAGE = `medaid audit report --year Y [--format table|csv|json] [--data DIR] [--store esdb://…|postgres://…]

  The settlement year's report from the event log: persons (人数) and person-times (人次), by
  beneficiary category and visit type, amounts by layer and fund, fund usage (资金使用率) and
  enrolment subsidies (资助参保). Only active (not reversed) settlements count. table (the
  default) shows 元; csv and json show integer fen. Progress goes to stderr every 2 s.
  --data DIR (default ./data, or $MEDAID_DATA) is the embedded store's directory; it is only
  read, so the service may be running on it. --store esdb://… (or $EVENTSTORE_CONNECTION_STRING)
  reads EventStoreDB/KurrentDB instead, --store postgres://… PostgreSQL.`;

const FORMATS = ['table', 'csv', 'json'] as const;
type Format = (typeof FORMATS)[number];
const PROGRESS_EVERY_MS = 2_000;

export interface AuditReportIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export async function runAuditReport(args: string[], io: AuditReportIo = process): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      year: { type: 'string' },
      format: { type: 'string', default: 'table' },
      data: { type: 'string', default: process.env.MEDAID_DATA ?? 'data' },
      store: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(`${AUDIT_REPORT_USAGE}\n`);
    return;
  }
  const year = parseReportYear(values.year ?? '');
  if (year === null)
    throw new Error(
      `--year must be a year from 2000 to 2100, not ${values.year === undefined ? '(missing)' : `"${values.year}"`}\n\n${AUDIT_REPORT_USAGE}`,
    );
  const format = values.format as Format;
  if (!FORMATS.includes(format)) throw new Error(`--format must be one of ${FORMATS.join(', ')}, not "${values.format}"`);

  const storeUrl = storeUrlFrom(values.store, process.env);
  const dataDir = resolve(values.data);
  // Opening the embedded store creates it: a mistyped --data must fail, not report an empty year.
  if (storeUrl === undefined && !existsSync(join(dataDir, 'events.sqlite')))
    throw new Error(`no event store in ${dataDir} (events.sqlite); give --data DIR`);
  const progress = progressReporter(io.stderr);
  const store = await openEventStore(dataDir, { storeUrl });
  let state: ReportState;
  try {
    progress.reading(`reading the log of ${storeUrl === undefined ? dataDir : 'the EventStoreDB store'}`);
    state = await foldLog(store, progress);
  } finally {
    await store.close();
  }
  progress.done(state);
  if (state.events === 0) progress.note('the log is empty');
  const report = buildYearReport(state, year);
  const text = format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : format === 'csv' ? reportToCsv(report) : reportToTable(report);
  await writeAll(io.stdout, text);
}

/**
 * Writes and waits for it; a reader that went away (`… | head`) ends the output quietly. The
 * listener stays: the stream emits 'error' after the write's callback, and the command ends here.
 */
export function writeAll(out: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((done, failed) => {
    const onError = (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? done() : failed(e));
    out.on('error', onError);
    out.write(text, (e) => (e ? onError(e) : done()));
  });
}

/** Folds the whole log, page by page in global order (the log's one follower, run once). */
export async function foldLog(store: EventStore, progress?: ProgressReporter): Promise<ReportState> {
  const state = initialReportState();
  const head = await store.headPosition();
  await followLog(store, Number.MAX_SAFE_INTEGER, (page) => {
    for (const e of page) applyReportEvent(state, e);
    progress?.page(state, head);
  });
  return state;
}

export interface ProgressReporter {
  note(message: string): void;
  /** The log is read from now on: the rate counts from here. */
  reading(message: string): void;
  page(state: ReportState, head: number): void;
  done(state: ReportState): void;
}

/**
 * One line on stderr at most every 2 s while the log is read (the reads are synchronous on the
 * embedded store, so a timer would never get to run: the time is checked after each page).
 */
function progressReporter(stderr: NodeJS.WritableStream): ProgressReporter {
  const started = performance.now();
  let readingSince = started;
  let last = started;
  const elapsed = () => ((performance.now() - started) / 1000).toFixed(1);
  const note = (message: string) => stderr.write(`audit report: ${message} (${elapsed()} s)\n`);
  return {
    note,
    reading(message) {
      note(message);
      readingSince = last = performance.now();
    },
    page(state, head) {
      const now = performance.now();
      if (now - last < PROGRESS_EVERY_MS) return;
      last = now;
      // Positions are contiguous on the embedded store and increasing on EventStoreDB: the share is a fair guide.
      const share = head > 0 ? ` (${Math.min(100, Math.floor((state.position / head) * 100))} % of the log)` : '';
      const rate = Math.round(state.events / ((now - readingSince) / 1000));
      stderr.write(`audit report: ${state.events} events read, position ${state.position}${share}, ${rate} events/s (${elapsed()} s)\n`);
    },
    done: (state) => stderr.write(`audit report: ${state.events} events read up to position ${state.position} (${elapsed()} s)\n`),
  };
}
