// Access logs from MeshConfig, as Istio's FileAccessLogFromMeshConfig builds them: with
// `accessLogFile` set, every HTTP connection manager and every tcp_proxy of a sidecar or gateway
// gets an `envoy.access_loggers.file` writing there, in Istio's default TEXT format, the JSON one
// (`accessLogEncoding: JSON`), or `accessLogFormat`.
//
// The logger is added to listeners once they are built: the encoded typed_config of each
// connection manager and tcp_proxy gets one more `access_log` entry appended. Protobuf merges
// concatenated messages and appends repeated fields, so the bytes decode exactly as if the entry
// had been set when the filter was built, and no listener builder needs to know about logging.
import { encodeMessage, type FileAccessLog, TypeUrl } from '@weft/xds';
import type { MeshConfig, XdsResource } from '../core/types.ts';
import { struct } from './envoy.ts';

/** Istio's default text format (EnvoyTextLogFormat), with `%UPSTREAM_CLUSTER_RAW%` as Istio ≥ 1.22 prints the cluster. */
export const istioTextLogFormat =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% ' +
  '%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% ' +
  '%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON format (EnvoyJSONLogFormatIstio). */
export const istioJsonLogFormat: Readonly<Record<string, string>> = Object.freeze({
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
});

const fileAccessLogName = 'envoy.access_loggers.file';

/** A JSON `accessLogFormat` as an object, or undefined when it is not one (Istio then uses its default). */
function parseJsonFormat(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The access_log entry MeshConfig asks for; undefined without `accessLogFile`. */
export function meshAccessLog(mesh: Pick<MeshConfig, 'accessLogFile' | 'accessLogEncoding' | 'accessLogFormat'>) {
  if (!mesh.accessLogFile) return undefined;
  let logFormat: NonNullable<FileAccessLog['log_format']>;
  if (mesh.accessLogEncoding === 'JSON') {
    const custom = mesh.accessLogFormat ? parseJsonFormat(mesh.accessLogFormat) : undefined;
    logFormat = { json_format: struct(custom ?? { ...istioJsonLogFormat }) };
  } else {
    // "Istio will insert a newline on all formats (if missing)."
    const text = mesh.accessLogFormat ? (mesh.accessLogFormat.endsWith('\n') ? mesh.accessLogFormat : `${mesh.accessLogFormat}\n`) : istioTextLogFormat;
    logFormat = { text_format_source: { inline_string: text } };
  }
  return { name: fileAccessLogName, typed_config: { type_url: TypeUrl.FileAccessLog, value: encodeMessage('envoy.extensions.access_loggers.file.v3.FileAccessLog', { path: mesh.accessLogFile, log_format: logFormat }) } };
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** `repeated AccessLog access_log = <field>` holding one entry, as wire bytes. */
function accessLogField(field: number, entry: Buffer): Buffer {
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(entry.length)]), entry]);
}

// access_log's field number in each message (http_connection_manager.proto, tcp_proxy.proto).
const accessLogFieldOf: Record<string, number> = { [TypeUrl.HttpConnectionManager]: 13, [TypeUrl.TcpProxy]: 5 };

interface AnyLike {
  type_url?: string;
  value?: Buffer | Uint8Array | string;
}
interface FilterLike {
  typed_config?: AnyLike | null;
}
interface ChainLike {
  filters?: FilterLike[];
}
interface ListenerLike {
  filter_chains?: ChainLike[];
  default_filter_chain?: ChainLike | null;
}

function withLog(chain: ChainLike, extra: Map<string, Buffer>): ChainLike {
  if (!chain.filters?.some((f) => extra.has(f.typed_config?.type_url ?? ''))) return chain;
  return {
    ...chain,
    filters: chain.filters.map((f) => {
      const tc = f.typed_config;
      const add = extra.get(tc?.type_url ?? '');
      if (!tc || !add) return f;
      const value = typeof tc.value === 'string' ? Buffer.from(tc.value, 'base64') : Buffer.from(tc.value ?? []);
      return { ...f, typed_config: { ...tc, value: Buffer.concat([value, add]) } };
    }),
  };
}

/** Listeners with MeshConfig's access log on every connection manager and tcp_proxy (unchanged without `accessLogFile`). */
export function withAccessLogs(resources: XdsResource[], mesh: Pick<MeshConfig, 'accessLogFile' | 'accessLogEncoding' | 'accessLogFormat'>): XdsResource[] {
  const al = meshAccessLog(mesh);
  if (!al) return resources;
  const entry = encodeMessage('envoy.config.accesslog.v3.AccessLog', al);
  const extra = new Map(Object.entries(accessLogFieldOf).map(([type, field]) => [type, accessLogField(field, entry)]));
  return resources.map((r) => {
    const l = r.resource as ListenerLike;
    const listener: ListenerLike = { ...l };
    if (l.filter_chains) listener.filter_chains = l.filter_chains.map((c) => withLog(c, extra));
    if (l.default_filter_chain) listener.default_filter_chain = withLog(l.default_filter_chain, extra);
    return { name: r.name, resource: listener };
  });
}
