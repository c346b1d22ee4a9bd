// The load balancers on their own, with samples too large for real requests: exact weighted
// round-robin proportions and interleaving, and how many keys consistent hashing moves.
import { describe, expect, test } from 'vitest';
import { hash32 } from './hash.ts';
import { HashRing, LeastRequestPicker, MaglevPicker, RandomPicker, RingHashPicker, RoundRobinPicker } from './lb.ts';

interface H {
  key: string;
  active: number;
  usable: boolean;
}

const hosts = (n: number, offset = 0): H[] => Array.from({ length: n }, (_, i) => ({ key: `10.0.0.${i + 1 + offset}:8080`, active: 0, usable: true }));

// A seeded generator, so the statistical tests are repeatable.
function rng(seed = 42): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function counts(pick: () => H | undefined, n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = pick()!;
    m.set(h.key, (m.get(h.key) ?? 0) + 1);
  }
  return m;
}

const keys = Array.from({ length: 20000 }, (_, i) => hash32(`user-${i}`));

describe('round robin', () => {
  test('weights 3:1 give exactly 3:1, interleaved (never the light endpoint twice, the heavy one at most 3 times in a row)', () => {
    const [a, b] = hosts(2);
    const p = new RoundRobinPicker([a!, b!], [3, 1], rng());
    const seq = Array.from({ length: 4000 }, () => p.pick(undefined, undefined)!.key);
    expect(seq.filter((k) => k === a!.key)).toHaveLength(3000);
    const runs = seq.join(',').split(b!.key);
    expect(Math.max(...runs.map((r) => r.split(a!.key).length - 1))).toBeLessThanOrEqual(3);
    expect(seq.some((k, i) => k === b!.key && seq[i + 1] === b!.key)).toBe(false);
  });

  test('equal weights rotate through every endpoint', () => {
    const hs = hosts(5);
    const p = new RoundRobinPicker(hs, [1, 1, 1, 1, 1], rng());
    const seq = Array.from({ length: 10 }, () => p.pick(undefined, undefined)!.key);
    expect(new Set(seq.slice(0, 5)).size).toBe(5);
    expect(seq.slice(5)).toEqual(seq.slice(0, 5));
  });
});

test('random follows weights within ±1% over 100,000 picks', () => {
  const [a, b] = hosts(2);
  const p = new RandomPicker([a!, b!], [3, 1], rng());
  const c = counts(() => p.pick(undefined, undefined), 100_000);
  expect(Math.abs(c.get(a!.key)! / 100_000 - 0.75)).toBeLessThan(0.01);
});

test('least request prefers the endpoint with fewer requests in flight, and follows weights when idle', () => {
  const hs = hosts(4);
  hs[0]!.active = 10;
  const p = new LeastRequestPicker(hs, [1, 1, 1, 1], rng(), 2);
  const c = counts(() => p.pick(undefined, undefined), 10_000);
  // The busy endpoint is chosen only when both samples hit it: 1/16 of the time.
  expect(c.get(hs[0]!.key)! / 10_000).toBeLessThan(0.08);
  const idle = hosts(2);
  const w = new LeastRequestPicker(idle, [3, 1], rng(), 2);
  const ci = counts(() => w.pick(undefined, undefined), 40_000);
  expect(Math.abs(ci.get(idle[0]!.key)! / 40_000 - 0.75)).toBeLessThan(0.02);
});

describe('ring hash', () => {
  const map = (p: RingHashPicker<H>) => keys.map((k) => p.pick(k, undefined)!.key);

  test('the same endpoints in any order build the same ring', () => {
    const hs = hosts(6);
    const a = map(new RingHashPicker(new HashRing(hs, hs.map(() => 1), 1024, 8e6), hs, hs.map(() => 1), rng()));
    const shuffled = [hs[3]!, hs[0]!, hs[5]!, hs[1]!, hs[4]!, hs[2]!].map((h) => ({ ...h }));
    const b = map(new RingHashPicker(new HashRing(shuffled, shuffled.map(() => 1), 1024, 8e6), shuffled, shuffled.map(() => 1), rng()));
    expect(b).toEqual(a);
  });

  test('an endpoint leaving moves only its own keys; one joining takes about 1/(n+1) of them', () => {
    const hs = hosts(10);
    const ones = (n: number) => Array<number>(n).fill(1);
    const before = map(new RingHashPicker(new HashRing(hs, ones(10), 1024, 8e6), hs, ones(10), rng()));
    const fewer = hs.filter((_, i) => i !== 4);
    const after = map(new RingHashPicker(new HashRing(fewer, ones(9), 1024, 8e6), fewer, ones(9), rng()));
    const moved = before.filter((k, i) => k !== after[i]);
    expect(moved.every((k) => k === hs[4]!.key)).toBe(true);
    expect(moved.length / keys.length).toBeGreaterThan(0.05);
    expect(moved.length / keys.length).toBeLessThan(0.15);
    const more = [...hs, ...hosts(1, 10)];
    const grown = map(new RingHashPicker(new HashRing(more, ones(11), 1024, 8e6), more, ones(11), rng()));
    const taken = before.filter((k, i) => k !== grown[i]).length / keys.length;
    expect(taken).toBeGreaterThan(0.04);
    expect(taken).toBeLessThan(0.15);
    expect(before.every((k, i) => k === grown[i] || grown[i] === more[10]!.key)).toBe(true);
  });

  test('an ejected endpoint is skipped: its keys go to the next endpoint on the ring, other keys stay', () => {
    const hs = hosts(5);
    const ring = new HashRing(hs, [1, 1, 1, 1, 1], 1024, 8e6);
    const before = map(new RingHashPicker(ring, hs, [1, 1, 1, 1, 1], rng()));
    hs[2]!.usable = false;
    const usable = hs.filter((h) => h.usable);
    const after = map(new RingHashPicker(ring, usable, [1, 1, 1, 1], rng()));
    expect(after.includes(hs[2]!.key)).toBe(false);
    expect(before.every((k, i) => k === hs[2]!.key || after[i] === k)).toBe(true);
  });

  test('weights 3:1 take about 3/4 of the keys', () => {
    const hs = hosts(2);
    const p = new RingHashPicker(new HashRing(hs, [3, 1], 1024, 8e6), hs, [3, 1], rng());
    const share = keys.filter((k) => p.pick(k, undefined)!.key === hs[0]!.key).length / keys.length;
    expect(Math.abs(share - 0.75)).toBeLessThan(0.05);
  });
});

describe('maglev', () => {
  test('spreads keys evenly and, when an endpoint leaves, moves few keys of the others', () => {
    const hs = hosts(10);
    const before = new MaglevPicker(hs, Array(10).fill(1), 65537, rng());
    const c = counts(
      (() => {
        let i = 0;
        return () => before.pick(keys[i++ % keys.length], undefined);
      })(),
      keys.length,
    );
    for (const n of c.values()) expect(Math.abs(n / keys.length - 0.1)).toBeLessThan(0.02);
    const fewer = hs.filter((_, i) => i !== 7);
    const after = new MaglevPicker(fewer, Array(9).fill(1), 65537, rng());
    let others = 0;
    let moved = 0;
    for (const k of keys) {
      const b = before.pick(k, undefined)!.key;
      if (b === hs[7]!.key) continue;
      others++;
      if (after.pick(k, undefined)!.key !== b) moved++;
    }
    expect(moved / others).toBeLessThan(0.05);
  });

  test('weights 3:1 take about 3/4 of the table', () => {
    const hs = hosts(2);
    const p = new MaglevPicker(hs, [3, 1], 65537, rng());
    const share = keys.filter((k) => p.pick(k, undefined)!.key === hs[0]!.key).length / keys.length;
    expect(Math.abs(share - 0.75)).toBeLessThan(0.02);
  });
});

describe('peek (the admin’s /debug/why)', () => {
  test('names the host pick takes next and moves nothing: every policy, equal and unequal weights', () => {
    const hs = hosts(4);
    const ring = new HashRing(hs, [1, 2, 3, 4], 1024, 8_388_608);
    const make: Record<string, (r: () => number) => { pick: (h: number | undefined) => H | undefined; peek: (h: number | undefined, r: () => number) => H | undefined }> = {
      'round robin, equal': (r) => wrap(new RoundRobinPicker(hs, [1, 1, 1, 1], r)),
      'round robin, 1:2:3:4': (r) => wrap(new RoundRobinPicker(hs, [1, 2, 3, 4], r)),
      random: (r) => wrap(new RandomPicker(hs, [1, 2, 3, 4], r)),
      'least request': (r) => wrap(new LeastRequestPicker(hs, [1, 2, 3, 4], r, 2)),
      'ring hash': (r) => wrap(new RingHashPicker(ring, hs, [1, 2, 3, 4], r)),
      maglev: (r) => wrap(new MaglevPicker(hs, [1, 2, 3, 4], 65537, r)),
    };
    function wrap(p: { pick(h: number | undefined, e: undefined): H | undefined; peek(h: number | undefined, r: () => number): H | undefined }) {
      return { pick: (h: number | undefined) => p.pick(h, undefined), peek: (h: number | undefined, r: () => number) => p.peek(h, r) };
    }
    for (const [name, build] of Object.entries(make)) {
      // The same seeded source for both: one is peeked at before every pick, the other never.
      const peeked = build(rng(9));
      const plain = build(rng(9));
      for (let i = 0; i < 200; i++) {
        const hash = name === 'ring hash' || name === 'maglev' ? keys[i] : undefined;
        const next = peeked.peek(hash, () => 0.5);
        peeked.peek(hash, Math.random);
        const got = peeked.pick(hash);
        expect(got, `${name} #${i}`).toBe(plain.pick(hash));
        // Where no draw decides, peek names the very host.
        if (name.startsWith('round robin') || name === 'ring hash' || name === 'maglev') expect(next, `${name} #${i}`).toBe(got);
      }
    }
  });
});
