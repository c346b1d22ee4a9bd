// The filters a proxy gets when `startProxy` is not given a registry: each capability (security,
// telemetry) registers its factories here, one line each.
import { nodeId } from '@weft/mesh';
import { TypeUrl } from '@weft/xds';
import { FilterRegistry } from '../core/filters.ts';
import { istioAuthnConfigType, istioAuthnFilterFactory } from '../security/istio-authn.ts';
import { jwtAuthnFilterFactory } from '../security/jwt-authn.ts';
import { rbacHttpFilterFactory, rbacNetworkFilterFactory } from '../security/rbac-filter.ts';
import { xfccFilterFactory } from '../security/xfcc.ts';
import type { ProxyOptions } from './proxy.ts';
import type { Logger } from '@weft/model';
import type { XdsSnapshot } from '../core/types.ts';
import type { TelemetryRuntime } from '../telemetry/runtime.ts';
import { tracingFilterFactory } from '../telemetry/tracing.ts';
import { shutdownTracing, tracingLoaded } from '../telemetry/tracing-export.ts';

/** What filters may ask of the running proxy. */
export interface FilterRuntime {
  /** The current xDS snapshot (tracing resolves its collector's cluster there). */
  snapshot?: () => XdsSnapshot | undefined;
  logger?: Logger;
  /** Istio's metrics (with metadata exchange) and access logs; none when absent. */
  telemetry?: TelemetryRuntime;
}

export function defaultFilterRegistry(options: ProxyOptions, runtime: FilterRuntime = {}): FilterRegistry {
  const registry = new FilterRegistry();
  // Request authentication (RequestAuthentication): envoy.filters.http.jwt_authn, then istio_authn
  // (a TypedStruct of Istio's FilterConfig) turning the verified payload into what RBAC matches.
  registry.registerHttp(TypeUrl.JwtAuthentication, jwtAuthnFilterFactory);
  registry.registerHttp(istioAuthnConfigType, istioAuthnFilterFactory);
  // Authorization (AuthorizationPolicy): envoy.filters.http.rbac and envoy.filters.network.rbac.
  registry.registerHttp(TypeUrl.HttpRbac, rbacHttpFilterFactory);
  registry.registerNetwork(TypeUrl.NetworkRbac, rbacNetworkFilterFactory);
  // x-forwarded-client-cert on chains whose connection manager asks for it (sidecar inbound).
  registry.registerConnectionManager(xfccFilterFactory);
  // Tracing on chains whose connection manager names a tracing provider (telemetry/tracing.ts);
  // OpenTelemetry is loaded only then. Buffered spans are exported on shutdown.
  const bspDelay = Number(process.env.OTEL_BSP_SCHEDULE_DELAY);
  registry.registerConnectionManager(
    tracingFilterFactory(
      { id: nodeId(options.node), zone: options.node.labels?.['topology.kubernetes.io/zone'] ?? '' },
      {
        snapshot: () => runtime.snapshot?.(),
        warn: (message) => runtime.logger?.warn('tracing', { error: message }),
        info: (message, fields) => runtime.logger?.info(message, fields),
        ...(Number.isFinite(bspDelay) && bspDelay > 0 ? { scheduledDelayMs: bspDelay } : {}),
      },
    ),
  );
  registry.onShutdown(() => (tracingLoaded() ? shutdownTracing() : undefined));
  // Access logs (access_log of connection managers and tcp_proxy) and Istio's metrics with
  // metadata exchange (istio.stats), on every HTTP and TCP chain (telemetry/runtime.ts).
  runtime.telemetry?.register(registry);
  return registry;
}
