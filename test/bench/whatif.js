// (j) Policy impact simulation (`medaid whatif`, issue 15), on a generated log (the demo policy,
// person facts, settlements of 2012 and 2013 computed by the domain; BENCH_WHATIF_EVENTS, default
// 1,250,000 events, about 1,000,000 settlements of 2013; cached under .bench-cache/):
//   - the command end to end (its own process: read the log, replay 2013 under the live policy as
//     the draft, compare) against a plain read of the same log (SqliteEventStore.readAll pages);
//   - the replay alone, in memory (the first BENCH_WHATIF_MEMORY_EVENTS events, default 200,000,
//     already read and parsed), against the pure engine: settle() on the same in-scope discharges.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_POLICY_PATH, NODE_FLAGS, ROOT, dist, loadDemoPolicy, scaled } from './common.js';

const BIN = join(ROOT, 'bin/medaid.js');
const CACHE = join(ROOT, '.bench-cache');

function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    child.on('exit', (code) => (code === 0 ? resolve({ out, err }) : reject(new Error(`${args.join(' ')} exited ${code}: ${err}`))));
  });
}

async function logDir(events) {
  const dir = join(CACHE, `whatif-${events}`);
  const path = join(dir, 'events.sqlite');
  if (!existsSync(`${path}.done`)) {
    mkdirSync(dir, { recursive: true });
    rmSync(path, { force: true });
    await run([
      '--max-old-space-size=8192',
      join(ROOT, 'test/fixtures/generate-log.mjs'),
      path,
      String(events),
      String(Math.round(events / 10)),
    ]);
    writeFileSync(`${path}.done`, '');
  }
  return dir;
}

export async function benchWhatIf() {
  const events = scaled('BENCH_WHATIF_EVENTS', 1_250_000, 10_000);
  const memoryEvents = Math.min(events, scaled('BENCH_WHATIF_MEMORY_EVENTS', 200_000, 10_000));
  const dir = await logDir(events);
  const { SqliteEventStore } = await import(dist('libs/event-store-sqlite/src/index.js'));
  const { WhatIf } = await import(dist('apps/medaid/src/simulation/whatif.js'));
  const domain = await import(dist('libs/domain/src/index.js'));
  const policy = domain.validatePolicy(loadDemoPolicy());
  if (!policy.ok) throw new Error(policy.error.message);

  // the plain read: every page of the log, parsed (what any replay from the store must at least do)
  const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const memory = [];
  let t = performance.now();
  let read = 0;
  try {
    for (let from = 0; ;) {
      const page = await store.readAll({ fromPosition: from, maxCount: 5_000 });
      read += page.length;
      for (const e of page) if (memory.length < memoryEvents) memory.push(e);
      if (page.length < 5_000) break;
      from = page[page.length - 1].position;
    }
  } finally {
    await store.close();
  }
  const plainRate = read / ((performance.now() - t) / 1000);

  // the command, end to end, in its own process
  t = performance.now();
  const { out } = await run([
    ...NODE_FLAGS,
    BIN,
    'whatif',
    '--data',
    dir,
    '--year',
    '2013',
    '--draft',
    DEMO_POLICY_PATH,
    '--format',
    'json',
  ]);
  const commandSeconds = (performance.now() - t) / 1000;
  const result = JSON.parse(out);
  const identical = result.drafts[0].identicalSettlements === result.actual.settlements;

  // the replay alone, in memory, against settle() on the same discharges
  const whatIf = new WhatIf([policy.value], { year: 2013, region: policy.value.region, thresholdsFen: [], topChanges: 20 });
  t = performance.now();
  for (const e of memory) whatIf.event(e);
  const replayed = whatIf.result();
  const replaySeconds = (performance.now() - t) / 1000;
  const discharges = memory.filter((e) => e.type === 'DischargeSettled' && e.data.year === 2013).map((e) => e.data.discharge);
  const state = domain.initialPersonState();
  t = performance.now();
  let paid = 0;
  for (let round = 0; round < 3; round++)
    for (const d of discharges) {
      const r = domain.settle(d, policy.value, 'bench', state, 'f');
      if (r.ok) paid += r.value.totals.fundPayFen;
    }
  const engineRate = (3 * discharges.length) / ((performance.now() - t) / 1000);
  return {
    events: read,
    plainRate,
    settlements: result.settledInScope,
    commandSeconds,
    commandRate: result.settledInScope / commandSeconds,
    identical,
    replayRate: replayed.settledInScope / replaySeconds,
    engineRate,
    memoryEvents: memory.length,
    notes:
      `log of ${read.toLocaleString('en-US')} events, ${result.settledInScope.toLocaleString('en-US')} settlements of 2013 in scope; ` +
      `the live policy as the draft reproduced ${identical ? 'every' : 'NOT every'} settlement; in memory: the first ${memory.length.toLocaleString('en-US')} events ` +
      `(${replayed.settledInScope.toLocaleString('en-US')} in scope), settle() over the same discharges ×3 (paid ${paid > 0 ? 'checked' : 'nothing'})`,
  };
}
