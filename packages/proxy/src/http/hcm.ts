// What the router needs from a listener's http_connection_manager, read once per filter chain.
import { decodeAny, type HttpConnectionManager__Output, TypeUrl } from '@weft/xds';
import type { CompileOptions } from './compile.ts';
import { CorsFilterName, FaultFilterName } from './filters.ts';

/** Envoy's default per-connection buffer limit, which also bounds the request body kept for retries. */
export const defaultBufferLimitBytes = 1024 * 1024;

export interface HcmSettings {
  readonly statPrefix: string;
  /** RDS name (`9080`, `http.80`), or undefined for an inline `route_config`. */
  readonly routeConfigName: string | undefined;
  readonly faultFilter: boolean;
  readonly corsFilter: boolean;
  /** Gateways: the peer is the client; append it to `x-forwarded-for`, overwrite `x-forwarded-proto`. */
  readonly useRemoteAddress: boolean;
  readonly skipXffAppend: boolean;
  readonly generateRequestId: boolean;
  readonly preserveExternalRequestId: boolean;
  readonly alwaysSetRequestIdInResponse: boolean;
  /** `server` header value; Istio's is `istio-envoy`. */
  readonly serverName: string;
  readonly serverHeaderTransformation: 'OVERWRITE' | 'APPEND_IF_ABSENT' | 'PASS_THROUGH';
  readonly normalizePath: boolean;
  readonly mergeSlashes: boolean;
  /** `strip_matching_host_port` strips the port when it is the listener's; `strip_any_host_port` always. */
  readonly stripPort: 'none' | 'matching' | 'any';
  /** `forward_client_cert_details`: SANITIZE and SANITIZE_SET drop an incoming `x-forwarded-client-cert`. */
  readonly forwardClientCertDetails: string;
  /** Router filter's suppress_envoy_headers: no `x-envoy-upstream-service-time`, `x-envoy-expected-rq-timeout-ms`... */
  readonly suppressEnvoyHeaders: boolean;
  readonly via: string;
  /** Request bodies up to this size are buffered (and replayed on retries and mirrors); larger ones stream without retries. */
  readonly bufferLimitBytes: number;
}

export const defaultHcmSettings: HcmSettings = {
  statPrefix: '',
  routeConfigName: undefined,
  faultFilter: true,
  corsFilter: true,
  useRemoteAddress: false,
  skipXffAppend: false,
  generateRequestId: true,
  preserveExternalRequestId: false,
  alwaysSetRequestIdInResponse: false,
  serverName: 'istio-envoy',
  serverHeaderTransformation: 'OVERWRITE',
  normalizePath: true,
  mergeSlashes: false,
  stripPort: 'none',
  forwardClientCertDetails: 'SANITIZE',
  suppressEnvoyHeaders: false,
  via: '',
  bufferLimitBytes: defaultBufferLimitBytes,
};

/** Reads a decoded HttpConnectionManager; `bufferLimitBytes` is the listener's per_connection_buffer_limit_bytes. */
export function httpConnectionManagerSettings(hcm: HttpConnectionManager__Output, bufferLimitBytes = defaultBufferLimitBytes): HcmSettings {
  const names = new Set(hcm.http_filters.map((f) => f.name));
  let suppress = false;
  const router = hcm.http_filters.find((f) => f.name === 'envoy.filters.http.router');
  if (router?.typed_config?.type_url === TypeUrl.Router) suppress = decodeAny(router.typed_config, TypeUrl.Router).suppress_envoy_headers;
  const transformation = hcm.server_header_transformation;
  return {
    statPrefix: hcm.stat_prefix,
    routeConfigName: hcm.route_specifier === 'rds' ? hcm.rds?.route_config_name : undefined,
    faultFilter: names.has(FaultFilterName),
    corsFilter: names.has(CorsFilterName),
    useRemoteAddress: hcm.use_remote_address?.value ?? false,
    skipXffAppend: hcm.skip_xff_append,
    generateRequestId: hcm.generate_request_id?.value ?? true,
    preserveExternalRequestId: hcm.preserve_external_request_id,
    alwaysSetRequestIdInResponse: hcm.always_set_request_id_in_response,
    serverName: hcm.server_name || defaultHcmSettings.serverName,
    serverHeaderTransformation: transformation === 'APPEND_IF_ABSENT' || transformation === 'PASS_THROUGH' ? transformation : 'OVERWRITE',
    normalizePath: hcm.normalize_path?.value ?? false,
    mergeSlashes: hcm.merge_slashes,
    stripPort: hcm.strip_any_host_port ? 'any' : hcm.strip_matching_host_port ? 'matching' : 'none',
    forwardClientCertDetails: hcm.forward_client_cert_details,
    suppressEnvoyHeaders: suppress,
    via: hcm.via,
    bufferLimitBytes,
  };
}

/** The compile options matching an HCM's filter chain (per-route configs of absent filters are ignored). */
export function compileOptionsFor(settings: HcmSettings): CompileOptions {
  return { faultFilter: settings.faultFilter, corsFilter: settings.corsFilter };
}
