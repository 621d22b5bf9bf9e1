// Adjustments with maker–checker: what a request may ask, who may decide, and how an applied
// adjustment moves the person's counters — and leaves again with its settlement's reversal.
import { describe, expect, it } from '@jest/globals';
import {
  AdjustmentState,
  decideAdjustmentRequest,
  decideApplication,
  decideApproval,
  decideRejection,
  evolveAdjustment,
  isAppliedTo,
} from './adjustment.js';
import { Discharge } from './calculation.js';
import { ActorRef, AdjustmentAppliedData, AdjustmentEvent, AdjustmentRequest, PersonEvent } from './events.js';
import { PersonState, SettlementRecord, decidePerson, evolvePerson, fromSettledData, initialPersonState } from './person.js';
import { Policy } from './policy.js';
import { Result } from './primitives.js';

const PERSON = 'P001';
const MAKER: ActorRef = { kind: 'admin', id: 'admin-a' };
const CHECKER: ActorRef = { kind: 'admin', id: 'admin-b' };
const OTHER: ActorRef = { kind: 'admin', id: 'admin-c' };

/**
 * Basic insurance pays 50 % above a 100 元 deductible (annual cap 1,000 元 on `basic-year`); aid
 * pays dibao 70 % of what is left, with two annual caps: `aid-year` 450 元 and `aid-all` 2,000 元.
 */
const POLICY: Policy = {
  policyId: 'p',
  version: 1,
  region: 'r1',
  effectiveFrom: '2012-01-01',
  categories: [{ code: 'dibao', name: '低保' }],
  layers: [
    {
      id: 'basic',
      kind: 'insurance',
      fund: '390100',
      rules: [
        {
          id: 'basic-all',
          threshold: { fen: 10000, per: 'settlement' },
          bands: [{ uptoFen: null, ratioBp: 5000 }],
          annualCaps: [{ counter: 'basic-year', capFen: 100000 }],
        },
      ],
    },
    {
      id: 'aid',
      kind: 'aid',
      fund: '610100',
      rules: [
        {
          id: 'aid-dibao',
          match: { categories: ['dibao'] },
          bands: [{ uptoFen: null, ratioBp: 7000 }],
          annualCaps: [
            { counter: 'aid-year', capFen: 45000 },
            { counter: 'aid-all', capFen: 200000 },
          ],
        },
      ],
    },
  ],
};

const known = { isKnownCategory: (c: string) => c === 'dibao' };
const discharge = (visitId: string): Discharge => ({
  hospitalId: 'H1',
  visitId,
  personId: PERSON,
  region: 'r1',
  scheme: 'nrcms',
  visitType: 'inpatient',
  hospitalLevel: 'county',
  admissionDate: '2012-06-10',
  dischargeDate: '2012-06-15',
  diagnosisCodes: [],
  totalFen: 110000,
  fullOwnPayFen: 0,
  overLimitFen: 0,
  preSelfPayFen: 0,
  externalPayments: {},
});

function decideAndEvolve(state: PersonState, command: Parameters<typeof decidePerson>[0]): { state: PersonState; events: PersonEvent[] } {
  const decided = decidePerson(command, state, known);
  if (!decided.ok) throw new Error(`${decided.error.code}: ${decided.error.message}`);
  return { state: decided.value.reduce(evolvePerson, state), events: decided.value };
}

/**
 * A dibao person with one settlement of visit V1: in scope 110,000; basic pays 50 % of 100,000 =
 * 50,000; aid pays 70 % of the 60,000 left = 42,000; the patient keeps 18,000 in scope.
 */
function givenSettled(): { person: PersonState; settlement: SettlementRecord } {
  let person = decideAndEvolve(initialPersonState(), {
    type: 'AssignCategory',
    personId: PERSON,
    category: 'dibao',
    validFrom: '2012-01-01',
  }).state;
  const settled = decideAndEvolve(person, { type: 'SettleDischarge', discharge: discharge('V1'), settlementId: 'H1/V1/1', policy: POLICY });
  person = settled.state;
  const event = settled.events[0]!;
  if (event.type !== 'DischargeSettled') throw new Error('expected DischargeSettled');
  return { person, settlement: fromSettledData(event.data, POLICY) };
}

let adjustmentNo = 0;
function requested(settlement: SettlementRecord, layerId: string, deltaFen: number, requestedBy = MAKER): AdjustmentState {
  const request: AdjustmentRequest = {
    adjustmentId: `adj-${++adjustmentNo}`,
    settlementId: settlement.settlementId,
    hospitalId: 'H1',
    visitId: settlement.discharge.visitId,
    personId: PERSON,
    layerId,
    deltaFen,
    reason: '复核调整',
  };
  return evolveAdjustment(null, { type: 'AdjustmentRequested', data: { ...request, requestedBy } })!;
}

/** Approves and applies in one step (the checker is CHECKER); throws when the domain refuses. */
function applied(person: PersonState, settlement: SettlementRecord, layerId: string, deltaFen: number): PersonState {
  const application = decideApplication(requested(settlement, layerId, deltaFen), CHECKER, settlement, person, POLICY);
  if (!application.ok) throw new Error(`${application.error.code}: ${application.error.message}`);
  return evolvePerson(person, { type: 'AdjustmentApplied', data: application.value });
}

const codeOf = (r: Result<unknown>) => (r.ok ? 'ok' : r.error.code);
const requestOutcome = (person: PersonState, settlement: SettlementRecord, layerId: string, deltaFen: number) => {
  const { request } = requested(settlement, layerId, deltaFen);
  return codeOf(decideAdjustmentRequest(request, MAKER, settlement, person, POLICY));
};
const year = (person: PersonState) => person.years[2012]!;

describe('requesting an adjustment (the maker)', () => {
  it('given an active settlement, when an admin asks for +30 元 on aid, then only AdjustmentRequested is recorded, naming the maker', () => {
    const { person, settlement } = givenSettled();
    const { request } = requested(settlement, 'aid', 3000);
    const decided = decideAdjustmentRequest(request, MAKER, settlement, person, POLICY);
    expect(decided).toEqual({ ok: true, value: [{ type: 'AdjustmentRequested', data: { ...request, requestedBy: MAKER } }] });
  });

  it('given a layer the settlement does not have, when requested, then VALIDATION_FAILED names layerId', () => {
    const { person, settlement } = givenSettled();
    const decided = decideAdjustmentRequest(requested(settlement, 'aid9', 100).request, MAKER, settlement, person, POLICY);
    expect(decided.ok ? null : [decided.error.code, decided.error.details[0]!.field]).toEqual(['VALIDATION_FAILED', 'layerId']);
  });

  it('given aid paid 42,000 of a 60,000 base with 3,000 left under its annual cap, when asked for more, then up to the cap fits and a fen more does not', () => {
    const { person, settlement } = givenSettled();
    expect(requestOutcome(person, settlement, 'aid', 3000)).toBe('ok');
    expect(requestOutcome(person, settlement, 'aid', 3001)).toBe('ADJUSTMENT_OUT_OF_RANGE');
  });

  it('given aid paid 42,000, when asked for less, then down to 0 fits and below it does not', () => {
    const { person, settlement } = givenSettled();
    expect(requestOutcome(person, settlement, 'aid', -42000)).toBe('ok');
    expect(requestOutcome(person, settlement, 'aid', -42001)).toBe('ADJUSTMENT_OUT_OF_RANGE');
  });

  it('given basic paid 50,000 of its 110,000 base, when asked for more, then the layer never pays above its base nor the funds above the in-scope amount', () => {
    const { person, settlement } = givenSettled();
    // 18,000 more makes the funds pay exactly the 110,000 in scope
    expect(requestOutcome(person, settlement, 'basic', 18000)).toBe('ok');
    expect(requestOutcome(person, settlement, 'basic', 18001)).toBe('ADJUSTMENT_OUT_OF_RANGE');
    expect(requestOutcome(person, settlement, 'basic', 60001)).toBe('ADJUSTMENT_OUT_OF_RANGE');
  });

  it('given a reversed settlement, when requested, then ALREADY_REVERSED', () => {
    const { person, settlement } = givenSettled();
    const reversed = decideAndEvolve(person, {
      type: 'ReverseSettlement',
      personId: PERSON,
      settlementId: 'H1/V1/1',
      hospitalId: 'H1',
      visitId: 'V1',
      reason: 'x',
    }).state;
    expect(requestOutcome(reversed, settlement, 'aid', 100)).toBe('ALREADY_REVERSED');
  });
});

describe('deciding an adjustment (maker–checker)', () => {
  const { settlement } = givenSettled();
  const state = requested(settlement, 'aid', 1000);

  it('given a request, when its maker approves it, then FORBIDDEN; when another admin does, then it is applied', () => {
    expect(codeOf(decideApproval(state, MAKER, null))).toBe('FORBIDDEN');
    expect(decideApproval(state, CHECKER, null)).toEqual({ ok: true, value: 'apply' });
  });

  it('given an approved or a rejected adjustment, when approved again, then ADJUSTMENT_ALREADY_DECIDED', () => {
    const approved = evolveAdjustment(state, {
      type: 'AdjustmentApproved',
      data: { adjustmentId: state.request.adjustmentId, approvedBy: CHECKER },
    })!;
    const rejected = evolveAdjustment(state, {
      type: 'AdjustmentRejected',
      data: { adjustmentId: state.request.adjustmentId, rejectedBy: OTHER, reason: 'no' },
    })!;
    expect(codeOf(decideApproval(approved, OTHER, CHECKER))).toBe('ADJUSTMENT_ALREADY_DECIDED');
    expect(codeOf(decideApproval(approved, CHECKER, CHECKER))).toBe('ADJUSTMENT_ALREADY_DECIDED');
    expect(codeOf(decideApproval(rejected, CHECKER, null))).toBe('ADJUSTMENT_ALREADY_DECIDED');
    expect(codeOf(decideRejection(rejected, CHECKER, 'again', null))).toBe('ADJUSTMENT_ALREADY_DECIDED');
  });

  it('given AdjustmentApplied recorded but AdjustmentApproved lost, when the same checker retries, then it completes; anyone else gets a conflict', () => {
    // the person stream is the authority: the adjustment's own stream still says "requested"
    expect(decideApproval(state, CHECKER, CHECKER)).toEqual({ ok: true, value: 'complete' });
    expect(codeOf(decideApproval(state, OTHER, CHECKER))).toBe('ADJUSTMENT_ALREADY_DECIDED');
    expect(codeOf(decideRejection(state, OTHER, 'too late', CHECKER))).toBe('ADJUSTMENT_ALREADY_DECIDED');
  });

  it('given a request, when rejected, then AdjustmentRejected names who and why, and the state says so', () => {
    const decided = decideRejection(state, OTHER, '理由不充分', null);
    const events = decided.ok ? decided.value : [];
    expect(events).toEqual([
      { type: 'AdjustmentRejected', data: { adjustmentId: state.request.adjustmentId, rejectedBy: OTHER, reason: '理由不充分' } },
    ]);
    const after = events.reduce<AdjustmentState | null>((s, e: AdjustmentEvent) => evolveAdjustment(s, e), state)!;
    expect([after.status, after.rejectedBy, after.rejectionReason, after.requestedBy]).toEqual(['rejected', OTHER, '理由不充分', MAKER]);
  });
});

describe('applying an adjustment (the checker approved)', () => {
  it("given aid counters at 42,000, when +2,000 on aid is applied, then both of the rule's counters move and nothing else", () => {
    const { person, settlement } = givenSettled();
    const application = decideApplication(requested(settlement, 'aid', 2000), CHECKER, settlement, person, POLICY);
    expect(application.ok).toBe(true);
    const data = (application as { value: AdjustmentAppliedData }).value;
    expect(data).toMatchObject({
      settlementId: 'H1/V1/1',
      layerId: 'aid',
      fund: '610100',
      region: 'r1',
      year: 2012,
      deltaFen: 2000,
      requestedBy: MAKER,
      approvedBy: CHECKER,
    });
    expect(data.contributions).toEqual({ yearBase: {}, used: { 'aid-year': 2000, 'aid-all': 2000 } });
    const after = evolvePerson(person, { type: 'AdjustmentApplied', data });
    expect(year(after).used).toEqual({ ...year(person).used, 'aid-year': 44000, 'aid-all': 44000 });
    expect(year(after).yearBase).toEqual(year(person).yearBase);
    expect(isAppliedTo(after, 'H1/V1/1', data.adjustmentId)).toBe(true);
    // recorded twice (a retry), it still counts once
    expect(evolvePerson(after, { type: 'AdjustmentApplied', data })).toEqual(after);
  });

  it('given +2,000 already applied on aid, when the next one is decided, then it is checked against the pay and counters after the first', () => {
    const { person, settlement } = givenSettled();
    const after = applied(person, settlement, 'aid', 2000);
    expect(codeOf(decideApplication(requested(settlement, 'aid', 1001), CHECKER, settlement, after, POLICY))).toBe(
      'ADJUSTMENT_OUT_OF_RANGE',
    );
    expect(codeOf(decideApplication(requested(settlement, 'aid', 1000), CHECKER, settlement, after, POLICY))).toBe('ok');
    expect(codeOf(decideApplication(requested(settlement, 'aid', -44001), CHECKER, settlement, after, POLICY))).toBe(
      'ADJUSTMENT_OUT_OF_RANGE',
    );
    expect(codeOf(decideApplication(requested(settlement, 'aid', -44000), CHECKER, settlement, after, POLICY))).toBe('ok');
  });

  it('given adjustments applied to a settlement, when it is reversed, then the counters are exactly as before the settlement', () => {
    const { person, settlement } = givenSettled();
    const before = initialPersonState();
    const adjusted = applied(applied(person, settlement, 'aid', 2000), settlement, 'basic', -5000);
    expect(year(adjusted).used).toEqual({ 'basic-year': 45000, 'aid-year': 44000, 'aid-all': 44000 });
    const reversed = decideAndEvolve(adjusted, {
      type: 'ReverseSettlement',
      personId: PERSON,
      settlementId: 'H1/V1/1',
      hospitalId: 'H1',
      visitId: 'V1',
      reason: 'x',
    }).state;
    expect(year(reversed).used).toEqual({ 'basic-year': 0, 'aid-year': 0, 'aid-all': 0 });
    expect(Object.values(year(reversed).yearBase).every((fen) => fen === 0)).toBe(true);
    expect(reversed.active).toBe(before.active);
  });

  it('given a settlement reversed after the request, when the approval is decided, then ALREADY_REVERSED and an AdjustmentApplied arriving anyway changes nothing', () => {
    const { person, settlement } = givenSettled();
    const state = requested(settlement, 'aid', 1000);
    const application = decideApplication(state, CHECKER, settlement, person, POLICY);
    const reversed = decideAndEvolve(person, {
      type: 'ReverseSettlement',
      personId: PERSON,
      settlementId: 'H1/V1/1',
      hospitalId: 'H1',
      visitId: 'V1',
      reason: 'x',
    }).state;
    expect(codeOf(decideApplication(state, CHECKER, settlement, reversed, POLICY))).toBe('ALREADY_REVERSED');
    expect(evolvePerson(reversed, { type: 'AdjustmentApplied', data: (application as { value: AdjustmentAppliedData }).value })).toEqual(
      reversed,
    );
  });
});

describe('a counter shared by two rules with different caps', () => {
  /** One aid layer, two rules counting c1: inpatient capped at 100,000, outpatient at 1,000,000. */
  const SHARED: Policy = {
    policyId: 'shared',
    version: 1,
    region: 'r1',
    effectiveFrom: '2012-01-01',
    categories: [{ code: 'dibao', name: '低保' }],
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
  const settleOn = (person: PersonState, visitId: string, visitType: 'inpatient' | 'outpatient', totalFen: number) => {
    const settled = decideAndEvolve(person, {
      type: 'SettleDischarge',
      settlementId: `H1/${visitId}/1`,
      policy: SHARED,
      discharge: { ...discharge(visitId), visitType, totalFen },
    });
    const event = settled.events[0]!;
    if (event.type !== 'DischargeSettled') throw new Error('expected DischargeSettled');
    return { person: settled.state, settlement: fromSettledData(event.data, SHARED) };
  };

  it('given an inpatient pay of 50,000 and an outpatient pay of 500,000 (c1 = 550,000), when the inpatient pay is cut by 10,000, then it applies; a raise does not', () => {
    // Given c1 above the inpatient rule's cap, put there by the outpatient rule's larger cap
    const inpatient = settleOn(initialPersonState(), 'V-ip', 'inpatient', 50000);
    const both = settleOn(inpatient.person, 'V-op', 'outpatient', 500000).person;
    expect(year(both).used).toEqual({ c1: 550000 });
    // when the inpatient settlement is cut, then the cut fits and moves c1 down
    const cut = decideApplication(requested(inpatient.settlement, 'L1', -10000), CHECKER, inpatient.settlement, both, SHARED);
    expect(codeOf(cut)).toBe('ok');
    const after = evolvePerson(both, { type: 'AdjustmentApplied', data: (cut as { value: AdjustmentAppliedData }).value });
    expect(year(after).used).toEqual({ c1: 540000 });
    // a raise must keep c1 within the inpatient cap, which it is already above
    expect(codeOf(decideApplication(requested(inpatient.settlement, 'L1', 1), CHECKER, inpatient.settlement, after, SHARED))).toBe(
      'ADJUSTMENT_OUT_OF_RANGE',
    );
    // and a cut may take the layer's pay to 0 but no further
    expect(codeOf(decideApplication(requested(inpatient.settlement, 'L1', -40000), CHECKER, inpatient.settlement, after, SHARED))).toBe(
      'ok',
    );
    expect(codeOf(decideApplication(requested(inpatient.settlement, 'L1', -40001), CHECKER, inpatient.settlement, after, SHARED))).toBe(
      'ADJUSTMENT_OUT_OF_RANGE',
    );
  });
});
