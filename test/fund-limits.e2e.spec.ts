// A fund that may not be overdrawn, tried as a fund accountant would (issue 10): an external
// payment counts against that fund's later layers and may not exceed what it has left; 资助参保
// grants only while the paying fund has room, in a documented order, and grants the rest once money
// comes; a cut of a pay is allowed even where a shared counter stands above the rule's cap. The real
// service (a child process) over real HTTP, admin tokens for money routes, a hospital token for
// settlements; `medaid audit verify` on its stopped data at the end of each part.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { BIN, ROOT, Service, http, removeDir, startService, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;

const TOKENS = {
  adminA: 'admin-a-limits-0123456789abcdef',
  adminB: 'admin-b-limits-0123456789abcdef',
  hospital: 'hospital-h1-limits-0123456789ab',
};
const { dir: authDir, file: AUTH_FILE } = writeAuthFile([
  { token: TOKENS.adminA, kind: 'admin', id: 'admin-a' },
  { token: TOKENS.adminB, kind: 'admin', id: 'admin-b' },
  { token: TOKENS.hospital, kind: 'hospital', id: 'h1' },
]);
afterAll(() => removeDir(authDir));

async function call(
  service: Service,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
): Promise<{ status: number; body: Obj }> {
  // token null: the caller the route needs (support/service.ts)
  const r = await http(service.url, method, path, body, token === null ? {} : { authorization: `Bearer ${token}` });
  return { status: r.status, body: (r.body === '' ? null : r.body) as Obj };
}

/** Starts a service, runs the part, stops it and runs `medaid audit verify` on its data: it must be clean. */
function withService(name: string, body: (s: () => Service) => void): void {
  describe(name, () => {
    let service: Service;
    beforeAll(async () => {
      service = await startService({ demoPolicy: false, args: ['--auth', AUTH_FILE] });
    });
    afterAll(() => removeDir(service.dataDir));
    body(() => service);
    it('leaves a log that audit verify finds clean once the service has stopped', async () => {
      const exit = await service.stop();
      expect(exit.code === 0 || exit.signal === 'SIGTERM').toBe(true);
      const verify = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--data', service.dataDir], { cwd: ROOT, encoding: 'utf8' });
      expect([verify.status, verify.stdout]).toEqual([
        0,
        expect.stringContaining('funds that may not be overdrawn, after every event that took from them, problems: 0'),
      ]);
    });
  });
}

const fundOf = async (service: Service, fund: string, region: string, year: number) =>
  ((await call(service, 'GET', `/v1/funds?year=${year}&region=${region}`, null)).body as Obj[]).find((f) => f.fund === fund);
const allocate = (service: Service, fund: string, region: string, year: number, amountFen: number, reference: string) =>
  call(service, 'POST', '/v1/funds/allocations', TOKENS.adminA, { fund, region, year, source: 'superior', amountFen, reference });

/** The policy: two aid layers from one fund F2 that may not be overdrawn, 50 % then 100 %. */
const P1 = {
  policyId: 'P1',
  version: 1,
  region: 'ra',
  effectiveFrom: '2020-01-01',
  categories: [{ code: 'dibao', name: 'dibao' }],
  funds: [{ code: 'F2', mayOverdraw: false }],
  layers: [
    { id: 'L1', kind: 'aid', fund: 'F2', rules: [{ id: 'r1', bands: [{ uptoFen: null, ratioBp: 5000 }] }] },
    { id: 'L2', kind: 'aid', fund: 'F2', rules: [{ id: 'r2', bands: [{ uptoFen: null, ratioBp: 10000 }] }] },
  ],
};
const dischargeOf = (visitId: string, personId: string, year: number, externalL1: number) => ({
  hospitalId: 'h1',
  visitId,
  personId,
  region: 'ra',
  scheme: 'nrcms',
  visitType: 'inpatient',
  hospitalLevel: 'county',
  admissionDate: `${year}-02-01`,
  dischargeDate: `${year}-02-03`,
  totalFen: 500000,
  externalPayments: { L1: externalL1 },
});

withService('an external payment from a fund that may not be overdrawn', (service) => {
  beforeAll(async () => {
    expect((await call(service(), 'POST', '/v1/policies', TOKENS.adminA, P1)).status).toBe(201);
  });

  it('given 1,000 元 in F2, when L1 was paid 300 元 elsewhere, then L2 pays the 700 元 left, capped by the fund, and F2 ends at 0', async () => {
    expect((await allocate(service(), 'F2', 'ra', 2020, 100000, 'A-2020')).status).toBe(201);
    const settled = await call(service(), 'POST', '/v1/settlements', TOKENS.hospital, dischargeOf('v1', 'p1', 2020, 30000));
    expect(settled.status).toBe(201);
    const [l1, l2] = settled.body.layers as Obj[];
    expect([l1!.payFen, l1!.external, l2!.payFen, l2!.cappedBy]).toEqual([30000, true, 70000, 'fund:F2']);
    expect(await fundOf(service(), 'F2', 'ra', 2020)).toMatchObject({ paidFen: 100000, balanceFen: 0 });
  });

  it('given 200 元 in F2, when L1 says 500 元 were paid elsewhere from it, then VALIDATION_FAILED on externalPayments.L1 saying what is left, and nothing is recorded', async () => {
    expect((await allocate(service(), 'F2', 'ra', 2021, 20000, 'A-2021')).status).toBe(201);
    const before = (await call(service(), 'GET', '/ready', null)).body.position as number;
    const refused = await call(service(), 'POST', '/v1/settlements', TOKENS.hospital, dischargeOf('v2', 'p2', 2021, 50000));
    expect([refused.status, refused.body.code, refused.body.details]).toEqual([
      400,
      'VALIDATION_FAILED',
      [{ field: 'externalPayments.L1', problem: 'must be at most 20000, what fund F2 has left' }],
    ]);
    expect((await call(service(), 'GET', '/ready', null)).body.position).toBe(before);
    expect((await call(service(), 'GET', '/v1/settlements/h1/v2', null)).status).toBe(404);
    expect(await fundOf(service(), 'F2', 'ra', 2021)).toMatchObject({ paidFen: 0, balanceFen: 20000 });
    // an external payment that fits is accepted, and L2 gets what is left
    const fits = await call(service(), 'POST', '/v1/settlements', TOKENS.hospital, dischargeOf('v2', 'p2', 2021, 15000));
    expect([fits.status, fits.body.layers[1].payFen, fits.body.layers[1].cappedBy]).toEqual([201, 5000, 'fund:F2']);
  });
});

withService('enrolment subsidies (资助参保) from a fund that may not be overdrawn', (service) => {
  /** F3 pays the premium into F1: 特困 the whole 90 元, 低保 40 元. */
  const policy = {
    ...P1,
    policyId: 'P3',
    categories: [
      { code: 'tekun', name: '特困' },
      { code: 'dibao', name: '低保' },
    ],
    funds: [{ code: 'F3', mayOverdraw: false }],
    enrolmentSubsidy: {
      premiumFen: 9000,
      fromFund: 'F3',
      toFund: 'F1',
      byCategory: [
        { category: 'tekun', full: true },
        { category: 'dibao', amountFen: 4000 },
      ],
    },
  };
  const grant = () => call(service(), 'POST', '/v1/funds/enrolment-subsidies', TOKENS.adminA, { region: 'ra', year: 2020 });
  beforeAll(async () => {
    expect((await call(service(), 'POST', '/v1/policies', TOKENS.adminA, policy)).status).toBe(201);
    // persons listed out of order: the grant order is the category's, then the person id
    for (const [personId, category] of [
      ['d-2', 'dibao'],
      ['t-1', 'tekun'],
      ['d-1', 'dibao'],
    ]) {
      expect(
        (await call(service(), 'POST', `/v1/persons/${personId}/categories`, TOKENS.adminA, { category, validFrom: '2019-01-01' })).status,
      ).toBe(200);
    }
  });

  it('given 50 元 in F3, when the 特困 premium of 90 元 is due first, then nobody is granted and all three are reported short of funds', async () => {
    expect((await allocate(service(), 'F3', 'ra', 2020, 5000, 'S-1')).status).toBe(201);
    const run = await grant();
    expect(run.status).toBe(201);
    expect(run.body).toMatchObject({
      granted: 0,
      grantedFen: 0,
      shortOfFunds: { persons: 3, amountFen: 17000, personIds: ['t-1', 'd-1', 'd-2'] },
    });
    expect(await fundOf(service(), 'F3', 'ra', 2020)).toMatchObject({ paidFen: 0, balanceFen: 5000 });
  });

  it('given 140 元, then 特困 and the first 低保 are granted and the second is short; given 30 元 more, then a re-run grants only her', async () => {
    expect((await allocate(service(), 'F3', 'ra', 2020, 9000, 'S-2')).status).toBe(201);
    const run = await grant();
    expect(run.body).toMatchObject({
      granted: 2,
      grantedFen: 13000,
      byCategory: { tekun: { persons: 1, amountFen: 9000 }, dibao: { persons: 1, amountFen: 4000 } },
      shortOfFunds: { persons: 1, amountFen: 4000, byCategory: { dibao: { persons: 1, amountFen: 4000 } }, personIds: ['d-2'] },
    });
    expect(await fundOf(service(), 'F3', 'ra', 2020)).toMatchObject({ paidFen: 13000, balanceFen: 1000 });
    expect((await allocate(service(), 'F3', 'ra', 2020, 3000, 'S-3')).status).toBe(201);
    const again = await grant();
    expect(again.body).toMatchObject({ granted: 1, alreadyGranted: 2, grantedFen: 4000, shortOfFunds: { persons: 0, personIds: [] } });
    expect(await fundOf(service(), 'F3', 'ra', 2020)).toMatchObject({ paidFen: 17000, balanceFen: 0 });
    expect(await fundOf(service(), 'F1', 'ra', 2020)).toMatchObject({ receivedFen: 17000 });
    // and once everyone has it, a further run grants nothing
    expect((await grant()).body).toMatchObject({ granted: 0, alreadyGranted: 3, shortOfFunds: { persons: 0 } });
  });
});

withService("a cut of a pay where a shared counter stands above the rule's cap", (service) => {
  /** Two rules of one layer count c1: inpatient capped at 1,000 元, outpatient at 10,000 元. */
  const policy = {
    policyId: 'P4',
    version: 1,
    region: 'ra',
    effectiveFrom: '2020-01-01',
    categories: [{ code: 'dibao', name: 'dibao' }],
    layers: [
      {
        id: 'L1',
        kind: 'aid',
        fund: 'F1',
        rules: [
          {
            id: 'ip',
            match: { visitTypes: ['inpatient'] },
            bands: [{ uptoFen: null, ratioBp: 10000 }],
            annualCaps: [{ counter: 'c1', capFen: 100000 }],
          },
          {
            id: 'op',
            match: { visitTypes: ['outpatient'] },
            bands: [{ uptoFen: null, ratioBp: 10000 }],
            annualCaps: [{ counter: 'c1', capFen: 1000000 }],
          },
        ],
      },
    ],
  };
  const settle = (visitId: string, visitType: string, totalFen: number) =>
    call(service(), 'POST', '/v1/settlements', TOKENS.hospital, {
      hospitalId: 'h1',
      visitId,
      personId: 'p4',
      region: 'ra',
      scheme: 'nrcms',
      visitType,
      hospitalLevel: 'county',
      admissionDate: '2020-03-01',
      dischargeDate: '2020-03-02',
      totalFen,
    });
  const c1 = async () =>
    ((await call(service(), 'GET', '/v1/persons/p4', null)).body.years as Obj[]).find((y) => y.year === 2020)!.usedFen.c1 as number;
  const adjust = async (deltaFen: number) => {
    const requested = await call(service(), 'POST', '/v1/adjustments', TOKENS.adminA, {
      hospitalId: 'h1',
      visitId: 'ip-1',
      layerId: 'L1',
      deltaFen,
      reason: '复核',
    });
    if (requested.status !== 201) return requested;
    return call(service(), 'POST', `/v1/adjustments/${requested.body.adjustmentId}/approval`, TOKENS.adminB, {});
  };

  it('given c1 at 5,500 元 (500 inpatient + 5,000 outpatient), when the inpatient pay is cut by 100 元, then it is applied and c1 stands at 5,400 元', async () => {
    expect((await call(service(), 'POST', '/v1/policies', TOKENS.adminA, policy)).status).toBe(201);
    expect((await settle('ip-1', 'inpatient', 50000)).body.aidPayFen).toBe(50000);
    expect((await settle('op-1', 'outpatient', 500000)).body.aidPayFen).toBe(500000);
    expect(await c1()).toBe(550000);
    const cut = await adjust(-10000);
    expect([cut.status, cut.body.code]).toEqual([200, undefined]);
    expect(await c1()).toBe(540000);
  });

  it('refuses a raise that would keep c1 above the inpatient cap, and a cut below a pay of 0', async () => {
    const raise = await adjust(1);
    const tooDeep = await adjust(-40001);
    expect([raise.status, raise.body.code, tooDeep.status, tooDeep.body.code]).toEqual([
      422,
      'ADJUSTMENT_OUT_OF_RANGE',
      422,
      'ADJUSTMENT_OUT_OF_RANGE',
    ]);
    expect(await c1()).toBe(540000);
  });
});
