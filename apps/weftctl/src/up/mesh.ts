// A whole mesh on one machine, without root (local mode, DESIGN.md §4): weftd (pilot and the CA),
// one application process and one weft-proxy sidecar per workload of the local topology (each
// workload on its own loopback address, the application on 127.0.0.1 at a free port behind its
// sidecar), and an ingress gateway. `weftctl up` runs it; the end-to-end suite's local driver
// starts the same thing through `startLocalMesh`.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, silentLogger } from '@weft/model';
import { type ObjectToWrite, originOf, readAndValidate, writeObjects } from './config-dir.ts';
import { Component, stopGroups, stopPids } from './processes.ts';
import { type AppState, isMeshProcess, type MeshState, meshEnvVar, meshOwnerAlive, processStart, type ProxyState, readState, statePids, stateFile, writeState } from './state.ts';
import { ingressConfigs, moveAddress, withAddressesMoved, type Workload, workloadsOf } from './topology.ts';

/** The repository this module lives in: bins and example files are found from here. */
export const repoRoot = resolve(fileURLToPath(new URL('../../../../', import.meta.url)));

const bins = {
  weftd: join(repoRoot, 'apps/weftd/bin/weftd.js'),
  proxy: join(repoRoot, 'apps/proxy/bin/weft-proxy.js'),
  ingress: join(repoRoot, 'apps/ingress/bin/weft-ingress.js'),
  bookinfo: join(repoRoot, 'examples/bookinfo/apps/bin/bookinfo.js'),
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
}

export interface LocalMesh {
  readonly state: MeshState;
  /** http://127.0.0.1:<port>/productpage */
  readonly url: string;
  /** Told when a component exits while the mesh runs (not during stop). */
  onExit(listener: (component: string, how: string, logFile: string) => void): void;
  /** Stops every process (SIGTERM, then SIGKILL after `graceMs`, default 8000) and removes mesh.json. */
  stop(graceMs?: number): Promise<{ killed: string[] }>;
}

const ingressName = 'istio-ingressgateway';
const ingressNamespace = 'istio-system';
const ingressLabels = { app: 'istio-ingressgateway', istio: 'ingressgateway' };

/** Whether `port` can be bound on `address` now. */
function canBind(address: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const s = createServer();
    s.once('error', () => resolvePromise(false));
    s.listen({ host: address, port, exclusive: true }, () => s.close(() => resolvePromise(true)));
  });
}

function freePort(address: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePromise(port));
    });
  });
}

export function nodeId(type: 'sidecar' | 'router', ip: string, pod: string, namespace: string): string {
  return `${type}~${ip}~${pod}.${namespace}~${namespace}.svc.cluster.local`;
}

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
  for (const r of checked.resources) if (r.config) objects.push({ config: r.config, bodyAtTopLevel: r.kind?.bodyAtTopLevel === true, origin: originOf(r) });
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
  await rm(configDir, { recursive: true, force: true });
  await rm(logDir, { recursive: true, force: true });
  await Promise.all([configDir, caDir, tokenDir, logDir].map((d) => mkdir(d, { recursive: true })));

  const pidStart = processStart(process.pid);
  const state: MeshState = { pid: process.pid, ...(pidStart ? { pidStart } : {}), startedAt: new Date(started).toISOString(), stateDir, configDir, caDir, proxies: [], apps: [] };
  const components: Component[] = [];
  let stopping = false;
  const exitListeners: ((component: string, how: string, logFile: string) => void)[] = [];
  const env = { ...process.env, [meshEnvVar]: stateDir };
  const spawn = (name: string, args: string[], file: string, extraEnv: NodeJS.ProcessEnv = {}): Component => {
    if (o.signal?.aborted) throw new Error('interrupted');
    const c = new Component({ name, args, logFile: join(logDir, file), env: { ...env, ...extraEnv } });
    components.push(c);
    void c.exited.then((e) => {
      if (stopping) return;
      const how = e.signal ? `was killed (${e.signal})` : `exited with status ${e.code}`;
      for (const l of exitListeners) l(name, how, c.logFile);
    });
    return c;
  };
  // One write at a time: components come up concurrently.
  let saving: Promise<void> = Promise.resolve();
  const save = () => (saving = saving.then(() => writeState(state)));

  const stop = async (graceMs = 8000): Promise<{ killed: string[] }> => {
    stopping = true;
    const r = await stopGroups(components, graceMs);
    const current = await readState(stateDir).catch(() => undefined);
    if (!current || current.pid === process.pid) await rm(stateFile(stateDir), { force: true });
    return r;
  };

  o.signal?.addEventListener('abort', () => void stopGroups(components, 3000), { once: true });
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
    const busy: string[] = [];
    for (const w of workloads) {
      for (const port of [...w.ports.map((p) => p.targetPort), 15000, 15001, 15020, 15021, 15090]) {
        if (!(await canBind(w.address, port))) busy.push(`${w.address}:${port}`);
      }
    }
    for (const port of [15000, 15020, 15021, 15090]) if (!(await canBind(ingressIp, port))) busy.push(`${ingressIp}:${port}`);
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
      origin: `weftctl up (the ingress gateway: Gateway port 80 -> 127.0.0.1:${httpPort})`,
    }));
    const moved = new Map(topology.objects.map((obj, i) => [obj, topologyConfigs[i]!]));
    await writeObjects(configDir, [...topology.objects.map((obj) => ({ ...obj, config: moved.get(obj)! })), ...ingressObjects, ...initial.objects]);

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

    const logLevel = o.logLevel ?? 'info';
    const weftd = spawn('weftd', [bins.weftd, '--config-dir', configDir, '--ca-dir', caDir, '--xds-port', '0', '--ca-port', '0', '--monitoring-port', '0', '--log-level', logLevel, ...(o.meshConfig ? ['--mesh-config', resolve(o.meshConfig)] : [])], 'weftd.log');
    const weftdReady = weftd.waitFor((l) => l.msg === 'weftd ready', 'it was ready', remaining()).then(async (l) => {
      state.weftd = { pid: weftd.pid, xdsPort: Number(l.xdsPort), caPort: Number(l.caPort), monitoringPort: Number(l.monitoringPort), logFile: weftd.logFile };
      await save();
      progress('weftd', `xDS 127.0.0.1:${l.xdsPort}, CA 127.0.0.1:${l.caPort}, debug http://127.0.0.1:${l.monitoringPort}/debug`);
      return state.weftd;
    });

    const startApp = async (w: Workload): Promise<AppState> => {
      const app = spawn(
        `${w.name} app`,
        [bins.bookinfo, '--service', w.app, '--version', w.version, '--address', '127.0.0.1', '--port', '0', '--http-proxy', `http://${w.address}:15001`, '--drain-ms', '1000'],
        `${w.name}.app.log`,
        { HOSTNAME: w.name },
      );
      const l = await app.waitFor((x) => x.msg === 'listening' && x.port !== undefined, 'it listened', remaining());
      const a: AppState = { workload: w.name, service: w.app, version: w.version, address: '127.0.0.1', port: Number(l.port), pid: app.pid, logFile: app.logFile };
      state.apps.push(a);
      await save();
      progress(w.name, `${w.app} ${w.version} listening on 127.0.0.1:${a.port}`);
      return a;
    };

    const caFlags = async (namespace: string, sa: string, caPort: number) => [
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
        `127.0.0.1:${d.xdsPort}`,
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
        '--log-level',
        logLevel,
      ];
      const proxy = spawn(`${w.name} sidecar`, args, `${w.name}.proxy.log`);
      const admin = await proxy.waitFor((l) => l.msg === 'admin listening', 'its admin port listened', remaining());
      await proxy.waitFor((l) => l.msg === 'proxy ready', 'it was ready', remaining());
      const p: ProxyState = {
        type: 'sidecar',
        name: w.name,
        namespace: w.namespace,
        nodeId: nodeId('sidecar', w.address, w.name, w.namespace),
        address: w.address,
        serviceAccount: w.serviceAccount,
        labels: w.labels,
        pid: proxy.pid,
        adminAddress: w.address,
        adminPort: Number(admin.port),
        ...(admin.healthPort !== undefined ? { healthPort: Number(admin.healthPort) } : {}),
        logFile: proxy.logFile,
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
        `127.0.0.1:${d.xdsPort}`,
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
        '--log-level',
        logLevel,
      ];
      const proxy = spawn('ingress gateway', args, 'istio-ingressgateway.log');
      const admin = await proxy.waitFor((l) => l.msg === 'admin listening', 'its admin port listened', remaining());
      await proxy.waitFor((l) => l.msg === 'proxy ready', 'it was ready', remaining());
      state.ingress = {
        type: 'router',
        name: ingressName,
        namespace: ingressNamespace,
        nodeId: nodeId('router', ingressIp, ingressName, ingressNamespace),
        address: ingressIp,
        serviceAccount: ingressName,
        labels: ingressLabels,
        pid: proxy.pid,
        adminAddress: ingressIp,
        adminPort: Number(admin.port),
        ...(admin.healthPort !== undefined ? { healthPort: Number(admin.healthPort) } : {}),
        logFile: proxy.logFile,
        httpPort,
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
    state.url = url;
    state.readyAt = new Date().toISOString();
    await save();
    return {
      state,
      url,
      onExit: (l) => void exitListeners.push(l),
      stop,
    };
  } catch (e) {
    await stop(3000).catch(() => undefined);
    throw e;
  }
}

