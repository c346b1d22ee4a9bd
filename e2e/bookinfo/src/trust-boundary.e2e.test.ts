// Local mode's trust boundary against a real mesh (weftctl up's startLocalMesh, run as root here),
// tried as a second, hostile local user: every TCP port the mesh opens (each sidecar's admin,
// health, 15001, 15020, 15090 and inbound listeners; the ingress gateway's listeners, admin and
// telemetry; weftd's ports) refuses that UID at connect while the owner is served. And the admin
// `/stats?filter=` that used to backtrack for seconds (issue 11, finding 3) answers at once while a
// request loop through the same sidecar keeps its latency.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { needs } from '@weft/testing';
import { type LocalMesh, type ProxyState, startLocalMesh } from '@weft/weftctl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
// Root to run a client as a second UID (setpriv; no account needed).
const skipReason = needs({ root: true, tools: ['setpriv', 'curl', 'bash'] });

/** No account needs to exist for a UID: the kernel checks numbers. */
const otherUid = 47_120;
const asOther = ['setpriv', `--reuid=${otherUid}`, `--regid=${otherUid}`, '--clear-groups', '--'];

function canBind(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: address, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A loopback /24 of its own (127.79.N), so that a demo or another suite may run beside. */
async function freeLoopbackNet(): Promise<string> {
  for (let i = 0; i < 30; i++) {
    const net = `127.79.${1 + Math.floor(Math.random() * 254)}`;
    const probes = await Promise.all([9, 10, 11, 12, 13, 14, 15].flatMap((h) => [canBind(`${net}.${h}`, 15000), canBind(`${net}.${h}`, h === 9 ? 8080 : 9080)]));
    if (probes.every(Boolean)) return net;
  }
  throw new Error('no free loopback net 127.79.N found');
}

interface Probe {
  what: string;
  address: string;
  port: number;
}

/**
 * Connects to `address:port` as `uid` (bash's /dev/tcp), sends an HTTP request and reads until the
 * connection ends: `connect failed`, or how many bytes came back.
 */
async function probeAs(prefix: readonly string[], p: Probe): Promise<string> {
  const script = `trap '' PIPE; exec 3<>/dev/tcp/${p.address}/${p.port} || { echo 'connect failed'; exit 0; }; printf 'GET / HTTP/1.1\\r\\nhost: x\\r\\nconnection: close\\r\\n\\r\\n' >&3 2>/dev/null; n=$(timeout 5 cat <&3 2>/dev/null | wc -c); echo "got $n bytes"`;
  const argv = [...prefix, 'bash', '-c', script];
  const r = await run(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return r.stdout.trim();
}

async function curlAs(prefix: readonly string[], ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const argv = [...prefix, 'curl', '-sS', '--max-time', '10', ...args];
  try {
    const r = await run(argv[0]!, argv.slice(1), { encoding: 'utf8' });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

async function listenersOf(p: ProxyState): Promise<{ name: string; address: string; port: number }[]> {
  const r = await fetch(`http://${p.adminAddress}:${p.adminPort}/listeners`);
  return (await r.json()) as { name: string; address: string; port: number }[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

let mesh: LocalMesh | undefined;
let stateDir = '';
const probes: Probe[] = [];

beforeAll(async () => {
  if (skipReason) return;
  stateDir = await mkdtemp(join(tmpdir(), 'weft-e2e-trust-'));
  const net = await freeLoopbackNet();
  mesh = await startLocalMesh({ stateDir, loopbackNet: net, ingressAddress: `${net}.9`, ingressPort: 0, timeoutMs: 150_000, logLevel: 'info' });
  const s = mesh.state;
  for (const p of [...s.proxies, s.ingress!]) {
    probes.push({ what: `${p.name} admin`, address: p.adminAddress, port: p.adminPort });
    if (p.healthPort !== undefined) probes.push({ what: `${p.name} health`, address: p.address, port: p.healthPort });
    probes.push({ what: `${p.name} stats (15090)`, address: p.address, port: 15090 }, { what: `${p.name} merged metrics (15020)`, address: p.address, port: 15020 });
    for (const l of await listenersOf(p)) probes.push({ what: `${p.name} listener ${l.name}`, address: l.address, port: l.port });
  }
  const d = s.weftd!;
  if (d.xdsPort !== undefined) probes.push({ what: 'weftd plaintext xDS', address: '127.0.0.1', port: d.xdsPort });
  probes.push({ what: 'weftd CA and xDS over TLS', address: '127.0.0.1', port: d.caPort }, { what: 'weftd monitoring', address: '127.0.0.1', port: d.monitoringPort });
}, 180_000);

afterAll(async () => {
  await mesh?.stop(5000);
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
}, 60_000);

describe.skipIf(skipReason !== undefined)('local mode trust boundary: a second UID against a running mesh', () => {
  it('finds every kind of port in the running mesh (the probes below are not vacuous)', () => {
    const kinds = (re: RegExp) => probes.filter((p) => re.test(p.what)).length;
    const sidecars = mesh!.state.proxies.length;
    expect(sidecars).toBe(6);
    expect(kinds(/ admin$/)).toBe(sidecars + 1);
    expect(kinds(/listener local-outbound$/)).toBe(sidecars);
    expect(kinds(/listener local-inbound:9080$/)).toBe(sidecars);
    expect(kinds(/^istio-ingressgateway listener /)).toBeGreaterThanOrEqual(1);
    expect(kinds(/ health$/)).toBe(sidecars + 1);
    expect(kinds(/\((15090|15020)\)$/)).toBe(2 * (sidecars + 1));
    expect(kinds(/^weftd /)).toBeGreaterThanOrEqual(2);
  });

  it('serves the owner on every HTTP port, and refuses the other UID on every port before any answer', async () => {
    const refusedAnswers: string[] = [];
    for (const p of probes) {
      const other = await probeAs(asOther, p);
      if (other !== 'got 0 bytes') refusedAnswers.push(`${p.what} ${p.address}:${p.port}: ${other}`);
      // weftd's gRPC ports answer an HTTP/1 request with a GOAWAY or a TLS alert, or nothing: their owner side is the mesh working at all.
      if (!p.what.startsWith('weftd') || p.what === 'weftd monitoring') expect(await probeAs([], p), `owner on ${p.what}`).toMatch(/^got [1-9]\d* bytes$/);
    }
    expect(refusedAnswers, 'ports that answered the other UID').toEqual([]);
    console.log(`trust boundary: ${probes.length} ports of the running mesh refused UID ${otherUid} and served the owner`);
  });

  it('curl -x <reviews-v1>:15001 http://ratings:9080/ratings/0: 200 for the owner, refused for the other UID', async () => {
    const reviews = mesh!.state.proxies.find((p) => p.name === 'reviews-v1')!;
    const args = ['-o', '/dev/null', '-w', '%{http_code}', '-x', `http://${reviews.address}:15001`, 'http://ratings:9080/ratings/0'];
    expect((await curlAs([], ...args)).out).toBe('200');
    const other = await curlAs(asOther, ...args);
    expect(other.code, other.err).not.toBe(0);
    expect(other.out).not.toBe('200');
    expect(other.err).toMatch(/reset|Empty reply|Failed to connect|Recv failure/);
  });

  it('POST /quitquitquit from the other UID does not stop the sidecar; it is logged and counted', async () => {
    const details = mesh!.state.proxies.find((p) => p.name === 'details-v1')!;
    const other = await curlAs(asOther, '-X', 'POST', `http://${details.adminAddress}:${details.adminPort}/quitquitquit`);
    expect(other.code).not.toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(alive(details.pid)).toBe(true);
    expect(await (await fetch(`http://${details.adminAddress}:${details.adminPort}/ready`)).text()).toBe('LIVE\n');
    const stats = await (await fetch(`http://${details.adminAddress}:${details.adminPort}/stats?filter=${encodeURIComponent('^owner_guard\\.')}`)).text();
    expect(stats).toMatch(/^owner_guard\.admin\.downstream_cx_refused: [1-9]/m);
    expect(stats).toMatch(/^owner_guard\.downstream_cx_refused: [1-9]/m);
    const log = readFileSync(details.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('connection refused: the peer is not the mesh owner'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(log.find((l) => l.port === 'admin')).toMatchObject({ level: 'warn', scope: 'guard', peerUid: otherUid, ownerUid: 0 });
    const metrics = await (await fetch(`http://127.0.0.1:${mesh!.state.weftd!.monitoringPort}/metrics`)).text();
    expect(metrics).toMatch(/^weftd_owner_guard_refused_connections_total\{port="monitoring"\} [1-9]/m);
  });

  it("an application's own port stays reachable by the other UID (what local mode cannot protect, as the README says)", async () => {
    const app = mesh!.state.apps.find((a) => a.workload === 'ratings-v1')!;
    const r = await curlAs(asOther, '-o', '/dev/null', '-w', '%{http_code}', `http://${app.address}:${app.port}/ratings/0`);
    expect(r.out).toBe('200');
  });
});

/** Hostile to a backtracking engine: `^(.|.){0,20}!` took 2 s with JavaScript's RegExp (issue 11). */
const hostileFilters = ['^(.|.){0,20}!', '^(.|.|.){0,25}!', '^([a-z0-9|._-]|[a-z0-9|.-]){0,200}!', '((a+)+)+$', '(\\w+\\W?)+$', '((((.*)*)*)*)*!'];

describe.skipIf(skipReason !== undefined)('admin /stats?filter= on a running sidecar', () => {
  it('answers each hostile filter within 50 ms', async () => {
    const p = mesh!.state.proxies.find((x) => x.name === 'reviews-v1')!;
    const url = (f: string) => `http://${p.adminAddress}:${p.adminPort}/stats?filter=${encodeURIComponent(f)}`;
    const names = (await (await fetch(`http://${p.adminAddress}:${p.adminPort}/stats`)).text()).split('\n').filter(Boolean).length;
    // Best of five: the bound is the filter's cost, not the shared machine's scheduling.
    const best = async (f: string) => {
      let ms = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const r = await fetch(url(f));
        await r.text();
        expect(r.status).toBe(200);
        ms = Math.min(ms, performance.now() - t0);
      }
      return ms;
    };
    // A harmless filter, timed the same way: on a machine so loaded that it alone takes tens of ms,
    // the bound grows with it (a backtracking filter took seconds, far beyond either).
    const control = await best('^server\\.');
    const bound = Math.max(50, 2 * control + 20);
    const times: string[] = [`control ${control.toFixed(1)} ms`];
    for (const f of hostileFilters) {
      const ms = await best(f);
      times.push(`${f} ${ms.toFixed(1)} ms`);
      expect(ms, f).toBeLessThan(bound);
    }
    console.log(`/stats?filter= over ${names} stats: ${times.join('; ')}`);
    const bad = await fetch(url('(a)\\1'));
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/invalid escape sequence/);
  });

  it('leaves the p99 of a request loop through the same sidecar unchanged while hostile filters run', async () => {
    const p = mesh!.state.proxies.find((x) => x.name === 'reviews-v1')!;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const once = () =>
      new Promise<number>((resolve, reject) => {
        const t0 = performance.now();
        const req = http.request({ host: p.address, port: 15001, path: 'http://ratings:9080/ratings/0', headers: { host: 'ratings:9080' }, agent }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`status ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end();
      });
    const loop = async (n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push(await once());
      return out;
    };
    await loop(50);
    // Quiet and busy phases alternate, so that load from elsewhere on the machine falls on both.
    const rounds = 3;
    const n = 100;
    const quiet: number[] = [];
    const busy: number[] = [];
    let statsCalls = 0;
    let slowest = 0;
    for (let round = 0; round < rounds; round++) {
      quiet.push(...(await loop(n)));
      let stop = false;
      // A hostile client at 20 filters a second (each used to hold the proxy for ~2 s).
      const hammer = (async () => {
        for (let i = 0; !stop; i++) {
          const t0 = performance.now();
          await (await fetch(`http://${p.adminAddress}:${p.adminPort}/stats?filter=${encodeURIComponent(hostileFilters[i % hostileFilters.length]!)}`)).text();
          slowest = Math.max(slowest, performance.now() - t0);
          statsCalls++;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      busy.push(...(await loop(n)));
      stop = true;
      await hammer;
    }
    agent.destroy();
    const [q, b] = [percentile(quiet, 99), percentile(busy, 99)];
    console.log(
      `data plane through reviews-v1's 15001, ${rounds * n} requests each: p50 ${percentile(quiet, 50).toFixed(2)} -> ${percentile(busy, 50).toFixed(2)} ms, p99 ${q.toFixed(2)} -> ${b.toFixed(2)} ms with ${statsCalls} hostile /stats calls meanwhile (slowest ${slowest.toFixed(1)} ms)`,
    );
    expect(statsCalls).toBeGreaterThan(10);
    // Before the fix one such call held the proxy for ~2 s, so every request behind it waited that
    // long. The margins are for a shared 2-core machine under CI's parallel suites, where a filter's
    // compile and the stats snapshot (a few ms each, unsliced) stretch to tens of ms when the proxy
    // is preempted (a CI run saw p99 23.6 -> 67.4 ms): twice the quiet p99 plus 50 ms, and no request
    // over 500 ms, both far below what one backtracking filter costs.
    expect(b).toBeLessThan(2 * q + 50);
    expect(Math.max(...busy)).toBeLessThan(500);
  });
});
