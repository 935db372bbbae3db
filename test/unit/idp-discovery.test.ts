import { afterEach, describe, expect, it } from 'vitest';
import { validateOptions } from '../../src/config/validate.js';
import { IdpClient } from '../../src/idp/idp-client.js';
import { deadPort } from '../support/harness.js';

describe('the issuer metadata, when it cannot be loaded', () => {
  let idp: IdpClient | undefined;
  afterEach(() => idp?.close());

  async function warningsFor(options: { issuer: string; fetch?: typeof fetch }): Promise<Array<[string, Record<string, unknown>]>> {
    const warnings: Array<[string, Record<string, unknown>]> = [];
    const config = validateOptions({
      ...options,
      clientId: 'bff', clientSecret: 'a-client-secret-never-logged', audience: 'https://api.example.test', baseURL: 'https://app.example',
      session: { secrets: ['a-session-secret-of-at-least-32-chars'] },
      logger: { warn: (message: string, details?: object) => void warnings.push([message, { ...details }]), error() {} },
    });
    idp = new IdpClient(config);
    await expect(idp.ready()).rejects.toBeDefined();
    return warnings;
  }

  it('says why in its warning: the connection was refused', async () => {
    const warnings = await warningsFor({ issuer: `http://127.0.0.1:${await deadPort()}/` });
    expect(warnings).toEqual([['Could not load the issuer metadata; retrying', expect.objectContaining({ cause: 'ECONNREFUSED', inMs: 500 })]]);
  });

  it('says why in its warning: the document is not the issuer\'s (a wrong domain, a proxy\'s page), and quotes nothing of it', async () => {
    const fake = (async () => Response.json({ issuer: 'https://another-tenant.example/', token_endpoint: 'https://another-tenant.example/oauth/token' })) as typeof fetch;
    const warnings = await warningsFor({ issuer: 'https://tenant.example/', fetch: fake });
    expect(warnings).toHaveLength(1);
    const [, details] = warnings[0]!;
    expect(details.cause).toBe('OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED');
    expect(JSON.stringify(details)).not.toContain('another-tenant');
    expect(JSON.stringify(details)).not.toContain('a-client-secret-never-logged');
  });
});
