// A settlement as FHIR R4: a Bundle (collection) of one ClaimResponse per payer — each layer of the
// policy is one (基本医保, 大病保险, each round of 医疗救助) — and one ExplanationOfBenefit of the whole
// settlement, whose benefitBalance is the use of the annual caps the applied rules count against.
// Adjudication categories are HL7's (submitted, eligible, deductible, benefit, copay) and CARIN
// Blue Button's where HL7 has none (noncovered, priorpayerpaid); medaid's own code system only
// for the cap that bit. Persons, hospitals and funds are references by identifier: no Patient
// resource, no name or identity number. Money in 元 (CNY) with two decimals at most. Pure.
import { hash } from 'node:crypto';
import { KNOWN_FUND_NAMES, Policy, SettlementResult, VisitType } from '#domain';
import { yuanOfFen } from '../nhsa/money.js';

const ADJUDICATION = 'http://terminology.hl7.org/CodeSystem/adjudication';
const CARIN = 'http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication';
const CLAIM_TYPE = 'http://terminology.hl7.org/CodeSystem/claim-type';
export const MEDAID_SYSTEM = {
  settlement: 'urn:medaid:settlement',
  person: 'urn:medaid:person',
  hospital: 'urn:medaid:hospital',
  fund: 'urn:medaid:fund',
  region: 'urn:medaid:region',
  cap: 'urn:medaid:cap',
} as const;

export interface FhirInput {
  settlement: SettlementResult & { settledAtMs: number; reversal: { reason: string; reversedAtMs: number } | null };
  policy: Policy | undefined;
  /** The person's year counters now (used fen by counter). */
  usedFen: Readonly<Record<string, number>>;
  visitType: VisitType;
}

type Json = Record<string, unknown>;

const money = (fen: number) => ({ value: yuanOfFen(fen), currency: 'CNY' });
const coded = (system: string, code: string, display?: string) => ({ coding: [{ system, code, ...(display ? { display } : {}) }] });
/** A FHIR id (no slashes) that is the same for the same settlement and part. */
const idOf = (...parts: string[]) => {
  const h = hash('sha256', parts.join('\u0000'), 'hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};

export function settlementBundle({ settlement: s, policy, usedFen, visitType }: FhirInput): Json {
  const created = new Date(s.settledAtMs).toISOString();
  const status = s.reversal === null ? 'active' : 'cancelled';
  const patient = { identifier: { system: MEDAID_SYSTEM.person, value: s.personId } };
  const hospital = { identifier: { system: MEDAID_SYSTEM.hospital, value: s.hospitalId } };
  // institutional for an inpatient stay, professional for an outpatient visit
  const type = coded(CLAIM_TYPE, visitType === 'inpatient' ? 'institutional' : 'professional');
  const fundName = (code: string) => policy?.funds?.find((f) => f.code === code)?.name ?? KNOWN_FUND_NAMES[code];
  const outOfScope = s.fullOwnPayFen + s.overLimitFen + s.preSelfPayFen;
  let before = 0; // what the layers before this one paid
  const perLayer = s.layers.map((l, i) => {
    const adjudication: Json[] = [
      { category: coded(ADJUDICATION, 'submitted'), amount: money(s.totalFen) },
      { category: coded(CARIN, 'noncovered'), amount: money(outOfScope) },
      { category: coded(CARIN, 'priorpayerpaid'), amount: money(before) },
      { category: coded(ADJUDICATION, 'eligible'), amount: money(l.baseFen) },
      { category: coded(ADJUDICATION, 'deductible'), amount: money(l.belowThresholdFen) },
      {
        category: coded(ADJUDICATION, 'benefit'),
        ...(l.cappedBy === null ? {} : { reason: coded(MEDAID_SYSTEM.cap, l.cappedBy, `capped by ${l.cappedBy}`) }),
        amount: money(l.payFen),
      },
      { category: coded(ADJUDICATION, 'copay'), amount: money(Math.max(0, l.baseFen - l.belowThresholdFen - l.payFen)) },
    ];
    before += l.payFen;
    const insurer = {
      identifier: { system: MEDAID_SYSTEM.fund, value: l.fund },
      ...(fundName(l.fund) ? { display: fundName(l.fund) } : {}),
    };
    const claimResponse: Json = {
      resourceType: 'ClaimResponse',
      id: idOf(s.settlementId, l.layerId),
      identifier: [{ system: MEDAID_SYSTEM.settlement, value: `${s.settlementId}#${l.layerId}` }],
      status,
      type,
      use: 'claim',
      patient,
      created,
      insurer,
      requestor: hospital,
      outcome: 'complete',
      disposition: `${l.kind} layer ${l.layerId} (${i + 1} of ${s.layers.length}), rule ${l.ruleId ?? (l.external ? 'paid elsewhere' : 'none')}`,
      item: [{ itemSequence: 1, adjudication }],
      total: adjudication.map(({ category, amount }) => ({ category, amount })),
      payment: { type: coded('http://terminology.hl7.org/CodeSystem/ex-paymenttype', 'complete'), amount: money(l.payFen) },
    };
    return { layer: l, adjudication, claimResponse, insurer };
  });

  // the annual caps of the rules this settlement applied, with what the person's year has used of them
  const balances = new Map<string, number>();
  for (const l of s.layers) {
    const rule = policy?.layers.find((x) => x.id === l.layerId)?.rules.find((r) => r.id === l.ruleId);
    for (const cap of rule?.annualCaps ?? []) balances.set(cap.counter, Math.min(balances.get(cap.counter) ?? Infinity, cap.capFen));
  }
  const eob: Json = {
    resourceType: 'ExplanationOfBenefit',
    id: idOf(s.settlementId, 'eob'),
    identifier: [{ system: MEDAID_SYSTEM.settlement, value: s.settlementId }],
    status,
    type,
    use: 'claim',
    patient,
    billablePeriod: { end: created },
    created,
    insurer: { identifier: { system: MEDAID_SYSTEM.region, value: s.region }, display: `medaid ${s.policy.policyId} v${s.policy.version}` },
    provider: hospital,
    outcome: 'complete',
    insurance: [{ focal: true, coverage: { display: `${s.policy.policyId} v${s.policy.version} (${s.year})` } }],
    item: perLayer.map(({ layer, adjudication }, i) => ({
      sequence: i + 1,
      productOrService: { coding: [{ system: `${MEDAID_SYSTEM.settlement}:layer`, code: layer.layerId, display: layer.kind }] },
      adjudication,
    })),
    total: [
      { category: coded(ADJUDICATION, 'submitted'), amount: money(s.totalFen) },
      { category: coded(CARIN, 'noncovered'), amount: money(outOfScope) },
      { category: coded(ADJUDICATION, 'eligible'), amount: money(s.inScopeFen) },
      { category: coded(ADJUDICATION, 'deductible'), amount: money(s.deductibleFen) },
      { category: coded(ADJUDICATION, 'benefit'), amount: money(s.fundPayFen) },
      { category: coded(CARIN, 'paidbypatient'), amount: money(s.patientPayFen) },
    ],
    payment: { type: coded('http://terminology.hl7.org/CodeSystem/ex-paymenttype', 'complete'), amount: money(s.fundPayFen) },
    ...(balances.size === 0
      ? {}
      : {
          benefitBalance: [...balances].map(([counter, capFen]) => ({
            category: coded('http://terminology.hl7.org/CodeSystem/ex-benefitcategory', '1', 'Medical Care'),
            name: counter,
            term: coded('http://terminology.hl7.org/CodeSystem/benefit-term', 'annual', 'Annual'),
            financial: [
              {
                type: coded('http://terminology.hl7.org/CodeSystem/benefit-type', 'benefit', 'Benefit'),
                allowedMoney: money(capFen),
                usedMoney: money(usedFen[counter] ?? 0),
              },
            ],
          })),
        }),
  };
  return {
    resourceType: 'Bundle',
    id: idOf(s.settlementId, 'bundle'),
    type: 'collection',
    timestamp: created,
    entry: [...perLayer.map((p) => p.claimResponse), eob].map((resource) => ({ fullUrl: `urn:uuid:${resource.id as string}`, resource })),
  };
}
