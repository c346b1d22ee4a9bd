// The bench's load generator, a process of its own: HTTP/1.1 GETs over keep-alive connections
// (undici), either open loop at a fixed rate or closed loop with N requests always in flight.
//   node load.ts --url http://127.20.0.1:15001/ --host echo:9080 --rate 1000 --seconds 10
//   node load.ts --url ... --concurrency 32 --seconds 10
// Prints {"msg":"measuring"} when the measured window starts (after the warm-up), then one JSON line:
// {requests, errors, seconds, latencies: {p50, p90, p99} in ms, cpuSeconds} (cpuSeconds: this process's own
// user+system time over the measured window).
// Open loop measures from each request's scheduled start, so a slow response delays nothing
// else and queueing shows in the percentiles (no coordinated omission).
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    host: { type: 'string' },
    rate: { type: 'string', default: '0' },
    concurrency: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
  },
});
const url = new URL(values.url ?? 'http://127.0.0.1/');
const headers = values.host ? { host: values.host } : {};
const rate = Number(values.rate);
const concurrency = Number(values.concurrency);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const pool = new Pool(url.origin, { connections: rate > 0 ? 64 : concurrency, keepAliveTimeout: 60_000, pipelining: 1 });

let recording = false;
const latencies: number[] = [];
let errors = 0;

async function one(start: number): Promise<void> {
  try {
    const r = await pool.request({ path: url.pathname, method: 'GET', headers });
    await r.body.arrayBuffer();
    if (r.statusCode !== 200) throw new Error(String(r.statusCode));
    if (recording) latencies.push(performance.now() - start);
  } catch {
    if (recording) errors++;
  }
}

async function openLoop(ms: number): Promise<void> {
  const begin = performance.now();
  const interval = 1000 / rate;
  const inflight = new Set<Promise<void>>();
  let sent = 0;
  while (performance.now() - begin < ms) {
    const now = performance.now();
    while (begin + sent * interval <= now) {
      const p = one(begin + sent * interval);
      inflight.add(p);
      void p.then(() => inflight.delete(p));
      sent++;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(inflight);
}

async function closedLoop(ms: number): Promise<void> {
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await one(performance.now());
    }),
  );
}

const run = rate > 0 ? openLoop : closedLoop;
await run(warmup * 1000);
recording = true;
console.log(JSON.stringify({ msg: 'measuring' }));
const t0 = performance.now();
const cpu0 = process.cpuUsage();
await run(seconds * 1000);
const cpu = process.cpuUsage(cpu0);
const elapsed = (performance.now() - t0) / 1000;
recording = false;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? Number.NaN;
console.log(JSON.stringify({ requests: latencies.length, errors, seconds: elapsed, latencies: { p50: pct(50), p90: pct(90), p99: pct(99) }, cpuSeconds: (cpu.user + cpu.system) / 1e6 }));
await pool.close();
