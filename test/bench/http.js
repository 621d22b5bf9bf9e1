// (c) HTTP settlements under a concurrent load generator (autocannon, in a process of its own): the real
// service (`node bin/medaid.js serve --quiet`, its own process and fresh data directory) against a
// bare Fastify route in its own process answering a JSON of the same size. Identical autocannon
// settings, one after the other; every request is a NEW settlement (unique visitId) of one of many
// persons.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import {
  NODE_FLAGS,
  ROOT,
  dischargeFor,
  freePort,
  onCleanup,
  personFacts,
  personId,
  pool,
  removeDir,
  scaled,
  setting,
  startServer,
  tempDir,
} from './common.js';

const BIN = join(ROOT, 'bin/medaid.js');
const BARE = join(ROOT, 'test/bench/bare-fastify.js');
const LOAD = join(ROOT, 'test/bench/http-load.js');

export async function post(url, body, headers = {}) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

/** The fixed rate of (c)'s open-loop run, requests/s (BENCH_HTTP_OPEN_RATE). */
const OPEN_RATE = setting('BENCH_HTTP_OPEN_RATE', 1_000);

/** Records every person's category / approval over HTTP (as the caller `headers` name, if any). */
export async function seedPersons(base, persons, headers = {}) {
  await pool(persons, 32, async (p) => {
    for (const f of personFacts(p)) {
      const path = f.type === 'AssignCategory' ? 'categories' : 'approvals';
      const { type, personId: _, ...body } = f;
      const r = await post(`${base}/v1/persons/${personId(p)}/${path}`, body, headers);
      if (r.status !== 200) throw new Error(`${type} ${personId(p)}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    }
  });
}

/**
 * The warm-up and the measured run, by the load generator in a child process of its own
 * (http-load.js), with the same Node flags as the servers.
 */
export async function measure(port, options) {
  const child = spawn(process.execPath, [...NODE_FLAGS, LOAD, JSON.stringify({ port, ...options })], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  const forget = onCleanup(() => child.kill('SIGKILL')); // on Ctrl-C or a crash of the bench
  const code = await new Promise((resolve) => child.once('exit', resolve));
  forget();
  if (code !== 0) throw new Error(`load generator exited with ${code}: ${err}`);
  return JSON.parse(out.trim().split('\n').pop());
}

export async function benchHttp() {
  const persons = scaled('BENCH_PERSONS', 2_000, 50);
  const connections = setting('BENCH_HTTP_CONNECTIONS', 50);
  const seconds = scaled('BENCH_HTTP_SECONDS', 10, 1);
  const warmupSeconds = scaled('BENCH_HTTP_WARMUP', 2, 1);
  const options = { connections, seconds, warmupSeconds, persons };
  const dir = tempDir('http');
  try {
    // The real service on a fresh data directory (the demo policy is published on first start).
    const port = await freePort();
    const medaid = await startServer(
      'medaid',
      [...NODE_FLAGS, BIN, 'serve', '--data', join(dir, 'data'), '--port', String(port), '--quiet'],
      `http://127.0.0.1:${port}/ready`,
    );
    let service;
    let sample;
    try {
      await seedPersons(`http://127.0.0.1:${port}`, persons);
      const first = await post(`http://127.0.0.1:${port}/v1/settlements`, dischargeFor(0, 1, 'sample'));
      if (first.status !== 201) throw new Error(`sample settlement: HTTP ${first.status} ${JSON.stringify(first.body)}`);
      sample = first.body;
      service = await measure(port, { ...options, prefix: 'http' });
      // latency at an ordinary, fixed load (open loop), not at saturation
      service.open = await measure(port, { ...options, overallRate: OPEN_RATE, prefix: 'httpo' });
    } finally {
      const exit = await medaid.stop();
      if (exit.code !== 0 && exit.signal !== 'SIGTERM') console.error(`medaid exited with ${JSON.stringify(exit)}: ${medaid.stderr()}`);
    }

    // The bare Fastify route, answering the same-sized JSON.
    const samplePath = join(dir, 'sample.json');
    writeFileSync(samplePath, JSON.stringify(sample));
    const barePort = await freePort();
    const bare = await startServer(
      'bare fastify',
      [...NODE_FLAGS, BARE, String(barePort), samplePath],
      `http://127.0.0.1:${barePort}/ready`,
    );
    let baseline;
    try {
      baseline = await measure(barePort, { ...options, prefix: 'bare' });
      baseline.open = await measure(barePort, { ...options, overallRate: OPEN_RATE, prefix: 'bareo' });
    } finally {
      await bare.stop();
    }
    return {
      service,
      baseline,
      responseBytes: Buffer.byteLength(JSON.stringify(sample)),
      notes:
        `autocannon ${connections} connections, pipelining 1, ${warmupSeconds} s warm-up + ${seconds} s each, ` +
        `${persons} persons, unique visitIds; response ≈ ${Buffer.byteLength(JSON.stringify(sample))} B`,
    };
  } finally {
    removeDir(dir);
  }
}
