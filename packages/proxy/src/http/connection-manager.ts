// The connection manager's request rules (Envoy's HttpConnectionManager, before any filter):
// the request line read from HTTP/1.1 or HTTP/2 (absolute form included), the headers copied
// for upstream without hop-by-hop and pseudo-headers, path normalization, port stripping,
// x-forwarded-proto/-for, x-request-id, edge clean-up, XFCC sanitizing and via.
//
// Contract: `prepareRequest(ex)` sets `ex.view` (what routes match), `ex.headers` (what goes
// upstream), `ex.grpc`, and the record's method, path, authority, protocol and request id.
// It never answers the request.
import { randomUUID } from 'node:crypto';
import { unmappedIp } from '../core/peer.ts';
import { isGrpcContentType } from './matchers.ts';
import type { Exchange } from './exchange.ts';
import { connectionTokens, type HeaderRecord, isHopByHop } from './headers.ts';
import type { HcmSettings } from './hcm.ts';
import { portStart } from './policies.ts';
import { RequestView } from './view.ts';

export function prepareRequest(ex: Exchange): void {
  const { req, settings, record } = ex;
  const raw = req.headers;
  const method = req.method ?? (raw[':method'] as string | undefined) ?? 'GET';
  let authority = ((ex.h2 ? raw[':authority'] : undefined) as string | undefined) ?? raw.host ?? '';
  let path = (ex.h2 ? (raw[':path'] as string | undefined) : req.url) ?? '/';
  if (path.startsWith('http://') || path.startsWith('https://')) {
    // Absolute form (an app using the proxy as its HTTP proxy): authority and path come from the URL.
    const u = new URL(path);
    authority = u.host;
    path = `${u.pathname}${u.search}`;
  }
  const scheme = ex.ctx.tls ? 'https' : 'http';
  ex.record.protocol = ex.h2 ? 'HTTP/2' : 'HTTP/1.1';

  // Copy the headers as they will go upstream, without hop-by-hop and pseudo-headers.
  const tokens = connectionTokens(raw.connection);
  const h: HeaderRecord = {};
  for (const k in raw) {
    const v = raw[k];
    if (v === undefined || k.charCodeAt(0) === 58 || k === 'host' || isHopByHop(k, tokens)) continue;
    h[k] = v;
  }
  ex.headers = h;
  ex.grpc = isGrpcContentType(typeof h['content-type'] === 'string' ? h['content-type'] : undefined);
  // gRPC needs `te: trailers` upstream.
  if (raw.te === 'trailers') h.te = 'trailers';
  // The proxy answers `expect: 100-continue` itself (Node does); it never goes upstream.
  if (typeof h.expect === 'string' && h.expect.toLowerCase() === '100-continue') delete h.expect;

  ({ path, authority } = routingTarget(path, authority, settings, ex.ctx.localPort));
  // x-forwarded-proto, x-forwarded-for, x-request-id, as the connection manager sets them.
  if (settings.useRemoteAddress || h['x-forwarded-proto'] === undefined) h['x-forwarded-proto'] = scheme;
  const edge = settings.useRemoteAddress && !isInternalAddress(ex.ctx.sourceAddress);
  if (edge) for (const k of edgeCleanedHeaders) delete h[k];
  if (settings.useRemoteAddress && !settings.skipXffAppend && ex.ctx.sourceAddress) {
    const xff = h['x-forwarded-for'];
    h['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(',') : xff},${ex.ctx.sourceAddress}` : ex.ctx.sourceAddress;
  }
  if (settings.generateRequestId && (h['x-request-id'] === undefined || (edge && !settings.preserveExternalRequestId))) h['x-request-id'] = randomUUID();
  if (settings.forwardClientCertDetails === 'SANITIZE' || settings.forwardClientCertDetails === 'SANITIZE_SET') delete h['x-forwarded-client-cert'];
  if (settings.via) h.via = h.via ? `${h.via},${settings.via}` : settings.via;

  const view = new RequestView(method, authority, path, scheme, h);
  ex.view = view;
  record.method = method;
  record.path = path;
  record.authority = authority;
  const rid = h['x-request-id'];
  if (typeof rid === 'string') record.requestId = rid;
}

/** The path and authority routes see: normalized path, port stripped as the connection manager says (also admin/why.ts). */
export function routingTarget(path: string, authority: string, settings: HcmSettings, localPort: number | undefined): { path: string; authority: string } {
  if (settings.normalizePath || settings.mergeSlashes) path = normalizePath(path, settings.mergeSlashes);
  if (settings.stripPort !== 'none') {
    const p = portStart(authority);
    if (p >= 0 && (settings.stripPort === 'any' || authority.slice(p + 1) === String(localPort))) authority = authority.slice(0, p);
  }
  return { path, authority };
}

/** RFC 3986 remove_dot_segments, and `//` -> `/` with merge_slashes; the query is kept. */
export function normalizePath(path: string, mergeSlashes: boolean): string {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  const needsDots = p.includes('/.');
  const needsMerge = mergeSlashes && p.includes('//');
  if (!needsDots && !needsMerge) return path;
  const segments = (needsMerge ? p.replace(/\/{2,}/g, '/') : p).split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '.') {
      if (i === segments.length - 1) out.push('');
    } else if (s === '..') {
      out.pop();
      if (i === segments.length - 1) out.push('');
    } else out.push(s);
  }
  return `/${out.join('/')}${q < 0 ? '' : path.slice(q)}`;
}

/** Envoy's internal control headers, dropped from external requests at the edge (cleanInternalHeaders). */
const edgeCleanedHeaders = [
  'x-envoy-decorator-operation',
  'x-envoy-downstream-service-cluster',
  'x-envoy-downstream-service-node',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-external-address',
  'x-envoy-force-trace',
  'x-envoy-internal',
  'x-envoy-ip-tags',
  'x-envoy-max-retries',
  'x-envoy-original-path',
  'x-envoy-retriable-header-names',
  'x-envoy-retriable-status-codes',
  'x-envoy-retry-grpc-on',
  'x-envoy-retry-on',
  'x-envoy-upstream-alt-stat-name',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-upstream-rq-timeout-alt-response',
  'x-envoy-upstream-rq-timeout-ms',
];

const privateV4 = /^(10\.|127\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.)/;

function isInternalAddress(address: string): boolean {
  const addr = unmappedIp(address);
  return privateV4.test(addr) || addr === '::1' || addr.startsWith('fc') || addr.startsWith('fd');
}

