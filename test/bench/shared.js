// (i) Several instances on one shared store (`serve --shared`): settlements/s over HTTP through one,
// two and three instances on a fresh PostgreSQL database and on the EventStoreDB PROTOCOL TEST
// DOUBLE (in a process of its own; NOT EventStoreDB: its figures say what the service and the
// adapter cost over gRPC against an in-memory JavaScript server, nothing about a real cluster),
// beside a bare node-postgres insert loop of rows of the same size on the same server, same
// concurrency (the floor of one durable commit per row there). Then the conflict-retry rate: 50
// settlements of one person at once, spread over three instances on PostgreSQL.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import pg from 'pg';
import { NODE_FLAGS, ROOT, dischargeFor, freePort, onCleanup, pool, removeDir, scaled, setting, startServer, tempDir } from './common.js';
import { seedPersons } from './http.js';

const BIN = join(ROOT, 'bin/medaid.js');
const ADMIN_URL = process.env.MEDAID_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

async function admin(statement) {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** A fresh database; its URL and how to drop it. */
async function database(label) {
  const name = `medaid_bench_${label}_${process.pid}`;
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const drop = () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  const forget = onCleanup(() => void drop().catch(() => {}));
  return {
    url: url.toString(),
    drop: async () => {
      forget();
      await drop();
    },
  };
}

/** `npm run esdb-double` in a process of its own. */
async function esdbDouble() {
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'dist/test/esdb-double/main.js'), '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const forget = onCleanup(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  for (let i = 0; i < 1_000 && !out.includes('listening:'); i++) await new Promise((r) => setTimeout(r, 10));
  return {
    url: `esdb://127.0.0.1:${port}?tls=false`,
    drop: async () => {
      forget();
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

async function post(base, body) {
  const r = await fetch(`${base}/v1/settlements`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

async function metricSum(bases, pattern) {
  let sum = 0;
  for (const base of bases) {
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const m of text.matchAll(pattern)) sum += Number(m[1]);
  }
  return sum;
}

/** n instances `--shared` on the store at url; fn gets their base URLs. */
async function withInstances(n, url, fn) {
  const dirs = Array.from({ length: n }, (_, i) => tempDir(`shared${i}`));
  const servers = [];
  try {
    for (const dir of dirs) {
      const port = await freePort();
      servers.push(
        await startServer(
          'medaid --shared',
          [...NODE_FLAGS, BIN, 'serve', '--data', join(dir, 'data'), '--port', String(port), '--quiet', '--store', url, '--shared'],
          `http://127.0.0.1:${port}/ready`,
          60_000,
        ),
      );
      servers[servers.length - 1].base = `http://127.0.0.1:${port}`;
    }
    return await fn(servers.map((s) => s.base));
  } finally {
    for (const s of servers) await s.stop();
    dirs.forEach(removeDir);
  }
}

/** Settlements/s of `count` new discharges of `persons` persons, spread round-robin over the instances. */
async function settleRate(bases, count, persons, concurrency, prefix) {
  await seedPersons(bases[0], persons);
  const warm = Math.min(200, Math.floor(count / 10));
  await pool(warm, concurrency, (i) => post(bases[i % bases.length], dischargeFor(i, i % persons, `${prefix}w`)));
  const failed = [];
  const started = performance.now();
  await pool(count, concurrency, async (i) => {
    for (let attempt = 0; ; attempt++) {
      const r = await post(bases[i % bases.length], dischargeFor(i, i % persons, `${prefix}m`));
      if (r.status === 201) return;
      if (r.status !== 503 || attempt > 20) return void failed.push(r.status);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  if (failed.length > 0) throw new Error(`${failed.length} settlements failed (${[...new Set(failed)].join(', ')})`);
  return count / seconds;
}

/** Rows of `bytes` JSON inserted one per transaction, `concurrency` at a time: the server's durable-commit floor. */
async function bareInsertRate(url, count, concurrency, bytes) {
  const client = new pg.Pool({ connectionString: url, max: concurrency });
  client.on('error', () => {}); // an idle connection ended by the server (the database dropped after)
  try {
    await client.query('CREATE TABLE bare_events (position bigserial PRIMARY KEY, stream_id text NOT NULL, data text NOT NULL)');
    const data = JSON.stringify({ pad: 'x'.repeat(Math.max(0, bytes - 10)) });
    const started = performance.now();
    await pool(count, concurrency, (i) =>
      client.query('INSERT INTO bare_events (stream_id, data) VALUES ($1, $2)', [`person-${i % 500}`, data]),
    );
    return count / ((performance.now() - started) / 1000);
  } finally {
    await client.end();
  }
}

export async function benchShared() {
  const count = scaled('BENCH_SHARED_SETTLEMENTS', 3_000, 100);
  const persons = scaled('BENCH_SHARED_PERSONS', 500, 20);
  const concurrency = setting('BENCH_SHARED_CONCURRENCY', 48);
  const out = { postgres: {}, double: {}, count, persons, concurrency };
  for (const n of [1, 2, 3]) {
    const db = await database(`i${n}`);
    try {
      out.postgres[n] = await withInstances(n, db.url, (bases) => settleRate(bases, count, persons, concurrency, `pg${n}-`));
      process.stderr.write(`[(i) ${n} on PostgreSQL: ${Math.round(out.postgres[n])}/s] `);
    } finally {
      await db.drop();
    }
    const double = await esdbDouble();
    try {
      out.double[n] = await withInstances(n, double.url, (bases) =>
        settleRate(bases, Math.ceil(count / 3), persons, concurrency, `es${n}-`),
      );
    } finally {
      await double.drop();
    }
  }
  // the baseline: the same number of rows of the size of a settlement's event, on the same server
  const bare = await database('bare');
  try {
    out.bare = await bareInsertRate(bare.url, count, Math.min(concurrency, 20), 1_000);
  } finally {
    await bare.drop();
  }
  // conflicts: 50 settlements of one person at once over three instances, for 10 persons in turn
  const hot = await database('hot');
  try {
    out.conflicts = await withInstances(3, hot.url, async (bases) => {
      await seedPersons(bases[0], 10);
      let contended = 0;
      for (let p = 0; p < 10; p++) {
        await pool(50, 50, async (i) => {
          const r = await post(bases[i % 3], dischargeFor(10_000 + p * 50 + i, p, 'hot'));
          if (r.status === 503) contended++;
        });
      }
      const retries = await metricSum(bases, /^medaid_decide_retries_total (\d+)$/gm);
      return { settlements: 500, retries, contended };
    });
  } finally {
    await hot.drop();
  }
  return out;
}
