// Identity from an identity provider's JWTs (and what an auth file's "jwt" and "tls" sections must
// look like): keys and tokens are made here with jose; a refusal says why without quoting a secret.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose';
import { AuthFileError } from './auth.js';
import { Credentials, isUnproven } from './identity.js';

const ISSUER = 'https://idp.example/realms/office';
const AUDIENCE = 'medaid';
let dir: string;
let sign: (claims: Record<string, unknown>, opts?: { exp?: string | number; iss?: string; aud?: string; nbf?: string }) => Promise<string>;
let forge: (claims: Record<string, unknown>) => Promise<string>;
let hs256: string;

const write = (name: string, doc: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return path;
};
const jwtSection = (extra: Record<string, unknown> = {}) => ({ jwks: 'jwks.json', issuer: ISSUER, audience: AUDIENCE, ...extra });
const credentials = (extra: Record<string, unknown> = {}) => Credentials.load(write('auth.json', { jwt: jwtSection(extra) }));
const bearer = (token: string) => `Bearer ${token}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'medaid-identity-'));
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  write('jwks.json', { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] });
  sign = (claims, o = {}) => {
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuedAt()
      .setIssuer(o.iss ?? ISSUER)
      .setAudience(o.aud ?? AUDIENCE);
    if (o.exp !== undefined) jwt.setExpirationTime(o.exp);
    if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
    return jwt.sign(privateKey);
  };
  forge = (claims) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(other.privateKey);
  hs256 = await new SignJWT({ medaid_role: 'admin', sub: 'x' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode('a-shared-secret-of-32-bytes-long!'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('JWT bearer tokens', () => {
  it('given a token the provider signed, then its role claim and hospital or subject claim are the actor', async () => {
    const c = credentials();
    expect(
      await c.authenticate(bearer(await sign({ medaid_role: 'hospital', medaid_hospital: 'h-a', sub: 'svc-1' }, { exp: '5m' })), null),
    ).toEqual({
      kind: 'hospital',
      id: 'h-a',
    });
    expect(await c.authenticate(bearer(await sign({ medaid_role: 'admin', sub: 'zhang.san' }, { exp: '5m' })), null)).toEqual({
      kind: 'admin',
      id: 'zhang.san',
    });
    expect(await c.authenticate(bearer(await sign({ medaid_role: 'auditor', sub: 'audit-7' }, { exp: '5m' })), null)).toEqual({
      kind: 'auditor',
      id: 'audit-7',
    });
  });

  it('given claims named as the office’s provider names them, then they are mapped: a dotted path, a list of roles, a role table', async () => {
    const c = credentials({
      roleClaim: 'realm_access.roles',
      roles: { 'medaid-his': 'hospital', 'medaid-office': 'admin' },
      hospitalClaim: 'org_code',
      idClaim: 'preferred_username',
    });
    const his = await sign({ realm_access: { roles: ['offline_access', 'medaid-his'] }, org_code: 'h-county', sub: 'u1' }, { exp: '5m' });
    expect(await c.authenticate(bearer(his), null)).toEqual({ kind: 'hospital', id: 'h-county' });
    const office = await sign({ realm_access: { roles: ['medaid-office'] }, preferred_username: 'li.si', sub: 'u2' }, { exp: '5m' });
    expect(await c.authenticate(bearer(office), null)).toEqual({ kind: 'admin', id: 'li.si' });
    // two medaid roles at once, or none, or the plain names the table does not list: no actor
    for (const roles of [['medaid-his', 'medaid-office'], ['offline_access'], ['admin']]) {
      const token = await sign({ realm_access: { roles }, org_code: 'h-county', preferred_username: 'x' }, { exp: '5m' });
      expect(await c.authenticate(bearer(token), null)).toMatchObject({
        status: 401,
        message: expect.stringContaining('exactly one medaid role'),
      });
    }
  });

  it('given an expired, not yet valid, foreign, forged, unsigned, HMAC or expiry-less token, then 401 saying why, and never the token', async () => {
    const c = credentials({ clockToleranceSeconds: 0 });
    const claims = { medaid_role: 'admin', sub: 'a' };
    const cases: Array<[string, string, RegExp]> = [
      ['expired', await sign(claims, { exp: Math.floor(Date.now() / 1000) - 60 }), /has expired/],
      ['not yet valid', await sign(claims, { exp: '10m', nbf: '5m' }), /"nbf" claim/],
      ['another issuer', await sign(claims, { exp: '5m', iss: 'https://evil.example' }), /"iss" claim/],
      ['another audience', await sign(claims, { exp: '5m', aud: 'another-service' }), /"aud" claim/],
      ['forged (another key)', await forge(claims), /not signed by a key of the configured JWKS/],
      [
        'unsigned (alg none)',
        new UnsecuredJWT(claims).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').encode(),
        /valid token|algorithm/,
      ],
      ['HS256', hs256, /algorithm is not accepted/],
      ['no expiry', await sign(claims), /"exp" claim/],
      [
        'hospital without its hospital claim',
        await sign({ medaid_role: 'hospital', sub: 'a' }, { exp: '5m' }),
        /"medaid_hospital" claim must be an identifier/,
      ],
      [
        'an id that is not an identifier',
        await sign({ medaid_role: 'admin', sub: 'a b' }, { exp: '5m' }),
        /"sub" claim must be an identifier/,
      ],
    ];
    for (const [name, token, why] of cases) {
      const got = await c.authenticate(bearer(token), null);
      expect([name, got !== null && isUnproven(got) ? got.status : got]).toEqual([name, 401]);
      expect([name, (got as { message: string }).message]).toEqual([name, expect.stringMatching(why)]);
      expect((got as { message: string }).message).not.toContain(token.slice(0, 20));
    }
    // a tampered payload under a good signature
    const good = await sign(claims, { exp: '5m' });
    const [h, , s] = good.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'other', iss: ISSUER, aud: AUDIENCE, exp: 9e9 })).toString('base64url')}.${s}`;
    expect(await c.authenticate(bearer(tampered), null)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
  });

  it('given a token verified once, then it is taken from the cache until it expires, and refused after', async () => {
    const c = credentials({ clockToleranceSeconds: 0 });
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = bearer(await sign({ medaid_role: 'auditor', sub: 'a-1' }, { exp }));
    expect(await c.authenticate(token, null)).toEqual({ kind: 'auditor', id: 'a-1' });
    expect(await c.authenticate(token, null)).toEqual({ kind: 'auditor', id: 'a-1' });
    await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 50));
    expect(await c.authenticate(token, null)).toMatchObject({ status: 401, message: expect.stringContaining('expired') });
  });

  it('given an unreachable JWKS URL, then 503 IDENTITY_UNAVAILABLE (the service’s fault, not the caller’s)', async () => {
    const c = Credentials.load(write('auth-url.json', { jwt: jwtSection({ jwks: 'http://127.0.0.1:9/jwks.json' }) }));
    const got = await c.authenticate(bearer(await sign({ medaid_role: 'admin', sub: 'a' }, { exp: '5m' })), null);
    expect(got).toMatchObject({ status: 503, code: 'IDENTITY_UNAVAILABLE' });
  });
});

describe('the auth file’s jwt and tls sections', () => {
  const refusal = (doc: unknown): string => {
    try {
      Credentials.load(write('bad.json', doc));
      return 'accepted';
    } catch (e) {
      expect(e).toBeInstanceOf(AuthFileError);
      return (e as Error).message;
    }
  };

  it('refuses what would let the wrong caller in or fail later, naming the field', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    write('private-jwks.json', { keys: [{ ...(await exportJWK(privateKey)), kid: 'p' }] });
    const cases: Array<[unknown, RegExp]> = [
      [{}, /must hold "tokens", "jwt" or "tls"/],
      [{ jwt: { jwks: 'jwks.json', audience: AUDIENCE } }, /jwt\.issuer must be a non-empty string/],
      [{ jwt: jwtSection({ jwks: 'http://idp.example/jwks' }) }, /must be an https:\/\/ URL/],
      [{ jwt: jwtSection({ jwks: 'private-jwks.json' }) }, /holds a private or symmetric key/],
      [{ jwt: jwtSection({ jwks: 'missing.json' }) }, /cannot be read: ENOENT/],
      [{ jwt: jwtSection({ algorithms: ['HS256'] }) }, /jwt\.algorithms must be a non-empty list/],
      [{ jwt: jwtSection({ roles: { x: 'root' } }) }, /jwt\.roles\["x"\] must be one of admin, hospital, auditor/],
      [{ jwt: jwtSection({ clockToleranceSeconds: 3600 }) }, /clockToleranceSeconds must be an integer from 0 to 300/],
      [{ jwt: jwtSection({ secret: 'x' }) }, /jwt has a field "secret"/],
      [{ tls: { cert: 'jwks.json', key: 'jwks.json' } }, /"cert" must be a PEM certificate/],
      [{ tls: {} }, /tls needs "cert" and "key"/],
      [{ tokens: [], extra: 1 }, /has a field "extra"/],
    ];
    for (const [doc, why] of cases) expect([doc, refusal(doc)]).toEqual([doc, expect.stringMatching(why)]);
    expect(refusal({ jwt: jwtSection() })).toBe('accepted');
  });
});
