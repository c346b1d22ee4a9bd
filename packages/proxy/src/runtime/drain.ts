// How long a stopping proxy keeps serving: pilot-agent's termination drain. On SIGTERM the agent
// asks Envoy to drain its listeners gracefully and waits terminationDrainDuration (5 s) before it
// stops Envoy, because a terminating pod's endpoint leaves the callers' EDS only after the
// EndpointSlice controller, pilot and every caller's proxy have seen it: until then requests keep
// arriving and must be served. With EXIT_ON_ZERO_ACTIVE_CONNECTIONS the agent waits
// MINIMUM_DRAIN_DURATION, then stops as soon as no downstream connection is left. A native
// sidecar's preStop hook starts the drain earlier (`weft-proxy drain`, pilot-agent's /drain).
import { parseArgs } from 'node:util';

export interface DrainPolicy {
  /** The longest the proxy drains (Istio's terminationDrainDuration). */
  drainMs: number;
  /** Stop earlier, once `minDrainMs` has passed and `activeConnections()` is 0. */
  exitOnZeroActiveConnections: boolean;
  minDrainMs: number;
}

export interface DrainResult {
  /** Why the drain ended. */
  reason: 'drain period over' | 'no active connections';
  ms: number;
  /** Downstream connections still open when it ended (closed next). */
  activeConnections: number;
}

/** Waits out the drain period; `activeConnections` is asked every `pollMs` once it may end it. */
export async function drainPeriod(o: DrainPolicy & { activeConnections: () => number; pollMs?: number }): Promise<DrainResult> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
  const done = (reason: DrainResult['reason']): DrainResult => ({ reason, ms: Math.round(elapsed()), activeConnections: o.activeConnections() });
  if (!o.exitOnZeroActiveConnections) {
    await sleep(o.drainMs);
    return done('drain period over');
  }
  await sleep(Math.min(o.minDrainMs, o.drainMs));
  const poll = o.pollMs ?? 50;
  for (;;) {
    if (o.activeConnections() === 0) return done('no active connections');
    const left = o.drainMs - elapsed();
    if (left <= 0) return done('drain period over');
    await sleep(Math.min(poll, left));
  }
}

export const drainUsage = `weft-proxy drain: start the drain of the proxy in this pod (for a preStop hook)

Usage:
  weft-proxy drain [--url URL]

  --url URL   the proxy's drain endpoint (default http://127.0.0.1:15020/drain)

As Istio's \`pilot-agent request POST drain\` in a native sidecar's preStop hook: the proxy stops
being ready and asks its inbound connections to close while it keeps serving; the kubelet stops
it once the application has exited, and then it exits at once.`;

/** The `drain` subcommand; resolves to the exit status. */
export async function runDrainCommand(argv: readonly string[], io: { out: (s: string) => void; err: (s: string) => void }): Promise<number> {
  let v: { url?: string | undefined; help?: boolean | undefined };
  try {
    v = parseArgs({ args: [...argv], options: { url: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (e) {
    io.err(`weft-proxy drain: ${(e as Error).message}\n`);
    return 2;
  }
  if (v.help) {
    io.out(`${drainUsage}\n`);
    return 0;
  }
  const url = v.url ?? 'http://127.0.0.1:15020/drain';
  try {
    const res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(10_000) });
    const body = (await res.text()).trim();
    if (res.status === 200) {
      io.out(`weft-proxy drain: draining (${url})\n`);
      return 0;
    }
    io.err(`weft-proxy drain: ${url} answered ${res.status}${body ? `: ${body}` : ''}\n`);
  } catch (e) {
    const cause = (e as Error).cause;
    io.err(`weft-proxy drain: ${url}: ${cause instanceof Error ? cause.message : (e as Error).message}\n`);
  }
  return 1;
}
