// History on disk (issue 11): the service decides with a bounded person cache, reads visits from
// the store, starts from its decision snapshot plus the log's tail, and answers lists from the
// projections next to the journal. Real child processes, real HTTP, kill -9.
import { afterAll, describe, expect, it } from '@jest/globals';
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { comparable as comparableLine, expectedOf, scenarios } from './support/scenarios.js';
import {
  SCENARIOS,
  Service,
  anonymous,
  discharge,
  http,
  pool,
  removeDir,
  runSimulate,
  startService,
  tempDir,
  writeAuthFile,
} from './support/service.js';

type Obj = Record<string, any>;
const ADMIN = 'admin-token-history-0123456789';
const auth = writeAuthFile([
  { token: ADMIN, kind: 'admin', id: 'clerk' },
  { token: 'hospital-token-history-0123456789', kind: 'hospital', id: 'h-county' },
]);

async function call(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  token: string | null | 'anonymous' = null,
): Promise<{ status: number; body: Obj }> {
  // token null: the caller the route needs (support/service.ts); 'anonymous': without credentials
  const headers = token === 'anonymous' ? anonymous() : token === null ? {} : { authorization: `Bearer ${token}` };
  const r = await http(url, method, path, body, headers);
  return { status: r.status, body: r.body === '' ? {} : (r.body as Obj) };
}

const services: Service[] = [];
const dirs: string[] = [auth.dir];
const start = async (dataDir: string, env: Record<string, string> = {}) => {
  const s = await startService({ dataDir, args: ['--auth', auth.file], env });
  services.push(s);
  return s;
};
afterAll(async () => {
  for (const s of services) if (s.process.exitCode === null && s.process.signalCode === null) await s.stop('SIGKILL');
  for (const d of dirs) removeDir(d);
});

/** Every settlement the search lists, page by page (`limit` rows a page), once the projections have the whole log. */
async function searchAll(url: string, query: string, limit: number): Promise<Obj[]> {
  const head = (await call(url, 'GET', '/ready')).body.position as number;
  for (let waited = 0; (await call(url, 'GET', '/v1/settlements?limit=1')).body.asOfPosition < head; waited += 50) {
    if (waited > 30_000) throw new Error('the projections did not reach the head of the log');
    await new Promise((r) => setTimeout(r, 50));
  }
  const rows: Obj[] = [];
  let cursor: string | null = null;
  do {
    const r = await call(url, 'GET', `/v1/settlements?${query}&limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`);
    expect(r.status).toBe(200);
    rows.push(...(r.body.items as Obj[]));
    cursor = r.body.nextCursor as string | null;
  } while (cursor !== null);
  return rows;
}

/** The paid fen of each fund as the settled visits' current results add them up (region 360827, 2012). */
function paidByFund(views: Array<Obj | null>): Record<string, number> {
  const paid: Record<string, number> = {};
  for (const v of views) {
    if (v === null || v.current.status !== 'settled') continue;
    for (const l of v.current.layers as Obj[]) if (l.payFen !== 0) paid[l.fund] = (paid[l.fund] ?? 0) + l.payFen;
  }
  return paid;
}

async function fundsPaid(url: string): Promise<Record<string, number>> {
  const r = await call(url, 'GET', '/v1/funds?region=360827&year=2012');
  expect(r.status).toBe(200);
  return Object.fromEntries((r.body as unknown as Obj[]).filter((a) => a.paidFen !== 0).map((a) => [a.fund, a.paidFen]));
}

describe('kill -9 in the middle of settlements and reversals', () => {
  it('after the restart, the fund accounts, every visit and the settlement search are what the log holds, with a cache of two persons', async () => {
    // Given 12 persons with categories and a load of 240 settlements, a reversal sent for every 4th one acknowledged
    const dataDir = tempDir();
    dirs.push(dataDir);
    let svc = await start(dataDir);
    const persons = Array.from({ length: 12 }, (_, i) => `p-disk-${i}`);
    for (const [i, p] of persons.entries()) {
      expect(
        (
          await call(svc.url, 'POST', `/v1/persons/${p}/categories`, {
            category: ['dibao', 'tekun', 'sixin'][i % 3],
            validFrom: '2012-01-01',
          })
        ).status,
      ).toBe(200);
    }
    const load = Array.from({ length: 240 }, (_, i) =>
      discharge({
        personId: persons[i % persons.length],
        visitId: `disk-${i}`,
        totalFen: 200_000 + ((i * 7_919) % 900_000),
        fullOwnPayFen: (i * 131) % 30_000,
      }),
    );
    let acked = 0;
    const reversals: Array<Promise<unknown>> = [];
    // When they run 24 at a time and the process is SIGKILLed after 120 acknowledgements
    await pool(load, 24, async (d) => {
      try {
        const r = await call(svc.url, 'POST', '/v1/settlements', d);
        if (r.status !== 201) return;
        acked++;
        if (acked % 4 === 0)
          reversals.push(
            call(svc.url, 'POST', `/v1/settlements/${d.hospitalId}/${d.visitId}/reversal`, { reason: 'test' }).catch(() => null),
          );
        if (acked === 120) svc.process.kill('SIGKILL');
      } catch {
        // the connection died with the process
      }
    });
    await Promise.all(reversals);
    expect((await svc.exited).signal).toBe('SIGKILL');

    // Then, restarted with a person cache of two (every decision reads its person from the store)
    svc = await start(dataDir, { MEDAID_PERSON_CACHE: '2' });
    const ready = (await call(svc.url, 'GET', '/ready')).body;
    expect(ready.rebuilt.events).toBeGreaterThan(0); // the tail after the snapshot written at start-up

    const views = await pool(load, 16, async (d) => {
      const r = await call(svc.url, 'GET', `/v1/settlements/${d.hospitalId}/${d.visitId}`);
      return r.status === 404 ? null : r.body;
    });
    const reversed = views.filter((v) => v?.current.status === 'reversed').length;
    expect(reversed).toBeGreaterThan(0);
    // the funds hold exactly what the settled visits paid (reversals given back)
    expect(await fundsPaid(svc.url)).toEqual(paidByFund(views));
    // and the search lists every settlement once, with the status its visit shows
    const listed = await searchAll(svc.url, 'hospitalId=h-county', 17);
    const expected = views.flatMap((v) => (v === null ? [] : (v.history as Obj[]).map((h) => [h.settlementId, h.status])));
    expect(listed.map((r) => [r.settlementId, r.status]).sort()).toEqual(expected.sort());
    expect(listed.map((r) => r.position)).toEqual([...listed.map((r) => r.position)].sort((a, b) => b - a)); // newest first
    // and the year report (from its projection on disk) counts exactly the settled visits and what they paid
    const report = (await call(svc.url, 'GET', '/v1/reports/2012')).body as Obj;
    const settledViews = views.filter((v) => v?.current.status === 'settled');
    const paidTotal = Object.values(paidByFund(views)).reduce((a, b) => a + b, 0);
    expect([report.overall.personTimes, report.overall.fundPayFen]).toEqual([settledViews.length, paidTotal]);

    // When every discharge is posted again, and the rest of the load settles
    const again = await pool(load, 16, (d) => call(svc.url, 'POST', '/v1/settlements', d));
    // Then a visit settled and not reversed is a duplicate, and the others are settled now; the funds still agree
    for (const [i, r] of again.entries()) {
      const before = views[i];
      if (before !== null && before!.current.status === 'settled') expect([i, r.status, r.body.duplicate]).toEqual([i, 200, true]);
      else expect([i, r.status]).toEqual([i, 201]);
    }
    const after = await pool(load, 16, async (d) => (await call(svc.url, 'GET', `/v1/settlements/${d.hospitalId}/${d.visitId}`)).body);
    expect(after.every((v) => v.current.status === 'settled')).toBe(true);
    const cache = (await call(svc.url, 'GET', '/ready')).body.personCache as Obj;
    expect([cache.capacity, cache.size <= 2, cache.misses > 0]).toEqual([2, true, true]);
    expect(await fundsPaid(svc.url)).toEqual(paidByFund(after));
    await svc.stop();
  }, 120_000);
});

describe('the decision snapshot', () => {
  it("is read after a clean stop (no tail); when it is missing, another log's or ahead of the log, the log is read instead, to the same state", async () => {
    // Given a service with settlements and a reversal, stopped cleanly
    const dataDir = tempDir();
    const otherDir = tempDir();
    dirs.push(dataDir, otherDir);
    let svc = await start(dataDir);
    for (let i = 0; i < 20; i++)
      expect(
        (await call(svc.url, 'POST', '/v1/settlements', discharge({ personId: `p-snap-${i % 4}`, visitId: `snap-${i}` }))).status,
      ).toBe(201);
    expect((await call(svc.url, 'POST', '/v1/settlements/h-county/snap-3/reversal', { reason: 'test' })).status).toBe(200);
    const funds = await fundsPaid(svc.url);
    expect(Object.keys(funds).length).toBeGreaterThan(0);
    await svc.stop();
    // (another data directory, another log, its own snapshot)
    const other = await start(otherDir);
    expect((await call(other.url, 'POST', '/v1/settlements', discharge({ visitId: 'other-1' }))).status).toBe(201);
    await other.stop();

    // When it starts again: nothing after the snapshot is read, and the funds are the same
    svc = await start(dataDir);
    let ready = (await call(svc.url, 'GET', '/ready')).body;
    expect([ready.rebuilt.events, ready.rebuilt.fromPosition]).toEqual([0, ready.position]);
    expect(await fundsPaid(svc.url)).toEqual(funds);
    await svc.stop();

    // When the snapshot is another log's: it is ignored (and said so), the whole log is read, the funds are the same
    copyFileSync(join(otherDir, 'decision-snapshot.json'), join(dataDir, 'decision-snapshot.json'));
    svc = await start(dataDir);
    ready = (await call(svc.url, 'GET', '/ready')).body;
    expect([ready.rebuilt.fromPosition, ready.rebuilt.events]).toEqual([0, ready.position]);
    expect(await fundsPaid(svc.url)).toEqual(funds);
    await svc.stop();
    expect(svc.stderr()).toContain('decision snapshot ignored');

    // When it is ahead of the log (a log restored from an older backup): ignored, the same
    const own = JSON.parse(readFileSync(join(dataDir, 'decision-snapshot.json'), 'utf8')) as Obj;
    writeFileSync(join(dataDir, 'decision-snapshot.json'), JSON.stringify({ ...own, position: own.position + 1_000 }));
    svc = await start(dataDir);
    ready = (await call(svc.url, 'GET', '/ready')).body;
    expect([ready.rebuilt.fromPosition, ready.rebuilt.events]).toEqual([0, ready.position]);
    expect(await fundsPaid(svc.url)).toEqual(funds);
    await svc.stop();

    // When it is missing: the same
    rmSync(join(dataDir, 'decision-snapshot.json'));
    svc = await start(dataDir);
    ready = (await call(svc.url, 'GET', '/ready')).body;
    expect(ready.rebuilt.fromPosition).toBe(0);
    expect(await fundsPaid(svc.url)).toEqual(funds);
    await svc.stop();
    expect(existsSync(join(dataDir, 'decision-snapshot.json'))).toBe(true);
  }, 90_000);
});

describe('the lists: settlements by filter and persons by category', () => {
  it('filters, pages with a cursor, refuses bad input with the field, and needs an office token', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const svc = await start(dataDir);
    const assign = (p: string, category: string, validFrom: string) =>
      call(svc.url, 'POST', `/v1/persons/${p}/categories`, { category, validFrom });
    for (let i = 0; i < 7; i++) expect((await assign(`p-list-${i}`, i < 5 ? 'dibao' : 'tekun', '2012-01-01')).status).toBe(200);
    expect(
      (await call(svc.url, 'POST', '/v1/persons/p-list-1/category-revocations', { category: 'dibao', from: '2012-06-01' })).status,
    ).toBe(200);
    const dates = ['2012-02-10', '2012-03-10', '2012-04-10', '2012-05-10'];
    for (let i = 0; i < 12; i++) {
      const d = discharge({
        personId: `p-list-${i % 7}`,
        visitId: `list-${i}`,
        hospitalId: i % 2 === 0 ? 'h-county' : 'h-city',
        hospitalLevel: i % 2 === 0 ? 'county' : 'city',
        admissionDate: '2012-02-01',
        dischargeDate: dates[i % 4],
      });
      expect((await call(svc.url, 'POST', '/v1/settlements', d)).status).toBe(201);
    }
    expect((await call(svc.url, 'POST', '/v1/settlements/h-county/list-0/reversal', { reason: 'test' })).status).toBe(200);

    const all = await searchAll(svc.url, 'status=settled', 5);
    expect(all).toHaveLength(11);
    const byHospital = await searchAll(svc.url, 'hospitalId=h-city&from=2012-03-01&to=2012-04-30', 2);
    expect(byHospital.map((r) => r.visitId).sort()).toEqual(['list-1', 'list-5', 'list-9']);
    expect(byHospital.every((r) => r.totalFen === r.fundPayFen + r.patientPayFen)).toBe(true);
    expect((await searchAll(svc.url, 'status=reversed', 50)).map((r) => r.visitId)).toEqual(['list-0']);
    expect((await searchAll(svc.url, 'personId=p-list-3&category=dibao', 50)).map((r) => r.visitId).sort()).toEqual(['list-10', 'list-3']);

    // persons by category, paged; with asOf, only those whose interval covers the day
    const page1 = await call(svc.url, 'GET', '/v1/persons?category=dibao&limit=3');
    expect(page1.body.items.map((p: Obj) => p.personId)).toEqual(['p-list-0', 'p-list-1', 'p-list-2']);
    const page2 = await call(svc.url, 'GET', `/v1/persons?category=dibao&limit=3&cursor=${page1.body.nextCursor}`);
    expect([page2.body.items.map((p: Obj) => p.personId), page2.body.nextCursor]).toEqual([['p-list-3', 'p-list-4'], null]);
    expect(page1.body.items[1].intervals).toEqual([{ validFrom: '2012-01-01', validTo: '2012-05-31' }]);
    const july = await call(svc.url, 'GET', '/v1/persons?category=dibao&asOf=2012-07-01');
    expect(july.body.items.map((p: Obj) => p.personId)).toEqual(['p-list-0', 'p-list-2', 'p-list-3', 'p-list-4']);

    // bad input: the field is named, nothing else is said
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['from=2012-02-30', 'from'],
      ['status=open', 'status'],
      ['cursor=x', 'cursor'],
      ['hospital=h', 'hospital'],
    ]) {
      const r = await call(svc.url, 'GET', `/v1/settlements?${query}`);
      expect([query, r.status, r.body.code, r.body.details?.[0]?.field]).toEqual([query, 400, 'VALIDATION_FAILED', field]);
    }
    expect((await call(svc.url, 'GET', '/v1/persons')).body.details[0].field).toBe('category');
    // tokens: none → 401; a hospital's → 403
    expect((await call(svc.url, 'GET', '/v1/settlements', undefined, 'anonymous')).status).toBe(401);
    expect((await call(svc.url, 'GET', '/v1/persons?category=dibao', undefined, 'hospital-token-history-0123456789')).status).toBe(403);
    await svc.stop();
  }, 90_000);
});

describe('the shared scenarios with a person cache of one', () => {
  it.each(scenarios)('%s', (file) => {
    process.env.MEDAID_PERSON_CACHE = '1';
    try {
      const run = runSimulate(['--input', join(SCENARIOS, file)]);
      expect(run.status).toBe(0);
      expect(run.lines.map(comparableLine)).toEqual(expectedOf(file));
    } finally {
      delete process.env.MEDAID_PERSON_CACHE;
    }
  });
  it('reads the scenario files it compares', () => expect(readFileSync(join(SCENARIOS, scenarios[0]!), 'utf8').length).toBeGreaterThan(0));
});
