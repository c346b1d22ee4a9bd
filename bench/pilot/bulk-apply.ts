// One big apply against a running local mesh: `weftctl up`'s mesh (startLocalMesh: weftd, the
// ingress gateway, BookInfo's six workloads each behind a weft-proxy sidecar), then the real
// `weftctl apply -f` (the CLI, as a process) of one file of 5,000 VirtualServices (~3.7 MB), then
// `weftctl delete -f` of the same file. Meanwhile weftd's /healthz is polled every 50 ms and the
// proxies' xDS streams are watched (pilot_xds_connected, /debug/syncz connection ids, each proxy's
// own reconnect count, weftd's "xDS stream closed" log lines).
// Prints per command: wall time and exit status, the longest /healthz gap, weftd's peak RSS, the
// pushes sent (pilot_xds_pushes), xDS streams dropped, and whether every proxy ACKed the result.
// Acceptance (issue 11): longest /healthz gap <= 1 s, 0 dropped streams, every proxy ACKs, exit 0.
//
// What makes this apply expensive, on purpose: every VirtualService has a host of its own (no two
// share a virtual host), so the sidecars' port-80 route configuration (Istio serves hosts outside
// the registry on port 80) grows by one virtual host per mesh-bound VirtualService, and the ingress
// gateway's by one per gateway-bound one; proxies differ in labels, so no proxy shares generated
// routes with another. Each VirtualService has 2-3 HTTP routes with header and URI matches,
// weighted destinations, retries, timeouts and header rewrites, none equal to another's.
//
// Environment: BENCH_BULK_VS (5000: VirtualServices in the file), BENCH_BULK_NODE_OPTIONS (Node
// options for every process of the mesh, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`),
// BENCH_BULK_KEEP=1 (keep the state directory and its logs), BENCH_BULK_DELETE=0 (skip the delete).
import { nodeIdWorkload } from '@weft/mesh';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type LocalMesh, type MeshState, startLocalMesh } from '@weft/weftctl';

const count = Number(process.env.BENCH_BULK_VS ?? 5000);
const keep = process.env.BENCH_BULK_KEEP === '1';
const runDelete = process.env.BENCH_BULK_DELETE !== '0';
const weftctlBin = fileURLToPath(new URL('../../apps/weftctl/bin/weftctl.js', import.meta.url));
const healthEveryMs = 50;

// ------------------------------------------------------------------ the file

const services = ['productpage', 'details', 'reviews', 'ratings'] as const;

/** One VirtualService as people write them (flow style for the small maps): about 800 bytes. */
function virtualService(i: number): string {
  const id = String(i).padStart(5, '0');
  const a = services[i % 4]!;
  const b = services[(i + 1) % 4]!;
  const c = services[(i + 2) % 4]!;
  const weight = 50 + (i % 50);
  // Every fifth only on the ingress gateway (an external host), every tenth on both, the rest on the mesh.
  const onGateway = i % 5 === 0;
  const onBoth = i % 10 === 1;
  const host = onGateway || onBoth ? `shop-${id}.example.com` : `api-${id}.bench.example.com`;
  const gateways = onGateway ? '  gateways:\n  - bookinfo-gateway\n' : onBoth ? '  gateways:\n  - bookinfo-gateway\n  - mesh\n' : '';
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bulk-${id}
spec:
  hosts:
  - ${host}
${gateways}  http:
  - match:
    - headers:
        x-canary: {exact: "${i % 3 === 0 ? 'always' : 'true'}"}
      uri: {prefix: /v${1 + (i % 3)}/items-${id}}
    route:
    - destination: {host: ${a}, port: {number: 9080}}
      weight: ${weight}
    - destination: {host: ${b}, port: {number: 9080}}
      weight: ${100 - weight}
    retries: {attempts: ${1 + (i % 4)}, perTryTimeout: ${1 + (i % 3)}s, retryOn: "5xx,reset"}
    timeout: ${5 + (i % 20)}s
  - match:
    - uri: {regex: "^/search/[a-z]+/${id}$"}
    route:
    - destination: {host: ${c}, port: {number: 9080}}
    timeout: ${2 + (i % 7)}s
  - route:
    - destination: {host: ${onGateway ? 'productpage' : a}, port: {number: 9080}}
    headers:
      request: {set: {x-api: bulk-${id}}, remove: [x-debug]}
    timeout: ${10 + (i % 30)}s
`;
}

// ------------------------------------------------------------------ observation

async function freeLoopbackNet(): Promise<string> {
  const canBind = (address: string, port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen({ host: address, port, exclusive: true }, () => s.close(() => resolve(true)));
    });
  for (let i = 0; i < 30; i++) {
    const net = `127.78.${1 + Math.floor(Math.random() * 254)}`;
    const probes = await Promise.all([9, 10, 11, 12, 13, 14, 15].flatMap((h) => [canBind(`${net}.${h}`, 15000), canBind(`${net}.${h}`, h === 9 ? 8080 : 9080)]));
    if (probes.every(Boolean)) return net;
  }
  throw new Error('no free loopback net 127.78.N found');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function getJson<T>(url: string, timeoutMs = 30_000): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (r.status !== 200) throw new Error(`${url} answered ${r.status}`);
  return (await r.json()) as T;
}

/** A metric's value summed over its label sets. */
async function metric(s: MeshState, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${s.weftd!.monitoringPort}/metrics`, { signal: AbortSignal.timeout(300_000) })).text();
  let sum = 0;
  let found = false;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))) {
    sum += Number(m[1]);
    found = true;
  }
  return found ? sum : Number.NaN;
}

async function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

interface SynczEntry {
  id: string;
  connectionId: string;
  pushVersion: string;
  types: Record<string, { status: string }>;
}

interface ServerInfo {
  xds?: { connects?: number; connected?: boolean };
}

/** Every proxy's node id with its admin URL. */
function proxiesOf(s: MeshState): { nodeId: string; admin: string }[] {
  return [...(s.ingress ? [s.ingress] : []), ...s.proxies].map((p) => ({ nodeId: p.nodeId, admin: `http://${p.adminAddress}:${p.adminPort}` }));
}

/** How many times each proxy's xDS client has opened its stream. */
async function proxyConnects(s: MeshState): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const p of proxiesOf(s)) {
    const info = await getJson<ServerInfo>(`${p.admin}/server_info`).catch(() => undefined);
    out.set(p.nodeId, info?.xds?.connects ?? Number.NaN);
  }
  return out;
}

async function countLogLines(file: string, from: number, text: string): Promise<{ count: number; size: number }> {
  const buf = await readFile(file);
  const tail = buf.subarray(from).toString('utf8');
  let n = 0;
  for (const line of tail.split('\n')) if (line.includes(text)) n++;
  return { count: n, size: buf.length };
}

/** Polls /healthz one request at a time every `healthEveryMs`; the longest time without an answer. */
function watchHealth(s: MeshState): { stop(): Promise<{ longestGapMs: number; at: number; requests: number; failures: number; slowestMs: number }> } {
  const url = `http://127.0.0.1:${s.weftd!.monitoringPort}/healthz`;
  let running = true;
  const t0 = performance.now();
  let lastAnswer = t0;
  let longest = 0;
  let longestAt = 0;
  let requests = 0;
  let failures = 0;
  let slowest = 0;
  const loop = (async () => {
    while (running) {
      const start = performance.now();
      requests++;
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(120_000) });
        await r.text();
        if (r.status !== 200) failures++;
        else {
          const now = performance.now();
          if (now - lastAnswer > longest) {
            longest = now - lastAnswer;
            longestAt = lastAnswer - t0;
          }
          lastAnswer = now;
        }
      } catch {
        failures++;
      }
      slowest = Math.max(slowest, performance.now() - start);
      const wait = healthEveryMs - (performance.now() - start);
      if (wait > 0) await sleep(wait);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const end = performance.now();
      if (end - lastAnswer > longest) {
        longest = end - lastAnswer;
        longestAt = lastAnswer - t0;
      }
      return { longestGapMs: longest, at: longestAt, requests, failures, slowestMs: slowest };
    },
  };
}

/** Samples weftd's RSS and pilot_xds_connected until stopped. */
function watchWeftd(s: MeshState, expected: number): { stop(): Promise<{ peakRss: number; minConnected: number }> } {
  let running = true;
  let peakRss = 0;
  let minConnected = expected;
  const rssLoop = (async () => {
    while (running) {
      const rss = await procStatus(s.weftd!.pid, 'VmRSS');
      if (rss > peakRss) peakRss = rss;
      await sleep(100);
    }
  })();
  const connectedLoop = (async () => {
    while (running) {
      const n = await metric(s, 'pilot_xds_connected').catch(() => Number.NaN);
      if (Number.isFinite(n)) minConnected = Math.min(minConnected, n);
      await sleep(250);
    }
  })();
  return {
    async stop() {
      running = false;
      await Promise.all([rssLoop, connectedLoop]);
      return { peakRss, minConnected };
    },
  };
}

/** Waits until every proxy has ACKed everything of weftd's latest push; ms it took from `since`, or undefined. */
async function allAcked(s: MeshState, expected: readonly string[], since: number, ms: number): Promise<{ ms?: number; behind: string[] }> {
  const deadline = performance.now() + ms;
  let behind: string[] = [...expected];
  const base = `http://127.0.0.1:${s.weftd!.monitoringPort}`;
  while (performance.now() < deadline) {
    try {
      const { version } = await getJson<{ version: string }>(`${base}/debug/push_status`);
      const syncz = await getJson<SynczEntry[]>(`${base}/debug/syncz`);
      behind = expected.filter((id) => {
        const e = syncz.find((x) => x.id === id);
        return !e || e.pushVersion !== version || Object.values(e.types).some((t) => t.status !== 'ACKED');
      });
      // The push in force must also be the last one: nothing queued behind it.
      const { version: again } = await getJson<{ version: string }>(`${base}/debug/push_status`);
      if (behind.length === 0 && again === version) return { ms: performance.now() - since, behind };
    } catch {}
    await sleep(200);
  }
  return { behind };
}

interface Outcome {
  ok: boolean;
}

/** Runs `weftctl <verb> -f file...` as a process and watches the mesh meanwhile. */
async function measure(mesh: LocalMesh, verb: 'apply' | 'delete', files: readonly string[]): Promise<Outcome> {
  const s = mesh.state;
  const expected = proxiesOf(s).map((p) => p.nodeId);
  const base = `http://127.0.0.1:${s.weftd!.monitoringPort}`;
  const synczBefore = await getJson<SynczEntry[]>(`${base}/debug/syncz`);
  const connectsBefore = await proxyConnects(s);
  const pushesBefore = await metric(s, 'pilot_xds_pushes');
  const versionBefore = await metric(s, 'pilot_push_context_version');
  const rssBefore = await procStatus(s.weftd!.pid, 'VmRSS');
  const logBefore = (await stat(s.weftd!.logFile)).size;

  const health = watchHealth(s);
  const weftd = watchWeftd(s, expected.length);
  const t0 = performance.now();
  const child = spawn(process.execPath, [weftctlBin, verb, ...files.flatMap((f) => ['-f', f]), '--state-dir', s.stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let lines = 0;
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => {
    for (const c of b) if (c === 10) lines++;
  });
  child.stderr.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1))));
  const wallMs = performance.now() - t0;
  // The apply may return before (or without) every proxy's ACK: watch on until they all have.
  const acked = await allAcked(s, expected, t0, 120_000);
  const h = await health.stop();
  const w = await weftd.stop();

  // weftd may still be busy: wait for it rather than fail the measurement.
  const later = <T>(p: Promise<T>, fallback: T) => p.catch(() => fallback);
  const synczAfter = await later(getJson<SynczEntry[]>(`${base}/debug/syncz`, 300_000), []);
  const connectsAfter = await proxyConnects(s);
  const pushes = (await later(metric(s, 'pilot_xds_pushes'), Number.NaN)) - pushesBefore;
  const contexts = (await later(metric(s, 'pilot_push_context_version'), Number.NaN)) - versionBefore;
  const push = await later(getJson<{ buildMs: number; durationMs: number; responses: number }>(`${base}/debug/push_status`, 300_000), { buildMs: Number.NaN, durationMs: Number.NaN, responses: Number.NaN });
  const closed = await countLogLines(s.weftd!.logFile, logBefore, '"xDS stream closed"');
  const hwm = await procStatus(s.weftd!.pid, 'VmHWM');
  const heap = await later(metric(s, 'nodejs_heap_size_used_bytes'), Number.NaN);
  const external = await later(metric(s, 'nodejs_external_memory_bytes'), Number.NaN);
  const changedIds = expected.filter((id) => {
    const a = synczBefore.find((e) => e.id === id)?.connectionId;
    const b = synczAfter.find((e) => e.id === id)?.connectionId;
    return a === undefined || a !== b;
  }).length;
  let reconnects = 0;
  for (const [id, n] of connectsAfter) reconnects += Math.max(0, n - (connectsBefore.get(id) ?? n));
  const dropped = Math.max(changedIds, reconnects, closed.count);

  const stderrLines = stderr.trim().split('\n').filter(Boolean);
  console.log(`  weftctl ${verb}: exit ${code} after ${sec(wallMs)} (${lines} lines of output)${code === 0 ? '' : `; stderr: ${stderrLines.slice(-3).join(' | ')}`}`);
  console.log(
    `    weftd /healthz: longest gap ${ms(h.longestGapMs)} (from ${sec(h.at)}), slowest answer ${ms(h.slowestMs)}, ${h.requests} polls, ${h.failures} failed`,
  );
  console.log(`    weftd RSS: ${mb(rssBefore)} before, peak ${mb(w.peakRss)} sampled (VmHWM ${mb(hwm)} over its life); after: JS heap used ${mb(heap)}, external ${mb(external)}`);
  console.log(
    `    pushes: ${pushes} responses sent (pilot_xds_pushes) from ${contexts} push contexts; the last: build ${ms(push.buildMs)}, generate+send ${ms(push.durationMs - push.buildMs)}, ${push.responses} responses`,
  );
  console.log(
    `    xDS streams dropped: ${dropped} (connection ids changed ${changedIds}, proxy reconnects ${reconnects}, weftd "stream closed" ${closed.count}; pilot_xds_connected min ${w.minConnected} of ${expected.length})`,
  );
  console.log(
    `    every proxy ACKed the last push: ${acked.ms !== undefined ? `yes, all ${expected.length}, ${sec(acked.ms)} after the command started` : `NO: ${acked.behind.map(nodeIdWorkload).join(', ')} still behind 120 s after the command started`}`,
  );
  const ok = code === 0 && h.longestGapMs <= 1000 && dropped === 0 && acked.ms !== undefined;
  console.log(
    `    acceptance: gap <= 1 s ${h.longestGapMs <= 1000 ? 'met' : 'NOT met'}; 0 dropped ${dropped === 0 ? 'met' : 'NOT met'}; all ACKed ${acked.ms !== undefined ? 'met' : 'NOT met'}; exit 0 ${code === 0 ? 'met' : 'NOT met'}`,
  );
  return { ok };
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MB`;
const ms = (v: number) => `${v.toFixed(0)} ms`;
const sec = (v: number) => `${(v / 1000).toFixed(1)} s`;

// ------------------------------------------------------------------ run

const stateDir = await mkdtemp(join(tmpdir(), 'weft-bench-bulk-'));
let mesh: LocalMesh | undefined;
let failed = false;
try {
  // One file up to 5,000 (3.8 MiB); more go in several, each under the loader's 4 MiB per file.
  const files: string[] = [];
  let size = 0;
  for (let start = 0; start < count; start += 5000) {
    const docs: string[] = [];
    for (let i = start; i < Math.min(count, start + 5000); i++) docs.push(virtualService(i));
    const file = join(stateDir, count <= 5000 ? 'bulk.yaml' : `bulk-${files.length}.yaml`);
    await writeFile(file, docs.join('---\n'));
    size += (await stat(file)).size;
    files.push(file);
  }
  const t = performance.now();
  const net = await freeLoopbackNet();
  const previousOptions = process.env.NODE_OPTIONS;
  if (process.env.BENCH_BULK_NODE_OPTIONS) process.env.NODE_OPTIONS = `${previousOptions ?? ''} ${process.env.BENCH_BULK_NODE_OPTIONS}`.trim();
  try {
    mesh = await startLocalMesh({ stateDir: join(stateDir, 'mesh'), loopbackNet: net, ingressAddress: `${net}.9`, ingressPort: 0, timeoutMs: 180_000, addons: false });
  } finally {
    if (previousOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = previousOptions;
  }
  const s = mesh.state;
  console.log(
    `pilot bulk apply: a local mesh (weftd, the ingress gateway, ${s.proxies.length} sidecars; up in ${sec(performance.now() - t)}) and ${files.length === 1 ? 'one file' : `${files.length} files`} of ${count} VirtualServices (${(size / 1048576).toFixed(2)} MiB)`,
  );
  const applied = await measure(mesh, 'apply', files);
  // The data plane uses the new routes: a gateway-bound host of the file through the ingress gateway.
  const ingress = s.ingress!;
  const r = await fetch(`http://${ingress.address}:${ingress.httpPort}/productpage`, { headers: { host: 'shop-00000.example.com' }, signal: AbortSignal.timeout(10_000) }).catch(
    (e: Error) => e,
  );
  console.log(`    a new route through the ingress gateway (Host shop-00000.example.com): ${r instanceof Error ? r.message : r.status}`);
  failed ||= !applied.ok || r instanceof Error || r.status !== 200;
  if (runDelete) {
    const deleted = await measure(mesh, 'delete', files);
    failed ||= !deleted.ok;
  }
} finally {
  await mesh?.stop(10_000);
  if (keep) console.log(`  state and logs kept in ${stateDir}`);
  else await rm(stateDir, { recursive: true, force: true });
}
if (failed) process.exitCode = 1;
