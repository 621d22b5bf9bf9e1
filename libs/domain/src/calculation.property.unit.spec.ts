// Property tests of the settlement computation (spec §6) and the person stream (§4, §7) over random
// valid policies, discharges and person histories.
import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { Discharge, Eligibility, LayerResult, YearState, bandNumerator, computeSettlement, roundHalfUpBp } from './calculation.js';
import { PersonEvent, SettledData } from './events.js';
import {
  PersonCommand,
  PersonState,
  activeSettlements,
  settle,
  decidePerson,
  evolvePerson,
  findActive,
  fromSettledData,
  initialPersonState,
} from './person.js';
import { Band, LAYER_KINDS, Match, Policy, Rule, validatePolicy } from './policy.js';
import { HOSPITAL_LEVELS, VISIT_TYPES, canonicalJson } from './primitives.js';

const CODES = ['tekun', 'dibao', 'edge', 'ill'];
const COUNTERS = ['c1', 'c2', 'c3'];
const SCHEMES = ['nrcms', 'urban_rural_resident', 'employee'];
const PREFIXES = ['C', 'N18', 'I2', 'E1'];
const DIAGNOSES = ['C50.9', 'N18.5', 'I21.0', 'E11.9', 'J18.9'];
const ctx = { isKnownCategory: (c: string) => [...CODES, 'other'].includes(c) };

// ---- arbitraries -------------------------------------------------------------------------------

const fenUpTo = (max: number) => fc.oneof(fc.integer({ min: 0, max: Math.min(max, 200_000) }), fc.integer({ min: 0, max }));
const ratioArb = fc.oneof(fc.constantFrom(0, 5000, 10000), fc.integer({ min: 0, max: 10000 }));
const bandsArb: fc.Arbitrary<Band[]> = fc
  .tuple(
    fc.uniqueArray(
      fenUpTo(300_000_000).filter((n) => n > 0),
      { minLength: 1, maxLength: 4 },
    ),
    fc.boolean(),
    fc.array(ratioArb, { minLength: 4, maxLength: 4 }),
  )
  .map(([uptos, lastOpen, ratios]) =>
    [...uptos].sort((a, b) => a - b).map((u, i, all) => ({ uptoFen: lastOpen && i === all.length - 1 ? null : u, ratioBp: ratios[i]! })),
  );
const matchArb = (codes: string[]): fc.Arbitrary<Match> =>
  fc.record(
    {
      visitTypes: fc.subarray([...VISIT_TYPES], { minLength: 1 }),
      hospitalLevels: fc.subarray([...HOSPITAL_LEVELS], { minLength: 1 }),
      schemes: fc.subarray(SCHEMES, { minLength: 1 }),
      categories: fc.subarray([...codes, 'none'], { minLength: 1 }),
      diagnosisPrefixes: fc.subarray(PREFIXES, { minLength: 1 }),
    },
    { requiredKeys: [] },
  );
/** With `sharedCaps`, a counter has one cap across the policy; otherwise every rule draws its own. */
const ruleArb = (codes: string[], sharedCaps: Record<string, number> | null): fc.Arbitrary<Omit<Rule, 'id'>> =>
  fc.record(
    {
      match: matchArb(codes),
      threshold: fc.record({
        fen: fc.oneof(fc.constant(0), fenUpTo(2_000_000)),
        per: fc.constantFrom('settlement' as const, 'year' as const),
      }),
      bands: bandsArb,
      perSettlementCapFen: fc.option(fenUpTo(50_000_000), { nil: null }),
      annualCaps: fc
        .tuple(fc.shuffledSubarray(COUNTERS), fc.array(fenUpTo(50_000_000), { minLength: 3, maxLength: 3 }))
        .map(([counters, caps]) => counters.map((counter, i) => ({ counter, capFen: sharedCaps?.[counter] ?? caps[i]! }))),
    },
    { requiredKeys: ['bands'] },
  );
const categoriesArb = fc
  .tuple(fc.shuffledSubarray(CODES), fc.array(fc.option(fc.boolean(), { nil: undefined }), { minLength: 4, maxLength: 4 }))
  .map(([codes, approvals]) =>
    codes.map((code, i) => ({ code, name: `category ${code}`, ...(approvals[i] === undefined ? {} : { requiresApproval: approvals[i] }) })),
  );
const policyArb = (sharedCaps: boolean): fc.Arbitrary<Policy> =>
  fc.tuple(categoriesArb, fc.array(fenUpTo(50_000_000), { minLength: 3, maxLength: 3 })).chain(([categories, caps]) => {
    const shared = sharedCaps ? Object.fromEntries(COUNTERS.map((c, i) => [c, caps[i]!])) : null;
    const layer = fc.record({
      kind: fc.constantFrom(...LAYER_KINDS),
      fund: fc.constantFrom('390100', '390200', '610100', '610102', '640100'),
      rules: fc.array(
        ruleArb(
          categories.map((c) => c.code),
          shared,
        ),
        { maxLength: 4 },
      ),
    });
    return fc.array(layer, { minLength: 1, maxLength: 5 }).map((layers) => ({
      policyId: 'prop',
      version: 1,
      region: 'r1',
      effectiveFrom: '2012-01-01',
      categories,
      layers: layers.map((l, i) => ({
        id: `L${i}`,
        kind: l.kind,
        fund: l.fund,
        rules: l.rules.map((r, j) => ({ id: `L${i}.r${j}`, ...r })),
      })),
    }));
  });

const addDays = (date: string, days: number) => new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
let visitNo = 0;
/** A discharge in `year`; some carry externalPayments (possibly too large, or with a key that is no layer). */
const dischargeArb = (layerIds: string[], year = 2012): fc.Arbitrary<Discharge> =>
  fc
    .record({
      visitType: fc.constantFrom(...VISIT_TYPES),
      hospitalLevel: fc.constantFrom(...HOSPITAL_LEVELS),
      scheme: fc.constantFrom(...SCHEMES),
      diagnosisCodes: fc.shuffledSubarray(DIAGNOSES, { maxLength: 3 }),
      inScope: fenUpTo(1_000_000_000),
      own: fc.array(fc.oneof(fc.constant(0), fenUpTo(50_000_000)), { minLength: 3, maxLength: 3 }),
      day: fc.integer({ min: 0, max: 364 }),
      stay: fc.integer({ min: 0, max: 20 }),
      external: fc.oneof(
        { arbitrary: fc.constant([] as Array<[string, number]>), weight: 4 },
        fc.array(fc.tuple(fc.constantFrom(...layerIds, ...layerIds, 'ghost'), fc.integer({ min: 0, max: 1000 })), { maxLength: 2 }),
      ),
    })
    .map((g) => {
      const dischargeDate = addDays(`${year}-01-01`, g.day);
      const [fullOwnPayFen, overLimitFen, preSelfPayFen] = g.own as [number, number, number];
      return {
        hospitalId: 'H1',
        visitId: `V${++visitNo}`,
        personId: 'P1',
        region: 'r1',
        scheme: g.scheme,
        visitType: g.visitType,
        hospitalLevel: g.hospitalLevel,
        admissionDate: addDays(dischargeDate, -g.stay),
        dischargeDate,
        diagnosisCodes: g.diagnosisCodes,
        totalFen: g.inScope + fullOwnPayFen + overLimitFen + preSelfPayFen,
        fullOwnPayFen,
        overLimitFen,
        preSelfPayFen,
        externalPayments: Object.fromEntries(g.external.map(([id, permille]) => [id, Math.floor((g.inScope * permille) / 4000)])),
      };
    });
const dayArb = fc.integer({ min: 0, max: 900 }).map((n) => addDays('2011-07-01', n));
const historyArb: fc.Arbitrary<PersonCommand[]> = fc.array(
  fc.oneof(
    {
      arbitrary: fc
        .tuple(fc.constantFrom(...CODES, 'other'), dayArb, fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }))
        .map(([category, validFrom, len]) => ({
          type: 'AssignCategory' as const,
          personId: 'P1',
          category,
          validFrom,
          ...(len === undefined ? {} : { validTo: addDays(validFrom, len) }),
        })),
      weight: 4,
    },
    {
      arbitrary: fc
        .tuple(fc.constantFrom(...CODES), dayArb)
        .map(([category, from]) => ({ type: 'RevokeCategory' as const, personId: 'P1', category, from })),
      weight: 1,
    },
    {
      arbitrary: fc.tuple(dayArb, fc.integer({ min: 0, max: 300 })).map(([validFrom, len]) => ({
        type: 'GrantApproval' as const,
        personId: 'P1',
        approvalNo: `A${validFrom}`,
        validFrom,
        validTo: addDays(validFrom, len),
      })),
      weight: 2,
    },
    { arbitrary: dayArb.map((date) => ({ type: 'RecordDeath' as const, personId: 'P1', date: addDays(date, 200) })), weight: 1 },
  ),
  { maxLength: 6 },
);
type Op = { settle: Discharge } | { reverse: number };
const scenarioArb = (sharedCaps: boolean, maxOps = 8) =>
  policyArb(sharedCaps).chain((policy) =>
    fc.record({
      policy: fc.constant(policy),
      history: historyArb,
      ops: fc.array(
        fc.oneof(
          { arbitrary: dischargeArb(policy.layers.map((l) => l.id)).map((settle): Op => ({ settle })), weight: 3 },
          { arbitrary: fc.nat().map((reverse): Op => ({ reverse })), weight: 1 },
        ),
        { minLength: 1, maxLength: maxOps },
      ),
    }),
  );

// ---- driving the person stream -----------------------------------------------------------------

const activeIds = (state: PersonState) => activeSettlements(state).map((a) => a.settlementId);

interface Run {
  state: PersonState;
  events: PersonEvent[];
  states: PersonState[];
  settled: Map<string, LayerResult[]>;
}
/** Applies commands in order, as the store does; a rejected command records nothing. */
function run(policy: Policy, history: PersonCommand[], ops: Op[], onStep: (r: Run) => void = () => {}): Run {
  const r: Run = { state: initialPersonState(), events: [], states: [], settled: new Map() };
  const apply = (cmd: PersonCommand) => {
    const decided = decidePerson(cmd, r.state, ctx);
    if (!decided.ok) {
      expect(['VALIDATION_FAILED', 'PERSON_DECEASED']).toContain(decided.error.code);
      return;
    }
    for (const e of decided.value) {
      r.state = evolvePerson(r.state, e);
      r.events.push(e);
      if (e.type === 'DischargeSettled') r.settled.set(e.data.settlementId, fromSettledData(e.data, policy).layers);
    }
    r.states.push(r.state);
    onStep(r);
  };
  history.forEach(apply);
  ops.forEach((op, i) => {
    if ('settle' in op) return apply({ type: 'SettleDischarge', discharge: op.settle, settlementId: `S${i}`, policy });
    const active = activeIds(r.state);
    if (active.length === 0) return;
    const settlementId = active[op.reverse % active.length]!;
    apply({ type: 'ReverseSettlement', personId: 'P1', settlementId, hospitalId: 'H1', visitId: settlementId, reason: 'test' });
  });
  return r;
}
/** Year states compared by amount: a counter absent and a counter at 0 are the same. */
const amounts = (y: YearState | undefined, keys: YearState) => ({
  yearBase: Object.fromEntries(
    Object.keys({ ...keys.yearBase, ...y?.yearBase })
      .sort()
      .map((k) => [k, y?.yearBase[k] ?? 0]),
  ),
  used: Object.fromEntries(
    Object.keys({ ...keys.used, ...y?.used })
      .sort()
      .map((k) => [k, y?.used[k] ?? 0]),
  ),
});
const ruleById = (policy: Policy) => new Map(policy.layers.flatMap((l) => l.rules.map((r) => [r.id, r] as const)));

/** Spec §6 read literally, with exact integer band arithmetic; null when an external amount is too large. */
function model(policy: Policy, d: Discharge, who: Eligibility, year: YearState) {
  let remaining = d.totalFen - d.fullOwnPayFen - d.overLimitFen - d.preSelfPayFen;
  const used = { ...year.used };
  const yearBase: Record<string, number> = {};
  const layers: LayerResult[] = [];
  const holds = (m: Match | undefined) =>
    m === undefined ||
    ((!m.visitTypes || m.visitTypes.includes(d.visitType)) &&
      (!m.hospitalLevels || m.hospitalLevels.includes(d.hospitalLevel)) &&
      (!m.schemes || m.schemes.includes(d.scheme)) &&
      (!m.categories || m.categories.includes(who.category)) &&
      (!m.diagnosisPrefixes || d.diagnosisCodes.some((c) => m.diagnosisPrefixes!.some((p) => c.startsWith(p)))));
  for (const L of policy.layers) {
    const row = (
      ruleId: string | null,
      external: boolean,
      baseFen: number,
      belowThresholdFen: number,
      rawFen: number,
      payFen: number,
      cappedBy: string | null,
    ) => layers.push({ layerId: L.id, kind: L.kind, fund: L.fund, ruleId, external, baseFen, belowThresholdFen, rawFen, payFen, cappedBy });
    const ext = d.externalPayments[L.id];
    if (ext !== undefined) {
      if (ext > remaining) return null;
      row(null, true, remaining, 0, ext, ext, null);
      yearBase[L.id] = remaining;
      remaining -= ext;
      continue;
    }
    const rule = who.aidBlocked && L.kind === 'aid' ? undefined : L.rules.find((r) => holds(r.match));
    if (rule === undefined) {
      row(null, false, remaining, 0, 0, 0, null);
      continue;
    }
    const base = remaining;
    const prev = rule.threshold?.per === 'year' ? (year.yearBase[L.id] ?? 0) : 0;
    const T = rule.threshold?.fen ?? 0;
    const [lo, hi] = [Math.max(prev, T), prev + base];
    let numerator = 0n;
    const bands = rule.bands ?? []; // (the generated policies pay by bands only)
    bands.forEach((b, i) => {
      const [from, to] = [i === 0 ? 0 : bands[i - 1]!.uptoFen!, b.uptoFen ?? Number.MAX_SAFE_INTEGER];
      numerator += BigInt(Math.max(0, Math.min(hi, to) - Math.max(lo, from))) * BigInt(b.ratioBp);
    });
    const raw = Number((numerator + 5000n) / 10000n);
    const limits: Array<[string, number]> = rule.perSettlementCapFen == null ? [] : [['settlement', rule.perSettlementCapFen]];
    for (const c of rule.annualCaps ?? []) limits.push([c.counter, Math.max(0, c.capFen - (used[c.counter] ?? 0))]);
    const pay = Math.min(raw, remaining, ...limits.map(([, fen]) => fen));
    row(
      rule.id,
      false,
      base,
      Math.min(base, Math.max(0, T - prev)),
      raw,
      pay,
      pay === raw ? null : (limits.find(([, fen]) => fen === pay)?.[0] ?? '(no limit)'),
    );
    yearBase[L.id] = base;
    for (const c of rule.annualCaps ?? []) used[c.counter] = (used[c.counter] ?? 0) + pay;
    remaining -= pay;
  }
  const usedDelta = Object.fromEntries(Object.entries(used).map(([k, v]) => [k, v - (year.used[k] ?? 0)]));
  return { layers, remaining, contributions: { yearBase, used: usedDelta } };
}

// ---- properties --------------------------------------------------------------------------------

describe('random policies', () => {
  it('given any generated policy, when validated, then it is valid (the generators only build valid policies)', () => {
    fc.assert(
      fc.property(fc.boolean().chain(policyArb), (policy) => {
        expect(validatePolicy(policy)).toEqual({ ok: true, value: policy });
      }),
      { numRuns: 150 },
    );
  });
});

describe('computeSettlement: totals identities (spec §6 "Totals")', () => {
  const yearStateArb = fc.record({
    yearBase: fc.dictionary(fc.constantFrom('L0', 'L1', 'L2', 'L3', 'L4'), fenUpTo(100_000_000)),
    used: fc.dictionary(fc.constantFrom(...COUNTERS), fenUpTo(60_000_000)),
  });
  const inputArb = policyArb(false).chain((policy) =>
    fc.record({
      policy: fc.constant(policy),
      d: dischargeArb(policy.layers.map((l) => l.id)),
      year: yearStateArb,
      who: fc.record({ category: fc.constantFrom(...policy.categories.map((c) => c.code), 'none'), aidBlocked: fc.boolean() }),
    }),
  );

  it('given any policy, discharge, category and year so far, when computed, then every identity of the result holds', () => {
    fc.assert(
      fc.property(inputArb, ({ policy, d, year, who }) => {
        const external = Object.keys(d.externalPayments).filter((k) => policy.layers.some((l) => l.id === k));
        if (Object.keys(d.externalPayments).length !== external.length) return; // a non-layer key is rejected before computing
        const result = computeSettlement(policy, d, who, year);
        if (!result.ok) {
          expect([result.error.code, external.length > 0]).toEqual(['VALIDATION_FAILED', true]);
          return;
        }
        const { layers, totals, inScopeFen } = result.value;
        const sum = (ls: LayerResult[]) => ls.reduce((s, l) => s + l.payFen, 0);
        expect(inScopeFen).toBe(d.totalFen - d.fullOwnPayFen - d.overLimitFen - d.preSelfPayFen);
        expect(layers.map((l) => [l.layerId, l.kind, l.fund])).toEqual(policy.layers.map((l) => [l.id, l.kind, l.fund]));
        expect(totals.fundPayFen + totals.patientPayFen).toBe(d.totalFen);
        expect(totals.fundPayFen).toBe(sum(layers));
        expect(totals.insurancePayFen).toBe(sum(layers.filter((l) => l.kind === 'insurance')));
        expect(totals.criticalIllnessPayFen).toBe(sum(layers.filter((l) => l.kind === 'critical_illness')));
        expect(totals.aidPayFen).toBe(sum(layers.filter((l) => l.kind === 'aid')));
        expect(totals.inScopeSelfPayFen).toBe(inScopeFen - totals.fundPayFen);
        expect(totals.deductibleFen).toBe(layers.filter((l) => l.kind === 'insurance').reduce((s, l) => s + l.belowThresholdFen, 0));
        layers.forEach((l, i) => {
          expect(l.baseFen).toBe(i === 0 ? inScopeFen : layers[i - 1]!.baseFen - layers[i - 1]!.payFen);
          expect(l.payFen).toBeGreaterThanOrEqual(0);
          expect(l.payFen).toBeLessThanOrEqual(l.baseFen);
          expect(l.belowThresholdFen).toBeLessThanOrEqual(l.baseFen);
          if (l.external)
            expect([l.ruleId, l.payFen, l.rawFen]).toEqual([null, d.externalPayments[l.layerId], d.externalPayments[l.layerId]]);
          else expect(l.payFen).toBeLessThanOrEqual(l.rawFen);
          expect(l.cappedBy === null).toBe(l.payFen === l.rawFen);
          if (who.aidBlocked && l.kind === 'aid' && !l.external) expect([l.ruleId, l.payFen]).toEqual([null, 0]);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('given any inputs, when computed, then the layers agree with a literal reading of the spec §6 algorithm', () => {
    fc.assert(
      fc.property(inputArb, ({ policy, d, year, who }) => {
        if (Object.keys(d.externalPayments).some((k) => !policy.layers.some((l) => l.id === k))) return;
        const result = computeSettlement(policy, d, who, year);
        const expected = model(policy, d, who, year);
        if (expected === null || !result.ok) {
          expect(result.ok ? 'ok' : result.error.code).toBe(expected === null ? 'VALIDATION_FAILED' : 'ok');
          return;
        }
        expect(result.value.layers).toEqual(expected.layers);
        expect(result.value.totals.inScopeSelfPayFen).toBe(expected.remaining);
        expect(amounts(result.value.contributions, expected.contributions)).toEqual(
          amounts(expected.contributions, result.value.contributions),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('given the same inputs, when computed twice, then the results are deep-equal and no input was changed', () => {
    fc.assert(
      fc.property(inputArb, ({ policy, d, year, who }) => {
        const before = canonicalJson({ policy, d, year, who });
        expect(computeSettlement(policy, d, who, year)).toEqual(computeSettlement(policy, d, who, year));
        expect(canonicalJson({ policy, d, year, who })).toBe(before);
      }),
      { numRuns: 100 },
    );
  });
});

describe('person stream over a year (spec §6 "State", §7)', () => {
  it('given counters shared across rules and layers, when a year of settlements and reversals is applied, then no counter exceeds its cap', () => {
    fc.assert(
      fc.property(scenarioArb(true, 10), ({ policy, history, ops }) => {
        const caps = policy.layers.flatMap((l) => l.rules.flatMap((r) => r.annualCaps ?? []));
        run(policy, history, ops, ({ state }) => {
          for (const cap of caps) expect(state.years[2012]?.used[cap.counter] ?? 0).toBeLessThanOrEqual(cap.capFen);
        });
      }),
      { numRuns: 100 },
    );
  });

  it('given any settlements, when applied, then used[counter] is the sum of active pays of rules listing it and a rule that pays leaves it within its cap', () => {
    fc.assert(
      fc.property(scenarioArb(false, 10), ({ policy, history, ops }) => {
        const rules = ruleById(policy);
        run(policy, history, ops, ({ state, settled, events, states }) => {
          const expected: Record<string, number> = {};
          for (const id of activeIds(state)) {
            for (const l of settled.get(id)!) {
              for (const cap of (l.ruleId === null ? undefined : rules.get(l.ruleId))?.annualCaps ?? []) {
                expected[cap.counter] = (expected[cap.counter] ?? 0) + l.payFen;
              }
            }
          }
          const year = state.years[2012] ?? { yearBase: {}, used: {} };
          const modelYear = { yearBase: year.yearBase, used: expected };
          expect(amounts(year, modelYear)).toEqual(amounts(modelYear, year));
          // Within the settlement, each paying layer leaves its rule's counters within that rule's caps.
          const last = events.at(-1);
          if (last?.type !== 'DischargeSettled') return;
          const running = { ...(states.at(-2) ?? initialPersonState()).years[2012]?.used };
          for (const l of fromSettledData(last.data, policy).layers) {
            const caps = l.ruleId === null ? [] : (rules.get(l.ruleId)!.annualCaps ?? []);
            for (const cap of caps) running[cap.counter] = (running[cap.counter] ?? 0) + l.payFen;
            if (l.payFen > 0) for (const cap of caps) expect(running[cap.counter]).toBeLessThanOrEqual(cap.capFen);
          }
        });
      }),
      { numRuns: 100 },
    );
  });

  it('given settlements A then B, when B is reversed, then the year is as after A alone; re-settling B pays the same; reversing all gives zeros', () => {
    const arb = policyArb(true).chain((policy) =>
      fc.record({
        policy: fc.constant(policy),
        history: historyArb,
        ab: fc.tuple(dischargeArb(policy.layers.map((l) => l.id)), dischargeArb(policy.layers.map((l) => l.id))),
      }),
    );
    fc.assert(
      fc.property(arb, ({ policy, history, ab: [a, b] }) => {
        const afterA = run(policy, history, [{ settle: a }]);
        const afterB = run(policy, history, [{ settle: a }, { settle: b }]);
        const bId = 'S1';
        if (findActive(afterA.state, 'S0') === undefined || findActive(afterB.state, bId) === undefined) return; // a rejected input
        const reversed = run(policy, history, [{ settle: a }, { settle: b }, { reverse: activeIds(afterB.state).indexOf(bId) }]);
        const keys = afterB.state.years[2012]!;
        expect(amounts(reversed.state.years[2012], keys)).toEqual(amounts(afterA.state.years[2012], keys));
        const again = decidePerson({ type: 'SettleDischarge', discharge: b, settlementId: 'S9', policy }, reversed.state, ctx);
        expect(
          again.ok && again.value[0]!.type === 'DischargeSettled' ? fromSettledData(again.value[0].data, policy).layers : again,
        ).toEqual(afterB.settled.get(bId));
        const none = run(policy, history, [{ settle: a }, { settle: b }, { reverse: 0 }, { reverse: 0 }]);
        expect(activeIds(none.state)).toEqual([]);
        expect(
          Object.values(none.state.years[2012]!.yearBase)
            .concat(Object.values(none.state.years[2012]!.used))
            .filter((v) => v !== 0),
        ).toEqual([]);
      }),
      { numRuns: 120 },
    );
  });

  it('given any command sequence, when the state is rebuilt from the recorded events (also after a JSON round-trip), then it is the same', () => {
    fc.assert(
      fc.property(scenarioArb(false, 8), ({ policy, history, ops }) => {
        const r = run(policy, history, ops);
        // every accepted command records exactly one event, so the i-th state is the fold of the first i+1 events
        expect(r.states.map((_, i) => r.events.slice(0, i + 1).reduce(evolvePerson, initialPersonState()))).toEqual(r.states);
        const stored = JSON.parse(JSON.stringify(r.events)) as PersonEvent[];
        expect(stored.reduce(evolvePerson, initialPersonState())).toEqual(r.state);
      }),
      { numRuns: 100 },
    );
  });

  it('given any settlement, when recorded compactly and read back with its policy (also after a JSON round-trip), then it is the settlement as computed', () => {
    fc.assert(
      fc.property(scenarioArb(false, 6), ({ policy, history, ops }) => {
        run(policy, history, ops, ({ events, states }) => {
          const last = events.at(-1);
          if (last?.type !== 'DischargeSettled') return;
          const before = states.at(-2) ?? initialPersonState();
          const computed = settle(last.data.discharge, policy, last.data.settlementId, before);
          expect(computed.ok).toBe(true);
          if (!computed.ok) return;
          expect(fromSettledData(last.data, policy)).toEqual(computed.value);
          expect(fromSettledData(JSON.parse(JSON.stringify(last.data)) as SettledData, policy)).toEqual(computed.value);
        });
      }),
      { numRuns: 80 },
    );
  });

  it('given the same commands, when run twice, then the events and states are deep-equal', () => {
    fc.assert(
      fc.property(scenarioArb(false, 6), ({ policy, history, ops }) => {
        const [first, second] = [run(policy, history, ops), run(policy, history, ops)];
        expect([second.events, second.state]).toEqual([first.events, first.state]);
      }),
      { numRuns: 60 },
    );
  });
});

describe('rounding to 分 (one half-up rounding per layer)', () => {
  it('given a numerator in fen·bp, when rounded, then it is floor((n + 5000) / 10000)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 1e15 })), (n) => {
        expect(roundHalfUpBp(n)).toBe(Math.floor((n + 5000) / 10000));
      }),
      { numRuns: 1000 },
    );
  });

  it('given any safe numerator, when rounded, then it agrees with exact integer arithmetic', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 5000 }), (n) => {
        expect(BigInt(roundHalfUpBp(n))).toBe((BigInt(n) + 5000n) / 10000n);
      }),
      { numRuns: 1000 },
    );
  });

  it('given exact halves and just-below halves, when rounded, then .5 goes up and .4999 goes down', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000_000_000 }), (k) => {
        expect(roundHalfUpBp(k * 10000 + 5000)).toBe(k + 1);
        expect(roundHalfUpBp(k * 10000 + 4999)).toBe(k);
        expect(roundHalfUpBp(k * 10000)).toBe(k);
      }),
      { numRuns: 500 },
    );
    expect([roundHalfUpBp(5000), roundHalfUpBp(4999), roundHalfUpBp(15000), roundHalfUpBp(0)]).toEqual([1, 0, 2, 0]);
  });

  it('given bands and a range (lo, hi], when the numerator is computed, then it is Σ overlap × ratio of every band', () => {
    fc.assert(
      fc.property(bandsArb, fenUpTo(400_000_000), fenUpTo(400_000_000), (bands, x, y) => {
        const [lo, hi] = x <= y ? [x, y] : [y, x];
        let expected = 0n;
        let bandLo = 0;
        for (const b of bands) {
          const bandHi = b.uptoFen ?? Number.MAX_SAFE_INTEGER;
          expected += BigInt(Math.max(0, Math.min(hi, bandHi) - Math.max(lo, bandLo))) * BigInt(b.ratioBp);
          bandLo = bandHi;
        }
        expect(BigInt(bandNumerator(bands, lo, hi))).toBe(expected);
        expect(bandNumerator(bands, hi, lo)).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});
