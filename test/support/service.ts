// Starts the real service as a child process (`node bin/medaid.js serve`) on a free port with its
// own data directory, and talks to it over real HTTP. Tests run against the built dist/ (the
// test command builds first).
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ACCESS_RULES, ruleOf } from '../../apps/medaid/src/http/access.js';
import { httpsCall } from './tls.js';

export const ROOT = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../..');
export const BIN = join(ROOT, 'bin/medaid.js');
export const SCENARIOS = resolve(ROOT, '../shared/spec/examples/scenarios');

export function tempDir(prefix = 'medaid-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

export interface Service {
  url: string;
  port: number;
  dataDir: string;
  process: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  dataDir?: string;
  port?: number;
  demoPolicy?: boolean;
  quiet?: boolean;
  /** More `serve` arguments (e.g. --grpc-port). */
  args?: string[];
  /** More environment variables for the child (e.g. KAFKA_BROKERS). */
  env?: Record<string, string>;
  /** The service serves HTTPS (its auth file's "tls"): the CA its certificate chains to, and the client certificate readiness is probed with. */
  tls?: { ca: Buffer; pem?: { key: Buffer; cert: Buffer } };
}

export async function startService(options: StartOptions = {}): Promise<Service> {
  const dataDir = options.dataDir ?? tempDir();
  const port = options.port ?? (await freePort());
  const args = [BIN, 'serve', '--data', dataDir, '--port', String(port)];
  if (options.demoPolicy === false) args.push('--no-demo-policy');
  if (options.quiet !== false) args.push('--quiet');
  args.push(...(options.args ?? []));
  const env = { ...process.env, ...options.env };
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  );
  const url = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
  const ready = async () =>
    options.tls === undefined
      ? (await fetch(`${url}/ready`)).status
      : (await httpsCall(url, 'GET', '/ready', { ca: options.tls.ca, pem: options.tls.pem })).status;
  const auth = options.args?.indexOf('--auth') ?? -1;
  const authFile = auth >= 0 ? options.args![auth + 1] : options.env?.MEDAID_AUTH_FILE;
  if (authFile !== undefined && authFiles.has(authFile)) servicesWithCallers.add(url);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`service exited during start-up: ${err}`);
    try {
      if ((await ready()) === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`service did not become ready in time: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    port,
    dataDir,
    process: child,
    exited,
    stdout: () => out,
    stderr: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface AuthToken {
  token: string;
  kind: 'admin' | 'hospital' | 'auditor';
  id: string;
}

/**
 * The callers every auth file of the tests also holds: an administrator, an auditor and the
 * hospitals the tests settle for. `http()` calls a service started with such a file as the caller
 * its route's rule (apps/medaid/src/http/access.ts) needs, unless the call sends its own
 * Authorization header (or `anonymous()`): tests of funds or reports then run with access control
 * on without spelling a token out in every call. What each caller may do is tested in
 * test/access.e2e.spec.ts, which sends every header itself.
 */
export const TEST_CALLERS = {
  admin: 'test-admin-token-0123456789abcdef',
  auditor: 'test-auditor-token-0123456789abcdef',
  hospitals: Object.fromEntries(
    ['h-county', 'h-county-2', 'h-city', 'h-dup', 'h-term', 'h1', 'h-a', 'h-b'].map((id) => [id, `test-hospital-${id}-token-0123456789`]),
  ) as Record<string, string>,
};
const TEST_CALLER_TOKENS: AuthToken[] = [
  { token: TEST_CALLERS.admin, kind: 'admin', id: 'test-admin' },
  { token: TEST_CALLERS.auditor, kind: 'auditor', id: 'test-auditor' },
  ...Object.entries(TEST_CALLERS.hospitals).map(([id, token]) => ({ token, kind: 'hospital' as const, id })),
];
/** Auth files written by writeAuthFile (they hold TEST_CALLERS), and the services started with one. */
const authFiles = new Set<string>();
const servicesWithCallers = new Set<string>();

/**
 * An auth file for `serve --auth` holding these tokens and TEST_CALLERS, in a directory of its own
 * (remove it with removeDir); `sections` adds its "jwt" or "tls" (their files may be written into `dir` first).
 */
export function writeAuthFile(
  tokens: AuthToken[],
  sections: { jwt?: unknown; tls?: unknown } = {},
  dir = tempDir('medaid-auth-'),
): { dir: string; file: string } {
  const file = join(dir, 'auth.json');
  const taken = new Set(tokens.map((t) => t.token));
  writeFileSync(file, JSON.stringify({ tokens: [...tokens, ...TEST_CALLER_TOKENS.filter((t) => !taken.has(t.token))], ...sections }));
  authFiles.add(file);
  return { dir, file };
}

/** Headers that make `http()` call without credentials even on a service with TEST_CALLERS. */
export const anonymous = (): Record<string, string> => ({ 'x-test-anonymous': '1' });

/** The token `http()` sends for a call that sends none: the first role of the route's rule that TEST_CALLERS holds. */
function testCaller(method: string, path: string, body: unknown): string | undefined {
  const bare = path.split('?')[0]!;
  const key = Object.keys(ACCESS_RULES).find((k) => {
    const [m, pattern] = k.split(' ');
    return m === method && pattern !== undefined && new RegExp(`^${pattern.replace(/:[A-Za-z]+/g, '[^/]+')}$`).test(bare);
  });
  const rule = ruleOf(key ?? `${method} ${bare}`);
  if (rule === undefined || rule.public) return undefined;
  for (const role of rule.roles) {
    if (role === 'admin') return TEST_CALLERS.admin;
    if (role === 'auditor') return TEST_CALLERS.auditor;
    const hospitalId =
      rule.hospital === 'param'
        ? decodeURIComponent(bare.split('/')[3] ?? '')
        : body !== null && typeof body === 'object'
          ? (body as { hospitalId?: unknown }).hospitalId
          : undefined;
    const token = typeof hospitalId === 'string' ? TEST_CALLERS.hospitals[hospitalId] : undefined;
    if (token !== undefined) return token;
  }
  return undefined;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface HttpReply {
  status: number;
  body: any;
  headers: Headers;
}

export async function http(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<HttpReply> {
  const own = Object.keys(headers).some((h) => h.toLowerCase() === 'authorization' || h === 'x-test-anonymous');
  const token = own || !servicesWithCallers.has(base) ? undefined : testCaller(method, path, body);
  if (token !== undefined) headers = { authorization: `Bearer ${token}`, ...headers };
  const r = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: r.status, body: parsed, headers: r.headers };
}

/** Runs `medaid simulate` as a child process and returns its stdout lines. */
export function runSimulate(args: string[], input?: string): { status: number | null; lines: string[]; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'simulate', ...args], { cwd: ROOT, input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { status: r.status, lines: r.stdout.split('\n').filter((l) => l !== ''), stderr: r.stderr };
}

/** A discharge of the demo policy's region with sensible defaults; override what a test needs. */
export function discharge(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hospitalId: 'h-county',
    visitId: 'v-1',
    personId: 'p-1',
    region: '360827',
    scheme: 'nrcms',
    visitType: 'inpatient',
    hospitalLevel: 'county',
    admissionDate: '2012-03-01',
    dischargeDate: '2012-03-10',
    diagnosisCodes: ['C34.9'],
    totalFen: 1_000_000,
    ...overrides,
  };
}

/** Runs fn over the items with at most `concurrency` calls in flight; the results in the items' order. */
export async function pool<T, R>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}
