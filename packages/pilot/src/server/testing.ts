// Test support for the server: an ADS client over a real gRPC stream that queues responses, and a
// small stand-in world (push context and generators) whose output the tests control.
import { credentials, Metadata } from '@grpc/grpc-js';
import { type Config, type ConfigStore, MemoryConfigStore } from '@weft/model';
import {
  type AggregatedDiscoveryServiceClient,
  createAdsClient,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse__Output,
  type DiscoveryRequest,
  type DiscoveryResponse__Output,
  decodeAny,
  type Node,
  TypeUrl,
} from '@weft/xds';
import { defaultMeshConfig, type PushContext, type RegistryChange, type ServiceRegistry, type XdsResource } from '../core/types.ts';
import type { PushContextInput } from './discovery.ts';
import type { Generators } from './types.ts';

/** A queue of stream messages with timeouts. */
class MessageQueue<T> {
  readonly #items: T[] = [];
  readonly #waiters: { resolve: (item: T) => void; reject: (err: Error) => void }[] = [];
  ended: Error | undefined;

  end(err: Error): void {
    this.ended = err;
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  push(item: T): void {
    const w = this.#waiters.shift();
    if (w) w.resolve(item);
    else this.#items.push(item);
  }

  next(timeoutMs: number, what: string): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        resolve: (v: T) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  get size(): number {
    return this.#items.length;
  }
}

export interface NodeOptions {
  id?: string;
  metadata?: Record<string, string>;
  clientFeatures?: string[];
}

function structOf(metadata: Record<string, string>): NonNullable<Node['metadata']> {
  return { fields: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, { stringValue: v, kind: 'stringValue' as const }])) };
}

/** A state-of-the-world ADS stream. */
export class SotwTestClient {
  readonly client: AggregatedDiscoveryServiceClient;
  readonly stream: ReturnType<AggregatedDiscoveryServiceClient['StreamAggregatedResources']>;
  readonly responses = new MessageQueue<DiscoveryResponse__Output>();
  readonly node: { id: string; metadata: NonNullable<Node['metadata']>; client_features?: string[] };
  #sentNode = false;
  status: { code: number; details: string } | undefined;

  constructor(target: string, node: NodeOptions = {}, metadata: Metadata = new Metadata()) {
    this.client = createAdsClient(target, credentials.createInsecure());
    this.stream = this.client.StreamAggregatedResources(metadata);
    this.node = { id: node.id ?? 'sidecar~10.0.0.1~app-1.default~default.svc.cluster.local', metadata: structOf(node.metadata ?? {}), ...(node.clientFeatures ? { client_features: node.clientFeatures } : {}) };
    this.stream.on('data', (r: DiscoveryResponse__Output) => this.responses.push(r));
    this.stream.on('status', (s) => {
      this.status = { code: s.code, details: s.details };
    });
    this.stream.on('error', (err: Error) => this.responses.end(err));
  }

  send(request: Omit<DiscoveryRequest, 'node'>): void {
    const r: DiscoveryRequest = { ...request };
    if (!this.#sentNode) {
      r.node = this.node;
      this.#sentNode = true;
    }
    this.stream.write(r);
  }

  /** Requests a type (first request: no nonce). */
  request(typeUrl: string, names: string[] = []): void {
    this.send({ type_url: typeUrl, resource_names: names });
  }

  ack(response: DiscoveryResponse__Output, names: string[] = []): void {
    this.send({ type_url: response.type_url, version_info: response.version_info, response_nonce: response.nonce, resource_names: names });
  }

  nack(response: DiscoveryResponse__Output, message: string, acceptedVersion = '', names: string[] = []): void {
    this.send({ type_url: response.type_url, version_info: acceptedVersion, response_nonce: response.nonce, resource_names: names, error_detail: { code: 3, message } });
  }

  next(timeoutMs = 3000): Promise<DiscoveryResponse__Output> {
    return this.responses.next(timeoutMs, 'DiscoveryResponse');
  }

  /** Resolves if nothing arrives for `ms`; rejects with what arrived otherwise. */
  async none(ms = 300): Promise<void> {
    const got = await this.responses.next(ms, 'x').then(
      (r) => r,
      () => undefined,
    );
    if (got) throw new Error(`expected no response, got ${got.type_url} version ${got.version_info} with ${got.resources.length} resources`);
  }

  close(): void {
    this.stream.end();
    this.client.close();
  }
}

/** A delta ADS stream. */
export class DeltaTestClient {
  readonly client: AggregatedDiscoveryServiceClient;
  readonly stream: ReturnType<AggregatedDiscoveryServiceClient['DeltaAggregatedResources']>;
  readonly responses = new MessageQueue<DeltaDiscoveryResponse__Output>();
  readonly node: { id: string; metadata: NonNullable<Node['metadata']>; client_features?: string[] };
  #sentNode = false;

  constructor(target: string, node: NodeOptions = {}) {
    this.client = createAdsClient(target, credentials.createInsecure());
    this.stream = this.client.DeltaAggregatedResources(new Metadata());
    this.node = { id: node.id ?? 'sidecar~10.0.0.2~app-2.default~default.svc.cluster.local', metadata: structOf(node.metadata ?? {}), ...(node.clientFeatures ? { client_features: node.clientFeatures } : {}) };
    this.stream.on('data', (r: DeltaDiscoveryResponse__Output) => this.responses.push(r));
    this.stream.on('error', (err: Error) => this.responses.end(err));
  }

  send(request: Omit<DeltaDiscoveryRequest, 'node'>): void {
    const r: DeltaDiscoveryRequest = { ...request };
    if (!this.#sentNode) {
      r.node = this.node;
      this.#sentNode = true;
    }
    this.stream.write(r);
  }

  ack(response: DeltaDiscoveryResponse__Output): void {
    this.send({ type_url: response.type_url, response_nonce: response.nonce });
  }

  next(timeoutMs = 3000): Promise<DeltaDiscoveryResponse__Output> {
    return this.responses.next(timeoutMs, 'DeltaDiscoveryResponse');
  }

  async none(ms = 300): Promise<void> {
    const got = await this.responses.next(ms, 'x').then(
      (r) => r,
      () => undefined,
    );
    if (got) throw new Error(`expected no response, got ${got.type_url} with ${got.resources.length} resources, removed ${got.removed_resources.join(',')}`);
  }

  close(): void {
    this.stream.end();
    this.client.close();
  }
}

/** Names of the resources in a SotW response (decoded). */
export function resourceNames(response: DiscoveryResponse__Output): string[] {
  return response.resources.map((any) => {
    const m = decodeAny(any) as { name?: string; cluster_name?: string };
    return m.name || m.cluster_name || '';
  });
}

// ------------------------------------------------------------------ a world the tests control

/** What the stand-in generators produce: the tests change it, then announce the change. */
export interface World {
  /** Cluster name -> endpoint addresses (`ip:port`). */
  clusters: Record<string, string[]>;
  listeners: string[];
  /** Route config name -> a tag that the VirtualService stand-in changes. */
  routes: Record<string, string>;
  /** Make one type's generator throw. */
  failing?: string;
}

export type WorldPush = PushContext & { world: World };

/** A push context holding a snapshot of the world (the other PushContext methods are not used by the stand-in generators). */
export function worldPushContext(world: World) {
  return (input: PushContextInput): WorldPush => {
    const snapshot: World = structuredClone(world);
    const unused = () => {
      throw new Error('not used by the stand-in generators');
    };
    return {
      version: input.version,
      mesh: input.mesh ?? defaultMeshConfig,
      services: [],
      world: snapshot,
      service: () => undefined,
      endpoints: () => [],
      sidecarScope: unused,
      virtualServices: () => [],
      delegate: () => undefined,
      destinationRule: () => undefined,
      gateways: () => [],
      peerAuthentication: unused,
      workloadPeerAuthentication: unused,
      authorization: unused,
      requestAuthentications: () => [],
      jwks: () => undefined,
      workload: () => undefined,
      servicesOf: () => [],
    };
  };
}

function pick<T>(names: readonly string[] | undefined, all: Record<string, T>): [string, T][] {
  return Object.entries(all).filter(([n]) => !names || names.includes(n));
}

/** Generators reading the world: one EDS cluster per entry, its endpoints, listeners, routes. */
export const worldGenerators: Generators = {
  envoy: {
    [TypeUrl.Cluster]: (push, _proxy, req) => {
      const w = (push as WorldPush).world;
      if (w.failing === TypeUrl.Cluster) throw new Error('cds generator failed');
      return pick(req.names, w.clusters).map(([name]) => ({ name, resource: { name, type: 'EDS', eds_cluster_config: { service_name: name }, connect_timeout: { seconds: 1 } } }));
    },
    [TypeUrl.ClusterLoadAssignment]: (push, _proxy, req) => {
      const w = (push as WorldPush).world;
      return pick(req.names, w.clusters).map(([name, eps]): XdsResource => ({
        name,
        resource: {
          cluster_name: name,
          endpoints: [
            {
              lb_endpoints: eps.map((ep) => {
                const [address, port] = ep.split(':');
                return { endpoint: { address: { socket_address: { address, port_value: Number(port) } } } };
              }),
            },
          ],
        },
      }));
    },
    [TypeUrl.Listener]: (push, _proxy, req) => {
      const w = (push as WorldPush).world;
      return w.listeners.filter((n) => !req.names || req.names.includes(n)).map((name) => ({ name, resource: { name } }));
    },
    [TypeUrl.RouteConfiguration]: (push, _proxy, req) => {
      const w = (push as WorldPush).world;
      if (w.failing === TypeUrl.RouteConfiguration) throw new Error('rds generator failed');
      return pick(req.names, w.routes).map(([name, tag]) => ({ name, resource: { name, virtual_hosts: [{ name: tag, domains: ['*'] }] } }));
    },
  },
};

/** A registry whose changes the test announces. */
export class TestRegistry implements ServiceRegistry {
  readonly name = 'test';
  readonly #listeners = new Set<(change: RegistryChange) => void>();
  services() {
    return [];
  }
  endpoints() {
    return [];
  }
  workloads() {
    return [];
  }
  onChange(listener: (change: RegistryChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  emit(change: RegistryChange): void {
    for (const l of this.#listeners) l(change);
  }
}

/** A VirtualService config: upserting it makes the server push LDS and RDS. */
export function virtualService(name: string, host: string): Config {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: 'default' }, spec: { hosts: [host] } };
}

export function newStore(): ConfigStore {
  return new MemoryConfigStore();
}
