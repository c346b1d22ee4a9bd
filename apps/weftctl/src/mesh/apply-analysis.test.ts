import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Config } from '@weft/model';
import { afterAll, describe, expect, it } from 'vitest';
import { readAndValidate, writeObjects } from '../up/config-dir.ts';
import { applyFindings, type HeldObject, reportAnalysis } from './apply-analysis.ts';

const root = resolve(import.meta.dirname, '../../../..');
const example = (f: string) => join(root, 'examples/bookinfo', f);
const dir = mkdtempSync(join(tmpdir(), 'weftctl-apply-analysis-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function configsOf(paths: string[]): Promise<Config[]> {
  const r = await readAndValidate(paths, 'default');
  expect(r.valid).toBe(true);
  return r.resources.map((x) => x.config!);
}

/** What weftd would hold after applying `paths` at `now`: the config directory's files, read back, as /debug/configz shows them. */
async function heldAfter(name: string, paths: string[], now: number): Promise<{ held: HeldObject[]; configDir: string }> {
  const configDir = join(dir, name);
  mkdirSync(configDir);
  await writeObjects(
    configDir,
    (await configsOf(paths)).map((config) => ({ config })),
    now,
  );
  const files = readdirSync(configDir).map((f) => join(configDir, f));
  const held = (await configsOf(files)).map((c) => JSON.parse(JSON.stringify({ apiVersion: c.apiVersion, kind: c.kind, metadata: c.metadata, spec: c.spec, source: { file: c.source!.file } })) as HeldObject);
  return { held, configDir };
}

/** The user's file, and its objects as apply hands them over: with their source and the creation time the apply gave them. */
async function applying(file: string, text: string, now: number): Promise<Config[]> {
  const path = join(dir, file);
  writeFileSync(path, text);
  return (await configsOf([path])).map((c) => ({ ...c, metadata: { ...c.metadata, creationTimestamp: new Date(now).toISOString() } }));
}

const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

const ghost = `# A second VirtualService for reviews, newer than the one in force.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ghost
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v3
`;

const jan = Date.UTC(2024, 0, 1);
const feb = Date.UTC(2024, 1, 1);

describe('analysis after weftctl apply', () => {
  it('reports a VirtualService that conflicts with an older one at its line in the user file, naming the one that applies', async () => {
    const { held, configDir } = await heldAfter('conflict', [example('platform/local/bookinfo.yaml'), example('networking/destination-rule-all.yaml'), example('networking/virtual-service-all-v1.yaml')], jan);
    const findings = applyFindings(held, await applying('ghost.yaml', ghost, feb));
    const heldReviews = join(configDir, 'virtualservice.networking.istio.io_default_reviews.yaml');
    expect(findings.map((f) => [f.subject, f.problem.code, f.problem.severity, `${f.problem.file}:${f.problem.line}`])).toEqual([
      ['VirtualService default/ghost', 'IST0109', 'error', `${join(dir, 'ghost.yaml')}:${lineOf(ghost, '- reviews')}`],
      // The older VirtualService has the finding only because of the apply: shown, at its file in the config directory.
      ['VirtualService default/reviews', 'IST0109', 'error', `${heldReviews}:${lineOf(readFileSync(heldReviews, 'utf8'), '- reviews')}`],
    ]);
    expect(findings[0]!.problem.message).toContain('only the oldest, default/reviews, applies to it and this one is ignored for it');

    const lines: string[] = [];
    reportAnalysis(held, await applying('ghost.yaml', ghost, feb), (s) => lines.push(s));
    expect(lines[0]).toBe(
      `${join(dir, 'ghost.yaml')}:8:5: error: VirtualService default/ghost: spec.hosts[0]: The VirtualServices default/ghost and default/reviews are both bound to the mesh gateway and define the same host reviews.default.svc.cluster.local: only the oldest, default/reviews, applies to it and this one is ignored for it; merge them into one VirtualService [IST0109]\n`,
    );
    expect(lines.at(-1)).toBe('weftctl: analysis of the config in force: 2 errors, 0 warnings (applied all the same: only validation errors stop an apply)\n');
  });

  it('says which applies by creation time, not by name: applying an object that exists keeps its time', async () => {
    const { held } = await heldAfter('older-ghost', [example('platform/local/bookinfo.yaml'), example('networking/destination-rule-all.yaml')], jan);
    const withGhost = [...held, ...(await applying('ghost-held.yaml', ghost, jan)).map((c) => ({ ...c, source: { file: 'ghost-held.yaml' } }) as HeldObject)];
    const reviews = await applying('reviews.yaml', ghost.replace('name: ghost', 'name: reviews'), feb);
    expect(applyFindings(withGhost, reviews)[0]!.problem.message).toContain('only the oldest, default/ghost, applies to it and this one is ignored for it');
  });

  it('reports what the apply breaks in objects already in force, and not what was wrong before', async () => {
    const broken = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: broken
spec:
  hosts:
  - nowhere.example.com
  http:
  - route:
    - destination:
        host: nowhere.example.com
`;
    writeFileSync(join(dir, 'broken.yaml'), broken);
    const { held, configDir } = await heldAfter(
      'breaks',
      [example('platform/local/bookinfo.yaml'), example('networking/destination-rule-all.yaml'), example('networking/virtual-service-reviews-v3.yaml'), join(dir, 'broken.yaml')],
      jan,
    );
    // The reviews DestinationRule again, without subset v3, which the VirtualService in force routes to.
    const withoutV3 = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`;
    const findings = applyFindings(held, await applying('dr.yaml', withoutV3, feb));
    const heldVs = join(configDir, 'virtualservice.networking.istio.io_default_reviews.yaml');
    expect(findings.map((f) => [f.subject, f.problem.code, f.problem.path, `${f.problem.file}:${f.problem.line}`])).toEqual([
      ['VirtualService default/reviews', 'IST0101', 'spec.http[0].route[0].destination.subset', `${heldVs}:${lineOf(readFileSync(heldVs, 'utf8'), 'subset: v3')}`],
    ]);
    expect(findings[0]!.problem.message).toContain('Referenced subset not found: "v3"');
    // Applying what is already in force finds nothing new, and the old finding on `broken` is never shown.
    expect(applyFindings(held, await applying('same.yaml', readFileSync(example('networking/virtual-service-reviews-v3.yaml'), 'utf8'), feb))).toEqual([]);
  });
});
