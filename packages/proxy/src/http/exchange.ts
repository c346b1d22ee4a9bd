// One HTTP request's state as it moves through the pipeline (router.ts runs the stages in order).
// The stages are functions of this one object, so a request costs the same few allocations
// whatever the number of stages: the exchange, its RequestView, its header record and, only when
// used, the body buffer, the filters' hooks and the response sink.
import type { Readable } from 'node:stream';
import type { DownstreamConnection, HttpFilter, HttpFilterContext, HttpStreamHooks } from '../core/filters.ts';
import type { Random } from '../core/route-action.ts';
import type { CancelListener, Cancellation, ClusterManager, RequestRecord, ResponseFlag, UpstreamRequest } from '../core/types.ts';
import type { RequestBody } from './body.ts';
import type { ReqLike, ResLike } from './codec.ts';
import type { CompiledRoute, CompiledRoutes, CompiledWeightedCluster } from './compile.ts';
import type { CompiledCors } from './filters.ts';
import { defaultHcmSettings, type HcmSettings } from './hcm.ts';
import type { FormatContext, HeaderRecord } from './headers.ts';
import type { DownstreamSink } from './response.ts';
import type { RequestView } from './view.ts';

/** Everything one request needs; built by the listener's connection manager per request. */
export interface HttpRequestContext {
  /** The compiled route configuration of the connection manager (per snapshot); undefined answers 404 NR. */
  readonly routes: CompiledRoutes | undefined;
  readonly clusters: ClusterManager;
  /** Filled in by the router; the caller creates it (direction, listener, startTime, addresses) and reads it when the returned promise settles. */
  readonly record: RequestRecord;
  /** Downstream peer IP (no port): `x-forwarded-for`, source-IP hashing. */
  readonly sourceAddress: string;
  readonly sourcePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
  /** The downstream connection is TLS (scheme `https`). */
  readonly tls?: boolean;
  /** From `httpConnectionManagerSettings(hcm)`; defaults to a sidecar's. */
  readonly settings?: HcmSettings;
  /** Random source in [0, 1) for weights, fractions and backoff (tests pin it). */
  readonly random?: Random;
  /** Where the connection was going (SO_ORIGINAL_DST): the endpoint of ORIGINAL_DST clusters (PassthroughCluster). */
  readonly originalDestination?: { address: string; port: number };
  /** The chain's filters beyond routing (authorization, telemetry); they need `connection`. */
  readonly filters?: readonly HttpFilter[];
  readonly connection?: DownstreamConnection;
}

/** The state of one request; fields are written by the stage named beside them. */
export class Exchange implements FormatContext, Cancellation {
  readonly req: ReqLike;
  readonly res: ResLike;
  readonly ctx: HttpRequestContext;
  readonly settings: HcmSettings;
  readonly record: RequestRecord;
  readonly random: Random;
  readonly h2: boolean;
  readonly flags: Set<ResponseFlag>;
  /** connection-manager.ts: the request as routes see it. */
  view!: RequestView;
  /** connection-manager.ts: request headers as they go upstream (also what routes match against). */
  headers: HeaderRecord = {};
  grpc = false;
  /** route-selection.ts: the route, and the weighted cluster it took. */
  route: CompiledRoute | undefined;
  weighted: CompiledWeightedCluster | undefined;
  /** filter-chain.ts: CORS headers to add to the response. */
  cors: CompiledCors | undefined;
  corsOrigin: string | undefined;
  /** upstream-attempt.ts: a generated hash cookie to set on the response. */
  setCookies: string[] | undefined;
  body: RequestBody | undefined;
  bytesSent = 0;
  /** Cancellation: the exchange is over for the router (the client left or a timeout fired); upstream attempts and waits listen. */
  aborted = false;
  #cancelListeners: CancelListener[] | undefined;
  gone = false;
  globalTimer: NodeJS.Timeout | undefined;
  globalTimedOut = false;
  responseStarted = false;
  upstreamBody: Readable | undefined;
  /** response.ts: the fast path's body consumer, while the body flows. */
  bodySink: DownstreamSink | undefined;
  upstreamReq: UpstreamRequest | undefined;
  finish!: () => void;
  readonly finished: Promise<void>;
  /** filter-chain.ts: per-request hooks of the chain's filters; undefined when none applies (the common fast path). */
  hooks: HttpStreamHooks[] | undefined;
  filterCtx: HttpFilterContext | undefined;
  upstreamHost: string | undefined;
  upstreamCluster: string | undefined;

  constructor(req: ReqLike, res: ResLike, ctx: HttpRequestContext) {
    this.req = req;
    this.res = res;
    this.ctx = ctx;
    this.settings = ctx.settings ?? defaultHcmSettings;
    this.record = ctx.record;
    this.flags = ctx.record.responseFlags;
    this.random = ctx.random ?? Math.random;
    this.h2 = req.httpVersionMajor === 2;
    this.finished = new Promise((resolve) => {
      this.finish = resolve;
    });
    res.on('finish', () => this.finish());
    res.on('close', () => {
      if (!res.writableFinished) this.onDownstreamGone();
      this.finish();
    });
  }

  // FormatContext (header values with %COMMAND%).
  get sourceAddress(): string {
    return this.ctx.sourceAddress;
  }
  get sourcePort(): number | undefined {
    return this.ctx.sourcePort;
  }
  get localAddress(): string | undefined {
    return this.ctx.localAddress;
  }
  get localPort(): number | undefined {
    return this.ctx.localPort;
  }
  get protocol(): string {
    return this.h2 ? 'HTTP/2' : 'HTTP/1.1';
  }
  requestHeader(name: string): string | undefined {
    return this.view.header(name);
  }

  /** The client went away: cancel whatever is in flight. */
  onDownstreamGone(): void {
    if (this.gone) return;
    this.gone = true;
    if (!this.globalTimedOut) this.flags.add('DC');
    if (!this.res.headersSent) this.record.responseCode = 0;
    this.abort();
    this.upstreamBody?.destroy();
    this.bodySink?.cancel();
    this.clearTimers();
  }

  addEventListener(_type: 'abort', listener: CancelListener): void {
    if (this.#cancelListeners) this.#cancelListeners.push(listener);
    else this.#cancelListeners = [listener];
  }

  removeEventListener(_type: 'abort', listener: CancelListener): void {
    const list = this.#cancelListeners;
    const i = list ? list.indexOf(listener) : -1;
    if (i >= 0) list!.splice(i, 1);
  }

  /** Cancels what listens (upstream attempts, back-off waits), once. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const list = this.#cancelListeners;
    this.#cancelListeners = undefined;
    if (list) for (const l of list) l.handleEvent();
  }

  clearTimers(): void {
    if (this.globalTimer) clearTimeout(this.globalTimer);
    this.globalTimer = undefined;
  }

  /** Waits `ms`, or less if the client leaves. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const listener: CancelListener = {
        handleEvent: () => {
          clearTimeout(t);
          this.removeEventListener('abort', listener);
          resolve();
        },
      };
      const t = setTimeout(() => listener.handleEvent(), ms);
      this.addEventListener('abort', listener);
    });
  }

  /** Reads and drops a request body we will not forward (keeps HTTP/1 keep-alive healthy). */
  drainRequest(): void {
    if (!this.body && !this.req.bodyless) this.req.resume();
  }
}
