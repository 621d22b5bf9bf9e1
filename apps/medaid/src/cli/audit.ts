// `medaid audit <verify|replay|report>`: the auditor's commands. Each reads the event log through
// the event-store port (the embedded store in DIR, or EventStoreDB) and the journal in
// DIR/ledger.sqlite read-only; none appends an event or writes the live journal, and none takes
// the service's lock, so they run while the service runs as well as when it is stopped.
import { ACCESS_LOG_FILE, AccessLog } from '../access-log/access-log.js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { EventStore } from '#event-store';
import { SqliteJournal } from '#ledger';
import { openEventStore, storeUrlFrom } from '../infrastructure/runtime.js';
import { Problems, Progress } from '../ledger/audit-support.js';
import { replayAudit } from '../ledger/audit-replay.js';
import { verifyAudit } from '../ledger/audit-verify.js';
import { LEDGER_FILE } from '../ledger/ledger.js';
import { AUDIT_REPORT_USAGE, runAuditReport } from './audit-report.js';

export interface AuditIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}
/** A sub-command: its arguments in, its exit code out (0 clean, 1 problems found). */
export interface AuditCommand {
  usage: string;
  run(args: string[], io: AuditIo): Promise<number>;
}

const COMMON_OPTIONS = `  --data DIR         the data directory (default ./data, or $MEDAID_DATA): the embedded store and DIR/ledger.sqlite
  --store esdb://…   read the events from EventStoreDB/KurrentDB (or $EVENTSTORE_CONNECTION_STRING)
  --store postgres://…  read the events from PostgreSQL`;

const VERIFY_USAGE = `medaid audit verify [--data DIR] [--store esdb://…|postgres://…]

  (a) recomputes every settlement with the domain from its recorded input, the policy version it
      names and the person's state before it, and compares it with the recorded result; and
      checks that no fund the governing policy says may not be overdrawn is below zero after any
      event that took money from it (settlements, external payments included; raises; subsidies);
  (b) checks the journal's hash chain; (c) checks that each entry balances;
  (d) checks that every payout (each paying layer of a settlement, each reversal, each applied
      adjustment, each subsidy, each allocation) is in the journal exactly once with the right
      accounts and amounts, and that nothing else is;
  (e) checks the hash chain of the access log (DIR/access-log.sqlite, the record of every read of
      personal data): an altered, removed or inserted entry is named by its seq.
  Prints a summary and every problem (the first 100, and how many more). Exit 0 when clean, 1 when
  problems were found. While the service runs, the journal is checked up to its checkpoint;
  when it is stopped, the journal must also cover the whole log.
${COMMON_OPTIONS}`;

const REPLAY_USAGE = `medaid audit replay [--data DIR] [--store esdb://…|postgres://…] [--keep]

  Rebuilds the projections from the event log into a fresh temporary database — the journal
  (entries, hashes, account index, balances, checkpoint) and the fund accounts — and compares them
  with the live ones: DIR/ledger.sqlite, and the fund accounts the service saves there when it
  stops. Prints every difference (the first
  100); exit 0 when identical, 1 otherwise. Works while the service runs (each projection is
  compared at the position it was written up to).
${COMMON_OPTIONS}
  --keep             keep the temporary database and print where it is`;

export const AUDIT_COMMANDS: Record<string, AuditCommand> = {
  verify: { usage: VERIFY_USAGE, run: runVerify },
  replay: { usage: REPLAY_USAGE, run: runReplay },
  report: {
    usage: AUDIT_REPORT_USAGE,
    run: async (args, io) => {
      await runAuditReport(args, io);
      return 0;
    },
  },
};

export const AUDIT_USAGE = Object.values(AUDIT_COMMANDS)
  .map((c) => c.usage)
  .join('\n\n');

export async function runAudit(argv: string[], io: AuditIo = process): Promise<void> {
  const [name, ...args] = argv;
  const command = name === undefined ? undefined : AUDIT_COMMANDS[name];
  if (command === undefined) {
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      io.stdout.write(`${AUDIT_USAGE}\n`);
      return;
    }
    throw new Error(`unknown audit command "${name}" (${Object.keys(AUDIT_COMMANDS).join(', ')})\n\n${AUDIT_USAGE}`);
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout.write(`${command.usage}\n`);
    return;
  }
  process.exitCode = await command.run(args, io);
}

interface Opened {
  dataDir: string;
  storeLabel: string;
  store: EventStore;
  serviceRunning: boolean;
}

async function openLog(
  args: string[],
  extra: Record<string, { type: 'boolean' }> = {},
): Promise<Opened & { flags: Record<string, unknown> }> {
  const { values } = parseArgs({
    args,
    options: { data: { type: 'string', default: process.env.MEDAID_DATA ?? 'data' }, store: { type: 'string' }, ...extra },
  });
  const dataDir = resolve(values.data as string);
  const storeUrl = storeUrlFrom(values.store as string | undefined, process.env);
  // Opening the embedded store creates a missing file: refuse a directory that holds no log.
  if (storeUrl === undefined && !existsSync(join(dataDir, 'events.sqlite')))
    throw new Error(`no event store in ${dataDir} (events.sqlite); give --data DIR`);
  const store = await openEventStore(dataDir, { storeUrl });
  const storeLabel = storeUrl === undefined ? `${join(dataDir, 'events.sqlite')}` : storeUrl.replace(/\/\/[^@/]*@/, '//…@');
  return { dataDir, storeLabel, store, serviceRunning: serviceHolding(dataDir) !== null, flags: values };
}

async function runVerify(args: string[], io: AuditIo): Promise<number> {
  const { dataDir, storeLabel, store, serviceRunning } = await openLog(args);
  const path = join(dataDir, LEDGER_FILE);
  // Without a journal every payout is reported missing: verified against an empty one.
  const scratch = existsSync(path) ? null : mkdtempSync(join(tmpdir(), 'medaid-verify-'));
  let journal: SqliteJournal | null = null;
  try {
    journal = SqliteJournal.open(scratch === null ? path : join(scratch, LEDGER_FILE), { readonly: scratch === null });
    const progress = new Progress('audit verify', io.stderr, await store.headPosition());
    const r = await verifyAudit(store, journal, { serviceRunning, progress });
    progress.done();
    if (scratch !== null) r.problems.add('payouts', `there is no journal at ${path}`);
    const n = (check: string) => r.problems.byCheck.get(check) ?? 0;
    const out = io.stdout;
    out.write(
      `medaid audit verify\n  log:      ${storeLabel}: ${fmt(r.events)} events up to position ${r.head} (${progress.seconds().toFixed(1)} s, ${fmt(progress.rate())} events/s)\n`,
    );
    out.write(
      `  journal:  ${path}: ${fmt(r.journal.entries)} entries, checkpoint ${r.journal.checkpoint}${serviceRunning ? ' (the service is running)' : ''}\n`,
    );
    out.write(`  (a) settlements recomputed: ${fmt(r.settlements)}, problems: ${n('settlements')}\n`);
    out.write(`      funds that may not be overdrawn, after every event that took from them, problems: ${n('funds')}\n`);
    out.write(`      monitoring flags and clearings, each the one the rules give, problems: ${n('monitoring')}\n`);
    out.write(`  (b) hash chain: ${fmt(r.journal.entries)} entries, problems: ${n('chain')}\n`);
    out.write(`  (c) entries balance, problems: ${n('balance')}\n`);
    out.write(`  (d) payouts: ${fmt(r.journal.expected)} entries expected from the events, problems: ${n('payouts')}\n`);
    out.write(`  account index and balances table, problems: ${n('index') + n('balances')}\n`);
    // (e) the record of reads of personal data: its own hash chain (absent before the first read)
    const accessPath = join(dataDir, ACCESS_LOG_FILE);
    if (existsSync(accessPath)) {
      const accessLog = AccessLog.open(accessPath, { readonly: true });
      try {
        const access = accessLog.verify();
        for (const p of access.problems) r.problems.add('access', p);
        out.write(`  (e) access log: ${accessPath}: ${fmt(access.entries)} reads recorded, hash chain problems: ${n('access')}\n`);
      } finally {
        accessLog.close();
      }
    } else out.write(`  (e) access log: none yet (no read of personal data recorded)\n`);
    return result(out, r.problems, 'problem');
  } finally {
    journal?.close();
    await store.close();
    if (scratch !== null) rmSync(scratch, { recursive: true, force: true });
  }
}

async function runReplay(args: string[], io: AuditIo): Promise<number> {
  const { dataDir, storeLabel, store, serviceRunning, flags } = await openLog(args, { keep: { type: 'boolean' } });
  const path = join(dataDir, LEDGER_FILE);
  const scratch = mkdtempSync(join(tmpdir(), 'medaid-replay-'));
  let live: SqliteJournal | null = null;
  let rebuilt: SqliteJournal | null = null;
  try {
    rebuilt = SqliteJournal.open(join(scratch, LEDGER_FILE), { durable: false });
    if (!existsSync(path)) throw new Error(`there is no live journal at ${path} to compare with`);
    live = SqliteJournal.open(path, { readonly: true });
    const progress = new Progress('audit replay', io.stderr, await store.headPosition());
    const r = await replayAudit(store, live, rebuilt, { serviceRunning, progress });
    progress.done();
    const n = (check: string) => r.differences.byCheck.get(check) ?? 0;
    const out = io.stdout;
    out.write(
      `medaid audit replay\n  log:        ${storeLabel}: ${fmt(r.events)} events read, head ${r.head} (${progress.seconds().toFixed(1)} s, ${fmt(progress.rate())} events/s)\n`,
    );
    out.write(
      `  journal:    ${fmt(r.journal.entries)} live entries up to position ${r.journal.position}, differences: ${n('journal')}; balances, differences: ${n('balances')}\n`,
    );
    out.write(
      `  projections: settlements, alerts and persons by category up to position ${live.projections.checkpoint()}, differences: ${n('projections')}\n`,
    );
    out.write(
      `  year report: active settlements, subsidies, allocations and monitoring flags up to position ${live.report.checkpoint()}, row by row, differences: ${n('report')}\n`,
    );
    out.write(
      r.snapshot === null
        ? '  read model: no snapshot in the live journal (the service saves one when it stops after commands): counters not compared\n'
        : `  read model: ${fmt(r.snapshot.rows)} rows (fund accounts) at position ${r.snapshot.position}, saved ${new Date(r.snapshot.writtenMs).toISOString()}, differences: ${n('read model')}\n`,
    );
    if (flags.keep === true) out.write(`  rebuilt projections kept in ${scratch}\n`);
    return result(out, r.differences, 'difference');
  } finally {
    live?.close();
    rebuilt?.close();
    await store.close();
    if (flags.keep !== true) rmSync(scratch, { recursive: true, force: true });
  }
}

function result(out: NodeJS.WritableStream, problems: Problems, noun: string): number {
  if (problems.count === 0) {
    out.write(`result: clean, no ${noun}s\n`);
    return 0;
  }
  out.write(`result: ${problems.count} ${noun}${problems.count === 1 ? '' : 's'}\n`);
  problems.print(out, noun);
  return 1;
}

/** The pid of a live service holding DIR's lock, or null. */
function serviceHolding(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, 'medaid.lock'), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? -1 : null;
  }
}

const fmt = (n: number) => n.toLocaleString('en-US');
