// `POST /v1/simulations`: policy impact simulations (whatif.ts) run as jobs of the service, one at
// a time, each on a thread of its own (simulation-worker.ts) that reads the log with its own
// reader, so settling is not held up. A job's progress is kept in memory; its result (or failure)
// is also written to DIR/simulations/{id}.json, so GET /v1/simulations/{id} answers after a
// restart too. A job still running when the service stops is lost (run it again).
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Policy } from '#domain';
import type { SimulationMessage, SimulationWork } from './simulation-worker.js';
import type { WhatIfOptions, WhatIfResult } from './whatif.js';

/** Queued and running jobs at most; beyond, a new one is refused (429) until one finishes. */
export const MAX_PENDING_SIMULATIONS = 10;
/** Finished jobs kept in memory; older ones are read from their file. */
const KEPT_IN_MEMORY = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface SimulationJob {
  simulationId: string;
  status: 'queued' | 'running' | 'done' | 'failed';
  requestedBy: { kind: string; id: string };
  requestedAtMs: number;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  request: {
    year: number;
    region: string;
    drafts: Array<{ policyId: string; version: number; name: string | null }>;
    thresholdsFen: number[];
    top: number;
  };
  progress: { eventsRead: number; position: number; head: number | null };
  result: WhatIfResult | null;
  error: string | null;
}

export class SimulationJobs {
  private readonly jobs = new Map<string, SimulationJob>();
  private readonly queue: Array<{ job: SimulationJob; work: SimulationWork }> = [];
  private running: Worker | null = null;
  private closed = false;

  constructor(
    private readonly dataDir: string,
    private readonly storeUrl: string | undefined,
    /** Worker threads need the built file (the service runs from dist/). */
    private readonly workerUrl = new URL('./simulation-worker.js', import.meta.url),
  ) {}

  get pending(): number {
    return this.queue.length + (this.running === null ? 0 : 1);
  }

  /** Queues a simulation; null when MAX_PENDING_SIMULATIONS are already queued or running. */
  submit(drafts: Policy[], options: WhatIfOptions, requestedBy: { kind: string; id: string }, nowMs: number): SimulationJob | null {
    if (this.closed || this.pending >= MAX_PENDING_SIMULATIONS) return null;
    const job: SimulationJob = {
      simulationId: randomUUID(),
      status: 'queued',
      requestedBy,
      requestedAtMs: nowMs,
      startedAtMs: null,
      finishedAtMs: null,
      request: {
        year: options.year,
        region: options.region,
        drafts: drafts.map((d) => ({ policyId: d.policyId, version: d.version, name: d.name ?? null })),
        thresholdsFen: options.thresholdsFen,
        top: options.topChanges,
      },
      progress: { eventsRead: 0, position: 0, head: null },
      result: null,
      error: null,
    };
    this.remember(job);
    this.queue.push({ job, work: { dataDir: this.dataDir, storeUrl: this.storeUrl, drafts, options } });
    this.next();
    return job;
  }

  /** A job by id: in memory, else its file; null when there is none. */
  get(simulationId: string): SimulationJob | null {
    const known = this.jobs.get(simulationId);
    if (known !== undefined) return known;
    if (!UUID.test(simulationId)) return null;
    try {
      return JSON.parse(readFileSync(this.fileOf(simulationId), 'utf8')) as SimulationJob;
    } catch {
      return null;
    }
  }

  /** Stops the running job (it is lost) and refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    await this.running?.terminate();
  }

  private next(): void {
    if (this.running !== null || this.closed) return;
    const item = this.queue.shift();
    if (item === undefined) return;
    const { job, work } = item;
    job.status = 'running';
    job.startedAtMs = Date.now();
    const worker = new Worker(this.workerUrl, { workerData: work });
    this.running = worker;
    const finish = (status: 'done' | 'failed', error: string | null, result: WhatIfResult | null) => {
      if (job.status !== 'running') return;
      Object.assign(job, { status, error, result, finishedAtMs: Date.now() });
      this.save(job);
      this.running = null;
      this.next();
    };
    worker.on('message', (m: SimulationMessage) => {
      if (m.kind === 'progress') job.progress = { eventsRead: m.events, position: m.position, head: m.head };
      else if (m.kind === 'done') finish('done', null, m.result as WhatIfResult);
      else finish('failed', m.message, null);
    });
    worker.on('error', () => finish('failed', 'the simulation stopped unexpectedly', null));
    worker.on('exit', () => finish('failed', 'the simulation stopped before it finished', null));
  }

  private remember(job: SimulationJob): void {
    this.jobs.set(job.simulationId, job);
    if (this.jobs.size <= KEPT_IN_MEMORY) return;
    for (const [id, j] of this.jobs) {
      if (this.jobs.size <= KEPT_IN_MEMORY) break;
      if (j.status === 'done' || j.status === 'failed') this.jobs.delete(id);
    }
  }

  private fileOf(simulationId: string): string {
    return join(this.dataDir, 'simulations', `${simulationId}.json`);
  }

  private save(job: SimulationJob): void {
    try {
      mkdirSync(join(this.dataDir, 'simulations'), { recursive: true });
      const path = this.fileOf(job.simulationId);
      writeFileSync(`${path}.tmp`, JSON.stringify(job));
      renameSync(`${path}.tmp`, path);
    } catch {
      // kept in memory; the file is for later
    }
  }
}
