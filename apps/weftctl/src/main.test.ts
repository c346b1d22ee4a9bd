import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = join(root, 'apps/weftctl/bin/weftctl.js');
const dir = mkdtempSync(join(tmpdir(), 'weftctl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the real CLI as a user would, from the repo root. */
function weftctl(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const vs = (weight: number | string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: ${weight}
`;

describe('weftctl validate', () => {
  it('exits 0 and says so for valid input', () => {
    const r = weftctl('validate', '-f', file('ok.yaml', vs(100)));
    expect(r.code).toBe(0);
    expect(r.out).toBe('1 resource valid\n');
  });

  it('prints compiler-style lines and exits 1 for invalid input', () => {
    const f = file('typed.yaml', vs('"all"'));
    const r = weftctl('validate', '-f', f);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${f}:13:7: error: VirtualService default/reviews: spec.http[0].route[0].weight: expected an integer, got string "all"`);
    expect(r.out).toMatch(/1 error in 1 input \(1 resource read\)\n$/);
  });

  it('prints one JSON entry per resource', () => {
    const f = file('mixed.yaml', `${vs(100)}---\n${vs('"x"').replace('name: reviews', 'name: broken')}`);
    const r = weftctl('validate', '-f', f, '-o', 'json');
    expect(r.code).toBe(1);
    const out = JSON.parse(r.out);
    expect(out).toHaveLength(2);
    expect(out[0]).toEqual({ kind: 'VirtualService', apiVersion: 'networking.istio.io/v1', namespace: 'default', name: 'reviews', file: f, line: 1, valid: true, errors: [], warnings: [] });
    expect(out[1]).toEqual(expect.objectContaining({ name: 'broken', line: 15, valid: false }));
    expect(out[1].errors[0]).toEqual(expect.objectContaining({ path: 'spec.http[0].route[0].weight', line: 27, column: 7 }));
  });

  it('answers usage errors with exit 2', () => {
    expect(weftctl('validate').code).toBe(2);
    expect(weftctl('validate').err).toContain('validate needs at least one -f PATH');
    expect(weftctl('frobnicate').code).toBe(2);
    expect(weftctl('validate', '-f', 'x', '-o', 'xml').code).toBe(2);
    expect(weftctl('validate', '--bogus').code).toBe(2);
    expect(weftctl('--help').code).toBe(0);
  });

  describe('broken input gives a located message and no stack trace', () => {
    const cases: [string, string, RegExp][] = [
      ['syntax.yaml', 'apiVersion: v1\nkind: Service\nmetadata:\n\tname: x\n', /syntax\.yaml:4:1: error: YAML syntax error: Tabs are not allowed as indentation/],
      ['type.yaml', vs('[1]'), /type\.yaml:13:7: error: .*expected an integer, got a list/],
      ['field.yaml', vs(100).replace('  hosts:', '  hostz:'), /field\.yaml:6:3: error: .*spec\.hostz: unknown field "hostz" \(did you mean "hosts"\?\)/],
      ['kind.yaml', 'apiVersion: networking.istio.io/v1\nkind: VirtualServce\nmetadata: {name: a}\n', /kind\.yaml:2:1: error: kind: unknown kind "VirtualServce"/],
      ['empty.yaml', '', /empty\.yaml:1:1: error: file contains no resources/],
      ['missing.yaml', '', /missing2\.yaml:1:1: error: cannot read: no such file or directory/],
    ];
    for (const [name, text, expected] of cases) {
      it(name, () => {
        const f = name === 'missing.yaml' ? join(dir, 'missing2.yaml') : file(name, text);
        const r = weftctl('validate', '-f', f);
        expect(r.code).toBe(1);
        expect(r.out).toMatch(expected);
        expect(r.out + r.err).not.toMatch(/\n\s+at /);
      });
    }
    it('a 10 MB file', () => {
      const block = vs(100);
      const text = Array.from({ length: Math.ceil((10 * 1024 * 1024) / block.length) }, (_, i) => block.replace('name: reviews', `name: r${i}`)).join('---\n');
      const f = file('huge.yaml', text.padEnd(10 * 1024 * 1024, '#'));
      const r = weftctl('validate', '-f', f);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/huge\.yaml:1:1: error: file is 10\.\d MiB; the limit is 4 MiB per file/);
      expect(r.out + r.err).not.toMatch(/\n\s+at /);
    });
  });
});
