import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BffOptions } from '../../src/index.js';
import { Browser, REDIS_CLIENT_MODES, waitFor, type Harness } from '../support/harness.js';
import { startTopologyHarness } from './support/topology-harness.js';
import { sessionRef } from '../../src/session/sessions.js';
import { apiOnEvery, bffCookie, bffSessionId, logoutToken, newestAuth0Sid, postLogoutToken, ssoPair } from './support/browsers.js';
import { startRedisCluster, type RedisClusterSetup, type SlotMigration } from './support/redis-cluster.js';
import { startTraffic, type Traffic } from './support/traffic.js';

let cluster: RedisClusterSetup;
beforeAll(async () => {
  cluster = await startRedisCluster();
});
afterAll(() => cluster?.stop());

/** Exchanges the BFF made for one browser's session (its refresh events). */
const exchangesOf = (h: Harness, b: Browser) => h.events.filter((e) => e.name === 'refresh' && (e.payload as { sessionRef: string }).sessionRef === sessionRef(bffSessionId(b))).length;

/** TRYAGAIN answers a node has given so far (INFO errorstats). */
async function tryAgains(port: number): Promise<number> {
  const info = String(await (await cluster.node(port)).sendCommand(['INFO', 'errorstats']));
  return Number(/errorstat_TRYAGAIN:count=(\d+)/.exec(info)?.[1] ?? 0);
}

/**
 * A harness on the cluster, and sessions of other browsers for background traffic. Auth0 sends no back-channel
 * logout of its own here (a revocation would send one): the tests send theirs, so that what meets TRYAGAIN is
 * known.
 */
function reshardSetup(options: object, bff: Partial<BffOptions> = {}) {
  const s = {} as { h: Harness; others: Browser[] };
  beforeAll(async () => {
    s.h = await startTopologyHarness(cluster, { ...options, bff, client: { backchannelLogoutUri: undefined } });
    s.others = [s.h.browser(0), s.h.browser(1), s.h.browser(0)];
    for (const b of s.others) await b.login();
  });
  afterAll(() => s.h?.close());
  return s;
}

/**
 * Starts moving the slot of a browser's session to another master and moves only its record
 * (`bff:tok:{id}`): express-session's entry (`bff:sess:{id}`) stays behind, so a script on both keys is answered
 * TRYAGAIN until the migration finishes, and single-key commands are answered ASK.
 */
async function splitSlotOf(h: Harness, browser: Browser): Promise<SlotMigration & { tryAgainsBefore: number }> {
  const record = `${h.prefix}tok:{${bffSessionId(browser)}}`;
  const from = await cluster.masterOf(record);
  const to = (await cluster.masters()).find((m) => m.port !== from)!.port;
  const slot = Number(await (await cluster.node(from)).sendCommand(['CLUSTER', 'KEYSLOT', record]));
  const migration = await cluster.migrateSlot(slot, to);
  await migration.moveKeys([record]);
  return Object.assign(migration, { tryAgainsBefore: await tryAgains(from) });
}

/** Waits until the source node has refused a script of the split session (the request is being retried now). */
const refusedOnce = (m: SlotMigration & { tryAgainsBefore: number }) =>
  waitFor(async () => (await tryAgains(m.fromPort)) > m.tryAgainsBefore, 'a script of the session met TRYAGAIN');

describe.each(REDIS_CLIENT_MODES)('while the slot of a live session migrates, briefly ($mode)', ({ options }) => {
  const s = reshardSetup(options);
  let traffic: Traffic;
  const startOthers = () => (traffic = startTraffic(s.others));
  const othersSawOnlySuccess = async () => {
    await traffic.stop();
    expect(traffic.answers.length).toBeGreaterThan(0);
    expect(traffic.answers.filter((a) => a.status !== 200)).toEqual([]);
  };

  it('stores the token of an exchange that met TRYAGAIN, and no second exchange is needed', async () => {
    const { h } = s;
    const browser = h.browser(0);
    await browser.login();
    expect(await apiOnEvery(h, browser)).toEqual([200, 200]);
    startOthers();
    const migration = await splitSlotOf(h, browser);
    // Reads of the moved record follow ASK to the target meanwhile.
    expect(await apiOnEvery(h, browser)).toEqual([200, 200]);

    // Due for an exchange, not yet for a roll of the idle expiry (also a script on both keys).
    h.clock.advance(55_000);
    const before = exchangesOf(h, browser);
    const call = browser.use(0).api('/api/items?mine');
    await refusedOnce(migration);
    await migration.finish();
    expect((await call).status).toBe(200);
    expect(exchangesOf(h, browser) - before).toBe(1);
    const exchanged = h.upstream.requests.find((r) => r.url === '/items?mine')?.headers.authorization;
    // The other instance forwards the token the exchange stored: it was not lost.
    expect((await browser.use(1).api('/api/items?again')).status).toBe(200);
    expect(h.upstream.requests.find((r) => r.url === '/items?again')?.headers.authorization).toBe(exchanged);
    expect(exchangesOf(h, browser) - before).toBe(1);
    await othersSawOnlySuccess();
  });

  it('logs out completely when the logout met TRYAGAIN: cookie cleared, every session of the Auth0 session ended', async () => {
    const { h } = s;
    const [browser, sibling] = await ssoPair(h, [0, 1]);
    const logoutUrl = (await browser.user()).body.logoutUrl as string;
    startOthers();
    const migration = await splitSlotOf(h, browser);

    const logout = browser.request(logoutUrl);
    await refusedOnce(migration);
    await migration.finish();
    expect((await logout).status).toBe(302);
    expect(bffCookie(browser)).toBeUndefined();
    expect(h.auth0.admin.counts().revocations).toBeGreaterThan(0);
    expect(await apiOnEvery(h, sibling)).toEqual([401, 401]);
    expect((await h.redisKeys()).filter((k) => k.includes(bffSessionId(sibling)))).toEqual([]);
    await othersSawOnlySuccess();
  });

  it('ends every session of a back-channel logout that met TRYAGAIN, and answers Auth0 200', async () => {
    const { h } = s;
    const [browser, sibling] = await ssoPair(h, [1, 0]);
    startOthers();
    const migration = await splitSlotOf(h, browser);

    const sid = newestAuth0Sid(h);
    await h.auth0.admin.endSession({ sid });
    const delivered = postLogoutToken(h.urls[0] as string, await logoutToken(h, { sid }));
    await refusedOnce(migration);
    await migration.finish();
    expect((await delivered).status).toBe(200);
    for (const b of [browser, sibling]) expect(await apiOnEvery(h, b)).toEqual([401, 401]);
    await othersSawOnlySuccess();
  });
});

describe.each(REDIS_CLIENT_MODES)('while the slot of a live session migrates for longer than the command timeout ($mode)', ({ options }) => {
  const s = reshardSetup(options, { redisCommandTimeout: 400 });

  it('still logs the browser out once the ORT is revoked, and cleans the store when the migration is over', async () => {
    const { h } = s;
    const [browser, sibling] = await ssoPair(h, [0, 1]);
    const logoutUrl = (await browser.user()).body.logoutUrl as string;
    const traffic = startTraffic(s.others);
    const migration = await splitSlotOf(h, browser);

    const logout = await browser.request(logoutUrl);
    expect(logout.status).toBe(302);
    expect(bffCookie(browser)).toBeUndefined();
    expect(h.auth0.admin.counts().revocations).toBeGreaterThan(0);
    await migration.finish();
    // The cleanup the store refused is retried in the background: the sibling's session ends on every instance.
    await waitFor(async () => (await apiOnEvery(h, sibling)).every((status) => status === 401), 'the sibling session ended', 10_000);
    await waitFor(async () => (await h.redisKeys()).filter((k) => k.includes(bffSessionId(sibling))).length === 0, 'its keys are gone', 10_000);
    // The app hears of the logout once the store took it.
    expect(h.events.filter((e) => e.name === 'logout').at(-1)).toMatchObject({ payload: { reason: 'user', revoked: true, sessions: 2 } });
    await traffic.stop();
    expect(traffic.answers.filter((a) => a.status !== 200)).toEqual([]);
  });

  it('answers a back-channel logout 200 once its sessions are known, and ends them when the migration is over', async () => {
    const { h } = s;
    const [browser, sibling] = await ssoPair(h, [1, 0]);
    const migration = await splitSlotOf(h, browser);

    const sid = newestAuth0Sid(h);
    await h.auth0.admin.endSession({ sid });
    expect((await postLogoutToken(h.urls[1] as string, await logoutToken(h, { sid }))).status).toBe(200);
    await migration.finish();
    await waitFor(async () => {
      for (const b of [browser, sibling]) if ((await apiOnEvery(h, b)).some((status) => status !== 401)) return false;
      return true;
    }, 'both sessions ended', 10_000);
  });

  it('answers 503 to an exchange that cannot store its token in time, and the session renews once the migration is over', async () => {
    const { h } = s;
    const browser = h.browser(0);
    await browser.login();
    const migration = await splitSlotOf(h, browser);
    h.clock.advance(61_000);
    const res = await browser.api('/api/items');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'session_store_unavailable' });
    await migration.finish();
    await waitFor(async () => (await browser.api('/api/items')).status === 200, 'the session works again', 10_000);
    expect(await apiOnEvery(h, browser)).toEqual([200, 200]);
  });
});
