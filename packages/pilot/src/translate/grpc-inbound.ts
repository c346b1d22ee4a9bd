// Proxyless gRPC servers (grpc-go's xds.NewGRPCServer, grpc-js-xds's XdsServer), as Istio's grpcgen
// serves them: the server asks for the listener `xds.istio.io/grpc/lds/inbound/<ip>:<port>` (its
// bootstrap's server_listener_resource_name_template; `[::]:<port>` when grpc-go listens on all
// addresses), and gets one filter chain per the workload's PeerAuthentication: mTLS from the
// bootstrap's certificate providers, or plaintext. Its connection manager holds the route inline
// (gRPC servers route nothing: `non_forwarding_action`), the AuthorizationPolicies as RBAC
// filters, and the router last.
import { isIP } from 'node:net';
import type { Listener } from '@weft/xds';
import type { Proxy as MeshProxy, PushContext } from '../core/types.ts';
import { grpcAuthzFilters } from './authz.ts';
import { type FilterChain, hcmFilter, routerFilter, socketAddress } from './envoy.ts';
import { inboundPorts } from './inbound.ts';
import { downstreamTransportSocket, grpcMutualDownstream } from './tls.ts';

/** What a gRPC server's bootstrap puts before its listening address (Istio's grpcxds.ServerListenerNamePrefix). */
export const grpcServerListenerPrefix = 'xds.istio.io/grpc/lds/inbound/';

/** The label by which Istio marks a workload that mesh clients reach with mTLS (auto mTLS). */
const tlsModeLabel = 'security.istio.io/tlsMode';

/** `<ip>:<port>` or `[<ipv6>]:<port>` after the prefix -> its parts; undefined for anything else. */
export function parseServerListenerName(name: string): { host: string; port: number } | undefined {
  if (!name.startsWith(grpcServerListenerPrefix)) return undefined;
  const address = name.slice(grpcServerListenerPrefix.length);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (isIP(host) === 0 || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/**
 * The mode a gRPC server gets (Istio's buildInboundFilterChains): gRPC cannot tell TLS from
 * plaintext on one port (its filter chains match no transport protocol), so PERMISSIVE serves
 * plaintext, except on a workload labelled for auto mTLS, whose clients always come with mTLS.
 */
export function grpcServerMtls(push: PushContext, proxy: MeshProxy, port: number): 'STRICT' | 'DISABLE' {
  const pa = push.peerAuthentication(proxy);
  const mode = pa.portLevel.get(port) ?? pa.mode;
  if (mode === 'STRICT') return 'STRICT';
  if (mode === 'PERMISSIVE' && proxy.labels[tlsModeLabel] === 'istio') return 'STRICT';
  return 'DISABLE';
}

function inboundChain(push: PushContext, proxy: MeshProxy, port: number, mtls: boolean): FilterChain {
  const suffix = mtls ? 'mtls' : 'plaintext';
  const chain: FilterChain = {
    name: `inbound-${suffix}`,
    filters: [
      hcmFilter({
        stat_prefix: `inbound_${port}`,
        route_config: {
          name: 'inbound',
          virtual_hosts: [{ name: `inbound|grpc|${port}`, domains: ['*'], routes: [{ match: { prefix: '/' }, non_forwarding_action: {} }] }],
        },
        http_filters: [...grpcAuthzFilters(push, proxy), routerFilter()],
      }),
    ],
  };
  if (mtls) chain.transport_socket = downstreamTransportSocket(grpcMutualDownstream());
  return chain;
}

/**
 * The server listener a name asks for, or undefined when the name is not one or the workload
 * serves no service on that port (the server then stays not serving, as with Istio).
 */
export function grpcServerListener(push: PushContext, proxy: MeshProxy, name: string): Listener | undefined {
  const parsed = parseServerListenerName(name);
  if (!parsed) return undefined;
  if (!inboundPorts(push, proxy).some((p) => p.targetPort === parsed.port)) return undefined;
  const mtls = grpcServerMtls(push, proxy, parsed.port) === 'STRICT';
  // No listener filters, no use_original_dst: gRPC NACKs either.
  return { name, address: socketAddress(parsed.host, parsed.port), filter_chains: [inboundChain(push, proxy, parsed.port, mtls)] };
}
