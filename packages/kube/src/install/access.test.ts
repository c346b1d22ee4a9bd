// Least privilege, both ways: every Kubernetes API call weftd's modules make (read from their
// source: client-node's typed calls, and the CRD kinds the config source lists) is granted by
// access.ts, and every rule access.ts grants is used by a call. access.ts is what the weftd chart's
// RBAC is checked against (deploy/charts/charts.test.ts), so a module that starts a new kind of call
// without a rule, or a rule nothing uses any more, fails here.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as client from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { weftdClusterAccess, weftdNamespaceAccess } from './access.ts';
import { crdManifests } from './manifests.ts';

const src = join(import.meta.dirname, '..');

/** weftd's modules: packages/kube/src without the tests, the test helpers and install/ (which runs as the user, in weftctl). */
function weftdModules(): { file: string; text: string }[] {
  return readdirSync(src, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && e.name !== 'testing.ts' && e.name !== 'index.ts')
    .map((e) => ({ file: e.name, text: readFileSync(join(src, e.name), 'utf8') }));
}

const verbOf: Record<string, string> = { list: 'list', read: 'get', create: 'create', patch: 'patch', replace: 'update', delete: 'delete' };
const groupOf: Record<string, string> = {
  namespaces: '',
  serviceaccounts: '',
  nodes: '',
  pods: '',
  services: '',
  configmaps: '',
  secrets: '',
  endpointslices: 'discovery.k8s.io',
  leases: 'coordination.k8s.io',
  tokenreviews: 'authentication.k8s.io',
  mutatingwebhookconfigurations: 'admissionregistration.k8s.io',
  validatingwebhookconfigurations: 'admissionregistration.k8s.io',
};

/** The methods of client-node's typed API classes (a call of any other method is not an API call). */
const apiMethods = new Set(
  Object.entries(client)
    .filter(([name, v]) => /^[A-Z]\w*Api$/.test(name) && typeof v === 'function')
    .flatMap(([, v]) => Object.getOwnPropertyNames((v as { prototype: object }).prototype)),
);

/** `group/resource verb` for each typed client call, e.g. `createNamespacedSecret(` -> `/secrets create`. */
function typedCalls(): Map<string, string[]> {
  const calls = new Map<string, string[]>();
  for (const { file, text } of weftdModules()) {
    // the API clients of the module: what makeApiClient returned (`const core = kc.makeApiClient(...)`, `this.#api = ...`)
    const receivers = [...text.matchAll(/(?:(?:const|let)\s+(\w+)|(this\.#\w+))\s*=\s*[\w.#]+\.makeApiClient\(/g)].map((m) => (m[1] ?? m[2])!.replace(/[.#$]/g, '\\$&'));
    if (receivers.length === 0) continue;
    const call = new RegExp(`(?:${receivers.join('|')})\\.((list|read|create|patch|replace|delete)((?:Namespaced|Cluster)?[A-Z]\\w*?)(?:ForAllNamespaces)?)\\(`, 'g');
    for (const [, method, verb, type] of text.matchAll(call)) {
      if (!apiMethods.has(method!)) continue;
      const kind = type!.replace(/^(Namespaced|Cluster)/, '');
      if (kind === 'CustomObject' || kind === 'CustomObjectStatus') continue; // dynamic kinds (config source, gateway controller): checked below
      const resource = `${kind.toLowerCase()}s`;
      if (!(resource in groupOf)) throw new Error(`${file}: a call to ${verb}${type} is not in this test's table of resources: add it (and its RBAC rule)`);
      const key = `${groupOf[resource]}/${resource} ${verbOf[verb!]}`;
      calls.set(key, [...(calls.get(key) ?? []), file]);
    }
  }
  return calls;
}

const granted = [...weftdClusterAccess('istio-system'), ...weftdNamespaceAccess].flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => ({ key: `${g}/${res} ${v}`, by: r.by })))));

describe('weftd’s API access (install/access.ts)', () => {
  it('grants every call weftd’s modules make, each to the module that makes it', () => {
    const calls = typedCalls();
    expect(calls.size).toBeGreaterThan(5);
    for (const [key, files] of calls) {
      const rules = granted.filter((g) => g.key === key);
      expect(rules.length, `${key} (called in ${files.join(', ')}) has no rule`).toBeGreaterThan(0);
      for (const f of files) expect(rules.flatMap((r) => r.by), key).toContain(f);
      // an informer lists, then watches
      if (key.endsWith(' list')) expect(granted.map((g) => g.key)).toContain(key.replace(/ list$/, ' watch'));
    }
  });

  it('grants nothing no module uses: each typed rule is a call, each CRD rule a kind weftd watches', () => {
    const calls = typedCalls();
    const crdPlurals = new Set(crdManifests().map((c) => `${(c.spec as { group: string }).group}/${(c.spec as { names: { plural: string } }).names.plural}`));
    for (const g of granted) {
      const [resource, verb] = g.key.split(' ') as [string, string];
      // The Gateway API controller writes through the dynamic clients (custom objects, server-side
      // apply of the gateway deployment's objects): its rules are checked against those calls.
      if (g.by.includes('gateway-controller.ts') && !calls.has(g.key)) {
        const text = readFileSync(join(src, 'gateway-controller.ts'), 'utf8');
        const evidence = resource.endsWith('/status')
          ? /CustomObjectStatus\(/
          : verb === 'create' && crdPlurals.has(resource)
            ? /createClusterCustomObject\(/
            : verb === 'get' && crdPlurals.has(resource)
              ? /getNamespacedCustomObject\(/
              : /PatchStrategy\.ServerSideApply/;
        expect(text, g.key).toMatch(evidence);
        continue;
      }
      if (crdPlurals.has(resource) || resource === 'apiextensions.k8s.io/customresourcedefinitions') {
        expect(['list', 'watch'], g.key).toContain(verb); // the config source only reads them
        expect(g.by).toEqual(['config-source.ts']);
        continue;
      }
      const used = verb === 'watch' ? calls.has(`${resource} list`) : calls.has(g.key);
      expect(used, `${g.key} is granted but no module calls it`).toBe(true);
    }
    // and every CRD kind the cluster may have is read, none forgotten
    for (const plural of crdPlurals) expect(granted.map((g) => g.key)).toContain(`${plural} list`);
  });
});
