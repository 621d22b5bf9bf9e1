// Entry of the report thread (started by ReportThread): builds year reports from the report
// projection in DIR/ledger.sqlite on a read-only connection of its own, so that a report over a
// province's year (millions of rows) never stalls the thread that answers settlements. One
// report at a time; each in one read transaction.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { FromReport, ReportWorkerData, ToReport } from './report-thread.js';
import { SqliteJournal } from './sqlite-journal.js';

const data = workerData as Partial<ReportWorkerData> | null;
if (isMainThread || parentPort === null || data?.medaidReport !== true || typeof data.path !== 'string') {
  throw new Error('report.worker.js runs only as the report thread (see ReportThread)');
}
const port = parentPort;
const reply = (message: FromReport): void => port.postMessage(message);

let journal: SqliteJournal | undefined;
port.on('message', (message: ToReport) => {
  if (message.type === 'close') {
    journal?.close();
    port.close();
    return;
  }
  try {
    journal ??= SqliteJournal.open(data.path!, { readonly: true });
    const report = journal.report.yearReport(message.year);
    reply({ type: 'report', id: message.id, json: JSON.stringify(report) });
  } catch (error) {
    reply({ type: 'failed', id: message.id, message: String((error as Error)?.message ?? error) });
  }
});
