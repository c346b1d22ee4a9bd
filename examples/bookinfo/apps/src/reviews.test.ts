import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reviewsForwardedHeaders } from './headers.ts';
import { startRatings } from './ratings.ts';
import { startReviews } from './reviews.ts';
import type { RunningService } from './server.ts';

const text1 = 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!';
const text2 = 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.';

/** A stand-in ratings service that records requests and answers as told. */
async function fakeRatings(): Promise<{ url: string; seen: IncomingHttpHeaders[]; reply: { status: number; body: string; delayMs: number }; server: Server }> {
  const seen: IncomingHttpHeaders[] = [];
  const reply = { status: 200, body: '{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}', delayMs: 0 };
  const server = createServer((req, res) => {
    seen.push(req.headers);
    const t = setTimeout(() => res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body), reply.delayMs);
    res.on('close', () => clearTimeout(t));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, reply, server };
}

describe('reviews', () => {
  let ratings: RunningService;
  const started: RunningService[] = [];
  const start = async (version: string, extra: Parameters<typeof startReviews>[0] = {}) => {
    const s = await startReviews({ address: '127.0.0.1', port: 0, version, podName: `reviews-${version}-abc`, ratings: ratings.url, log: false, ...extra });
    started.push(s);
    return s;
  };
  beforeAll(async () => {
    ratings = await startRatings({ address: '127.0.0.1', port: 0, log: false });
  });
  afterAll(async () => {
    await Promise.all(started.map((s) => s.close()));
    await ratings.close();
  });

  it('answers /health', async () => {
    const r = await fetch(`${(await start('v1')).url}/health`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('{"status": "Reviews is healthy"}');
  });

  it('v1: two reviews without ratings, byte for byte as the original', async () => {
    const r = await fetch(`${(await start('v1')).url}/reviews/0`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.text()).toBe(
      `{"id": "0","podname": "reviews-v1-abc","clustername": "null","reviews": [{  "reviewer": "Reviewer1",  "text": "${text1}"},{  "reviewer": "Reviewer2",  "text": "${text2}"}]}`,
    );
  });

  it('v1 never calls ratings', async () => {
    const fake = await fakeRatings();
    try {
      const s = await start('v1', { ratings: fake.url });
      expect((await fetch(`${s.url}/reviews/0`)).status).toBe(200);
      expect(fake.seen).toHaveLength(0);
    } finally {
      fake.server.close();
    }
  });

  it('v2: black stars from ratings', async () => {
    const r = await fetch(`${(await start('v2')).url}/reviews/0`);
    expect(await r.text()).toBe(
      `{"id": "0","podname": "reviews-v2-abc","clustername": "null","reviews": [{  "reviewer": "Reviewer1",  "text": "${text1}", "rating": {"stars": 5, "color": "black"}},{  "reviewer": "Reviewer2",  "text": "${text2}", "rating": {"stars": 4, "color": "black"}}]}`,
    );
  });

  it('v3: red stars; the cluster name when set', async () => {
    const body = (await (await fetch(`${(await start('v3', { clusterName: 'east' })).url}/reviews/0`)).json()) as {
      clustername: string;
      reviews: { rating: { stars: number; color: string } }[];
    };
    expect(body.clustername).toBe('east');
    expect(body.reviews.map((r) => r.rating)).toEqual([
      { stars: 5, color: 'red' },
      { stars: 4, color: 'red' },
    ]);
  });

  it('the id comes back as a string; an id that is not a number is 404', async () => {
    const s = await start('v1');
    expect(((await (await fetch(`${s.url}/reviews/12`)).json()) as { id: unknown }).id).toBe('12');
    expect((await fetch(`${s.url}/reviews/abc`)).status).toBe(404);
    expect((await fetch(`${s.url}/reviews`)).status).toBe(404);
  });

  it('ratings down: both reviewers get the ratings error, still 200', async () => {
    const s = await start('v2', { ratings: 'http://127.0.0.1:1' });
    const r = await fetch(`${s.url}/reviews/0`);
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text.match(/"rating": \{"error": "Ratings service is currently unavailable"\}/g)).toHaveLength(2);
  });

  it('ratings answering an error status, or without one reviewer, gives the error for that reviewer', async () => {
    const fake = await fakeRatings();
    try {
      const s = await start('v3', { ratings: fake.url });
      fake.reply.status = 500;
      fake.reply.body = '{"error":"boom"}';
      expect(((await (await fetch(`${s.url}/reviews/0`)).json()) as { reviews: { rating: unknown }[] }).reviews.map((r) => r.rating)).toEqual([
        { error: 'Ratings service is currently unavailable' },
        { error: 'Ratings service is currently unavailable' },
      ]);
      fake.reply.status = 200;
      fake.reply.body = '{"id":0,"ratings":{"Reviewer1":3}}';
      expect(((await (await fetch(`${s.url}/reviews/0`)).json()) as { reviews: { rating: unknown }[] }).reviews.map((r) => r.rating)).toEqual([
        { stars: 3, color: 'red' },
        { error: 'Ratings service is currently unavailable' },
      ]);
    } finally {
      fake.server.close();
    }
  });

  it('passes exactly its header list on to ratings, with Accept: application/json', async () => {
    const fake = await fakeRatings();
    try {
      const s = await start('v2', { ratings: fake.url });
      const sent: Record<string, string> = {};
      for (const h of reviewsForwardedHeaders) sent[h] = `value-of-${h}`;
      await fetch(`${s.url}/reviews/0`, { headers: { ...sent, 'x-not-forwarded': 'x', 'x-forwarded-for': '10.0.0.1' } });
      const got = fake.seen.at(-1)!;
      for (const h of reviewsForwardedHeaders) expect(got[h], h).toBe(`value-of-${h}`);
      expect(got['x-not-forwarded']).toBeUndefined();
      expect(got['x-forwarded-for']).toBeUndefined();
      expect(got.accept).toBe('application/json');
      expect(got.host).toBe(new URL(fake.url).host);
    } finally {
      fake.server.close();
    }
  });

  it('v3 gives up on ratings after 2.5 s', async () => {
    const fake = await fakeRatings();
    fake.reply.delayMs = 6000;
    try {
      const s = await start('v3', { ratings: fake.url });
      const t0 = performance.now();
      const text = await (await fetch(`${s.url}/reviews/0`)).text();
      const ms = performance.now() - t0;
      expect(text).toContain('"rating": {"error": "Ratings service is currently unavailable"}');
      expect(ms).toBeGreaterThanOrEqual(2400);
      expect(ms).toBeLessThan(4500);
    } finally {
      fake.server.closeAllConnections();
      fake.server.close();
    }
  });

  it('v2 waits longer than v3 for ratings (up to 10 s)', async () => {
    const fake = await fakeRatings();
    fake.reply.delayMs = 3500;
    try {
      const s = await start('v2', { ratings: fake.url });
      const text = await (await fetch(`${s.url}/reviews/0`)).text();
      expect(text).toContain('"rating": {"stars": 5, "color": "black"}');
    } finally {
      fake.server.close();
    }
  });
});
