// The router behind a real HTTP server, in front of real echo backends on 127.0.0.1, with a
// small stand-in ClusterManager. Each test asserts what a client (or a backend) sees.
import http from 'node:http';
import http2 from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeAny, type Route, type RouteConfiguration, TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamError } from '../core/types.ts';
import { type Backend, echoed, type RouterServer, StandInCluster, StandInClusterManager, send, startBackend, startRouter } from './test-support.ts';

const ms = (n: number) => ({ seconds: Math.floor(n / 1000), nanos: (n % 1000) * 1_000_000 });
const retry = (retry_on: string, num: number, extra: Record<string, unknown> = {}) => ({ retry_on, num_retries: { value: num }, retry_back_off: { base_interval: ms(1) }, ...extra });

function r(name: string, match: Route['match'], rest: Partial<Route>): Route {
  return { name, match, ...rest };
}

function routeConfig(): RouteConfiguration {
  return {
    name: '80',
    response_headers_to_add: [{ header: { key: 'x-rc', value: 'route-config' } }],
    virtual_hosts: [
      {
        name: 'svc',
        domains: ['svc', 'svc:80'],
        include_request_attempt_count: true,
        request_headers_to_add: [{ header: { key: 'x-vhost', value: 'vh' } }],
        routes: [
          r('headers', { prefix: '/headers' }, {
            route: { cluster: 'a', timeout: ms(0) },
            request_headers_to_add: [
              { header: { key: 'x-added', value: 'yes' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
              { header: { key: 'x-client', value: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%' } },
            ],
            request_headers_to_remove: ['x-secret'],
            response_headers_to_add: [{ header: { key: 'x-route', value: 'headers' } }],
            response_headers_to_remove: ['x-backend'],
          }),
          r('jason', { prefix: '/match', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] }, { route: { cluster: 'b' } }),
          r('match', { prefix: '/match' }, { route: { cluster: 'a' } }),
          r('split', { prefix: '/split' }, {
            route: {
              weighted_clusters: {
                clusters: [
                  { name: 'a', weight: { value: 80 }, request_headers_to_add: [{ header: { key: 'x-subset', value: 'a' } }], response_headers_to_add: [{ header: { key: 'x-picked', value: 'a' } }] },
                  { name: 'b', weight: { value: 20 }, request_headers_to_add: [{ header: { key: 'x-subset', value: 'b' } }], response_headers_to_add: [{ header: { key: 'x-picked', value: 'b' } }] },
                ],
              },
            },
          }),
          r('delay', { prefix: '/delay' }, {
            route: { cluster: 'a' },
            typed_per_filter_config: {
              'envoy.filters.http.fault': encodeAny(TypeUrl.HttpFault, { delay: { fixed_delay: ms(200), percentage: { numerator: 100, denominator: 'HUNDRED' } } }),
            },
          }),
          r('abort', { prefix: '/abort' }, {
            route: { cluster: 'a' },
            typed_per_filter_config: {
              'envoy.filters.http.fault': encodeAny(TypeUrl.HttpFault, { abort: { http_status: 503, percentage: { numerator: 1_000_000, denominator: 'MILLION' } } }),
            },
          }),
          r('retry', { prefix: '/retry' }, { route: { cluster: 'flaky', retry_policy: retry('5xx', 3) } }),
          r('exhausted', { prefix: '/exhausted' }, { route: { cluster: 'failing', retry_policy: retry('retriable-status-codes', 2, { retriable_status_codes: [503] }) } }),
          r('connect-retry', { prefix: '/connect-retry' }, { route: { cluster: 'dead', retry_policy: retry('connect-failure', 1) } }),
          r('connect', { prefix: '/connect' }, { route: { cluster: 'dead' } }),
          r('per-try', { prefix: '/per-try' }, { route: { cluster: 'slow-first', timeout: ms(2000), retry_policy: retry('reset', 2, { per_try_timeout: ms(150) }) } }),
          r('timeout', { prefix: '/timeout' }, { route: { cluster: 'slow', timeout: ms(150) } }),
          r('msd', { prefix: '/msd' }, { route: { cluster: 'slow', timeout: ms(0), max_stream_duration: { max_stream_duration: ms(150) } } }),
          r('nohealthy', { prefix: '/nohealthy' }, { route: { cluster: 'empty', retry_policy: retry('5xx', 2) } }),
          r('overflow', { prefix: '/overflow' }, { route: { cluster: 'overflow', retry_policy: retry('5xx,reset', 2) } }),
          r('nocluster', { prefix: '/nocluster' }, { route: { cluster: 'missing' } }),
          r('budget', { prefix: '/budget' }, { route: { cluster: 'budget', retry_policy: retry('5xx', 3) } }),
          r('by-header', { prefix: '/by-header' }, { route: { cluster_header: 'x-cluster' } }),
          r('redirect', { prefix: '/redirect' }, { redirect: { host_redirect: 'new.example', path_redirect: '/moved', response_code: 'FOUND', strip_query: true } }),
          r('https', { prefix: '/secure' }, { redirect: { https_redirect: true } }),
          r('direct', { prefix: '/direct' }, { direct_response: { status: 418, body: { inline_string: 'I am a teapot' } }, response_headers_to_add: [{ header: { key: 'x-direct', value: '1' } }] }),
          r('rewrite', { prefix: '/rewrite/' }, { route: { cluster: 'a', prefix_rewrite: '/v2/', host_rewrite_literal: 'rewritten.local' } }),
          r('regex', { safe_regex: { regex: '/regex/[a-z]+/[a-z]+' } }, {
            route: { cluster: 'a', regex_rewrite: { pattern: { regex: '^/regex/([a-z]+)/([a-z]+)$' }, substitution: '/\\2/\\1' } },
          }),
          r('mirror', { prefix: '/mirror' }, {
            route: { cluster: 'a', request_mirror_policies: [{ cluster: 'shadow', runtime_fraction: { default_value: { numerator: 100, denominator: 'HUNDRED' } } }] },
          }),
          r('cors', { prefix: '/cors' }, {
            route: { cluster: 'a' },
            typed_per_filter_config: {
              'envoy.filters.http.cors': encodeAny(TypeUrl.CorsPolicy, {
                allow_origin_string_match: [{ exact: 'https://app.example' }, { suffix: '.trusted.example' }],
                allow_methods: 'GET,POST',
                allow_headers: 'x-custom',
                expose_headers: 'x-backend',
                max_age: '600',
                allow_credentials: { value: true },
              }),
            },
          }),
          r('hash', { prefix: '/hash' }, { route: { cluster: 'hashed', hash_policy: [{ header: { header_name: 'x-user' } }] } }),
          r('cookie', { prefix: '/cookie' }, { route: { cluster: 'hashed', hash_policy: [{ cookie: { name: 'sticky', ttl: { seconds: 60 }, path: '/' } }] } }),
          r('hang', { prefix: '/hang' }, { route: { cluster: 'slow', timeout: ms(0) } }),
          r('post', { prefix: '/post' }, { route: { cluster: 'flaky', retry_policy: retry('5xx', 3) } }),
        ],
      },
    ],
  };
}

let a: Backend;
let b: Backend;
let shadow: Backend;
let flaky: Backend;
let failing: Backend;
let slow: Backend;
let slowFirst: Backend;
let clusters: StandInClusterManager;
let router: RouterServer;
let rnd = 0;
let deadPort = 0;

beforeAll(async () => {
  [a, b, shadow, flaky, failing, slow, slowFirst] = await Promise.all(['a', 'b', 'shadow', 'flaky', 'failing', 'slow', 'slow-first'].map(startBackend)) as [Backend, Backend, Backend, Backend, Backend, Backend, Backend];
  // A port nothing listens on.
  const tmp = await startBackend('tmp');
  deadPort = tmp.port;
  await tmp.close();
  failing.handle = (_req, res) => {
    res.writeHead(503, { 'x-backend': 'failing' });
    res.end('unavailable');
    return true;
  };
  slow.handle = async (_req, res) => {
    await sleep(1000);
    if (!res.destroyed) {
      res.writeHead(200);
      res.end('slow');
    }
    return true;
  };
  slowFirst.handle = async (_req, res, n) => {
    if (n % 2 === 1) await sleep(600);
    if (res.destroyed) return true;
    res.writeHead(200, { 'x-backend': 'slow-first' });
    res.end(`attempt ${n}`);
    return true;
  };
  clusters = new StandInClusterManager();
  for (const be of [a, b, shadow, flaky, failing, slow, slowFirst]) clusters.add(new StandInCluster(be.name, [be.address]));
  clusters.add(new StandInCluster('dead', [`127.0.0.1:${deadPort}`]));
  clusters.add(new StandInCluster('empty', []));
  const overflow = new StandInCluster('overflow', [a.address]);
  overflow.failWith = new UpstreamError('UO', 'pending requests overflow');
  clusters.add(overflow);
  clusters.add(new StandInCluster('hashed', [a.address, b.address]));
  const budget = new StandInCluster('budget', [failing.address]);
  budget.retryBudget = 0;
  clusters.add(budget);
  router = await startRouter(routeConfig(), clusters, { random: () => rnd });
});

afterAll(async () => {
  await router.close();
  await clusters.close();
  for (const be of [a, b, shadow, flaky, failing, slow, slowFirst]) await be.close();
});

const svc = (path: string, headers: Record<string, string> = {}, extra: { method?: string; body?: string } = {}) =>
  send(router.url, { path, headers: { host: 'svc', ...headers }, ...extra });

/** Sends a request and returns the client's view plus the router's record of it. */
async function withRecord(p: Promise<Awaited<ReturnType<typeof svc>>>) {
  const rec = router.nextRecord();
  const res = await p;
  return { res, rec: await rec };
}

describe('routing and headers', () => {
  it('routes by host and path, adds Envoy and mesh headers, and records the request', async () => {
    const { res, rec } = await withRecord(svc('/match/1'));
    expect(res.status).toBe(200);
    const seen = echoed(res.body);
    expect(seen.backend).toBe('a');
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-envoy-attempt-count']).toBe('1');
    expect(seen.headers['x-envoy-expected-rq-timeout-ms']).toBe('15000');
    expect(seen.headers.host).toBe('svc');
    expect(res.headers.server).toBe('istio-envoy');
    expect(Number(res.headers['x-envoy-upstream-service-time'])).toBeGreaterThanOrEqual(0);
    expect(rec).toMatchObject({ responseCode: 200, routeName: 'match', upstreamCluster: 'a', upstreamHost: a.address, attempts: 1, method: 'GET', path: '/match/1', authority: 'svc' });
    expect(rec.requestId).toBe(seen.headers['x-request-id']);
    expect(rec.responseFlags.size).toBe(0);
    expect(rec.bytesSent).toBe(Buffer.byteLength(res.body));
  });

  it('keeps a request id the client sent', async () => {
    const res = await svc('/match', { 'x-request-id': 'given-id' });
    expect(echoed(res.body).headers['x-request-id']).toBe('given-id');
  });

  it('routes on a header (end-user: jason goes to b)', async () => {
    expect(echoed((await svc('/match', { 'end-user': 'jason' })).body).backend).toBe('b');
    expect(echoed((await svc('/match', { 'end-user': 'ann' })).body).backend).toBe('a');
  });

  it('adds and removes request and response headers at route, virtual host and route configuration level', async () => {
    const res = await svc('/headers', { 'x-secret': 'hide me', 'x-added': 'client value' });
    const seen = echoed(res.body).headers;
    expect(seen['x-secret']).toBeUndefined();
    expect(seen['x-added']).toBe('yes');
    expect(seen['x-vhost']).toBe('vh');
    expect(seen['x-client']).toBe('127.0.0.1');
    // timeout 0: no expected-timeout header.
    expect(seen['x-envoy-expected-rq-timeout-ms']).toBeUndefined();
    expect(res.headers['x-route']).toBe('headers');
    expect(res.headers['x-rc']).toBe('route-config');
    expect(res.headers['x-backend']).toBeUndefined();
  });

  it('splits by weight and applies the chosen cluster`s headers', async () => {
    rnd = 0.5;
    const toA = await svc('/split');
    rnd = 0.9;
    const toB = await svc('/split');
    rnd = 0;
    expect(echoed(toA.body).backend).toBe('a');
    expect(echoed(toA.body).headers['x-subset']).toBe('a');
    expect(toA.headers['x-picked']).toBe('a');
    expect(echoed(toB.body).backend).toBe('b');
    expect(toB.headers['x-picked']).toBe('b');
  });

  it('answers 404 without a body when no route matches (NR), for unknown hosts too', async () => {
    const { res, rec } = await withRecord(send(router.url, { path: '/', headers: { host: 'unknown.example' } }));
    expect(res.status).toBe(404);
    expect(res.body).toBe('');
    expect([...rec.responseFlags]).toEqual(['NR']);
    expect(rec.attempts).toBe(0);
  });

  it('picks the cluster named by a request header (cluster_header)', async () => {
    expect(echoed((await svc('/by-header', { 'x-cluster': 'b' })).body).backend).toBe('b');
    const { res, rec } = await withRecord(svc('/by-header'));
    expect(res.status).toBe(503);
    expect([...rec.responseFlags]).toEqual(['NC']);
  });

  it('answers 503 with flag NC when the route`s cluster does not exist', async () => {
    const { res, rec } = await withRecord(svc('/nocluster'));
    expect(res.status).toBe(503);
    expect([...rec.responseFlags]).toEqual(['NC']);
  });
});

describe('faults', () => {
  it('delays the request by the fixed delay (DI)', async () => {
    const { res, rec } = await withRecord(svc('/delay'));
    expect(res.status).toBe(200);
    expect(res.ms).toBeGreaterThanOrEqual(195);
    expect(res.ms).toBeLessThan(500);
    expect([...rec.responseFlags]).toEqual(['DI']);
  });

  it('aborts with the configured status and Envoy`s body (FI) without calling the backend', async () => {
    const before = a.seen.length;
    const { res, rec } = await withRecord(svc('/abort'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('fault filter abort');
    expect(res.headers['content-type']).toBe('text/plain');
    expect([...rec.responseFlags]).toEqual(['FI']);
    expect(a.seen.length).toBe(before);
  });
});

describe('retries and timeouts', () => {
  /** The flaky backend answers 503 twice, then succeeds (and again for each next three requests). */
  function failTwice() {
    flaky.seen.length = 0;
    flaky.handle = (_req, res, n) => {
      if (n % 3 === 0) return false;
      res.writeHead(503);
      res.end('not yet');
      return true;
    };
  }

  it('retries a backend that fails twice, then succeeds (3 attempts)', async () => {
    failTwice();
    const { res, rec } = await withRecord(svc('/retry'));
    expect(res.status).toBe(200);
    expect(flaky.seen.map((s) => s.headers['x-envoy-attempt-count'])).toEqual(['1', '2', '3']);
    expect(rec.attempts).toBe(3);
    expect(rec.responseFlags.size).toBe(0);
  });

  it('does not forward `expect: 100-continue` upstream', async () => {
    flaky.handle = undefined;
    const seen = echoed((await svc('/post', { expect: '100-continue', 'content-type': 'text/plain' }, { method: 'POST', body: 'hi' })).body);
    expect(seen.body).toBe('hi');
    expect(seen.headers.expect).toBeUndefined();
  });

  it('replays the request body on each attempt', async () => {
    failTwice();
    const res = await svc('/post', { 'content-type': 'text/plain' }, { method: 'POST', body: 'payload-123' });
    expect(res.status).toBe(200);
    expect(flaky.seen.map((s) => s.body)).toEqual(['payload-123', 'payload-123', 'payload-123']);
  });

  it('passes the last failure through when retries are exhausted (URX)', async () => {
    failing.seen.length = 0;
    const { res, rec } = await withRecord(svc('/exhausted'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('unavailable');
    expect(failing.seen.length).toBe(3);
    expect(rec.attempts).toBe(3);
    expect([...rec.responseFlags]).toEqual(['URX']);
  });

  it('answers 503 UF with Envoy`s body on connection failure', async () => {
    const { res, rec } = await withRecord(svc('/connect'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('upstream connect error or disconnect/reset before headers. reset reason: connection failure');
    expect([...rec.responseFlags]).toEqual(['UF']);
    expect(rec.upstreamHost).toBe(`127.0.0.1:${deadPort}`);
  });

  it('retries connection failures, then says so (UF,URX)', async () => {
    const { res, rec } = await withRecord(svc('/connect-retry'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure');
    expect(rec.attempts).toBe(2);
    expect(new Set(rec.responseFlags)).toEqual(new Set(['UF', 'URX']));
  });

  it('a per-try timeout abandons a slow attempt and the retry succeeds', async () => {
    slowFirst.seen.length = 0;
    const { res, rec } = await withRecord(svc('/per-try'));
    expect(res.status).toBe(200);
    expect(res.body).toBe('attempt 2');
    expect(res.ms).toBeGreaterThanOrEqual(145);
    expect(res.ms).toBeLessThan(550);
    expect(rec.attempts).toBe(2);
    expect(slowFirst.seen[0]?.headers['x-envoy-expected-rq-timeout-ms']).toBe('150');
  });

  it('the route timeout answers 504 `upstream request timeout` (UT)', async () => {
    const { res, rec } = await withRecord(svc('/timeout'));
    expect(res.status).toBe(504);
    expect(res.body).toBe('upstream request timeout');
    expect(res.ms).toBeGreaterThanOrEqual(145);
    // The backend would take 1 s.
    expect(res.ms).toBeLessThan(800);
    expect([...rec.responseFlags]).toEqual(['UT']);
  });

  it('does not retry when the cluster`s retry budget is spent (UO), and forwards the failure', async () => {
    failing.seen.length = 0;
    const { res, rec } = await withRecord(svc('/budget'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('unavailable');
    expect(failing.seen.length).toBe(1);
    expect(rec.attempts).toBe(1);
    expect([...rec.responseFlags]).toEqual(['UO']);
  });

  it('max_stream_duration ends a slow exchange: 504 `upstream max stream duration reached`', async () => {
    const { res, rec } = await withRecord(svc('/msd'));
    expect(res.status).toBe(504);
    expect(res.body).toBe('upstream max stream duration reached');
    expect(res.ms).toBeGreaterThanOrEqual(145);
    expect(res.ms).toBeLessThan(800);
    expect([...rec.responseFlags]).toEqual(['UT']);
  });

  it('no endpoints: 503 `no healthy upstream` (UH), not retried', async () => {
    const { res, rec } = await withRecord(svc('/nohealthy'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('no healthy upstream');
    expect([...rec.responseFlags]).toEqual(['UH']);
    expect(rec.attempts).toBe(1);
  });

  it('circuit-breaker overflow: 503 with the overflow reason (UO), never retried', async () => {
    const { res, rec } = await withRecord(svc('/overflow'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('upstream connect error or disconnect/reset before headers. reset reason: overflow');
    expect([...rec.responseFlags]).toEqual(['UO']);
    expect(rec.attempts).toBe(1);
  });

  it('a client that goes away is recorded as DC and the upstream request is cancelled', async () => {
    let upstreamClosed = false;
    const saved = slow.handle;
    slow.handle = async (_req, res) => {
      res.on('close', () => {
        upstreamClosed = true;
      });
      await sleep(1000);
      return true;
    };
    const rec = router.nextRecord();
    const req = http.request({ host: '127.0.0.1', port: router.port, path: '/hang', headers: { host: 'svc' }, agent: false });
    req.on('error', () => {});
    req.end();
    await sleep(150);
    req.destroy();
    const record = await rec;
    expect([...record.responseFlags]).toEqual(['DC']);
    expect(record.responseCode).toBe(0);
    await sleep(50);
    expect(upstreamClosed).toBe(true);
    slow.handle = saved;
  });
});

describe('redirects, direct responses and rewrites', () => {
  it('redirects with host, path, code and strip_query', async () => {
    const res = await svc('/redirect/x?keep=no');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('http://new.example/moved');
    expect(res.body).toBe('');
  });

  it('https_redirect keeps the host and path, drops the port 80', async () => {
    const res = await send(router.url, { path: '/secure/page?q=1', headers: { host: 'svc:80' } });
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('https://svc/secure/page?q=1');
  });

  it('answers a direct response with its body and the route`s response headers', async () => {
    const res = await svc('/direct');
    expect(res.status).toBe(418);
    expect(res.body).toBe('I am a teapot');
    expect(res.headers['content-type']).toBe('text/plain');
    expect(res.headers['x-direct']).toBe('1');
  });

  it('rewrites the path prefix and the host, keeping the query and the original path', async () => {
    const seen = echoed((await svc('/rewrite/items?id=7')).body);
    expect(seen.path).toBe('/v2/items?id=7');
    expect(seen.headers.host).toBe('rewritten.local');
    expect(seen.headers['x-envoy-original-path']).toBe('/rewrite/items?id=7');
  });

  it('rewrites the path with a regex substitution', async () => {
    expect(echoed((await svc('/regex/first/second')).body).path).toBe('/second/first');
  });
});

describe('mirroring, CORS and hashing', () => {
  it('mirrors the request, body included, to the shadow cluster with a -shadow host', async () => {
    shadow.seen.length = 0;
    const res = await svc('/mirror', { 'content-type': 'text/plain' }, { method: 'POST', body: 'copy me' });
    expect(echoed(res.body).backend).toBe('a');
    for (let i = 0; i < 50 && shadow.seen.length === 0; i++) await sleep(10);
    expect(shadow.seen).toHaveLength(1);
    expect(shadow.seen[0]).toMatchObject({ method: 'POST', path: '/mirror', body: 'copy me' });
    expect(shadow.seen[0]!.headers.host).toBe('svc-shadow');
  });

  it('answers a CORS preflight itself for an allowed origin', async () => {
    const before = a.seen.length;
    const res = await svc('/cors', { origin: 'https://app.example', 'access-control-request-method': 'POST' }, { method: 'OPTIONS' });
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({
      'access-control-allow-origin': 'https://app.example',
      'access-control-allow-methods': 'GET,POST',
      'access-control-allow-headers': 'x-custom',
      'access-control-max-age': '600',
      'access-control-allow-credentials': 'true',
    });
    expect(a.seen.length).toBe(before);
  });

  it('adds CORS headers to actual requests from allowed origins only', async () => {
    const ok = await svc('/cors', { origin: 'https://x.trusted.example' });
    expect(ok.headers['access-control-allow-origin']).toBe('https://x.trusted.example');
    expect(ok.headers['access-control-expose-headers']).toBe('x-backend');
    const denied = await svc('/cors', { origin: 'https://evil.example' });
    expect(denied.status).toBe(200);
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    // A preflight from a disallowed origin goes upstream (forward_not_matching_preflights).
    const pre = await svc('/cors', { origin: 'https://evil.example', 'access-control-request-method': 'GET' }, { method: 'OPTIONS' });
    expect(echoed(pre.body).method).toBe('OPTIONS');
  });

  it('hands the cluster a consistent-hash key from the header, so a user sticks to one backend', async () => {
    const backendsFor = async (user: string) => {
      const out = new Set<string>();
      for (let i = 0; i < 4; i++) out.add(echoed((await svc('/hash', { 'x-user': user })).body).backend);
      return out;
    };
    expect((await backendsFor('ann')).size).toBe(1);
    expect((await backendsFor('bob')).size).toBe(1);
    const hashed = clusters.get('hashed') as StandInCluster;
    expect(hashed.calls.at(-1)?.opts.hashKey).toBe('bob');
  });

  it('generates the hash cookie when absent and sets it on the response', async () => {
    const res = await svc('/cookie');
    const cookie = res.headers['set-cookie']?.[0] ?? '';
    expect(cookie).toMatch(/^sticky="[0-9a-f]{16}"; Max-Age=60; Path=\/; HttpOnly$/);
    const value = /sticky="([0-9a-f]+)"/.exec(cookie)![1]!;
    const hashed = clusters.get('hashed') as StandInCluster;
    expect(hashed.calls.at(-1)?.opts.hashKey).toBe(value);
    const again = await svc('/cookie', { cookie: `sticky="${value}"` });
    expect(again.headers['set-cookie']).toBeUndefined();
    expect(hashed.calls.at(-1)?.opts.hashKey).toBe(value);
  });
});

describe('connection manager settings and HTTP/2', () => {
  it('at a gateway (use_remote_address) appends the client to x-forwarded-for', async () => {
    const gw = await startRouter(routeConfig(), clusters, { settings: { useRemoteAddress: true } });
    try {
      const seen = echoed((await send(gw.url, { path: '/match', headers: { host: 'svc', 'x-forwarded-for': '203.0.113.5', 'x-forwarded-proto': 'https' } })).body).headers;
      expect(seen['x-forwarded-for']).toBe('203.0.113.5,127.0.0.1');
      expect(seen['x-forwarded-proto']).toBe('http');
      // A client on loopback counts as internal: its request id is kept.
      const kept = echoed((await send(gw.url, { path: '/match', headers: { host: 'svc', 'x-request-id': 'from-client' } })).body).headers;
      expect(kept['x-request-id']).toBe('from-client');
    } finally {
      await gw.close();
    }
  });

  it('streams a body larger than the buffer limit (and then cannot retry it)', async () => {
    const small = await startRouter(routeConfig(), clusters, { settings: { bufferLimitBytes: 1024 } });
    try {
      flaky.handle = undefined;
      flaky.seen.length = 0;
      const big = 'x'.repeat(64 * 1024);
      const rec = small.nextRecord();
      const res = await send(small.url, { method: 'POST', path: '/post', headers: { host: 'svc', 'content-type': 'text/plain' }, body: big });
      expect(res.status).toBe(200);
      expect(flaky.seen[0]?.body.length).toBe(big.length);
      expect((await rec).bytesReceived).toBe(big.length);
      flaky.handle = (_req, r) => {
        r.writeHead(503);
        r.end('no');
        return true;
      };
      const failed = await send(small.url, { method: 'POST', path: '/post', headers: { host: 'svc' }, body: big });
      expect(failed.status).toBe(503);
      expect(flaky.seen.length).toBe(2);
    } finally {
      flaky.handle = undefined;
      await small.close();
    }
  });

  it('serves HTTP/2 (h2c) clients with the same routes', async () => {
    const h2 = await startRouter(routeConfig(), clusters, { h2: true });
    const client = http2.connect(h2.url);
    try {
      const ask = (path: string, headers: Record<string, string> = {}) =>
        new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
          const s = client.request({ ':path': path, ':authority': 'svc', ...headers });
          let status = 0;
          let hdrs: http2.IncomingHttpHeaders = {};
          const chunks: Buffer[] = [];
          s.on('response', (h) => {
            status = Number(h[':status']);
            hdrs = h;
          });
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('end', () => resolve({ status, headers: hdrs, body: Buffer.concat(chunks).toString() }));
          s.on('error', reject);
          s.end();
        });
      const ok = await ask('/match', { 'end-user': 'jason' });
      expect(ok.status).toBe(200);
      expect(echoed(ok.body).backend).toBe('b');
      expect(ok.headers.server).toBe('istio-envoy');
      const aborted = await ask('/abort');
      expect(aborted.status).toBe(503);
      expect(aborted.body).toBe('fault filter abort');
      const missing = await ask('/nope', { ':authority': 'other' });
      expect(missing.status).toBe(404);
    } finally {
      client.close();
      await h2.close();
    }
  });
});
