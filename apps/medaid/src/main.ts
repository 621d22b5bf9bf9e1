// The `medaid` command line: `serve` runs the service, `simulate` runs a command file (spec §9).
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Result } from '#domain';
import { CommandBus } from '@nestjs/cqrs';
import { PublishPolicy } from './commands/policies/policy.handlers.js';
import { createHttpApp } from './http/http-app.js';
import { openRuntime } from './infrastructure/runtime.js';
import { openInput, simulate } from './cli/simulate.js';
import { SYSTEM_ACTOR } from './shared/writer.js';

const USAGE = `medaid — 一站式 medical-aid settlement

  medaid serve    [--data DIR] [--port N] [--host ADDR] [--no-demo-policy] [--quiet]
  medaid simulate [--input FILE.jsonl] [--policy FILE.json ...]

serve     runs the HTTP service on the embedded durable store in DIR (default ./data, or
          $MEDAID_DATA); port 3000 (or $PORT) on 127.0.0.1 (or $HOST). On first start with an
          empty store it publishes the demo policy (apps/medaid/assets/demo-policy.json).
simulate  runs commands (one JSON object per line, from FILE or standard input) against a
          fresh throw-away store and prints one JSON result line per command.`;

const DEMO_POLICY = join(dirname(fileURLToPath(import.meta.url)), '../../../../apps/medaid/assets/demo-policy.json');

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      data: { type: 'string', default: process.env.MEDAID_DATA ?? 'data' },
      port: { type: 'string', default: process.env.PORT ?? '3000' },
      host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
      'no-demo-policy': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0 to 65535, not ${values.port}`);
  const runtime = await openRuntime(resolve(values.data));
  const app = await createHttpApp(runtime, { logRequests: !values.quiet });
  await app.init(); // registers the command handlers before the demo policy goes through the bus
  if (runtime.model.eventCount === 0 && !values['no-demo-policy']) {
    const published: Result<unknown> = await app.get(CommandBus).execute(
      new PublishPolicy(JSON.parse(readFileSync(DEMO_POLICY, 'utf8')), { actor: SYSTEM_ACTOR, correlationId: 'first-start' }),
    );
    if (!published.ok) throw new Error(`demo policy: ${published.error.message}`);
  }
  await app.listen(port, values.host);
  const address = app.getHttpServer().address();
  process.stderr.write(`${JSON.stringify({
    time: new Date().toISOString(), level: 'info', msg: 'medaid listening', address, data: runtime.dataDir,
    rebuiltEvents: runtime.rebuilt.events, rebuildMs: runtime.rebuilt.ms,
  })}\n`);
}

async function runSimulate(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { input: { type: 'string' }, policy: { type: 'string', multiple: true, default: [] } } });
  await simulate({ input: openInput(values.input), policyFiles: values.policy ?? [], output: process.stdout });
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': return serve(rest);
    case 'simulate': return runSimulate(rest);
    case undefined: case 'help': case '--help': case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}\n`);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`medaid: ${(e as Error).message ?? String(e)}\n`);
  process.exitCode = 1;
});
