// `medaid simulate` (spec §9): runs a file of commands against a fresh, throw-away store through
// the very command handlers and store code the service uses, one JSON result line per command.
import { NestFactory } from '@nestjs/core';
import { CommandBus } from '@nestjs/cqrs';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { DomainError, Result } from '#domain';
import { MedaidModule } from '../app.module.js';
import { toCommand } from '../commands/dispatch.js';
import { PublishPolicy } from '../commands/policies/policy.handlers.js';
import { openRuntime } from '../infrastructure/runtime.js';
import { CommandMeta, SYSTEM_ACTOR } from '../shared/writer.js';

export interface SimulateOptions {
  input: NodeJS.ReadableStream;
  policyFiles: string[];
  output: Writable;
}

const META: CommandMeta = { actor: SYSTEM_ACTOR, correlationId: 'simulate' };
/** A line longer than this is not read as JSON at all (a policy is far smaller). */
const MAX_LINE_CHARS = 4 * 1024 * 1024;

export async function simulate(options: SimulateOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'medaid-simulate-'));
  const runtime = await openRuntime(dir);
  const app = await NestFactory.createApplicationContext(MedaidModule.forRoot(runtime, { http: false }), { logger: false });
  try {
    const bus = app.get(CommandBus);
    for (const file of options.policyFiles) {
      const published: Result<unknown> = await bus.execute(new PublishPolicy(JSON.parse(readFileSync(file, 'utf8')), META));
      if (!published.ok) throw new Error(`--policy ${file}: ${published.error.code}: ${published.error.message}`);
    }
    const lines = createInterface({ input: options.input, crlfDelay: Infinity });
    for await (const line of lines) {
      if (line.trim() === '') continue;
      const out = await runLine(bus, line);
      if (!options.output.write(`${JSON.stringify(out)}\n`)) await new Promise((r) => options.output.once('drain', r));
    }
  } finally {
    await app.close();
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runLine(
  bus: CommandBus,
  line: string,
): Promise<{ ok: true; result: unknown } | { ok: false; error: { code: string; message: string } }> {
  let parsed: unknown;
  try {
    if (line.length > MAX_LINE_CHARS) throw new Error(`line longer than ${MAX_LINE_CHARS} characters`);
    parsed = JSON.parse(line);
  } catch (e) {
    return failure({ code: 'VALIDATION_FAILED', message: `not a JSON object: ${(e as Error).message}`, details: [] });
  }
  const command = toCommand(parsed, META);
  if (!command.ok) return failure(command.error);
  const result: Result<unknown> = await bus.execute(command.value);
  if (!result.ok) return failure(result.error);
  return { ok: true, result: present(result.value) };
}

/** What a command returns, as spec §8 shows it (the HTTP-only `created` flag is not part of it). */
function present(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && 'created' in value) {
    const { created: _created, ...rest } = value as Record<string, unknown>;
    return 'result' in rest ? rest.result : rest;
  }
  return value;
}

const failure = (e: DomainError) => ({ ok: false as const, error: { code: e.code, message: e.message } });

export function openInput(path: string | undefined): NodeJS.ReadableStream {
  return path === undefined || path === '-' ? process.stdin : createReadStream(path, { encoding: 'utf8' });
}
