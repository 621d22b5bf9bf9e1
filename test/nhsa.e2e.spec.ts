// The national platform's message format (POST /nhsa/{infno}) on the real service, as a HIS
// written against the platform calls it: golden exchanges for every transaction, built from the
// interface's field tables with real-looking values; a 2401 → 2402 → 2303 → 2304 → 2305 → 2304
// stay that agrees to the 分 with the same bill settled through /v1/settlements; idempotency by
// msgid; 冲正; refusals as infcode −1 that record nothing; and a scan of every file the service
// wrote for the identity values that were sent (name, 证件号, 就诊凭证号): none may be there.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { seeded } from './support/random.js';
import { BIN, Service, TEST_CALLERS, discharge, http, removeDir, startService, tempDir, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;
const COUNTY = 'H36082700001';
const CITY = 'H36080200007';
const IDENTITY = { psn_name: '王小明', certno: '360827195803151234', mdtrt_cert_no: '360827195803151234X9' };
let service: Service;
let dir: string;
const auth = writeAuthFile([]);
const hospital = (id: string) => ({ authorization: `Bearer ${TEST_CALLERS.hospitals[id]}` });

let sequence = 0;
/** The platform envelope of one transaction, as a HIS sends it (a fresh msgid unless given). */
function envelope(infno: string, input: Obj, options: { msgid?: string; fixmedins?: string } = {}): Obj {
  const fixmedins = options.fixmedins ?? COUNTY;
  return {
    infno,
    msgid: options.msgid ?? `${fixmedins}20120310${String(100000 + ++sequence)}0001`.slice(0, 30),
    mdtrtarea_admvs: '360827',
    insuplc_admdvs: '360827',
    recer_sys_code: 'MDTRTINFO',
    dev_no: '',
    dev_safe_info: '',
    cainfo: '',
    signtype: '',
    infver: 'V1.0',
    opter_type: '1',
    opter: 'HIS001',
    opter_name: '收费员甲',
    inf_time: '2012-03-10 10:20:30',
    fixmedins_code: fixmedins,
    fixmedins_name: '某某县人民医院',
    sign_no: '',
    input,
  };
}
async function call(infno: string, input: Obj, options: { msgid?: string; fixmedins?: string; as?: string } = {}) {
  const body = envelope(infno, input, options);
  const r = await http(service.url, 'POST', `/nhsa/${infno}`, body, hospital(options.as ?? 'h-county'));
  expect(r.status).toBe(200);
  return { ...r.body, msgid: body.msgid } as Obj;
}
const position = async () => (await http(service.url, 'GET', '/ready')).body.position as number;

const admission = (psnNo: string, iptNo: string, begntime = '2012-03-01 08:30:00') => ({
  mdtrtinfo: {
    psn_no: psnNo,
    insutype: '390',
    coner_name: '王大明',
    tel: '13800000000',
    begntime,
    mdtrt_cert_type: '02',
    mdtrt_cert_no: IDENTITY.mdtrt_cert_no,
    med_type: '21',
    ipt_no: iptNo,
    medrcdno: 'BA001',
    atddr_no: 'D001',
    chfpdr_name: '李医生',
    adm_diag_dscr: '肺恶性肿瘤',
    adm_dept_codg: '0301',
    adm_dept_name: '肿瘤科',
    adm_bed: '12',
    dscg_maindiag_code: 'C34.900x001',
    dscg_maindiag_name: '肺恶性肿瘤',
    psn_name: IDENTITY.psn_name,
    certno: IDENTITY.certno,
  },
  diseinfo: [{ psn_no: psnNo, diag_type: '1', maindiag_flag: '1', diag_srt_no: '1', diag_code: 'C34.900x001', diag_name: '肺恶性肿瘤' }],
});
const dischargeOf = (psnNo: string, mdtrtId: string, endtime = '2012-03-10 09:00:00') => ({
  dscginfo: {
    mdtrt_id: mdtrtId,
    psn_no: psnNo,
    insutype: '390',
    endtime,
    dise_codg: 'C34.900',
    dscg_way: '1',
    psn_name: IDENTITY.psn_name,
  },
  diseinfo: [{ diag_code: 'C34.900x001', maindiag_flag: '1' }],
});
const bill = (psnNo: string, mdtrtId: string, extra: Obj = {}) => ({
  data: {
    psn_no: psnNo,
    mdtrt_cert_type: '02',
    mdtrt_cert_no: IDENTITY.mdtrt_cert_no,
    medfee_sumamt: '52000.00', // a string, as many HIS send it
    psn_setlway: '01',
    mdtrt_id: mdtrtId,
    insutype: '390',
    acct_used_flag: '0',
    invono: 'FP2012031000001',
    mid_setl_flag: '0',
    fulamt_ownpay_amt: 2000, // a number
    overlmt_selfpay: '0.00',
    preselfpay_amt: 0,
    inscp_scp_amt: '50000.0',
    exp_content: '',
    ...extra,
  },
});

beforeAll(async () => {
  dir = tempDir('medaid-nhsa-');
  const config = join(dir, 'nhsa.json');
  writeFileSync(
    config,
    JSON.stringify({
      institutions: [
        { fixmedinsCode: COUNTY, hospitalId: 'h-county', hospitalLevel: 'county', region: '360827', name: '某某县人民医院' },
        { fixmedinsCode: CITY, hospitalId: 'h-city', hospitalLevel: 'city', region: '360802' },
      ],
      regions: { default: { fundCodes: { '610102': '610100' }, paidByPlatform: { hifp_pay: 'basic', hifmi_pay: 'critical' } } },
      pseudonymKeyFile: 'pseudonym.key',
      identityTypes: { dibao: '2301' },
    }),
  );
  writeFileSync(join(dir, 'pseudonym.key'), randomBytes(32));
  service = await startService({ quiet: false, args: ['--auth', auth.file, '--nhsa', config] });
  for (const p of ['P3608270001', 'P3608270002', 'P3608270003', 'P3608270004'])
    expect((await http(service.url, 'POST', `/v1/persons/${p}/categories`, { category: 'dibao', validFrom: '2012-01-01' })).status).toBe(
      200,
    );
}, 60_000);

afterAll(async () => {
  await service?.stop();
  if (service) removeDir(service.dataDir);
  removeDir(dir);
  removeDir(auth.dir);
});

/** The settlement figures of a setlinfo in fen, by medaid's names. */
const figures = (s: Obj) => ({
  totalFen: Math.round(s.medfee_sumamt * 100),
  inScopeFen: Math.round(s.inscp_scp_amt * 100),
  deductibleFen: Math.round(s.act_pay_dedc * 100),
  insurancePayFen: Math.round(s.hifp_pay * 100),
  criticalIllnessPayFen: Math.round(s.hifmi_pay * 100),
  aidPayFen: Math.round(s.maf_pay * 100),
  fundPayFen: Math.round(s.fund_pay_sumamt * 100),
  patientPayFen: Math.round(s.psn_part_amt * 100),
});

describe('POST /nhsa/{infno}: the national platform format', () => {
  it('a stay 2401 → 2402 → 2303 → 2304 → 2305 → 2304 agrees to the 分 with the same bill settled through /v1/settlements', async () => {
    const a = await call('2401', admission('P3608270001', 'ZY001'));
    expect(a).toMatchObject({
      infcode: 0,
      err_msg: null,
      output: { result: { mdtrt_id: 'ZY001', psn_no: 'P3608270001', ipt_otp_no: 'ZY001' } },
    });
    expect(a.inf_refmsgid).toMatch(/^360827\d{24}$/);
    expect([a.refmsg_time, a.respond_time].every((t: string) => /^\d{17}$/.test(t))).toBe(true);
    expect((await call('2402', dischargeOf('P3608270001', 'ZY001'))).infcode).toBe(0);

    const pre = await call('2303', bill('P3608270001', 'ZY001'));
    expect(pre.infcode).toBe(0);
    expect(pre.output.setlinfo.setl_id).toBeUndefined();
    const settled = await call('2304', bill('P3608270001', 'ZY001'));
    expect(settled.infcode).toBe(0);
    const s = settled.output.setlinfo as Obj;
    expect(s).toMatchObject({ mdtrt_id: 'ZY001', setl_id: 'h-county/ZY001/1', psn_no: 'P3608270001', med_type: '21', insutype: '390' });
    expect(s.setl_time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    const { setl_id: _i, setl_time: _t, ...settledRest } = s;
    const { setl_time: _p, ...previewRest } = pre.output.setlinfo;
    expect({ ...previewRest, medins_setl_id: null }).toEqual({ ...settledRest, medins_setl_id: null });

    // the same bill, the same kind of person, through medaid's own API
    const own = await http(
      service.url,
      'POST',
      '/v1/settlements',
      discharge({ visitId: 'own-1', personId: 'P3608270002', diagnosisCodes: ['C34.900'], totalFen: 5_200_000, fullOwnPayFen: 200_000 }),
    );
    expect(own.status).toBe(201);
    const r = own.body as Obj;
    expect(figures(s)).toEqual({
      totalFen: r.totalFen,
      inScopeFen: r.inScopeFen,
      deductibleFen: r.deductibleFen,
      insurancePayFen: r.insurancePayFen,
      criticalIllnessPayFen: r.criticalIllnessPayFen,
      aidPayFen: r.aidPayFen,
      fundPayFen: r.fundPayFen,
      patientPayFen: r.patientPayFen,
    });
    expect(s.psn_cash_pay).toBe(s.psn_part_amt);
    // the fund lines: one per national code (aid2's 610102 is sent as 610100, one line with aid's), adding up to the fund pay
    const detail = settled.output.setldetail as Obj[];
    expect(detail.map((d) => d.fund_pay_type)).toEqual([
      ...new Set(r.layers.filter((l: Obj) => l.payFen > 0).map((l: Obj) => (l.fund === '610102' ? '610100' : l.fund))),
    ]);
    expect(detail.reduce((sum, d) => sum + Math.round(d.fund_payamt * 100), 0)).toBe(r.fundPayFen);
    expect(detail.find((d) => d.fund_pay_type === '390100')).toMatchObject({ fund_pay_type_name: '城乡居民基本医疗保险基金' });
    const view = (await http(service.url, 'GET', '/v1/settlements/h-county/ZY001')).body as Obj;
    expect(view.current).toMatchObject({ personId: 'P3608270001', totalFen: 5_200_000, category: 'dibao', year: 2012 });

    const reversed = await call('2305', { data: { mdtrt_id: 'ZY001', setl_id: 'h-county/ZY001/1', psn_no: 'P3608270001' } });
    expect(reversed.infcode).toBe(0);
    expect(figures(reversed.output.setlinfo)).toEqual(Object.fromEntries(Object.entries(figures(s)).map(([k, v]) => [k, -v])));
    const again = await call('2304', bill('P3608270001', 'ZY001'));
    expect(again.output.setlinfo.setl_id).toBe('h-county/ZY001/2');
    expect(figures(again.output.setlinfo)).toEqual(figures(s)); // the reversal gave the year's counters back
  });

  it('answers a message sent again with the same answer (idempotent by msgid), and refuses a msgid reused for another message', async () => {
    const first = await call('2401', admission('P3608270003', 'ZY003'));
    const before = await position();
    const resent = await call('2401', admission('P3608270003', 'ZY003'), { msgid: first.msgid });
    expect(resent.output).toEqual(first.output);
    await call('2402', dischargeOf('P3608270003', 'ZY003'));
    const settled = await call('2304', bill('P3608270003', 'ZY003'));
    const head = await position();
    expect(head).toBeGreaterThan(before);
    const twice = await call('2304', bill('P3608270003', 'ZY003'), { msgid: settled.msgid });
    expect(twice.output).toEqual(settled.output);
    expect(await position()).toBe(head);
    const other = await call('2304', bill('P3608270003', 'ZY003', { medfee_sumamt: '51000.00', inscp_scp_amt: '49000.00' }), {
      msgid: settled.msgid,
    });
    expect([other.infcode, other.err_msg]).toEqual([-1, expect.stringMatching(/^IDEMPOTENCY_KEY_REUSED: msgid/)]);
    // two different messages under one new msgid at once: one is taken, the other refused
    const racing = await Promise.all([
      call('2401', admission('P3608270003', 'ZY003A'), { msgid: `${COUNTY}201203109999990001` }),
      call('2401', admission('P3608270003', 'ZY003B'), { msgid: `${COUNTY}201203109999990001` }),
    ]);
    expect(racing.map((r) => r.infcode).sort()).toEqual([-1, 0]);
    expect(racing.find((r) => r.infcode === -1)!.err_msg).toMatch(/^IDEMPOTENCY_KEY_REUSED: msgid/);
    const reused = await call('2401', admission('P3608270003', 'ZY003X'), { msgid: first.msgid });
    expect([reused.infcode, reused.err_msg]).toEqual([-1, expect.stringMatching(/^IDEMPOTENCY_KEY_REUSED: msgid/)]);
  });

  it('undoes a 2304 and a 2401 named by their msgid (2601 冲正), once', async () => {
    const admitted = await call('2401', admission('P3608270004', 'ZY004'));
    await call('2402', dischargeOf('P3608270004', 'ZY004'));
    const settled = await call('2304', bill('P3608270004', 'ZY004'));
    const undo = { data: { psn_no: 'P3608270004', omsgid: settled.msgid, oinfno: '2304' } };
    const undone = await call('2601', undo);
    expect([undone.infcode, undone.output]).toEqual([0, {}]);
    const view = (await http(service.url, 'GET', '/v1/settlements/h-county/ZY004')).body as Obj;
    expect([view.current.status, view.current.reversal?.reason]).toEqual(['reversed', expect.stringContaining(settled.msgid)]);
    expect((await call('2601', undo, { msgid: undone.msgid })).infcode).toBe(0); // sent again: the same answer, nothing more
    // the admission taken back: a settlement now needs the dates in the message itself
    expect((await call('2601', { data: { psn_no: 'P3608270004', omsgid: admitted.msgid, oinfno: '2401' } })).infcode).toBe(0);
    const noAdmission = await call('2304', bill('P3608270004', 'ZY004'));
    expect([noAdmission.infcode, noAdmission.err_msg]).toEqual([-1, expect.stringContaining('input.data.begntime is needed')]);
    const unknown = await call('2601', { data: { psn_no: 'P3608270004', omsgid: 'H3608270000199999999999999999', oinfno: '2304' } });
    expect([unknown.infcode, unknown.err_msg]).toEqual([-1, expect.stringMatching(/^SETTLEMENT_NOT_FOUND: input.data.omsgid/)]);
  });

  it('settles an outpatient visit: 2201 门诊挂号 → 2206 → 2207 → 2208, the date of the visit for both dates', async () => {
    const reg = await call('2201', {
      data: {
        psn_no: 'P3608270002',
        insutype: '390',
        begntime: '2012-04-02 09:10:00',
        mdtrt_cert_type: '02',
        mdtrt_cert_no: IDENTITY.mdtrt_cert_no,
        ipt_otp_no: 'MZ0402001',
        atddr_no: 'D9',
        dr_name: '赵医生',
        dept_code: '01',
        dept_name: '内科',
        caty: 'A03',
        psn_name: IDENTITY.psn_name,
      },
    });
    expect(reg.output).toEqual({ data: { mdtrt_id: 'MZ0402001', psn_no: 'P3608270002', ipt_otp_no: 'MZ0402001' } });
    const visit = {
      data: {
        psn_no: 'P3608270002',
        mdtrt_id: 'MZ0402001',
        medfee_sumamt: 356.8,
        fulamt_ownpay_amt: '12.30',
        med_type: '11',
        mdtrt_cert_no: IDENTITY.mdtrt_cert_no,
      },
    };
    expect((await call('2206', visit)).infcode).toBe(0);
    const paid = await call('2207', visit);
    expect(paid.output.setlinfo).toMatchObject({ medfee_sumamt: 356.8, fulamt_ownpay_amt: 12.3, med_type: '11', clr_type: '11' });
    const view = (await http(service.url, 'GET', '/v1/settlements/h-county/MZ0402001')).body as Obj;
    expect(view.current).toMatchObject({ totalFen: 35_680, fullOwnPayFen: 1_230, status: 'settled' });
    const back = await call('2208', { data: { psn_no: 'P3608270002', mdtrt_id: 'MZ0402001', setl_id: paid.output.setlinfo.setl_id } });
    expect([back.infcode, back.output.setlinfo.medfee_sumamt]).toEqual([0, -356.8]);
  });

  it('takes what the platform already paid (hifp_pay, hifmi_pay) as payments made elsewhere, on the layers the region maps them to', async () => {
    await call('2401', admission('P3608270002', 'ZY005'));
    await call('2402', dischargeOf('P3608270002', 'ZY005'));
    const r = await call('2304', bill('P3608270002', 'ZY005', { hifp_pay: '30000.00', hifmi_pay: 1000 }));
    expect(r.infcode).toBe(0);
    expect(r.output.setlinfo).toMatchObject({ hifp_pay: 30000, hifmi_pay: 1000 });
    const view = (await http(service.url, 'GET', '/v1/settlements/h-county/ZY005')).body as Obj;
    const layer = (id: string) => view.current.layers.find((l: Obj) => l.layerId === id);
    expect([layer('basic').external, layer('basic').payFen, layer('critical').payFen]).toEqual([true, 3_000_000, 100_000]);
  });

  it('refuses a bad message as infcode −1 naming the field, and records nothing', async () => {
    const before = await position();
    const refused = async (infno: string, input: Obj, pattern: RegExp, options: { fixmedins?: string; as?: string } = {}) => {
      const r = await call(infno, input, options);
      expect([infno, r.infcode, r.err_msg, r.output]).toEqual([infno, -1, expect.stringMatching(pattern), {}]);
    };
    await refused(
      '2304',
      bill('P3608270001', 'ZY001', { medfee_sumamt: '52000.001' }),
      /^VALIDATION_FAILED: input.data.medfee_sumamt has more than two decimal places/,
    );
    await refused(
      '2304',
      bill('P3608270001', 'ZY001', { medfee_sumamt: -5 }),
      /^VALIDATION_FAILED: input.data.medfee_sumamt must be a non-negative amount/,
    );
    await refused('2304', bill('P3608270001', 'ZY001', { medfee_sumamt: '5.2e4' }), /^VALIDATION_FAILED: input.data.medfee_sumamt/);
    await refused(
      '2304',
      bill('P3608270001', 'ZY001', { inscp_scp_amt: '49000' }),
      /^VALIDATION_FAILED: input.data.inscp_scp_amt is 49000 元, but/,
    );
    await refused('2304', bill('P3608270001', 'ZY001', { mid_setl_flag: '1' }), /^VALIDATION_FAILED: input.data.mid_setl_flag/);
    await refused(
      '2304',
      bill('P3608270001', 'ZY001', { oth_pay: 1, hifob_pay: '10.00' }),
      /^VALIDATION_FAILED: input.data.hifob_pay is paid by the platform/,
    );
    await refused('2304', bill('P3608270001', 'ZY-none'), /^VALIDATION_FAILED: input.data.begntime is needed/);
    await refused('2304', { data: 'x' }, /^VALIDATION_FAILED: input.data must be an object/);
    await refused(
      '2402',
      dischargeOf('P3608270001', 'ZY001', '2012-02-01'),
      /^VALIDATION_FAILED: input.dscginfo.endtime is before the admission/,
    );
    await refused('2401', admission('P3608270001', 'ZY 006'), /^VALIDATION_FAILED: input.mdtrtinfo.ipt_no/);
    await refused(
      '2401',
      admission('P3608270001', 'ZY006', '2012-02-30 08:00:00'),
      /^VALIDATION_FAILED: input.mdtrtinfo.begntime must be a date/,
    );
    await refused(
      '2305',
      { data: { mdtrt_id: 'ZY001', setl_id: 'h-county/ZY001/9', psn_no: 'P3608270001' } },
      /^SETTLEMENT_NOT_FOUND: input.data.setl_id/,
    );
    await refused(
      '2601',
      { data: { psn_no: 'P3608270001', omsgid: 'X1', oinfno: '2305' } },
      /^VALIDATION_FAILED: input.data.oinfno cannot be undone/,
    );
    await refused('1102', { data: {} }, /^VALIDATION_FAILED: infno is not a transaction medaid takes/);
    await refused('2304', bill('P3608270001', 'ZY001'), /^VALIDATION_FAILED: fixmedins_code is not an institution/, {
      fixmedins: 'H99999999999',
    });
    // a hospital speaks only as its own institution
    await refused('2304', bill('P3608270001', 'ZY001'), /^FORBIDDEN: fixmedins_code is not the calling hospital's \(h-city\)/, {
      as: 'h-city',
    });
    expect(
      (await http(service.url, 'POST', '/nhsa/2304', envelope('2304', bill('P3608270001', 'ZY001')), { 'x-test-anonymous': '1' })).status,
    ).toBe(401);
    expect(
      (
        await http(service.url, 'POST', '/nhsa/2304', envelope('2304', bill('P3608270001', 'ZY001')), {
          authorization: `Bearer ${TEST_CALLERS.admin}`,
        })
      ).status,
    ).toBe(403);
    expect(await position()).toBe(before);
  });

  it('reconciles with the hospital (对账): totals and records over HTTP, 3201 and 3202 in the platform format, and medaid reconcile', async () => {
    const day = (offset: number) => new Date(Date.now() + 8 * 3_600_000 + offset * 86_400_000).toISOString().slice(0, 10);
    const [from, to] = [day(-1), day(1)];
    const totals = (await http(service.url, 'GET', `/v1/reconciliation/h-county?from=${from}&to=${to}`)).body as Obj;
    // what the settlements list says of the same hospital: every settlement a record, every reversal one more
    const listed = (await http(service.url, 'GET', '/v1/settlements?hospitalId=h-county&limit=500')).body.items as Obj[];
    const active = listed.filter((l) => l.status === 'settled');
    const reversed = listed.length - active.length;
    expect(totals).toMatchObject({
      hospitalId: 'h-county',
      from,
      to,
      settlements: listed.length,
      reversals: reversed,
      records: listed.length + reversed,
    });
    expect(reversed).toBeGreaterThanOrEqual(3);
    expect(totals.medfeeSumFen).toBe(active.reduce((sum, l) => sum + l.totalFen, 0));
    expect(totals.fundPaySumFen).toBe(active.reduce((sum, l) => sum + l.fundPayFen, 0)); // no adjustments here
    expect(totals.patientPaySumFen).toBe(totals.medfeeSumFen - totals.fundPaySumFen);
    expect(totals.byFund.reduce((sum: number, f: Obj) => sum + f.fen, 0)).toBe(totals.fundPaySumFen);
    const details = (await http(service.url, 'GET', `/v1/reconciliation/h-county/details?from=${from}&to=${to}`)).body as Obj;
    expect(details.items).toHaveLength(totals.records);
    const csv = await http(service.url, 'GET', `/v1/reconciliation/h-county/details?from=${from}&to=${to}&format=csv`);
    expect(csv.headers.get('content-type')).toContain('text/csv');
    expect((csv.body as string).split('\r\n')[0]).toBe(
      'kind,settlement_id,visit_id,person_id,recorded_at,total_fen,fund_pay_fen,patient_pay_fen,funds',
    );
    expect((csv.body as string).split('\r\n').filter((l) => l !== '')).toHaveLength(totals.records + 1);
    // a hospital reads only its own; an empty period is all zeros
    expect(
      (await http(service.url, 'GET', `/v1/reconciliation/h-county?from=${from}&to=${to}`, undefined, hospital('h-city'))).status,
    ).toBe(403);
    expect((await http(service.url, 'GET', '/v1/reconciliation/h-county?from=2011-01-01&to=2011-01-31')).body).toMatchObject({
      records: 0,
      medfeeSumFen: 0,
    });
    expect((await http(service.url, 'GET', '/v1/reconciliation/h-county?from=2012-01-01&to=2013-06-01')).status).toBe(400);

    // 3201: the hospital's totals, in 元
    const stmt = (extra: Obj = {}) => ({
      data: {
        insutype: '390',
        clr_type: '21',
        setl_optins: '360827',
        stmt_begndate: from,
        stmt_enddate: to,
        medfee_sumamt: totals.medfeeSumFen / 100,
        fund_pay_sumamt: (totals.fundPaySumFen / 100).toFixed(2),
        acct_pay: 0,
        fixmedins_setl_cnt: totals.records,
        ...extra,
      },
    });
    expect((await call('3201', stmt())).output.stmtinfo).toMatchObject({ stmt_rslt: '0', fixmedins_setl_cnt: totals.records });
    const off = (await call('3201', stmt({ fixmedins_setl_cnt: totals.records - 1 }))).output.stmtinfo as Obj;
    expect([off.stmt_rslt, off.stmt_rslt_dscr]).toEqual([
      '1',
      `fixmedins_setl_cnt: the hospital has ${totals.records - 1}, medaid ${totals.records}`,
    ]);

    // 3202: the hospital's lines; one amount wrong and one line missing are named, the rest agree
    const lines = (details.items as Obj[]).map((r) => ({
      setl_id: r.settlementId,
      refd_setl_flag: r.kind === 'reversal' ? '1' : '0',
      medfee_sumamt: r.totalFen / 100,
      fund_pay_sumamt: String(r.fundPayFen / 100),
    }));
    expect((await call('3202', { data: { stmt_begndate: from, stmt_enddate: to, details: lines } })).output.stmtinfo.stmt_rslt).toBe('0');
    const [first, second, ...rest] = lines;
    const wrong = { ...first!, medfee_sumamt: Math.abs(first!.medfee_sumamt) + 1 };
    const result = (await call('3202', { data: { stmt_begndate: from, stmt_enddate: to, details: [wrong, ...rest] } })).output
      .stmtinfo as Obj;
    expect(result.stmt_rslt).toBe('1');
    expect(result.differences).toBe(2);
    expect(result.stmt_rslt_dscr).toContain(
      `${first!.setl_id} (${first!.refd_setl_flag === '1' ? 'reversal' : 'settlement'}) medfee_sumamt`,
    );
    expect(result.stmt_rslt_dscr).toContain(
      `${second!.setl_id} (${second!.refd_setl_flag === '1' ? 'reversal' : 'settlement'}): medaid has it, the hospital does not`,
    );

    // the command line: the same totals from the data directory, while the service runs
    const cli = spawnSync(
      process.execPath,
      [BIN, 'reconcile', '--hospital', 'h-county', '--from', from, '--to', to, '--data', service.dataDir],
      {
        encoding: 'utf8',
      },
    );
    expect(cli.status).toBe(0);
    const { asOfPosition: _a, ...cliTotals } = JSON.parse(cli.stdout) as Obj;
    const { asOfPosition: _b, ...httpTotals } = totals;
    expect(cliTotals).toEqual(httpTotals);
  });

  it('finds a person by an identity number an office recorded (1101), which is kept only as a keyed pseudonym', async () => {
    const admin = { authorization: `Bearer ${TEST_CALLERS.admin}` };
    const recorded = await http(service.url, 'POST', '/v1/persons/P3608270001/identity', { certno: IDENTITY.certno }, admin);
    expect([recorded.status, recorded.body]).toEqual([200, { personId: 'P3608270001' }]);
    expect((await http(service.url, 'POST', '/v1/persons/P3608270001/identity', { certno: IDENTITY.certno }, admin)).status).toBe(200); // again: the same
    const other = await http(service.url, 'POST', '/v1/persons/P3608270002/identity', { certno: IDENTITY.certno }, admin);
    expect([other.status, other.body.details]).toEqual([400, [{ field: 'certno', problem: 'is recorded for another person' }]]);
    const found = await call('1101', {
      data: {
        mdtrt_cert_type: '02',
        mdtrt_cert_no: IDENTITY.certno,
        psn_cert_type: '01',
        certno: IDENTITY.certno,
        psn_name: IDENTITY.psn_name,
      },
    });
    expect(found.infcode).toBe(0);
    expect(found.output.baseinfo).toEqual({ psn_no: 'P3608270001', psn_cert_type: '01' });
    expect(found.output.idetinfo).toEqual([
      { psn_idet_type: '2301', psn_type_lv: null, memo: 'dibao', begntime: '2012-01-01 00:00:00', endtime: null },
    ]);
    expect(JSON.stringify(found)).not.toContain(IDENTITY.certno); // nothing sent is echoed
    const byCard = await call('1101', { data: { mdtrt_cert_type: '02', mdtrt_cert_no: IDENTITY.certno.toLowerCase() } });
    expect(byCard.output.baseinfo.psn_no).toBe('P3608270001');
    const unknown = await call('1101', { data: { certno: '110101199001011234' } });
    expect([unknown.infcode, unknown.err_msg]).toEqual([-1, expect.stringMatching(/^NOT_FOUND: input.data.certno names no person/)]);
  });

  it('answers 600 malformed messages (fixed seed) with an envelope, infcode −1 unless a preview is whole, never a 5xx, and records nothing', async () => {
    const random = seeded(16_2303);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const NEVER = [null, true, { '!': 1 }, [[[]]], -1.5, 'x'.repeat(600), '\u0000', 1e300, '12.345', '', 0];
    const before = await position();
    const answers: string[] = [];
    for (let i = 0; i < 600; i++) {
      const infno = pick(['2303', '2206', '2305', '2208', '2401', '2402', '2201', '2601']);
      const body: Obj = envelope(infno, bill('P3608270001', 'ZY001'));
      const data = body.input.data as Obj;
      const where = pick([body, body.input, data, data]);
      const keys = Object.keys(where);
      switch (Math.floor(random() * 4)) {
        case 0:
          where[pick(keys)] = pick(NEVER);
          break;
        case 1:
          delete where[pick(keys)];
          break;
        case 2:
          where[pick(keys)] = pick(NEVER);
          where[pick(keys)] = pick(NEVER);
          break;
        default:
          body.infno = pick(['2304', 'x', 2303, '']); // the body contradicting its path, or nonsense
      }
      const r = await http(service.url, 'POST', `/nhsa/${infno}`, body, hospital('h-county'));
      const ok = r.status === 200 && (r.body.infcode === -1 || (r.body.infcode === 0 && ['2303', '2206'].includes(infno)));
      if (!ok) answers.push(`${infno} ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    }
    for (const raw of ['{', 'null', '"x"', '[]', '{"input": 1}'])
      answers.push(
        ...[await http(service.url, 'POST', '/nhsa/2304', raw, hospital('h-county'))]
          .filter((r) => r.status >= 500)
          .map((r) => `raw ${r.status}`),
      );
    expect(answers).toEqual([]);
    expect(await position()).toBe(before);
  }, 120_000);

  it('never records or logs an identity value it was sent (name, 证件号, 就诊凭证号): only psn_no', async () => {
    await service.stop();
    const files = readdirSync(service.dataDir, { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile())
      .map((f) => join(f.parentPath, f.name));
    expect(files.some((f) => f.endsWith('events.sqlite'))).toBe(true);
    const found: string[] = [];
    for (const value of Object.values(IDENTITY)) {
      const needles = [Buffer.from(value, 'utf8'), Buffer.from(value, 'utf16le')];
      for (const f of files) if (needles.some((n) => readFileSync(f).includes(n))) found.push(`${value} in ${f}`);
      if (service.stdout().includes(value) || service.stderr().includes(value)) found.push(`${value} in the service's log`);
    }
    expect(found).toEqual([]);
    expect(service.stdout()).toContain('"route":"/nhsa/:infno"'); // the log is there, and it was looked at
    // while psn_no, which the settlement needs, is recorded
    expect(files.some((f) => readFileSync(f).includes(Buffer.from('P3608270001')))).toBe(true);
    // and the audits take a log with registrations, message pointers and identity pseudonyms in it
    for (const command of ['verify', 'replay']) {
      const r = spawnSync(process.execPath, [BIN, 'audit', command, '--data', service.dataDir], { encoding: 'utf8', timeout: 60_000 });
      expect([command, r.status, r.stdout.includes('result: clean') ? 'clean' : r.stdout + r.stderr]).toEqual([command, 0, 'clean']);
    }
  }, 90_000);
});
