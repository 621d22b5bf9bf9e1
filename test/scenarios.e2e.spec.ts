// The shared scenarios (../shared/spec/examples/scenarios) must be reproduced byte for byte,
// ignoring only `settlementId` and error messages: through `medaid simulate` (a real child
// process) and through the HTTP API of a started service.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { comparable, expectedOf, readLines, scenarios, toRequest } from './support/scenarios.js';
import { SCENARIOS, Service, http, removeDir, runSimulate, startService } from './support/service.js';

export { comparable };

describe('shared scenarios through `medaid simulate`', () => {
  it('finds the five shared scenarios', () => {
    expect(scenarios.length).toBeGreaterThanOrEqual(5);
  });

  it.each(scenarios)('%s', (file) => {
    // Given the scenario's commands, when simulate runs them on a fresh store
    const run = runSimulate(['--input', join(SCENARIOS, file)]);
    // then it exits 0 and prints exactly the expected lines
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.lines.map(comparable)).toEqual(expectedOf(file));
  });

  it('reads commands from standard input and publishes --policy files first without a line for them', () => {
    const commands = readLines('02-dibao-cancer-year.commands.jsonl').filter((l) => !l.includes('"PublishPolicy"'));
    const run = runSimulate(['--policy', join(SCENARIOS, '../demo-policy.json')], commands.join('\n') + '\n');
    expect(run.status).toBe(0);
    expect(run.lines.map(comparable)).toEqual(expectedOf('02-dibao-cancer-year.commands.jsonl').slice(1));
  });

  it('refuses fields that would reach an object prototype', () => {
    const run = runSimulate(
      [],
      [
        '{"type":"RecordDeath","personId":"p","date":"2012-01-01","__proto__":{"x":1}}',
        '{"type":"RecordDeath","personId":"p","date":"2012-01-01","constructor":{}}',
      ].join('\n'),
    );
    expect(run.lines.map((l) => JSON.parse(l).error?.code)).toEqual(['VALIDATION_FAILED', 'VALIDATION_FAILED']);
  });

  it('prints a VALIDATION_FAILED line for a non-JSON line and goes on', () => {
    const run = runSimulate([], 'not json\n{"type":"RecordDeath","personId":"p","date":"2012-01-01"}\n');
    expect(run.status).toBe(0);
    expect(run.lines.map(comparable)).toEqual([
      '{"ok":false,"error":{"code":"VALIDATION_FAILED"}}',
      '{"ok":true,"result":{"personId":"p"}}',
    ]);
  });
});

describe('shared scenarios through HTTP', () => {
  const services: Service[] = [];
  afterAll(async () => {
    for (const s of services) {
      await s.stop();
      removeDir(s.dataDir);
    }
  });

  it.each(scenarios)('%s', async (file) => {
    // Given a started service with an empty store (no demo policy)
    const service = await startService({ demoPolicy: false });
    services.push(service);
    const expected = expectedOf(file);
    const commands = readLines(file);
    let compared = 0;
    for (const [i, line] of commands.entries()) {
      const request = toRequest(JSON.parse(line) as Record<string, unknown>);
      if (request === null) continue;
      // when each command is posted to its route
      const reply = await http(service.url, request.method, request.path, request.body);
      const printed = reply.status < 300 ? { ok: true, result: reply.body } : { ok: false, error: { code: reply.body.code } };
      // then the body is the expected result, and errors carry a message and the right status
      expect(`${i}: ${comparable(JSON.stringify(printed))}`).toBe(`${i}: ${expected[i]}`);
      if (reply.status >= 300) expect(typeof reply.body.message).toBe('string');
      compared++;
    }
    expect(compared).toBeGreaterThan(0);
  });
});

describe('the HTTP status of each outcome', () => {
  let service: Service;
  beforeAll(async () => {
    service = await startService();
  });
  afterAll(async () => {
    await service.stop();
    removeDir(service.dataDir);
  });

  it('answers 201 for a new settlement and 200 with the same settlementId for the identical re-post', async () => {
    const body = JSON.parse(readLines('02-dibao-cancer-year.commands.jsonl')[2]!) as Record<string, unknown>;
    delete body.type;
    const first = await http(service.url, 'POST', '/v1/settlements', body);
    const again = await http(service.url, 'POST', '/v1/settlements', body);
    expect([first.status, again.status]).toEqual([201, 200]);
    expect(again.body.duplicate).toBe(true);
    expect(again.body.settlementId).toBe(first.body.settlementId);
  });
});

describe('request logs', () => {
  it('writes one JSON line per request with its id, outcome and duration', async () => {
    const service = await startService({ quiet: false });
    try {
      // Given three requests, one accepted and two rejected, each with a caller-chosen request id
      const ok = await fetch(`${service.url}/v1/policies`, { headers: { 'x-request-id': 'req-ok-1' } });
      const person = await fetch(`${service.url}/v1/persons/p-log-360827198001011234`, { headers: { 'x-request-id': 'req-person-1' } });
      const bad = await fetch(`${service.url}/v1/settlements`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'req-bad-1' },
        body: '{}',
      });
      expect([ok.status, person.status, bad.status, bad.headers.get('x-request-id')]).toEqual([200, 404, 400, 'req-bad-1']);
      // then stdout holds exactly one line for each, as JSON, with id, route, outcome and duration
      await new Promise((r) => setTimeout(r, 200));
      const lines = service
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"req-'));
      const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(entries.map((e) => [e.requestId, e.status, e.outcome])).toEqual([
        ['req-ok-1', 200, 'ok'],
        ['req-person-1', 404, 'NOT_FOUND'],
        ['req-bad-1', 400, 'VALIDATION_FAILED'],
      ]);
      // the route's pattern is logged, never the person named in the URL
      expect(entries.map((e) => e.route)).toEqual(['/v1/policies', '/v1/persons/:personId', '/v1/settlements']);
      expect(service.stdout() + service.stderr()).not.toContain('360827198001011234');
      for (const e of entries) expect(typeof e.durationMs).toBe('number');
    } finally {
      await service.stop();
      removeDir(service.dataDir);
    }
  });
});
