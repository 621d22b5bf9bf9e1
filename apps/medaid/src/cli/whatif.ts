// `medaid whatif --draft FILE --year Y`: what a draft policy would have cost, replayed over the
// year's discharges from the event log (simulation/whatif.ts). Read-only, like the audits: no
// event is appended, no lock is taken, so it runs next to a running service.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { validatePolicy, type Policy } from '#domain';
import { openEventStore, storeUrlFrom } from '../infrastructure/runtime.js';
import { Progress, followLog } from '../ledger/audit-support.js';
import { WhatIf, type Totals, type WhatIfResult } from '../simulation/whatif.js';
import { csvField, percent, renderTable, yuan } from './report-format.js';

export const WHATIF_USAGE = `medaid whatif --draft FILE [--draft FILE …] --year Y [--region R] [--format table|csv|json]
              [--threshold FEN[,FEN…]] [--top N] [--data DIR] [--store esdb://…|postgres://…]

  Settles every discharge settled in year Y (region R; default: the drafts' region) again under
  each draft policy (a policy document as for POST /v1/policies), in the log's order, with each
  person's categories, approvals and death as they were at the time and reversals applied, in
  memory; compares with what was actually paid: totals by layer kind, layer, fund, category and
  visit type, persons (人数) and person-times (人次), the patient's share (个人负担比例) by decile
  and by category, persons whose year's self-pay is above each --threshold (fen), the --top
  (default 20) largest changes per person (ids only), and the discharges a draft cannot settle.
  Nothing is written. Progress on stderr.`;

export interface WhatIfIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export async function runWhatIf(args: string[], io: WhatIfIo = process): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      draft: { type: 'string', multiple: true, default: [] },
      year: { type: 'string' },
      region: { type: 'string' },
      format: { type: 'string', default: 'table' },
      threshold: { type: 'string', multiple: true, default: [] },
      top: { type: 'string', default: '20' },
      data: { type: 'string', default: process.env.MEDAID_DATA ?? 'data' },
      store: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${WHATIF_USAGE}\n`);
    return 0;
  }
  const year = Number(values.year);
  if (!Number.isInteger(year) || year < 1900 || year > 2200) throw new Error('--year must be a year (1900 to 2200)');
  const format = values.format;
  if (format !== 'table' && format !== 'csv' && format !== 'json') throw new Error('--format must be table, csv or json');
  const top = Number(values.top);
  if (!Number.isInteger(top) || top < 0 || top > 10_000) throw new Error('--top must be 0 to 10000');
  const thresholdsFen = (values.threshold ?? [])
    .flatMap((t) => t.split(','))
    .map((t) => {
      const fen = Number(t);
      if (!Number.isSafeInteger(fen) || fen < 0 || fen > 1e11) throw new Error(`--threshold ${t}: must be an amount in fen (0 to 10^11)`);
      return fen;
    });
  const drafts = (values.draft ?? []).map(readDraft);
  if (drafts.length === 0) throw new Error('whatif needs --draft FILE (a policy document)');
  if (drafts.length > 10) throw new Error('at most 10 drafts at once');
  const region = values.region ?? drafts[0]!.region;
  const foreign = drafts.find((d) => d.region !== region);
  if (foreign !== undefined) throw new Error(`draft ${foreign.policyId} is for region ${foreign.region}, not ${region}`);

  const dataDir = resolve(values.data);
  const storeUrl = storeUrlFrom(values.store, process.env);
  if (storeUrl === undefined && !existsSync(join(dataDir, 'events.sqlite')))
    throw new Error(`no event store in ${dataDir} (events.sqlite); give --data DIR`);
  const store = await openEventStore(dataDir, { storeUrl });
  try {
    const head = await store.headPosition();
    const progress = new Progress('whatif', io.stderr, head);
    const whatIf = new WhatIf(drafts, { year, region, thresholdsFen, topChanges: top });
    await followLog(store, head, (page) => {
      for (const e of page) whatIf.event(e);
      progress.page(page.length, page[page.length - 1]!.position);
    });
    progress.done();
    const result = whatIf.result();
    io.stdout.write(
      format === 'json' ? `${JSON.stringify(result, null, 2)}\n` : format === 'csv' ? whatIfToCsv(result) : whatIfToTable(result),
    );
    return 0;
  } finally {
    await store.close();
  }
}

function readDraft(path: string): Policy {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`--draft ${path}: ${(e as NodeJS.ErrnoException).code ?? 'not valid JSON'}`);
  }
  const policy = validatePolicy(raw);
  if (!policy.ok)
    throw new Error(
      `--draft ${path}: ${policy.error.message}\n${policy.error.details.map((d) => `  ${d.field}: ${d.problem}`).join('\n')}`,
    );
  return policy.value;
}

// ---- output ---------------------------------------------------------------------------------------

/** Every figure of the comparison as [section, key, metric, actual, draft per draft]: what csv and table print. */
function figures(r: WhatIfResult): Array<{ section: string; key: string; metric: string; money: boolean; values: number[] }> {
  const rows: Array<{ section: string; key: string; metric: string; money: boolean; values: number[] }> = [];
  const sides: Totals[] = [r.actual, ...r.drafts.map((d) => d.totals)];
  const push = (section: string, key: string, metric: string, money: boolean, get: (t: Totals) => number | undefined) =>
    rows.push({ section, key, metric, money, values: sides.map((t) => get(t) ?? 0) });
  const keys = (pick: (t: Totals) => Record<string, unknown>) => [...new Set(sides.flatMap((t) => Object.keys(pick(t))))].sort();
  push('total', 'all', 'persons 人数', false, (t) => t.persons);
  push('total', 'all', 'settlements 人次', false, (t) => t.settlements);
  push('total', 'all', 'totalFen 医疗费总额', true, (t) => t.totalFen);
  push('total', 'all', 'fundPayFen 基金支付合计', true, (t) => t.fundPayFen);
  push('total', 'all', 'patientPayFen 个人负担', true, (t) => t.patientPayFen);
  for (const k of keys((t) => t.byKind)) push('layer kind', k, 'payFen', true, (t) => t.byKind[k]);
  for (const k of keys((t) => t.byLayer)) push('layer', k, 'payFen', true, (t) => t.byLayer[k]);
  for (const k of keys((t) => t.byFund)) push('fund', k, 'payFen', true, (t) => t.byFund[k]);
  for (const k of keys((t) => t.byCategory)) {
    push('category', k, 'persons 人数', false, (t) => t.byCategory[k]?.persons);
    push('category', k, 'settlements 人次', false, (t) => t.byCategory[k]?.settlements);
    push('category', k, 'fundPayFen', true, (t) => t.byCategory[k]?.fundPayFen);
    push('category', k, 'patientPayFen', true, (t) => t.byCategory[k]?.patientPayFen);
  }
  for (const k of keys((t) => t.byVisitType)) {
    push('visit type', k, 'settlements 人次', false, (t) => t.byVisitType[k]?.settlements);
    push('visit type', k, 'fundPayFen', true, (t) => t.byVisitType[k]?.fundPayFen);
    push('visit type', k, 'patientPayFen', true, (t) => t.byVisitType[k]?.patientPayFen);
  }
  for (let i = 0; i < 10; i++) push('patient share 个人负担比例', `p${(i + 1) * 10}`, 'share bp', false, (t) => t.shareDecilesBp[i]);
  for (const k of keys((t) => t.shareDecilesBpByCategory))
    for (let i = 0; i < 10; i++)
      push(`patient share by category`, `${k} p${(i + 1) * 10}`, 'share bp', false, (t) => t.shareDecilesBpByCategory[k]?.[i]);
  for (const k of keys((t) => t.personsAboveThreshold))
    push('persons above threshold', `${k} fen`, 'persons', false, (t) => t.personsAboveThreshold[k]);
  return rows;
}

export function whatIfToCsv(r: WhatIfResult): string {
  const header = ['section', 'key', 'metric', 'actual', ...r.drafts.map((d) => `draft ${d.policyId} v${d.version}`)];
  const lines = [header.map(csvField).join(',')];
  for (const f of figures(r)) lines.push([f.section, f.key, f.metric, ...f.values.map(String)].map(csvField).join(','));
  r.drafts.forEach((d, i) => {
    for (const [code, n] of Object.entries(d.unsettled.byCode))
      lines.push(['cannot settle', code, 'settlements', '', ...r.drafts.map((_, j) => (j === i ? String(n) : ''))].map(csvField).join(','));
    for (const m of d.monitoring)
      lines.push(
        [
          `monitoring thresholds, draft ${i + 1}`,
          `${m.thresholdId} (${m.per} > ${m.aboveFen} fen)`,
          'persons',
          String(m.actualPersons),
          ...r.drafts.map((_, j) => (j === i ? String(m.draftPersons) : '')),
        ]
          .map(csvField)
          .join(','),
      );
    for (const c of d.largestChanges)
      lines.push(
        [
          `largest changes, draft ${i + 1}`,
          c.personId,
          'patientPayFen',
          String(c.actualPatientPayFen),
          ...r.drafts.map((_, j) => (j === i ? String(c.draftPatientPayFen) : '')),
        ]
          .map(csvField)
          .join(','),
      );
  });
  return `${lines.join('\r\n')}\r\n`;
}

export function whatIfToTable(r: WhatIfResult): string {
  const out: string[] = [];
  out.push(
    `medaid whatif: year ${r.year}, region ${r.region}: ${r.settledInScope.toLocaleString('en-US')} settlements in scope (${r.events.toLocaleString('en-US')} events read)`,
  );
  r.drafts.forEach((d, i) =>
    out.push(
      `  draft ${i + 1}: ${d.policyId} v${d.version}${d.name === null ? '' : ` (${d.name})`}: ${d.identicalSettlements.toLocaleString('en-US')} of ${d.totals.settlements.toLocaleString('en-US')} settlements unchanged; cannot settle ${d.unsettled.count}`,
    ),
  );
  out.push('');
  const header = ['section', 'key', 'metric', 'actual', ...r.drafts.flatMap((_, i) => [`draft ${i + 1}`, `Δ ${i + 1}`])];
  const rows = figures(r).map((f) => {
    const show = (v: number) => (f.money ? yuan(v) : f.metric === 'share bp' ? percent(v) : v.toLocaleString('en-US'));
    const [actual, ...drafts] = f.values as [number, ...number[]];
    return [
      f.section,
      f.key,
      f.metric.replace('Fen', ' 元').replace('share bp', 'share %'),
      show(actual),
      ...drafts.flatMap((v) => [show(v), signed(v - actual, show)]),
    ];
  });
  out.push(renderTable(header, rows, 3));
  r.drafts.forEach((d, i) => {
    if (d.unsettled.count > 0) {
      out.push('', `draft ${i + 1} cannot settle ${d.unsettled.count}: ${JSON.stringify(d.unsettled.byCode)}`);
      for (const u of d.unsettled.listed.slice(0, 20)) out.push(`  ${u.settlementId} (${u.personId}): ${u.code} ${u.message}`);
    }
    if (d.monitoring.length > 0) {
      out.push('', `draft ${i + 1}: persons over its monitoring thresholds (因病返贫致贫监测 预警人数)`);
      out.push(
        renderTable(
          ['threshold', 'actual', 'draft', 'Δ'],
          d.monitoring.map((m) => [
            `${m.thresholdId} (${m.per} > ${yuan(m.aboveFen)} 元)`,
            m.actualPersons.toLocaleString('en-US'),
            m.draftPersons.toLocaleString('en-US'),
            signed(m.draftPersons - m.actualPersons, (v) => v.toLocaleString('en-US')),
          ]),
        ),
      );
    }
    if (d.largestChanges.length > 0) {
      out.push('', `draft ${i + 1}: largest changes of a person's year self-pay (个人负担), 元`);
      out.push(
        renderTable(
          ['personId', 'actual', 'draft', 'Δ'],
          d.largestChanges.map((c) => [c.personId, yuan(c.actualPatientPayFen), yuan(c.draftPatientPayFen), signed(c.deltaFen, yuan)]),
        ),
      );
    }
  });
  return `${out.join('\n')}\n`;
}

const signed = (delta: number, show: (v: number) => string) => (delta > 0 ? `+${show(delta)}` : delta < 0 ? `-${show(-delta)}` : '0');
