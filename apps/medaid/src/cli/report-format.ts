// How `medaid audit report` prints a year report: `table` for people (aligned columns, 元 with two
// decimals, English labels with the Chinese term), `csv` for spreadsheets and scripts (one file,
// one value per line, a `section` column, RFC 4180 quoting, money in integer fen as everywhere
// else). JSON is the report object itself, the same as GET /v1/reports/{year}.
import { MonitoringCounts, PayRow, ReportRow, YearReport } from '#domain';

// ---- labels --------------------------------------------------------------------------------------

const VISIT_TYPE_LABEL: Record<string, string> = {
  inpatient: 'inpatient 住院',
  outpatient: 'outpatient 普通门诊',
  chronic_outpatient: 'chronic outpatient 门诊慢特病',
};
const VISIT_GROUP_LABEL: Record<string, string> = {
  inpatient: 'all inpatient 住院合计',
  outpatient: 'all outpatient 门诊合计 (普通+慢特病)',
};
const KIND_LABEL: Record<string, string> = {
  insurance: 'insurance 基本医保',
  critical_illness: 'critical illness 大病保险',
  aid: 'aid 医疗救助',
};

/** The Chinese term of every figure, as the source documents name it. */
export const TERMS: Readonly<Record<string, string>> = {
  persons: '人数',
  personTimes: '人次',
  aidedPersons: '救助人数',
  aidedPersonTimes: '救助人次',
  totalFen: '医疗费总额',
  inScopeFen: '政策范围内费用',
  insurancePayFen: '基本医保支付',
  criticalIllnessPayFen: '大病保险支付',
  aidPayFen: '医疗救助支付',
  fundPayFen: '基金支付合计',
  adjustmentFen: '其中调整',
  patientPayFen: '个人负担',
  reimbursementRateBp: '实际报销比',
  patientShareBp: '个人负担比例',
  payFen: '支付金额',
  allocatedSuperiorFen: '上级下拨',
  allocatedLocalFen: '本级配套',
  allocatedCarryoverFen: '结转',
  allocatedFen: '可用资金合计',
  paidSettlementsFen: '结算支付',
  paidAdjustmentsFen: '调整',
  paidSubsidiesFen: '资助参保支出',
  paidFen: '支出合计',
  receivedFen: '资助参保转入',
  balanceFen: '结余',
  usageRateBp: '资金使用率',
  amountFen: '资助金额',
  year: '结算年度',
  position: '日志位置',
  events: '事件数',
  flaggedPersons: '预警人数',
  standingPersons: '未解除人数',
  clearedPersons: '已解除人数',
};

const categoryLabel = (code: string, name: string | null) =>
  code === 'none' ? 'none 无救助类别 (仅医保)' : name === null ? code : `${code} ${name}`;

// ---- numbers -------------------------------------------------------------------------------------

/** Fen as 元 with two decimals and thousands separators, exactly (no floating point): 1234567 → "12,345.67". */
export function yuan(fen: number): string {
  const sign = fen < 0 ? '-' : '';
  const abs = Math.abs(fen);
  const whole = String(Math.trunc(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}${whole}.${String(abs % 100).padStart(2, '0')}`;
}

/** Basis points as a percentage with two decimals: 12130 → "121.30 %"; null → "–". */
export function percent(bp: number | null): string {
  if (bp === null) return '–';
  const sign = bp < 0 ? '-' : '';
  const abs = Math.abs(bp);
  return `${sign}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, '0')} %`;
}

const count = (n: number) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

// ---- table ---------------------------------------------------------------------------------------

/** Columns of a terminal: CJK and full-width characters take two. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    const wide =
      (c >= 0x1100 && c <= 0x115f) ||
      (c >= 0x2e80 && c <= 0xa4cf) ||
      (c >= 0xac00 && c <= 0xd7a3) ||
      (c >= 0xf900 && c <= 0xfaff) ||
      (c >= 0xfe30 && c <= 0xfe4f) ||
      (c >= 0xff00 && c <= 0xff60) ||
      (c >= 0xffe0 && c <= 0xffe6) ||
      (c >= 0x20000 && c <= 0x3fffd);
    width += wide ? 2 : 1;
  }
  return width;
}

/** Aligned columns: the first `textColumns` columns left-aligned, the figures right-aligned. */
export function renderTable(header: string[], rows: string[][], textColumns = 1): string {
  const widths = header.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const pad = ' '.repeat(widths[i]! - displayWidth(cell));
        return i < textColumns ? cell + pad : pad + cell;
      })
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const ROW_HEADER = [
  'persons 人数',
  'person-times 人次',
  'aided 救助人数',
  'aided times 救助人次',
  'total cost 医疗费总额',
  'insurance 基本医保',
  'critical 大病保险',
  'aid 医疗救助',
  'funds 基金支付',
  'patient 个人负担',
  'reimbursed 实际报销比',
];
const rowCells = (r: ReportRow) => [
  count(r.persons),
  count(r.personTimes),
  count(r.aidedPersons),
  count(r.aidedPersonTimes),
  yuan(r.totalFen),
  yuan(r.insurancePayFen),
  yuan(r.criticalIllnessPayFen),
  yuan(r.aidPayFen),
  yuan(r.fundPayFen),
  yuan(r.patientPayFen),
  percent(r.reimbursementRateBp),
];
const PAY_HEADER = ['persons 人数', 'person-times 人次', 'paid 支付', 'of which adjusted 其中调整'];
const payCells = (r: PayRow) => [count(r.persons), count(r.personTimes), yuan(r.payFen), yuan(r.adjustmentFen)];

export function reportToTable(r: YearReport): string {
  const o = r.overall;
  const anomalies = Object.entries(r.anomalies).filter(([, n]) => n > 0);
  const sections = [
    `medaid audit report — settlement year ${r.year} (医疗救助 一站式结算 年度统计)\n` +
      `log: ${count(r.basis.events)} events up to position ${count(r.basis.position)}; money in 元; only active (not reversed) settlements count`,
    `Overall 合计\n${renderTable(
      ['figure', 'value'],
      [
        [`persons settled 结算人数`, count(o.persons)],
        [`person-times 结算人次`, count(o.personTimes)],
        [`persons aided 救助人数`, count(o.aidedPersons)],
        [`person-times aided 救助人次`, count(o.aidedPersonTimes)],
        [`total cost 医疗费总额`, yuan(o.totalFen)],
        [`in policy scope 政策范围内费用`, yuan(o.inScopeFen)],
        [`basic insurance 基本医保`, yuan(o.insurancePayFen)],
        [`critical illness 大病保险`, yuan(o.criticalIllnessPayFen)],
        [`medical aid 医疗救助 (all rounds)`, yuan(o.aidPayFen)],
        [`funds together 基金支付合计`, yuan(o.fundPayFen)],
        [`of which adjustments 其中调整`, yuan(o.adjustmentFen)],
        [`patient pays 个人负担`, yuan(o.patientPayFen)],
        [`reimbursed share 实际报销比`, percent(o.reimbursementRateBp)],
        [`patient share 个人负担比例`, percent(o.patientShareBp)],
      ],
    )}`,
    `By visit type 按就诊类型\n${renderTable(
      ['visit type', ...ROW_HEADER],
      [
        ...r.byVisitType.map((t) => [VISIT_TYPE_LABEL[t.visitType]!, ...rowCells(t)]),
        ...r.byVisitGroup.map((g) => [VISIT_GROUP_LABEL[g.group]!, ...rowCells(g)]),
        ['all 合计', ...rowCells(o)],
      ],
    )}`,
    `By beneficiary category 按救助对象类别\n${renderTable(
      ['category', 'visit type', ...ROW_HEADER],
      r.byCategory.flatMap((c) => [
        [categoryLabel(c.category, c.name), 'all 合计', ...rowCells(c)],
        ...c.byVisitType.filter((t) => t.personTimes > 0).map((t) => ['', VISIT_TYPE_LABEL[t.visitType]!, ...rowCells(t)]),
      ]),
      2,
    )}`,
    `By layer 按支付层次\n${renderTable(
      ['layer', 'kind', 'fund', ...PAY_HEADER],
      [
        ...r.byLayer.map((l) => [l.layerId, KIND_LABEL[l.kind]!, l.fund, ...payCells(l)]),
        ...r.byKind.map((k) => ['all', KIND_LABEL[k.kind]!, '', ...payCells(k)]),
      ],
      3,
    )}`,
    `By fund 按基金 (all regions)\n${renderTable(
      ['fund', 'name', ...PAY_HEADER],
      r.byFund.map((f) => [f.fund, f.name ?? '', ...payCells(f)]),
      2,
    )}`,
    `Fund usage 资金使用率 (per fund and region)\n${renderTable(
      [
        'fund',
        'region',
        'superior 上级下拨',
        'local 本级配套',
        'carryover 结转',
        'settlements 结算',
        'adjusted 调整',
        'subsidies 资助参保',
        'paid 支出合计',
        'received 转入',
        'balance 结余',
        'usage 资金使用率',
      ],
      r.funds.map((f) => [
        f.name === null ? f.fund : `${f.fund} ${f.name}`,
        f.region,
        yuan(f.allocated.superiorFen),
        yuan(f.allocated.localFen),
        yuan(f.allocated.carryoverFen),
        yuan(f.paid.settlementsFen),
        yuan(f.paid.adjustmentsFen),
        yuan(f.paid.subsidiesFen),
        yuan(f.paid.totalFen),
        yuan(f.receivedFen),
        yuan(f.balanceFen),
        percent(f.usageRateBp),
      ]),
      2,
    )}`,
    `Enrolment subsidies 资助参保\n${renderTable(
      ['category', 'persons 人数', 'amount 资助金额'],
      [
        ...r.subsidies.byCategory.map((c) => [categoryLabel(c.category, c.name), count(c.persons), yuan(c.amountFen)]),
        ['all 合计', count(r.subsidies.persons), yuan(r.subsidies.amountFen)],
      ],
    )}`,
    r.monitoring.length === 0
      ? 'Monitoring 因病返贫致贫监测: no person flagged'
      : `Monitoring 因病返贫致贫监测 (persons over a self-pay threshold)\n${renderTable(
          ['threshold', 'category', 'flagged 预警人数', 'standing 未解除', 'cleared 已解除'],
          r.monitoring.flatMap((m) => [
            ...m.byCategory.map((c) => [
              `${m.thresholdId} (${m.per} > ${yuan(m.aboveFen)})`,
              categoryLabel(c.category, c.name),
              count(c.flaggedPersons),
              count(c.standingPersons),
              count(c.clearedPersons),
            ]),
            [
              `${m.thresholdId} (${m.per} > ${yuan(m.aboveFen)})`,
              'all 合计',
              count(m.flaggedPersons),
              count(m.standingPersons),
              count(m.clearedPersons),
            ],
          ]),
          2,
        )}`,
    anomalies.length === 0
      ? 'Log anomalies: none'
      : `Log anomalies (events the report could not place; check the log)\n${renderTable(
          ['anomaly', 'events'],
          anomalies.map(([k, n]) => [k, count(n)]),
        )}`,
  ];
  return `${sections.join('\n\n')}\n`;
}

// ---- csv -----------------------------------------------------------------------------------------

export const CSV_HEADER = [
  'section',
  'category',
  'visit_type',
  'layer',
  'kind',
  'fund',
  'region',
  'name',
  'metric',
  'term',
  'value',
  'threshold', // last: added with the monitoring section, the columns before it keep their places
] as const;
type CsvKeys = Partial<Record<'category' | 'visit_type' | 'layer' | 'kind' | 'fund' | 'region' | 'threshold' | 'name', string | null>>;

/** RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

const ROW_METRICS = [
  'persons',
  'personTimes',
  'aidedPersons',
  'aidedPersonTimes',
  'totalFen',
  'inScopeFen',
  'insurancePayFen',
  'criticalIllnessPayFen',
  'aidPayFen',
  'fundPayFen',
  'adjustmentFen',
  'patientPayFen',
  'reimbursementRateBp',
  'patientShareBp',
] as const;
const PAY_METRICS = ['persons', 'personTimes', 'payFen', 'adjustmentFen'] as const;

export function reportToCsv(r: YearReport): string {
  const lines: string[] = [CSV_HEADER.join(',')];
  const emit = (section: string, keys: CsvKeys, metrics: Array<[string, number | null]>) => {
    for (const [metric, value] of metrics) {
      const k = (name: keyof CsvKeys) => keys[name] ?? '';
      const fields = [
        section,
        k('category'),
        k('visit_type'),
        k('layer'),
        k('kind'),
        k('fund'),
        k('region'),
        k('name'),
        metric,
        TERMS[metric] ?? '',
        value === null ? '' : String(value),
        k('threshold'),
      ];
      lines.push(fields.map(csvField).join(','));
    }
  };
  const rowMetrics = (row: ReportRow): Array<[string, number | null]> => ROW_METRICS.map((m) => [m, row[m]]);
  const payMetrics = (row: PayRow): Array<[string, number | null]> => PAY_METRICS.map((m) => [m, row[m]]);
  emit('basis', {}, [
    ['year', r.year],
    ['position', r.basis.position],
    ['events', r.basis.events],
  ]);
  emit('overall', {}, rowMetrics(r.overall));
  for (const t of r.byVisitType) emit('by_visit_type', { visit_type: t.visitType }, rowMetrics(t));
  for (const g of r.byVisitGroup) emit('by_visit_group', { visit_type: g.group }, rowMetrics(g));
  for (const c of r.byCategory) {
    emit('by_category', { category: c.category, name: c.name }, rowMetrics(c));
    for (const t of c.byVisitType)
      emit('by_category_visit_type', { category: c.category, visit_type: t.visitType, name: c.name }, rowMetrics(t));
  }
  for (const k of r.byKind) emit('by_kind', { kind: k.kind }, payMetrics(k));
  for (const l of r.byLayer) emit('by_layer', { layer: l.layerId, kind: l.kind, fund: l.fund }, payMetrics(l));
  for (const f of r.byFund) emit('by_fund', { fund: f.fund, name: f.name }, payMetrics(f));
  for (const f of r.funds) {
    emit('funds', { fund: f.fund, region: f.region, name: f.name }, [
      ['allocatedSuperiorFen', f.allocated.superiorFen],
      ['allocatedLocalFen', f.allocated.localFen],
      ['allocatedCarryoverFen', f.allocated.carryoverFen],
      ['allocatedFen', f.allocated.totalFen],
      ['paidSettlementsFen', f.paid.settlementsFen],
      ['paidAdjustmentsFen', f.paid.adjustmentsFen],
      ['paidSubsidiesFen', f.paid.subsidiesFen],
      ['paidFen', f.paid.totalFen],
      ['receivedFen', f.receivedFen],
      ['balanceFen', f.balanceFen],
      ['usageRateBp', f.usageRateBp],
      ['persons', f.persons],
      ['personTimes', f.personTimes],
    ]);
  }
  emit('subsidies', {}, [
    ['persons', r.subsidies.persons],
    ['amountFen', r.subsidies.amountFen],
  ]);
  for (const c of r.subsidies.byCategory)
    emit('subsidies_by_category', { category: c.category, name: c.name }, [
      ['persons', c.persons],
      ['amountFen', c.amountFen],
    ]);
  const monitoringMetrics = (m: MonitoringCounts): Array<[string, number | null]> => [
    ['flaggedPersons', m.flaggedPersons],
    ['standingPersons', m.standingPersons],
    ['clearedPersons', m.clearedPersons],
  ];
  for (const m of r.monitoring) {
    const threshold = `${m.thresholdId}:${m.per}:${m.aboveFen}`;
    emit('monitoring', { threshold }, monitoringMetrics(m));
    for (const c of m.byCategory) emit('monitoring_by_category', { threshold, category: c.category, name: c.name }, monitoringMetrics(c));
  }
  emit('anomalies', {}, Object.entries(r.anomalies));
  // CRLF line ends, as RFC 4180 says; spreadsheets and csv parsers take them everywhere.
  return `${lines.join('\r\n')}\r\n`;
}
