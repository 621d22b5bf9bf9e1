// The harness of (e) and (f) in test/bench/kafka.js, without kafkajs: the broker (KAFKA_BROKERS or
// deploy/kafka-local), collectors that check what arrives on an output topic, and small helpers.
import { execFile, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, onCleanup, sleep } from './common.js';

const KAFKA_LOCAL = join(ROOT, 'deploy/kafka-local/kafka-local.sh');
const MAX_PROBLEMS = 10;

// ---- the broker ---------------------------------------------------------------------------------

let broker; // one broker for (e) and (f): starting kafka-local takes a while

function kafkaLocal(command, timeoutMs = 300_000) {
  return new Promise((resolve) => {
    execFile('bash', [KAFKA_LOCAL, command], { timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const brokersOf = (stdout) => /KAFKA_BROKERS=(\S+)/.exec(stdout)?.[1];

function localVersion() {
  try {
    const libs = join(process.env.KAFKA_LOCAL_CACHE ?? join(ROOT, 'deploy/kafka-local/cache'), 'libs');
    const jar = readdirSync(libs).find((f) => /^kafka_2\.13-[\d.]+\.jar$/.test(f));
    return jar === undefined ? 'unknown' : `Apache Kafka ${jar.slice('kafka_2.13-'.length, -'.jar'.length)} (kafka-local)`;
  } catch {
    return 'unknown';
  }
}

/**
 * $KAFKA_BROKERS when set; else kafka-local's broker when it runs (left running: someone else
 * started it); else kafka-local started here, and stopped by cleanupAll — at the end, on a crash
 * and on Ctrl-C.
 */
async function acquireBroker() {
  const status = await kafkaLocal('status', 30_000);
  const local = status.code === 0 ? brokersOf(status.stdout) : undefined;
  const fromEnv = process.env.KAFKA_BROKERS?.trim();
  if (fromEnv)
    return {
      brokers: fromEnv.split(','),
      origin: 'from KAFKA_BROKERS',
      version: fromEnv === local ? localVersion() : 'version unknown (external)',
    };
  if (local !== undefined) return { brokers: [local], origin: 'kafka-local, already running, left running', version: localVersion() };
  // Registered before the start, so an interrupted start is stopped too.
  onCleanup(() => spawnSync('bash', [KAFKA_LOCAL, 'stop'], { stdio: 'ignore', timeout: 60_000 }));
  const t = performance.now();
  const started = await kafkaLocal('start');
  const brokers = brokersOf(started.stdout);
  if (started.code !== 0 || brokers === undefined) throw new Error(`kafka-local.sh start failed: ${started.stderr.slice(-2000)}`);
  const seconds = ((performance.now() - t) / 1000).toFixed(1);
  return { brokers: [brokers], origin: `kafka-local, started here in ${seconds} s, stopped at the end`, version: localVersion() };
}

export const getBroker = () => (broker ??= acquireBroker());

/** The last kafkajs errors of this process, shown when a section fails. */
export const kafkaErrors = [];

export const keepError = (line) => {
  kafkaErrors.push(line);
  if (kafkaErrors.length > MAX_PROBLEMS) kafkaErrors.shift();
};

export async function waitUntil(what, done, timeoutMs, failed) {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    const why = failed();
    if (why) throw new Error(`${what}: ${why}`);
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; kafkajs: ${kafkaErrors.join(' | ') || 'no errors'}`);
    await sleep(10);
  }
}

export const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
export const runId = (section) => `medaid-bench-${Date.now().toString(36)}${process.pid}-${section}`;

export async function stopChild(child, name) {
  const exit = await child.stop();
  if (exit.code !== 0 && exit.signal !== 'SIGTERM') console.error(`${name} exited with ${JSON.stringify(exit)}: ${child.stderr()}`);
}

// ---- collectors ---------------------------------------------------------------------------------

/** What arrives on an outcome topic: each visit once, ok and new, with the time it arrived. */
export class Outcomes {
  byVisit = new Map();
  pending = new Set();
  delivered = new Set();
  problems = [];
  received = 0;
  lastAt = 0;

  add(m, at, partition) {
    // The same message again (this consumer restarted before committing) is no second outcome.
    if (this.delivered.has(`${partition}:${m.offset}`)) return undefined;
    this.delivered.add(`${partition}:${m.offset}`);
    this.received++;
    let o;
    try {
      o = JSON.parse(m.value.toString('utf8'));
    } catch {
      o = undefined;
    }
    if (o?.ok !== true || o.result?.duplicate !== false)
      return this.problem(`not a new settlement: ${m.value?.toString('utf8').slice(0, 300)}`);
    const visit = `${o.result.hospitalId}:${o.result.visitId}`;
    if (this.byVisit.has(visit)) return this.problem(`${visit}: a second outcome`);
    this.byVisit.set(visit, { at, key: m.key?.toString('utf8') ?? null, value: m.value.toString('utf8') });
    if (this.pending.delete(visit)) this.lastAt = at;
    return undefined;
  }

  problem(text) {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(text);
  }
}

/** Relayed events as a consumer sees them: duplicates dropped by event-id, each stream's revisions 0, 1, 2, … */
export class Relayed {
  ids = new Set();
  next = new Map();
  events = [];
  problems = [];
  received = 0;
  firstAt = undefined;
  lastAt = 0;

  constructor(keep) {
    this.keep = keep;
  }

  add(m, at) {
    this.received++;
    this.firstAt ??= at;
    const header = (name) => m.headers?.[name]?.toString('utf8');
    const id = header('event-id');
    const stream = header('stream-id');
    const revision = Number(header('stream-revision'));
    if (id === undefined || stream === undefined) return this.problem('a message without event-id or stream-id header');
    if (this.ids.has(id)) return undefined; // a republished copy: dropped by event-id
    this.ids.add(id);
    this.lastAt = at;
    const expected = this.next.get(stream) ?? 0;
    if (revision !== expected) this.problem(`${stream}: revision ${revision} where ${expected} was due`);
    if (m.key?.toString('utf8') !== stream) this.problem(`${stream}@${revision}: the key is not the stream`);
    this.next.set(stream, revision + 1);
    if (this.keep)
      this.events.push({
        key: stream,
        value: m.value.toString('utf8'),
        headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, v.toString('utf8')])),
      });
    return undefined;
  }

  problem(text) {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(text);
  }
}
