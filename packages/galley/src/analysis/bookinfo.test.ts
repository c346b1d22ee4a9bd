import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, defaultKindRegistry, describeConfig, formatProblem, loadPaths } from '@weft/model';
import { noteSkip } from '@weft/testing';
import { describe, expect, it } from 'vitest';
import { analyze } from './analyze.ts';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const bookinfo = `${repoRoot}examples/bookinfo`;
/** Upstream reference data, beside the repository (`../shared/reference`); present in CI, maybe not elsewhere. */
const reference = resolve(repoRoot, '../shared/reference');
const istioBookinfo = `${reference}/istio/samples/bookinfo`;
const haveReference = existsSync(istioBookinfo);

async function loadAll(paths: string[]): Promise<Config[]> {
  const r = await loadPaths(paths, { registry: defaultKindRegistry() });
  const structural = [...r.problems, ...r.resources.flatMap((x) => x.problems)].filter((p) => p.severity === 'error');
  expect(structural.map((p) => formatProblem(p))).toEqual([]);
  return r.resources.flatMap((x) => (x.config ? [x.config] : []));
}

/** `file:line:col: severity: Kind ns/name: path: message [code]` for every problem, for readable failures. */
function report(configs: readonly Config[], severity?: 'error' | 'warning'): string[] {
  const lines: string[] = [];
  for (const [config, problems] of analyze(configs)) {
    for (const p of problems) if (!severity || p.severity === severity) lines.push(formatProblem({ ...p, file: p.file?.replace(repoRoot, '') }, describeConfig(config)));
  }
  return lines;
}

/** The configs of Istio's traffic-management tasks, written for Weft. */
const tutorialFiles = [
  'bookinfo-gateway.yaml',
  'destination-rule-all.yaml',
  'destination-rule-all-mtls.yaml',
  'virtual-service-all-v1.yaml',
  'virtual-service-reviews-test-v2.yaml',
  'virtual-service-reviews-50-v3.yaml',
  'virtual-service-reviews-80-20.yaml',
  'virtual-service-reviews-90-10.yaml',
  'virtual-service-reviews-v3.yaml',
  'virtual-service-reviews-jason-v2-v3.yaml',
  'virtual-service-reviews-v2-v3.yaml',
  'virtual-service-ratings-test-delay.yaml',
  'virtual-service-ratings-test-abort.yaml',
  'virtual-service-details-v2.yaml',
  'fault-injection-details-v1.yaml',
];

describe('examples/bookinfo', () => {
  it('analyzes clean: all networking configs with the Kubernetes platform', async () => {
    const configs = await loadAll([`${bookinfo}/networking`, `${bookinfo}/platform/kube`]);
    expect(configs.length).toBeGreaterThan(40);
    expect(report(configs)).toEqual([]);
  });

  it('has no errors for each networking file applied alone on the platform, after the gateway and the subsets', async () => {
    const files = readdirSync(`${bookinfo}/networking`).filter((f) => f.endsWith('.yaml'));
    expect(files).toEqual(expect.arrayContaining(tutorialFiles));
    for (const f of files) {
      const configs = await loadAll([`${bookinfo}/platform/kube`, `${bookinfo}/networking/bookinfo-gateway.yaml`, `${bookinfo}/networking/destination-rule-all.yaml`, `${bookinfo}/networking/${f}`]);
      expect(report(configs, 'error'), f).toEqual([]);
    }
  });
});

describe('Istio samples/bookinfo (shared reference)', () => {
  noteSkip(haveReference ? undefined : `Istio's BookInfo samples are not at ${istioBookinfo} (reference data kept beside the repository in CI)`);
  it.skipIf(!haveReference)('analyzes bookinfo.yaml with the gateway, destination-rule-all and virtual-service-all-v1 without errors', async () => {
    const net = `${istioBookinfo}/networking`;
    const configs = await loadAll([`${istioBookinfo}/platform/kube/bookinfo.yaml`, `${net}/bookinfo-gateway.yaml`, `${net}/destination-rule-all.yaml`, `${net}/virtual-service-all-v1.yaml`]);
    expect(report(configs, 'error')).toEqual([]);
  });
});
