// The two ways the ADS client speaks to pilot, as the client sees them: requests to write and
// responses reduced to one shape. State of the world repeats the subscription in every request and
// gets whole sets (Listener, Cluster) or whole resources; delta subscribes and unsubscribes names
// and gets only what changed, each resource with a name and version, and the names removed.
// weft-proxy speaks delta (with per-virtual-host routes: vhds.ts); SotW stays for other servers.
import type { ClientDuplexStream, Metadata } from '@grpc/grpc-js';
import {
  type AggregatedDiscoveryServiceClient,
  type Any__Output,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse__Output,
  type DiscoveryRequest,
  type DiscoveryResponse__Output,
  type Node,
  TypeUrl,
} from '@weft/xds';

export type XdsProtocol = 'sotw' | 'delta';

/** A response, either protocol. */
export interface XdsResponse {
  typeUrl: string;
  version: string;
  nonce: string;
  /** Delta names each resource; SotW leaves the name to the resource itself. */
  resources: { name?: string; version?: string; any: Any__Output }[];
  /** Delta only: names the client should drop. */
  removed: string[];
}

/** What the client holds of one type, for requests. */
export interface Subscription {
  wildcard: boolean;
  /** Explicit names (EDS, RDS), sorted. */
  names: readonly string[];
  /** Last accepted version_info (SotW). */
  version: string;
  /** Resource versions held (delta: initial_resource_versions on reconnect). */
  held: ReadonlyMap<string, string>;
}

type Call = ClientDuplexStream<DiscoveryRequest | DeltaDiscoveryRequest, DiscoveryResponse__Output | DeltaDiscoveryResponse__Output>;

export interface ProtocolStream {
  readonly call: Call;
  /** The first request of a type on this stream (the node goes with the stream's first). */
  open(typeUrl: string, sub: Subscription): void;
  ack(typeUrl: string, sub: Subscription, nonce: string): void;
  nack(typeUrl: string, sub: Subscription, nonce: string, reason: string): void;
  /** The subscription changed from `before` (names added and removed). */
  resubscribe(typeUrl: string, before: readonly string[], sub: Subscription, lastNonce: string): void;
  response(raw: DiscoveryResponse__Output | DeltaDiscoveryResponse__Output): XdsResponse;
}

export function openStream(protocol: XdsProtocol, client: AggregatedDiscoveryServiceClient, metadata: Metadata, node: Node): ProtocolStream {
  return protocol === 'delta' ? deltaStream(client, metadata, node) : sotwStream(client, metadata, node);
}

function sotwStream(client: AggregatedDiscoveryServiceClient, metadata: Metadata, node: Node): ProtocolStream {
  const call = client.StreamAggregatedResources(metadata) as unknown as Call;
  let nodeSent = false;
  const send = (typeUrl: string, sub: Subscription, version: string, nonce: string, error?: string) => {
    const req: DiscoveryRequest = { type_url: typeUrl, version_info: version, response_nonce: nonce, resource_names: sub.wildcard ? [] : [...sub.names] };
    if (!nodeSent) {
      req.node = node;
      nodeSent = true;
    }
    if (error !== undefined) req.error_detail = { code: 3, message: error };
    call.write(req);
  };
  return {
    call,
    open: (t, sub) => send(t, sub, sub.version, ''),
    ack: (t, sub, nonce) => send(t, sub, sub.version, nonce),
    nack: (t, sub, nonce, reason) => send(t, sub, sub.version, nonce, reason),
    resubscribe: (t, _before, sub, lastNonce) => send(t, sub, sub.version, lastNonce),
    response: (raw) => {
      const r = raw as DiscoveryResponse__Output;
      return { typeUrl: r.type_url, version: r.version_info, nonce: r.nonce, resources: r.resources.map((any) => ({ any })), removed: [] };
    },
  };
}

function deltaStream(client: AggregatedDiscoveryServiceClient, metadata: Metadata, node: Node): ProtocolStream {
  const call = client.DeltaAggregatedResources(metadata) as unknown as Call;
  let nodeSent = false;
  const send = (req: DeltaDiscoveryRequest) => {
    if (!nodeSent) {
      req.node = node;
      nodeSent = true;
    }
    call.write(req);
  };
  return {
    call,
    open: (t, sub) => {
      // Wildcard: Listener and Cluster by an empty list (legacy wildcard), other types by `*`.
      const subscribe = sub.wildcard ? (t === TypeUrl.Listener || t === TypeUrl.Cluster ? [] : ['*']) : [...sub.names];
      const req: DeltaDiscoveryRequest = { type_url: t, resource_names_subscribe: subscribe };
      if (sub.held.size > 0) req.initial_resource_versions = Object.fromEntries(sub.held);
      send(req);
    },
    ack: (t, _sub, nonce) => send({ type_url: t, response_nonce: nonce }),
    nack: (t, _sub, nonce, reason) => send({ type_url: t, response_nonce: nonce, error_detail: { code: 3, message: reason } }),
    resubscribe: (t, before, sub) => {
      const now = new Set(sub.names);
      const was = new Set(before);
      const added = sub.names.filter((n) => !was.has(n));
      const removed = before.filter((n) => !now.has(n));
      if (added.length + removed.length > 0) send({ type_url: t, resource_names_subscribe: added, resource_names_unsubscribe: removed });
    },
    response: (raw) => {
      const r = raw as DeltaDiscoveryResponse__Output;
      const resources: XdsResponse['resources'] = [];
      for (const res of r.resources) {
        if (!res.resource) continue;
        resources.push({ name: res.name, version: res.version, any: res.resource });
      }
      return { typeUrl: r.type_url, version: r.system_version_info, nonce: r.nonce, resources, removed: r.removed_resources };
    },
  };
}
