// `npm run bench`: throughput and latency of medaid, each figure measured side by side with its
// baseline in the same run and reported as a ratio (the machine is small and shared, so absolute
// numbers are noisy). A measurement, not a test: exit code 0 even when a target is missed,
// non-zero only when something crashed.
//
//   BENCH_SCALE=0.1 npm run bench      quick smoke run (every size and duration × 0.1)
//   BENCH_ONLY=a,d node test/bench/run.js   only some sections
// Other knobs: BENCH_PERSONS, BENCH_COMPUTE_ITEMS, BENCH_COMPUTE_MS, BENCH_STORE_SETTLEMENTS,
// BENCH_STORE_CONCURRENCY, BENCH_FSYNC_MS, BENCH_HTTP_CONNECTIONS, BENCH_HTTP_SECONDS,
// BENCH_HTTP_WARMUP, BENCH_REPLAY_EVENTS, BENCH_REPLAY_PERSONS.
// (e) and (f) need a real Kafka broker: $KAFKA_BROKERS, else deploy/kafka-local/kafka-local.sh is
// started (and stopped at the end, also on Ctrl-C, if this run started it; Java + Maven needed).
// Their knobs: BENCH_KAFKA_DISCHARGES (5,000), BENCH_KAFKA_WARMUP (200), BENCH_KAFKA_PERSONS (1,000),
// BENCH_RELAY_EVENTS (50,000), BENCH_RELAY_PERSONS (5,000) — scaled by BENCH_SCALE — and
// BENCH_KAFKA_PARTITIONS (3) and BENCH_KAFKA_TIMEOUT (180 s per wait), which are not.
// (g) audit replay / verify: BENCH_AUDIT_EVENTS (200,000), BENCH_AUDIT_PERSONS (20,000), scaled.
// (h) start-up and memory: BENCH_STARTUP_EVENTS (1000000,10000000 — not scaled; logs cached in .bench-cache/).
// (c)'s open-loop rate: BENCH_HTTP_OPEN_RATE (1,000/s).
// (j) whatif: BENCH_WHATIF_EVENTS (1,250,000, scaled; the log is cached in .bench-cache/), BENCH_WHATIF_MEMORY_EVENTS (200,000).
// (k) access control and the record of reads: BENCH_READ_RATE (1,000/s), BENCH_ACCESS_LOG_ENTRIES (200,000, scaled).
// (i) several instances on one store: PostgreSQL at MEDAID_TEST_POSTGRES_URL; BENCH_SHARED_SETTLEMENTS
// (3,000), BENCH_SHARED_PERSONS (500), BENCH_SHARED_CONCURRENCY (48).
import 'reflect-metadata'; // the command handlers are decorated classes
import { SCALE, cleanupAll, fmtNum, machine, printTable } from './common.js';

process.on('exit', cleanupAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    cleanupAll();
    process.exit(130);
  });
}

const perSec = (x) => `${fmtNum(x)}/s`;
const ms = (x) => `${fmtNum(x, 2)} ms`;
const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(2)}×` : '—');
const pct = (a, b) => (b > 0 ? `${((a / b) * 100).toFixed(1)} %` : '—');

const rows = [];
const notes = [];
const verdicts = [];
/** A table row; `pass` undefined = informational (no target). */
function row(label, figure, baseline, r, target, pass) {
  const status = pass === undefined ? '' : pass === 'error' ? 'ERROR' : pass ? 'PASS' : 'MISS';
  rows.push([label, figure, baseline, r, target, status]);
  if (pass !== undefined) verdicts.push([label, target, status]);
}

const SECTIONS = {
  a: {
    title: 'pure computation',
    async run() {
      const { benchCompute } = await import('./compute.js');
      const r = await benchCompute();
      row(
        '(a) computeSettlement, settlements/s',
        perSec(r.engine),
        `${perSec(r.flat)} hand-written 1-layer`,
        ratio(r.engine, r.flat),
        '≥ 200,000/s',
        r.engine >= 200_000,
      );
      row(
        '(a) settle() incl. eligibility + record',
        perSec(r.settle),
        `${perSec(r.flat)} hand-written 1-layer`,
        ratio(r.settle, r.flat),
        'info',
      );
      return r.notes;
    },
  },
  b: {
    title: 'durable settlements through the handler (group commit)',
    async run() {
      const { benchStore } = await import('./store.js');
      const r = await benchStore();
      row(
        '(b) SettleDischargeHandler durable, /s',
        perSec(r.rate),
        `${perSec(r.perRowRate)} bare SQLite 1 tx/row`,
        ratio(r.rate, r.perRowRate),
        '≥ 20,000/s',
        r.rate >= 20_000,
      );
      row(
        '(b)   same, vs all rows in one tx',
        perSec(r.rate),
        `${perSec(r.oneTxRate)} bare SQLite 1 tx`,
        ratio(r.rate, r.oneTxRate),
        'info',
      );
      row(
        '(b)   sustained: until the ledger has posted all',
        perSec(r.sustainedRate),
        `${perSec(r.perRowRate)} bare SQLite 1 tx/row`,
        ratio(r.sustainedRate, r.perRowRate),
        'info',
      );
      return r.notes;
    },
  },
  c: {
    title: 'HTTP settlements (autocannon)',
    async run() {
      const { benchHttp } = await import('./http.js');
      const { service: s, baseline: b, notes: n } = await benchHttp();
      row(
        '(c) HTTP settlements/s (2xx)',
        perSec(s.rate),
        `${perSec(b.rate)} bare Fastify`,
        ratio(s.rate, b.rate),
        '≥ 5,000/s',
        s.rate >= 5_000,
      );
      row('(c) HTTP rate as share of bare Fastify', pct(s.rate, b.rate), '100 %', ratio(s.rate, b.rate), '≥ 15 %', s.rate >= 0.15 * b.rate);
      row('(c) HTTP latency p50', ms(s.p50), `${ms(b.p50)} bare Fastify`, ratio(s.p50, b.p50), 'info');
      row('(c) HTTP latency p99', ms(s.p99), `${ms(b.p99)} bare Fastify`, ratio(s.p99, b.p99), '< 20 ms', s.p99 < 20);
      row(
        `(c) open loop ${fmtNum(s.open.rate)}/s: latency p50`,
        ms(s.open.p50),
        `${ms(b.open.p50)} bare Fastify`,
        ratio(s.open.p50, b.open.p50),
        'info',
      );
      row(
        `(c) open loop ${fmtNum(s.open.rate)}/s: latency p99`,
        ms(s.open.p99),
        `${ms(b.open.p99)} bare Fastify`,
        ratio(s.open.p99, b.open.p99),
        '< 5 ms',
        s.open.p99 < 5,
      );
      const bad = s.non2xx + s.errors + s.timeouts;
      row('(c) non-2xx + errors + timeouts', fmtNum(bad), `${fmtNum(b.non2xx + b.errors + b.timeouts)} bare Fastify`, '', '= 0', bad === 0);
      return (
        `${n}; medaid: ${fmtNum(s.created)} new settlements (201) of ${fmtNum(s.ok2xx)} 2xx in ${s.duration} s, ` +
        `status codes ${JSON.stringify(s.statusCodes)}, errors ${s.errors}, timeouts ${s.timeouts}; bare: status codes ${JSON.stringify(b.statusCodes)}`
      );
    },
  },
  d: {
    title: "replay (the audits' whole-log fold)",
    async run() {
      const { benchReplay } = await import('./replay.js');
      const r = await benchReplay();
      // Its old target (≥ 200,000/s) is withdrawn: the service no longer folds the whole log at start-up; the audits do.
      row(
        '(d) whole-log fold (the audits), events/s',
        perSec(r.rate),
        `${perSec(r.plainRate)} plain readAll`,
        ratio(r.rate, r.plainRate),
        'info',
      );
      row(
        '(d) bound: reading alone (raw rows + JSON.parse)',
        perSec(r.readAloneRate),
        `${perSec(r.plainRate)} plain readAll`,
        ratio(r.readAloneRate, r.plainRate),
        'info',
      );
      row(
        '(d) bound: applying alone (events parsed in memory)',
        perSec(r.applyAloneRate),
        `${perSec(r.plainRate)} plain readAll`,
        ratio(r.applyAloneRate, r.plainRate),
        'info',
      );
      return r.notes;
    },
  },
  e: {
    title: 'Kafka discharges end to end (real broker)',
    async run() {
      const { benchKafkaDischarges } = await import('./kafka.js');
      const { service: s, baseline: b, notes: n } = await benchKafkaDischarges();
      row(
        '(e) Kafka discharges → outcomes, /s',
        perSec(s.rate),
        `${perSec(b.rate)} kafkajs consume→produce`,
        ratio(s.rate, b.rate),
        'info',
      );
      row('(e) Kafka latency p50 (produce → outcome)', ms(s.p50), `${ms(b.p50)} kafkajs`, ratio(s.p50, b.p50), 'info');
      row('(e) Kafka latency p99 (produce → outcome)', ms(s.p99), `${ms(b.p99)} kafkajs`, ratio(s.p99, b.p99), 'info');
      return n;
    },
  },
  f: {
    title: 'Kafka relay, store → events topic (real broker)',
    async run() {
      const { benchKafkaRelay } = await import('./kafka.js');
      const { service: s, baseline: b, notes: n } = await benchKafkaRelay();
      row('(f) relay store → Kafka, events/s', perSec(s.rate), `${perSec(b.rate)} kafkajs produce→consume`, ratio(s.rate, b.rate), 'info');
      return n;
    },
  },
  h: {
    title: 'start-up and memory with a long history',
    async run() {
      const { benchStartup } = await import('./startup.js');
      const notes = [];
      for (const r of await benchStartup()) {
        const n = `${fmtNum(r.events / 1e6, 0)}M`;
        const mb = (x) => `${fmtNum(x)} MB`;
        const s = (x) => `${fmtNum(x / 1000, 2)} s`;
        row(
          `(h) ${n} events: /ready after a clean stop`,
          s(r.clean.readyMs),
          `${s(r.floor.ms)} open + read last 1,000`,
          ratio(r.clean.readyMs, r.floor.ms),
          '< 2 s',
          r.clean.readyMs < 2_000,
        );
        row(
          `(h) ${n} events: /ready after kill -9 under load`,
          s(r.killed.readyMs),
          `${s(r.floor.ms)} open + read last 1,000`,
          ratio(r.killed.readyMs, r.floor.ms),
          '< 2 s',
          r.killed.readyMs < 2_000,
        );
        row(
          `(h) ${n} events: resident memory at /ready`,
          mb(r.clean.rssMb),
          `${mb(r.floor.rssMb)} open + read last 1,000`,
          ratio(r.clean.rssMb, r.floor.rssMb),
          'info',
        );
        row(
          `(h) ${n} events: peak resident memory serving (c)'s load`,
          mb(r.serving.peakMb),
          `${mb(r.floor.rssMb)} open + read last 1,000`,
          ratio(r.serving.peakMb, r.floor.rssMb),
          '< 512 MB',
          r.serving.peakMb < 512,
        );
        notes.push(
          `${n}: ${fmtNum(r.persons)} persons; tail read at start ${r.clean.tail} (clean) / ${r.killed.tail} (after kill -9) events; ` +
            `(c)'s load on this log ${perSec(r.serving.rate)}, p99 ${ms(r.serving.p99)}`,
        );
      }
      return notes.join('; ');
    },
  },
  g: {
    title: 'audit replay and verify over the whole log',
    async run() {
      const { benchAudit } = await import('./audit.js');
      const r = await benchAudit();
      row(
        '(g) audit replay, events/s',
        perSec(r.replayRate),
        `${perSec(r.plainRate)} plain readAll`,
        ratio(r.replayRate, r.plainRate),
        'info',
      );
      row(
        '(g) audit verify, events/s',
        perSec(r.verifyRate),
        `${perSec(r.plainRate)} plain readAll`,
        ratio(r.verifyRate, r.plainRate),
        'info',
      );
      return r.notes;
    },
  },
  i: {
    title: 'several instances on one shared store (--shared): PostgreSQL, and the EventStoreDB protocol double',
    async run() {
      const { benchShared } = await import('./shared.js');
      const r = await benchShared();
      const bare = `${perSec(r.bare)} bare pg INSERT loop`;
      for (const n of [1, 2, 3]) {
        row(`(i) ${n} instance(s) on PostgreSQL, settlements/s`, perSec(r.postgres[n]), bare, ratio(r.postgres[n], r.bare), 'info');
      }
      for (const n of [1, 2, 3]) {
        row(
          `(i) ${n} instance(s) on the ESDB double (not EventStoreDB), settlements/s`,
          perSec(r.double[n]),
          bare,
          ratio(r.double[n], r.bare),
          'info',
        );
      }
      row(
        '(i) 50 at once per person over 3 instances: decisions again per settlement',
        fmtNum(r.conflicts.retries / r.conflicts.settlements, 2),
        `${r.conflicts.contended} of ${r.conflicts.settlements} answered 503 STORE_CONTENDED`,
        '',
        'info',
      );
      return (
        `${fmtNum(r.count)} settlements of ${fmtNum(r.persons)} persons over HTTP, ${r.concurrency} in flight, round-robin over the instances ` +
        `(a third as many on the double); the bare loop: as many 1 KB rows, one per transaction, 20 connections. The double is an in-memory ` +
        `JavaScript gRPC server, not EventStoreDB: its rows say what the service and adapter cost, not what a cluster does`
      );
    },
  },
  j: {
    title: 'policy impact simulation (medaid whatif) over a year of settlements',
    async run() {
      const { benchWhatIf } = await import('./whatif.js');
      const r = await benchWhatIf();
      row(
        `(j) whatif, ${fmtNum(r.settlements)} settlements of a year, end to end`,
        `${fmtNum(r.commandSeconds, 1)} s (${perSec(r.commandRate)})`,
        `${perSec(r.plainRate)} events plain readAll`,
        ratio(r.events / r.commandSeconds, r.plainRate),
        '< 10 s per 1,000,000',
        r.commandSeconds * (1_000_000 / r.settlements) < 10,
      );
      row(
        '(j) whatif replay in memory, settlements/s',
        perSec(r.replayRate),
        `${perSec(r.engineRate)} settle() alone`,
        ratio(r.replayRate, r.engineRate),
        '≥ 50 % of the engine',
        r.replayRate >= 0.5 * r.engineRate,
      );
      row('(j) the live policy reproduces every settlement', r.identical ? 'yes' : 'NO', '', '', 'yes', r.identical);
      return r.notes;
    },
  },
  k: {
    title: 'access control and the record of reads (same build: open vs credentials; settling with and without reads)',
    async run() {
      const { benchAccess } = await import('./access.js');
      const r = await benchAccess();
      const open = `${perSec(r.open.rate)} same service, open`;
      row('(k) HTTP settlements/s, hospital tokens', perSec(r.token.rate), open, ratio(r.token.rate, r.open.rate), 'info');
      const tokens = (r.token.rate + r.token2.rate) / 2;
      row(
        '(k) HTTP settlements/s, hospital JWTs (ES256)',
        perSec(r.jwt.rate),
        `${perSec(tokens)} tokens, runs before and after`,
        ratio(r.jwt.rate, tokens),
        'info',
      );
      row('(k) p99, hospital tokens', ms(r.token.p99), `${ms(r.open.p99)} open`, ratio(r.token.p99, r.open.p99), 'info');
      row(
        `(k) settlements/s while ${fmtNum(r.reads.rate)} reads/s are recorded`,
        perSec(r.mixed.rate),
        `${perSec(r.token2.rate)} settling alone, the run before`,
        ratio(r.mixed.rate, r.token2.rate),
        'info',
      );
      row(
        '(k) access log alone, entries/s',
        perSec(r.log.logged),
        `${perSec(r.log.plain)} plain SQLite rows`,
        ratio(r.log.logged, r.log.plain),
        'info',
      );
      const bad = [r.open, r.token, r.jwt, r.token2, r.mixed, r.reads].reduce((sum, x) => sum + x.non2xx + x.errors + x.timeouts, 0);
      row('(k) non-2xx + errors + timeouts', fmtNum(bad), '', '', '= 0', bad === 0);
      return r.notes;
    },
  },
};

async function main() {
  const m = machine();
  console.log('medaid benchmark');
  console.log(`  cpu:    ${m.cpu}`);
  console.log(`  memory: ${m.memory}`);
  console.log(`  node:   ${m.node} (${m.platform}) ${process.execArgv.join(' ') || '(no flags: run it as `npm run bench`)'}`);
  console.log(`  scale:  BENCH_SCALE=${SCALE}`);
  console.log('');
  const only = (process.env.BENCH_ONLY ?? 'a,b,c,d,e,f,g,h,j,k')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  let crashed = false;
  const started = performance.now();
  for (const key of only) {
    const section = SECTIONS[key];
    if (section === undefined) throw new Error(`BENCH_ONLY: unknown section "${key}" (${Object.keys(SECTIONS).join(', ')})`);
    const t = performance.now();
    process.stdout.write(`(${key}) ${section.title} … `);
    try {
      const note = await section.run();
      notes.push(`(${key}) ${note}`);
      console.log(`done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    } catch (e) {
      crashed = true;
      console.log('CRASHED');
      console.error(e?.stack ?? String(e));
      row(`(${key}) ${section.title}`, 'ERROR', '', '', 'runs', 'error');
      notes.push(`(${key}) crashed: ${e?.message ?? String(e)}`);
    }
  }
  console.log('');
  printTable(['measure', 'figure', 'baseline (same run)', 'ratio', 'target', ''], rows);
  console.log('');
  console.log('notes:');
  for (const n of notes) console.log(`  ${n}`);
  console.log('');
  console.log(`summary (${((performance.now() - started) / 1000).toFixed(0)} s):`);
  for (const [label, target, status] of verdicts) console.log(`  ${status.padEnd(5)} ${label}  (target ${target})`);
  const missed = verdicts.filter(([, , s]) => s !== 'PASS').length;
  console.log(`  ${verdicts.length - missed}/${verdicts.length} targets met${crashed ? '; SOME SECTIONS CRASHED' : ''}`);
  return crashed ? 1 : 0;
}

main().then(
  (code) => {
    cleanupAll();
    process.exitCode = code;
  },
  (e) => {
    console.error(e?.stack ?? String(e));
    cleanupAll();
    process.exitCode = 1;
  },
);
