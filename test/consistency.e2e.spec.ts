// Consistency of the real service under concurrency and crashes: caps under concurrent load,
// idempotency under concurrent re-posts, kill -9 in the middle of a load, SIGTERM drain, and the
// one-process-per-data-directory lock. Real child processes, real HTTP, no mocks.
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, Service, discharge, http, pool, removeDir, startService, tempDir } from './support/service.js';

interface Rule {
  id: string;
  threshold?: { fen: number; per: string };
  bands: Array<{ uptoFen: number | null; ratioBp: number }>;
  annualCaps?: Array<{ counter: string; capFen: number }>;
}
interface Layer {
  id: string;
  kind: string;
  rules: Rule[];
}
const POLICY = JSON.parse(readFileSync(join(ROOT, 'apps/medaid/assets/demo-policy.json'), 'utf8')) as { layers: Layer[] };
const RULES = new Map(POLICY.layers.flatMap((l) => l.rules.map((r) => [r.id, r] as const)));
/** The annual cap of a counter as the rule that paid the layer states it. */
const capOf = (ruleId: string, counter: string) => RULES.get(ruleId)!.annualCaps!.find((c) => c.counter === counter)!.capFen;

type Obj = Record<string, any>;
type Outcome = { status: number; body: Obj } | { error: string };
const isReply = (o: Outcome | undefined): o is { status: number; body: Obj } => o !== undefined && 'status' in o;

const YEAR = 2012;
const layerOf = (result: Obj, id: string): Obj => result.layers.find((l: Obj) => l.layerId === id);
/** A settlement as GET returns it, without what only a reply or only the history carries. */
const comparable = ({ duplicate: _d, settledAtMs: _s, reversal: _r, ...rest }: Obj) => rest;

/** Year state (spec §6) recomputed from a person's active settlement results. */
function recompute(results: Obj[]) {
  const yearBaseFen: Record<string, number> = {};
  const usedFen: Record<string, number> = {};
  for (const r of results) {
    for (const l of r.layers as Obj[]) {
      if (l.ruleId !== null || l.external) yearBaseFen[l.layerId] = (yearBaseFen[l.layerId] ?? 0) + l.baseFen;
      for (const cap of (l.ruleId === null ? undefined : RULES.get(l.ruleId)?.annualCaps) ?? [])
        usedFen[cap.counter] = (usedFen[cap.counter] ?? 0) + l.payFen;
    }
  }
  return { activeSettlements: results.length, yearBaseFen, usedFen };
}

async function personYear(url: string, personId: string): Promise<Obj | undefined> {
  const r = await http(url, 'GET', `/v1/persons/${personId}`);
  expect(r.status).toBe(200);
  return (r.body.years as Obj[]).find((y) => y.year === YEAR);
}

async function assign(url: string, personId: string, category: string): Promise<void> {
  const r = await http(url, 'POST', `/v1/persons/${personId}/categories`, { category, validFrom: `${YEAR}-01-01` });
  expect(r.status).toBe(200);
}

async function readyEvents(url: string): Promise<number> {
  const r = await http(url, 'GET', '/ready');
  expect(r.status).toBe(200);
  return r.body.events as number;
}

/** Posts a settlement; a connection failure is an outcome, not an exception. */
async function post(url: string, body: Obj): Promise<Outcome> {
  try {
    const r = await http(url, 'POST', '/v1/settlements', body);
    return { status: r.status, body: r.body };
  } catch (e) {
    return { error: String((e as Error)?.cause ?? e) };
  }
}

/** Runs fn over items with at most `concurrency` in flight; outcomes in item order. */
async function fetchSettlement(url: string, d: Obj): Promise<Obj | null> {
  const r = await http(url, 'GET', `/v1/settlements/${d.hospitalId}/${d.visitId}`);
  if (r.status === 404) return null;
  expect(r.status).toBe(200);
  return r.body;
}

/** For every person: GET /v1/persons equals what its settled visits (fetched by GET) add up to. */
async function expectPersonsMatchSettlements(url: string, load: Obj[], persons: string[]): Promise<number> {
  const views = await pool(load, 16, (d) => fetchSettlement(url, d));
  let settled = 0;
  for (const personId of persons) {
    const mine = views.filter((v, i) => v !== null && load[i]!.personId === personId);
    for (const v of mine) {
      expect(v!.history).toHaveLength(1);
      expect(v!.current.status).toBe('settled');
    }
    settled += mine.length;
    const expected = recompute(mine.map((v) => v!.current));
    const year = await personYear(url, personId);
    expect({
      personId,
      ...(year === undefined
        ? { activeSettlements: 0, yearBaseFen: {}, usedFen: {} }
        : { activeSettlements: year.activeSettlements, yearBaseFen: year.yearBaseFen, usedFen: year.usedFen }),
    }).toEqual({ personId, ...expected });
    for (const l of mine.flatMap((v) => v!.current.layers as Obj[])) {
      for (const cap of (l.ruleId === null ? undefined : RULES.get(l.ruleId)!.annualCaps) ?? [])
        expect(expected.usedFen[cap.counter]).toBeLessThanOrEqual(cap.capFen);
    }
  }
  return settled;
}

async function safeStop(s: Service | undefined): Promise<void> {
  if (s !== undefined && s.process.exitCode === null && s.process.signalCode === null) await s.stop('SIGKILL');
}

describe('one running service', () => {
  let svc: Service;
  beforeAll(async () => {
    svc = await startService();
  }, 60_000);
  afterAll(async () => {
    await safeStop(svc);
    if (svc !== undefined) removeDir(svc.dataDir);
  });

  it('50 concurrent settlements of one dibao person from two hospitals never exceed a cap and look serial', async () => {
    // Given a dibao person and 50 discharges (25 per hospital) whose demand far exceeds the caps
    await assign(svc.url, 'p-caps', 'dibao');
    const load = Array.from({ length: 50 }, (_, i) =>
      discharge({
        personId: 'p-caps',
        hospitalId: i % 2 === 0 ? 'h-county' : 'h-township',
        hospitalLevel: i % 2 === 0 ? 'county' : 'township',
        visitId: `caps-${i}`,
        totalFen: 1_500_000 + i * 10_000,
      }),
    );
    // When they are all posted at once
    const replies = await Promise.all(load.map((d) => http(svc.url, 'POST', '/v1/settlements', d)));
    // Then every one is settled
    expect(replies.map((r) => r.status)).toEqual(load.map(() => 201));
    const results = replies.map((r) => r.body as Obj);
    const year = await personYear(svc.url, 'p-caps');
    expect(year!.activeSettlements).toBe(50);
    // and each capped counter was used exactly up to its cap, never beyond, as one serial order would
    for (const [layerId, counter] of [
      ['basic', 'basic'],
      ['aid', 'aid'],
      ['aid2', 'aid2'],
      ['aid3', 'aid3'],
    ] as const) {
      const ls = results.map((r) => layerOf(r, layerId));
      const caps = new Set(ls.map((l) => capOf(l.ruleId, counter))); // every rule paid names the counter, with one cap
      expect(caps.size).toBe(1);
      const [cap] = [...caps] as [number];
      const pay = ls.reduce((s, l) => s + l.payFen, 0);
      const raw = ls.reduce((s, l) => s + l.rawFen, 0);
      expect(ls.every((l) => l.payFen >= 0 && l.payFen <= l.rawFen)).toBe(true);
      expect(ls.every((l) => (l.cappedBy === null ? l.payFen === l.rawFen : l.cappedBy === counter && l.payFen < l.rawFen))).toBe(true);
      expect(pay).toBeLessThanOrEqual(cap);
      expect(year!.usedFen[counter]).toBe(pay);
      if (layerId === 'basic' || layerId === 'aid') expect(raw).toBeGreaterThan(cap); // the load must reach these caps
      if (raw > cap) expect(pay).toBe(cap);
      // In a serial order only the settlement that crosses the cap is paid part of its raw amount.
      expect(ls.filter((l) => l.payFen > 0 && l.payFen < l.rawFen).length).toBeLessThanOrEqual(1);
    }
    // and the per-year threshold of the critical layer was consumed exactly once
    const crit = results.map((r) => layerOf(r, 'critical'));
    const rule = RULES.get('critical-tilted')!;
    expect(crit.every((l) => l.ruleId === rule.id)).toBe(true);
    const base = crit.reduce((s, l) => s + l.baseFen, 0);
    expect(year!.yearBaseFen.critical).toBe(base);
    expect(crit.reduce((s, l) => s + l.belowThresholdFen, 0)).toBe(Math.min(base, rule.threshold!.fen));
    // and what it paid is the band integral over the year's cumulative base (± half a fen per settlement)
    let numerator = 0;
    let lo = 0;
    for (const b of rule.bands) {
      const hi = b.uptoFen ?? Infinity;
      numerator += Math.max(0, Math.min(base, hi) - Math.max(rule.threshold!.fen, lo)) * b.ratioBp;
      lo = hi;
    }
    const paid = crit.reduce((s, l) => s + l.payFen, 0);
    expect(Math.abs(paid - numerator / 10_000)).toBeLessThanOrEqual(results.length / 2);
    // and the person's state is exactly the sum of the results
    expect({ activeSettlements: year!.activeSettlements, yearBaseFen: year!.yearBaseFen, usedFen: year!.usedFen }).toEqual(
      recompute(results),
    );
  }, 60_000);

  it('the same discharge posted 20 times at once settles once; a different one on that visit conflicts', async () => {
    // Given a discharge and the number of events recorded so far
    await assign(svc.url, 'p-dup', 'dibao');
    const d = discharge({ personId: 'p-dup', hospitalId: 'h-dup', visitId: 'dup-1', totalFen: 3_000_000 });
    const before = await readyEvents(svc.url);
    // When it is posted 20 times concurrently
    const replies = await Promise.all(Array.from({ length: 20 }, () => http(svc.url, 'POST', '/v1/settlements', d)));
    // Then exactly one is new and nineteen are duplicates of it
    const created = replies.filter((r) => r.status === 201);
    const dups = replies.filter((r) => r.status === 200);
    expect(created).toHaveLength(1);
    expect(dups).toHaveLength(19);
    expect(created[0]!.body.duplicate).toBe(false);
    for (const r of dups) {
      expect(r.body.duplicate).toBe(true);
      expect(r.body.settlementId).toBe(created[0]!.body.settlementId);
      expect(comparable(r.body)).toEqual(comparable(created[0]!.body));
    }
    // and exactly one event was recorded, one active settlement
    expect(await readyEvents(svc.url)).toBe(before + 1);
    const year = await personYear(svc.url, 'p-dup');
    expect(year!.activeSettlements).toBe(1);
    expect(recompute([created[0]!.body])).toEqual({ activeSettlements: 1, yearBaseFen: year!.yearBaseFen, usedFen: year!.usedFen });
    // When a different discharge is posted on the same visit
    const other = await http(svc.url, 'POST', '/v1/settlements', { ...d, totalFen: 3_000_001 });
    // Then it is a conflict that records nothing
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('VISIT_CONFLICT');
    expect(await readyEvents(svc.url)).toBe(before + 1);
  }, 60_000);

  it('a second service on the same data directory is refused while the first runs', async () => {
    // Given the running service; When a second one is started on its data directory
    let second: Service | undefined;
    let failure: unknown;
    try {
      second = await startService({ dataDir: svc.dataDir });
    } catch (e) {
      failure = e;
    } finally {
      await safeStop(second);
    }
    // Then it exits during start-up, saying the directory is in use by the first
    expect(second).toBeUndefined();
    expect(String((failure as Error)?.message)).toMatch(new RegExp(`data directory is in use by process ${svc.process.pid}`));
    // and the first keeps its lock and keeps serving
    expect(existsSync(join(svc.dataDir, 'medaid.lock'))).toBe(true);
    expect(readFileSync(join(svc.dataDir, 'medaid.lock'), 'utf8').trim()).toBe(String(svc.process.pid));
    const r = await http(svc.url, 'POST', '/v1/settlements', discharge({ personId: 'p-lock', visitId: 'lock-1' }));
    expect(r.status).toBe(201);
  }, 60_000);
});

describe('crashes and shutdown', () => {
  const dirs: string[] = [];
  const services: Service[] = [];
  const start = async (dataDir: string) => {
    const s = await startService({ dataDir });
    services.push(s);
    return s;
  };
  afterAll(async () => {
    for (const s of services) await safeStop(s);
    for (const d of dirs) removeDir(d);
  });

  it('kill -9 in the middle of a load loses nothing acknowledged and leaves nothing half-written', async () => {
    // Given 20 persons with categories and a load of 400 settlements on unique visits
    const dataDir = tempDir();
    dirs.push(dataDir);
    let svc = await start(dataDir);
    const categories = ['dibao', 'tekun', 'sixin', 'dibao'];
    const persons = Array.from({ length: 20 }, (_, i) => `p-crash-${i}`);
    for (const [i, p] of persons.entries()) await assign(svc.url, p, categories[i % categories.length]!);
    const levels = ['township', 'county', 'city'];
    const load = Array.from({ length: 400 }, (_, i) =>
      discharge({
        personId: persons[i % persons.length],
        hospitalId: `h-${levels[i % 3]}`,
        hospitalLevel: levels[i % 3],
        visitId: `crash-${i}`,
        totalFen: 300_000 + ((i * 7_919) % 1_700_000),
        fullOwnPayFen: (i * 131) % 50_000,
      }),
    );
    // When it runs with 32 in flight and the process is SIGKILLed after 150 acknowledgements
    const acked = new Map<number, Obj>();
    let inFlight = 0;
    let inFlightAtKill = -1;
    const outcomes = await pool(load, 32, async (d, i) => {
      inFlight++;
      const o = await post(svc.url, d);
      inFlight--;
      if (isReply(o) && o.status === 201) {
        acked.set(i, o.body);
        if (acked.size === 150) {
          inFlightAtKill = inFlight;
          svc.process.kill('SIGKILL');
        }
      }
      return o;
    });
    const exit = await svc.exited;
    expect(exit.signal).toBe('SIGKILL');
    // (every reply was a 201; the rest failed on the connection)
    const replied = outcomes.filter(isReply);
    expect(replied.filter((o) => o.status !== 201)).toEqual([]);
    const failed = outcomes.length - replied.length;
    expect(acked.size).toBeGreaterThanOrEqual(150);
    expect(inFlightAtKill).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(0);
    expect(acked.size + failed).toBe(load.length);

    // Then after a restart on the same data directory every acknowledged settlement is there as acknowledged
    svc = await start(dataDir);
    const ackedViews = await pool([...acked.keys()], 16, (i) => fetchSettlement(svc.url, load[i]!));
    for (const [k, [, body]] of [...acked].entries()) {
      expect(ackedViews[k]?.current.status).toBe('settled');
      expect(comparable(ackedViews[k]!.current)).toEqual(comparable(body));
    }
    // and every person's bases and counters are the sums of its settled visits (nothing half-written)
    const settled = await expectPersonsMatchSettlements(svc.url, load, persons);
    expect(settled).toBeGreaterThanOrEqual(acked.size);
    // and the log holds exactly the policy, the categories and the settled visits
    expect(await readyEvents(svc.url)).toBe(1 + persons.length + settled);

    // When every discharge of the load is posted again
    const again = await pool(load, 16, (d) => post(svc.url, d));
    // Then the acknowledged ones are duplicates of what was acknowledged, the others settle (or were settled unseen)
    for (const [i, o] of again.entries()) {
      expect(acked.has(i) ? [200] : [200, 201]).toContain(isReply(o) ? o.status : o);
      const { body } = o as { body: Obj };
      if (acked.has(i))
        expect({ duplicate: body.duplicate, ...comparable(body) }).toEqual({ duplicate: true, ...comparable(acked.get(i)!) });
    }
    expect(again.filter((o) => isReply(o) && o.status === 201)).toHaveLength(load.length - settled);
    // and every visit of the load is settled exactly once, consistent with its person's state
    expect(await expectPersonsMatchSettlements(svc.url, load, persons)).toBe(load.length);
    expect(await readyEvents(svc.url)).toBe(1 + persons.length + load.length);
    await svc.stop('SIGKILL');
  }, 90_000);

  it('SIGTERM drains: no 5xx but 503 while draining, every 2xx survives, and the process exits promptly', async () => {
    // Given a running service and 100 settlements posted at once by a keep-alive client (fetch)
    const dataDir = tempDir();
    dirs.push(dataDir);
    const svc = await start(dataDir);
    const load = Array.from({ length: 100 }, (_, i) =>
      discharge({ personId: `p-term-${i % 10}`, hospitalId: 'h-term', visitId: `term-${i}`, totalFen: 500_000 + i * 1_000 }),
    );
    let answered = 0;
    let termAt = 0;
    // When SIGTERM arrives once the first 10 replies are in
    const outcomes = await Promise.all(
      load.map(async (d) => {
        const o = await post(svc.url, d);
        if (isReply(o) && ++answered === 10) {
          termAt = Date.now();
          svc.process.kill('SIGTERM');
        }
        return o;
      }),
    );
    // (the exit is awaited for at most 10 s, a usual grace period before SIGKILL; a process still running then is killed so that the checks go on)
    const exit = await Promise.race([
      svc.exited,
      new Promise<null>((r) => setTimeout(() => r(null), Math.max(0, termAt + 10_000 - Date.now()))),
    ]);
    const exitMs = Date.now() - termAt;
    const lockLeft = existsSync(join(dataDir, 'medaid.lock'));
    if (exit === null) await svc.stop('SIGKILL');

    // Then no request got a 5xx other than the 503 of a request that arrived while draining
    const replied = outcomes.filter(isReply);
    expect(replied.length).toBeGreaterThanOrEqual(10);
    expect(replied.filter((o) => o.status !== 201 && o.status !== 503)).toEqual([]);
    expect(svc.stderr()).not.toMatch(/"level":"error"/);
    // and after a restart every 2xx is there as acknowledged, and a 503 recorded nothing
    const again = await start(dataDir);
    for (const [i, o] of outcomes.entries()) {
      if (!isReply(o)) continue;
      const view = await fetchSettlement(again.url, load[i]!);
      if (o.status === 201) expect(comparable(view!.current)).toEqual(comparable(o.body));
      else expect(view).toBeNull();
    }
    // and nothing is half-written: each person's state is the sum of its settled visits, the log holds just those
    const persons = [...new Set(load.map((d) => d.personId as string))];
    const settled = await expectPersonsMatchSettlements(again.url, load, persons);
    expect(await readyEvents(again.url)).toBe(1 + settled);
    await again.stop('SIGKILL');
    // and the process ended on its own, promptly, the way Nest's shutdown hooks end it (re-raising
    // SIGTERM after closing the server and the store), releasing the data directory's lock
    expect({ exitedWithin10s: exit !== null, lockLeft, exitMs: exit === null ? `> ${exitMs}` : exitMs }).toEqual({
      exitedWithin10s: true,
      lockLeft: false,
      exitMs: expect.any(Number),
    });
    expect(exit!.code === 0 || exit!.signal === 'SIGTERM').toBe(true);
  }, 60_000);
});
