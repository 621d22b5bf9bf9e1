// (h) Start-up and memory with a long history: the service on a generated log of 1,000,000 and
// 10,000,000 events (BENCH_STARTUP_EVENTS, comma-separated; one person per 10 events), each
// against the floor — a process that opens the same SQLite file and reads its last 1,000 events.
// Measured, from the spawn of the process: time to /ready after a clean stop, and after kill -9
// in the middle of an HTTP load; resident memory at /ready and its peak while serving (c)'s load
// (autocannon, 50 connections). The logs and the data directories made from them are cached
// under .bench-cache/ (ignored by git): generating 10M events and posting them to the ledger once
// take a while; later runs reuse them (each run adds its load's settlements to them). The logs
// hold each person's settlements together (generateLog's person-major order), so that making
// 10M events keeps one person's state in memory at a time.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_FLAGS, ROOT, freePort, sleep } from './common.js';

const BIN = join(ROOT, 'bin/medaid.js');
const CACHE = join(ROOT, '.bench-cache');
const LOAD = join(ROOT, 'test/bench/http-load.js');
/** Preparing a data directory reads the whole log once and posts it to the ledger: allow an hour for 10M. */
const PREPARE_TIMEOUT_MS = 3_600_000;

function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rssMb: Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024, peakMb: Number(/VmHWM:\s+(\d+)/.exec(status)[1]) / 1024 };
  } catch {
    return { rssMb: NaN, peakMb: NaN };
  }
}

function run(args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')} exited ${code}: ${err}`))));
  });
}

/** The service on dir: resolves at /ready with the time from spawn and its memory then. */
async function startService(dir, timeoutMs = 120_000) {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [...NODE_FLAGS, BIN, 'serve', '--data', dir, '--port', String(port), '--quiet', '--no-demo-policy'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`medaid exited during start-up: ${err}`);
    try {
      const r = await fetch(`${url}/ready`);
      const body = await r.json();
      if (r.status === 200) {
        const readyMs = performance.now() - t0;
        return { child, port, url, readyMs, ready: body, memory: memoryOf(child.pid), exited, stderr: () => err };
      }
    } catch {
      // not listening yet
    }
    if (performance.now() - t0 > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`medaid not ready in ${timeoutMs} ms: ${err}`);
    }
    await sleep(10);
  }
}

async function stop(service, signal = 'SIGTERM') {
  service.child.kill(signal);
  const timer = setTimeout(() => service.child.kill('SIGKILL'), 120_000);
  await service.exited;
  clearTimeout(timer);
}

/** The generated log of `events` events, made once. */
async function logOf(events) {
  const path = join(CACHE, `log-${events}.sqlite`);
  if (!existsSync(`${path}.done`)) {
    mkdirSync(CACHE, { recursive: true });
    rmSync(path, { force: true }); // an interrupted generation is started again
    await run([
      '--max-old-space-size=8192',
      join(ROOT, 'test/fixtures/generate-log.mjs'),
      path,
      String(events),
      String(Math.max(100, Math.round(events / 10))),
      'person-major',
    ]);
    writeFileSync(`${path}.done`, '');
  }
  return path;
}

/** A data directory on the log, opened once (tags indexed, decision snapshot written) and its ledger posted. */
async function dataDirOf(events) {
  const dir = join(CACHE, `h-${events}`);
  if (existsSync(join(dir, 'prepared'))) return dir;
  mkdirSync(dir, { recursive: true });
  copyFileSync(await logOf(events), join(dir, 'events.sqlite'));
  const service = await startService(dir, PREPARE_TIMEOUT_MS);
  const deadline = performance.now() + PREPARE_TIMEOUT_MS;
  for (;;) {
    const ready = await (await fetch(`${service.url}/ready`)).json();
    if (ready.ledger.behind === 0 || performance.now() > deadline) break;
    await sleep(1_000);
  }
  await stop(service);
  writeFileSync(join(dir, 'prepared'), '');
  return dir;
}

/** The floor: a process that opens the file and reads its last 1,000 events (parsed). */
async function floor(eventsPath) {
  const script = `
    const t0 = Number(process.argv[1]);
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(process.argv[2], { readonly: true });
    const rows = db.prepare('SELECT position, stream_id, revision, type, data FROM events ORDER BY position DESC LIMIT 1000').all();
    for (const r of rows) r.data = JSON.parse(r.data);
    const s = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8');
    process.stdout.write(JSON.stringify({ rows: rows.length, at: performance.timeOrigin + performance.now() - t0, rssMb: Number(/VmRSS:\\s+(\\d+)/.exec(s)[1]) / 1024 }));`;
  const t0 = performance.timeOrigin + performance.now();
  const out = JSON.parse(await run([...NODE_FLAGS, '--input-type=module', '-e', script, String(t0), eventsPath]));
  if (out.rows !== 1000) throw new Error(`floor read ${out.rows} rows`);
  return { ms: out.at, rssMb: out.rssMb };
}

/** (c)'s load against the service for `seconds`, sampling its memory; resolves with the load's summary and the peak. */
async function loadWhileSampling(service, seconds, prefix, persons, overallRate) {
  const options = { port: service.port, connections: 50, seconds, warmupSeconds: 1, persons, prefix, overallRate };
  let peakMb = 0;
  const sampler = setInterval(() => (peakMb = Math.max(peakMb, memoryOf(service.child.pid).rssMb)), 100);
  try {
    const out = await run([...NODE_FLAGS, LOAD, JSON.stringify(options)]);
    return { load: JSON.parse(out.trim().split('\n').pop()), peakMb };
  } finally {
    clearInterval(sampler);
  }
}

export async function benchStartup() {
  const sizes = (process.env.BENCH_STARTUP_EVENTS ?? '1000000,10000000')
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
  const results = [];
  for (const events of sizes) {
    const dir = await dataDirOf(events);
    const persons = Math.max(100, Math.round(events / 10));
    const base = await floor(join(dir, 'events.sqlite'));
    // After a clean stop
    const clean = await startService(dir);
    const serving = await loadWhileSampling(clean, 10, `hs${Date.now()}-`, persons);
    await stop(clean);
    // After kill -9 in the middle of a load
    const loaded = await startService(dir);
    const killedRun = loadWhileSampling(loaded, 6, `hk${Date.now()}-`, persons);
    await sleep(4_000);
    loaded.child.kill('SIGKILL');
    await killedRun.catch(() => null);
    await loaded.exited;
    const killed = await startService(dir);
    await stop(killed);
    results.push({
      events,
      persons,
      floor: base,
      clean: { readyMs: clean.readyMs, rssMb: clean.memory.rssMb, tail: clean.ready.rebuilt.events },
      serving: { peakMb: serving.peakMb, rate: serving.load.rate, p99: serving.load.p99 },
      killed: { readyMs: killed.readyMs, rssMb: killed.memory.rssMb, tail: killed.ready.rebuilt.events },
    });
  }
  return results;
}
