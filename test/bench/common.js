// Shared helpers of the benchmark: configuration (BENCH_* env vars), clean-up of temp dirs and
// child processes, a deterministic workload (persons, categories, discharges of the demo
// policy's region) and the formatting of the result table.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DIST = join(ROOT, 'dist');
export const dist = (path) => new URL(`file://${join(DIST, path)}`).href;

// ---- configuration ----------------------------------------------------------------------------

/** Everything scales with BENCH_SCALE (default 1); BENCH_SCALE=0.1 is a quick smoke run. */
export const SCALE = Number(process.env.BENCH_SCALE ?? '1');
if (!(SCALE > 0)) throw new Error(`BENCH_SCALE must be a positive number, not ${process.env.BENCH_SCALE}`);

/** A count: $name if set, else the default times BENCH_SCALE (at least `min`). */
export function scaled(name, fallback, min = 1) {
  const raw = process.env[name];
  if (raw !== undefined && raw !== '') {
    const v = Number(raw);
    if (!(v >= 0)) throw new Error(`${name} must be a non-negative number, not ${raw}`);
    return v;
  }
  return Math.max(min, Math.round(fallback * SCALE));
}

/** A setting that does not scale (e.g. the number of HTTP connections). */
export function setting(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!(v >= 0)) throw new Error(`${name} must be a non-negative number, not ${raw}`);
  return v;
}

export function machine() {
  const list = cpus();
  return {
    cpu: `${list[0]?.model ?? 'unknown'} × ${list.length}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

// ---- clean-up: temp dirs and child processes, also on error and on SIGINT/SIGTERM ---------------

const dirs = new Set();
const children = new Set();
const hooks = new Set();

/**
 * Registers a synchronous clean-up step (e.g. stopping a broker the bench started), run by
 * cleanupAll — at the end, on error and on SIGINT/SIGTERM. Returns a function that unregisters it.
 */
export function onCleanup(fn) {
  hooks.add(fn);
  return () => hooks.delete(fn);
}

export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), `medaid-bench-${prefix}-`));
  dirs.add(dir);
  return dir;
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** Synchronous, so it can run from process.on('exit'). */
export function cleanupAll() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
  for (const fn of hooks) {
    hooks.delete(fn);
    try {
      fn();
    } catch (e) {
      console.error(`clean-up failed: ${e?.message ?? String(e)}`);
    }
  }
}

export async function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** Starts `node args…` (extra environment variables in `env`) and waits until GET readyUrl answers 200. */
export async function startServer(name, args, readyUrl, timeoutMs = 30_000, env = {}) {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.add(child);
  let err = '';
  child.stdout.on('data', () => {});
  child.stderr.on('data', (d) => {
    err = (err + d.toString()).slice(-4000);
  });
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited during start-up: ${err}`);
    try {
      const r = await fetch(readyUrl);
      await r.arrayBuffer();
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} did not become ready in ${timeoutMs} ms: ${err}`);
    await sleep(50);
  }
  return {
    pid: child.pid,
    stderr: () => err,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const result = await exited;
      clearTimeout(timer);
      children.delete(child);
      return result;
    },
  };
}

/**
 * The Node flags the service is started with everywhere (bin/medaid.js's shebang, npm start,
 * systemd, Docker); the baselines' processes get the same, so each pair runs alike.
 */
export const NODE_FLAGS = ['--max-semi-space-size=32'];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs fn(i) for i in [0, n) with at most `concurrency` calls in flight. */
export async function pool(n, concurrency, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
}

// ---- the workload -------------------------------------------------------------------------------

export const DEMO_POLICY_PATH = join(ROOT, 'apps/medaid/assets/demo-policy.json');
export const loadDemoPolicy = () => JSON.parse(readFileSync(DEMO_POLICY_PATH, 'utf8'));
export const REGION = '360827';
export const META = { actor: { kind: 'system', id: 'bench' }, correlationId: 'bench' };

/** mulberry32: a small deterministic PRNG, so every run settles the same workload. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick(rand, weighted) {
  let x = rand() * weighted.reduce((s, [, w]) => s + w, 0);
  for (const [v, w] of weighted) if ((x -= w) < 0) return v;
  return weighted[weighted.length - 1][0];
}

const CATEGORY_MIX = [
  [null, 40],
  ['dibao', 22],
  ['tekun', 10],
  ['sixin', 6],
  ['dibao_edge', 11],
  ['illness_poor', 11],
];

export const personId = (p) => `p${String(p).padStart(6, '0')}`;

/**
 * What is recorded about person p: an aid category (or none) and, for half of those whose
 * category requires an approval, an approval (审批表) — the other half settle with aid blocked.
 */
export function personFacts(p) {
  const rand = prng(0x9e3779b9 ^ (p * 2654435761));
  const category = pick(rand, CATEGORY_MIX);
  const approved = (category === 'dibao_edge' || category === 'illness_poor') && rand() < 0.5;
  const facts = [];
  if (category !== null) facts.push({ type: 'AssignCategory', personId: personId(p), category, validFrom: '2012-01-01' });
  if (approved)
    facts.push({ type: 'GrantApproval', personId: personId(p), approvalNo: `SP-${p}`, validFrom: '2012-01-01', validTo: '2013-12-31' });
  return facts;
}

const DIAGNOSES = ['C34.9', 'C16.9', 'N18.5', 'I63.9', 'I21.9', 'J18.9', 'K35.8', 'E11.9', 'I10', 'F20.0', 'O80', 'S72.0', 'J44.1'];
const pad2 = (n) => String(n).padStart(2, '0');

/** The n-th discharge of the workload for person p (a full Discharge, defaults applied). */
export function dischargeFor(n, p, visitPrefix = 'v') {
  const rand = prng(n * 7919 + 17);
  const visitType = pick(rand, [
    ['inpatient', 70],
    ['outpatient', 15],
    ['chronic_outpatient', 15],
  ]);
  const hospitalLevel =
    visitType === 'outpatient'
      ? pick(rand, [
          ['township', 60],
          ['county', 40],
        ])
      : pick(rand, [
          ['township', 30],
          ['county', 35],
          ['city', 20],
          ['province', 10],
          ['out_of_province', 5],
        ]);
  let totalFen;
  if (visitType === 'outpatient') totalFen = 2_000 + Math.floor(rand() * 40_000);
  else if (visitType === 'chronic_outpatient') totalFen = 20_000 + Math.floor(rand() * 300_000);
  else totalFen = rand() < 0.08 ? 5_000_000 + Math.floor(rand() * 25_000_000) : 150_000 + Math.floor(rand() * 4_000_000);
  const fullOwnPayFen = Math.floor(totalFen * rand() * 0.1);
  const overLimitFen = rand() < 0.3 ? Math.floor(totalFen * rand() * 0.03) : 0;
  const preSelfPayFen = Math.floor(totalFen * rand() * 0.05);
  const diagnosisCodes = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => DIAGNOSES[Math.floor(rand() * DIAGNOSES.length)]);
  const year = rand() < 0.8 ? 2013 : 2012;
  const month = 1 + Math.floor(rand() * 12);
  const day = 1 + Math.floor(rand() * 18);
  const stay = visitType === 'inpatient' ? 1 + Math.floor(rand() * 10) : 0;
  return {
    hospitalId: `h-${hospitalLevel}-${n % 37}`,
    visitId: `${visitPrefix}${n}`,
    personId: personId(p),
    region: REGION,
    scheme: 'nrcms',
    visitType,
    hospitalLevel,
    admissionDate: `${year}-${pad2(month)}-${pad2(day)}`,
    dischargeDate: `${year}-${pad2(month)}-${pad2(day + stay)}`,
    diagnosisCodes,
    totalFen,
    fullOwnPayFen,
    overLimitFen,
    preSelfPayFen,
    externalPayments: {},
  };
}

// ---- formatting ---------------------------------------------------------------------------------

export function fmtNum(x, digits = 0) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Prints rows (arrays of strings) as an aligned table with a header row. */
export function printTable(header, rows) {
  const widths = header.map((h, i) => Math.max(String(h).length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c ?? '').padEnd(widths[i]) : String(c ?? '').padStart(widths[i]))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}
