// Bad input over real HTTP: every error code of spec §8 with its HTTP status, the offending field
// named, no stack trace, and nothing recorded by a rejected command.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Service, discharge, http, removeDir, startService } from './support/service.js';

let service: Service;
const position = async () => (await http(service.url, 'GET', '/ready')).body.position as number;

beforeAll(async () => {
  // Given a service with the demo policy, a settled visit, a reversed visit and a deceased person
  service = await startService();
  const ok = async (path: string, body: unknown) => expect((await http(service.url, 'POST', path, body)).status).toBeLessThan(300);
  await ok('/v1/persons/p-1/categories', { category: 'dibao', validFrom: '2012-01-01' });
  await ok('/v1/settlements', discharge({ visitId: 'settled' }));
  await ok('/v1/settlements', discharge({ visitId: 'reversed' }));
  await ok('/v1/settlements/h-county/reversed/reversal', { reason: '录入错误' });
  await ok('/v1/persons/p-dead/death', { date: '2012-01-31' });
});

afterAll(async () => {
  await service.stop();
  removeDir(service.dataDir);
});

type Case = [name: string, method: string, path: string, body: unknown, status: number, code: string, field?: string];

const policy = (overrides: Record<string, unknown>) => ({
  policyId: 'p2',
  version: 1,
  region: 'r2',
  effectiveFrom: '2020-01-01',
  categories: [],
  layers: [{ id: 'basic', kind: 'insurance', fund: '390100', rules: [{ id: 'r', bands: [{ uptoFen: null, ratioBp: 5000 }] }] }],
  ...overrides,
});

const cases: Case[] = [
  ['a negative amount', 'POST', '/v1/settlements', discharge({ visitId: 'x1', totalFen: -1 }), 400, 'VALIDATION_FAILED', 'totalFen'],
  ['an amount as a string', 'POST', '/v1/settlements', discharge({ visitId: 'x2', totalFen: '100' }), 400, 'VALIDATION_FAILED', 'totalFen'],
  ['a fractional amount', 'POST', '/v1/settlements', discharge({ visitId: 'x3', totalFen: 100.5 }), 400, 'VALIDATION_FAILED', 'totalFen'],
  [
    'an amount above the bound',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x4', totalFen: 100_000_000_001 }),
    400,
    'VALIDATION_FAILED',
    'totalFen',
  ],
  ['an unknown field', 'POST', '/v1/settlements', discharge({ visitId: 'x5', discount: 1 }), 400, 'VALIDATION_FAILED', 'discount'],
  ['a missing field', 'POST', '/v1/settlements', discharge({ visitId: 'x6', scheme: undefined }), 400, 'VALIDATION_FAILED', 'scheme'],
  [
    'a date that does not exist',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x7', dischargeDate: '2012-02-30' }),
    400,
    'VALIDATION_FAILED',
    'dischargeDate',
  ],
  [
    'discharge before admission',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x8', admissionDate: '2012-03-11' }),
    400,
    'VALIDATION_FAILED',
    'dischargeDate',
  ],
  [
    'an unknown hospital level',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x9', hospitalLevel: 'clinic' }),
    400,
    'VALIDATION_FAILED',
    'hospitalLevel',
  ],
  ['an identifier with a space', 'POST', '/v1/settlements', discharge({ visitId: 'x 10' }), 400, 'VALIDATION_FAILED', 'visitId'],
  [
    'a malformed diagnosis code',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x11', diagnosisCodes: ['c34'] }),
    400,
    'VALIDATION_FAILED',
    'diagnosisCodes',
  ],
  [
    '51 diagnosis codes',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x12', diagnosisCodes: Array(51).fill('C34') }),
    400,
    'VALIDATION_FAILED',
    'diagnosisCodes',
  ],
  [
    'a negative in-scope amount',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x13', totalFen: 100, fullOwnPayFen: 101 }),
    400,
    'VALIDATION_FAILED',
    'totalFen',
  ],
  [
    'an external payment for no layer',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x14', externalPayments: { nope: 1 } }),
    400,
    'VALIDATION_FAILED',
    'externalPayments.nope',
  ],
  [
    'an external payment above what remains',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x15', externalPayments: { basic: 1_000_001 } }),
    400,
    'VALIDATION_FAILED',
    'externalPayments.basic',
  ],
  ['a body that is not JSON', 'POST', '/v1/settlements', '{"hospitalId":', 400, 'VALIDATION_FAILED'],
  // Fastify's JSON parser refuses prototype keys before any DTO sees them (simulate: scenarios spec).
  [
    'a "constructor" field',
    'POST',
    '/v1/settlements',
    '{"constructor":{"prototype":{}},"hospitalId":"h"}',
    400,
    'VALIDATION_FAILED',
    '(body)',
  ],
  ['a "__proto__" field', 'POST', '/v1/settlements', '{"__proto__":{"totalFen":1},"hospitalId":"h"}', 400, 'VALIDATION_FAILED', '(body)'],
  ['a JSON array as body', 'POST', '/v1/settlements', [1, 2], 400, 'VALIDATION_FAILED'],
  [
    'a preview with bad input',
    'POST',
    '/v1/settlements/preview',
    discharge({ visitId: 'x16', visitType: 'daycare' }),
    400,
    'VALIDATION_FAILED',
    'visitType',
  ],
  [
    'no policy in force (other region)',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x17', region: '999999' }),
    422,
    'NO_POLICY_IN_FORCE',
    'dischargeDate',
  ],
  [
    'no policy in force (before effectiveFrom)',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x18', admissionDate: '2011-12-01', dischargeDate: '2011-12-05' }),
    422,
    'NO_POLICY_IN_FORCE',
  ],
  [
    'admission after the death date',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'x19', personId: 'p-dead' }),
    422,
    'PERSON_DECEASED',
    'admissionDate',
  ],
  [
    'a different discharge for a settled visit',
    'POST',
    '/v1/settlements',
    discharge({ visitId: 'settled', totalFen: 999 }),
    409,
    'VISIT_CONFLICT',
    'visitId',
  ],
  [
    'an invalid policy (ratio 12000)',
    'POST',
    '/v1/policies',
    policy({ layers: [{ id: 'x', kind: 'aid', fund: 'f', rules: [{ id: 'r', bands: [{ uptoFen: null, ratioBp: 12000 }] }] }] }),
    400,
    'INVALID_POLICY',
    'layers[0].rules[0].bands[0].ratioBp',
  ],
  ['a misspelt policy field', 'POST', '/v1/policies', policy({ annualCap: 5 }), 400, 'INVALID_POLICY', 'policy.annualCap'],
  [
    'a changed policy under a published version',
    'POST',
    '/v1/policies',
    () => ({ ...demoPolicy, name: 'changed' }),
    409,
    'POLICY_VERSION_CONFLICT',
    'version',
  ],
  [
    'an unknown category',
    'POST',
    '/v1/persons/p-2/categories',
    { category: 'no_such', validFrom: '2012-01-01' },
    422,
    'UNKNOWN_CATEGORY',
    'category',
  ],
  [
    'revoking an unknown category',
    'POST',
    '/v1/persons/p-2/category-revocations',
    { category: 'no_such', from: '2012-01-01' },
    422,
    'UNKNOWN_CATEGORY',
    'category',
  ],
  [
    'a category interval that ends before it starts',
    'POST',
    '/v1/persons/p-2/categories',
    { category: 'dibao', validFrom: '2012-02-01', validTo: '2012-01-31' },
    400,
    'VALIDATION_FAILED',
    'validTo',
  ],
  [
    'validation before unknown category',
    'POST',
    '/v1/persons/p-2/categories',
    { category: 'no_such', validFrom: '2012-02-30' },
    400,
    'VALIDATION_FAILED',
    'validFrom',
  ],
  [
    'an approval without validTo',
    'POST',
    '/v1/persons/p-2/approvals',
    { approvalNo: 'A1', validFrom: '2012-01-01' },
    400,
    'VALIDATION_FAILED',
    'validTo',
  ],
  [
    'a body personId that contradicts the path',
    'POST',
    '/v1/persons/p-2/death',
    { personId: 'p-3', date: '2012-01-01' },
    400,
    'VALIDATION_FAILED',
    'personId',
  ],
  ['reversing a visit never settled', 'POST', '/v1/settlements/h-county/never/reversal', { reason: 'x' }, 404, 'SETTLEMENT_NOT_FOUND'],
  ['reversing twice', 'POST', '/v1/settlements/h-county/reversed/reversal', { reason: 'again' }, 409, 'ALREADY_REVERSED'],
  ['a reversal without a reason', 'POST', '/v1/settlements/h-county/settled/reversal', {}, 400, 'VALIDATION_FAILED', 'reason'],
  [
    'a reversal reason over 500 characters',
    'POST',
    '/v1/settlements/h-county/settled/reversal',
    { reason: 'x'.repeat(501) },
    400,
    'VALIDATION_FAILED',
    'reason',
  ],
  ['an unknown route', 'GET', '/v1/nothing-here', undefined, 404, 'NOT_FOUND'],
  ['an unknown person', 'GET', '/v1/persons/nobody', undefined, 404, 'NOT_FOUND'],
  ['an unknown visit', 'GET', '/v1/settlements/h-county/nobody', undefined, 404, 'NOT_FOUND'],
  ['an unknown policy version', 'GET', '/v1/policies/demo-county/9', undefined, 404, 'NOT_FOUND'],
];

/** The demo policy as published on first start, read back through the API. */
let demoPolicy: Record<string, unknown> = {};

describe('bad input is rejected with a code, the field, and no change', () => {
  beforeAll(async () => {
    demoPolicy = (await http(service.url, 'GET', '/v1/policies/demo-county/1')).body as Record<string, unknown>;
    expect(demoPolicy.policyId).toBe('demo-county');
  });

  it('covers every error code of the contract', () => {
    const codes = new Set(cases.map((c) => c[5]));
    for (const code of [
      'VALIDATION_FAILED',
      'INVALID_POLICY',
      'POLICY_VERSION_CONFLICT',
      'NO_POLICY_IN_FORCE',
      'UNKNOWN_CATEGORY',
      'PERSON_DECEASED',
      'VISIT_CONFLICT',
      'SETTLEMENT_NOT_FOUND',
      'ALREADY_REVERSED',
    ])
      expect(codes).toContain(code);
  });

  // A rest parameter: rows without a field are shorter, and jest would take a 7th parameter for `done`.
  it.each(cases)('%s → %s %s', async (...row: Case) => {
    const [, method, path, body, status, code, field] = row;
    const before = await position();
    // When the bad request is sent
    const reply = await http(service.url, method, path, typeof body === 'function' ? body() : body);
    // then it gets the status and code, names the field, shows no stack, and records nothing
    expect({ status: reply.status, code: reply.body.code }).toEqual({ status, code });
    expect(typeof reply.body.message).toBe('string');
    expect(JSON.stringify(reply.body)).not.toMatch(/\bat .+\.(js|ts):\d+/);
    if (field !== undefined) expect(reply.body.details.map((d: { field: string }) => d.field)).toContain(field);
    expect(await position()).toBe(before);
  });

  it('republishing the identical policy is a no-op answered 200', async () => {
    const before = await position();
    const reply = await http(service.url, 'POST', '/v1/policies', demoPolicy);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ policyId: 'demo-county', version: 1 });
    expect(await position()).toBe(before);
  });

  it('an identical re-post of a settled discharge records nothing', async () => {
    const before = await position();
    const reply = await http(service.url, 'POST', '/v1/settlements', discharge({ visitId: 'settled' }));
    expect([reply.status, reply.body.duplicate]).toEqual([200, true]);
    expect(await position()).toBe(before);
  });
});
