import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRatings } from './ratings.ts';
import type { RunningService } from './server.ts';

describe('ratings v1', () => {
  let ratings: RunningService;
  beforeAll(async () => {
    ratings = await startRatings({ address: '127.0.0.1', port: 0, log: false });
  });
  afterAll(() => ratings.close());

  it('answers /health', async () => {
    const r = await fetch(`${ratings.url}/health`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('{"status":"Ratings is healthy"}');
  });

  it('gives 5 and 4 stars with a numeric id', async () => {
    const r = await fetch(`${ratings.url}/ratings/0`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.text()).toBe('{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}');
    expect(await (await fetch(`${ratings.url}/ratings/12abc`)).text()).toBe('{"id":12,"ratings":{"Reviewer1":5,"Reviewer2":4}}');
  });

  it('rejects an id that is not a number with 400', async () => {
    const r = await fetch(`${ratings.url}/ratings/abc`);
    expect(r.status).toBe(400);
    expect(await r.text()).toBe('{"error":"please provide numeric product ID"}');
  });

  it('stores what a POST gives and answers it afterwards, for that id only', async () => {
    const p = await fetch(`${ratings.url}/ratings/7`, { method: 'POST', body: '{"Reviewer1":1,"Reviewer2":2}' });
    expect(p.status).toBe(200);
    expect(await p.text()).toBe('{"id":7,"ratings":{"Reviewer1":1,"Reviewer2":2}}');
    expect(await (await fetch(`${ratings.url}/ratings/7`)).text()).toBe('{"id":7,"ratings":{"Reviewer1":1,"Reviewer2":2}}');
    expect(await (await fetch(`${ratings.url}/ratings/0`)).text()).toBe('{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}');
  });

  it('rejects a POST body that is not JSON ratings with 400', async () => {
    const r = await fetch(`${ratings.url}/ratings/7`, { method: 'POST', body: 'five stars' });
    expect(r.status).toBe(400);
    expect(await r.text()).toBe('{"error":"please provide valid ratings JSON"}');
  });

  it('answers 404 elsewhere', async () => {
    expect((await fetch(`${ratings.url}/reviews/0`)).status).toBe(404);
    expect((await fetch(`${ratings.url}/ratings/0`, { method: 'DELETE' })).status).toBe(404);
  });
});

describe('ratings variants', () => {
  it('v-faulty answers 503 when the coin says so', async () => {
    let coin = 0.1;
    const s = await startRatings({ address: '127.0.0.1', port: 0, version: 'v-faulty', random: () => coin, log: false });
    try {
      const bad = await fetch(`${s.url}/ratings/0`);
      expect(bad.status).toBe(503);
      expect(await bad.text()).toBe('{"error":"Service unavailable"}');
      coin = 0.9;
      expect((await fetch(`${s.url}/ratings/0`)).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('v-delayed waits before answering when the coin says so', async () => {
    const s = await startRatings({ address: '127.0.0.1', port: 0, version: 'v-delayed', random: () => 0.1, delayMs: 600, log: false });
    try {
      const t0 = performance.now();
      const r = await fetch(`${s.url}/ratings/0`);
      expect(r.status).toBe(200);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(550);
    } finally {
      await s.close();
    }
  });

  it('v-unavailable and v-unhealthy alternate; v-unhealthy fails its health check while down', async () => {
    const un = await startRatings({ address: '127.0.0.1', port: 0, version: 'v-unavailable', phaseMs: 400, log: false });
    const uh = await startRatings({ address: '127.0.0.1', port: 0, version: 'v-unhealthy', phaseMs: 400, log: false });
    try {
      expect((await fetch(`${un.url}/ratings/0`)).status).toBe(200);
      expect((await fetch(`${uh.url}/health`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 500));
      expect((await fetch(`${un.url}/ratings/0`)).status).toBe(503);
      expect((await fetch(`${un.url}/health`)).status).toBe(200);
      const h = await fetch(`${uh.url}/health`);
      expect(h.status).toBe(500);
      expect(await h.text()).toBe('{"status":"Ratings is not healthy"}');
    } finally {
      await un.close();
      await uh.close();
    }
  });

  it('refuses v2 (database-backed) with a clear reason', async () => {
    await expect(startRatings({ version: 'v2' as 'v1', log: false })).rejects.toThrow(/v2 reads a database/);
  });
});
