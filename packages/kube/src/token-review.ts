// Kubernetes service-account tokens as credentials on the control plane's TLS port, as istiod's
// KubeJWTAuthenticator: the API server's TokenReview checks a pod's projected token (signature,
// expiry, audience `istio-ca`, the service account and pod still existing) and names its account,
// `system:serviceaccount:<namespace>:<name>`. Citadel turns that into the SPIFFE ID it signs for.
// Answers are reused briefly, so a proxy's CSR and its xDS stream (one token, the same second) cost
// one review; the cache is bounded and never outlives the token.
import { createHash } from 'node:crypto';
import { AuthenticationV1Api, type KubeConfig, type V1TokenReviewStatus } from '@kubernetes/client-node';
import { type PlatformTokenAuthenticator, type ServiceAccountIdentity, TokenError, unverifiedClaims } from '@weft/citadel';
import { createLogger, type Logger } from '@weft/model';
import { describeError } from './informer.ts';

/** Istio's CA audience: the audience of the token the injector projects into each pod. */
export const istioCaAudience = 'istio-ca';

export interface TokenReviewOptions {
  kubeConfig: KubeConfig;
  /** Audiences a token must be valid for (one is enough); default [`istio-ca`]. */
  audiences?: readonly string[];
  /** How long an accepted token's review is reused; default 30 s, never past the token's `exp`. */
  cacheTtlMs?: number;
  /** How long a refused token's review is reused; default 5 s. */
  refusalCacheTtlMs?: number;
  /** At most this many reviews are kept (the oldest go first); default 10,000. */
  maxCacheEntries?: number;
  /** A review that takes longer fails (the caller is refused, nothing cached); default 5 s. */
  timeoutMs?: number;
  logger?: Logger;
  now?: () => number;
  /** Asks the API server; tests of the cache give their own. */
  review?: (token: string, audiences: readonly string[]) => Promise<V1TokenReviewStatus>;
}

type Answer = { account: ServiceAccountIdentity } | { refusal: string };

const serviceAccountGroup = 'system:serviceaccounts';

/**
 * What a TokenReview's status says about a token: its service account, or why it is refused
 * (TokenError). Pure, so each rule is tested on its own.
 */
export function serviceAccountOfReview(status: V1TokenReviewStatus | undefined, audiences: readonly string[]): ServiceAccountIdentity {
  if (!status) throw new TokenError('the API server returned no TokenReview status');
  if (status.error) throw new TokenError(`the API server refused the token: ${status.error}`);
  if (status.authenticated !== true) throw new TokenError('the API server did not authenticate the token');
  // An audience-aware API server answers with the audiences the token is valid for among those
  // asked; none means the token is only good for the API server itself (Kubernetes' TokenReview docs).
  const granted = status.audiences ?? [];
  if (!granted.some((a) => audiences.includes(a))) {
    throw new TokenError(`the token is not valid for audience ${audiences.join(' or ')} (the API server granted ${granted.length ? granted.join(', ') : 'none'})`);
  }
  const user = status.user ?? {};
  if (!(user.groups ?? []).includes(serviceAccountGroup)) throw new TokenError(`the token's user ${user.username ?? '(unnamed)'} is not a service account`);
  const parts = (user.username ?? '').split(':');
  if (parts.length !== 4 || parts[0] !== 'system' || parts[1] !== 'serviceaccount' || !parts[2] || !parts[3]) {
    throw new TokenError(`the token's user ${JSON.stringify(user.username ?? '')} is not system:serviceaccount:<namespace>:<name>`);
  }
  return { namespace: parts[2], serviceAccount: parts[3] };
}

/** Citadel's PlatformTokenAuthenticator for Kubernetes: one TokenReview per token, reused briefly. */
export class TokenReviewAuthenticator implements PlatformTokenAuthenticator {
  readonly via = 'kubernetes-token';
  readonly audiences: readonly string[];
  readonly #review: (token: string, audiences: readonly string[]) => Promise<V1TokenReviewStatus>;
  readonly #cache = new Map<string, { answer: Answer; until: number }>();
  readonly #pending = new Map<string, Promise<ServiceAccountIdentity>>();
  readonly #ttl: number;
  readonly #refusalTtl: number;
  readonly #max: number;
  readonly #timeout: number;
  readonly #now: () => number;
  readonly #log: Logger;
  /** Reviews asked of the API server (not answered from the cache). */
  reviews = 0;

  constructor(options: TokenReviewOptions) {
    this.audiences = options.audiences ?? [istioCaAudience];
    if (this.audiences.length === 0) throw new Error('TokenReviewAuthenticator needs at least one audience');
    this.#ttl = options.cacheTtlMs ?? 30_000;
    this.#refusalTtl = options.refusalCacheTtlMs ?? 5_000;
    this.#max = Math.max(1, options.maxCacheEntries ?? 10_000);
    this.#timeout = options.timeoutMs ?? 5_000;
    this.#now = options.now ?? Date.now;
    this.#log = options.logger ?? createLogger({ scope: 'kube' });
    if (options.review) this.#review = options.review;
    else {
      const api = options.kubeConfig.makeApiClient(AuthenticationV1Api);
      this.#review = async (token, audiences) => {
        const r = await api.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [...audiences] } } });
        return r.status ?? {};
      };
    }
  }

  /** Entries cached now (tests, debug). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  authenticate(token: string): Promise<ServiceAccountIdentity> {
    // Only a digest is kept: the cache must not become a store of live credentials.
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.#now();
    const hit = this.#cache.get(key);
    if (hit && hit.until > now) {
      return 'account' in hit.answer ? Promise.resolve(hit.answer.account) : Promise.reject(new TokenError(hit.answer.refusal));
    }
    if (hit) this.#cache.delete(key);
    const pending = this.#pending.get(key);
    if (pending) return pending;
    const p = this.#ask(token, key).finally(() => this.#pending.delete(key));
    this.#pending.set(key, p);
    return p;
  }

  async #ask(token: string, key: string): Promise<ServiceAccountIdentity> {
    this.reviews++;
    let status: V1TokenReviewStatus;
    let timer: NodeJS.Timeout | undefined;
    try {
      status = await Promise.race([
        this.#review(token, this.audiences),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.#timeout} ms`)), this.#timeout);
        }),
      ]);
    } catch (err) {
      // Not the token's fault (API server down, weftd not allowed to create tokenreviews): nothing cached.
      const reason = `TokenReview failed: ${describeError(err)}`;
      this.#log.warn('cannot review a service-account token', { error: reason });
      throw new Error(reason, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    try {
      const account = serviceAccountOfReview(status, this.audiences);
      const exp = unverifiedClaims(token)?.exp;
      // The API server already refused an expired token; exp only keeps the cache from outliving it.
      const until = Math.min(this.#now() + this.#ttl, typeof exp === 'number' ? exp * 1000 : Number.POSITIVE_INFINITY);
      this.#remember(key, { account }, until);
      return account;
    } catch (err) {
      if (err instanceof TokenError) this.#remember(key, { refusal: err.message }, this.#now() + this.#refusalTtl);
      throw err;
    }
  }

  #remember(key: string, answer: Answer, until: number): void {
    if (until <= this.#now()) return;
    this.#cache.delete(key);
    while (this.#cache.size >= this.#max) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
    this.#cache.set(key, { answer, until });
  }
}
