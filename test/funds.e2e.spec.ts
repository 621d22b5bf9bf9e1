// Funds over HTTP (extension of the spec, README "Funds"): allocations, GET /v1/funds with
// balance and usage rate, and an aid fund that may not be overdrawn — also under concurrent load
// and across a restart. The real service as a child process.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, Service, anonymous, discharge, http, removeDir, startService, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;
const demo = JSON.parse(readFileSync(join(ROOT, 'apps/medaid/assets/demo-policy.json'), 'utf8')) as Obj;
/** The demo policy with its aid fund 610100 marked as one that may not be overdrawn. */
const limitedPolicy = { ...demo, funds: [{ code: '610100', name: '医疗救助基金', mayOverdraw: false }] };
const allocation = (amountFen: number, reference: string, source = 'superior') => ({
  fund: '610100',
  region: '360827',
  year: 2012,
  source,
  amountFen,
  reference,
});

/** Every service of this file runs with one auth file: money routes need an administrator. */
const ADMIN = { a: 'admin-a-token-0123456789abcdef', b: 'admin-b-token-0123456789abcdef' };
const { dir: authDir, file: AUTH_FILE } = writeAuthFile([
  { token: ADMIN.a, kind: 'admin', id: 'admin-a' },
  { token: ADMIN.b, kind: 'admin', id: 'admin-b' },
]);
afterAll(() => removeDir(authDir));
const start = (dataDir?: string) => startService({ demoPolicy: false, args: ['--auth', AUTH_FILE], ...(dataDir ? { dataDir } : {}) });
/** POST as an administrator; token null: as the caller the route needs (support/service.ts); 'anonymous': without credentials. */
async function admin(
  url: string,
  path: string,
  body: unknown,
  token: string | null | 'anonymous' = ADMIN.a,
): Promise<{ status: number; body: Obj }> {
  const headers = token === 'anonymous' ? anonymous() : token === null ? {} : { authorization: `Bearer ${token}` };
  const r = await http(url, 'POST', path, body, headers);
  return { status: r.status, body: r.body as Obj };
}

const fundOf = async (url: string, fund: string) =>
  ((await http(url, 'GET', '/v1/funds?year=2012&region=360827')).body as Obj[]).find((f) => f.fund === fund);
const aidFromFund = (result: Obj) =>
  (result.layers as Obj[]).filter((l) => l.fund === '610100').reduce((s, l) => s + (l.payFen as number), 0);

describe('funds', () => {
  let service: Service;
  beforeAll(async () => {
    service = await start();
    expect((await http(service.url, 'POST', '/v1/policies', limitedPolicy)).status).toBe(201);
  });
  afterAll(async () => {
    await service.stop();
    removeDir(service.dataDir);
  });

  it('records allocations idempotently by reference, refuses a changed re-post and bad input', async () => {
    const first = await admin(service.url, '/v1/funds/allocations', allocation(100_000, '赣民〔2012〕1号'));
    const again = await admin(service.url, '/v1/funds/allocations', allocation(100_000, '赣民〔2012〕1号'));
    const changed = await admin(service.url, '/v1/funds/allocations', allocation(999, '赣民〔2012〕1号'));
    const bad = await admin(service.url, '/v1/funds/allocations', { ...allocation(-5, 'x'), extra: 1 });
    expect([first.status, again.status, changed.status, changed.body.code, bad.status, bad.body.code]).toEqual([
      201,
      200,
      409,
      'ALLOCATION_CONFLICT',
      400,
      'VALIDATION_FAILED',
    ]);
    const refused = await admin(service.url, '/v1/funds/allocations', allocation(1, 'anon'), 'anonymous');
    expect([refused.status, refused.body.code]).toEqual([401, 'UNAUTHENTICATED']);
    expect([...new Set((bad.body.details as Obj[]).map((d) => d.field))].sort()).toEqual(['amountFen', 'extra']);
    expect((await admin(service.url, '/v1/funds/allocations', allocation(50_000, '配套-1', 'local'))).status).toBe(201);
    const fund = await fundOf(service.url, '610100');
    expect(fund).toMatchObject({
      allocatedFen: { superior: 100_000, local: 50_000, carryover: 0 },
      incomeFen: 150_000,
      paidFen: 0,
      balanceFen: 150_000,
      usageRateBp: 0,
    });
  });

  it('pays aid only up to the fund balance, says cappedBy fund:610100, and a reversal gives the money back', async () => {
    // Given 1,500 元 in the aid fund and a dibao patient with a large bill
    await http(service.url, 'POST', '/v1/persons/p-fund-1/categories', { category: 'dibao', validFrom: '2012-01-01' });
    const big = discharge({ personId: 'p-fund-1', visitId: 'f-1', totalFen: 8_000_000 });
    const first = await http(service.url, 'POST', '/v1/settlements', big);
    // then the aid layer pays exactly what is left and says the fund capped it
    expect(first.status).toBe(201);
    const aid = (first.body.layers as Obj[]).find((l) => l.layerId === 'aid')!;
    expect([aidFromFund(first.body), aid.cappedBy]).toEqual([150_000, 'fund:610100']);
    expect(first.body.fundPayFen + first.body.patientPayFen).toBe(first.body.totalFen);
    expect(await fundOf(service.url, '610100')).toMatchObject({ paidFen: 150_000, balanceFen: 0, usageRateBp: 10_000 });
    // and the insurance fund, which may be overdrawn, has no allocation: its usage rate is null
    expect(await fundOf(service.url, '390100')).toMatchObject({ incomeFen: 0, usageRateBp: null });
    // when the next dibao settlement comes, the aid fund pays nothing
    const second = await http(service.url, 'POST', '/v1/settlements', { ...big, visitId: 'f-2' });
    expect([aidFromFund(second.body), (second.body.layers as Obj[]).find((l) => l.layerId === 'aid')!.cappedBy]).toEqual([
      0,
      'fund:610100',
    ]);
    // when the first is reversed, its 1,500 元 are back in the fund
    expect((await http(service.url, 'POST', '/v1/settlements/h-county/f-1/reversal', { reason: '测试撤销' })).status).toBe(200);
    expect(await fundOf(service.url, '610100')).toMatchObject({ paidFen: 0, balanceFen: 150_000 });
  });

  it('given 40 concurrent settlements of different persons, then the fund is never overdrawn, and a restart rebuilds the same figures', async () => {
    expect((await admin(service.url, '/v1/funds/allocations', allocation(1_000_000, '追加-1'))).status).toBe(201);
    const before = await fundOf(service.url, '610100');
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        http(service.url, 'POST', `/v1/persons/p-conc-${i}/categories`, { category: 'dibao', validFrom: '2012-01-01' }),
      ),
    );
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        http(
          service.url,
          'POST',
          '/v1/settlements',
          discharge({ personId: `p-conc-${i}`, visitId: `c-${i}`, totalFen: 2_000_000 + i * 1000 }),
        ),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(results.map(() => 201));
    const paid = results.reduce((s, r) => s + aidFromFund(r.body), 0);
    // the money of the fund was used, but never more than it had
    expect(paid).toBe(before!.balanceFen);
    expect(results.some((r) => (r.body.layers as Obj[]).some((l) => l.cappedBy === 'fund:610100'))).toBe(true);
    const after = await fundOf(service.url, '610100');
    expect([after!.balanceFen, after!.paidFen]).toEqual([0, before!.paidFen + paid]);
    // when the service restarts on the same data, the funds are rebuilt from the log to the same figures
    const all = (await http(service.url, 'GET', '/v1/funds')).body;
    await service.stop();
    service = await start(service.dataDir);
    expect((await http(service.url, 'GET', '/v1/funds')).body).toEqual(all);
  });

  it('validates the query of GET /v1/funds', async () => {
    const r = await http(service.url, 'GET', '/v1/funds?year=1999');
    expect([r.status, r.body.code]).toEqual([400, 'VALIDATION_FAILED']);
  });
});

describe('enrolment subsidies (资助参保)', () => {
  let service: Service;
  const subsidised = {
    ...demo,
    version: 2,
    enrolmentSubsidy: {
      premiumFen: 9_000,
      fromFund: '610100',
      toFund: '390100',
      byCategory: [
        { category: 'tekun', full: true },
        { category: 'dibao', amountFen: 6_000 },
      ],
    },
  };
  beforeAll(async () => {
    service = await start();
    expect((await http(service.url, 'POST', '/v1/policies', subsidised)).status).toBe(201);
    for (const [personId, category] of [
      ['s-tekun', 'tekun'],
      ['s-dibao', 'dibao'],
      ['s-edge', 'dibao_edge'],
    ]) {
      expect((await http(service.url, 'POST', `/v1/persons/${personId}/categories`, { category, validFrom: '2012-01-01' })).status).toBe(
        200,
      );
    }
  });
  afterAll(async () => {
    await service.stop();
    removeDir(service.dataDir);
  });

  it('grants each beneficiary the subsidy of their category once a year, and moves the money from the aid fund into the insurance fund', async () => {
    // when the subsidies of 2013 are granted
    const run = await admin(service.url, '/v1/funds/enrolment-subsidies', { region: '360827', year: 2013 });
    // then 特困 gets the full premium and 低保 the fixed amount; 低保边缘 gets none
    expect(run.status).toBe(201);
    expect(run.body).toMatchObject({
      granted: 2,
      alreadyGranted: 0,
      grantedFen: 15_000,
      asOf: '2013-01-01',
      byCategory: { tekun: { persons: 1, amountFen: 9_000 }, dibao: { persons: 1, amountFen: 6_000 } },
    });
    // and a second run grants nothing more
    const again = await admin(service.url, '/v1/funds/enrolment-subsidies', { region: '360827', year: 2013 });
    expect(again.body).toMatchObject({ granted: 0, alreadyGranted: 2, grantedFen: 0 });
    const funds = (await http(service.url, 'GET', '/v1/funds?year=2013')).body as Obj[];
    expect(funds.find((f) => f.fund === '610100')).toMatchObject({ paidFen: 15_000 });
    expect(funds.find((f) => f.fund === '390100')).toMatchObject({ receivedFen: 15_000, incomeFen: 15_000 });
  });

  it('refuses a region without a policy in force, and bad input', async () => {
    const none = await admin(service.url, '/v1/funds/enrolment-subsidies', { region: '999999', year: 2013 });
    const bad = await admin(service.url, '/v1/funds/enrolment-subsidies', { region: '360827', year: 2013, asOf: '2013-02-30' });
    expect([none.status, none.body.code, bad.status, bad.body.code]).toEqual([422, 'NO_POLICY_IN_FORCE', 400, 'VALIDATION_FAILED']);
  });
});

describe('an approved raise (adjustment) paid from a fund that may not be overdrawn', () => {
  let service: Service;
  const post = (path: string, body: unknown, token: string | null = null) => admin(service.url, path, body, token);
  beforeAll(async () => {
    service = await start();
    expect((await post('/v1/policies', limitedPolicy)).status).toBe(201);
    expect((await post('/v1/funds/allocations', allocation(100_000, 'A-1'), ADMIN.a)).status).toBe(201);
    expect((await post('/v1/persons/p-adj/categories', { category: 'dibao', validFrom: '2012-01-01' })).status).toBe(200);
  });
  afterAll(async () => {
    await service.stop();
    removeDir(service.dataDir);
  });

  it('is refused while the fund has no room, and approved once money is allocated; the fund pays it', async () => {
    // Given a settlement whose aid layer took the whole 1,000 元 of the aid fund
    const settled = await post('/v1/settlements', discharge({ personId: 'p-adj', visitId: 'adj-1', totalFen: 8_000_000 }));
    expect(aidFromFund(settled.body)).toBe(100_000);
    // when a maker asks to raise the aid layer by 500 元 and a checker approves
    const requested = await post(
      '/v1/adjustments',
      { settlementId: settled.body.settlementId, layerId: 'aid', deltaFen: 50_000, reason: '复核' },
      ADMIN.a,
    );
    expect(requested.status).toBe(201);
    const refused = await post(`/v1/adjustments/${requested.body.adjustmentId}/approval`, {}, ADMIN.b);
    // then it is refused: the fund may not be overdrawn
    expect([refused.status, refused.body.code]).toEqual([422, 'ADJUSTMENT_OUT_OF_RANGE']);
    expect(await fundOf(service.url, '610100')).toMatchObject({ paidFen: 100_000, balanceFen: 0 });
    // when 500 元 more are allocated, the same approval goes through and the fund pays the raise
    expect((await post('/v1/funds/allocations', allocation(50_000, 'A-2'), ADMIN.b)).status).toBe(201);
    const approved = await post(`/v1/adjustments/${requested.body.adjustmentId}/approval`, {}, ADMIN.b);
    expect(approved.status).toBe(200);
    expect(await fundOf(service.url, '610100')).toMatchObject({ paidFen: 150_000, balanceFen: 0, usageRateBp: 10_000 });
    // and a reversal gives the settlement and its raise back to the fund
    expect((await post('/v1/settlements/h-county/adj-1/reversal', { reason: '撤销' })).status).toBe(200);
    expect(await fundOf(service.url, '610100')).toMatchObject({ paidFen: 0, balanceFen: 150_000 });
  });
});
