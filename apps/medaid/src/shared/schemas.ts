// The published JSON Schemas (draft 2020-12) of what medaid accepts and sends. The inputs — HTTP
// bodies and Kafka commands — are generated from the very class-validator DTOs that validate them
// (class-validator-jsonschema reads their decorators; medaid's own decorators are converted here),
// so a schema cannot drift from the check. The outputs — the settlement result, the Kafka outcome,
// the event envelope, an error — are declared here once, and the tests validate everything the
// service emits against them. Served at /schemas/{name}; committed under proto/json-schema/ (`npm run schemas`).
import { readFileSync } from 'node:fs';
import { ValidationTypes, getMetadataStorage } from 'class-validator';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata.js';
import { validationMetadatasToSchemas } from 'class-validator-jsonschema';
import { ERROR_CODES, HOSPITAL_LEVELS, LAYER_KINDS, MAX_BP, MAX_FEN, POLICY_LIMITS, VISIT_TYPES } from '#domain';
import { AllocateFundDto, GrantSubsidiesDto } from '../commands/funds/fund.dto.js';
import { AdjustmentRejectionDto, AdjustmentRequestDto } from '../commands/adjustments/adjustment.dto.js';
import { AssignCategoryDto, GrantApprovalDto, RecordDeathDto, RevokeCategoryDto } from '../commands/persons/person.dto.js';
import { DischargeDto, ReversalDto, ReverseSettlementDto } from '../commands/settlements/settlement.dto.js';

type Schema = Record<string, unknown>;

const ID = { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,64}$' };
const FEN = { type: 'integer', minimum: 0, maximum: MAX_FEN };
const DATE = { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', description: 'an existing calendar date' };

/** medaid's own decorators (shared/validation.ts, the adjustment DTO) as schema fragments. */
function customConverter(meta: ValidationMetadata): Schema {
  switch (meta.name) {
    case 'isFen':
      return FEN;
    case 'isIdentifier':
      return ID;
    case 'isCalendarDate':
      return DATE;
    case 'isText':
      return { type: 'string', minLength: 1, maxLength: meta.constraints[0] as number };
    case 'isExternalPayments':
      return { type: 'object', maxProperties: 20, propertyNames: ID, additionalProperties: FEN };
    case 'isSettlementId':
      return { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,64}/[A-Za-z0-9._:-]{1,64}/[1-9][0-9]{0,8}$' };
    case 'isDeltaFen':
      return { type: 'integer', minimum: -MAX_FEN, maximum: MAX_FEN, not: { const: 0 } };
    default:
      throw new Error(`no schema for the validator ${meta.name ?? meta.type}`);
  }
}

let generated: Record<string, Schema> | undefined;
function dtoSchemas(): Record<string, Schema> {
  generated ??= validationMetadatasToSchemas({
    classValidatorMetadataStorage: getMetadataStorage(),
    additionalConverters: { [ValidationTypes.CUSTOM_VALIDATION]: (meta) => customConverter(meta) },
  }) as Record<string, Schema>;
  return generated;
}

/** A DTO's generated schema, closed (the edge refuses unknown fields), without the fields a path carries. */
function fromDto(dto: { name: string }, omit: string[] = [], extra: { properties?: Schema; required?: string[] } = {}): Schema {
  const base = dtoSchemas()[dto.name];
  if (base === undefined) throw new Error(`no schema generated for ${dto.name}`);
  const required = ((base['required'] as string[] | undefined) ?? []).filter((k) => !omit.includes(k));
  // An optional field may be absent, never null (validateInput refuses null: it is not "absent").
  const properties = Object.fromEntries(Object.entries(base['properties'] as Schema).filter(([k]) => !omit.includes(k)));
  return {
    type: 'object',
    properties: { ...extra.properties, ...properties },
    required: [...(extra.required ?? []), ...required],
    additionalProperties: false,
  };
}

const DISCHARGE_EXAMPLE = {
  hospitalId: 'h-county',
  visitId: 'z2012-001',
  personId: 'p-dibao',
  region: '360827',
  scheme: 'nrcms',
  visitType: 'inpatient',
  hospitalLevel: 'county',
  admissionDate: '2012-02-01',
  dischargeDate: '2012-02-20',
  diagnosisCodes: ['C34.9'],
  totalFen: 8_000_000,
};

/** The demo policy (apps/medaid/assets, found from src/ and from dist/ alike): the policy schema's example. */
const demoPolicy = (): unknown => {
  const here = new URL('.', import.meta.url).pathname;
  const root = here.includes('/dist/') ? `${here.slice(0, here.indexOf('/dist/'))}/` : `${here}../../../../`;
  return JSON.parse(readFileSync(`${root}apps/medaid/assets/demo-policy.json`, 'utf8'));
};

const TEXT = (max: number) => ({ type: 'string', minLength: 1, maxLength: max });
const closed = (properties: Schema, required: string[]): Schema => ({ type: 'object', properties, required, additionalProperties: false });
const list = (items: Schema, max: number, min = 0): Schema => ({
  type: 'array',
  items,
  maxItems: max,
  ...(min > 0 ? { minItems: min } : {}),
});

/**
 * The policy document's shape (spec §3 and the README's extensions), with the limits the domain's
 * validatePolicy applies (POLICY_LIMITS). The domain checks more than a schema can say: unique
 * ids, bands in increasing order, category references, existing calendar dates, exactly one of
 * `full` / `amountFen` — a document this schema accepts may still be INVALID_POLICY for those.
 */
const RULE: Schema = closed(
  {
    id: ID,
    match: closed(
      {
        visitTypes: list({ enum: [...VISIT_TYPES] }, POLICY_LIMITS.matchEntries, 1),
        hospitalLevels: list({ enum: [...HOSPITAL_LEVELS] }, POLICY_LIMITS.matchEntries, 1),
        schemes: list(ID, POLICY_LIMITS.matchEntries, 1),
        categories: list(ID, POLICY_LIMITS.matchEntries, 1),
        diagnosisPrefixes: list({ type: 'string', pattern: '^[A-Z][0-9A-Z.]{0,9}$' }, POLICY_LIMITS.matchEntries, 1),
      },
      [],
    ),
    threshold: closed({ fen: FEN, per: { enum: ['settlement', 'year'] } }, ['fen', 'per']),
    bands: list(
      closed({ uptoFen: { anyOf: [FEN, { type: 'null' }] }, ratioBp: { type: 'integer', minimum: 0, maximum: MAX_BP } }, [
        'uptoFen',
        'ratioBp',
      ]),
      POLICY_LIMITS.bands,
      1,
    ),
    fixedSum: closed({ amountFen: { ...FEN, minimum: 1 }, aboveFen: FEN }, ['amountFen', 'aboveFen']),
    perSettlementCapFen: { anyOf: [FEN, { type: 'null' }] },
    annualCaps: list(closed({ counter: ID, capFen: FEN }, ['counter', 'capFen']), POLICY_LIMITS.annualCaps),
  },
  ['id'],
);
// bands, or (the README's extension) a fixed sum: exactly one of them
RULE.oneOf = [{ required: ['bands'] }, { required: ['fixedSum'] }];
const POLICY: Schema = closed(
  {
    policyId: ID,
    version: { type: 'integer', minimum: 1, maximum: POLICY_LIMITS.maxVersion },
    region: ID,
    effectiveFrom: DATE,
    name: TEXT(200),
    categories: list(
      closed({ code: { ...ID, not: { const: 'none' } }, name: TEXT(200), requiresApproval: { type: 'boolean' } }, ['code', 'name']),
      POLICY_LIMITS.categories,
    ),
    layers: list(
      closed({ id: ID, kind: { enum: [...LAYER_KINDS] }, fund: TEXT(64), rules: list(RULE, POLICY_LIMITS.rulesPerLayer) }, [
        'id',
        'kind',
        'fund',
        'rules',
      ]),
      POLICY_LIMITS.layers,
      1,
    ),
    funds: list(
      closed({ code: TEXT(64), name: TEXT(200), mayOverdraw: { type: 'boolean' } }, ['code', 'mayOverdraw']),
      POLICY_LIMITS.funds,
      1,
    ),
    monitoring: closed(
      {
        thresholds: list(
          closed({ id: ID, per: { enum: ['settlement', 'year'] }, aboveFen: FEN, categories: list(ID, POLICY_LIMITS.categories + 1, 1) }, [
            'id',
            'per',
            'aboveFen',
          ]),
          POLICY_LIMITS.monitoringThresholds,
          1,
        ),
      },
      ['thresholds'],
    ),
    enrolmentSubsidy: closed(
      {
        premiumFen: FEN,
        fromFund: TEXT(64),
        toFund: TEXT(64),
        byCategory: list(closed({ category: ID, full: { const: true }, amountFen: FEN }, ['category']), POLICY_LIMITS.categories, 1),
      },
      ['premiumFen', 'fromFund', 'toFund', 'byCategory'],
    ),
  },
  ['policyId', 'version', 'region', 'effectiveFrom', 'categories', 'layers'],
);

/** A settlement as the service answered it (the demo policy, a 低保 person): the outputs' example. */
const RESULT_EXAMPLE = {
  settlementId: 'h-county/v-race/1',
  status: 'settled',
  duplicate: false,
  hospitalId: 'h-county',
  visitId: 'v-race',
  personId: 'p-race-a',
  region: '360827',
  policy: { policyId: 'demo-county', version: 1 },
  year: 2012,
  category: 'dibao',
  totalFen: 5_000_000,
  fullOwnPayFen: 0,
  overLimitFen: 0,
  preSelfPayFen: 0,
  inScopeFen: 5_000_000,
  deductibleFen: 20_000,
  layers: [
    {
      layerId: 'basic',
      kind: 'insurance',
      fund: '390100',
      ruleId: 'basic-ip-county',
      baseFen: 5_000_000,
      belowThresholdFen: 20_000,
      rawFen: 4_083_600,
      payFen: 4_083_600,
      cappedBy: null,
      external: false,
    },
    {
      layerId: 'critical',
      kind: 'critical_illness',
      fund: '390200',
      ruleId: 'critical-tilted',
      baseFen: 916_400,
      belowThresholdFen: 400_000,
      rawFen: 284_020,
      payFen: 284_020,
      cappedBy: null,
      external: false,
    },
    {
      layerId: 'aid',
      kind: 'aid',
      fund: '610100',
      ruleId: 'aid-dibao-ip',
      baseFen: 632_380,
      belowThresholdFen: 0,
      rawFen: 442_666,
      payFen: 442_666,
      cappedBy: null,
      external: false,
    },
  ],
  insurancePayFen: 4_083_600,
  criticalIllnessPayFen: 284_020,
  aidPayFen: 442_666,
  fundPayFen: 4_810_286,
  inScopeSelfPayFen: 189_714,
  patientPayFen: 189_714,
  aidBlockedReason: null,
};

const ERROR: Schema = {
  type: 'object',
  required: ['code', 'message', 'details'],
  additionalProperties: false,
  properties: {
    code: { type: 'string', description: `one of ${ERROR_CODES.join(', ')}, NOT_FOUND, PAYLOAD_TOO_LARGE, INTERNAL …` },
    message: { type: 'string' },
    details: {
      type: 'array',
      items: {
        type: 'object',
        required: ['field', 'problem'],
        additionalProperties: false,
        properties: { field: { type: 'string' }, problem: { type: 'string' } },
      },
    },
  },
};

const NULLABLE_TEXT = { type: ['string', 'null'] };
const RESULT: Schema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'settlementId',
    'status',
    'duplicate',
    'hospitalId',
    'visitId',
    'personId',
    'region',
    'policy',
    'year',
    'category',
    'totalFen',
    'fullOwnPayFen',
    'overLimitFen',
    'preSelfPayFen',
    'inScopeFen',
    'deductibleFen',
    'layers',
    'insurancePayFen',
    'criticalIllnessPayFen',
    'aidPayFen',
    'fundPayFen',
    'inScopeSelfPayFen',
    'patientPayFen',
    'aidBlockedReason',
  ],
  properties: {
    settlementId: { type: 'string' },
    status: { enum: ['settled', 'reversed', 'preview'] },
    duplicate: { type: 'boolean' },
    hospitalId: ID,
    visitId: ID,
    personId: ID,
    region: ID,
    policy: {
      type: 'object',
      required: ['policyId', 'version'],
      additionalProperties: false,
      properties: { policyId: ID, version: { type: 'integer', minimum: 1 } },
    },
    year: { type: 'integer' },
    category: { type: 'string' },
    totalFen: FEN,
    fullOwnPayFen: FEN,
    overLimitFen: FEN,
    preSelfPayFen: FEN,
    inScopeFen: FEN,
    deductibleFen: FEN,
    layers: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['layerId', 'kind', 'fund', 'ruleId', 'baseFen', 'belowThresholdFen', 'rawFen', 'payFen', 'cappedBy', 'external'],
        properties: {
          layerId: ID,
          kind: { enum: [...LAYER_KINDS] },
          fund: { type: 'string' },
          ruleId: NULLABLE_TEXT,
          baseFen: FEN,
          belowThresholdFen: FEN,
          rawFen: FEN,
          payFen: FEN,
          cappedBy: NULLABLE_TEXT,
          external: { type: 'boolean' },
        },
      },
    },
    insurancePayFen: FEN,
    criticalIllnessPayFen: FEN,
    aidPayFen: FEN,
    fundPayFen: FEN,
    inScopeSelfPayFen: FEN,
    patientPayFen: FEN,
    aidBlockedReason: NULLABLE_TEXT,
  },
};

const NULLABLE_ID = { type: ['string', 'null'] };
const KAFKA_OUTCOME: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['ok', 'commandType', 'hospitalId', 'visitId', 'requestId', 'source'],
  properties: {
    ok: { type: 'boolean' },
    commandType: NULLABLE_TEXT,
    hospitalId: NULLABLE_ID,
    visitId: NULLABLE_ID,
    requestId: NULLABLE_TEXT,
    source: {
      type: 'object',
      additionalProperties: false,
      required: ['topic', 'partition', 'offset', 'timestamp'],
      properties: { topic: { type: 'string' }, partition: { type: 'integer' }, offset: { type: 'string' }, timestamp: { type: 'string' } },
    },
    created: { type: 'boolean', description: 'a new settlement (HTTP 201, gRPC created)' },
    result: { $ref: 'settlement-result.schema.json' },
    error: { $ref: 'error.schema.json' },
  },
  oneOf: [
    { properties: { ok: { const: true } }, required: ['created', 'result'], not: { required: ['error'] } },
    { properties: { ok: { const: false } }, required: ['error'], not: { required: ['result'] } },
  ],
};

/** A settlement as the events topic carries it: the API's result without `duplicate`. */
const PUBLIC_SETTLEMENT: Schema = {
  ...RESULT,
  required: (RESULT['required'] as string[]).filter((k) => k !== 'duplicate'),
  properties: Object.fromEntries(Object.entries(RESULT['properties'] as Schema).filter(([k]) => k !== 'duplicate')),
};

const SIGNED_FEN = { type: 'integer', minimum: -MAX_FEN, maximum: MAX_FEN };
const PAYOUT: Schema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'id',
    'streamId',
    'revision',
    'position',
    'createdMs',
    'kind',
    'settlementId',
    'hospitalId',
    'visitId',
    'personId',
    'region',
    'year',
    'category',
    'policy',
    'payouts',
    'fundPayFen',
    'patientPayFen',
  ],
  properties: {
    id: { type: 'string', format: 'uuid', description: 'the event the payout comes from (also the event-id header)' },
    streamId: { type: 'string' },
    revision: { type: 'integer', minimum: 0 },
    position: { type: 'integer', minimum: 1 },
    createdMs: { type: 'integer' },
    kind: { enum: ['settlement', 'reversal'] },
    settlementId: { type: 'string' },
    hospitalId: ID,
    visitId: ID,
    personId: ID,
    region: ID,
    year: { type: 'integer' },
    category: { type: 'string' },
    policy: (RESULT['properties'] as Schema)['policy'],
    payouts: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['layerId', 'kind', 'fund', 'amountFen'],
        properties: { layerId: ID, kind: { enum: [...LAYER_KINDS] }, fund: { type: 'string' }, amountFen: SIGNED_FEN },
      },
    },
    fundPayFen: SIGNED_FEN,
    patientPayFen: SIGNED_FEN,
  },
};

const EVENT: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'type', 'streamId', 'revision', 'position', 'createdMs', 'data', 'metadata'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    type: { type: 'string', description: 'the event catalogue of libs/domain/src/events.ts' },
    streamId: { type: 'string' },
    revision: { type: 'integer', minimum: 0 },
    position: { type: 'integer', minimum: 1 },
    createdMs: { type: 'integer' },
    data: { type: 'object' },
    metadata: { type: ['object', 'null'] },
  },
  if: { properties: { type: { const: 'DischargeSettled' } } },
  then: { properties: { data: { $ref: 'public-settlement.schema.json' } } },
};

export interface PublishedSchema {
  name: string;
  title: string;
  /** Where it is used. */
  where: string;
  schema: Schema;
  example: unknown;
}

const command = (type: string): { properties: Schema; required: string[] } => ({
  properties: { type: { const: type } },
  required: ['type'],
});

/** Every schema medaid publishes, in a stable order. */
export function publishedSchemas(): PublishedSchema[] {
  const list: Array<Omit<PublishedSchema, 'schema'> & { schema: () => Schema }> = [
    {
      name: 'discharge',
      title: 'A discharge to settle or preview',
      where: 'POST /v1/settlements, POST /v1/settlements/preview',
      schema: () => fromDto(DischargeDto),
      example: DISCHARGE_EXAMPLE,
    },
    {
      name: 'reversal',
      title: 'A reversal (结算撤销)',
      where: 'POST /v1/settlements/{hospitalId}/{visitId}/reversal',
      schema: () => fromDto(ReversalDto),
      example: { reason: '费用明细录入错误' },
    },
    {
      name: 'kafka-settle-discharge',
      title: 'SettleDischarge on medaid.discharges.v1 (key: hospitalId:visitId)',
      where: 'Kafka medaid.discharges.v1',
      schema: () => fromDto(DischargeDto, [], command('SettleDischarge')),
      example: { type: 'SettleDischarge', ...DISCHARGE_EXAMPLE },
    },
    {
      name: 'kafka-reverse-settlement',
      title: 'ReverseSettlement on medaid.discharges.v1 (key: hospitalId:visitId)',
      where: 'Kafka medaid.discharges.v1',
      schema: () => fromDto(ReverseSettlementDto, [], command('ReverseSettlement')),
      example: { type: 'ReverseSettlement', hospitalId: 'h-county', visitId: 'z2012-001', reason: '费用明细录入错误' },
    },
    {
      name: 'policy',
      title: 'A policy version to publish (spec §3); the domain checks references and order beyond this shape',
      where: 'POST /v1/policies',
      schema: () => POLICY,
      example: demoPolicy(),
    },
    {
      name: 'assign-category',
      title: 'A category held from a date',
      where: 'POST /v1/persons/{personId}/categories',
      schema: () => fromDto(AssignCategoryDto, ['personId']),
      example: { category: 'dibao', validFrom: '2012-01-01' },
    },
    {
      name: 'revoke-category',
      title: 'A category ended',
      where: 'POST /v1/persons/{personId}/category-revocations',
      schema: () => fromDto(RevokeCategoryDto, ['personId']),
      example: { category: 'tekun', from: '2012-03-01' },
    },
    {
      name: 'grant-approval',
      title: 'An approval (同步结算申请审批表)',
      where: 'POST /v1/persons/{personId}/approvals',
      schema: () => fromDto(GrantApprovalDto, ['personId']),
      example: { approvalNo: 'SP-2012-0042', validFrom: '2012-04-01', validTo: '2012-12-31' },
    },
    {
      name: 'record-death',
      title: 'A death (死亡比对)',
      where: 'POST /v1/persons/{personId}/death',
      schema: () => fromDto(RecordDeathDto, ['personId']),
      example: { date: '2012-04-01' },
    },
    {
      name: 'allocate-fund',
      title: 'A fund allocation',
      where: 'POST /v1/funds/allocations',
      schema: () => fromDto(AllocateFundDto),
      example: { fund: '610100', region: '360827', year: 2012, source: 'superior', amountFen: 100_000_000, reference: '赣民字〔2012〕1号' },
    },
    {
      name: 'grant-subsidies',
      title: 'Enrolment subsidies (资助参保)',
      where: 'POST /v1/funds/enrolment-subsidies',
      schema: () => fromDto(GrantSubsidiesDto),
      example: { region: '360827', year: 2012 },
    },
    {
      name: 'adjustment-request',
      title: 'An adjustment request (maker)',
      where: 'POST /v1/adjustments',
      schema: () => fromDto(AdjustmentRequestDto),
      example: { settlementId: 'h-county/z2012-001/1', layerId: 'aid', deltaFen: -12_000, reason: '审核发现重复计费' },
    },
    {
      name: 'adjustment-rejection',
      title: 'An adjustment rejected (checker)',
      where: 'POST /v1/adjustments/{id}/rejection',
      schema: () => fromDto(AdjustmentRejectionDto),
      example: { reason: '理由不充分' },
    },
    {
      name: 'settlement-result',
      title: 'A settlement result (spec §8)',
      where: 'HTTP answers, gRPC SettlementResult as JSON, Kafka outcomes',
      schema: () => RESULT,
      example: RESULT_EXAMPLE,
    },
    {
      name: 'kafka-outcome',
      title: 'An outcome on medaid.settlements.v1 (key: hospitalId:visitId)',
      where: 'Kafka medaid.settlements.v1',
      schema: () => KAFKA_OUTCOME,
      example: {
        ok: true,
        commandType: 'SettleDischarge',
        hospitalId: 'h-county',
        visitId: 'v-race',
        requestId: 'his-0001',
        source: { topic: 'medaid.discharges.v1', partition: 2, offset: '7', timestamp: '1700000000000' },
        created: true,
        result: RESULT_EXAMPLE,
      },
    },
    {
      name: 'event',
      title: 'A recorded event on medaid.events.v1 (key: stream id)',
      where: 'Kafka medaid.events.v1',
      schema: () => EVENT,
      example: {
        id: '0f4f3c2e-6a55-5d0e-9a3b-6f2b8c1d9e01',
        type: 'CategoryAssigned',
        streamId: 'person-p-dibao',
        revision: 0,
        position: 3,
        createdMs: 1_700_000_000_000,
        data: { personId: 'p-dibao', category: 'dibao', validFrom: '2012-01-01', validTo: null },
        metadata: { actor: { kind: 'admin', id: 'clerk-1' }, correlationId: 'req-1' },
      },
    },
    {
      name: 'public-settlement',
      title: 'A settlement as medaid.events.v1 carries it (the data of DischargeSettled): readable without the policy',
      where: 'Kafka medaid.events.v1',
      schema: () => PUBLIC_SETTLEMENT,
      example: (({ duplicate: _d, ...rest }) => rest)(RESULT_EXAMPLE),
    },
    {
      name: 'payout',
      title: 'A payout record on medaid.payouts.v1 (key: stream id): one per settlement and per reversal (negative)',
      where: 'Kafka medaid.payouts.v1',
      schema: () => PAYOUT,
      example: {
        id: '0f4f3c2e-6a55-5d0e-9a3b-6f2b8c1d9e02',
        streamId: 'person-p-race-a',
        revision: 1,
        position: 9,
        createdMs: 1_700_000_000_000,
        kind: 'settlement',
        settlementId: 'h-county/v-race/1',
        hospitalId: 'h-county',
        visitId: 'v-race',
        personId: 'p-race-a',
        region: '360827',
        year: 2012,
        category: 'dibao',
        policy: { policyId: 'demo-county', version: 1 },
        payouts: [
          { layerId: 'basic', kind: 'insurance', fund: '390100', amountFen: 4_083_600 },
          { layerId: 'critical', kind: 'critical_illness', fund: '390200', amountFen: 284_020 },
          { layerId: 'aid', kind: 'aid', fund: '610100', amountFen: 442_666 },
        ],
        fundPayFen: 4_810_286,
        patientPayFen: 189_714,
      },
    },
    {
      name: 'error',
      title: 'An error answer',
      where: 'HTTP 4xx/5xx bodies, Kafka outcomes and dead letters (error header)',
      schema: () => ERROR,
      example: { code: 'VISIT_CONFLICT', message: 'visit h-county/z2012-001 was settled with other content', details: [] },
    },
  ];
  return list.map(({ schema, ...rest }) => {
    const body = schema();
    return {
      ...rest,
      schema: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        $id: `${rest.name}.schema.json`,
        title: rest.title,
        description: `Used by: ${rest.where}.`,
        ...body,
        ...(rest.example === undefined ? {} : { examples: [rest.example] }),
      },
    };
  });
}
