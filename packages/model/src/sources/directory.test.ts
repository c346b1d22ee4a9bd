import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Problem } from '../problem.ts';
import { type ConfigEvent, MemoryConfigStore } from '../store/store.ts';
import { testRegistry } from '../testing.ts';
import { DirectorySource } from './directory.ts';

const widget = (name: string, port: number | string) => `apiVersion: test.weft.dev/v1\nkind: Widget\nmetadata: {name: ${name}}\nspec: {port: ${port}}\n`;
const gk = 'test.weft.dev/Widget';

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('DirectorySource', () => {
  let dir = '';
  let source: DirectorySource | undefined;
  afterEach(() => {
    source?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows files: add, update, delete, and keeps the last good config on bad input', async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-dir-'));
    writeFileSync(join(dir, 'a.yaml'), widget('a', 80));
    const store = new MemoryConfigStore();
    const events: ConfigEvent[] = [];
    store.watch((e) => events.push(e));
    const problems = new Map<string, Problem[]>();
    source = new DirectorySource({ dir, store, registry: testRegistry(), debounceMs: 20, onProblems: (f, p) => problems.set(f, p) });
    await source.start();
    expect(store.get(gk, 'default', 'a')?.spec).toEqual({ port: 80 });

    writeFileSync(join(dir, 'b.yml'), widget('b', 81));
    await until(() => store.get(gk, 'default', 'b') !== undefined);

    writeFileSync(join(dir, 'a.yaml'), widget('a', 8080));
    await until(() => (store.get(gk, 'default', 'a')?.spec as { port?: number } | undefined)?.port === 8080);

    // An invalid resource and a syntax error both keep what was accepted.
    writeFileSync(join(dir, 'a.yaml'), widget('a', '"eighty"'));
    await until(() => (problems.get(join(dir, 'a.yaml')) ?? []).length > 0);
    expect(store.get(gk, 'default', 'a')?.spec).toEqual({ port: 8080 });
    expect(problems.get(join(dir, 'a.yaml'))![0]).toEqual(expect.objectContaining({ path: 'spec.port', line: 4 }));
    writeFileSync(join(dir, 'a.yaml'), 'kind: [\n');
    await until(() => problems.get(join(dir, 'a.yaml'))?.[0]?.code === 'WEFT0002');
    expect(store.get(gk, 'default', 'a')?.spec).toEqual({ port: 8080 });

    unlinkSync(join(dir, 'b.yml'));
    await until(() => store.get(gk, 'default', 'b') === undefined);
    expect(events.map((e) => `${e.type} ${e.config.metadata.name}`)).toEqual(['add a', 'add b', 'update a', 'delete b']);

    // Two files defining one object: removing one leaves the other's definition in force.
    writeFileSync(join(dir, 'c1.yaml'), widget('c', 1));
    await until(() => store.get(gk, 'default', 'c') !== undefined);
    writeFileSync(join(dir, 'c2.yaml'), widget('c', 2));
    await until(() => (store.get(gk, 'default', 'c')?.spec as { port?: number } | undefined)?.port === 2);
    unlinkSync(join(dir, 'c2.yaml'));
    await until(() => (store.get(gk, 'default', 'c')?.spec as { port?: number } | undefined)?.port === 1);
    unlinkSync(join(dir, 'c1.yaml'));
    await until(() => store.get(gk, 'default', 'c') === undefined);
  });
});

describe('DirectorySource creation times', () => {
  let dir = '';
  let source: DirectorySource | undefined;
  afterEach(() => {
    source?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stamps objects without one when first seen, keeps the stamp across edits, and forgets it when the object goes', async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-dir-'));
    let clock = Date.UTC(2024, 0, 1);
    writeFileSync(join(dir, 'a.yaml'), widget('a', 80));
    writeFileSync(join(dir, 'b.yaml'), widget('b', 81));
    writeFileSync(join(dir, 'own.yaml'), widget('own', 82).replace('{name: own}', '{name: own, creationTimestamp: "2020-06-01T00:00:00Z"}'));
    const store = new MemoryConfigStore();
    source = new DirectorySource({ dir, store, registry: testRegistry(), debounceMs: 20, now: () => clock });
    await source.start();
    const created = (name: string) => store.get(gk, 'default', name)?.metadata.creationTimestamp;
    // Everything read at start is equally old (names then decide); a timestamp in the file is kept.
    expect(created('a')).toBe('2024-01-01T00:00:00.000Z');
    expect(created('b')).toBe('2024-01-01T00:00:00.000Z');
    expect(created('own')).toBe('2020-06-01T00:00:00Z');

    clock += 5000;
    writeFileSync(join(dir, 'a.yaml'), widget('a', 8080));
    writeFileSync(join(dir, 'c.yaml'), widget('c', 83));
    await until(() => (store.get(gk, 'default', 'a')?.spec as { port?: number } | undefined)?.port === 8080 && created('c') !== undefined);
    expect(created('a')).toBe('2024-01-01T00:00:00.000Z');
    expect(created('c')).toBe('2024-01-01T00:00:05.000Z');

    // Moving an object to another file is no new object; deleting and creating it again is.
    clock += 5000;
    renameSync(join(dir, 'b.yaml'), join(dir, 'b-moved.yaml'));
    await until(() => (store.get(gk, 'default', 'b')?.source?.file ?? '').endsWith('b-moved.yaml'));
    expect(created('b')).toBe('2024-01-01T00:00:00.000Z');
    unlinkSync(join(dir, 'c.yaml'));
    await until(() => created('c') === undefined);
    clock += 5000;
    writeFileSync(join(dir, 'c.yaml'), widget('c', 83));
    await until(() => created('c') !== undefined);
    expect(created('c')).toBe('2024-01-01T00:00:15.000Z');
  });
});

describe('DirectorySource at scale', () => {
  let dir = '';
  let source: DirectorySource | undefined;
  afterEach(() => {
    source?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies a burst of thousands of files as one batch of store events, and keeps the event loop turning while it reads them', async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-dir-'));
    const store = new MemoryConfigStore();
    // Each store event notes the event-loop turn it came in (a chain of setImmediate counts turns).
    let turn = 0;
    let turning = true;
    const count = () => {
      turn++;
      if (turning) setImmediate(count);
    };
    setImmediate(count);
    const turns = new Set<number>();
    let events = 0;
    store.watch(() => {
      events++;
      turns.add(turn);
    });
    source = new DirectorySource({ dir, store, registry: testRegistry(), debounceMs: 20 });
    await source.start();
    // The longest the event loop went without running a 2 ms timer while the files were read.
    let last = performance.now();
    let longest = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 2);
    const n = 4000;
    // As `weftctl apply` writes: a temporary file renamed into place, one per object.
    for (let i = 0; i < n; i++) {
      writeFileSync(join(dir, `w${i}.yaml.tmp`), widget(`w${i}`, 1000 + i));
      renameSync(join(dir, `w${i}.yaml.tmp`), join(dir, `w${i}.yaml`));
    }
    last = performance.now();
    longest = 0;
    await until(() => events >= n, 60_000);
    clearInterval(timer);
    turning = false;
    expect(events).toBe(n);
    expect(turns.size).toBe(1);
    expect(store.list(gk)).toHaveLength(n);
    expect(longest).toBeLessThan(400);

    // Deleting them all is one batch too.
    turns.clear();
    turning = true;
    setImmediate(count);
    for (let i = 0; i < n; i++) unlinkSync(join(dir, `w${i}.yaml`));
    await until(() => store.list(gk).length === 0, 60_000);
    turning = false;
    expect(turns.size).toBe(1);
  }, 120_000);

  it('follows directories created and removed after start', async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-dir-'));
    const store = new MemoryConfigStore();
    source = new DirectorySource({ dir, store, registry: testRegistry(), debounceMs: 20 });
    await source.start();
    mkdirSync(join(dir, 'team', 'a'), { recursive: true });
    writeFileSync(join(dir, 'team', 'a', 'x.yaml'), widget('x', 1));
    await until(() => store.get(gk, 'default', 'x') !== undefined);
    writeFileSync(join(dir, 'team', 'a', 'y.yml'), widget('y', 2));
    await until(() => store.get(gk, 'default', 'y') !== undefined);
    writeFileSync(join(dir, 'team', 'a', 'x.yaml'), widget('x', 3));
    await until(() => (store.get(gk, 'default', 'x')?.spec as { port?: number } | undefined)?.port === 3);
    rmSync(join(dir, 'team'), { recursive: true });
    await until(() => store.get(gk, 'default', 'x') === undefined && store.get(gk, 'default', 'y') === undefined);
  });
});
