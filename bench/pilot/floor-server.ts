// The platform floor for pilot's push: the least an ADS server on @grpc/grpc-js can do to deliver
// one route change. It holds a route configuration as large as pilot's port-80 one for 1,000
// services (the same virtual hosts, domains and default routes), encodes each response ONCE and
// writes that same buffer to every stream: no config watching, no push context, no generation,
// no per-client encoding. Listeners, clusters and endpoints are minimal (one listener naming RDS
// `80`; no clusters), so a client holds the same route configuration it holds from weftd.
//   node floor-server.ts --services 1000
// Prints {"msg":"listening","port":N}; a line `push` on stdin sends a new RDS version to every
// stream and prints {"msg":"pushed","streams":N,"ms":T} once every write was handed to grpc-js.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { type ServerDuplexStream, Server, ServerCredentials } from '@grpc/grpc-js';
import { adsServiceDefinition, type DiscoveryRequest__Output, encodeAny, encodeMessage, TypeUrl } from '@weft/xds';

const { values } = parseArgs({ options: { services: { type: 'string', default: '1000' } } });
const services = Number(values.services);
const zero = { seconds: '0', nanos: 0 };

function routeConfiguration(): Buffer {
  const virtual_hosts = [];
  for (let i = 0; i < services; i++) {
    const host = `svc-${i}.bench.svc.cluster.local`;
    const short = [`svc-${i}`, `svc-${i}.bench`, `svc-${i}.bench.svc`];
    virtual_hosts.push({
      name: `${host}:80`,
      domains: [host, `${host}:80`, ...short.flatMap((s) => [s, `${s}:80`])],
      include_request_attempt_count: true,
      routes: [
        {
          name: 'default',
          match: { prefix: '/' },
          decorator: { operation: `${host}:80/*` },
          route: {
            cluster: `outbound|80||${host}`,
            timeout: zero,
            max_grpc_timeout: zero,
            retry_policy: {
              retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
              num_retries: { value: 2 },
              retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: encodeAny(TypeUrl.PreviousHostsPredicate, {}) }],
              host_selection_retry_max_attempts: '5',
              retriable_status_codes: [503],
            },
          },
        },
      ],
    });
  }
  virtual_hosts.push({ name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: 'PassthroughCluster', timeout: zero } }] });
  return encodeMessage('envoy.config.route.v3.RouteConfiguration', { name: '80', virtual_hosts, validate_clusters: { value: false } });
}

const listener = encodeMessage('envoy.config.listener.v3.Listener', {
  name: '0.0.0.0_80',
  address: { socket_address: { address: '0.0.0.0', port_value: 80 } },
  filter_chains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: encodeAny(TypeUrl.HttpConnectionManager, {
            stat_prefix: 'outbound_0.0.0.0_80',
            rds: { route_config_name: '80', config_source: { ads: {}, resource_api_version: 'V3' } },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: encodeAny(TypeUrl.Router, {}) }],
          }),
        },
      ],
    },
  ],
});
const routes = routeConfiguration();
let routeVersion = 1;

/** One DiscoveryResponse, encoded once: every stream gets the same bytes. */
function response(typeUrl: string, version: number, resources: Buffer[]): Buffer {
  return encodeMessage('envoy.service.discovery.v3.DiscoveryResponse', {
    version_info: String(version),
    type_url: typeUrl,
    nonce: `${typeUrl.slice(-8)}-${version}`,
    resources: resources.map((value) => ({ type_url: typeUrl, value })),
  });
}
const initial = new Map<string, Buffer>([
  [TypeUrl.Cluster, response(TypeUrl.Cluster, 1, [])],
  [TypeUrl.ClusterLoadAssignment, response(TypeUrl.ClusterLoadAssignment, 1, [])],
  [TypeUrl.Listener, response(TypeUrl.Listener, 1, [listener])],
  [TypeUrl.RouteConfiguration, response(TypeUrl.RouteConfiguration, 1, [routes])],
]);

type Stream = ServerDuplexStream<DiscoveryRequest__Output, Buffer>;
const streams = new Set<Stream>();
const definition = adsServiceDefinition();
const server = new Server({ 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
server.addService(
  {
    ...definition,
    // Responses are written already encoded.
    StreamAggregatedResources: { ...definition.StreamAggregatedResources, responseSerialize: (b: Buffer) => b },
  },
  {
    StreamAggregatedResources: (call: Stream) => {
      streams.add(call);
      const answered = new Set<string>();
      call.on('data', (r: DiscoveryRequest__Output) => {
        // The first request of each type gets the current state; ACKs get nothing.
        if (r.response_nonce || answered.has(r.type_url)) return;
        answered.add(r.type_url);
        const first = initial.get(r.type_url);
        if (first) call.write(first);
      });
      call.on('error', () => streams.delete(call));
      call.on('end', () => {
        streams.delete(call);
        call.end();
      });
    },
  },
);
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(JSON.stringify({ msg: 'listening', port, routeConfigBytes: routes.length }));
});
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'push') return;
  const t = performance.now();
  routeVersion++;
  const next = response(TypeUrl.RouteConfiguration, routeVersion, [routes]);
  for (const s of streams) s.write(next);
  console.log(JSON.stringify({ msg: 'pushed', streams: streams.size, ms: performance.now() - t }));
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
