// The ADS client: one stream to pilot carrying CDS and LDS (wildcard), EDS for the EDS clusters
// and RDS for the route configurations the listeners name; in delta xDS (the default) also the
// virtual hosts of those route configurations as resources of their own (vhds.ts), so a route
// change brings only the virtual hosts it changed (protocol.ts has both protocols). Each response is
// decoded and checked as a whole: anything the proxy cannot apply NACKs the response (the reason
// goes back in error_detail) and the last accepted config keeps serving. Accepted config goes
// through warming and becomes the next snapshot in one swap. When the stream breaks the proxy
// keeps serving what it has and reconnects with backoff, telling pilot its versions and names.
import {
  type ChannelCredentials,
  type ChannelOptions,
  connectivityState,
  credentials as grpcCredentials,
  Metadata,
  type StatusObject,
  status as grpcStatus,
} from '@grpc/grpc-js';
import { type Logger, silentLogger } from '@weft/model';
import {
  type AggregatedDiscoveryServiceClient,
  type Any__Output,
  ClientFeature,
  createAdsClient,
  type DeltaDiscoveryResponse__Output,
  type DiscoveryResponse__Output,
  decodeAny,
  type Node,
  type RouteConfiguration__Output,
  type Secret__Output,
  TypeUrl,
  type VirtualHost__Output,
} from '@weft/xds';
import type { XdsSnapshot } from '../core/types.ts';
import { openStream, type ProtocolStream, type Subscription, type XdsProtocol, type XdsResponse } from './protocol.ts';
import { edsName, isEdsCluster, routeNamesOf } from './resources.ts';
import { assembleRoutes, localVirtualHost, routeConfigOf } from './vhds.ts';
import { type AcceptedConfig, sameSnapshot, type WarmingResult, warm } from './warming.ts';

const ResourceWrapper = 'type.googleapis.com/envoy.service.discovery.v3.Resource';

/** The resource types the proxy subscribes to, in the order Envoy initializes them (delta adds VirtualHost after them). */
export const subscribedTypes = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration] as const;
type SubscribedType = (typeof subscribedTypes)[number] | typeof TypeUrl.VirtualHost;
const allTypes: readonly SubscribedType[] = [...subscribedTypes, TypeUrl.VirtualHost];

const shortNames: Record<SubscribedType, string> = {
  [TypeUrl.Cluster]: 'cds',
  [TypeUrl.ClusterLoadAssignment]: 'eds',
  [TypeUrl.Listener]: 'lds',
  [TypeUrl.RouteConfiguration]: 'rds',
  [TypeUrl.VirtualHost]: 'vhds',
};

/** Everything of the type, not a list of names (the virtual hosts: of every route configuration pilot gives this proxy). */
function isWildcard(t: SubscribedType): boolean {
  return t === TypeUrl.Listener || t === TypeUrl.Cluster || t === TypeUrl.VirtualHost;
}

function resourceName(t: SubscribedType, r: Record<string, unknown>): string {
  return String((t === TypeUrl.ClusterLoadAssignment ? r.cluster_name : r.name) ?? '');
}

interface Decoded {
  resource: object;
  bytes: Buffer;
  /** The resource's version (delta). */
  version?: string;
}

/**
 * Checks one decoded resource before it is accepted; throws an Error whose message becomes the
 * NACK reason. The proxy's parts plug in here (the router compiles route configurations, the
 * listeners check their filters).
 */
export type ResourceValidator = (typeUrl: string, name: string, resource: unknown) => void;

/**
 * How to reach pilot on an authenticating port, asked before every (re)connect: a `key` other than
 * the last one makes a new channel (a rotated client certificate is used from the next connect on).
 */
export interface XdsChannel {
  key: string;
  credentials: ChannelCredentials;
  /** Sent with each stream (a bearer token). */
  metadata?: Metadata;
  /** e.g. the server's TLS name (`grpc.ssl_target_name_override`). */
  options?: ChannelOptions;
}

export interface XdsClientOptions {
  /** Pilot's gRPC address, `host:port`. */
  address: string;
  node: Node;
  /** Default: plaintext. */
  credentials?: ChannelCredentials;
  /** `delta` (default: per-virtual-host routes, only what changed) or `sotw` (state of the world, for servers without delta). */
  protocol?: XdsProtocol;
  /** Instead of `credentials`: credentials that may change between connects (throw while there are none). */
  channel?: () => XdsChannel;
  validate?: ResourceValidator;
  /** Reconnect backoff: first delay and cap, ms (default 200 and 5000; each delay is jittered). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** How long a listener or cluster may wait for its routes or endpoints before it is used anyway (default 15000, Envoy's initial_fetch_timeout). */
  warmingTimeoutMs?: number;
  /**
   * How long the connection under a new stream may take to come up before it is given up and the
   * next attempt dials on a new channel (default 10000). grpc-js has no connect timeout of its own:
   * a connection whose SYN is dropped (a Service's address still leading to a pod that has just
   * gone) would wait out the kernel's SYN retries, two minutes, with the proxy cut off from pilot.
   */
  connectTimeoutMs?: number;
  logger?: Logger;
}

/** When and at which version a resource last changed (for /config_dump). */
export interface ResourceInfo {
  version: string;
  lastUpdated: Date;
}

export interface TypeStatus {
  type: string;
  /** Last accepted version_info. */
  version: string;
  /** Subscribed names; `*` for wildcard. */
  names: readonly string[];
  resources: number;
  lastAccepted?: string;
  lastNack?: { version: string; nonce: string; reason: string; at: string };
}

export interface XdsClientStatus {
  address: string;
  node: string;
  connected: boolean;
  /** Initial configuration complete: the proxy serves. */
  initialized: boolean;
  connects: number;
  lastConnected?: string;
  lastDisconnected?: string;
  lastError?: string;
  types: TypeStatus[];
  warming: WarmingResult['warming'];
  /** Responses rejected and accepted since start. */
  rejected: number;
  accepted: number;
}

interface Stream {
  protocol: ProtocolStream;
  nonces: Map<string, string>;
  responses: number;
}

interface Accepted {
  versions: Record<string, string>;
  maps: Map<SubscribedType, Map<string, object>>;
  bytes: Map<SubscribedType, Map<string, Buffer>>;
  info: Map<SubscribedType, Map<string, ResourceInfo>>;
  /** Resource versions as delta named them (initial_resource_versions on reconnect). */
  held: Map<SubscribedType, Map<string, string>>;
}

export class XdsClient {
  readonly #options: XdsClientOptions;
  readonly #log: Logger;
  #client: AggregatedDiscoveryServiceClient | undefined;
  #channelKey: string | undefined;
  readonly #protocol: XdsProtocol;
  readonly #types: readonly SubscribedType[];
  readonly #accepted: Accepted = { versions: {}, maps: new Map(), bytes: new Map(), info: new Map(), held: new Map() };
  /** Route configurations as the router takes them (virtual hosts assembled), and those whose inputs changed. */
  #routes = new Map<string, RouteConfiguration__Output>();
  readonly #dirtyRoutes = new Set<string>();
  /** Explicit subscriptions of EDS and RDS (LDS and CDS are wildcard). */
  readonly #names = new Map<SubscribedType, string[]>();
  readonly #everAccepted = new Set<SubscribedType>();
  readonly #lastAccepted = new Map<SubscribedType, Date>();
  readonly #nacks = new Map<SubscribedType, NonNullable<TypeStatus['lastNack']>>();
  readonly #handlers = new Set<(s: XdsSnapshot) => void>();
  readonly #warmingSince = new WeakMap<object, number>();
  #localSecrets: ReadonlyMap<string, Secret__Output> = new Map();
  #stream: Stream | undefined;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #rebuildScheduled = false;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #snapshot: XdsSnapshot | undefined;
  #lastWarming: WarmingResult['warming'] = { listeners: [], routes: [], clusters: [] };
  #initialized = false;
  #readyWaiters: ((s: XdsSnapshot) => void)[] = [];
  #closed = false;
  #connected = false;
  #connects = 0;
  #lastConnected: Date | undefined;
  #lastDisconnected: Date | undefined;
  #lastError: string | undefined;
  #rejected = 0;
  #acceptedCount = 0;

  constructor(options: XdsClientOptions) {
    this.#options = options;
    this.#protocol = options.protocol ?? 'delta';
    this.#types = this.#protocol === 'delta' ? allTypes : subscribedTypes;
    this.#log = (options.logger ?? silentLogger).with({ pilot: options.address });
    if (!options.channel) this.#client = this.#createClient(options.credentials ?? grpcCredentials.createInsecure(), {});
    for (const t of allTypes) {
      this.#accepted.maps.set(t, new Map());
      this.#accepted.bytes.set(t, new Map());
      this.#accepted.info.set(t, new Map());
      this.#accepted.held.set(t, new Map());
    }
  }

  /** Opens the stream. */
  start(): void {
    this.#connect();
  }

  #createClient(credentials: ChannelCredentials, extra: ChannelOptions): AggregatedDiscoveryServiceClient {
    return createAdsClient(this.#options.address, credentials, {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      // The stream is retried here with our own backoff; keep the channel's own short.
      'grpc.initial_reconnect_backoff_ms': this.#options.initialBackoffMs ?? 200,
      'grpc.max_reconnect_backoff_ms': this.#options.maxBackoffMs ?? 5000,
      ...extra,
    });
  }

  /** The client for the next stream and the metadata to send with it; undefined (and the reason recorded) when there are no credentials yet. */
  #channelForConnect(): { client: AggregatedDiscoveryServiceClient; metadata: Metadata } | undefined {
    const source = this.#options.channel;
    if (!source) {
      this.#client ??= this.#createClient(this.#options.credentials ?? grpcCredentials.createInsecure(), {});
      return { client: this.#client, metadata: new Metadata() };
    }
    let ch: XdsChannel;
    try {
      ch = source();
    } catch (err) {
      this.#lastError = `no credentials for pilot: ${err instanceof Error ? err.message : String(err)}`;
      this.#log.warn('cannot authenticate to pilot yet; retrying', { error: this.#lastError });
      return undefined;
    }
    if (ch.key !== this.#channelKey || !this.#client) {
      this.#client?.close();
      this.#client = this.#createClient(ch.credentials, ch.options ?? {});
      if (this.#channelKey !== undefined && ch.key !== this.#channelKey) this.#log.info('new credentials for pilot', { credentials: ch.key });
      this.#channelKey = ch.key;
    }
    return { client: this.#client, metadata: ch.metadata ?? new Metadata() };
  }

  /** The active snapshot; undefined until the initial configuration is complete. */
  get snapshot(): XdsSnapshot | undefined {
    return this.#snapshot;
  }

  get initialized(): boolean {
    return this.#initialized;
  }

  /** Called with every new snapshot (the first one once the initial configuration is complete). Returns an unsubscribe function. */
  onSnapshot(handler: (s: XdsSnapshot) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  /** Resolves with the first snapshot. */
  ready(): Promise<XdsSnapshot> {
    if (this.#snapshot && this.#initialized) return Promise.resolve(this.#snapshot);
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  /** Secrets from local files (gateway credentials in local mode), served beside pilot's config. */
  setLocalSecrets(secrets: ReadonlyMap<string, Secret__Output>): void {
    this.#localSecrets = secrets;
    this.#scheduleRebuild();
  }

  /** Everything accepted so far of one type, warming or not (by resource name). */
  accepted(typeUrl: string): ReadonlyMap<string, unknown> {
    return this.#accepted.maps.get(typeUrl as SubscribedType) ?? new Map();
  }

  /** Version and time of the last change of one accepted resource. */
  resourceInfo(typeUrl: string, name: string): ResourceInfo | undefined {
    return this.#accepted.info.get(typeUrl as SubscribedType)?.get(name);
  }

  status(): XdsClientStatus {
    const iso = (d: Date | undefined) => d?.toISOString();
    const types: TypeStatus[] = this.#types.map((t) => {
      const s: TypeStatus = {
        type: t,
        version: this.#accepted.versions[t] ?? '',
        names: isWildcard(t) ? ['*'] : (this.#names.get(t) ?? []),
        resources: this.#accepted.maps.get(t)!.size,
      };
      const la = iso(this.#lastAccepted.get(t));
      if (la) s.lastAccepted = la;
      const nack = this.#nacks.get(t);
      if (nack) s.lastNack = nack;
      return s;
    });
    const out: XdsClientStatus = {
      address: this.#options.address,
      node: this.#options.node.id ?? '',
      connected: this.#connected,
      initialized: this.#initialized,
      connects: this.#connects,
      types,
      warming: this.#lastWarming,
      rejected: this.#rejected,
      accepted: this.#acceptedCount,
    };
    const lc = iso(this.#lastConnected);
    if (lc) out.lastConnected = lc;
    const ld = iso(this.#lastDisconnected);
    if (ld) out.lastDisconnected = ld;
    if (this.#lastError) out.lastError = this.#lastError;
    return out;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#deadlineTimer);
    const s = this.#stream;
    this.#stream = undefined;
    if (s) {
      s.protocol.call.removeAllListeners('status');
      s.protocol.call.on('error', () => {});
      s.protocol.call.cancel();
    }
    this.#client?.close();
  }

  // ---------------------------------------------------------------- stream

  #connect(): void {
    if (this.#closed) return;
    const channel = this.#channelForConnect();
    if (!channel) {
      this.#reconnectTimer = setTimeout(() => this.#connect(), this.#nextDelay());
      return;
    }
    const node = this.#protocol === 'delta' ? { ...this.#options.node, client_features: [...(this.#options.node.client_features ?? []), ClientFeature.vhds] } : this.#options.node;
    const protocol = openStream(this.#protocol, channel.client, channel.metadata, node);
    const call = protocol.call;
    const stream: Stream = { protocol, nonces: new Map(), responses: 0 };
    this.#stream = stream;
    this.#connects++;
    this.#watchConnect(stream, channel.client);
    call.on('data', (r: DiscoveryResponse__Output | DeltaDiscoveryResponse__Output) => {
      if (this.#stream !== stream) return;
      let response: XdsResponse | undefined;
      try {
        response = protocol.response(r);
        this.#onResponse(stream, response);
      } catch (err) {
        this.#log.error('handling an xDS response failed', { type: response?.typeUrl ?? r.type_url, error: err });
      }
    });
    call.on('error', (err: Error) => {
      if (this.#stream === stream) this.#lastError = err.message;
    });
    call.on('status', (status: StatusObject) => this.#onStreamEnd(stream, status));
    // A (re)connecting client says what it has: accepted versions and every subscribed name.
    for (const t of this.#types) {
      if (isWildcard(t) || (this.#names.get(t)?.length ?? 0) > 0) this.#write(stream, () => protocol.open(t, this.#subscription(t)));
    }
  }

  /** What the client holds of a type, as requests state it. */
  #subscription(t: SubscribedType): Subscription {
    return { wildcard: isWildcard(t), names: this.#names.get(t) ?? [], version: this.#accepted.versions[t] ?? '', held: this.#accepted.held.get(t)! };
  }

  #write(stream: Stream, send: () => void): void {
    try {
      send();
    } catch (err) {
      this.#log.debug('writing to the xDS stream failed', { error: err, stream: stream.responses });
    }
  }

  /** Gives up a stream whose connection is not up within the connect timeout, and the channel under it. */
  #watchConnect(stream: Stream, client: AggregatedDiscoveryServiceClient): void {
    const channel = client.getChannel();
    const timeoutMs = this.#options.connectTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const check = () => {
      if (this.#stream !== stream || this.#closed) return;
      const state = channel.getConnectivityState(false);
      if (state === connectivityState.READY) return;
      if (Date.now() < deadline) {
        channel.watchConnectivityState(state, deadline, check);
        return;
      }
      this.#log.warn('no connection to pilot within the connect timeout; dialing again', { timeoutMs, state: connectivityState[state] });
      this.#lastError = `no connection within ${timeoutMs} ms (${connectivityState[state]})`;
      // A new channel: grpc-js would keep waiting on the attempt under this one (which it leaves to
      // the kernel's own timeout even once the channel is closed; the socket holds nothing up).
      if (this.#client === client) this.#client = undefined;
      client.close();
      stream.protocol.call.cancel();
    };
    check();
  }

  #onStreamEnd(stream: Stream, status: StatusObject): void {
    if (this.#stream !== stream) return;
    this.#stream = undefined;
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#lastDisconnected = new Date();
    if (status.details) this.#lastError = `${status.code}: ${status.details}`;
    if (this.#closed) return;
    if (stream.responses > 0) this.#attempt = 0;
    const delay = this.#nextDelay();
    // A refusal is the user's to fix (wrong identity, no credentials): say so each time.
    const refused = status.code === grpcStatus.UNAUTHENTICATED || status.code === grpcStatus.PERMISSION_DENIED;
    (wasConnected || refused ? this.#log.warn : this.#log.debug)(refused ? 'pilot refused the xDS stream; retrying' : 'xDS stream to pilot ended; keeping the last config and reconnecting', {
      code: status.code,
      details: status.details,
      retryInMs: delay,
    });
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  /** The next reconnect delay: exponential backoff with jitter. */
  #nextDelay(): number {
    const initial = this.#options.initialBackoffMs ?? 200;
    const max = this.#options.maxBackoffMs ?? 5000;
    const base = Math.min(max, initial * 2 ** this.#attempt);
    this.#attempt++;
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  // ---------------------------------------------------------------- responses

  #onResponse(stream: Stream, r: XdsResponse): void {
    const t = r.typeUrl as SubscribedType;
    stream.responses++;
    if (!this.#connected) {
      this.#connected = true;
      this.#lastConnected = new Date();
      this.#log.info('connected to pilot', { node: this.#options.node.id });
    }
    if (!this.#types.includes(t)) {
      this.#log.warn('ignoring a response of a type the proxy did not ask for', { type: r.typeUrl });
      return;
    }
    stream.nonces.set(t, r.nonce);
    // State of the world: a Listener or Cluster response is the whole set; what it leaves out is gone.
    const full = this.#protocol === 'sotw' && isWildcard(t);
    let decoded: Map<string, Decoded>;
    let routes: Map<string, RouteConfiguration__Output> | undefined;
    try {
      decoded = this.#decode(t, r.resources);
      routes = this.#checkRoutes(t, decoded, r.removed, full);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.#rejected++;
      this.#nacks.set(t, { version: r.version, nonce: r.nonce, reason, at: new Date().toISOString() });
      this.#log.warn('rejected config from pilot (NACK); the last accepted config keeps serving', { type: shortNames[t], version: r.version, reason });
      this.#write(stream, () => stream.protocol.nack(t, this.#subscription(t), r.nonce, reason));
      return;
    }
    this.#accept(t, r.version, decoded, r.removed, full);
    if (routes) {
      this.#routes = routes;
      this.#dirtyRoutes.clear();
    }
    this.#write(stream, () => stream.protocol.ack(t, this.#subscription(t), r.nonce));
    if (t === TypeUrl.Cluster) this.#resubscribe(stream, TypeUrl.ClusterLoadAssignment);
    if (t === TypeUrl.Listener) this.#resubscribe(stream, TypeUrl.RouteConfiguration);
    this.#scheduleRebuild();
  }

  /** Decodes and checks every resource; throws with a reason naming the resource on the first problem. */
  #decode(t: SubscribedType, resources: XdsResponse['resources']): Map<string, Decoded> {
    const out = new Map<string, Decoded>();
    const oldBytes = this.#accepted.bytes.get(t)!;
    const oldMap = this.#accepted.maps.get(t)!;
    for (const [i, raw] of resources.entries()) {
      let any: Any__Output = raw.any;
      if (any.type_url === ResourceWrapper) {
        const wrapped = decodeAny(any, ResourceWrapper) as { resource?: Any__Output | null };
        if (!wrapped.resource) throw new Error(`resource ${i}: an empty Resource wrapper`);
        any = wrapped.resource;
      }
      if (any.type_url !== t) throw new Error(`resource ${i}: type ${any.type_url} in a ${shortNames[t].toUpperCase()} response`);
      const bytes = Buffer.isBuffer(any.value) ? any.value : Buffer.from(any.value);
      let resource: object;
      let name: string;
      try {
        resource = decodeAny(any) as object;
        name = raw.name || resourceName(t, resource as Record<string, unknown>);
      } catch (err) {
        throw new Error(`resource ${i}: cannot decode ${shortNames[t].toUpperCase()} resource: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (!name) throw new Error(`resource ${i}: ${shortNames[t].toUpperCase()} resource without a name`);
      if (out.has(name)) throw new Error(`${kindOf(t)} ${name}: listed twice in one response`);
      const previous = oldBytes.get(name);
      if (previous?.equals(bytes)) {
        // Unchanged: keep the object, so everything cached against it stays valid.
        out.set(name, { resource: oldMap.get(name)!, bytes: previous, ...(raw.version ? { version: raw.version } : {}) });
        continue;
      }
      if (t === TypeUrl.VirtualHost) {
        // Checked within its route configuration (#checkRoutes): domains must be unique across virtual hosts.
        if (routeConfigOf(name) === undefined) throw new Error(`virtual host ${name}: not named <route configuration>/<virtual host>`);
        resource = localVirtualHost(name, resource as VirtualHost__Output);
      } else if (this.#options.validate) {
        try {
          this.#options.validate(t, name, resource);
        } catch (err) {
          throw new Error(`${kindOf(t)} ${name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      out.set(name, { resource, bytes, ...(raw.version ? { version: raw.version } : {}) });
    }
    return out;
  }

  /**
   * For route configurations and virtual hosts: the route configurations the router would take if
   * the response were accepted, each one whose inputs changed checked as a whole (throws for the NACK).
   */
  #checkRoutes(t: SubscribedType, decoded: Map<string, Decoded>, removed: readonly string[], full: boolean): Map<string, RouteConfiguration__Output> | undefined {
    if (t !== TypeUrl.RouteConfiguration && t !== TypeUrl.VirtualHost) return undefined;
    const next = <V>(current: ReadonlyMap<string, V>): Map<string, V> => {
      const m = new Map(current);
      if (full) for (const name of m.keys()) if (!decoded.has(name)) m.delete(name);
      for (const name of removed) m.delete(name);
      for (const [name, d] of decoded) m.set(name, d.resource as V);
      return m;
    };
    const rds = this.#accepted.maps.get(TypeUrl.RouteConfiguration) as Map<string, RouteConfiguration__Output>;
    const vhds = this.#accepted.maps.get(TypeUrl.VirtualHost) as Map<string, VirtualHost__Output>;
    const dirty = new Set(this.#dirtyRoutes);
    for (const name of [...decoded.keys(), ...removed]) {
      const rc = t === TypeUrl.RouteConfiguration ? name : routeConfigOf(name);
      if (rc !== undefined) dirty.add(rc);
    }
    const routes = assembleRoutes(t === TypeUrl.RouteConfiguration ? next(rds) : rds, t === TypeUrl.VirtualHost ? next(vhds) : vhds, this.#routes, dirty);
    if (this.#options.validate) {
      for (const name of dirty) {
        const rc = routes.get(name);
        if (!rc?.vhds) continue;
        try {
          this.#options.validate(TypeUrl.RouteConfiguration, name, rc);
        } catch (err) {
          throw new Error(`route configuration ${name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    return routes;
  }

  #accept(t: SubscribedType, version: string, decoded: Map<string, Decoded>, removed: readonly string[], full: boolean): void {
    const map = this.#accepted.maps.get(t)!;
    const bytes = this.#accepted.bytes.get(t)!;
    const info = this.#accepted.info.get(t)!;
    const held = this.#accepted.held.get(t)!;
    const now = new Date();
    let changed = 0;
    const drop = (name: string) => {
      if (!map.delete(name)) return;
      bytes.delete(name);
      info.delete(name);
      held.delete(name);
      changed++;
    };
    if (full) for (const name of [...map.keys()]) if (!decoded.has(name)) drop(name);
    for (const name of removed) drop(name);
    for (const [name, d] of decoded) {
      if (d.version) held.set(name, d.version);
      if (map.get(name) === d.resource) continue;
      map.set(name, d.resource);
      bytes.set(name, d.bytes);
      info.set(name, { version, lastUpdated: now });
      changed++;
    }
    if (t === TypeUrl.VirtualHost && changed > 0) {
      // The route configuration a virtual host belongs to changed with it (config_dump, syncz).
      const rdsInfo = this.#accepted.info.get(TypeUrl.RouteConfiguration)!;
      for (const name of [...decoded.keys(), ...removed]) {
        const rc = routeConfigOf(name);
        if (rc !== undefined && rdsInfo.has(rc)) rdsInfo.set(rc, { version, lastUpdated: now });
      }
    }
    this.#accepted.versions[t] = version;
    this.#everAccepted.add(t);
    this.#lastAccepted.set(t, now);
    this.#acceptedCount++;
    this.#nacks.delete(t);
    this.#log.debug('accepted config from pilot', { type: shortNames[t], version, resources: decoded.size, removed: removed.length, changed });
  }

  /** After CDS or LDS: subscribe EDS to the EDS clusters, RDS to the route configurations listeners name. */
  #resubscribe(stream: Stream, t: typeof TypeUrl.ClusterLoadAssignment | typeof TypeUrl.RouteConfiguration): void {
    const wanted = new Set<string>();
    if (t === TypeUrl.ClusterLoadAssignment) {
      for (const c of this.#accepted.maps.get(TypeUrl.Cluster)!.values() as Iterable<Parameters<typeof edsName>[0]>) if (isEdsCluster(c)) wanted.add(edsName(c));
    } else {
      for (const l of this.#accepted.maps.get(TypeUrl.Listener)!.values() as Iterable<Parameters<typeof routeNamesOf>[0]>) for (const n of routeNamesOf(l)) wanted.add(n);
    }
    const names = [...wanted].sort();
    const current = this.#names.get(t) ?? [];
    if (names.length === current.length && names.every((n, i) => n === current[i])) return;
    this.#names.set(t, names);
    // Resources no longer subscribed are dropped (SotW EDS and RDS responses list only what changed).
    const map = this.#accepted.maps.get(t)!;
    for (const name of [...map.keys()]) {
      if (wanted.has(name)) continue;
      map.delete(name);
      this.#accepted.bytes.get(t)!.delete(name);
      this.#accepted.info.get(t)!.delete(name);
      this.#accepted.held.get(t)!.delete(name);
      if (t === TypeUrl.RouteConfiguration) this.#routes.delete(name);
    }
    if (names.length === 0 && current.length === 0) return;
    this.#write(stream, () => stream.protocol.resubscribe(t, current, this.#subscription(t), stream.nonces.get(t) ?? ''));
  }

  // ---------------------------------------------------------------- snapshots

  #scheduleRebuild(): void {
    if (this.#rebuildScheduled || this.#closed) return;
    this.#rebuildScheduled = true;
    // Responses that arrive together (CDS, EDS, LDS, RDS of one push) make one snapshot.
    setImmediate(() => {
      this.#rebuildScheduled = false;
      this.#rebuild();
    });
  }

  #rebuild(): void {
    if (this.#closed) return;
    clearTimeout(this.#deadlineTimer);
    const m = this.#accepted.maps;
    const accepted: AcceptedConfig = {
      versions: this.#accepted.versions,
      listeners: m.get(TypeUrl.Listener) as AcceptedConfig['listeners'],
      routes: this.#routes,
      clusters: m.get(TypeUrl.Cluster) as AcceptedConfig['clusters'],
      endpoints: m.get(TypeUrl.ClusterLoadAssignment) as AcceptedConfig['endpoints'],
      secrets: this.#localSecrets,
    };
    const now = Date.now();
    const result = warm(accepted, this.#snapshot, {
      now,
      timeoutMs: this.#options.warmingTimeoutMs ?? 15_000,
      since: (r) => {
        let t = this.#warmingSince.get(r);
        if (t === undefined) {
          t = now;
          this.#warmingSince.set(r, t);
        }
        return t;
      },
    });
    this.#lastWarming = result.warming;
    if (result.nextDeadline !== undefined) this.#deadlineTimer = setTimeout(() => this.#rebuild(), Math.max(0, result.nextDeadline - now) + 1);

    if (!this.#initialized) {
      // Envoy's initialization: CDS and LDS answered, and nothing they brought still warming.
      const waiting =
        !this.#everAccepted.has(TypeUrl.Cluster) ||
        !this.#everAccepted.has(TypeUrl.Listener) ||
        result.warming.clusters.length + result.warming.listeners.length + result.warming.routes.length > 0;
      if (waiting) return;
      this.#initialized = true;
      this.#log.info('initial configuration complete', {
        listeners: result.snapshot.listeners.size,
        routes: result.snapshot.routes.size,
        clusters: result.snapshot.clusters.size,
        versions: result.snapshot.versions,
      });
    } else if (this.#snapshot && sameSnapshot(this.#snapshot, result.snapshot)) {
      return;
    }
    this.#snapshot = result.snapshot;
    for (const h of [...this.#handlers]) {
      try {
        h(result.snapshot);
      } catch (err) {
        this.#log.error('a snapshot handler failed', { error: err });
      }
    }
    for (const w of this.#readyWaiters.splice(0)) w(result.snapshot);
  }
}

function kindOf(t: SubscribedType): string {
  switch (t) {
    case TypeUrl.Listener:
      return 'listener';
    case TypeUrl.Cluster:
      return 'cluster';
    case TypeUrl.RouteConfiguration:
      return 'route configuration';
    case TypeUrl.VirtualHost:
      return 'virtual host';
    default:
      return 'cluster load assignment';
  }
}
