// @weft/proxy: Weft's data plane. Exports by name only; nothing here runs on import.

// Transparent capture (src/capture): the istio-iptables rules, weft-iptables, SO_ORIGINAL_DST.
export { type ApplyResult, applyCapture, type CaptureOptions, type CleanResult, cleanCapture, parseIptablesSave, routeCommands } from './capture/apply.ts';
export { type IptablesCliIo, runIptablesCli } from './capture/cli.ts';
export {
  type CaptureConfig,
  defaultCaptureConfig,
  type InterceptionMode,
  validateCaptureConfig,
} from './capture/config.ts';
export { getOriginalDst } from './capture/original-dst.ts';
export { buildCaptureRuleSet, buildCaptureRules, type CapturePayloads, type CaptureRuleSet, type Rule as CaptureRule, renderRestorePayload } from './capture/rules.ts';
export { type CommandResult, type CommandRunner, systemRunner } from './capture/system.ts';
// Test helpers (netns pods, a capturing sidecar, an echo app, an OTLP receiver) are in the testing entry: @weft/proxy/testing.

// xDS client (src/xds): ADS state of the world, warming, snapshots, node identity.
export { type ResourceInfo, type ResourceValidator, subscribedTypes, XdsClient, type XdsClientOptions, type XdsClientStatus, type TypeStatus as XdsTypeStatus } from './xds/client.ts';
export { buildNode, defaultIstioVersion, type NodeIdentity, nodeMetadata, parseLabels, type ProxyKind, toStruct } from './xds/node.ts';
export { clusterNamesOf, edsName, routeNamesOf } from './xds/resources.ts';
export { type AcceptedConfig, sameSnapshot, type WarmingClock, type WarmingResult, warm } from './xds/warming.ts';
// Filters beyond routing (src/core/filters.ts): the contract authorization and telemetry plug into.
export {
  beginHttpFilters,
  type ConnectionManagerFilterFactory,
  type DownstreamConnection,
  type FilterHeaders,
  type FilterLocalReply,
  FilterRegistry,
  type FilterSite,
  type HttpFilter,
  type HttpFilterContext,
  type HttpFilterFactory,
  type HttpStreamHooks,
  type NetworkFilter,
  type NetworkFilterFactory,
  type TcpChainFilterFactory,
  type TcpConnectionHooks,
  type TcpFilterContext,
} from './core/filters.ts';
// Listeners (src/listener): binding, filter chain matching, protocol detection, HTTP and TCP chains.
export {
  type CompiledChain,
  type CompiledListener,
  type ConnectionFacts,
  compileListener,
  compiledListener,
  type HttpChainConfig,
  selectChain,
  type TcpRoute,
} from './listener/chains.ts';
export { classify as classifyFirstBytes, type Detected, detect, h2Preface } from './listener/detect.ts';
export { type ConnectionInfo, HttpFrontend, type HttpRouting, type ListenerRequestContext } from './listener/http.ts';
export { describeConnection, directionOf } from './listener/dispatch.ts';
export { type BoundListener, ListenerManager, type ListenerManagerOptions } from './listener/manager.ts';
export { proxyTcp, type TcpContext } from './listener/tcp.ts';
export { type ServerTls, ServerTlsCache, serverTls, type TlsSecretSource } from './listener/tls.ts';
// Admin (src/admin): /config_dump, /clusters, /stats, /ready; /healthz/ready.
export { configDump, type DumpSource, messageToJson } from './admin/config-dump.ts';
export { type AdminOptions, type AdminServer, type AdminSource, clustersText, startAdmin } from './admin/server.ts';
export { Stats } from './admin/stats.ts';
// The assembled proxy (src/runtime): startProxy, flags of weft-proxy / weft-ingress, local credentials.
export { loadCredentials, watchCredentials } from './runtime/credentials.ts';
export { parseDownwardApiLabels, parseProxyFlags, proxyUsage, runProxyCommand, UsageError } from './runtime/flags.ts';
export { runWaitCommand, waitForReady, type WaitOptions } from './runtime/wait.ts';
export { runDrainCommand } from './runtime/drain.ts';
export { type AppProber, AppProbersError, parseAppProbers, runAppProbe } from './telemetry/app-probe.ts';
export { type ClusterManagerContext, type ProxyOptions, type RunningProxy, startProxy } from './runtime/proxy.ts';
export { createHttpRouting } from './runtime/routing.ts';
// Clusters (src/cluster): endpoints, load balancing, undici pools, circuit breakers, outlier detection, upstream TLS.
export { type ClusterManagerOptions, checkCluster, createClusterManager, type WeftClusterManager } from './cluster/manager.ts';
export type { DnsLookup } from './cluster/cluster.ts';
// HTTP router (src/http): RouteConfiguration compiled per snapshot; one request through CORS, fault and router.
export {
  type CompiledRedirect,
  type CompiledRoute,
  type CompiledRouteAction,
  CompiledRoutes,
  type CompiledVirtualHost,
  type CompiledWeightedCluster,
  type CompileOptions as RouteCompileOptions,
  compiledRoutesFor,
  compileRouteConfiguration,
  defaultRouteTimeoutMs,
} from './http/compile.ts';
export { compileOptionsFor, defaultBufferLimitBytes, defaultHcmSettings, type HcmSettings, httpConnectionManagerSettings } from './http/hcm.ts';
export { isGrpcContentType, RouteConfigError } from './http/matchers.ts';
export { RequestView } from './http/view.ts';
// The request pipeline (src/http/router.ts runs the stages in order; codec.ts is the seam to the HTTP codec).
export type { DownstreamRequest, DownstreamResponse, ReqLike, ResLike } from './http/codec.ts';
export type { HttpRequestContext } from './http/exchange.ts';
export { encodeGrpcMessage, httpToGrpcStatus, LocalReplyBody } from './http/local-reply.ts';
export { describeRoute } from './http/route-selection.ts';
export { handleHttpRequest } from './http/router.ts';
export { openTelemetryTracer, tracingFilterFactory, type TracingNode } from './telemetry/tracing.ts';
export { extractTrace, type IncomingTrace, injectTrace, type OutgoingTrace } from './telemetry/tracing-context.ts';
export { flushTracing, shutdownTracing } from './telemetry/tracing-export.ts';
export type { WhyAnswer, WhyDirectKind } from './admin/why.ts';
