// The ADS server's facade: wires the stages together and answers for them. Changes go through the
// debouncer into the push queue (push-queue.ts), which builds a push context and pushes it to every
// connection; each stream (stream.ts) hands requests to state of the world (sotw.ts) or delta
// (delta.ts); both generate through generation.ts, send through respond.ts and write under flow
// control (flow.ts). It never builds config: generators do, from one immutable push context.
import { type ServerCredentials, Server as GrpcServer, ServerCredentials as GrpcServerCredentials } from '@grpc/grpc-js';
import { createLogger, type Logger } from '@weft/model';
import {
  type AggregatedDiscoveryServiceDefinition,
  type AggregatedDiscoveryServiceHandlers,
  adsServiceDefinition,
  conversionOptions,
  messageType,
  type Node__Output,
  type Status__Output,
} from '@weft/xds';
import type { PushContext } from '../core/types.ts';
import type { DiscoveryEvent, DiscoveryServerOptions, ProxySyncStatus, PushContextInput, PushStatus, TypeSyncStatus } from './api.ts';
import type { XdsAuthenticator } from './authentication.ts';
import { Connection } from './connection.ts';
import { FlowControl } from './flow.ts';
import { Generation } from './generation.ts';
import { PilotMetrics } from './metrics.ts';
import { Debouncer, defaultDebounce, monotonicMs, PushRequest, type TriggerReason } from './push-request.ts';
import { PushQueue } from './push-queue.ts';
import { Responder } from './respond.ts';
import { errorMessage, openStream, type StreamHost } from './stream.ts';
import { orderTypes } from './types.ts';
import { decodeDiscoveryRequest } from './wire.ts';

export type {
  CacheKeyFn,
  DiscoveryEvent,
  DiscoveryServerOptions,
  ProxyNeedsPush,
  ProxyParser,
  ProxySyncStatus,
  PushContextBuilder,
  PushContextInput,
  PushError,
  PushStatus,
  TypeSyncStatus,
} from './api.ts';

function iso(d: Date | undefined): string | undefined {
  return d?.toISOString();
}

/**
 * Serves ADS (state of the world and delta) from push contexts built by `buildPushContext`, and
 * pushes every debounced config or registry change to the connected proxies.
 *
 * Concurrency: everything runs on Node's event loop. A push walks the connections in batches and
 * yields between them; requests arriving meanwhile are answered from the newest push context.
 * Pushes never overlap: changes arriving during one are merged into the next.
 */
export class DiscoveryServer {
  readonly metrics: PilotMetrics;
  readonly #opts: DiscoveryServerOptions;
  readonly #log: Logger;
  readonly #debouncer: Debouncer;
  readonly #connections = new Map<string, Connection>();
  readonly #listeners = new Set<(event: DiscoveryEvent) => void>();
  readonly #generation: Generation;
  readonly #flow: FlowControl;
  readonly #responder: Responder;
  readonly #queue: PushQueue;
  readonly #streams: StreamHost;
  #connectionCounter = 0;
  #versionCounter = 0;
  #push: PushContext | undefined;
  #lastPush: PushStatus | undefined;
  #unsubscribe: (() => void)[] = [];
  #grpc: GrpcServer | undefined;

  constructor(options: DiscoveryServerOptions) {
    this.#opts = options;
    const log = options.logger ?? createLogger({ scope: 'pilot' });
    const metrics = options.metrics ?? new PilotMetrics();
    this.#log = log;
    this.metrics = metrics;
    this.#generation = new Generation(options.generators, options.cacheKey, log);
    this.#flow = new FlowControl(options.maxInflightBytes ?? 64 * 1024 * 1024);
    const emit = (event: DiscoveryEvent) => this.#emit(event);
    this.#responder = new Responder({ generation: this.#generation, flow: this.#flow, metrics, log, emit });
    const responder = this.#responder;
    const flow = this.#flow;
    this.#queue = new PushQueue({
      metrics,
      log,
      responder,
      flow,
      batchSize: options.pushBatchSize ?? 50,
      sliceMs: options.pushSliceMs ?? 50,
      needsPush: options.proxyNeedsPush,
      connections: () => this.connections,
      current: () => this.#push,
      advance: () => {
        const push = this.#build();
        this.#setPush(push);
        return push;
      },
      configRevision: () => options.store.revision,
      pushed: (status) => {
        this.#lastPush = status;
      },
      emit,
    });
    this.#streams = {
      metrics,
      log,
      responder,
      flow,
      proxyFromNode: options.proxyFromNode,
      push: () => this.#push,
      connect: (init) => this.#connect(init),
      close: (conn) => this.#close(conn),
    };
    this.#debouncer = new Debouncer({ ...defaultDebounce, ...options.debounce }, (req) => this.#queue.enqueue(req));
  }

  /** Builds the first push context and starts following the store and the registry. */
  start(): void {
    if (this.#push) return;
    const t0 = monotonicMs();
    const configRevision = this.#opts.store.revision;
    const push = this.#build();
    this.#setPush(push);
    const ms = monotonicMs() - t0;
    this.#lastPush = {
      version: push.version,
      configRevision,
      time: new Date().toISOString(),
      durationMs: ms,
      buildMs: ms,
      debounceMs: 0,
      full: true,
      types: 'all',
      edsHosts: [],
      configs: [],
      moreConfigs: 0,
      reasons: {},
      proxies: 0,
      proxiesPushed: 0,
      proxiesSkipped: 0,
      responses: 0,
      errors: [],
    };
    this.#unsubscribe.push(this.#opts.store.watch((event) => this.#debouncer.add(new PushRequest().addConfig(event.config, event.type === 'update' ? (event.previous ?? null) : undefined))));
    this.#unsubscribe.push(this.#opts.registry.onChange((change) => this.#debouncer.add(new PushRequest().addRegistryChange(change))));
    this.#log.info('push context ready', { version: push.version, services: push.services.length, buildMs: Math.round(ms) });
  }

  /** Stops following changes, ends every stream and the gRPC server (if `listen` started one). */
  async stop(): Promise<void> {
    this.#queue.stop();
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    this.#debouncer.stop();
    await this.#queue.idle();
    this.#flow.stop();
    const server = this.#grpc;
    this.#grpc = undefined;
    // ADS streams never end on their own, so a graceful shutdown would only wait: end them now.
    server?.forceShutdown();
    for (const c of [...this.#connections.values()]) this.#close(c);
  }

  /**
   * @weft/xds's ADS definition, with response serializers that pass through the bytes the server
   * encodes itself. Use it with `handlers()`: `server.addService(d.serviceDefinition(), d.handlers())`.
   */
  serviceDefinition(): AggregatedDiscoveryServiceDefinition {
    const base = adsServiceDefinition();
    const sotw = base.StreamAggregatedResources;
    const nested = {
      node: (b: Buffer) => messageType('envoy.config.core.v3.Node').toObject(messageType('envoy.config.core.v3.Node').decode(b), conversionOptions) as Node__Output,
      status: (b: Buffer) => messageType('google.rpc.Status').toObject(messageType('google.rpc.Status').decode(b), conversionOptions) as Status__Output,
    };
    return {
      ...base,
      StreamAggregatedResources: {
        ...sotw,
        requestDeserialize: (b: Buffer) => {
          try {
            return decodeDiscoveryRequest(b, nested);
          } catch {
            return sotw.requestDeserialize(b);
          }
        },
        responseSerialize: passThrough(sotw.responseSerialize),
      },
      DeltaAggregatedResources: { ...base.DeltaAggregatedResources, responseSerialize: passThrough(base.DeltaAggregatedResources.responseSerialize) },
    };
  }

  /**
   * The ADS handlers; they write encoded responses, so register them with `serviceDefinition()`.
   * With `authenticate` (the TLS port), every stream must prove an identity and its node must
   * belong to it; without (the plaintext port), streams are served unauthenticated.
   */
  handlers(options: { authenticate?: XdsAuthenticator } = {}): AggregatedDiscoveryServiceHandlers {
    const { authenticate } = options;
    return {
      StreamAggregatedResources: (call) => openStream(this.#streams, call, 'sotw', authenticate),
      DeltaAggregatedResources: (call) => openStream(this.#streams, call, 'delta', authenticate),
    };
  }

  /** Starts a gRPC server with ADS on `host:port` (port 0 picks a free port); resolves to the bound port. */
  async listen(options: { host?: string; port?: number; credentials?: ServerCredentials; authenticate?: XdsAuthenticator } = {}): Promise<number> {
    if (!this.#push) this.start();
    const server = new GrpcServer({
      // Envoy keeps one ADS stream open for its lifetime; keepalives find dead peers.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
    });
    server.addService(this.serviceDefinition(), this.handlers(options.authenticate ? { authenticate: options.authenticate } : {}));
    const host = options.host ?? '127.0.0.1';
    const target = host.includes(':') ? `[${host}]:${options.port ?? 15010}` : `${host}:${options.port ?? 15010}`;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(target, options.credentials ?? GrpcServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    this.#grpc = server;
    return port;
  }

  /** The push context in force (undefined before `start`). */
  get pushContext(): PushContext | undefined {
    return this.#push;
  }

  get lastPush(): PushStatus | undefined {
    return this.#lastPush;
  }

  get connections(): readonly Connection[] {
    return [...this.#connections.values()];
  }

  /** Listens to connections, ACKs, NACKs and pushes (tests, benchmarks, debug). Returns an unsubscribe function. */
  onEvent(listener: (event: DiscoveryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Queues a push of everything to every proxy (the debug "push all"), through the debouncer. */
  pushAll(reason: TriggerReason = 'debug'): void {
    this.#debouncer.add(PushRequest.all(reason));
  }

  /** Pushes what the debouncer holds now and resolves when every queued push has finished. */
  async flush(): Promise<void> {
    this.#debouncer.flush();
    await this.#queue.idle();
  }

  syncStatus(): ProxySyncStatus[] {
    return this.connections.map((c) => {
      const types: Record<string, TypeSyncStatus> = {};
      for (const type of orderTypes(c.watched.keys())) {
        const w = c.watched.get(type)!;
        const state: TypeSyncStatus['status'] =
          w.nonceSent === '' ? 'NOT_SENT' : w.nonceAcked === w.nonceSent ? 'ACKED' : w.nonceNacked === w.nonceSent ? 'NACKED' : 'SENT';
        const t: TypeSyncStatus = {
          status: state,
          sent: w.versionSent,
          acked: w.versionAcked,
          nacked: w.versionNacked,
          nackReason: w.nackReason,
          sentNonce: w.nonceSent,
          resources: w.resourcesSent,
          subscribed: w.wildcard ? '*' : [...w.names].sort(),
        };
        const sent = iso(w.sentAt);
        if (sent) t.lastSent = sent;
        const acked = iso(w.ackedAt);
        if (acked) t.lastAcked = acked;
        const nacked = iso(w.nackedAt);
        if (nacked) t.lastNacked = nacked;
        types[type] = t;
      }
      const s: ProxySyncStatus = {
        id: c.proxy.id,
        connectionId: c.id,
        mode: c.mode,
        generator: c.proxy.generator,
        peer: c.peer,
        connectedAt: c.connectedAt.toISOString(),
        authenticated: c.identity !== undefined,
        ...(c.identity !== undefined ? { identity: c.identity } : {}),
        ...(c.authn !== undefined ? { authn: c.authn } : {}),
        pushVersion: c.pushVersion,
        types,
      };
      if (c.lastConvergenceMs !== undefined) s.convergenceMs = Math.round(c.lastConvergenceMs * 1000) / 1000;
      return s;
    });
  }

  #build(): PushContext {
    const version = String(++this.#versionCounter);
    const input: PushContextInput = { store: this.#opts.store, registry: this.#opts.registry, version };
    if (this.#opts.mesh) input.mesh = this.#opts.mesh;
    return this.#opts.buildPushContext(input);
  }

  #setPush(push: PushContext): void {
    this.#push = push;
    this.#generation.reset();
    const n = Number(push.version);
    if (Number.isFinite(n)) this.metrics.pushVersion.set(n);
  }

  #connect(init: Parameters<StreamHost['connect']>[0]): Connection {
    const conn = new Connection({ id: `${init.proxy.id}-${++this.#connectionCounter}`, ...init });
    this.#connections.set(conn.id, conn);
    this.metrics.connected.inc();
    this.#log.info('xDS stream connected', {
      proxy: init.proxy.id,
      connection: conn.id,
      mode: init.mode,
      generator: init.proxy.generator,
      peer: conn.peer,
      ...(init.identity !== undefined ? { identity: init.identity, authn: init.authn } : { authenticated: false }),
    });
    this.#emit({ type: 'connect', connection: conn });
    return conn;
  }

  #close(conn: Connection): void {
    if (!this.#connections.delete(conn.id)) return;
    conn.closed = true;
    this.#flow.release(conn);
    this.metrics.connected.dec();
    this.#log.info('xDS stream closed', { proxy: conn.proxy.id, connection: conn.id });
    this.#emit({ type: 'disconnect', connection: conn });
  }

  #emit(event: DiscoveryEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (err) {
        this.#log.error('discovery event listener failed', { error: errorMessage(err) });
      }
    }
  }
}

/** A response serializer that leaves already-encoded responses as they are. */
function passThrough<T>(serialize: (value: T) => Buffer): (value: T | Buffer) => Buffer {
  return (value) => (Buffer.isBuffer(value) ? value : serialize(value));
}
