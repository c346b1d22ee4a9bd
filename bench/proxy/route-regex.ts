// Per-request cost of route selection when routes match with RE2 `safe_regex` (paths and headers),
// against the same table matched with prefixes and exact headers, in one process. Prints
// nanoseconds per request (median of 5 runs) and the cost of a hostile header
// (`(a+)+$` against 2,000 `a`s and a `!`, which a backtracking engine never finishes).
// Run: cd bench && npx node proxy/route-regex.ts
import { compileRouteConfiguration, RequestView } from '@weft/proxy';
import { decodeMessage, encodeMessage, type Route, type RouteConfiguration, type RouteConfiguration__Output } from '@weft/xds';

const services = ['details', 'ratings', 'reviews', 'productpage', 'catalog', 'orders', 'payments', 'users'];

function table(kind: 'regex' | 'plain'): RouteConfiguration__Output {
  const routes: Route[] = [];
  for (const s of services) {
    routes.push(
      kind === 'regex'
        ? {
            name: `${s}-jason`,
            match: { safe_regex: { regex: `/${s}/v[0-9]+/[a-z0-9-]+` }, headers: [{ name: 'end-user', string_match: { safe_regex: { regex: '(?i).*(jason|mark).*' } } }] },
            route: { cluster: `outbound|9080|v2|${s}` },
          }
        : { name: `${s}-jason`, match: { prefix: `/${s}/`, headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] }, route: { cluster: `outbound|9080|v2|${s}` } },
      kind === 'regex'
        ? { name: s, match: { safe_regex: { regex: `/${s}/v[0-9]+/[a-z0-9-]+` } }, route: { cluster: `outbound|9080|v1|${s}` } }
        : { name: s, match: { prefix: `/${s}/` }, route: { cluster: `outbound|9080|v1|${s}` } },
    );
  }
  routes.push({ name: 'hostile', match: { prefix: '/hostile', headers: [{ name: 'x-hostile', string_match: { safe_regex: { regex: '(a+)+$' } } }] }, route: { cluster: 'x' } });
  const rc: RouteConfiguration = { name: '9080', virtual_hosts: [{ name: 'all', domains: ['*'], routes }] };
  const name = 'envoy.config.route.v3.RouteConfiguration';
  return decodeMessage(name, encodeMessage(name, rc)) as RouteConfiguration__Output;
}

function nsPerRequest(rc: RouteConfiguration__Output, path: string, headers: Record<string, string>, n: number, matches = true): number {
  const routes = compileRouteConfiguration(rc);
  const runs: number[] = [];
  for (let run = 0; run < 5; run++) {
    const t0 = process.hrtime.bigint();
    let hits = 0;
    for (let i = 0; i < n; i++) {
      const view = new RequestView('GET', 'reviews:9080', path, 'http', headers);
      if (routes.route(view).route) hits++;
    }
    const ns = Number(process.hrtime.bigint() - t0) / n;
    if (hits !== (matches ? n : 0)) throw new Error(`expected ${matches ? 'every' : 'no'} request to match a route, ${hits}/${n} did`);
    runs.push(ns);
  }
  return runs.sort((a, b) => a - b)[2]!;
}

const regex = table('regex');
const plain = table('plain');
const n = 50_000;
const last = `/${services.at(-1)}/v1/abc-123`;
const lastPlain = `/${services.at(-1)}/x`;
const rows: [string, number][] = [
  ['prefix + exact header, last route (16 routes tried)', nsPerRequest(plain, lastPlain, { 'end-user': 'someone' }, n)],
  ['RE2 path + (?i) header regex, last route (16 routes tried)', nsPerRequest(regex, last, { 'end-user': 'someone' }, n)],
  ['RE2 path + (?i) header regex, first route', nsPerRequest(regex, `/${services[0]}/v1/abc`, { 'end-user': 'Jason' }, n)],
];
// A backtracking engine doubles its time with every `a`: set BENCH_HOSTILE_LENGTH=20 to see it finish.
const hostile = Number(process.env.BENCH_HOSTILE_LENGTH ?? 2000);
rows.push([`hostile header (a+)+$ against ${hostile.toLocaleString('en-US')} a and !`, nsPerRequest(regex, '/hostile', { 'x-hostile': `${'a'.repeat(hostile)}!`, 'end-user': 'x' }, 20, false)]);
console.log(`route selection, ns per request (median of 5; node ${process.version}; load ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')})`);
for (const [name, ns] of rows) console.log(`  ${name.padEnd(60)} ${Math.round(ns).toLocaleString('en-US').padStart(10)} ns`);
