// Small builders for Envoy message fragments shared by every generator.
import { type ProtoDuration, SdsClusterName } from '@weft/mesh';
import type { StringMatch } from '@weft/model';
import { type Address, type Any, encodeAny, type HttpConnectionManager, type Listener, type Route, TypeUrl } from '@weft/xds';
import { Filters } from './names.ts';

type Item<T> = T extends readonly (infer E)[] ? E : never;

export type ListenerFilter = Item<NonNullable<Listener['listener_filters']>>;
export type FilterChain = Item<NonNullable<Listener['filter_chains']>>;
export type FilterChainMatch = NonNullable<FilterChain['filter_chain_match']>;
export type NetworkFilter = Item<NonNullable<FilterChain['filters']>>;
export type TransportSocket = NonNullable<FilterChain['transport_socket']>;
export type HttpFilter = Item<NonNullable<HttpConnectionManager['http_filters']>>;
export type ConfigSource = NonNullable<NonNullable<HttpConnectionManager['rds']>['config_source']>;
export type RouteMatch = NonNullable<Route['match']>;
export type HeaderMatcher = Item<NonNullable<RouteMatch['headers']>>;
export type StringMatcher = NonNullable<HeaderMatcher['string_match']>;
export type HeaderValueOption = Item<NonNullable<Route['request_headers_to_add']>>;
export type Metadata = NonNullable<Route['metadata']>;
export type Struct = NonNullable<Metadata['filter_metadata']>[string];
type StructValue = NonNullable<Struct['fields']>[string];

export const zeroDuration: ProtoDuration = { seconds: '0', nanos: 0 };

export function socketAddress(address: string, port: number): Address {
  if (address.startsWith('unix://')) return { pipe: { path: address.slice('unix://'.length) } };
  return { socket_address: { address, port_value: port } };
}

/** A config source that reads the resource over the same ADS stream. */
export function adsConfigSource(initialFetchTimeout = true): ConfigSource {
  return initialFetchTimeout ? { ads: {}, initial_fetch_timeout: zeroDuration, resource_api_version: 'V3' } : { ads: {}, resource_api_version: 'V3' };
}

/** Istio's SDS source: the agent's SDS server, reached through the bootstrap cluster `sds-grpc`. */
export function sdsGrpcConfigSource(): ConfigSource {
  return {
    api_config_source: {
      api_type: 'GRPC',
      set_node_on_first_message_only: true,
      transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: SdsClusterName } }],
    },
    initial_fetch_timeout: zeroDuration,
    resource_api_version: 'V3',
  };
}

/** Converts an Istio StringMatch to Envoy's StringMatcher. */
export function stringMatcher(m: StringMatch, ignoreCase = false): StringMatcher | undefined {
  if (m.exact !== undefined) return ignoreCase ? { exact: m.exact, ignore_case: true } : { exact: m.exact };
  if (m.prefix !== undefined) return ignoreCase ? { prefix: m.prefix, ignore_case: true } : { prefix: m.prefix };
  if (m.regex !== undefined) return { safe_regex: { regex: m.regex } };
  return undefined;
}

/** Istio turns an empty match and the (non-RE2) regex `*` into "present". */
export function isPresentMatch(m: StringMatch | undefined): boolean {
  if (!m) return true;
  if (m.exact === undefined && m.prefix === undefined && m.regex === undefined) return true;
  return m.regex === '*';
}

/** Percent (0-100, fractional) to Envoy's FractionalPercent per million, as Istio does. */
export function fractionalPercent(value: number): { numerator: number; denominator: 'MILLION' } {
  return { numerator: Math.round(value * 10000), denominator: 'MILLION' };
}

export function integerPercent(value: number): { numerator: number; denominator: 'HUNDRED' } {
  return { numerator: Math.round(value), denominator: 'HUNDRED' };
}

/** A google.protobuf.Struct from a plain JSON-like object (protobufjs spells the well-known types in camelCase). */
export function struct(value: Record<string, unknown>): Struct {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) fields[k] = structValue(v);
  }
  return { fields };
}

function structValue(v: unknown): StructValue {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(structValue) } };
  return { structValue: struct(v as Record<string, unknown>) };
}

/** `{istio: {config: /apis/networking.istio.io/v1/namespaces/<ns>/virtual-service/<name>}}`: where a route came from. */
export function configMetadata(kind: string, namespace: string, name: string): Metadata {
  const plural = kind.replace(/[A-Z]/g, (c, i: number) => (i === 0 ? c.toLowerCase() : `-${c.toLowerCase()}`));
  return { filter_metadata: { istio: struct({ config: `/apis/networking.istio.io/v1/namespaces/${namespace}/${plural}/${name}` }) } };
}

export function routerFilter(): HttpFilter {
  return { name: Filters.router, typed_config: encodeAny(TypeUrl.Router, {}) };
}

export function faultFilter(): HttpFilter {
  return { name: Filters.fault, typed_config: encodeAny(TypeUrl.HttpFault, {}) };
}

export function corsFilter(): HttpFilter {
  return { name: Filters.cors, typed_config: encodeAny(TypeUrl.Cors, {}) };
}

export function tcpProxyFilter(cluster: string, statPrefix = cluster): NetworkFilter {
  return { name: Filters.tcpProxy, typed_config: encodeAny(TypeUrl.TcpProxy, { stat_prefix: statPrefix, cluster }) };
}

export function weightedTcpProxyFilter(clusters: readonly { name: string; weight: number }[], statPrefix: string): NetworkFilter {
  return {
    name: Filters.tcpProxy,
    typed_config: encodeAny(TypeUrl.TcpProxy, { stat_prefix: statPrefix, weighted_clusters: { clusters: clusters.map((c) => ({ name: c.name, weight: c.weight })) } }),
  };
}

export function hcmFilter(hcm: HttpConnectionManager): NetworkFilter {
  return { name: Filters.httpConnectionManager, typed_config: encodeAny(TypeUrl.HttpConnectionManager, hcm) };
}

export function originalDstListenerFilter(): ListenerFilter {
  return { name: Filters.originalDst, typed_config: encodeAny(TypeUrl.OriginalDst, {}) };
}

export function tlsInspectorListenerFilter(): ListenerFilter {
  return { name: Filters.tlsInspector, typed_config: encodeAny(TypeUrl.TlsInspector, {}) };
}

export function httpInspectorListenerFilter(): ListenerFilter {
  return { name: Filters.httpInspector, typed_config: encodeAny(TypeUrl.HttpInspector, {}) };
}

export function tlsTransportSocket(context: Any): TransportSocket {
  return { name: Filters.tlsTransportSocket, typed_config: context };
}

/** Sorted, de-duplicated copy. */
export function uniqueSorted(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

export function labelsMatch(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
