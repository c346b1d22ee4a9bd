// productpage: the web page. For each view it calls details (one attempt, 3 s) and then reviews
// (up to two attempts of 3 s each, stopping at the first 200: kept from the original on purpose,
// for the fault-injection task), passes on the trace headers, `cookie`, `authorization` and the
// others of its list, and says `end-user: <user>` when someone is signed in. The page is always
// 200, with an error text in place of what a backend could not give.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CallResult, call, type ProxySettings, pickHeaders } from './client.ts';
import { defaultUpstreams, type Upstreams } from './config.ts';
import { b3Headers, productpageForwardedHeaders } from './headers.ts';
import { indexPage, productPage, type ReviewsResponse, type ServiceNode } from './html.ts';
import { createLogger, type Logger, type LogSink } from './log.ts';
import { pyJson } from './pyjson.ts';
import { type ListenOptions, type RunningService, readBody, sendJson, sendText, serve } from './server.ts';
import { cookieValue, decodeSession, defaultSessionSecret, encodeSession } from './session.ts';

export interface ProductpageOptions extends ListenOptions {
  version?: string;
  /** Base URLs of details, reviews and ratings; default http://<name>:9080. */
  upstreams?: Partial<Upstreams>;
  proxy?: ProxySettings;
  /** FLOOD_FACTOR: extra reviews calls before the real one, results ignored (rate-limit demos). */
  floodFactor?: number;
  /** The key that signs session cookies. */
  sessionSecret?: string;
  /** Where /static/ files come from; default the package's static/ folder. */
  staticDir?: string;
  log?: LogSink;
}

export const products = [
  {
    id: 0,
    title: 'The Comedy of Errors',
    descriptionHtml:
      '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare\'s</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.',
  },
] as const;

export const detailsError = 'Sorry, product details are currently unavailable for this book.';
export const reviewsError = 'Sorry, product reviews are currently unavailable for this book.';
export const ratingsError = 'Sorry, product ratings are currently unavailable for this book.';

/** Per-call timeout, seconds as in the original (Python requests' timeout=3.0). */
const timeoutMs = 3000;

const contentTypes: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** The `request_result` counter (Prometheus text on /metrics). */
class ResultCounter {
  readonly #counts = new Map<string, { app: string; code: number; n: number; created: number }>();

  inc(app: string, code: number): void {
    const key = `${app}\0${code}`;
    const e = this.#counts.get(key) ?? { app, code, n: 0, created: Date.now() / 1000 };
    e.n++;
    this.#counts.set(key, e);
  }

  text(): string {
    const all = [...this.#counts.values()];
    const labels = (e: { app: string; code: number }) => `{destination_app="${e.app}",response_code="${e.code}"}`;
    return [
      '# HELP request_result_total Response code counts',
      '# TYPE request_result_total counter',
      ...all.map((e) => `request_result_total${labels(e)} ${e.n.toFixed(1)}`),
      '# HELP request_result_created Response code counts',
      '# TYPE request_result_created gauge',
      ...all.map((e) => `request_result_created${labels(e)} ${e.created.toFixed(3)}`),
      '',
    ].join('\n');
  }
}

interface Outcome {
  status: number;
  body: unknown;
}

export function startProductpage(o: ProductpageOptions = {}): Promise<RunningService> {
  const version = o.version ?? 'v1';
  const up: Upstreams = {
    details: (o.upstreams?.details ?? defaultUpstreams.details).replace(/\/+$/, ''),
    reviews: (o.upstreams?.reviews ?? defaultUpstreams.reviews).replace(/\/+$/, ''),
    ratings: (o.upstreams?.ratings ?? defaultUpstreams.ratings).replace(/\/+$/, ''),
  };
  const secret = o.sessionSecret ?? defaultSessionSecret;
  const staticDir = o.staticDir ?? fileURLToPath(new URL('../static/', import.meta.url));
  const floodFactor = o.floodFactor ?? 0;
  const log: Logger = createLogger('productpage', o.log, { version });
  const results = new ResultCounter();

  const userOf = (req: IncomingMessage) => decodeSession(cookieValue(req.headers.cookie, 'session'), secret).user || undefined;

  /** The headers productpage sends to the services it calls. */
  const forwardHeaders = (req: IncomingMessage, user: string | undefined): Record<string, string> => ({
    ...pickHeaders(req.headers, productpageForwardedHeaders),
    ...b3Headers(req.headers),
    ...(user ? { 'end-user': user } : {}),
  });

  /** GET `url` up to `attempts` times; success is a 200 with a JSON body. */
  const fetchJson = async (app: string, url: string, headers: Record<string, string>, attempts: number, error: string): Promise<Outcome> => {
    let status = 500;
    for (let i = 0; i < attempts; i++) {
      let r: CallResult | undefined;
      try {
        r = await call(url, { headers, timeoutMs, ...(o.proxy ? { proxy: o.proxy } : {}) });
      } catch (err) {
        log.warn('call failed', { destination: app, url, attempt: i + 1, error: err });
        status = 500;
        continue;
      }
      status = r.status;
      if (r.status === 200) {
        try {
          const body: unknown = JSON.parse(r.body);
          results.inc(app, 200);
          return { status: 200, body };
        } catch {
          log.warn('call answered with a body that is not JSON', { destination: app, url });
          status = 500;
          continue;
        }
      }
      log.warn('call failed', { destination: app, url, attempt: i + 1, status: r.status });
    }
    results.inc(app, status);
    return { status, body: { error } };
  };

  const details = (id: string, h: Record<string, string>) => fetchJson('details', `${up.details}/details/${id}`, h, 1, detailsError);
  const reviews = (id: string, h: Record<string, string>) => fetchJson('reviews', `${up.reviews}/reviews/${id}`, h, 2, reviewsError);
  const ratings = (id: string, h: Record<string, string>) => fetchJson('ratings', `${up.ratings}/ratings/${id}`, h, 1, ratingsError);

  const flood = async (id: string, h: Record<string, string>) => {
    await Promise.allSettled(Array.from({ length: floodFactor }, () => call(`${up.reviews}/reviews/${id}`, { headers: h, timeoutMs, ...(o.proxy ? { proxy: o.proxy } : {}) })));
  };

  const redirectBack = (req: IncomingMessage, res: ServerResponse, cookie: string) => {
    // The original redirects to the Referer only; without one it fails. Here: back to the page.
    const location = req.headers.referer || 'productpage';
    sendText(res, 302, 'text/html; charset=utf-8', `<!doctype html>\n<title>Redirecting...</title>\n<p>Redirecting to <a href="${encodeURI(location)}">${encodeURI(location)}</a>.</p>\n`, {
      location,
      'set-cookie': cookie,
    });
  };

  const html = (res: ServerResponse, status: number, body: string) => sendText(res, status, 'text/html; charset=utf-8', body);
  const notFound = (res: ServerResponse) => html(res, 404, '<!doctype html>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n');
  const notAllowed = (res: ServerResponse, allow: string) =>
    sendText(res, 405, 'text/html; charset=utf-8', '<!doctype html>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n', { allow });

  const serveStatic = async (res: ServerResponse, rel: string) => {
    const path = normalize(join(staticDir, decodeURIComponent(rel)));
    if (!path.startsWith(staticDir.endsWith(sep) ? staticDir : staticDir + sep)) return notFound(res);
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch {
      return notFound(res);
    }
    res.writeHead(200, { 'content-type': contentTypes[extname(path)] ?? 'application/octet-stream', 'content-length': String(data.length), 'cache-control': 'public, max-age=3600' });
    res.end(data);
  };

  return serve('productpage', version, o, log, async (req, res, url) => {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const readOnly = method === 'GET' || method === 'HEAD';

    if (path === '/' || path === '/index.html') {
      if (!readOnly) return notAllowed(res, 'GET, HEAD');
      const node = (name: string, endpoint: string, children: ServiceNode[] = []): ServiceNode => ({ name, endpoint, children });
      const tree = node('http://productpage:9080', 'productpage', [node(up.details, 'details'), node(up.reviews, 'reviews', [node(up.ratings, 'ratings')])]);
      return html(res, 200, indexPage(tree));
    }
    if (path === '/health') return html(res, 200, 'Product page is healthy');
    if (path === '/login') {
      if (method !== 'POST') return notAllowed(res, 'POST');
      const form = new URLSearchParams((await readBody(req)).toString('utf8'));
      const user = form.get('username') ?? '';
      log.info('login', { user });
      const cookie = user ? `session=${encodeSession({ user }, secret)}; HttpOnly; Path=/; SameSite=Lax` : 'session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/';
      return redirectBack(req, res, cookie);
    }
    if (path === '/logout') {
      if (!readOnly) return notAllowed(res, 'GET, HEAD');
      log.info('logout', { user: userOf(req) });
      return redirectBack(req, res, 'session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/');
    }
    if (path === '/productpage') {
      if (!readOnly) return notAllowed(res, 'GET, HEAD');
      const user = userOf(req);
      const headers = forwardHeaders(req, user);
      const product = products[0];
      const d = await details(String(product.id), headers);
      if (floodFactor > 0) await flood(String(product.id), headers);
      const r = await reviews(String(product.id), headers);
      return html(
        res,
        200,
        productPage({
          product,
          user,
          detailsOk: d.status === 200,
          details: (d.body ?? {}) as Record<string, unknown>,
          reviewsOk: r.status === 200,
          reviews: (r.body ?? {}) as ReviewsResponse,
        }),
      );
    }
    if (path === '/api/v1/products') {
      if (!readOnly) return notAllowed(res, 'GET, HEAD');
      return sendJson(res, 200, pyJson(products));
    }
    const api = /^\/api\/v1\/products\/([^/]+)(?:\/(reviews|ratings))?$/.exec(path);
    if (api) {
      if (!readOnly) return notAllowed(res, 'GET, HEAD');
      const id = api[1]!;
      const headers = forwardHeaders(req, userOf(req));
      const which = api[2] === 'reviews' ? reviews : api[2] === 'ratings' ? ratings : details;
      const out = await which(id, headers);
      return sendJson(res, out.status, pyJson(out.body));
    }
    if (path === '/metrics') return sendText(res, 200, 'text/plain; version=0.0.4; charset=utf-8', results.text());
    if (path.startsWith('/static/')) return serveStatic(res, path.slice('/static/'.length));
    notFound(res);
  });
}
