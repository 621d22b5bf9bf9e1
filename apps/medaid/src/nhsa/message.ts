// The national platform's envelope (国家医疗保障信息平台 接口报文), in and out, and the readers of the
// fields medaid takes from `input`. Lenient in what it accepts: unknown fields are ignored (the
// README lists which are read), amounts may be numbers or strings, dates come in the formats HIS
// clients send. Exact in what it sends. Every problem names the field, as `input.data.medfee_sumamt`.
import { DIAGNOSIS_PATTERN, ID_PATTERN, isCalendarDate } from '#domain';
import { beijingClock } from '../shared/beijing-time.js';
import { fenOfYuan } from './money.js';

/** A refusal of one field: becomes `infcode` -1 with the code and the field in `err_msg`. */
export class NhsaRefusal extends Error {
  constructor(
    readonly code: string,
    readonly field: string | null,
    message: string,
  ) {
    super(message);
  }
}

export const refuse = (field: string, problem: string, code = 'VALIDATION_FAILED'): never => {
  throw new NhsaRefusal(code, field, `${field} ${problem}`);
};

export interface Envelope {
  infno: string;
  msgid: string;
  /** 就医地 and 参保地 (6-digit region codes); either may be absent. */
  mdtrtareaAdmvs: string | null;
  insuplcAdmdvs: string | null;
  fixmedinsCode: string;
  opter: string | null;
  input: Record<string, unknown>;
}

const INFNO = /^[0-9]{4}$/;
const MSGID = /^[0-9A-Za-z]{1,40}$/;
const REGION = /^[0-9]{6}$/;
const FIXMEDINS = /^[A-Z0-9]{1,20}$/;

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The envelope of a request whose path says `infno`; the body's infno, when sent, must agree. */
export function parseEnvelope(pathInfno: string, body: unknown): Envelope {
  if (!INFNO.test(pathInfno)) refuse('infno', 'must be a 4-digit transaction number');
  if (!isObject(body)) refuse('(body)', 'must be a JSON object (the platform envelope)');
  const b = body as Record<string, unknown>;
  if (b.infno !== undefined && String(b.infno) !== pathInfno)
    refuse('infno', `is ${String(b.infno)} in the body but ${pathInfno} in the path`);
  const msgid = text(b, 'msgid', MSGID, 'must be the message id (1–40 letters or digits; the platform sends 30)');
  const fixmedinsCode = text(b, 'fixmedins_code', FIXMEDINS, 'must be the 定点医药机构编号 (capital letters and digits)');
  const region = (field: string) =>
    b[field] === undefined || b[field] === '' ? null : text(b, field, REGION, 'must be a 6-digit region code');
  const input = b.input;
  if (!isObject(input)) refuse('input', 'must be an object');
  return {
    infno: pathInfno,
    msgid,
    mdtrtareaAdmvs: region('mdtrtarea_admvs'),
    insuplcAdmdvs: region('insuplc_admdvs'),
    fixmedinsCode,
    opter: typeof b.opter === 'string' && b.opter.length <= 30 ? b.opter : null,
    input: input as Record<string, unknown>,
  };
}

/** A text field matching the pattern (numbers are taken as their text: some HIS send ids as numbers). */
export function text(o: Record<string, unknown>, field: string, pattern: RegExp, problem: string, at = field): string {
  const v = o[field];
  const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v;
  if (typeof s !== 'string' || !pattern.test(s.trim())) return refuse(at, problem);
  return (s as string).trim();
}

export function optionalText(o: Record<string, unknown>, field: string, pattern: RegExp, problem: string, at = field): string | null {
  return o[field] === undefined || o[field] === null || o[field] === '' ? null : text(o, field, pattern, problem, at);
}

export const ID = ID_PATTERN;
export const idText = (o: Record<string, unknown>, field: string, at: string) =>
  text(o, field, ID, 'must be an id (letters, digits, ._:-; at most 64)', at);

/** A 元 amount (number or string, at most two decimals) as fen; absent → `fallback` when given. */
export function fen(o: Record<string, unknown>, field: string, at: string, fallback?: number): number {
  const v = o[field];
  if ((v === undefined || v === null || v === '') && fallback !== undefined) return fallback;
  if (v === undefined || v === null || v === '') return refuse(at, 'is required (an amount in 元)');
  const r = fenOfYuan(v);
  return r.ok ? r.fen : refuse(at, r.problem);
}

/** An amount that may carry a sign (a reversal's line as a hospital books it): its fen, negative when it is. */
export function signedFen(o: Record<string, unknown>, field: string, at: string): number {
  const v = o[field];
  const negative = typeof v === 'number' ? v < 0 : typeof v === 'string' && v.trim().startsWith('-');
  const size = typeof v === 'number' ? Math.abs(v) : typeof v === 'string' ? v.trim().replace(/^-/, '') : v;
  return (negative ? -1 : 1) * fen({ [field]: size }, field, at);
}

/** A date or date-time as HIS clients send it ("2012-02-01", "2012-02-01 08:30:00", "20120201", "20120201083000") → YYYY-MM-DD. */
export function date(o: Record<string, unknown>, field: string, at: string): string {
  const v = o[field];
  const s = typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : '';
  const m = /^(\d{4})-?(\d{2})-?(\d{2})(?:[ T]?\d{2}:?\d{2}(?::?\d{2}(?:\.\d{1,3})?)?)?$/.exec(s);
  const d = m === null ? '' : `${m[1]}-${m[2]}-${m[3]}`;
  if (!isCalendarDate(d)) return refuse(at, 'must be a date (yyyy-MM-dd, yyyy-MM-dd HH:mm:ss, yyyyMMdd or yyyyMMddHHmmss)');
  return d;
}

export const optionalDate = (o: Record<string, unknown>, field: string, at: string): string | null =>
  o[field] === undefined || o[field] === null || o[field] === '' ? null : date(o, field, at);

/**
 * ICD-10 codes of a list of diagnoses (`diseinfo: [{diag_code}]`, or `dise_codg`): the national
 * clinical codes ("C34.900x001") are read as their ICD-10 part ("C34.900"), which the policy matches.
 */
export function diagnoses(list: unknown, at: string): string[] {
  const items = list === undefined || list === null ? [] : Array.isArray(list) ? list : [list];
  if (items.length > 50) refuse(at, 'has more than 50 diagnoses');
  return [
    ...new Set(
      items.map((item, i) => {
        const raw = isObject(item) ? (item.diag_code ?? item.dise_codg ?? item.dise_code) : item;
        const code = typeof raw === 'string' ? /^[A-Za-z][0-9]{2}(?:\.[0-9A-Za-z]{1,4})?/.exec(raw.trim())?.[0]?.toUpperCase() : undefined;
        if (code === undefined || !DIAGNOSIS_PATTERN.test(code))
          return refuse(`${at}[${i}].diag_code`, 'must be an ICD-10 code (like C34.900)');
        return code;
      }),
    ),
  ];
}

/** yyyyMMddHHmmssSSS (Beijing time, as the platform's timestamps are). */
export function platformTime(ms: number, withMs = true): string {
  const d = beijingClock(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const s = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  return withMs ? `${s}${p(d.getUTCMilliseconds(), 3)}` : s;
}

/** yyyy-MM-dd HH:mm:ss (Beijing time): the platform's 结算时间. */
export function platformDateTime(ms: number): string {
  const t = platformTime(ms, false);
  return `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)} ${t.slice(8, 10)}:${t.slice(10, 12)}:${t.slice(12, 14)}`;
}

export interface Answer {
  infcode: number;
  inf_refmsgid: string;
  refmsg_time: string;
  respond_time: string;
  err_msg: string | null;
  warn_msg: null;
  cainfo: null;
  signtype: null;
  output: Record<string, unknown>;
}
