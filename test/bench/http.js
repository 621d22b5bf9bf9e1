// (c) HTTP settlements under a concurrent load generator (autocannon, in this process): the real
// service (`node bin/medaid.js serve --quiet`, its own process and fresh data directory) against a
// bare Fastify route in its own process answering a JSON of the same size. Identical autocannon
// settings, one after the other; every request is a NEW settlement (unique visitId) of one of many
// persons.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { NODE_FLAGS, ROOT, dischargeFor, freePort, personFacts, personId, pool, removeDir, scaled, setting, startServer, tempDir } from './common.js';

const BIN = join(ROOT, 'bin/medaid.js');
const BARE = join(ROOT, 'test/bench/bare-fastify.js');

async function post(url, body) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

/** Records every person's category / approval over HTTP. */
export async function seedPersons(base, persons) {
  await pool(persons, 32, async (p) => {
    for (const f of personFacts(p)) {
      const path = f.type === 'AssignCategory' ? 'categories' : 'approvals';
      const { type, personId: _, ...body } = f;
      const r = await post(`${base}/v1/persons/${personId(p)}/${path}`, body);
      if (r.status !== 200) throw new Error(`${type} ${personId(p)}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    }
  });
}

/** One autocannon run; every request body is a new discharge (visitId `${prefix}${n}`). */
function load(port, { connections, seconds, persons, prefix }) {
  let n = 0;
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    pipelining: 1,
    duration: seconds,
    timeout: 10,
    requests: [{
      method: 'POST',
      path: '/v1/settlements',
      headers: { 'content-type': 'application/json' },
      setupRequest: (req) => {
        const i = n++;
        return { ...req, body: JSON.stringify(dischargeFor(i, i % persons, prefix)) };
      },
    }],
  });
}

function summarise(result) {
  const created = result.statusCodeStats?.['201']?.count ?? 0;
  return {
    rate: result['2xx'] / result.duration,
    created,
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    p50: result.latency.p50,
    p99: result.latency.p99,
    duration: result.duration,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
  };
}

async function measure(port, options) {
  await load(port, { ...options, seconds: options.warmupSeconds, prefix: `${options.prefix}w` });
  return summarise(await load(port, { ...options, prefix: `${options.prefix}m` }));
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
    const medaid = await startServer('medaid', [...NODE_FLAGS, BIN, 'serve', '--data', join(dir, 'data'), '--port', String(port), '--quiet'], `http://127.0.0.1:${port}/ready`);
    let service;
    let sample;
    try {
      await seedPersons(`http://127.0.0.1:${port}`, persons);
      const first = await post(`http://127.0.0.1:${port}/v1/settlements`, dischargeFor(0, 1, 'sample'));
      if (first.status !== 201) throw new Error(`sample settlement: HTTP ${first.status} ${JSON.stringify(first.body)}`);
      sample = first.body;
      service = await measure(port, { ...options, prefix: 'http' });
    } finally {
      const exit = await medaid.stop();
      if (exit.code !== 0 && exit.signal !== 'SIGTERM') console.error(`medaid exited with ${JSON.stringify(exit)}: ${medaid.stderr()}`);
    }

    // The bare Fastify route, answering the same-sized JSON.
    const samplePath = join(dir, 'sample.json');
    writeFileSync(samplePath, JSON.stringify(sample));
    const barePort = await freePort();
    const bare = await startServer('bare fastify', [...NODE_FLAGS, BARE, String(barePort), samplePath], `http://127.0.0.1:${barePort}/ready`);
    let baseline;
    try {
      baseline = await measure(barePort, { ...options, prefix: 'bare' });
    } finally {
      await bare.stop();
    }
    return {
      service, baseline, responseBytes: Buffer.byteLength(JSON.stringify(sample)),
      notes: `autocannon ${connections} connections, pipelining 1, ${warmupSeconds} s warm-up + ${seconds} s each, ` +
        `${persons} persons, unique visitIds; response ≈ ${Buffer.byteLength(JSON.stringify(sample))} B`,
    };
  } finally {
    removeDir(dir);
  }
}
