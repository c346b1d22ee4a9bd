import type { IncomingHttpHeaders } from 'node:http';
import { encodeAny, type Route, type RouteConfiguration, TypeUrl, type VirtualHost } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { type CompiledRoutes, compileRouteConfiguration, compiledRoutesFor } from './compile.ts';
import { faultAbort, faultDelay } from './filters.ts';
import { RouteConfigError, } from './matchers.ts';
import { parseGrpcTimeout } from './upstream-attempt.ts';
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

/** Which route (by name) a request selects; `-` when none. */
function pick(routes: CompiledRoutes, view: RequestView, random = () => 0): string {
  return routes.route(view, random).route?.name ?? '-';
}

describe('virtual host selection', () => {
  const routes = compile({
    name: 'vh',
    virtual_hosts: [
      vh('exact', ['reviews', 'reviews:9080', 'Reviews.Default.svc.cluster.local'], [to('exact')]),
      vh('suffix-long', ['*.bar.foo.com'], [to('suffix-long')]),
      vh('suffix', ['*.foo.com'], [to('suffix')]),
      vh('prefix', ['api.*'], [to('prefix')]),
      vh('prefix-port', ['bookinfo.com:*'], [to('prefix-port')]),
      vh('default', ['*'], [to('default')]),
    ],
  });

  it('matches exact domains case-insensitively, with and without the port as listed', () => {
    expect(pick(routes, req('reviews'))).toBe('exact');
    expect(pick(routes, req('reviews:9080'))).toBe('exact');
    expect(pick(routes, req('REVIEWS.default.svc.cluster.local'))).toBe('exact');
    // A port the domains do not list is not stripped (Envoy does not strip by default).
    expect(pick(routes, req('reviews:8080'))).toBe('default');
  });

  it('prefers the longest suffix wildcard, and the wildcard needs at least one character', () => {
    expect(pick(routes, req('a.bar.foo.com'))).toBe('suffix-long');
    expect(pick(routes, req('x.foo.com'))).toBe('suffix');
    expect(pick(routes, req('.foo.com'))).toBe('default');
  });

  it('matches prefix wildcards (including `host:*` as gateways use) after suffixes, then `*`', () => {
    expect(pick(routes, req('api.example.org'))).toBe('prefix');
    expect(pick(routes, req('bookinfo.com:8080'))).toBe('prefix-port');
    expect(pick(routes, req('elsewhere'))).toBe('default');
  });

  it('strips the port for matching when ignore_port_in_host_matching is set', () => {
    const r = compile({ name: 'p', ignore_port_in_host_matching: true, virtual_hosts: [vh('a', ['a.local'], [to('a')]), vh('v6', ['[::1]'], [to('v6')])] });
    expect(pick(r, req('a.local:1234'))).toBe('a');
    expect(pick(r, req('[::1]:80'))).toBe('v6');
    expect(pick(r, req('b.local'))).toBe('-');
  });

  it('rejects a domain listed by two virtual hosts (Envoy NACKs it)', () => {
    expect(() => compile({ name: 'dup', virtual_hosts: [vh('a', ['x'], []), vh('b', ['X'], [])] })).toThrow(RouteConfigError);
  });

  it('caches compiled routes per decoded object', () => {
    const rc = decodeRouteConfig({ name: 'c', virtual_hosts: [vh('a', ['*'], [to('a')])] });
    expect(compiledRoutesFor(rc)).toBe(compiledRoutesFor(rc));
    expect(compiledRoutesFor(rc)).not.toBe(compiledRoutesFor(decodeRouteConfig({ name: 'c', virtual_hosts: [vh('a', ['*'], [to('a')])] })));
  });
});

describe('path matching', () => {
  const routes = compile({
    name: 'paths',
    virtual_hosts: [
      vh('all', ['*'], [
        to('exact', { path: '/productpage' }),
        to('exact-ci', { path: '/Login', case_sensitive: { value: false } }),
        to('regex', { safe_regex: { regex: '/reviews/[0-9]+' } }),
        to('sep', { path_separated_prefix: '/api' }),
        to('prefix-ci', { prefix: '/Static', case_sensitive: { value: false } }),
        to('prefix', { prefix: '/st' }),
        to('catch-all', { prefix: '/' }),
      ]),
    ],
  });

  it('exact path ignores the query string and is case-sensitive by default', () => {
    expect(pick(routes, req('h', '/productpage?u=normal'))).toBe('exact');
    expect(pick(routes, req('h', '/ProductPage'))).toBe('catch-all');
    expect(pick(routes, req('h', '/productpage/x'))).toBe('catch-all');
  });

  it('case_sensitive false applies to exact and prefix matches', () => {
    expect(pick(routes, req('h', '/LOGIN'))).toBe('exact-ci');
    expect(pick(routes, req('h', '/static/css/x.css'))).toBe('prefix-ci');
    expect(pick(routes, req('h', '/STATIC'))).toBe('prefix-ci');
  });

  it('safe_regex must match the whole path (RE2 FullMatch), query excluded', () => {
    expect(pick(routes, req('h', '/reviews/12?x=1'))).toBe('regex');
    expect(pick(routes, req('h', '/reviews/12/more'))).toBe('catch-all');
    expect(pick(routes, req('h', '/x/reviews/12'))).toBe('catch-all');
  });

  it('path_separated_prefix matches the prefix itself or a following `/` segment only', () => {
    expect(pick(routes, req('h', '/api'))).toBe('sep');
    expect(pick(routes, req('h', '/api/v1?q'))).toBe('sep');
    expect(pick(routes, req('h', '/apiary'))).toBe('catch-all');
  });

  it('first match wins', () => {
    expect(pick(routes, req('h', '/stuff'))).toBe('prefix');
  });
});

describe('header, query and runtime matching', () => {
  const sm = (name: string, string_match: NonNullable<NonNullable<Route['match']>['headers']>[number]['string_match'], extra = {}) => ({ name, string_match, ...extra });
  const routes = compile({
    name: 'h',
    virtual_hosts: [
      vh('all', ['*'], [
        to('exact', { prefix: '/', headers: [sm('end-user', { exact: 'jason' })] }),
        to('prefix', { prefix: '/', headers: [sm('x-p', { prefix: 'ab' })] }),
        to('suffix', { prefix: '/', headers: [sm('x-s', { suffix: 'yz' })] }),
        to('contains', { prefix: '/', headers: [sm('x-c', { contains: 'mid' })] }),
        to('regex', { prefix: '/', headers: [sm('x-r', { safe_regex: { regex: 'v[0-9]+' } })] }),
        to('ignore-case', { prefix: '/', headers: [sm('x-i', { exact: 'MiXeD', ignore_case: true })] }),
        to('present', { prefix: '/', headers: [{ name: 'x-present', present_match: true }] }),
        to('method', { prefix: '/', headers: [sm(':method', { exact: 'POST' })] }),
        to('authority', { prefix: '/', headers: [sm(':authority', { prefix: 'special.' })] }),
        to('path', { prefix: '/', headers: [sm(':path', { suffix: '.json' })] }),
        to('query', { prefix: '/', query_parameters: [{ name: 'debug', string_match: { exact: 'true' } }] }),
        to('query-present', { prefix: '/', query_parameters: [{ name: 'trace', present_match: true }] }),
        to('fallback', { prefix: '/' }),
      ]),
    ],
  });

  it('string_match kinds on headers', () => {
    expect(pick(routes, req('h', '/', { 'end-user': 'jason' }))).toBe('exact');
    expect(pick(routes, req('h', '/', { 'end-user': 'Jason' }))).toBe('fallback');
    expect(pick(routes, req('h', '/', { 'x-p': 'abc' }))).toBe('prefix');
    expect(pick(routes, req('h', '/', { 'x-s': 'xyz' }))).toBe('suffix');
    expect(pick(routes, req('h', '/', { 'x-c': 'a-mid-b' }))).toBe('contains');
    expect(pick(routes, req('h', '/', { 'x-r': 'v12' }))).toBe('regex');
    expect(pick(routes, req('h', '/', { 'x-r': 'v12x' }))).toBe('fallback');
    expect(pick(routes, req('h', '/', { 'x-i': 'mixed' }))).toBe('ignore-case');
    expect(pick(routes, req('h', '/', { 'x-present': '' }))).toBe('present');
  });

  it('matches the pseudo-headers :method, :authority and :path', () => {
    expect(pick(routes, req('h', '/', {}, 'POST'))).toBe('method');
    expect(pick(routes, req('special.example', '/'))).toBe('authority');
    expect(pick(routes, req('h', '/data.json'))).toBe('path');
  });

  it('matches query parameters by value and presence (URL-decoded, first value)', () => {
    expect(pick(routes, req('h', '/?debug=true'))).toBe('query');
    expect(pick(routes, req('h', '/?debug=false&debug=true'))).toBe('fallback');
    expect(pick(routes, req('h', '/?trace'))).toBe('query-present');
    expect(pick(routes, req('h', '/?x=1'))).toBe('fallback');
  });

  it('invert_match: a missing header fails unless treated as empty (as Istio does for withoutHeaders)', () => {
    const r = compile({
      name: 'inv',
      virtual_hosts: [
        vh('all', ['*'], [
          to('not-jason-strict', { prefix: '/strict', headers: [sm('end-user', { exact: 'jason' }, { invert_match: true })] }),
          to('not-jason', { prefix: '/', headers: [sm('end-user', { exact: 'jason' }, { invert_match: true, treat_missing_header_as_empty: true })] }),
          to('absent', { prefix: '/', headers: [{ name: 'x-block', present_match: true, invert_match: true }] }),
          to('fallback', { prefix: '/' }),
        ]),
      ],
    });
    expect(pick(r, req('h', '/strict', {}))).toBe('not-jason');
    expect(pick(r, req('h', '/strict', { 'end-user': 'bob' }))).toBe('not-jason-strict');
    expect(pick(r, req('h', '/', { 'end-user': 'bob' }))).toBe('not-jason');
    expect(pick(r, req('h', '/', {}))).toBe('not-jason');
    expect(pick(r, req('h', '/', { 'end-user': 'jason' }))).toBe('absent');
    expect(pick(r, req('h', '/', { 'end-user': 'jason', 'x-block': '1' }))).toBe('fallback');
  });

  it('multiple values of a header are joined with `,` before matching', () => {
    expect(pick(routes, req('h', '/', { 'x-c': ['a', 'mid'] }))).toBe('contains');
  });

  it('runtime_fraction samples the route', () => {
    const r = compile({
      name: 'rt',
      virtual_hosts: [vh('all', ['*'], [to('canary', { prefix: '/', runtime_fraction: { default_value: { numerator: 25, denominator: 'HUNDRED' } } }), to('rest')])],
    });
    expect(pick(r, req('h'), () => 0.2)).toBe('canary');
    expect(pick(r, req('h'), () => 0.3)).toBe('rest');
  });
});

describe('route actions', () => {
  it('compiles timeouts: unset is Envoy 15 s, 0 disables, max_grpc_timeout caps grpc-timeout', () => {
    const r = compile({
      name: 't',
      virtual_hosts: [
        vh('all', ['*'], [
          { name: 'unset', match: { path: '/unset' }, route: { cluster: 'c' } },
          { name: 'zero', match: { path: '/zero' }, route: { cluster: 'c', timeout: { seconds: 0 }, max_grpc_timeout: { seconds: 0 } } },
          { name: 'set', match: { prefix: '/' }, route: { cluster: 'c', timeout: { seconds: 2, nanos: 500_000_000 }, max_stream_duration: { max_stream_duration: { seconds: 3 } } } },
        ]),
      ],
    });
    const all = r.virtualHosts[0]!.routes;
    expect(all[0]!.action?.timeoutMs).toBe(15_000);
    expect(all[0]!.action?.grpcTimeoutMaxMs).toBeUndefined();
    expect(all[1]!.action?.timeoutMs).toBe(0);
    expect(all[1]!.action?.grpcTimeoutMaxMs).toBe(0);
    expect(all[2]!.action?.timeoutMs).toBe(2500);
    expect(all[2]!.action?.maxStreamDurationMs).toBe(3000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('2S')).toBe(2000);
  });

  it('compiles weighted clusters with their total and per-cluster header options', () => {
    const r = compile({
      name: 'w',
      virtual_hosts: [
        vh('all', ['*'], [
          {
            name: 'split',
            match: { prefix: '/' },
            route: {
              weighted_clusters: {
                total_weight: { value: 100 },
                clusters: [
                  { name: 'v1', weight: { value: 80 }, request_headers_to_add: [{ header: { key: 'x-subset', value: 'v1' } }] },
                  { name: 'v2', weight: { value: 20 }, host_rewrite_literal: 'v2.example' },
                ],
              },
            },
          },
        ]),
      ],
    });
    const a = r.virtualHosts[0]!.routes[0]!.action!;
    expect(a.kind).toBe('weighted_clusters');
    expect(a.weighted?.total).toBe(100);
    expect(a.weighted?.items.map((c) => [c.name, c.weight, c.hostRewrite])).toEqual([
      ['v1', 80, undefined],
      ['v2', 20, 'v2.example'],
    ]);
    expect(a.weighted?.items[0]?.requestHeaders?.add[0]?.key).toBe('x-subset');
  });

  it('compiles redirects and direct responses', () => {
    const r = compile({
      name: 'rd',
      virtual_hosts: [
        vh('all', ['*'], [
          { name: 'r', match: { prefix: '/old' }, redirect: { host_redirect: 'new.example', path_redirect: '/new', response_code: 'PERMANENT_REDIRECT', strip_query: true, port_redirect: 8443, https_redirect: true } },
          { name: 'd', match: { prefix: '/' }, direct_response: { status: 418, body: { inline_string: 'teapot' } } },
        ]),
      ],
    });
    const [rd, d] = r.virtualHosts[0]!.routes;
    expect(rd!.redirect).toMatchObject({ host: 'new.example', pathRedirect: '/new', status: 308, stripQuery: true, port: ':8443', httpsRedirect: true });
    expect(d!.directResponse?.status).toBe(418);
    expect(d!.directResponse?.body?.toString()).toBe('teapot');
  });

  it('decodes fault and CORS per-filter configs, route level over virtual host level', () => {
    const fault = (pct: number) =>
      encodeAny(TypeUrl.HttpFault, {
        delay: { fixed_delay: { seconds: 0, nanos: 200_000_000 }, percentage: { numerator: pct, denominator: 'HUNDRED' } },
        abort: { http_status: 503, percentage: { numerator: 10_000, denominator: 'MILLION' } },
      });
    const cors = encodeAny(TypeUrl.CorsPolicy, { allow_origin_string_match: [{ exact: 'https://a.example' }], allow_methods: 'GET,POST', max_age: '60' });
    const r = compile({
      name: 'f',
      virtual_hosts: [
        vh('all', ['*'], [to('route-level', { prefix: '/r' }, { typed_per_filter_config: { 'envoy.filters.http.fault': fault(100) } }), to('inherit')], {
          typed_per_filter_config: { 'envoy.filters.http.fault': fault(0), 'envoy.filters.http.cors': cors },
        }),
      ],
    });
    const [routeLevel, inherit] = r.virtualHosts[0]!.routes;
    expect(routeLevel!.fault?.delay).toEqual({ fixedMs: 200, fromHeader: false, percent: { numerator: 100, denominator: 100 } });
    expect(routeLevel!.fault?.abort?.percent).toEqual({ numerator: 10_000, denominator: 1_000_000 });
    expect(inherit!.fault?.delay?.percent.numerator).toBe(0);
    expect(inherit!.cors?.allowMethods).toBe('GET,POST');
    expect(inherit!.cors?.maxAge).toBe('60');
    // Without the filters in the connection manager, their per-route configs are ignored.
    const bare = compileRouteConfiguration(decodeRouteConfig({ name: 'f', virtual_hosts: [vh('all', ['*'], [to('x')], { typed_per_filter_config: { 'envoy.filters.http.fault': fault(100) } })] }), {
      faultFilter: false,
    });
    expect(bare.virtualHosts[0]!.routes[0]!.fault).toBeUndefined();
  });

  it('evaluates fault header control: header delay/abort and percentage capped by the configuration', () => {
    const r = compile({
      name: 'fh',
      virtual_hosts: [
        vh('all', ['*'], [
          to('x', { prefix: '/' }, {
            typed_per_filter_config: {
              'envoy.filters.http.fault': encodeAny(TypeUrl.HttpFault, {
                delay: { header_delay: {}, percentage: { numerator: 50, denominator: 'HUNDRED' } },
                abort: { header_abort: {}, percentage: { numerator: 100, denominator: 'HUNDRED' } },
                headers: [{ name: 'x-chaos', present_match: true }],
              }),
            },
          }),
        ]),
      ],
    });
    const f = r.virtualHosts[0]!.routes[0]!.fault!;
    const view = (h: IncomingHttpHeaders) => req('h', '/', { 'x-chaos': '1', ...h });
    expect(faultDelay(f, view({ 'x-envoy-fault-delay-request': '300' }), undefined, () => 0.4)).toBe(300);
    expect(faultDelay(f, view({ 'x-envoy-fault-delay-request': '300' }), undefined, () => 0.6)).toBeUndefined();
    // The header may lower the percentage, never raise it above the configured 50%.
    expect(faultDelay(f, view({ 'x-envoy-fault-delay-request': '300', 'x-envoy-fault-delay-request-percentage': '90' }), undefined, () => 0.6)).toBeUndefined();
    expect(faultDelay(f, view({ 'x-envoy-fault-delay-request': '300', 'x-envoy-fault-delay-request-percentage': '10' }), undefined, () => 0.2)).toBeUndefined();
    expect(faultAbort(f, view({ 'x-envoy-fault-abort-request': '429' }), undefined, () => 0)).toEqual({ status: 429, grpcStatus: undefined });
    expect(faultAbort(f, view({ 'x-envoy-fault-abort-grpc-request': '14' }), undefined, () => 0)).toEqual({ status: 200, grpcStatus: 14 });
    expect(faultAbort(f, req('h', '/', { 'x-envoy-fault-abort-request': '429' }), undefined, () => 0)).toBeUndefined();
  });
});
