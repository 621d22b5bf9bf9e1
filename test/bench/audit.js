// (g) The auditor's commands against a plain read of the same log: `audit replay` (rebuild the
// journal and the read model into a fresh database and compare them with the live ones) and
// `audit verify` (every settlement recomputed, the chain, the balance and every payout checked),
// each as events/s over the whole log, and the ledger writer's catch-up (posting the log into the
// journal, durable) for reference. The log is test/bench/replay.js's generated one; the live
// journal is posted by the writer's own code and the read-model snapshot saved as the service does.
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { dist, removeDir, scaled, tempDir } from './common.js';
import { generateLog } from './replay.js';

const { SqliteEventStore } = await import(dist('libs/event-store-sqlite/src/index.js'));
const { PolicyFunds, SqliteJournal, postBatch } = await import(dist('libs/ledger/src/index.js'));
const { ReadModel } = await import(dist('apps/medaid/src/shared/read-model.js'));
const { snapshotRows } = await import(dist('apps/medaid/src/ledger/read-model-snapshot.js'));
const { Progress } = await import(dist('apps/medaid/src/ledger/audit-support.js'));
const { replayAudit } = await import(dist('apps/medaid/src/ledger/audit-replay.js'));
const { verifyAudit } = await import(dist('apps/medaid/src/ledger/audit-verify.js'));

const PAGE = 5_000; // the audit commands' page size
const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });

async function plainRead(store) {
  const t = performance.now();
  let n = 0;
  for (let position = 0; ;) {
    const page = await store.readAll({ fromPosition: position, maxCount: PAGE });
    n += page.length;
    if (page.length < PAGE) return { n, rate: (n / (performance.now() - t)) * 1000 };
    position = page[page.length - 1].position;
  }
}

export async function benchAudit() {
  const total = scaled('BENCH_AUDIT_EVENTS', 200_000, 2_000);
  const persons = scaled('BENCH_AUDIT_PERSONS', 20_000, 100);
  const dir = tempDir('audit');
  try {
    const { written } = await generateLog(join(dir, 'events.sqlite'), total, persons);
    const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
    const live = SqliteJournal.open(join(dir, 'ledger.sqlite'));
    let rebuilt;
    try {
      // The live projections, as the service leaves them: the journal posted page by page (durable),
      // and the read model's counters saved.
      const funds = new PolicyFunds();
      let t = performance.now();
      for (let position = 0; ;) {
        const page = await store.readAll({ fromPosition: position, maxCount: 1_000 });
        if (page.length > 0) postBatch(live, page, funds);
        if (page.length < 1_000) break;
        position = page[page.length - 1].position;
      }
      const postRate = (written / (performance.now() - t)) * 1000;
      const model = new ReadModel();
      await model.rebuild(store);
      live.writeSnapshot({ position: model.position, events: model.eventCount }, snapshotRows(model));

      // Sandwich: plain read, replay, plain read, verify, plain read; the baseline is their mean.
      const plain = [];
      const read = async () => {
        const r = await plainRead(store);
        if (r.n !== written) throw new Error(`plain read saw ${r.n} events, expected ${written}`);
        plain.push(r.rate);
      };
      await read();
      rebuilt = SqliteJournal.open(join(dir, 'rebuilt.sqlite'), { durable: false });
      t = performance.now();
      const replay = await replayAudit(store, live, rebuilt, { serviceRunning: false, progress: new Progress('replay', quiet, written) });
      const replayRate = (replay.events / (performance.now() - t)) * 1000;
      if (replay.differences.count !== 0)
        throw new Error(`replay found ${replay.differences.count} differences: ${replay.differences.listed[0]}`);
      await read();
      t = performance.now();
      const verify = await verifyAudit(store, live, { serviceRunning: false, progress: new Progress('verify', quiet, written) });
      const verifyRate = (verify.events / (performance.now() - t)) * 1000;
      if (verify.problems.count !== 0) throw new Error(`verify found ${verify.problems.count} problems: ${verify.problems.listed[0]}`);
      await read();
      return {
        replayRate,
        verifyRate,
        postRate,
        plainRate: plain.reduce((s, x) => s + x, 0) / plain.length,
        notes:
          `${written} events (${verify.settlements} settlements, ${persons} persons), ${verify.journal.entries} journal entries, ` +
          `${replay.snapshot?.rows ?? 0} read-model rows compared; plain reads around the runs: ` +
          `${plain.map((x) => Math.round(x).toLocaleString('en-US')).join(' / ')} events/s (mean is the baseline); ` +
          `ledger writer catch-up (pages of 1,000, synchronous=FULL) ${Math.round(postRate).toLocaleString('en-US')} events/s`,
      };
    } finally {
      rebuilt?.close();
      live.close();
      await store.close();
    }
  } finally {
    removeDir(dir);
  }
}
