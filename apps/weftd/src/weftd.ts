// weftd: the control plane in one process. Config from a directory (validated by galley) and,
// in Kubernetes mode, from the cluster (@weft/kube) -> store -> ServiceEntry registry -> pilot (xDS on 15010 unauthenticated unless turned off, and on
// 15012 over TLS with the CA, authenticated as istiod does) -> monitoring on 15014. Each part only
// wires libraries together.
import { parseDuration } from '@weft/mesh';
import { existsSync, readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { stat } from 'node:fs/promises';
import { type ServerCredentials, Server as GrpcServer, ServerCredentials as GrpcServerCredentials } from '@grpc/grpc-js';
import {
  CertificateAuthority,
  CitadelMetrics,
  callerAuthenticator,
  caServiceDefinition,
  createCaServiceHandlers,
  ServingCertificateProvider,
} from '@weft/citadel';
import { validateConfig } from '@weft/galley';
import { OwnerGuard } from '@weft/guard';
import { type Kube, type KubeOptions, startKube } from '@weft/kube';
import {
  type Config,
  type ConfigStore,
  createLogger,
  DirectorySource,
  defaultKindRegistry,
  describeConfig,
  formatProblem,
  type Logger,
  type LogLevel,
  MemoryConfigStore,
  type Problem,
} from '@weft/model';
import {
  AggregateRegistry,
  buildPushContext,
  type CacheKeyFn,
  DiscoveryServer,
  defaultJwksRefreshIntervalMs,
  defaultMeshConfig,
  envoyGenerators,
  grpcGenerators,
  JwksResolver,
  type MeshConfig,
  parseMeshConfig,
  MonitoringServer,
  type PushContext,
  PilotMetrics,
  proxyFromNode,
  proxyNeedsPush,
  ServiceEntryRegistry,
} from '@weft/pilot';
import { Counter, collectDefaultMetrics, Registry } from 'prom-client';

export interface WeftdOptions {
  /** Directory of YAML config, watched; absent: start with no config. */
  configDir?: string;
  /** Namespace for resources that name none. */
  defaultNamespace?: string;
  /** Address every port listens on; default 127.0.0.1. */
  host?: string;
  /** Plaintext (unauthenticated) xDS; default 15010; 0 picks a free port; `off`: none (xDS only on the TLS port, authenticated). */
  xdsPort?: number | 'off';
  /** CA signing service and xDS over TLS; default 15012; 0 picks a free port. */
  caPort?: number;
  /** Health, metrics and debug endpoints; default 15014; 0 picks a free port. */
  monitoringPort?: number;
  /** Run the CA (and the TLS port, which also serves xDS); default true. */
  ca?: boolean;
  /** Run pilot (xDS); default true. With `ca`, either part runs alone. */
  xds?: boolean;
  /** Where the CA's root is kept (Istio's cacerts layout); absent: a new root in memory. */
  caDir?: string;
  trustDomain?: string;
  domainSuffix?: string;
  /** Istio MeshConfig YAML to read at start (see pilot's parseMeshConfig); flags override its trust domain. */
  meshConfigFile?: string;
  /** Mesh settings given directly (tests); applied after the file. */
  mesh?: Partial<MeshConfig>;
  /** Push debounce: quiet period and maximum wait, ms. */
  debounceMs?: number;
  debounceMaxMs?: number;
  /** Quiet period before file changes are read, ms. */
  fileDebounceMs?: number;
  /**
   * How often pilot fetches RequestAuthentication jwksUris again (rotated keys reach proxies within
   * it); default $PILOT_JWT_PUB_KEY_REFRESH_INTERVAL (a duration, `20m`, `2s`), else 20 minutes.
   */
  jwksRefreshIntervalMs?: number;
  logLevel?: LogLevel;
  /** Where log lines go; default stderr. */
  logSink?: (line: string) => void;
  /** Share generated config between proxies whose generator inputs are equal (default true). */
  shareGenerated?: boolean;
  /**
   * Local mode's trust boundary: every port (xDS, CA/xDS over TLS, monitoring) serves only processes
   * running as this UID (@weft/guard); others are reset at connect, logged and counted
   * (`weftd_owner_guard_refused_connections_total`). For a mesh on one host's loopback.
   */
  ownerUid?: number;
  /**
   * Kubernetes mode (@weft/kube): config (and, as its parts land, services, webhooks, token
   * authentication) from the cluster of this kubeconfig (`{}`: $KUBECONFIG, else in-cluster, else
   * ~/.kube/config), besides any --config-dir. weftd waits for the first sync before serving.
   */
  kube?: Pick<KubeOptions, 'kubeconfig' | 'config' | 'namespace' | 'leaderElection' | 'webhooks'> & {
    /** Gateway API statuses and deployments written to the cluster (default on); `false`: none. */
    gatewayApi?: false | { createClasses?: boolean; intervalMs?: number };
  };
  /** Ends a start that waits (on the cluster's first sync). */
  signal?: AbortSignal;
}

export interface Weftd {
  readonly xdsPort: number | undefined;
  readonly caPort: number | undefined;
  readonly monitoringPort: number;
  readonly store: ConfigStore;
  readonly discovery: DiscoveryServer | undefined;
  readonly ca: CertificateAuthority | undefined;
  /** The Kubernetes mode's handles, when on. */
  readonly kube: Kube | undefined;
  /** Current problems by file (errors and warnings), as last reported. */
  problems(): Record<string, Problem[]>;
  close(): Promise<void>;
}

/** PILOT_JWT_PUB_KEY_REFRESH_INTERVAL as Istio reads it (a duration); absent or invalid: Istio's 20 minutes. */
function jwksRefreshFromEnv(log: Logger): number {
  const text = process.env.PILOT_JWT_PUB_KEY_REFRESH_INTERVAL;
  if (!text) return defaultJwksRefreshIntervalMs;
  const seconds = parseDuration(text);
  if (seconds === undefined || seconds <= 0) {
    log.warn('PILOT_JWT_PUB_KEY_REFRESH_INTERVAL is not a positive duration; using 20m', { value: text });
    return defaultJwksRefreshIntervalMs;
  }
  return Math.max(100, seconds * 1000);
}

// Node metadata that names the instance rather than shaping its config.
const identityMetadata = new Set(['INSTANCE_IPS', 'WORKLOAD_NAME', 'POD_NAME', 'NAME', 'LABELS']);

/** Every endpoint and workload address of a push context (built once per push context). */
const addressesOf = new WeakMap<PushContext, Set<string>>();

function meshAddresses(push: PushContext): Set<string> {
  let out = addressesOf.get(push);
  if (!out) {
    out = new Set();
    for (const service of push.services) for (const port of service.ports) for (const e of push.endpoints(service, port.port)) out.add(e.address);
    addressesOf.set(push, out);
  }
  return out;
}

/**
 * What a proxy's generated config can depend on besides the push context: the Proxy without its
 * identity. The id and pod name matter only through the workload they resolve to, and the IP
 * addresses only when a workload or an endpoint lives there (inbound config); proxies alike in
 * the rest share generated output within one push context.
 */
export const proxyShapeKey: CacheKeyFn = (_typeUrl, proxy, push) => {
  // Asked for every type of every proxy in a push: computed once per proxy and push context.
  let byProxy = shapeKeys.get(push);
  if (!byProxy) {
    byProxy = new WeakMap();
    shapeKeys.set(push, byProxy);
  }
  let key = byProxy.get(proxy);
  if (key === undefined) {
    key = shapeKeyOf(proxy, push);
    byProxy.set(proxy, key);
  }
  return key;
};

const shapeKeys = new WeakMap<PushContext, WeakMap<Parameters<CacheKeyFn>[1], string>>();
/** The part of the key the proxy alone decides (a connection's Proxy never changes): computed once per connection. */
const ownKeys = new WeakMap<Parameters<CacheKeyFn>[1], string>();

function shapeKeyOf(proxy: Parameters<CacheKeyFn>[1], push: PushContext): string {
  let own = ownKeys.get(proxy);
  if (own === undefined) {
    const metadata = Object.entries(proxy.metadata)
      .filter(([k]) => !identityMetadata.has(k))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    own = JSON.stringify([
      proxy.type,
      proxy.generator,
      proxy.namespace,
      proxy.dnsDomain,
      Object.entries(proxy.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      proxy.serviceAccount ?? '',
      metadata,
      // EDS priorities are relative to the proxy's locality (translate/locality.ts).
      proxy.locality ?? {},
    ]);
    ownKeys.set(proxy, own);
  }
  const workload = push.workload(proxy);
  const addresses = meshAddresses(push);
  const located = workload !== undefined || proxy.ipAddresses.some((ip) => addresses.has(ip));
  return JSON.stringify([own, workload ? `${workload.namespace}/${workload.name}` : '', located ? proxy.ipAddresses : []]);
}

/** Binds `server`; with a guard, through its owner-only front (accepted and checked there, then handed to grpc-js). */
async function bind(server: GrpcServer, host: string, port: number, credentials: ServerCredentials, guard: OwnerGuard | undefined, name: string): Promise<{ port: number; close: () => Promise<void> }> {
  if (guard) return guard.listenGrpc(server, credentials, { host, port, name });
  const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const bound = await new Promise<number>((resolve, reject) => server.bindAsync(target, credentials, (err, p) => (err ? reject(err) : resolve(p))));
  return { port: bound, close: async () => {} };
}

/** Starts every part; resolves once all ports listen and the config directory has been read. */
export async function startWeftd(options: WeftdOptions = {}): Promise<Weftd> {
  const logOptions = { ...(options.logLevel ? { level: options.logLevel } : {}), ...(options.logSink ? { sink: options.logSink } : {}) };
  const log: Logger = createLogger({ scope: 'weftd', ...logOptions });
  const host = options.host ?? '127.0.0.1';
  if (options.xdsPort === 'off' && options.ca === false && options.xds !== false) throw new Error('plaintext xDS off and no CA (whose TLS port serves xDS): nothing would serve xDS');
  let base: MeshConfig = defaultMeshConfig;
  if (options.meshConfigFile) base = parseMeshConfig(readFileSync(options.meshConfigFile, 'utf8'), options.meshConfigFile);
  base = { ...base, ...options.mesh };
  const trustDomain = options.trustDomain ?? base.trustDomain;
  const mesh: MeshConfig = { ...base, trustDomain, domainSuffix: options.domainSuffix ?? base.domainSuffix };
  const cleanups: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        log.error('shutdown step failed', { error: err });
      }
    }
  };

  try {
    // Config: only what galley accepts reaches the store; rejected edits keep the last good version.
    const store = new MemoryConfigStore({ onHandlerError: (e) => log.error('config watcher failed', { error: e }) });
    const problemsByFile = new Map<string, Problem[]>();
    const subjects = new WeakMap<Problem, string>();
    const configLog = createLogger({ scope: 'config', ...logOptions });
    let source: DirectorySource | undefined;
    if (options.configDir) {
      const st = await stat(options.configDir).catch(() => undefined);
      if (!st?.isDirectory()) throw new Error(`config directory ${options.configDir} does not exist (or is not a directory)`);
      source = new DirectorySource({
        dir: options.configDir,
        store,
        registry: defaultKindRegistry(),
        defaultNamespace: options.defaultNamespace ?? 'default',
        debounceMs: options.fileDebounceMs ?? 100,
        validate: (r) => {
          const subject = describeConfig(r.config);
          const problems = validateConfig(r.config as Config, { structurallyBroken: r.problems.some((p) => p.severity === 'error') });
          for (const p of [...r.problems, ...problems]) subjects.set(p, subject);
          return problems;
        },
        onProblems: (file, problems) => {
          const before = problemsByFile.get(file) ?? [];
          if (problems.length === 0) problemsByFile.delete(file);
          else problemsByFile.set(file, problems);
          const text = (p: Problem) => formatProblem(p, subjects.get(p));
          const seen = new Set(before.map(text));
          for (const p of problems) {
            const line = text(p);
            if (seen.has(line)) continue;
            const fields = { file: p.file ?? file, line: p.line, column: p.column, resource: subjects.get(p), path: p.path, code: p.code, problem: p.message, text: line };
            if (p.severity === 'error') configLog.error('config rejected; the last accepted version stays in force', fields);
            else configLog.warn('config warning', fields);
          }
          // A file that is gone has no problems left, but nothing of it was accepted either.
          if (problems.length === 0 && before.length > 0 && !existsSync(file)) configLog.info('config problems cleared', { file, why: 'the file was removed' });
          else if (before.some((p) => p.severity === 'error') && !problems.some((p) => p.severity === 'error')) configLog.info('config accepted', { file });
        },
      });
      await source.start();
      cleanups.push(() => source?.stop());
      log.info('config loaded', { dir: options.configDir, resources: store.all().length, filesWithProblems: problemsByFile.size });
    }

    // Kubernetes mode: every Kubernetes part is wired in @weft/kube's startKube (packages/kube/src/start.ts);
    // weftd only hands it the store here, its registries to pilot and the CA to attachCa below.
    let kube: Kube | undefined;
    if (options.kube) {
      kube = await startKube({
        discoverySelectors: mesh.discoverySelectors,
        ...(mesh.defaultServiceExportTo ? { defaultServiceExportTo: mesh.defaultServiceExportTo } : {}),
        ...options.kube,
        // The webhooks listen where every other port does, unless told otherwise.
        ...(options.kube.webhooks !== false ? { webhooks: { host, ...options.kube.webhooks } } : {}),
        // What pilot's Gateway API conversion computed, read from its newest push context.
        gatewayApi: options.kube.gatewayApi === false ? false : { ...options.kube.gatewayApi, statuses: () => discovery?.pushContext?.gatewayApi?.statuses.values() ?? [] },
        store,
        logger: (scope) => createLogger({ scope, ...logOptions }),
        domainSuffix: mesh.domainSuffix,
        trustDomain,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const started = kube;
      cleanups.push(() => started.close());
    }

    let discovery: DiscoveryServer | undefined;
    let xdsPort: number | undefined;
    const processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
    const refused = new Counter({ name: 'weftd_owner_guard_refused_connections_total', help: 'Connections refused because the peer process does not run as the owner UID (--owner-uid)', labelNames: ['port'], registers: [processMetrics] });
    const guard =
      options.ownerUid !== undefined
        ? new OwnerGuard({ ownerUid: options.ownerUid, logger: createLogger({ scope: 'guard', ...logOptions }), onRefused: (port) => refused.inc({ port }) })
        : undefined;
    if (guard) log.info('owner-only ports', { ownerUid: guard.ownerUid });
    if (options.xds !== false) {
      const seRegistry = new ServiceEntryRegistry(store, {
        domainSuffix: mesh.domainSuffix,
        trustDomain,
        ...(mesh.defaultServiceExportTo ? { defaultExportTo: mesh.defaultServiceExportTo } : {}),
        onListenerError: (e) => log.error('registry listener failed', { error: e }),
      });
      // Istio's precedence: a Kubernetes Service wins a hostname a ServiceEntry of its namespace also defines.
      const registry = new AggregateRegistry([...(kube?.registries ?? []), seRegistry]);
      cleanups.push(() => {
        registry.close();
        seRegistry.close();
      });
      // Istio's JwtKeyResolver: jwksUris fetched here and inlined; new keys push every proxy.
      const jwks = new JwksResolver({
        refreshIntervalMs: options.jwksRefreshIntervalMs ?? jwksRefreshFromEnv(log),
        onChange: () => pilot.pushAll('config'),
        logger: createLogger({ scope: 'jwks', ...logOptions }),
      });
      cleanups.push(() => jwks.close());
      const cluster = kube;
      const gatewayApi = cluster
        ? { deployment: { mode: 'managed' } as const, namespaceLabels: (ns: string) => cluster.namespaceLabels(ns) }
        : { deployment: { mode: 'shared', selector: { istio: 'ingressgateway' } } as const };
      const pilot: DiscoveryServer = new DiscoveryServer({
        store,
        registry,
        mesh,
        generators: { envoy: envoyGenerators, grpc: grpcGenerators },
        // Gateway API Gateways: a deployment per Gateway on Kubernetes (Istio's automated deployment);
        // in local mode the mesh's one ingress gateway (labels istio=ingressgateway) serves them all.
        buildPushContext: (input) => buildPushContext({ ...input, jwks, gatewayApi }),
        proxyFromNode: (node) => proxyFromNode(node, { domainSuffix: mesh.domainSuffix }),
        // Istio's push scoping: a config change regenerates only the proxies that see it.
        proxyNeedsPush,
        debounce: { ...(options.debounceMs !== undefined ? { quietMs: options.debounceMs } : {}), ...(options.debounceMaxMs !== undefined ? { maxMs: options.debounceMaxMs } : {}) },
        metrics: new PilotMetrics(),
        logger: createLogger({ scope: 'pilot', ...logOptions }),
        ...(options.shareGenerated === false ? {} : { cacheKey: proxyShapeKey }),
      });
      discovery = pilot;
      pilot.start();
      cleanups.push(() => pilot.stop());

      if (options.xdsPort !== 'off') {
        const xds = new GrpcServer({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000, 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
        xds.addService(pilot.serviceDefinition(), pilot.handlers());
        const bound = await bind(xds, host, options.xdsPort ?? 15010, GrpcServerCredentials.createInsecure(), guard, 'xds');
        xdsPort = bound.port;
        cleanups.push(() => {
          // ADS streams stay open for the proxy's lifetime: end them rather than wait.
          xds.forceShutdown();
          return bound.close();
        });
        log.info('xds listening', { port: xdsPort, address: host, tls: false, authenticated: false });
      } else log.info('plaintext xds off: xDS only over TLS on the CA port, authenticated');
    }

    // The CA: CSR signing (and xDS over TLS) on one port, as istiod does on 15012.
    let ca: CertificateAuthority | undefined;
    let caPort: number | undefined;
    const citadelMetrics = new CitadelMetrics(new Registry());
    if (options.ca !== false) {
      const citadelLog = createLogger({ scope: 'citadel', ...logOptions });
      // Keys: --ca-dir (files in Istio's cacerts layout) wins; in Kubernetes mode, Secrets in weftd's namespace.
      ca = options.caDir
        ? await CertificateAuthority.open(options.caDir, { trustDomain, logger: citadelLog })
        : kube
          ? await kube.openCa({ trustDomain, logger: citadelLog })
          : new CertificateAuthority(await CertificateAuthority.generateRoot({ trustDomain }), { trustDomain, logger: citadelLog });
      if (!options.caDir && !kube) citadelLog.info('generated an in-memory root CA (use --ca-dir to keep one)', { trustDomain });
      const serving = new ServingCertificateProvider(ca, {}, citadelLog);
      await serving.start();
      cleanups.push(() => serving.stop());
      const secure = new GrpcServer({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 });
      secure.addService(caServiceDefinition(), createCaServiceHandlers({ ca, metrics: citadelMetrics, logger: citadelLog, ...(kube ? { platformTokens: kube.platformTokens } : {}) }));
      // The same caller authentication as the CA's (with Kubernetes, projected tokens too); then the node must match the identity.
      if (discovery) secure.addService(discovery.serviceDefinition(), discovery.handlers({ authenticate: callerAuthenticator(ca, kube?.platformTokens) }));
      const bound = await bind(secure, host, options.caPort ?? 15012, serving.credentials(), guard, 'ca');
      caPort = bound.port;
      cleanups.push(() => {
        secure.forceShutdown();
        return bound.close();
      });
      if (kube) await kube.attachCa(ca);
      log.info('ca listening', {
        port: caPort,
        address: host,
        tls: true,
        services: ['istio.v1.auth.IstioCertificateService', ...(discovery ? ['envoy.service.discovery.v3.AggregatedDiscoveryService'] : [])],
      });
    }

    let ready = false;
    const monitoring = await MonitoringServer.start({
      host,
      port: options.monitoringPort ?? 15014,
      ...(discovery ? { discovery } : {}),
      store,
      registries: [processMetrics, ...(ca ? [citadelMetrics.registry] : [])],
      ready: () => ready,
      debug: {
        ...kube?.debug,
        // Gateway API statuses as the last push context computed them (on Kubernetes they are also written to the objects).
        '/debug/gateway_api_status': () => [...(discovery?.pushContext?.gatewayApi?.statuses.values() ?? [])],
        '/debug/config_problems': () => Object.fromEntries([...problemsByFile].map(([f, ps]) => [f, ps.map((p) => ({ ...p, resource: subjects.get(p), text: formatProblem(p, subjects.get(p)) }))])),
      },
      logger: createLogger({ scope: 'monitoring', ...logOptions }),
      ...(guard ? { protect: (server: HttpServer, port: string) => void guard.protect(server, port) } : {}),
    });
    cleanups.push(() => monitoring.close());
    log.info('monitoring listening', { port: monitoring.port, address: host, endpoints: ['/healthz', '/metrics', '/debug/configz', '/debug/syncz', '/debug/push_status', '/debug/describe', '/debug/config_problems', ...Object.keys(kube?.debug ?? {})] });
    ready = true;
    log.info('weftd ready', { xdsPort, caPort, monitoringPort: monitoring.port, configDir: options.configDir, kube: kube?.server, trustDomain });

    return {
      xdsPort,
      caPort,
      monitoringPort: monitoring.port,
      store,
      discovery,
      ca,
      kube,
      problems: () => Object.fromEntries(problemsByFile),
      close: async () => {
        ready = false;
        await close();
        log.info('weftd stopped');
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}
