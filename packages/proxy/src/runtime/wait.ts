// `weft-proxy wait`: blocks until the proxy in this pod answers ready, as Istio's `pilot-agent
// wait`. The injector runs it as istio-proxy's postStart hook for holdApplicationUntilProxyStarts:
// the kubelet starts the next container only once the hook returns.
import { parseArgs } from 'node:util';

export const waitUsage = `weft-proxy wait: wait until the proxy is ready (for a postStart hook)

Usage:
  weft-proxy wait [--url URL] [--timeout-seconds N] [--period-ms MS]

  --url URL            readiness endpoint (default http://127.0.0.1:15021/healthz/ready)
  --timeout-seconds N  give up after this long, exit 1 (default 60)
  --period-ms MS       time between attempts (default 500)`;

export interface WaitOptions {
  url: string;
  timeoutMs: number;
  periodMs: number;
}

/** Resolves to true once `url` answers 200, false when the time is up. */
export async function waitForReady(o: WaitOptions): Promise<boolean> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    try {
      const res = await fetch(o.url, { signal: AbortSignal.timeout(Math.max(100, Math.min(1000, deadline - Date.now()))) });
      await res.arrayBuffer();
      if (res.status === 200) return true;
    } catch {
      // Not listening yet.
    }
    if (Date.now() + o.periodMs > deadline) return false;
    await new Promise((r) => setTimeout(r, o.periodMs));
  }
}

/** The `wait` subcommand; resolves to the exit status. */
export async function runWaitCommand(argv: readonly string[], io: { out: (s: string) => void; err: (s: string) => void }): Promise<number> {
  let v: { url?: string | undefined; 'timeout-seconds'?: string | undefined; 'period-ms'?: string | undefined; help?: boolean | undefined };
  try {
    v = parseArgs({ args: [...argv], options: { url: { type: 'string' }, 'timeout-seconds': { type: 'string' }, 'period-ms': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (e) {
    io.err(`weft-proxy wait: ${(e as Error).message}\n`);
    return 2;
  }
  if (v.help) {
    io.out(`${waitUsage}\n`);
    return 0;
  }
  const timeout = Number(v['timeout-seconds'] ?? 60);
  const period = Number(v['period-ms'] ?? 500);
  if (!Number.isFinite(timeout) || timeout <= 0 || !Number.isFinite(period) || period <= 0) {
    io.err('weft-proxy wait: --timeout-seconds and --period-ms must be positive numbers\n');
    return 2;
  }
  const url = v.url ?? 'http://127.0.0.1:15021/healthz/ready';
  if (await waitForReady({ url, timeoutMs: timeout * 1000, periodMs: period })) {
    io.out(`weft-proxy wait: ready (${url})\n`);
    return 0;
  }
  io.err(`weft-proxy wait: ${url} not ready within ${timeout} s\n`);
  return 1;
}
