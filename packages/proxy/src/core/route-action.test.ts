// The one weighted pick, driven by a fixed random source: the same draws give the same clusters
// for an HTTP route (through the router), a tcp_proxy route (through proxyTcp) and the load balancer.
import { Socket } from 'node:net';
import { decodeMessage, encodeAny, encodeMessage, type Listener, TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RandomPicker } from '../cluster/lb.ts';
import { type RouterServer, StandInClusterManager, send, startRouter } from '../http/test-support.ts';
import { compileListener } from '../listener/chains.ts';
import { proxyTcp } from '../listener/tcp.ts';
import { chooseWeighted, clusterNameOf, singleCluster, WeightedPick, weightedClusters } from './route-action.ts';
import type { ClusterManager, RequestRecord } from './types.ts';

/** Draws 0, 1/n, 2/n, … (n - 1)/n, then again: a 90/10 split over n = 20 draws is 18 then 2. */
function evenDraws(n: number): () => number {
  let i = 0;
  return () => (i++ % n) / n;
}

const expected9010 = [...Array<string>(18).fill('v1'), 'v2', 'v2'];

describe('WeightedPick', () => {
  it('a 90/10 split gives exactly 18 then 2 over evenly spaced draws', () => {
    const pick = new WeightedPick(['v1', 'v2'], [90, 10]);
    const random = evenDraws(20);
    expect(Array.from({ length: 20 }, () => pick.pick(random))).toEqual(expected9010);
  });

  it('draws at the boundaries: just below 0.9 is v1, 0.9 is v2; zero weights are never drawn', () => {
    const pick = new WeightedPick(['v1', 'off', 'v2'], [90, 0, 10]);
    expect(pick.index(0.8999)).toBe(0);
    expect(pick.index(0.9)).toBe(2);
    expect(pick.index(0.9999)).toBe(2);
  });

  it('a declared total larger than the sum sends the draws past the sum to the last cluster (as Envoy)', () => {
    const pick = new WeightedPick(['v1', 'v2'], [50, 50], 200);
    expect([0, 0.3, 0.5, 0.99].map((r) => pick.index(r))).toEqual([0, 1, 1, 1]);
  });

  it('equal weights take the index without a search, with the same answers', () => {
    const pick = new WeightedPick(['a', 'b', 'c', 'd'], [5, 5, 5, 5]);
    expect([0, 0.24, 0.25, 0.5, 0.99].map((r) => pick.index(r))).toEqual([0, 0, 1, 2, 3]);
  });
});

describe('RouteAction', () => {
  it('names the chosen cluster, the header`s cluster, or the single cluster', () => {
    const split = weightedClusters([
      { name: 'v1', weight: 90, clusterHeader: '' },
      { name: '', weight: 10, clusterHeader: 'x-cluster' },
    ]);
    const headers = { header: (n: string) => (n === 'x-cluster' ? 'from-header' : undefined) };
    expect(clusterNameOf(split, chooseWeighted(split, () => 0.5), headers)).toBe('v1');
    expect(clusterNameOf(split, chooseWeighted(split, () => 0.95), headers)).toBe('from-header');
    expect(clusterNameOf(split, chooseWeighted(split, () => 0.95), undefined)).toBeUndefined();
    const one = singleCluster('only');
    expect(chooseWeighted(one, () => 0.5)).toBeUndefined();
    expect(clusterNameOf(one, undefined, headers)).toBe('only');
  });
});

describe('HTTP route, 90/10, fixed random source', () => {
  let router: RouterServer;
  beforeAll(async () => {
    // No cluster exists: each request is answered 503 NC, and its record names the cluster it chose.
    router = await startRouter(
      {
        name: 'split',
        virtual_hosts: [
          {
            name: 'svc',
            domains: ['svc'],
            routes: [
              {
                name: 'split',
                match: { prefix: '/' },
                route: { weighted_clusters: { clusters: [{ name: 'v1', weight: { value: 90 } }, { name: 'v2', weight: { value: 10 } }] } },
              },
            ],
          },
        ],
      },
      new StandInClusterManager(),
      { random: evenDraws(20) },
    );
  });
  afterAll(() => router.close());

  it('sends 18 of 20 requests to v1 and the last 2 to v2, in draw order', async () => {
    const picks: (string | undefined)[] = [];
    for (let i = 0; i < 20; i++) {
      const rec = router.nextRecord();
      const res = await send(router.url, { path: '/', headers: { host: 'svc' } });
      expect(res.status).toBe(503);
      picks.push((await rec).upstreamCluster);
    }
    expect(picks).toEqual(expected9010);
  });
});

describe('TCP route, 90/10, fixed random source', () => {
  it('tcp_proxy weighted_clusters pick the same clusters for the same draws', async () => {
    const type = 'envoy.config.listener.v3.Listener';
    const listener: Listener = {
      name: 'tcp_9000',
      address: { socket_address: { address: '0.0.0.0', port_value: 9000 } },
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.tcp_proxy',
              typed_config: encodeAny(TypeUrl.TcpProxy, {
                stat_prefix: 'split',
                weighted_clusters: {
                  clusters: [
                    { name: 'v1', weight: 90 },
                    { name: 'v2', weight: 10 },
                  ],
                },
              }),
            },
          ],
        },
      ],
    };
    const route = compileListener(decodeMessage(type, encodeMessage(type, listener))).chains[0]!.tcp!;
    // No cluster exists: each connection is closed (NC), and its record names the cluster it chose.
    const clusters: ClusterManager = new StandInClusterManager();
    const random = evenDraws(20);
    const picks: (string | undefined)[] = [];
    for (let i = 0; i < 20; i++) {
      let record: RequestRecord | undefined;
      await proxyTcp(new Socket(), route, {
        clusters,
        direction: 'outbound',
        listener: 'tcp_9000',
        originalDestination: undefined,
        onRecord: (r) => {
          record = r;
        },
        random,
      });
      expect(record?.responseFlags.has('NC')).toBe(true);
      picks.push(record?.upstreamCluster);
    }
    expect(picks).toEqual(expected9010);
  });
});

describe('load balancer', () => {
  it('RandomPicker draws hosts through the same pick: 90/10 weights, 18 then 2', () => {
    const hosts = [
      { key: 'a', active: 0, usable: true },
      { key: 'b', active: 0, usable: true },
    ];
    const picker = new RandomPicker(hosts, [90, 10], evenDraws(20));
    expect(Array.from({ length: 20 }, () => picker.pick(undefined, undefined)?.key)).toEqual([...Array<string>(18).fill('a'), 'b', 'b']);
  });
});
