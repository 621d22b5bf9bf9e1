// Who may call what: the one table of access rules, for every HTTP route and every gRPC method,
// and the one function that applies it. The table is read by the tests (test/access.e2e.spec.ts
// calls every route as every kind of caller and compares the answer with it) and by start-up: a
// route the service registers without a line here is refused to everyone (fail closed), and the
// suite fails on it.
//
// Two modes, chosen by whether credentials are configured (`--auth FILE`):
// - open (none): a local trial, bound to loopback only (main.ts). A caller without a token may use
//   the routes marked `trial`; the others need a named actor and so cannot be used at all.
// - with credentials: every route but the public ones needs an authenticated caller whose kind is
//   in `roles`; a hospital acts only on its own visits (`hospital: 'param' | 'body'` names where
//   the visit's hospitalId is).
import type { Actor, ActorKind } from '../shared/writer.js';

export type Role = Exclude<ActorKind, 'anonymous' | 'system'>;

export interface AccessRule {
  /** Anyone, in both modes (liveness, readiness and metrics for the orchestrator). */
  public?: true;
  /** Kinds of authenticated caller allowed. */
  roles: readonly Role[];
  /** A hospital caller must be the visit's hospital: found in the path (`:hospitalId`) or the body. */
  hospital?: 'param' | 'body';
  /** Open mode (no credentials configured): a caller without a token may use it. */
  trial?: boolean;
  /** Its answer holds personal data: each answered call is recorded in the access log (what it names). */
  personal?: 'person' | 'settlement' | 'list';
}

const PUBLIC: AccessRule = { public: true, roles: [] };
const OFFICE_READ: AccessRule = { roles: ['admin', 'auditor'], trial: true };
const OFFICE_LIST: AccessRule = { roles: ['admin', 'auditor'], trial: true, personal: 'list' };
const ADMIN_WRITE: AccessRule = { roles: ['admin'], trial: true };
/** Needs a named administrator even on a trial (the money routes, maker–checker): never anonymous. */
const ADMIN_NAMED: AccessRule = { roles: ['admin'] };
const ANY_CALLER: AccessRule = { roles: ['admin', 'auditor', 'hospital'], trial: true };

/** `METHOD /route/pattern` (Fastify's pattern) or `grpc Service/Method` → its rule. */
export const ACCESS_RULES: Readonly<Record<string, AccessRule>> = {
  'GET /health': PUBLIC,
  'GET /ready': PUBLIC,
  'GET /metrics': PUBLIC,
  // the published contract: any authenticated caller
  'GET /schemas': ANY_CALLER,
  'GET /schemas/:file': ANY_CALLER,
  'GET /docs': ANY_CALLER,
  'GET /docs/*': ANY_CALLER,
  // hospitals: their own visits
  'POST /v1/settlements': { roles: ['hospital'], hospital: 'body', trial: true },
  'POST /v1/settlements/preview': { roles: ['hospital'], hospital: 'body', trial: true },
  'POST /v1/settlements/:hospitalId/:visitId/reversal': { roles: ['hospital', 'admin'], hospital: 'param', trial: true },
  'GET /v1/settlements/:hospitalId/:visitId': {
    roles: ['hospital', 'admin', 'auditor'],
    hospital: 'param',
    trial: true,
    personal: 'settlement',
  },
  'GET /v1/settlements/:hospitalId/:visitId/fhir': {
    roles: ['hospital', 'admin', 'auditor'],
    hospital: 'param',
    trial: true,
    personal: 'settlement',
  },
  // the office: lists across hospitals and persons
  'GET /v1/settlements': { roles: ['admin', 'auditor'], personal: 'list' },
  'GET /v1/persons': { roles: ['admin', 'auditor'], personal: 'list' },
  'GET /v1/alerts': { roles: ['admin', 'auditor'], personal: 'list' },
  'GET /v1/persons/:personId': { ...OFFICE_READ, personal: 'person' },
  'POST /v1/persons/:personId/categories': ADMIN_WRITE,
  'POST /v1/persons/:personId/category-revocations': ADMIN_WRITE,
  'POST /v1/persons/:personId/approvals': ADMIN_WRITE,
  'POST /v1/persons/:personId/death': ADMIN_WRITE,
  // an identity number (kept as a keyed pseudonym) for 1101
  'POST /v1/persons/:personId/identity': ADMIN_WRITE,
  'POST /v1/policies': ADMIN_WRITE,
  'GET /v1/policies': OFFICE_READ,
  'GET /v1/policies/:policyId/:version': OFFICE_READ,
  'POST /v1/funds/allocations': ADMIN_NAMED,
  'POST /v1/funds/enrolment-subsidies': ADMIN_NAMED,
  'GET /v1/funds': OFFICE_READ,
  'POST /v1/adjustments': ADMIN_NAMED,
  'POST /v1/adjustments/:adjustmentId/approval': ADMIN_NAMED,
  'POST /v1/adjustments/:adjustmentId/rejection': ADMIN_NAMED,
  'GET /v1/adjustments/:adjustmentId': { roles: ['admin', 'auditor'], personal: 'list' },
  // who read whose data: the auditors' (reading it is recorded too)
  'GET /v1/access-log': { roles: ['auditor'], personal: 'list' },
  'GET /v1/ledger': OFFICE_LIST,
  'GET /v1/ledger/balances': OFFICE_READ,
  'GET /v1/reports/:year': OFFICE_READ,
  // policy impact simulations: the result lists persons (ids) whose self-pay changes most
  'POST /v1/simulations': { roles: ['admin', 'auditor'], trial: true },
  'GET /v1/simulations/:simulationId': OFFICE_LIST,
  // 对账: a hospital its own, the office every hospital's (the details name persons)
  'GET /v1/reconciliation/:hospitalId': { roles: ['hospital', 'admin', 'auditor'], hospital: 'param', trial: true },
  'GET /v1/reconciliation/:hospitalId/details': {
    roles: ['hospital', 'admin', 'auditor'],
    hospital: 'param',
    trial: true,
    personal: 'list',
  },
  // the national platform's format: hospitals, each only as its own fixmedins_code (checked by the gateway)
  'POST /nhsa/:infno': { roles: ['hospital'], trial: true },
  // gRPC (proto/medaid/settlement/v1/settlement.proto): the twins of the settlement routes
  'grpc SettlementService/Settle': { roles: ['hospital'], hospital: 'body', trial: true },
  'grpc SettlementService/Preview': { roles: ['hospital'], hospital: 'body', trial: true },
  'grpc SettlementService/Reverse': { roles: ['hospital', 'admin'], hospital: 'body', trial: true },
  'grpc SettlementService/Get': { roles: ['hospital', 'admin', 'auditor'], hospital: 'body', trial: true, personal: 'settlement' },
};

/** The rule of a route; Swagger's own pages (/docs/…, /docs-json, /docs-yaml) share one. */
export function ruleOf(key: string): AccessRule | undefined {
  return ACCESS_RULES[key] ?? (/^GET \/docs(\/|-json$|-yaml$)/.test(key) ? ACCESS_RULES['GET /docs/*'] : undefined);
}

export type Refusal = { status: 401 | 403; code: 'UNAUTHENTICATED' | 'FORBIDDEN'; message: string; field?: string };

/**
 * null when the caller may call the route; else why not. `credentials`: whether the service was
 * started with any (open trial mode otherwise). `hospitalId`: the visit's hospital, when the rule
 * scopes hospitals and the request names one (a request without one is refused by validation).
 */
export function authorize(key: string, actor: Actor, credentials: boolean, hospitalId: () => unknown): Refusal | null {
  const rule = ruleOf(key);
  if (rule === undefined) return { status: 403, code: 'FORBIDDEN', message: 'this route has no access rule; it is closed' };
  if (rule.public) return null;
  if (actor.kind === 'anonymous') {
    if (!credentials && rule.trial === true) return null;
    return {
      status: 401,
      code: 'UNAUTHENTICATED',
      message: `this route needs a token of kind ${rule.roles.join(' or ')}: send "Authorization: Bearer <token>"`,
    };
  }
  if (!(rule.roles as readonly string[]).includes(actor.kind))
    return {
      status: 403,
      code: 'FORBIDDEN',
      message: `a ${actor.kind} may not do this; it needs a token of kind ${rule.roles.join(' or ')}`,
    };
  if (actor.kind === 'hospital' && rule.hospital !== undefined) {
    const named = hospitalId();
    if (typeof named === 'string' && named !== actor.id)
      return { status: 403, code: 'FORBIDDEN', message: `hospital ${actor.id} may act only on its own visits`, field: 'hospitalId' };
  }
  return null;
}
