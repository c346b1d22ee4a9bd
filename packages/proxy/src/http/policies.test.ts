// Route policies (retry, hash, header mutations) and the helpers stages share, compiled from pilot-shaped config.
import type { IncomingHttpHeaders } from 'node:http';
import { decodeMessage, encodeAny, encodeMessage, type HttpConnectionManager__Output, type Route, type RouteConfiguration, TypeUrl, type VirtualHost } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { type CompiledRoutes, compileRouteConfiguration } from './compile.ts';
import { applyHeaderMutations, compileHeaderValue, type HeaderRecord } from './headers.ts';
import { httpConnectionManagerSettings } from './hcm.ts';
import { compileRegex, RouteConfigError } from './matchers.ts';
import { backoffMs, compileRetryPolicy, hashKey, retriableReset, retriableResponse, setCookieValue, shadowAuthority } from './policies.ts';
import { normalizePath } from './connection-manager.ts';
import { decodeRouteConfig } from './test-support.ts';
import { RequestView } from './view.ts';

function compile(rc: RouteConfiguration): CompiledRoutes {
  return compileRouteConfiguration(decodeRouteConfig(rc));
}

function vh(name: string, domains: string[], routes: Route[], extra: Partial<VirtualHost> = {}): VirtualHost {
  return { name, domains, routes, ...extra };
}

const to = (cluster: string, match: Route['match'] = { prefix: '/' }, extra: Partial<Route> = {}): Route => ({ name: cluster, match, route: { cluster }, ...extra });

function req(authority: string, path = '/', headers: IncomingHttpHeaders = {}, method = 'GET', scheme = 'http'): RequestView {
  return new RequestView(method, authority, path, scheme, headers);
}

describe('retry policy', () => {
  it('defaults: one retry, 25 ms base and 250 ms max back-off', () => {
    const r = compileRetryPolicy(decodeRouteConfig({ name: 'r', virtual_hosts: [vh('a', ['*'], [{ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_on: '5xx' } } }])] }).virtual_hosts[0]!.routes[0]!.route!.retry_policy)!;
    expect(r.numRetries).toBe(1);
    expect(r.baseIntervalMs).toBe(25);
    expect(r.maxIntervalMs).toBe(250);
    // Jittered exponential: retry n waits in [0, min(base * 2^(n-1), max)).
    expect(backoffMs(r, 1, () => 0.999)).toBe(24);
    expect(backoffMs(r, 3, () => 0.999)).toBe(99);
    expect(backoffMs(r, 10, () => 0.999)).toBe(249);
  });

  it('decides on responses and resets per retry_on', () => {
    const p = (retry_on: string, codes: number[] = []) =>
      compileRetryPolicy(
        decodeRouteConfig({ name: 'r', virtual_hosts: [vh('a', ['*'], [{ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_on, retriable_status_codes: codes, retriable_headers: [{ name: 'x-retry', present_match: true }] } } }])] })
          .virtual_hosts[0]!.routes[0]!.route!.retry_policy,
      )!;
    expect(retriableResponse(p('5xx'), 500, {})).toBe(true);
    expect(retriableResponse(p('5xx'), 404, {})).toBe(false);
    expect(retriableResponse(p('gateway-error'), 500, {})).toBe(false);
    expect(retriableResponse(p('gateway-error'), 504, {})).toBe(true);
    expect(retriableResponse(p('retriable-4xx'), 409, {})).toBe(true);
    expect(retriableResponse(p('retriable-status-codes', [418]), 418, {})).toBe(true);
    expect(retriableResponse(p('retriable-headers'), 200, { 'x-retry': '1' })).toBe(true);
    expect(retriableResponse(p('unavailable'), 200, { 'grpc-status': '14' })).toBe(true);
    expect(retriableResponse(p('cancelled'), 200, { 'grpc-status': '14' })).toBe(false);
    expect(retriableReset(p('connect-failure'), 'connect-failure')).toBe(true);
    expect(retriableReset(p('connect-failure'), 'reset')).toBe(false);
    expect(retriableReset(p('refused-stream'), 'refused-stream')).toBe(true);
    expect(retriableReset(p('reset'), 'timeout')).toBe(true);
    expect(retriableReset(p('5xx'), 'connect-failure')).toBe(true);
    expect(retriableReset(p('5xx,reset'), 'overflow')).toBe(false);
  });
});

describe('hash policy', () => {
  const action = (hash_policy: NonNullable<NonNullable<Route['route']>['hash_policy']>) =>
    compile({ name: 'h', virtual_hosts: [vh('a', ['*'], [{ match: { prefix: '/' }, route: { cluster: 'c', hash_policy } }])] }).virtualHosts[0]!.routes[0]!.action!.hash!;
  const ctx = (view: RequestView) => ({ view, sourceAddress: '10.0.0.7', connectionKey: '10.0.0.7:5000|10.0.0.1:80' });

  it('derives keys from a header, a query parameter and the source IP', () => {
    expect(hashKey(action([{ header: { header_name: 'x-user' } }]), ctx(req('h', '/', { 'x-user': 'ann' })), () => {})).toBe('ann');
    expect(hashKey(action([{ query_parameter: { name: 'u' } }]), ctx(req('h', '/?u=bob')), () => {})).toBe('bob');
    expect(hashKey(action([{ connection_properties: { source_ip: true } }]), ctx(req('h')), () => {})).toBe('10.0.0.7');
    expect(hashKey(action([{ header: { header_name: 'x-user' } }]), ctx(req('h')), () => {})).toBeUndefined();
  });

  it('reads a cookie, and generates it when absent and a TTL is configured', () => {
    const p = action([{ cookie: { name: 'session', ttl: { seconds: 3600 }, path: '/' } }]);
    expect(hashKey(p, ctx(req('h', '/', { cookie: 'a=1; session="abc"' })), () => {})).toBe('abc');
    const set: string[] = [];
    const key = hashKey(p, ctx(req('h')), (c, v) => set.push(setCookieValue(c, v)));
    expect(key).toMatch(/^[0-9a-f]{16}$/);
    expect(set).toEqual([`session="${key}"; Max-Age=3600; Path=/; HttpOnly`]);
    // Without a TTL nothing is generated.
    expect(hashKey(action([{ cookie: { name: 'session' } }]), ctx(req('h')), () => {})).toBeUndefined();
  });

  it('stops after a terminal policy that produced a value', () => {
    const p = action([{ header: { header_name: 'x-a' }, terminal: true }, { header: { header_name: 'x-b' } }]);
    expect(hashKey(p, ctx(req('h', '/', { 'x-a': '1', 'x-b': '2' })), () => {})).toBe('1');
    expect(hashKey(p, ctx(req('h', '/', { 'x-b': '2' })), () => {})).toBe('2');
  });
});

describe('header mutations', () => {
  const ctx = {
    sourceAddress: '10.1.2.3',
    sourcePort: 4000,
    localAddress: '10.0.0.1',
    localPort: 80,
    protocol: 'HTTP/1.1',
    requestHeader: (n: string) => (n === 'x-user' ? 'ann' : undefined),
    upstreamHost: undefined,
    upstreamCluster: 'c',
  };

  it('applies append actions, removals first, and keep_empty_value', () => {
    const r = compile({
      name: 'm',
      virtual_hosts: [
        vh('all', ['*'], [
          to('x', { prefix: '/' }, {
            request_headers_to_remove: ['x-gone'],
            request_headers_to_add: [
              { header: { key: 'x-append', value: 'b' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
              { header: { key: 'x-over', value: 'new' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
              { header: { key: 'x-absent', value: 'no' }, append_action: 'ADD_IF_ABSENT' },
              { header: { key: 'x-only-if', value: 'no' }, append_action: 'OVERWRITE_IF_EXISTS' },
              { header: { key: 'x-empty', value: '' }, keep_empty_value: true },
              { header: { key: 'x-dropped', value: '' } },
              { header: { key: 'x-legacy', value: 'v' }, append: { value: false } },
              { header: { key: 'x-client', value: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %REQ(x-user)% 100%%' } },
            ],
          }),
        ]),
      ],
    });
    const h: HeaderRecord = { 'x-gone': '1', 'x-append': 'a', 'x-over': 'old', 'x-absent': 'yes', 'x-legacy': 'old' };
    applyHeaderMutations(h, r.virtualHosts[0]!.routes[0]!.requestHeaders, ctx);
    expect(h).toEqual({
      'x-append': ['a', 'b'],
      'x-over': 'new',
      'x-absent': 'yes',
      'x-empty': '',
      'x-legacy': 'v',
      'x-client': '10.1.2.3 ann 100%',
    });
  });

  it('evaluates route, then virtual host, then route configuration (the least specific wins) unless most_specific_header_mutations_wins', () => {
    const level = (v: string) => [{ header: { key: 'x-level', value: v }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' as const }];
    const build = (most: boolean) =>
      compile({
        name: 'lv',
        most_specific_header_mutations_wins: most,
        request_headers_to_add: level('route-config'),
        virtual_hosts: [vh('all', ['*'], [to('x', { prefix: '/' }, { request_headers_to_add: level('route') })], { request_headers_to_add: level('vhost') })],
      });
    const h1: HeaderRecord = {};
    applyHeaderMutations(h1, build(false).virtualHosts[0]!.routes[0]!.requestHeaders, ctx);
    expect(h1['x-level']).toBe('route-config');
    const h2: HeaderRecord = {};
    applyHeaderMutations(h2, build(true).virtualHosts[0]!.routes[0]!.requestHeaders, ctx);
    expect(h2['x-level']).toBe('route');
  });

  it('rejects unknown %COMMAND% values as Envoy does', () => {
    expect(() => compileHeaderValue('%NOPE%')).toThrow(RouteConfigError);
    expect(() => compileHeaderValue('50%')).toThrow(RouteConfigError);
  });
});

describe('helpers', () => {
  it('compiles regexes with RE2, refusing what RE2 refuses', () => {
    expect(compileRegex('(?i)abc').fullMatch('ABC')).toBe(true);
    expect(compileRegex('(?P<id>[[:digit:]]+)').fullMatch('42')).toBe(true);
    expect(compileRegex('\\Afoo\\z').fullMatch('foo')).toBe(true);
    expect(() => compileRegex('(')).toThrow(RouteConfigError);
    expect(() => compileRegex('(a)\\1')).toThrow(/RE2 has no backreferences/);
  });

  it('appends -shadow to the host part of an authority', () => {
    expect(shadowAuthority('reviews:9080')).toBe('reviews-shadow:9080');
    expect(shadowAuthority('reviews')).toBe('reviews-shadow');
    expect(shadowAuthority('[::1]:80')).toBe('[::1]-shadow:80');
  });

  it('normalizes dot segments (and slashes with merge_slashes), keeping the query', () => {
    expect(normalizePath('/a/./b/../c?x=/../', false)).toBe('/a/c?x=/../');
    expect(normalizePath('/a//b', false)).toBe('/a//b');
    expect(normalizePath('/a//b/.', true)).toBe('/a/b/');
    expect(normalizePath('/../../x', false)).toBe('/x');
  });

  it('reads the connection manager settings pilot emits', () => {
    const hcm = {
      stat_prefix: 'outbound_0.0.0.0_9080',
      rds: { route_config_name: '9080', config_source: { ads: {} } },
      http_filters: [
        { name: 'envoy.filters.http.cors', typed_config: encodeAny(TypeUrl.Cors, {}) },
        { name: 'envoy.filters.http.fault', typed_config: encodeAny(TypeUrl.HttpFault, {}) },
        { name: 'envoy.filters.http.router', typed_config: encodeAny(TypeUrl.Router, { suppress_envoy_headers: true }) },
      ],
      use_remote_address: { value: true },
      normalize_path: { value: true },
    };
    const name = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
    const decoded = decodeRouteConfigLike(name, hcm);
    const s = httpConnectionManagerSettings(decoded);
    expect(s).toMatchObject({ routeConfigName: '9080', faultFilter: true, corsFilter: true, useRemoteAddress: true, suppressEnvoyHeaders: true, serverName: 'istio-envoy', normalizePath: true });
  });
});

function decodeRouteConfigLike(name: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', value: Record<string, unknown>): HttpConnectionManager__Output {
  return decodeMessage(name, encodeMessage(name, value));
}
