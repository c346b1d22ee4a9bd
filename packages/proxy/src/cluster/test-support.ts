// Helpers for the cluster tests: snapshots from real pilot output (YAML -> push context ->
// generators -> encoded and decoded with the Envoy protos, as a proxy receives them), hand-built
// resources put through the same round trip, and small real backends on 127.0.0.1.
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import { type AddressInfo, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { type Config, defaultKindRegistry, loadText, MemoryConfigStore } from '@weft/model';
import { buildPushContext, defaultMeshConfig, envoyGenerators, proxyFromNode, ServiceEntryRegistry } from '@weft/pilot';
import {
  type Cluster,
  type Cluster__Output,
  type ClusterLoadAssignment,
  type ClusterLoadAssignment__Output,
  decodeMessage,
  encodeMessage,
  type Secret__Output,
  TypeUrl,
} from '@weft/xds';
import type { UpstreamResponse, XdsSnapshot } from '../core/types.ts';

function configs(text: string): Config[] {
  const r = loadText(text, 'test.yaml', { registry: defaultKindRegistry() });
  const problems = [...r.problems, ...r.resources.flatMap((x) => x.problems)].filter((p) => p.severity === 'error');
  if (problems.length > 0) throw new Error(`test YAML does not load: ${problems.map((p) => `${p.line}: ${p.path} ${p.message}`).join('; ')}`);
  return r.resources.flatMap((x) => (x.config ? [x.config] : []));
}

/** CDS and EDS that pilot generates for a sidecar in `default` from the YAML, decoded as the proxy sees them. */
export function pilotSnapshot(yaml: string, secrets: ReadonlyMap<string, Secret__Output> = new Map()): XdsSnapshot {
  const store = new MemoryConfigStore();
  for (const c of configs(yaml)) store.upsert(c);
  const push = buildPushContext({ store, registry: new ServiceEntryRegistry(store), mesh: defaultMeshConfig, version: 'test' });
  const proxy = proxyFromNode({ id: 'sidecar~127.0.0.50~client.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'client' } } });
  const clusters = new Map<string, Cluster__Output>();
  for (const r of envoyGenerators[TypeUrl.Cluster]!(push, proxy, { typeUrl: TypeUrl.Cluster })) clusters.set(r.name, cluster(r.resource as Cluster));
  const endpoints = new Map<string, ClusterLoadAssignment__Output>();
  const edsNames = [...clusters.values()].filter((c) => c.type === 'EDS').map((c) => c.eds_cluster_config?.service_name || c.name);
  for (const r of envoyGenerators[TypeUrl.ClusterLoadAssignment]!(push, proxy, { typeUrl: TypeUrl.ClusterLoadAssignment, names: edsNames })) {
    endpoints.set(r.name, decodedAssignment(r.resource as ClusterLoadAssignment));
  }
  return snapshot(clusters, endpoints, secrets);
}

/** A hand-built cluster, decoded as the proxy would receive it. */
export function cluster(c: Cluster): Cluster__Output {
  const name = 'envoy.config.cluster.v3.Cluster';
  return decodeMessage(name, encodeMessage(name, c));
}

function decodedAssignment(a: ClusterLoadAssignment): ClusterLoadAssignment__Output {
  const name = 'envoy.config.endpoint.v3.ClusterLoadAssignment';
  return decodeMessage(name, encodeMessage(name, a));
}

export function assignment(name: string, endpoints: readonly { port: number; address?: string; weight?: number; health?: 'HEALTHY' | 'UNHEALTHY' }[]): ClusterLoadAssignment__Output {
  return decodedAssignment({
    cluster_name: name,
    endpoints: [
      {
        lb_endpoints: endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: e.address ?? '127.0.0.1', port_value: e.port } } },
          load_balancing_weight: { value: e.weight ?? 1 },
          health_status: e.health ?? 'HEALTHY',
        })),
      },
    ],
  });
}

export function snapshot(
  clusters: ReadonlyMap<string, Cluster__Output> | readonly Cluster__Output[],
  endpoints: ReadonlyMap<string, ClusterLoadAssignment__Output> | readonly ClusterLoadAssignment__Output[] = new Map(),
  secrets: ReadonlyMap<string, Secret__Output> = new Map(),
): XdsSnapshot {
  const cm = Array.isArray(clusters) ? new Map(clusters.map((c) => [c.name, c])) : (clusters as ReadonlyMap<string, Cluster__Output>);
  const em = Array.isArray(endpoints) ? new Map(endpoints.map((e) => [e.cluster_name, e])) : (endpoints as ReadonlyMap<string, ClusterLoadAssignment__Output>);
  return { versions: {}, listeners: new Map(), routes: new Map(), clusters: cm, endpoints: em, secrets };
}

/** An HTTP/1.1 backend on 127.0.0.1 that answers with its name; `handler` may take over. */
export interface Backend {
  readonly name: string;
  readonly port: number;
  readonly server: Server | Http2Server;
  /** Requests served. */
  count: number;
  /** Connections accepted. */
  connections: number;
  close(): Promise<void>;
}

export async function httpBackend(name: string, handler?: (req: IncomingMessage, res: ServerResponse, b: Backend) => void, host = '127.0.0.1'): Promise<Backend> {
  const b: Backend = {
    name,
    port: 0,
    server: undefined as unknown as Server,
    count: 0,
    connections: 0,
    close: async () => {
      (b.server as Server).closeAllConnections();
      b.server.close();
      await once(b.server, 'close');
    },
  };
  const server = createHttpServer((req, res) => {
    b.count++;
    if (handler) return handler(req, res, b);
    req.resume();
    req.on('end', () => {
      res.setHeader('x-backend', name);
      res.end(name);
    });
  });
  server.on('connection', () => b.connections++);
  server.listen(0, host);
  await once(server, 'listening');
  Object.assign(b, { server, port: (server.address() as AddressInfo).port });
  return b;
}

/** An h2c (HTTP/2 prior knowledge) backend that answers with its name, the protocol version, and a trailer. */
export async function h2Backend(name: string): Promise<Backend> {
  const server = createH2Server();
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  const b: Backend = {
    name,
    port: 0,
    server,
    count: 0,
    connections: 0,
    close: async () => {
      for (const s of sessions) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
  server.on('session', (s) => {
    b.connections++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    b.count++;
    stream.respond({ ':status': 200, 'x-backend': name, 'x-authority': String(headers[':authority']) }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(`${name} HTTP/2`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  Object.assign(b, { port: (server.address() as AddressInfo).port });
  return b;
}

/** A TCP echo server. */
export async function echoServer(): Promise<{ port: number; server: NetServer; sockets: Set<Socket>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    server,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

export async function text(r: UpstreamResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of r.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

export const get = (path = '/', authority = 'test') => ({ method: 'GET', path, authority, headers: {} });

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
