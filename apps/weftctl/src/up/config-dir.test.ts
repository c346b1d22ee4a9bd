import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareConfigDir, readAndValidate, removeObjects, upOrigin, writeObjects } from './config-dir.ts';
import { checkLoopbackNet, moveAddress, withAddressesMoved, workloadsOf } from './topology.ts';

const dir = mkdtempSync(join(tmpdir(), 'weftctl-config-dir-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const vs = (subset: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: ${subset}
`;

async function objectsOf(file: string, text: string) {
  const path = join(dir, file);
  writeFileSync(path, text);
  const r = await readAndValidate([path], 'default');
  expect(r.valid).toBe(true);
  return r.resources.map((x) => ({ config: x.config!, origin: file }));
}

describe('the watched config directory', () => {
  it('keeps one file per object: created, then unchanged, then configured; delete removes exactly it', async () => {
    const config = join(dir, 'config');
    mkdirSync(config);
    expect((await writeObjects(config, await objectsOf('v1.yaml', vs('v1')))).map((r) => [r.name, r.action])).toEqual([['virtualservice.networking.istio.io/reviews', 'created']]);
    expect((await writeObjects(config, await objectsOf('v1-again.yaml', vs('v1'))))[0]!.action).toBe('unchanged');
    expect((await writeObjects(config, await objectsOf('v2.yaml', vs('v2'))))[0]!.action).toBe('configured');
    expect(readdirSync(config)).toEqual(['virtualservice.networking.istio.io_default_reviews.yaml']);
    const written = readFileSync(join(config, 'virtualservice.networking.istio.io_default_reviews.yaml'), 'utf8');
    expect(written).toContain('namespace: default');
    expect(written).toContain('subset: v2');
    // What was written reads back as the same object.
    const back = await readAndValidate([join(config, 'virtualservice.networking.istio.io_default_reviews.yaml')], 'default');
    expect(back.resources[0]!.config!.spec).toEqual((await objectsOf('v2b.yaml', vs('v2')))[0]!.config.spec);
    const other = (await objectsOf('other.yaml', vs('v1').replace('name: reviews', 'name: other')))[0]!.config;
    expect(await removeObjects(config, [(await objectsOf('v3.yaml', vs('v3')))[0]!.config, other])).toEqual([
      { name: 'virtualservice.networking.istio.io/reviews', namespace: 'default', deleted: true },
      { name: 'virtualservice.networking.istio.io/other', namespace: 'default', deleted: false },
    ]);
    expect(readdirSync(config)).toEqual([]);
  });
});

describe('the config directory across weftctl up runs', () => {
  it("keeps what apply wrote, rewrites up's own objects, drops up's objects it no longer writes; --fresh starts empty", async () => {
    const config = join(dir, 'runs');
    const up1 = [
      ...(await objectsOf('topology.yaml', vs('v1').replace('name: reviews', 'name: topo'))).map((o) => ({ ...o, origin: upOrigin('topology.yaml:1') })),
      ...(await objectsOf('gone.yaml', vs('v1').replace('name: reviews', 'name: gone'))).map((o) => ({ ...o, origin: upOrigin('an old topology') })),
    ];
    expect(await prepareConfigDir(config, up1, false)).toEqual({ kept: [], removed: 0 });
    await writeObjects(config, up1);
    // Applied by the user in that run (apply's origin: the file:line it came from), and a write cut short.
    await writeObjects(config, await objectsOf('mine.yaml', vs('v2')));
    writeFileSync(join(config, 'virtualservice.networking.istio.io_default_reviews.yaml.123.tmp'), 'half');
    // The next run writes only `topo`.
    const up2 = up1.slice(0, 1);
    expect(await prepareConfigDir(config, up2, false)).toEqual({ kept: ['virtualservice.networking.istio.io/reviews'], removed: 0 });
    expect(readdirSync(config).sort()).toEqual(['virtualservice.networking.istio.io_default_reviews.yaml', 'virtualservice.networking.istio.io_default_topo.yaml']);
    await writeObjects(config, up2);
    expect(readFileSync(join(config, 'virtualservice.networking.istio.io_default_reviews.yaml'), 'utf8')).toContain('subset: v2');
    // --fresh: nothing kept, and the user's object counted as removed.
    expect(await prepareConfigDir(config, up2, true)).toEqual({ kept: [], removed: 1 });
    expect(readdirSync(config)).toEqual([]);
  });
});

describe('creation times in the config directory', () => {
  const jan = Date.UTC(2024, 0, 1);
  const feb = Date.UTC(2024, 1, 1);
  const createdIn = async (file: string) => (await readAndValidate([file], 'default')).resources[0]!.config!.metadata.creationTimestamp;

  it('sets creationTimestamp on create, keeps it on update, and ignores one given in the input (as the API server)', async () => {
    const config = join(dir, 'stamps');
    mkdirSync(config);
    const file = join(config, 'virtualservice.networking.istio.io_default_reviews.yaml');
    await writeObjects(config, await objectsOf('s1.yaml', vs('v1')), jan);
    expect(await createdIn(file)).toBe('2024-01-01T00:00:00.000Z');
    expect((await writeObjects(config, await objectsOf('s1-again.yaml', vs('v1')), feb))[0]!.action).toBe('unchanged');
    expect((await writeObjects(config, await objectsOf('s2.yaml', vs('v2')), feb))[0]!.action).toBe('configured');
    expect(await createdIn(file)).toBe('2024-01-01T00:00:00.000Z');
    const claimed = vs('v3').replace('name: reviews', 'name: reviews\n  creationTimestamp: "2000-01-01T00:00:00Z"');
    expect((await writeObjects(config, await objectsOf('s3.yaml', claimed), feb))[0]!.action).toBe('configured');
    expect(await createdIn(file)).toBe('2024-01-01T00:00:00.000Z');
    const fresh = join(config, 'virtualservice.networking.istio.io_default_ghost.yaml');
    await writeObjects(config, await objectsOf('ghost.yaml', claimed.replace('name: reviews', 'name: ghost')), feb);
    expect(await createdIn(fresh)).toBe('2024-02-01T00:00:00.000Z');
  });

  it("records weftd's time for a file written before files carried one, without calling it a change", async () => {
    const config = join(dir, 'legacy');
    mkdirSync(config);
    const file = join(config, 'virtualservice.networking.istio.io_default_reviews.yaml');
    await writeObjects(config, await objectsOf('l1.yaml', vs('v1')), jan);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^ {2}creationTimestamp: .*\n/m, ''));
    const objects = (await objectsOf('l1.yaml', vs('v1'))).map((o) => ({ ...o, knownCreationTimestamp: '2023-05-05T00:00:00.000Z' }));
    expect((await writeObjects(config, objects, feb))[0]!.action).toBe('unchanged');
    expect(await createdIn(file)).toBe('2023-05-05T00:00:00.000Z');
  });

  it("keeps the creation time of weftctl up's own objects across runs", async () => {
    const config = join(dir, 'up-runs');
    const file = join(config, 'virtualservice.networking.istio.io_default_reviews.yaml');
    const upObjects = (await objectsOf('up.yaml', vs('v1'))).map((o) => ({ ...o, origin: upOrigin('bookinfo') }));
    await prepareConfigDir(config, upObjects, false);
    await writeObjects(config, upObjects, jan);
    await prepareConfigDir(config, upObjects, false);
    await writeObjects(config, upObjects, feb);
    expect(await createdIn(file)).toBe('2024-01-01T00:00:00.000Z');
    await prepareConfigDir(config, upObjects, true);
    await writeObjects(config, upObjects, feb);
    expect(await createdIn(file)).toBe('2024-02-01T00:00:00.000Z');
  });
});

describe('the local topology', () => {
  it('has a workload per WorkloadEntry, with the ports of the services that select it, moved to another loopback net on request', async () => {
    const r = await readAndValidate([join(import.meta.dirname, '../../../../examples/bookinfo/platform/local/bookinfo.yaml')], 'default');
    const configs = r.resources.map((x) => x.config!);
    const workloads = workloadsOf(withAddressesMoved(configs, '127.0.9'));
    expect(workloads.map((w) => [w.name, w.address, w.app, w.version, w.serviceAccount])).toEqual([
      ['productpage-v1', '127.0.9.10', 'productpage', 'v1', 'bookinfo-productpage'],
      ['details-v1', '127.0.9.11', 'details', 'v1', 'bookinfo-details'],
      ['ratings-v1', '127.0.9.12', 'ratings', 'v1', 'bookinfo-ratings'],
      ['reviews-v1', '127.0.9.13', 'reviews', 'v1', 'bookinfo-reviews'],
      ['reviews-v2', '127.0.9.14', 'reviews', 'v2', 'bookinfo-reviews'],
      ['reviews-v3', '127.0.9.15', 'reviews', 'v3', 'bookinfo-reviews'],
    ]);
    expect(workloads[4]!.ports).toEqual([{ name: 'http', port: 9080, targetPort: 9080, protocol: 'HTTP' }]);
    expect(workloads[4]!.services).toEqual(['reviews.default.svc.cluster.local']);
    // Unmoved by default.
    expect(workloadsOf(withAddressesMoved(configs, undefined))[0]!.address).toBe('127.0.0.10');
    expect(moveAddress('10.0.0.1', '127.0.9')).toBe('10.0.0.1');
    expect(checkLoopbackNet('127.0.5')).toBeUndefined();
    expect(checkLoopbackNet('10.0.0')).toMatch(/not the first three octets of a loopback address/);
    expect(checkLoopbackNet('127.0.300')).toBeDefined();
  });
});
