// One home for "list and watch a collection of the API server": client-node's ListWatch (list,
// then watch from the list's resourceVersion, bookmarks, relist after 410 Gone), plus what it
// leaves to its caller: retrying with backoff while the API server is down (ListWatch stops at
// the first error), knowing when the first list has been delivered, and a periodic resync.
// Every Kubernetes part of weftd (config, services, root-cert ConfigMaps) watches through this.
import { type KubernetesListObject, type KubernetesObject, ListWatch, type Watch } from '@kubernetes/client-node';
import type { Logger } from '@weft/model';

/** What ListWatch needs of client-node's Watch: `new Watch(kubeConfig)`, or a test's fake transport (testing entry). */
export type WatchLike = Pick<Watch, 'watch'>;

export interface BackoffOptions {
  /** First retry after this long, doubling per failure (with ±20% jitter); default 500 ms. */
  initialMs?: number;
  /** At most this long between retries; default 30 s. */
  maxMs?: number;
}

export interface ResourceInformerOptions<T extends KubernetesObject> {
  /** For log lines: e.g. `virtualservices.networking.istio.io/v1`. */
  name: string;
  /** The collection's path, e.g. `/apis/networking.istio.io/v1/virtualservices` (all namespaces). */
  path: string;
  /** One list call of the collection (all items, with the list's resourceVersion). */
  list: () => Promise<KubernetesListObject<T>>;
  /** The watch transport: `new Watch(kubeConfig)`. */
  watch: WatchLike;
  logger: Logger;
  backoff?: BackoffOptions;
  /**
   * The server ends each watch after about this long (randomized up to twice, as client-go's
   * reflector does) and the watch resumes from the last resourceVersion: a connection the
   * network silently dropped is noticed at the latest then. Default 300 s.
   */
  watchTimeoutSeconds?: number;
}

export interface ResourceHandlers<T extends KubernetesObject> {
  add?: (obj: T) => void;
  update?: (obj: T) => void;
  delete?: (obj: T) => void;
  /** After every complete list (the first, and each relist) has been delivered as add/update/delete. */
  listed?: (items: readonly T[]) => void;
}

/**
 * A collection listed and watched for as long as it runs. Events reach the handlers in the order
 * the API server sent them. A failed list or watch is retried after a backoff (logged once per
 * outage, at warn, with the next retry's delay; recovery is logged at info); the watch resumes
 * from the last resourceVersion seen (a bookmark or an event), and relists when the server says
 * that version is gone (410).
 */
export class ResourceInformer<T extends KubernetesObject> {
  readonly name: string;
  readonly #opts: ResourceInformerOptions<T>;
  readonly #handlers: ResourceHandlers<T>;
  readonly #lw: ListWatch<T>;
  readonly #log: Logger;
  #running = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #listedOnce = false;
  readonly #synced = Promise.withResolvers<void>();

  constructor(opts: ResourceInformerOptions<T>, handlers: ResourceHandlers<T>) {
    this.name = opts.name;
    this.#opts = opts;
    this.#handlers = handlers;
    this.#log = opts.logger.with({ resource: opts.name });
    const list = async () => {
      const l = await opts.list();
      // A relist means the watch could not resume (410 Gone: its resourceVersion was compacted away).
      if (this.#listedOnce) this.#log.info('relisted', { objects: l.items.length, resourceVersion: l.metadata?.resourceVersion });
      // ListWatch delivers the items synchronously once this promise resolves; a macrotask later they all are.
      setImmediate(() => this.#afterList(l.items));
      return l;
    };
    const timeout = opts.watchTimeoutSeconds ?? 300;
    const sep = opts.path.includes('?') ? '&' : '?';
    // ListWatch passes only resourceVersion and selectors; the rest of the query rides on the path.
    const watchPath = `${opts.path}${sep}allowWatchBookmarks=true&timeoutSeconds=${Math.round(timeout * (1 + Math.random()))}`;
    // A watch that connected (the server answered 200) ends an outage even before any event comes.
    const watch: WatchLike = {
      watch: async (path, query, callback, done) => {
        let failed = false;
        const controller = await opts.watch.watch(path, query, callback, (err) => {
          if (err) failed = true;
          done(err);
        });
        if (!failed) this.#recovered();
        return controller;
      },
    };
    this.#lw = new ListWatch<T>(watchPath, watch as Watch, list, false);
    this.#lw.on('add', (o) => this.#event('add', o));
    this.#lw.on('update', (o) => this.#event('update', o));
    this.#lw.on('delete', (o) => this.#event('delete', o));
    this.#lw.on('error', (err) => this.#failed(err));
  }

  /** Resolves once the first list has been delivered to the handlers. */
  get synced(): Promise<void> {
    return this.#synced.promise;
  }

  get hasSynced(): boolean {
    return this.#listedOnce;
  }

  /** The objects as last seen (ListWatch's cache). */
  list(): readonly T[] {
    return this.#lw.list();
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    await this.#lw.stop();
  }

  #run(): void {
    this.#lw.start().catch((err: unknown) => this.#failed(err));
  }

  #event(kind: 'add' | 'update' | 'delete', obj: T): void {
    if (!this.#running) return;
    this.#recovered();
    this.#handlers[kind]?.(obj);
  }

  #afterList(items: readonly T[]): void {
    if (!this.#running) return;
    this.#recovered();
    this.#handlers.listed?.(items);
    if (!this.#listedOnce) {
      this.#listedOnce = true;
      this.#synced.resolve();
    }
  }

  #recovered(): void {
    if (this.#failures === 0 || !this.#running) return;
    this.#log.info('watching again', { after: `${this.#failures} failed attempt${this.#failures === 1 ? '' : 's'}` });
    this.#failures = 0;
  }

  #failed(err: unknown): void {
    // ListWatch reports the abort of its own request after stop(): not a failure.
    if (!this.#running || this.#retry) return;
    const initial = this.#opts.backoff?.initialMs ?? 500;
    const max = this.#opts.backoff?.maxMs ?? 30_000;
    const delay = Math.round(Math.min(max, initial * 2 ** Math.min(this.#failures, 30)) * (0.8 + Math.random() * 0.4));
    this.#failures++;
    const fields = { error: describeError(err), attempt: this.#failures, retryInMs: delay };
    if (this.#failures === 1) this.#log.warn('list/watch failed; retrying with backoff', fields);
    else this.#log.debug('list/watch failed again', fields);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#running) this.#run();
    }, delay);
  }
}

/** A short description of a client-node or fetch error, for log lines. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const e = err as Error & { statusCode?: number; code?: number | string; body?: unknown; cause?: unknown };
    const status = e.statusCode ?? (typeof e.code === 'number' ? e.code : undefined);
    const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
    const code = typeof e.code === 'string' ? ` (${e.code})` : '';
    return `${status ? `HTTP ${status}: ` : ''}${e.message}${code}${cause}`;
  }
  return typeof err === 'object' && err !== null ? JSON.stringify(err) : String(err);
}
