// `medaid import --data DIR [--input FILE.jsonl]`: an office's past years, brought from its old
// system as a file of commands in the `simulate` format, recorded into the data directory's store
// through the same handlers and rules as the service's (with `externalPayments` where the old
// system's amounts must stay as they were). Many commands are in flight at once so that group
// commit makes it fast, but the commands about one person are recorded in the file's order, and a
// policy is published with nothing else in flight. Resumable: progress (the line up to which
// every command is done) is saved in DIR/import-progress.json; a re-run of the same file starts
// after it, and a command already recorded (the lines in flight when it was interrupted, or a
// whole file run twice) is counted as such and not recorded again. What it refuses is printed,
// one JSON line each, with the line number and why; a summary closes the output.
import { NestFactory } from '@nestjs/core';
import { CommandBus } from '@nestjs/cqrs';
import { createReadStream, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { CategoryRevokedData, PersonEvent, Result, evolvePerson } from '#domain';
import { MedaidModule } from '../app.module.js';
import { toCommand } from '../commands/dispatch.js';
import { RecordPersonFact } from '../commands/persons/person.handlers.js';
import { ReverseSettlement, SettleDischarge, PreviewDischarge } from '../commands/settlements/settlement.handlers.js';
import type { SettleOutcome } from '../commands/settlements/settlement.handlers.js';
import { MedaidRuntime, RuntimeOptions, openRuntime } from '../infrastructure/runtime.js';
import { CommandMeta } from '../shared/writer.js';

export interface ImportOptions {
  dataDir: string;
  /** Undefined: standard input (no saved progress: a re-run finds what is recorded). */ inputPath?: string;
  output: Writable;
  progress: Writable;
  concurrency?: number;
  store?: RuntimeOptions['storeUrl'];
}

export interface ImportSummary {
  lines: number;
  skippedBeforeResume: number;
  recorded: number;
  alreadyRecorded: number;
  previews: number;
  refused: number;
  refusedByCode: Record<string, number>;
  /** Until every command was answered (each acknowledged one durable). */
  seconds: number;
  commandsPerSecond: number;
  /** Closing the store after: the ledger posts what it has not yet, then the files close. */
  closeSeconds: number;
}

const META: CommandMeta = { actor: { kind: 'system', id: 'medaid-import' }, correlationId: 'import' };
const PROGRESS_FILE = 'import-progress.json';
const MAX_LINE_CHARS = 4 * 1024 * 1024;
const DEFAULT_CONCURRENCY = 1_000;
/**
 * The person of the last visits settled in the file, so that a reversal joins that person's
 * chain; a reversal of an older visit waits for everything before it instead. Bounded: an import
 * of ten million lines does not keep ten million visits.
 */
const VISITS_REMEMBERED = 200_000;
/** How often progress is saved and shown (MEDAID_IMPORT_PROGRESS_MS). */
const PROGRESS_EVERY_MS = Number(process.env.MEDAID_IMPORT_PROGRESS_MS ?? '') || 2_000;

interface Progress {
  input: string;
  bytes: number;
  done: number;
}

type Outcome = 'recorded' | 'already' | 'preview' | { code: string; message: string };

export async function runImport(options: ImportOptions): Promise<ImportSummary> {
  const input = options.inputPath === undefined ? null : resolve(options.inputPath);
  const bytes = input === null ? 0 : statSync(input).size;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const runtime = await openRuntime(options.dataDir, { storeUrl: options.store });
  const app = await NestFactory.createApplicationContext(MedaidModule.forRoot(runtime, { http: false }), { logger: false });
  const started = performance.now();
  const progressPath = join(options.dataDir, PROGRESS_FILE);
  const resumeAfter = input === null ? 0 : previousProgress(progressPath, input, bytes);
  const summary: ImportSummary = {
    lines: 0,
    skippedBeforeResume: 0,
    recorded: 0,
    alreadyRecorded: 0,
    previews: 0,
    refused: 0,
    refusedByCode: {},
    seconds: 0,
    commandsPerSecond: 0,
    closeSeconds: 0,
  };
  // Lines done, to move the low-water mark (every line up to it is done) that resuming relies on.
  const doneAbove = new Set<number>();
  let lowWater = resumeAfter;
  const markDone = (line: number) => {
    doneAbove.add(line);
    while (doneAbove.delete(lowWater + 1)) lowWater += 1;
  };
  const saveProgress = () => {
    if (input !== null) writeProgress(progressPath, { input, bytes, done: lowWater });
  };
  const timer = setInterval(() => {
    saveProgress();
    const seconds = (performance.now() - started) / 1000;
    options.progress.write(
      `import: line ${summary.lines}, done up to ${lowWater}, recorded ${summary.recorded}, already recorded ${summary.alreadyRecorded}, refused ${summary.refused}, ${Math.round((summary.recorded + summary.alreadyRecorded) / seconds)} commands/s\n`,
    );
  }, PROGRESS_EVERY_MS);
  try {
    const bus = app.get(CommandBus);
    const chains = new Map<string, Promise<unknown>>();
    const personOfVisit = new Map<string, string>();
    const inFlight = new Set<Promise<unknown>>();
    const barrier = () => Promise.all([...inFlight]);
    // A free slot is awaited with one waiter woken by the next task to end (Promise.race over a
    // thousand tasks for every line was a fifth of the import's time, most of it garbage).
    let failure: { error: unknown } | null = null;
    let wakeSlot: (() => void) | null = null;
    const slotFree = () => new Promise<void>((resolve) => (wakeSlot = resolve));
    const refuse = async (line: number, code: string, message: string) => {
      summary.refused++;
      summary.refusedByCode[code] = (summary.refusedByCode[code] ?? 0) + 1;
      await write(options.output, `${JSON.stringify({ line, code, message })}\n`);
    };
    const settle = async (line: number, outcome: Outcome) => {
      if (outcome === 'recorded') summary.recorded++;
      else if (outcome === 'already') summary.alreadyRecorded++;
      else if (outcome === 'preview') summary.previews++;
      else await refuse(line, outcome.code, outcome.message);
      markDone(line);
    };
    const lines = createInterface({
      input: input === null ? process.stdin : createReadStream(input, { encoding: 'utf8' }),
      crlfDelay: Infinity,
    });
    let n = 0;
    for await (const text of lines) {
      n += 1;
      summary.lines = n;
      if (n <= resumeAfter) {
        summary.skippedBeforeResume++;
        continue;
      }
      if (text.trim() === '') {
        markDone(n);
        continue;
      }
      const parsed = parseLine(text);
      const command = parsed.ok ? toCommand(parsed.value, META) : parsed;
      if (!command.ok) {
        await settle(n, { code: command.error.code, message: `${command.error.message}${detailOf(command.error.details)}` });
        continue;
      }
      const key = chainKey(command.value, personOfVisit);
      const line = n;
      const work = () => execute(bus, runtime, command.value).then((o) => settle(line, o));
      if (key === null) {
        // A policy (or a command whose person is not known): alone, after everything before it.
        await barrier();
        await work();
        continue;
      }
      while (inFlight.size >= concurrency && failure === null) await slotFree();
      if (failure !== null) throw (failure as { error: unknown }).error;
      const previous = chains.get(key) ?? Promise.resolve();
      const task = previous.then(work);
      chains.set(key, task);
      inFlight.add(task);
      const forget = () => {
        inFlight.delete(task);
        if (chains.get(key) === task) chains.delete(key);
        const wake = wakeSlot;
        wakeSlot = null;
        wake?.();
      };
      // A failure (the store, not a refusal) ends the import: seen by the loop or the barrier.
      task.then(forget, (error: unknown) => {
        failure ??= { error };
        forget();
      });
    }
    await barrier();
    summary.seconds = Math.round((performance.now() - started) / 100) / 10;
    summary.commandsPerSecond = Math.round(
      (summary.recorded + summary.alreadyRecorded) / Math.max((performance.now() - started) / 1000, 0.001),
    );
  } finally {
    clearInterval(timer);
    saveProgress();
    const closing = performance.now();
    await app.close();
    await runtime.close();
    summary.closeSeconds = Math.round((performance.now() - closing) / 100) / 10;
  }
  await write(options.output, `${JSON.stringify({ summary })}\n`);
  return summary;
}

/** Commands about one person share a chain (file order); a policy, or a reversal of a visit not seen in this file, has none. */
function chainKey(command: unknown, personOfVisit: Map<string, string>): string | null {
  if (command instanceof SettleDischarge) {
    const d = command.discharge;
    if (personOfVisit.size >= VISITS_REMEMBERED) personOfVisit.delete(personOfVisit.keys().next().value!);
    personOfVisit.set(`${d.hospitalId}/${d.visitId}`, d.personId);
    return d.personId;
  }
  if (command instanceof PreviewDischarge) return command.discharge.personId;
  if (command instanceof RecordPersonFact) return command.command.personId;
  if (command instanceof ReverseSettlement) return personOfVisit.get(`${command.hospitalId}/${command.visitId}`) ?? null;
  return null;
}

async function execute(bus: CommandBus, runtime: MedaidRuntime, command: unknown): Promise<Outcome> {
  if (command instanceof RecordPersonFact && (await alreadyRecorded(runtime, command))) return 'already';
  const result: Result<unknown> = await bus.execute(command as never);
  if (!result.ok) {
    // Resuming: the reversal a previous run recorded is found already reversed.
    if (command instanceof ReverseSettlement && result.error.code === 'ALREADY_REVERSED') return 'already';
    return { code: result.error.code, message: `${result.error.message}${detailOf(result.error.details)}` };
  }
  if (command instanceof PreviewDischarge) return 'preview';
  if (command instanceof SettleDischarge) return (result.value as SettleOutcome).created ? 'recorded' : 'already';
  if (command instanceof RecordPersonFact || command instanceof ReverseSettlement) return 'recorded';
  return 'recorded'; // a policy: published, or the same version published before (idempotent)
}

/** A person fact the person's state already holds (recorded by an interrupted run of the same file). */
async function alreadyRecorded(runtime: MedaidRuntime, { command }: RecordPersonFact): Promise<boolean> {
  const { state } = await runtime.state.person(runtime.store, command.personId);
  switch (command.type) {
    case 'AssignCategory':
      return (state.categories[command.category] ?? []).some((i) => i.from === command.validFrom && i.to === (command.validTo ?? null));
    case 'GrantApproval':
      return state.approvals.some(
        (a) => a.approvalNo === command.approvalNo && a.validFrom === command.validFrom && a.validTo === command.validTo,
      );
    case 'RecordDeath':
      return state.deathDate === command.date;
    case 'RevokeCategory': {
      const data: CategoryRevokedData = { personId: command.personId, category: command.category, from: command.from };
      const after = evolvePerson(state, { type: 'CategoryRevoked', data } as PersonEvent);
      return (
        JSON.stringify(after.categories[command.category] ?? []) === JSON.stringify(state.categories[command.category] ?? []) &&
        (state.categories[command.category] ?? []).length > 0
      );
    }
    default:
      return false;
  }
}

function parseLine(text: string): { ok: true; value: unknown } | { ok: false; error: { code: string; message: string; details: [] } } {
  try {
    if (text.length > MAX_LINE_CHARS) throw new Error(`line longer than ${MAX_LINE_CHARS} characters`);
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    return { ok: false, error: { code: 'VALIDATION_FAILED', message: `not a JSON object: ${(e as Error).message}`, details: [] } };
  }
}

const detailOf = (details: ReadonlyArray<{ field: string; problem: string }> | undefined) =>
  details === undefined || details.length === 0 ? '' : ` (${details.map((d) => `${d.field}: ${d.problem}`).join('; ')})`;

function previousProgress(path: string, input: string, bytes: number): number {
  try {
    const p = JSON.parse(readFileSync(path, 'utf8')) as Progress;
    return p.input === input && p.bytes === bytes && Number.isSafeInteger(p.done) && p.done > 0 ? p.done : 0;
  } catch {
    return 0;
  }
}

function writeProgress(path: string, progress: Progress): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(progress));
  renameSync(`${path}.tmp`, path);
}

function write(out: Writable, text: string): Promise<void> {
  return out.write(text) ? Promise.resolve() : new Promise((r) => out.once('drain', () => r()));
}

export const IMPORT_USAGE = `medaid import --data DIR [--input FILE.jsonl] [--store esdb://…|postgres://…] [--concurrency N]

  Records a file of commands in the simulate format (PublishPolicy, person facts, SettleDischarge
  with externalPayments where the old system's amounts must be kept, ReverseSettlement) into the
  data directory's store through the service's own handlers and rules (standard input without
  --input). The service must not run
  on DIR meanwhile. Commands about one person are recorded in the file's order, up to N (default
  ${DEFAULT_CONCURRENCY}) at once; a policy with nothing else in flight. Resumable: a re-run of the same file starts
  after the last line known done (DIR/${PROGRESS_FILE}); what is already recorded is counted, not
  recorded again. Prints each refused line as {"line","code","message"} and a summary; progress on
  stderr. Exit 0 when it ran to the end (refusals included), 1 when it could not.`;
