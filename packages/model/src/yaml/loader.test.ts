import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testRegistry } from '../testing.ts';
import { loadPaths, loadText, maxFileBytes } from './loader.ts';

const opts = { registry: testRegistry() };

const two = `apiVersion: test.weft.dev/v1
kind: Widget
metadata:
  name: one
spec:
  hosts: [a]
---
# second
apiVersion: test.weft.dev/v1alpha1
kind: Widget
metadata:
  name: two
  namespace: prod
spec:
  routes:
  - name: r1
  - name: r2
    weight: "ten"
`;

describe('loadText', () => {
  it('loads every document and defaults the namespace', () => {
    const r = loadText(two, 'w.yaml', opts);
    expect(r.problems).toEqual([]);
    expect(r.resources.map((x) => `${x.config?.metadata.namespace}/${x.config?.metadata.name}`)).toEqual(['default/one', 'prod/two']);
    expect(r.resources[1]!.source.line).toBe(9);
  });
  it('locates a field problem at its key, in the right document', () => {
    const r = loadText(two, 'w.yaml', opts);
    expect(r.resources[1]!.problems).toEqual([
      expect.objectContaining({ path: 'spec.routes[1].weight', file: 'w.yaml', line: 18, column: 5, message: 'expected an integer, got string "ten"' }),
    ]);
    expect(r.resources[1]!.source.positionOf(['spec', 'routes', 1])).toEqual({ line: 17, column: 5 });
  });
  it('reports a syntax error with its position', () => {
    const r = loadText('apiVersion: v1\nkind: Widget\nspec:\n\thosts: []\n', 'bad.yaml', opts);
    expect(r.problems[0]).toEqual(expect.objectContaining({ severity: 'error', file: 'bad.yaml', line: 4, column: 1, code: 'WEFT0002' }));
    expect(r.problems[0]!.message).toBe('YAML syntax error: Tabs are not allowed as indentation');
    expect(r.resources).toEqual([]);
  });
  it('reports unknown kinds and unserved versions', () => {
    const r = loadText('apiVersion: test.weft.dev/v1\nkind: Gadget\nmetadata: {name: a}\n---\napiVersion: test.weft.dev/v2\nkind: Widget\nmetadata: {name: a}\n', 'k.yaml', opts);
    expect(r.resources[0]!.problems[0]).toEqual(expect.objectContaining({ path: 'kind', line: 2, code: 'WEFT0004' }));
    expect(r.resources[0]!.problems[0]!.message).toMatch(/unknown kind "Gadget"/);
    expect(r.resources[1]!.problems[0]!.message).toBe('Widget is not served at version v2 of test.weft.dev; use one of test.weft.dev/v1alpha1, test.weft.dev/v1');
  });
  it('reports a missing name, unknown top-level fields and a non-mapping document', () => {
    const r = loadText('apiVersion: test.weft.dev/v1\nkind: Widget\nmetadata: {}\nspecs: {}\n---\n- a\n', 'm.yaml', opts);
    expect(r.resources[0]!.problems.map((p) => [p.path, p.line])).toEqual([
      ['metadata.name', 3],
      ['specs', 4],
    ]);
    expect(r.resources[0]!.config).toBeUndefined();
    expect(r.resources[1]!.problems[0]!.message).toMatch(/must be a YAML mapping/);
  });
  it('reports an empty file', () => {
    const r = loadText('# nothing here\n', 'e.yaml', opts);
    expect(r.problems).toEqual([expect.objectContaining({ message: 'file contains no resources', line: 1, column: 1 })]);
  });
  it('reports duplicate keys', () => {
    const r = loadText('apiVersion: test.weft.dev/v1\nkind: Widget\nkind: Widget\nmetadata: {name: a}\n', 'd.yaml', opts);
    expect(r.problems[0]).toEqual(expect.objectContaining({ line: 3, code: 'WEFT0002' }));
  });
});

describe('loadPaths', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-load-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('walks directories, refuses oversized files and reports missing paths', async () => {
    writeFileSync(join(dir, 'a.yaml'), two);
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    writeFileSync(join(dir, 'big.yaml'), `# ${'x'.repeat(maxFileBytes + 10)}\n`);
    const r = await loadPaths([dir, join(dir, 'missing.yaml')], opts);
    expect(r.resources).toHaveLength(2);
    expect(r.problems.map((p) => [p.file?.replace(dir, ''), p.code])).toEqual([
      ['/missing.yaml', 'WEFT0007'],
      ['/big.yaml', 'WEFT0008'],
    ]);
  });
});
