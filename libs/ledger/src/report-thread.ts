// Year reports built on a thread of their own (report.worker.ts), from the report projection on
// disk: the thread that answers requests only waits for the JSON. Started on the first report,
// then kept (unref'd: an idle thread does not keep the process alive). Requests run one at a
// time, in call order.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { YearReport } from '#domain';

export interface ReportWorkerData {
  medaidReport: true;
  path: string;
}
export type ToReport = { type: 'report'; id: number; year: number } | { type: 'close' };
export type FromReport = { type: 'report'; id: number; json: string } | { type: 'failed'; id: number; message: string };

export class ReportThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: YearReport) => void; reject: (e: Error) => void }>();

  /** `path`: DIR/ledger.sqlite, written by the journal's thread. */
  constructor(private readonly path: string) {}

  /** The year's report as of the report projection's checkpoint (its `basis.position`). */
  yearReport(year: number): Promise<YearReport> {
    const worker = this.started();
    const id = this.nextId++;
    return new Promise<YearReport>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref(); // keep the process alive while a report is being built
      worker.postMessage({ type: 'report', id, year } satisfies ToReport);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker === undefined) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.postMessage({ type: 'close' } satisfies ToReport);
    await exited;
  }

  private started(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = new Worker(workerScript(), { workerData: { medaidReport: true, path: this.path } satisfies ReportWorkerData });
    worker.unref();
    worker.on('message', (m: FromReport) => {
      const waiting = this.pending.get(m.id);
      if (waiting === undefined) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.type === 'report') waiting.resolve(JSON.parse(m.json) as YearReport);
      else waiting.reject(new Error(`year report: ${m.message}`));
    });
    const broken = (error: Error) => {
      if (this.worker === worker) this.worker = undefined; // the next report starts a new thread
      for (const w of this.pending.values()) w.reject(error);
      this.pending.clear();
    };
    worker.on('error', broken);
    worker.on('exit', () => broken(new Error('the report thread exited')));
    this.worker = worker;
    return worker;
  }
}

function workerScript(): URL {
  const here = import.meta.url;
  const script = here.endsWith('.ts')
    ? new URL('../../../dist/libs/ledger/src/report.worker.js', here)
    : new URL('./report.worker.js', here);
  if (!existsSync(fileURLToPath(script))) throw new Error(`report script ${fileURLToPath(script)} is missing: build first (npm run build)`);
  return script;
}
