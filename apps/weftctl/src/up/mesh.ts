// A whole mesh on one machine, without root (local mode, DESIGN.md §4): weftd (pilot and the CA),
// one application process and one weft-proxy sidecar per workload of the local topology (each
// workload on its own loopback address, the application on 127.0.0.1 at a free port behind its
// sidecar), and an ingress gateway. `weftctl up` runs it; the end-to-end suite's local driver
// starts the same thing through `startLocalMesh`.
import { nodeId } from '@weft/mesh';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, silentLogger } from '@weft/model';
import { type ObjectToWrite, originOf, prepareConfigDir, readAndValidate, upOrigin, writeObjects } from './config-dir.ts';
import { startDashboard, writeTracingMeshConfig } from './dashboard.ts';
import { type LogLine, stopGroups, stopPids } from './processes.ts';
import { type PrometheusAddon, startPrometheus } from './prometheus.ts';
import { type AppState, isMeshProcess, markedProcesses, type MeshState, meshEnvVar, meshOwnerAlive, processStart, type ProxyState, readState, type RunState, statePids, stateFile, writeState } from './state.ts';
import { canBind, freePort, type ListenAddress, Supervised, type SupervisionEvent } from './supervisor.ts';
import { ingressConfigs, moveAddress, withAddressesMoved, type Workload, workloadsOf } from './topology.ts';

/** The repository this module lives in: bins and example files are found from here. */
export const repoRoot = resolve(fileURLToPath(new URL('../../../../', import.meta.url)));

const bins = {
  weftd: join(repoRoot, 'apps/weftd/bin/weftd.js'),
  proxy: join(repoRoot, 'apps/proxy/bin/weft-proxy.js'),
  ingress: join(repoRoot, 'apps/ingress/bin/weft-ingress.js'),
  bookinfo: join(repoRoot, 'examples/bookinfo/apps/bin/bookinfo.js'),
  dashboard: join(repoRoot, 'apps/dashboard/bin/weft-dashboard.js'),
};

export const defaultTopology = [join(repoRoot, 'examples/bookinfo/platform/local/bookinfo.yaml')];
export const defaultInitialConfig = [join(repoRoot, 'examples/bookinfo/networking/bookinfo-gateway.yaml')];

export interface LocalMeshOptions {
  /** Where config, CA, tokens, logs and mesh.json live. */
  stateDir: string;
  /** Files declaring the services and their instances (ServiceEntry + WorkloadEntry). */
  topology?: readonly string[];
  /** Config applied at start besides the topology (the BookInfo Gateway and its VirtualService). */
  initialConfig?: readonly string[];
  /** Move every workload address into this /24 (`127.0.5`), so that two meshes can run side by side. */
  loopbackNet?: string;
  /** The ingress gateway's HTTP port on 127.0.0.1 (Gateway port 80 is translated to it); default 8080 when free, else any free port; 0: any free port. */
  ingressPort?: number;
  /** Where the ingress gateway's listeners bind instead of 127.0.0.1 (the e2e suite: the gateway's own loopback address, so its 8080 is free). */
  ingressAddress?: string;
  /** Bound for the whole start, in milliseconds (default 120000). */
  timeoutMs?: number;
  /** Log level of weftd and the proxies (default info). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Istio MeshConfig YAML for weftd (`weftd --mesh-config`): tracing, access logs... */
  meshConfig?: string;
  /** Told about each component as it comes up. */
  onProgress?: (component: string, text: string) => void;
  /** Aborting stops whatever has started; the start then fails. */
  signal?: AbortSignal;
  /** Start with an empty config directory instead of keeping what `weftctl apply` added in earlier runs. */
  fresh?: boolean;
  /**
   * Also open weftd's plaintext xDS port, where any local process may connect unauthenticated
   * (proxyless gRPC clients, debugging). Off by default; the mesh's proxies use the TLS port either way.
   */
  plaintextXds?: boolean;
  /** Start the addons (Prometheus when installed, the dashboard) with the mesh; default true. The start then also waits (at most 20 s) for Prometheus to scrape every target. */
  addons?: boolean;
}

export interface LocalMesh {
  readonly state: MeshState;
  /** http://127.0.0.1:<port>/productpage */
  readonly url: string;
  /** Told when a component exits while the mesh runs (not during stop); it is restarted (see onSupervision). */
  onExit(listener: (component: string, how: string, logFile: string) => void): void;
  /** Told about every exit, restart, crash loop and busy port of a component while the mesh runs. */
  onSupervision(listener: (e: SupervisionEvent) => void): void;
  /** Objects `weftctl apply` added in an earlier run, kept in the config directory. */
  readonly keptConfig: readonly string[];
  /** Stops every process (SIGTERM, then SIGKILL after `graceMs`, default 8000) and removes mesh.json. */
  stop(graceMs?: number): Promise<{ killed: string[] }>;
}

const ingressName = 'istio-ingressgateway';
const ingressNamespace = 'istio-system';
const ingressLabels = { app: 'istio-ingressgateway', istio: 'ingressgateway' };

function labelsFlag(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

async function readConfigs(files: readonly string[], what: string): Promise<{ configs: Config[]; objects: ObjectToWrite[] }> {
  const checked = await readAndValidate(files, 'default');
  if (!checked.valid) {
    const lines = checked.reports.flatMap((r) => r.errors.map((p) => `${p.file ?? r.file}:${p.line ?? r.line}: ${p.message}`));
    throw new Error(`the ${what} (${files.join(', ')}) is not valid:\n  ${lines.join('\n  ')}`);
  }
  const objects: ObjectToWrite[] = [];
  for (const r of checked.resources) if (r.config) objects.push({ config: r.config, bodyAtTopLevel: r.kind?.bodyAtTopLevel === true, origin: upOrigin(originOf(r)) });
  return { configs: objects.map((o) => o.config), objects };
}

/** Waits until `check` resolves true, polling every `everyMs`; throws with `what` after `ms`. */
async function until(check: () => Promise<boolean>, what: () => string, ms: number, everyMs = 200, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (signal?.aborted) throw new Error('interrupted');
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(what());
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

interface SynczEntry {
  id: string;
  types: Record<string, { status: string }>;
}

/** Stops what the mesh in `s` left running (its components, found by their environment) and forgets it. */
async function stopLeftovers(s: MeshState, stateDir: string, onFound: (count: number) => void = () => {}): Promise<number> {
  const leftovers: number[] = [];
  for (const pid of statePids(s)) if (await isMeshProcess(pid, stateDir)) leftovers.push(pid);
  // Also what mesh.json does not name (restarted just before its owner was killed).
  for (const pid of await markedProcesses(stateDir)) if (!leftovers.includes(pid) && pid !== s.pid) leftovers.push(pid);
  if (leftovers.length > 0) {
    onFound(leftovers.length);
    await stopPids(leftovers, 5000);
  }
  await rm(stateFile(stateDir), { force: true });
  return leftovers.length;
}

/**
 * `weftctl down`: stops the mesh of `stateDir` from another terminal. Its `weftctl up` gets SIGTERM
 * and stops everything it started, as with Ctrl-C; if that process is gone (killed), the
 * components it left are stopped directly. Resolves to what was done.
 */
export async function stopLocalMesh(stateDir: string, graceMs = 20_000): Promise<{ owner: boolean; leftovers: number } | undefined> {
  const dir = resolve(stateDir);
  const s = await readState(dir);
  if (!s) return undefined;
  let owner = false;
  if (s.pid !== process.pid && meshOwnerAlive(s)) {
    owner = true;
    process.kill(s.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (meshOwnerAlive(s) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (meshOwnerAlive(s)) process.kill(s.pid, 'SIGKILL');
  }
  const leftovers = await stopLeftovers(s, dir);
  return { owner, leftovers };
}

/** Starts the mesh and resolves once every proxy is synced and the product page answers through the ingress gateway. */
export async function startLocalMesh(o: LocalMeshOptions): Promise<LocalMesh> {
  const started = Date.now();
  const timeoutMs = o.timeoutMs ?? 120_000;
  const remaining = () => Math.max(1000, timeoutMs - (Date.now() - started));
  const progress = o.onProgress ?? (() => {});
  const stateDir = resolve(o.stateDir);
  const configDir = join(stateDir, 'config');
  const caDir = join(stateDir, 'ca');
  const tokenDir = join(stateDir, 'tokens');
  const logDir = join(stateDir, 'logs');

  // One mesh per state directory; what a killed `weftctl up` left behind is stopped first.
  await mkdir(stateDir, { recursive: true });
  const previous = await readState(stateDir);
  if (previous && previous.pid !== process.pid && meshOwnerAlive(previous)) {
    throw new Error(`a local mesh is already running from ${stateDir} (weftctl up, pid ${previous.pid}); stop it with Ctrl-C or \`kill ${previous.pid}\`, or use another --state-dir`);
  }
  if (previous) await stopLeftovers(previous, stateDir, (count) => progress('cleanup', `stopping ${count} processes a previous \`weftctl up\` left running`));
  await rm(logDir, { recursive: true, force: true });
  await Promise.all([configDir, caDir, tokenDir, logDir].map((d) => mkdir(d, { recursive: true })));

  const pidStart = processStart(process.pid);
  const state: MeshState = { pid: process.pid, ...(pidStart ? { pidStart } : {}), startedAt: new Date(started).toISOString(), stateDir, configDir, caDir, proxies: [], apps: [] };
  const supervised: Supervised[] = [];
  let stopping = false;
  const exitListeners: ((component: string, how: string, logFile: string) => void)[] = [];
  const supervisionListeners: ((e: SupervisionEvent) => void)[] = [];
  const env = { ...process.env, [meshEnvVar]: stateDir };
  // One write at a time: components come up concurrently.
  let saving: Promise<void> = Promise.resolve();
  let prometheus: PrometheusAddon | undefined;
  // Prometheus's target files follow mesh.json.
  const save = () => (saving = saving.then(() => writeState(state)).then(() => prometheus?.update(state)));

  /**
   * Starts a component under supervision. `args` is read again at each restart (ports first given
   * as 0 are fixed by then); `entry` is its record in mesh.json once it has one; `listens` is
   * checked before a restart.
   */
  const spawn = (
    name: string,
    args: () => string[],
    file: string,
    how: { ready: (l: LogLine) => boolean; entry: () => { pid: number; run?: RunState } | undefined; listens?: () => ListenAddress[]; env?: NodeJS.ProcessEnv; command?: string },
  ): Supervised => {
    if (o.signal?.aborted) throw new Error('interrupted');
    // An addon still preparing when a failed start stopped everything must not start afterwards.
    if (stopping) throw new Error('the mesh is stopping');
    const s = new Supervised({ name, args, logFile: join(logDir, file), env: { ...env, ...how.env }, ready: how.ready, ...(how.listens ? { listens: how.listens } : {}), ...(how.command ? { command: how.command } : {}) });
    supervised.push(s);
    s.onEvent((e) => {
      const entry = how.entry();
      if (entry) {
        entry.pid = s.pid;
        entry.run = s.status();
        void save();
      }
      if (stopping) return;
      if (e.type === 'exited') for (const l of exitListeners) l(name, e.reason, s.logFile);
      for (const l of supervisionListeners) l(e);
    });
    s.start();
    return s;
  };
  const stopAll = async (graceMs: number) => {
    const running = supervised.flatMap((s) => s.stop() ?? []);
    const r = await stopGroups(running, graceMs);
    for (const s of supervised) s.stopped();
    return r;
  };

  const stop = async (graceMs = 8000): Promise<{ killed: string[] }> => {
    stopping = true;
    const r = await stopAll(graceMs);
    await saving.catch(() => undefined);
    const current = await readState(stateDir).catch(() => undefined);
    if (!current || current.pid === process.pid) await rm(stateFile(stateDir), { force: true });
    return r;
  };

  o.signal?.addEventListener('abort', () => void stopAll(3000), { once: true });
  try {
    await save();
    // The topology, moved to its loopback net, and the ingress gateway's own service.
    const topology = await readConfigs(o.topology ?? defaultTopology, 'local topology');
    const topologyConfigs = withAddressesMoved(topology.configs, o.loopbackNet);
    const workloads = workloadsOf(topologyConfigs);
    if (workloads.length === 0) throw new Error(`the local topology (${(o.topology ?? defaultTopology).join(', ')}) declares no WorkloadEntry with an address`);
    const ingressIp = moveAddress('127.0.0.9', o.loopbackNet ?? '127.0.0');
    if (workloads.some((w) => w.address === ingressIp)) throw new Error(`the ingress gateway's address ${ingressIp} is also a workload's`);

    // Every address:port a sidecar takes must be free: a clear message instead of a proxy failing later.
    // The same lists are checked before a proxy is restarted.
    const proxyPorts = (address: string) => [
      { address, port: 15000, what: 'admin' },
      { address, port: 15020, what: 'merged metrics' },
      { address, port: 15021, what: 'health' },
      { address, port: 15090, what: 'proxy stats' },
    ];
    const sidecarListens = (w: Workload): ListenAddress[] => [
      ...w.ports.map((p) => ({ address: w.address, port: p.targetPort, what: 'service port' })),
      { address: w.address, port: 15001, what: 'outbound' },
      ...proxyPorts(w.address),
    ];
    const busy: string[] = [];
    for (const l of [...workloads.flatMap(sidecarListens), ...proxyPorts(ingressIp)]) if (!(await canBind(l.address, l.port))) busy.push(`${l.address}:${l.port}`);
    if (busy.length > 0) {
      throw new Error(`addresses the mesh needs are in use: ${busy.join(', ')}; is another mesh running? (\`weftctl up --loopback-net 127.0.5\` moves every workload to 127.0.5.x)`);
    }
    const gatewayAddress = o.ingressAddress ?? '127.0.0.1';
    let httpPort = o.ingressPort ?? 8080;
    if (o.ingressPort === undefined && !(await canBind(gatewayAddress, 8080))) httpPort = 0;
    if (httpPort === 0) httpPort = await freePort(gatewayAddress);
    else if (!(await canBind(gatewayAddress, httpPort))) throw new Error(`${gatewayAddress}:${httpPort} is in use; choose another --port (0 picks a free one)`);

    const initial = await readConfigs(o.initialConfig ?? defaultInitialConfig, 'initial config');
    const ingressObjects: ObjectToWrite[] = ingressConfigs({ name: ingressName, namespace: ingressNamespace, address: ingressIp, serviceAccount: ingressName, labels: ingressLabels, httpPort }).map((config) => ({
      config,
      origin: upOrigin(`the ingress gateway: Gateway port 80 -> 127.0.0.1:${httpPort}`),
    }));
    const moved = new Map(topology.objects.map((obj, i) => [obj, topologyConfigs[i]!]));
    const upObjects = [...topology.objects.map((obj) => ({ ...obj, config: moved.get(obj)! })), ...ingressObjects, ...initial.objects];
    // What `weftctl apply` added in earlier runs stays; up's own objects are written afresh.
    const { kept, removed } = await prepareConfigDir(configDir, upObjects, o.fresh === true);
    await writeObjects(configDir, upObjects);
    if (removed > 0) progress('config', `--fresh: removed ${removed} object${removed === 1 ? '' : 's'} applied in an earlier run`);
    if (kept.length > 0) {
      const names = kept.length > 6 ? `${kept.slice(0, 5).join(', ')} and ${kept.length - 5} more` : kept.join(', ');
      progress('config', `kept ${kept.length} object${kept.length === 1 ? '' : 's'} applied in an earlier run (${names}); \`weftctl up --fresh\` starts without them`);
    }

    // The CA's root in the state directory (kept across runs), and a bootstrap token per identity.
    const { CertificateAuthority } = await import('@weft/citadel');
    const ca = await CertificateAuthority.open(caDir, { logger: silentLogger });
    const tokens = new Map<string, string>();
    const tokenFor = async (namespace: string, sa: string) => {
      const key = `${namespace}.${sa}`;
      let file = tokens.get(key);
      if (!file) {
        file = join(tokenDir, `${key}.token`);
        await writeFile(file, ca.issueBootstrapToken(namespace, sa, 24 * 3600), { mode: 0o600 });
        tokens.set(key, file);
      }
      return file;
    };
    progress('ca', `root certificate in ${caDir}`);

    // Prometheus starts beside the mesh and finds the proxies as they come up; it is waited for at the end.
    const addons =
      o.addons === false
        ? undefined
        : startPrometheus({ stateDir, state, spawn, save, progress, timeoutMs: remaining() }).then(
            (p) => {
              prometheus = p;
            },
            (e: Error) => progress('prometheus', `could not start, the mesh runs without it: ${e.message}`),
          );
    const logLevel = o.logLevel ?? 'info';
    // Local mode's trust boundary: every port of weftd and the proxies serves only this user's processes.
    const ownerFlags = process.getuid ? ['--owner-uid', String(process.getuid())] : [];
    // The dashboard's OTLP port is weftd's tracing provider when the user gave no mesh config: picked
    // before weftd starts, kept across restarts of either.
    const otlpPort = o.addons === false ? undefined : await freePort();
    const meshConfig = o.meshConfig ? resolve(o.meshConfig) : otlpPort !== undefined ? await writeTracingMeshConfig(stateDir, otlpPort) : undefined;
    // Ports are picked by weftd at its first start (0) and kept for its restarts: the proxies have them.
    const weftdPort = (p: number | undefined) => String(p !== undefined && Number.isInteger(p) ? p : 0);
    const weftd = spawn(
      'weftd',
      () => [bins.weftd, '--config-dir', configDir, '--ca-dir', caDir, '--xds-port', o.plaintextXds ? weftdPort(state.weftd?.xdsPort) : 'off', '--ca-port', weftdPort(state.weftd?.caPort), '--monitoring-port', weftdPort(state.weftd?.monitoringPort), '--log-level', logLevel, ...ownerFlags, ...(meshConfig ? ['--mesh-config', meshConfig] : [])],
      'weftd.log',
      {
        ready: (l) => l.msg === 'weftd ready',
        entry: () => state.weftd,
        listens: () =>
          state.weftd
            ? [
                ...(state.weftd.xdsPort !== undefined ? [{ address: '127.0.0.1', port: state.weftd.xdsPort, what: 'plaintext xDS' }] : []),
                { address: '127.0.0.1', port: state.weftd.caPort, what: 'CA and xDS over TLS' },
                { address: '127.0.0.1', port: state.weftd.monitoringPort, what: 'monitoring' },
              ].filter((l) => Number.isInteger(l.port) && l.port > 0)
            : [],
      },
    );
    const weftdReady = weftd.waitFor((l) => l.msg === 'weftd ready', 'it was ready', remaining()).then(async (l) => {
      state.weftd = {
        pid: weftd.pid,
        ...(l.xdsPort !== undefined ? { xdsPort: Number(l.xdsPort) } : {}),
        caPort: Number(l.caPort),
        monitoringPort: Number(l.monitoringPort),
        logFile: weftd.logFile,
        run: weftd.status(),
      };
      await save();
      const plaintext = l.xdsPort !== undefined ? `, plaintext xDS 127.0.0.1:${l.xdsPort} (unauthenticated)` : '';
      progress('weftd', `xDS 127.0.0.1:${l.caPort} (TLS, authenticated; and the CA)${plaintext}, debug http://127.0.0.1:${l.monitoringPort}/debug`);
      return state.weftd;
    });
    // The dashboard reads weftd (and Prometheus, the proxies) from mesh.json: it starts once weftd serves.
    const dashboard =
      otlpPort === undefined
        ? undefined
        : weftdReady.then(
            () => startDashboard({ bin: bins.dashboard, stateDir, state, spawn, save, progress, otlpPort, tracing: !o.meshConfig, ownerFlags, logLevel, timeoutMs: remaining() }),
            () => undefined,
          );

    const startApp = async (w: Workload): Promise<AppState> => {
      // The port is picked at the first start and kept for restarts: the sidecar forwards to it.
      let a: AppState | undefined;
      const listening = (x: LogLine) => x.msg === 'listening' && x.port !== undefined;
      const app = spawn(
        `${w.name} app`,
        () => [bins.bookinfo, '--service', w.app, '--version', w.version, '--address', '127.0.0.1', '--port', String(a?.port ?? 0), '--http-proxy', `http://${w.address}:15001`, '--drain-ms', '1000'],
        `${w.name}.app.log`,
        { ready: listening, entry: () => a, listens: () => (a ? [{ address: a.address, port: a.port, what: "the application's port, which its sidecar forwards to" }] : []), env: { HOSTNAME: w.name } },
      );
      const l = await app.waitFor(listening, 'it listened', remaining());
      a = { workload: w.name, service: w.app, version: w.version, address: '127.0.0.1', port: Number(l.port), pid: app.pid, logFile: app.logFile, run: app.status() };
      state.apps.push(a);
      await save();
      progress(w.name, `${w.app} ${w.version} listening on 127.0.0.1:${a.port}`);
      return a;
    };

    // Every proxy talks xDS over TLS to the CA's port, authenticated by its certificate (or token), as Istio's on 15012.
    const caFlags = async (namespace: string, sa: string, caPort: number) => [
      '--xds-tls',
      '--ca-address',
      `127.0.0.1:${caPort}`,
      '--ca-root-cert',
      join(caDir, 'root-cert.pem'),
      '--ca-token-file',
      await tokenFor(namespace, sa),
    ];

    const startSidecar = async (w: Workload, app: AppState): Promise<ProxyState> => {
      const d = await weftdReady;
      const args = [
        bins.proxy,
        '--xds-address',
        `127.0.0.1:${d.caPort}`,
        '--mode',
        'local',
        '--ip',
        w.address,
        '--pod',
        w.name,
        '--namespace',
        w.namespace,
        '--labels',
        labelsFlag(w.labels),
        '--service-account',
        w.serviceAccount,
        '--workload-name',
        w.name,
        '--app-address',
        app.address,
        '--app-ports',
        w.ports.map((p) => `${p.targetPort}=${app.port}`).join(','),
        '--admin-address',
        w.address,
        '--admin-port',
        '15000',
        ...(await caFlags(w.namespace, w.serviceAccount, d.caPort)),
        '--drain-ms',
        '1000',
        // weftd runs beside them: after a restart of weftd, reconnect within a second.
        '--xds-max-backoff-ms',
        '1000',
        '--log-level',
        logLevel,
        ...ownerFlags,
      ];
      let p: ProxyState | undefined;
      const proxy = spawn(`${w.name} sidecar`, () => args, `${w.name}.proxy.log`, { ready: (l) => l.msg === 'proxy ready', entry: () => p, listens: () => sidecarListens(w) });
      const admin = await proxy.waitFor((l) => l.msg === 'admin listening', 'its admin port listened', remaining());
      await proxy.waitFor((l) => l.msg === 'proxy ready', 'it was ready', remaining());
      p = {
        type: 'sidecar',
        name: w.name,
        namespace: w.namespace,
        nodeId: nodeId({ type: 'sidecar', ip: w.address, pod: w.name, namespace: w.namespace }),
        address: w.address,
        serviceAccount: w.serviceAccount,
        labels: w.labels,
        pid: proxy.pid,
        adminAddress: w.address,
        adminPort: Number(admin.port),
        ...(admin.healthPort !== undefined ? { healthPort: Number(admin.healthPort) } : {}),
        logFile: proxy.logFile,
        run: proxy.status(),
      };
      state.proxies.push(p);
      await save();
      progress(w.name, `sidecar ready on ${w.address} (${w.ports.map((x) => x.targetPort).join(', ')} -> app; outbound ${w.address}:15001; admin http://${w.address}:${p.adminPort})`);
      return p;
    };

    const startIngress = async (): Promise<void> => {
      const d = await weftdReady;
      const args = [
        bins.ingress,
        '--xds-address',
        `127.0.0.1:${d.caPort}`,
        '--mode',
        'local',
        '--ip',
        ingressIp,
        '--pod',
        ingressName,
        '--namespace',
        ingressNamespace,
        '--labels',
        labelsFlag(ingressLabels),
        '--service-account',
        ingressName,
        '--workload-name',
        ingressName,
        '--bind-address',
        gatewayAddress,
        '--health-address',
        ingressIp,
        '--admin-address',
        ingressIp,
        '--admin-port',
        '15000',
        ...(await caFlags(ingressNamespace, ingressName, d.caPort)),
        '--drain-ms',
        '1000',
        // weftd runs beside them: after a restart of weftd, reconnect within a second.
        '--xds-max-backoff-ms',
        '1000',
        '--log-level',
        logLevel,
        ...ownerFlags,
      ];
      const proxy = spawn('ingress gateway', () => args, 'istio-ingressgateway.log', {
        ready: (l) => l.msg === 'proxy ready',
        entry: () => state.ingress,
        listens: () => [{ address: gatewayAddress, port: httpPort, what: 'the gateway port' }, ...proxyPorts(ingressIp)],
      });
      const admin = await proxy.waitFor((l) => l.msg === 'admin listening', 'its admin port listened', remaining());
      await proxy.waitFor((l) => l.msg === 'proxy ready', 'it was ready', remaining());
      state.ingress = {
        type: 'router',
        name: ingressName,
        namespace: ingressNamespace,
        nodeId: nodeId({ type: 'router', ip: ingressIp, pod: ingressName, namespace: ingressNamespace }),
        address: ingressIp,
        serviceAccount: ingressName,
        labels: ingressLabels,
        pid: proxy.pid,
        adminAddress: ingressIp,
        adminPort: Number(admin.port),
        ...(admin.healthPort !== undefined ? { healthPort: Number(admin.healthPort) } : {}),
        logFile: proxy.logFile,
        httpPort,
        run: proxy.status(),
      };
      await save();
      progress('ingress', `gateway ready: Gateway port 80 on ${gatewayAddress}:${httpPort} (admin http://${ingressIp}:${state.ingress.adminPort})`);
    };

    await Promise.all([weftdReady, startIngress(), ...workloads.map(async (w) => startSidecar(w, await startApp(w)))]);

    // Synced: weftd has every proxy connected and each has ACKed every type it was sent.
    const d = state.weftd!;
    const expected = [...state.proxies.map((p) => p.nodeId), state.ingress!.nodeId];
    let last: SynczEntry[] = [];
    await until(
      async () => {
        const r = await fetch(`http://127.0.0.1:${d.monitoringPort}/debug/syncz`);
        last = (await r.json()) as SynczEntry[];
        return expected.every((id) => {
          const e = last.find((x) => x.id === id);
          return e !== undefined && Object.keys(e.types).length > 0 && Object.values(e.types).every((t) => t.status === 'ACKED');
        });
      },
      () => `not every proxy synced within the time allowed; weftd's /debug/syncz says:\n  ${expected.map((id) => `${id}: ${JSON.stringify(last.find((x) => x.id === id)?.types ?? 'not connected')}`).join('\n  ')}`,
      remaining(),
      200,
      o.signal,
    );
    progress('sync', `all ${expected.length} proxies synced (weftd http://127.0.0.1:${d.monitoringPort}/debug/syncz)`);

    // The page through the ingress gateway, as the user will load it.
    const url = `http://${gatewayAddress}:${httpPort}/productpage`;
    let lastAnswer = 'no answer';
    await until(
      async () => {
        const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        const body = await r.text();
        lastAnswer = `${r.status}: ${body.slice(0, 200)}`;
        return r.status === 200 && body.includes('<html');
      },
      () => `${url} did not answer with the product page (last answer ${lastAnswer})`,
      remaining(),
      300,
      o.signal,
    );
    // From here on, what exits is restarted.
    for (const s of supervised) s.supervise();
    state.weftd!.run = weftd.status();
    for (const a of state.apps) a.run = supervised.find((s) => s.logFile === a.logFile)?.status() ?? a.run;
    for (const p of [...state.proxies, state.ingress!]) p.run = supervised.find((s) => s.logFile === p.logFile)?.status() ?? p.run;
    state.url = url;
    state.readyAt = new Date().toISOString();
    await save();
    await addons;
    await dashboard;
    await prometheus?.ready(20_000, Date.parse(state.readyAt), o.signal);
    return {
      state,
      url,
      keptConfig: kept,
      onExit: (l) => void exitListeners.push(l),
      onSupervision: (l) => void supervisionListeners.push(l),
      stop,
    };
  } catch (e) {
    await stop(3000).catch(() => undefined);
    throw e;
  }
}

