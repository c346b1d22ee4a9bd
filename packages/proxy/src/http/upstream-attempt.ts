// The upstream attempt (Envoy's router filter upstream side): the route's request rewrites,
// timeouts (route, per try, gRPC's grpc-timeout, max_stream_duration), the consistent-hash key,
// the request body (buffered within the limit so it can be replayed, else streamed), mirrors,
// then attempts with retries (retry_on, back-off, previous hosts excluded, the cluster's retry
// budget). Each attempt asks the cluster (src/cluster: load balancing picks the endpoint, the
// pool the connection) through `UpstreamCluster.request`.
//
// Contract: `forward(ex, route, action, cluster)` resolves once the exchange is answered: the
// upstream response streamed (response.ts) or a local reply with Envoy's flag (UF, UT, UO, UH,
// URX, UC) and body text.
import type { CancelListener, ResponseFlag, UpstreamCluster, UpstreamOptions, UpstreamRequest, UpstreamResponse } from '../core/types.ts';
import { UpstreamError } from '../core/types.ts';
import { RequestBody } from './body.ts';
import type { CompiledRoute, CompiledRouteAction } from './compile.ts';
import type { Exchange } from './exchange.ts';
import { applyHeaderMutations } from './headers.ts';
import { LocalReplyBody, localReply } from './local-reply.ts';
import { sampled } from './matchers.ts';
import { backoffMs, type CookieToSet, hashKey, type ResetKind, retriableReset, retriableResponse, setCookieValue, shadowAuthority } from './policies.ts';
import { respond } from './response.ts';
import { rewritePath } from './route-selection.ts';

type AttemptOutcome =
  | { kind: 'response'; response: UpstreamResponse; startedAt: number }
  | { kind: 'failure'; reset: ResetKind; flag: ResponseFlag; endpoint: string | undefined }
  | { kind: 'gone' };

const resetReasons: Record<ResetKind, string> = {
  'connect-failure': 'connection failure',
  'refused-stream': 'remote refused stream reset',
  reset: 'connection termination',
  timeout: 'local reset',
  'max-stream-duration': 'local reset',
  overflow: 'overflow',
  'no-healthy-upstream': 'no healthy upstream',
};

/** `grpc-timeout` (`100m`, `5S`) in milliseconds. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
  return Math.ceil(n * unit[m[2]!]!);
}

/** Sends the request to `cluster` under the route's policies and answers the client (see the contract above). */
export async function forward(ex: Exchange, route: CompiledRoute, action: CompiledRouteAction, cluster: UpstreamCluster): Promise<void> {
  const h = ex.headers;
  const view = ex.view;
  const vh = route.virtualHost;
  // Route header mutations (weighted cluster first, then route, virtual host, route configuration).
  const reqMutations = ex.weighted?.requestHeaders ? [ex.weighted.requestHeaders, ...route.requestHeaders] : route.requestHeaders;
  if (reqMutations.length > 0) applyHeaderMutations(h, reqMutations, ex);
  rewritePath(ex, route, action.prefixRewrite, action.regexRewrite, true);
  let authority = view.authority;
  if (ex.weighted?.hostRewrite) authority = ex.weighted.hostRewrite;
  else if (action.hostRewriteLiteral) authority = action.hostRewriteLiteral;
  else if (action.hostRewriteHeader) authority = view.header(action.hostRewriteHeader) || authority;
  else if (action.hostRewritePathRegex) {
    const rx = action.hostRewritePathRegex;
    authority = rx.re.globalReplace(view.pathOnly, rx.substitution) || authority;
  }

  const globalMs = timeoutFor(ex, action);
  const retry = action.retry;
  let perTryMs = retry?.perTryTimeoutMs;
  if (perTryMs !== undefined && globalMs > 0 && perTryMs >= globalMs) perTryMs = undefined;
  const expected = perTryMs ?? globalMs;
  if (expected > 0 && !ex.settings.suppressEnvoyHeaders) h['x-envoy-expected-rq-timeout-ms'] = String(expected);

  // Consistent-hash key (a generated cookie is set on the response).
  let key: string | undefined;
  if (action.hash) {
    key = hashKey(
      action.hash,
      { view, sourceAddress: ex.ctx.sourceAddress, connectionKey: `${ex.ctx.sourceAddress}:${ex.ctx.sourcePort ?? ''}|${ex.ctx.localAddress ?? ''}:${ex.ctx.localPort ?? ''}` },
      (c: CookieToSet, value: string) => {
        if (!ex.setCookies) ex.setCookies = [];
        ex.setCookies.push(setCookieValue(c, value));
      },
    );
  }

  // The body: buffered when it ends within the limit; gRPC (and longer bodies) stream.
  let bodyBuffer: Buffer | undefined;
  let streaming = false;
  if (hasRequestBody(ex)) {
    const body = new RequestBody(ex.req, ex.settings.bufferLimitBytes);
    ex.body = body;
    if (ex.grpc) streaming = true;
    else {
      await body.settled();
      if (ex.gone) return;
      if (body.error) {
        ex.onDownstreamGone();
        return;
      }
      bodyBuffer = body.buffer();
      streaming = bodyBuffer === undefined;
    }
  } else if (!ex.req.bodyless) ex.req.resume();
  if (streaming && h['content-length'] === undefined) delete h['content-length'];
  if (bodyBuffer && h['content-length'] === undefined) h['content-length'] = String(bodyBuffer.length);

  const startGlobal = () => {
    if (globalMs > 0 && !ex.gone && !ex.globalTimer && !ex.record.responseCode) {
      ex.globalTimer = setTimeout(() => onGlobalTimeout(ex), globalMs);
    }
  };
  if (ex.body && !ex.body.ended) ex.body.onEnded(startGlobal);
  else startGlobal();

  const upstreamReq: UpstreamRequest = { method: view.method, path: view.path, authority, headers: h };
  ex.upstreamReq = upstreamReq;
  if (bodyBuffer) upstreamReq.body = bodyBuffer;

  // Mirrors: fire and forget, with the first attempt's request.
  if (action.mirrors.length > 0 && (!streaming || ex.body?.replayable)) mirror(ex, action, upstreamReq, globalMs);

  const exclude = retry?.previousHosts ? new Set<string>() : undefined;
  let attempt = 0;
  // The retry circuit breaker's slot held by the current retry attempt (given back when it ends).
  let releaseRetry: (() => void) | undefined;
  /** True when a retry may go ahead: retries left, the body replayable, and the cluster's retry budget (else UO). */
  const mayRetry = (): boolean => {
    if (retry === undefined || attempt > retry.numRetries || (streaming && !ex.body!.replayable)) return false;
    if (!cluster.acquireRetry) return true;
    const release = cluster.acquireRetry();
    if (!release) {
      ex.flags.add('UO');
      return false;
    }
    releaseRetry = release;
    return true;
  };
  try {
    for (;;) {
      attempt++;
      ex.record.attempts = attempt;
      if (vh.includeRequestAttemptCount) h['x-envoy-attempt-count'] = String(attempt);
      if (streaming) {
        // The previous attempt's reader must not hold the downstream back any more.
        upstreamReq.bodyStream?.destroy();
        const reader = ex.body!.reader();
        if (!reader) {
          // Only reachable on a retry after the body outgrew the buffer: nothing left to replay.
          fail(ex, 'reset', 'UC', attempt > 1);
          return;
        }
        upstreamReq.bodyStream = reader;
      }
      const outcome = await attemptOnce(ex, cluster, upstreamReq, key, exclude, perTryMs, action);
      if (outcome.kind === 'gone') return;
      if (outcome.kind === 'failure') {
        releaseRetry?.();
        releaseRetry = undefined;
        if (outcome.endpoint) {
          ex.upstreamHost = outcome.endpoint;
          ex.record.upstreamHost = outcome.endpoint;
          exclude?.add(outcome.endpoint);
        }
        if (retry !== undefined && retriableReset(retry, outcome.reset)) {
          if (attempt > retry.numRetries) ex.flags.add('URX');
          else if (mayRetry()) {
            await ex.sleep(backoffMs(retry, attempt, ex.random));
            if (ex.gone || ex.globalTimedOut) return;
            continue;
          }
        }
        fail(ex, outcome.reset, outcome.flag, attempt > 1);
        return;
      }
      const resp = outcome.response;
      ex.upstreamHost = resp.endpoint;
      ex.record.upstreamHost = resp.endpoint;
      if (resp.peerPrincipal) ex.record.upstreamPeerPrincipal = resp.peerPrincipal;
      if (resp.localPrincipal) ex.record.upstreamLocalPrincipal = resp.localPrincipal;
      if (retry && retriableResponse(retry, resp.status, resp.headers)) {
        if (attempt > retry.numRetries) ex.flags.add('URX');
        else {
          const held = releaseRetry;
          releaseRetry = undefined;
          if (mayRetry()) {
            held?.();
            exclude?.add(resp.endpoint);
            resp.body.on('error', () => {});
            resp.body.destroy();
            await ex.sleep(backoffMs(retry, attempt, ex.random));
            if (ex.gone || ex.globalTimedOut) return;
            continue;
          }
          releaseRetry = held;
        }
      }
      // A retry's circuit-breaker slot is held until the body is over; otherwise nothing waits for it.
      if (releaseRetry) await new Promise<void>((resolve) => respond(ex, resp, outcome.startedAt, action, resolve));
      else respond(ex, resp, outcome.startedAt, action);
      return;
    }
  } finally {
    releaseRetry?.();
  }
}

/** One upstream attempt under the per-try timeout (and the route's max_stream_duration before headers). */
async function attemptOnce(
  ex: Exchange,
  cluster: UpstreamCluster,
  req: UpstreamRequest,
  hashKeyValue: string | undefined,
  exclude: Set<string> | undefined,
  perTryMs: number | undefined,
  action: CompiledRouteAction,
): Promise<AttemptOutcome> {
  const autoHostRewrite = action.autoHostRewrite;
  const msd = action.maxStreamDurationMs;
  // Without per-attempt timers the exchange itself is the cancellation (no allocation per attempt).
  const ac = perTryMs !== undefined || msd !== undefined ? new AbortController() : undefined;
  const onCancel: CancelListener | undefined = ac ? { handleEvent: () => ac.abort() } : undefined;
  if (onCancel) ex.addEventListener('abort', onCancel);
  let perTryFired = false;
  let msdFired = false;
  const timer =
    ac && perTryMs !== undefined
      ? setTimeout(() => {
          perTryFired = true;
          ac.abort();
        }, perTryMs)
      : undefined;
  const msdTimer =
    ac && msd !== undefined
      ? setTimeout(() => {
          msdFired = true;
          ac.abort();
        }, msd)
      : undefined;
  const startedAt = performance.now();
  if (ex.hooks) for (const h of ex.hooks) h.onUpstreamRequest?.(ex.filterCtx!, req.headers);
  try {
    // One options object, built field by field (spreads of conditional objects allocate per field).
    const opts: UpstreamOptions = { signal: ac ? ac.signal : ex, sourceAddress: ex.ctx.sourceAddress, downstreamProtocol: ex.h2 ? 'HTTP/2' : 'HTTP/1.1' };
    if (perTryMs !== undefined) opts.timeoutMs = perTryMs;
    if (hashKeyValue !== undefined) opts.hashKey = hashKeyValue;
    if (exclude && exclude.size > 0) opts.excludeEndpoints = new Set(exclude);
    if (ex.ctx.originalDestination) opts.originalDestination = ex.ctx.originalDestination;
    if (autoHostRewrite) opts.autoHostRewrite = autoHostRewrite;
    const response = await cluster.request(req, opts);
    if (ex.gone || ex.globalTimedOut || perTryFired || msdFired) {
      response.body.on('error', () => {});
      response.body.destroy();
      if (ex.gone || ex.globalTimedOut) return { kind: 'gone' };
      return { kind: 'failure', reset: msdFired ? 'max-stream-duration' : 'timeout', flag: 'UT', endpoint: response.endpoint };
    }
    return { kind: 'response', response, startedAt };
  } catch (err) {
    if (ex.gone || ex.globalTimedOut) return { kind: 'gone' };
    const endpoint = err instanceof UpstreamError ? err.endpoint : undefined;
    if (msdFired) return { kind: 'failure', reset: 'max-stream-duration', flag: 'UT', endpoint };
    if (perTryFired) return { kind: 'failure', reset: 'timeout', flag: 'UT', endpoint };
    if (err instanceof UpstreamError) {
      switch (err.flag) {
        case 'UT':
          return { kind: 'failure', reset: 'timeout', flag: 'UT', endpoint };
        case 'UF':
          return { kind: 'failure', reset: 'connect-failure', flag: 'UF', endpoint };
        case 'UO':
          return { kind: 'failure', reset: 'overflow', flag: 'UO', endpoint };
        case 'UH':
          return { kind: 'failure', reset: 'no-healthy-upstream', flag: 'UH', endpoint };
        default:
          return { kind: 'failure', reset: /refused/i.test(err.message) ? 'refused-stream' : 'reset', flag: err.flag === 'NR' ? 'UC' : err.flag, endpoint };
      }
    }
    return { kind: 'failure', reset: 'reset', flag: 'UC', endpoint };
  } finally {
    if (timer) clearTimeout(timer);
    if (msdTimer) clearTimeout(msdTimer);
    if (onCancel) ex.removeEventListener('abort', onCancel);
  }
}

/** The local reply for a failed upstream exchange, with Envoy's flags and body text. */
function fail(ex: Exchange, reset: ResetKind, flag: ResponseFlag, retried: boolean): void {
  ex.flags.add(flag);
  if (reset === 'timeout') {
    localReply(ex, 504, LocalReplyBody.timeout, { routeHeaders: true });
    return;
  }
  if (reset === 'max-stream-duration') {
    // Envoy: 504 once the whole request was received, 408 while it was still arriving.
    const complete = ex.body === undefined || ex.body.ended;
    localReply(ex, complete ? 504 : 408, LocalReplyBody.maxStreamDuration, { routeHeaders: true });
    return;
  }
  if (reset === 'no-healthy-upstream') {
    localReply(ex, 503, LocalReplyBody.noHealthyUpstream, { routeHeaders: true });
    return;
  }
  const text = `${LocalReplyBody.resetPrefix}${retried ? 'retried and the latest ' : ''}reset reason: ${resetReasons[reset]}`;
  localReply(ex, 503, text, { routeHeaders: true });
}

function onGlobalTimeout(ex: Exchange): void {
  ex.globalTimer = undefined;
  if (ex.gone || ex.res.writableFinished) return;
  ex.globalTimedOut = true;
  ex.flags.add('UT');
  ex.abort();
  if (ex.responseStarted) {
    // Headers already went out: all we can do is reset the stream.
    ex.upstreamBody?.destroy();
    ex.bodySink?.cancel();
    ex.res.destroy();
    return;
  }
  localReply(ex, 504, LocalReplyBody.timeout, { routeHeaders: true });
}

function timeoutFor(ex: Exchange, action: CompiledRouteAction): number {
  if (ex.grpc && action.grpcTimeoutMaxMs !== undefined) {
    let t = parseGrpcTimeout(ex.view.header('grpc-timeout')) ?? 0;
    if (action.grpcTimeoutOffsetMs > 0 && action.grpcTimeoutOffsetMs < t) t -= action.grpcTimeoutOffsetMs;
    if (action.grpcTimeoutMaxMs > 0 && (t === 0 || t > action.grpcTimeoutMaxMs)) t = action.grpcTimeoutMaxMs;
    return t;
  }
  return action.timeoutMs;
}

function hasRequestBody(ex: Exchange): boolean {
  const req = ex.req;
  if (ex.h2) return req.stream?.endAfterHeaders !== true;
  const cl = req.headers['content-length'];
  if (cl !== undefined) return cl !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

function mirror(ex: Exchange, action: CompiledRouteAction, req: UpstreamRequest, timeoutMs: number): void {
  for (const m of action.mirrors) {
    if (!sampled(m.fraction, ex.random)) continue;
    const name = m.cluster || ex.view.header(m.clusterHeader);
    const cluster = name ? ex.ctx.clusters.get(name) : undefined;
    if (!cluster) continue;
    const shadow: UpstreamRequest = {
      method: req.method,
      path: req.path,
      authority: m.appendShadowSuffix ? shadowAuthority(req.authority) : req.authority,
      headers: { ...req.headers },
    };
    if (req.body) shadow.body = req.body;
    else if (ex.body) {
      const reader = ex.body.reader(true);
      if (!reader) continue;
      shadow.bodyStream = reader;
    }
    cluster
      .request(shadow, {
        ...(timeoutMs > 0 ? { timeoutMs, signal: AbortSignal.timeout(timeoutMs) } : {}),
        sourceAddress: ex.ctx.sourceAddress,
        ...(ex.ctx.originalDestination ? { originalDestination: ex.ctx.originalDestination } : {}),
        downstreamProtocol: ex.h2 ? 'HTTP/2' : 'HTTP/1.1',
      })
      .then(
        (r) => {
          r.body.on('error', () => {});
          r.body.resume();
        },
        () => {},
      );
  }
}
