// Units, identifiers, dates and typed results shared by the whole domain (spec §2, §8).
// Money is an integer number of 分 (fen) everywhere; ratios are integer basis points (万分比).

export type Fen = number;
export type Bp = number;
/** A calendar date as `YYYY-MM-DD`; such strings compare chronologically as plain strings. */
export type IsoDate = string;

export const MAX_FEN = 100_000_000_000;
export const MAX_BP = 10_000;
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
export const DIAGNOSIS_PATTERN = /^[A-Z][0-9A-Z.]{1,9}$/;
export const MAX_DIAGNOSES = 50;
export const VISIT_TYPES = ['inpatient', 'outpatient', 'chronic_outpatient'] as const;
export const HOSPITAL_LEVELS = ['township', 'county', 'city', 'province', 'out_of_province'] as const;
export type VisitType = (typeof VISIT_TYPES)[number];
export type HospitalLevel = (typeof HOSPITAL_LEVELS)[number];
/** The category of a person who holds none (spec §4). */
export const NO_CATEGORY = 'none';

export const ERROR_CODES = [
  'VALIDATION_FAILED',
  'INVALID_POLICY',
  'POLICY_VERSION_CONFLICT',
  'NO_POLICY_IN_FORCE',
  'UNKNOWN_CATEGORY',
  'PERSON_DECEASED',
  'VISIT_CONFLICT',
  'SETTLEMENT_NOT_FOUND',
  'ALREADY_REVERSED',
  'FORBIDDEN', // extension: the actor may not do this (an adjustment's maker approving it)
  'ADJUSTMENT_NOT_FOUND', // extension: adjustments with maker–checker
  'ADJUSTMENT_ALREADY_DECIDED',
  'ADJUSTMENT_OUT_OF_RANGE',
  'ALLOCATION_CONFLICT', // extension: the same fund allocation reference with other content
  'IDEMPOTENCY_KEY_REUSED', // extension: an idempotency key already answered another command
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorDetail {
  /** Path of the offending field, e.g. `layers[2].rules[0].bands[1].ratioBp`. */
  field: string;
  problem: string;
}

/** A business rejection: a typed code, never a thrown string. */
export interface DomainError {
  code: ErrorCode;
  message: string;
  details: ErrorDetail[];
}

export type Result<T, E = DomainError> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const fail = (code: ErrorCode, message: string, details: ErrorDetail[] = []): Result<never> => ({
  ok: false,
  error: { code, message, details },
});

export function isFen(v: unknown): v is Fen {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_FEN;
}

export function isBp(v: unknown): v is Bp {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_BP;
}

export function isId(v: unknown): v is string {
  return typeof v === 'string' && ID_PATTERN.test(v);
}

const DATE_SHAPE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A `YYYY-MM-DD` date that exists in the proleptic Gregorian calendar (2012-02-30 does not). */
export function isCalendarDate(v: unknown): v is IsoDate {
  if (typeof v !== 'string') return false;
  const m = DATE_SHAPE.exec(v);
  if (!m) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  return day <= daysInMonth(year, month);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** The day before a date — used to close category intervals on revocation. Pure calendar arithmetic. */
export function dayBefore(date: IsoDate): IsoDate {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  if (d > 1) return fmt(y, m, d - 1);
  if (m > 1) return fmt(y, m - 1, daysInMonth(y, m - 1));
  return fmt(y - 1, 12, 31);
}

function fmt(y: number, m: number, d: number): IsoDate {
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/** The settlement year is the calendar year of the discharge date (spec §6). */
export function yearOf(date: IsoDate): number {
  return Number(date.slice(0, 4));
}

/**
 * JSON with object keys sorted at every level: the canonical form used to decide whether two
 * documents or two discharges are "identical" regardless of key order.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/**
 * Records keyed by layer ids, counters and category codes. Such ids may be "constructor" or
 * "__proto__" (they match the id pattern), so records are read by own key only and written with
 * setOwn. They stay ordinary objects (fast, and JSON as they are); spreading copies an own
 * "__proto__" key as data.
 */
export const dict = <V>(from?: Readonly<Record<string, V>>): Record<string, V> => ({ ...from });
export const own = <V>(map: Readonly<Record<string, V>> | undefined, key: string): V | undefined =>
  map !== undefined && Object.hasOwn(map, key) ? map[key] : undefined;
export function setOwn<V>(map: Record<string, V>, key: string, value: V): void {
  if (key === '__proto__') Object.defineProperty(map, key, { value, writable: true, enumerable: true, configurable: true });
  else map[key] = value;
}

/** TIGER_STYLE: invariants are asserted in the code, not only in tests. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`invariant violated: ${message}`);
}

/** Code-point order of texts: the same on every machine and locale, unlike localeCompare. */
export const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
