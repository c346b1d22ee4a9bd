// Envoy's access log formats (substitution format strings): text with %COMMAND% operators, or
// JSON, compiled once per chain into literal and value segments, each operator reading the
// finished request's record (or connection's) and what filters saw of it. access-log.ts writes
// the lines; an unknown operator throws here, which is the NACK reason.
import { hostname } from 'node:os';
import type { DownstreamConnection, FilterHeaders } from '../core/filters.ts';
import { formatResponseFlags, type RequestRecord } from '../core/types.ts';

/** Envoy's own default format (a FileAccessLog without a format). */
export const envoyDefaultFormat =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

/** What one log line is made from: the finished request or connection and what the filter saw of it. */
export interface LogEntry {
  readonly record: RequestRecord;
  readonly connection: DownstreamConnection | undefined;
  /** HTTP only. */
  readonly method?: string | undefined;
  readonly path?: string | undefined;
  readonly authority?: string | undefined;
  readonly scheme?: string | undefined;
  readonly requestHeaders?: FilterHeaders | undefined;
  readonly responseHeaders?: FilterHeaders | undefined;
}

type Value = string | number | undefined;
type Operator = (e: LogEntry) => Value;

function header(h: FilterHeaders | undefined, name: string): string | undefined {
  const v = h?.[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}

function requestHeader(e: LogEntry, name: string): string | undefined {
  switch (name) {
    case ':method':
      return e.method;
    case ':path':
      return e.path;
    case ':authority':
    case 'host':
      return e.authority;
    case ':scheme':
      return e.scheme;
    default:
      return header(e.requestHeaders, name);
  }
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function withoutPort(a: string | undefined): string | undefined {
  if (!a) return undefined;
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']'));
  const i = a.lastIndexOf(':');
  return i < 0 ? a : a.slice(0, i);
}

function portOf(a: string | undefined): number | undefined {
  if (!a) return undefined;
  const i = a.lastIndexOf(':');
  const n = Number(a.slice(i + 1));
  return i >= 0 && Number.isInteger(n) ? n : undefined;
}

function downstreamLocal(e: LogEntry): string | undefined {
  const c = e.connection;
  return c ? hostPort(c.destinationAddress, c.destinationPort) : e.record.downstreamLocalAddress;
}

function downstreamRemote(e: LogEntry): string | undefined {
  const c = e.connection;
  return c ? hostPort(c.remoteAddress, c.remotePort) : e.record.downstreamRemoteAddress;
}

const flagDetails: Record<string, string> = {
  NR: 'route_not_found',
  NC: 'cluster_not_found',
  UH: 'no_healthy_upstream',
  UF: 'upstream_reset_before_response_started{connection_failure}',
  UO: 'upstream_reset_before_response_started{overflow}',
  UC: 'upstream_reset_before_response_started{connection_termination}',
  URX: 'upstream_reset_before_response_started{connection_failure}',
  UT: 'response_timeout',
  UR: 'upstream_reset_after_response_started{remote_reset}',
  FI: 'fault_filter_abort',
  DC: 'downstream_remote_disconnect',
};

/** %RESPONSE_CODE_DETAILS%: what a filter recorded, else `via_upstream` for an upstream answer, else the flag's reason. */
export function responseCodeDetails(r: RequestRecord): string | undefined {
  if (r.responseCodeDetails) return r.responseCodeDetails;
  if (r.protocol === 'TCP') return undefined;
  for (const f of r.responseFlags) {
    const d = flagDetails[f];
    if (d) return d;
  }
  if (r.responseCode > 0 && r.upstreamHost) return 'via_upstream';
  return undefined;
}

const grpcNames = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** START_TIME with a strftime-style format (the specifiers Envoy's users reach for; UTC, as Envoy prints). */
export function strftime(fmt: string, ms: number): string {
  const d = new Date(ms);
  const fraction = (digits: number) => `${pad(d.getUTCMilliseconds(), 3)}000000`.slice(0, digits);
  const spec = /%(?:E(\d)S|(\d)f|([YmdHMSszZ%]))/y;
  let out = '';
  let i = 0;
  while (i < fmt.length) {
    spec.lastIndex = i;
    const m = fmt[i] === '%' ? spec.exec(fmt) : null;
    if (!m) {
      out += fmt[i++];
      continue;
    }
    i += m[0].length;
    if (m[1]) out += `${pad(d.getUTCSeconds(), 2)}.${fraction(Number(m[1]))}`;
    else if (m[2]) out += fraction(Number(m[2]));
    else {
      switch (m[3]) {
        case 'Y':
          out += d.getUTCFullYear();
          break;
        case 'm':
          out += pad(d.getUTCMonth() + 1, 2);
          break;
        case 'd':
          out += pad(d.getUTCDate(), 2);
          break;
        case 'H':
          out += pad(d.getUTCHours(), 2);
          break;
        case 'M':
          out += pad(d.getUTCMinutes(), 2);
          break;
        case 'S':
          out += pad(d.getUTCSeconds(), 2);
          break;
        case 's':
          out += Math.floor(ms / 1000);
          break;
        case 'z':
          out += '+0000';
          break;
        case 'Z':
          out += 'UTC';
          break;
        default:
          out += '%';
      }
    }
  }
  return out;
}

function operator(name: string, arg: string | undefined, where: string): Operator {
  const needArg = () => {
    if (arg === undefined || arg === '') throw new Error(`${where}: %${name}% needs an argument, as %${name}(X-HEADER)%`);
    return arg;
  };
  switch (name) {
    case 'START_TIME':
      if (arg) return (e) => strftime(arg, e.record.startTime);
      return (e) => new Date(e.record.startTime).toISOString();
    case 'REQ':
    case 'RESP':
    case 'TRAILER': {
      const [main, alt] = needArg()
        .split('?')
        .map((s) => s.trim().toLowerCase()) as [string, string | undefined];
      if (name === 'REQ') return (e) => requestHeader(e, main) ?? (alt ? requestHeader(e, alt) : undefined);
      if (name === 'RESP') return (e) => header(e.responseHeaders, main) ?? (alt ? header(e.responseHeaders, alt) : undefined);
      return () => undefined;
    }
    case 'REQ_WITHOUT_QUERY': {
      const [main, alt] = needArg()
        .split('?')
        .map((s) => s.trim().toLowerCase()) as [string, string | undefined];
      return (e) => {
        const v = requestHeader(e, main) ?? (alt ? requestHeader(e, alt) : undefined);
        const q = v?.indexOf('?') ?? -1;
        return v !== undefined && q >= 0 ? v.slice(0, q) : v;
      };
    }
    case 'PROTOCOL':
      return (e) => (e.record.protocol === 'TCP' ? undefined : e.record.protocol);
    case 'RESPONSE_CODE':
      return (e) => e.record.responseCode;
    case 'RESPONSE_FLAGS':
      return (e) => formatResponseFlags(e.record.responseFlags);
    case 'RESPONSE_CODE_DETAILS':
      return (e) => responseCodeDetails(e.record);
    case 'CONNECTION_TERMINATION_DETAILS':
      return (e) => e.record.connectionTerminationDetails;
    case 'UPSTREAM_PEER_URI_SAN':
      return (e) => e.record.upstreamPeerPrincipal;
    case 'UPSTREAM_LOCAL_URI_SAN':
      return (e) => e.record.upstreamLocalPrincipal;
    case 'UPSTREAM_TRANSPORT_FAILURE_REASON':
    case 'UPSTREAM_LOCAL_ADDRESS':
    case 'UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT':
    case 'UPSTREAM_LOCAL_PORT':
    case 'REQUEST_DURATION':
    case 'REQUEST_TX_DURATION':
    case 'RESPONSE_DURATION':
    case 'RESPONSE_TX_DURATION':
    case 'CONNECTION_ID':
      // Not recorded by Weft: printed as absent (`-`), as Envoy prints a value it does not have.
      return () => undefined;
    case 'BYTES_RECEIVED':
      return (e) => e.record.bytesReceived;
    case 'BYTES_SENT':
      return (e) => e.record.bytesSent;
    case 'DURATION':
      return (e) => e.record.durationMs;
    case 'UPSTREAM_HOST':
      return (e) => e.record.upstreamHost;
    case 'UPSTREAM_CLUSTER':
    case 'UPSTREAM_CLUSTER_RAW':
      return (e) => e.record.upstreamCluster;
    case 'UPSTREAM_REQUEST_ATTEMPT_COUNT':
      return (e) => e.record.attempts;
    case 'DOWNSTREAM_LOCAL_ADDRESS':
      return downstreamLocal;
    case 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT':
      return (e) => withoutPort(downstreamLocal(e));
    case 'DOWNSTREAM_LOCAL_PORT':
      return (e) => portOf(downstreamLocal(e));
    case 'DOWNSTREAM_REMOTE_ADDRESS':
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS':
      return downstreamRemote;
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT':
      return (e) => withoutPort(downstreamRemote(e));
    case 'DOWNSTREAM_REMOTE_PORT':
      return (e) => portOf(downstreamRemote(e));
    case 'REQUESTED_SERVER_NAME':
      return (e) => e.connection?.sni || undefined;
    case 'DOWNSTREAM_PEER_URI_SAN':
      return (e) => e.connection?.peerPrincipal;
    case 'DOWNSTREAM_LOCAL_URI_SAN':
      return (e) => e.connection?.localPrincipal;
    case 'ROUTE_NAME':
      return (e) => e.record.routeName || undefined;
    case 'GRPC_STATUS':
      return (e) => (e.record.grpcStatus === undefined ? undefined : (grpcNames[e.record.grpcStatus] ?? String(e.record.grpcStatus)));
    case 'GRPC_STATUS_NUMBER':
      return (e) => e.record.grpcStatus;
    case 'HOSTNAME': {
      const h = hostname();
      return () => h;
    }
    default:
      throw new Error(`${where}: access log command operator %${name}% is not supported by Weft`);
  }
}

type Segment = string | { op: Operator; maxLength: number | undefined; numeric: boolean };

const numericOperators = new Set(['RESPONSE_CODE', 'BYTES_RECEIVED', 'BYTES_SENT', 'DURATION', 'UPSTREAM_REQUEST_ATTEMPT_COUNT', 'GRPC_STATUS_NUMBER', 'DOWNSTREAM_LOCAL_PORT', 'DOWNSTREAM_REMOTE_PORT']);
const commandPattern = /%([A-Z][A-Z0-9_]*)(?:\(([^)]*)\))?(?::(\d+))?%/y;

/** Compiles an Envoy format string; throws (the NACK reason) for an operator Weft does not know or a stray `%`. */
export function compileFormat(format: string, where = 'access log'): Segment[] {
  const out: Segment[] = [];
  let literal = '';
  let i = 0;
  while (i < format.length) {
    const ch = format[i]!;
    if (ch !== '%') {
      literal += ch;
      i++;
      continue;
    }
    commandPattern.lastIndex = i;
    const m = commandPattern.exec(format);
    if (!m) throw new Error(`${where}: format ${JSON.stringify(format)}: expected %COMMAND%, %COMMAND(ARG)% or %COMMAND(ARG):LENGTH% at offset ${i}`);
    if (literal) out.push(literal);
    literal = '';
    const name = m[1]!;
    out.push({ op: operator(name, m[2], where), maxLength: m[3] ? Number(m[3]) : undefined, numeric: numericOperators.has(name) });
    i += m[0].length;
  }
  if (literal) out.push(literal);
  return out;
}

function valueText(s: Exclude<Segment, string>, e: LogEntry): string | undefined {
  const v = s.op(e);
  if (v === undefined || v === '') return undefined;
  const t = typeof v === 'number' ? String(v) : v;
  return s.maxLength !== undefined && t.length > s.maxLength ? t.slice(0, s.maxLength) : t;
}

/** A compiled log format: one line per entry. */
export type LogFormatter = (e: LogEntry) => string;

export function textFormatter(format: string, omitEmpty = false, where?: string): LogFormatter {
  const segments = compileFormat(format, where);
  const empty = omitEmpty ? '' : '-';
  return (e) => {
    let line = '';
    for (const s of segments) line += typeof s === 'string' ? s : (valueText(s, e) ?? empty);
    return line;
  };
}

type JsonTemplate = { kind: 'literal'; value: unknown } | { kind: 'value'; segments: Segment[] } | { kind: 'object'; fields: [string, JsonTemplate][] };

function jsonTemplate(v: unknown, where: string): JsonTemplate {
  if (typeof v === 'string') return v.includes('%') ? { kind: 'value', segments: compileFormat(v, where) } : { kind: 'literal', value: v };
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    return {
      kind: 'object',
      fields: Object.keys(v)
        .sort()
        .map((k) => [k, jsonTemplate((v as Record<string, unknown>)[k], where)]),
    };
  }
  return { kind: 'literal', value: v };
}

function jsonValue(t: JsonTemplate, e: LogEntry, omitEmpty: boolean): unknown {
  switch (t.kind) {
    case 'literal':
      return t.value;
    case 'object': {
      const o: Record<string, unknown> = {};
      for (const [k, sub] of t.fields) {
        const v = jsonValue(sub, e, omitEmpty);
        if (v === undefined || (omitEmpty && v === null)) continue;
        o[k] = v;
      }
      return o;
    }
    case 'value': {
      const segs = t.segments;
      if (segs.length === 1 && typeof segs[0] !== 'string') {
        // A lone operator keeps its type (numbers stay numbers); absent values are null.
        const s = segs[0]!;
        const v = s.op(e);
        if (v === undefined || v === '') return null;
        if (typeof v === 'number' && s.numeric) return v;
        return valueText(s, e) ?? null;
      }
      let out = '';
      for (const s of segs) out += typeof s === 'string' ? s : (valueText(s, e) ?? '-');
      return out;
    }
  }
}

/** Envoy's json_format: one JSON object per line, keys sorted, lone operators typed, absent values null. */
export function jsonFormatter(format: Record<string, unknown>, omitEmpty = false, where = 'access log'): LogFormatter {
  const t = jsonTemplate(format, where);
  return (e) => `${JSON.stringify(jsonValue(t, e, omitEmpty))}\n`;
}
