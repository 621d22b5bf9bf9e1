// The `medaid` command line: `serve` runs the service, `simulate` runs a command file (spec §9).
import { installReadRecording } from './access-log/record-reads.js';
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Result } from '#domain';
import { CommandBus } from '@nestjs/cqrs';
import { PublishPolicy } from './commands/policies/policy.handlers.js';
import { connectGrpc } from './grpc/grpc-server.js';
import { createHttpApp } from './http/http-app.js';
import { installAuthentication } from './http/actor.js';
import { Credentials } from './http/identity.js';
import { startKafkaFromEnv } from './kafka/kafka-bridge.js';
import { startTracingFromEnv } from './shared/tracing.js';
import { openRuntime, storeUrlFrom } from './infrastructure/runtime.js';
import { openInput, simulate } from './cli/simulate.js';
import { runAudit } from './cli/audit.js';
import { runWhatIf } from './cli/whatif.js';
import { runAlerts } from './cli/alerts.js';
import { runReconcile } from './cli/reconcile.js';
import { loadNhsaConfig } from './nhsa/config.js';
import { SimulationJobs } from './simulation/simulation-jobs.js';
import { SIMULATIONS } from './simulation/simulations.controller.js';
import { IMPORT_USAGE, runImport } from './cli/import.js';
import { log } from './shared/log.js';
import { SYSTEM_ACTOR } from './shared/writer.js';
import { Lifecycle } from './app.module.js';

const USAGE = `medaid — 一站式 medical-aid settlement

  medaid serve    [--data DIR] [--store esdb://…|postgres://…] [--port N] [--host ADDR] [--grpc-port N]
                  [--grpc-host ADDR] [--auth FILE] [--nhsa FILE] [--insecure] [--shared] [--no-demo-policy] [--quiet]
  medaid simulate [--input FILE.jsonl] [--policy FILE.json ...]
  medaid audit    verify|replay|report [--data DIR] [--store esdb://…|postgres://…] …   (medaid audit --help)
  medaid import   [--data DIR] [--input FILE.jsonl] [--concurrency N]   (medaid import --help)
  medaid whatif   --draft FILE --year Y [--region R] [--format table|csv|json] …   (medaid whatif --help)
  medaid alerts   export --from YYYY-MM-DD --to YYYY-MM-DD [--region R] …   (medaid alerts --help)
  medaid reconcile --hospital ID --from YYYY-MM-DD --to YYYY-MM-DD [--details] [--format json|csv] [--data DIR]
  medaid schemas  --out DIR   writes the JSON Schemas GET /schemas serves, one file each

serve     runs the HTTP service on the embedded durable store in DIR (default ./data, or
          $MEDAID_DATA); port 3000 (or $PORT) on 127.0.0.1 (or $HOST). On first start with an
          empty store it publishes the demo policy (apps/medaid/assets/demo-policy.json).
          With --store esdb://HOST:2113?tls=false (or $EVENTSTORE_CONNECTION_STRING) the events
          live in that EventStoreDB/KurrentDB instead; with --store postgres://USER@HOST/DB in
          that PostgreSQL database (schema medaid; one service per schema, held by a lock there).
          DIR then holds the lock, the decision snapshot, the journal and the Kafka relay
          checkpoint. Kafka is on when $KAFKA_BROKERS is set.
          --shared (or $MEDAID_SHARED=1): other instances write to the same esdb:// or postgres://
          store; no writer lock, and the decision state follows the log (see the README).
          With --grpc-port (or $GRPC_PORT) it also serves the gRPC API
          (proto/medaid/settlement/v1/settlement.proto) on --grpc-host (default: --host).
          --auth FILE (or $MEDAID_AUTH_FILE) names who may call: bearer tokens
          {"tokens": [{"token", "kind": "admin"|"hospital"|"auditor", "id"}]}, JWTs of an identity
          provider ("jwt": {"jwks", "issuer", "audience", …}) and TLS with client certificates
          ("tls": {"cert", "key", "clientCa", "clients": [...]}) (README, "Security"); then every
          route but /health, /ready and /metrics needs a caller. Without --auth it runs open for a local trial and
          refuses any address but loopback (--insecure overrides, with a warning at every start).
          --nhsa FILE (or $MEDAID_NHSA_FILE) turns on POST /nhsa/{infno}, the national platform's
          message format (README, "For HIS vendors").
simulate  runs commands (one JSON object per line, from FILE or standard input) against a
          fresh throw-away store and prints one JSON result line per command.
audit     the auditor's commands, read-only: verify (settlements recomputed, the journal's hash
          chain, balance and payouts), replay (projections rebuilt and compared), report (a year).
whatif    what a draft policy would have cost: the year's discharges settled again under it, in
          memory, compared with what was paid (read-only).
alerts    export: the monitoring flags (因病返贫致贫监测) of a period as CSV, from the log (read-only).
reconcile 对账 of a hospital for a period: totals, or the records behind them (read-only).`;

const DEMO_POLICY = join(dirname(fileURLToPath(import.meta.url)), '../../../../apps/medaid/assets/demo-policy.json');

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      data: { type: 'string', default: process.env.MEDAID_DATA ?? 'data' },
      store: { type: 'string' },
      port: { type: 'string', default: process.env.PORT ?? '3000' },
      host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
      // gRPC is off unless a port is given; an empty GRPC_PORT counts as not given
      'grpc-port': { type: 'string', default: process.env.GRPC_PORT || undefined },
      'grpc-host': { type: 'string', default: process.env.GRPC_HOST || undefined },
      auth: { type: 'string', default: process.env.MEDAID_AUTH_FILE || undefined },
      nhsa: { type: 'string', default: process.env.MEDAID_NHSA_FILE || undefined },
      'no-demo-policy': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      shared: { type: 'boolean', default: ['1', 'true'].includes(process.env.MEDAID_SHARED ?? '') },
      insecure: { type: 'boolean', default: false },
    },
  });
  const port = portOf('--port', values.port);
  const grpcPort = values['grpc-port'] === undefined ? null : portOf('--grpc-port', values['grpc-port']);
  // Read before the store opens: a bad auth file stops the start before anything else happens.
  const credentials = values.auth === undefined ? null : Credentials.load(resolve(values.auth));
  const nhsa = values.nhsa === undefined ? null : loadNhsaConfig(resolve(values.nhsa));
  // Secure by default: without credentials the service is a local trial, reachable from this machine only.
  const hosts = [values.host, ...(grpcPort === null ? [] : [values['grpc-host'] ?? values.host])];
  const exposed = hosts.filter((h) => !isLoopback(h));
  if (credentials === null && exposed.length > 0) {
    if (!values.insecure)
      throw new Error(
        `refusing to listen on ${exposed.join(', ')} without credentials: anyone who reaches it could settle, reverse and read medical data. ` +
          'Give --auth FILE (see the README, "Security"), listen on 127.0.0.1, or add --insecure to run open anyway',
      );
    log.warn(
      { hosts: exposed },
      'INSECURE: listening beyond this machine without credentials (--insecure): every caller may settle, reverse and read',
    );
  } else if (credentials === null) {
    log.warn({}, 'running OPEN for a local trial: no credentials configured (--auth), so only this machine may connect (127.0.0.1)');
  }
  const rateLimit = process.env.MEDAID_RATE_LIMIT_PER_MINUTE;
  const rateLimitPerMinute = rateLimit === undefined || rateLimit === '' ? undefined : Number(rateLimit);
  if (rateLimitPerMinute !== undefined && !(Number.isInteger(rateLimitPerMinute) && rateLimitPerMinute >= 1 && rateLimitPerMinute <= 1e9))
    throw new Error('MEDAID_RATE_LIMIT_PER_MINUTE must be an integer from 1 to 1,000,000,000');
  // Traces are exported only when an OTLP endpoint is configured (shared/tracing.ts).
  const stopTracing = await startTracingFromEnv(process.env);
  const runtime = await openRuntime(resolve(values.data), { storeUrl: storeUrlFrom(values.store, process.env), shared: values.shared });
  runtime.nhsa = nhsa;
  const app = await createHttpApp(runtime, {
    logRequests: !values.quiet,
    grpc: grpcPort !== null,
    rateLimitPerMinute,
    tls: credentials?.tls ?? null,
  });
  installAuthentication(app, credentials);
  installReadRecording(app, runtime.accessLog);
  const grpc =
    grpcPort === null
      ? null
      : connectGrpc(app, app.get(Lifecycle), {
          host: values['grpc-host'] ?? values.host,
          port: grpcPort,
          logCalls: !values.quiet,
          tls: credentials?.tls ?? null,
        });
  await app.init(); // registers the command handlers before the demo policy goes through the bus
  if (runtime.state.eventCount === 0 && !values['no-demo-policy']) {
    const published: Result<unknown> = await app
      .get(CommandBus)
      .execute(new PublishPolicy(JSON.parse(readFileSync(DEMO_POLICY, 'utf8')), { actor: SYSTEM_ACTOR, correlationId: 'first-start' }));
    if (!published.ok) throw new Error(`demo policy: ${published.error.message}`);
  }
  if (stopTracing !== null) app.get(Lifecycle).beforeStoreClose(() => stopTracing().catch(() => undefined));
  // a simulation still running when the service stops is lost (its thread would keep the process up)
  app.get(Lifecycle).beforeStoreClose(() => app.get<SimulationJobs>(SIMULATIONS).close());
  startKafkaFromEnv(app, runtime); // only when KAFKA_BROKERS is set; starts in the background, never blocks HTTP
  await app.startAllMicroservices(); // gRPC, when on: listening before HTTP answers /ready
  await app.listen(port, values.host);
  const address = app.getHttpServer().address();
  log.info(
    {
      address,
      ...(grpc ? { grpcAddress: grpc.address } : {}),
      data: runtime.dataDir,
      rebuiltEvents: runtime.rebuilt.events,
      rebuildMs: runtime.rebuilt.ms,
      credentials: credentials?.summary ?? null,
    },
    'medaid listening',
  );
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

function portOf(option: string, raw: string): number {
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${option} must be 0 to 65535, not ${raw}`);
  return port;
}

async function runSimulate(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { input: { type: 'string' }, policy: { type: 'string', multiple: true, default: [] } } });
  await simulate({ input: openInput(values.input), policyFiles: values.policy ?? [], output: process.stdout });
}

async function runImportCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      data: { type: 'string', default: process.env.MEDAID_DATA ?? 'data' },
      input: { type: 'string' },
      store: { type: 'string' },
      concurrency: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${IMPORT_USAGE}\n`);
    return;
  }
  const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000))
    throw new Error('--concurrency must be 1 to 10000');
  await runImport({
    dataDir: values.data,
    inputPath: values.input,
    output: process.stdout,
    progress: process.stderr,
    concurrency,
    store: storeUrlFrom(values.store, process.env),
  });
}

/** `medaid schemas --out DIR`: writes the published JSON Schemas (what GET /schemas serves), one file each. */
async function writeSchemas(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { out: { type: 'string' } }, strict: true });
  if (values.out === undefined) throw new Error('schemas needs --out DIR');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { publishedSchemas } = await import('./shared/schemas.js');
  mkdirSync(values.out, { recursive: true });
  for (const s of publishedSchemas()) writeFileSync(join(values.out, `${s.name}.schema.json`), `${JSON.stringify(s.schema, null, 2)}\n`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'simulate':
      return runSimulate(rest);
    case 'audit':
      return runAudit(rest); // verify, replay, report: cli/audit.ts
    case 'import':
      return runImportCommand(rest);
    case 'schemas':
      return writeSchemas(rest);
    case 'whatif':
      process.exitCode = await runWhatIf(rest);
      return;
    case 'alerts':
      process.exitCode = await runAlerts(rest);
      return;
    case 'reconcile':
      process.exitCode = await runReconcile(rest);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
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
