// (b) Durable settlements through the application path without HTTP: SettleDischargeHandler
// (visit idempotency check, policy selection, decide, append with group commit, read-model
// update) on a fresh data directory, many settlements in flight across many persons. Baseline:
// a bare better-sqlite3 loop inserting the very same rows (same JSON payloads) with the same
// table and pragmas (WAL + synchronous=FULL) — one transaction per row (durability without
// group commit) and, for reference, all rows in one transaction (the ceiling of the disk + SQLite).
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { META, dist, dischargeFor, loadDemoPolicy, personFacts, pool, removeDir, scaled, setting, tempDir } from './common.js';

const { openRuntime } = await import(dist('apps/medaid/src/infrastructure/runtime.js'));
const { PublishPolicy, PublishPolicyHandler } = await import(dist('apps/medaid/src/commands/policies/policy.handlers.js'));
const { RecordPersonFact, RecordPersonFactHandler } = await import(dist('apps/medaid/src/commands/persons/person.handlers.js'));
const { SettleDischarge, SettleDischargeHandler } = await import(dist('apps/medaid/src/commands/settlements/settlement.handlers.js'));

/** The event store's own table (libs/event-store-sqlite/src/sqlite-event-store.ts, migrate()). */
export const EVENTS_DDL = `
  CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    stream_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT,
    created_ms INTEGER NOT NULL,
    UNIQUE (stream_id, revision)
  ) STRICT;`;

/** Publishes the demo policy and records every person's facts through the handlers. */
export async function seedRuntime(writer, persons, concurrency = 500) {
  const published = await new PublishPolicyHandler(writer).execute(new PublishPolicy(loadDemoPolicy(), META));
  if (!published.ok) throw new Error(`publish: ${published.error.message}`);
  const facts = new RecordPersonFactHandler(writer);
  await pool(persons, concurrency, async (p) => {
    for (const f of personFacts(p)) {
      const r = await facts.execute(new RecordPersonFact(f, META));
      if (!r.ok) throw new Error(`${f.type}: ${r.error.message}`);
    }
  });
}

/** Settles discharges [from, from + count) through the handler; returns the elapsed ms. */
async function settleMany(handler, from, count, persons, concurrency) {
  let failures = 0;
  let firstError;
  const start = performance.now();
  await pool(count, concurrency, async (i) => {
    const n = from + i;
    const r = await handler.execute(new SettleDischarge(dischargeFor(n, n % persons), META));
    if (!r.ok || !r.value.created) {
      failures++;
      firstError ??= r.ok ? 'duplicate' : r.error.message;
    }
  });
  const ms = performance.now() - start;
  if (failures > 0) throw new Error(`${failures} settlements failed, first: ${firstError}`);
  return ms;
}

function openBare(path) {
  const db = new Database(path);
  if (db.pragma('journal_mode = WAL', { simple: true }) !== 'wal') throw new Error('WAL refused');
  db.pragma('synchronous = FULL');
  db.exec(EVENTS_DDL);
  return db;
}

export async function benchStore() {
  const persons = scaled('BENCH_PERSONS', 2_000, 50);
  const count = scaled('BENCH_STORE_SETTLEMENTS', 50_000, 1_000);
  const warmup = Math.max(200, Math.round(count / 10));
  const concurrency = setting('BENCH_STORE_CONCURRENCY', 1_000);
  const perRowBudgetMs = scaled('BENCH_FSYNC_MS', 3_000, 300);
  const dir = tempDir('store');
  try {
    const runtime = await openRuntime(join(dir, 'data'));
    let ms;
    let stats;
    try {
      await seedRuntime(runtime.writer, persons);
      const handler = new SettleDischargeHandler(runtime.writer);
      await settleMany(handler, 10_000_000, warmup, persons, concurrency); // JIT warm-up, other visit ids
      const before = runtime.store.stats();
      ms = await settleMany(handler, 0, count, persons, concurrency);
      const after = runtime.store.stats();
      stats = { transactions: after.transactions - before.transactions, appends: after.committedAppends - before.committedAppends };
      // The ledger (a projection, on a thread of lower priority) may lag behind the acknowledged
      // settlements during the burst: how far, and how long it then takes to post the rest.
      const head = await runtime.store.headPosition();
      stats.ledgerLag = head - runtime.ledger.status().position;
      const t = performance.now();
      if (!(await runtime.ledger.writer.catchUp(300_000))) throw new Error('the ledger did not catch up in 300 s');
      stats.catchUpMs = performance.now() - t;
    } finally {
      await runtime.close();
    }

    // The very rows the handler wrote for the measured settlements.
    const src = new Database(join(dir, 'data', 'events.sqlite'), { readonly: true });
    const rows = src
      .prepare(
        "SELECT stream_id, revision, event_id, type, data, metadata, created_ms FROM events WHERE type = 'DischargeSettled' ORDER BY position DESC LIMIT ?",
      )
      .raw()
      .all(count)
      .reverse();
    src.close();
    const avgBytes = rows.reduce((s, r) => s + Buffer.byteLength(r[4]) + Buffer.byteLength(r[5] ?? ''), 0) / rows.length;

    // Bare loop 1: one transaction (one fsync) per row, for at most perRowBudgetMs.
    const db1 = openBare(join(dir, 'bare-per-row.sqlite'));
    const ins1 = db1.prepare(
      'INSERT INTO events (stream_id, revision, event_id, type, data, metadata, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    let perRow = 0;
    const t1 = performance.now();
    while (perRow < rows.length && performance.now() - t1 < perRowBudgetMs) ins1.run(...rows[perRow++]);
    const perRowMs = performance.now() - t1;
    db1.close();

    // Bare loop 2: every row in one transaction.
    const db2 = openBare(join(dir, 'bare-one-tx.sqlite'));
    const ins2 = db2.prepare(
      'INSERT INTO events (stream_id, revision, event_id, type, data, metadata, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const t2 = performance.now();
    db2
      .transaction(() => {
        for (const r of rows) ins2.run(...r);
      })
      .immediate();
    const oneTxMs = performance.now() - t2;
    db2.close();

    return {
      rate: (count / ms) * 1000,
      sustainedRate: (count / (ms + stats.catchUpMs)) * 1000,
      perRowRate: (perRow / perRowMs) * 1000,
      oneTxRate: (rows.length / oneTxMs) * 1000,
      notes:
        `${count} settlements (after ${warmup} warm-up) of ${persons} persons, ${concurrency} in flight; ` +
        `${stats.transactions} group commits, ${(stats.appends / Math.max(1, stats.transactions)).toFixed(0)} appends each; ` +
        `ledger ${stats.ledgerLag} events behind at the end, caught up ${stats.catchUpMs.toFixed(0)} ms later; ` +
        `event ≈ ${avgBytes.toFixed(0)} B JSON; per-row loop: ${perRow} rows in ${perRowMs.toFixed(0)} ms`,
    };
  } finally {
    removeDir(dir);
  }
}
