// Enrolment subsidies (资助参保): for a year, the medical-aid fund pays the basic-insurance premium of
// beneficiaries — the full premium for some categories (e.g. 特困), a fixed amount for others
// (e.g. 低保) — as the policy's `enrolmentSubsidy` says (an extension of spec §3, README "Funds").
// At most one subsidy per person and year. Pure.
import type { EnrolmentSubsidyGrantedData } from './events.js';
import type { PersonState } from './person.js';
import { eligibility } from './person.js';
import { Policy } from './policy.js';
import { Fen, IsoDate, NO_CATEGORY, Result, fail, ok } from './primitives.js';

export type SubsidyDecision = { kind: 'grant'; data: EnrolmentSubsidyGrantedData } | { kind: 'already'; amountFen: Fen } | { kind: 'none' }; // no category on that day, or the category gets no subsidy

/**
 * The subsidy of one person for a year under the policy in force on `asOf`: by the person's
 * effective category that day (the most favourable one held, as for aid).
 */
export function decideSubsidy(personId: string, state: PersonState, policy: Policy, year: number, asOf: IsoDate): Result<SubsidyDecision> {
  const rules = policy.enrolmentSubsidy;
  if (rules === undefined) {
    return fail('VALIDATION_FAILED', `policy ${policy.policyId} v${policy.version} defines no enrolment subsidy`, [
      { field: 'region', problem: 'the policy in force defines no enrolmentSubsidy' },
    ]);
  }
  const granted = state.subsidies?.[year];
  if (granted !== undefined) return ok({ kind: 'already', amountFen: granted });
  const { category } = eligibility(state, policy, asOf);
  if (category === NO_CATEGORY) return ok({ kind: 'none' });
  const rate = rules.byCategory.find((r) => r.category === category);
  if (rate === undefined) return ok({ kind: 'none' });
  const amountFen = rate.full === true ? rules.premiumFen : Math.min(rate.amountFen ?? 0, rules.premiumFen);
  if (amountFen === 0) return ok({ kind: 'none' });
  return ok({
    kind: 'grant',
    data: {
      personId,
      year,
      region: policy.region,
      category,
      amountFen,
      fromFund: rules.fromFund,
      toFund: rules.toFund,
      policy: { policyId: policy.policyId, version: policy.version },
      asOf,
    },
  });
}

/** One person's subsidy as decided before any is granted: what the run would pay them. */
export interface SubsidyCandidate {
  personId: string;
  category: string;
  amountFen: Fen;
}

/**
 * The order in which subsidies are granted, which decides who is granted when the paying fund runs
 * short: the policy's category order (most favourable, i.e. most in need, first — 特困 before 低保),
 * then personId by code point. Deterministic: the same candidates always come in the same order.
 */
export function subsidyOrder(policy: Policy, candidates: readonly SubsidyCandidate[]): SubsidyCandidate[] {
  const rank = new Map(policy.categories.map((c, i) => [c.code, i]));
  const rankOf = (c: SubsidyCandidate) => rank.get(c.category) ?? policy.categories.length;
  return [...candidates].sort((a, b) => rankOf(a) - rankOf(b) || (a.personId < b.personId ? -1 : a.personId > b.personId ? 1 : 0));
}

/**
 * Which candidates to grant when the paying fund has `roomFen` left (undefined: the fund may be
 * overdrawn, so all are granted). In subsidyOrder, each is granted while it fits in full; from the
 * first that does not fit on, none is — a later, smaller subsidy never goes before an earlier one —
 * and those are reported as short of funds. A premium is never paid in part.
 */
export function planSubsidies(
  policy: Policy,
  candidates: readonly SubsidyCandidate[],
  roomFen: Fen | undefined,
): { grant: SubsidyCandidate[]; shortOfFunds: SubsidyCandidate[] } {
  const ordered = subsidyOrder(policy, candidates);
  if (roomFen === undefined) return { grant: ordered, shortOfFunds: [] };
  let left = roomFen;
  let i = 0;
  for (; i < ordered.length && ordered[i]!.amountFen <= left; i++) left -= ordered[i]!.amountFen;
  return { grant: ordered.slice(0, i), shortOfFunds: ordered.slice(i) };
}
