// A simulation job's thread (simulation-jobs.ts starts one per job): it opens its own reader of the
// event log, replays the year under the drafts (whatif.ts) and posts its progress and its result.
// On a thread of its own, a long replay never holds up the settlements the service is serving.
import { parentPort, workerData } from 'node:worker_threads';
import type { Policy } from '#domain';
import { openEventStore } from '../infrastructure/runtime.js';
import { followLog } from '../ledger/audit-support.js';
import { WhatIf, type WhatIfOptions } from './whatif.js';

export interface SimulationWork {
  dataDir: string;
  storeUrl: string | undefined;
  drafts: Policy[];
  options: WhatIfOptions;
}

export type SimulationMessage =
  | { kind: 'progress'; events: number; position: number; head: number }
  | { kind: 'done'; result: unknown }
  | { kind: 'failed'; message: string };

const work = workerData as SimulationWork;
const post = (m: SimulationMessage) => parentPort!.postMessage(m);
try {
  const store = await openEventStore(work.dataDir, { storeUrl: work.storeUrl });
  try {
    const head = await store.headPosition();
    const whatIf = new WhatIf(work.drafts, work.options);
    post({ kind: 'progress', events: 0, position: 0, head });
    await followLog(store, head, (page) => {
      for (const e of page) whatIf.event(e);
      post({ kind: 'progress', events: whatIf.events, position: page[page.length - 1]!.position, head });
    });
    post({ kind: 'done', result: whatIf.result() });
  } finally {
    await store.close();
  }
} catch (e) {
  post({ kind: 'failed', message: e instanceof Error ? e.message.slice(0, 300) : 'the simulation failed' });
}
