import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ProofSigner } from '../../src/dpop/proof.js';
import { readDPoPKey } from '../../src/dpop/key.js';
import { startLocalAuth0, type LocalAuth0 } from '../../src/local-auth0/index.js';
import { ALICE, API, BFF, claimsOf, login, postForm } from './support.js';

const key = readDPoPKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
const signer = new ProofSigner(key, Date.now);

function tokenEndpoint(auth0: LocalAuth0): string {
  return new URL('oauth/token', auth0.issuer).href;
}

/** The code exchange of a fresh login, with the given DPoP header (or none). */
async function exchangeWith(auth0: LocalAuth0, dpop?: string) {
  const result = await login(auth0.issuer);
  const form = { grant_type: 'authorization_code', code: result.code, redirect_uri: BFF.redirectUris[0]!, code_verifier: result.verifier };
  return { result, form, response: await postForm(auth0.issuer, '/oauth/token', form, BFF, 'basic', dpop === undefined ? {} : { dpop }) };
}

describe('DPoP at the token endpoint', () => {
  let auth0: LocalAuth0;
  beforeAll(async () => {
    auth0 = await startLocalAuth0({ clients: [BFF], users: [ALICE], apis: [{ audience: API }, { audience: 'https://other.example.com' }] });
  });
  afterAll(() => auth0?.stop());

  it('binds the access token of a code exchange with a proof to its key: token_type DPoP, cnf.jkt', async () => {
    const { response } = await exchangeWith(auth0, signer.proof({ htm: 'POST', htu: tokenEndpoint(auth0) }));
    expect(response.status).toBe(200);
    expect(response.body.token_type).toBe('DPoP');
    expect(claimsOf(response.body.access_token as string)).toMatchObject({ aud: API, cnf: { jkt: key.thumbprint } });
  });

  it('binds the access token of an ORT exchange for another API the same way', async () => {
    const { response: first } = await exchangeWith(auth0, signer.proof({ htm: 'POST', htu: tokenEndpoint(auth0) }));
    const ort = first.body.refresh_token as string;
    const answer = await postForm(auth0.issuer, '/oauth/token', { grant_type: 'refresh_token', refresh_token: ort, audience: 'https://other.example.com' }, BFF, 'basic', {
      dpop: signer.proof({ htm: 'POST', htu: tokenEndpoint(auth0) }),
    });
    expect(answer.status).toBe(200);
    expect(answer.body.token_type).toBe('DPoP');
    expect(claimsOf(answer.body.access_token as string)).toMatchObject({ aud: 'https://other.example.com', cnf: { jkt: key.thumbprint } });
  });

  it('issues a Bearer token without cnf to a request without a proof', async () => {
    const { response } = await exchangeWith(auth0);
    expect(response.status).toBe(200);
    expect(response.body.token_type).toBe('Bearer');
    expect(claimsOf(response.body.access_token as string).cnf).toBeUndefined();
  });

  it('refuses a proof for another URL, and a proof used twice', async () => {
    const wrongUrl = await exchangeWith(auth0, signer.proof({ htm: 'POST', htu: new URL('other', auth0.issuer).href }));
    expect(wrongUrl.response.status).toBe(400);
    expect(wrongUrl.response.body.error).toBe('invalid_dpop_proof');

    const proof = signer.proof({ htm: 'POST', htu: tokenEndpoint(auth0) });
    expect((await exchangeWith(auth0, proof)).response.status).toBe(200);
    // A fresh login's code: only the proof's jti was seen before (oidc-provider's invalid_grant, in Auth0's shape).
    const replayed = await exchangeWith(auth0, proof);
    expect(replayed.response.status).toBe(403);
    expect(replayed.response.body.error).toBe('invalid_grant');
  });
});

describe('DPoP with nonces required at the token endpoint (dpop.requireNonce)', () => {
  let auth0: LocalAuth0;
  beforeAll(async () => {
    auth0 = await startLocalAuth0({ clients: [BFF], users: [ALICE], apis: [{ audience: API }], dpop: { requireNonce: true } });
  });
  afterAll(() => auth0?.stop());

  it('answers a proof without a nonce with use_dpop_nonce and a DPoP-Nonce, and takes the proof that carries it', async () => {
    const { result, form, response } = await exchangeWith(auth0, signer.proof({ htm: 'POST', htu: tokenEndpoint(auth0) }));
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('use_dpop_nonce');
    const nonce = response.headers.get('dpop-nonce');
    expect(nonce).toMatch(/^[\x21\x23-\x5b\x5d-\x7e]+$/);

    // The code was not used up by the refused request.
    const retried = await postForm(auth0.issuer, '/oauth/token', form, result.client, 'basic', {
      dpop: signer.proof({ htm: 'POST', htu: tokenEndpoint(auth0), nonce: nonce! }),
    });
    expect(retried.status).toBe(200);
    expect(retried.body.token_type).toBe('DPoP');
  });

  it('refuses a made-up nonce the same way', async () => {
    const { response } = await exchangeWith(auth0, signer.proof({ htm: 'POST', htu: tokenEndpoint(auth0), nonce: 'made-up' }));
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('use_dpop_nonce');
  });

  it('refuses a dpop option that is not an object, or a requireNonce that is not a boolean', async () => {
    await expect(startLocalAuth0({ clients: [BFF], users: [ALICE], dpop: 'yes' as never })).rejects.toThrow('"dpop" must be an object');
    await expect(startLocalAuth0({ clients: [BFF], users: [ALICE], dpop: { requireNonce: 'yes' as never } })).rejects.toThrow('"dpop.requireNonce" must be a boolean');
  });
});
