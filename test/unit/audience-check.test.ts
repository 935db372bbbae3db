import { describe, expect, it } from 'vitest';
import { AudienceCheck, tokenAudiences } from '../../src/tokens/audience-check.js';

const API = 'https://api.example.test';
const OTHER = 'https://other-api.example.test';
/** An unsigned JWT with these claims: the check reads `aud` only (the API verifies the signature). */
const jwt = (claims: object) => `${Buffer.from('{"alg":"RS256","typ":"at+jwt"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.signature`;

describe('the audience check of issued access tokens', () => {
  it('reads aud as a string or as an array of strings', () => {
    expect(tokenAudiences(jwt({ aud: API }))).toEqual([API]);
    expect(tokenAudiences(jwt({ aud: [API, 'https://tenant.example/userinfo'] }))).toEqual([API, 'https://tenant.example/userinfo']);
  });

  it('reads nothing from an opaque, encrypted or malformed token, or one without aud', () => {
    for (const token of ['opaque-access-token', 'a.b', 'e.n.c.r.y', 'x.!!!.y', jwt({ sub: 'auth0|alice' }), jwt({ aud: [API, 7] }), jwt({ aud: [] })]) {
      expect(tokenAudiences(token)).toBeUndefined();
    }
  });

  it('accepts a token for the API asked for, and one it cannot read', () => {
    const logs: string[] = [];
    const check = new AudienceCheck({ warn: (m) => void logs.push(m), error: (m) => void logs.push(m) });
    expect(check.mismatch(jwt({ aud: [API, 'https://tenant.example/userinfo'] }), API)).toBeUndefined();
    expect(check.mismatch('opaque-access-token', API)).toBeUndefined();
    expect(check.mismatch(jwt({ aud: OTHER }), '')).toBeUndefined();
    expect(logs).toEqual([]);
  });

  it('turns a token for another API into a configuration error, logged once per audience and naming no token', () => {
    const lines: Array<{ message: string; details?: Record<string, unknown> }> = [];
    const check = new AudienceCheck({ warn: () => {}, error: (message, details) => void lines.push({ message, details }) });
    const token = jwt({ aud: API, secret: 'value' });
    for (let i = 0; i < 3; i++) expect(check.mismatch(token, OTHER)).toMatchObject({ code: 'configuration_error', status: 500 });
    expect(check.mismatch(jwt({ aud: OTHER }), 'https://third.example.test')).toMatchObject({ code: 'configuration_error' });
    expect(lines).toHaveLength(2);
    expect(lines[0]?.details).toEqual({ expected: OTHER, received: [API] });
    expect(JSON.stringify(lines)).not.toContain(token);
  });
});
