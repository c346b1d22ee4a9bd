// The contracts between the proxy's parts: the xDS client produces snapshots; listeners,
// the HTTP router and the cluster manager serve from them. Each part depends only on these.
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type {
  Cluster__Output,
  ClusterLoadAssignment__Output,
  Listener__Output,
  RouteConfiguration__Output,
  Secret__Output,
} from '@weft/xds';

/**
 * The accepted xDS configuration at one moment: decoded Envoy messages by resource name.
 * Immutable. The xDS client builds a new one per accepted update (after warming: every
 * route config a listener names and every cluster a route names are present) and swaps it
 * in atomically; requests in flight keep the snapshot they started with.
 */
export interface XdsSnapshot {
  /** Accepted version_info per type URL. */
  readonly versions: Readonly<Record<string, string>>;
  readonly listeners: ReadonlyMap<string, Listener__Output>;
  readonly routes: ReadonlyMap<string, RouteConfiguration__Output>;
  readonly clusters: ReadonlyMap<string, Cluster__Output>;
  readonly endpoints: ReadonlyMap<string, ClusterLoadAssignment__Output>;
  readonly secrets: ReadonlyMap<string, Secret__Output>;
}

/** Envoy's response flags (the ones Weft sets); access logs and metrics print them in this order. */
export const responseFlagOrder = ['DC', 'DI', 'FI', 'LH', 'NC', 'NR', 'UAEX', 'UC', 'UF', 'UH', 'UO', 'UR', 'URX', 'UT', 'RL', 'DPE', 'UPE', 'SI'] as const;
export type ResponseFlag = (typeof responseFlagOrder)[number];

/** `-` when none, else the flags joined by commas in Envoy's order (`UF,URX`). */
export function formatResponseFlags(flags: ReadonlySet<ResponseFlag>): string {
  const set = responseFlagOrder.filter((f) => flags.has(f));
  return set.length === 0 ? '-' : set.join(',');
}

/** What happened to one HTTP request or TCP connection; telemetry (metrics, access logs, traces) reads it. */
export interface RequestRecord {
  direction: 'inbound' | 'outbound' | 'gateway';
  listener: string;
  protocol: 'HTTP/1.1' | 'HTTP/2' | 'TCP';
  startTime: number;
  durationMs: number;
  method?: string;
  path?: string;
  authority?: string;
  requestId?: string;
  responseCode: number;
  responseFlags: Set<ResponseFlag>;
  bytesReceived: number;
  bytesSent: number;
  routeName?: string;
  upstreamCluster?: string;
  /** `address:port` of the endpoint that answered (the last attempt). */
  upstreamHost?: string;
  /** Upstream mutual TLS: the peer's and this proxy's URI SANs on that connection (source-side principals). */
  upstreamPeerPrincipal?: string;
  upstreamLocalPrincipal?: string;
  downstreamRemoteAddress?: string;
  downstreamLocalAddress?: string;
  /** Attempts made (1 + retries). */
  attempts: number;
  /** Envoy's %RESPONSE_CODE_DETAILS% when a filter or the proxy decided the answer (`rbac_access_denied_matched_policy[none]`). */
  responseCodeDetails?: string;
  /** Envoy's %CONNECTION_TERMINATION_DETAILS%: why a filter closed the connection (`rbac_access_denied_matched_policy[none]`). */
  connectionTerminationDetails?: string;
  /** gRPC requests: the `grpc-status` the response ended with (trailers, or headers of a trailers-only answer). */
  grpcStatus?: number;
}

/** One request toward a cluster, as the router hands it to the cluster manager. */
export interface UpstreamRequest {
  method: string;
  /** Path with query, after rewrites. */
  path: string;
  /** Host/authority to send (after host rewrite). */
  authority: string;
  /** Lower-case header names; HTTP/2 pseudo-headers removed. */
  headers: Record<string, string | string[]>;
  /** Request body, buffered (retries and mirrors need to replay it); undefined for none. */
  body?: Buffer;
  /**
   * Request body as a stream, when it is not buffered: gRPC calls (which may stream both ways) and
   * bodies larger than the router's buffer limit. Send it as it arrives; at most one of `body` and
   * `bodyStream` is set. Each attempt gets its own stream (the router replays what it kept).
   */
  bodyStream?: Readable;
}

/** A consumer the response body is pushed to directly, without a stream in between (the router's fast path). */
export interface BodySink {
  /** A chunk of the body; false asks the producer to pause until the handle's `resume()`. */
  data(chunk: Buffer): boolean;
  /** The body ended (trailers, if any, are readable from the response now). */
  end(): void;
  /** The body failed mid-way (an UpstreamError: reset, timeout). */
  error(err: Error): void;
}

/** What `pipeTo` returns: flow control and cancellation for the sink's consumer. */
export interface BodyHandle {
  resume(): void;
  /** The consumer gives up (the client went away, a timeout): the upstream request is aborted. */
  destroy(err?: Error): void;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[]>;
  /** The body as a stream. Use either this or `pipeTo`, never both. */
  body: Readable;
  /**
   * The body pushed to `sink` as it arrives (callbacks may run before `pipeTo` returns when it
   * has already arrived). Optional: consumers fall back to `body`.
   */
  pipeTo?(sink: BodySink): BodyHandle;
  /** `address:port` of the endpoint that answered. */
  endpoint: string;
  /** Upstream TLS: the peer's URI SAN (its SPIFFE identity) and this proxy's own on that connection. */
  peerPrincipal?: string | undefined;
  localPrincipal?: string | undefined;
  /**
   * Response trailers (gRPC's `grpc-status`, `grpc-message`), read once `body` has ended;
   * undefined when there were none.
   */
  trailers?(): Readonly<Record<string, string | string[]>> | undefined;
}

/** Told once when its request is cancelled (the client left, a timeout fired). */
export interface CancelListener {
  handleEvent(): void;
}

/**
 * What cancels an upstream request: an AbortSignal, or the router's exchange itself, which keeps
 * its own listener list so that a request costs no EventTarget (measured: the per-request
 * AbortSignal and its listener got request objects promoted to the old generation under load).
 */
export interface Cancellation {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: CancelListener): void;
  removeEventListener(type: 'abort', listener: CancelListener): void;
}

export interface UpstreamOptions {
  /** Per-attempt timeout; undefined for none. */
  timeoutMs?: number;
  /** Consistent-hash key computed from the route's hash policy (header, cookie, source IP, query parameter). */
  hashKey?: string;
  /** Endpoints to avoid (retry_host_predicate previous_hosts). */
  excludeEndpoints?: ReadonlySet<string>;
  signal?: Cancellation;
  /** Downstream peer address (for source-IP hashing when no hashKey is given). */
  sourceAddress?: string;
  /**
   * Where the downstream connection was going (SO_ORIGINAL_DST, or the CONNECT/absolute-form
   * target in local mode): the endpoint of ORIGINAL_DST clusters (PassthroughCluster,
   * InboundPassthroughCluster). Set by the listeners.
   */
  originalDestination?: { address: string; port: number };
  /**
   * The protocol the downstream request arrived with; clusters configured to use it upstream
   * (use_downstream_protocol_config: PassthroughCluster, InboundPassthroughCluster) follow it.
   */
  downstreamProtocol?: 'HTTP/1.1' | 'HTTP/2';
  /** Route `auto_host_rewrite`: send the picked endpoint's hostname (DNS clusters, EDS `hostname`) as the authority. */
  autoHostRewrite?: boolean;
}

/**
 * An upstream failure, with the response flag Envoy would record: UH no healthy upstream,
 * UF connection failure, UO overflow (circuit breaker), UC upstream connection termination,
 * UT upstream request timeout, NR no route/cluster.
 */
export class UpstreamError extends Error {
  readonly flag: ResponseFlag;
  readonly endpoint: string | undefined;
  constructor(flag: ResponseFlag, message: string, endpoint?: string) {
    super(message);
    this.name = 'UpstreamError';
    this.flag = flag;
    this.endpoint = endpoint;
  }
}

/** One cluster as the data path uses it. */
export interface UpstreamCluster {
  readonly name: string;
  /** Sends one HTTP request to one endpoint the load balancer picks; throws `UpstreamError`. */
  request(req: UpstreamRequest, opts: UpstreamOptions): Promise<UpstreamResponse>;
  /** Opens a TCP connection to one endpoint (tcp_proxy); throws `UpstreamError`. */
  connect(opts: UpstreamOptions): Promise<{ socket: Socket; endpoint: string }>;
  /**
   * Takes a slot of the cluster's retry circuit breaker (`max_retries`: retries in flight) before
   * a retry attempt. Returns the function that gives the slot back when that attempt ends, or
   * undefined when the budget is spent: then do not retry (Envoy counts upstream_rq_retry_overflow
   * and records UO on the request).
   */
  acquireRetry?(): (() => void) | undefined;
  /**
   * The endpoint `request`/`connect` would choose next, changing nothing (no load-balancer state
   * advanced, no breaker slot, no host added): the admin's /debug/why. `random` stands in for
   * the cluster's random source in every draw (priority level, random and least-request picks).
   */
  preview?(opts: UpstreamOptions, random: () => number): EndpointPreview;
}

/** What `UpstreamCluster.preview` answers. */
export interface EndpointPreview {
  /** Undefined when no endpoint would be chosen (none, none healthy, DNS not resolved yet). */
  endpoint: { address: string; port: number; locality?: string; healthy: boolean; ejected: boolean; weight: number } | undefined;
  /** The cluster's load-balancing policy and how the choice was made, as a sentence. */
  how: string;
}

/** Endpoint state for the admin `/clusters` page. */
export interface EndpointStatus {
  address: string;
  port: number;
  weight: number;
  healthy: boolean;
  ejected: boolean;
  activeRequests: number;
  totalRequests: number;
  failures: number;
  /** `region/zone/subzone`. */
  locality?: string;
  /** The endpoint's priority level (EDS; pilot's locality failover). */
  priority?: number;
}

/** Owns every cluster, its endpoints, pools, breakers and outlier detection; follows snapshots. */
export interface ClusterManager {
  /** Applies a snapshot's clusters and endpoints; keeps pools of clusters that did not change. */
  update(snapshot: XdsSnapshot): void;
  get(name: string): UpstreamCluster | undefined;
  status(): ReadonlyMap<string, readonly EndpointStatus[]>;
  close(): Promise<void>;
}
