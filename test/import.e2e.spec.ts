// `medaid import` (issue 11): a file of past commands recorded through the service's handlers,
// many at once, killed with SIGKILL part-way and run again — and the store ends exactly as
// `medaid simulate` (one command at a time, the reference) leaves it. Real child processes.
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT, Service, discharge, removeDir, runSimulate, startService, tempDir } from './support/service.js';

type Obj = Record<string, any>;
const dirs: string[] = [];
const services: Service[] = [];
afterAll(async () => {
  for (const s of services) if (s.process.exitCode === null && s.process.signalCode === null) await s.stop('SIGKILL');
  for (const d of dirs) removeDir(d);
});

const CATEGORIES = ['tekun', 'dibao', 'sixin', 'dibao_edge', 'illness_poor'];

/** Policy, persons' facts, settlements (some with the old system's amounts kept), reversals, and a few bad lines. */
function history(settlements: number, persons: number): string[] {
  const policy = JSON.parse(readFileSync(join(ROOT, 'apps/medaid/assets/demo-policy.json'), 'utf8')) as unknown;
  const lines: Obj[] = [{ type: 'PublishPolicy', policy }];
  for (let p = 0; p < persons; p++) {
    if (p % 9 !== 8) lines.push({ type: 'AssignCategory', personId: `p-imp-${p}`, category: CATEGORIES[p % 5], validFrom: '2012-01-01' });
    if (p % 4 === 0)
      lines.push({ type: 'GrantApproval', personId: `p-imp-${p}`, approvalNo: `A-${p}`, validFrom: '2012-01-01', validTo: '2012-12-31' });
  }
  const bad = [
    'not json',
    '{"type":"Settle"}',
    JSON.stringify({ type: 'SettleDischarge', ...discharge({ visitId: 'bad-1', totalFen: -1 }) }),
    JSON.stringify({ type: 'AssignCategory', personId: 'p-imp-0', category: 'nobody', validFrom: '2012-01-01' }),
  ];
  const out = lines.map((l) => JSON.stringify(l));
  for (let i = 0; i < settlements; i++) {
    const p = (i * 7) % persons;
    const month = String(1 + (i % 12)).padStart(2, '0');
    const d = discharge({
      personId: `p-imp-${p}`,
      visitId: `imp-${i}`,
      hospitalId: ['h-county', 'h-city', 'h-town'][i % 3],
      hospitalLevel: ['county', 'city', 'township'][i % 3],
      admissionDate: `2012-${month}-01`,
      dischargeDate: `2012-${month}-11`,
      totalFen: 80_000 + ((i * 7_919) % 2_400_000),
      fullOwnPayFen: (i * 131) % 40_000,
      ...(i % 10 === 3 ? { externalPayments: { basic: 20_000 + (i % 7) * 1_000 } } : {}),
    });
    out.push(JSON.stringify({ type: 'SettleDischarge', ...d }));
    if (i % 25 === 24)
      out.push(
        JSON.stringify({ type: 'ReverseSettlement', hospitalId: d.hospitalId, visitId: `imp-${i - 10}`, reason: 'old system: reversed' }),
      );
    if (i % 500 === 17) out.push(bad[((i / 500) | 0) % bad.length]!);
  }
  return out;
}

function runImport(
  dataDir: string,
  input: string,
  killAfterProgressLines?: number,
): Promise<{ signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'import', '--data', dataDir, '--input', input, '--concurrency', '64'], {
    cwd: ROOT,
    env: { ...process.env, MEDAID_IMPORT_PROGRESS_MS: '100' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (
      killAfterProgressLines !== undefined &&
      stderr.split('\n').filter((l) => l.startsWith('import: line')).length >= killAfterProgressLines
    )
      child.kill('SIGKILL');
  });
  return new Promise((resolve) => child.on('exit', (_code, signal) => resolve({ signal, stdout, stderr })));
}

const summaryOf = (stdout: string) => (JSON.parse(stdout.trim().split('\n').pop()!) as { summary: Obj }).summary;
const refusalsOf = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Obj)
    .filter((o) => o.line !== undefined);

describe('medaid import', () => {
  it('killed part-way and run again, records the file exactly as simulate does, says what it refused, and a third run records nothing', async () => {
    const dir = tempDir('medaid-import-');
    dirs.push(dir);
    const input = join(dir, 'history.jsonl');
    const lines = history(4_000, 300);
    writeFileSync(input, `${lines.join('\n')}\n`);
    const reference = runSimulate(['--input', input]);
    expect(reference.status).toBe(0);
    expect(reference.lines).toHaveLength(lines.length);
    const dataDir = join(dir, 'data');

    // When the import is killed with SIGKILL once it has shown progress, then run again to the end
    const first = await runImport(dataDir, input, 3);
    expect(first.signal).toBe('SIGKILL');
    const saved = JSON.parse(readFileSync(join(dataDir, 'import-progress.json'), 'utf8')) as { done: number };
    expect(saved.done).toBeGreaterThan(0);
    expect(saved.done).toBeLessThan(lines.length);
    const second = await runImport(dataDir, input);
    expect(second.signal).toBeNull();
    const summary = summaryOf(second.stdout);
    expect(summary.lines).toBe(lines.length);
    expect(summary.skippedBeforeResume).toBeGreaterThanOrEqual(saved.done);
    expect(summary.recorded + summary.alreadyRecorded + summary.refused + summary.skippedBeforeResume + summary.previews).toBe(
      lines.length,
    );

    // Then what it refused (over both runs; a refused line in flight at the kill is decided, and printed, again) is what simulate refuses, line by line, with a code and why
    const refused = [...new Map([...refusalsOf(first.stdout), ...refusalsOf(second.stdout)].map((r) => [r.line, r])).values()];
    const expectedRefusals = reference.lines
      .map((l, i) => [i + 1, JSON.parse(l) as Obj] as const)
      .filter(([, o]) => !o.ok)
      .map(([n, o]) => [n, o.error.code]);
    expect(expectedRefusals.length).toBeGreaterThanOrEqual(8);
    expect(refused.map((r) => [r.line, r.code]).sort((a, b) => a[0] - b[0])).toEqual(expectedRefusals);
    expect(refused.every((r) => typeof r.message === 'string' && r.message.length > 0)).toBe(true);

    // and every visit is as simulate left it: the same settlement, reversed where the file reverses it
    const svc = await startService({ dataDir, demoPolicy: false });
    services.push(svc);
    const lastOfVisit = new Map<string, Obj>();
    reference.lines.forEach((l, i) => {
      const o = JSON.parse(l) as Obj;
      if (!o.ok) return;
      const command = JSON.parse(lines[i]!) as Obj;
      if (command.type === 'SettleDischarge' || command.type === 'ReverseSettlement')
        lastOfVisit.set(`${command.hospitalId}/${command.visitId}`, o.result);
    });
    expect(lastOfVisit.size).toBeGreaterThan(3_900);
    const keys = [...lastOfVisit.keys()];
    for (let k = 0; k < keys.length; k += 50) {
      const batch = keys.slice(k, k + 50);
      const views = await Promise.all(batch.map(async (key) => (await (await fetch(`${svc.url}/v1/settlements/${key}`)).json()) as Obj));
      views.forEach((view, j) => {
        const { settledAtMs: _s, reversal: _r, ...current } = view.current as Obj;
        const expected = lastOfVisit.get(batch[j]!)!;
        expect([batch[j], current]).toEqual([batch[j], { ...expected, duplicate: false }]);
      });
    }
    await svc.stop();

    // When the same file is imported a third time: nothing is left to record
    const third = summaryOf((await runImport(dataDir, input)).stdout);
    expect([third.recorded, third.skippedBeforeResume]).toEqual([0, lines.length]);
  }, 180_000);
});
