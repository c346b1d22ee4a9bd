// How the services call each other: plain HTTP/1.1, a new connection per call (no pool, as the
// original productpage does on purpose so that calls spread over a service's instances), with a
// timeout that bounds connecting and every wait for the peer (like Python requests' `timeout`
// and JAX-RS's connect/receive timeouts), optionally through a standard HTTP proxy: the request
// then goes to the proxy with the absolute URL as its target (`GET http://reviews:9080/reviews/0`),
// which is how an application reaches other services through its sidecar in local mode.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface ProxySettings {
  /** The HTTP proxy for `http:` URLs, e.g. `http://127.0.0.14:15001`. */
  httpProxy?: string;
  /** Hosts reached directly: comma-separated names, `.domain` suffixes, `host:port`, or `*`. */
  noProxy?: string;
}

/** The standard proxy variables: `http_proxy`/`HTTP_PROXY`, `no_proxy`/`NO_PROXY`. */
export function proxyFromEnv(env: NodeJS.ProcessEnv): ProxySettings {
  const httpProxy = env.http_proxy || env.HTTP_PROXY;
  const noProxy = env.no_proxy || env.NO_PROXY;
  return { ...(httpProxy ? { httpProxy } : {}), ...(noProxy ? { noProxy } : {}) };
}

/** Checks a proxy URL; returns a message saying what is wrong, or undefined. */
export function checkProxyUrl(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value.includes('://') ? value : `http://${value}`);
  } catch {
    return `${JSON.stringify(value)} is not a URL (expected http://HOST:PORT)`;
  }
  if (u.protocol !== 'http:') return `${JSON.stringify(value)}: only http:// proxies are supported`;
  if (!u.hostname) return `${JSON.stringify(value)} names no host`;
  return undefined;
}

function bypass(target: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || '80';
  for (const raw of noProxy.split(',')) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    let entryPort: string | undefined;
    const m = /^(.*):(\d+)$/.exec(entry);
    if (m && !entry.startsWith('[') && m[1]!.split(':').length === 1) {
      entry = m[1]!;
      entryPort = m[2];
    }
    entry = entry.replace(/^\*?\./, '');
    if (entryPort && entryPort !== port) continue;
    if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Bounds connecting and each wait for data from the peer, in milliseconds. */
  timeoutMs: number;
  proxy?: ProxySettings;
}

export interface CallResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Error of a call that got no response: refused, reset, or timed out (`code: 'ETIMEDOUT'`). */
export class CallError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'CallError';
    this.code = code;
  }
}

export function call(url: string, o: CallOptions): Promise<CallResult> {
  const target = new URL(url);
  const headers: Record<string, string> = { ...o.headers };
  const useProxy = target.protocol === 'http:' && o.proxy?.httpProxy && !bypass(target, o.proxy.noProxy);
  let req: ReturnType<typeof httpRequest>;
  if (useProxy) {
    const p = new URL(o.proxy!.httpProxy!.includes('://') ? o.proxy!.httpProxy! : `http://${o.proxy!.httpProxy!}`);
    headers.host = target.host;
    if (p.username) headers['proxy-authorization'] = `Basic ${Buffer.from(`${decodeURIComponent(p.username)}:${decodeURIComponent(p.password)}`).toString('base64')}`;
    req = httpRequest({
      host: p.hostname.replace(/^\[|\]$/g, ''),
      port: Number(p.port || 80),
      method: o.method ?? 'GET',
      path: target.href,
      headers,
      agent: false,
      timeout: o.timeoutMs,
    });
  } else {
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    req = send(target, { method: o.method ?? 'GET', headers, agent: false, timeout: o.timeoutMs });
  }
  return new Promise((resolve, reject) => {
    req.on('timeout', () => req.destroy(new CallError(`no answer from ${target.host} within ${o.timeoutMs} ms`, 'ETIMEDOUT')));
    req.on('error', (err: NodeJS.ErrnoException) => reject(err instanceof CallError ? err : new CallError(`${target.host}: ${err.message}`, err.code ?? 'ECONNERROR')));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err: NodeJS.ErrnoException) => reject(err instanceof CallError ? err : new CallError(`${target.host}: ${err.message}`, err.code ?? 'ECONNERROR')));
    });
    req.end();
  });
}

/** The incoming headers in `names` that are present, lowercase, one value each. */
export function pickHeaders(incoming: Record<string, string | string[] | undefined>, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const v = incoming[name];
    if (v === undefined) continue;
    out[name] = Array.isArray(v) ? v.join(name === 'cookie' ? '; ' : ', ') : v;
  }
  return out;
}
