import { createServer } from 'node:net';
import { Agent, request } from 'undici';
import { decodeMessage, encodeAny, encodeMessage, type Listener, type Listener__Output, TypeUrl } from '@weft/xds';
import { afterEach, describe, expect, it } from 'vitest';
import { createClusterManager } from '../cluster/manager.ts';
import { FilterRegistry } from '../core/filters.ts';
import type { XdsSnapshot } from '../core/types.ts';
import { createHttpRouting } from '../runtime/routing.ts';
import { rbacHttpFilterFactory } from '../security/rbac-filter.ts';
import { ListenerManager } from './manager.ts';

const address = `127.0.${100 + Math.floor(Math.random() * 100)}.${1 + Math.floor(Math.random() * 250)}`;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A gateway listener answering every request 200 itself, with RBAC filters in front when given. */
function listener(port: number, rbac: object[] = []): Listener__Output {
  const hcm = {
    stat_prefix: 'gw',
    route_config: { name: 'direct', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }] }] },
    http_filters: [...rbac, { name: 'envoy.filters.http.router', typed_config: encodeAny(TypeUrl.Router, {}) }],
  };
  const l: Listener = {
    name: `0.0.0.0_${port}`,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: encodeAny(TypeUrl.HttpConnectionManager, hcm) }] }],
  };
  return decodeMessage('envoy.config.listener.v3.Listener', encodeMessage('envoy.config.listener.v3.Listener', l)) as Listener__Output;
}

const denyAll = { name: 'envoy.filters.http.rbac', typed_config: encodeAny(TypeUrl.HttpRbac, { rules: { action: 'DENY', policies: { 'ns[default]-policy[deny]-rule[0]': { permissions: [{ any: true }], principals: [{ any: true }] } } } }) };

function snapshot(l: Listener__Output): XdsSnapshot {
  return { versions: {}, listeners: new Map([[l.name, l]]), routes: new Map(), clusters: new Map(), endpoints: new Map(), secrets: new Map() };
}

describe('ListenerManager: a changed listener and the connections already open', () => {
  it("serves a kept-alive connection's next request with the listener's new chain (an AuthorizationPolicy added applies at once), and the old chain again when it comes back", async () => {
    const clusters = createClusterManager();
    const listeners = new ListenerManager({
      kind: 'router',
      mode: 'local',
      clusters,
      routing: createHttpRouting(clusters),
      filters: new FilterRegistry().registerHttp(TypeUrl.HttpRbac, rbacHttpFilterFactory),
      bindAddress: address,
    });
    const agent = new Agent({ connections: 1, keepAliveTimeout: 30_000 });
    cleanups.push(async () => {
      await agent.close();
      await listeners.close(0);
      await clusters.close();
    });
    // Port 0 is not a listener Envoy can name: bind a free port picked by the OS first.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, address, () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    await listeners.update(snapshot(listener(port)));
    const get = async () => {
      const r = await request(`http://${address}:${port}/`, { dispatcher: agent });
      return { status: r.statusCode, body: await r.body.text() };
    };
    expect(await get()).toMatchObject({ status: 200, body: 'ok' });
    await listeners.update(snapshot(listener(port, [denyAll])));
    expect(await get()).toMatchObject({ status: 403, body: 'RBAC: access denied' });
    await listeners.update(snapshot(listener(port)));
    expect(await get()).toMatchObject({ status: 200, body: 'ok' });
    // All three went over the one kept-alive connection.
    expect(listeners.bound().find((b) => b.port === port)?.totalConnections).toBe(1);
  });
});
