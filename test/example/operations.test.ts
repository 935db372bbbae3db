import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../example/config.js';
import { startExample, type ExampleLogger, type RunningExample } from '../../example/server.js';
import { CookieJar, scriptedLogin } from '../../src/local-auth0/index.js';
import { closeServer, freePort, listen, TOKEN_SHAPED } from '../support/harness.js';

/** An OTLP/HTTP collector on loopback that keeps what it receives. */
async function startCollector(): Promise<{ url: string; bodies: Array<{ path: string; body: string }>; server: Server }> {
  const bodies: Array<{ path: string; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      bodies.push({ path: req.url ?? '', body });
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await listen(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, server };
}

describe('the example environment for operations', () => {
  it('reads LOG_LEVEL, METRICS_PORT, OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME, all optional', () => {
    expect(readConfig({})).toMatchObject({ logLevel: 'info', telemetry: { otlpEndpoint: undefined, metricsPort: undefined, serviceName: 'express-ort-bff-example' } });
    expect(readConfig({ LOG_LEVEL: 'DEBUG', METRICS_PORT: '9464', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318', OTEL_SERVICE_NAME: 'shop-bff' }))
      .toMatchObject({ logLevel: 'debug', telemetry: { otlpEndpoint: 'http://otel-collector:4318', metricsPort: 9464, serviceName: 'shop-bff' } });
  });

  it.each([
    [{ LOG_LEVEL: 'verbose' }, /LOG_LEVEL must be one of error, warn, info, debug/],
    [{ METRICS_PORT: '0' }, /METRICS_PORT must be a port number between 1 and 65535/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'otel-collector:4318' }, /OTEL_EXPORTER_OTLP_ENDPOINT must be the collector's http\(s\) URL/],
  ])('refuses %j', (env, message) => {
    expect(() => readConfig(env)).toThrow(message);
  });
});

describe('the example wired to Prometheus and an OTLP collector, logging at debug level', () => {
  let example: RunningExample;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  const lines: string[] = [];
  const logger: ExampleLogger = {
    debug: (m, d) => void lines.push(`debug ${m} ${JSON.stringify(d ?? {})}`),
    info: (m) => void lines.push(`info ${m}`),
    warn: (m) => void lines.push(`warn ${m}`),
    error: (m) => void lines.push(`error ${m}`),
  };
  let metricsPort: number;

  beforeAll(async () => {
    collector = await startCollector();
    metricsPort = await freePort();
    example = await startExample(readConfig({
      PORT: '0', LOG_LEVEL: 'debug', METRICS_PORT: String(metricsPort), OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: 'example-under-test',
    }), { logger, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await example?.close();
    if (collector) await closeServer(collector.server);
  });

  it('serves the BFF\'s metrics for Prometheus, sends its spans to the collector, and logs what it does', async () => {
    expect(example.metricsUrl).toBe(`http://127.0.0.1:${metricsPort}/metrics`);
    const jar = new CookieJar();
    const get = async (url: string, headers: Record<string, string> = {}) => {
      const res = await fetch(url, { headers: { ...headers, cookie: jar.header(url) }, redirect: 'manual' });
      jar.setFrom(url, res);
      return res;
    };
    const start = await get(`${example.url}/auth/login`);
    const { callbackUrl } = await scriptedLogin(start.headers.get('location') as string, example.demoLogin as { username: string; password: string }, { jar, stopAt: `${example.url}/auth/callback` });
    expect((await get(callbackUrl)).status).toBe(302);
    expect((await get(`${example.url}/api/data`, { 'x-csrf': '1' })).status).toBe(200);

    const scrape = await (await fetch(example.metricsUrl as string)).text();
    expect(scrape).toMatch(/^bff_logins_total\{.*\} 1$/m);
    expect(scrape).toMatch(/^http_client_request_duration_count\{.*bff_api="\/api".*http_response_status_code="200".*\} 1$/m);
    expect(scrape).toMatch(/^target_info\{.*service_name="example-under-test"/m);
    expect(scrape).toMatch(/^http_client_request_duration_bucket\{.*bff_api="\/api".*le="\+Inf"\} 1$/m);
    expect(lines).toContainEqual(expect.stringMatching(/^debug Logged in \{"sessionRef":"[\w-]{10}","sub":"auth0\|demo"\}$/));
    const user = (await (await get(`${example.url}/auth/user`)).json()) as { logoutUrl: string };
    expect((await get(`${example.url}${user.logoutUrl}`)).status).toBe(302);
    expect(await (await fetch(example.metricsUrl as string)).text()).toMatch(/^bff_logouts_total\{.*bff_logout_reason="user".*\} 1$/m);

    // The spans are sent in batches: stopping the example sends what is left.
    await example.close();
    const traces = collector.bodies.filter((b) => b.path === '/v1/traces').map((b) => b.body).join('\n');
    expect(traces).toContain('"bff.login.callback"');
    expect(traces).toContain('"name":"GET"');
    expect(traces).toContain('example-under-test');
    expect(traces).not.toMatch(TOKEN_SHAPED);
  });
});
