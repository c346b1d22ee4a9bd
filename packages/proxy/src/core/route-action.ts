// Where a route sends traffic: Envoy's cluster_specifier (one cluster, the cluster a request
// header names, or clusters by weight), compiled once per snapshot and shared by the HTTP router
// (http/compile.ts adds its timeouts, retries and rewrites) and tcp_proxy (listener/chains.ts).
// The weighted pick here is the proxy's only one: the load balancers (cluster/lb.ts) use it too.
// As in grpc-js-xds's route actions, every kind answers the same question (which cluster); unlike
// there, randomness is always passed in, so a test with a fixed source gets exact picks.

/** A source of numbers in [0, 1), Math.random's contract. */
export type Random = () => number;

/**
 * A weighted choice among `items`: cumulative weights and a binary search, O(log n) and no
 * allocation per pick. Zero weights are never drawn (unless everything after the sum is).
 */
export class WeightedPick<T> {
  readonly items: readonly T[];
  /** The sum of the weights, or a declared total (Envoy's `total_weight`): a draw past the sum takes the last item. */
  readonly total: number;
  readonly #cumulative: Float64Array;
  /** All weights equal and no larger total: the index is `floor(r * n)`, no search. */
  readonly #equal: boolean;

  constructor(items: readonly T[], weights: readonly number[], total?: number) {
    this.items = items;
    this.#cumulative = new Float64Array(items.length);
    let sum = 0;
    let equal = true;
    for (let i = 0; i < items.length; i++) {
      const w = weights[i]!;
      sum += w;
      this.#cumulative[i] = sum;
      if (w !== weights[0]) equal = false;
    }
    this.total = total !== undefined && total > 0 ? total : sum;
    this.#equal = equal && this.total === sum;
  }

  /** The index that the draw `r` (in [0, 1)) selects: the first whose cumulative weight exceeds `r * total`. */
  index(r: number): number {
    const n = this.items.length;
    if (this.#equal) return Math.min(n - 1, Math.floor(r * n));
    const x = r * this.total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#cumulative[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** One item drawn with `random`; `items` must not be empty. */
  pick(random: Random): T {
    return this.items[this.index(random())]!;
  }
}

/** One entry of `weighted_clusters`. */
export interface WeightedCluster {
  readonly name: string;
  readonly weight: number;
  /** HTTP only: a request header whose value names the cluster instead of `name` (empty: none). */
  readonly clusterHeader: string;
}

/** How a route reads request headers (http/view.ts's RequestView); TCP has none. */
export interface HeaderSource {
  header(name: string): string | undefined;
}

/** The cluster-choosing part of a route, for HTTP routes and tcp_proxy alike. */
export interface RouteAction<W extends WeightedCluster = WeightedCluster> {
  readonly kind: 'cluster' | 'cluster_header' | 'weighted_clusters';
  /** `cluster`: its name. */
  readonly cluster: string;
  /** `cluster_header`: the request header naming the cluster (lower case). */
  readonly clusterHeader: string;
  /** `weighted_clusters`: the clusters by weight; undefined for the other kinds. */
  readonly weighted: WeightedPick<W> | undefined;
}

/** A route to one cluster. */
export function singleCluster<W extends WeightedCluster = WeightedCluster>(name: string): RouteAction<W> {
  return { kind: 'cluster', cluster: name, clusterHeader: '', weighted: undefined };
}

/** A route to the cluster a request header names (HTTP only). */
export function headerCluster<W extends WeightedCluster = WeightedCluster>(header: string): RouteAction<W> {
  return { kind: 'cluster_header', cluster: '', clusterHeader: header.toLowerCase(), weighted: undefined };
}

/** A route splitting by weight; the caller has checked that `clusters` is not empty and weighs something. */
export function weightedClusters<W extends WeightedCluster>(clusters: readonly W[], totalWeight?: number): RouteAction<W> {
  return {
    kind: 'weighted_clusters',
    cluster: '',
    clusterHeader: '',
    weighted: new WeightedPick(
      clusters,
      clusters.map((c) => c.weight),
      totalWeight,
    ),
  };
}

/** The weighted cluster this request (or connection) takes; undefined unless the action splits by weight. */
export function chooseWeighted<W extends WeightedCluster>(action: RouteAction<W>, random: Random): W | undefined {
  return action.weighted?.pick(random);
}

/**
 * The cluster's name: the chosen weighted cluster's (or the header it names), the header's value
 * for `cluster_header`, else the route's cluster. Undefined when a named header is absent or empty.
 */
export function clusterNameOf<W extends WeightedCluster>(action: RouteAction<W>, chosen: W | undefined, headers: HeaderSource | undefined): string | undefined {
  if (chosen) return chosen.clusterHeader ? headers?.header(chosen.clusterHeader) || undefined : chosen.name;
  if (action.kind === 'cluster_header') return headers?.header(action.clusterHeader) || undefined;
  return action.cluster;
}
