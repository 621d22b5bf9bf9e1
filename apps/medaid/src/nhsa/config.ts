// What the national platform's messages do not say and medaid needs, from one JSON file given with
// `--nhsa FILE` (or $MEDAID_NHSA_FILE): which medaid hospital each 定点医药机构编号 (fixmedins_code)
// is, with its level and region; which scheme each 险种 (insutype) is; and per region, which
// national fund code (fund_pay_type) each policy fund is sent as, and which layer a payment the
// platform already made (hifp_pay, hifmi_pay …) is. Read once at start; a wrong file stops the start.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { HOSPITAL_LEVELS, HospitalLevel, isId } from '#domain';

/** The injection token of the configuration (null: the service takes no national-format messages). */
export const NHSA_CONFIG = Symbol('NhsaConfig');

export interface NhsaInstitution {
  fixmedinsCode: string;
  hospitalId: string;
  hospitalLevel: HospitalLevel;
  /** 就医地 (the hospital's region): the region of a discharge whose message names no 参保地. */
  region: string;
  name?: string;
}

export interface NhsaRegion {
  /** policy fund code → fund_pay_type sent out (the code itself when absent). */
  fundCodes: Record<string, string>;
  /** fund_pay_type → name sent out (fund_pay_type_name); the policy's names and the known national ones otherwise. */
  fundNames: Record<string, string>;
  /** A field of 2303/2304/2206/2207 input with an amount the platform already paid → the policy layer it is (externalPayments). */
  paidByPlatform: Record<string, string>;
}

export interface NhsaConfig {
  institutions: Map<string, NhsaInstitution>;
  /**
   * The deployment secret of the identity pseudonyms (1101 人员信息获取): an identity number is
   * kept only as HMAC-SHA256 under it; null when the file names none (1101 is then refused).
   */
  pseudonymKey: Buffer | null;
  /** A category → the 人员身份类别 (psn_idet_type) 1101 sends (the code itself when absent). */
  identityTypes: Record<string, string>;
  /** insutype → scheme (default: 390 and 391 → nrcms, 310 → ubmi). */
  insutypes: Record<string, string>;
  /** By 参保地 region code, and `default`. */
  regions: Record<string, NhsaRegion>;
}

const EMPTY_REGION: NhsaRegion = { fundCodes: {}, fundNames: {}, paidByPlatform: {} };
const DEFAULT_INSUTYPES: Record<string, string> = { '390': 'nrcms', '391': 'nrcms', '310': 'ubmi' };
const FIXMEDINS = /^[A-Z0-9]{1,20}$/;
const CODE = /^[0-9A-Za-z_-]{1,20}$/;
const FIELD = /^[a-z][a-z0-9_]{0,39}$/;

export function regionConfig(config: NhsaConfig, region: string): NhsaRegion {
  const own = config.regions[region];
  const fallback = config.regions.default ?? EMPTY_REGION;
  if (own === undefined) return fallback;
  return {
    fundCodes: { ...fallback.fundCodes, ...own.fundCodes },
    fundNames: { ...fallback.fundNames, ...own.fundNames },
    paidByPlatform: { ...fallback.paidByPlatform, ...own.paidByPlatform },
  };
}

export function loadNhsaConfig(path: string): NhsaConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`--nhsa ${path}: ${(e as Error).message}`);
  }
  return parseNhsaConfig(raw, `--nhsa ${path}`, dirname(resolve(path)));
}

export function parseNhsaConfig(raw: unknown, where = 'nhsa config', baseDir = '.'): NhsaConfig {
  const fail = (field: string, problem: string): never => {
    throw new Error(`${where}: ${field} ${problem}`);
  };
  const object = (v: unknown, field: string): Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(field, 'must be an object');
  const top = object(raw, '(file)');
  for (const k of Object.keys(top))
    if (!['institutions', 'insutypes', 'regions', 'pseudonymKeyFile', 'identityTypes'].includes(k))
      fail(k, 'is not a setting (institutions, insutypes, regions, pseudonymKeyFile, identityTypes)');
  if (!Array.isArray(top.institutions) || top.institutions.length === 0 || top.institutions.length > 10_000)
    fail('institutions', 'must be a list of 1 to 10,000 institutions');
  const institutions = new Map<string, NhsaInstitution>();
  (top.institutions as unknown[]).forEach((item, i) => {
    const f = `institutions[${i}]`;
    const o = object(item, f);
    for (const k of Object.keys(o))
      if (!['fixmedinsCode', 'hospitalId', 'hospitalLevel', 'region', 'name'].includes(k)) fail(`${f}.${k}`, 'is not a field');
    if (typeof o.fixmedinsCode !== 'string' || !FIXMEDINS.test(o.fixmedinsCode))
      fail(`${f}.fixmedinsCode`, 'must be 1–20 capital letters or digits');
    if (!isId(o.hospitalId)) fail(`${f}.hospitalId`, 'must be a medaid id');
    if (!HOSPITAL_LEVELS.includes(o.hospitalLevel as HospitalLevel))
      fail(`${f}.hospitalLevel`, `must be one of ${HOSPITAL_LEVELS.join(', ')}`);
    if (!isId(o.region)) fail(`${f}.region`, 'must be a region code');
    if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length > 100))
      fail(`${f}.name`, 'must be a text of at most 100 characters');
    if (institutions.has(o.fixmedinsCode as string)) fail(`${f}.fixmedinsCode`, 'is listed twice');
    institutions.set(o.fixmedinsCode as string, {
      fixmedinsCode: o.fixmedinsCode as string,
      hospitalId: o.hospitalId as string,
      hospitalLevel: o.hospitalLevel as HospitalLevel,
      region: o.region as string,
      ...(o.name === undefined ? {} : { name: o.name as string }),
    });
  });
  const codes = (v: unknown, field: string, key: RegExp, value: (x: unknown) => boolean): Record<string, string> => {
    if (v === undefined) return {};
    const o = object(v, field);
    for (const [k, x] of Object.entries(o)) {
      if (!key.test(k)) fail(`${field}.${k}`, 'is not a valid key');
      if (!value(x)) fail(`${field}.${k}`, 'is not a valid value');
    }
    return o as Record<string, string>;
  };
  const insutypes = { ...DEFAULT_INSUTYPES, ...codes(top.insutypes, 'insutypes', CODE, isId) };
  const regions: Record<string, NhsaRegion> = {};
  if (top.regions !== undefined)
    for (const [region, value] of Object.entries(object(top.regions, 'regions'))) {
      const f = `regions.${region}`;
      if (region !== 'default' && !isId(region)) fail(f, 'must be a region code or "default"');
      const o = object(value, f);
      for (const k of Object.keys(o))
        if (!['fundCodes', 'fundNames', 'paidByPlatform'].includes(k))
          fail(`${f}.${k}`, 'is not a setting (fundCodes, fundNames, paidByPlatform)');
      regions[region] = {
        fundCodes: codes(o.fundCodes, `${f}.fundCodes`, CODE, (x) => typeof x === 'string' && CODE.test(x)),
        fundNames: codes(o.fundNames, `${f}.fundNames`, CODE, (x) => typeof x === 'string' && x.length > 0 && x.length <= 100),
        paidByPlatform: codes(o.paidByPlatform, `${f}.paidByPlatform`, FIELD, isId),
      };
    }
  let pseudonymKey: Buffer | null = null;
  if (top.pseudonymKeyFile !== undefined) {
    if (typeof top.pseudonymKeyFile !== 'string') fail('pseudonymKeyFile', 'must be a file name');
    try {
      pseudonymKey = readFileSync(resolve(baseDir, top.pseudonymKeyFile as string));
    } catch (e) {
      fail('pseudonymKeyFile', `cannot be read: ${(e as Error).message}`);
    }
    if (pseudonymKey!.length < 32) fail('pseudonymKeyFile', 'must hold at least 32 bytes of secret (e.g. openssl rand 32)');
  }
  const identityTypes = codes(top.identityTypes, 'identityTypes', CODE, (x) => typeof x === 'string' && CODE.test(x));
  return { institutions, insutypes, regions, pseudonymKey, identityTypes };
}
