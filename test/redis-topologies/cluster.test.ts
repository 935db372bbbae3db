import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keySlot } from '../../src/session/redis-replicas.js';
import { WebSocketCloseCode } from '../../src/index.js';
import { Browser, REDIS_CLIENT_MODES, type Harness } from '../support/harness.js';
import { socketHeldByInstance1 } from '../support/ws-client.js';
import { startTopologyHarness } from './support/topology-harness.js';
import { apiOnEvery, bffSessionId, exchanges } from './support/browsers.js';
import { startRedisCluster, type RedisClusterSetup } from './support/redis-cluster.js';
import { sharedScenarios } from './support/scenarios.js';

let cluster: RedisClusterSetup;
beforeAll(async () => {
  cluster = await startRedisCluster();
});
afterAll(() => cluster?.stop());

describe('on a Redis Cluster of 3 masters with a replica each', () => {
  sharedScenarios(() => cluster);

  it('computes the slot of a key as the cluster does (to wait for the replica of the right master)', async () => {
    const keys = [
      'bff:tok:{abc}', 'bff:idx:sid:x', 'plain', '', '{}', '{}{a}', 'a{}b', '{a', 'a}{b}', '{{a}}', 'x{a}y{b}', 'ünïcödé{ß}',
      ...Array.from({ length: 200 }, (_, i) => `bff:sess:{${randomUUID()}}${i % 3 === 0 ? `:${i}` : ''}`),
    ];
    const node = await cluster.node((await cluster.masters())[0]!.port);
    const expected = await Promise.all(keys.map(async (k) => Number(await node.sendCommand(['CLUSTER', 'KEYSLOT', k]))));
    expect(keys.map(keySlot)).toEqual(expected);
  });

  describe.each(REDIS_CLIENT_MODES)('with sessions on every master ($mode)', ({ options }) => {
    let h: Harness;
    beforeAll(async () => {
      h = await startTopologyHarness(cluster, options);
    });
    afterAll(() => h?.close());

    /** The BFF session ids whose record lives on each master, asked of the masters themselves. */
    async function sessionsByMaster(): Promise<Map<number, string[]>> {
      const byMaster = new Map<number, string[]>();
      for (const master of await cluster.masters()) {
        const keys: string[] = [];
        for await (const batch of (await cluster.node(master.port)).scanIterator({ MATCH: `${h.prefix}tok:*`, COUNT: 500 })) keys.push(...batch);
        byMaster.set(master.port, keys.map((k) => k.slice(`${h.prefix}tok:{`.length, -1)));
      }
      return byMaster;
    }

    it('serves, renews and logs out sessions whose keys lie on every master, from both instances', async () => {
      const browsers: Browser[] = [];
      // Session ids are random: log in until every master holds some (three masters: a dozen logins, give or take).
      for (let round = 0; round < 20; round++) {
        const batch = Array.from({ length: 4 }, (_, i) => h.browser(i % 2));
        await Promise.all(batch.map((b) => b.login()));
        browsers.push(...batch);
        if ([...(await sessionsByMaster()).values()].every((ids) => ids.length > 0)) break;
      }
      const byMaster = await sessionsByMaster();
      expect(byMaster.size).toBe(3);
      for (const ids of byMaster.values()) expect(ids.length).toBeGreaterThan(0);
      // Each session's keys share its slot: the record and express-session's entry sit on the same master.
      for (const [port, ids] of byMaster) {
        const node = await cluster.node(port);
        for (const id of ids) expect(await node.exists(`${h.prefix}sess:{${id}}`)).toBe(1);
      }
      expect([...byMaster.values()].flat().sort()).toEqual(browsers.map(bffSessionId).sort());

      for (const b of browsers) expect(await apiOnEvery(h, b)).toEqual([200, 200]);
      h.clock.advance(61_000);
      const before = exchanges(h);
      const statuses = await Promise.all(browsers.flatMap((b) => [b.use(0).api('/api/items'), b.use(1).api('/api/items')]).map((p) => p.then((r) => r.status)));
      expect(statuses.every((s) => s === 200)).toBe(true);
      expect(exchanges(h) - before).toBe(browsers.length);

      for (const b of browsers) expect((await b.request((await b.user()).body.logoutUrl)).status).toBe(302);
      for (const b of browsers) expect(await apiOnEvery(h, b)).toEqual([401, 401]);
      for (const ids of (await sessionsByMaster()).values()) expect(ids).toEqual([]);
    });

    it('closes a WebSocket held by one instance when the session ends through the other (the signal goes through the cluster)', async () => {
      const browser = h.browser(0);
      const socket = await socketHeldByInstance1(browser);
      const { body } = await browser.user();
      expect((await browser.request(body.logoutUrl)).status).toBe(302);
      // The clock stands still: without the signal, instance 1 would close it only at its check a minute later.
      let unheard: NodeJS.Timeout | undefined;
      const notClosed = new Promise<never>((_, reject) => {
        unheard = setTimeout(() => reject(new Error('instance 1 never heard that the session ended')), 10_000);
      });
      try {
        expect((await Promise.race([socket.closed, notClosed])).code).toBe(WebSocketCloseCode.SESSION_ENDED);
      } finally {
        clearTimeout(unheard);
      }
    });
  });
});
