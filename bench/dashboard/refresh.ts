// What the dashboard costs the mesh (issue 15: "its data refresh costs weftd and Prometheus < 5% of
// a core"; "the page loads in < 1 s with the BookInfo mesh").
//
// `weftctl up`'s mesh with its addons (startLocalMesh: weftd, the gateway, BookInfo behind its
// sidecars, Prometheus scraping every 2 s, the dashboard), BookInfo's product page loaded through
// the gateway at BENCH_DASHBOARD_RPS (5) for the whole run, and a client polling the dashboard's
// API as an open page does (graph, status every 2 s; proxies, traces every 5 s). The dashboard's
// refresh cost is measured by difference, in windows that take turns: "on" (the dashboard running)
// and "off" (the dashboard process stopped with SIGSTOP, so neither its pollers nor anything else
// of it run; SIGCONT after). CPU is the user+system time of weftd and of Prometheus over each
// window (/proc/<pid>/stat), as a share of one core; the cost is mean(on) - mean(off), and the
// dashboard's own CPU in the on windows is printed beside it. Then the page: Chromium (Debian's,
// via playwright-core) loads the dashboard BENCH_DASHBOARD_LOADS (5) times, cold each time (a new
// browser context), timed from navigation to the graph drawn with edges (window.__weftGraph).
//
// Environment: BENCH_DASHBOARD_WINDOW_S (20), BENCH_DASHBOARD_ROUNDS (3), BENCH_DASHBOARD_RPS (5),
// BENCH_DASHBOARD_LOADS (5), CHROMIUM_PATH.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalMesh, startLocalMesh } from '@weft/weftctl';

const windowS = Number(process.env.BENCH_DASHBOARD_WINDOW_S ?? 20);
const rounds = Number(process.env.BENCH_DASHBOARD_ROUNDS ?? 3);
const rps = Number(process.env.BENCH_DASHBOARD_RPS ?? 5);
const loads = Number(process.env.BENCH_DASHBOARD_LOADS ?? 5);
const ticks = 100; // USER_HZ on Linux

const say = (line: string) => console.log(`dashboard bench: ${line}`);

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

function canBind(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: address, port: 15000, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

async function freeNet(): Promise<string> {
  for (let i = 0; i < 30; i++) {
    const net = `127.78.${1 + Math.floor(Math.random() * 254)}`;
    if (await canBind(`${net}.10`)) return net;
  }
  throw new Error('no free 127.78.N net');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

function chromiumPath(): string | undefined {
  return [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string => !!p && existsSync(p));
}

async function main(): Promise<void> {
  if (!existsSync('/usr/bin/prometheus')) {
    say('skipped: needs Debian’s prometheus (apt-get install -y prometheus)');
    return;
  }
  const stateDir = await mkdtemp(join(tmpdir(), 'weft-bench-dashboard-'));
  const net = await freeNet();
  let mesh: LocalMesh | undefined;
  let stopTraffic = false;
  try {
    say(`starting the local mesh with its addons on ${net}.0/24`);
    const t0 = performance.now();
    mesh = await startLocalMesh({ stateDir, loopbackNet: net, ingressAddress: `${net}.9`, ingressPort: 0, timeoutMs: 240_000, onProgress: (c, t) => (c === 'prometheus' || c === 'dashboard' ? say(`${c}: ${t}`) : undefined) });
    say(`mesh and addons ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const s = mesh.state;
    if (!s.prometheus || !s.dashboard || !s.weftd) throw new Error(`the mesh runs without ${!s.prometheus ? 'Prometheus' : !s.dashboard ? 'the dashboard' : 'weftd'}: see ${stateDir}/logs`);
    const pids = { weftd: s.weftd.pid, prometheus: s.prometheus.pid, dashboard: s.dashboard.pid };
    const dash = s.dashboard.url.replace(/\/$/, '');

    // BookInfo traffic for the whole run, paced.
    let pages = 0;
    let failed = 0;
    const traffic = (async () => {
      const every = 1000 / rps;
      for (let next = performance.now(); !stopTraffic; next += every) {
        await sleep(Math.max(0, next - performance.now()));
        fetch(mesh!.url, { signal: AbortSignal.timeout(10_000) })
          .then(async (r) => {
            await r.arrayBuffer();
            if (r.status === 200) pages++;
            else failed++;
          })
          .catch(() => failed++);
      }
    })();
    // An open page's polling of the API.
    let apiCalls = 0;
    let apiFailed = 0;
    const get = (path: string) =>
      fetch(`${dash}${path}`, { signal: AbortSignal.timeout(5000) })
        .then(async (r) => {
          await r.arrayBuffer();
          apiCalls++;
          if (r.status !== 200) apiFailed++;
        })
        .catch(() => apiFailed++);
    let pageOpen = false;
    const page = (async () => {
      for (let i = 0; !stopTraffic; i++) {
        if (pageOpen) {
          await Promise.all([get('/api/graph?window=30s'), get('/api/status'), ...(i % 5 === 0 ? [get('/api/proxies'), get('/api/traces')] : [])]);
        }
        await sleep(2000);
      }
    })();

    say(`warming up for ${windowS} s (traffic at ${rps} pages/s)`);
    await sleep(windowS * 1000);

    const on: { weftd: number; prometheus: number; dashboard: number }[] = [];
    const off: { weftd: number; prometheus: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const mode of ['on', 'off'] as const) {
        if (mode === 'off') process.kill(pids.dashboard, 'SIGSTOP');
        pageOpen = mode === 'on';
        await sleep(1000);
        const before = { weftd: await cpuSeconds(pids.weftd), prometheus: await cpuSeconds(pids.prometheus), dashboard: await cpuSeconds(pids.dashboard) };
        const t = performance.now();
        await sleep(windowS * 1000);
        const secs = (performance.now() - t) / 1000;
        const share = { weftd: ((await cpuSeconds(pids.weftd)) - before.weftd) / secs, prometheus: ((await cpuSeconds(pids.prometheus)) - before.prometheus) / secs, dashboard: ((await cpuSeconds(pids.dashboard)) - before.dashboard) / secs };
        if (mode === 'off') process.kill(pids.dashboard, 'SIGCONT');
        if (mode === 'on') on.push(share);
        else off.push(share);
        say(`round ${r + 1} dashboard ${mode.padEnd(3)}: weftd ${pct(share.weftd)} of a core, prometheus ${pct(share.prometheus)}${mode === 'on' ? `, the dashboard itself ${pct(share.dashboard)}` : ''}`);
      }
    }
    const cost = { weftd: mean(on.map((x) => x.weftd)) - mean(off.map((x) => x.weftd)), prometheus: mean(on.map((x) => x.prometheus)) - mean(off.map((x) => x.prometheus)) };
    const total = cost.weftd + cost.prometheus;
    say(`CPU is each process's user+system time over a ${windowS} s window / the window, as a share of one core; ${rounds} rounds, on and off taking turns`);
    say(`refresh cost (on - off): weftd ${pct(cost.weftd)}, prometheus ${pct(cost.prometheus)}, together ${pct(total)} of a core (goal < 5%: ${total < 0.05 ? 'met' : 'NOT met'}); the dashboard process ${pct(mean(on.map((x) => x.dashboard)))}`);
    say(`traffic: ${pages} product pages (${failed} failed), ${apiCalls} API calls from the polling client (${apiFailed} failed)`);

    const chromium = chromiumPath();
    if (!chromium) say('page load: skipped, needs Debian’s chromium (apt-get install -y chromium)');
    else {
      const { chromium: pw } = await import('playwright-core');
      const browser = await pw.launch({ executablePath: chromium, headless: true, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
      try {
        const times: number[] = [];
        for (let i = 0; i < loads; i++) {
          const context = await browser.newContext();
          const p = await context.newPage();
          const t = performance.now();
          await p.goto(`${dash}/#/graph`);
          // Drawn: the canvas holds the graph's edges at its first layout's positions (as e2e/dashboard's page-load test).
          await p.waitForFunction(
            () => {
              const g = (globalThis as unknown as { __weftGraph?: { laidOutAt?: number; rendered?: { edges: unknown[] } } }).__weftGraph;
              return (g?.rendered?.edges.length ?? 0) > 0 && (g?.laidOutAt ?? 0) > 0;
            },
            undefined,
            { timeout: 30_000 },
          );
          times.push(performance.now() - t);
          await context.close();
        }
        times.sort((a, b) => a - b);
        const median = times[Math.floor(times.length / 2)]!;
        say(`page load (navigation -> graph drawn with its edges), ${loads} cold loads: median ${median.toFixed(0)} ms, max ${times.at(-1)!.toFixed(0)} ms (goal < 1000 ms: ${times.at(-1)! < 1000 ? 'met' : median < 1000 ? 'median met, max NOT' : 'NOT met'})`);
      } finally {
        await browser.close();
      }
    }
    stopTraffic = true;
    await Promise.all([traffic, page]);
  } finally {
    stopTraffic = true;
    await mesh?.stop().catch((e: unknown) => say(`stop: ${(e as Error).message}`));
    await rm(stateDir, { recursive: true, force: true });
  }
}

await main();
