// /debug/why over what pilot really generates for BookInfo's productpage sidecar: the answer
// names what the proxy's own decision code picks, and asking changes nothing the next request
// meets (load-balancer rotation, the random source).
import { describe, expect, it } from 'vitest';
import type { ClusterImpl } from '../cluster/cluster.ts';
import type { XdsSnapshot } from '../core/types.ts';
import { Stats } from './stats.ts';
import { startAdmin } from './server.ts';
import { bookinfoFile, bookinfoSnapshot, whyFixture } from './why-fixture.ts';
import { explainRequest, parseWhyQuery, type WhyAnswer, type WhySource, whyLimits } from './why.ts';

const reviews = (subset: string) => `outbound|9080|${subset}|reviews.default.svc.cluster.local`;

/** A workload's address in BookInfo's local platform file. */
function addressOf(workload: string): string {
  const m = new RegExp(`name: ${workload}\\n[\\s\\S]*?address: (\\S+)`).exec(bookinfoFile('platform/local/bookinfo.yaml'));
  if (!m) throw new Error(`no address for ${workload}`);
  return m[1]!;
}

function ask(src: WhySource, query: string): WhyAnswer {
  const q = parseWhyQuery(new URLSearchParams(query));
  if ('error' in q) throw new Error(q.error);
  const a = explainRequest(q, src);
  if ('error' in a) throw new Error(a.error);
  return a;
}

/** A seeded source in [0, 1) (mulberry32), so two managers draw the same sequence. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const testV2 = () => bookinfoSnapshot(['destination-rule-all.yaml', 'virtual-service-reviews-test-v2.yaml']);

describe('/debug/why: the proxy’s own decisions', () => {
  it('virtual-service-reviews-test-v2: jason goes to the v2 subset’s cluster and reviews-v2’s address; others to v1', () => {
    const { source } = whyFixture(testV2());
    const jason = ask(source, 'authority=reviews:9080&path=/reviews/0&method=GET&header=end-user:jason&port=9080');
    expect(jason.listener).toBe('0.0.0.0_9080');
    expect(jason.routeConfig).toBe('9080');
    expect(jason.virtualHost).toBe('reviews.default.svc.cluster.local:9080');
    expect(jason.route?.match).toEqual({ headers: [{ name: 'end-user', string_match: { exact: 'jason' } }], case_sensitive: { value: true }, prefix: '/' });
    expect(jason.cluster).toBe(reviews('v2'));
    expect(jason.endpoint).toMatchObject({ address: addressOf('reviews-v2'), port: 9080, health: 'healthy' });
    expect(jason.weights).toBeUndefined();
    expect(jason.direct).toBeUndefined();
    expect(jason.why.length).toBeGreaterThanOrEqual(4);
    expect(jason.why.join(' ')).toContain('virtual-service/reviews');

    const anonymous = ask(source, 'authority=reviews:9080&path=/reviews/0');
    expect(anonymous.cluster).toBe(reviews('v1'));
    expect(anonymous.route?.match).toEqual({ prefix: '/' });
    expect(anonymous.endpoint?.address).toBe(addressOf('reviews-v1'));
    // Header names are case-insensitive, values are not.
    expect(ask(source, 'authority=reviews:9080&path=/reviews/0&header=End-User:%20jason').cluster).toBe(reviews('v2'));
    expect(ask(source, 'authority=reviews:9080&path=/reviews/0&header=end-user:Jason').cluster).toBe(reviews('v1'));
  });

  it('capture mode decides the same through virtualOutbound’s hand-off and the filter chain match', () => {
    const { source } = whyFixture(testV2(), 'capture');
    const a = ask(source, 'authority=reviews:9080&path=/reviews/0&header=end-user:jason');
    expect(a.listener).toBe('0.0.0.0_9080');
    expect(a.cluster).toBe(reviews('v2'));
    expect(a.why[0]).toMatch(/^Capture: /);
  });

  it('virtual-service-reviews-90-10: the weights, and which cluster a given draw takes', () => {
    const { source } = whyFixture(bookinfoSnapshot(['destination-rule-all.yaml', 'virtual-service-reviews-90-10.yaml']));
    const a = ask(source, 'authority=reviews:9080&path=/reviews/0');
    expect(a.weights).toEqual([
      { cluster: reviews('v1'), weight: 90 },
      { cluster: reviews('v2'), weight: 10 },
    ]);
    expect(a.cluster).toBe(reviews('v1'));
    const b = ask(source, 'authority=reviews:9080&path=/reviews/0&draw=0.95');
    expect(b.cluster).toBe(reviews('v2'));
    expect(b.endpoint?.address).toBe(addressOf('reviews-v2'));
    expect(b.why.some((s) => s.includes('a draw of 0.95 takes'))).toBe(true);
  });

  it('fault injection: an abort that applies is the answer (direct fault, status)', () => {
    const { source } = whyFixture(bookinfoSnapshot(['destination-rule-all.yaml', 'virtual-service-ratings-test-abort.yaml']));
    const jason = ask(source, 'authority=ratings:9080&path=/ratings/0&header=end-user:jason');
    expect(jason.direct).toEqual({ status: 500, kind: 'fault' });
    expect(jason.cluster).toBe('outbound|9080|v1|ratings.default.svc.cluster.local');
    expect(jason.endpoint).toBeNull();
    const other = ask(source, 'authority=ratings:9080&path=/ratings/0');
    expect(other.direct).toBeUndefined();
    expect(other.endpoint?.address).toBe(addressOf('ratings-v1'));
  });

  it('what the route answers itself: redirect, direct response, and a cluster the proxy does not have (NC)', () => {
    const details = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: details
spec:
  hosts:
  - details
  http:
  - match:
    - uri:
        prefix: /moved
    redirect:
      uri: /details/0
      redirectCode: 302
  - match:
    - uri:
        prefix: /gone
    directResponse:
      status: 410
      body:
        string: gone
  - match:
    - uri:
        prefix: /v9
    route:
    - destination:
        host: details
        subset: v9
  - route:
    - destination:
        host: details
`;
    const { source } = whyFixture(bookinfoSnapshot([details]));
    const moved = ask(source, 'authority=details:9080&path=/moved');
    expect(moved.direct).toEqual({ status: 302, kind: 'redirect' });
    expect(moved.endpoint).toBeNull();
    expect(ask(source, 'authority=details:9080&path=/gone').direct).toEqual({ status: 410, kind: 'direct_response' });
    const v9 = ask(source, 'authority=details:9080&path=/v9');
    expect(v9.cluster).toBe('outbound|9080|v9|details.default.svc.cluster.local');
    expect(v9.direct).toEqual({ status: 503, kind: 'no_cluster' });
    const plain = ask(source, 'authority=details:9080&path=/details/0');
    expect(plain.direct).toBeUndefined();
    expect(plain.endpoint?.address).toBe(addressOf('details-v1'));
  });

  it('a full max_requests breaker is said: the request would fail with UO wherever it would go', () => {
    const breaker = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings
spec:
  host: ratings
  trafficPolicy:
    connectionPool:
      http:
        http2MaxRequests: 1
`;
    const f = whyFixture(bookinfoSnapshot([breaker]));
    const name = 'outbound|9080||ratings.default.svc.cluster.local';
    expect(ask(f.source, 'authority=ratings:9080&path=/ratings/0').why.at(-1)).not.toContain('circuit breaker');
    // One request in flight, as the pool counts it.
    (f.clusters.get(name) as ClusterImpl).rqActive = 1;
    const a = ask(f.source, 'authority=ratings:9080&path=/ratings/0');
    expect(a.cluster).toBe(name);
    expect(a.why.at(-1)).toContain('max_requests circuit breaker is full (1 in flight), so a request now fails with 503 (UO)');
  });

  it('a host the mesh does not know: virtualOutbound’s catch-all, and the original destination as endpoint', () => {
    const { source } = whyFixture(testV2());
    const a = ask(source, 'authority=example.com&path=/');
    expect(a.listener).toBe('virtualOutbound');
    expect(a.cluster).toBe('PassthroughCluster');
    expect(a.endpoint).toMatchObject({ address: 'example.com', port: 80 });
  });

  it('the ingress gateway: its listener at the port, the bookinfo VirtualService, and 404 (NR) for paths it does not expose', () => {
    const snap = bookinfoSnapshot(['bookinfo-gateway.yaml'], 'ingress');
    const { source } = whyFixture(snap, 'gateway');
    const listener = [...snap.listeners.values()][0]!;
    const port = listener.address?.socket_address?.port_value ?? 0;
    const page = ask(source, `authority=bookinfo.example&path=/productpage&port=${port}`);
    expect(page.listener).toBe(listener.name);
    expect(page.route?.config).toBe('/apis/networking.istio.io/v1/namespaces/default/virtual-service/bookinfo');
    expect(page.cluster).toBe('outbound|9080||productpage.default.svc.cluster.local');
    expect(page.endpoint?.address).toBe(addressOf('productpage-v1'));
    expect(page.why[0]).toBe(`Gateway: listener ${listener.name} is bound at port ${port}.`);
    const hidden = ask(source, `authority=bookinfo.example&path=/admin&port=${port}`);
    expect(hidden.direct).toEqual({ status: 404, kind: 'no_route' });
    expect(hidden.cluster).toBeNull();
    expect(ask(source, 'authority=bookinfo.example&path=/productpage&port=1').listener).toBeNull();
  });

  it('asking changes nothing: round robin’s next endpoint and the random source are where they were', () => {
    // reviews without subsets or VirtualService: one cluster over v1, v2 and v3.
    const roundRobin = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
`;
    for (const [policy, snap] of [
      ['ROUND_ROBIN', bookinfoSnapshot([roundRobin])],
      ['LEAST_REQUEST', bookinfoSnapshot([])],
    ] as [string, XdsSnapshot][]) {
      // Two proxies with the same config and the same seeded random source: one is asked between
      // its picks, the other never; their picks must be the same sequence.
      const asked = whyFixture(snap, 'local', seeded(7));
      const quiet = whyFixture(snap, 'local', seeded(7));
      const pick = (f: typeof asked) => (f.clusters.get(reviews('')) as ClusterImpl).choose({})!.key;
      const seenAsked: string[] = [];
      const seenQuiet: string[] = [];
      for (let i = 0; i < 12; i++) {
        let predicted = '';
        for (let k = 0; k < 1 + (i % 5); k++) {
          const a = ask(asked.source, 'authority=reviews:9080&path=/reviews/0');
          expect(a.cluster).toBe(reviews(''));
          predicted ||= `${a.endpoint!.address}:${a.endpoint!.port}`;
          // Asking again gives the same answer: nothing moved.
          expect(`${a.endpoint!.address}:${a.endpoint!.port}`).toBe(predicted);
        }
        const got = pick(asked);
        seenAsked.push(got);
        seenQuiet.push(pick(quiet));
        // Round robin is deterministic: the answer is the endpoint the next request takes.
        if (policy === 'ROUND_ROBIN') expect(got, `pick ${i}`).toBe(predicted);
      }
      expect(seenAsked, policy).toEqual(seenQuiet);
      expect(new Set(seenAsked).size, policy).toBe(3);
    }
  });
});

describe('/debug/why: hostile or wrong input', () => {
  const bad = (query: string) => {
    const q = parseWhyQuery(new URLSearchParams(query));
    return 'error' in q ? q.error : undefined;
  };

  it('says what is wrong in one sentence', () => {
    expect(bad('')).toMatch(/authority is required/);
    expect(bad('authority=reviews&bogus=1')).toMatch(/unknown parameter "bogus"/);
    expect(bad('authority=reviews&authority=ratings')).toMatch(/authority given more than once/);
    expect(bad('authority=reviews%20x')).toMatch(/not a host\[:port\]/);
    expect(bad('authority=reviews&path=reviews')).toMatch(/path must start with \//);
    expect(bad('authority=reviews&method=G%20T')).toMatch(/not an HTTP method/);
    expect(bad('authority=reviews&header=end-user')).toMatch(/not name:value/);
    expect(bad('authority=reviews&header=bad%20name:x')).toMatch(/not a token/);
    expect(bad('authority=reviews&header=host:x')).toMatch(/authority=/);
    expect(bad('authority=reviews&header=x:a%0d%0ainjected:1')).toMatch(/visible ASCII/);
    expect(bad('authority=reviews&port=70000')).toMatch(/not a port number/);
    expect(bad('authority=reviews&port=9080x')).toMatch(/not a port number/);
    expect(bad('authority=reviews&draw=1')).toMatch(/\[0, 1\)/);
    expect(bad(`authority=reviews&${Array.from({ length: whyLimits.headers + 1 }, (_, i) => `header=h${i}:v`).join('&')}`)).toMatch(/at most 64 headers/);
    expect(bad(`authority=reviews&header=x:${'a'.repeat(whyLimits.headerValueBytes + 1)}`)).toMatch(/at most 4096/);
    expect(bad(`authority=reviews&${Array.from({ length: 5 }, (_, i) => `header=h${i}:${'a'.repeat(4000)}`).join('&')}`)).toMatch(/exceed 16384 bytes/);
    expect(bad('authority=reviews:9080&path=/&header=end-user:jason&source=default/productpage-v1')).toBeUndefined();
  });

  it('over the admin port: 400 with the reason, 405 for other methods, 503 before any config, 200 with the answer', async () => {
    const { source } = whyFixture(testV2());
    let snapshot: XdsSnapshot | undefined;
    const live: WhySource = { get snapshot() { return snapshot; }, target: source.target, clusters: source.clusters };
    const admin = await startAdmin(
      { snapshot: undefined, resourceInfo: () => undefined, warming: { listeners: [], clusters: [] }, ready: () => true, clusterStatus: () => new Map(), listeners: () => [], stats: new Stats(), serverInfo: () => ({}), why: live },
      { port: 0, healthPort: -1 },
    );
    try {
      const url = (q: string) => `http://127.0.0.1:${admin.port}/debug/why?${q}`;
      let r = await fetch(url('authority=reviews:9080'));
      expect(r.status).toBe(503);
      expect(((await r.json()) as { error: string }).error).toMatch(/no configuration/);
      snapshot = testV2();
      r = await fetch(url('authority=reviews:9080&port=0'));
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: string }).error).toMatch(/not a port number/);
      r = await fetch(url('authority=reviews:9080&listener=nope'));
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: string }).error).toMatch(/no listener "nope"/);
      r = await fetch(url('authority=reviews:9080'), { method: 'POST' });
      expect(r.status).toBe(405);
      r = await fetch(url('authority=reviews:9080&path=/reviews/0&header=end-user:jason'));
      expect(r.status).toBe(200);
      expect(((await r.json()) as WhyAnswer).cluster).toBe(reviews('v2'));
      // A URL longer than Node's header limit is refused before it is parsed.
      r = await fetch(url(`authority=reviews&header=x:${'a'.repeat(20_000)}`));
      expect(r.status).toBe(431);
    } finally {
      await admin.close();
    }
  });
});
