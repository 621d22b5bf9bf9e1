// Keys, certificates and JWTs made in the test, and an HTTPS client that presents a client
// certificate: openssl (the system's) makes a client CA, a server certificate for 127.0.0.1 and
// client certificates; jose makes the identity provider's signing keys, its JWKS and tokens.
import { execFileSync } from 'node:child_process';
import { request } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { JWK, CryptoKey } from 'jose';
import type { HttpReply } from './service.js';

export interface Pem {
  key: Buffer;
  cert: Buffer;
}
export interface Pki {
  dir: string;
  ca: Buffer;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** A client certificate signed by the CA, with this subject CN. */
  client(cn: string): Pem;
  /** A certificate with this CN, signed by a CA of its own that the service does not trust. */
  rogue(cn: string): Pem;
}

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    ...EC,
    '-keyout',
    `${name}-key.pem`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

function signed(dir: string, ca: string, name: string, cn: string, extensions: string): Pem {
  openssl(dir, ['req', ...EC, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${cn}/O=medaid test`]);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}-key.pem`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
  return { key: readFileSync(join(dir, `${name}-key.pem`)), cert: readFileSync(join(dir, `${name}.pem`)) };
}

/** A client CA, a server certificate for 127.0.0.1/localhost, and client certificates on demand, in `dir`. */
export function makePki(dir: string): Pki {
  makeCa(dir, 'clients-ca');
  makeCa(dir, 'rogue-ca');
  signed(dir, 'clients-ca', 'server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  let n = 0;
  const client = (ca: string) => (cn: string) => signed(dir, ca, `client-${++n}`, cn, 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: readFileSync(join(dir, 'clients-ca.pem')),
    caFile: join(dir, 'clients-ca.pem'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server-key.pem'),
    client: client('clients-ca'),
    rogue: client('rogue-ca'),
  };
}

/** One HTTPS request, trusting `ca` for the server and presenting `pem` when given. */
export function httpsCall(
  base: string,
  method: string,
  path: string,
  options: { ca: Buffer; pem?: Pem; body?: unknown; headers?: Record<string, string> },
): Promise<HttpReply> {
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      { method, headers, ca: options.ca, key: options.pem?.key, cert: options.pem?.cert, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
          resolve({ status: res.statusCode ?? 0, body: parsed, headers: h });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** An identity provider: an ES256 key pair, its public JWKS, and tokens it signs. */
export interface IdentityProvider {
  jwks: { keys: JWK[] };
  sign(claims: Record<string, unknown>, options?: { expiresIn?: string | number; issuer?: string; audience?: string }): Promise<string>;
}

export const ISSUER = 'https://idp.test.example/realms/medaid';
export const AUDIENCE = 'medaid';

export async function makeIdentityProvider(kid = 'k1'): Promise<IdentityProvider> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return {
    jwks: { keys: [jwk] },
    sign: (claims, options = {}) => signWith(privateKey, kid, claims, options),
  };
}

function signWith(
  key: CryptoKey,
  kid: string,
  claims: Record<string, unknown>,
  options: { expiresIn?: string | number; issuer?: string; audience?: string },
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid })
    .setIssuedAt()
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setExpirationTime(options.expiresIn ?? '10m')
    .sign(key);
}
