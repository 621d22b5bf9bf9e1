// (a) The pure settlement computation: computeSettlement with the demo policy on realistic
// discharges (every category, visit type and hospital level, with a year-to-date state from
// earlier settlements of the same person), against a minimal hand-written single-layer
// computation of the same inputs (in-scope amount, threshold, one ratio, the annual cap, a result
// object) — what the settlement costs without the generic layer/rule/band engine.
import { dist, dischargeFor, loadDemoPolicy, median, personFacts, prng, scaled } from './common.js';

const domain = await import(dist('libs/domain/src/index.js'));
const { computeSettlement, eligibility, evolvePerson, initialPersonState, settle, validatePolicy, yearOf } = domain;

/** The basic-insurance layer of the demo policy, hand-written: threshold and ratio by hospital level. */
const FLAT = {
  inpatient: {
    township: [10_000, 9_000],
    county: [20_000, 8_200],
    city: [50_000, 6_500],
    province: [70_000, 5_500],
    out_of_province: [100_000, 4_500],
  },
};
const BASIC_CAP_FEN = 15_000_000;

function flatSettlement(d, who, year) {
  const inScopeFen = d.totalFen - d.fullOwnPayFen - d.overLimitFen - d.preSelfPayFen;
  const rule =
    d.visitType === 'inpatient' ? FLAT.inpatient[d.hospitalLevel] : d.visitType === 'chronic_outpatient' ? [0, 6_000] : [0, 5_000];
  const above = inScopeFen > rule[0] ? inScopeFen - rule[0] : 0;
  const rawFen = Math.floor((above * rule[1] + 5_000) / 10_000);
  const room = Math.max(0, BASIC_CAP_FEN - (year.used.basic ?? 0));
  const payFen = Math.min(rawFen, room, inScopeFen);
  return {
    inScopeFen,
    category: who.category,
    payFen,
    patientPayFen: d.totalFen - payFen,
    deductibleFen: Math.min(inScopeFen, rule[0]),
    cappedBy: payFen === rawFen ? null : 'basic',
  };
}

/** Persons with categories/approvals and 0–4 earlier settlements each, then the discharges to time. */
export function buildComputeWorkload(persons, items) {
  const policy = validatePolicy(loadDemoPolicy());
  if (!policy.ok) throw new Error(`demo policy: ${policy.error.message}`);
  const states = [];
  let n = 0;
  for (let p = 0; p < persons; p++) {
    let state = initialPersonState();
    for (const f of personFacts(p)) {
      state =
        f.type === 'AssignCategory'
          ? evolvePerson(state, {
              type: 'CategoryAssigned',
              data: { personId: f.personId, category: f.category, validFrom: f.validFrom, validTo: null },
            })
          : evolvePerson(state, {
              type: 'ApprovalGranted',
              data: { personId: f.personId, approvalNo: f.approvalNo, validFrom: f.validFrom, validTo: f.validTo },
            });
    }
    const earlier = p % 5;
    for (let k = 0; k < earlier; k++) {
      const d = dischargeFor(1_000_000 + n++, p, 'prior');
      const r = settle(d, policy.value, `s-${d.visitId}`, state);
      if (!r.ok) throw new Error(`workload: ${r.error.message}`);
      state = evolvePerson(state, { type: 'DischargeSettled', data: r.value });
    }
    states.push(state);
  }
  const rand = prng(42);
  const list = [];
  for (let i = 0; i < items; i++) {
    const p = Math.floor(rand() * persons);
    const d = dischargeFor(i, p);
    const state = states[p];
    const who = eligibility(state, policy.value, d.dischargeDate);
    list.push({ d, who, state, year: state.years[yearOf(d.dischargeDate)] ?? { yearBase: {}, used: {} } });
  }
  return { policy: policy.value, list };
}

/** Runs `pass` over the items repeatedly for at least ms; returns items per second. */
function timed(pass, count, ms) {
  let done = 0;
  let sink = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    sink += pass();
    done += count;
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  if (sink === -1) console.log('unreachable');
  return (done / elapsed) * 1000;
}

export async function benchCompute() {
  const persons = scaled('BENCH_COMPUTE_PERSONS', 2_000, 50);
  const items = scaled('BENCH_COMPUTE_ITEMS', 4_096, 256);
  const sliceMs = scaled('BENCH_COMPUTE_MS', 400, 50);
  const rounds = 7;
  const { policy, list } = buildComputeWorkload(persons, items);

  const engine = () => {
    let s = 0;
    for (const it of list) {
      const r = computeSettlement(policy, it.d, it.who, it.year);
      if (!r.ok) throw new Error(`computeSettlement: ${r.error.message}`);
      s += r.value.totals.patientPayFen;
    }
    return s;
  };
  const flat = () => {
    let s = 0;
    for (const it of list) s += flatSettlement(it.d, it.who, it.year).patientPayFen;
    return s;
  };
  const decide = () => {
    let s = 0;
    for (const it of list) {
      const r = settle(it.d, policy, 'x', it.state);
      if (!r.ok) throw new Error(`settle: ${r.error.message}`);
      s += r.value.totals.patientPayFen;
    }
    return s;
  };

  // Warm-up, then interleaved rounds (baseline, figure, baseline, figure, …), median of each.
  timed(engine, list.length, sliceMs / 2);
  timed(flat, list.length, sliceMs / 2);
  timed(decide, list.length, sliceMs / 2);
  const e = [];
  const f = [];
  const s = [];
  for (let r = 0; r < rounds; r++) {
    f.push(timed(flat, list.length, sliceMs));
    e.push(timed(engine, list.length, sliceMs));
    s.push(timed(decide, list.length, sliceMs));
  }
  return {
    engine: median(e),
    flat: median(f),
    settle: median(s),
    notes:
      `${items} discharges of ${persons} persons (all categories, approvals, 0–4 earlier settlements each); engine applies the policy's 5 layers, ` +
      `baseline hand-writes the basic layer only; ${rounds} interleaved rounds of ${sliceMs} ms, median`,
  };
}
