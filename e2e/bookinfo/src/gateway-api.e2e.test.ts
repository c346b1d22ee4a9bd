// BookInfo through the Kubernetes Gateway API in local mode: the Istio Gateway the mesh starts with
// is replaced by a Gateway API Gateway and HTTPRoute (examples/bookinfo/gateway-api), which the
// mesh's ingress gateway process serves; then GAMMA routes (HTTPRoutes whose parent is the reviews
// Service) move the mesh's calls to reviews between versions. The statuses the spec defines are
// read from weftd's /debug/gateway_api_status.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalDriver } from './local-driver.ts';
import { PageUser } from './page.ts';
import { networking, repoRoot } from './reference.ts';
import { binomialInterval } from './stats.ts';

const example = (path: string) => join(repoRoot, 'examples/bookinfo', path);

async function eventually<T>(get: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: (v: T | undefined) => string): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    last = await get().catch(() => undefined as T);
    if (last !== undefined && ok(last)) return last;
    if (Date.now() > deadline) throw new Error(what(last));
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface StatusEntry {
  kind: string;
  namespace: string;
  name: string;
  status: { conditions?: { type: string; status: string; reason: string }[]; listeners?: { name: string; attachedRoutes: number }[]; parents?: { conditions: { type: string; status: string; reason: string }[] }[] };
}

describe('BookInfo through the Gateway API, local mode (weftctl up\'s ingress gateway serves the Gateway)', () => {
  let driver: Awaited<ReturnType<typeof startLocalDriver>>;
  beforeAll(async () => {
    driver = await startLocalDriver();
  }, 200_000);
  afterAll(async () => {
    await driver?.stop();
  }, 30_000);

  /** The product page's status through the ingress gateway; 0 when nothing listens there. */
  const page = async () => {
    try {
      const r = await fetch(driver.productpageUrl, { signal: AbortSignal.timeout(10_000) });
      await r.arrayBuffer();
      return r.status;
    } catch (e) {
      if ((e as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED') return 0;
      throw e;
    }
  };
  const statuses = async (): Promise<StatusEntry[]> => {
    const r = await fetch(`http://127.0.0.1:${driver.mesh.state.weftd!.monitoringPort}/debug/gateway_api_status`);
    return (await r.json()) as StatusEntry[];
  };

  it('without the Istio Gateway the product page is gone (404, or no listener at all); the Gateway API Gateway + HTTPRoute bring it back', async () => {
    await driver.delete([networking('bookinfo-gateway.yaml')]);
    await eventually(page, (s) => s === 404 || s === 0, 15_000, (s) => `the product page still answered ${s} after the Istio Gateway was deleted`);
    await driver.apply([example('gateway-api/bookinfo-gateway.yaml'), example('platform/local/bookinfo-versions.yaml')]);
    await eventually(page, (s) => s === 200, 15_000, (s) => `the product page answered ${s} through the Gateway API Gateway`);
    // Only the HTTPRoute's paths: anything else is 404 from the gateway.
    expect((await fetch(driver.productpageUrl.replace('/productpage', '/productpages'))).status).toBe(404);
    const all = await statuses();
    const gw = all.find((s) => s.kind === 'Gateway' && s.name === 'bookinfo-gateway');
    expect(gw?.status.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual(['Accepted=True', 'Programmed=True']);
    expect(gw?.status.listeners?.[0]).toMatchObject({ name: 'http', attachedRoutes: 1 });
    const route = all.find((s) => s.kind === 'HTTPRoute' && s.name === 'bookinfo');
    expect(route?.status.parents?.[0]?.conditions.map((c) => `${c.type}=${c.status}`)).toEqual(['Accepted=True', 'ResolvedRefs=True']);
  });

  it('GAMMA route-reviews-v3: every page shows red stars (reviews-v3)', async () => {
    await driver.apply([example('gateway-api/route-reviews-v3.yaml')]);
    const { counts, pages } = await new PageUser(driver.productpageUrl).loadMany(20);
    expect(counts.v3, JSON.stringify(counts)).toBe(20);
    expect(pages.every((p) => p.servedBy === 'reviews-v3')).toBe(true);
  });

  it('GAMMA route-reviews-jason-v2: jason gets reviews-v2, everyone else reviews-v1', async () => {
    await driver.apply([example('gateway-api/route-reviews-jason-v2.yaml')]);
    const jason = new PageUser(driver.productpageUrl);
    await jason.login('jason');
    expect((await jason.loadMany(10)).counts.v2).toBe(10);
    expect((await new PageUser(driver.productpageUrl).loadMany(10)).counts.v1).toBe(10);
  });

  const n = 200;
  it(`GAMMA route-reviews-90-10: the share of v2 over ${n} page loads is within the binomial interval (false failure < 1e-4)`, async () => {
    await driver.apply([example('gateway-api/route-reviews-90-10.yaml')]);
    const { lo, hi } = binomialInterval(n, 0.1, 1e-4);
    const { counts } = await new PageUser(driver.productpageUrl).loadMany(n);
    console.log(`local: gateway-api route-reviews-90-10: v1 ${counts.v1}, v2 ${counts.v2} of ${n} (accepted v2 in [${lo}, ${hi}])`);
    expect(counts.v1 + counts.v2, JSON.stringify(counts)).toBe(n);
    expect(counts.v2).toBeGreaterThanOrEqual(lo);
    expect(counts.v2).toBeLessThanOrEqual(hi);
    const route = (await statuses()).find((s) => s.kind === 'HTTPRoute' && s.name === 'reviews');
    expect(route?.status.parents?.[0]?.conditions.map((c) => `${c.type}=${c.status}`)).toEqual(['Accepted=True', 'ResolvedRefs=True']);
  });

  it('an HTTPRoute to a Service that does not exist answers 500 and says BackendNotFound', async () => {
    const file = join(driver.stateDir, 'missing-backend.yaml');
    await writeFile(
      file,
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: missing, namespace: default}
spec:
  parentRefs: [{name: bookinfo-gateway}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /missing}}]
    backendRefs: [{name: nowhere, port: 9080}]
`,
    );
    await driver.apply([file]);
    expect((await fetch(driver.productpageUrl.replace('/productpage', '/missing/x'))).status).toBe(500);
    const route = (await statuses()).find((s) => s.kind === 'HTTPRoute' && s.name === 'missing');
    expect(route?.status.parents?.[0]?.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual(['Accepted=True/Accepted', 'ResolvedRefs=False/BackendNotFound']);
  });
});
