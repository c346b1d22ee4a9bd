import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JwksResolver } from './jwks.ts';

/** A real key server on 127.0.0.1:0 whose answers the test changes. */
let server: Server;
let base: string;
let answers: Record<string, { status?: number; body: string; delayMs?: number }>;
let hits: string[];

beforeEach(async () => {
  answers = {};
  hits = [];
  server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const a = answers[req.url ?? ''];
    if (!a) {
      res.writeHead(404).end();
      return;
    }
    setTimeout(() => res.writeHead(a.status ?? 200, { 'content-type': 'application/json' }).end(a.body), a.delayMs ?? 0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const keysA = { keys: [{ kty: 'oct', kid: 'a', k: 'AAAA' }] };
const keysB = { keys: [{ kty: 'oct', kid: 'b', k: 'BBBB' }] };

describe('JwksResolver', () => {
  it('fetches a jwksUri when first asked, answers its keys from then on, and reports the change', async () => {
    answers['/jwks'] = { body: JSON.stringify(keysA, null, 2) };
    const changed: string[] = [];
    const r = new JwksResolver({ onChange: (u) => changed.push(u) });
    try {
      expect(r.get(`${base}/jwks`, 1000)).toBeUndefined();
      await r.idle();
      expect(JSON.parse(r.get(`${base}/jwks`, 1000)!)).toEqual(keysA);
      expect(changed).toEqual([`${base}/jwks`]);
      expect(hits).toEqual(['/jwks']);
    } finally {
      r.close();
    }
  });

  it('picks up rotated keys on refresh (the timer, here 200 ms) and says so once; the same keys again change nothing', async () => {
    answers['/jwks'] = { body: JSON.stringify(keysA) };
    const changed: string[] = [];
    const r = new JwksResolver({ refreshIntervalMs: 200, onChange: (u) => changed.push(u) });
    try {
      r.get(`${base}/jwks`, 1000);
      await r.idle();
      answers['/jwks'] = { body: JSON.stringify(keysB, null, 4) };
      const t0 = Date.now();
      while (JSON.parse(r.get(`${base}/jwks`, 1000)!).keys[0].kid !== 'b') {
        if (Date.now() - t0 > 3000) throw new Error('rotation not picked up in 3 s');
        await new Promise((res) => setTimeout(res, 20));
      }
      const n = hits.length;
      while (hits.length < n + 2) await new Promise((res) => setTimeout(res, 20));
      await r.idle();
      expect(changed).toHaveLength(2);
    } finally {
      r.close();
    }
  });

  it('keeps the last good keys when a refresh fails (HTTP error, not JSON, no keys, too slow, too big)', async () => {
    answers['/jwks'] = { body: JSON.stringify(keysA) };
    const r = new JwksResolver({ maxBytes: 4096 });
    try {
      r.get(`${base}/jwks`, 300);
      await r.idle();
      const bad: { status?: number; body: string; delayMs?: number }[] = [
        { status: 503, body: 'down' },
        { body: 'not json' },
        { body: '{"no":"keys"}' },
        { body: JSON.stringify(keysB), delayMs: 1000 },
        { body: JSON.stringify({ keys: [{ kty: 'oct', k: 'x'.repeat(5000) }] }) },
      ];
      const errors: string[] = [];
      for (const b of bad) {
        answers['/jwks'] = b;
        await r.refresh();
        expect(JSON.parse(r.get(`${base}/jwks`, 300)!)).toEqual(keysA);
        errors.push(r.status()[0]?.lastError ?? '');
      }
      expect(errors[0]).toContain('HTTP 503');
      expect(errors[1]).toContain('not JSON');
      expect(errors[2]).toContain('no "keys" list');
      expect(errors[3]).toMatch(/timeout|aborted/i);
      expect(errors[4]).toContain('4096');
    } finally {
      r.close();
    }
  });

  it('follows an issuer\'s OpenID discovery document to its jwks_uri', async () => {
    answers['/.well-known/openid-configuration'] = { body: JSON.stringify({ issuer: base, jwks_uri: `${base}/keys` }) };
    answers['/keys'] = { body: JSON.stringify(keysB) };
    const r = new JwksResolver();
    try {
      r.get(`${base}/.well-known/openid-configuration`, 1000);
      await r.idle();
      expect(JSON.parse(r.get(`${base}/.well-known/openid-configuration`, 1000)!)).toEqual(keysB);
      expect(hits).toEqual(['/.well-known/openid-configuration', '/keys']);
    } finally {
      r.close();
    }
  });

  it('tracks at most maxUris URIs', async () => {
    answers['/a'] = { body: JSON.stringify(keysA) };
    answers['/b'] = { body: JSON.stringify(keysB) };
    const r = new JwksResolver({ maxUris: 1 });
    try {
      r.get(`${base}/a`, 1000);
      r.get(`${base}/b`, 1000);
      await r.idle();
      expect(r.get(`${base}/a`, 1000)).toBeDefined();
      expect(r.get(`${base}/b`, 1000)).toBeUndefined();
      expect(hits).toEqual(['/a']);
    } finally {
      r.close();
    }
  });
});
