// The bearer tokens the service accepts, the `tokens` of the file named by `--auth FILE` (or
// $MEDAID_AUTH_FILE; identity.ts reads the whole file): [{"token", "kind": "admin"|"hospital"|"auditor", "id"}].
// Tokens are secrets: no message, log line or error ever contains one, and the table keeps only
// keyed digests of them. A presented token is looked up by its HMAC under a key drawn at start, so
// neither the lookup nor the final comparison (timingSafeEqual) takes a time that depends on how
// much of a real token a guess got right.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ID_PATTERN } from '#domain';
import type { Actor } from '../shared/writer.js';

export const TOKEN_KINDS = ['admin', 'hospital', 'auditor'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** Long enough not to be guessed (≥ 24 printable characters, e.g. `openssl rand -base64 24`). */
export const MIN_TOKEN_CHARS = 24;
const MAX_TOKEN_CHARS = 512;
/** Printable ASCII without spaces: what a `Bearer` credential can carry. */
const TOKEN_PATTERN = /^[\x21-\x7e]+$/;
const MAX_TOKENS = 10_000;

/** A refused auth file: the message names the entry and the problem, never a token. */
export class AuthFileError extends Error {}

/** What a hospital's Kafka signing key is derived from its token with (README, "Security"). */
export const KAFKA_KEY_LABEL = 'medaid-kafka-v1';

export class TokenTable {
  /** Each hospital's Kafka signing key, HMAC-SHA256(token, KAFKA_KEY_LABEL): the token itself is not kept. */
  private readonly kafkaKeys = new Map<string, Buffer>();

  private constructor(
    private readonly key: Buffer,
    private readonly byDigest: Map<string, { digest: Buffer; actor: Actor }>,
  ) {}

  /** The key a hospital signs its Kafka discharges with; undefined for an id without a hospital token. */
  kafkaKeyOf(hospitalId: string): Buffer | undefined {
    return this.kafkaKeys.get(hospitalId);
  }

  /** How many tokens are accepted. */
  get size(): number {
    return this.byDigest.size;
  }

  /** The `tokens` list of an auth file: [{token, kind, id}], each checked; `source` names the file in refusals. */
  static fromEntries(tokens: unknown, source: string): TokenTable {
    const problem = (where: string, what: string) => new AuthFileError(`${source}: ${where} ${what}`);
    if (!Array.isArray(tokens)) throw problem('tokens', 'must be a list of {token, kind, id}');
    if (tokens.length > MAX_TOKENS) throw problem('tokens', `has more than ${MAX_TOKENS} entries`);
    const key = randomBytes(32);
    const byDigest = new Map<string, { digest: Buffer; actor: Actor }>();
    const kafkaKeys: Array<[string, Buffer]> = [];
    tokens.forEach((entry: unknown, i: number) => {
      const where = `tokens[${i}]`;
      if (!isObject(entry)) throw problem(where, 'must be an object {token, kind, id}');
      const unknown = Object.keys(entry).find((k) => k !== 'token' && k !== 'kind' && k !== 'id');
      if (unknown !== undefined) throw problem(where, `has a field "${unknown.slice(0, 40)}" that is not token, kind or id`);
      const { token, kind, id } = entry;
      if (typeof token !== 'string' || token.length < MIN_TOKEN_CHARS || token.length > MAX_TOKEN_CHARS || !TOKEN_PATTERN.test(token)) {
        throw problem(`${where}.token`, `must be ${MIN_TOKEN_CHARS} to ${MAX_TOKEN_CHARS} printable ASCII characters without spaces`);
      }
      if (typeof kind !== 'string' || !(TOKEN_KINDS as readonly string[]).includes(kind))
        throw problem(`${where}.kind`, `must be one of ${TOKEN_KINDS.join(', ')}`);
      if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw problem(`${where}.id`, 'must match ^[A-Za-z0-9._:-]{1,64}$');
      const digest = hmac(key, token);
      const hex = digest.toString('hex');
      if (byDigest.has(hex)) throw problem(`${where}.token`, "is the same as an earlier entry's; every token must be unique");
      byDigest.set(hex, { digest, actor: { kind: kind as TokenKind, id } });
      if (kind === 'hospital') kafkaKeys.push([id, createHmac('sha256', token).update(KAFKA_KEY_LABEL).digest()]);
    });
    const table = new TokenTable(key, byDigest);
    for (const [id, k] of kafkaKeys) table.kafkaKeys.set(id, k); // (a hospital with two tokens: the last one's key)
    return table;
  }

  /** The actor a token belongs to, or null when it is not one of the table's. */
  authenticate(token: string): Actor | null {
    const digest = hmac(this.key, token);
    const found = this.byDigest.get(digest.toString('hex'));
    // The map lookup is keyed by a digest no caller can predict; the comparison is constant-time anyway.
    if (found === undefined || !timingSafeEqual(found.digest, digest)) return null;
    return found.actor;
  }
}

const hmac = (key: Buffer, token: string) => createHmac('sha256', key).update(token, 'utf8').digest();
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
