// Golden exchanges of the national platform format: a fixed sequence of messages (every
// transaction medaid takes but the reconciliations, whose periods are dates of the run), sent to a
// fresh service, each answer compared with test/golden/nhsa-exchanges.jsonl, the times of the
// exchange aside (refmsg_time, respond_time, inf_refmsgid, setl_time). The file is also what a HIS
// vendor reads for an example of each transaction. `UPDATE_GOLDEN=1` writes it again (then review
// the diff: the figures were checked to the 分 against /v1/settlements in test/nhsa.e2e.spec.ts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, Service, TEST_CALLERS, http, removeDir, startService, tempDir, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;
const GOLDEN = join(ROOT, 'test/golden/nhsa-exchanges.jsonl');
const F = 'H36082700001';
const envelope = (infno: string, n: number, input: Obj) => ({
  infno,
  msgid: `${F}20120310100000${String(n).padStart(4, '0')}`,
  mdtrtarea_admvs: '360827',
  insuplc_admdvs: '360827',
  recer_sys_code: 'MDTRTINFO',
  infver: 'V1.0',
  opter_type: '1',
  opter: 'HIS001',
  opter_name: '收费员甲',
  inf_time: '2012-03-10 10:00:00',
  fixmedins_code: F,
  fixmedins_name: '某某县人民医院',
  sign_no: '',
  input,
});
const bill = (psn: string, mdtrt: string, total: string, ownpay: number) => ({
  data: {
    psn_no: psn,
    mdtrt_cert_type: '02',
    medfee_sumamt: total,
    psn_setlway: '01',
    mdtrt_id: mdtrt,
    insutype: '390',
    acct_used_flag: '0',
    mid_setl_flag: '0',
    fulamt_ownpay_amt: ownpay,
    overlmt_selfpay: '0.00',
    preselfpay_amt: 0,
  },
});
const SEQUENCE: Array<[string, Obj]> = [
  [
    '2401',
    {
      mdtrtinfo: { psn_no: 'P3608270101', insutype: '390', begntime: '2012-03-01 08:30:00', med_type: '21', ipt_no: 'ZY0301' },
      diseinfo: [{ diag_code: 'C34.900x001', diag_name: '肺恶性肿瘤' }],
    },
  ],
  ['2402', { dscginfo: { mdtrt_id: 'ZY0301', psn_no: 'P3608270101', endtime: '2012-03-10 09:00:00' } }],
  ['2303', bill('P3608270101', 'ZY0301', '52000.00', 2000)],
  ['2304', bill('P3608270101', 'ZY0301', '52000.00', 2000)],
  ['2305', { data: { mdtrt_id: 'ZY0301', setl_id: 'h-county/ZY0301/1', psn_no: 'P3608270101' } }],
  ['2304', bill('P3608270101', 'ZY0301', '51000.00', 2000)],
  ['2601', { data: { psn_no: 'P3608270101', omsgid: `${F}201203101000000006`, oinfno: '2304' } }],
  ['2201', { data: { psn_no: 'P3608270102', insutype: '390', begntime: '2012-04-02 09:10:00', ipt_otp_no: 'MZ0402' } }],
  ['2206', { data: { psn_no: 'P3608270102', mdtrt_id: 'MZ0402', medfee_sumamt: 356.8, fulamt_ownpay_amt: '12.30', med_type: '14' } }],
  ['2207', { data: { psn_no: 'P3608270102', mdtrt_id: 'MZ0402', medfee_sumamt: 356.8, fulamt_ownpay_amt: '12.30', med_type: '14' } }],
  ['2208', { data: { psn_no: 'P3608270102', mdtrt_id: 'MZ0402', setl_id: 'h-county/MZ0402/1' } }],
  ['2304', bill('P3608270101', 'ZY0301', '52000.001', 2000)],
];

let service: Service;
let dir: string;
const auth = writeAuthFile([]);
beforeAll(async () => {
  dir = tempDir('medaid-nhsa-golden-');
  const config = join(dir, 'nhsa.json');
  writeFileSync(
    config,
    JSON.stringify({ institutions: [{ fixmedinsCode: F, hospitalId: 'h-county', hospitalLevel: 'county', region: '360827' }] }),
  );
  service = await startService({ args: ['--auth', auth.file, '--nhsa', config] });
  for (const [p, c] of [
    ['P3608270101', 'dibao'],
    ['P3608270102', 'tekun'],
  ])
    expect((await http(service.url, 'POST', `/v1/persons/${p}/categories`, { category: c, validFrom: '2012-01-01' })).status).toBe(200);
}, 60_000);
afterAll(async () => {
  await service?.stop();
  if (service) removeDir(service.dataDir);
  removeDir(dir);
  removeDir(auth.dir);
});

/** The answer without the times of this exchange. */
function stable(answer: Obj): Obj {
  const { refmsg_time: _r, respond_time: _s, inf_refmsgid: _i, ...rest } = answer;
  const setlinfo = rest.output?.setlinfo;
  if (setlinfo?.setl_time !== undefined) rest.output = { ...rest.output, setlinfo: { ...setlinfo, setl_time: '(time of the settlement)' } };
  return rest;
}

describe('golden exchanges of the national platform format', () => {
  it('answers every transaction of the sequence exactly as recorded in test/golden/nhsa-exchanges.jsonl', async () => {
    const exchanges: Obj[] = [];
    for (const [n, [infno, input]] of SEQUENCE.entries()) {
      const request = envelope(infno, n + 1, input);
      const r = await http(service.url, 'POST', `/nhsa/${infno}`, request, {
        authorization: `Bearer ${TEST_CALLERS.hospitals['h-county']}`,
      });
      expect(r.status).toBe(200);
      exchanges.push({ request, answer: stable(r.body as Obj) });
    }
    const text = `${exchanges.map((e) => JSON.stringify(e)).join('\n')}\n`;
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, text);
    expect(existsSync(GOLDEN)).toBe(true);
    const golden = readFileSync(GOLDEN, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Obj);
    expect(exchanges).toEqual(golden);
  });
});
