// Istio's traffic-management tutorial (request routing, fault injection, traffic shifting), its
// mutual TLS and observability steps, as one suite of scenarios that any driver runs: the same
// code against the local mesh and against network-namespace pods with capture. The YAML is Istio's
// own (samples/bookinfo/networking, applied unchanged) when ../shared/reference has it.
//
// The scenarios run in order on one mesh, each starting from what the previous one left, as a
// reader of the tutorial does; each says what it applies.
import type { ReceivedSpan } from '@weft/proxy/testing';
import { noteSkip } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookinfoDriver } from './driver.ts';
import { PageUser, type ReviewsShown, texts } from './page.ts';
import { hasNetworking, networking, suiteConfig } from './reference.ts';
import { binomialInterval, missingVersionBound } from './stats.ts';

const reviewsPods: Record<string, ReviewsShown> = { 'reviews-v1': 'v1', 'reviews-v2': 'v2', 'reviews-v3': 'v3' };

/** Sums a counter's samples in Prometheus text whose labels include all of `labels`. */
export function sumCounter(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const body = line.slice(name.length + 1, close);
    const got = new Map<string, string>();
    for (const m of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got.set(m[1]!, m[2]!);
    if (Object.entries(labels).every(([k, v]) => got.get(k) === v)) sum += Number(line.slice(close + 1).trim());
  }
  return sum;
}

async function eventually<T>(get: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: (v: T | undefined) => string): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    last = await get();
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(what(last));
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Registers the scenarios inside the caller's describe. `driver()` returns the running mesh (started
 * in the caller's beforeAll); the scenarios apply and delete config on it in order.
 */
export function bookinfoScenarios(driver: () => BookinfoDriver): void {
  const d = () => driver();
  const user = () => new PageUser(d().productpageUrl);
  const jason = async () => {
    const u = user();
    await u.login('jason');
    return u;
  };
  const n = 200;
  const alpha = 1e-4;

  it('default round robin: v1 (no stars), v2 (black stars) and v3 (red stars) all show over 30 page loads', async () => {
    // No DestinationRule or VirtualService yet: the reviews service balances over its three pods.
    expect(missingVersionBound(3, 30)).toBeLessThan(alpha);
    const { counts, pages } = await user().loadMany(30);
    expect(counts.v1, JSON.stringify(counts)).toBeGreaterThan(0);
    expect(counts.v2, JSON.stringify(counts)).toBeGreaterThan(0);
    expect(counts.v3, JSON.stringify(counts)).toBeGreaterThan(0);
    expect(counts.v1 + counts.v2 + counts.v3).toBe(30);
    // What the page shows matches the pod that served it (Reviews served by: reviews-vN), and the stars are 5 + 4.
    for (const p of pages) {
      expect(reviewsPods[p.servedBy ?? '']).toBe(p.shown);
      expect(p.fullStars).toBe(p.shown === 'v1' ? 0 : 9);
      expect(p.html).toContain(texts.detailsOk);
    }
  });

  it('destination-rule-all + virtual-service-all-v1: only v1 (no stars) over 50 page loads', async () => {
    await d().apply([networking('destination-rule-all.yaml')]);
    await d().apply([networking('virtual-service-all-v1.yaml')]);
    const { counts, pages } = await user().loadMany(50);
    expect(counts.v1, JSON.stringify(counts)).toBe(50);
    expect(pages.every((p) => p.servedBy === 'reviews-v1' && p.fullStars === 0)).toBe(true);
  });

  it('virtual-service-reviews-test-v2: jason (signed in through /login) sees black stars, everyone else v1', async () => {
    await d().apply([networking('virtual-service-reviews-test-v2.yaml')]);
    const j = await jason();
    const signedIn = await j.loadMany(20);
    expect(signedIn.pages[0]!.user).toBe('jason');
    expect(signedIn.counts.v2, JSON.stringify(signedIn.counts)).toBe(20);
    expect(signedIn.pages.every((p) => p.servedBy === 'reviews-v2' && p.fullStars === 9)).toBe(true);
    const anonymous = await user().loadMany(20);
    expect(anonymous.counts.v1, JSON.stringify(anonymous.counts)).toBe(20);
    // Another name is not jason.
    const other = user();
    await other.login('someone-else');
    expect((await other.loadMany(10)).counts.v1).toBe(10);
  });

  it('istio_requests_total on reviews-v2 (reporter destination, destination_version v2) counts exactly the requests made to v2, in the proxy and in the driver’s Prometheus where it has one', async () => {
    // Still reviews-test-v2: every page jason loads calls reviews v2 once; anonymous pages go to v1.
    const labels = { reporter: 'destination', destination_version: 'v2', destination_workload: 'reviews-v2', source_workload: 'productpage-v1' };
    const series = (text: string) => sumCounter(text, 'istio_requests_total', labels);
    const before = series(await d().proxyStats('reviews-v2'));
    // Where the driver has a Prometheus, it must see what the proxy counts: first the count so far
    // (it has scraped since), then the same +k.
    const prom = d().prometheus;
    const promql = `sum(istio_requests_total{${Object.entries({ ...labels, destination_workload_namespace: d().namespace })
      .map(([k, v]) => `${k}="${v}"`)
      .join(',')}})`;
    const promValue = async () => (await prom!.value(promql)) ?? 0;
    if (prom) await eventually(promValue, (v) => v === before, 60_000, (v) => `Prometheus: ${promql} is ${v}, the proxy's own count ${before}`);
    const j = await jason();
    const k = 17;
    const pages = await j.loadMany(k);
    expect(pages.counts.v2).toBe(k);
    await user().loadMany(10);
    const after = await eventually(
      async () => series(await d().proxyStats('reviews-v2')),
      (v) => v - before >= k,
      10_000,
      (v) => `istio_requests_total for reviews v2 went from ${before} to ${v}, expected +${k}`,
    );
    expect(after - before).toBe(k);
    // Nothing late: the anonymous pages (v1) and nothing else were counted.
    await new Promise((r) => setTimeout(r, 500));
    expect(series(await d().proxyStats('reviews-v2')) - before).toBe(k);
    const text = await d().proxyStats('reviews-v2');
    expect(sumCounter(text, 'istio_requests_total', { reporter: 'destination', destination_version: 'v1' })).toBe(0);
    if (prom) {
      const seen = await eventually(promValue, (v) => v - before >= k, 60_000, (v) => `Prometheus: ${promql} went from ${before} to ${v}, expected +${k}`);
      console.log(`${d().name}: Prometheus ${promql}: ${before} -> ${seen} after ${k} pages of jason`);
      expect(seen - before).toBe(k);
    }
  });

  it('a trace of one page view spans the ingress gateway, productpage, reviews and ratings', async () => {
    // Still reviews-test-v2: jason's page goes to reviews v2, which calls ratings.
    const j = await jason();
    const traceId = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
    const parent = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('');
    const r = await fetch(j.url, { headers: { cookie: j.cookie!, traceparent: `00-${traceId}-${parent}-01` }, signal: AbortSignal.timeout(20_000) });
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('gap-x-1 text-black-500');
    const services = (spans: readonly ReceivedSpan[]) => new Set(spans.filter((s) => s.traceId === traceId).map((s) => `${s.kind} ${s.resource['service.name']}`));
    const ns = d().namespace;
    const need = ['SERVER istio-ingressgateway.istio-system', `SERVER productpage.${ns}`, `CLIENT productpage.${ns}`, `SERVER reviews.${ns}`, `CLIENT reviews.${ns}`, `SERVER ratings.${ns}`, `SERVER details.${ns}`];
    const spans = (
      await d()
        .otlp.waitFor((all) => need.every((x) => services(all).has(x)), 20_000)
        .catch(() => {
          throw new Error(`the receiver has ${[...services(d().otlp.spans)].join(', ') || 'no span'} for trace ${traceId}; expected ${need.join(', ')}`);
        })
    ).filter((s) => s.traceId === traceId);
    // One tree: every span's parent is a span of the trace, or the caller's span for the gateway's.
    const ids = new Set(spans.map((s) => s.spanId));
    for (const s of spans) expect(ids.has(s.parentSpanId) || s.parentSpanId === parent, `${s.kind} ${s.name} of ${s.resource['service.name']}`).toBe(true);
    const byService = (kind: string, svc: string) => spans.filter((s) => s.kind === kind && s.resource['service.name'] === svc);
    const spanById = new Map(spans.map((s) => [s.spanId, s]));
    // ratings' server span hangs under a client span of reviews, which hangs (through reviews' server span) under productpage.
    const ratingsServer = byService('SERVER', `ratings.${ns}`)[0]!;
    const reviewsClient = spanById.get(ratingsServer.parentSpanId)!;
    expect(reviewsClient.resource['service.name']).toBe(`reviews.${ns}`);
    const reviewsServer = spanById.get(reviewsClient.parentSpanId)!;
    expect(reviewsServer.kind).toBe('SERVER');
    expect(spanById.get(reviewsServer.parentSpanId)?.resource['service.name']).toBe(`productpage.${ns}`);
  });

  it('virtual-service-ratings-test-delay: jason sees the reviews error after productpage gives up (3 s x 2), others v1', async () => {
    // Tutorial: with reviews-test-v2, a 7 s ratings delay for jason; reviews v2 waits up to 10 s for
    // ratings, productpage gives reviews 3 s per attempt and tries twice, so after ~6 s the page
    // shows the reviews error (the tutorial's "bug": 6 s < 7 s).
    await d().apply([networking('virtual-service-ratings-test-delay.yaml')]);
    const j = await jason();
    const page = await j.load(30_000);
    console.log(`${d().name}: jason's page under the 7 s ratings delay took ${(page.ms / 1000).toFixed(2)} s`);
    expect(page.status).toBe(200);
    expect(page.shown).toBe('reviews-unavailable');
    expect(page.html).toContain(texts.reviewsUnavailable);
    expect(page.html).toContain(texts.detailsOk);
    expect(page.ms).toBeGreaterThanOrEqual(5_800);
    expect(page.ms).toBeLessThan(7_000 + 2_000);
    // Not jason: no delay, v1.
    const anonymous = await user().load();
    expect(anonymous.shown).toBe('v1');
    expect(anonymous.ms).toBeLessThan(3_000);
  });

  it('virtual-service-ratings-test-abort: jason sees "Ratings service is currently unavailable", others v1', async () => {
    await d().apply([networking('virtual-service-ratings-test-abort.yaml')]);
    const j = await jason();
    const { counts, pages } = await j.loadMany(5, 1);
    expect(counts['ratings-unavailable'], JSON.stringify(counts)).toBe(5);
    expect(pages.every((p) => p.servedBy === 'reviews-v2' && p.fullStars === 0 && p.html.includes(texts.ratingsUnavailable))).toBe(true);
    expect(pages.every((p) => p.ms < 3_000)).toBe(true);
    expect((await user().load()).shown).toBe('v1');
    // The tutorial's cleanup: back to all-v1 (which also resets ratings).
    await d().apply([networking('virtual-service-all-v1.yaml')]);
    expect((await j.load()).shown).toBe('v1');
  });

  const split = hasNetworking('virtual-service-reviews-90-10.yaml') ? { file: 'virtual-service-reviews-90-10.yaml', p: 0.1 } : { file: 'virtual-service-reviews-80-20.yaml', p: 0.2 };
  it(`${split.file.replace('.yaml', '')}: the share of v2 over ${n} page loads is within the binomial interval (false failure < 1e-4)`, async () => {
    await d().apply([networking(split.file)]);
    const { lo, hi } = binomialInterval(n, split.p, alpha);
    const { counts } = await user().loadMany(n);
    console.log(`${d().name}: ${split.file}: v1 ${counts.v1}, v2 ${counts.v2} of ${n} (accepted v2 in [${lo}, ${hi}])`);
    expect(counts.v1 + counts.v2, JSON.stringify(counts)).toBe(n);
    expect(counts.v2, `${JSON.stringify(counts)}; accepted v2 in [${lo}, ${hi}]`).toBeGreaterThanOrEqual(lo);
    expect(counts.v2, `${JSON.stringify(counts)}; accepted v2 in [${lo}, ${hi}]`).toBeLessThanOrEqual(hi);
  });

  it(`virtual-service-reviews-50-v3: the share of v3 over ${n} page loads is within the binomial interval (false failure < 1e-4)`, async () => {
    await d().apply([networking('virtual-service-reviews-50-v3.yaml')]);
    const { lo, hi } = binomialInterval(n, 0.5, alpha);
    const { counts } = await user().loadMany(n);
    console.log(`${d().name}: virtual-service-reviews-50-v3.yaml: v1 ${counts.v1}, v3 ${counts.v3} of ${n} (accepted v3 in [${lo}, ${hi}])`);
    expect(counts.v1 + counts.v3, JSON.stringify(counts)).toBe(n);
    expect(counts.v3, `${JSON.stringify(counts)}; accepted v3 in [${lo}, ${hi}]`).toBeGreaterThanOrEqual(lo);
    expect(counts.v3, `${JSON.stringify(counts)}; accepted v3 in [${lo}, ${hi}]`).toBeLessThanOrEqual(hi);
  });

  it('virtual-service-reviews-v3: red stars on every page', async () => {
    await d().apply([networking('virtual-service-reviews-v3.yaml')]);
    const { counts, pages } = await user().loadMany(20);
    expect(counts.v3, JSON.stringify(counts)).toBe(20);
    expect(pages.every((p) => p.servedBy === 'reviews-v3' && p.fullStars === 9)).toBe(true);
  });

  const jasonV2V3 = 'virtual-service-reviews-jason-v2-v3.yaml';
  it.skipIf(noteSkip(hasNetworking(jasonV2V3) ? undefined : `${jasonV2V3} is not in the tutorial's networking samples in use`) !== undefined)('virtual-service-reviews-jason-v2-v3: jason sees black stars, everyone else red', async () => {
    await d().apply([networking('virtual-service-reviews-jason-v2-v3.yaml')]);
    expect((await (await jason()).loadMany(10)).counts.v2).toBe(10);
    expect((await user().loadMany(10)).counts.v3).toBe(10);
    await d().apply([networking('virtual-service-reviews-v3.yaml')]);
  });

  it('PeerAuthentication STRICT: a plaintext call into a pod is refused while the product page keeps working', async () => {
    const strict = `${suiteConfig}/peer-authentication-strict.yaml`;
    // PERMISSIVE (the default): a client without a sidecar gets an answer.
    const before = await d().plaintextCall('details-v1', '/details/0');
    expect(before, JSON.stringify(before)).toMatchObject({ ok: true, status: 200 });
    await d().apply([strict]);
    try {
      const refused = await d().plaintextCall('details-v1', '/details/0');
      expect(refused.ok, JSON.stringify(refused)).toBe(false);
      // The mesh itself speaks mutual TLS (auto mTLS): the page is whole.
      const { counts, pages } = await user().loadMany(10);
      expect(counts.v3).toBe(10);
      expect(pages.every((p) => p.html.includes(texts.detailsOk))).toBe(true);
      // The tutorial's DestinationRules for a mesh with mutual TLS (ISTIO_MUTUAL, explicit): the same.
      await d().apply([networking('destination-rule-all-mtls.yaml')]);
      const explicit = await user().loadMany(10);
      expect(explicit.counts.v3).toBe(10);
      expect(explicit.pages.every((p) => p.html.includes(texts.detailsOk))).toBe(true);
      expect((await d().plaintextCall('details-v1', '/details/0')).ok).toBe(false);
    } finally {
      await d().apply([networking('destination-rule-all.yaml')]);
      await d().delete([strict]);
    }
    const after = await d().plaintextCall('details-v1', '/details/0');
    expect(after, JSON.stringify(after)).toMatchObject({ ok: true, status: 200 });
  });

  it('deleting the tutorial config brings back round robin over the three versions', async () => {
    await d().delete([networking('virtual-service-all-v1.yaml')]);
    await d().delete([networking('destination-rule-all.yaml')]);
    const { counts } = await user().loadMany(30);
    expect(counts.v1 > 0 && counts.v2 > 0 && counts.v3 > 0, JSON.stringify(counts)).toBe(true);
  });
}

/** The suite for one driver: starts it once, runs every scenario, stops it and checks nothing is left. */
export function describeBookinfo(
  title: string,
  skipReason: string | undefined,
  start: () => Promise<BookinfoDriver>,
  extra?: (driver: () => BookinfoDriver) => void,
  /** How long starting and stopping may take (default: the config's hookTimeout); a cluster install takes longer. */
  hookTimeoutMs?: number,
): void {
  noteSkip(skipReason);
  describe.skipIf(skipReason !== undefined)(title, () => {
    let driver: BookinfoDriver | undefined;
    const get = () => {
      if (!driver) throw new Error('the mesh did not start');
      return driver;
    };
    beforeAll(async () => {
      const t0 = Date.now();
      driver = await start();
      console.log(`${title}: mesh ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }, hookTimeoutMs);
    afterAll(async () => {
      await driver?.stop();
    }, hookTimeoutMs);
    bookinfoScenarios(get);
    extra?.(get);
    it('stopping the mesh leaves nothing behind', async () => {
      // The check sees a running mesh (so it is able to fail)...
      expect((await get().leftovers()).length).toBeGreaterThan(0);
      await get().stop();
      expect(await get().leftovers()).toEqual([]);
    }, hookTimeoutMs);
  });
}
