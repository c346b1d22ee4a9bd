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
  ClientFeature,
  createAdsClient,
  type DeltaDiscoveryResponse__Output,
  type DiscoveryResponse__Output,
  type Node,
  type RouteConfiguration__Output,
  type Secret__Output,
  TypeUrl,
} from '@weft/xds';
import type { XdsSnapshot } from '../core/types.ts';
import { AcceptedStore, allTypes, type Decoded, isWildcard, type ResourceInfo, type ResourceValidator, type SubscribedType, shortNames, subscribedTypes } from './accepted.ts';
import { openStream, type ProtocolStream, type Subscription, type XdsProtocol, type XdsResponse } from './protocol.ts';
import { edsName, isEdsCluster, routeNamesOf } from './resources.ts';
import { sameSnapshot, type WarmingResult, warm } from './warming.ts';

export { type ResourceInfo, type ResourceValidator, subscribedTypes } from './accepted.ts';

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


export class XdsClient {
  readonly #options: XdsClientOptions;
  readonly #log: Logger;
  #client: AggregatedDiscoveryServiceClient | undefined;
  #channelKey: string | undefined;
  readonly #protocol: XdsProtocol;
  readonly #types: readonly SubscribedType[];
  readonly #accepted: AcceptedStore;
  /** Explicit subscriptions of EDS and RDS (LDS and CDS are wildcard). */
  readonly #names = new Map<SubscribedType, string[]>();
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

  constructor(options: XdsClientOptions) {
    this.#options = options;
    this.#protocol = options.protocol ?? 'delta';
    this.#types = this.#protocol === 'delta' ? allTypes : subscribedTypes;
    this.#log = (options.logger ?? silentLogger).with({ pilot: options.address });
    if (!options.channel) this.#client = this.#createClient(options.credentials ?? grpcCredentials.createInsecure(), {});
    this.#accepted = new AcceptedStore(options.validate);
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
      const la = iso(this.#accepted.lastAccepted.get(t));
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
      accepted: this.#accepted.count,
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
      decoded = this.#accepted.decode(t, r.resources);
      routes = this.#accepted.checkRoutes(t, decoded, r.removed, full);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.#rejected++;
      this.#nacks.set(t, { version: r.version, nonce: r.nonce, reason, at: new Date().toISOString() });
      this.#log.warn('rejected config from pilot (NACK); the last accepted config keeps serving', { type: shortNames[t], version: r.version, reason });
      this.#write(stream, () => stream.protocol.nack(t, this.#subscription(t), r.nonce, reason));
      return;
    }
    const changed = this.#accepted.accept(t, r.version, decoded, r.removed, full);
    this.#nacks.delete(t);
    this.#log.debug('accepted config from pilot', { type: shortNames[t], version: r.version, resources: decoded.size, removed: r.removed.length, changed });
    if (routes) this.#accepted.commitRoutes(routes);
    this.#write(stream, () => stream.protocol.ack(t, this.#subscription(t), r.nonce));
    if (t === TypeUrl.Cluster) this.#resubscribe(stream, TypeUrl.ClusterLoadAssignment);
    if (t === TypeUrl.Listener) this.#resubscribe(stream, TypeUrl.RouteConfiguration);
    this.#scheduleRebuild();
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
    this.#accepted.keepOnly(t, wanted);
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
    const accepted = this.#accepted.config(this.#localSecrets);
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
        !this.#accepted.everAccepted.has(TypeUrl.Cluster) ||
        !this.#accepted.everAccepted.has(TypeUrl.Listener) ||
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
