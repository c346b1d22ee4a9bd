// The ADS server's public contracts: what it is built from (options, injected builders and
// parsers) and what it reports (push status, per-proxy sync status, events).
import type { Config, ConfigStore, Logger } from '@weft/model';
import type { Node__Output } from '@weft/xds';
import type { MeshConfig, Proxy as MeshProxy, PushContext, ServiceRegistry } from '../core/types.ts';
import type { Connection, XdsMode } from './connection.ts';
import type { PilotMetrics } from './metrics.ts';
import type { DebounceOptions, TriggerReason } from './push-request.ts';
import type { Generators } from './types.ts';

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

/** What a push changed, when it can be judged proxy by proxy: configs (before and after) and the hostnames whose services changed. */
export interface PushScope {
  configs: Config[];
  hosts: Set<string>;
  /** Addresses of workload instances that changed (RegistryChange.workloads): the proxies there. */
  workloads: Set<string>;
}

/**
 * Whether a full push for `changed` concerns this proxy (`previous`: the push context before the
 * change). Without one, every proxy is regenerated. `proxyNeedsPush` (push-scope.ts) is Istio's.
 */
export type ProxyNeedsPush = (proxy: MeshProxy, changed: PushScope, previous: PushContext | undefined, push: PushContext) => boolean;

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
  /** Push scoping: skip proxies a config change does not concern (weftd: `proxyNeedsPush`). Their generators must read config only through the push context. */
  proxyNeedsPush?: ProxyNeedsPush;
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
  /** Proxies sent at least one response. */
  proxiesPushed: number;
  /** Proxies whose config the changed configs do not concern (push scoping): not regenerated. */
  proxiesSkipped: number;
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
