// What medaid sends back in the platform's terms: a settlement (SettlementResult, fen) as
// `setlinfo` (结算信息, 元) and `setldetail` (基金分项结算信息, one line per national fund code).
// Pure: the gateway passes the settlement, its time and the region's fund codes.
import { KNOWN_FUND_NAMES, SettlementResult } from '#domain';
import type { NhsaRegion } from './config.js';
import { platformDateTime } from './message.js';
import { ratioOfBp, yuanOfFen } from './money.js';

export interface SetlContext {
  /** The settlement's own id (2304, 2207, 2305); absent in a preview (2303, 2206). */
  setlId: string | null;
  settledAtMs: number;
  medType: string;
  insutype: string;
  region: NhsaRegion;
  /** policy fund code → name, from the policy in force. */
  policyFundNames: Record<string, string>;
  /** 清算经办机构: the region that clears with the hospital. */
  clearingRegion: string;
  /** −1 for a reversal (2305): every amount negative. */
  sign: 1 | -1;
  medinsSetlId: string;
}

export function setlinfoOf(r: SettlementResult, c: SetlContext): Record<string, unknown> {
  const y = (fen: number) => yuanOfFen(c.sign * fen);
  const basic = r.layers.find((l) => l.kind === 'insurance' && l.payFen > 0) ?? r.layers.find((l) => l.kind === 'insurance');
  // 统筹基金支付比例 (pool_prop_selfpay, despite the name): what the basic layer paid of its base above the deductible
  const pooled = basic === undefined ? 0 : basic.baseFen - basic.belowThresholdFen;
  const poolBp = basic === undefined || pooled <= 0 ? 0 : Math.round((basic.payFen * 10_000) / pooled);
  return {
    mdtrt_id: r.visitId,
    ...(c.setlId === null ? {} : { setl_id: c.setlId }),
    psn_no: r.personId,
    insutype: c.insutype,
    setl_time: platformDateTime(c.settledAtMs),
    med_type: c.medType,
    medfee_sumamt: y(r.totalFen),
    fulamt_ownpay_amt: y(r.fullOwnPayFen),
    overlmt_selfpay: y(r.overLimitFen),
    preselfpay_amt: y(r.preSelfPayFen),
    inscp_scp_amt: y(r.inScopeFen),
    act_pay_dedc: y(r.deductibleFen),
    hifp_pay: y(r.insurancePayFen),
    pool_prop_selfpay: ratioOfBp(poolBp),
    cvlserv_pay: 0,
    hifes_pay: 0,
    hifmi_pay: y(r.criticalIllnessPayFen),
    hifob_pay: 0,
    maf_pay: y(r.aidPayFen),
    oth_pay: 0,
    fund_pay_sumamt: y(r.fundPayFen),
    psn_part_amt: y(r.patientPayFen),
    acct_pay: 0,
    psn_cash_pay: y(r.patientPayFen),
    hosp_part_amt: 0,
    balc: 0,
    acct_mulaid_pay: 0,
    medins_setl_id: c.medinsSetlId,
    clr_optins: c.clearingRegion,
    clr_way: '1', // 按项目
    clr_type: c.medType.startsWith('2') ? '21' : '11', // 住院 / 门诊
  };
}

/**
 * One line per national fund code that paid (two layers sent under one code are one line, their
 * rules both in setl_proc_info), in the policy's layer order.
 */
export function setldetailOf(r: SettlementResult, c: SetlContext): Array<Record<string, unknown>> {
  const lines = new Map<string, { fund: string; base: number; pay: number; raw: number; proc: string[] }>();
  for (const l of r.layers) {
    if (l.payFen === 0) continue;
    const code = c.region.fundCodes[l.fund] ?? l.fund;
    const line = lines.get(code) ?? { fund: l.fund, base: 0, pay: 0, raw: 0, proc: [] };
    line.base += l.baseFen;
    line.pay += l.payFen;
    line.raw += l.rawFen;
    line.proc.push(
      `${l.layerId}:${l.ruleId ?? (l.external ? 'external' : '-')}` +
        `${l.belowThresholdFen > 0 ? ` 起付${yuanOfFen(l.belowThresholdFen)}` : ''}` +
        `${l.cappedBy === null ? '' : ` 封顶(${l.cappedBy})`}`,
    );
    lines.set(code, line);
  }
  return [...lines].map(([code, line]) => ({
    fund_pay_type: code,
    inscp_scp_amt: yuanOfFen(c.sign * line.base),
    crt_payb_lmt_amt: yuanOfFen(c.sign * line.raw), // 本次可支付限额: what the rule gave before any cap
    fund_payamt: yuanOfFen(c.sign * line.pay),
    fund_pay_type_name:
      c.region.fundNames[code] ?? c.policyFundNames[line.fund] ?? KNOWN_FUND_NAMES[code] ?? KNOWN_FUND_NAMES[line.fund] ?? code,
    setl_proc_info: line.proc.join('; '),
  }));
}
