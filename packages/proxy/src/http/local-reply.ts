// Answers the proxy makes itself (Envoy's sendLocalReply): 404 NR, 503 NC/UH/UF, 504 UT, fault
// aborts, redirects, filters' denials. gRPC requests get HTTP 200 with `grpc-status` and
// `grpc-message` as one trailers-only HEADERS frame. Every response, local or upstream, passes
// `finalizeDownstreamHeaders` (filters' response hooks, CORS, server, via, x-request-id).
import type { OutgoingHttpHeaders } from 'node:http';
import type { FilterHeaders } from '../core/filters.ts';
import type { Exchange } from './exchange.ts';
import { applyHeaderMutations, type HeaderMutation, type HeaderRecord } from './headers.ts';

/** Envoy's local reply bodies. */
export const LocalReplyBody = {
  noHealthyUpstream: 'no healthy upstream',
  timeout: 'upstream request timeout',
  maxStreamDuration: 'upstream max stream duration reached',
  faultAbort: 'fault filter abort',
  resetPrefix: 'upstream connect error or disconnect/reset before headers. ',
} as const;

/** Envoy's Grpc::Utility::httpToGrpcStatus. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}

/** gRPC's percent-encoding of `grpc-message`. */
export function encodeGrpcMessage(msg: string): string {
  let out = '';
  for (const b of Buffer.from(msg, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Connection-manager and CORS response headers, on every response. */
export function finalizeDownstreamHeaders(ex: Exchange, out: OutgoingHttpHeaders, status: number): void {
  if (ex.hooks) for (const h of ex.hooks) h.onResponse?.(ex.filterCtx!, status, out as FilterHeaders);
  if (ex.cors && ex.corsOrigin) {
    out['access-control-allow-origin'] = ex.corsOrigin;
    if (ex.cors.allowCredentials) out['access-control-allow-credentials'] = 'true';
    if (ex.cors.exposeHeaders) out['access-control-expose-headers'] = ex.cors.exposeHeaders;
  }
  const s = ex.settings;
  if (s.serverHeaderTransformation === 'OVERWRITE' || (s.serverHeaderTransformation === 'APPEND_IF_ABSENT' && out.server === undefined)) out.server = s.serverName;
  if (s.via) out.via = out.via ? `${out.via},${s.via}` : s.via;
  if (s.alwaysSetRequestIdInResponse && ex.headers['x-request-id'] !== undefined) out['x-request-id'] = ex.headers['x-request-id'];
}

/**
 * A response the proxy makes itself. gRPC requests get HTTP 200 with `grpc-status` (mapped from
 * the HTTP status unless given) and `grpc-message` (the body), as Envoy's sendLocalReply does.
 */
export function localReply(
  ex: Exchange,
  status: number,
  body: string | Buffer,
  opts: { grpcStatus?: number | undefined; routeHeaders?: boolean; headers?: Record<string, string> },
): void {
  const res = ex.res;
  if (ex.gone) return;
  if (res.headersSent) {
    // Too late for a reply: the client sees the stream reset.
    res.destroy();
    return;
  }
  const out: HeaderRecord = {};
  if (opts.headers) Object.assign(out, opts.headers);
  if (opts.routeHeaders && ex.route) {
    applyHeaderMutations(out, responseMutations(ex), ex);
  }
  const outgoing = out as OutgoingHttpHeaders;
  finalizeDownstreamHeaders(ex, outgoing, ex.grpc ? 200 : status);
  ex.responseStarted = true;
  if (ex.grpc) {
    const grpcStatus = opts.grpcStatus ?? httpToGrpcStatus(status);
    const text = typeof body === 'string' ? body : body.toString('utf8');
    outgoing['content-type'] = 'application/grpc';
    ex.record.responseCode = 200;
    outgoing['grpc-status'] = String(grpcStatus);
    if (text) outgoing['grpc-message'] = encodeGrpcMessage(text);
    trailersOnly(ex, 200, outgoing);
    return;
  }
  const buf = typeof body === 'string' ? (body ? Buffer.from(body) : undefined) : body;
  if (buf && outgoing['content-type'] === undefined) outgoing['content-type'] = 'text/plain';
  outgoing['content-length'] = String(buf?.length ?? 0);
  ex.record.responseCode = status;
  ex.bytesSent += buf?.length ?? 0;
  res.writeHead(status, outgoing);
  res.end(buf);
}

/** A gRPC trailers-only response: one HEADERS frame that ends the stream (the compatibility API cannot end on headers). */
export function trailersOnly(ex: Exchange, status: number, headers: OutgoingHttpHeaders): void {
  const stream = ex.h2 ? ex.res.stream : undefined;
  if (stream) stream.respond({ ...headers, ':status': status }, { endStream: true });
  else {
    ex.res.writeHead(status, headers);
    ex.res.end();
  }
}

export function responseMutations(ex: Exchange): HeaderMutation[] {
  const route = ex.route!;
  const w = ex.weighted?.responseHeaders;
  return w ? [w, ...route.responseHeaders] : (route.responseHeaders as HeaderMutation[]);
}
