// Pilot's JWKS resolver (Istio's JwtKeyResolver, pilot/pkg/model/jwks_resolver.go): RequestAuthentication
// rules name a jwksUri; pilot fetches it, keeps the last good JWKS and inlines it into the proxies'
// jwt_authn config, so proxies never reach the key server themselves. A URI is fetched the first
// time a push context asks for it, then refreshed every `refreshIntervalMs` (Istio's
// PILOT_JWT_PUB_KEY_REFRESH_INTERVAL, 20 minutes); whenever the keys it serves change (first fetch,
// rotation) `onChange` asks for a push. A failed refresh keeps the last good keys.
//
// Bounded for a hostile or broken key server: one fetch per URI at a time, each under the rule's
// timeout (5 s by default), a body of at most `maxBytes` (1 MiB), at most `maxUris` URIs tracked.
// A jwksUri without keys yet is answered undefined (translation then inlines a fake JWKS: the
// issuer's tokens get 401 until the keys arrive).
import type { Logger } from '@weft/model';
import type { JwksSource } from '../core/types.ts';

export interface JwksResolverOptions {
  /** How often every known URI is fetched again (default 20 minutes). */
  refreshIntervalMs?: number;
  /** Largest JWKS (or OpenID discovery document) accepted, in bytes (default 1 MiB). */
  maxBytes?: number;
  /** URIs tracked at most (default 1,000); beyond it, new URIs get no keys. */
  maxUris?: number;
  /** The keys served for `uri` changed: the caller pushes. */
  onChange?: (uri: string) => void;
  logger?: Logger;
}

interface Entry {
  keys: string | undefined;
  timeoutMs: number;
  inflight: Promise<void> | undefined;
  lastError: string | undefined;
  fetchedAt: number | undefined;
}

export const defaultJwksRefreshIntervalMs = 20 * 60_000;
const defaultMaxBytes = 1 << 20;
const defaultMaxUris = 1000;
const discoverySuffix = '/.well-known/openid-configuration';

/** What the resolver knows about one URI (weftd's debug output, tests). */
export interface JwksStatus {
  uri: string;
  hasKeys: boolean;
  fetchedAt?: string;
  lastError?: string;
}

export class JwksResolver implements JwksSource {
  readonly #entries = new Map<string, Entry>();
  readonly #opts: Required<Omit<JwksResolverOptions, 'logger' | 'onChange'>> & Pick<JwksResolverOptions, 'logger' | 'onChange'>;
  readonly #timer: NodeJS.Timeout;
  readonly #abort = new AbortController();

  constructor(options: JwksResolverOptions = {}) {
    this.#opts = {
      refreshIntervalMs: options.refreshIntervalMs ?? defaultJwksRefreshIntervalMs,
      maxBytes: options.maxBytes ?? defaultMaxBytes,
      maxUris: options.maxUris ?? defaultMaxUris,
      onChange: options.onChange,
      logger: options.logger,
    };
    this.#timer = setInterval(() => this.refresh(), this.#opts.refreshIntervalMs);
    this.#timer.unref();
  }

  get(uri: string, timeoutMs: number): string | undefined {
    let e = this.#entries.get(uri);
    if (!e) {
      if (this.#entries.size >= this.#opts.maxUris) return undefined;
      e = { keys: undefined, timeoutMs, inflight: undefined, lastError: undefined, fetchedAt: undefined };
      this.#entries.set(uri, e);
      this.#fetch(uri, e);
    }
    return e.keys;
  }

  /** Fetches every known URI again now (the timer does this every refresh interval). Resolves when all are done. */
  async refresh(): Promise<void> {
    await Promise.all([...this.#entries].map(([uri, e]) => this.#fetch(uri, e)));
  }

  /** Resolves once no fetch is in flight. */
  async idle(): Promise<void> {
    await Promise.all([...this.#entries.values()].map((e) => e.inflight));
  }

  status(): JwksStatus[] {
    return [...this.#entries].map(([uri, e]) => ({
      uri,
      hasKeys: e.keys !== undefined,
      ...(e.fetchedAt !== undefined ? { fetchedAt: new Date(e.fetchedAt).toISOString() } : {}),
      ...(e.lastError !== undefined ? { lastError: e.lastError } : {}),
    }));
  }

  close(): void {
    clearInterval(this.#timer);
    this.#abort.abort();
  }

  #fetch(uri: string, e: Entry): Promise<void> {
    e.inflight ??= this.#load(uri, e.timeoutMs)
      .then(
        (keys) => {
          e.fetchedAt = Date.now();
          e.lastError = undefined;
          if (keys === e.keys) return;
          e.keys = keys;
          this.#opts.logger?.info('jwks updated', { uri });
          this.#opts.onChange?.(uri);
        },
        (err: unknown) => {
          if (this.#abort.signal.aborted) return;
          e.lastError = (err as Error).message;
          this.#opts.logger?.warn('jwks fetch failed', { uri, error: e.lastError, keptLastKeys: e.keys !== undefined });
        },
      )
      .finally(() => {
        e.inflight = undefined;
      });
    return e.inflight;
  }

  /** The JWKS behind `uri`, normalized (so a change of whitespace is no change); an OpenID discovery URI leads to its jwks_uri. */
  async #load(uri: string, timeoutMs: number): Promise<string> {
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(timeoutMs)]);
    let target = uri;
    if (uri.endsWith(discoverySuffix)) {
      const doc = await this.#json(uri, signal);
      const jwksUri = (doc as { jwks_uri?: unknown }).jwks_uri;
      if (typeof jwksUri !== 'string' || jwksUri === '') throw new Error(`${uri}: the OpenID configuration has no jwks_uri`);
      target = jwksUri;
    }
    const jwks = await this.#json(target, signal);
    const keys = (jwks as { keys?: unknown }).keys;
    if (!Array.isArray(keys)) throw new Error(`${target}: not a JWKS (no "keys" list)`);
    return JSON.stringify(jwks);
  }

  async #json(uri: string, signal: AbortSignal): Promise<object> {
    const url = new URL(uri);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${uri}: only http and https are fetched`);
    const res = await fetch(url, { signal, headers: { accept: 'application/json' } });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`${uri}: HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? Number.NaN);
    if (declared > this.#opts.maxBytes) {
      await res.body?.cancel();
      throw new Error(`${uri}: ${declared} bytes, more than the ${this.#opts.maxBytes} accepted`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of res.body ?? []) {
      size += chunk.byteLength;
      if (size > this.#opts.maxBytes) throw new Error(`${uri}: more than the ${this.#opts.maxBytes} bytes accepted`);
      chunks.push(chunk);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      throw new Error(`${uri}: not JSON (${(err as Error).message})`);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${uri}: not a JSON object`);
    return doc;
  }
}
