// The proxy and its control plane: pilot killed mid-traffic (no request may fail; the proxy
// resyncs when pilot returns) and config the proxy refuses (NACKed, visible in weftd's syncz,
// while traffic keeps flowing on the last accepted config).
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, serviceEntry, subsets, virtualService, workloadEntry } from './config.ts';
import { App, type Backend, type ProxyProcess, startBackend, startProxy, startWeftd, syncz, type Weftd, writeConfig } from './mesh.ts';

const ip = { productpage: '127.10.2.1', v1: '127.10.2.11', v2: '127.10.2.12' };

let dir: string;
let configDir: string;
let weftd: Weftd;
let backends: Backend[] = [];
let sidecar: ProxyProcess;
let app: App;

const routeTo = (version: string, match = '') =>
  virtualService('reviews', ['reviews'], `${match}- route:\n  - destination: {host: reviews, subset: ${version}}`);

async function writeRoute(version: string, match = ''): Promise<void> {
  await writeConfig(configDir, 'route.yaml', routeTo(version, match));
}

/** Sends requests until it sees `version` answer (the new config is in force), or fails after `ms`. */
async function until(version: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const r = await app.get('reviews:9080', '/');
    if (r.echo?.version === version) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`traffic did not move to ${version} within ${ms} ms`);
}

beforeAll(async () => {
  dir = await mkdtemp(joinPath(tmpdir(), 'weft-e2e-cp-'));
  configDir = joinPath(dir, 'config');
  await mkdir(configDir);
  backends = await Promise.all([startBackend('reviews', 'v1', ip.v1), startBackend('reviews', 'v2', ip.v2)]);
  await writeConfig(
    configDir,
    'mesh.yaml',
    join(
      serviceEntry('reviews', 'reviews'),
      ...backends.map((b) => workloadEntry({ name: `reviews-${b.version}`, app: 'reviews', version: b.version, address: b.address, port: b.port })),
      subsets('reviews', ['v1', 'v2']),
    ),
  );
  await writeRoute('v1');
  weftd = await startWeftd(configDir);
  sidecar = await startProxy({ xdsPort: weftd.xdsPort, ip: ip.productpage, pod: 'productpage-v1-cp', labels: 'app=productpage,version=v1', extra: ['--warming-timeout-ms', '3000'] });
  app = new App(ip.productpage);
});

afterAll(async () => {
  await app?.close();
  await sidecar?.proc.stop();
  await Promise.all(backends.map((b) => b.proc.stop()));
  await weftd?.proc.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the proxy and pilot', () => {
  it('NACKs a route configuration it cannot apply, with the reason, and keeps serving the last accepted one', async () => {
    expect((await app.get('reviews:9080', '/')).echo?.version).toBe('v1');
    // Valid RE2 that galley accepts with a warning (Istio's validation accepts it), but whose RE2
    // program exceeds the 32768 instructions Istio's bootstrap lets Envoy compile: Envoy refuses it,
    // and so does Weft's proxy.
    const tooLarge = `/api/${'[0-9]{1000}'.repeat(33)}`;
    await writeRoute('v2', `- match:\n  - uri: {regex: "${tooLarge}"}\n  route:\n  - destination: {host: reviews, subset: v2}\n`);
    // weft-proxy takes routes as virtual hosts (delta xDS, DESIGN.md): the rejected one is a VirtualHost response.
    const routeTypes: string[] = [TypeUrl.RouteConfiguration, TypeUrl.VirtualHost];
    let entry: Awaited<ReturnType<typeof syncz>>[number] | undefined;
    const nacked = () => routeTypes.map((t) => entry?.types[t]).find((t) => t?.status === 'NACKED');
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      entry = (await syncz(weftd.monitoringPort)).find((e) => e.id.includes('productpage-v1-cp'));
      if (nacked()) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const rds = nacked();
    expect(rds?.status).toBe('NACKED');
    expect(rds?.nackReason).toMatch(/route configuration 9080: .*regex "\/api\/(\[0-9\]\{1000\})+": RE2 program size \d+ > max program size of 32768 \(re2\.max_program_size\.error_level\)/);
    expect(rds?.acked).not.toBe(rds?.nacked);
    // The old routes still serve: everything goes to v1.
    for (let i = 0; i < 20; i++) expect((await app.get('reviews:9080', '/api/v1')).echo?.version).toBe('v1');
    const admin = JSON.parse((await sidecar.admin('/server_info')).text) as { xds: { types: { type: string; lastNack?: { reason: string } }[] } };
    expect(admin.xds.types.find((t) => routeTypes.includes(t.type) && t.lastNack)?.lastNack?.reason).toMatch(/RE2 program size/);

    // A fixed config is accepted again.
    await writeRoute('v2');
    await until('v2');
    await writeRoute('v1');
    await until('v1');
  });

  it('drops no request while pilot is killed and restarted, and resyncs when pilot returns', async () => {
    let stop = false;
    const results: { status: number; version: string | undefined }[] = [];
    const errors: string[] = [];
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (!stop) {
          try {
            const r = await app.get('reviews:9080', '/');
            results.push({ status: r.status, version: r.echo?.version });
          } catch (err) {
            errors.push((err as Error).message);
          }
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 500));
    const port = weftd.xdsPort;
    await weftd.proc.stop('SIGKILL');
    // Pilot is gone: the sidecar notices, and keeps serving.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const info = JSON.parse((await sidecar.admin('/server_info')).text) as { xds: { connected: boolean } };
      if (!info.xds.connected) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const servedWhileDown = results.length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(results.length).toBeGreaterThan(servedWhileDown);
    // Config changed while pilot was down reaches the proxy once pilot is back.
    await writeRoute('v2');
    weftd = await startWeftd(configDir, port);
    await until('v2', 20_000);
    const entry = (await syncz(weftd.monitoringPort)).find((e) => e.id.includes('productpage-v1-cp'));
    expect(entry?.types[TypeUrl.Listener]?.status).toBe('ACKED');
    expect(entry?.types[TypeUrl.RouteConfiguration]?.status).toBe('ACKED');
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await load;
    expect(errors).toEqual([]);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(results.length).toBeGreaterThan(100);
    expect(new Set(results.map((r) => r.version))).toEqual(new Set(['v1', 'v2']));
    const info = JSON.parse((await sidecar.admin('/server_info')).text) as { xds: { connected: boolean; connects: number } };
    expect(info.xds.connected).toBe(true);
    expect(info.xds.connects).toBeGreaterThanOrEqual(2);
  });
});
