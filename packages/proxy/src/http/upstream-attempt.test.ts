// The upstream attempt stage through a real server: retries, timeouts, max_stream_duration, breakers, failures.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { deadPort, failing, flaky, router, slow, slowFirst, svc, useRouterFixture, withRecord } from './router-fixture.ts';
import { echoed } from './test-support.ts';
import http from 'node:http';

useRouterFixture();

describe('retries and timeouts', () => {
  /** The flaky backend answers 503 twice, then succeeds (and again for each next three requests). */
  function failTwice() {
    flaky.seen.length = 0;
    flaky.handle = (_req, res, n) => {
      if (n % 3 === 0) return false;
      res.writeHead(503);
      res.end('not yet');
      return true;
    };
  }

  it('retries a backend that fails twice, then succeeds (3 attempts)', async () => {
    failTwice();
    const { res, rec } = await withRecord(svc('/retry'));
    expect(res.status).toBe(200);
    expect(flaky.seen.map((s) => s.headers['x-envoy-attempt-count'])).toEqual(['1', '2', '3']);
    expect(rec.attempts).toBe(3);
    expect(rec.responseFlags.size).toBe(0);
  });

  it('does not forward `expect: 100-continue` upstream', async () => {
    flaky.handle = undefined;
    const seen = echoed((await svc('/post', { expect: '100-continue', 'content-type': 'text/plain' }, { method: 'POST', body: 'hi' })).body);
    expect(seen.body).toBe('hi');
    expect(seen.headers.expect).toBeUndefined();
  });

  it('replays the request body on each attempt', async () => {
    failTwice();
    const res = await svc('/post', { 'content-type': 'text/plain' }, { method: 'POST', body: 'payload-123' });
    expect(res.status).toBe(200);
    expect(flaky.seen.map((s) => s.body)).toEqual(['payload-123', 'payload-123', 'payload-123']);
  });

  it('passes the last failure through when retries are exhausted (URX)', async () => {
    failing.seen.length = 0;
    const { res, rec } = await withRecord(svc('/exhausted'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('unavailable');
    expect(failing.seen.length).toBe(3);
    expect(rec.attempts).toBe(3);
    expect([...rec.responseFlags]).toEqual(['URX']);
  });

  it('answers 503 UF with Envoy`s body on connection failure', async () => {
    const { res, rec } = await withRecord(svc('/connect'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('upstream connect error or disconnect/reset before headers. reset reason: connection failure');
    expect([...rec.responseFlags]).toEqual(['UF']);
    expect(rec.upstreamHost).toBe(`127.0.0.1:${deadPort}`);
  });

  it('retries connection failures, then says so (UF,URX)', async () => {
    const { res, rec } = await withRecord(svc('/connect-retry'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure');
    expect(rec.attempts).toBe(2);
    expect(new Set(rec.responseFlags)).toEqual(new Set(['UF', 'URX']));
  });

  it('a per-try timeout abandons a slow attempt and the retry succeeds', async () => {
    slowFirst.seen.length = 0;
    const { res, rec } = await withRecord(svc('/per-try'));
    expect(res.status).toBe(200);
    expect(res.body).toBe('attempt 2');
    expect(res.ms).toBeGreaterThanOrEqual(145);
    expect(res.ms).toBeLessThan(550);
    expect(rec.attempts).toBe(2);
    expect(slowFirst.seen[0]?.headers['x-envoy-expected-rq-timeout-ms']).toBe('150');
  });

  it('the route timeout answers 504 `upstream request timeout` (UT)', async () => {
    const { res, rec } = await withRecord(svc('/timeout'));
    expect(res.status).toBe(504);
    expect(res.body).toBe('upstream request timeout');
    expect(res.ms).toBeGreaterThanOrEqual(145);
    // The backend would take 1 s.
    expect(res.ms).toBeLessThan(800);
    expect([...rec.responseFlags]).toEqual(['UT']);
  });

  it('does not retry when the cluster`s retry budget is spent (UO), and forwards the failure', async () => {
    failing.seen.length = 0;
    const { res, rec } = await withRecord(svc('/budget'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('unavailable');
    expect(failing.seen.length).toBe(1);
    expect(rec.attempts).toBe(1);
    expect([...rec.responseFlags]).toEqual(['UO']);
  });

  it('max_stream_duration ends a slow exchange: 504 `upstream max stream duration reached`', async () => {
    const { res, rec } = await withRecord(svc('/msd'));
    expect(res.status).toBe(504);
    expect(res.body).toBe('upstream max stream duration reached');
    expect(res.ms).toBeGreaterThanOrEqual(145);
    expect(res.ms).toBeLessThan(800);
    expect([...rec.responseFlags]).toEqual(['UT']);
  });

  it('no endpoints: 503 `no healthy upstream` (UH), not retried', async () => {
    const { res, rec } = await withRecord(svc('/nohealthy'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('no healthy upstream');
    expect([...rec.responseFlags]).toEqual(['UH']);
    expect(rec.attempts).toBe(1);
  });

  it('circuit-breaker overflow: 503 with the overflow reason (UO), never retried', async () => {
    const { res, rec } = await withRecord(svc('/overflow'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('upstream connect error or disconnect/reset before headers. reset reason: overflow');
    expect([...rec.responseFlags]).toEqual(['UO']);
    expect(rec.attempts).toBe(1);
  });

  it('a client that goes away is recorded as DC and the upstream request is cancelled', async () => {
    let upstreamClosed = false;
    const saved = slow.handle;
    slow.handle = async (_req, res) => {
      res.on('close', () => {
        upstreamClosed = true;
      });
      await sleep(1000);
      return true;
    };
    const rec = router.nextRecord();
    const req = http.request({ host: '127.0.0.1', port: router.port, path: '/hang', headers: { host: 'svc' }, agent: false });
    req.on('error', () => {});
    req.end();
    await sleep(150);
    req.destroy();
    const record = await rec;
    expect([...record.responseFlags]).toEqual(['DC']);
    expect(record.responseCode).toBe(0);
    await sleep(50);
    expect(upstreamClosed).toBe(true);
    slow.handle = saved;
  });
});

