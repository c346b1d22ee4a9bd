
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeAny, type Route, type RouteConfiguration, TypeUrl } from '@weft/xds';
import { afterAll, beforeAll } from 'vitest';
import { UpstreamError } from '../core/types.ts';
import { type Backend, type RouterServer, StandInCluster, StandInClusterManager, send, startBackend, startRouter } from './test-support.ts';

const ms = (n: number) => ({ seconds: Math.floor(n / 1000), nanos: (n % 1000) * 1_000_000 });
const retry = (retry_on: string, num: number, extra: Record<string, unknown> = {}) => ({ retry_on, num_retries: { value: num }, retry_back_off: { base_interval: ms(1) }, ...extra });

function r(name: string, match: Route['match'], rest: Partial<Route>): Route {
  return { name, match, ...rest };
}

export function routeConfig(): RouteConfiguration {
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

export let a: Backend;
export let b: Backend;
export let shadow: Backend;
export let flaky: Backend;
export let failing: Backend;
export let slow: Backend;
export let slowFirst: Backend;
export let clusters: StandInClusterManager;
export let router: RouterServer;
let rnd = 0;
/** What the router's random source returns next (weights, fractions, back-off). */
export function setRandom(r: number): void {
  rnd = r;
}
export let deadPort = 0;

/** Starts the backends and the router before a test file's tests, and stops them after. */
export function useRouterFixture(): void {
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
}


export const svc = (path: string, headers: Record<string, string> = {}, extra: { method?: string; body?: string } = {}) =>
  send(router.url, { path, headers: { host: 'svc', ...headers }, ...extra });

/** Sends a request and returns the client's view plus the router's record of it. */
export async function withRecord(p: Promise<Awaited<ReturnType<typeof svc>>>) {
  const rec = router.nextRecord();
  const res = await p;
  return { res, rec: await rec };
}

