import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExampleConfigError, readConfig } from '../../example/config.js';
import { startExample, type RunningExample } from '../../example/server.js';
import { exampleBffOptions } from '../../src/config/example-env.js';
import { readDPoPKey } from '../../src/dpop/key.js';
import { Browser } from '../support/harness.js';

const privateJwk = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const quiet = { info() {}, warn() {}, error() {} };

function problemsOf(env: Record<string, string>): string {
  try {
    readConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ExampleConfigError);
    return (error as Error).message;
  }
  throw new Error('the environment was accepted');
}

describe('DPOP_PRIVATE_KEY in the example\'s environment', () => {
  it('is optional: unset keeps Bearer tokens', () => {
    const config = readConfig({});
    expect(config.dpopKey).toBeUndefined();
    expect(exampleBffOptions(config, { issuer: 'http://127.0.0.1:1/', clientId: 'c', clientSecret: 's', clientAuthMethod: 'client_secret_post' }, 'http://localhost:3000')).not.toHaveProperty('dpop');
  });

  it('turns DPoP on with a private JWK as JSON', () => {
    const jwk = privateJwk();
    const config = readConfig({ DPOP_PRIVATE_KEY: JSON.stringify(jwk) });
    expect(config.dpopKey).toEqual(jwk);
    expect(exampleBffOptions(config, { issuer: 'http://127.0.0.1:1/', clientId: 'c', clientSecret: 's', clientAuthMethod: 'client_secret_post' }, 'http://localhost:3000').dpop).toEqual({ key: jwk });
  });

  it('takes the key the README\'s command makes', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const script = /^node -e "(.*generateKeyPairSync.*)"$/m.exec(readme)?.[1];
    expect(script).toBeDefined();
    const printed = execFileSync(process.execPath, ['-e', script!], { encoding: 'utf8' }).trim();
    const config = readConfig({ DPOP_PRIVATE_KEY: printed });
    expect(readDPoPKey(config.dpopKey).alg).toBe('ES256');
  });

  it.each([
    ['not JSON', () => '{"kty":"EC", d: secret-value-123', /DPOP_PRIVATE_KEY must be a private JWK as JSON/],
    ['a public key', () => { const { d: _d, ...pub } = privateJwk(); return JSON.stringify(pub); }, /DPOP_PRIVATE_KEY is a public key/],
    ['an RSA key', () => JSON.stringify(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' })), /DPOP_PRIVATE_KEY is an RSA key: use an EC key on P-256/],
    ['a symmetric key', () => JSON.stringify({ kty: 'oct', k: 'c2VjcmV0LXZhbHVlLTEyMw' }), /DPOP_PRIVATE_KEY is a symmetric key/],
    ['an unsupported curve', () => JSON.stringify(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey.export({ format: 'jwk' })), /DPOP_PRIVATE_KEY has an unsupported curve/],
  ])('refuses %s at startup, naming the variable and never printing its value', (_name, value, expected) => {
    const raw = value();
    const message = problemsOf({ DPOP_PRIVATE_KEY: raw });
    expect(message).toMatch(expected);
    const secret = /"?d"?\s*:\s*"?([^",}]+)/.exec(raw)?.[1] ?? /"k":"([^"]+)"/.exec(raw)?.[1];
    if (secret) expect(message).not.toContain(secret);
  });
});

describe('the example with DPOP_PRIVATE_KEY set (demo mode)', () => {
  let example: RunningExample;
  beforeAll(async () => {
    example = await startExample(readConfig({ PORT: '0', DPOP_PRIVATE_KEY: JSON.stringify(privateJwk()) }), { logger: quiet });
  });
  afterAll(() => example?.close());

  it('calls the example API with DPoP-bound tokens, which it verifies', async () => {
    const browser = new Browser([example.url], 0);
    expect((await browser.login('/', example.demoLogin)).status).toBe(302);
    const res = await browser.api('/api/data');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ sub: 'auth0|demo' });
  });

  it('has an example API that takes no Bearer token, not even a valid one', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await example.auth0!.admin.sign({ iss: example.auth0!.issuer, sub: 'auth0|demo', aud: 'https://api.example.test', iat: now, exp: now + 60 });
    const res = await fetch(`${example.apiUrl}/data`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token"/);
  });
});
