// One hop through the Weft sidecar against a direct connection and against HAProxy (Debian's,
// `nbthread 1`, a plain HTTP reverse proxy) on the same path, in the same run: 1 KB responses over
// keep-alive, open loop at a fixed rate and closed loop at the maximum rate. Every piece is a process
// of its own on loopback: weftd, weft-proxy (local mode, as the e2e suite starts it), haproxy, the
// backend (backend.ts) and the load generator (load.ts).
// Prints added latency (proxy minus direct, at the same percentile), the proxy process's CPU
// seconds per 1,000 requests (/proc/<pid>/stat utime+stime) and resident memory (VmRSS), beside
// Istio 1.24's Envoy sidecar figures. Missing a goal is printed, never a failure.
//
// Environment: BENCH_PROXY_SECONDS (8 per measurement), BENCH_PROXY_RATE (1000 req/s),
// BENCH_PROXY_CONCURRENCY (32 connections for the closed loop), BENCH_PROXY_NODE_OPTIONS (extra
// Node options for the weft-proxy process, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`),
// BENCH_PROXY_LOG (a file to copy the weft-proxy process's output to; the mesh hop's sidecars to FILE.echo and
// FILE.bench), BENCH_PROXY_HOP=0 (only the mesh hop), BENCH_PROXY_MESH=0 (no mesh hop),
// BENCH_PROXY_ONLY=REGEX (only the one-hop rows whose name matches), BENCH_PROXY_ROUNDS (1: how many times each
// one-hop row is measured, rows interleaved, the median shown), BENCH_PROXY_FLOOR_BURN_US (rows for a costlier
// codec floor), BENCH_PROXY_HAPROXY_NBTHREAD2=1 (a row for HAProxy with nbthread 2), BENCH_BUN (a bun binary),
// BENCH_PROXY_WARMUP (1 s of load before each measured window, every row alike), BENCH_PROXY_BASELINE (another
// checkout whose weft-proxy becomes the one-hop row "weft-proxy baseline" of the same run),
// BENCH_PROXY_MESH_MTLS (STRICT: the mesh hop's PeerAuthentication mode), BENCH_PROXY_ACCESS_LOG=1 (the mesh
// hop's sidecars write Istio's JSON access log to their output, for BENCH_PROXY_LOG), BENCH_PROXY_SAMPLING (1:
// the mesh hop's tracing percentage). The mesh hop also prints the connections and TLS handshakes each sidecar
// made during its 1,000 req/s run (its admin /stats). With gcc and node-llhttp installed, both parts also measure
// issue 14's native byte path prototype (native-floor.ts, native/forwarder.c): one-hop rows "native ..." and the
// mesh pairs "native pair" (Node) and "native (bun)", after native-smuggling.ts has sent it the smuggling cases.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataPlaneNodeFlags } from '../../scripts/launch.js';
import { installCommand } from '@weft/testing';
import { buildNativeFloor, nativeFloorMissing } from './native-floor.ts';
import { nativeSmugglingFailures } from './native-smuggling.ts';

const seconds = Number(process.env.BENCH_PROXY_SECONDS ?? 8);
const rate = Number(process.env.BENCH_PROXY_RATE ?? 1000);
/** Seconds of load before each measured window (the same for every row). */
const warmupSeconds = Number(process.env.BENCH_PROXY_WARMUP ?? 1);
const concurrency = Number(process.env.BENCH_PROXY_CONCURRENCY ?? 32);
const proxyNodeOptions = (process.env.BENCH_PROXY_NODE_OPTIONS ?? '').split(' ').filter(Boolean);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const bins = {
  weftd: here('../../apps/weftd/bin/weftd.js'),
  proxy: here('../../apps/proxy/bin/weft-proxy.js'),
  backend: here('./backend.ts'),
  load: here('./load.ts'),
  floor: here('./floor.ts'),
  codecFloor: here('./codec-floor.ts'),
  pipeFloor: here('./pipe-floor.ts'),
  bunFloor: here('./bun-floor.ts'),
  nativeFloor: here('./native-floor.ts'),
};
const ip = { proxy: '127.20.0.1', proxyBun: '127.20.0.7', proxyCodec: '127.20.0.8', proxyBaseline: '127.20.0.14', backend: '127.20.0.2', haproxy: '127.20.0.3', haproxy2: '127.20.0.13', floor: '127.20.0.4', client: '127.20.0.5', server: '127.20.0.6', collector: '127.20.0.9', hpClient: '127.20.0.11', hpServer: '127.20.0.12', nativeClient: '127.20.0.15', nativeServer: '127.20.0.16' };
// Bun, for the rows that measure the same code on Bun (issue 14's stack (a)): BENCH_BUN, else the
// `bun` package of the workspace (a devDependency of bench).
const bun = [process.env.BENCH_BUN, here('../node_modules/.bin/bun'), here('../../node_modules/.bin/bun')].find(
  (b): b is string => !!b && spawnSync(b, ['--version']).status === 0,
);
const clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

// ------------------------------------------------------------------ processes

const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

interface Proc {
  child: ChildProcess;
  /** Resolves with the first JSON line (stdout or stderr) that matches. */
  waitFor(match: (l: Record<string, unknown>) => boolean, what: string, ms?: number): Promise<Record<string, unknown>>;
  output(): string;
}

function start(name: string, command: string, args: readonly string[], env: Record<string, string> = {}): Proc {
  const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.push(child);
  const lines: string[] = [];
  const waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    let pending = '';
    stream.on('data', (buf: Buffer) => {
      pending += buf.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const text of parts) {
        if (lines.length < 200) lines.push(text);
        if (!waiters.length) continue;
        let l: Record<string, unknown>;
        try {
          l = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue;
        }
        for (const w of [...waiters]) if (w.match(l)) waiters.splice(waiters.indexOf(w), 1) && w.resolve(l);
      }
    });
  }
  return {
    child,
    output: () => lines.join('\n'),
    waitFor: (match, what, ms = 30_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no ${what} within ${ms} ms:\n${lines.slice(-20).join('\n')}`)), ms);
        child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before ${what}:\n${lines.slice(-20).join('\n')}`)));
        waiters.push({
          match,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      }),
  };
}

async function stop(p: Proc): Promise<void> {
  const c = p.child;
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((resolve) => c.once('exit', resolve));
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** CPU seconds a process has used so far, in user mode and in the kernel. */
function cpuSeconds(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / clockTicks, sys: Number(fields[12]) / clockTicks };
}

/** CPU seconds the whole machine has been busy so far (every core, every process: /proc/stat). */
function machineBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
  return (fields.reduce((a, b) => a + b, 0) - fields[3]! - fields[4]!) / clockTicks;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

// ------------------------------------------------------------------ measurements

interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  latencies: { p50: number; p90: number; p99: number };
  /** The load generator's own CPU seconds over the measured window. */
  cpuSeconds: number;
}

interface Measurement extends LoadResult {
  /** CPU seconds of the proxy per 1,000 requests (undefined for the direct path), and the kernel's share. */
  cpuPer1k?: number;
  sysPer1k?: number;
  rssMb?: number;
  /** CPU seconds per 1,000 requests of the load generator and the backend together. */
  loadBackendPer1k?: number;
  /** The whole machine's busy cores over the window (everyone's processes, the other benches' too). */
  machineCores?: number;
}

/** The backend's pid, for the CPU the load generator and the backend spend beside the proxy. */
let backendPid: number | undefined;

async function measure(target: { url: string; host?: string; pid?: number }, mode: 'open' | 'closed'): Promise<Measurement> {
  const args = [bins.load, '--url', target.url, '--seconds', String(seconds), '--warmup', String(warmupSeconds)];
  if (target.host) args.push('--host', target.host);
  if (mode === 'open') args.push('--rate', String(rate));
  else args.push('--concurrency', String(concurrency));
  const load = start('load', process.execPath, args);
  // The load generator warms up first and says when its measured window starts: CPU is sampled around that window
  // only (a fixed second from spawn also counted part of the warm-up, which no request of the window pays for).
  const result = load.waitFor((l) => typeof l.requests === 'number', 'result', (seconds + 30) * 1000);
  await load.waitFor((l) => l.msg === 'measuring', 'measuring');
  const before = target.pid ? cpuSeconds(target.pid) : undefined;
  const side = { backend: backendPid ? cpuSeconds(backendPid) : undefined, machine: machineBusySeconds(), at: performance.now() };
  const line = await result;
  const after = target.pid ? cpuSeconds(target.pid) : undefined;
  const backendAfter = backendPid ? cpuSeconds(backendPid) : undefined;
  const machineCores = (machineBusySeconds() - side.machine) / ((performance.now() - side.at) / 1000);
  await stop(load);
  const r = line as unknown as LoadResult;
  const backendCpu = side.backend && backendAfter ? backendAfter.user - side.backend.user + backendAfter.sys - side.backend.sys : Number.NaN;
  const common = { ...r, loadBackendPer1k: ((r.cpuSeconds + backendCpu) / r.requests) * 1000, machineCores };
  if (!target.pid || !before || !after) return common;
  const sys = after.sys - before.sys;
  const cpu = after.user - before.user + sys;
  return { ...common, cpuPer1k: (cpu / r.requests) * 1000, sysPer1k: (sys / r.requests) * 1000, rssMb: rssMb(target.pid) };
}

// BENCH_PROXY_ROUNDS=R: every one-hop row (direct too) measured R times, the rows taking turns round by round, so
// that a neighbour's burst of load (the machine is shared) lands on one round of each row, not on every round of one.
const roundCount = Math.max(1, Number(process.env.BENCH_PROXY_ROUNDS ?? 1));

/** Per target: the round at the median of `key` (the lower one of an even count), and every round's key. */
async function measureRounds(targets: readonly { url: string; host?: string; pid?: number }[], mode: 'open' | 'closed', key: (m: Measurement) => number) {
  const runs: Measurement[][] = targets.map(() => []);
  for (let r = 0; r < roundCount; r++) for (const [i, t] of targets.entries()) runs[i]!.push(await measure(t, mode));
  return runs.map((ms) => ({ median: [...ms].sort((a, b) => key(a) - key(b))[Math.floor((ms.length - 1) / 2)]!, keys: ms.map(key) }));
}

// ------------------------------------------------------------------ report

const fmt = (n: number | undefined, digits = 2) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');

function report(mode: string, direct: Measurement, rows: readonly (readonly [string, Measurement | undefined])[]): void {
  console.log(`\n${mode}`);
  console.log('  path                          req/s    errors  p50 ms  p90 ms  p99 ms  +p50    +p90    +p99    CPU s/1k req (kernel)  RSS MB  load+backend s/1k  cores: proxy / others');
  for (const [name, m] of [['direct', direct] as const, ...rows]) {
    if (!m) continue;
    // Cores busy over the window for a CPU cost per 1,000 requests; "others": the rest of the machine's busy time
    // (other benches, builds), what the row competed with beside the load generator and the backend.
    const cores = (per1k: number | undefined) => ((per1k ?? 0) * m.requests) / m.seconds / 1000;
    const added = (p: 'p50' | 'p90' | 'p99') => (m === direct ? '-' : fmt(m.latencies[p] - direct.latencies[p]));
    console.log(
      `  ${name.padEnd(28)}  ${fmt(m.requests / m.seconds, 0).padStart(6)}  ${String(m.errors).padStart(6)}  ${fmt(m.latencies.p50).padStart(6)}  ${fmt(m.latencies.p90).padStart(6)}  ${fmt(m.latencies.p99).padStart(6)}  ${added('p50').padEnd(6)}  ${added('p90').padEnd(6)}  ${added('p99').padEnd(6)}  ${fmt(m.cpuPer1k, 3).padStart(12)} (${fmt(m.sysPer1k, 3).padStart(5)})  ${fmt(m.rssMb, 0).padStart(6)}  ${fmt(m.loadBackendPer1k, 3).padStart(17)}  ${(m.cpuPer1k === undefined ? '-' : fmt(cores(m.cpuPer1k))).padStart(12)} / ${fmt((m.machineCores ?? Number.NaN) - cores(m.loadBackendPer1k) - cores(m.cpuPer1k))}`,
    );
  }
}

interface Stack {
  name: string;
  open?: Measurement;
  closed?: Measurement;
}

/** Issue 14's goals for one hop, each measured against HAProxy in the same run where it names HAProxy. */
function goals(direct: { open: Measurement; closed: Measurement }, haproxy: Stack | undefined, stacks: readonly Stack[]): void {
  console.log('\nGoals for one hop (CPU: the process\'s user+system time over the measured window / requests served; RSS: VmRSS after the window):');
  const hpAdded = haproxy?.open ? haproxy.open.latencies.p99 - direct.open.latencies.p99 : Number.NaN;
  for (const st of stacks) {
    if (!st.open || !st.closed) continue;
    const added = st.open.latencies.p99 - direct.open.latencies.p99;
    const cpu = st.open.cpuPer1k ?? Number.NaN;
    const rss = Math.max(st.open.rssMb ?? 0, st.closed.rssMb ?? 0);
    const rps = st.closed.requests / st.closed.seconds;
    const hpRps = haproxy?.closed ? haproxy.closed.requests / haproxy.closed.seconds : Number.NaN;
    console.log(
      `  ${st.name.padEnd(28)} CPU ${fmt(cpu, 3)} s/1k (<= 0.20: ${verdict(cpu <= 0.2)}), RSS ${fmt(rss, 0)} MB (<= 60: ${verdict(rss <= 60)}), added p99 ${fmt(added)} ms (<= haproxy's ${fmt(hpAdded)}: ${verdict(added <= hpAdded)}), saturation ${fmt(rps, 0)} req/s (>= haproxy's ${fmt(hpRps, 0)}: ${verdict(rps >= hpRps)})`,
    );
  }
}

/** The echo service: a ServiceEntry and one WorkloadEntry at `address:port`. */
function echoService(address: string, port: number, workload: { serviceAccount?: string; labels?: string } = {}): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  location: MESH_INTERNAL
  workloadSelector: {labels: {app: echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo, namespace: default}
spec:
  address: ${address}
${workload.serviceAccount ? `  serviceAccount: ${workload.serviceAccount}\n` : ''}  labels: {app: echo, version: v1${workload.labels ?? ''}}
  ports: {http: ${port}}
`;
}

// ------------------------------------------------------------------ mesh hop

/**
 * The same load through two sidecars as a mesh runs them: the client's sidecar (local mode's
 * outbound port) originates mutual TLS with its workload certificate from weftd's CA, the
 * server's sidecar terminates it (PeerAuthentication STRICT) and forwards to the backend; both
 * report Istio's metrics (metadata exchange included) and trace at Istio's default sampling (1%)
 * to an OTLP receiver. Access logs stay off, as in Istio's default profile.
 */
async function meshHop(backendPort: number, direct: { open: Measurement; closed: Measurement }): Promise<void> {
  // A directory of its own: the first weftd still watches the other one.
  const dir = await mkdtemp(join(tmpdir(), 'weft-bench-mesh-'));
  try {
    await meshHopIn(dir, backendPort, direct);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function meshHopIn(dir: string, backendPort: number, direct: { open: Measurement; closed: Measurement }): Promise<void> {
  const { CertificateAuthority } = await import('@weft/citadel');
  const { silentLogger } = await import('@weft/model');
  const configDir = join(dir, 'mesh-config');
  const caDir = join(dir, 'ca');
  await mkdir(configDir);
  await mkdir(caDir);
  // An OTLP/HTTP receiver that accepts and drops spans.
  let spans = 0;
  const collector = createHttpServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      spans++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    });
  });
  const collectorPort = await new Promise<number>((resolve) => collector.listen(0, ip.collector, () => resolve((collector.address() as { port: number }).port)));
  await writeFile(
    join(dir, 'mesh.yaml'),
    `enableTracing: true
${process.env.BENCH_PROXY_ACCESS_LOG ? `accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n` : ''}defaultConfig:
  tracing:
    sampling: ${process.env.BENCH_PROXY_SAMPLING ?? 1}
extensionProviders:
- name: otel
  opentelemetry:
    service: ${ip.collector}
    port: ${collectorPort}
    http:
      path: /v1/traces
defaultProviders:
  tracing: [otel]
`,
  );
  await writeFile(
    join(configDir, 'mesh.yaml'),
    `${echoService(ip.server, 9080, { serviceAccount: 'echo', labels: ', security.istio.io/tlsMode: istio' })}---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: echo, namespace: default}
spec:
  selector: {matchLabels: {app: echo}}
  mtls: {mode: ${process.env.BENCH_PROXY_MESH_MTLS ?? 'STRICT'}}
`,
  );
  const weftd = start('weftd (mesh)', process.execPath, [bins.weftd, '--config-dir', configDir, '--xds-port', '0', '--ca-port', '0', '--monitoring-port', '0', '--ca-dir', caDir, '--mesh-config', join(dir, 'mesh.yaml')]);
  const ready = await weftd.waitFor((l) => l.msg === 'weftd ready', 'weftd ready');
  const ca = await CertificateAuthority.open(caDir, { logger: silentLogger });
  const sidecar = async (name: string, address: string, sa: string, labels: string, extra: string[]) => {
    const tokenFile = join(dir, `${sa}.token`);
    await writeFile(tokenFile, ca.issueBootstrapToken('default', sa));
    const args = [bins.proxy, '--xds-address', `127.0.0.1:${ready.xdsPort}`, '--ip', address, '--pod', `${name}-1`, '--namespace', 'default', '--labels', labels];
    args.push('--service-account', sa, '--ca-address', `127.0.0.1:${ready.caPort}`, '--ca-root-cert', join(caDir, 'root-cert.pem'), '--ca-token-file', tokenFile);
    args.push('--mode', 'local', '--admin-port', '0', '--health-port', '0', '--drain-ms', '200', ...extra);
    const p = start(name, process.execPath, [...proxyNodeOptions, ...args]);
    if (process.env.BENCH_PROXY_LOG) {
      const log = createWriteStream(`${process.env.BENCH_PROXY_LOG}.${sa}`);
      p.child.stdout?.pipe(log);
      p.child.stderr?.pipe(log);
    }
    const admin = p.waitFor((l) => l.msg === 'admin listening', 'admin listening');
    await p.waitFor((l) => l.msg === 'proxy ready', 'proxy ready');
    adminPorts.set(p, Number((await admin).port));
    return p;
  };
  const adminPorts = new Map<Proc, number>();
  /** Connections a sidecar opened and TLS handshakes it made (its admin /stats, summed over clusters and listeners). */
  const connectionCounts = async (p: Proc) => {
    const text = await (await fetch(`http://127.0.0.1:${adminPorts.get(p)}/stats`)).text();
    const sum = (suffix: string) => text.split('\n').filter((l) => l.split(':')[0]!.endsWith(suffix)).reduce((n, l) => n + Number(l.split(':')[1] ?? 0), 0);
    return { upstreamCx: sum('.upstream_cx_total'), downstreamCx: sum('.downstream_cx_total'), handshakes: sum('ssl.handshake') };
  };
  const server = await sidecar('server sidecar', ip.server, 'echo', 'app=echo,version=v1', ['--app-address', ip.backend, '--app-ports', `9080=${backendPort}`]);
  const client = await sidecar('client sidecar', ip.client, 'bench', 'app=bench,version=v1', []);
  const idle = { client: rssMb(client.child.pid!), server: rssMb(server.child.pid!) };
  const target = { url: `http://${ip.client}:15001/`, host: 'echo:9080' };
  const both = (mode: 'open' | 'closed') => measurePair(target, client, server, mode);
  const counts0 = { client: await connectionCounts(client), server: await connectionCounts(server) };
  const open = await both('open');
  const counts1 = { client: await connectionCounts(client), server: await connectionCounts(server) };
  const closed = await both('closed');
  await Promise.all([stop(client), stop(server)]);
  const delta = (a: Record<string, number>, b: Record<string, number>) => Object.entries(b).map(([k, v]) => `${k} ${v - (a[k] ?? 0)}`).join(', ');
  const connectionLine = `connections during the 1,000 req/s run (warm-up included): client sidecar ${delta(counts0.client, counts1.client)}; server sidecar ${delta(counts0.server, counts1.server)}`;
  const pems = await meshPems(dir, ca);
  const pair = await haproxyPair(dir, pems, backendPort);
  const native = await nativePair(pems, backendPort, 'node');
  const nativeBun = await nativePair(pems, backendPort, 'bun');
  console.log(`\nmesh hop: client -> client sidecar -> mTLS (STRICT) -> server sidecar -> backend; Istio metrics and metadata exchange on both, tracing sampled at 1% to OTLP (${spans} exports received); idle RSS client ${fmt(idle.client, 0)} MB, server ${fmt(idle.server, 0)} MB`);
  console.log(connectionLine);
  console.log('beside two HAProxy instances doing mTLS to each other with certificates from the same CA (client -> haproxy -> mTLS -> haproxy -> backend)');
  if (native) console.log('and the native byte path prototype as such a pair ("native pair": bytes, llhttp and TLS in C, each request’s head and plan from TypeScript; no metrics export or tracing; "native (bun)": the same on Bun, connections on their own thread)');
  console.log('  path          load        req/s    errors  p50 ms  p90 ms  p99 ms  +p50    +p90    +p99    CPU s/1k req client / server   RSS MB client / server');
  const rows: [string, string, PairMeasurement, Measurement][] = [
    ['weft sidecars', `${rate} req/s`, open, direct.open],
    ['weft sidecars', 'max (32 c)', closed, direct.closed],
  ];
  if (pair) rows.push(['haproxy pair', `${rate} req/s`, pair.open, direct.open], ['haproxy pair', 'max (32 c)', pair.closed, direct.closed]);
  if (native) rows.push(['native pair', `${rate} req/s`, native.open, direct.open], ['native pair', 'max (32 c)', native.closed, direct.closed]);
  if (nativeBun) rows.push(['native (bun)', `${rate} req/s`, nativeBun.open, direct.open], ['native (bun)', 'max (32 c)', nativeBun.closed, direct.closed]);
  for (const [path, name, r, d] of rows) {
    const m = r.m;
    console.log(
      `  ${path.padEnd(12)}  ${name.padEnd(10)}  ${fmt(m.requests / m.seconds, 0).padStart(6)}  ${String(m.errors).padStart(6)}  ${fmt(m.latencies.p50).padStart(6)}  ${fmt(m.latencies.p90).padStart(6)}  ${fmt(m.latencies.p99).padStart(6)}  ${fmt(m.latencies.p50 - d.latencies.p50).padEnd(6)}  ${fmt(m.latencies.p90 - d.latencies.p90).padEnd(6)}  ${fmt(m.latencies.p99 - d.latencies.p99).padEnd(6)}  ${fmt(r.cpu.client, 3).padStart(14)} / ${fmt(r.cpu.server, 3).padEnd(12)}  ${fmt(r.rss.client, 0).padStart(10)} / ${fmt(r.rss.server, 0)}`,
    );
  }
  const addedP99 = open.m.latencies.p99 - direct.open.latencies.p99;
  const pairAdded = pair ? pair.open.m.latencies.p99 - direct.open.latencies.p99 : Number.NaN;
  const cpu = Math.max(open.cpu.client, open.cpu.server);
  const rss = Math.max(open.rss.client, open.rss.server, closed.rss.client, closed.rss.server);
  console.log('Goals with mTLS, Istio metrics and 1% tracing at 1,000 req/s (per sidecar; the added latency is for both sidecars together):');
  console.log(`  added p99 (two sidecars): ${fmt(addedP99)} ms (<= 2 x the HAProxy pair's ${fmt(pairAdded)}): ${verdict(addedP99 <= 2 * pairAdded)}`);
  console.log(`  CPU per 1,000 requests, busiest sidecar: ${fmt(cpu, 3)} CPU s (<= 0.30): ${verdict(cpu <= 0.3)}`);
  console.log(`  resident memory, largest sidecar: ${fmt(rss, 0)} MB (<= 80 MB): ${verdict(rss <= 80)}`);
  await stop(weftd);
  collector.close();
}

interface PairMeasurement {
  m: Measurement;
  /** CPU seconds per 1,000 requests and resident MB of each process of the pair. */
  cpu: { client: number; server: number };
  rss: { client: number; server: number };
}

/** One load run through a client-side and a server-side process, with the CPU and memory of each. */
async function measurePair(target: { url: string; host?: string }, client: Proc, server: Proc, mode: 'open' | 'closed'): Promise<PairMeasurement> {
  const before = { client: cpuSeconds(client.child.pid!), server: cpuSeconds(server.child.pid!) };
  const m = await measure(target, mode);
  const after = { client: cpuSeconds(client.child.pid!), server: cpuSeconds(server.child.pid!) };
  const per = (b: { user: number; sys: number }, a: { user: number; sys: number }) => ((a.user - b.user + a.sys - b.sys) / m.requests) * 1000;
  return { m, cpu: { client: per(before.client, after.client), server: per(before.server, after.server) }, rss: { client: rssMb(client.child.pid!), server: rssMb(server.child.pid!) } };
}

/** Builds the native prototype (once); why it could not be built, or undefined. */
function nativeBuildError(): string | undefined {
  try {
    buildNativeFloor();
    return undefined;
  } catch (e) {
    return `its build failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
  }
}

/** Why the native prototype's rows are left out (not installable, not built, or it let a smuggling case through), or undefined. Checked once. */
let nativeCheck: Promise<string | undefined> | undefined;
function nativeUnavailable(): Promise<string | undefined> {
  nativeCheck ??= (async () => nativeFloorMissing() ?? nativeBuildError() ?? (await nativeSmuggling()))();
  return nativeCheck;
}

/** The smuggling cases through the prototype in each mode measured; why its rows are left out, or undefined. */
async function nativeSmuggling(): Promise<string | undefined> {
  const modes: [string, string[]][] = [['node', []], ['node', ['--plan']], ['node', ['--plan', '--thread']], ...(bun ? [['bun', ['--plan', '--thread']] as [string, string[]]] : [])];
  for (const [runtime, args] of modes) {
    const failures = await nativeSmugglingFailures(runtime === 'bun' ? bun! : process.execPath, args);
    if (failures.length) return `request smuggling through it (${runtime} ${args.join(' ')}): ${failures.join('; ')}`;
  }
  console.log(`native byte path: the request-smuggling cases get 400 with nothing upstream, a pipelined request passes (${modes.map(([r, a]) => [r, ...a].join(' ')).join(', ')})`);
  return undefined;
}

type MeshCa = { issueServingCertificate(o: { uris?: readonly string[] }): Promise<{ certChainPem: string; privateKeyPem: string }> };
interface MeshPems {
  rootPath: string;
  serverPem: string;
  clientPem: string;
}

/** Certificates from the mesh CA for the non-weft pairs (chain and key in one PEM file, HAProxy's `crt`). */
async function meshPems(dir: string, ca: MeshCa): Promise<MeshPems> {
  const pem = async (name: string, sa: string) => {
    const c = await ca.issueServingCertificate({ uris: [`spiffe://cluster.local/ns/default/sa/${sa}`] });
    const path = join(dir, `${name}.pem`);
    await writeFile(path, `${c.certChainPem}\n${c.privateKeyPem}\n`);
    return path;
  };
  return { rootPath: join(dir, 'ca', 'root-cert.pem'), serverPem: await pem('hp-server', 'echo'), clientPem: await pem('hp-client', 'bench') };
}

/**
 * The native byte path prototype as a mesh pair (native-floor.ts --plan with mutual TLS between the two, the
 * HAProxy pair's certificates; on Bun with --thread): what two sidecars would cost with bytes and TLS in C and
 * each request's decision in TypeScript.
 */
async function nativePair(pems: MeshPems, backendPort: number, runtime: 'node' | 'bun') {
  if (await nativeUnavailable()) return undefined;
  if (runtime === 'bun' && !bun) return undefined;
  const [command, flags] = runtime === 'bun' ? [bun!, []] : [process.execPath, dataPlaneNodeFlags];
  const tls = [...flags, bins.nativeFloor, '--plan', '--ca', pems.rootPath, ...(runtime === 'bun' ? ['--thread'] : [])];
  const server = start('native (mTLS server)', command, [...tls, '--tls-listen', pems.serverPem, '--address', ip.nativeServer, '--upstream', `${ip.backend}:${backendPort}`]);
  const serverPort = Number((await server.waitFor((l) => l.msg === 'listening', 'listening')).port);
  const client = start('native (mTLS client)', command, [...tls, '--tls-upstream', pems.clientPem, '--address', ip.nativeClient, '--upstream', `${ip.nativeServer}:${serverPort}`]);
  const clientPort = Number((await client.waitFor((l) => l.msg === 'listening', 'listening')).port);
  const target = { url: `http://${ip.nativeClient}:${clientPort}/` };
  const open = await measurePair(target, client, server, 'open');
  const closed = await measurePair(target, client, server, 'closed');
  await Promise.all([stop(client), stop(server)]);
  if (open.m.errors > 0 || closed.m.errors > 0) console.log(`native pair: ${open.m.errors + closed.m.errors} errors; its output:\n${server.output()}\n${client.output()}`);
  return { open, closed };
}

/**
 * The mesh hop's peer: two HAProxy processes (nbthread 1 each) doing what the two sidecars do for
 * transport, mTLS with certificates from the mesh CA (client certificate required and verified
 * against the root on both sides), without telemetry. Undefined without haproxy.
 */
async function haproxyPair(dir: string, pems: MeshPems, backendPort: number) {
  if (spawnSync('haproxy', ['-v']).status !== 0) return undefined;
  const { rootPath, serverPem, clientPem } = pems;
  const serverPort = await freePort(ip.hpServer);
  const clientPort = await freePort(ip.hpClient);
  const common = 'global\n  nbthread 1\n  maxconn 4000\ndefaults\n  mode http\n  option http-keep-alive\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n';
  await writeFile(join(dir, 'hp-server.cfg'), `${common}frontend in\n  bind ${ip.hpServer}:${serverPort} ssl crt ${serverPem} ca-file ${rootPath} verify required\n  default_backend app\nbackend app\n  server app ${ip.backend}:${backendPort}\n`);
  await writeFile(join(dir, 'hp-client.cfg'), `${common}frontend in\n  bind ${ip.hpClient}:${clientPort}\n  default_backend out\nbackend out\n  http-reuse always\n  server s ${ip.hpServer}:${serverPort} ssl crt ${clientPem} ca-file ${rootPath} verify required\n`);
  const server = start('haproxy (mTLS server)', 'haproxy', ['-db', '-f', join(dir, 'hp-server.cfg')]);
  const client = start('haproxy (mTLS client)', 'haproxy', ['-db', '-f', join(dir, 'hp-client.cfg')]);
  await listening(ip.hpServer, serverPort, server);
  await listening(ip.hpClient, clientPort, client);
  const target = { url: `http://${ip.hpClient}:${clientPort}/` };
  const both = (mode: 'open' | 'closed') => measurePair(target, client, server, mode);
  const open = await both('open');
  const closed = await both('closed');
  await Promise.all([stop(client), stop(server)]);
  if (open.m.errors > 0 || closed.m.errors > 0) console.log(`haproxy pair: ${open.m.errors + closed.m.errors} errors; its output:\n${server.output()}\n${client.output()}`);
  return { open, closed };
}

/** Resolves once `address:port` is taken (a bind there fails: the process listens), or rejects after 10 s. */
function listening(address: string, port: number, p: Proc): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    const probe = () => {
      const s = createServer();
      s.once('error', () => resolve());
      s.listen(port, address, () => s.close(() => (Date.now() > deadline ? reject(new Error(`${address}:${port} never listened:\n${p.output()}`)) : setTimeout(probe, 50))));
    };
    probe();
  });
}


// ------------------------------------------------------------------ main

const dir = await mkdtemp(join(tmpdir(), 'weft-bench-proxy-'));
try {
  const backend = start('backend', process.execPath, [bins.backend, '--address', ip.backend]);
  const backendPort = Number((await backend.waitFor((l) => l.msg === 'listening', 'listening')).port);
  backendPid = backend.child.pid;
  await writeFile(join(dir, 'mesh.yaml'), echoService(ip.backend, backendPort));
  const weftd = start('weftd', process.execPath, [bins.weftd, '--config-dir', dir, '--xds-port', '0', '--monitoring-port', '0', '--no-ca']);
  const xdsPort = Number((await weftd.waitFor((l) => l.msg === 'weftd ready', 'weftd ready')).xdsPort);
  // weft-proxy on Node (the shipped runtime) and, when Bun is there, the same code on Bun; two
  // proxy addresses, the same ServiceEntry.
  const proxies: { name: string; address: string; proc: Proc }[] = [];
  // HTTP/1.1 on our llhttp codec (the default), and with node:http's server in front of it
  // and undici behind it (WEFT_PROXY_HTTP1_CODEC=node, the stack before the codec), on Node; the default on Bun too.
  const variants: [string, string, string, string, Record<string, string>][] = [
    ['weft-proxy', process.execPath, bins.proxy, ip.proxy, {}],
    ['weft-proxy node:http+undici', process.execPath, bins.proxy, ip.proxyCodec, { WEFT_PROXY_HTTP1_CODEC: 'node' }],
  ];
  if (bun) variants.push(['weft-proxy on bun', bun, bins.proxy, ip.proxyBun, {}]);
  // BENCH_PROXY_BASELINE=<another checkout>: its weft-proxy as one more row, "weft-proxy baseline", measured
  // in the same run and rounds as today's (a regression hunt compares two commits without the machine's
  // drift between runs). The checkout needs its own node_modules (`cp -al` of this one's works).
  if (process.env.BENCH_PROXY_BASELINE) variants.push(['weft-proxy baseline', process.execPath, join(process.env.BENCH_PROXY_BASELINE, 'apps/proxy/bin/weft-proxy.js'), ip.proxyBaseline, {}]);
  for (const [name, runtime, bin, address, env] of variants) {
    const proxyArgs = [bin, '--xds-address', `127.0.0.1:${xdsPort}`, '--ip', address, '--pod', `bench-${proxies.length + 1}`, '--namespace', 'default', '--labels', 'app=bench'];
    proxyArgs.push('--mode', 'local', '--admin-port', '0', '--health-port', '0', '--drain-ms', '200');
    const proc = start(name, runtime, [...(runtime === process.execPath ? proxyNodeOptions : []), ...proxyArgs], env);
    if (process.env.BENCH_PROXY_LOG && name === 'weft-proxy') {
      const log = createWriteStream(process.env.BENCH_PROXY_LOG);
      proc.child.stdout?.pipe(log);
      proc.child.stderr?.pipe(log);
    }
    await proc.waitFor((l) => l.msg === 'proxy ready', 'proxy ready');
    proxies.push({ name, address, proc });
  }
  const idleRss = proxies.map((p) => `${p.name} ${fmt(rssMb(p.proc.child.pid!), 0)} MB`).join(', ');

  // HAProxy is the peer when it is installed (npm test's preflight installs Debian's as root); without it the bench still runs.
  // "haproxy" is the issue's peer (nbthread 1). BENCH_PROXY_HAPROXY_NBTHREAD2=1 adds "haproxy, 2 threads", as many
  // threads as the two-loop floors have event loops (on 2 shared cores it forwarded no more than nbthread 1: median
  // 0.98x over five runs on 2026-12-07, so it is not a row by default).
  const haproxies: { name: string; url: string; proc: Proc }[] = [];
  const haproxySpecs = [['haproxy', 1, ip.haproxy] as const, ...(process.env.BENCH_PROXY_HAPROXY_NBTHREAD2 === '1' ? [['haproxy, 2 threads', 2, ip.haproxy2] as const] : [])];
  if (spawnSync('haproxy', ['-v']).status !== 0) console.log(`haproxy is not installed (${installCommand(['haproxy'])}): its rows are left out`);
  else
    for (const [name, threads, address] of haproxySpecs) {
      const port = await freePort(address);
      const config = join(dir, `haproxy-${threads}.cfg`);
      await writeFile(
        config,
        `global
  nbthread ${threads}
  maxconn 4000
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind ${address}:${port}
  default_backend echo
backend echo
  server echo1 ${ip.backend}:${backendPort}
`,
      );
      const proc = start(name, 'haproxy', ['-db', '-f', config]);
      await listening(address, port, proc);
      haproxies.push({ name, url: `http://${address}:${port}/`, proc });
    }

  // Floors: the smallest forwarders on each candidate stack, no routing, filters or telemetry.
  // "2 loops": the same floor on two event loops in one process (event-loops.ts), as Envoy's --concurrency 2.
  const twoLoops = ['--workers', '2'];
  const floorSpecs: [string, string, string, readonly string[], (readonly string[])?][] = [
    ['node:http+undici floor', process.execPath, bins.floor, dataPlaneNodeFlags],
    ['llhttp codec floor', process.execPath, bins.codecFloor, dataPlaneNodeFlags],
    ['llhttp codec floor, 2 loops', process.execPath, bins.codecFloor, dataPlaneNodeFlags, twoLoops],
    ['node:net L4 pipe', process.execPath, bins.pipeFloor, dataPlaneNodeFlags],
    ['node:net L4 pipe, 2 loops', process.execPath, bins.pipeFloor, dataPlaneNodeFlags, twoLoops],
  ];
  // BENCH_PROXY_FLOOR_BURN_US=U: the codec floor spinning U µs per request, on one and two loops (a forwarder as
  // costly per request as weft-proxy, to see whether more event loops would lift its saturation).
  const burn = process.env.BENCH_PROXY_FLOOR_BURN_US;
  if (burn) for (const loops of ['1', '2']) floorSpecs.push([`codec floor +${burn} us, ${loops} loop${loops === '1' ? '' : 's'}`, process.execPath, bins.codecFloor, dataPlaneNodeFlags, ['--workers', loops, '--burn-us', burn]]);
  // The native byte path (native-floor.ts): bytes in C on Node's loop, the per-request decision in TypeScript
  // ("TS decision"), or TypeScript also rewriting both heads and counting responses ("TS heads", two JS calls).
  const nativeMissing = await nativeUnavailable();
  if (nativeMissing) console.log(`native byte path rows skipped: ${nativeMissing}`);
  else {
    floorSpecs.push(['native byte path, TS decision', process.execPath, bins.nativeFloor, dataPlaneNodeFlags], ['native byte path, TS heads', process.execPath, bins.nativeFloor, dataPlaneNodeFlags, ['--heads']]);
    // "TS plan": the request's decision also carries the response's header lines, C rewrites the response head
    // (one JS call per request); "thread": the connections on a thread of their own, each decision handed to the
    // JS thread and back, the mode Bun needs (it has no libuv)
    floorSpecs.push(['native, TS plan', process.execPath, bins.nativeFloor, dataPlaneNodeFlags, ['--plan']], ['native, TS plan, thread', process.execPath, bins.nativeFloor, dataPlaneNodeFlags, ['--plan', '--thread']]);
    if (bun) floorSpecs.push(['native on bun, TS plan, thread', bun, bins.nativeFloor, [], ['--plan', '--thread']]);
  }
  if (bun) floorSpecs.push(['llhttp codec on bun', bun, bins.codecFloor, []], ['llhttp codec on bun, 2 loops', bun, bins.codecFloor, [], twoLoops], ['Bun.serve+fetch floor', bun, bins.bunFloor, []]);
  const floors: { name: string; proc: Proc; url: string }[] = [];
  for (const [i, [name, runtime, file, flags, extra = []]] of floorSpecs.entries()) {
    const address = `127.20.1.${i + 1}`;
    const port = await freePort(address);
    const proc = start(name, runtime, [...flags, file, '--address', address, '--port', String(port), '--upstream', `${ip.backend}:${backendPort}`, ...extra]);
    await proc.waitFor((l) => l.msg === 'listening', 'listening');
    floors.push({ name, proc, url: `http://${address}:${port}/` });
  }

  const targets: { name: string; url: string; host?: string; pid?: number }[] = [
    ...proxies.map((p) => ({ name: p.name, url: `http://${p.address}:15001/`, host: 'echo:9080', pid: p.proc.child.pid })),
    ...haproxies.map((h) => ({ name: h.name, url: h.url, pid: h.proc.child.pid })),
    ...floors.map((f) => ({ name: f.name, url: f.url, pid: f.proc.child.pid })),
  ];
  // BENCH_PROXY_HOP=0: only the mesh hop (the direct path is still measured, as its baseline).
  if (process.env.BENCH_PROXY_HOP === '0') targets.length = 0;
  // BENCH_PROXY_ONLY=REGEX: only the rows whose name matches (while investigating one stack).
  const only = process.env.BENCH_PROXY_ONLY ? new RegExp(process.env.BENCH_PROXY_ONLY) : undefined;
  if (only) targets.splice(0, targets.length, ...targets.filter((t) => only.test(t.name)));
  const direct = { url: `http://${ip.backend}:${backendPort}/` };
  console.log(`proxy hop: 1 KB responses over keep-alive, ${seconds} s per measurement (after ${warmupSeconds} s warm-up), load generator in its own process; idle RSS ${idleRss}`);
  console.log(bun ? `Bun: ${bun}` : `Bun rows left out: no bun (npm ci installs it into bench/node_modules; or set BENCH_BUN)`);
  const stacks: Stack[] = targets.map((t) => ({ name: t.name }));
  const all = [{ name: 'direct', ...direct }, ...targets];
  const open = await measureRounds(all, 'open', (m) => m.latencies.p99);
  const directOpen = open[0]!.median;
  for (const [i, r] of open.slice(1).entries()) stacks[i]!.open = r.median;
  report(`open loop at ${rate} req/s${roundCount > 1 ? `, each row its median-p99 round of ${roundCount}` : ''}`, directOpen, stacks.map((st) => [st.name, st.open] as const));
  if (roundCount > 1) console.log(`  p99 ms by round: ${all.map((t, i) => `${t.name} ${open[i]!.keys.map((k) => fmt(k)).join('/')}`).join('; ')}`);
  const closed = await measureRounds(all, 'closed', (m) => m.requests / m.seconds);
  const directClosed = closed[0]!.median;
  for (const [i, r] of closed.slice(1).entries()) stacks[i]!.closed = r.median;
  report(`closed loop, ${concurrency} connections (maximum rate)${roundCount > 1 ? `, each row its median-req/s round of ${roundCount}` : ''}`, directClosed, stacks.map((st) => [st.name, st.closed] as const));
  if (roundCount > 1) console.log(`  req/s by round: ${all.map((t, i) => `${t.name} ${closed[i]!.keys.map((k) => fmt(k, 0)).join('/')}`).join('; ')}`);
  goals(
    { open: directOpen, closed: directClosed },
    stacks.find((st) => st.name === 'haproxy'),
    stacks.filter((st) => st.name.startsWith('weft-proxy')),
  );
  await Promise.all([...proxies.map((p) => stop(p.proc)), ...floors.map((f) => stop(f.proc)), ...haproxies.map((h) => stop(h.proc))]);
  if (process.env.BENCH_PROXY_MESH !== '0') await meshHop(backendPort, { open: directOpen, closed: directClosed });
  await Promise.all([stop(weftd), stop(backend)]);
} finally {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
}
