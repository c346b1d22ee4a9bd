// reviews: two reviews of the book, as JSON. v1 has no ratings; v2 and v3 ask ratings for the
// stars and show them black (v2) or red (v3). The ratings call waits up to 10 s in v2 (black) and
// 2.5 s otherwise: with ratings delayed 7 s, v2 makes productpage give up on reviews while v3
// shows "Ratings service is currently unavailable".
import { call, type ProxySettings, pickHeaders } from './client.ts';
import { defaultUpstreams } from './config.ts';
import { reviewsForwardedHeaders } from './headers.ts';
import { createLogger, type LogSink } from './log.ts';
import { type ListenOptions, type RunningService, sendJson, serve } from './server.ts';

export interface ReviewsOptions extends ListenOptions {
  /** v1 (default), v2 or v3: sets the defaults of `enableRatings` and `starColor`. */
  version?: string;
  /** Ask ratings for stars (ENABLE_RATINGS); default: not v1. */
  enableRatings?: boolean;
  /** STAR_COLOR; default black, red for v3. */
  starColor?: string;
  /** The pod name shown as "Reviews served by" (HOSTNAME). */
  podName?: string;
  /** CLUSTER_NAME; unset shows as "null". */
  clusterName?: string;
  /** The ratings service's base URL; default http://ratings:9080. */
  ratings?: string;
  proxy?: ProxySettings;
  log?: LogSink;
}

const reviews = [
  { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
  { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
] as const;

const ratingsError = '{"error": "Ratings service is currently unavailable"}';

/** The response body, byte for byte as the original service writes it. */
export function reviewsBody(productId: number, podName: string, clusterName: string, ratings: Record<string, string> | undefined): string {
  const items = reviews.map((r) => {
    const rating = ratings ? `, "rating": ${ratings[r.reviewer] ?? ratingsError}` : '';
    return `{  "reviewer": "${r.reviewer}",  "text": "${r.text}"${rating}}`;
  });
  return `{"id": "${productId}","podname": "${podName}","clustername": "${clusterName}","reviews": [${items.join(',')}]}`;
}

export function startReviews(o: ReviewsOptions = {}): Promise<RunningService> {
  const version = o.version ?? 'v1';
  const enableRatings = o.enableRatings ?? version !== 'v1';
  const starColor = o.starColor ?? (version === 'v3' ? 'red' : 'black');
  const timeoutMs = starColor === 'black' ? 10_000 : 2500;
  const podName = o.podName ?? '';
  const clusterName = o.clusterName ?? 'null';
  const ratingsUrl = (o.ratings ?? defaultUpstreams.ratings).replace(/\/+$/, '');
  const log = createLogger('reviews', o.log, { version });

  return serve('reviews', version, o, log, async (req, res, url) => {
    if (url.pathname === '/health') return sendJson(res, 200, '{"status": "Reviews is healthy"}');
    const m = /^\/reviews\/([^/]+)$/.exec(url.pathname);
    const id = m && /^[+-]?\d+$/.test(m[1]!) ? Number(m[1]) : undefined;
    if (req.method !== 'GET' || id === undefined || !Number.isSafeInteger(id) || Math.abs(id) > 2 ** 31 - 1) return sendJson(res, 404, '{"error": "not found"}');
    if (!enableRatings) return sendJson(res, 200, reviewsBody(id, podName, clusterName, undefined));
    // Every reviewer gets a rating: stars from ratings, or the error when ratings failed.
    const ratings: Record<string, string> = {};
    try {
      const r = await call(`${ratingsUrl}/ratings/${id}`, {
        timeoutMs,
        headers: { ...pickHeaders(req.headers, reviewsForwardedHeaders), accept: 'application/json' },
        ...(o.proxy ? { proxy: o.proxy } : {}),
      });
      if (r.status !== 200) throw new Error(`ratings answered ${r.status}`);
      const body = JSON.parse(r.body) as { ratings?: Record<string, unknown> };
      for (const { reviewer } of reviews) {
        const stars = body.ratings?.[reviewer];
        if (typeof stars === 'number' && Number.isFinite(stars)) ratings[reviewer] = `{"stars": ${Math.trunc(stars)}, "color": "${starColor}"}`;
      }
    } catch (err) {
      log.warn('ratings unavailable', { error: err, url: `${ratingsUrl}/ratings/${id}` });
    }
    sendJson(res, 200, reviewsBody(id, podName, clusterName, ratings));
  });
}
