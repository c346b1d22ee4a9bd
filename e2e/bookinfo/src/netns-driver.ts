// The netns driver (as root): BookInfo as Kubernetes would run it, each pod a network namespace.
//
// Layout (nothing else is touched on the host):
//   - a bridge `br0` in a namespace of its own (wbi-br-<id>); every pod's eth0 is a veth on it;
//   - one veth from the host's own namespace to the bridge (wbi<id>, 10.241.N.1/24): weftd and the
//     test's OTLP receiver listen on that address in the root namespace, reachable from the pods, and
//     the test reaches the ingress gateway and the proxies' 15090 through it;
//   - pods (namespaces wbi-<pod>-<id>): productpage-v1, details-v1, ratings-v1, reviews-v1/v2/v3 at
//     10.241.N.<last octet of the local topology's 127.0.0.x address>, the ingress gateway at .9, a
//     client pod without a sidecar at .2;
//   - names: each pod's /etc/netns/<ns>/hosts (bind-mounted over /etc/hosts by `ip netns exec`)
//     maps each service's short and long names (`reviews`, `reviews.default`,
//     `reviews.default.svc.cluster.local`) to its pods' addresses, the WorkloadEntry addresses, one
//     line per pod (no service VIP: the ServiceEntries declare none, as the local topology). The app
//     connects to the first; the client sidecar's 0.0.0.0_9080 listener routes by Host, so which
//     pod address the name resolved to does not matter;
//   - in each workload pod: weft-iptables with the arguments Istio's injector gives istio-init,
//     the BookInfo app on 0.0.0.0:9080 with no proxy settings, weft-proxy --mode capture as UID 1337
//     (inbound 15006, outbound 15001 by SO_ORIGINAL_DST), a certificate from weftd's CA;
//   - the ingress gateway (weft-ingress) in its pod, no capture, listening on 0.0.0.0:8080.
// The config weftd watches is the local topology with the pod addresses; apply/delete are weftctl's.
//
// Cleanup: every namespace, link, /etc/netns directory and process is recorded when made and
// removed by stop(); also on a failed start (try/finally), from the test's afterAll, and from a
// process exit/signal hook, synchronously, if the worker goes away first.
import { nodeId } from '@weft/mesh';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, rmSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { defaultKindRegistry, loadPaths, silentLogger, toYaml } from '@weft/model';
import { netnsSkipReason, startOtlpReceiver } from '@weft/proxy/testing';
import { apply, defaultInitialConfig, defaultTopology, ingressConfigs, type MeshState, remove, repoRoot, workloadsOf, writeState } from '@weft/weftctl';
import { type BookinfoDriver, type PlaintextAnswer, runWeftctl, spanExportDelayMs, tracingMeshConfig } from './driver.ts';
import { hasNetworking, networking } from './reference.ts';

const bins = {
  weftd: join(repoRoot, 'apps/weftd/bin/weftd.js'),
  proxy: join(repoRoot, 'apps/proxy/bin/weft-proxy.js'),
  ingress: join(repoRoot, 'apps/ingress/bin/weft-ingress.js'),
  bookinfo: join(repoRoot, 'examples/bookinfo/apps/bin/bookinfo.js'),
  iptables: join(repoRoot, 'packages/proxy/bin/weft-iptables.js'),
};

/** What Istio's sidecar injector passes to istio-init (REDIRECT, every port and address, proxy UID 1337). */
const istioInitArgs = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];

/** Why this driver cannot run here, or undefined. */
export function netnsDriverSkipReason(): string | undefined {
  return netnsSkipReason();
}

interface LogLine {
  msg?: string;
  [k: string]: unknown;
}

/** A process in a pod (or the root namespace): its JSON lines kept, its output appended to a log file. */
class PodProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<void>;
  readonly #waiters = new Set<() => void>();

  constructor(name: string, argv: readonly string[], env: NodeJS.ProcessEnv, logFile: string) {
    this.name = name;
    const log = createWriteStream(logFile, { flags: 'a' });
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
    if (this.child.pid === undefined) throw new Error(`could not start ${name}`);
    this.pid = this.child.pid;
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      let pending = '';
      stream.on('data', (b: Buffer) => {
        log.write(b);
        pending += b.toString();
        const parts = pending.split('\n');
        pending = parts.pop() ?? '';
        for (const text of parts) {
          if (!text.trim()) continue;
          try {
            this.lines.push(JSON.parse(text) as LogLine);
          } catch {
            this.lines.push({ msg: text, raw: true });
          }
        }
        if (this.lines.length > 3000) this.lines.splice(0, 1000);
        for (const w of [...this.#waiters]) w();
      });
    }
    this.exited = new Promise((resolve) => this.child.on('exit', () => resolve()));
    this.child.on('close', () => log.end());
    void this.exited.then(() => {
      for (const w of [...this.#waiters]) w();
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  waitFor(match: (l: LogLine) => boolean, what: string, ms: number): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines.find(match);
        if (found) return finish(() => resolve(found));
        if (!this.running) return finish(() => reject(new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}:\n${this.tail()}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`${this.name}: no ${what} within ${ms} ms:\n${this.tail()}`))), ms);
      const finish = (f: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        f();
      };
      this.#waiters.add(check);
      check();
    });
  }

  tail(n = 15): string {
    return this.lines
      .slice(-n)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }
}

function run(argv: readonly string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: plainEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => resolve({ code: 127, stdout, stderr: stderr + e.message }));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

async function must(argv: readonly string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** The environment without proxy settings (the apps call their peers by name, captured by iptables). */
function plainEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(https?|all|no)_proxy$/i.test(k)) delete env[k];
  return { ...env, ...extra };
}

interface Pod {
  name: string;
  netns: string;
  address: string;
}

/** Everything made, in the order made; removed in reverse. */
interface Made {
  namespaces: string[];
  rootLinks: string[];
  etcDirs: string[];
  processes: PodProcess[];
}

/** Removes what `made` records, synchronously (exit hooks cannot wait). Best effort, never throws. */
function removeSync(made: Made): void {
  for (const p of made.processes) {
    try {
      if (p.running) process.kill(p.pid, 'SIGKILL');
    } catch {}
  }
  for (const ns of made.namespaces) {
    // Anything still inside (a grandchild) is killed with its namespace's processes.
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    }
  }
  for (const link of made.rootLinks) spawnSync('ip', ['link', 'del', link], { stdio: 'ignore' });
  for (const ns of [...made.namespaces].reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  for (const d of made.etcDirs) rmSync(d, { recursive: true, force: true });
}

/** A /24 in 10.241.0.0/16 the host has no address or route in. */
async function freeSubnet(): Promise<string> {
  const used = (await must(['ip', '-4', '-o', 'addr'])) + (await must(['ip', '-4', 'route']));
  for (let i = 0; i < 50; i++) {
    const n = 1 + Math.floor(Math.random() * 254);
    if (!used.includes(`10.241.${n}.`) && !/10\.241\.0\.0\/16/.test(used)) return `10.241.${n}`;
  }
  throw new Error('no free /24 in 10.241.0.0/16 on this host');
}

async function until(check: () => Promise<boolean>, what: () => string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(what());
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface NetnsDriver extends BookinfoDriver {
  readonly stateDir: string;
  readonly pods: readonly Pod[];
}

export async function startNetnsDriver(o: { onProgress?: (component: string, text: string) => void } = {}): Promise<NetnsDriver> {
  const progress = o.onProgress ?? (() => {});
  const id = randomBytes(2).toString('hex');
  const made: Made = { namespaces: [], rootLinks: [], etcDirs: [], processes: [] };
  const exitHook = () => removeSync(made);
  const signalHook = (signal: NodeJS.Signals) => {
    removeSync(made);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', exitHook);
  process.once('SIGINT', signalHook);
  process.once('SIGTERM', signalHook);
  const unhook = () => {
    process.off('exit', exitHook);
    process.off('SIGINT', signalHook);
    process.off('SIGTERM', signalHook);
  };
  const iptablesBefore = await iptablesRoot();
  const stateDir = await mkdtemp(join(tmpdir(), 'weft-e2e-bookinfo-netns-'));
  await chmod(stateDir, 0o755);
  const configDir = join(stateDir, 'config');
  const caDir = join(stateDir, 'ca');
  const logDir = join(stateDir, 'logs');
  for (const d of [configDir, caDir, logDir]) await mkdir(d, { mode: 0o755 });
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>> | undefined;
  let stopped = false;
  const listeningBefore = await run(['ss', '-ltnH']).then((r) => r.stdout);
  let hostAddress = '';
  const hostLinkName = `wbi${id}`;
  const subnetOf = (a: string) => a.split('.').slice(0, 3).join('.');

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // SIGTERM first (proxies drain, spans are flushed), then whatever is left goes with removeSync.
    for (const p of made.processes) if (p.running) p.child.kill('SIGTERM');
    await Promise.race([Promise.all(made.processes.map((p) => p.exited)), new Promise((r) => setTimeout(r, 5000))]);
    removeSync(made);
    await Promise.all(made.processes.map((p) => p.exited));
    await otlp?.close();
    unhook();
  };

  try {
    const subnet = await freeSubnet();
    hostAddress = `${subnet}.1`;
    const bridgeNs = `wbi-br-${id}`;
    const hostLink = hostLinkName;

    // The topology: the local one, each workload at its pod address.
    const loaded = await loadPaths(defaultTopology, { registry: defaultKindRegistry(), defaultNamespace: 'default' });
    const configs = loaded.resources.filter((r) => r.config).map((r) => r.config!);
    const lastOctet = (a: string) => a.split('.').pop()!;
    const moved = configs.map((c) => {
      const spec = c.spec as { address?: string };
      return c.kind === 'WorkloadEntry' && spec.address ? { ...c, spec: { ...spec, address: `${subnet}.${lastOctet(spec.address)}` } } : c;
    });
    const workloads = workloadsOf(moved);
    const ingressIp = `${subnet}.9`;
    const pods: Pod[] = [
      { name: 'client', netns: `wbi-client-${id}`, address: `${subnet}.2` },
      { name: 'istio-ingressgateway', netns: `wbi-ingress-${id}`, address: ingressIp },
      ...workloads.map((w) => ({ name: w.name, netns: `wbi-${w.name}-${id}`, address: w.address })),
    ];

    // Network: the bridge, the host's link to it, a veth per pod.
    await must(['ip', 'netns', 'add', bridgeNs]);
    made.namespaces.push(bridgeNs);
    await must(['ip', '-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await must(['ip', '-n', bridgeNs, 'link', 'set', 'br0', 'up']);
    await must(['ip', 'link', 'add', hostLink, 'type', 'veth', 'peer', 'name', 'host', 'netns', bridgeNs]);
    made.rootLinks.push(hostLink);
    await must(['ip', '-n', bridgeNs, 'link', 'set', 'host', 'master', 'br0', 'up']);
    await must(['ip', 'addr', 'add', `${hostAddress}/24`, 'dev', hostLink]);
    await must(['ip', 'link', 'set', hostLink, 'up']);
    const hosts = ['127.0.0.1\tlocalhost', '::1\tlocalhost', `${hostAddress}\tistiod.istio-system.svc istiod`];
    for (const w of workloads) {
      for (const host of w.services) {
        const short = host.split('.')[0]!;
        hosts.push(`${w.address}\t${short} ${short}.${w.namespace} ${short}.${w.namespace}.svc ${host}`);
      }
    }
    for (const p of pods) hosts.push(`${p.address}\t${p.name}`);
    for (const [i, pod] of pods.entries()) {
      await must(['ip', 'netns', 'add', pod.netns]);
      made.namespaces.push(pod.netns);
      const dir = join('/etc/netns', pod.netns);
      made.etcDirs.push(dir);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'hosts'), `${hosts.join('\n')}\n`);
      await writeFile(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
      await must(['ip', '-n', bridgeNs, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.netns]);
      await must(['ip', '-n', bridgeNs, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
      await must(['ip', '-n', pod.netns, 'link', 'set', 'lo', 'up']);
      await must(['ip', '-n', pod.netns, 'addr', 'add', `${pod.address}/24`, 'dev', 'eth0']);
      await must(['ip', '-n', pod.netns, 'link', 'set', 'eth0', 'up']);
    }
    progress('network', `${pods.length} pods on ${subnet}.0/24 (bridge in ${bridgeNs}, host ${hostAddress} on ${hostLink})`);

    // Config: the topology at the pod addresses, the gateway's service (port 80 -> 8080), the Gateway.
    const envelope = (c: (typeof moved)[number]) => {
      const metadata: Record<string, unknown> = { name: c.metadata.name, namespace: c.metadata.namespace };
      if (c.metadata.labels && Object.keys(c.metadata.labels).length > 0) metadata.labels = c.metadata.labels;
      return toYaml({ apiVersion: c.apiVersion, kind: c.kind, metadata, spec: c.spec });
    };
    const ingress = { name: 'istio-ingressgateway', namespace: 'istio-system', address: ingressIp, serviceAccount: 'istio-ingressgateway', labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' }, httpPort: 8080 };
    await writeFile(join(configDir, 'topology.yaml'), [...moved, ...ingressConfigs(ingress)].map(envelope).join('---\n'));
    const gateway = hasNetworking('bookinfo-gateway.yaml') ? networking('bookinfo-gateway.yaml') : defaultInitialConfig[0]!;
    await copyFile(gateway, join(configDir, basename(gateway)));

    otlp = await startOtlpReceiver(hostAddress);
    const meshConfig = join(stateDir, 'mesh-config.yaml');
    await writeFile(meshConfig, tracingMeshConfig(hostAddress, otlp.httpPort));

    // The CA's root (weftd serves it) and a bootstrap token per service account, readable by UID 1337.
    const { CertificateAuthority } = await import('@weft/citadel');
    const ca = await CertificateAuthority.open(caDir, { logger: silentLogger });
    const tokens = new Map<string, string>();
    const tokenFor = async (namespace: string, sa: string) => {
      const file = join(stateDir, `${namespace}.${sa}.token`);
      if (!tokens.has(file)) {
        await writeFile(file, ca.issueBootstrapToken(namespace, sa, 3600), { mode: 0o644 });
        tokens.set(file, file);
      }
      return file;
    };

    const start = (name: string, argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const p = new PodProcess(name, argv, plainEnv(env), join(logDir, `${name.replace(/\W+/g, '-')}.log`));
      made.processes.push(p);
      return p;
    };
    const inPod = (pod: Pod, argv: string[], uid?: number) => ['ip', 'netns', 'exec', pod.netns, ...(uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--']), ...argv];

    const weftd = start('weftd', [process.execPath, bins.weftd, '--config-dir', configDir, '--ca-dir', caDir, '--listen-address', hostAddress, '--xds-port', 'off', '--ca-port', '0', '--monitoring-port', '0', '--mesh-config', meshConfig]);
    const ready = await weftd.waitFor((l) => l.msg === 'weftd ready', 'weftd ready', 30_000);
    const ports = { ca: Number(ready.caPort), monitoring: Number(ready.monitoringPort) };
    progress('weftd', `xDS and CA over TLS ${hostAddress}:${ports.ca}, debug http://${hostAddress}:${ports.monitoring}/debug`);
    const state: MeshState = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      stateDir,
      configDir,
      caDir,
      weftd: { pid: weftd.pid, caPort: ports.ca, monitoringPort: ports.monitoring, logFile: join(logDir, 'weftd.log'), address: hostAddress },
      proxies: [],
      apps: [],
    };
    await writeState(state);

    // xDS over TLS to the CA's port, authenticated with the workload's certificate (or token), as `weftctl up` does.
    const caFlags = async (namespace: string, sa: string) => ['--xds-tls', '--ca-address', `${hostAddress}:${ports.ca}`, '--ca-server-name', 'istiod.istio-system.svc', '--ca-root-cert', join(caDir, 'root-cert.pem'), '--ca-token-file', await tokenFor(namespace, sa)];
    const labels = (l: Record<string, string>) =>
      Object.entries(l)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
    const proxyEnv = { OTEL_BSP_SCHEDULE_DELAY: spanExportDelayMs };

    const startWorkload = async (w: (typeof workloads)[number]) => {
      const pod = pods.find((p) => p.name === w.name)!;
      const rules = await run(inPod(pod, [process.execPath, bins.iptables, ...istioInitArgs]));
      if (rules.code !== 0) throw new Error(`weft-iptables in ${pod.netns} failed: ${rules.stderr}`);
      const app = start(`${w.name} app`, inPod(pod, [process.execPath, bins.bookinfo, '--service', w.app, '--version', w.version, '--address', '0.0.0.0', '--port', '9080', '--drain-ms', '500']), { HOSTNAME: w.name });
      const sidecar = start(
        `${w.name} sidecar`,
        inPod(
          pod,
          [
            process.execPath,
            bins.proxy,
            '--mode',
            'capture',
            '--xds-address',
            `${hostAddress}:${ports.ca}`,
            '--ip',
            pod.address,
            '--pod',
            w.name,
            '--namespace',
            w.namespace,
            '--labels',
            labels(w.labels),
            '--service-account',
            w.serviceAccount,
            '--workload-name',
            w.name,
            ...(await caFlags(w.namespace, w.serviceAccount)),
            '--drain-ms',
            '500',
          ],
          1337,
        ),
        proxyEnv,
      );
      await app.waitFor((l) => l.msg === 'listening', 'listening', 30_000);
      await sidecar.waitFor((l) => l.msg === 'proxy ready', 'proxy ready', 60_000);
      progress(w.name, `app on 0.0.0.0:9080 and sidecar (capture, UID 1337) in ${pod.netns} at ${pod.address}`);
    };
    const startIngress = async () => {
      const pod = pods.find((p) => p.name === ingress.name)!;
      const gw = start(
        'ingress gateway',
        inPod(pod, [
          process.execPath,
          bins.ingress,
          '--xds-address',
          `${hostAddress}:${ports.ca}`,
          '--mode',
          'local',
          '--ip',
          pod.address,
          '--pod',
          ingress.name,
          '--namespace',
          ingress.namespace,
          '--labels',
          labels(ingress.labels),
          '--service-account',
          ingress.serviceAccount,
          '--workload-name',
          ingress.name,
          '--bind-address',
          '0.0.0.0',
          '--health-address',
          '0.0.0.0',
          ...(await caFlags(ingress.namespace, ingress.serviceAccount)),
          '--drain-ms',
          '500',
        ]),
        proxyEnv,
      );
      await gw.waitFor((l) => l.msg === 'proxy ready', 'proxy ready', 60_000);
      progress('ingress', `gateway in ${pod.netns} at ${pod.address}`);
    };
    await Promise.all([startIngress(), ...workloads.map(startWorkload)]);

    const expected = [...workloads.map((w) => nodeId({ type: 'sidecar', ip: w.address, pod: w.name, namespace: w.namespace })), nodeId({ type: 'router', ip: ingressIp, pod: ingress.name, namespace: ingress.namespace })];
    let last = '';
    await until(
      async () => {
        const r = await fetch(`http://${hostAddress}:${ports.monitoring}/debug/syncz`);
        const syncz = (await r.json()) as { id: string; types: Record<string, { status: string }> }[];
        last = JSON.stringify(syncz.map((e) => [e.id, e.types]));
        return expected.every((id) => {
          const e = syncz.find((x) => x.id === id);
          return e !== undefined && Object.keys(e.types).length > 0 && Object.values(e.types).every((t) => t.status === 'ACKED');
        });
      },
      () => `not every proxy synced: ${last}`,
      60_000,
    );
    const url = `http://${ingressIp}:8080/productpage`;
    let answer = '';
    await until(
      async () => {
        const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        const body = await r.text();
        answer = `${r.status}: ${body.slice(0, 200)}`;
        return r.status === 200 && body.includes('Book Reviews');
      },
      () => `${url} did not answer with the product page (last: ${answer})`,
      60_000,
    );
    progress('ready', url);

    const podOf = (workload: string) => {
      const p = pods.find((x) => x.name === workload);
      if (!p) throw new Error(`no pod ${workload}; there are ${pods.map((x) => x.name).join(', ')}`);
      return p;
    };
    const io = { stateDir, namespace: 'default', waitMs: 20_000 };
    const client = podOf('client');

    return {
      name: 'netns',
      stateDir,
      pods,
      namespace: 'default',
      productpageUrl: url,
      otlp,
      async apply(files) {
        await runWeftctl(`weftctl apply -f ${files.join(' -f ')}`, (x) => apply({ ...io, files }, x));
      },
      async delete(files) {
        await runWeftctl(`weftctl delete -f ${files.join(' -f ')}`, (x) => remove({ ...io, files }, x));
      },
      async proxyStats(workload) {
        // 15090 listens on the pod's 0.0.0.0 and is excluded from capture (istio-init -d 15090,...).
        const r = await fetch(`http://${podOf(workload).address}:15090/stats/prometheus`, { signal: AbortSignal.timeout(10_000) });
        if (r.status !== 200) throw new Error(`${workload}'s 15090 answered ${r.status}`);
        return r.text();
      },
      async plaintextCall(workload, path): Promise<PlaintextAnswer> {
        // From the client pod, which has no sidecar: curl straight to the pod's service port.
        const r = await run(inPod(client, ['curl', '-sS', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}', `http://${podOf(workload).address}:9080${path}`]));
        if (r.code !== 0) return { ok: false, error: `curl exit ${r.code}: ${r.stderr.trim()}` };
        const i = r.stdout.lastIndexOf('\n');
        return { ok: true, status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
      },
      stop,
      async leftovers() {
        const left: string[] = [];
        const netns = await must(['ip', 'netns', 'list']);
        for (const ns of made.namespaces) if (netns.split('\n').some((l) => l.split(' ')[0] === ns)) left.push(`network namespace ${ns}`);
        const links = await must(['ip', '-o', 'link']);
        for (const l of made.rootLinks) if (links.includes(` ${l}@`) || links.includes(` ${l}:`)) left.push(`link ${l}`);
        for (const d of made.etcDirs) if (existsSync(d)) left.push(`directory ${d}`);
        for (const p of made.processes) if (p.running) left.push(`process ${p.pid} (${p.name})`);
        const listening = (await must(['ss', '-ltnpH'])).split('\n').filter((l) => l.includes(`${hostAddress}:`) && !listeningBefore.includes(l));
        for (const l of listening) left.push(`listening: ${l.trim()}`);
        const addrs = await must(['ip', '-4', '-o', 'addr']);
        if (addrs.includes(`${hostAddress}/`)) left.push(`address ${hostAddress} on the host`);
        // Rules are made only inside the pods' namespaces; none of ours may show up on the host.
        const before = new Set(iptablesBefore.split('\n'));
        const ours = (l: string) => l.includes(`${subnetOf(hostAddress)}.`) || l.includes(hostLinkName) || /ISTIO|--uid-owner 1337/.test(l);
        for (const l of (await iptablesRoot()).split('\n')) if (!before.has(l) && ours(l)) left.push(`host iptables rule: ${l}`);
        if (left.length === 0) await rm(stateDir, { recursive: true, force: true });
        return left;
      },
    };
  } catch (e) {
    await stop();
    console.error(`netns driver: start failed; logs in ${stateDir}/logs`);
    throw e;
  }
}

/**
 * The root namespace's iptables rules (IPv4 and IPv6), without counters and comments, and without
 * the chains a Kubernetes node on this host rewrites on its own (kube-proxy's KUBE-*, the CNI
 * plugin's CNI-*, kube-local's KUBELOCAL-*: the Kubernetes tier may run beside this suite).
 */
async function iptablesRoot(): Promise<string> {
  const out: string[] = [];
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    const r = await run([tool]);
    out.push(
      ...r.stdout
        .split('\n')
        .filter((l) => l && !l.startsWith('#') && !/\b(KUBE|CNI|KUBELOCAL)-/.test(l))
        .map((l) => l.replace(/\[\d+:\d+\]/g, '')),
    );
  }
  return out.join('\n');
}
