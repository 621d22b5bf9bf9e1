// Who a caller is, from any of the three places an office has identities (README, "Security"):
// the token file (auth.ts), JWT bearer tokens its identity provider signs (verified against a JWKS
// file or URL with `jose`), and client certificates (mutual TLS on HTTP and gRPC, the certificate's
// subject mapped to a hospital or another role). All three come from the one file `--auth FILE`:
//
//   {"tokens": [...],
//    "jwt": {"jwks": "jwks.json" | "https://idp/…/jwks", "issuer": "…", "audience": "medaid",
//            "roleClaim": "medaid_role", "roles": {"<claim value>": "admin"|"hospital"|"auditor"},
//            "hospitalClaim": "medaid_hospital", "idClaim": "sub", "algorithms": ["ES256", …],
//            "clockToleranceSeconds": 30},
//    "tls": {"cert": "server.pem", "key": "server-key.pem", "clientCa": "clients-ca.pem",
//            "clientCertificates": "optional"|"required",
//            "clients": [{"subject": {"CN": "his.h-a"}, "kind": "hospital", "id": "h-a"}]}}
//
// Relative paths are read from the auth file's directory, once, at start. A refusal names the
// entry and the problem, never a secret. Nothing here logs.
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey } from 'jose';
import { ID_PATTERN } from '#domain';
import type { Actor } from '../shared/writer.js';
import { AuthFileError, TOKEN_KINDS, TokenTable } from './auth.js';
import type { TokenKind } from './auth.js';

/** Why a caller is not let in: 401 for a credential that does not prove who it is, 503 when the keys to check it cannot be had. */
export interface Unproven {
  status: 401 | 503;
  code: 'UNAUTHENTICATED' | 'IDENTITY_UNAVAILABLE';
  message: string;
}

/** What the transport knows of the client's certificate (HTTP: the TLS socket; gRPC: the call's auth context). */
export interface PeerCertificate {
  /** Whether it chains to the configured client CA (and is within its validity). */
  authorized: boolean;
  /** Why not, when it does not (Node's authorizationError, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE). */
  error?: string;
  subject: Record<string, string | string[] | undefined>;
}

/** The asymmetric algorithms a JWKS holds keys for; HMAC (HS*) and `none` are never accepted. */
const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
const DEFAULT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519'];
const MAX_CLOCK_TOLERANCE_S = 300;
/** Compact JWS: three base64url parts. Anything else is looked up in the token file only. */
const COMPACT_JWS = /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+$/;
/** A token longer than this is refused before any work is done on it. */
const MAX_JWT_CHARS = 8_192;
const MAX_FILE_BYTES = 1024 * 1024;
const SUBJECT_ATTRIBUTES = /^(CN|O|OU|L|ST|C|serialNumber|emailAddress|UID|DC)$/;

interface JwtSettings {
  keys: JWTVerifyGetKey;
  issuer: string;
  audience: string;
  algorithms: string[];
  roleClaim: string[];
  roles: Map<string, TokenKind>;
  hospitalClaim: string[];
  idClaim: string[];
  clockToleranceSeconds: number;
}

interface ClientMapping {
  subject: Record<string, string>;
  actor: Actor;
}

/** The TLS material of both servers, read at start. */
export interface TlsSettings {
  cert: Buffer;
  key: Buffer;
  /** The CA client certificates must chain to; null: no client certificates are asked for. */
  clientCa: Buffer | null;
  /** 'required': a connection without a valid client certificate is refused in the handshake. */
  clientCertificates: 'optional' | 'required';
}

/** Verified JWTs kept (by digest) until they expire, so a hospital's system is not re-verified on every call. */
const MAX_VERIFIED_JWTS = 10_000;

export class Credentials {
  /** SHA-256 of a verified JWT → its actor and expiry (ms); oldest dropped first past MAX_VERIFIED_JWTS. */
  private readonly verified = new Map<string, { actor: Actor; expiresMs: number }>();

  private constructor(
    /** The token file's entries; null when the file has no `tokens`. */
    readonly tokens: TokenTable | null,
    private readonly jwt: JwtSettings | null,
    readonly tls: TlsSettings | null,
    private readonly clients: ClientMapping[],
  ) {}

  /** What the start-up line reports (no secrets). */
  get summary(): { tokens: number; jwt: boolean; tls: boolean; clientCertificates: number } {
    return { tokens: this.tokens?.size ?? 0, jwt: this.jwt !== null, tls: this.tls !== null, clientCertificates: this.clients.length };
  }

  /** The key a hospital signs its Kafka discharges with (derived from its token-file token). */
  kafkaKeyOf(hospitalId: string): Buffer | undefined {
    return this.tokens?.kafkaKeyOf(hospitalId);
  }

  static load(path: string): Credentials {
    return Credentials.parse(readBounded(path, 'auth file'), path);
  }

  /** Parses an auth file's text; `path` names it in refusals and is where relative paths start. */
  static parse(text: string, path = 'auth file'): Credentials {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      // The parser's message may quote the text, which holds tokens: say only where.
      throw new AuthFileError(`${path} is not valid JSON`);
    }
    const problem = (where: string, what: string) => new AuthFileError(`${path}: ${where} ${what}`);
    if (!isObject(doc)) throw problem('the document', 'must be an object with "tokens", "jwt" and/or "tls"');
    const unknown = Object.keys(doc).find((k) => k !== 'tokens' && k !== 'jwt' && k !== 'tls');
    if (unknown !== undefined) throw problem('the document', `has a field "${unknown.slice(0, 40)}" that is not tokens, jwt or tls`);
    if (doc.tokens === undefined && doc.jwt === undefined && doc.tls === undefined)
      throw problem('the document', 'must hold "tokens", "jwt" or "tls" (with clients)');
    const base = path === 'auth file' ? process.cwd() : dirname(path);
    const tokens = doc.tokens === undefined ? null : TokenTable.fromEntries(doc.tokens, path);
    const jwt = doc.jwt === undefined ? null : parseJwt(doc.jwt, base, problem);
    const { tls, clients } = doc.tls === undefined ? { tls: null, clients: [] } : parseTls(doc.tls, base, problem);
    if (tokens === null && jwt === null && clients.length === 0)
      throw problem('the document', 'names no caller: give "tokens", "jwt", or "tls" with "clients"');
    return new Credentials(tokens, jwt, tls, clients);
  }

  /**
   * The actor of a request: its `Authorization: Bearer` credential when it sends one (a token of
   * the file, else a JWT), otherwise its client certificate's mapped subject; null for neither.
   * A client certificate that does not verify is refused even next to a valid token.
   */
  async authenticate(authorization: string | undefined, peer: PeerCertificate | null): Promise<Actor | null | Unproven> {
    if (peer !== null && !peer.authorized)
      return unproven(`the client certificate is not trusted (${(peer.error ?? 'not signed by the configured client CA').slice(0, 80)})`);
    if (authorization !== undefined) {
      const match = BEARER.exec(authorization);
      if (match === null) return unproven('the Authorization header must be "Bearer <token>" with a valid token');
      const credential = match[1]!;
      const known = this.tokens?.authenticate(credential) ?? null;
      if (known !== null) return known;
      if (this.jwt !== null && credential.length <= MAX_JWT_CHARS && COMPACT_JWS.test(credential))
        return this.verifyJwt(this.jwt, credential);
      return unproven('the Authorization header must be "Bearer <token>" with a valid token');
    }
    if (peer !== null) {
      const client = this.clients.find((c) => Object.entries(c.subject).every(([k, v]) => sameValue(peer.subject[k], v)));
      return client?.actor ?? unproven("the client certificate's subject is not one of the configured clients");
    }
    return null;
  }

  /**
   * A JWT's actor: from the cache while it has not expired (a signature verified once stays
   * verified; the claims are the same bytes), else verified by jose. An ES256 verification costs
   * about a third of an HTTP settlement's time on our 2-core machine (bench (k)).
   */
  private async verifyJwt(settings: JwtSettings, token: string): Promise<Actor | Unproven> {
    const digest = createHash('sha256').update(token).digest('base64url');
    const cached = this.verified.get(digest);
    if (cached !== undefined && Date.now() < cached.expiresMs) return cached.actor;
    if (cached !== undefined) this.verified.delete(digest);
    const verified = await verifyJwt(settings, token);
    if ('status' in verified) return verified;
    if (this.verified.size >= MAX_VERIFIED_JWTS) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(digest, { actor: verified.actor, expiresMs: verified.expiresMs });
    return verified.actor;
  }
}

export const BEARER = /^Bearer +([\x21-\x7e]+) *$/i;

const unproven = (message: string): Unproven => ({ status: 401, code: 'UNAUTHENTICATED', message });

export const isUnproven = (v: Actor | null | Unproven): v is Unproven => v !== null && 'status' in v;

async function verifyJwt(settings: JwtSettings, token: string): Promise<{ actor: Actor; expiresMs: number } | Unproven> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, settings.keys, {
      issuer: settings.issuer,
      audience: settings.audience,
      algorithms: settings.algorithms,
      clockTolerance: settings.clockToleranceSeconds,
      requiredClaims: ['exp'],
    }));
  } catch (e) {
    return jwtRefusal(e);
  }
  const roleValue = claimAt(payload, settings.roleClaim);
  const values = Array.isArray(roleValue) ? roleValue : [roleValue];
  const kinds = new Set(values.flatMap((v) => (typeof v === 'string' && settings.roles.has(v) ? [settings.roles.get(v)!] : [])));
  if (kinds.size !== 1)
    return unproven(`the token's "${settings.roleClaim.join('.')}" claim must grant exactly one medaid role (admin, hospital or auditor)`);
  const [kind] = kinds as unknown as [TokenKind];
  const idPath = kind === 'hospital' ? settings.hospitalClaim : settings.idClaim;
  const id = claimAt(payload, idPath);
  if (typeof id !== 'string' || !ID_PATTERN.test(id))
    return unproven(`the token's "${idPath.join('.')}" claim must be an identifier (^[A-Za-z0-9._:-]{1,64}$)`);
  // (exp is required, so it is there; the clock tolerance is granted to a cached token too)
  return { actor: { kind, id }, expiresMs: ((payload.exp as number) + settings.clockToleranceSeconds) * 1000 };
}

/** jose's error codes, said plainly; a JWKS that cannot be fetched is the service's problem (503), not the caller's. */
function jwtRefusal(e: unknown): Unproven {
  const code = (e as { code?: string }).code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return unproven('the token has expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (e as { claim?: string }).claim ?? 'a';
      return unproven(`the token's "${claim.slice(0, 40)}" claim is not accepted`);
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return unproven("the token's signing algorithm is not accepted");
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return unproven('the token is not signed by a key of the configured JWKS');
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      return { status: 503, code: 'IDENTITY_UNAVAILABLE', message: "the identity provider's keys (JWKS) cannot be fetched; retry shortly" };
    default:
      if (code === undefined || !code.startsWith('ERR_J'))
        return {
          status: 503,
          code: 'IDENTITY_UNAVAILABLE',
          message: "the identity provider's keys (JWKS) cannot be fetched; retry shortly",
        };
      return unproven('the token is not a valid JWT');
  }
}

function claimAt(payload: JWTPayload, path: string[]): unknown {
  let at: unknown = payload;
  for (const part of path) {
    if (!isObject(at) || !Object.hasOwn(at, part)) return undefined;
    at = at[part];
  }
  return at;
}

const sameValue = (given: string | string[] | undefined, wanted: string) =>
  Array.isArray(given) ? given.length === 1 && given[0] === wanted : given === wanted;

type Problem = (where: string, what: string) => AuthFileError;

function parseJwt(raw: unknown, base: string, problem: Problem): JwtSettings {
  const known = ['jwks', 'issuer', 'audience', 'algorithms', 'roleClaim', 'roles', 'hospitalClaim', 'idClaim', 'clockToleranceSeconds'];
  if (!isObject(raw)) throw problem('jwt', 'must be an object');
  const extra = Object.keys(raw).find((k) => !known.includes(k));
  if (extra !== undefined) throw problem('jwt', `has a field "${extra.slice(0, 40)}" that is not one of ${known.join(', ')}`);
  const text = (key: string, required: boolean): string | undefined => {
    const v = raw[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v.length === 0 || v.length > 2048) throw problem(`jwt.${key}`, 'must be a non-empty string');
    return v;
  };
  const jwks = text('jwks', true)!;
  const issuer = text('issuer', true)!;
  const audience = text('audience', true)!;
  const claimPath = (key: string, fallback: string) => {
    const path = (text(key, false) ?? fallback).split('.');
    if (path.some((p) => !/^[A-Za-z0-9_:-]{1,64}$/.test(p))) throw problem(`jwt.${key}`, 'must be a claim name or a dotted path of them');
    return path;
  };
  let algorithms = DEFAULT_ALGORITHMS;
  if (raw.algorithms !== undefined) {
    const a = raw.algorithms;
    if (!Array.isArray(a) || a.length === 0 || a.some((x) => !(JWT_ALGORITHMS as readonly unknown[]).includes(x)))
      throw problem('jwt.algorithms', `must be a non-empty list of ${JWT_ALGORITHMS.join(', ')}`);
    algorithms = a as string[];
  }
  const roles = new Map<string, TokenKind>(TOKEN_KINDS.map((k) => [k, k]));
  if (raw.roles !== undefined) {
    if (!isObject(raw.roles) || Object.keys(raw.roles).length === 0)
      throw problem('jwt.roles', 'must map claim values to admin, hospital or auditor');
    roles.clear();
    for (const [value, kind] of Object.entries(raw.roles)) {
      if (typeof kind !== 'string' || !(TOKEN_KINDS as readonly string[]).includes(kind))
        throw problem(`jwt.roles["${value.slice(0, 40)}"]`, `must be one of ${TOKEN_KINDS.join(', ')}`);
      roles.set(value, kind as TokenKind);
    }
  }
  const tolerance = raw.clockToleranceSeconds ?? 30;
  if (!Number.isInteger(tolerance) || (tolerance as number) < 0 || (tolerance as number) > MAX_CLOCK_TOLERANCE_S)
    throw problem('jwt.clockToleranceSeconds', `must be an integer from 0 to ${MAX_CLOCK_TOLERANCE_S}`);
  return {
    keys: jwksOf(jwks, base, problem),
    issuer,
    audience,
    algorithms,
    roleClaim: claimPath('roleClaim', 'medaid_role'),
    roles,
    hospitalClaim: claimPath('hospitalClaim', 'medaid_hospital'),
    idClaim: claimPath('idClaim', 'sub'),
    clockToleranceSeconds: tolerance as number,
  };
}

/**
 * A JWKS URL is fetched when a token names a key it has not seen (at most every 30 s) and kept 10
 * minutes, so the identity provider can rotate keys without a restart; https only, except on this
 * machine. A JWKS file is read once, at start.
 */
function jwksOf(jwks: string, base: string, problem: Problem): JWTVerifyGetKey {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(jwks)) {
    let url: URL;
    try {
      url = new URL(jwks);
    } catch {
      throw problem('jwt.jwks', 'is not a valid URL');
    }
    const local = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && local))
      throw problem('jwt.jwks', 'must be an https:// URL (http:// only for this machine) or a file');
    return createRemoteJWKSet(url, { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
  }
  const text = readBounded(resolveFrom(base, jwks), 'jwt.jwks file');
  let set: unknown;
  try {
    set = JSON.parse(text);
  } catch {
    throw problem('jwt.jwks', 'names a file that is not valid JSON');
  }
  if (!isObject(set) || !Array.isArray(set.keys) || set.keys.length === 0)
    throw problem('jwt.jwks', 'names a file that is not a JWKS ({"keys": [...]} with at least one key)');
  if (set.keys.some((k: unknown) => isObject(k) && (k.d !== undefined || k.k !== undefined)))
    throw problem('jwt.jwks', "holds a private or symmetric key: give the identity provider's public keys only");
  try {
    return createLocalJWKSet(set as unknown as JSONWebKeySet);
  } catch {
    throw problem('jwt.jwks', 'names a file that is not a valid JWKS');
  }
}

function parseTls(raw: unknown, base: string, problem: Problem): { tls: TlsSettings; clients: ClientMapping[] } {
  const known = ['cert', 'key', 'clientCa', 'clientCertificates', 'clients'];
  if (!isObject(raw)) throw problem('tls', 'must be an object');
  const extra = Object.keys(raw).find((k) => !known.includes(k));
  if (extra !== undefined) throw problem('tls', `has a field "${extra.slice(0, 40)}" that is not one of ${known.join(', ')}`);
  const file = (key: string): Buffer | null => {
    const v = raw[key];
    if (v === undefined) return null;
    if (typeof v !== 'string' || v.length === 0) throw problem(`tls.${key}`, 'must be the path of a PEM file');
    return Buffer.from(readBounded(resolveFrom(base, v), `tls.${key} file`), 'utf8');
  };
  const cert = file('cert');
  const key = file('key');
  if (cert === null || key === null) throw problem('tls', 'needs "cert" and "key" (PEM files of the server)');
  try {
    const x509 = new X509Certificate(cert);
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error('mismatch');
  } catch {
    throw problem('tls', '"cert" must be a PEM certificate and "key" its private key');
  }
  const clientCa = file('clientCa');
  const mode = raw.clientCertificates ?? 'optional';
  if (mode !== 'optional' && mode !== 'required') throw problem('tls.clientCertificates', 'must be "optional" or "required"');
  const clients: ClientMapping[] = [];
  if (raw.clients !== undefined) {
    if (!Array.isArray(raw.clients)) throw problem('tls.clients', 'must be a list');
    if (clientCa === null) throw problem('tls.clients', 'needs "clientCa", the CA their certificates are signed by');
    raw.clients.forEach((entry: unknown, i: number) => {
      const where = `tls.clients[${i}]`;
      if (!isObject(entry) || Object.keys(entry).some((k) => !['subject', 'kind', 'id'].includes(k)))
        throw problem(where, 'must be {subject, kind, id}');
      const { subject, kind, id } = entry;
      if (!isObject(subject) || Object.keys(subject).length === 0)
        throw problem(`${where}.subject`, 'must name attributes, e.g. {"CN": "his.h-a"}');
      for (const [k, v] of Object.entries(subject))
        if (!SUBJECT_ATTRIBUTES.test(k) || typeof v !== 'string' || v.length === 0 || v.length > 256)
          throw problem(`${where}.subject.${k.slice(0, 40)}`, 'must be a subject attribute (CN, O, OU …) with a text value');
      if (typeof kind !== 'string' || !(TOKEN_KINDS as readonly string[]).includes(kind))
        throw problem(`${where}.kind`, `must be one of ${TOKEN_KINDS.join(', ')}`);
      if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw problem(`${where}.id`, 'must match ^[A-Za-z0-9._:-]{1,64}$');
      clients.push({ subject: subject as Record<string, string>, actor: { kind: kind as TokenKind, id } });
    });
  }
  return { tls: { cert, key, clientCa, clientCertificates: mode }, clients };
}

function resolveFrom(base: string, path: string): string {
  return isAbsolute(path) ? path : join(base, path);
}

function readBounded(path: string, what: string): string {
  try {
    if (statSync(path).size > MAX_FILE_BYTES) throw new AuthFileError(`${what} ${path} is larger than ${MAX_FILE_BYTES} bytes`);
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof AuthFileError) throw e;
    throw new AuthFileError(`${what} ${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
