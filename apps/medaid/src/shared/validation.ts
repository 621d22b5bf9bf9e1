// Validation at the edge, shared by HTTP and `medaid simulate` so both reject exactly the same
// input: class-validator with whitelist + forbidNonWhitelisted, no implicit type conversion
// (a string "100" is not an amount), and the offending field named in every error.
import { ValidateBy, ValidationError, ValidationOptions, getMetadataStorage, validateSync } from 'class-validator';
import type { ValidationArguments } from 'class-validator';
import { DomainError, ErrorDetail, MAX_FEN, isCalendarDate, isFen, isId } from '#domain';

export type Validated<T> = { ok: true; value: T } | { ok: false; error: DomainError };

export function validateInput<T extends object>(dtoClass: new () => T, input: unknown): Validated<T> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return invalid([{ field: '(body)', problem: 'must be a JSON object' }]);
  }
  // Every key must be a field the DTO declares (its own, never one reached through the prototype,
  // such as `hasOwnProperty`), and no field may be null: null is not "absent" (spec §2: a value
  // that is not of its type is VALIDATION_FAILED). These are refused at once, with any problem
  // class-validator finds in the rest.
  const fields = declaredFields(dtoClass);
  const refused: ErrorDetail[] = [];
  for (const [key, value] of Object.entries(input)) {
    if (!fields.has(key)) refused.push({ field: key.slice(0, 64), problem: 'is not a field of this command' });
    else if (value === null) refused.push({ field: key, problem: 'must not be null: leave the field out instead' });
  }
  // No DTO nests another class, so the body's own fields are copied onto an instance as they are:
  // no conversion of any kind (a string "100" stays a string and fails IsFen).
  const instance = Object.assign(new dtoClass(), refused.length === 0 ? input : allowedPart(input, fields));
  if (refused.length === 0 && fastCheckOf(dtoClass)?.(instance) === true) return { ok: true, value: instance };
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true });
  const named = new Set(refused.map((d) => d.field));
  const details = [...refused, ...flatten(errors).filter((d) => !named.has(d.field))];
  if (details.length > 0) return invalid(details);
  return { ok: true, value: instance };
}

const declared = new WeakMap<object, ReadonlySet<string>>();

/** The fields a DTO class declares (properties with a class-validator decorator). */
function declaredFields(dtoClass: new () => object): ReadonlySet<string> {
  let fields = declared.get(dtoClass);
  if (fields === undefined) {
    const metadatas = getMetadataStorage().getTargetValidationMetadatas(dtoClass, '', false, false, undefined);
    fields = new Set(metadatas.map((m) => m.propertyName));
    declared.set(dtoClass, fields);
  }
  return fields;
}

/** The declared, non-null fields of an input (what is validated next to the refused ones). */
function allowedPart(input: object, fields: ReadonlySet<string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([key, value]) => fields.has(key) && value !== null));
}

// ---- the fast path: class-validator's own constraints, without its machinery -------------------
//
// validateSync builds its metadata lists, a ValidationError per property and the arguments of
// every constraint on every call: about 10 µs for a discharge, a tenth of what the request path
// spends on a settlement. So each DTO class gets, once, a check compiled from the class-validator
// metadata of its decorators, calling the very same constraint functions with the same optional
// (IsOptional / ValidateIf), `each` and whitelist rules. It may only say "valid": whatever it does
// not accept, and every class with a kind of rule it does not know (nested, IsDefined, async,
// groups), goes to validateSync, which decides and words the errors. A property test holds the
// two equal on valid and invalid input.

type FastCheck = (instance: object) => boolean;
const fastChecks = new WeakMap<object, FastCheck | null>();

/** The compiled check of a DTO class (null: class-validator alone decides for it). */
export function fastCheckOf(dtoClass: new () => object): FastCheck | null {
  let check = fastChecks.get(dtoClass);
  if (check === undefined) {
    check = compileFastCheck(dtoClass);
    fastChecks.set(dtoClass, check);
  }
  return check;
}

interface PropertyRules {
  property: string;
  /** ValidateIf / IsOptional conditions: the property is checked only when all hold. */
  conditions: Array<(object: object, value: unknown) => boolean>;
  checks: Array<{ validate: (value: unknown, args: ValidationArguments) => unknown; each: boolean; constraints: unknown[] }>;
}

function compileFastCheck(dtoClass: new () => object): FastCheck | null {
  const storage = getMetadataStorage();
  const metadatas = storage.getTargetValidationMetadatas(dtoClass, '', false, false, undefined);
  if (metadatas.length === 0) return null;
  const rules = new Map<string, PropertyRules>();
  for (const m of metadatas) {
    if ((m.groups !== undefined && m.groups.length > 0) || m.always === true || m.validateIf !== undefined) return null;
    let r = rules.get(m.propertyName);
    if (r === undefined) rules.set(m.propertyName, (r = { property: m.propertyName, conditions: [], checks: [] }));
    if (m.type === 'conditionalValidation') {
      r.conditions.push(m.constraints[0] as (object: object, value: unknown) => boolean);
    } else if (m.type === 'customValidation' && m.constraintCls !== undefined) {
      for (const c of storage.getTargetValidatorConstraints(m.constraintCls)) {
        if (c.async) return null;
        r.checks.push({
          validate: (value, args) => c.instance.validate(value, args),
          each: m.each === true,
          constraints: m.constraints ?? [],
        });
      }
    } else {
      return null;
    }
  }
  const properties = [...rules.values()];
  const targetName = dtoClass.name;
  return (object) => {
    for (const key of Object.keys(object)) if (!rules.has(key)) return false; // whitelist: forbidden, the slow path says so
    for (const { property, conditions, checks } of properties) {
      const value = (object as Record<string, unknown>)[property];
      if (!conditions.every((condition) => condition(object, value))) continue;
      for (const { validate, each, constraints } of checks) {
        const args: ValidationArguments = { targetName, property, object, value, constraints };
        if (each && (Array.isArray(value) || value instanceof Set || value instanceof Map)) {
          for (const item of value instanceof Map ? value.values() : value) if (validate(item, args) !== true) return false;
        } else if (validate(value, args) !== true) {
          return false;
        }
      }
    }
    return true;
  };
}

export function invalid(details: ErrorDetail[]): { ok: false; error: DomainError } {
  const first = details[0];
  const message = first ? `${first.field}: ${first.problem}` : 'invalid input';
  return { ok: false, error: { code: 'VALIDATION_FAILED', message, details } };
}

function flatten(errors: ValidationError[], prefix = ''): ErrorDetail[] {
  return errors.flatMap((e) => {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((problem) => ({ field, problem: stripProperty(problem, e.property) }));
    return [...own, ...flatten(e.children ?? [], field)];
  });
}

// class-validator prefixes messages with the property name ("visitId must …"); the field is
// already in `field`, so the problem reads on its own.
function stripProperty(message: string, property: string): string {
  return message.startsWith(`${property} `) ? message.slice(property.length + 1) : message;
}

// ---- decorators for the units of spec §2 ----------------------------------------------------

export const IsFen = (o?: ValidationOptions) =>
  ValidateBy(
    { name: 'isFen', validator: { validate: isFen, defaultMessage: () => `must be an integer number of fen from 0 to ${MAX_FEN}` } },
    o,
  );

export const IsIdentifier = (o?: ValidationOptions) =>
  ValidateBy({ name: 'isIdentifier', validator: { validate: isId, defaultMessage: () => 'must match ^[A-Za-z0-9._:-]{1,64}$' } }, o);

export const IsCalendarDate = (o?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isCalendarDate',
      validator: { validate: isCalendarDate, defaultMessage: () => 'must be an existing calendar date YYYY-MM-DD' },
    },
    o,
  );

const MAX_EXTERNAL_LAYERS = 20;

/** `{layerId: fen}` — layers already adjudicated elsewhere. */
export const IsExternalPayments = (o?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isExternalPayments',
      validator: {
        validate: (v: unknown) =>
          v !== null &&
          typeof v === 'object' &&
          !Array.isArray(v) &&
          Object.keys(v).length <= MAX_EXTERNAL_LAYERS &&
          Object.entries(v).every(([k, fen]) => isId(k) && isFen(fen)),
        defaultMessage: () => `must be an object of at most ${MAX_EXTERNAL_LAYERS} {layerId: fen} entries`,
      },
    },
    o,
  );

/** Control characters (but tab and line breaks) and lone surrogates: text no one types, that some stores (PostgreSQL) refuse. */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const isPlainText = (v: string) => !CONTROL.test(v) && !LONE_SURROGATE.test(v);

export const IsText = (maxLength: number, o?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isText',
      constraints: [maxLength], // for the published schemas (shared/schemas.ts)
      validator: {
        validate: (v: unknown) => typeof v === 'string' && v.length >= 1 && v.length <= maxLength && isPlainText(v),
        defaultMessage: () => `must be a text of 1 to ${maxLength} characters, without control characters`,
      },
    },
    o,
  );
