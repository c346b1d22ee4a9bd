import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { generatedFiles } from './outputs.ts';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '../..');

describe('generated files', () => {
  for (const [rel, text] of Object.entries(generatedFiles())) {
    it(`${rel} is up to date (run npm run generate)`, () => {
      const onDisk = readFileSync(join(pkg, rel), 'utf8');
      expect(onDisk === text, `${rel} is stale: run \`npm run generate\` and commit the result`).toBe(true);
    });
  }
  it('CRDs are structural: every object node has a type or preserves unknown fields', () => {
    const crds = parseAllDocuments(generatedFiles()['../../deploy/crds/crd-all.gen.yaml']!);
    const bad: string[] = [];
    const walk = (s: Record<string, unknown>, path: string) => {
      if (!s.type && !s['x-kubernetes-int-or-string']) bad.push(path);
      for (const [k, v] of Object.entries((s.properties as Record<string, Record<string, unknown>>) ?? {})) walk(v, `${path}.${k}`);
      if (s.items) walk(s.items as Record<string, unknown>, `${path}[]`);
      if (typeof s.additionalProperties === 'object') walk(s.additionalProperties as Record<string, unknown>, `${path}{}`);
    };
    const docs = Array.isArray(crds) ? crds : [];
    expect(docs.length).toBeGreaterThan(10);
    for (const d of docs) {
      const crd = d.toJS();
      for (const v of crd.spec.versions) walk(v.schema.openAPIV3Schema, `${crd.metadata.name}/${v.name}`);
    }
    expect(bad).toEqual([]);
  });
  it('CRDs in groups the API server protects (*.k8s.io) carry the api-approved.kubernetes.io annotation it requires', () => {
    const docs = parseAllDocuments(generatedFiles()['../../deploy/crds/crd-all.gen.yaml']!);
    const crds = (Array.isArray(docs) ? docs : []).map((d) => d.toJS() as { metadata: { name: string; annotations?: Record<string, string> }; spec: { group: string } });
    const gatewayApi = crds.filter((c) => c.spec.group === 'gateway.networking.k8s.io');
    expect(gatewayApi.map((c) => c.metadata.name).sort()).toEqual([
      'gatewayclasses.gateway.networking.k8s.io',
      'gateways.gateway.networking.k8s.io',
      'grpcroutes.gateway.networking.k8s.io',
      'httproutes.gateway.networking.k8s.io',
      'referencegrants.gateway.networking.k8s.io',
    ]);
    for (const c of crds) {
      const approval = c.metadata.annotations?.['api-approved.kubernetes.io'];
      if (/(^|\.)(k8s|kubernetes)\.io$/.test(c.spec.group)) expect(approval, c.metadata.name).toMatch(/^https:\/\//);
      else expect(approval, c.metadata.name).toBeUndefined();
    }
  });
});
