// The access rules as a function: the two modes, roles, and a hospital's scope. The same table is
// exercised end to end, route by route and caller by caller, in test/access.e2e.spec.ts.
import { describe, expect, it } from '@jest/globals';
import { ACCESS_RULES, authorize } from './access.js';
import type { Actor } from '../shared/writer.js';

const anonymous: Actor = { kind: 'anonymous', id: 'anonymous' };
const admin: Actor = { kind: 'admin', id: 'a1' };
const auditor: Actor = { kind: 'auditor', id: 'u1' };
const ha: Actor = { kind: 'hospital', id: 'h-a' };
const outcome = (key: string, actor: Actor, credentials: boolean, hospitalId?: string) =>
  authorize(key, actor, credentials, () => hospitalId)?.status ?? 'allowed';

describe('authorize', () => {
  it('with credentials: anonymous callers get 401 everywhere but the public routes', () => {
    for (const key of Object.keys(ACCESS_RULES)) {
      expect([key, outcome(key, anonymous, true)]).toEqual([key, ACCESS_RULES[key]!.public ? 'allowed' : 401]);
    }
  });

  it('without credentials (local trial): anonymous callers may use the trial routes only', () => {
    expect(outcome('POST /v1/settlements', anonymous, false)).toBe('allowed');
    expect(outcome('POST /v1/policies', anonymous, false)).toBe('allowed');
    expect(outcome('POST /v1/funds/allocations', anonymous, false)).toBe(401);
    expect(outcome('GET /v1/settlements', anonymous, false)).toBe(401);
  });

  it('a hospital settles, previews, reverses and reads its own visits only, and nothing of the office', () => {
    expect(outcome('POST /v1/settlements', ha, true, 'h-a')).toBe('allowed');
    expect(outcome('POST /v1/settlements', ha, true, 'h-b')).toBe(403);
    expect(outcome('POST /v1/settlements/preview', ha, true, 'h-b')).toBe(403);
    expect(outcome('POST /v1/settlements/:hospitalId/:visitId/reversal', ha, true, 'h-b')).toBe(403);
    expect(outcome('GET /v1/settlements/:hospitalId/:visitId', ha, true, 'h-b')).toBe(403);
    expect(outcome('GET /v1/settlements/:hospitalId/:visitId', ha, true, 'h-a')).toBe('allowed');
    expect(outcome('grpc SettlementService/Reverse', ha, true, 'h-b')).toBe(403);
    for (const key of ['POST /v1/policies', 'GET /v1/persons/:personId', 'GET /v1/ledger', 'POST /v1/persons/:personId/death'])
      expect([key, outcome(key, ha, true)]).toEqual([key, 403]);
  });

  it("an auditor reads everything and changes nothing; an admin may not settle in a hospital's name", () => {
    for (const [key, rule] of Object.entries(ACCESS_RULES)) {
      if (rule.public) continue;
      // (a simulation is a POST that records nothing: a computation over the log, which issue 15 gives auditors too)
      const reads = key.startsWith('GET ') || key === 'grpc SettlementService/Get' || key === 'POST /v1/simulations';
      expect([key, outcome(key, auditor, true)]).toEqual([key, reads ? 'allowed' : 403]);
    }
    expect(outcome('POST /v1/settlements', admin, true, 'h-a')).toBe(403);
    expect(outcome('POST /v1/settlements/:hospitalId/:visitId/reversal', admin, true, 'h-a')).toBe('allowed');
  });

  it('a route without a rule is closed to everyone, admins included', () => {
    expect(outcome('DELETE /v1/settlements', admin, true)).toBe(403);
    expect(outcome('DELETE /v1/settlements', anonymous, false)).toBe(403);
  });
});
