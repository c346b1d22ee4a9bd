// `weftctl why` against a running local mesh (real weftd, real sidecars, BookInfo): the proxy of
// productpage-v1 names the route, cluster and endpoint its own routing code picks, and asking it
// (any number of times) does not move its round robin: the next real request goes where it said.
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWeftctlCommand } from '../testing.ts';
import { type LocalMesh, type LocalMeshOptions, repoRoot, startLocalMesh } from '../up/mesh.ts';
import type { ProxyState } from '../up/state.ts';
import { adminUrl, getText } from './client.ts';
import { whyQuery, whyText, type WhyAnswer } from './why.ts';

const networking = join(repoRoot, 'examples/bookinfo/networking');
const net = '127.0.66';
const reviews = (subset: string) => `outbound|9080|${subset}|reviews.default.svc.cluster.local`;

const weftctl = (stateDir: string, ...args: string[]) => runWeftctlCommand(args, stateDir);

describe('weftctl why: the query and the text', () => {
  it('turns a URL and -H headers into /debug/why parameters, refusing what it cannot follow', () => {
    const q = whyQuery('http://reviews:9080/reviews/0?x=1', ['end-user: jason', 'x-b:  2 ']);
    expect(Object.fromEntries(q)).toEqual({ authority: 'reviews:9080', path: '/reviews/0?x=1', method: 'GET', port: '9080', header: 'x-b:2' });
    expect(q.getAll('header')).toEqual(['end-user:jason', 'x-b:2']);
    expect(whyQuery('details/details/0', []).get('port')).toBe('80');
    expect(() => whyQuery('https://reviews:9080/', [])).toThrow(/plain HTTP/);
    expect(() => whyQuery('http://reviews:9080/', ['no-colon'])).toThrow(/'name: value'/);
    expect(() => whyQuery('http://[bad', [])).toThrow(/not a URL/);
  });

  it('prints what was decided, then the reasons in order', () => {
    const a: WhyAnswer = {
      request: { method: 'GET', authority: 'reviews:9080', path: '/reviews/0', port: 9080, headers: { 'end-user': 'jason' }, draw: 0.5 },
      listener: '0.0.0.0_9080',
      filterChain: '0.0.0.0_9080#0',
      routeConfig: '9080',
      virtualHost: 'reviews.default.svc.cluster.local:9080',
      route: { name: '', match: { prefix: '/' }, config: '/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews' },
      cluster: reviews('v2'),
      endpoint: { address: '127.0.0.14', port: 9080, health: 'healthy', weight: 1 },
      why: ['first', 'second'],
    };
    const text = whyText(a, 'productpage-v1');
    expect(text).toContain('productpage-v1 -> GET http://reviews:9080/reviews/0  [end-user: jason]');
    expect(text).toMatch(/^ {2}cluster {8}outbound\|9080\|v2\|reviews\.default\.svc\.cluster\.local$/m);
    expect(text).toMatch(/^ {2}endpoint {7}127\.0\.0\.14:9080 \(healthy\)$/m);
    expect(text).toMatch(/Why:\n {2}1\. first\n {2}2\. second\n$/);
  });
});

describe('weftctl why in a running mesh', () => {
  let dir: string;
  let stateDir: string;
  let mesh: LocalMesh | undefined;
  let productpage: ProxyState;
  const addressOf = (workload: string) => mesh!.state.proxies.find((p) => p.name === workload)!.address;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weftctl-why-'));
    stateDir = join(dir, 'state');
    // Not a literal: `addons` is newer than some trees this test runs in.
    const options: LocalMeshOptions & { addons?: boolean } = { stateDir, loopbackNet: net, ingressPort: 0, timeoutMs: 150_000, addons: false };
    mesh = await startLocalMesh(options);
    productpage = mesh.state.proxies.find((p) => p.name === 'productpage-v1')!;
  }, 180_000);

  afterAll(async () => {
    await mesh?.stop(3000);
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 30_000);

  async function why(url: string, ...headers: string[]): Promise<WhyAnswer> {
    const r = await weftctl(stateDir, 'why', 'productpage-v1', url, ...headers.flatMap((h) => ['-H', h]), '-o', 'json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.out) as WhyAnswer;
  }

  it('virtual-service-reviews-test-v2: jason goes to the v2 subset’s cluster and reviews-v2’s address, others to v1', async () => {
    const applied = await weftctl(stateDir, 'apply', '-f', join(networking, 'destination-rule-all.yaml'), '-f', join(networking, 'virtual-service-reviews-test-v2.yaml'));
    expect(applied.code, applied.err).toBe(0);
    const jason = await why('http://reviews:9080/reviews/0', 'end-user: jason');
    expect(jason.cluster).toBe(reviews('v2'));
    expect(jason.endpoint).toMatchObject({ address: addressOf('reviews-v2'), port: 9080, health: 'healthy' });
    expect(jason.route?.match).toMatchObject({ headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] });
    expect(jason.route?.config).toBe('/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews');
    const anonymous = await why('http://reviews:9080/reviews/0');
    expect(anonymous.cluster).toBe(reviews('v1'));
    expect(anonymous.endpoint?.address).toBe(addressOf('reviews-v1'));
    // The text form, as a user reads it.
    const text = await weftctl(stateDir, 'why', 'productpage-v1', 'http://reviews:9080/reviews/0', '-H', 'end-user: jason');
    expect(text.code).toBe(0);
    expect(text.out).toContain(`cluster        ${reviews('v2')}`);
    expect(text.out).toContain(`endpoint       ${addressOf('reviews-v2')}:9080 (healthy)`);
    console.log(`weftctl why productpage-v1 http://reviews:9080/reviews/0 -H 'end-user: jason':\n${text.out}`);
  }, 60_000);

  it('virtual-service-reviews-90-10: the weights are reported', async () => {
    const applied = await weftctl(stateDir, 'apply', '-f', join(networking, 'virtual-service-reviews-90-10.yaml'));
    expect(applied.code, applied.err).toBe(0);
    const a = await why('http://reviews:9080/reviews/0');
    expect(a.weights).toEqual([
      { cluster: reviews('v1'), weight: 90 },
      { cluster: reviews('v2'), weight: 10 },
    ]);
    expect(a.cluster).toBe(reviews('v1'));
  }, 60_000);

  it('from the ingress gateway: the page URL goes to productpage, other paths get 404 from the gateway', async () => {
    const gateway = mesh!.state.ingress!;
    const ask = async (url: string) => {
      const r = await weftctl(stateDir, 'why', gateway.name, url, '-o', 'json');
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out) as WhyAnswer;
    };
    const page = await ask(mesh!.url);
    expect(page.cluster).toBe('outbound|9080||productpage.default.svc.cluster.local');
    expect(page.endpoint?.address).toBe(addressOf('productpage-v1'));
    expect(page.why[0]).toMatch(/^Gateway: listener \S+ is bound at port \d+\.$/);
    const hidden = await ask(mesh!.url.replace('/productpage', '/admin'));
    expect(hidden.direct).toEqual({ status: 404, kind: 'no_route' });
  }, 30_000);

  it('bad input: the proxy’s reason, exit 1; a usage error, exit 2', async () => {
    const tooMany = await weftctl(stateDir, 'why', 'productpage-v1', 'http://reviews:9080/', ...Array.from({ length: 65 }, (_, i) => ['-H', `h${i}: v`]).flat());
    expect(tooMany.code).toBe(1);
    expect(tooMany.err).toMatch(/answered 400: at most 64 headers/);
    const usage = await weftctl(stateDir, 'why', 'productpage-v1');
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/why needs a workload and a URL/);
    const nobody = await weftctl(stateDir, 'why', 'nope', 'http://reviews:9080/');
    expect(nobody.code).toBe(1);
    expect(nobody.err).toMatch(/no proxy "nope"/);
  }, 30_000);

  it('asking does not move the load balancer: under round robin the next real request goes to the endpoint named, however often it was asked', async () => {
    // reviews without a VirtualService, its DestinationRule on ROUND_ROBIN: one cluster over v1, v2, v3.
    const dr = join(dir, 'reviews-round-robin.yaml');
    await writeFile(
      dr,
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
  subsets:
  - name: v1
    labels:
      version: v1
`,
    );
    expect((await weftctl(stateDir, 'delete', '-f', join(networking, 'virtual-service-reviews-90-10.yaml'))).code).toBe(0);
    const applied = await weftctl(stateDir, 'apply', '-f', dr);
    expect(applied.code, applied.err).toBe(0);
    const cluster = reviews('');
    const served = async (): Promise<Map<string, number>> => {
      const out = new Map<string, number>();
      for (const line of (await getText(adminUrl(productpage, '/clusters'))).split('\n')) {
        const parts = line.split('::');
        if (parts[0] === cluster && parts[2] === 'rq_total') out.set(parts[1]!, Number(parts[3]));
      }
      return out;
    };
    // One real request from productpage's application side: its outbound proxy, as the app calls it.
    const send = () =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: productpage.address, port: 15001, path: 'http://reviews:9080/reviews/0', headers: { host: 'reviews:9080' }, timeout: 15_000 }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    const seen: string[] = [];
    // Ask 20, 7 and 1 times before each request: none a multiple of the 3 endpoints, so asks that
    // advanced the rotation would send the request elsewhere than the answer said.
    for (const asks of [20, 7, 1, 20, 7, 1]) {
      const answers = new Set<string>();
      for (let i = 0; i < asks; i++) {
        const a = await why('http://reviews:9080/reviews/0');
        expect(a.cluster).toBe(cluster);
        expect(a.why.at(-1)).toContain('ROUND_ROBIN over 3 usable of 3 endpoints');
        answers.add(`${a.endpoint!.address}:${a.endpoint!.port}`);
      }
      expect([...answers], 'every ask names the same endpoint').toHaveLength(1);
      const predicted = [...answers][0]!;
      const before = await served();
      expect(await send()).toBe(200);
      const after = await served();
      const went = [...after].filter(([host, n]) => n > (before.get(host) ?? 0)).map(([host]) => host);
      expect(went, `after ${asks} asks`).toEqual([predicted]);
      seen.push(predicted);
    }
    // Round robin really rotated over the three versions between real requests.
    expect(new Set(seen)).toEqual(new Set(['reviews-v1', 'reviews-v2', 'reviews-v3'].map((w) => `${addressOf(w)}:9080`)));
    console.log(`round robin, endpoints named by /debug/why then taken by the next request: ${seen.join(', ')}`);
  }, 180_000);
});
