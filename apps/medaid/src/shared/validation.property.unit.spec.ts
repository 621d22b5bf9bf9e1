// The compiled fast path of the edge validation (validation.ts) against class-validator itself:
// for every DTO of the service, on random mixes of valid and invalid fields (and unknown keys),
// the fast check says "valid" exactly when validateSync finds no error. So the fast path can
// never let through what class-validator refuses, nor send valid input the slow way.
import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { getMetadataStorage, validateSync } from 'class-validator';
import { AdjustmentRejectionDto, AdjustmentRequestDto } from '../commands/adjustments/adjustment.dto.js';
import { AllocateFundDto, FundsQueryDto, GrantSubsidiesDto } from '../commands/funds/fund.dto.js';
import { AssignCategoryDto, GrantApprovalDto, RecordDeathDto, RevokeCategoryDto } from '../commands/persons/person.dto.js';
import { DischargeDto, ReversalDto, ReverseSettlementDto } from '../commands/settlements/settlement.dto.js';
import { BalancesQueryDto, LedgerQueryDto } from '../ledger/ledger.dto.js';
import { fastCheckOf, validateInput } from './validation.js';

type DtoClass = new () => object;
const DTOS: Record<string, DtoClass> = {
  DischargeDto,
  ReversalDto,
  ReverseSettlementDto,
  AssignCategoryDto,
  RevokeCategoryDto,
  GrantApprovalDto,
  RecordDeathDto,
  AllocateFundDto,
  FundsQueryDto,
  GrantSubsidiesDto,
  AdjustmentRequestDto,
  AdjustmentRejectionDto,
  LedgerQueryDto,
  BalancesQueryDto,
};

/** Values of every shape the DTOs take, valid for some field and invalid for others. */
const POOL: unknown[] = [
  'h-county',
  'p-1',
  '360827',
  'nrcms',
  'inpatient',
  'outpatient',
  'county',
  'township',
  '2012-02-01',
  '2012-02-20',
  '2012-02-30',
  '2012-2-1',
  'tekun',
  'dibao',
  'local',
  'upper',
  'carryover',
  'raise',
  'lower',
  'SP-1',
  'medical-aid',
  'a reason',
  '',
  ' ',
  'x'.repeat(501),
  'bad id!',
  ['C34.9'],
  ['C34.9', 'I10'],
  [],
  ['c34'],
  [1],
  'C34.9',
  0,
  1,
  100,
  8_000_000,
  2012,
  2013,
  10_000,
  -1,
  1.5,
  2 ** 53,
  Number.NaN,
  '100',
  null,
  undefined,
  true,
  {},
  { 'basic-ip': 100 },
  { 'x y': 1 },
  { a: -1 },
  new Set(['C34.9']),
  new Map([['a', 'C34.9']]),
];

function propertiesOf(dto: DtoClass): string[] {
  return [
    ...new Set(
      getMetadataStorage()
        .getTargetValidationMetadatas(dto, '', false, false, undefined)
        .map((m) => m.propertyName),
    ),
  ];
}

const slowValid = (instance: object) =>
  validateSync(instance, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true }).length === 0;

/** The pool values class-validator accepts for one property on its own (other fields' errors ignored). */
function validValues(dto: DtoClass, property: string): unknown[] {
  return POOL.filter((value) => {
    const errors = validateSync(Object.assign(new dto(), { [property]: value }), {
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: true,
    });
    return !errors.some((e) => e.property === property);
  });
}

describe('the compiled fast path of edge validation', () => {
  it('is compiled for every DTO of the service (none needs the slow path only)', () => {
    for (const [name, dto] of Object.entries(DTOS))
      expect(`${name}: ${fastCheckOf(dto) === null ? 'slow path only' : 'compiled'}`).toBe(`${name}: compiled`);
  });

  it.each(Object.entries(DTOS))('%s: says valid exactly when class-validator finds no error', (_, dto) => {
    const properties = propertiesOf(dto);
    const fast = fastCheckOf(dto)!;
    const field = (property: string) => {
      const good = validValues(dto, property);
      return fc.oneof(
        ...(good.length > 0 ? [{ arbitrary: fc.constantFrom(...good), weight: 8 }] : []),
        { arbitrary: fc.constantFrom(...POOL), weight: 1 },
        { arbitrary: fc.constant(Symbol.for('absent')), weight: 1 },
      );
    };
    const input = fc.record({
      fields: fc.tuple(...properties.map(field)),
      extra: fc.oneof(
        { arbitrary: fc.constant(null), weight: 9 },
        {
          arbitrary: fc.constantFrom('unknownField', 'hospitalid', 'toString', 'hasOwnProperty', 'isPrototypeOf', '__defineGetter__'),
          weight: 1,
        },
      ),
    });
    let valid = 0;
    fc.assert(
      fc.property(input, ({ fields, extra }) => {
        const body: Record<string, unknown> = {};
        properties.forEach((p, i) => {
          if (fields[i] !== Symbol.for('absent')) body[p] = fields[i];
        });
        if (extra !== null) body[extra] = 'x';
        const instance = Object.assign(new dto(), body);
        const slow = slowValid(instance);
        if (slow) valid++;
        // (the fast path sees only bodies of declared, non-null fields: validateInput refuses the rest first)
        const strict = Object.entries(body).every(([k, v]) => v !== null && properties.includes(k));
        if (strict) expect(fast(instance)).toBe(slow);
        // and validateInput answers as class-validator does, but stricter where class-validator is
        // lax: a null field is not "absent", and a key named like an Object.prototype member is
        // not a field (class-validator's whitelist lets both through)
        expect(validateInput(dto, body).ok).toBe(slow && strict);
      }),
      { numRuns: 400 },
    );
    // The runs held valid input too, so the fast path was exercised where it answers alone.
    expect(valid).toBeGreaterThan(10);
  });
});
