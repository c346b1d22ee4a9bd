import type { Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { type AdminServer, type AdminSource, addressedDirectly, startAdmin } from './server.ts';
import { compileStatsFilter, maxStatsFilterProgramSize, Stats } from './stats.ts';

/** Stat names shaped like a sidecar's: per cluster and listener, some hundreds of them. */
function sidecarStats(clusters: number): Stats {
  const stats = new Stats();
  for (let i = 0; i < clusters; i++) {
    for (const k of ['upstream_rq_total', 'upstream_rq_2xx', 'upstream_rq_200', 'upstream_cx_total', 'upstream_rq_retry']) stats.inc(`cluster.outbound|9080|v${i}|reviews-${i}.default.svc.cluster.local.${k}`, i);
  }
  stats.inc('listener.virtualInbound.http.downstream_rq_total', 3);
  return stats;
}

function source(stats: Stats, quit?: () => void): AdminSource {
  return {
    snapshot: undefined,
    resourceInfo: () => undefined,
    warming: { listeners: [], clusters: [] },
    ready: () => true,
    clusterStatus: () => new Map(),
    listeners: () => [],
    stats,
    serverInfo: () => ({}),
    ...(quit ? { quit } : {}),
  };
}

const running: AdminServer[] = [];
afterEach(async () => {
  for (const a of running.splice(0)) await a.close();
});

async function admin(stats: Stats, o: { quit?: () => void; protect?: (s: Server, port: string) => void } = {}): Promise<string> {
  const a = await startAdmin(source(stats, o.quit), { port: 0, healthPort: 0, ...(o.protect ? { protect: o.protect } : {}) });
  running.push(a);
  return `http://127.0.0.1:${a.port}`;
}

/** Hostile to a backtracking engine (exponential in JavaScript's RegExp); linear in RE2. */
const hostile = ['^(.|.){0,20}!', '^(.|.|.){0,25}!', '((a+)+)+$', '(x+x+)+y', '((((.*)*)*)*)*!', '^([a-z0-9|.-]|[a-z0-9|._-]){0,200}!', '(\\w+\\s?)+$'];

describe('admin /stats?filter= (RE2 semantics, re2js)', () => {
  it('filters by a match anywhere in the name, as Envoy; json too', async () => {
    const url = await admin(sidecarStats(3));
    const text = await (await fetch(`${url}/stats?filter=${encodeURIComponent('v1\\|.*rq_2xx$')}`)).text();
    expect(text).toBe('cluster.outbound|9080|v1|reviews-1.default.svc.cluster.local.upstream_rq_2xx: 1\n');
    const json = (await (await fetch(`${url}/stats?format=json&filter=virtualInbound`)).json()) as { stats: { name: string; value: number }[] };
    expect(json.stats).toEqual([{ name: 'listener.virtualInbound.http.downstream_rq_total', value: 3 }]);
    expect((await (await fetch(`${url}/stats`)).text()).split('\n').filter(Boolean)).toHaveLength(16);
  });

  it('answers 400 with the reason for a filter RE2 refuses or cannot parse', async () => {
    const url = await admin(sidecarStats(1));
    const cases: [string, RegExp][] = [
      ['[', /missing closing \]/],
      ['(a)\\1', /invalid escape sequence/],
      ['(?=cluster)', /invalid or unsupported Perl syntax/],
      ['a{1001}', /invalid repeat count/],
      ['(.*){1,1000}x', new RegExp(`program size \\d+ exceeds the admin filter limit of ${maxStatsFilterProgramSize}`)],
    ];
    for (const [filter, reason] of cases) {
      const r = await fetch(`${url}/stats?filter=${encodeURIComponent(filter)}`);
      expect(r.status, filter).toBe(400);
      const body = await r.text();
      expect(body, filter).toContain(`invalid filter ${JSON.stringify(filter)}`);
      expect(body, filter).toMatch(reason);
    }
  });

  it('filters a sidecar-sized stats set (1,000 names) with each hostile filter in well under 50 ms of CPU', async () => {
    const stats = sidecarStats(200);
    const url = await admin(stats);
    const costs: string[] = [];
    for (const pattern of hostile) {
      const compiled = compileStatsFilter(pattern);
      if ('error' in compiled) throw new Error(`${pattern}: ${compiled.error}`);
      expect((await fetch(`${url}/stats?filter=${encodeURIComponent(pattern)}`)).status).toBe(200);
      // CPU time, not wall time: the machine is shared, and being descheduled is not the filter's cost.
      const c0 = process.cpuUsage();
      await stats.entriesMatching(compiled.filter);
      const c = process.cpuUsage(c0);
      const ms = (c.user + c.system) / 1000;
      costs.push(`${pattern} ${ms.toFixed(1)} ms`);
      expect(ms, pattern).toBeLessThan(50);
    }
    console.log(`admin /stats: CPU per hostile filter over 1,001 names: ${costs.join('; ')}`);
  });

  it('scans in slices: even a filter costing 0.1 ms per name gives the event loop a turn every couple of ms', async () => {
    const stats = sidecarStats(400); // 2,001 names: 200 ms of filtering in all
    let calls = 0;
    const slow = {
      test: (name: string) => {
        calls++;
        const until = performance.now() + 0.1;
        while (performance.now() < until);
        return name.endsWith('_2xx');
      },
    };
    // A ticker in the same queue as the scan's yields: how many names ran between two of its turns
    // is how long the scan held the thread (counted in names, so being descheduled does not count).
    const between: number[] = [];
    let last = 0;
    let ticking = true;
    const tick = () => {
      between.push(calls - last);
      last = calls;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const matched = await stats.entriesMatching(slow);
    ticking = false;
    expect(matched).toHaveLength(400);
    const most = Math.max(...between);
    console.log(`admin /stats: a 0.1 ms/name filter over 2,001 names yielded ${between.length} times, at most ${most} names (${(most * 0.1).toFixed(1)} ms) between turns`);
    // 2 ms slices, checked every 16 names: at most 20 + 16 names of 0.1 ms each.
    expect(between.length).toBeGreaterThan(40);
    expect(most).toBeLessThanOrEqual(36);
  });
});

describe('admin state-changing endpoints', () => {
  it('quitquitquit is POST-only: GET answers 405 and does not stop the proxy', async () => {
    let quits = 0;
    const url = await admin(sidecarStats(1), { quit: () => quits++ });
    const get = await fetch(`${url}/quitquitquit`);
    expect(get.status).toBe(405);
    expect(quits).toBe(0);
    const post = await fetch(`${url}/quitquitquit`, { method: 'POST' });
    expect(post.status).toBe(200);
    expect(quits).toBe(1);
  });

  it("refuses quitquitquit from a web page (a browser's POST carries Origin, even 'null')", async () => {
    let quits = 0;
    const url = await admin(sidecarStats(1), { quit: () => quits++ });
    for (const origin of ['https://evil.example', 'null']) {
      const r = await fetch(`${url}/quitquitquit`, { method: 'POST', headers: { origin } });
      expect(r.status).toBe(403);
      expect(await r.text()).toContain('does not take state changes from web pages');
    }
    expect(quits).toBe(0);
  });

  it('hands the admin and health servers to `protect` before they listen (the owner-only check)', async () => {
    const seen: [string, boolean][] = [];
    await admin(sidecarStats(1), { protect: (s, port) => seen.push([port, s.listening]) });
    expect(seen).toEqual([
      ['admin', false],
      ['health', false],
    ]);
  });
});

describe('admin and DNS rebinding', () => {
  const get = (url: string, host: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${url}/server_info`, { headers: { host } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('answers requests addressed to an IP or localhost, and 421 to any other name (a rebound domain)', async () => {
    const url = await admin(sidecarStats(1));
    const port = new URL(url).port;
    expect((await get(url, `127.0.0.1:${port}`)).status).toBe(200);
    expect((await get(url, `localhost:${port}`)).status).toBe(200);
    const rebound = await get(url, `attacker.example:${port}`);
    expect(rebound.status).toBe(421);
    expect(rebound.body).toMatch(/only requests addressed to an IP address or localhost/);
  });

  it('reads Host headers as names or addresses', () => {
    expect(['127.0.0.13:15000', '[::1]:15000', 'LOCALHOST', '10.0.0.1'].map(addressedDirectly)).toEqual([true, true, true, true]);
    expect(['localhost.attacker.example', '127.0.0.1.nip.io:15000', 'istiod'].map(addressedDirectly)).toEqual([false, false, false]);
    expect(addressedDirectly(undefined)).toBe(true);
  });
});
