// ratings: each reviewer's stars for a product, as JSON. v1 keeps them in memory (5 and 4 unless a
// POST changed them). The misbehaving variants of the original images, for resilience demos:
//   v-faulty       half of the requests get 503
//   v-delayed      half of the requests wait 7 s
//   v-unavailable  503 for 60 s, then fine for 60 s, and so on (fine first)
//   v-unhealthy    the same every 15 min, and /health says 500 while it lasts
// v2 (ratings from MongoDB or MySQL) is not part of this build.
import { createLogger, type LogSink } from './log.ts';
import { type ListenOptions, type RunningService, readBody, sendJson, serve } from './server.ts';

export const ratingsVersions = ['v1', 'v-faulty', 'v-delayed', 'v-unavailable', 'v-unhealthy'] as const;
export type RatingsVersion = (typeof ratingsVersions)[number];

export interface RatingsOptions extends ListenOptions {
  version?: RatingsVersion;
  log?: LogSink;
  /** For tests: the coin of v-faulty and v-delayed (default Math.random). */
  random?: () => number;
  /** For tests: the length of a phase of v-unavailable (default 60 s) and v-unhealthy (default 15 min). */
  phaseMs?: number;
  /** For tests: v-delayed's delay (default 7 s). */
  delayMs?: number;
}

type Ratings = Record<string, unknown>;

export function startRatings(o: RatingsOptions = {}): Promise<RunningService> {
  const version = o.version ?? 'v1';
  if (!(ratingsVersions as readonly string[]).includes(version)) {
    return Promise.reject(new Error(`ratings ${version} is not available: this build has ${ratingsVersions.join(', ')} (v2 reads a database, which it does not include)`));
  }
  const log = createLogger('ratings', o.log, { version });
  const random = o.random ?? Math.random;
  const started = Date.now();
  const phaseMs = o.phaseMs ?? (version === 'v-unhealthy' ? 15 * 60_000 : 60_000);
  const down = () => (version === 'v-unavailable' || version === 'v-unhealthy') && Math.floor((Date.now() - started) / phaseMs) % 2 === 1;
  const stored = new Map<number, Ratings>();

  return serve('ratings', version, o, log, async (req, res, url) => {
    if (url.pathname === '/health') {
      if (version === 'v-unhealthy' && down()) return sendJson(res, 500, JSON.stringify({ status: 'Ratings is not healthy' }));
      return sendJson(res, 200, JSON.stringify({ status: 'Ratings is healthy' }));
    }
    if (!url.pathname.startsWith('/ratings/') || (req.method !== 'GET' && req.method !== 'POST')) return sendJson(res, 404, JSON.stringify({ error: 'not found' }));
    const id = Number.parseInt(url.pathname.split('/').pop() ?? '', 10);
    if (Number.isNaN(id)) return sendJson(res, 400, JSON.stringify({ error: 'please provide numeric product ID' }));
    if (req.method === 'POST') {
      let ratings: Ratings;
      try {
        const parsed: unknown = JSON.parse((await readBody(req)).toString('utf8'));
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        ratings = parsed as Ratings;
      } catch {
        return sendJson(res, 400, JSON.stringify({ error: 'please provide valid ratings JSON' }));
      }
      stored.set(id, ratings);
      return sendJson(res, 200, JSON.stringify({ id, ratings }));
    }
    const answer = () => sendJson(res, 200, JSON.stringify({ id, ratings: stored.get(id) ?? { Reviewer1: 5, Reviewer2: 4 } }));
    if (down() || (version === 'v-faulty' && random() < 0.5)) return sendJson(res, 503, JSON.stringify({ error: 'Service unavailable' }));
    if (version === 'v-delayed' && random() < 0.5) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, o.delayMs ?? 7000);
        res.on('close', () => {
          clearTimeout(t);
          resolve();
        });
      });
      if (res.destroyed) return;
    }
    answer();
  });
}
