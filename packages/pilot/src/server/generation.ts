// Generating and encoding one type for one proxy: the generator set by the proxy's kind, the
// output encoded once (each resource with a version, the hash of its bytes) and shared between
// proxies with equal cache keys within one push context. Both protocols send from a Generated set.
import { hash } from 'node:crypto';
import type { Logger } from '@weft/model';
import { type Any__Output, encodeAny, type RouteConfiguration, TypeUrl, type VirtualHost } from '@weft/xds';
import type { Proxy as MeshProxy, PushContext, XdsResource } from '../core/types.ts';
import type { CacheKeyFn } from './api.ts';
import type { Generators } from './types.ts';
import { deltaResourceField, routeConfigurationSteps, sotwResourceField, virtualHostBytes } from './wire.ts';

export interface EncodedResource {
  name: string;
  /** Hash of the encoded bytes: equal bytes, equal version. */
  version: string;
  any: Any__Output;
  /** The resource as a DiscoveryResponse / DeltaDiscoveryResponse field, encoded on first use. */
  sotwField?: Buffer;
  deltaField?: Buffer;
}

/** An encoded response sent as it is to every proxy it fits, with its nonce, at one push version. */
export interface SharedMessage {
  version: string;
  nonce: string;
  bytes: Buffer;
}

export interface Generated {
  /** Distinguishes generated sets within a process (part of shared nonces). */
  id: number;
  resources: EncodedResource[];
  byName: Map<string, EncodedResource>;
  /**
   * The whole set as one encoded DiscoveryResponse, built on first use and sent as it is to every
   * proxy that gets the whole set. Its nonce is shared too: a nonce only has to tell a stream's
   * responses of one type apart, and equal bytes at one version are the same response.
   */
  sotwMessage?: SharedMessage;
}

/** Encoding a generated set, in steps: the caller may yield to the event loop between them. */
export type EncodeSteps = Generator<void, Generated | Error, void>;

export function isSteps(g: Generated | Error | undefined | EncodeSteps): g is EncodeSteps {
  return g !== undefined && !(g instanceof Error) && typeof (g as EncodeSteps).next === 'function';
}

let generatedCounter = 0;

export function sotwField(r: EncodedResource): Buffer {
  r.sotwField ??= sotwResourceField(r.any);
  return r.sotwField;
}

export function deltaField(r: EncodedResource): Buffer {
  r.deltaField ??= deltaResourceField(r.name, r.version, r.any);
  return r.deltaField;
}

// Resource names arrive as fresh strings in every request (EDS: one per cluster, from every
// proxy); sharing one copy keeps a thousand proxies' subscriptions from holding a thousand copies.
const internTable = new Map<string, string>();
const maxInterned = 500_000;

export function intern(name: string): string {
  const seen = internTable.get(name);
  if (seen !== undefined) return seen;
  if (internTable.size < maxInterned) internTable.set(name, name);
  return name;
}

function resourceVersion(bytes: Buffer): string {
  return hash('sha1', bytes, 'base64url').slice(0, 16);
}

/** Encodes generated resources; a step generator that pauses within big route configurations (wire.ts). */
function* encodeResources(typeUrl: string, out: readonly XdsResource[]): Generator<void, Generated, void> {
  const resources: EncodedResource[] = [];
  const byName = new Map<string, EncodedResource>();
  let n = 0;
  for (const r of out) {
    let any: Any__Output;
    if (typeUrl === TypeUrl.RouteConfiguration) any = { type_url: typeUrl, value: yield* routeConfigurationSteps(r.resource as RouteConfiguration) };
    else if (typeUrl === TypeUrl.VirtualHost) {
      // Per-host routes (VHDS): encoded once per route list, as inside route configurations.
      any = { type_url: typeUrl, value: virtualHostBytes(r.resource as VirtualHost) };
      if (++n % 64 === 0) yield;
    } else any = encodeAny(typeUrl, r.resource as Record<string, unknown>);
    const e: EncodedResource = { name: intern(r.name), version: resourceVersion(any.value), any };
    if (byName.has(r.name)) throw new Error(`generator returned ${r.name} twice`);
    byName.set(r.name, e);
    resources.push(e);
  }
  return { id: ++generatedCounter, resources, byName };
}

const maxCacheEntries = 20_000;

/** The generators and the per-push-context cache of their encoded output. */
export class Generation {
  readonly #generators: Generators;
  readonly #cacheKey: CacheKeyFn | undefined;
  readonly #log: Logger;
  readonly #cache = new Map<string, Generated>();
  readonly #missing = new Set<string>();

  constructor(generators: Generators, cacheKey: CacheKeyFn | undefined, log: Logger) {
    this.#generators = generators;
    this.#cacheKey = cacheKey;
    this.#log = log;
  }

  /** A new push context: nothing generated for the last one is reused. */
  reset(): void {
    this.#cache.clear();
  }

  /** The generated set from the cache, or the generator's output with the steps that encode (and cache) it. */
  generate(proxy: MeshProxy, typeUrl: string, push: PushContext, names: readonly string[] | undefined): Generated | Error | undefined | EncodeSteps {
    const set = (proxy.generator === 'grpc' ? this.#generators.grpc : undefined) ?? this.#generators.envoy;
    const generator = set[typeUrl];
    if (!generator) {
      const key = `${proxy.generator} ${typeUrl}`;
      if (!this.#missing.has(key)) {
        this.#missing.add(key);
        this.#log.warn('no generator for requested type; not answering', { type: typeUrl, generator: proxy.generator, proxy: proxy.id });
      }
      return undefined;
    }
    const proxyKey = this.#cacheKey?.(typeUrl, proxy, push);
    const key = proxyKey === undefined ? undefined : `${proxy.generator}${proxy.vhds ? '+vhds' : ''}\u0000${typeUrl}\u0000${proxyKey}\u0000${names?.join('\u0001') ?? '*'}`;
    if (key !== undefined) {
      const hit = this.#cache.get(key);
      if (hit) return hit;
    }
    let out: XdsResource[];
    try {
      out = generator(push, proxy, names === undefined ? { typeUrl } : { typeUrl, names });
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
    const cache = this.#cache;
    return (function* (): EncodeSteps {
      try {
        const generated = yield* encodeResources(typeUrl, out);
        if (key !== undefined && cache.size < maxCacheEntries) cache.set(key, generated);
        return generated;
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    })();
  }
}
