// The request as route matching sees it: the request line as pseudo-headers plus the headers.
// One per request; the path split and query parsing happen lazily, only when a matcher asks.
import type { IncomingHttpHeaders } from 'node:http';

export class RequestView {
  readonly method: string;
  /** `:authority` (HTTP/2) or `host` (HTTP/1), as the client sent it. */
  authority: string;
  /** Path with query, after normalization. */
  path: string;
  /** `http` or `https`: the downstream connection's scheme. */
  readonly scheme: string;
  readonly headers: IncomingHttpHeaders;
  /** Envoy's dynamic metadata by filter name, once a filter wrote some (jwt_authn's payload): routes' `dynamic_metadata` matchers read it. */
  dynamicMetadata: Record<string, Record<string, unknown>> | undefined;
  private pathNoQuery: string | undefined;
  private params: Map<string, string> | undefined;

  constructor(method: string, authority: string, path: string, scheme: string, headers: IncomingHttpHeaders) {
    this.method = method;
    this.authority = authority;
    this.path = path;
    this.scheme = scheme;
    this.headers = headers;
    this.dynamicMetadata = undefined;
  }

  /** The path without query or fragment. */
  get pathOnly(): string {
    if (this.pathNoQuery === undefined) {
      const p = this.path;
      const q = p.indexOf('?');
      const h = p.indexOf('#');
      const end = q < 0 ? h : h < 0 ? q : Math.min(q, h);
      this.pathNoQuery = end < 0 ? p : p.slice(0, end);
    }
    return this.pathNoQuery;
  }

  setPath(path: string): void {
    this.path = path;
    this.pathNoQuery = undefined;
    this.params = undefined;
  }

  /** A header's value (multiple values joined with `,` as Envoy does); pseudo-headers read the request line. */
  header(name: string): string | undefined {
    if (name.charCodeAt(0) === 58 /* : */) {
      switch (name) {
        case ':method':
          return this.method;
        case ':authority':
          return this.authority;
        case ':path':
          return this.path;
        case ':scheme':
          return this.scheme;
        default:
          return undefined;
      }
    }
    if (name === 'host') return this.authority;
    const v = this.headers[name];
    if (v === undefined) return undefined;
    return typeof v === 'string' ? v : v.join(',');
  }

  /** The first value of a query parameter, URL-decoded (`+` is a space); undefined when absent. */
  queryParam(name: string): string | undefined {
    if (!this.params) this.params = parseQuery(this.path);
    return this.params.get(name);
  }
}

function decode(s: string): string {
  const plus = s.includes('+') ? s.replaceAll('+', ' ') : s;
  if (!plus.includes('%')) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

export function parseQuery(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf('?');
  if (q < 0) return out;
  let end = path.indexOf('#', q);
  if (end < 0) end = path.length;
  for (const part of path.slice(q + 1, end).split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    if (!out.has(key)) out.set(key, eq < 0 ? '' : decode(part.slice(eq + 1)));
  }
  return out;
}
