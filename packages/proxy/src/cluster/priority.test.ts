// Priority levels, panic and locality weights as Envoy computes them (load_balancer_impl.cc):
// the share of picks each endpoint gets over many draws, with hand-built EDS assignments whose
// endpoints are HEALTHY or UNHEALTHY. Picks are taken with `preview` (the same level and host
// choice as a request, without a connection), so the shares are exact within sampling noise.
import { type Cluster, type ClusterLoadAssignment, decodeMessage, encodeMessage } from '@weft/xds';
import { afterEach, describe, expect, test } from 'vitest';
import { createClusterManager } from './manager.ts';
import { cluster, snapshot } from './test-support.ts';

const name = 'outbound|80||geo.default.svc.cluster.local';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

interface Group {
  priority?: number;
  locality?: string;
  weight?: number;
  /** One entry per endpoint: healthy or not. */
  hosts: boolean[];
}

/** Picks per `address`, as fractions of `n` draws; endpoints are 10.<group>.0.<i>. */
function shares(groups: Group[], common: Cluster['common_lb_config'] = {}, n = 40_000): Record<string, number> {
  const cm = createClusterManager();
  cleanups.push(() => cm.close());
  const cla: ClusterLoadAssignment = {
    cluster_name: name,
    endpoints: groups.map((g, gi) => ({
      ...(g.priority ? { priority: g.priority } : {}),
      ...(g.locality ? { locality: { region: g.locality } } : {}),
      ...(g.weight ? { load_balancing_weight: { value: g.weight } } : {}),
      lb_endpoints: g.hosts.map((healthy, i) => ({
        endpoint: { address: { socket_address: { address: `10.${gi}.0.${i}`, port_value: 80 } } },
        health_status: healthy ? 'HEALTHY' : 'UNHEALTHY',
      })),
    })),
  };
  const decoded = decodeMessage('envoy.config.endpoint.v3.ClusterLoadAssignment', encodeMessage('envoy.config.endpoint.v3.ClusterLoadAssignment', cla));
  cm.update(snapshot([cluster({ name, type: 'EDS', lb_policy: 'RANDOM', eds_cluster_config: { service_name: name }, common_lb_config: common })], [decoded]));
  const c = cm.get(name)!;
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const e = c.preview!({}, Math.random).endpoint;
    const key = e ? e.address : 'none';
    counts[key] = (counts[key] ?? 0) + 1;
  }
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(counts)) out[k] = v / n;
  return out;
}

/** Sums shares per group (`10.<g>.`). */
function perGroup(s: Record<string, number>): number[] {
  const out: number[] = [];
  for (const [k, v] of Object.entries(s)) {
    if (k === 'none') continue;
    const g = Number(k.split('.')[1]);
    out[g] = (out[g] ?? 0) + v;
  }
  return Array.from(out, (x) => x ?? 0);
}

const noPanic = { healthy_panic_threshold: { value: 0 } };

describe('priority load (overprovisioning factor 1.4)', () => {
  test('a healthy priority 0 takes everything', () => {
    expect(perGroup(shares([{ hosts: [true, true, true] }, { priority: 1, hosts: [true, true] }], noPanic))).toEqual([1]);
  });

  test('one of three priority-0 hosts down: 93% stays (2/3 x 1.4), 7% spills to priority 1', () => {
    const [p0, p1] = perGroup(shares([{ hosts: [true, true, false] }, { priority: 1, hosts: [true, true] }], noPanic));
    expect(p0).toBeCloseTo(0.93, 1);
    expect(p1).toBeCloseTo(0.07, 1);
  });

  test('priority 0 all down: priority 1 takes everything; none healthy anywhere and no panic: nothing', () => {
    expect(perGroup(shares([{ hosts: [false, false] }, { priority: 1, hosts: [true] }], noPanic))).toEqual([0, 1]);
    expect(shares([{ hosts: [false] }, { priority: 1, hosts: [false] }], noPanic)).toEqual({ none: 1 });
  });
});

describe('panic (healthy_panic_threshold, default 50%)', () => {
  test('a level below the threshold is not in panic while the levels together are healthy enough (>= 100)', () => {
    // P0 1/3 healthy (health 46), P1 healthy (100): total 100, so P0 uses its one healthy host only.
    const s = shares([{ hosts: [true, false, false] }, { priority: 1, hosts: [true, true] }]);
    expect(s['10.0.0.1'] ?? 0).toBe(0);
    expect(s['10.0.0.2'] ?? 0).toBe(0);
    expect(s['10.0.0.0']).toBeCloseTo(0.46, 1);
  });

  test('every level in panic: traffic by host count over every host, unhealthy ones included', () => {
    const s = shares([{ hosts: [true, false, false] }, { priority: 1, hosts: [false, false, true] }]);
    const [p0, p1] = perGroup(s);
    expect(p0).toBeCloseTo(0.5, 1);
    expect(p1).toBeCloseTo(0.5, 1);
    expect(s['10.0.0.1']).toBeCloseTo(1 / 6, 1);
  });

  test('threshold 0 (what Istio sets): never panic, unhealthy hosts never picked', () => {
    const s = shares([{ hosts: [true, false, false, false] }], noPanic);
    expect(s).toEqual({ '10.0.0.0': 1 });
    // The default 50% would balance over all four.
    expect(shares([{ hosts: [true, false, false, false] }])['10.0.0.1']).toBeCloseTo(0.25, 1);
  });
});

describe('locality weights (locality_weighted_lb_config)', () => {
  const weighted = { ...noPanic, locality_weighted_lb_config: {} };

  test('localities share by their weights, not by host count', () => {
    const [a, b] = perGroup(shares([{ locality: 'a', weight: 80, hosts: [true] }, { locality: 'b', weight: 20, hosts: [true, true, true] }], weighted));
    expect(a).toBeCloseTo(0.8, 1);
    expect(b).toBeCloseTo(0.2, 1);
  });

  test("a locality's weight is scaled by its availability (healthy share x 1.4, at most 1)", () => {
    // a: 1 of 2 healthy -> 80 x 0.7 = 56 against b's 20.
    const [a, b] = perGroup(shares([{ locality: 'a', weight: 80, hosts: [true, false] }, { locality: 'b', weight: 20, hosts: [true] }], weighted));
    expect(a).toBeCloseTo(56 / 76, 1);
    expect(b).toBeCloseTo(20 / 76, 1);
  });

  test('without the flag, locality weights are ignored: hosts share by their own weights', () => {
    const [a, b] = perGroup(shares([{ locality: 'a', weight: 80, hosts: [true] }, { locality: 'b', weight: 20, hosts: [true, true, true] }], noPanic));
    expect(a).toBeCloseTo(0.25, 1);
    expect(b).toBeCloseTo(0.75, 1);
  });
});
