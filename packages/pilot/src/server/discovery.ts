// The ADS server: tracks each stream's watches, versions and nonces, answers requests and pushes
// debounced changes. It never builds config: generators do, from one immutable push context.
import { hash, randomBytes } from 'node:crypto';
import { type ServerCredentials, type ServerDuplexStream, Server as GrpcServer, ServerCredentials as GrpcServerCredentials, status } from '@grpc/grpc-js';
import type { ConfigStore } from '@weft/model';
import {
  type AggregatedDiscoveryServiceDefinition,
  type AggregatedDiscoveryServiceHandlers,
  type Any__Output,
  adsServiceDefinition,
  conversionOptions,
  type DeltaDiscoveryRequest__Output,
  type DiscoveryRequest__Output,
  encodeAny,
  messageType,
  type Node__Output,
  type RouteConfiguration,
  type Status__Output,
  TypeUrl,
} from '@weft/xds';
import type { MeshConfig, Proxy as MeshProxy, PushContext, ServiceRegistry, XdsResource } from '../core/types.ts';
import { checkProxyIdentity, type XdsAuthentication, type XdsAuthenticator } from './authentication.ts';
import { absentVersion, Connection, WatchedType, type XdsMode } from './connection.ts';
import { createLogger, type Logger } from '@weft/model';
import { PilotMetrics } from './metrics.ts';
import { type DebounceOptions, Debouncer, defaultDebounce, monotonicMs, PushRequest, type TriggerReason } from './push-request.ts';
import { clusterHost, type Generators, isFullStateType, isWildcardType, orderTypes, shortTypeName } from './types.ts';
import { decodeDiscoveryRequest, deltaResourceField, deltaResponse, drain, routeConfigurationSteps, sotwResourceField, sotwResponse } from './wire.ts';

export interface PushContextInput {
  store: ConfigStore;
  registry: ServiceRegistry;
  mesh?: MeshConfig;
  version: string;
}

export type PushContextBuilder = (input: PushContextInput) => PushContext;

/** Parses a connecting client's node (id and metadata); throws for a node it cannot accept. */
export type ProxyParser = (node: Node__Output) => MeshProxy;

/**
 * A key under which generated resources may be shared between proxies within one push context, or
 * undefined to generate for this proxy alone. Two proxies with equal keys must get equal output
 * from the generators: the key must cover every proxy field the generators of that type read.
 */
export type CacheKeyFn = (typeUrl: string, proxy: MeshProxy, push: PushContext) => string | undefined;

export interface DiscoveryServerOptions {
  store: ConfigStore;
  registry: ServiceRegistry;
  mesh?: MeshConfig;
  generators: Generators;
  buildPushContext: PushContextBuilder;
  proxyFromNode: ProxyParser;
  debounce?: Partial<DebounceOptions>;
  metrics?: PilotMetrics;
  logger?: Logger;
  cacheKey?: CacheKeyFn;
  /** Connections pushed to before yielding to the event loop, so ACKs and new streams are not starved. */
  pushBatchSize?: number;
  /**
   * A push also yields to the event loop whenever it has run this long (ms, default 50), between
   * connections and between the types of one connection: a big config makes each proxy's
   * generation long, and health checks, ACKs and keepalives must still be answered.
   */
  pushSliceMs?: number;
  /**
   * Response bytes the transport may hold for all streams together (default 64 MiB). Above it,
   * pushes wait and requests queue until slow readers catch up, so memory stays bounded.
   */
  maxInflightBytes?: number;
}

export interface PushError {
  proxy: string;
  typeUrl: string;
  message: string;
}

/** The last push, as /debug/push_status shows it. */
export interface PushStatus {
  version: string;
  /** The config store's revision the push context was built from: a push with this or a later one carries every change up to it. */
  configRevision: number;
  /** When the push finished. */
  time: string;
  /** Building the push context and sending to every proxy, ms. */
  durationMs: number;
  /** Building the push context alone, ms. */
  buildMs: number;
  /** Waiting in the debouncer: first change of the batch to the start of the push, ms. */
  debounceMs: number;
  full: boolean;
  /** Types regenerated in full (`all`), or the list. */
  types: 'all' | string[];
  /** Hostnames whose endpoints changed (EDS only for their clusters). */
  edsHosts: string[];
  /** The changed configs (`VirtualService default/reviews`), the first `maxListedConfigs` by name. */
  configs: string[];
  /** How many more changed than `configs` lists. */
  moreConfigs: number;
  reasons: Partial<Record<TriggerReason, number>>;
  proxies: number;
  proxiesPushed: number;
  responses: number;
  errors: PushError[];
}

export interface TypeSyncStatus {
  /** `ACKED`, `NACKED` (the last response was rejected), `SENT` (awaiting an answer) or `NOT_SENT`. */
  status: 'ACKED' | 'NACKED' | 'SENT' | 'NOT_SENT';
  sent: string;
  acked: string;
  nacked: string;
  nackReason: string;
  sentNonce: string;
  resources: number;
  subscribed: '*' | string[];
  lastSent?: string;
  lastAcked?: string;
  lastNacked?: string;
}

/** One connected proxy, as /debug/syncz shows it. */
export interface ProxySyncStatus {
  id: string;
  connectionId: string;
  mode: XdsMode;
  generator: MeshProxy['generator'];
  peer: string;
  connectedAt: string;
  /** Whether the stream proved an identity (TLS port); false on the plaintext port. */
  authenticated: boolean;
  /** The SPIFFE ID the node was checked against (authenticated streams only). */
  identity?: string;
  /** How the identity was proved: `mtls` (client certificate) or `token` (bootstrap bearer token). */
  authn?: string;
  /** The push context version the proxy's config was last generated from. */
  pushVersion: string;
  /** Change-to-ACK time of the last fully acknowledged push, ms. */
  convergenceMs?: number;
  types: Record<string, TypeSyncStatus>;
}

export type DiscoveryEvent =
  | { type: 'connect'; connection: Connection }
  | { type: 'disconnect'; connection: Connection }
  | { type: 'ack'; connection: Connection; typeUrl: string; version: string }
  | { type: 'nack'; connection: Connection; typeUrl: string; version: string; reason: string }
  | { type: 'converged'; connection: Connection; version: string; ms: number }
  | { type: 'push'; status: PushStatus };

interface EncodedResource {
  name: string;
  /** Hash of the encoded bytes: equal bytes, equal version. */
  version: string;
  any: Any__Output;
  /** The resource as a DiscoveryResponse / DeltaDiscoveryResponse field, encoded on first use. */
  sotwField?: Buffer;
  deltaField?: Buffer;
}

interface Generated {
  /** Distinguishes generated sets within a process (part of shared nonces). */
  id: number;
  resources: EncodedResource[];
  byName: Map<string, EncodedResource>;
  /**
   * The whole set as one encoded DiscoveryResponse, built on first use and sent as it is to every
   * proxy that gets the whole set. Its nonce is shared too: a nonce only has to tell a stream's
   * responses of one type apart, and equal bytes at one version are the same response.
   */
  sotwMessage?: { version: string; nonce: string; bytes: Buffer };
}

let generatedCounter = 0;

function sotwField(r: EncodedResource): Buffer {
  r.sotwField ??= sotwResourceField(r.any);
  return r.sotwField;
}

function deltaField(r: EncodedResource): Buffer {
  r.deltaField ??= deltaResourceField(r.name, r.version, r.any);
  return r.deltaField;
}

// Resource names arrive as fresh strings in every request (EDS: one per cluster, from every
// proxy); sharing one copy keeps a thousand proxies' subscriptions from holding a thousand copies.
const internTable = new Map<string, string>();
const maxInterned = 500_000;

function intern(name: string): string {
  const seen = internTable.get(name);
  if (seen !== undefined) return seen;
  if (internTable.size < maxInterned) internTable.set(name, name);
  return name;
}

interface RespondOptions {
  /** Send even if the client already has all of it (answering a request). */
  force: boolean;
  /** Generate only these names (subscription additions, endpoint-only pushes); default: the whole subscription. */
  names?: string[];
  /** The push's first change (monotonic ms): the response counts toward convergence. */
  start?: number;
}

const maxCacheEntries = 20_000;

/** Changed configs a push status names (one apply may change thousands; the status is polled). */
const maxListedConfigs = 100;

function resourceVersion(bytes: Buffer): string {
  return hash('sha1', bytes, 'base64url').slice(0, 16);
}

/** Encodes generated resources; a step generator that pauses within big route configurations (wire.ts). */
function* encodeResources(typeUrl: string, out: readonly XdsResource[]): Generator<void, Generated, void> {
  const resources: EncodedResource[] = [];
  const byName = new Map<string, EncodedResource>();
  for (const r of out) {
    const any =
      typeUrl === TypeUrl.RouteConfiguration
        ? { type_url: typeUrl, value: yield* routeConfigurationSteps(r.resource as RouteConfiguration) }
        : encodeAny(typeUrl, r.resource as Record<string, unknown>);
    const e: EncodedResource = { name: r.name, version: resourceVersion(any.value), any };
    if (byName.has(r.name)) throw new Error(`generator returned ${r.name} twice`);
    byName.set(r.name, e);
    resources.push(e);
  }
  return { id: ++generatedCounter, resources, byName };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function iso(d: Date | undefined): string | undefined {
  return d?.toISOString();
}

/**
 * Serves ADS (state of the world and delta) from push contexts built by `buildPushContext`, and
 * pushes every debounced config or registry change to the connected proxies.
 *
 * Concurrency: everything runs on Node's event loop. A push walks the connections in batches and
 * yields between them; requests arriving meanwhile are answered from the newest push context.
 * Pushes never overlap: changes arriving during one are merged into the next.
 */
export class DiscoveryServer {
  readonly metrics: PilotMetrics;
  readonly #opts: DiscoveryServerOptions;
  readonly #log: Logger;
  readonly #debouncer: Debouncer;
  readonly #connections = new Map<string, Connection>();
  readonly #listeners = new Set<(event: DiscoveryEvent) => void>();
  readonly #cache = new Map<string, Generated>();
  readonly #noncePrefix = randomBytes(4).toString('hex');
  #nonceCounter = 0;
  #connectionCounter = 0;
  #versionCounter = 0;
  #push: PushContext | undefined;
  #lastPush: PushStatus | undefined;
  #pushing: Promise<void> | undefined;
  #queued: PushRequest | undefined;
  #unsubscribe: (() => void)[] = [];
  #grpc: GrpcServer | undefined;
  readonly #missingGenerators = new Set<string>();
  readonly #maxInflight: number;
  #inflight = 0;
  /** Requests waiting for the transport to drain, in arrival order. */
  readonly #deferred: (() => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  #deferTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: DiscoveryServerOptions) {
    this.#opts = options;
    this.#log = options.logger ?? createLogger({ scope: 'pilot' });
    this.metrics = options.metrics ?? new PilotMetrics();
    this.#debouncer = new Debouncer({ ...defaultDebounce, ...options.debounce }, (req) => this.#enqueue(req));
    this.#maxInflight = options.maxInflightBytes ?? 64 * 1024 * 1024;
  }

  /** Builds the first push context and starts following the store and the registry. */
  start(): void {
    if (this.#push) return;
    const t0 = monotonicMs();
    const configRevision = this.#opts.store.revision;
    const push = this.#build();
    this.#setPush(push);
    this.#lastPush = {
      version: push.version,
      configRevision,
      time: new Date().toISOString(),
      durationMs: monotonicMs() - t0,
      buildMs: monotonicMs() - t0,
      debounceMs: 0,
      full: true,
      types: 'all',
      edsHosts: [],
      configs: [],
      moreConfigs: 0,
      reasons: {},
      proxies: 0,
      proxiesPushed: 0,
      responses: 0,
      errors: [],
    };
    this.#unsubscribe.push(this.#opts.store.watch((event) => this.#debouncer.add(new PushRequest().addConfig(event.config))));
    this.#unsubscribe.push(this.#opts.registry.onChange((change) => this.#debouncer.add(new PushRequest().addRegistryChange(change))));
    this.#log.info('push context ready', { version: push.version, services: push.services.length, buildMs: Math.round(this.#lastPush.buildMs) });
  }

  /** Stops following changes, ends every stream and the gRPC server (if `listen` started one). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    this.#debouncer.stop();
    while (this.#pushing) await this.#pushing;
    if (this.#deferTimer) clearTimeout(this.#deferTimer);
    this.#deferTimer = undefined;
    this.#deferred.length = 0;
    const server = this.#grpc;
    this.#grpc = undefined;
    // ADS streams never end on their own, so a graceful shutdown would only wait: end them now.
    server?.forceShutdown();
    for (const c of [...this.#connections.values()]) this.#close(c);
  }

  /**
   * @weft/xds's ADS definition, with response serializers that pass through the bytes the server
   * encodes itself. Use it with `handlers()`: `server.addService(d.serviceDefinition(), d.handlers())`.
   */
  serviceDefinition(): AggregatedDiscoveryServiceDefinition {
    const base = adsServiceDefinition();
    const sotw = base.StreamAggregatedResources;
    const nested = {
      node: (b: Buffer) => messageType('envoy.config.core.v3.Node').toObject(messageType('envoy.config.core.v3.Node').decode(b), conversionOptions) as Node__Output,
      status: (b: Buffer) => messageType('google.rpc.Status').toObject(messageType('google.rpc.Status').decode(b), conversionOptions) as Status__Output,
    };
    return {
      ...base,
      StreamAggregatedResources: {
        ...sotw,
        requestDeserialize: (b: Buffer) => {
          try {
            return decodeDiscoveryRequest(b, nested);
          } catch {
            return sotw.requestDeserialize(b);
          }
        },
        responseSerialize: passThrough(sotw.responseSerialize),
      },
      DeltaAggregatedResources: { ...base.DeltaAggregatedResources, responseSerialize: passThrough(base.DeltaAggregatedResources.responseSerialize) },
    };
  }

  /**
   * The ADS handlers; they write encoded responses, so register them with `serviceDefinition()`.
   * With `authenticate` (the TLS port), every stream must prove an identity and its node must
   * belong to it; without (the plaintext port), streams are served unauthenticated.
   */
  handlers(options: { authenticate?: XdsAuthenticator } = {}): AggregatedDiscoveryServiceHandlers {
    const { authenticate } = options;
    return {
      StreamAggregatedResources: (call) => this.#stream(call, 'sotw', authenticate),
      DeltaAggregatedResources: (call) => this.#stream(call, 'delta', authenticate),
    };
  }

  /** Starts a gRPC server with ADS on `host:port` (port 0 picks a free port); resolves to the bound port. */
  async listen(options: { host?: string; port?: number; credentials?: ServerCredentials; authenticate?: XdsAuthenticator } = {}): Promise<number> {
    if (!this.#push) this.start();
    const server = new GrpcServer({
      // Envoy keeps one ADS stream open for its lifetime; keepalives find dead peers.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
    });
    server.addService(this.serviceDefinition(), this.handlers(options.authenticate ? { authenticate: options.authenticate } : {}));
    const host = options.host ?? '127.0.0.1';
    const target = host.includes(':') ? `[${host}]:${options.port ?? 15010}` : `${host}:${options.port ?? 15010}`;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(target, options.credentials ?? GrpcServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    this.#grpc = server;
    return port;
  }

  /** The push context in force (undefined before `start`). */
  get pushContext(): PushContext | undefined {
    return this.#push;
  }

  get lastPush(): PushStatus | undefined {
    return this.#lastPush;
  }

  get connections(): readonly Connection[] {
    return [...this.#connections.values()];
  }

  /** Listens to connections, ACKs, NACKs and pushes (tests, benchmarks, debug). Returns an unsubscribe function. */
  onEvent(listener: (event: DiscoveryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Queues a push of everything to every proxy (the debug "push all"), through the debouncer. */
  pushAll(reason: TriggerReason = 'debug'): void {
    this.#debouncer.add(PushRequest.all(reason));
  }

  /** Pushes what the debouncer holds now and resolves when every queued push has finished. */
  async flush(): Promise<void> {
    this.#debouncer.flush();
    while (this.#pushing) await this.#pushing;
  }

  syncStatus(): ProxySyncStatus[] {
    return this.connections.map((c) => {
      const types: Record<string, TypeSyncStatus> = {};
      for (const type of orderTypes(c.watched.keys())) {
        const w = c.watched.get(type)!;
        const state: TypeSyncStatus['status'] =
          w.nonceSent === '' ? 'NOT_SENT' : w.nonceAcked === w.nonceSent ? 'ACKED' : w.nonceNacked === w.nonceSent ? 'NACKED' : 'SENT';
        const t: TypeSyncStatus = {
          status: state,
          sent: w.versionSent,
          acked: w.versionAcked,
          nacked: w.versionNacked,
          nackReason: w.nackReason,
          sentNonce: w.nonceSent,
          resources: w.resourcesSent,
          subscribed: w.wildcard ? '*' : [...w.names].sort(),
        };
        const sent = iso(w.sentAt);
        if (sent) t.lastSent = sent;
        const acked = iso(w.ackedAt);
        if (acked) t.lastAcked = acked;
        const nacked = iso(w.nackedAt);
        if (nacked) t.lastNacked = nacked;
        types[type] = t;
      }
      const s: ProxySyncStatus = {
        id: c.proxy.id,
        connectionId: c.id,
        mode: c.mode,
        generator: c.proxy.generator,
        peer: c.peer,
        connectedAt: c.connectedAt.toISOString(),
        authenticated: c.identity !== undefined,
        ...(c.identity !== undefined ? { identity: c.identity } : {}),
        ...(c.authn !== undefined ? { authn: c.authn } : {}),
        pushVersion: c.pushVersion,
        types,
      };
      if (c.lastConvergenceMs !== undefined) s.convergenceMs = Math.round(c.lastConvergenceMs * 1000) / 1000;
      return s;
    });
  }

  // ------------------------------------------------------------------ push pipeline

  #build(): PushContext {
    const version = String(++this.#versionCounter);
    const input: PushContextInput = { store: this.#opts.store, registry: this.#opts.registry, version };
    if (this.#opts.mesh) input.mesh = this.#opts.mesh;
    return this.#opts.buildPushContext(input);
  }

  #setPush(push: PushContext): void {
    this.#push = push;
    this.#cache.clear();
    const n = Number(push.version);
    if (Number.isFinite(n)) this.metrics.pushVersion.set(n);
  }

  #enqueue(req: PushRequest): void {
    if (req.empty || this.#stopped) return;
    for (const [reason, n] of req.reasons) this.metrics.pushTriggers.inc({ type: reason }, n);
    if (this.#pushing) {
      this.#queued = this.#queued ? this.#queued.merge(req) : req;
      return;
    }
    this.#pushing = this.#runPush(req).finally(() => {
      this.#pushing = undefined;
      const next = this.#queued;
      this.#queued = undefined;
      if (next) this.#enqueue(next);
    });
  }

  async #runPush(req: PushRequest): Promise<void> {
    const t0 = monotonicMs();
    const configRevision = this.#opts.store.revision;
    let push: PushContext;
    try {
      push = this.#build();
    } catch (err) {
      this.metrics.contextErrors.inc();
      this.#log.error('building the push context failed; the previous one stays in force', { error: errorMessage(err), configs: [...req.configs] });
      return;
    }
    const buildMs = monotonicMs() - t0;
    this.#setPush(push);
    const errors: PushError[] = [];
    const batch = Math.max(1, this.#opts.pushBatchSize ?? 50);
    const slice = new TimeSlice(this.#opts.pushSliceMs ?? 50);
    const conns = this.connections;
    let proxiesPushed = 0;
    let responses = 0;
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i]!;
      if (!c.closed && this.#push === push) {
        const n = await this.#pushConnection(c, push, req, errors, slice);
        responses += n;
        if (n > 0) proxiesPushed++;
      }
      if (this.#inflight > this.#maxInflight) {
        await this.#drained();
        slice.reset();
      } else if ((i + 1) % batch === 0 || slice.over()) await slice.yield();
    }
    const reasons: Partial<Record<TriggerReason, number>> = {};
    for (const [k, n] of req.reasons) reasons[k] = n;
    const status: PushStatus = {
      version: push.version,
      configRevision,
      time: new Date().toISOString(),
      durationMs: monotonicMs() - t0,
      buildMs,
      debounceMs: Math.max(0, t0 - req.start),
      full: req.full,
      types: req.allTypes ? 'all' : orderTypes(req.types),
      edsHosts: [...req.edsHosts].sort(),
      configs: [...req.configs].sort().slice(0, maxListedConfigs),
      moreConfigs: Math.max(0, req.configs.size - maxListedConfigs),
      reasons,
      proxies: conns.length,
      proxiesPushed,
      responses,
      errors,
    };
    this.#lastPush = status;
    this.#log.info('pushed', {
      version: status.version,
      full: status.full,
      types: status.types === 'all' ? 'all' : status.types.map(shortTypeName),
      edsHosts: status.edsHosts.length,
      configs: status.configs.slice(0, 20),
      configCount: status.configs.length + status.moreConfigs,
      proxies: status.proxies,
      proxiesPushed,
      responses,
      errors: errors.length,
      buildMs: Math.round(buildMs * 10) / 10,
      durationMs: Math.round(status.durationMs * 10) / 10,
    });
    this.#emit({ type: 'push', status });
  }

  /** Sends one push to one connection; returns the number of responses sent. */
  async #pushConnection(conn: Connection, push: PushContext, req: PushRequest, errors: PushError[], slice: TimeSlice): Promise<number> {
    let sent = 0;
    for (const type of orderTypes(conn.watched.keys())) {
      if (slice.over()) {
        await slice.yield();
        if (conn.closed) break;
      }
      const w = conn.watched.get(type)!;
      const scope = req.scopeOf(type);
      if (scope === 'none' || w.idle) continue;
      const options: RespondOptions = { force: false, start: req.start };
      if (scope === 'hosts') {
        // Endpoint-only change: only the clusters of the hosts whose endpoints changed.
        const names: string[] = [];
        for (const n of w.names) {
          const host = clusterHost(n);
          if (host !== undefined && req.edsHosts.has(host)) names.push(n);
        }
        if (names.length === 0) continue;
        options.names = names.sort();
      }
      const t = monotonicMs();
      const result = await this.#respondInPush(conn, w, push, options, slice);
      if (result === 'sent') {
        sent++;
        this.metrics.pushTime.observe({ type: shortTypeName(type) }, (monotonicMs() - t) / 1000);
      } else if (result instanceof Error) {
        errors.push({ proxy: conn.proxy.id, typeUrl: type, message: result.message });
      }
    }
    if (!conn.closed) conn.pushVersion = push.version;
    return sent;
  }

  // ------------------------------------------------------------------ streams

  #stream(
    call: ServerDuplexStream<DiscoveryRequest__Output, unknown> | ServerDuplexStream<DeltaDiscoveryRequest__Output, unknown>,
    mode: XdsMode,
    authenticate: XdsAuthenticator | undefined,
  ): void {
    if (!authenticate) {
      this.#serveStream(call, mode, undefined);
      return;
    }
    let result: ReturnType<XdsAuthenticator>;
    try {
      result = authenticate(call);
    } catch (err) {
      result = { reason: `authenticator failed: ${errorMessage(err)}` };
    }
    if (!(result instanceof Promise)) {
      this.#serveStream(call, mode, result);
      return;
    }
    // No 'data' listener until the answer: the stream buffers the client's requests meanwhile.
    let gone = false;
    call.once('cancelled', () => {
      gone = true;
    });
    void result
      .catch((err: unknown): XdsAuthentication => ({ reason: `authenticator failed: ${errorMessage(err)}` }))
      .then((r) => {
        if (!gone) this.#serveStream(call, mode, r);
      });
  }

  /** Serves a stream once its caller is known: `authentication` undefined on an unauthenticated port. */
  #serveStream(
    call: ServerDuplexStream<DiscoveryRequest__Output, unknown> | ServerDuplexStream<DeltaDiscoveryRequest__Output, unknown>,
    mode: XdsMode,
    authentication: XdsAuthentication | undefined,
  ): void {
    let conn: Connection | undefined;
    let ended = false;
    const fail = (code: status, details: string) => {
      ended = true;
      this.#log.warn('closing xDS stream', { peer: call.getPeer(), code: status[code], reason: details, ...(conn ? { proxy: conn.proxy.id } : {}) });
      call.emit('error', { code, details });
    };
    // Refused streams never become connections: nothing is generated for them and they are not in syncz.
    const refuse = (code: status.UNAUTHENTICATED | status.PERMISSION_DENIED, details: string, fields: Record<string, unknown>) => {
      ended = true;
      const reason = code === status.UNAUTHENTICATED ? 'unauthenticated' : 'permission_denied';
      this.metrics.refused.inc({ reason });
      this.#log.warn(code === status.UNAUTHENTICATED ? 'xDS stream refused: client not authenticated' : 'xDS stream refused: node does not match the authenticated identity', {
        peer: call.getPeer(),
        code: status[code],
        ...fields,
      });
      call.emit('error', { code, details });
    };
    let identities: readonly string[] | undefined;
    let authn: string | undefined;
    if (authentication) {
      const result = authentication;
      if (result.identities === undefined || result.identities.length === 0) {
        // Refused either way; the first request only tells the log which node it claimed to be.
        const reason = result.identities === undefined ? result.reason : 'no identity';
        const timer = setTimeout(() => {
          if (!ended) refuse(status.UNAUTHENTICATED, 'authentication failure', { reason });
        }, 1000);
        const stop = () => {
          ended = true;
          clearTimeout(timer);
        };
        call.once('data', (req: DiscoveryRequest__Output | DeltaDiscoveryRequest__Output) => {
          clearTimeout(timer);
          if (!ended) refuse(status.UNAUTHENTICATED, 'authentication failure', { node: req.node?.id ?? '', reason });
        });
        call.on('cancelled', stop);
        call.on('end', stop);
        return;
      }
      identities = result.identities;
      authn = result.via;
    }
    const close = () => {
      if (conn) this.#close(conn);
    };
    const write = (message: Buffer, done: () => void) => (call as ServerDuplexStream<unknown, Buffer>).write(message, done);
    const handle = (req: DiscoveryRequest__Output | DeltaDiscoveryRequest__Output) => {
      if (ended || conn?.closed) return;
      try {
        if (!conn) {
          if (!this.#push) return fail(status.UNAVAILABLE, 'server is not ready to serve discovery information');
          const node = req.node;
          if (!node?.id) return fail(status.INVALID_ARGUMENT, 'missing node information');
          let proxy: MeshProxy;
          try {
            proxy = this.#opts.proxyFromNode(node);
          } catch (err) {
            return fail(status.INVALID_ARGUMENT, `invalid node: ${errorMessage(err)}`);
          }
          let identity: string | undefined;
          if (identities) {
            const checked = checkProxyIdentity(proxy, identities);
            if (checked.identity === undefined) {
              return refuse(status.PERMISSION_DENIED, `authorization failed: ${checked.reason}`, {
                node: node.id,
                identities,
                namespace: proxy.namespace,
                ...(proxy.serviceAccount ? { serviceAccount: proxy.serviceAccount } : {}),
                reason: checked.reason,
              });
            }
            identity = checked.identity;
          }
          conn = new Connection({
            id: `${proxy.id}-${++this.#connectionCounter}`,
            proxy,
            mode,
            peer: call.getPeer(),
            ...(identity !== undefined ? { identity } : {}),
            ...(authn !== undefined ? { authn } : {}),
            write,
          });
          this.#connections.set(conn.id, conn);
          this.metrics.connected.inc();
          this.#log.info('xDS stream connected', {
            proxy: proxy.id,
            connection: conn.id,
            mode,
            generator: proxy.generator,
            peer: conn.peer,
            ...(identity !== undefined ? { identity, authn } : { authenticated: false }),
          });
          this.#emit({ type: 'connect', connection: conn });
        }
        if (!req.type_url) return fail(status.INVALID_ARGUMENT, 'request without type_url');
        if (mode === 'sotw') this.#onSotwRequest(conn, req as DiscoveryRequest__Output);
        else this.#onDeltaRequest(conn, req as DeltaDiscoveryRequest__Output);
      } catch (err) {
        this.#log.error('xDS request failed', { error: errorMessage(err), ...(conn ? { proxy: conn.proxy.id } : {}) });
        fail(status.INTERNAL, errorMessage(err));
      }
    };
    call.on('data', (req: DiscoveryRequest__Output | DeltaDiscoveryRequest__Output) => {
      // While slow readers hold too many response bytes, requests wait their turn (in order).
      if (this.#deferred.length > 0 || this.#inflight > this.#maxInflight) {
        this.#deferred.push(() => handle(req));
        // A reader that never drains must not hold everyone else's requests for long.
        this.#deferTimer ??= setTimeout(() => {
          this.#deferTimer = undefined;
          for (const run of this.#deferred.splice(0)) run();
        }, 1000);
      } else handle(req);
    });
    call.on('end', () => {
      close();
      call.end();
    });
    call.on('cancelled', close);
    call.on('error', close);
    call.on('close', close);
  }

  /** Writes a response, counting its bytes until the transport takes them. */
  #write(conn: Connection, bytes: Buffer): void {
    const n = bytes.length;
    conn.pendingBytes += n;
    this.#inflight += n;
    conn.write(bytes, () => {
      if (conn.closed) return;
      conn.pendingBytes -= n;
      this.#inflight -= n;
      this.#onDrain();
    });
  }

  #onDrain(): void {
    while (this.#deferred.length > 0 && this.#inflight <= this.#maxInflight) this.#deferred.shift()!();
    if (this.#deferred.length === 0 && this.#deferTimer) {
      clearTimeout(this.#deferTimer);
      this.#deferTimer = undefined;
    }
    if (this.#inflight <= this.#maxInflight / 2 && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves when the transport holds at most half the limit, or after a second (a stuck reader must not stop pushes). */
  #drained(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 1000);
      this.#drainWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #close(conn: Connection): void {
    if (!this.#connections.delete(conn.id)) return;
    conn.closed = true;
    this.#inflight -= conn.pendingBytes;
    conn.pendingBytes = 0;
    queueMicrotask(() => this.#onDrain());
    this.metrics.connected.dec();
    this.#log.info('xDS stream closed', { proxy: conn.proxy.id, connection: conn.id });
    this.#emit({ type: 'disconnect', connection: conn });
  }

  /** State of the world: ACK/NACK by nonce, subscription changes by comparing names. */
  #onSotwRequest(conn: Connection, req: DiscoveryRequest__Output): void {
    const type = req.type_url;
    const push = this.#push!;
    let w = conn.watched.get(type);

    if (req.error_detail) {
      // A NACK of anything but the last response is stale; the client has since been sent newer config.
      if (!w || req.response_nonce !== w.nonceSent) {
        if (w) this.metrics.expiredNonce.inc({ type: shortTypeName(type) });
        return;
      }
      if (w.nonceNacked !== req.response_nonce) this.#recordNack(conn, w, req.error_detail.message || `status ${req.error_detail.code}`);
      // The rejected version is not sent again; a changed subscription is still answered.
      const added = setSotwNames(w, req);
      if (added === undefined) return;
      if (isWildcardType(type)) this.#respondToRequest(conn, w, push, undefined);
      else if (added.length > 0) this.#respondToRequest(conn, w, push, added);
      return;
    }

    if (!w || req.response_nonce === '') {
      // First request for the type on this stream (or a client that starts over): answer in full.
      w = new WatchedType(type);
      conn.watched.set(type, w);
      setSotwNames(w, req);
      if (w.idle) return;
      this.#respondToRequest(conn, w, push, undefined);
      if (type === TypeUrl.Cluster) {
        // Envoy warms new clusters by re-requesting EDS with unchanged names; answer that request.
        const eds = conn.watched.get(TypeUrl.ClusterLoadAssignment);
        if (eds) eds.alwaysRespond = true;
      }
      return;
    }

    if (req.response_nonce !== w.nonceSent) {
      this.metrics.expiredNonce.inc({ type: shortTypeName(type) });
      return;
    }

    this.#recordAck(conn, w);
    const added = setSotwNames(w, req);
    if (w.alwaysRespond) {
      w.alwaysRespond = false;
      if (!w.idle) this.#respondToRequest(conn, w, push, undefined);
      return;
    }
    if (added === undefined) return;
    if (isWildcardType(type)) this.#respondToRequest(conn, w, push, undefined);
    else if (added.length > 0) this.#respondToRequest(conn, w, push, added);
  }

  /** Delta: ACK/NACK by nonce; subscribe and unsubscribe lists change the watch. */
  #onDeltaRequest(conn: Connection, req: DeltaDiscoveryRequest__Output): void {
    const type = req.type_url;
    const push = this.#push!;
    let w = conn.watched.get(type);

    if (!w) {
      w = new WatchedType(type);
      conn.watched.set(type, w);
      const subscribe = req.resource_names_subscribe;
      w.wildcard = subscribe.includes('*') || (isWildcardType(type) && subscribe.length === 0);
      for (const n of subscribe) if (n !== '*') w.names.add(intern(n));
      // A reconnecting client says what it has; only differences are sent.
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) w.known.set(name, version);
      if (w.idle) return;
      this.#respondToRequest(conn, w, push, undefined);
      if (type === TypeUrl.Cluster) {
        // The server must follow a CDS answer with EDS, whether or not the client asks (Envoy issue 33607).
        const eds = conn.watched.get(TypeUrl.ClusterLoadAssignment);
        if (eds && !eds.idle) this.#respondToRequest(conn, eds, push, undefined);
      }
      return;
    }

    if (req.response_nonce !== '') {
      if (req.response_nonce !== w.nonceSent) this.metrics.expiredNonce.inc({ type: shortTypeName(type) });
      else if (req.error_detail) {
        if (w.nonceNacked !== req.response_nonce) this.#recordNack(conn, w, req.error_detail.message || `status ${req.error_detail.code}`);
      } else if (w.nonceAcked !== req.response_nonce) this.#recordAck(conn, w);
    }

    // Subscription changes are deltas, so they are applied even on a stale nonce (unlike SotW, the
    // next request would not repeat them).
    const added: string[] = [];
    let wildcardAdded = false;
    for (const n of req.resource_names_subscribe) {
      if (n === '*') {
        wildcardAdded ||= !w.wildcard;
        w.wildcard = true;
        continue;
      }
      w.names.add(intern(n));
      // An explicit (re)subscription is answered even if we believe the client has the resource.
      w.known.delete(n);
      added.push(n);
    }
    for (const n of req.resource_names_unsubscribe) {
      if (n === '*') w.wildcard = false;
      else {
        w.names.delete(n);
        if (!w.wildcard) w.known.delete(n);
      }
    }
    if (wildcardAdded) this.#respondToRequest(conn, w, push, undefined);
    else if (added.length > 0) this.#respondToRequest(conn, w, push, added.sort());
    else if (w.alwaysRespond && !w.idle) {
      w.alwaysRespond = false;
      this.#respondToRequest(conn, w, push, undefined);
    }
  }

  #respondToRequest(conn: Connection, w: WatchedType, push: PushContext, names: string[] | undefined): void {
    const options: RespondOptions = { force: true };
    if (names) options.names = names;
    const result = this.#respond(conn, w, push, options);
    if (result instanceof Error) this.#log.error('generating a response failed', { proxy: conn.proxy.id, type: shortTypeName(w.typeUrl), error: result.message });
    conn.pushVersion ||= push.version;
  }

  #recordAck(conn: Connection, w: WatchedType): void {
    w.nonceAcked = w.nonceSent;
    w.versionAcked = w.versionSent;
    w.ackedAt = new Date();
    this.#emit({ type: 'ack', connection: conn, typeUrl: w.typeUrl, version: w.versionAcked });
    this.#settle(conn, w.typeUrl, false);
  }

  #recordNack(conn: Connection, w: WatchedType, reason: string): void {
    w.nonceNacked = w.nonceSent;
    w.versionNacked = w.versionSent;
    w.nackReason = reason;
    w.nackedAt = new Date();
    this.metrics.reject(w.typeUrl);
    this.#log.warn('config rejected by proxy (NACK)', {
      proxy: conn.proxy.id,
      type: shortTypeName(w.typeUrl),
      version: w.versionNacked,
      acceptedVersion: w.versionAcked,
      reason,
    });
    this.#emit({ type: 'nack', connection: conn, typeUrl: w.typeUrl, version: w.versionNacked, reason });
    this.#settle(conn, w.typeUrl, true);
  }

  /** A pushed type was answered; when the whole push is, record its convergence time. */
  #settle(conn: Connection, typeUrl: string, rejected: boolean): void {
    const p = conn.pending;
    if (!p?.awaiting.delete(typeUrl)) return;
    p.rejected ||= rejected;
    if (p.awaiting.size > 0) return;
    conn.pending = undefined;
    if (p.rejected) return;
    const ms = monotonicMs() - p.start;
    conn.lastConvergenceMs = ms;
    this.metrics.convergence.observe(ms / 1000);
    this.#emit({ type: 'converged', connection: conn, version: p.version, ms });
  }

  // ------------------------------------------------------------------ generate and send

  /** Generates `w`'s type for the connection and sends what the client lacks. */
  #respond(conn: Connection, w: WatchedType, push: PushContext, options: RespondOptions): 'sent' | 'unchanged' | 'no-generator' | Error {
    const names = options.names ?? w.subscription();
    const generated = this.#generate(conn, w.typeUrl, push, names);
    return this.#finish(conn, w, push, options, names, isSteps(generated) ? drain(generated) : generated);
  }

  /** #respond within a push: encoding a big type goes in steps, yielding to the event loop when the slice is used up. */
  async #respondInPush(conn: Connection, w: WatchedType, push: PushContext, options: RespondOptions, slice: TimeSlice): Promise<'sent' | 'unchanged' | 'no-generator' | Error> {
    const names = options.names ?? w.subscription();
    const generated = this.#generate(conn, w.typeUrl, push, names);
    if (!isSteps(generated)) return this.#finish(conn, w, push, options, names, generated);
    for (;;) {
      if (slice.over()) {
        await slice.yield();
        if (conn.closed) return 'unchanged';
      }
      const r = generated.next();
      if (r.done) return this.#finish(conn, w, push, options, names, r.value);
    }
  }

  #finish(
    conn: Connection,
    w: WatchedType,
    push: PushContext,
    options: RespondOptions,
    names: readonly string[] | undefined,
    generated: Generated | Error | undefined,
  ): 'sent' | 'unchanged' | 'no-generator' | Error {
    if (generated === undefined) return 'no-generator';
    if (generated instanceof Error) {
      this.metrics.generateErrors.inc({ type: shortTypeName(w.typeUrl) });
      return generated;
    }
    const sent = conn.mode === 'sotw' ? this.#sendSotw(conn, w, push, generated, options) : this.#sendDelta(conn, w, push, generated, options, names);
    return sent ? 'sent' : 'unchanged';
  }

  /** The generated set from the cache, or the generator's output with the steps that encode (and cache) it. */
  #generate(conn: Connection, typeUrl: string, push: PushContext, names: readonly string[] | undefined): Generated | Error | undefined | EncodeSteps {
    const proxy = conn.proxy;
    const set = (proxy.generator === 'grpc' ? this.#opts.generators.grpc : undefined) ?? this.#opts.generators.envoy;
    const generator = set[typeUrl];
    if (!generator) {
      const key = `${proxy.generator} ${typeUrl}`;
      if (!this.#missingGenerators.has(key)) {
        this.#missingGenerators.add(key);
        this.#log.warn('no generator for requested type; not answering', { type: typeUrl, generator: proxy.generator, proxy: proxy.id });
      }
      return undefined;
    }
    const proxyKey = this.#opts.cacheKey?.(typeUrl, proxy, push);
    const key = proxyKey === undefined ? undefined : `${proxy.generator}\u0000${typeUrl}\u0000${proxyKey}\u0000${names?.join('\u0001') ?? '*'}`;
    if (key !== undefined) {
      const hit = this.#cache.get(key);
      if (hit) return hit;
    }
    let out: XdsResource[];
    try {
      out = generator(push, proxy, names === undefined ? { typeUrl } : { typeUrl, names });
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
    const cache = this.#cache;
    return (function* (): EncodeSteps {
      try {
        const generated = yield* encodeResources(typeUrl, out);
        if (key !== undefined && cache.size < maxCacheEntries) cache.set(key, generated);
        return generated;
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    })();
  }

  #sendSotw(conn: Connection, w: WatchedType, push: PushContext, generated: Generated, options: RespondOptions): boolean {
    let resources: EncodedResource[];
    if (isFullStateType(w.typeUrl)) {
      // Listeners and clusters: every response is the complete set; send only if the set changed.
      const same = !options.force && generated.resources.length === w.known.size && generated.resources.every((r) => w.known.get(r.name) === r.version);
      if (same) return false;
      resources = generated.resources;
      w.known.clear();
      for (const r of resources) w.known.set(r.name, r.version);
    } else {
      // Other types may carry only what changed; what the client was sent and still has is not resent.
      if (!options.force) {
        const changed = generated.resources.filter((r) => w.known.get(r.name) !== r.version);
        if (changed.length === 0) return false;
        // All of it changed: send the shared whole-set response rather than a copy.
        resources = changed.length === generated.resources.length ? generated.resources : changed;
      } else resources = generated.resources;
      for (const r of resources) w.known.set(r.name, r.version);
      if (w.known.size > w.names.size) for (const name of w.known.keys()) if (!w.names.has(name)) w.known.delete(name);
    }
    let nonce: string;
    let bytes: Buffer;
    if (resources === generated.resources) {
      let m = generated.sotwMessage;
      if (m?.version !== push.version) {
        const shared = `${this.#noncePrefix}-${push.version}-${generated.id.toString(36)}`;
        // The resources' own field bytes are not kept for this: the whole set is one message already (6 MB a proxy for 5,000 VirtualServices).
        m = { version: push.version, nonce: shared, bytes: sotwResponse(push.version, resources.map((r) => r.sotwField ?? sotwResourceField(r.any)), w.typeUrl, shared) };
        generated.sotwMessage = m;
      }
      nonce = m.nonce;
      bytes = m.bytes;
    } else {
      nonce = this.#nonce();
      bytes = sotwResponse(push.version, resources.map(sotwField), w.typeUrl, nonce);
    }
    this.#write(conn, bytes);
    this.#recordSent(conn, w, push.version, nonce, resources.length, options.start);
    return true;
  }

  #sendDelta(conn: Connection, w: WatchedType, push: PushContext, generated: Generated, options: RespondOptions, names: readonly string[] | undefined): boolean {
    const changed = generated.resources.filter((r) => w.known.get(r.name) !== r.version);
    const removed: string[] = [];
    if (names === undefined) {
      for (const [name, version] of w.known) {
        if (generated.byName.has(name)) continue;
        if (version !== absentVersion) removed.push(name);
        w.known.delete(name);
      }
    } else {
      // A named resource that does not exist is reported as removed, once.
      for (const name of names) {
        if (generated.byName.has(name) || w.known.get(name) === absentVersion) continue;
        removed.push(name);
        w.known.set(name, absentVersion);
      }
    }
    if (!options.force && changed.length === 0 && removed.length === 0) return false;
    for (const r of changed) w.known.set(r.name, r.version);
    const nonce = this.#nonce();
    this.#write(conn, deltaResponse(push.version, changed.map(deltaField), w.typeUrl, removed.sort(), nonce));
    this.#recordSent(conn, w, push.version, nonce, changed.length, options.start);
    return true;
  }

  #recordSent(conn: Connection, w: WatchedType, version: string, nonce: string, count: number, start: number | undefined): void {
    w.nonceSent = nonce;
    w.versionSent = version;
    w.sentAt = new Date();
    w.resourcesSent = count;
    this.metrics.push(w.typeUrl);
    if (start === undefined) return;
    conn.pending ??= { start, version, awaiting: new Set(), rejected: false };
    const p = conn.pending;
    p.start = Math.min(p.start, start);
    p.version = version;
    p.awaiting.add(w.typeUrl);
  }

  #nonce(): string {
    return `${this.#noncePrefix}-${(++this.#nonceCounter).toString(36)}`;
  }

  #emit(event: DiscoveryEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (err) {
        this.#log.error('discovery event listener failed', { error: errorMessage(err) });
      }
    }
  }
}

/** Encoding a generated set, in steps (see #respondInPush). */
type EncodeSteps = Generator<void, Generated | Error, void>;

function isSteps(g: Generated | Error | undefined | EncodeSteps): g is EncodeSteps {
  return g !== undefined && !(g instanceof Error) && typeof (g as EncodeSteps).next === 'function';
}

/** Tells a long synchronous loop when it has run its share of the event loop and should yield. */
class TimeSlice {
  readonly #ms: number;
  #start = monotonicMs();

  constructor(ms: number) {
    this.#ms = ms;
  }

  over(): boolean {
    return monotonicMs() - this.#start >= this.#ms;
  }

  reset(): void {
    this.#start = monotonicMs();
  }

  /** Lets timers, I/O and other requests run (setImmediate), then starts a new slice. */
  async yield(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.reset();
  }
}

/**
 * Applies a SotW request's names to a watch. Returns the names added, or undefined when the
 * subscription did not change.
 */
function setSotwNames(w: WatchedType, req: DiscoveryRequest__Output): string[] | undefined {
  // Most requests are ACKs repeating the subscription byte for byte.
  const key = (req as { namesKey?: string }).namesKey;
  if (key !== undefined && key === w.namesKey) return undefined;
  const names = req.resource_names;
  if (key !== undefined) w.namesKey = key;
  const wildcard = isWildcardType(w.typeUrl) && (names.length === 0 || names.includes('*'));
  // The common case, an ACK repeating the subscription, changes nothing and allocates nothing.
  const explicit = names.length - (names.includes('*') ? 1 : 0);
  if (wildcard === w.wildcard && explicit === w.names.size && names.every((n) => n === '*' || w.names.has(n))) return undefined;
  const next = new Set<string>();
  for (const n of names) if (n !== '*') next.add(intern(n));
  const added = [...next].filter((n) => !w.names.has(n)).sort();
  w.wildcard = wildcard;
  w.names.clear();
  for (const n of next) w.names.add(n);
  return added;
}

/** A response serializer that leaves already-encoded responses as they are. */
function passThrough<T>(serialize: (value: T) => Buffer): (value: T | Buffer) => Buffer {
  return (value) => (Buffer.isBuffer(value) ? value : serialize(value));
}
