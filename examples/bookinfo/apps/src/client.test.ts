import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallError, call, checkProxyUrl, proxyFromEnv } from './client.ts';
import { startTestProxy, type TestProxy } from './test-proxy.ts';

let backend: Server;
let backendUrl: string;
let proxy: TestProxy;

beforeAll(async () => {
  backend = createServer((req, res) => {
    const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0);
    setTimeout(() => res.end(`${req.method} ${req.url} host=${req.headers.host}`), delay);
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  proxy = await startTestProxy({ 'reviews:9080': backendUrl });
});
afterAll(async () => {
  await proxy.close();
  backend.closeAllConnections();
  backend.close();
});

describe('call', () => {
  it('sends an absolute-form request to the HTTP proxy, with the Host of the service', async () => {
    const r = await call('http://reviews:9080/reviews/0?x=1', { timeoutMs: 2000, proxy: { httpProxy: proxy.url } });
    expect(r.status).toBe(200);
    expect(proxy.seen.at(-1)!.target).toBe('http://reviews:9080/reviews/0?x=1');
    expect(proxy.seen.at(-1)!.headers.host).toBe('reviews:9080');
    expect(r.body).toBe('GET /reviews/0?x=1 host=reviews:9080');
  });

  it('goes direct for hosts in no_proxy', async () => {
    const before = proxy.seen.length;
    const r = await call(`${backendUrl}/direct`, { timeoutMs: 2000, proxy: { httpProxy: proxy.url, noProxy: 'example.com, 127.0.0.1' } });
    expect(r.body).toMatch(/^GET \/direct/);
    expect(proxy.seen.length).toBe(before);
  });

  it('fails with ETIMEDOUT when the peer is slower than the timeout', async () => {
    const t0 = performance.now();
    const err = await call(`${backendUrl}/slow?delay=2000`, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallError);
    expect((err as CallError).code).toBe('ETIMEDOUT');
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  it('fails with the connection error when nothing listens', async () => {
    const err = await call('http://127.0.0.1:1/', { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect((err as CallError).code).toBe('ECONNREFUSED');
  });

  it('opens a new connection for every call (no pool)', async () => {
    const ports = new Set<number>();
    const s = createServer((req, res) => {
      ports.add(req.socket.remotePort!);
      res.end('ok');
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}/`;
      for (let i = 0; i < 3; i++) await call(url, { timeoutMs: 1000 });
      expect(ports.size).toBe(3);
    } finally {
      s.close();
    }
  });
});

describe('proxy settings', () => {
  it('reads http_proxy before HTTP_PROXY, and no_proxy', () => {
    expect(proxyFromEnv({ http_proxy: 'http://a:1', HTTP_PROXY: 'http://b:2', NO_PROXY: 'x' })).toEqual({ httpProxy: 'http://a:1', noProxy: 'x' });
    expect(proxyFromEnv({})).toEqual({});
  });

  it('rejects proxies that are not http URLs, saying why', () => {
    expect(checkProxyUrl('http://127.0.0.14:15001')).toBeUndefined();
    expect(checkProxyUrl('127.0.0.14:15001')).toBeUndefined();
    expect(checkProxyUrl('https://127.0.0.14:15001')).toMatch(/only http:\/\/ proxies/);
    expect(checkProxyUrl('http://')).toMatch(/not a URL|names no host/);
  });
});
