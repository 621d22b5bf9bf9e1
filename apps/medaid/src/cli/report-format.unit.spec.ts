// How the year report prints: 元 and percentages exactly, CSV quoted by RFC 4180, tables aligned
// with Chinese labels (two columns per character).
import { describe, expect, it } from '@jest/globals';
import { Policy, SettledData, YearReport, reportFromEvents } from '#domain';
import { CSV_HEADER, csvField, displayWidth, percent, renderTable, reportToCsv, reportToTable, yuan } from './report-format.js';

const policy: Policy = {
  policyId: 'p',
  version: 1,
  region: 'r1',
  effectiveFrom: '2012-01-01',
  categories: [{ code: 'odd', name: '低保, "边缘" 户\n第二行' }],
  layers: [{ id: 'aid', kind: 'aid', fund: '610100', rules: [{ id: 'a', bands: [{ uptoFen: null, ratioBp: 5000 }] }] }],
};
const settled: SettledData = {
  settlementId: 's1',
  fingerprint: 'f',
  policy: { policyId: 'p', version: 1 },
  year: 2012,
  category: 'odd',
  aidBlockedReason: null,
  contributions: { yearBase: {}, used: {} },
  layers: [['a', 0, 0, 123_456, 123_456, null]],
  discharge: {
    hospitalId: 'h',
    visitId: 'v',
    personId: 'p1',
    region: 'r1',
    scheme: 'nrcms',
    visitType: 'inpatient',
    hospitalLevel: 'county',
    admissionDate: '2012-01-02',
    dischargeDate: '2012-01-03',
    diagnosisCodes: [],
    totalFen: 246_912,
    fullOwnPayFen: 0,
    overLimitFen: 0,
    preSelfPayFen: 0,
    externalPayments: {},
  },
};
const report = (): YearReport =>
  reportFromEvents(
    [
      { type: 'PolicyPublished', data: { policy }, position: 1 },
      { type: 'DischargeSettled', data: settled, position: 2 },
      { type: 'SettlementReversed', data: { settlementId: 'never-settled' }, position: 3 },
    ],
    2012,
  );

/** A minimal RFC 4180 reader, to check that what is written reads back. */
function readCsv(text: string): string[][] {
  const rows: string[][] = [];
  const re = /("(?:[^"]|"")*"|[^,\r\n]*)(,|\r\n)/gy;
  let row: string[] = [];
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    row.push(m[1]!.startsWith('"') ? m[1]!.slice(1, -1).replaceAll('""', '"') : m[1]!);
    if (m[2] === '\r\n') (rows.push(row), (row = []));
  }
  return rows;
}

describe('money and ratios', () => {
  it('shows fen as 元 with two decimals and thousands separators, exactly', () => {
    expect([0, 5, 100, 123_456_789, -4_000, 90_071_992_547_409].map(yuan)).toEqual([
      '0.00',
      '0.05',
      '1.00',
      '1,234,567.89',
      '-40.00',
      '900,719,925,474.09',
    ]);
  });

  it('shows basis points as a percentage with two decimals, and null as a dash', () => {
    expect([12_130, 5, 10_000, null].map(percent)).toEqual(['121.30 %', '0.05 %', '100.00 %', '–']);
  });
});

describe('csv', () => {
  it('quotes a field with a comma, a quote, CR or LF, doubling the quotes, and leaves others alone', () => {
    expect(['plain', 'a,b', 'say "hi"', 'two\nlines', 'cr\r', '医疗救助'].map(csvField)).toEqual([
      'plain',
      '"a,b"',
      '"say ""hi"""',
      '"two\nlines"',
      '"cr\r"',
      '医疗救助',
    ]);
  });

  it('given a category name with a comma, quotes and a line break, when written, then every line reads back with all columns and the name whole', () => {
    const rows = readCsv(reportToCsv(report()));

    expect(rows[0]).toEqual([...CSV_HEADER]);
    expect(rows.every((r) => r.length === CSV_HEADER.length)).toBe(true);
    const persons = rows.find((r) => r[0] === 'by_category' && r[8] === 'persons')!;
    expect([persons[1], persons[7], persons[9], persons[10]]).toEqual(['odd', '低保, "边缘" 户\n第二行', '人数', '1']);
    expect(rows.find((r) => r[0] === 'overall' && r[8] === 'aidPayFen')?.[10]).toBe('123456');
    expect(rows.find((r) => r[0] === 'funds' && r[8] === 'usageRateBp')?.[10]).toBe(''); // null: nothing allocated
    expect(rows.find((r) => r[0] === 'anomalies' && r[8] === 'reversalsOfInactiveSettlements')?.[10]).toBe('1');
  });
});

describe('table', () => {
  it('counts a Chinese character as two columns, so columns line up on a terminal', () => {
    expect([displayWidth('abc'), displayWidth('医疗救助'), displayWidth('（）')]).toEqual([3, 8, 4]);
    const lines = renderTable(
      ['名称', 'n'],
      [
        ['医疗救助基金', '1'],
        ['x', '22'],
      ],
    ).split('\n');
    expect(lines.map(displayWidth)).toEqual([16, 16, 16, 16]);
    expect(lines[3]).toBe('x             22');
  });

  it('prints every section with 元 amounts, and the log anomalies when there are any', () => {
    const text = reportToTable(report());

    expect(text).toMatch(/total cost 医疗费总额 +2,469\.12\n/);
    expect(text).toMatch(/medical aid 医疗救助 \(all rounds\) +1,234\.56\n/);
    expect(text).toMatch(/reimbursed share 实际报销比 +50\.00 %\n/);
    expect(text).toContain('Fund usage 资金使用率');
    expect(text).toMatch(/reversalsOfInactiveSettlements +1/);
  });
});
