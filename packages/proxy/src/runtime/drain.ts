// How long a stopping proxy keeps serving: pilot-agent's termination drain. On SIGTERM the agent
// asks Envoy to drain its listeners gracefully and waits terminationDrainDuration (5 s) before it
// stops Envoy, because a terminating pod's endpoint leaves the callers' EDS only after the
// EndpointSlice controller, pilot and every caller's proxy have seen it: until then requests keep
// arriving and must be served. With EXIT_ON_ZERO_ACTIVE_CONNECTIONS the agent waits
// MINIMUM_DRAIN_DURATION, then stops as soon as no downstream connection is left.

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
