// The weftd command line: flags -> startWeftd, then run until SIGTERM or SIGINT.
import { parseDuration } from '@weft/mesh';
import { parseArgs } from 'node:util';
import { defaultInjectionValues } from '@weft/kube';
import { startWeftd, type Weftd, type WeftdOptions } from './weftd.ts';

export const usage = `weftd: the Weft control plane (pilot: xDS; citadel: the CA)

Usage:
  weftd [--config-dir DIR] [--kubeconfig PATH | --kube] [options]

Options:
  --config-dir DIR        YAML config (Istio's networking and security kinds), watched for changes;
                          resources galley rejects are reported and do not replace accepted ones
  --kubeconfig PATH       Kubernetes mode: config from the cluster of this kubeconfig (Istio's and
                          Gateway API's CRDs, listed and watched; objects galley rejects are logged
                          and do not replace accepted ones), besides any --config-dir; weftd serves
                          once the first list is in
  --kube                  Kubernetes mode with the default kubeconfig: $KUBECONFIG, else in-cluster
                          (the pod's service account), else ~/.kube/config
  --system-namespace NS   Kubernetes mode: weftd's own namespace, where the CA's Secrets (cacerts,
                          istio-ca-secret) and the leader Lease weftd-leader are (default:
                          $POD_NAMESPACE, else istio-system)
  --webhook-port PORT     Kubernetes mode: the admission webhooks, HTTPS with a certificate from the mesh
                          CA: /validate (galley) and /inject (the sidecar) (default: 15017; 0 picks a free port)
  --injection-webhook NAME   Kubernetes mode: the MutatingWebhookConfiguration whose caBundle weftd keeps
                          on the mesh root (default: istio-sidecar-injector)
  --validation-webhook NAME  the same for the ValidatingWebhookConfiguration (default:
                          istio-validator-<system namespace>)
  --proxy-image IMAGE     Kubernetes mode: the injected sidecar's (and istio-init's) image (default:
                          weft/proxy:<version>, as \`npm run images\` builds it)
  --proxy-cpu QUANTITY    Kubernetes mode: the injected sidecar's CPU request when the pod's
                          sidecar.istio.io/proxyCPU names none (Istio's global.proxy.resources;
                          default: 100m)
  --proxy-memory QUANTITY the same for its memory request (default: 128Mi)
  --namespace NS          namespace for resources that name none (default: default)
  --listen-address ADDR   address every port listens on (default: 127.0.0.1)
  --xds-port PORT|off     plaintext xDS, unauthenticated: any local process may connect with any node
                          id (default: 15010; 0 picks a free port; off: none)
  --ca-port PORT          CA signing service and xDS over TLS (default: 15012; 0 picks a free port);
                          callers authenticate with a client certificate from the mesh CA or
                          \`authorization: Bearer <bootstrap token>\` (in Kubernetes mode also the pod's
                          projected service-account token, audience istio-ca, checked by TokenReview),
                          and a CSR's identity and an xDS node's namespace and service account must
                          be the caller's (else PERMISSION_DENIED)
  --monitoring-port PORT  /healthz, /metrics, /debug/* (default: 15014; 0 picks a free port)
  --owner-uid UID         every port serves only processes running as UID (the kernel's sock_diag
                          names each peer); others are reset at connect, logged and counted. For a
                          mesh on one host's loopback (\`weftctl up\` passes its own UID)
  --ca-dir DIR            keep the CA's root here (Istio's cacerts layout; generated when empty);
                          without it the root lives in memory and changes on every start, except in
                          Kubernetes mode: Secret cacerts (a plug-in CA), else istio-ca-secret (a root
                          generated once) in weftd's namespace
  --mesh-config FILE      Istio MeshConfig YAML (accessLogFile, enableTracing, defaultConfig.tracing,
                          extensionProviders, outboundTrafficPolicy, trustDomain...); read at start
  --trust-domain DOMAIN   SPIFFE trust domain (default: cluster.local; overrides the mesh config's)
  --domain-suffix SUFFIX  cluster DNS suffix (default: cluster.local)
  --no-ca                 run pilot alone (no CA, no TLS port)
  --no-xds                run the CA alone (no xDS)
  --debounce-ms MS        push after this long without a new change (default: 100)
  --debounce-max-ms MS    push at the latest this long after a change (default: 10000)
  --file-debounce-ms MS   read changed files after this long without a new file event (default: 100)
  --jwks-refresh-interval DURATION
                          fetch RequestAuthentication jwksUris again this often (rotated keys reach
                          proxies within it; default: $PILOT_JWT_PUB_KEY_REFRESH_INTERVAL, else 20m)
  --log-level LEVEL       debug, info (default), warn or error
  -h, --help              this text

Logs are JSON lines on stderr. SIGTERM or SIGINT shut down gracefully.`;

class UsageError extends Error {}

function port(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${name} must be a port number (0-65535)${name === 'xds-port' ? ' or off' : ''}, not ${JSON.stringify(value)}`);
  return n;
}

function ms(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number of milliseconds, not ${JSON.stringify(value)}`);
  return n;
}

/** Flags to options; throws a usage error for anything it does not understand. */
export function parseFlags(argv: readonly string[]): WeftdOptions | 'help' {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e));
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`);
  if (v['no-ca'] && v['no-xds']) throw new UsageError('--no-ca and --no-xds together leave nothing to run');
  const level = v['log-level'];
  if (level !== undefined && level !== 'debug' && level !== 'info' && level !== 'warn' && level !== 'error') throw new UsageError(`--log-level must be debug, info, warn or error, not ${JSON.stringify(level)}`);
  const o: WeftdOptions = {};
  if (v['config-dir']) o.configDir = v['config-dir'];
  if (v.kubeconfig !== undefined) {
    if (v.kubeconfig === '') throw new UsageError('--kubeconfig needs a path (--kube uses the default kubeconfig)');
    o.kube = { kubeconfig: v.kubeconfig };
  } else if (v.kube) o.kube = {};
  if (v['system-namespace'] !== undefined) {
    if (!o.kube) throw new UsageError('--system-namespace needs Kubernetes mode (--kubeconfig or --kube)');
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v['system-namespace'])) throw new UsageError(`--system-namespace must be a namespace name, not ${JSON.stringify(v['system-namespace'])}`);
    o.kube.namespace = v['system-namespace'];
  }
  const webhookPort = port('webhook-port', v['webhook-port']);
  const injectionWebhook = v['injection-webhook'];
  const validationWebhook = v['validation-webhook'];
  const proxyImage = v['proxy-image'];
  const proxyCpu = v['proxy-cpu'];
  const proxyMemory = v['proxy-memory'];
  if (webhookPort !== undefined || injectionWebhook !== undefined || validationWebhook !== undefined || proxyImage !== undefined || proxyCpu !== undefined || proxyMemory !== undefined) {
    if (!o.kube) throw new UsageError('--webhook-port, --injection-webhook, --validation-webhook, --proxy-image, --proxy-cpu and --proxy-memory need Kubernetes mode (--kubeconfig or --kube)');
    if (proxyImage === '') throw new UsageError('--proxy-image needs an image name');
    for (const [flag, q] of [['--proxy-cpu', proxyCpu], ['--proxy-memory', proxyMemory]] as const) {
      if (q !== undefined && !/^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi)?$/.test(q)) throw new UsageError(`${flag} needs a Kubernetes quantity such as 10m or 64Mi, not ${JSON.stringify(q)}`);
    }
    const defaults = defaultInjectionValues({ discoveryAddress: '', trustDomain: '', domainSuffix: '' }).resources;
    const resources = proxyCpu || proxyMemory ? { resources: { ...defaults, requests: { ...defaults.requests, ...(proxyCpu ? { cpu: proxyCpu } : {}), ...(proxyMemory ? { memory: proxyMemory } : {}) } } } : {};
    o.kube.webhooks = {
      ...(webhookPort !== undefined ? { port: webhookPort } : {}),
      ...(proxyImage || proxyCpu || proxyMemory ? { injection: { ...(proxyImage ? { proxyImage } : {}), ...resources } } : {}),
      ...(injectionWebhook ? { injectionConfiguration: injectionWebhook } : {}),
      ...(validationWebhook ? { validationConfiguration: validationWebhook } : {}),
    };
  }
  if (v.namespace) o.defaultNamespace = v.namespace;
  if (v['listen-address']) o.host = v['listen-address'];
  const xdsPort = v['xds-port'] === 'off' ? 'off' : port('xds-port', v['xds-port']);
  if (xdsPort !== undefined) o.xdsPort = xdsPort;
  if (xdsPort === 'off' && v['no-ca'] && !v['no-xds']) throw new UsageError('--xds-port off with --no-ca leaves no port serving xDS (the CA port serves it over TLS)');
  const caPort = port('ca-port', v['ca-port']);
  if (caPort !== undefined) o.caPort = caPort;
  const monitoringPort = port('monitoring-port', v['monitoring-port']);
  if (monitoringPort !== undefined) o.monitoringPort = monitoringPort;
  if (v['ca-dir']) o.caDir = v['ca-dir'];
  if (v['trust-domain']) o.trustDomain = v['trust-domain'];
  if (v['mesh-config']) o.meshConfigFile = v['mesh-config'];
  if (v['domain-suffix']) o.domainSuffix = v['domain-suffix'];
  if (v['no-ca']) o.ca = false;
  if (v['no-xds']) o.xds = false;
  const debounce = ms('debounce-ms', v['debounce-ms']);
  if (debounce !== undefined) o.debounceMs = debounce;
  const debounceMax = ms('debounce-max-ms', v['debounce-max-ms']);
  if (debounceMax !== undefined) o.debounceMaxMs = debounceMax;
  const fileDebounce = ms('file-debounce-ms', v['file-debounce-ms']);
  if (fileDebounce !== undefined) o.fileDebounceMs = fileDebounce;
  const jwksRefresh = v['jwks-refresh-interval'];
  if (jwksRefresh !== undefined) {
    const seconds = parseDuration(jwksRefresh);
    if (seconds === undefined || seconds < 0.1) throw new UsageError(`--jwks-refresh-interval must be a duration of at least 100ms (20m, 30s), not ${JSON.stringify(jwksRefresh)}`);
    o.jwksRefreshIntervalMs = Math.round(seconds * 1000);
  }
  if (level) o.logLevel = level;
  const owner = v['owner-uid'];
  if (owner !== undefined) {
    if (!/^\d+$/.test(owner) || Number(owner) > 0xfffffffe) throw new UsageError(`--owner-uid must be a user id (0-4294967294), not ${JSON.stringify(owner)}`);
    o.ownerUid = Number(owner);
  }
  return o;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      'config-dir': { type: 'string' },
      kubeconfig: { type: 'string' },
      kube: { type: 'boolean' },
      'webhook-port': { type: 'string' },
      'injection-webhook': { type: 'string' },
      'validation-webhook': { type: 'string' },
      'proxy-image': { type: 'string' },
      'proxy-cpu': { type: 'string' },
      'proxy-memory': { type: 'string' },
      'system-namespace': { type: 'string' },
      namespace: { type: 'string' },
      'listen-address': { type: 'string' },
      'xds-port': { type: 'string' },
      'ca-port': { type: 'string' },
      'monitoring-port': { type: 'string' },
      'ca-dir': { type: 'string' },
      'trust-domain': { type: 'string' },
      'mesh-config': { type: 'string' },
      'domain-suffix': { type: 'string' },
      'no-ca': { type: 'boolean' },
      'no-xds': { type: 'boolean' },
      'debounce-ms': { type: 'string' },
      'debounce-max-ms': { type: 'string' },
      'file-debounce-ms': { type: 'string' },
      'jwks-refresh-interval': { type: 'string' },
      'log-level': { type: 'string' },
      'owner-uid': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** Runs weftd until a signal; resolves to the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  let options: WeftdOptions | 'help';
  try {
    options = parseFlags(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`weftd: ${e.message}\nRun 'weftd --help' for usage.\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  // Signals are caught from the start: one arriving while weftd starts stops it once started.
  let signalled: NodeJS.Signals | undefined;
  let onSignal: ((signal: NodeJS.Signals) => void) | undefined;
  const handler = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = signal;
    onSignal?.(signal);
  };
  // A start that waits on the cluster (Kubernetes mode) ends when a signal comes.
  const starting = new AbortController();
  onSignal = (signal) => starting.abort(new Error(`interrupted by ${signal} while starting`));
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  let weftd: Weftd;
  try {
    weftd = await startWeftd({ ...options, signal: starting.signal });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    if (signalled && e === starting.signal.reason) {
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', scope: 'weftd', msg: 'stopped while starting', signal: signalled })}\n`);
      return 0;
    }
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', scope: 'weftd', msg: 'failed to start', error: err.message, ...('code' in err ? { code: err.code } : {}) })}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', scope: 'weftd', msg: 'shutting down', signal })}\n`);
      // A stuck shutdown must not keep the process alive forever.
      setTimeout(() => resolve(1), 10_000).unref();
      weftd.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    if (signalled) stop(signalled);
    else onSignal = stop;
  });
}
