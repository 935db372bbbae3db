import { describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { classifyTokenFailure, parseRetryAfter } from '../../src/idp/failures.js';

/** A refresh against a fake token endpoint, to get the exact errors openid-client raises. */
async function failureFor(response: () => Response | Promise<Response>) {
  const server: oidc.ServerMetadata = { issuer: 'https://tenant.example/', token_endpoint: 'https://tenant.example/oauth/token' };
  const config = new oidc.Configuration(server, 'client', undefined, oidc.ClientSecretPost('secret'));
  config[oidc.customFetch] = async () => response();
  try {
    await oidc.refreshTokenGrant(config, 'ORT-1');
  } catch (error) {
    return classifyTokenFailure(error);
  }
  throw new Error('expected the refresh to fail');
}
const json = (status: number, body: object, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

describe('what a failed exchange means', () => {
  it('treats invalid_grant (the Auth0 session is over) as terminal', async () => {
    expect(await failureFor(() => json(403, { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' }))).toMatchObject({ kind: 'terminal', error: 'invalid_grant', status: 403 });
  });
  it('treats access_denied on a refresh (an Action revoked it) as terminal', async () => {
    expect((await failureFor(() => json(403, { error: 'access_denied' }))).kind).toBe('terminal');
    expect((await failureFor(() => json(403, { error: 'access_denied', error_description: 'Service not found while you were away' }))).kind).toBe('terminal');
  });
  it('treats access_denied for an API Auth0 does not know, or the application may not call, as configuration', async () => {
    expect((await failureFor(() => json(403, { error: 'access_denied', error_description: 'Service not found: https://api.exmaple.test' }))).kind).toBe('configuration');
    expect((await failureFor(() => json(403, { error: 'access_denied', error_description: 'Client is not authorized to access "https://api.example.test". You need to create a "client-grant" associated to this API.' }))).kind).toBe('configuration');
  });
  it('treats bad client credentials as configuration', async () => {
    expect((await failureFor(() => json(401, { error: 'access_denied', error_description: 'Unauthorized' }))).kind).toBe('configuration');
    expect((await failureFor(() => json(401, { error: 'invalid_client' }))).kind).toBe('configuration');
  });
  it('treats 429 as transient and keeps its Retry-After', async () => {
    expect(await failureFor(() => json(429, { error: 'too_many_requests' }, { 'retry-after': '7' }))).toMatchObject({ kind: 'transient', retryAfter: 7 });
  });
  it('treats 5xx, with or without a JSON body, as transient', async () => {
    expect((await failureFor(() => json(503, { error: 'temporarily_unavailable' }))).kind).toBe('transient');
    expect((await failureFor(() => new Response('<html>bad gateway</html>', { status: 502 }))).kind).toBe('transient');
  });
  it('never treats a 400 or 403 page that is not an OAuth error (a WAF or proxy in front of the tenant) as the end of the session', async () => {
    expect((await failureFor(() => new Response('<html>blocked</html>', { status: 403, headers: { 'content-type': 'text/html' } }))).kind).toBe('transient');
    expect((await failureFor(() => new Response('<html>bad request</html>', { status: 400, headers: { 'content-type': 'text/html' } }))).kind).toBe('transient');
  });
  it('treats a malformed 200 answer as transient', async () => {
    expect((await failureFor(() => new Response('not json', { status: 200, headers: { 'content-type': 'application/json' } }))).kind).toBe('transient');
    expect((await failureFor(() => json(200, { token_type: 'bearer' }))).kind).toBe('transient');
  });
  it('treats timeouts and connection errors as transient', async () => {
    expect((await failureFor(() => { throw new DOMException('timed out', 'TimeoutError'); })).error).toBe('timeout');
    expect((await failureFor(() => { throw new TypeError('fetch failed', { cause: new Error('ECONNREFUSED') }); })).error).toBe('network_error');
  });
  it('reads Retry-After as seconds or as a date', () => {
    expect(parseRetryAfter('3')).toBe(3);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(10);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
