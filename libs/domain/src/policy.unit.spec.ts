// Policy documents (spec §3): validation, which policy applies, idempotent publishing.
import { describe, it, expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PublishedPolicy, selectPolicy, validatePolicy } from './policy.js';
import { applyPolicyPublished, decidePublish, initialPolicyRegistry } from './visit.js';

const demoPolicyPath = fileURLToPath(new URL('../../../apps/medaid/assets/demo-policy.json', import.meta.url));
const demoPolicy = (): Record<string, unknown> => JSON.parse(readFileSync(demoPolicyPath, 'utf8')) as Record<string, unknown>;

// A small policy that uses every optional feature, so each mutation below breaks exactly one rule.
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const basePolicy = (): Json => ({
  policyId: 'p1',
  version: 1,
  region: 'r1',
  effectiveFrom: '2012-01-01',
  name: 'test scheme',
  categories: [
    { code: 'tekun', name: '特困' },
    { code: 'dibao', name: '低保', requiresApproval: false },
  ],
  layers: [
    {
      id: 'basic',
      kind: 'insurance',
      fund: '390100',
      rules: [
        {
          id: 'basic-ip',
          match: { visitTypes: ['inpatient'], hospitalLevels: ['county'], schemes: ['nrcms'] },
          threshold: { fen: 20000, per: 'settlement' },
          bands: [{ uptoFen: null, ratioBp: 8000 }],
          perSettlementCapFen: null,
          annualCaps: [{ counter: 'basic', capFen: 15000000 }],
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
          match: { categories: ['dibao', 'none'], diagnosisPrefixes: ['C', 'N18'] },
          threshold: { fen: 100000, per: 'year' },
          bands: [
            { uptoFen: 5000000, ratioBp: 5000 },
            { uptoFen: 10000000, ratioBp: 6000 },
            { uptoFen: null, ratioBp: 7000 },
          ],
          perSettlementCapFen: 3000000,
          annualCaps: [
            { counter: 'aid', capFen: 6000000 },
            { counter: 'aid2', capFen: 100 },
          ],
        },
      ],
    },
  ],
});

const rule0 = (p: Json) => p.layers[0].rules[0];
const rule1 = (p: Json) => p.layers[1].rules[0];

// [what is wrong, mutation, path that must be named]
const invalid: Array<[string, (p: Json) => void, string]> = [
  [
    'unknown top-level field',
    (p) => {
      p.comment = 'x';
    },
    'comment',
  ],
  [
    'unknown field in a category',
    (p) => {
      p.categories[0].priority = 1;
    },
    'categories[0].priority',
  ],
  [
    'unknown field in a layer',
    (p) => {
      p.layers[1].description = 'x';
    },
    'layers[1].description',
  ],
  [
    'misspelt annualCap in a rule',
    (p) => {
      rule1(p).annualCap = [{ counter: 'x', capFen: 1 }];
    },
    'layers[1].rules[0].annualCap',
  ],
  [
    'unknown field in a match',
    (p) => {
      rule0(p).match.diagnoses = ['C'];
    },
    'layers[0].rules[0].match.diagnoses',
  ],
  [
    'unknown field in a threshold',
    (p) => {
      rule0(p).threshold.unit = 'fen';
    },
    'layers[0].rules[0].threshold.unit',
  ],
  [
    'unknown field in a band',
    (p) => {
      rule1(p).bands[1].ratio = 1;
    },
    'layers[1].rules[0].bands[1].ratio',
  ],
  [
    'unknown field in an annual cap',
    (p) => {
      rule1(p).annualCaps[1].limitFen = 1;
    },
    'layers[1].rules[0].annualCaps[1].limitFen',
  ],
  [
    'policyId with a space',
    (p) => {
      p.policyId = 'demo county';
    },
    'policyId',
  ],
  [
    'policyId of 65 characters',
    (p) => {
      p.policyId = 'x'.repeat(65);
    },
    'policyId',
  ],
  [
    'empty region',
    (p) => {
      p.region = '';
    },
    'region',
  ],
  [
    'region that is a number',
    (p) => {
      p.region = 360827;
    },
    'region',
  ],
  [
    'layer id with a slash',
    (p) => {
      p.layers[0].id = 'basic/1';
    },
    'layers[0].id',
  ],
  [
    'rule id with Chinese characters',
    (p) => {
      rule1(p).id = '救助';
    },
    'layers[1].rules[0].id',
  ],
  [
    'category code with a space',
    (p) => {
      p.categories[1].code = 'di bao';
    },
    'categories[1].code',
  ],
  [
    'counter name with a space',
    (p) => {
      rule1(p).annualCaps[0].counter = 'aid 1';
    },
    'layers[1].rules[0].annualCaps[0].counter',
  ],
  [
    'scheme that is not an identifier',
    (p) => {
      rule0(p).match.schemes = ['new rural'];
    },
    'layers[0].rules[0].match.schemes[0]',
  ],
  [
    'name of 201 characters',
    (p) => {
      p.name = 'x'.repeat(201);
    },
    'name',
  ],
  [
    'empty name',
    (p) => {
      p.name = '';
    },
    'name',
  ],
  [
    'category without name',
    (p) => {
      delete p.categories[0].name;
    },
    'categories[0].name',
  ],
  [
    'category name of 201 characters',
    (p) => {
      p.categories[0].name = '低'.repeat(201);
    },
    'categories[0].name',
  ],
  [
    'requiresApproval that is not a boolean',
    (p) => {
      p.categories[0].requiresApproval = 'yes';
    },
    'categories[0].requiresApproval',
  ],
  [
    'empty fund',
    (p) => {
      p.layers[0].fund = '';
    },
    'layers[0].fund',
  ],
  [
    'fund of 65 characters',
    (p) => {
      p.layers[0].fund = '3'.repeat(65);
    },
    'layers[0].fund',
  ],
  [
    'duplicate category codes',
    (p) => {
      p.categories[1].code = 'tekun';
    },
    'categories[1].code',
  ],
  [
    'category code "none"',
    (p) => {
      p.categories[0].code = 'none';
    },
    'categories[0].code',
  ],
  [
    'duplicate layer ids',
    (p) => {
      p.layers[1].id = 'basic';
    },
    'layers[1].id',
  ],
  [
    'duplicate rule ids across layers',
    (p) => {
      rule1(p).id = 'basic-ip';
    },
    'layers[1].rules[0].id',
  ],
  [
    'duplicate rule ids within a layer',
    (p) => {
      p.layers[1].rules.push({ ...rule1(p), annualCaps: [] });
    },
    'layers[1].rules[1].id',
  ],
  [
    'empty visitTypes',
    (p) => {
      rule0(p).match.visitTypes = [];
    },
    'layers[0].rules[0].match.visitTypes',
  ],
  [
    'empty categories',
    (p) => {
      rule1(p).match.categories = [];
    },
    'layers[1].rules[0].match.categories',
  ],
  [
    'empty diagnosisPrefixes',
    (p) => {
      rule1(p).match.diagnosisPrefixes = [];
    },
    'layers[1].rules[0].match.diagnosisPrefixes',
  ],
  [
    'unknown visit type',
    (p) => {
      rule0(p).match.visitTypes = ['inpatient', 'emergency'];
    },
    'layers[0].rules[0].match.visitTypes[1]',
  ],
  [
    'unknown hospital level',
    (p) => {
      rule0(p).match.hospitalLevels = ['national'];
    },
    'layers[0].rules[0].match.hospitalLevels[0]',
  ],
  [
    'unknown layer kind',
    (p) => {
      p.layers[0].kind = 'pension';
    },
    'layers[0].kind',
  ],
  [
    'unknown category in match.categories',
    (p) => {
      rule1(p).match.categories = ['dibao', 'sixin'];
    },
    'layers[1].rules[0].match.categories[1]',
  ],
  [
    'lower-case diagnosis prefix',
    (p) => {
      rule1(p).match.diagnosisPrefixes = ['c'];
    },
    'layers[1].rules[0].match.diagnosisPrefixes[0]',
  ],
  [
    'threshold without per',
    (p) => {
      delete rule0(p).threshold.per;
    },
    'layers[0].rules[0].threshold.per',
  ],
  [
    'threshold without fen',
    (p) => {
      delete rule0(p).threshold.fen;
    },
    'layers[0].rules[0].threshold.fen',
  ],
  [
    'threshold per month',
    (p) => {
      rule0(p).threshold.per = 'month';
    },
    'layers[0].rules[0].threshold.per',
  ],
  [
    'negative threshold',
    (p) => {
      rule0(p).threshold.fen = -1;
    },
    'layers[0].rules[0].threshold.fen',
  ],
  [
    'empty bands',
    (p) => {
      rule0(p).bands = [];
    },
    'layers[0].rules[0].bands',
  ],
  [
    'band without uptoFen',
    (p) => {
      rule0(p).bands = [{ ratioBp: 8000 }];
    },
    'layers[0].rules[0].bands[0].uptoFen',
  ],
  [
    'equal band bounds',
    (p) => {
      rule1(p).bands[1].uptoFen = 5000000;
    },
    'layers[1].rules[0].bands[1].uptoFen',
  ],
  [
    'decreasing band bounds',
    (p) => {
      rule1(p).bands[1].uptoFen = 4000000;
    },
    'layers[1].rules[0].bands[1].uptoFen',
  ],
  [
    'null uptoFen not last',
    (p) => {
      rule1(p).bands[1].uptoFen = null;
    },
    'layers[1].rules[0].bands[1].uptoFen',
  ],
  [
    'ratioBp 10001',
    (p) => {
      rule0(p).bands[0].ratioBp = 10001;
    },
    'layers[0].rules[0].bands[0].ratioBp',
  ],
  [
    'ratioBp -1',
    (p) => {
      rule0(p).bands[0].ratioBp = -1;
    },
    'layers[0].rules[0].bands[0].ratioBp',
  ],
  [
    'ratioBp 1.5',
    (p) => {
      rule0(p).bands[0].ratioBp = 1.5;
    },
    'layers[0].rules[0].bands[0].ratioBp',
  ],
  [
    'ratioBp as a string',
    (p) => {
      rule0(p).bands[0].ratioBp = '8000';
    },
    'layers[0].rules[0].bands[0].ratioBp',
  ],
  [
    'fractional perSettlementCapFen',
    (p) => {
      rule1(p).perSettlementCapFen = 0.5;
    },
    'layers[1].rules[0].perSettlementCapFen',
  ],
  [
    'negative capFen',
    (p) => {
      rule1(p).annualCaps[0].capFen = -100;
    },
    'layers[1].rules[0].annualCaps[0].capFen',
  ],
  [
    'a counter named twice in one rule',
    (p) => {
      rule1(p).annualCaps[1].counter = 'aid';
    },
    'layers[1].rules[0].annualCaps[1].counter',
  ],
  [
    'version 0',
    (p) => {
      p.version = 0;
    },
    'version',
  ],
  [
    'version 1.5',
    (p) => {
      p.version = 1.5;
    },
    'version',
  ],
  [
    'version as a string',
    (p) => {
      p.version = '1';
    },
    'version',
  ],
  [
    'effectiveFrom 2012-02-30',
    (p) => {
      p.effectiveFrom = '2012-02-30';
    },
    'effectiveFrom',
  ],
  [
    'effectiveFrom missing',
    (p) => {
      delete p.effectiveFrom;
    },
    'effectiveFrom',
  ],
  [
    'no layers',
    (p) => {
      p.layers = [];
    },
    'layers',
  ],
];

describe('validatePolicy: every rule of spec §3 "Validation"', () => {
  it('given the base policy of this table, when validated, then it is valid', () => {
    expect(validatePolicy(basePolicy())).toEqual({ ok: true, value: basePolicy() });
  });

  it('given the demo policy shipped with the app, when validated, then it is valid', () => {
    const result = validatePolicy(demoPolicy());
    expect(result.ok ? [] : result.error.details).toEqual([]);
  });

  it.each(invalid)('given a policy with %s, when validated, then it is INVALID_POLICY naming the field', (_what, mutate, path) => {
    const p = basePolicy();
    mutate(p);
    const result = validatePolicy(p);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('INVALID_POLICY');
    const fields = result.error.details.map((d) => d.field);
    expect(fields.filter((f) => f === path || f.endsWith(`.${path}`))).not.toHaveLength(0);
  });

  it('given texts and values exactly at their limits, when validated, then the policy is valid', () => {
    const p = basePolicy();
    p.name = 'x'.repeat(200);
    p.policyId = 'P'.repeat(64);
    p.layers[0].fund = '3'.repeat(64);
    p.categories[0].name = 'x';
    rule0(p).bands = [
      { uptoFen: 0, ratioBp: 0 },
      { uptoFen: 1, ratioBp: 10000 },
      { uptoFen: 100000000000, ratioBp: 1 },
    ];
    rule0(p).threshold = { fen: 100000000000, per: 'year' };
    expect(validatePolicy(p).ok).toBe(true);
  });

  it('given several problems, when validated, then each one is reported with its path', () => {
    const p = basePolicy();
    p.version = 0;
    rule1(p).annualCap = [];
    rule0(p).bands[0].ratioBp = 10001;
    const result = validatePolicy(p);
    expect(result.ok ? [] : result.error.details.map((d) => d.field)).toEqual(
      expect.arrayContaining(['version', 'layers[1].rules[0].annualCap', 'layers[0].rules[0].bands[0].ratioBp']),
    );
  });

  it('given something that is not an object, when validated, then it is INVALID_POLICY', () => {
    for (const raw of [null, [], 'policy', 42]) {
      const result = validatePolicy(raw);
      expect(result.ok ? null : result.error.code).toBe('INVALID_POLICY');
    }
  });
});

const published = (policyId: string, region: string, effectiveFrom: string, publishedSeq: number): PublishedPolicy => {
  const policy = { ...basePolicy(), policyId, region, effectiveFrom };
  return { policy, publishedSeq };
};
/** The same document with the keys of every object in reverse order. */
const reverseKeys = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v)
      .reverse()
      .map(([k, x]) => [k, reverseKeys(x)]),
  );
};
const idOf = (p: PublishedPolicy | null) => (p === null ? null : p.policy.policyId);

describe('selectPolicy: which policy applies', () => {
  const all = [
    published('r1-2012', 'r1', '2012-01-01', 1),
    published('r1-2013', 'r1', '2013-01-01', 2),
    published('r1-2014', 'r1', '2014-01-01', 3),
    published('r2-2012-07', 'r2', '2012-07-01', 4),
  ];

  it('given policies from several dates, when a discharge is settled, then the latest effectiveFrom on or before the date applies', () => {
    expect(idOf(selectPolicy(all, 'r1', '2012-12-31'))).toBe('r1-2012');
    expect(idOf(selectPolicy(all, 'r1', '2013-01-01'))).toBe('r1-2013');
    expect(idOf(selectPolicy(all, 'r1', '2013-06-30'))).toBe('r1-2013');
    expect(idOf(selectPolicy(all, 'r1', '2020-01-01'))).toBe('r1-2014');
  });

  it('given policies of other regions, when selecting, then they are ignored', () => {
    expect(idOf(selectPolicy(all, 'r2', '2013-06-30'))).toBe('r2-2012-07');
    expect(idOf(selectPolicy(all, 'r3', '2013-06-30'))).toBeNull();
  });

  it('given only future policies for the region, when selecting, then none applies', () => {
    expect(selectPolicy(all, 'r1', '2011-12-31')).toBeNull();
    expect(selectPolicy(all, 'r2', '2012-06-30')).toBeNull();
    expect(selectPolicy([], 'r1', '2012-06-30')).toBeNull();
  });

  it('given two policies with the same effectiveFrom, when selecting, then the one published last applies whatever the listing order', () => {
    const first = published('first', 'r1', '2013-01-01', 5);
    const second = published('second', 'r1', '2013-01-01', 6);
    expect(idOf(selectPolicy([...all, first, second], 'r1', '2013-02-01'))).toBe('second');
    expect(idOf(selectPolicy([second, first, ...all].reverse(), 'r1', '2013-02-01'))).toBe('second');
  });

  it('given policies published through the registry, when a later one has the same date, then it wins', () => {
    const registry = initialPolicyRegistry();
    for (const id of ['a', 'b', 'c']) {
      const decided = decidePublish({ ...basePolicy(), policyId: id }, registry);
      if (!decided.ok) throw new Error(decided.error.message);
      decided.value.events.forEach((e) => applyPolicyPublished(registry, e));
    }
    expect(idOf(selectPolicy(registry.byKey.values(), 'r1', '2012-01-01'))).toBe('c');
  });
});

describe('decidePublish: publishing is idempotent per (policyId, version)', () => {
  const publish = (raw: unknown, registry = initialPolicyRegistry()) => {
    const decided = decidePublish(raw, registry);
    if (decided.ok) decided.value.events.forEach((e) => applyPolicyPublished(registry, e));
    return { decided, registry };
  };

  it('given a new policy, when published, then one PolicyPublished event records it and its categories become known', () => {
    const { decided, registry } = publish(basePolicy());
    expect(decided.ok ? decided.value.events.map((e) => e.type) : decided.error.code).toEqual(['PolicyPublished']);
    expect([...registry.categoryCodes].sort()).toEqual(['dibao', 'tekun']);
  });

  it('given a published policy, when the identical content is published with keys in another order, then it succeeds and records nothing', () => {
    const { registry } = publish(basePolicy());
    const reordered = reverseKeys(basePolicy()) as Json;
    expect(Object.keys(reordered)[0]).toBe('layers');
    expect(Object.keys(reordered.layers[1].rules[0])[0]).toBe('annualCaps');
    const again = decidePublish(reordered, registry);
    expect(again.ok ? again.value.events : again.error.code).toEqual([]);
    expect(registry.byKey.size).toBe(1);
  });

  it('given a published policy, when different content is published under the same version, then it is POLICY_VERSION_CONFLICT', () => {
    const { registry } = publish(basePolicy());
    const changed = basePolicy();
    rule0(changed).bands[0].ratioBp = 8100;
    const result = decidePublish(changed, registry);
    expect(result.ok ? 'ok' : result.error.code).toBe('POLICY_VERSION_CONFLICT');
  });

  it('given a published policy, when the changed content is published as a new version, then it is accepted', () => {
    const { registry } = publish(basePolicy());
    const changed = { ...basePolicy(), version: 2 };
    rule0(changed).bands[0].ratioBp = 8100;
    expect(publish(changed, registry).decided.ok).toBe(true);
    expect(registry.byKey.size).toBe(2);
  });

  it('given a published policy, when an invalid document with the same id and version is published, then INVALID_POLICY is reported first', () => {
    const { registry } = publish(basePolicy());
    const invalidDoc = basePolicy();
    rule1(invalidDoc).annualCap = [];
    const result = decidePublish(invalidDoc, registry);
    expect(result.ok ? 'ok' : result.error.code).toBe('INVALID_POLICY');
  });

  it('given a policy event applied twice (replay), when the registry is rebuilt, then the first publication order is kept', () => {
    const registry = initialPolicyRegistry();
    const a = { type: 'PolicyPublished' as const, data: { policy: { ...basePolicy(), policyId: 'a' } } };
    const b = { type: 'PolicyPublished' as const, data: { policy: { ...basePolicy(), policyId: 'b' } } };
    [a, b, a].forEach((e) => applyPolicyPublished(registry, e));
    expect(idOf(selectPolicy(registry.byKey.values(), 'r1', '2012-01-01'))).toBe('b');
  });
});
