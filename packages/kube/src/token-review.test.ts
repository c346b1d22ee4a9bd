// The rules applied to a TokenReview's answer, and the cache in front of the API server (a fake
// review function stands in for it here; token-review.kube.test.ts asks a real one).
import { KubeConfig, type V1TokenReviewStatus } from '@kubernetes/client-node';
import { TokenError } from '@weft/citadel';
import { createLogger } from '@weft/model';
import { describe, expect, it } from 'vitest';
import { serviceAccountOfReview, TokenReviewAuthenticator } from './token-review.ts';

const reviews: V1TokenReviewStatus = {
  authenticated: true,
  audiences: ['istio-ca'],
  user: { username: 'system:serviceaccount:default:bookinfo-reviews', groups: ['system:serviceaccounts', 'system:serviceaccounts:default', 'system:authenticated'] },
};

describe('serviceAccountOfReview', () => {
  it('names the namespace and service account of system:serviceaccount:<ns>:<sa>', () => {
    expect(serviceAccountOfReview(reviews, ['istio-ca'])).toEqual({ namespace: 'default', serviceAccount: 'bookinfo-reviews' });
  });

  it.each([
    ['an error from the API server', { ...reviews, authenticated: false, error: '[invalid bearer token, service account token has expired]' }, /refused the token: \[invalid bearer token, service account token has expired\]/],
    ['not authenticated', { authenticated: false }, /did not authenticate/],
    ['no audience granted (a token only for the API server)', { ...reviews, audiences: [] }, /not valid for audience istio-ca \(the API server granted none\)/],
    ['another audience granted', { ...reviews, audiences: ['vault'] }, /not valid for audience istio-ca \(the API server granted vault\)/],
    ['a user that is not a service account', { ...reviews, user: { username: 'alice', groups: ['system:authenticated'] } }, /user alice is not a service account/],
    ['a malformed service-account name', { ...reviews, user: { ...reviews.user, username: 'system:serviceaccount:default' } }, /is not system:serviceaccount:<namespace>:<name>/],
  ] as const)('refuses %s with a TokenError saying why', (_what, status, message) => {
    expect(() => serviceAccountOfReview(status as V1TokenReviewStatus, ['istio-ca'])).toThrow(TokenError);
    expect(() => serviceAccountOfReview(status as V1TokenReviewStatus, ['istio-ca'])).toThrow(message);
  });
});

describe('TokenReviewAuthenticator cache', () => {
  const kubeConfig = new KubeConfig();
  const quiet = createLogger({ scope: 'kube', sink: () => {} });
  const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;

  function make(answers: (token: string) => V1TokenReviewStatus | Error, opts: { maxCacheEntries?: number; now?: () => number } = {}) {
    const asked: string[] = [];
    const auth = new TokenReviewAuthenticator({
      kubeConfig,
      logger: quiet,
      ...opts,
      review: async (token, audiences) => {
        asked.push(token);
        expect(audiences).toEqual(['istio-ca']);
        await new Promise((r) => setTimeout(r, 5));
        const a = answers(token);
        if (a instanceof Error) throw a;
        return a;
      },
    });
    return { auth, asked };
  }

  it('asks once for concurrent and repeated presentations of one token, and again after the TTL', async () => {
    let now = 1_000_000;
    const { auth, asked } = make(() => reviews, { now: () => now });
    const token = jwt({ exp: 10_000 });
    const all = await Promise.all([auth.authenticate(token), auth.authenticate(token), auth.authenticate(token)]);
    expect(all).toEqual([0, 1, 2].map(() => ({ namespace: 'default', serviceAccount: 'bookinfo-reviews' })));
    await auth.authenticate(token);
    expect(asked).toHaveLength(1);
    now += 30_001;
    await auth.authenticate(token);
    expect(asked).toHaveLength(2);
  });

  it('never reuses an answer past the token’s exp', async () => {
    let now = 1_000_000;
    const { auth, asked } = make(() => reviews, { now: () => now });
    const token = jwt({ exp: 1_002 }); // expires 2 s from "now"
    await auth.authenticate(token);
    now += 2_000;
    await auth.authenticate(token);
    expect(asked).toHaveLength(2);
  });

  it('remembers a refusal briefly; does not remember a failed call (the API server down)', async () => {
    let down = true;
    const { auth, asked } = make((t) => (t === 'bad' ? { authenticated: false, error: 'invalid bearer token' } : down ? new Error('connect ECONNREFUSED') : reviews));
    await expect(auth.authenticate('bad')).rejects.toThrow(TokenError);
    await expect(auth.authenticate('bad')).rejects.toThrow(/invalid bearer token/);
    expect(asked.filter((t) => t === 'bad')).toHaveLength(1);
    const failed = auth.authenticate('good');
    await expect(failed).rejects.toThrow(/TokenReview failed: connect ECONNREFUSED/);
    await expect(failed).rejects.not.toBeInstanceOf(TokenError);
    down = false;
    await expect(auth.authenticate('good')).resolves.toEqual({ namespace: 'default', serviceAccount: 'bookinfo-reviews' });
    expect(asked.filter((t) => t === 'good')).toHaveLength(2);
  });

  it('keeps at most maxCacheEntries answers, dropping the oldest', async () => {
    const { auth, asked } = make(() => reviews, { maxCacheEntries: 3 });
    for (const t of ['a', 'b', 'c', 'd']) await auth.authenticate(t);
    expect(auth.cacheSize).toBe(3);
    await auth.authenticate('d');
    await auth.authenticate('a');
    expect(asked).toEqual(['a', 'b', 'c', 'd', 'a']);
  });
});
