// Authenticated actors and adjustments with maker–checker, over real HTTP against the real service
// (a child process) started with an auth file: who may call what, a maker who cannot approve their
// own request, counters that move only on approval and come back exactly on reversal, both actors
// in the recorded events, and an approval whose second append was lost, repaired on the next read.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { deterministicEventId } from '#event-store';
import { SqliteEventStore } from '#event-store-sqlite';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Service, anonymous, http, removeDir, startService, tempDir, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;

const TOKENS = {
  adminA: 'admin-a-9f2c1e7d4b8a6f3e5d2c1b0a',
  adminB: 'admin-b-1a2b3c4d5e6f7a8b9c0d1e2f',
  adminC: 'admin-c-5d4c3b2a1f0e9d8c7b6a5f4e',
  hospital: 'hosp-county-7e6d5c4b3a2f1e0d9c8b',
  auditor: 'auditor-0f1e2d3c4b5a69788796a5b4',
};
const ADMIN_A = { kind: 'admin', id: 'admin-a' };
const ADMIN_B = { kind: 'admin', id: 'admin-b' };

const { dir: authDir, file: authFile } = writeAuthFile([
  { token: TOKENS.adminA, kind: 'admin', id: 'admin-a' },
  { token: TOKENS.adminB, kind: 'admin', id: 'admin-b' },
  { token: TOKENS.adminC, kind: 'admin', id: 'admin-c' },
  { token: TOKENS.hospital, kind: 'hospital', id: 'h-county' },
  { token: TOKENS.auditor, kind: 'auditor', id: 'audit-office' },
]);

let service: Service;

/** As this token, this Authorization header, without credentials, or (none of them) as the caller the route needs (support/service.ts). */
async function call(
  method: string,
  path: string,
  options: { token?: string | undefined; authorization?: string; anonymous?: boolean; body?: unknown } = {},
) {
  const headers: Record<string, string> = options.anonymous ? anonymous() : {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  const r = await http(service.url, method, path, options.body, headers);
  return { status: r.status, body: (r.body === '' ? null : r.body) as Obj };
}
const position = async () => (await call('GET', '/ready')).body.position as number;
const usedFen = async (personId: string) =>
  (await call('GET', `/v1/persons/${personId}`)).body.years.find((y: Obj) => y.year === 2012) as Obj;

/** The README's 低保 lung-cancer discharge: every layer pays something. */
const discharge = (personId: string, visitId: string, totalFen = 8_000_000) => ({
  hospitalId: 'h-county',
  visitId,
  personId,
  region: '360827',
  scheme: 'nrcms',
  visitType: 'inpatient',
  hospitalLevel: 'county',
  admissionDate: '2012-02-01',
  dischargeDate: '2012-02-20',
  diagnosisCodes: ['C34.9'],
  totalFen,
  fullOwnPayFen: 500_000,
  preSelfPayFen: 300_000,
});

async function settledDibao(personId: string, visitId: string, totalFen?: number): Promise<Obj> {
  expect((await call('POST', `/v1/persons/${personId}/categories`, { body: { category: 'dibao', validFrom: '2012-01-01' } })).status).toBe(
    200,
  );
  const settled = await call('POST', '/v1/settlements', { body: discharge(personId, visitId, totalFen) });
  expect(settled.status).toBe(201);
  return settled.body;
}
const layer = (settlement: Obj, layerId: string) => settlement.layers.find((l: Obj) => l.layerId === layerId) as Obj;

async function requestAdjustment(body: Obj, token = TOKENS.adminA): Promise<Obj> {
  const r = await call('POST', '/v1/adjustments', { token, body: { reason: '复核发现漏报', ...body } });
  expect([r.status, r.body.code]).toEqual([201, undefined]);
  return r.body;
}

beforeAll(async () => {
  service = await startService({ args: ['--auth', authFile] });
});

afterAll(async () => {
  await service?.stop();
  if (service) removeDir(service.dataDir);
  removeDir(authDir);
});

describe('authentication', () => {
  it('with credentials configured, refuses a caller without a token or with a wrong one on any route with 401, recording nothing', async () => {
    await settledDibao('p-open', 'v-open');
    expect((await call('GET', '/v1/settlements/h-county/v-open')).status).toBe(200);
    // Given a caller without a token, then 401 on writes and reads alike
    const unposted = await position();
    const noToken = await call('POST', '/v1/settlements', { anonymous: true, body: discharge('p-open', 'v-open-0') });
    expect([noToken.status, noToken.body.code, await position()]).toEqual([401, 'UNAUTHENTICATED', unposted]);
    expect((await call('GET', '/v1/settlements/h-county/v-open', { anonymous: true })).status).toBe(401);
    // when a token is wrong, malformed or of another scheme, then 401 UNAUTHENTICATED, on reads too
    for (const authorization of [`Bearer ${TOKENS.adminA}x`, `Bearer ${TOKENS.adminA.slice(0, -1)}`, `Basic ${TOKENS.adminA}`, 'Bearer']) {
      const r = await call('GET', '/v1/persons/p-open', { authorization });
      expect([authorization, r.status, r.body.code]).toEqual([authorization, 401, 'UNAUTHENTICATED']);
    }
    const before = await position();
    const refused = await call('POST', '/v1/settlements', {
      authorization: 'Bearer not-a-token-of-this-service',
      body: discharge('p-open', 'v-open-2'),
    });
    expect([refused.status, refused.body.code, await position()]).toEqual([401, 'UNAUTHENTICATED', before]);
    // and a valid hospital token settles, recorded with that actor
    const asHospital = await call('POST', '/v1/settlements', { token: TOKENS.hospital, body: discharge('p-open', 'v-open-3') });
    expect(asHospital.status).toBe(201);
  });

  it('answers admin routes 401 without a token, 403 to a hospital or an auditor, and records nothing', async () => {
    const settlement = await settledDibao('p-roles', 'v-roles');
    const body = { settlementId: settlement.settlementId, layerId: 'aid', deltaFen: 100, reason: 'x' };
    const before = await position();
    const outcomes = [];
    for (const token of [undefined, TOKENS.hospital, TOKENS.auditor]) {
      const r = await call('POST', '/v1/adjustments', { token, anonymous: token === undefined, body });
      outcomes.push([r.status, r.body.code]);
    }
    expect(outcomes).toEqual([
      [401, 'UNAUTHENTICATED'],
      [403, 'FORBIDDEN'],
      [403, 'FORBIDDEN'],
    ]);
    // a role is checked before the body: a hospital learns nothing from a malformed one either
    expect((await call('POST', '/v1/adjustments', { token: TOKENS.hospital, body: { deltaFen: 'x' } })).status).toBe(403);
    expect((await call('GET', '/v1/adjustments/00000000-0000-0000-0000-000000000000', { anonymous: true })).status).toBe(401);
    expect((await call('GET', '/v1/adjustments/00000000-0000-0000-0000-000000000000', { token: TOKENS.hospital })).status).toBe(403);
    expect((await call('GET', '/v1/adjustments/00000000-0000-0000-0000-000000000000', { token: TOKENS.auditor })).body.code).toBe(
      'ADJUSTMENT_NOT_FOUND',
    );
    expect(await position()).toBe(before);
  });
});

describe('requesting an adjustment', () => {
  it('refuses malformed requests with 400 naming the field, and requests that do not fit with 404/409/422, recording nothing', async () => {
    const s = await settledDibao('p-bad', 'v-bad');
    const aid = layer(s, 'aid');
    const ok = { settlementId: s.settlementId, layerId: 'aid', deltaFen: 100, reason: '复核' };
    const cases: Array<[Obj, number, string, string?]> = [
      [{ ...ok, deltaFen: 0 }, 400, 'VALIDATION_FAILED', 'deltaFen'],
      [{ ...ok, deltaFen: 1.5 }, 400, 'VALIDATION_FAILED', 'deltaFen'],
      [{ ...ok, deltaFen: '100' }, 400, 'VALIDATION_FAILED', 'deltaFen'],
      [{ ...ok, deltaFen: -100_000_000_001 }, 400, 'VALIDATION_FAILED', 'deltaFen'],
      [{ ...ok, reason: '' }, 400, 'VALIDATION_FAILED', 'reason'],
      [{ ...ok, reason: 'x'.repeat(501) }, 400, 'VALIDATION_FAILED', 'reason'],
      [{ ...ok, reason: undefined }, 400, 'VALIDATION_FAILED', 'reason'],
      [{ ...ok, hospitalId: 'h-county' }, 400, 'VALIDATION_FAILED', 'hospitalId'],
      [{ ...ok, settlementId: undefined }, 400, 'VALIDATION_FAILED', 'hospitalId'],
      [{ ...ok, settlementId: 'h-county/v-bad' }, 400, 'VALIDATION_FAILED', 'settlementId'],
      [{ ...ok, discount: 1 }, 400, 'VALIDATION_FAILED', 'discount'],
      [{ ...ok, layerId: 'aid9' }, 400, 'VALIDATION_FAILED', 'layerId'],
      [{ ...ok, settlementId: 'h-county/v-bad/2' }, 404, 'SETTLEMENT_NOT_FOUND'],
      [{ ...ok, settlementId: undefined, hospitalId: 'h-county', visitId: 'never' }, 404, 'SETTLEMENT_NOT_FOUND'],
      // above the layer's base, below zero
      [{ ...ok, deltaFen: aid.baseFen - aid.payFen + 1 }, 422, 'ADJUSTMENT_OUT_OF_RANGE', 'deltaFen'],
      [{ ...ok, deltaFen: -aid.payFen - 1 }, 422, 'ADJUSTMENT_OUT_OF_RANGE', 'deltaFen'],
    ];
    const before = await position();
    for (const [body, status, code, field] of cases) {
      const r = await call('POST', '/v1/adjustments', { token: TOKENS.adminA, body });
      expect([JSON.stringify(body).slice(0, 120), r.status, r.body.code, r.body.details?.[0]?.field]).toEqual([
        JSON.stringify(body).slice(0, 120),
        status,
        code,
        field,
      ]);
    }
    expect(await position()).toBe(before);
  });
});

describe('maker–checker', () => {
  let settlement: Obj;
  let adjustment: Obj;

  beforeAll(async () => {
    settlement = await settledDibao('p-mc', 'v-mc');
  });

  it('records a request that changes nothing but its own stream', async () => {
    const counters = await usedFen('p-mc');
    adjustment = await requestAdjustment({ hospitalId: 'h-county', visitId: 'v-mc', layerId: 'aid', deltaFen: 10_000 });
    expect(adjustment).toMatchObject({
      adjustmentId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'requested',
      settlementId: settlement.settlementId,
      personId: 'p-mc',
      layerId: 'aid',
      deltaFen: 10_000,
      requestedBy: ADMIN_A,
      approvedBy: null,
    });
    expect(await usedFen('p-mc')).toEqual(counters);
    const view = (await call('GET', '/v1/settlements/h-county/v-mc')).body;
    expect(view.current.adjustments).toEqual([
      { adjustmentId: adjustment.adjustmentId, layerId: 'aid', deltaFen: 10_000, status: 'requested' },
    ]);
  });

  it('refuses the maker approving their own request with 403, recording nothing', async () => {
    const before = await position();
    const r = await call('POST', `/v1/adjustments/${adjustment.adjustmentId}/approval`, { token: TOKENS.adminA });
    expect([r.status, r.body.code]).toEqual([403, 'FORBIDDEN']);
    expect(r.body.message).toMatch(/different admin/);
    expect(await position()).toBe(before);
    expect((await call('GET', `/v1/adjustments/${adjustment.adjustmentId}`, { token: TOKENS.auditor })).body.status).toBe('requested');
  });

  it("applies on another admin's approval: the counters of the layer's rule move, the settlement shows it, and it is decided once", async () => {
    const counters = await usedFen('p-mc');
    const approved = await call('POST', `/v1/adjustments/${adjustment.adjustmentId}/approval`, { token: TOKENS.adminB });
    expect([approved.status, approved.body.status, approved.body.requestedBy, approved.body.approvedBy]).toEqual([
      200,
      'approved',
      ADMIN_A,
      ADMIN_B,
    ]);
    // aid-dibao-ip counts on "aid" only; nothing else moves
    expect(await usedFen('p-mc')).toEqual({ ...counters, usedFen: { ...counters.usedFen, aid: counters.usedFen.aid + 10_000 } });
    const view = (await call('GET', '/v1/settlements/h-county/v-mc')).body;
    expect(view.current.adjustments).toEqual([
      { adjustmentId: adjustment.adjustmentId, layerId: 'aid', deltaFen: 10_000, status: 'approved' },
    ]);
    expect(layer(view.current, 'aid').payFen).toBe(layer(settlement, 'aid').payFen);

    const before = await position();
    for (const [token, path] of [
      [TOKENS.adminB, 'approval'],
      [TOKENS.adminA, 'rejection'],
    ] as const) {
      const again = await call('POST', `/v1/adjustments/${adjustment.adjustmentId}/${path}`, {
        token,
        body: path === 'rejection' ? { reason: 'no' } : undefined,
      });
      expect([again.status, again.body.code]).toEqual([409, 'ADJUSTMENT_ALREADY_DECIDED']);
    }
    expect(await position()).toBe(before);
    expect(await usedFen('p-mc')).toEqual({ ...counters, usedFen: { ...counters.usedFen, aid: counters.usedFen.aid + 10_000 } });
  });

  it('shows the history with the actor of each step', async () => {
    const r = await call('GET', `/v1/adjustments/${adjustment.adjustmentId}`, { token: TOKENS.auditor });
    expect(r.body.history.map((h: Obj) => [h.type, h.actor, h.streamId])).toEqual([
      ['AdjustmentRequested', ADMIN_A, `adjustment-${adjustment.adjustmentId}`],
      ['AdjustmentApplied', ADMIN_B, 'person-p-mc'],
      ['AdjustmentApproved', ADMIN_B, `adjustment-${adjustment.adjustmentId}`],
    ]);
  });

  it('lets an admin reject a request, which then never applies', async () => {
    const pending = await requestAdjustment({ settlementId: settlement.settlementId, layerId: 'aid', deltaFen: 500 });
    const rejected = await call('POST', `/v1/adjustments/${pending.adjustmentId}/rejection`, {
      token: TOKENS.adminB,
      body: { reason: '理由不充分' },
    });
    expect([rejected.status, rejected.body.status, rejected.body.rejectedBy, rejected.body.rejectionReason]).toEqual([
      200,
      'rejected',
      ADMIN_B,
      '理由不充分',
    ]);
    const late = await call('POST', `/v1/adjustments/${pending.adjustmentId}/approval`, { token: TOKENS.adminB });
    expect([late.status, late.body.code]).toEqual([409, 'ADJUSTMENT_ALREADY_DECIDED']);
    const bad = await call('POST', `/v1/adjustments/${pending.adjustmentId}/rejection`, { token: TOKENS.adminB, body: {} });
    expect([bad.status, bad.body.details?.[0]?.field]).toEqual([400, 'reason']);
  });
});

describe('reversal', () => {
  it('restores the counters exactly, taking the applied adjustments with the settlement', async () => {
    // Given a person with one settlement that stays, and a second one that gets adjusted twice
    await settledDibao('p-rev', 'v-rev-1', 3_000_000);
    const kept = await usedFen('p-rev');
    const second = (await call('POST', '/v1/settlements', { body: discharge('p-rev', 'v-rev-2') })).body;
    const plus = await requestAdjustment({ settlementId: second.settlementId, layerId: 'aid', deltaFen: 20_000 });
    const minus = await requestAdjustment({ settlementId: second.settlementId, layerId: 'basic', deltaFen: -7_000 }, TOKENS.adminB);
    expect((await call('POST', `/v1/adjustments/${plus.adjustmentId}/approval`, { token: TOKENS.adminB })).status).toBe(200);
    expect((await call('POST', `/v1/adjustments/${minus.adjustmentId}/approval`, { token: TOKENS.adminA })).status).toBe(200);
    const pendingOne = await requestAdjustment({ settlementId: second.settlementId, layerId: 'aid', deltaFen: 1 });
    const adjusted = await usedFen('p-rev');
    expect(adjusted.usedFen.basic - kept.usedFen.basic).toBe(layer(second, 'basic').payFen - 7_000);
    expect(adjusted.usedFen.aid - kept.usedFen.aid).toBe(layer(second, 'aid').payFen + 20_000);
    // when the adjusted settlement is reversed
    expect((await call('POST', '/v1/settlements/h-county/v-rev-2/reversal', { body: { reason: '费用明细录入错误' } })).status).toBe(200);
    // then the counters are exactly those of the settlement that stays
    expect(await usedFen('p-rev')).toEqual(kept);
    const view = (await call('GET', `/v1/adjustments/${plus.adjustmentId}`, { token: TOKENS.adminA })).body;
    expect([view.status, view.settlementStatus]).toEqual(['approved', 'reversed']);
    // and a request still pending cannot apply to a reversed settlement
    const late = await call('POST', `/v1/adjustments/${pendingOne.adjustmentId}/approval`, { token: TOKENS.adminB });
    expect([late.status, late.body.code]).toEqual([409, 'ALREADY_REVERSED']);
    expect(await usedFen('p-rev')).toEqual(kept);
  });
});

describe('the record', () => {
  it('carries both actors in the events, keeps tokens out of the logs, rebuilds after a restart, and repairs a lost AdjustmentApproved', async () => {
    // Given an approved adjustment, and two whose approval got only as far as the person stream
    const s = await settledDibao('p-rec', 'v-rec');
    const done = await requestAdjustment({ settlementId: s.settlementId, layerId: 'aid', deltaFen: 3_000 });
    expect((await call('POST', `/v1/adjustments/${done.adjustmentId}/approval`, { token: TOKENS.adminB })).status).toBe(200);
    const halves = [
      await requestAdjustment({ settlementId: s.settlementId, layerId: 'aid', deltaFen: 2_000 }),
      await requestAdjustment({ settlementId: s.settlementId, layerId: 'aid', deltaFen: 400 }),
    ];
    const counters = await usedFen('p-rec');
    await service.stop();
    const logs = service.stdout() + service.stderr();
    for (const token of Object.values(TOKENS)) expect(logs).not.toContain(token);

    const store = await SqliteEventStore.open({ path: join(service.dataDir, 'events.sqlite') });
    try {
      const own = await store.readStream(`adjustment-${done.adjustmentId}`);
      expect(own.map((e) => [e.type, (e.metadata as Obj).actor])).toEqual([
        ['AdjustmentRequested', ADMIN_A],
        ['AdjustmentApproved', ADMIN_B],
      ]);
      expect([(own[0]!.data as Obj).requestedBy, (own[1]!.data as Obj).approvedBy]).toEqual([ADMIN_A, ADMIN_B]);
      const person = await store.readStream('person-p-rec');
      const applied = person.filter((e) => e.type === 'AdjustmentApplied');
      expect(applied.map((e) => [(e.metadata as Obj).actor, (e.data as Obj).requestedBy, (e.data as Obj).approvedBy])).toEqual([
        [ADMIN_B, ADMIN_A, ADMIN_B],
      ]);
      expect(applied[0]!.data).toMatchObject({
        fund: '610100',
        region: '360827',
        year: 2012,
        deltaFen: 3_000,
        contributions: { yearBase: {}, used: { aid: 3_000 } },
      });
      // Simulate a crash between the two appends of an approval: AdjustmentApplied is in the person
      // stream (with the id the service derives), AdjustmentApproved never made it.
      await store.appendToStream(
        'person-p-rec',
        halves.map((half) => ({
          id: deterministicEventId('AdjustmentApplied', half.adjustmentId),
          type: 'AdjustmentApplied',
          data: {
            adjustmentId: half.adjustmentId,
            settlementId: s.settlementId,
            hospitalId: 'h-county',
            visitId: 'v-rec',
            layerId: 'aid',
            fund: '610100',
            region: '360827',
            year: 2012,
            deltaFen: half.deltaFen,
            contributions: { yearBase: {}, used: { aid: half.deltaFen } },
            requestedBy: ADMIN_A,
            approvedBy: ADMIN_B,
          },
          metadata: { actor: ADMIN_B, correlationId: 'crashed' },
        })),
        { expectedRevision: person[person.length - 1]!.revision },
      );
    } finally {
      await store.close();
    }

    // When the service starts again (the auth file named by the environment this time)
    service = await startService({ dataDir: service.dataDir, env: { MEDAID_AUTH_FILE: authFile } });
    // then the rebuilt state has every applied adjustment, once each
    const adjustedCounters = { ...counters, usedFen: { ...counters.usedFen, aid: counters.usedFen.aid + 2_400 } };
    expect(await usedFen('p-rec')).toEqual(adjustedCounters);
    expect((await call('GET', `/v1/adjustments/${done.adjustmentId}`, { token: TOKENS.adminA })).body.status).toBe('approved');
    // and reading a half-approved one completes it, naming the checker of its AdjustmentApplied
    const repaired = (await call('GET', `/v1/adjustments/${halves[0]!.adjustmentId}`, { token: TOKENS.auditor })).body;
    expect([repaired.status, repaired.approvedBy]).toEqual(['approved', ADMIN_B]);
    expect(repaired.history.map((h: Obj) => [h.type, h.actor])).toEqual([
      ['AdjustmentRequested', ADMIN_A],
      ['AdjustmentApplied', ADMIN_B],
      ['AdjustmentApproved', { kind: 'system', id: 'medaid' }],
    ]);
    expect((await call('POST', `/v1/adjustments/${halves[0]!.adjustmentId}/approval`, { token: TOKENS.adminC })).status).toBe(409);
    // while the checker retrying their approval completes it in their own name, recording only AdjustmentApproved
    const before = await position();
    const retried = await call('POST', `/v1/adjustments/${halves[1]!.adjustmentId}/approval`, { token: TOKENS.adminB });
    expect([retried.status, retried.body.status, await position()]).toEqual([200, 'approved', before + 1]);
    expect(retried.body.history.map((h: Obj) => [h.type, h.actor])).toEqual([
      ['AdjustmentRequested', ADMIN_A],
      ['AdjustmentApplied', ADMIN_B],
      ['AdjustmentApproved', ADMIN_B],
    ]);
    expect(await usedFen('p-rec')).toEqual(adjustedCounters);
  });

  it('refuses to start with an auth file holding a short token, without printing it', async () => {
    const dir = tempDir('medaid-auth-bad-');
    const file = join(dir, 'auth.json');
    writeFileSync(file, JSON.stringify({ tokens: [{ token: 'short-admin-secret', kind: 'admin', id: 'a' }] }));
    try {
      const started = startService({ dataDir: join(dir, 'data'), args: ['--auth', file] });
      await expect(started).rejects.toThrow(/tokens\[0\]\.token must be 24/);
      await expect(started).rejects.not.toThrow(/short-admin-secret/);
    } finally {
      removeDir(dir);
    }
  });
});
