import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { bookinfoPlatform, generate, must, networking, productpage, pushFrom, router } from './test-support.ts';

const RDS = TypeUrl.RouteConfiguration;
const VHDS = TypeUrl.VirtualHost;

describe('per-virtual-host routes (weft-proxy, client feature io.weft.vhds)', () => {
  it('sends the route configuration without virtual hosts, and each virtual host as <route configuration>/<name>, equal to the whole one', () => {
    const push = pushFrom([bookinfoPlatform(), networking('virtual-service-reviews-test-v2.yaml'), networking('destination-rule-all.yaml')]);
    const whole = must(generate(push, productpage(), RDS, ['9080']).get('9080'), 'whole 9080');
    const vhdsProxy = { ...productpage(), vhds: true };
    const bare = must(generate(push, vhdsProxy, RDS, ['9080']).get('9080'), 'bare 9080');
    expect(bare.virtual_hosts).toEqual([]);
    expect(bare.vhds?.config_source?.ads).toBeDefined();
    expect({ ...bare, vhds: null, virtual_hosts: whole.virtual_hosts }).toEqual({ ...whole, vhds: null });

    const hosts = generate(push, vhdsProxy, VHDS);
    const of9080 = [...hosts].filter(([name]) => name.startsWith('9080/'));
    expect(of9080.map(([name]) => name)).toEqual(whole.virtual_hosts.map((vh) => `9080/${vh.name}`));
    for (const [name, vh] of of9080) {
      const local = must(whole.virtual_hosts.find((w) => `9080/${w.name}` === name));
      expect({ ...vh, name: local.name }).toEqual(local);
    }
  });

  it('gives a client without the feature (Envoy, SotW, proxyless) whole route configurations and no virtual host resources', () => {
    const push = pushFrom([bookinfoPlatform()]);
    expect(must(generate(push, productpage(), RDS, ['9080']).get('9080')).virtual_hosts.length).toBeGreaterThan(1);
    expect(generate(push, productpage(), VHDS).size).toBe(0);
  });

  it('splits a gateway’s route configurations the same way', () => {
    const push = pushFrom([bookinfoPlatform(), networking('bookinfo-gateway.yaml')]);
    const gw = { ...router('127.0.0.100', 'istio-ingressgateway-1', { istio: 'ingressgateway' }), vhds: true };
    const names = [...generate(push, gw, VHDS).keys()];
    expect(names.length).toBeGreaterThan(0);
    expect(names.every((n) => n.startsWith('http.8080/') || n.startsWith('http.80/'))).toBe(true);
  });
});
