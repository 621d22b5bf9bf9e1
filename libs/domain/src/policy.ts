// Policy documents (spec §3): the whole benefit scheme of one region (统筹区) from a date on.
// A policy is published, never edited; a change is a new version.
import {
  Bp,
  DIAGNOSIS_PATTERN,
  ErrorDetail,
  Fen,
  HOSPITAL_LEVELS,
  HospitalLevel,
  IsoDate,
  NO_CATEGORY,
  Result,
  VISIT_TYPES,
  VisitType,
  fail,
  isBp,
  isCalendarDate,
  isFen,
  isId,
  ok,
} from './primitives.js';

export type LayerKind = 'insurance' | 'critical_illness' | 'aid';
export const LAYER_KINDS: readonly LayerKind[] = ['insurance', 'critical_illness', 'aid'];

export interface Band {
  uptoFen: Fen | null;
  ratioBp: Bp;
}
export interface Threshold {
  fen: Fen;
  per: 'settlement' | 'year';
}
export interface AnnualCap {
  counter: string;
  capFen: Fen;
}
export interface Match {
  visitTypes?: VisitType[];
  hospitalLevels?: HospitalLevel[];
  schemes?: string[];
  categories?: string[];
  diagnosisPrefixes?: string[];
}
/**
 * Extension of spec §3 (README, "Fixed-sum rules"): 全费用定额救助 — the layer pays a fixed amount,
 * at most once a year per person and rule, to a settlement whose in-scope self-pay left when the
 * layer is reached (its base) is above `aboveFen`. A rule has either bands or a fixed sum.
 */
export interface FixedSum {
  amountFen: Fen;
  aboveFen: Fen;
}
export interface Rule {
  id: string;
  match?: Match;
  threshold?: Threshold;
  /** Required unless the rule has a fixed sum (then absent). */
  bands?: Band[];
  fixedSum?: FixedSum;
  perSettlementCapFen?: Fen | null;
  annualCaps?: AnnualCap[];
}

/** The year's counter that says a fixed-sum rule has paid (what it paid, in fen): reserved, no policy counter may be named so. */
export const fixedSumCounter = (ruleId: string) => `fixed:${ruleId}`;
export interface Layer {
  id: string;
  kind: LayerKind;
  fund: string;
  rules: Rule[];
}
export interface Category {
  code: string;
  name: string;
  requiresApproval?: boolean;
}
/**
 * Extension of spec §3 (README, "Funds"): whether a fund may be overdrawn. A layer paid from a
 * fund listed with mayOverdraw false pays at most the fund's remaining balance for the region and
 * year; unlisted funds may be overdrawn (usage rates over 120 % are reported in practice).
 */
export interface PolicyFund {
  code: string;
  name?: string;
  mayOverdraw: boolean;
}
/** Extension of spec §3: the enrolment subsidy (资助参保) per category, paid from one fund into another. */
export interface SubsidyRate {
  category: string;
  full?: true;
  amountFen?: Fen;
}
export interface EnrolmentSubsidy {
  premiumFen: Fen;
  fromFund: string;
  toFund: string;
  byCategory: SubsidyRate[];
}
/**
 * Extension of spec §3 (README, "Monitoring thresholds"): 防止因病返贫致贫动态监测. A person whose
 * self-pay (everything the patient pays: patientPayFen) goes above `aboveFen` — in one settlement
 * (`per: "settlement"`) or summed over the year's active settlements (`per: "year"`) — is flagged
 * once per year and threshold (HighMedicalCostFlagged); `categories` limits it to those categories.
 */
export interface MonitoringThreshold {
  id: string;
  per: 'settlement' | 'year';
  aboveFen: Fen;
  categories?: string[];
}
export interface Monitoring {
  thresholds: MonitoringThreshold[];
}
export interface Policy {
  policyId: string;
  version: number;
  region: string;
  effectiveFrom: IsoDate;
  name?: string;
  categories: Category[];
  layers: Layer[];
  funds?: PolicyFund[];
  enrolmentSubsidy?: EnrolmentSubsidy;
  monitoring?: Monitoring;
}
export interface PolicyRef {
  policyId: string;
  version: number;
}

// Limits on every list, so a policy can never make a settlement unboundedly slow.
export const POLICY_LIMITS = {
  categories: 100,
  layers: 20,
  rulesPerLayer: 200,
  bands: 20,
  annualCaps: 10,
  matchEntries: 200,
  maxVersion: 1_000_000,
  funds: 50,
  monitoringThresholds: 20,
} as const;

const PREFIX_PATTERN = /^[A-Z][0-9A-Z.]{0,9}$/;

/** Validates a raw policy document; every problem is reported with its path (`INVALID_POLICY`). */
export function validatePolicy(raw: unknown): Result<Policy> {
  const problems: ErrorDetail[] = [];
  const v = new Checker(problems);
  if (
    !v.object(raw, 'policy', [
      'policyId',
      'version',
      'region',
      'effectiveFrom',
      'name',
      'categories',
      'layers',
      'funds',
      'enrolmentSubsidy',
      'monitoring',
    ])
  ) {
    return fail('INVALID_POLICY', 'the policy must be a JSON object', problems);
  }
  v.id(raw.policyId, 'policyId');
  if (!(Number.isInteger(raw.version) && (raw.version as number) >= 1 && (raw.version as number) <= POLICY_LIMITS.maxVersion)) {
    v.problem('version', `must be an integer from 1 to ${POLICY_LIMITS.maxVersion}`);
  }
  v.id(raw.region, 'region');
  if (!isCalendarDate(raw.effectiveFrom)) v.problem('effectiveFrom', 'must be an existing YYYY-MM-DD date');
  if (raw.name !== undefined) v.text(raw.name, 'name', 200);

  const codes = new Set<string>();
  v.list(raw.categories, 'categories', POLICY_LIMITS.categories, 0).forEach((c, i) => {
    const p = `categories[${i}]`;
    if (!v.object(c, p, ['code', 'name', 'requiresApproval'])) return;
    if (v.id(c.code, `${p}.code`)) {
      if (c.code === NO_CATEGORY) v.problem(`${p}.code`, `"${NO_CATEGORY}" is reserved for persons without a category`);
      else if (codes.has(c.code as string)) v.problem(`${p}.code`, 'duplicate category code');
      codes.add(c.code as string);
    }
    v.text(c.name, `${p}.name`, 200);
    if (c.requiresApproval !== undefined && typeof c.requiresApproval !== 'boolean')
      v.problem(`${p}.requiresApproval`, 'must be a boolean');
  });

  const layerIds = new Set<string>();
  const ruleIds = new Set<string>();
  v.list(raw.layers, 'layers', POLICY_LIMITS.layers, 1).forEach((l, i) => {
    const p = `layers[${i}]`;
    if (!v.object(l, p, ['id', 'kind', 'fund', 'rules'])) return;
    if (v.id(l.id, `${p}.id`)) {
      if (layerIds.has(l.id as string)) v.problem(`${p}.id`, 'duplicate layer id');
      layerIds.add(l.id as string);
    }
    if (!LAYER_KINDS.includes(l.kind as LayerKind)) v.problem(`${p}.kind`, `must be one of ${LAYER_KINDS.join(', ')}`);
    v.text(l.fund, `${p}.fund`, 64);
    v.list(l.rules, `${p}.rules`, POLICY_LIMITS.rulesPerLayer, 0).forEach((r, j) => checkRule(v, r, `${p}.rules[${j}]`, codes, ruleIds));
  });

  if (raw.funds !== undefined) checkFunds(v, raw.funds);
  if (raw.enrolmentSubsidy !== undefined) checkSubsidy(v, raw.enrolmentSubsidy, codes);
  if (raw.monitoring !== undefined) checkMonitoring(v, raw.monitoring, codes);

  if (problems.length > 0) {
    const first = problems[0]!;
    return fail('INVALID_POLICY', `invalid policy: ${first.field} ${first.problem}`, problems);
  }
  return ok(raw as unknown as Policy);
}

function checkRule(v: Checker, r: unknown, p: string, codes: Set<string>, ruleIds: Set<string>): void {
  if (!v.object(r, p, ['id', 'match', 'threshold', 'bands', 'fixedSum', 'perSettlementCapFen', 'annualCaps'])) return;
  if (v.id(r.id, `${p}.id`)) {
    if (ruleIds.has(r.id as string)) v.problem(`${p}.id`, 'duplicate rule id (rule ids are unique across the policy)');
    ruleIds.add(r.id as string);
  }
  if (
    r.match !== undefined &&
    v.object(r.match, `${p}.match`, ['visitTypes', 'hospitalLevels', 'schemes', 'categories', 'diagnosisPrefixes'])
  ) {
    const m = r.match;
    const entries = (key: string, ok: (x: unknown) => boolean, what: string) => {
      if (m[key] === undefined) return;
      v.list(m[key], `${p}.match.${key}`, POLICY_LIMITS.matchEntries, 1).forEach((x, k) => {
        if (!ok(x)) v.problem(`${p}.match.${key}[${k}]`, `must be ${what}`);
      });
    };
    entries('visitTypes', (x) => VISIT_TYPES.includes(x as VisitType), `one of ${VISIT_TYPES.join(', ')}`);
    entries('hospitalLevels', (x) => HOSPITAL_LEVELS.includes(x as HospitalLevel), `one of ${HOSPITAL_LEVELS.join(', ')}`);
    entries('schemes', isId, 'a well-formed identifier');
    entries('categories', (x) => x === NO_CATEGORY || codes.has(x as string), `a category code of this policy or "${NO_CATEGORY}"`);
    entries('diagnosisPrefixes', (x) => typeof x === 'string' && PREFIX_PATTERN.test(x), 'an ICD-10 code prefix such as "C" or "N18"');
  }
  if (r.threshold !== undefined && v.object(r.threshold, `${p}.threshold`, ['fen', 'per'])) {
    if (!isFen(r.threshold.fen)) v.problem(`${p}.threshold.fen`, 'must be an integer number of fen (0 … 100000000000)');
    if (r.threshold.per !== 'settlement' && r.threshold.per !== 'year') v.problem(`${p}.threshold.per`, 'must be "settlement" or "year"');
  }
  if (r.fixedSum !== undefined) {
    if (v.object(r.fixedSum, `${p}.fixedSum`, ['amountFen', 'aboveFen'])) {
      if (!isFen(r.fixedSum.amountFen) || r.fixedSum.amountFen === 0)
        v.problem(`${p}.fixedSum.amountFen`, 'must be an integer number of fen above 0');
      if (!isFen(r.fixedSum.aboveFen)) v.problem(`${p}.fixedSum.aboveFen`, 'must be an integer number of fen (0 … 100000000000)');
    }
    if (r.bands !== undefined) v.problem(`${p}.bands`, 'a rule pays by bands or a fixed sum, not both');
    if (r.threshold !== undefined) v.problem(`${p}.threshold`, 'a fixed-sum rule has no threshold (fixedSum.aboveFen says when it pays)');
  }
  const bands = r.fixedSum !== undefined ? [] : v.list(r.bands, `${p}.bands`, POLICY_LIMITS.bands, 1);
  let previousUpto = -1;
  bands.forEach((b, k) => {
    const bp = `${p}.bands[${k}]`;
    if (!v.object(b, bp, ['uptoFen', 'ratioBp'])) return;
    if (!isBp(b.ratioBp)) v.problem(`${bp}.ratioBp`, 'must be an integer from 0 to 10000');
    if (!('uptoFen' in b)) return v.problem(`${bp}.uptoFen`, 'is required (null = no upper bound)');
    if (b.uptoFen === null) {
      if (k !== bands.length - 1) v.problem(`${bp}.uptoFen`, 'only the last band may be unbounded (null)');
      return;
    }
    if (!isFen(b.uptoFen)) return v.problem(`${bp}.uptoFen`, 'must be an integer number of fen or null');
    if (b.uptoFen <= previousUpto) v.problem(`${bp}.uptoFen`, 'band bounds must be strictly increasing');
    previousUpto = b.uptoFen;
  });
  if (r.perSettlementCapFen !== undefined && r.perSettlementCapFen !== null && !isFen(r.perSettlementCapFen)) {
    v.problem(`${p}.perSettlementCapFen`, 'must be an integer number of fen or null');
  }
  if (r.annualCaps !== undefined) {
    const counters = new Set<string>();
    v.list(r.annualCaps, `${p}.annualCaps`, POLICY_LIMITS.annualCaps, 0).forEach((c, k) => {
      const cp = `${p}.annualCaps[${k}]`;
      if (!v.object(c, cp, ['counter', 'capFen'])) return;
      if (v.id(c.counter, `${cp}.counter`)) {
        if (/^(fixed|monitor):/.test(c.counter as string)) v.problem(`${cp}.counter`, 'counters named fixed:… and monitor:… are reserved');
        if (counters.has(c.counter as string)) v.problem(`${cp}.counter`, 'a rule names each counter at most once');
        counters.add(c.counter as string);
      }
      if (!isFen(c.capFen)) v.problem(`${cp}.capFen`, 'must be an integer number of fen (0 … 100000000000)');
    });
  }
}

function checkFunds(v: Checker, funds: unknown): void {
  const seen = new Set<string>();
  v.list(funds, 'funds', POLICY_LIMITS.funds, 1).forEach((f, i) => {
    const p = `funds[${i}]`;
    if (!v.object(f, p, ['code', 'name', 'mayOverdraw'])) return;
    v.text(f.code, `${p}.code`, 64);
    if (typeof f.code === 'string') {
      if (seen.has(f.code)) v.problem(`${p}.code`, 'duplicate fund code');
      seen.add(f.code);
    }
    if (f.name !== undefined) v.text(f.name, `${p}.name`, 200);
    if (typeof f.mayOverdraw !== 'boolean') v.problem(`${p}.mayOverdraw`, 'must be a boolean');
  });
}

function checkMonitoring(v: Checker, m: unknown, codes: Set<string>): void {
  if (!v.object(m, 'monitoring', ['thresholds'])) return;
  const ids = new Set<string>();
  v.list(m.thresholds, 'monitoring.thresholds', POLICY_LIMITS.monitoringThresholds, 1).forEach((t, i) => {
    const p = `monitoring.thresholds[${i}]`;
    if (!v.object(t, p, ['id', 'per', 'aboveFen', 'categories'])) return;
    if (v.id(t.id, `${p}.id`)) {
      if (ids.has(t.id as string)) v.problem(`${p}.id`, 'duplicate threshold id');
      ids.add(t.id as string);
    }
    if (t.per !== 'settlement' && t.per !== 'year') v.problem(`${p}.per`, 'must be "settlement" or "year"');
    if (!isFen(t.aboveFen)) v.problem(`${p}.aboveFen`, 'must be an integer number of fen (0 … 100000000000)');
    if (t.categories !== undefined)
      v.list(t.categories, `${p}.categories`, POLICY_LIMITS.categories + 1, 1).forEach((c, k) => {
        if (c !== NO_CATEGORY && !codes.has(c as string))
          v.problem(`${p}.categories[${k}]`, `must be a category code of this policy or "${NO_CATEGORY}"`);
      });
  });
}

function checkSubsidy(v: Checker, s: unknown, codes: Set<string>): void {
  if (!v.object(s, 'enrolmentSubsidy', ['premiumFen', 'fromFund', 'toFund', 'byCategory'])) return;
  if (!isFen(s.premiumFen)) v.problem('enrolmentSubsidy.premiumFen', 'must be an integer number of fen (0 … 100000000000)');
  v.text(s.fromFund, 'enrolmentSubsidy.fromFund', 64);
  v.text(s.toFund, 'enrolmentSubsidy.toFund', 64);
  const seen = new Set<string>();
  v.list(s.byCategory, 'enrolmentSubsidy.byCategory', POLICY_LIMITS.categories, 1).forEach((r, i) => {
    const p = `enrolmentSubsidy.byCategory[${i}]`;
    if (!v.object(r, p, ['category', 'full', 'amountFen'])) return;
    if (typeof r.category !== 'string' || !codes.has(r.category)) v.problem(`${p}.category`, 'must be a category code of this policy');
    else if (seen.has(r.category)) v.problem(`${p}.category`, 'duplicate category');
    else seen.add(r.category);
    const full = r.full === true;
    if (r.full !== undefined && r.full !== true) v.problem(`${p}.full`, 'must be true when present');
    if (full === (r.amountFen !== undefined)) v.problem(p, 'must have exactly one of full: true or amountFen');
    if (r.amountFen !== undefined && !isFen(r.amountFen))
      v.problem(`${p}.amountFen`, 'must be an integer number of fen (0 … 100000000000)');
  });
}

/** Collects problems with their paths; each method says whether the value passed. */
class Checker {
  constructor(private readonly problems: ErrorDetail[]) {}
  problem(field: string, problem: string): void {
    this.problems.push({ field, problem });
  }
  object(x: unknown, path: string, allowed: string[]): x is Record<string, unknown> {
    if (x === null || typeof x !== 'object' || Array.isArray(x)) {
      this.problem(path, 'must be an object');
      return false;
    }
    // A misspelt field (say `annualCap`) must not be silently ignored.
    for (const k of Object.keys(x)) if (!allowed.includes(k)) this.problem(`${path}.${k}`, 'is not a field of this object');
    return true;
  }
  list(x: unknown, path: string, max: number, min: number): unknown[] {
    if (!Array.isArray(x)) {
      this.problem(path, 'must be an array');
      return [];
    }
    if (x.length < min) this.problem(path, `must have at least ${min} entr${min === 1 ? 'y' : 'ies'}`);
    if (x.length > max) {
      this.problem(path, `must have at most ${max} entries`);
      return [];
    }
    return x;
  }
  id(x: unknown, path: string): boolean {
    if (isId(x)) return true;
    this.problem(path, 'must match ^[A-Za-z0-9._:-]{1,64}$');
    return false;
  }
  text(x: unknown, path: string, max: number): void {
    if (typeof x !== 'string' || x.length < 1 || x.length > max) this.problem(path, `must be a text of 1 to ${max} characters`);
  }
}

/** A published policy and the order in which it was published (for tie-breaking). */
export interface PublishedPolicy {
  policy: Policy;
  publishedSeq: number;
}

/**
 * Which policy applies (spec §3): among policies of the region in force on the discharge date,
 * the one with the latest effectiveFrom; on a tie, the one published last.
 */
export function selectPolicy(published: Iterable<PublishedPolicy>, region: string, dischargeDate: IsoDate): PublishedPolicy | null {
  let best: PublishedPolicy | null = null;
  for (const p of published) {
    if (p.policy.region !== region || p.policy.effectiveFrom > dischargeDate) continue;
    if (
      best === null ||
      p.policy.effectiveFrom > best.policy.effectiveFrom ||
      (p.policy.effectiveFrom === best.policy.effectiveFrom && p.publishedSeq > best.publishedSeq)
    )
      best = p;
  }
  return best;
}
