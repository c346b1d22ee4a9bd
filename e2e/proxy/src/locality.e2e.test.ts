// Locality failover through real processes: weftd, a client sidecar in us-east/zone-a, and echo
// backends in zone-a, zone-b (same region) and us-west, each its own loopback address. With a
// DestinationRule that sets outlier detection (Istio turns locality failover on only then), the
// sidecar sends everything to its own zone; when zone-a's backends fail and outlier detection ejects
// them, traffic moves to zone-b (the next priority), then to us-west once zone-b fails too, and back
// to zone-a when it recovers and its ejection ends. Each phase prints the share per locality per
// half-second window, as a user watching the mesh would see it.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, serviceEntry } from './config.ts';
import { App, type Backend, type ProxyProcess, startBackend, startProxy, startWeftd, type Weftd, writeConfig } from './mesh.ts';

const clientIp = '127.10.21.1';
const zones = {
  'zone-a': ['127.10.21.11', '127.10.21.12'],
  'zone-b': ['127.10.21.21', '127.10.21.22'],
  'us-west': ['127.10.21.31'],
} as const;
type Zone = keyof typeof zones;
const localityOf: Record<Zone, string> = { 'zone-a': 'us-east/zone-a', 'zone-b': 'us-east/zone-b', 'us-west': 'us-west/zone-c' };

let dir: string;
let weftd: Weftd;
let client: ProxyProcess;
let app: App;
const backends = new Map<Zone, Backend[]>();

function workloadEntry(name: string, b: Backend, locality: string): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: default}
spec:
  address: ${b.address}
  locality: ${locality}
  labels: {app: geo, version: ${b.version}}
  ports: {http: ${b.port}}
`;
}

// Outlier detection: two consecutive 5xx eject a host for 2 s (longer after each ejection), swept
// every 250 ms; up to every host may be ejected (Envoy's default 10% would eject none of five).
const destinationRule = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: geo, namespace: default}
spec:
  host: geo.default.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting: {enabled: true}
    outlierDetection:
      consecutive5xxErrors: 2
      interval: 250ms
      baseEjectionTime: 2s
      maxEjectionPercent: 100
`;

beforeAll(async () => {
  dir = await mkdtemp(joinPath(tmpdir(), 'weft-e2e-locality-'));
  const configDir = joinPath(dir, 'config');
  await mkdir(configDir);
  const docs = [serviceEntry('geo', 'geo'), destinationRule];
  await Promise.all(
    (Object.keys(zones) as Zone[]).map(async (zone) => {
      const started = await Promise.all(zones[zone].map((address) => startBackend('geo', zone, address)));
      backends.set(zone, started);
      for (const [i, b] of started.entries()) docs.push(workloadEntry(`geo-${zone}-${i}`, b, localityOf[zone]));
    }),
  );
  await writeConfig(configDir, 'mesh.yaml', join(...docs));
  weftd = await startWeftd(configDir);
  // The client's own locality comes from the istio-locality label, as Istio's agent reads it.
  client = await startProxy({ xdsPort: weftd.xdsPort, ip: clientIp, pod: 'client-1', labels: 'app=client,istio-locality=us-east.zone-a' });
  app = new App(clientIp);
}, 60_000);

afterAll(async () => {
  await app?.close();
  await client?.proc.stop();
  await Promise.all([...backends.values()].flat().map((b) => b.proc.stop()));
  await weftd?.proc.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Makes every backend of a zone answer `status` (0: normal again). */
async function setZone(zone: Zone, status: number): Promise<void> {
  await Promise.all(
    backends.get(zone)!.map(async (b) => {
      const r = await request(`http://${b.address}:${b.port}/control?status=${status}`, { method: 'POST' });
      await r.body.text();
    }),
  );
}

interface Window {
  t: number;
  shares: Record<Zone | 'errors', number>;
  n: number;
}

/**
 * Sends requests back to back for `ms` (four at a time), grouping replies in half-second windows;
 * `until` ends the phase early once a window satisfies it (after `minWindows`). Prints each window.
 */
async function phase(label: string, ms: number, until?: (w: Window) => boolean, minWindows = 1): Promise<Window[]> {
  const windows: Window[] = [];
  const start = performance.now();
  let current: { counts: Record<string, number>; n: number; at: number } = { counts: {}, n: 0, at: 0 };
  let reported = false;
  const close = (c: typeof current) => {
    if (c.n === 0) return;
    const shares = { 'zone-a': 0, 'zone-b': 0, 'us-west': 0, errors: 0 } as Window['shares'];
    for (const [k, v] of Object.entries(c.counts)) shares[k as Zone | 'errors'] = Math.round((1000 * v) / c.n) / 10;
    const w = { t: Math.round(c.at / 100) / 10, shares, n: c.n };
    windows.push(w);
    const pct = (x: number) => `${x.toFixed(1).padStart(5)}%`;
    console.log(`${label.padEnd(26)} t=${w.t.toFixed(1)}s  zone-a ${pct(shares['zone-a'])}  zone-b ${pct(shares['zone-b'])}  us-west ${pct(shares['us-west'])}  errors ${pct(shares.errors)}  (${w.n} requests)`);
  };
  let done = false;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (!done && performance.now() - start < ms) {
        const r = await app.get('geo:9080', '/');
        if (r.status !== 200 && !reported) {
          reported = true;
          console.log(`${label}: first error ${r.status} ${r.text.slice(0, 120)}`);
        }
        if (done) break;
        const key = r.status === 200 && r.echo ? r.echo.version : 'errors';
        const now = performance.now() - start;
        if (now - current.at >= 500) {
          // One worker closes the window (no await between the test and the swap).
          const old = current;
          current = { counts: {}, n: 0, at: now };
          close(old);
          const last = windows.at(-1);
          if (until && last && windows.length >= minWindows && until(last)) done = true;
        }
        current.counts[key] = (current.counts[key] ?? 0) + 1;
        current.n++;
      }
    }),
  );
  if (!done) close(current);
  return windows;
}

describe('locality failover (outlier detection + localityLbSetting)', () => {
  it('keeps traffic in the client zone, fails over zone by zone as endpoints are ejected, and comes back', async () => {
    // The sidecar has its EDS priorities before the first request (proxy ready = config applied).
    // The sidecar's /clusters shows the priorities pilot gave it: its zone 0, the region's other zone 1, us-west 2.
    const clusters = (await client.admin('/clusters')).text;
    const priorityOf = (ip: string) => Number(new RegExp(`geo\\.default\\.svc\\.cluster\\.local::${ip.replaceAll('.', '\\.')}:\\d+::priority::(\\d+)`).exec(clusters)?.[1]);
    expect([...zones['zone-a'], ...zones['zone-b'], ...zones['us-west']].map(priorityOf)).toEqual([0, 0, 1, 1, 2]);
    const local = await phase('all healthy', 1500);
    for (const w of local) expect(w.shares['zone-a']).toBe(100);

    await setZone('zone-a', 503);
    // Each failing phase lasts at least 3 s: an ejection (2 s) ends inside it, the host is tried
    // again, fails and is ejected for longer (Envoy's backoff); retries (Istio's default policy)
    // hide most of those failures.
    const failover = await phase('zone-a failing', 10_000, (w) => w.shares['zone-b'] === 100, 6);
    const settled = failover.at(-1)!;
    // zone-b is the same region's next priority; us-west (another region) takes nothing while zone-b is healthy.
    expect(settled.shares['zone-b']).toBe(100);
    expect(failover.every((w) => w.shares['us-west'] === 0)).toBe(true);

    await setZone('zone-b', 503);
    const region = await phase('zone-a and zone-b failing', 10_000, (w) => w.shares['us-west'] === 100, 6);
    expect(region.every((w) => w.shares['zone-a'] <= 5)).toBe(true);
    expect(region.at(-1)!.shares['us-west']).toBe(100);

    await setZone('zone-a', 0);
    await setZone('zone-b', 0);
    // Ejections end after baseEjectionTime x their count; the hosts come back on the next sweep
    // and zone-a takes everything again.
    const back = await phase('recovered', 30_000, (w) => w.shares['zone-a'] === 100, 2);
    expect(back.at(-1)!.shares['zone-a']).toBe(100);
    // Still ejected when they recovered, the fallback keeps the traffic until the ejection ends.
    console.log(`zone-a back to 100% ${back.at(-1)!.t.toFixed(1)} s after it recovered`);
  }, 90_000);
});
