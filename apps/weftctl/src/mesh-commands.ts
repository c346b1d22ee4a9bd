// The commands that run or operate the local mesh: up, apply, delete, proxy-status, proxy-config,
// describe. They find the running mesh through its state directory (--state-dir, $WEFT_STATE_DIR,
// ~/.weft/local).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { apply, remove } from './mesh/apply.ts';
import { applyKube, removeKube } from './mesh/apply-kube.ts';
import { type KubeDashboardName, kubeDashboardTargets } from './dashboard-kube.ts';
import { dashboard, dashboardOnCluster, type DashboardTarget, dashboardTargets } from './mesh/dashboard.ts';
import { describe } from './mesh/describe.ts';
import { proxyConfig, proxyConfigKinds } from './mesh/proxy-config.ts';
import { proxyStatus } from './mesh/proxy-status.ts';
import { status } from './mesh/status.ts';
import { why, WhyUsageError } from './mesh/why.ts';
import { NotAnsweringError, notAnsweringMessage } from './mesh/client.ts';
import { up, UpUsageError } from './up/command.ts';
import { stopLocalMesh } from './up/mesh.ts';
import { defaultStateDir, NoMeshError, readState } from './up/state.ts';

export const meshCommands = ['up', 'down', 'status', 'apply', 'delete', 'proxy-status', 'proxy-config', 'describe', 'dashboard', 'why'] as const;

export const meshUsage = `  weftctl up [--port PORT] [--state-dir DIR] [--loopback-net 127.0.N] [--mesh-config FILE] [--log-level LEVEL] [--timeout SECONDS] [--fresh] [--plaintext-xds] [--no-addons]
      Start the local mesh (weftd, the ingress gateway, BookInfo and a sidecar per workload; no root);
      prints one line per component, then \`ready: URL\`; restarts what exits; Ctrl-C stops everything.
      Config applied in earlier runs is kept (--fresh starts without it). Every proxy gets its config over
      TLS from weftd's authenticating port; the unauthenticated plaintext port is off (--plaintext-xds opens it).
      Addons start with it: Prometheus when installed (127.0.0.1, basic auth) and the dashboard; --no-addons: none.
  weftctl down [--state-dir DIR]
      Stop the local mesh from another terminal (also what a killed \`weftctl up\` left running).
  weftctl status [-o text|json] [--state-dir DIR]
      Every process of the local mesh (pid, state, restarts, uptime, last exit, log) and rejected config files.
  weftctl apply -f PATH... [-n NAMESPACE] [--wait SECONDS] [--state-dir DIR | --kubeconfig FILE | --kube]
      Validate, then add or replace the resources in the running mesh (nothing changes if any is invalid);
      waits until weftd holds them and every proxy has ACKed. With --kubeconfig (--kube: $KUBECONFIG, else
      ~/.kube/config): Weft installed on that cluster (server-side apply; weftd read through the API server).
  weftctl delete -f PATH... [-n NAMESPACE] [--wait SECONDS] [--state-dir DIR | --kubeconfig FILE | --kube]
      Remove the resources (by kind, namespace and name) from the running mesh, or from the cluster.
  weftctl proxy-status [-o text|json] [--state-dir DIR]
      Every proxy connected to weftd and the sync state of each xDS type.
  weftctl proxy-config listeners|routes|clusters|endpoints|secret WORKLOAD [-o text|json] [--state-dir DIR | -n NAMESPACE --kubeconfig FILE | --kube]
      A proxy's configuration, from its admin port (WORKLOAD: reviews-v2, istio-ingressgateway...); on a
      cluster, from the pod's 15000 over a port-forward (WORKLOAD: a pod, or a Deployment, which picks one of its pods).
  weftctl describe WORKLOAD [-o text|json] [--state-dir DIR]
      The services, routing rules and policies that apply to a workload, and why.
  weftctl why WORKLOAD URL [-H 'NAME: VALUE']... [-o text|json] [--state-dir DIR]
      Where WORKLOAD's proxy would send a request for URL (e.g. http://reviews:9080/reviews/0) with
      these headers: listener, route and its match, weights, cluster and the endpoint it takes next,
      and why, step by step. The proxy decides with its own routing code and changes nothing.
  weftctl dashboard [weft|prometheus|grafana|jaeger|weftd] [--open] [--state-dir DIR] [--kubeconfig FILE] [--kube] [-n NS] [--port PORT]
      The URL of the local mesh's dashboard (graph, services, proxies, traces, why), or of Prometheus
      through it (no password asked); --open opens it with xdg-open. On a cluster (--kubeconfig, --kube;
      addons in istio-system unless -n), as istioctl dashboard: the addon's Service on a local loopback
      port through the API server's port-forward, until Ctrl-C; weft runs the dashboard here, reading
      weftd and the Prometheus addon through port-forwards. Nothing is exposed on the cluster.`;

/** The flags each command takes besides -h/--help: the parser refuses others, and `weftctl COMMAND --help` lists these. */
export const meshCommandFlags: Record<(typeof meshCommands)[number], readonly (keyof typeof options)[]> = {
  up: ['port', 'state-dir', 'loopback-net', 'mesh-config', 'log-level', 'timeout', 'fresh', 'plaintext-xds', 'no-addons'],
  down: ['state-dir'],
  status: ['output', 'state-dir'],
  apply: ['filename', 'namespace', 'wait', 'state-dir', 'kubeconfig', 'kube'],
  delete: ['filename', 'namespace', 'wait', 'state-dir', 'kubeconfig', 'kube'],
  'proxy-status': ['output', 'state-dir'],
  'proxy-config': ['output', 'state-dir', 'namespace', 'kubeconfig', 'kube'],
  describe: ['output', 'state-dir'],
  dashboard: ['open', 'state-dir', 'kubeconfig', 'kube', 'namespace', 'port'],
  why: ['header', 'output', 'state-dir'],
};

export class MeshUsageError extends Error {}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options,
  });
}

const options = {
  filename: { type: 'string', short: 'f', multiple: true },
  output: { type: 'string', short: 'o' },
  namespace: { type: 'string', short: 'n' },
  'state-dir': { type: 'string' },
  port: { type: 'string' },
  'loopback-net': { type: 'string' },
  'log-level': { type: 'string' },
  'mesh-config': { type: 'string' },
  timeout: { type: 'string' },
  wait: { type: 'string' },
  fresh: { type: 'boolean' },
  'plaintext-xds': { type: 'boolean' },
  'no-addons': { type: 'boolean' },
  kubeconfig: { type: 'string' },
  kube: { type: 'boolean' },
  open: { type: 'boolean' },
  header: { type: 'string', short: 'H', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Runs a mesh command; undefined when argv names none (the caller handles it). */
export async function runMeshCommand(argv: readonly string[], io: Io): Promise<number | undefined> {
  let first: string | undefined;
  try {
    first = parseArgs({ args: [...argv], allowPositionals: true, strict: false, options }).positionals[0];
  } catch {
    return undefined;
  }
  if (first === undefined || !(meshCommands as readonly string[]).includes(first)) return undefined;
  try {
    return await run(argv, io);
  } catch (e) {
    if (e instanceof MeshUsageError || e instanceof UpUsageError || e instanceof WhyUsageError) {
      io.err(`weftctl: ${e.message}\nRun 'weftctl --help' for usage.\n`);
      return 2;
    }
    if (e instanceof NoMeshError) {
      io.err(`weftctl: ${e.message}\n`);
      return 1;
    }
    if (e instanceof NotAnsweringError) {
      const stateDir = resolve(parseArgs({ args: [...argv], allowPositionals: true, strict: false, options }).values['state-dir']?.toString() ?? defaultStateDir());
      io.err(`weftctl: ${notAnsweringMessage(await readState(stateDir).catch(() => undefined), e)}\n`);
      return 1;
    }
    throw e;
  }
}

async function run(argv: readonly string[], io: Io): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    throw new MeshUsageError(e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e));
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  const allowed: readonly string[] = meshCommandFlags[command as (typeof meshCommands)[number]] ?? [];
  for (const flag of Object.keys(values)) if (flag !== 'help' && !allowed.includes(flag)) throw new MeshUsageError(`${command} does not take --${flag}`);
  const stateDir = resolve(values['state-dir'] ?? defaultStateDir());
  if (values.kubeconfig !== undefined && values.kube) throw new MeshUsageError('give --kubeconfig FILE or --kube, not both');
  if ((values.kubeconfig !== undefined || values.kube) && values['state-dir'] !== undefined) throw new MeshUsageError('--state-dir names a local mesh; --kubeconfig and --kube a cluster: give one');
  const onCluster = values.kubeconfig !== undefined || values.kube === true;
  const format = values.output ?? 'text';
  if (format !== 'text' && format !== 'json') throw new MeshUsageError(`unknown output format ${JSON.stringify(format)} (use text or json)`);
  const noMore = (n: number) => {
    if (rest.length > n) throw new MeshUsageError(`unexpected argument ${JSON.stringify(rest[n])}`);
  };
  switch (command) {
    case 'up':
      noMore(0);
      return up({ stateDir, port: values.port, loopbackNet: values['loopback-net'], logLevel: values['log-level'], timeout: values.timeout, meshConfig: values['mesh-config'], fresh: values.fresh, plaintextXds: values['plaintext-xds'], noAddons: values['no-addons'] }, io);
    case 'down': {
      noMore(0);
      const done = await stopLocalMesh(stateDir);
      if (!done) io.out(`no local mesh in ${stateDir}\n`);
      else io.out(`stopped the local mesh in ${stateDir}${done.owner ? '' : ' (its weftctl up was gone)'}${done.leftovers > 0 ? `; ${done.leftovers} leftover processes stopped` : ''}\n`);
      return 0;
    }
    case 'apply':
    case 'delete': {
      noMore(0);
      const files = values.filename ?? [];
      if (files.length === 0) throw new MeshUsageError(`${command} needs at least one -f PATH`);
      let waitMs = 15_000;
      if (values.wait !== undefined) {
        waitMs = Number(values.wait.replace(/s$/, '')) * 1000;
        if (!Number.isFinite(waitMs) || waitMs < 0) throw new MeshUsageError(`--wait must be a number of seconds, not ${JSON.stringify(values.wait)}`);
      }
      const o = { stateDir, files, namespace: values.namespace ?? 'default', waitMs };
      if (onCluster) {
        const k = { ...o, kubeconfig: values.kubeconfig, systemNamespace: 'istio-system' };
        return command === 'apply' ? applyKube(k, io) : removeKube(k, io);
      }
      return command === 'apply' ? apply(o, io) : remove(o, io);
    }
    case 'status':
      noMore(0);
      return status({ stateDir, format }, io);
    case 'proxy-status':
      noMore(0);
      return proxyStatus({ stateDir, format }, io);
    case 'proxy-config': {
      const [kind, workload] = rest;
      if (!kind || !(proxyConfigKinds as readonly string[]).includes(kind)) throw new MeshUsageError(`proxy-config needs one of ${proxyConfigKinds.join(', ')}, then a workload`);
      if (!workload) throw new MeshUsageError(`proxy-config ${kind} needs a workload (weftctl proxy-status lists them)`);
      noMore(2);
      if (values.namespace !== undefined && !onCluster) throw new MeshUsageError('proxy-config takes -n only with --kubeconfig or --kube');
      const kube = onCluster ? { kube: { kubeconfig: values.kubeconfig, namespace: values.namespace ?? 'default' } } : {};
      return proxyConfig({ stateDir, kind: kind as (typeof proxyConfigKinds)[number], workload, format, ...kube }, io);
    }
    case 'describe': {
      const [workload] = rest;
      if (!workload) throw new MeshUsageError('describe needs a workload (weftctl proxy-status lists them)');
      noMore(1);
      return describe({ stateDir, workload, format }, io);
    }
    case 'dashboard': {
      const [target = 'weft'] = rest;
      noMore(1);
      if (onCluster) {
        const names = ['weft', ...Object.keys(kubeDashboardTargets)];
        if (!names.includes(target)) throw new MeshUsageError(`dashboard on a cluster shows ${names.join(', ')}, not ${JSON.stringify(target)}`);
        const port = values.port === undefined ? 0 : Number(values.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new MeshUsageError(`--port must be a port number, not ${JSON.stringify(values.port)}`);
        return dashboardOnCluster(target as KubeDashboardName, { kubeconfig: values.kubeconfig, namespace: values.namespace ?? 'istio-system', port, open: values.open === true }, io);
      }
      if (values.namespace !== undefined || values.port !== undefined) throw new MeshUsageError('dashboard takes -n and --port only with --kubeconfig or --kube');
      if (!(dashboardTargets as readonly string[]).includes(target)) throw new MeshUsageError(`dashboard shows ${dashboardTargets.join(' or ')}, not ${JSON.stringify(target)}`);
      return dashboard({ stateDir, target: target as DashboardTarget, open: values.open === true }, io);
    }
    case 'why': {
      const [workload, url] = rest;
      if (!workload || !url) throw new MeshUsageError("why needs a workload and a URL, e.g. weftctl why productpage-v1 http://reviews:9080/reviews/0 -H 'end-user: jason'");
      noMore(2);
      return why({ stateDir, workload, url, headers: values.header ?? [], format }, io);
    }
    default:
      throw new MeshUsageError(`unknown command ${JSON.stringify(command)}`);
  }
}
