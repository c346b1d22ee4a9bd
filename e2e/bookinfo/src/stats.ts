// How many page loads a traffic split needs, and what counts it may show, so that a correct mesh
// fails a run with probability below 1e-4.
//
// Model: each page load makes one call from productpage to reviews, and the client sidecar picks
// the weighted destination for it independently with the configured probability p (Envoy draws a
// random number per request for weighted clusters). Over n loads the number X that went to the
// subset is Binomial(n, p). We accept X in [lo, hi] where lo is the largest k with
// P(X < k) <= alpha/2 and hi the smallest k with P(X > k) <= alpha/2, computed exactly from the
// binomial probabilities below (no normal approximation). A correct mesh then fails with probability
// P(X < lo) + P(X > hi) <= alpha; with alpha = 1e-4 that is at most one false failure in 10 000 runs.
// A mesh that routes deterministically (exact proportions) passes too: n*p is inside the interval.
//
// n = 200: for p = 0.1 (90/10) the interval is [6, 38] (mean 20, sd 4.2; exact probability outside
// 7.8e-5): it rejects "never" (0), "no split" (v1 only) and 50/50 (~100). For p = 0.5 (50/50) it is
// [73, 127] (sd 7.1; outside 9.1e-5): it rejects 90/10 (~20 or ~180) and 80/20 (~40 or ~160).
// (For 80/20, p = 0.2: [20, 63].) The test computes the interval with `binomialInterval`.
//
// Round robin over v1, v2 and v3 ("each version shows up"): if the choice were uniformly random
// rather than round robin, the chance that one of three versions never shows in n loads is at most
// 3 * (2/3)^n by the union bound; n = 30 gives 1.6e-5 < 1e-4.

/** log(n!) by summation (n is at most a few thousand here). */
function logFactorial(n: number): number {
  let s = 0;
  for (let i = 2; i <= n; i++) s += Math.log(i);
  return s;
}

/** P(X = k) for X ~ Binomial(n, p), 0 < p < 1. */
export function binomialPmf(n: number, p: number, k: number): number {
  if (k < 0 || k > n) return 0;
  const logC = logFactorial(n) - logFactorial(k) - logFactorial(n - k);
  return Math.exp(logC + k * Math.log(p) + (n - k) * Math.log(1 - p));
}

/**
 * The counts [lo, hi] a Binomial(n, p) variable falls in with probability at least 1 - alpha:
 * P(X < lo) <= alpha/2 and P(X > hi) <= alpha/2. Also returns the exact probability outside it.
 */
export function binomialInterval(n: number, p: number, alpha: number): { lo: number; hi: number; outside: number } {
  const pmf = Array.from({ length: n + 1 }, (_, k) => binomialPmf(n, p, k));
  let lo = 0;
  let below = 0;
  while (lo < n && below + pmf[lo]! <= alpha / 2) below += pmf[lo++]!;
  let hi = n;
  let above = 0;
  while (hi > 0 && above + pmf[hi]! <= alpha / 2) above += pmf[hi--]!;
  return { lo, hi, outside: below + above };
}

/** The chance that one of `versions` equally likely versions never shows in n independent loads (union bound). */
export function missingVersionBound(versions: number, n: number): number {
  return versions * ((versions - 1) / versions) ** n;
}
