// (e) and (f): medaid's Kafka integration against a REAL broker, each figure beside kafkajs alone
// doing the same shape of work in its own process, as the service runs in its own process (this
// file run as `node kafka.js baseline CONFIG.json`, so kafkajs is imported by no other bench file).
// (e) discharges/s end to end: N SettleDischarge messages produced as fast as possible to
//     <prefix>medaid.discharges.v1 until N outcomes (ok, new, each visit once) are consumed from
//     <prefix>medaid.settlements.v1. Baseline: a consumer group that answers each message with the
//     service's own outcome for that visit, the way the service's ingress does (64 messages of a
//     partition at once, their outcomes in one request; idempotent producer with acks=all, offset
//     commit every 100).
// (f) relay events/s: the service starts on a store that already holds M events; its relay
//     publishes them all from an empty checkpoint, until M distinct events are consumed from
//     <prefix>medaid.events.v1 (checked: count, per-stream revision order). Baseline: the very
//     same messages (key, value, headers, and the payout copies) in the relay's batches.
// The broker: $KAFKA_BROKERS, else deploy/kafka-local (started here when not running, and then
// stopped at the end, also on Ctrl-C; see kafka-rig.js, which also holds the checking collectors).
// Every run has its own topics and groups, deleted at the end.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { NODE_FLAGS, ROOT, dist, dischargeFor, freePort, removeDir, scaled, setting, startServer, tempDir } from './common.js';
import { Outcomes, Relayed, getBroker, keepError, quantile, runId, stopChild, waitUntil } from './kafka-rig.js';

const SELF = fileURLToPath(import.meta.url);
const BIN = join(ROOT, 'bin/medaid.js');
/** Discharges per produce request of the load generator (same for service and baseline). */
const PRODUCE_CHUNK = 500;
/** Messages of a partition the ingress handles at once (apps/medaid/src/kafka/kafka-bridge.ts). */
const WAVE = 64;
/** The ingress runner's commit interval and the relay's batch limits (libs/kafka, event-relay.ts defaults). */
const COMMIT_EVERY = 100;
const RELAY_BATCH_EVENTS = 500;
const RELAY_BATCH_BYTES = 512 * 1024;
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

// ---- kafkajs helpers ----------------------------------------------------------------------------

function client(brokers, clientId, log = keepError) {
  return new Kafka({
    brokers,
    clientId,
    logLevel: logLevel.ERROR,
    retry: { initialRetryTime: 200, maxRetryTime: 3_000, retries: 8 },
    logCreator:
      () =>
      ({ namespace, log: entry }) =>
        log(`${namespace}: ${entry.message}`),
  });
}

/** The service's producer settings (KafkaPublisher): idempotent, acks=all, one request in flight. */
const publisher = (kafka) =>
  kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: 5 },
  });

/** A group member reading `topics` from the beginning; resolves once it has joined and fetched. */
async function listen(kafka, groupId, topics, onMessage) {
  const consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: 200,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxBytesPerPartition: 4 << 20,
    maxBytes: 16 << 20,
  });
  const state = { consumer, crash: undefined };
  // kafkajs restarts itself after a retriable crash (e.g. "coordinator is loading" on a fresh broker).
  consumer.on(consumer.events.CRASH, (e) => {
    if (!e.payload.restart) state.crash = e.payload.error;
  });
  const fetching = new Promise((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => consumer.on(consumer.events.FETCH, resolve)));
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: 16,
    eachBatch: async ({ batch }) => {
      const at = performance.now();
      for (const m of batch.messages) onMessage(m, at, batch.partition);
    },
  });
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`consumer ${groupId} did not join in 60 s`)), 60_000);
  });
  try {
    await Promise.race([fetching, late]);
  } catch (e) {
    await consumer.disconnect().catch(() => undefined); // a running consumer would keep this process alive
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return state;
}

async function messagesIn(admin, topic) {
  return (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
}

async function cleanUpKafka(admin, topics, groups) {
  await admin.deleteGroups(groups).catch(() => undefined);
  await admin.deleteTopics({ topics, timeout: 10_000 }).catch(() => undefined);
  await admin.disconnect().catch(() => undefined);
}

/** A baseline process (this file, role echo or publish); resolves once it answers /ready. */
async function startBaseline(config, dir) {
  const port = await freePort();
  const path = join(dir, `${config.role}.json`);
  writeFileSync(path, JSON.stringify({ ...config, port }));
  const child = await startServer(
    `kafkajs ${config.role}`,
    [...NODE_FLAGS, SELF, 'baseline', path],
    `http://127.0.0.1:${port}/ready`,
    60_000,
  );
  return { child, url: `http://127.0.0.1:${port}` };
}

// ---- (e) discharges end to end -------------------------------------------------------------------

/** Produces the warm-up, waits for its outcomes, then the same for the measured messages. */
async function settleThroughKafka(kafka, topic, phases, sink, timeoutMs, failed) {
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    let result;
    for (const [name, messages] of phases) {
      for (const m of messages) sink.pending.add(m.key);
      const sentAt = new Map();
      const t0 = performance.now();
      for (let i = 0; i < messages.length; i += PRODUCE_CHUNK) {
        const chunk = messages.slice(i, i + PRODUCE_CHUNK);
        const t = performance.now();
        for (const m of chunk) sentAt.set(m.key, t);
        await producer.send({ topic, acks: -1, messages: chunk });
      }
      const producedMs = performance.now() - t0;
      await waitUntil(
        `${messages.length} ${name} outcomes (${messages.length - sink.pending.size} arrived)`,
        () => sink.pending.size === 0,
        timeoutMs,
        () => (sink.problems.length > 0 ? sink.problems.join('; ') : failed()),
      );
      const latencies = messages.map((m) => sink.byVisit.get(m.key).at - sentAt.get(m.key)).sort((a, b) => a - b);
      const ms = sink.lastAt - t0;
      result = { rate: (messages.length / ms) * 1000, ms, producedMs, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
    }
    return result;
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

export async function benchKafkaDischarges() {
  const n = scaled('BENCH_KAFKA_DISCHARGES', 5_000, 100);
  const warmup = scaled('BENCH_KAFKA_WARMUP', 200, 20);
  const persons = scaled('BENCH_KAFKA_PERSONS', 1_000, 50);
  const partitions = setting('BENCH_KAFKA_PARTITIONS', 3);
  const timeoutMs = setting('BENCH_KAFKA_TIMEOUT', 180) * 1000;
  const { topicNames } = await import(dist('apps/medaid/src/kafka/kafka-settings.js'));
  const { seedPersons } = await import('./http.js');
  const b = await getBroker();
  const run = runId('e');
  const topics = topicNames(`${run}.`);
  const base = { in: `${run}-base.discharges`, out: `${run}-base.outcomes` };
  const groups = { medaid: `${run}.medaid`, sink: `${run}.sink`, echo: `${run}-base.echo`, baseSink: `${run}-base.sink` };
  const message = (i, prefix) => {
    const d = dischargeFor(i, i % persons, prefix);
    return { key: `${d.hospitalId}:${d.visitId}`, value: JSON.stringify({ type: 'SettleDischarge', ...d }) };
  };
  const phases = [
    ['warm-up', Array.from({ length: warmup }, (_, i) => message(n + i, 'kw'))],
    ['measured', Array.from({ length: n }, (_, i) => message(i, 'km'))],
  ];
  const kafka = client(b.brokers, 'medaid-bench');
  const admin = kafka.admin();
  await admin.connect();
  const dir = tempDir('kafka-e');
  const consumers = [];
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [...Object.values(topics), base.in, base.out].map((topic) => ({ topic, numPartitions: partitions })),
    });

    // The service, on a fresh data directory, its persons seeded over HTTP as in (c).
    const sink = new Outcomes();
    consumers.push(await listen(kafka, groups.sink, [topics.settlements], (m, at, partition) => sink.add(m, at, partition)));
    const port = await freePort();
    const medaid = await startServer(
      'medaid',
      [...NODE_FLAGS, BIN, 'serve', '--data', join(dir, 'data'), '--port', String(port), '--quiet'],
      `http://127.0.0.1:${port}/ready`,
      60_000,
      {
        KAFKA_BROKERS: b.brokers.join(','),
        KAFKA_TOPIC_PREFIX: `${run}.`,
        KAFKA_GROUP_ID: groups.medaid,
        KAFKA_TOPIC_PARTITIONS: String(partitions),
      },
    );
    let service;
    try {
      await seedPersons(`http://127.0.0.1:${port}`, persons);
      service = await settleThroughKafka(kafka, topics.discharges, phases, sink, timeoutMs, () => consumers[0].crash?.message);
    } catch (e) {
      e.message += `\nmedaid's stderr: ${medaid.stderr().slice(-1500)}`;
      throw e;
    } finally {
      await stopChild(medaid, 'medaid');
    }
    const dead = await messagesIn(admin, topics.dlq);
    if (dead > 0 || sink.received !== warmup + n)
      throw new Error(`medaid: ${sink.received} outcomes and ${dead} dead letters for ${warmup + n} discharges`);

    // The baseline answers each discharge with the outcome the service gave for that visit.
    const outcomesPath = join(dir, 'outcomes.json');
    writeFileSync(
      outcomesPath,
      JSON.stringify(Object.fromEntries([...sink.byVisit].map(([visit, o]) => [visit, { key: o.key, value: o.value }]))),
    );
    const baseSink = new Outcomes();
    consumers.push(await listen(kafka, groups.baseSink, [base.out], (m, at, partition) => baseSink.add(m, at, partition)));
    const echo = await startBaseline(
      { role: 'echo', brokers: b.brokers, inTopic: base.in, outTopic: base.out, groupId: groups.echo, partitions, outcomesPath },
      dir,
    );
    let baseline;
    try {
      baseline = await settleThroughKafka(kafka, base.in, phases, baseSink, timeoutMs, () => consumers[1].crash?.message);
    } finally {
      await stopChild(echo.child, 'kafkajs echo');
    }
    if (baseSink.received !== warmup + n) throw new Error(`baseline: ${baseSink.received} outcomes for ${warmup + n} discharges`);
    const outcomeBytes = [...sink.byVisit.values()].reduce((s, o) => s + Buffer.byteLength(o.value), 0) / sink.byVisit.size;
    return {
      service,
      baseline,
      notes:
        `${n} discharges (+${warmup} warm-up) of ${persons} persons, ${partitions} partitions, ${b.version} at ${b.brokers.join(',')} (${b.origin}); ` +
        `all ${n} produced at once in requests of ${PRODUCE_CHUNK} (acks=all; done after ${Math.round(service.producedMs)} / ${Math.round(baseline.producedMs)} ms), ` +
        `first produce → last outcome ${Math.round(service.ms)} ms (medaid) / ${Math.round(baseline.ms)} ms (baseline), every outcome ok, new, each visit once, no dead letters; ` +
        `latency = produce request → outcome consumed, so it includes the queue; outcomes ≈ ${Math.round(outcomeBytes)} B; baseline = a kafkajs consumer group in ` +
        `its own process answering each message with medaid's outcome for that visit (${WAVE} messages of a partition at once, their outcomes in one request, idempotent producer, acks=all, commit every ${COMMIT_EVERY}); ` +
        `medaid's relay publishes its events meanwhile`,
    };
  } finally {
    for (const c of consumers) await c.consumer.disconnect().catch(() => undefined);
    await cleanUpKafka(admin, [...Object.values(topics), base.in, base.out], Object.values(groups));
    removeDir(dir);
  }
}

// ---- (f) the relay ------------------------------------------------------------------------------

export async function benchKafkaRelay() {
  const total = scaled('BENCH_RELAY_EVENTS', 50_000, 1_000);
  const persons = scaled('BENCH_RELAY_PERSONS', 5_000, 100);
  const partitions = setting('BENCH_KAFKA_PARTITIONS', 3);
  const timeoutMs = setting('BENCH_KAFKA_TIMEOUT', 180) * 1000;
  const { topicNames } = await import(dist('apps/medaid/src/kafka/kafka-settings.js'));
  const { carriesPayouts } = await import(dist('apps/medaid/src/kafka/event-relay.js'));
  const { generateLog } = await import('./replay.js');
  const b = await getBroker();
  const run = runId('f');
  const topics = topicNames(`${run}.`);
  const base = { events: `${run}-base.events`, payouts: `${run}-base.payouts` };
  const groups = { medaid: `${run}.medaid`, sink: `${run}.sink`, baseSink: `${run}-base.sink` };
  const kafka = client(b.brokers, 'medaid-bench');
  const admin = kafka.admin();
  await admin.connect();
  const dir = tempDir('kafka-f');
  const consumers = [];
  try {
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    const genStart = performance.now();
    const { written } = await generateLog(join(dataDir, 'events.sqlite'), total, persons);
    const genMs = performance.now() - genStart;
    await admin.createTopics({
      waitForLeaders: true,
      topics: [...Object.values(topics), ...Object.values(base)].map((topic) => ({ topic, numPartitions: partitions })),
    });

    // The service on that store: its relay starts from an empty checkpoint.
    const relayed = new Relayed(true);
    consumers.push(await listen(kafka, groups.sink, [topics.events], (m, at) => relayed.add(m, at)));
    const port = await freePort();
    const spawnedAt = performance.now();
    const medaid = await startServer(
      'medaid',
      [...NODE_FLAGS, BIN, 'serve', '--data', dataDir, '--port', String(port), '--quiet'],
      `http://127.0.0.1:${port}/ready`,
      120_000,
      {
        KAFKA_BROKERS: b.brokers.join(','),
        KAFKA_TOPIC_PREFIX: `${run}.`,
        KAFKA_GROUP_ID: groups.medaid,
        KAFKA_TOPIC_PARTITIONS: String(partitions),
      },
    );
    const readyAt = performance.now();
    let ready;
    try {
      ready = await (await fetch(`http://127.0.0.1:${port}/ready`)).json();
      if (ready.events !== written) throw new Error(`medaid holds ${ready.events} events, ${written} were written`);
      await waitUntil(
        `${written} events on ${topics.events} (${relayed.ids.size} arrived)`,
        () => relayed.ids.size >= written,
        timeoutMs,
        () => (relayed.problems.length > 0 ? relayed.problems.join('; ') : consumers[0].crash?.message),
      );
    } catch (e) {
      e.message += `\nmedaid's stderr: ${medaid.stderr().slice(-1500)}`;
      throw e;
    } finally {
      await stopChild(medaid, 'medaid');
    }
    if (relayed.problems.length > 0 || relayed.ids.size !== written)
      throw new Error(`relayed: ${relayed.ids.size} distinct events of ${written}; ${relayed.problems.join('; ')}`);
    const service = { rate: (written / (relayed.lastAt - readyAt)) * 1000, ms: relayed.lastAt - readyAt };

    // The baseline publishes what the relay published, in log order, in the relay's batches.
    const messages = relayed.events
      .map((e) => {
        const value = JSON.parse(e.value);
        if (value.id !== e.headers['event-id'] || value.streamId !== e.key || String(value.revision) !== e.headers['stream-revision']) {
          throw new Error(`relayed ${e.key}@${e.headers['stream-revision']}: key, headers and value disagree`);
        }
        return { position: value.position, payout: carriesPayouts(value), message: e };
      })
      .sort((x, y) => x.position - y.position);
    const payouts = messages.filter((m) => m.payout).length;
    const payoutMessages = await messagesIn(admin, topics.payouts);
    if (payoutMessages < payouts) throw new Error(`${payoutMessages} messages on ${topics.payouts}, ${payouts} payout events relayed`);
    const messagesPath = join(dir, 'relayed.jsonl');
    writeFileSync(messagesPath, messages.map((m) => JSON.stringify({ payout: m.payout, ...m.message })).join('\n'));
    const bytes = messages.reduce((s, m) => s + Buffer.byteLength(m.message.value), 0);
    relayed.events = []; // the copies are in the file now
    const baseRelayed = new Relayed(false);
    consumers.push(await listen(kafka, groups.baseSink, [base.events], (m, at) => baseRelayed.add(m, at)));
    const publish = await startBaseline(
      { role: 'publish', brokers: b.brokers, eventsTopic: base.events, payoutsTopic: base.payouts, messagesPath },
      dir,
    );
    let baseline;
    try {
      const t0 = performance.now();
      const done = fetch(`${publish.url}/go`, { method: 'POST' }).then(async (r) => ({ status: r.status, text: await r.text() }));
      await waitUntil(
        `${written} events on ${base.events} (${baseRelayed.ids.size} arrived)`,
        () => baseRelayed.ids.size >= written,
        timeoutMs,
        () => (baseRelayed.problems.length > 0 ? baseRelayed.problems.join('; ') : consumers[1].crash?.message),
      );
      const answer = await done;
      if (answer.status !== 200) throw new Error(`kafkajs publish: HTTP ${answer.status} ${answer.text.slice(0, 1000)}`);
      baseline = { rate: (written / (baseRelayed.lastAt - t0)) * 1000, ms: baseRelayed.lastAt - t0 };
    } finally {
      await stopChild(publish.child, 'kafkajs publish');
    }
    if (baseRelayed.problems.length > 0) throw new Error(`baseline: ${baseRelayed.problems.join('; ')}`);
    return {
      service,
      baseline,
      notes:
        `${written} events (≈ ${Math.round(bytes / written)} B each as relayed, ${payouts} of them also to the payouts topic) of ${persons} persons, generated in ` +
        `${(genMs / 1000).toFixed(1)} s; ${partitions} partitions, ${b.version} at ${b.brokers.join(',')} (${b.origin}); medaid start-up to /ready ` +
        `${Math.round(readyAt - spawnedAt)} ms (rebuild ${ready.rebuilt.ms} ms), first event consumed ${Math.round(relayed.firstAt - readyAt)} ms after ready, ` +
        `the last after ${Math.round(service.ms)} ms, ${relayed.received - written} duplicates dropped by event-id, every stream in revision order; ` +
        `baseline = the same messages (key, value, headers, payout copies) from a kafkajs idempotent producer in its own process in the relay's batches ` +
        `(≤ ${RELAY_BATCH_EVENTS} events, ≤ ${RELAY_BATCH_BYTES / 1024} KiB, one in flight, acks=all), timed from the go signal (producer connect included) ` +
        `to the last consumed: ${Math.round(baseline.ms)} ms`,
    };
  } finally {
    for (const c of consumers) await c.consumer.disconnect().catch(() => undefined);
    await cleanUpKafka(admin, [...Object.values(topics), ...Object.values(base)], Object.values(groups));
    removeDir(dir);
  }
}

// ---- the baseline processes (`node kafka.js baseline CONFIG.json`) ------------------------------

/** GET /ready (200 once isReady()), POST /go runs go() and answers when it is done. */
function control(port, isReady, go) {
  const server = createServer((req, res) => {
    if (req.url === '/ready') {
      res.statusCode = isReady() ? 200 : 503;
      res.end();
    } else if (req.method === 'POST' && req.url === '/go' && go !== undefined) {
      go().then(
        () => res.end('{}'),
        (e) => {
          res.statusCode = 500;
          res.end(String(e?.stack ?? e));
        },
      );
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  server.listen(port, '127.0.0.1');
  return server;
}

/** (e)'s baseline: consume → publish the outcome, shaped like the service's ConsumerRunner and ingress. */
async function echo(c, kafka, closers) {
  const outcomes = JSON.parse(readFileSync(c.outcomesPath, 'utf8'));
  const producer = publisher(kafka);
  await producer.connect();
  closers.push(() => producer.disconnect());
  const consumer = kafka.consumer({
    groupId: c.groupId,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxBytesPerPartition: 1 << 20,
    maxBytes: 8 << 20,
    maxWaitTimeInMs: 1_000,
    allowAutoTopicCreation: false,
  });
  closers.unshift(() => consumer.disconnect());
  let ready = false;
  consumer.on(consumer.events.GROUP_JOIN, () =>
    consumer.on(consumer.events.FETCH, () => {
      ready = true;
    }),
  );
  await consumer.connect();
  await consumer.subscribe({ topics: [c.inTopic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: c.partitions,
    eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
      const { topic, partition } = batch;
      let last;
      let uncommitted = 0;
      const commit = async () => {
        if (uncommitted === 0) return;
        await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset: (BigInt(last) + 1n).toString() }] }] });
        uncommitted = 0;
      };
      try {
        // Like the ingress: up to WAVE messages of a partition at once, their outcomes out in one request.
        for (let start = 0; start < batch.messages.length; start += WAVE) {
          if (!isRunning() || isStale()) break;
          const wave = batch.messages.slice(start, start + WAVE);
          const messages = wave.map((m) => {
            const outcome = outcomes[m.key.toString('utf8')];
            if (outcome === undefined) throw new Error(`no outcome for ${m.key}`);
            const headers = {
              'source-topic': topic,
              'source-partition': String(partition),
              'source-offset': m.offset,
              'source-timestamp': m.timestamp,
              'command-type': 'SettleDischarge',
            };
            return { key: outcome.key, value: outcome.value, headers };
          });
          await producer.sendBatch({ acks: -1, topicMessages: [{ topic: c.outTopic, messages }] });
          for (const m of wave) {
            resolveOffset(m.offset);
            last = m.offset;
            uncommitted++;
          }
          if (uncommitted >= COMMIT_EVERY) await commit();
          await heartbeat();
        }
      } finally {
        await commit();
      }
    },
  });
  return control(c.port, () => ready);
}

/** (f)'s baseline: the relayed messages, in the relay's batches, one batch in flight. */
async function publish(c, kafka, closers) {
  const lines = readFileSync(c.messagesPath, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
  const batches = [];
  let batch = [];
  let bytes = 0;
  for (const { payout, ...m } of lines) {
    const size = Buffer.byteLength(m.value) + Buffer.byteLength(m.key) + 200; // the relay's estimate
    if (batch.length > 0 && (batch.length >= RELAY_BATCH_EVENTS || bytes + size > RELAY_BATCH_BYTES)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push({ payout, m });
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  const producer = publisher(kafka);
  closers.push(() => producer.disconnect());
  return control(
    c.port,
    () => true,
    async () => {
      await producer.connect(); // the relay's producer connects at its first send too
      for (const list of batches) {
        const payouts = list.filter((p) => p.payout).map((p) => p.m);
        const topicMessages = [
          { topic: c.eventsTopic, messages: list.map((p) => p.m) },
          ...(payouts.length > 0 ? [{ topic: c.payoutsTopic, messages: payouts }] : []),
        ];
        await producer.sendBatch({ acks: -1, topicMessages });
      }
    },
  );
}

async function baselineMain(configPath) {
  const c = JSON.parse(readFileSync(configPath, 'utf8'));
  const kafka = client(c.brokers, `medaid-bench-${c.role}`, (line) => process.stderr.write(`${line}\n`));
  const closers = [];
  const server = await (c.role === 'echo' ? echo : publish)(c, kafka, closers);
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, async () => {
      setTimeout(() => process.exit(1), 5_000).unref();
      for (const close of closers) await close().catch(() => undefined);
      server.close();
      process.exit(0);
    });
  }
}

if (process.argv[1] === SELF && process.argv[2] === 'baseline') await baselineMain(process.argv[3]);
