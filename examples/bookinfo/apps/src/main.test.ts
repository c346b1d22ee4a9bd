// The `bookinfo` command as a user runs it: flags and environment, a real process, SIGTERM.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCommand, UsageError } from './main.ts';

const bin = fileURLToPath(new URL('../bin/bookinfo.js', import.meta.url));

interface Proc {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: string[];
  exited: Promise<number | null>;
  waitFor(msg: string): Promise<Record<string, unknown>>;
}

function run(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const waiters: { msg: string; resolve: (l: Record<string, unknown>) => void }[] = [];
  let pending = '';
  child.stdout!.on('data', (b: Buffer) => {
    pending += b.toString();
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const p of parts) {
      const l = JSON.parse(p) as Record<string, unknown>;
      lines.push(l);
      for (const w of [...waiters]) if (l.msg === w.msg) w.resolve(l);
    }
  });
  child.stderr!.on('data', (b: Buffer) => stderr.push(b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    lines,
    stderr,
    exited,
    waitFor: (msg) =>
      new Promise((resolve, reject) => {
        const seen = lines.find((l) => l.msg === msg);
        if (seen) return resolve(seen);
        waiters.push({ msg, resolve });
        void exited.then((code) => reject(new Error(`exited (${code}) before ${msg}: ${stderr.join('')}`)));
      }),
  };
}

describe('parseCommand', () => {
  it('needs a known service and one of its versions, and says what there is', () => {
    expect(() => parseCommand([], {})).toThrow(/--service is required/);
    expect(() => parseCommand(['--service', 'checkout'], {})).toThrow(/productpage, details, reviews or ratings/);
    expect(() => parseCommand(['--service', 'reviews', '--version', 'v4'], {})).toThrow(/reviews has no version "v4"; it has v1, v2, v3/);
    expect(() => parseCommand(['--service', 'ratings', '--version', 'v2'], {})).toThrow(/database/);
    expect(() => parseCommand(['--service', 'details', '--port', '99999'], {})).toThrow(UsageError);
    expect(() => parseCommand(['--service', 'details', '--bogus'], {})).toThrow(UsageError);
    expect(() => parseCommand(['--service', 'reviews'], { ENABLE_RATINGS: 'maybe' })).toThrow(/ENABLE_RATINGS must be true or false/);
    expect(() => parseCommand(['--service', 'productpage', '--http-proxy', 'socks5://x:1'], {})).toThrow(/only http:\/\//);
  });

  it('takes the pod name from --pod-name, else HOSTNAME', async () => {
    const a = parseCommand(['--service', 'reviews', '--pod-name', 'reviews-v1', '--address', '127.0.0.1', '--port', '0'], { HOSTNAME: 'node-7' });
    const b = parseCommand(['--service', 'reviews', '--address', '127.0.0.1', '--port', '0'], { HOSTNAME: 'node-7' });
    for (const [cmd, want] of [
      [a, 'reviews-v1'],
      [b, 'node-7'],
    ] as const) {
      if (cmd === 'help') throw new Error('help');
      const s = await cmd.start(false);
      try {
        expect(((await (await fetch(`${s.url}/reviews/0`)).json()) as { podname: string }).podname).toBe(want);
      } finally {
        await s.close(0);
      }
    }
  });

  it('takes the version from SERVICE_VERSION, the flag winning', () => {
    const a = parseCommand(['--service', 'reviews'], { SERVICE_VERSION: 'v3' });
    const b = parseCommand(['--service', 'reviews', '--version', 'v2'], { SERVICE_VERSION: 'v3' });
    expect(a !== 'help' && a.version).toBe('v3');
    expect(b !== 'help' && b.version).toBe('v2');
  });
});

describe('the bookinfo command', () => {
  it('prints usage and exits 2 on a bad flag', async () => {
    const p = run(['--service', 'nope']);
    expect(await p.exited).toBe(2);
    expect(p.stderr.join('')).toMatch(/--service must be productpage, details, reviews or ratings[\s\S]*Usage:/);
  });

  it('exits 1 with a clear log line when the port is taken', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    try {
      const p = run(['--service', 'details', '--address', '127.0.0.1', '--port', String((s.address() as AddressInfo).port)]);
      expect(await p.exited).toBe(1);
      expect(p.lines.find((l) => l.msg === 'cannot start')).toMatchObject({ level: 'error', error: { code: 'EADDRINUSE' } });
    } finally {
      s.close();
    }
  });

  it('runs reviews v3 with peers and proxy from the environment, logs requests, and finishes a request in flight on SIGTERM', async () => {
    // A ratings stand-in that answers after 1.5 s, reached through an HTTP proxy given by http_proxy.
    const seen: string[] = [];
    const ratings = createServer((req, res) => {
      seen.push(`${req.url} host=${req.headers.host}`);
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":0,"ratings":{"Reviewer1":2,"Reviewer2":3}}'), 1500);
    });
    await new Promise<void>((r) => ratings.listen(0, '127.0.0.1', r));
    const { startTestProxy } = await import('./test-proxy.ts');
    const proxy = await startTestProxy({ 'ratings.bookinfo:9080': `http://127.0.0.1:${(ratings.address() as AddressInfo).port}` });
    const p = run(['--service', 'reviews', '--address', '127.0.0.1', '--port', '0'], {
      SERVICE_VERSION: 'v3',
      HOSTNAME: 'reviews-v3-7d9',
      SERVICES_DOMAIN: 'bookinfo',
      http_proxy: proxy.url,
    });
    try {
      const listening = await p.waitFor('listening');
      expect(listening).toMatchObject({ level: 'info', scope: 'reviews', service: 'reviews', version: 'v3', address: '127.0.0.1' });
      const url = `http://127.0.0.1:${listening.port as number}`;
      const inFlight = fetch(`${url}/reviews/0`).then(async (r) => ({ status: r.status, text: await r.text() }));
      await new Promise((r) => setTimeout(r, 500));
      p.child.kill('SIGTERM');
      const r = await inFlight;
      expect(r.status).toBe(200);
      expect(r.text).toContain('"podname": "reviews-v3-7d9"');
      expect(r.text).toContain('"rating": {"stars": 2, "color": "red"}');
      expect(await p.exited).toBe(0);
      expect(seen).toEqual(['/ratings/0 host=ratings.bookinfo:9080']);
      expect(proxy.seen[0]!.target).toBe('http://ratings.bookinfo:9080/ratings/0');
      const msgs = p.lines.map((l) => l.msg);
      expect(msgs).toEqual(expect.arrayContaining(['listening', 'signal', 'stopping', 'request', 'stopped']));
      expect(msgs.indexOf('request')).toBeLessThan(msgs.indexOf('stopped'));
      expect(p.lines.find((l) => l.msg === 'request')).toMatchObject({ method: 'GET', path: '/reviews/0', status: 200 });
    } finally {
      p.child.kill('SIGKILL');
      await proxy.close();
      ratings.close();
    }
  });
});
