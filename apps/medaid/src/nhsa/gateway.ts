// The national platform's transactions (国家医疗保障信息平台 接口), mapped onto medaid's own commands:
// 2401/2201 入院办理/门诊挂号 and 2402 出院办理 record what a later settlement needs and 2304 does
// not carry (person, 险种, 医疗类别, dates, diagnoses); 2303/2206 预结算 preview; 2304/2207 结算
// settle; 2305/2208 结算撤销 reverse; 2601 冲正 undoes a transaction named by its msgid. Every
// answer is the platform's envelope: `infcode` 0, or −1 with `err_msg` "CODE: field problem" —
// never an HTTP error once the caller is authorised.
//
// Idempotent by msgid: a settlement or a reversal runs as a keyed command (shared/command-answers.ts,
// key "nhsa:{fixmedins_code}:{msgid}" of the caller), so the same message again gets the first answer;
// a registration records a pointer in a stream of its own per message ("no stream yet") before its
// event, so a resent 2401 is answered from it. Identity fields (psn_name, certno, mdtrt_cert_no …)
// are read by nobody and recorded nowhere: only psn_no, which the settlement needs.
import { hash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { Discharge, Result, SettlementResult, VisitType } from '#domain';
import { RecordedEvent, WrongExpectedRevisionError, deterministicEventId } from '#event-store';
import { toDischarge } from '../commands/settlements/settlement.dto.js';
import { PreviewDischarge, ReverseSettlement, SettleDischarge } from '../commands/settlements/settlement.handlers.js';
import { GetPerson, GetVisit, STATE } from '../queries/query.handlers.js';
import { CERTNO, personOfIdentity } from './identity.js';
import type { DecisionState } from '../shared/decision-state.js';
import { answeredUnder, withApiKey } from '../shared/command-answers.js';
import { beijingDay } from '../shared/beijing-time.js';
import { logUnexpected } from '../shared/log.js';
import { RETRY_MESSAGE, retryableStoreCode } from '../shared/store-failures.js';
import { CommandMeta, EventWriter } from '../shared/writer.js';
import { Ledger } from '../ledger/ledger.js';
import { ReconciliationRecord, reconciliationRecords, totalsOf } from '../reconciliation/reconciliation.js';
import { setldetailOf, setlinfoOf } from './answers.js';
import { yuanOfFen } from './money.js';
import { NHSA_CONFIG, NhsaConfig, NhsaInstitution, regionConfig } from './config.js';
import {
  Answer,
  Envelope,
  NhsaRefusal,
  date,
  diagnoses,
  fen,
  idText,
  isObject,
  optionalDate,
  optionalText,
  parseEnvelope,
  platformTime,
  refuse,
  signedFen,
  text,
} from './message.js';

export const NHSA_TRANSACTIONS = [
  '1101',
  '2201',
  '2206',
  '2207',
  '2208',
  '2303',
  '2304',
  '2305',
  '2401',
  '2402',
  '2601',
  '3201',
  '3202',
] as const;

/** What a registration (2401 / 2201 / 2402) records of the visit: no name, no identity number. */
export interface NhsaVisitRegisteredData {
  hospitalId: string;
  mdtrtId: string;
  personId: string;
  insutype: string;
  medType: string;
  admissionDate: string;
  diagnosisCodes: string[];
  msgid: string;
  infno: '2401' | '2201';
}
export interface NhsaDischargeRegisteredData {
  hospitalId: string;
  mdtrtId: string;
  dischargeDate: string;
  diagnosisCodes: string[];
  msgid: string;
}
export interface NhsaRegistrationCancelledData {
  hospitalId: string;
  mdtrtId: string;
  /** The 2601's own msgid, and the one it undoes. */
  msgid: string;
  omsgid: string;
}
/** The pointer of one message (its own stream): which registration it made, and a digest of what it said. */
export interface NhsaMessageAnsweredData {
  hospitalId: string;
  msgid: string;
  infno: string;
  mdtrtId: string;
  fingerprint: string;
}

const INSUTYPE = /^[0-9]{3,6}$/;
const MED_TYPE = /^[0-9A-Za-z]{1,6}$/;
const MDTRT_ID = /^[A-Za-z0-9._-]{1,30}$/;
/** medaid's field → the national field it comes from (for refusals of the discharge as a whole). */
const NATIONAL_FIELD: Record<string, string> = {
  totalFen: 'medfee_sumamt',
  fullOwnPayFen: 'fulamt_ownpay_amt',
  overLimitFen: 'overlmt_selfpay',
  preSelfPayFen: 'preselfpay_amt',
  admissionDate: 'begntime',
  dischargeDate: 'endtime',
  personId: 'psn_no',
  visitId: 'mdtrt_id',
  diagnosisCodes: 'diseinfo',
};
/** Amounts a HIS may say the platform already paid; each must be mapped to a layer (paidByPlatform) to be taken. */
const PLATFORM_PAID_FIELDS = ['hifp_pay', 'hifmi_pay', 'hifob_pay', 'cvlserv_pay', 'hifes_pay'];

const visitStream = (hospitalId: string, mdtrtId: string) => `nhsa-visit-${hospitalId}/${mdtrtId}`;
const messageStream = (hospitalId: string, msgid: string) =>
  `nhsa-msg-${hash('sha256', `${hospitalId}\u0000${msgid}`, 'hex').slice(0, 40)}`;

/** 医疗类别 → visit type: 14 门诊慢特病; 1x 门诊; 2x 住院 (and the transaction's own kind when unsure). */
export function visitTypeOf(medType: string, inpatient: boolean): VisitType {
  if (medType === '14' || medType.startsWith('14')) return 'chronic_outpatient';
  if (medType.startsWith('2')) return 'inpatient';
  if (medType.startsWith('1')) return 'outpatient';
  return inpatient ? 'inpatient' : 'outpatient';
}

@Injectable()
export class NhsaGateway {
  private sequence = 0;

  constructor(
    private readonly bus: CommandBus,
    private readonly queries: QueryBus,
    private readonly writer: EventWriter,
    @Inject(STATE) private readonly state: DecisionState,
    @Inject(NHSA_CONFIG) private readonly config: NhsaConfig | null,
    private readonly ledger: Ledger,
  ) {}

  /** One exchange: the request's envelope in, the answer's envelope out; nothing thrown to the caller. */
  async exchange(infno: string, body: unknown, meta: CommandMeta): Promise<Answer> {
    const receivedMs = Date.now();
    let region = '000000';
    try {
      const config =
        this.config ?? refuse('(service)', 'does not take national-format messages: start it with --nhsa FILE', 'NOT_CONFIGURED');
      const env = parseEnvelope(infno, body);
      region = env.mdtrtareaAdmvs ?? env.insuplcAdmdvs ?? region;
      const institution =
        config.institutions.get(env.fixmedinsCode) ?? refuse('fixmedins_code', 'is not an institution of this service (--nhsa file)');
      if (meta.actor.kind === 'hospital' && meta.actor.id !== institution.hospitalId)
        refuse('fixmedins_code', `is not the calling hospital's (${meta.actor.id})`, 'FORBIDDEN');
      const output = await this.transaction(env, institution, config, meta, receivedMs);
      return this.answer(region, receivedMs, 0, null, output);
    } catch (error) {
      if (error instanceof NhsaRefusal) return this.answer(region, receivedMs, -1, `${error.code}: ${error.message}`, {});
      const code = retryableStoreCode(error);
      if (code !== undefined) return this.answer(region, receivedMs, -1, `${code}: ${RETRY_MESSAGE}`, {});
      logUnexpected('nhsa exchange failed', error, { infno });
      return this.answer(
        region,
        receivedMs,
        -1,
        'INTERNAL: the service could not answer; retry (a retry with the same msgid is never recorded twice)',
        {},
      );
    }
  }

  private answer(region: string, receivedMs: number, infcode: number, errMsg: string | null, output: Record<string, unknown>): Answer {
    const now = Date.now();
    this.sequence = (this.sequence + 1) % 10_000_000_000;
    return {
      infcode,
      inf_refmsgid: `${region}${platformTime(now, false)}${String(this.sequence).padStart(10, '0')}`,
      refmsg_time: platformTime(receivedMs),
      respond_time: platformTime(now),
      err_msg: errMsg,
      warn_msg: null,
      cainfo: null,
      signtype: null,
      output,
    };
  }

  private transaction(env: Envelope, inst: NhsaInstitution, config: NhsaConfig, meta: CommandMeta, receivedMs: number) {
    switch (env.infno) {
      case '1101':
        return this.identify(env, inst, config);
      case '2401':
      case '2201':
        return this.admit(env, inst, config, meta);
      case '2402':
        return this.discharge(env, inst, meta);
      case '2303':
      case '2304':
      case '2206':
      case '2207':
        return this.settle(env, inst, config, meta, receivedMs);
      case '2305':
      case '2208':
        return this.reverse(env, inst, config, meta);
      case '2601':
        return this.undo(env, inst, meta);
      case '3201':
      case '3202':
        return this.reconcile(env, inst);
      default:
        return refuse('infno', `is not a transaction medaid takes (${NHSA_TRANSACTIONS.join(', ')})`);
    }
  }

  private keyed(meta: CommandMeta, env: Envelope): CommandMeta {
    const r = withApiKey(meta, `nhsa:${env.fixmedinsCode}:${env.msgid}`, 'msgid');
    return r.ok ? r.value : refuse('msgid', 'must be printable ASCII');
  }

  // ---- 1101 人员信息获取 ------------------------------------------------------------------------------

  /**
   * The person a HIS names by identity number (certno, or mdtrt_cert_no when it is a 身份证, type
   * 02), found by its keyed pseudonym (identity.ts): psn_no, 险种, and the 人员身份 (categories)
   * held today. Nothing that was sent is echoed: medaid holds no name and no number.
   */
  private async identify(env: Envelope, inst: NhsaInstitution, config: NhsaConfig) {
    const data = env.input.data;
    if (!isObject(data)) return refuse('input.data', 'must be an object');
    const at = (f: string) => `input.data.${f}`;
    const key =
      config.pseudonymKey ??
      refuse('(service)', 'looks no one up by identity number: the --nhsa file names no pseudonymKeyFile', 'NOT_CONFIGURED');
    const byCert = data.certno !== undefined && data.certno !== '';
    const field = byCert ? 'certno' : 'mdtrt_cert_no';
    if (!byCert && String(data.mdtrt_cert_type ?? '02') !== '02')
      refuse(at('mdtrt_cert_type'), 'is not 02 (居民身份证): send certno, or the psn_no itself in later transactions');
    const certno = text(data, field, CERTNO, 'must be an identity number (6–30 letters or digits)', at(field));
    const personId = (await personOfIdentity(this.writer, key, certno)) ?? refuse(at(field), 'names no person recorded here', 'NOT_FOUND');
    const person = await this.queries.execute(new GetPerson(personId));
    const today = beijingDay(Date.now());
    const idetinfo = Object.entries(person?.state.categories ?? {}).flatMap(([category, intervals]) =>
      intervals
        .filter((i) => i.from <= today && (i.to === null || i.to >= today))
        .map((i) => ({
          psn_idet_type: config.identityTypes[category] ?? category,
          psn_type_lv: null,
          memo: category,
          begntime: `${i.from} 00:00:00`,
          endtime: i.to === null ? null : `${i.to} 23:59:59`,
        })),
    );
    return {
      baseinfo: { psn_no: personId, psn_cert_type: byCert ? String(data.psn_cert_type ?? '01') : '01' },
      insuinfo: [{ insutype: '390', psn_type: '1', psn_insu_stas: '1', insuplc_admdvs: env.insuplcAdmdvs ?? inst.region, balc: 0 }],
      idetinfo,
    };
  }

  // ---- registrations ----------------------------------------------------------------------------

  private async admit(env: Envelope, inst: NhsaInstitution, config: NhsaConfig, meta: CommandMeta) {
    const outpatient = env.infno === '2201';
    const block = outpatient ? 'data' : 'mdtrtinfo';
    const info = env.input[block];
    if (!isObject(info)) return refuse(`input.${block}`, 'must be an object');
    const at = (f: string) => `input.${block}.${f}`;
    const personId = idText(info, 'psn_no', at('psn_no'));
    const insutype = optionalText(info, 'insutype', INSUTYPE, 'must be a 险种 code like 390', at('insutype')) ?? '390';
    if (config.insutypes[insutype] === undefined) refuse(at('insutype'), 'is not a configured 险种 (insutypes)');
    const noField = outpatient ? 'ipt_otp_no' : 'ipt_no';
    const mdtrtId =
      optionalText(info, noField, MDTRT_ID, 'must be the hospital number (1–30 letters, digits, ._-)', at(noField)) ??
      optionalText(info, 'ipt_otp_no', MDTRT_ID, 'must be the hospital number (1–30 letters, digits, ._-)', at('ipt_otp_no')) ??
      refuse(at(noField), 'is required: the 住院号/门诊号 becomes the visit (mdtrt_id)');
    const data: NhsaVisitRegisteredData = {
      hospitalId: inst.hospitalId,
      mdtrtId,
      personId,
      insutype,
      medType: optionalText(info, 'med_type', MED_TYPE, 'must be a 医疗类别 code', at('med_type')) ?? (outpatient ? '11' : '21'),
      admissionDate: date(info, 'begntime', at('begntime')),
      diagnosisCodes: diagnoses(
        env.input.diseinfo ?? info.dise_codg,
        env.input.diseinfo === undefined ? at('dise_codg') : 'input.diseinfo',
      ),
      msgid: env.msgid,
      infno: outpatient ? '2201' : '2401',
    };
    await this.register(env, inst, mdtrtId, { type: 'NhsaVisitRegistered', data }, meta);
    const out = { mdtrt_id: mdtrtId, psn_no: personId, ipt_otp_no: mdtrtId };
    return outpatient ? { data: out } : { result: out };
  }

  private async discharge(env: Envelope, inst: NhsaInstitution, meta: CommandMeta) {
    const info = env.input.dscginfo;
    if (!isObject(info)) return refuse('input.dscginfo', 'must be an object');
    const at = (f: string) => `input.dscginfo.${f}`;
    const mdtrtId = idText(info, 'mdtrt_id', at('mdtrt_id'));
    const personId = idText(info, 'psn_no', at('psn_no'));
    const visit = await this.registration(inst.hospitalId, mdtrtId);
    if (visit.admission === undefined) refuse(at('mdtrt_id'), 'has no admission (2401) of this institution');
    if (visit.admission!.personId !== personId) refuse(at('psn_no'), 'is not the person admitted under this mdtrt_id');
    const dischargeDate = date(info, 'endtime', at('endtime'));
    if (dischargeDate < visit.admission!.admissionDate) refuse(at('endtime'), 'is before the admission (begntime of 2401)');
    const data: NhsaDischargeRegisteredData = {
      hospitalId: inst.hospitalId,
      mdtrtId,
      dischargeDate,
      diagnosisCodes: diagnoses(
        env.input.diseinfo ?? info.dise_codg,
        env.input.diseinfo === undefined ? at('dise_codg') : 'input.diseinfo',
      ),
      msgid: env.msgid,
    };
    await this.register(env, inst, mdtrtId, { type: 'NhsaDischargeRegistered', data }, meta);
    return {};
  }

  /**
   * Records a registration once per msgid: the message's pointer first ("no stream yet": one
   * instance wins), then the event in the visit's stream, unless it is there already (a retry
   * after a crash between the two finds the pointer and completes the second).
   */
  private async register(
    env: Envelope,
    inst: NhsaInstitution,
    mdtrtId: string,
    event: { type: string; data: { msgid: string } },
    meta: CommandMeta,
  ) {
    const fingerprint = hash('sha256', JSON.stringify([env.infno, event.data]), 'hex');
    const stream = messageStream(inst.hospitalId, env.msgid);
    let [pointer] = (await this.writer.store.readStream(stream, { maxCount: 1 })) as Array<RecordedEvent<NhsaMessageAnsweredData>>;
    if (pointer === undefined) {
      // the event id names what the message said: the same message again is the same event (written
      // once), another message with this msgid finds the stream taken and is refused below
      const data: NhsaMessageAnsweredData = { hospitalId: inst.hospitalId, msgid: env.msgid, infno: env.infno, mdtrtId, fingerprint };
      try {
        await this.writer.append(
          stream,
          -1,
          [{ id: deterministicEventId('NhsaMessageAnswered', stream, fingerprint), type: 'NhsaMessageAnswered', data }],
          meta,
        );
      } catch (error) {
        if (!(error instanceof WrongExpectedRevisionError)) throw error;
        [pointer] = (await this.writer.store.readStream(stream, { maxCount: 1 })) as Array<RecordedEvent<NhsaMessageAnsweredData>>;
      }
    }
    if (pointer !== undefined && pointer.data.fingerprint !== fingerprint)
      refuse('msgid', `was used before for another ${pointer.data.infno} message`, 'IDEMPOTENCY_KEY_REUSED');
    for (let attempt = 1; ; attempt++) {
      const events = await this.writer.store.readStream(visitStream(inst.hospitalId, mdtrtId));
      if (events.some((e) => (e.data as { msgid?: string }).msgid === env.msgid)) return;
      const revision = events.length === 0 ? -1 : events[events.length - 1]!.revision;
      try {
        await this.writer.append(
          visitStream(inst.hospitalId, mdtrtId),
          revision,
          [{ id: deterministicEventId(event.type, inst.hospitalId, env.msgid), ...event }],
          meta,
        );
        return;
      } catch (error) {
        if (!(error instanceof WrongExpectedRevisionError) || attempt >= 3) throw error;
      }
    }
  }

  /** What the visit's registrations say now (a 2601 takes one back). */
  private async registration(hospitalId: string, mdtrtId: string) {
    const events = await this.writer.store.readStream(visitStream(hospitalId, mdtrtId));
    const cancelled = new Set(
      events.filter((e) => e.type === 'NhsaRegistrationCancelled').map((e) => (e.data as NhsaRegistrationCancelledData).omsgid),
    );
    const live = events.filter((e) => !cancelled.has((e.data as { msgid: string }).msgid));
    const last = <T>(type: string) => live.filter((e) => e.type === type).at(-1)?.data as T | undefined;
    return {
      admission: last<NhsaVisitRegisteredData>('NhsaVisitRegistered'),
      discharge: last<NhsaDischargeRegisteredData>('NhsaDischargeRegistered'),
      byMsgid: new Map(live.map((e) => [(e.data as { msgid: string }).msgid, e.type])),
    };
  }

  // ---- settlement -------------------------------------------------------------------------------

  private async settle(env: Envelope, inst: NhsaInstitution, config: NhsaConfig, meta: CommandMeta, receivedMs: number) {
    const inpatient = env.infno === '2303' || env.infno === '2304';
    const data = env.input.data;
    if (!isObject(data)) return refuse('input.data', 'must be an object');
    const at = (f: string) => `input.data.${f}`;
    const mdtrtId = idText(data, 'mdtrt_id', at('mdtrt_id'));
    const personId = idText(data, 'psn_no', at('psn_no'));
    if (String(data.mid_setl_flag ?? '0') === '1')
      refuse(at('mid_setl_flag'), 'asks for a mid-stay settlement (中途结算), which medaid does not do: settle at discharge');
    const visit = await this.registration(inst.hospitalId, mdtrtId);
    const admitted = visit.admission;
    if (admitted !== undefined && admitted.personId !== personId) refuse(at('psn_no'), 'is not the person registered under this mdtrt_id');
    const insutype =
      optionalText(data, 'insutype', INSUTYPE, 'must be a 险种 code like 390', at('insutype')) ?? admitted?.insutype ?? '390';
    const scheme = config.insutypes[insutype] ?? refuse(at('insutype'), 'is not a configured 险种 (insutypes)');
    const medType =
      optionalText(data, 'med_type', MED_TYPE, 'must be a 医疗类别 code', at('med_type')) ?? admitted?.medType ?? (inpatient ? '21' : '11');
    const admissionDate =
      optionalDate(data, 'begntime', at('begntime')) ??
      admitted?.admissionDate ??
      refuse(at('begntime'), `is needed: no ${inpatient ? '2401' : '2201'} registration of this mdtrt_id gives the admission date`);
    const dischargeDate =
      optionalDate(data, 'endtime', at('endtime')) ??
      visit.discharge?.dischargeDate ??
      (inpatient ? refuse(at('endtime'), 'is needed: no 2402 discharge of this mdtrt_id gives the discharge date') : admissionDate);
    const [sentDiagnoses, diagnosesAt] =
      env.input.diseinfo !== undefined
        ? [env.input.diseinfo, 'input.diseinfo']
        : data.diseinfo !== undefined
          ? [data.diseinfo, at('diseinfo')]
          : [data.dise_codg, at('dise_codg')];
    const diagnosisCodes =
      sentDiagnoses !== undefined
        ? diagnoses(sentDiagnoses, diagnosesAt)
        : (visit.discharge?.diagnosisCodes ?? admitted?.diagnosisCodes ?? []);
    const totalFen = fen(data, 'medfee_sumamt', at('medfee_sumamt'));
    const fullOwnPayFen = fen(data, 'fulamt_ownpay_amt', at('fulamt_ownpay_amt'), 0);
    const overLimitFen = fen(data, 'overlmt_selfpay', at('overlmt_selfpay'), 0);
    const preSelfPayFen = fen(data, 'preselfpay_amt', at('preselfpay_amt'), 0);
    if (data.inscp_scp_amt !== undefined && data.inscp_scp_amt !== null && data.inscp_scp_amt !== '') {
      const inScope = fen(data, 'inscp_scp_amt', at('inscp_scp_amt'));
      const computed = totalFen - fullOwnPayFen - overLimitFen - preSelfPayFen;
      if (inScope !== computed)
        refuse(
          at('inscp_scp_amt'),
          `is ${inScope / 100} 元, but medfee_sumamt − fulamt_ownpay_amt − overlmt_selfpay − preselfpay_amt is ${computed / 100} 元`,
        );
    }
    const region = env.insuplcAdmdvs ?? inst.region;
    const rc = regionConfig(config, region);
    const externalPayments: Record<string, number> = {};
    for (const field of new Set([...PLATFORM_PAID_FIELDS, ...Object.keys(rc.paidByPlatform)])) {
      if (data[field] === undefined || data[field] === null || data[field] === '') continue;
      const amount = fen(data, field, at(field));
      const layerId = rc.paidByPlatform[field];
      if (layerId === undefined) {
        if (amount > 0)
          refuse(at(field), `is paid by the platform, but no layer of region ${region} is configured for it (paidByPlatform)`);
        continue;
      }
      if (amount > 0) externalPayments[layerId] = (externalPayments[layerId] ?? 0) + amount;
    }
    const discharge = this.dischargeOf({
      hospitalId: inst.hospitalId,
      visitId: mdtrtId,
      personId,
      region,
      scheme,
      visitType: visitTypeOf(medType, inpatient),
      hospitalLevel: inst.hospitalLevel,
      admissionDate,
      dischargeDate,
      diagnosisCodes,
      totalFen,
      fullOwnPayFen,
      overLimitFen,
      preSelfPayFen,
      externalPayments,
    });
    const policyFundNames = this.fundNames(discharge);
    const context = {
      medType,
      insutype,
      region: rc,
      policyFundNames,
      clearingRegion: region,
      sign: 1 as const,
      medinsSetlId: env.msgid,
    };
    if (env.infno === '2303' || env.infno === '2206') {
      const previewed = this.value(await this.bus.execute(new PreviewDischarge(discharge)));
      const c = { ...context, setlId: null, settledAtMs: receivedMs };
      return { setlinfo: setlinfoOf(previewed, c), setldetail: setldetailOf(previewed, c) };
    }
    const { result } = this.value(await this.bus.execute(new SettleDischarge(discharge, this.keyed(meta, env))));
    const settledAtMs = (await this.entry(inst.hospitalId, mdtrtId, result.settlementId))?.settledAtMs ?? receivedMs;
    const c = { ...context, setlId: result.settlementId, settledAtMs };
    return { setlinfo: setlinfoOf(result, c), setldetail: setldetailOf(result, c) };
  }

  private dischargeOf(fields: Discharge): Discharge {
    const d = toDischarge(fields);
    if (d.ok) return d.value;
    const first = d.error.details[0];
    const field = first?.field.split('.')[0] ?? '';
    return refuse(`input.data.${NATIONAL_FIELD[field] ?? field}`, first?.problem ?? d.error.message);
  }

  private fundNames(d: Discharge): Record<string, string> {
    const names: Record<string, string> = {};
    for (const { policy } of this.state.registry.byKey.values())
      if (policy.region === d.region) for (const f of policy.funds ?? []) if (f.name !== undefined) names[f.code] = f.name;
    return names;
  }

  /** A settlement command's value, or its refusal in the platform's terms (the field renamed back). */
  private value<T>(r: Result<T>): T {
    if (r.ok) return r.value;
    const field = r.error.details[0]?.field;
    const national = field === undefined ? null : field === 'idempotencyKey' ? 'msgid' : `input.data.${NATIONAL_FIELD[field] ?? field}`;
    throw new NhsaRefusal(r.error.code, national, national === null ? r.error.message : `${national}: ${r.error.message}`);
  }

  private async entry(hospitalId: string, visitId: string, settlementId: string) {
    const view = await this.queries.execute(new GetVisit(hospitalId, visitId));
    return view?.history.find((h) => h.settlementId === settlementId);
  }

  // ---- reversal and 冲正 ---------------------------------------------------------------------------

  private async reverse(env: Envelope, inst: NhsaInstitution, config: NhsaConfig, meta: CommandMeta) {
    const data = env.input.data;
    if (!isObject(data)) return refuse('input.data', 'must be an object');
    const at = (f: string) => `input.data.${f}`;
    const mdtrtId = idText(data, 'mdtrt_id', at('mdtrt_id'));
    const setlId = text(data, 'setl_id', /^[A-Za-z0-9._:/-]{1,200}$/, 'must be the setl_id 2304 answered', at('setl_id'));
    const personId = idText(data, 'psn_no', at('psn_no'));
    const view = await this.queries.execute(new GetVisit(inst.hospitalId, mdtrtId));
    const entry = view?.history.find((h) => h.settlementId === setlId);
    if (entry === undefined) return refuse(at('setl_id'), `is not a settlement of mdtrt_id ${mdtrtId}`, 'SETTLEMENT_NOT_FOUND');
    if (entry.personId !== personId) refuse(at('psn_no'), 'is not the person of this settlement');
    if (entry.status === 'settled' && view!.current.settlementId !== setlId)
      refuse(at('setl_id'), 'is not the active settlement of the visit');
    const reversed = this.value(
      await this.bus.execute(
        new ReverseSettlement(inst.hospitalId, mdtrtId, `${env.infno} 结算撤销 (msgid ${env.msgid})`, this.keyed(meta, env)),
      ),
    );
    const after = await this.entry(inst.hospitalId, mdtrtId, setlId);
    const registered = await this.registration(inst.hospitalId, mdtrtId);
    const c = {
      setlId,
      settledAtMs: after?.reversal?.reversedAtMs ?? Date.now(),
      medType: registered.admission?.medType ?? (env.infno === '2305' ? '21' : '11'),
      insutype: registered.admission?.insutype ?? '390',
      region: regionConfig(config, reversed.region),
      policyFundNames: {},
      clearingRegion: reversed.region,
      sign: -1 as const,
      medinsSetlId: env.msgid,
    };
    return { setlinfo: setlinfoOf(reversed, c), setldetail: setldetailOf(reversed, c) };
  }

  private async undo(env: Envelope, inst: NhsaInstitution, meta: CommandMeta) {
    const data = env.input.data;
    if (!isObject(data)) return refuse('input.data', 'must be an object');
    const at = (f: string) => `input.data.${f}`;
    const omsgid = text(data, 'omsgid', /^[0-9A-Za-z]{1,40}$/, 'must be the msgid of the transaction to undo', at('omsgid'));
    const oinfno = text(data, 'oinfno', /^[0-9]{4}$/, 'must be the infno of the transaction to undo', at('oinfno'));
    if (oinfno === '2304' || oinfno === '2207') {
      const recorded = await answeredUnder(this.writer, meta, `nhsa:${env.fixmedinsCode}:${omsgid}`);
      if (recorded === undefined) return refuse(at('omsgid'), `names no ${oinfno} of this institution`, 'SETTLEMENT_NOT_FOUND');
      if (!recorded.outcome.ok) return {}; // it recorded nothing: nothing to undo
      const o = recorded.outcome;
      const view = await this.queries.execute(new GetVisit(o.hospitalId, o.visitId));
      const entry = view?.history.find((h) => h.settlementId === o.settlementId);
      if (entry === undefined || entry.status === 'reversed') return {}; // undone already
      if (view!.current.settlementId !== o.settlementId)
        refuse(at('omsgid'), 'names a settlement that is no longer the visit’s active one');
      this.value(
        await this.bus.execute(
          new ReverseSettlement(o.hospitalId, o.visitId, `2601 冲正 of ${oinfno} msgid ${omsgid}`, this.keyed(meta, env)),
        ),
      );
      return {};
    }
    if (oinfno === '2401' || oinfno === '2402' || oinfno === '2201') {
      const [pointer] = (await this.writer.store.readStream(messageStream(inst.hospitalId, omsgid), { maxCount: 1 })) as Array<
        RecordedEvent<NhsaMessageAnsweredData>
      >;
      if (pointer === undefined || pointer.data.infno !== oinfno) return refuse(at('omsgid'), `names no ${oinfno} of this institution`);
      const { mdtrtId } = pointer.data;
      const view = await this.queries.execute(new GetVisit(inst.hospitalId, mdtrtId));
      if (view !== null && view.current.status === 'settled')
        refuse(at('omsgid'), `names a registration of a settled visit: undo the settlement first (2305)`, 'VISIT_CONFLICT');
      const registered = await this.registration(inst.hospitalId, mdtrtId);
      if (!registered.byMsgid.has(omsgid)) return {}; // undone already
      const cancelled: NhsaRegistrationCancelledData = { hospitalId: inst.hospitalId, mdtrtId, msgid: env.msgid, omsgid };
      await this.register(env, inst, mdtrtId, { type: 'NhsaRegistrationCancelled', data: cancelled }, meta);
      return {};
    }
    return refuse(at('oinfno'), 'cannot be undone by 2601 (2304, 2207, 2401, 2402, 2201; a reversal is undone by settling again)');
  }

  // ---- 对账 ---------------------------------------------------------------------------------------

  /**
   * 3201 (总额对账): the hospital's totals for a period against medaid's — 结算笔数 (settlements and
   * reversals, each a record), medfee_sumamt, fund_pay_sumamt (net; reversals negative). 3202 (明细对账):
   * the hospital's records, given inline as `details` (the platform takes a file; medaid takes the
   * lines in the message), against medaid's, line by line. `stmt_rslt` "0" when they agree, "1" when not.
   */
  private async reconcile(env: Envelope, inst: NhsaInstitution) {
    const data = env.input.data;
    if (!isObject(data)) return refuse('input.data', 'must be an object');
    const at = (f: string) => `input.data.${f}`;
    const from = date(data, 'stmt_begndate', at('stmt_begndate'));
    const to = date(data, 'stmt_enddate', at('stmt_enddate'));
    if (to < from || Date.parse(to) - Date.parse(from) >= 366 * 86_400_000)
      refuse(at('stmt_enddate'), 'must be on or after stmt_begndate, and at most 365 days after it');
    await this.ledger.writer.catchUp(5_000);
    const ours =
      reconciliationRecords(this.ledger.journal, inst.hospitalId, from, to) ??
      refuse(at('stmt_enddate'), 'ends a period too long for one answer');
    const totals = totalsOf(inst.hospitalId, from, to, ours, this.ledger.journal.projections.checkpoint());
    const differences: string[] = [];
    const compare = (field: string, theirs: number, mine: number, show: (v: number) => string) => {
      if (theirs !== mine) differences.push(`${field}: the hospital has ${show(theirs)}, medaid ${show(mine)}`);
    };
    const count = (field: string) => {
      const v = data[field];
      const n = typeof v === 'string' && /^[0-9]{1,9}$/.test(v.trim()) ? Number(v) : v;
      return Number.isSafeInteger(n) && (n as number) >= 0 ? (n as number) : refuse(at(field), 'must be a count (a non-negative integer)');
    };
    const yuan = (v: number) => `${yuanOfFen(v)} 元`;
    if (env.infno === '3201') {
      compare('fixmedins_setl_cnt', count('fixmedins_setl_cnt'), totals.records, String);
      compare('medfee_sumamt', fen(data, 'medfee_sumamt', at('medfee_sumamt')), totals.medfeeSumFen, yuan);
      compare('fund_pay_sumamt', fen(data, 'fund_pay_sumamt', at('fund_pay_sumamt')), totals.fundPaySumFen, yuan);
      compare('acct_pay', fen(data, 'acct_pay', at('acct_pay'), 0), 0, yuan);
    } else {
      const lines = Array.isArray(data.details) ? data.details : refuse(at('details'), 'must be the list of the hospital’s records');
      if (lines.length > 200_000) refuse(at('details'), 'has more than 200,000 records');
      const mine = new Map<string, ReconciliationRecord>(ours.map((r) => [`${r.settlementId}\u0000${r.kind}`, r]));
      const seen = new Set<string>();
      lines.forEach((line, i) => {
        const f = (name: string) => `${at('details')}[${i}].${name}`;
        if (!isObject(line)) return refuse(f('(line)'), 'must be an object');
        const setlId = text(line, 'setl_id', /^[A-Za-z0-9._:/-]{1,200}$/, 'must be a setl_id', f('setl_id'));
        const kind = String(line.refd_setl_flag ?? '0') === '1' ? 'reversal' : 'settlement';
        const key = `${setlId}\u0000${kind}`;
        if (seen.has(key)) refuse(f('setl_id'), 'is listed twice');
        seen.add(key);
        const r = mine.get(key);
        if (r === undefined) return differences.push(`${setlId} (${kind}): the hospital has it, medaid has no such record in the period`);
        // amounts as the hospital books them: a reversal's positive or negative, compared by size
        const sum = Math.abs(signedFen(line, 'medfee_sumamt', f('medfee_sumamt')));
        const fund = Math.abs(signedFen(line, 'fund_pay_sumamt', f('fund_pay_sumamt')));
        if (sum !== Math.abs(r.totalFen))
          differences.push(`${setlId} (${kind}) medfee_sumamt: the hospital has ${yuan(sum)}, medaid ${yuan(Math.abs(r.totalFen))}`);
        if (fund !== Math.abs(r.fundPayFen))
          differences.push(`${setlId} (${kind}) fund_pay_sumamt: the hospital has ${yuan(fund)}, medaid ${yuan(Math.abs(r.fundPayFen))}`);
      });
      for (const [key, r] of mine)
        if (!seen.has(key)) differences.push(`${r.settlementId} (${r.kind}): medaid has it, the hospital does not`);
    }
    return {
      stmtinfo: {
        setl_optins: typeof data.setl_optins === 'string' ? data.setl_optins : inst.region,
        stmt_rslt: differences.length === 0 ? '0' : '1',
        stmt_rslt_dscr: differences.length === 0 ? '对账一致 (in agreement)' : differences.slice(0, 100).join('; '),
        medfee_sumamt: yuanOfFen(totals.medfeeSumFen),
        fund_pay_sumamt: yuanOfFen(totals.fundPaySumFen),
        acct_pay: 0,
        fixmedins_setl_cnt: totals.records,
        differences: differences.length,
      },
    };
  }
}
