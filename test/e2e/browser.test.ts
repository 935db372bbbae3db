/**
 * The example in a real browser (Debian's headless Chromium, driven by playwright-core): what a developer sees
 * when trying the demo. Access tokens live 2 s here, so that token exchanges happen within the test without
 * sleeping: the test waits for the token's expiry time that the page shows.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../example/config.js';
import { startExample, type ExampleLogger, type RunningExample } from '../../example/server.js';
import type { LocalAuth0 } from '../../src/local-auth0/index.js';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCREENSHOT = new URL('../../docs/example-screenshot.png', import.meta.url);

const silent: ExampleLogger = { info: () => {}, warn: () => {}, error: () => {} };

describe('the example in a browser', () => {
  let example: RunningExample;
  let auth0: LocalAuth0;
  let browser: Browser;
  let page: Page;
  const demoSessions = () => auth0.admin.sessions().filter((s) => s.sub === 'auth0|demo');

  beforeAll(async () => {
    example = await startExample(readConfig({ PORT: '0' }), { accessTokenTtl: 2, logger: silent });
    auth0 = example.auth0 as LocalAuth0;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await (await browser.newContext({ viewport: { width: 900, height: 1000 } })).newPage();
    page.setDefaultTimeout(10_000);
  });
  afterAll(async () => {
    await browser?.close();
    await example?.close();
  });

  async function logIn(): Promise<void> {
    await page.click('#login');
    await page.waitForSelector('form[data-local-auth0-login]');
    await page.fill('#username', 'demo');
    await page.fill('#password', 'demo-password');
    await page.click('button[type=submit]');
    await page.waitForSelector('#user-name:text("Demo User")');
  }

  /** Waits until the access token of the last API answer has expired, by its `exp` shown on the page. */
  async function waitForTokenExpiry(): Promise<void> {
    await page.waitForFunction(() => {
      const expiresAt = Number(document.getElementById('token-status')?.dataset.tokenExpiresAt);
      return expiresAt > 0 && Date.now() / 1000 >= expiresAt + 0.2;
    }, undefined, { polling: 100 });
  }

  async function callApi(): Promise<void> {
    const answered = page.waitForResponse((res) => res.url().endsWith('/api/data'));
    await page.click('#call-api');
    await answered;
    await page.waitForSelector('#call-api:enabled, #signed-out:visible');
  }

  it('shows the signed-out page with the demo login, and logs in through the emulator\'s form', async () => {
    await page.goto(example.url);
    await page.waitForSelector('#signed-out:visible');
    expect(await page.textContent('#demo-login')).toMatch(/demo\s*\/\s*demo-password/);
    await logIn();
    expect(new URL(page.url()).origin).toBe(example.url);
    expect(await page.textContent('#user-sub')).toBe('auth0|demo');
    expect(await page.textContent('#expires-in')).toMatch(/^in /);
    expect(await page.getAttribute('#logout', 'href')).toMatch(/^\/auth\/logout\?sid=/);
    // The session cookie is out of the page's reach.
    expect(await page.evaluate(() => document.cookie)).toBe('');
  });

  it('calls the API through the BFF, and sees a new access token once the old one expired', async () => {
    await callApi();
    await page.waitForSelector('#token-status[data-exchange="first"]');
    expect(await page.textContent('#api-result')).toMatch(/"sub": "auth0\|demo"/);
    const first = await page.getAttribute('#token-status', 'data-token-expires-at');

    await waitForTokenExpiry();
    await callApi();
    await page.waitForSelector('#token-status[data-exchange="new"]');
    expect(Number(await page.getAttribute('#token-status', 'data-token-expires-at'))).toBeGreaterThan(Number(first));

    // The README's picture. Rewritten only when missing or asked for, so that a test run leaves the tree clean.
    const png = await page.screenshot({ fullPage: true });
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    if (process.env.UPDATE_SCREENSHOT === '1' || !existsSync(SCREENSHOT)) {
      await mkdir(new URL('.', SCREENSHOT), { recursive: true });
      await writeFile(SCREENSHOT, png);
    }
  });

  it('shows the sign-out (session_ended) once the Auth0 session was ended elsewhere', async () => {
    await page.click('#end-session');
    await page.waitForSelector('#notice:text("ended 1 session")');
    await expect.poll(demoSessions).toEqual([]);

    // The access token the BFF holds stays valid until it expires; the exchange after that is refused.
    await waitForTokenExpiry();
    await callApi();
    await page.waitForSelector('#signed-out:visible');
    expect(await page.textContent('#notice')).toMatch(/session_ended/);
    expect(await page.textContent('#api-result')).toMatch(/401/);
  });

  it('logs in again, then logs out, which ends the Auth0 session too', async () => {
    await logIn();
    expect(demoSessions()).toHaveLength(1);
    // The BFF revokes the ORT, then sends the browser through Auth0's logout back to the page.
    const loggedOut = page.waitForResponse((res) => new URL(res.url()).pathname === '/auth/logout');
    await page.click('#logout');
    expect((await loggedOut).status()).toBe(302);
    await page.waitForSelector('#signed-out:visible');
    expect(page.url()).toBe(`${example.url}/`);
    expect(demoSessions()).toEqual([]);
    const res = await page.request.get(`${example.url}/auth/user`);
    expect(res.status()).toBe(401);
  });

  it('ends the live feed, visibly, when the user logs out in another tab', async () => {
    await logIn();
    await page.click('#live-toggle');
    await page.waitForSelector('#live-status[data-state="open"]');
    // The example API's greeting and ticks arrive through the BFF.
    await page.waitForSelector('#live-feed li:text("for auth0|demo")');

    const other = await page.context().newPage();
    try {
      await other.goto(example.url);
      await other.waitForSelector('#user-name:text("Demo User")');
      await other.click('#logout');
      await other.waitForSelector('#signed-out:visible');
      // The first tab made no request: the BFF closed its socket, and the page says so.
      await page.waitForSelector('#live-status[data-state="closed"]');
      expect(await page.textContent('#live-status')).toMatch(/4401 session_ended/);
      await page.waitForSelector('#signed-out:visible');
      expect(await page.isVisible('#live')).toBe(true);
    } finally {
      await other.close();
    }
  });
});
