// The auth file and bearer tokens: what a file must look like, that a refusal never shows a token,
// and which actor a request's Authorization header names.
import { describe, expect, it } from '@jest/globals';
import { authenticate } from './actor.js';
import { AuthFileError } from './auth.js';
import { Credentials } from './identity.js';

const ADMIN_TOKEN = 'adm1n-t0ken-aaaaaaaaaaaaaaaaaaaa';
const HOSPITAL_TOKEN = 'h0sp-t0ken-bbbbbbbbbbbbbbbbbbbbbb';
const file = (tokens: unknown[]) => JSON.stringify({ tokens });
const table = () =>
  Credentials.parse(
    file([
      { token: ADMIN_TOKEN, kind: 'admin', id: 'admin-a' },
      { token: HOSPITAL_TOKEN, kind: 'hospital', id: 'h-county' },
    ]),
  ).tokens!;

/** The message of the refusal a file gets, or 'accepted'. */
function refusal(text: string): string {
  try {
    Credentials.parse(text, 'auth.json');
    return 'accepted';
  } catch (e) {
    expect(e).toBeInstanceOf(AuthFileError);
    return (e as Error).message;
  }
}

describe('the auth file', () => {
  it('given tokens of each kind, when loaded, then each token is its actor and nothing else is', () => {
    const t = table();
    expect(t.size).toBe(2);
    expect(t.authenticate(ADMIN_TOKEN)).toEqual({ kind: 'admin', id: 'admin-a' });
    expect(t.authenticate(HOSPITAL_TOKEN)).toEqual({ kind: 'hospital', id: 'h-county' });
    expect(t.authenticate(`${ADMIN_TOKEN}x`)).toBeNull();
    expect(t.authenticate(ADMIN_TOKEN.slice(0, -1))).toBeNull();
    expect(t.authenticate('')).toBeNull();
  });

  it('given a short token, a duplicate, an unknown kind or field, when loaded, then it is refused naming the entry but never the token', () => {
    const short = 'short-secret-123';
    const cases: Array<[string, RegExp]> = [
      [file([{ token: short, kind: 'admin', id: 'a' }]), /tokens\[0\]\.token must be 24/],
      [
        file([
          { token: ADMIN_TOKEN, kind: 'admin', id: 'a' },
          { token: ADMIN_TOKEN, kind: 'auditor', id: 'b' },
        ]),
        /tokens\[1\]\.token is the same as an earlier/,
      ],
      [file([{ token: ADMIN_TOKEN, kind: 'root', id: 'a' }]), /tokens\[0\]\.kind must be one of admin, hospital, auditor/],
      [file([{ token: ADMIN_TOKEN, kind: 'admin', id: 'a b' }]), /tokens\[0\]\.id must match/],
      [file([{ token: ADMIN_TOKEN, kind: 'admin', id: 'a', role: 'x' }]), /tokens\[0\] has a field "role"/],
      [file([{ token: `${ADMIN_TOKEN} with space`, kind: 'admin', id: 'a' }]), /tokens\[0\]\.token must be/],
      [JSON.stringify({ tokens: [], extra: 1 }), /has a field "extra" that is not tokens, jwt or tls/],
      [`{"tokens": [{"token": "${ADMIN_TOKEN}",}]}`, /auth\.json is not valid JSON$/],
    ];
    for (const [text, expected] of cases) {
      const message = refusal(text);
      expect(message).toMatch(expected);
      expect(message).not.toContain(ADMIN_TOKEN);
      expect(message).not.toContain(short);
    }
  });

  it('given a file that cannot be read, when loaded, then the error says so without its content', () => {
    expect(() => Credentials.load('/nonexistent/medaid-auth.json')).toThrow(/cannot be read: ENOENT/);
  });
});

describe('the Authorization header', () => {
  it('given no header, then anonymous; a valid bearer token, then its actor; anything else, then unproven', async () => {
    const c = Credentials.parse(
      file([
        { token: ADMIN_TOKEN, kind: 'admin', id: 'admin-a' },
        { token: HOSPITAL_TOKEN, kind: 'hospital', id: 'h-county' },
      ]),
    );
    expect(await authenticate(c, undefined)).toBeNull();
    expect(await authenticate(c, `Bearer ${ADMIN_TOKEN}`)).toEqual({ kind: 'admin', id: 'admin-a' });
    expect(await authenticate(c, `bearer ${HOSPITAL_TOKEN}`)).toEqual({ kind: 'hospital', id: 'h-county' });
    for (const header of [`Bearer ${ADMIN_TOKEN}x`, `Basic ${ADMIN_TOKEN}`, ADMIN_TOKEN, 'Bearer', '', `Bearer ${ADMIN_TOKEN} extra`]) {
      expect([header, await authenticate(c, header)]).toEqual([header, expect.objectContaining({ status: 401, code: 'UNAUTHENTICATED' })]);
    }
    expect(await authenticate(c, [`Bearer ${ADMIN_TOKEN}`, `Bearer ${ADMIN_TOKEN}`])).toMatchObject({ status: 401 });
    // a service started without --auth accepts no token at all
    expect(await authenticate(null, `Bearer ${ADMIN_TOKEN}`)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    expect(await authenticate(null, undefined)).toBeNull();
  });
});
