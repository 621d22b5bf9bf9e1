// What the access matrices of test/access.e2e.spec.ts and test/identity.e2e.spec.ts call: every
// HTTP route of the one table of rules (apps/medaid/src/http/access.ts) with its path filled in
// for hospital h-a's visit, a body for the write routes, and the answer the table expects of a caller.
import { ACCESS_RULES, authorize } from '../../apps/medaid/src/http/access.js';
import type { Actor } from '../../apps/medaid/src/shared/writer.js';
import { discharge } from './service.js';

export interface Caller {
  name: string;
  headers: Record<string, string>;
  /** What access.ts knows of this caller; 'invalid' for a credential that proves nothing. */
  actor: Actor | 'invalid';
}

/** The visit every call is about: hospital h-a's. */
export const VISIT = discharge({ hospitalId: 'h-a', visitId: 'acc-1', personId: 'p-acc' });
const PARAMS: Record<string, string> = {
  hospitalId: 'h-a',
  visitId: 'acc-1',
  personId: 'p-acc',
  policyId: 'demo-county',
  version: '1',
  adjustmentId: '00000000-0000-0000-0000-000000000000',
  year: '2012',
  file: 'discharge.schema.json',
  simulationId: '00000000-0000-0000-0000-000000000000',
  infno: '2303',
};
/** A body for each write route: valid where it is cheap, since a refused caller must be refused before validation anyway. */
const BODIES: Record<string, unknown> = {
  'POST /v1/settlements': VISIT,
  'POST /v1/settlements/preview': VISIT,
  'POST /v1/settlements/:hospitalId/:visitId/reversal': { reason: 'access test' },
  'POST /v1/persons/:personId/categories': { category: 'dibao', validFrom: '2012-01-01' },
};

export const HTTP_KEYS = Object.keys(ACCESS_RULES).filter((k) => !k.startsWith('grpc ') && k !== 'GET /docs/*');

/** The method, the path and the body of a call of this route. */
export function callOf(key: string): { method: string; path: string; body: unknown } {
  const [method, pattern] = key.split(' ') as [string, string];
  const path = pattern.replace(/:([A-Za-z]+)/g, (_, name: string) => PARAMS[name]!);
  return { method, path, body: method === 'POST' ? (BODIES[key] ?? {}) : undefined };
}

/** 401/403 and the code the table expects of this caller on this route, or 'allowed'. */
export function expected(key: string, caller: Caller): string {
  if (caller.actor === 'invalid') return '401 UNAUTHENTICATED'; // refused on every route, public ones included
  const refusal = authorize(key, caller.actor, true, () => 'h-a');
  return refusal === null ? 'allowed' : `${refusal.status} ${refusal.code}`;
}
