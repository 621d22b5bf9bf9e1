// The published schemas: they compile (JSON Schema 2020-12, with ajv), every example is valid, the
// files under schemas/ are exactly what the code generates, and a generated input schema says
// "valid" exactly when the edge validation accepts the same body (on the examples and on mutations).
import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { schemaValidator } from '../../../../test/support/schemas.js';
import { toDischarge, ReversalDto, ReverseSettlementDto } from '../commands/settlements/settlement.dto.js';
import { decodeDischargeMessage } from '../kafka/discharge-message.js';
import { validatePolicy } from '#domain';
import { publishedSchemas } from './schemas.js';
import { validateInput } from './validation.js';

const SCHEMA_DIR = join(import.meta.dirname, '../../../../proto/json-schema');

describe('published schemas', () => {
  const check = schemaValidator();

  it('compile, and every example is valid against its schema', () => {
    const schemas = publishedSchemas();
    expect(schemas.length).toBeGreaterThanOrEqual(16);
    for (const s of schemas) {
      expect(s.example).toBeDefined();
      expect([s.name, check(s.name, s.example)]).toEqual([s.name, []]);
    }
  });

  it('are committed under proto/json-schema/ exactly as generated (npm run schemas)', () => {
    const files = readdirSync(SCHEMA_DIR)
      .filter((f) => f.endsWith('.schema.json'))
      .sort();
    expect(files).toEqual(
      publishedSchemas()
        .map((s) => `${s.name}.schema.json`)
        .sort(),
    );
    for (const s of publishedSchemas()) {
      expect(JSON.parse(readFileSync(join(SCHEMA_DIR, `${s.name}.schema.json`), 'utf8'))).toEqual(s.schema);
    }
  });

  const example = (name: string) => structuredClone(publishedSchemas().find((s) => s.name === name)!.example) as Record<string, unknown>;
  const mutations: Array<[string, (b: Record<string, unknown>) => unknown]> = [
    ['as given', (b) => b],
    ['an unknown field', (b) => ({ ...b, extra: 1 })],
    ['a string amount', (b) => ({ ...b, totalFen: '100' })],
    ['a negative amount', (b) => ({ ...b, totalFen: -1 })],
    ['a fractional amount', (b) => ({ ...b, totalFen: 10.5 })],
    ['an amount over the bound', (b) => ({ ...b, totalFen: 100_000_000_001 })],
    ['a missing id', ({ hospitalId: _h, ...b }) => b],
    ['a null id', (b) => ({ ...b, visitId: null })],
    ['an id with a space', (b) => ({ ...b, personId: 'p 1' })],
    ['an unknown visit type', (b) => ({ ...b, visitType: 'Inpatient' })],
    ['a date in another format', (b) => ({ ...b, admissionDate: '2012/02/01' })],
    ['a bad diagnosis', (b) => ({ ...b, diagnosisCodes: ['c34'] })],
    ['a null optional amount', (b) => ({ ...b, fullOwnPayFen: null })],
    ['external payments', (b) => ({ ...b, externalPayments: { basic: 100 } })],
    ['bad external payments', (b) => ({ ...b, externalPayments: { basic: -1 } })],
    ['an empty reason', (b) => ({ ...b, reason: '' })],
    ['a long reason', (b) => ({ ...b, reason: 'x'.repeat(501) })],
  ];

  const policyMutations: Array<[string, (p: Record<string, any>) => unknown]> = [
    ['as given', (p) => p],
    ['an unknown field', (p) => ({ ...p, extra: 1 })],
    ['a misspelt rule field', (p) => ({ ...p, layers: [{ ...p.layers[0], rules: [{ ...p.layers[0].rules[0], annualCap: [] }] }] })],
    [
      'a string ratio',
      (p) => ({ ...p, layers: [{ ...p.layers[0], rules: [{ ...p.layers[0].rules[0], bands: [{ uptoFen: null, ratioBp: '80' }] }] }] }),
    ],
    [
      'a ratio over 100 %',
      (p) => ({ ...p, layers: [{ ...p.layers[0], rules: [{ ...p.layers[0].rules[0], bands: [{ uptoFen: null, ratioBp: 10_001 }] }] }] }),
    ],
    ['an unknown layer kind', (p) => ({ ...p, layers: [{ ...p.layers[0], kind: 'charity' }] })],
    ['no layers', (p) => ({ ...p, layers: [] })],
    ['version 0', (p) => ({ ...p, version: 0 })],
    ['a missing region', ({ region: _r, ...p }) => p],
    [
      'a bad threshold',
      (p) => ({ ...p, layers: [{ ...p.layers[0], rules: [{ ...p.layers[0].rules[0], threshold: { fen: 1, per: 'month' } }] }] }),
    ],
    ['the reserved category "none"', (p) => ({ ...p, categories: [...p.categories, { code: 'none', name: 'x' }] })],
    ['too many layers', (p) => ({ ...p, layers: Array.from({ length: 21 }, (_, i) => ({ ...p.layers[0], id: `l${i}`, rules: [] })) })],
    [
      'a fixed-sum rule',
      (p) => ({
        ...p,
        layers: [...p.layers, { id: 'fx', kind: 'aid', fund: 'f', rules: [{ id: 'fx-1', fixedSum: { amountFen: 1, aboveFen: 0 } }] }],
      }),
    ],
    [
      'a fixed-sum rule with bands too',
      (p) => ({
        ...p,
        layers: [
          ...p.layers,
          { id: 'fx', kind: 'aid', fund: 'f', rules: [{ id: 'fx-1', fixedSum: { amountFen: 1, aboveFen: 0 }, bands: [] }] },
        ],
      }),
    ],
    [
      'a fixed sum of 0',
      (p) => ({
        ...p,
        layers: [...p.layers, { id: 'fx', kind: 'aid', fund: 'f', rules: [{ id: 'fx-1', fixedSum: { amountFen: 0, aboveFen: 0 } }] }],
      }),
    ],
    [
      'a rule with neither bands nor a fixed sum',
      (p) => ({ ...p, layers: [...p.layers, { id: 'fx', kind: 'aid', fund: 'f', rules: [{ id: 'fx-1' }] }] }),
    ],
  ];

  it.each(policyMutations)('agree with the domain on the structure of a policy with %s', (_what, mutate) => {
    const policy = mutate(example('policy') as Record<string, any>);
    expect(check('policy', policy).length === 0).toBe(validatePolicy(policy).ok);
  });

  it('accept every policy the domain accepts, also where only the domain refuses (references, order, uniqueness)', () => {
    const p = example('policy') as Record<string, any>;
    const duplicateLayer = { ...p, layers: [p.layers[0], p.layers[0]] };
    expect([validatePolicy(duplicateLayer).ok, check('policy', duplicateLayer)]).toEqual([false, []]);
  });

  it.each(mutations)('agree with the edge validation on a discharge with %s', (_what, mutate) => {
    const body = mutate(example('discharge'));
    expect(check('discharge', body).length === 0).toBe(toDischarge(body).ok);
  });

  it.each(mutations)('agree with the edge validation on a reversal with %s', (_what, mutate) => {
    const body = mutate(example('reversal'));
    expect(check('reversal', body).length === 0).toBe(validateInput(ReversalDto, body).ok);
  });

  it.each(mutations)('agree with the Kafka decoder on commands with %s', (_what, mutate) => {
    for (const name of ['kafka-settle-discharge', 'kafka-reverse-settlement']) {
      const body = mutate(example(name));
      expect([name, check(name, body).length === 0]).toEqual([name, decodeDischargeMessage(Buffer.from(JSON.stringify(body))).ok]);
    }
    expect(validateInput(ReverseSettlementDto, example('kafka-reverse-settlement')).ok).toBe(false); // `type` is the envelope's
  });
});
