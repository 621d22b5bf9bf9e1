// The shared scenarios (../shared/spec/examples/scenarios): reading them, comparing printed lines the
// way the contract says (ignoring `settlementId` and error messages), and playing them over HTTP.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SCENARIOS, http } from './service.js';
import { schemaValidator } from './schemas.js';

export const scenarios = readdirSync(SCENARIOS)
  .filter((f) => f.endsWith('.commands.jsonl'))
  .sort();
export const readLines = (file: string) =>
  readFileSync(join(SCENARIOS, file), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
export const expectedOf = (file: string) => readLines(file.replace('.commands.', '.expected.'));

/** Drops what the comparison ignores; keeps every other byte as the tool printed it. */
export function comparable(line: string): string {
  const o = JSON.parse(line) as { ok: boolean; result?: Record<string, unknown>; error?: Record<string, unknown> };
  if (o.ok && o.result && typeof o.result === 'object') delete o.result.settlementId;
  if (!o.ok && o.error) delete o.error.message;
  return JSON.stringify(o);
}

/** The HTTP request that carries a simulate command; null for what only a command file can say. */
export function toRequest(command: Record<string, unknown>): { method: string; path: string; body: unknown } | null {
  const { type, ...fields } = command;
  const person = (suffix: string) => {
    const { personId, ...body } = fields;
    return { method: 'POST', path: `/v1/persons/${encodeURIComponent(String(personId))}/${suffix}`, body };
  };
  switch (type) {
    case 'PublishPolicy':
      return { method: 'POST', path: '/v1/policies', body: fields.policy };
    case 'AssignCategory':
      return person('categories');
    case 'RevokeCategory':
      return person('category-revocations');
    case 'GrantApproval':
      return person('approvals');
    case 'RecordDeath':
      return person('death');
    case 'SettleDischarge':
      return { method: 'POST', path: '/v1/settlements', body: fields };
    case 'PreviewDischarge':
      return { method: 'POST', path: '/v1/settlements/preview', body: fields };
    case 'ReverseSettlement': {
      const { hospitalId, visitId, ...body } = fields;
      return {
        method: 'POST',
        path: `/v1/settlements/${encodeURIComponent(String(hospitalId))}/${encodeURIComponent(String(visitId))}/reversal`,
        body,
      };
    }
    default:
      return null; // an unknown `type` has no HTTP route
  }
}

/**
 * Posts every command of a scenario to its route on a started service and returns, per command
 * with a route, `index: printed line` next to `index: expected line`.
 */
let checkSchema: ReturnType<typeof schemaValidator> | undefined;

export async function playOverHttp(baseUrl: string, file: string): Promise<{ actual: string[]; expected: string[] }> {
  const expected = expectedOf(file);
  const actual: string[] = [];
  const wanted: string[] = [];
  for (const [i, line] of readLines(file).entries()) {
    const request = toRequest(JSON.parse(line) as Record<string, unknown>);
    if (request === null) continue;
    const reply = await http(baseUrl, request.method, request.path, request.body);
    // every answer matches its published schema (settlement results and errors)
    checkSchema ??= schemaValidator();
    const violations =
      reply.status >= 400
        ? checkSchema('error', reply.body)
        : request.path.startsWith('/v1/settlements')
          ? checkSchema('settlement-result', reply.body)
          : [];
    if (violations.length > 0) throw new Error(`line ${i}: the answer does not match its schema: ${violations.join('; ')}`);
    const printed = reply.status < 300 ? { ok: true, result: reply.body } : { ok: false, error: { code: reply.body.code } };
    actual.push(`${i}: ${comparable(JSON.stringify(printed))}`);
    wanted.push(`${i}: ${expected[i]}`);
  }
  return { actual, expected: wanted };
}
