// (d) Replay: the start-up rebuild of the read model (ReadModel.rebuild: read the whole log in
// pages, apply every event — policy registry, person states, the visits index with its
// fingerprints) against a plain read of the same log (store.readAll in pages of the same size,
// rows parsed into RecordedEvents, nothing applied). The log is realistic: the demo policy,
// person facts and DischargeSettled events computed by the domain (settle + evolvePerson)
// exactly as the handler would record them, written directly into the store's table.
// Two more figures bound any rebuild of this read model from this log on this thread, one from
// each side: reading alone (the rows read straight from the file — better-sqlite3, raw rows, only
// the columns a rebuild needs — and each event's data JSON.parse'd, nothing applied) and applying
// alone (the same events already parsed in memory, applied to a fresh ReadModel, nothing read).
// A rebuild pays both, so it is slower than either; they show how far (d)'s target is from what
// each half costs on the machine at hand.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { dist, dischargeFor, loadDemoPolicy, personFacts, personId, removeDir, scaled, tempDir } from './common.js';

const { evolvePerson, initialPersonState, settle, settlementIdFor, toSettledData, validatePolicy } = await import(
  dist('libs/domain/src/index.js')
);
const { SqliteEventStore } = await import(dist('libs/event-store-sqlite/src/index.js'));
const { ReadModel, fingerprintOf } = await import(dist('apps/medaid/src/shared/read-model.js'));

const PAGE = 10_000;

/** Writes `total` events (policy, facts, settlements round-robin over persons); returns the count. */
export async function generateLog(path, total, persons, { personMajor = false } = {}) {
  const policy = validatePolicy(loadDemoPolicy());
  if (!policy.ok) throw new Error(policy.error.message);
  const store = await SqliteEventStore.open({ path }); // creates the schema
  await store.close();
  const db = new Database(path);
  db.pragma('cache_size = -262144'); // 256 MiB for the bulk load only (random event ids make index inserts scattered)
  const insert = db.prepare(
    'INSERT INTO events (stream_id, revision, event_id, type, data, metadata, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const states = new Array(persons);
  const revisions = new Int32Array(persons).fill(-1);
  let written = 0;
  const now = Date.now();
  const put = (stream, revision, type, data) => {
    insert.run(
      stream,
      revision,
      randomUUID(),
      type,
      JSON.stringify(data),
      JSON.stringify({ actor: { kind: 'anonymous', id: 'anonymous' }, correlationId: randomUUID() }),
      now + written,
    );
    written++;
  };
  db.transaction(() => {
    put('policy-demo-county', 0, 'PolicyPublished', { policy: policy.value });
    for (let p = 0; p < persons && written < total; p++) {
      let state = initialPersonState();
      for (const f of personFacts(p)) {
        if (written >= total) break;
        const event =
          f.type === 'AssignCategory'
            ? { type: 'CategoryAssigned', data: { personId: f.personId, category: f.category, validFrom: f.validFrom, validTo: null } }
            : {
                type: 'ApprovalGranted',
                data: { personId: f.personId, approvalNo: f.approvalNo, validFrom: f.validFrom, validTo: f.validTo },
              };
        put(`person-${personId(p)}`, ++revisions[p], event.type, event.data);
        state = evolvePerson(state, event);
      }
      states[p] = state;
    }
    const settle1 = (n, p) => {
      const d = dischargeFor(n, p, 'r');
      // The fingerprint as the service records it (SHA-256 of the canonical discharge), not the canonical form itself.
      const r = settle(d, policy.value, settlementIdFor(d.hospitalId, d.visitId, 1), states[p], fingerprintOf(d));
      if (!r.ok) throw new Error(`settle: ${r.error.message}`);
      const data = toSettledData(r.value);
      put(`person-${personId(p)}`, ++revisions[p], 'DischargeSettled', data);
      states[p] = evolvePerson(states[p], { type: 'DischargeSettled', data });
    };
    if (!personMajor) {
      for (let n = 0; written < total; n++) settle1(n, n % persons);
    } else {
      // The same settlements (n = p, p + persons, p + 2·persons, …), one person after another: one person's state in memory at a time.
      const settlements = total - written;
      for (let p = 0; p < persons; p++) {
        for (let n = p; n < settlements; n += persons) settle1(n, p);
        states[p] = undefined;
      }
    }
  }).immediate();
  const bytes = db.prepare('SELECT SUM(LENGTH(data) + LENGTH(metadata)) FROM events').pluck().get();
  db.close();
  return { written, bytes };
}

async function plainRead(store) {
  let n = 0;
  let position = 0;
  for (;;) {
    const page = await store.readAll({ fromPosition: position, maxCount: PAGE });
    n += page.length;
    if (page.length < PAGE) return n;
    position = page[page.length - 1].position;
  }
}

/** Events/s of reading alone: each row's stream, revision, position, type and data read, the data parsed. */
function readingAlone(path, expected) {
  const db = new Database(path, { readonly: true });
  try {
    const rows = db
      .prepare('SELECT position, stream_id, revision, type, data FROM events WHERE position > ? ORDER BY position LIMIT ?')
      .raw();
    const t = performance.now();
    let n = 0;
    let position = 0;
    let sink = 0;
    for (;;) {
      const page = rows.all(position, PAGE);
      for (const row of page) sink += JSON.parse(row[4]) === null ? 0 : 1;
      n += page.length;
      if (page.length < PAGE) break;
      position = page[page.length - 1][0];
    }
    if (n !== expected || sink !== expected) throw new Error(`reading alone read ${n} events (${sink} parsed), expected ${expected}`);
    return (n / (performance.now() - t)) * 1000;
  } finally {
    db.close();
  }
}

/** Events/s of applying alone: every event read and parsed first, then applied to a fresh ReadModel. */
function applyingAlone(path, expected) {
  const db = new Database(path, { readonly: true });
  let events;
  try {
    events = db.prepare('SELECT position, stream_id, revision, type, data FROM events ORDER BY position').raw().all();
  } finally {
    db.close();
  }
  for (const e of events) e[4] = JSON.parse(e[4]);
  const model = new ReadModel();
  const t = performance.now();
  for (const e of events) model.apply(e[1], e[2], e[0], e[3], e[4]);
  const rate = (events.length / (performance.now() - t)) * 1000;
  if (model.eventCount !== expected) throw new Error(`applied ${model.eventCount} events, expected ${expected}`);
  return rate;
}

export async function benchReplay() {
  const total = scaled('BENCH_REPLAY_EVENTS', 200_000, 2_000);
  const persons = scaled('BENCH_REPLAY_PERSONS', 20_000, 100);
  const dir = tempDir('replay');
  try {
    const path = join(dir, 'events.sqlite');
    const genStart = performance.now();
    const { written, bytes } = await generateLog(path, total, persons);
    const genMs = performance.now() - genStart;
    const store = await SqliteEventStore.open({ path });
    // Sandwich: plain read, rebuild, plain read — the baseline is the mean of the reads either
    // side, so a change of machine load during the run shows up as their spread.
    const plain = [];
    let rebuildRate;
    let model;
    try {
      const timedPlain = async () => {
        const t = performance.now();
        const read = await plainRead(store);
        if (read !== written) throw new Error(`plain read saw ${read} events, expected ${written}`);
        plain.push((read / (performance.now() - t)) * 1000);
      };
      await timedPlain();
      model = new ReadModel();
      const t = performance.now();
      const applied = await model.rebuild(store, PAGE);
      rebuildRate = (applied / (performance.now() - t)) * 1000;
      if (applied !== written || model.eventCount !== written) throw new Error(`rebuild applied ${applied} events, expected ${written}`);
      await timedPlain();
    } finally {
      await store.close();
    }
    const readAloneRate = readingAlone(path, written);
    const applyAloneRate = applyingAlone(path, written);
    return {
      rate: rebuildRate,
      plainRate: (plain[0] + plain[1]) / 2,
      readAloneRate,
      applyAloneRate,
      notes:
        `${written} events (${(bytes / written).toFixed(0)} B JSON each, generated in ${(genMs / 1000).toFixed(1)} s) of ` +
        `${model.persons.size} persons, ${model.visits.size} visits; pages of ${PAGE}; plain read before/after the rebuild: ` +
        `${plain.map((x) => Math.round(x).toLocaleString('en-US')).join(' / ')} events/s (mean is the baseline)`,
    };
  } finally {
    removeDir(dir);
  }
}
