// Load balancers, built once per host-set or health change so a pick is O(1) or O(log n) without
// allocating: weighted round robin (earliest deadline first, as Envoy), random, least request
// (power of two choices), ring hash and Maglev.
import { type Random, WeightedPick } from '../core/route-action.ts';
import type { LbPolicy } from './config.ts';
import { hash32 } from './hash.ts';

export interface LbHost {
  readonly key: string;
  /** Requests in flight (least request reads it). */
  readonly active: number;
  /** Whether the host may take traffic now (healthy and not ejected, or everything in panic). */
  readonly usable: boolean;
}

export interface Picker<H extends LbHost> {
  /** `hash`: the request's consistent-hash key, hashed; `exclude`: endpoint keys to avoid when another exists. */
  pick(hash: number | undefined, exclude: ReadonlySet<string> | undefined): H | undefined;
  /**
   * The host the next `pick(hash, undefined)` would return, with `random` in place of the
   * picker's own source, changing nothing (no rotation advanced, no draw taken from the live
   * source): admin/why.ts. The same code as `pick`, split at the point where state would change.
   */
  peek(hash: number | undefined, random: Random): H | undefined;
}


/**
 * A weighted random host that is not excluded; undefined when every host is. The fallback of a
 * retry excluding previous hosts: the set changes per request, so it sums as it goes instead of
 * using a precomputed WeightedPick (core/route-action.ts), which every other pick here uses.
 */
function pickExcluding<H extends LbHost>(hosts: readonly H[], weights: readonly number[], exclude: ReadonlySet<string>, random: Random): H | undefined {
  let total = 0;
  for (let i = 0; i < hosts.length; i++) if (hosts[i]!.usable && !exclude.has(hosts[i]!.key)) total += weights[i]!;
  if (total <= 0) return undefined;
  let r = random() * total;
  let last: H | undefined;
  for (let i = 0; i < hosts.length; i++) {
    const h = hosts[i]!;
    if (!h.usable || exclude.has(h.key)) continue;
    last = h;
    r -= weights[i]!;
    if (r < 0) return h;
  }
  return last;
}

function allEqual(weights: readonly number[]): boolean {
  for (let i = 1; i < weights.length; i++) if (weights[i] !== weights[0]) return false;
  return true;
}

/** Re-picks a few times when the pick is excluded, then picks among the rest; the first pick when nothing else exists. */
function withExclusion<H extends LbHost>(
  first: H | undefined,
  exclude: ReadonlySet<string> | undefined,
  again: () => H | undefined,
  hosts: readonly H[],
  weights: readonly number[],
  random: Random,
): H | undefined {
  if (!first || !exclude || exclude.size === 0 || !exclude.has(first.key)) return first;
  for (let i = 0; i < 2; i++) {
    const h = again();
    if (h && !exclude.has(h.key)) return h;
  }
  return pickExcluding(hosts, weights, exclude, random) ?? first;
}

/** Weighted round robin. Equal weights rotate from a random start; unequal weights use an EDF schedule (smooth interleaving, exact proportions). */
export class RoundRobinPicker<H extends LbHost> implements Picker<H> {
  readonly #hosts: readonly H[];
  readonly #weights: readonly number[];
  readonly #random: Random;
  readonly #equal: boolean;
  #next = 0;
  readonly #deadline: Float64Array;
  readonly #heap: Int32Array;

  constructor(hosts: readonly H[], weights: readonly number[], random: Random) {
    this.#hosts = hosts;
    this.#weights = weights;
    this.#random = random;
    this.#equal = allEqual(weights);
    const n = hosts.length;
    this.#next = Math.floor(random() * n);
    this.#deadline = new Float64Array(this.#equal ? 0 : n);
    this.#heap = new Int32Array(this.#equal ? 0 : n);
    if (!this.#equal) {
      // A random phase per host, so proxies do not all start on the same endpoint.
      for (let i = 0; i < n; i++) {
        this.#deadline[i] = random() / weights[i]!;
        this.#heap[i] = i;
      }
      for (let i = (n >> 1) - 1; i >= 0; i--) this.#down(i);
    }
  }

  #less(a: number, b: number): boolean {
    const da = this.#deadline[a]!;
    const db = this.#deadline[b]!;
    return da < db || (da === db && a < b);
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const c = r < n && this.#less(heap[r]!, heap[l]!) ? r : l;
      if (!this.#less(heap[c]!, heap[i]!)) return;
      const t = heap[i]!;
      heap[i] = heap[c]!;
      heap[c] = t;
      i = c;
    }
  }

  /** The host at the head of the rotation (equal weights) or of the EDF schedule. */
  #head(): number {
    return this.#equal ? this.#next : this.#heap[0]!;
  }

  #one(): H | undefined {
    const n = this.#hosts.length;
    if (n === 0) return undefined;
    const i = this.#head();
    if (this.#equal) this.#next = i + 1 === n ? 0 : i + 1;
    else {
      this.#deadline[i] = this.#deadline[i]! + 1 / this.#weights[i]!;
      this.#down(0);
    }
    return this.#hosts[i];
  }

  pick(_hash: number | undefined, exclude: ReadonlySet<string> | undefined): H | undefined {
    return withExclusion(this.#one(), exclude, () => this.#one(), this.#hosts, this.#weights, this.#random);
  }

  peek(): H | undefined {
    return this.#hosts.length === 0 ? undefined : this.#hosts[this.#head()];
  }
}

export class RandomPicker<H extends LbHost> implements Picker<H> {
  readonly #choice: WeightedPick<H>;
  readonly #weights: readonly number[];
  readonly #random: Random;

  constructor(hosts: readonly H[], weights: readonly number[], random: Random) {
    this.#choice = new WeightedPick(hosts, weights);
    this.#weights = weights;
    this.#random = random;
  }

  #one(random: Random): H | undefined {
    const hosts = this.#choice.items;
    return hosts.length === 0 ? undefined : hosts[this.#choice.index(random())];
  }

  pick(_hash: number | undefined, exclude: ReadonlySet<string> | undefined): H | undefined {
    return withExclusion(this.#one(this.#random), exclude, () => this.#one(this.#random), this.#choice.items, this.#weights, this.#random);
  }

  peek(_hash: number | undefined, random: Random): H | undefined {
    return this.#one(random);
  }
}

/**
 * Least request: `choices` weighted-random candidates, the one with the fewest requests in flight
 * per unit of weight wins (ties keep the first, so an idle cluster follows the weights exactly).
 */
export class LeastRequestPicker<H extends LbHost> implements Picker<H> {
  readonly #choice: WeightedPick<H>;
  readonly #weights: readonly number[];
  readonly #random: Random;
  readonly #choices: number;

  constructor(hosts: readonly H[], weights: readonly number[], random: Random, choices: number) {
    this.#choice = new WeightedPick(hosts, weights);
    this.#weights = weights;
    this.#random = random;
    this.#choices = choices;
  }

  #one(random: Random): H | undefined {
    const hosts = this.#choice.items;
    const n = hosts.length;
    if (n <= 1) return hosts[0];
    let bi = this.#choice.index(random());
    for (let c = 1; c < this.#choices; c++) {
      const ci = this.#choice.index(random());
      const b = hosts[bi]!;
      const x = hosts[ci]!;
      if (x.active * this.#weights[bi]! < b.active * this.#weights[ci]!) bi = ci;
    }
    return hosts[bi];
  }

  pick(_hash: number | undefined, exclude: ReadonlySet<string> | undefined): H | undefined {
    return withExclusion(this.#one(this.#random), exclude, () => this.#one(this.#random), this.#choice.items, this.#weights, this.#random);
  }

  peek(_hash: number | undefined, random: Random): H | undefined {
    return this.#one(random);
  }
}

/**
 * A consistent-hash ring over every host of a priority level (healthy or not), built only when
 * the membership or weights change. Each host owns `<key>_<n>` points, minimum_ring_size/4 per
 * unit of weight (so four endpoints fill Envoy's default 1024-point ring). Unlike Envoy, which
 * rescales every host's share to the ring size, a host's points never depend on the other hosts:
 * one leaving moves only its own keys, and every proxy builds the same ring from the same hosts.
 */
export class HashRing<H extends LbHost> {
  readonly hosts: readonly H[];
  readonly hashes: Uint32Array;
  readonly owners: Int32Array;

  constructor(hosts: readonly H[], weights: readonly number[], minSize: number, maxSize: number) {
    this.hosts = hosts;
    let totalWeight = 0;
    for (const w of weights) totalWeight += w;
    let perWeight = Math.max(1, Math.ceil(minSize / 4));
    if (perWeight * totalWeight > maxSize) perWeight = maxSize / totalWeight;
    const counts = weights.map((w) => Math.max(1, Math.round(perWeight * w)));
    const size = counts.reduce((a, b) => a + b, 0);
    const packed = new Float64Array(size);
    let count = 0;
    for (let i = 0; i < hosts.length; i++) {
      const key = hosts[i]!.key;
      // Hash in the high bits, owner in the low 20: one numeric sort orders by hash, then owner.
      for (let n = 0; n < counts[i]!; n++) packed[count++] = hash32(`${key}_${n}`) * 1048576 + i;
    }
    packed.sort();
    this.hashes = new Uint32Array(count);
    this.owners = new Int32Array(count);
    for (let j = 0; j < count; j++) {
      const v = packed[j]!;
      const owner = v % 1048576;
      this.owners[j] = owner;
      this.hashes[j] = (v - owner) / 1048576;
    }
  }

  /** The first entry at or after `hash` (wrapping). */
  start(hash: number): number {
    const hs = this.hashes;
    let lo = 0;
    let hi = hs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (hs[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo === hs.length ? 0 : lo;
  }
}

/**
 * Ring hash: the request's hash finds its place on the ring and walks clockwise to the first
 * usable host. Skipping a host that is ejected (or excluded) sends its keys to the next host on the
 * ring, exactly as removing it from the ring would, and leaves every other key where it was.
 */
export class RingHashPicker<H extends LbHost> implements Picker<H> {
  readonly #ring: HashRing<H>;
  readonly #fallback: Picker<H>;

  constructor(ring: HashRing<H>, usable: readonly H[], usableWeights: readonly number[], random: Random) {
    this.#ring = ring;
    this.#fallback = new RandomPicker(usable, usableWeights, random);
  }

  pick(hash: number | undefined, exclude: ReadonlySet<string> | undefined): H | undefined {
    const ring = this.#ring;
    const n = ring.hashes.length;
    if (hash === undefined || n === 0) return this.#fallback.pick(undefined, exclude);
    return this.#walk(hash, exclude);
  }

  peek(hash: number | undefined, random: Random): H | undefined {
    if (hash === undefined || this.#ring.hashes.length === 0) return this.#fallback.peek(undefined, random);
    return this.#walk(hash, undefined);
  }

  #walk(hash: number, exclude: ReadonlySet<string> | undefined): H | undefined {
    const ring = this.#ring;
    const n = ring.hashes.length;
    let j = ring.start(hash);
    let firstUsable: H | undefined;
    for (let step = 0; step < n; step++) {
      const h = ring.hosts[ring.owners[j]!]!;
      if (h.usable) {
        if (!exclude?.has(h.key)) return h;
        firstUsable ??= h;
      }
      j = j + 1 === n ? 0 : j + 1;
    }
    return firstUsable;
  }
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Maglev (Envoy's maglev_lb): a lookup table of `tableSize` slots (a prime) filled by each usable
 * host's permutation, hosts taking turns in proportion to weight. A host leaving moves only its own
 * slots. Built over the usable hosts, so it is rebuilt when health changes.
 */
export class MaglevPicker<H extends LbHost> implements Picker<H> {
  readonly #hosts: readonly H[];
  readonly #table: Int32Array;
  readonly #fallback: RandomPicker<H>;

  constructor(hosts: readonly H[], weights: readonly number[], tableSize: number, random: Random) {
    this.#fallback = new RandomPicker(hosts, weights, random);
    const order = hosts.map((_, i) => i).sort((a, b) => (hosts[a]!.key < hosts[b]!.key ? -1 : hosts[a]!.key > hosts[b]!.key ? 1 : 0));
    this.#hosts = order.map((i) => hosts[i]!);
    const w = order.map((i) => weights[i]!);
    const m = tableSize;
    this.#table = new Int32Array(this.#hosts.length === 0 ? 0 : m).fill(-1);
    const n = this.#hosts.length;
    if (n === 0) return;
    const maxWeight = Math.max(...w);
    const offset = new Float64Array(n);
    const skip = new Float64Array(n);
    const next = new Float64Array(n);
    const target = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const key = this.#hosts[i]!.key;
      offset[i] = hash32(key, 0) % m;
      skip[i] = (hash32(key, 0x9e3779b9) % (m - 1)) + 1;
    }
    let filled = 0;
    for (let iteration = 1; filled < m; iteration++) {
      for (let i = 0; i < n && filled < m; i++) {
        // A host of weight maxWeight takes a slot every iteration; one of maxWeight/3 every third.
        if (iteration * w[i]! < target[i]!) continue;
        target[i] = target[i]! + maxWeight;
        let c = (offset[i]! + skip[i]! * next[i]!) % m;
        while (this.#table[c] !== -1) {
          next[i] = next[i]! + 1;
          c = (offset[i]! + skip[i]! * next[i]!) % m;
        }
        this.#table[c] = i;
        next[i] = next[i]! + 1;
        filled++;
      }
    }
  }

  peek(hash: number | undefined, random: Random): H | undefined {
    const t = this.#table;
    if (hash === undefined || t.length === 0) return this.#fallback.peek(undefined, random);
    return this.#hosts[t[hash % t.length]!];
  }

  pick(hash: number | undefined, exclude: ReadonlySet<string> | undefined): H | undefined {
    const t = this.#table;
    if (hash === undefined || t.length === 0) return this.#fallback.pick(undefined, exclude);
    const h = this.#hosts[t[hash % t.length]!]!;
    if (!exclude?.has(h.key)) return h;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const x = this.#hosts[t[mix32(hash + attempt * 0x9e3779b9) % t.length]!]!;
      if (!exclude.has(x.key)) return x;
    }
    return this.#fallback.pick(undefined, exclude) ?? h;
  }
}

export interface PickerOptions<H extends LbHost> {
  random: Random;
  leastRequestChoices: number;
  maglevTableSize: number;
  /** Ring hash: the ring over all hosts of the level. */
  ring?: HashRing<H>;
}

/** The picker for one priority level's usable hosts. */
export function createPicker<H extends LbHost>(policy: LbPolicy, hosts: readonly H[], weights: readonly number[], o: PickerOptions<H>): Picker<H> {
  switch (policy) {
    case 'RANDOM':
      return new RandomPicker(hosts, weights, o.random);
    case 'LEAST_REQUEST':
      return new LeastRequestPicker(hosts, weights, o.random, o.leastRequestChoices);
    case 'RING_HASH':
      return o.ring ? new RingHashPicker(o.ring, hosts, weights, o.random) : new RandomPicker(hosts, weights, o.random);
    case 'MAGLEV':
      return new MaglevPicker(hosts, weights, o.maglevTableSize, o.random);
    default:
      return new RoundRobinPicker(hosts, weights, o.random);
  }
}
