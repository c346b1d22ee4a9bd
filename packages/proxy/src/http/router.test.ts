// The HTTP pipeline end to end through a real server: connection manager, routing, filters, local replies, responses.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { a, clusters, flaky, routeConfig, router, setRandom, shadow, svc, useRouterFixture, withRecord } from './router-fixture.ts';
import { echoed, send, type StandInCluster, startRouter } from './test-support.ts';
import http2 from 'node:http2';

useRouterFixture();

describe('routing and headers', () => {
  it('routes by host and path, adds Envoy and mesh headers, and records the request', async () => {
    const { res, rec } = await withRecord(svc('/match/1'));
    expect(res.status).toBe(200);
    const seen = echoed(res.body);
    expect(seen.backend).toBe('a');
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-envoy-attempt-count']).toBe('1');
    expect(seen.headers['x-envoy-expected-rq-timeout-ms']).toBe('15000');
    expect(seen.headers.host).toBe('svc');
    expect(res.headers.server).toBe('istio-envoy');
    expect(Number(res.headers['x-envoy-upstream-service-time'])).toBeGreaterThanOrEqual(0);
    expect(rec).toMatchObject({ responseCode: 200, routeName: 'match', upstreamCluster: 'a', upstreamHost: a.address, attempts: 1, method: 'GET', path: '/match/1', authority: 'svc' });
    expect(rec.requestId).toBe(seen.headers['x-request-id']);
    expect(rec.responseFlags.size).toBe(0);
    expect(rec.bytesSent).toBe(Buffer.byteLength(res.body));
  });

  it('keeps a request id the client sent', async () => {
    const res = await svc('/match', { 'x-request-id': 'given-id' });
    expect(echoed(res.body).headers['x-request-id']).toBe('given-id');
  });

  it('routes on a header (end-user: jason goes to b)', async () => {
    expect(echoed((await svc('/match', { 'end-user': 'jason' })).body).backend).toBe('b');
    expect(echoed((await svc('/match', { 'end-user': 'ann' })).body).backend).toBe('a');
  });

  it('adds and removes request and response headers at route, virtual host and route configuration level', async () => {
    const res = await svc('/headers', { 'x-secret': 'hide me', 'x-added': 'client value' });
    const seen = echoed(res.body).headers;
    expect(seen['x-secret']).toBeUndefined();
    expect(seen['x-added']).toBe('yes');
    expect(seen['x-vhost']).toBe('vh');
    expect(seen['x-client']).toBe('127.0.0.1');
    // timeout 0: no expected-timeout header.
    expect(seen['x-envoy-expected-rq-timeout-ms']).toBeUndefined();
    expect(res.headers['x-route']).toBe('headers');
    expect(res.headers['x-rc']).toBe('route-config');
    expect(res.headers['x-backend']).toBeUndefined();
  });

  it('splits by weight and applies the chosen cluster`s headers', async () => {
    setRandom(0.5);
    const toA = await svc('/split');
    setRandom(0.9);
    const toB = await svc('/split');
    setRandom(0);
    expect(echoed(toA.body).backend).toBe('a');
    expect(echoed(toA.body).headers['x-subset']).toBe('a');
    expect(toA.headers['x-picked']).toBe('a');
    expect(echoed(toB.body).backend).toBe('b');
    expect(toB.headers['x-picked']).toBe('b');
  });

  it('answers 404 without a body when no route matches (NR), for unknown hosts too', async () => {
    const { res, rec } = await withRecord(send(router.url, { path: '/', headers: { host: 'unknown.example' } }));
    expect(res.status).toBe(404);
    expect(res.body).toBe('');
    expect([...rec.responseFlags]).toEqual(['NR']);
    expect(rec.attempts).toBe(0);
  });

  it('picks the cluster named by a request header (cluster_header)', async () => {
    expect(echoed((await svc('/by-header', { 'x-cluster': 'b' })).body).backend).toBe('b');
    const { res, rec } = await withRecord(svc('/by-header'));
    expect(res.status).toBe(503);
    expect([...rec.responseFlags]).toEqual(['NC']);
  });

  it('answers 503 with flag NC when the route`s cluster does not exist', async () => {
    const { res, rec } = await withRecord(svc('/nocluster'));
    expect(res.status).toBe(503);
    expect([...rec.responseFlags]).toEqual(['NC']);
  });
});

describe('faults', () => {
  it('delays the request by the fixed delay (DI)', async () => {
    const { res, rec } = await withRecord(svc('/delay'));
    expect(res.status).toBe(200);
    expect(res.ms).toBeGreaterThanOrEqual(195);
    expect(res.ms).toBeLessThan(500);
    expect([...rec.responseFlags]).toEqual(['DI']);
  });

  it('aborts with the configured status and Envoy`s body (FI) without calling the backend', async () => {
    const before = a.seen.length;
    const { res, rec } = await withRecord(svc('/abort'));
    expect(res.status).toBe(503);
    expect(res.body).toBe('fault filter abort');
    expect(res.headers['content-type']).toBe('text/plain');
    expect([...rec.responseFlags]).toEqual(['FI']);
    expect(a.seen.length).toBe(before);
  });
});

describe('redirects, direct responses and rewrites', () => {
  it('redirects with host, path, code and strip_query', async () => {
    const res = await svc('/redirect/x?keep=no');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('http://new.example/moved');
    expect(res.body).toBe('');
  });

  it('https_redirect keeps the host and path, drops the port 80', async () => {
    const res = await send(router.url, { path: '/secure/page?q=1', headers: { host: 'svc:80' } });
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('https://svc/secure/page?q=1');
  });

  it('answers a direct response with its body and the route`s response headers', async () => {
    const res = await svc('/direct');
    expect(res.status).toBe(418);
    expect(res.body).toBe('I am a teapot');
    expect(res.headers['content-type']).toBe('text/plain');
    expect(res.headers['x-direct']).toBe('1');
  });

  it('rewrites the path prefix and the host, keeping the query and the original path', async () => {
    const seen = echoed((await svc('/rewrite/items?id=7')).body);
    expect(seen.path).toBe('/v2/items?id=7');
    expect(seen.headers.host).toBe('rewritten.local');
    expect(seen.headers['x-envoy-original-path']).toBe('/rewrite/items?id=7');
  });

  it('rewrites the path with a regex substitution', async () => {
    expect(echoed((await svc('/regex/first/second')).body).path).toBe('/second/first');
  });
});

describe('mirroring, CORS and hashing', () => {
  it('mirrors the request, body included, to the shadow cluster with a -shadow host', async () => {
    shadow.seen.length = 0;
    const res = await svc('/mirror', { 'content-type': 'text/plain' }, { method: 'POST', body: 'copy me' });
    expect(echoed(res.body).backend).toBe('a');
    for (let i = 0; i < 50 && shadow.seen.length === 0; i++) await sleep(10);
    expect(shadow.seen).toHaveLength(1);
    expect(shadow.seen[0]).toMatchObject({ method: 'POST', path: '/mirror', body: 'copy me' });
    expect(shadow.seen[0]!.headers.host).toBe('svc-shadow');
  });

  it('answers a CORS preflight itself for an allowed origin', async () => {
    const before = a.seen.length;
    const res = await svc('/cors', { origin: 'https://app.example', 'access-control-request-method': 'POST' }, { method: 'OPTIONS' });
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({
      'access-control-allow-origin': 'https://app.example',
      'access-control-allow-methods': 'GET,POST',
      'access-control-allow-headers': 'x-custom',
      'access-control-max-age': '600',
      'access-control-allow-credentials': 'true',
    });
    expect(a.seen.length).toBe(before);
  });

  it('adds CORS headers to actual requests from allowed origins only', async () => {
    const ok = await svc('/cors', { origin: 'https://x.trusted.example' });
    expect(ok.headers['access-control-allow-origin']).toBe('https://x.trusted.example');
    expect(ok.headers['access-control-expose-headers']).toBe('x-backend');
    const denied = await svc('/cors', { origin: 'https://evil.example' });
    expect(denied.status).toBe(200);
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    // A preflight from a disallowed origin goes upstream (forward_not_matching_preflights).
    const pre = await svc('/cors', { origin: 'https://evil.example', 'access-control-request-method': 'GET' }, { method: 'OPTIONS' });
    expect(echoed(pre.body).method).toBe('OPTIONS');
  });

  it('hands the cluster a consistent-hash key from the header, so a user sticks to one backend', async () => {
    const backendsFor = async (user: string) => {
      const out = new Set<string>();
      for (let i = 0; i < 4; i++) out.add(echoed((await svc('/hash', { 'x-user': user })).body).backend);
      return out;
    };
    expect((await backendsFor('ann')).size).toBe(1);
    expect((await backendsFor('bob')).size).toBe(1);
    const hashed = clusters.get('hashed') as StandInCluster;
    expect(hashed.calls.at(-1)?.opts.hashKey).toBe('bob');
  });

  it('generates the hash cookie when absent and sets it on the response', async () => {
    const res = await svc('/cookie');
    const cookie = res.headers['set-cookie']?.[0] ?? '';
    expect(cookie).toMatch(/^sticky="[0-9a-f]{16}"; Max-Age=60; Path=\/; HttpOnly$/);
    const value = /sticky="([0-9a-f]+)"/.exec(cookie)![1]!;
    const hashed = clusters.get('hashed') as StandInCluster;
    expect(hashed.calls.at(-1)?.opts.hashKey).toBe(value);
    const again = await svc('/cookie', { cookie: `sticky="${value}"` });
    expect(again.headers['set-cookie']).toBeUndefined();
    expect(hashed.calls.at(-1)?.opts.hashKey).toBe(value);
  });
});

describe('connection manager settings and HTTP/2', () => {
  it('at a gateway (use_remote_address) appends the client to x-forwarded-for', async () => {
    const gw = await startRouter(routeConfig(), clusters, { settings: { useRemoteAddress: true } });
    try {
      const seen = echoed((await send(gw.url, { path: '/match', headers: { host: 'svc', 'x-forwarded-for': '203.0.113.5', 'x-forwarded-proto': 'https' } })).body).headers;
      expect(seen['x-forwarded-for']).toBe('203.0.113.5,127.0.0.1');
      expect(seen['x-forwarded-proto']).toBe('http');
      // A client on loopback counts as internal: its request id is kept.
      const kept = echoed((await send(gw.url, { path: '/match', headers: { host: 'svc', 'x-request-id': 'from-client' } })).body).headers;
      expect(kept['x-request-id']).toBe('from-client');
    } finally {
      await gw.close();
    }
  });

  it('streams a body larger than the buffer limit (and then cannot retry it)', async () => {
    const small = await startRouter(routeConfig(), clusters, { settings: { bufferLimitBytes: 1024 } });
    try {
      flaky.handle = undefined;
      flaky.seen.length = 0;
      const big = 'x'.repeat(64 * 1024);
      const rec = small.nextRecord();
      const res = await send(small.url, { method: 'POST', path: '/post', headers: { host: 'svc', 'content-type': 'text/plain' }, body: big });
      expect(res.status).toBe(200);
      expect(flaky.seen[0]?.body.length).toBe(big.length);
      expect((await rec).bytesReceived).toBe(big.length);
      flaky.handle = (_req, r) => {
        r.writeHead(503);
        r.end('no');
        return true;
      };
      const failed = await send(small.url, { method: 'POST', path: '/post', headers: { host: 'svc' }, body: big });
      expect(failed.status).toBe(503);
      expect(flaky.seen.length).toBe(2);
    } finally {
      flaky.handle = undefined;
      await small.close();
    }
  });

  it('serves HTTP/2 (h2c) clients with the same routes', async () => {
    const h2 = await startRouter(routeConfig(), clusters, { h2: true });
    const client = http2.connect(h2.url);
    try {
      const ask = (path: string, headers: Record<string, string> = {}) =>
        new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
          const s = client.request({ ':path': path, ':authority': 'svc', ...headers });
          let status = 0;
          let hdrs: http2.IncomingHttpHeaders = {};
          const chunks: Buffer[] = [];
          s.on('response', (h) => {
            status = Number(h[':status']);
            hdrs = h;
          });
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('end', () => resolve({ status, headers: hdrs, body: Buffer.concat(chunks).toString() }));
          s.on('error', reject);
          s.end();
        });
      const ok = await ask('/match', { 'end-user': 'jason' });
      expect(ok.status).toBe(200);
      expect(echoed(ok.body).backend).toBe('b');
      expect(ok.headers.server).toBe('istio-envoy');
      const aborted = await ask('/abort');
      expect(aborted.status).toBe(503);
      expect(aborted.body).toBe('fault filter abort');
      const missing = await ask('/nope', { ':authority': 'other' });
      expect(missing.status).toBe(404);
    } finally {
      client.close();
      await h2.close();
    }
  });
});
