// The charts: `helm lint` and `helm template` pass, and weftctl install's TypeScript rendering
// (@weft/kube renderInstall) gives exactly the objects `helm template` gives, for the defaults and
// for a set of non-default values; weftd's RBAC is exactly the API access weftd makes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chartNames, type InstallValues, installValues, type Manifest, renderChart, type Values, weftdClusterAccess, weftdNamespaceAccess } from '@weft/kube';
import { parseYamlDocuments, toYaml } from '@weft/model';
import { findOnPath, noteSkip } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const charts = dirname(fileURLToPath(import.meta.url));
const skip = noteSkip(process.env.WEFT_HELM || findOnPath('go') ? undefined : 'needs helm, built from the Go module proxy by deploy/charts/helm.sh: install Go 1.26+ (or set WEFT_HELM to a helm v4 binary)');

/** The objects of a YAML stream, in a stable order; the MeshConfig text parsed, so that layout does not count. */
function normalize(objects: Manifest[]): Manifest[] {
  return objects
    .map((o) => {
      const copy = structuredClone(o);
      const data = copy.data as Record<string, string> | undefined;
      if (copy.kind === 'ConfigMap' && copy.metadata.name === 'istio' && data) for (const k of Object.keys(data)) (data as Record<string, unknown>)[k] = parseYamlDocuments(data[k]!, k).documents[0]?.value;
      return copy;
    })
    .sort((a, b) => `${a.kind}/${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.namespace}/${b.metadata.name}`));
}

const nonDefault: Partial<Record<(typeof chartNames)[number], Values>> = {
  base: { crds: { enabled: false } },
  weftd: {
    revision: 'canary',
    image: 'registry.example/weft/weftd:9.9.9',
    proxyImage: 'registry.example/weft/proxy:9.9.9',
    replicaCount: 2,
    logLevel: 'debug',
    resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { memory: '2Gi' } },
    meshConfig: { accessLogFile: '/dev/stdout', extensionProviders: [{ name: 'otel', opentelemetry: { service: 'otel.observability.svc.cluster.local', port: 4317 } }], defaultConfig: { holdApplicationUntilProxyStarts: true } },
    webhook: { failurePolicy: 'Ignore' },
    podDisruptionBudget: { enabled: false },
  },
  gateway: { name: 'edge', labels: { istio: 'edge', app: 'edge-gateway' }, service: { type: 'NodePort' }, replicaCount: 3 },
};

describe.skipIf(skip !== undefined)('deploy/charts with helm', () => {
  let helm: string;
  let dir: string;
  beforeAll(() => {
    if (process.env.WEFT_HELM) helm = process.env.WEFT_HELM;
    else {
      const built = spawnSync(join(charts, 'helm.sh'), { encoding: 'utf8', timeout: 15 * 60_000 });
      if (built.status !== 0) throw new Error(`deploy/charts/helm.sh failed (${built.status}):\n${built.stderr}`);
      helm = built.stdout.trim();
    }
    dir = mkdtempSync(join(tmpdir(), 'weft-charts-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (...args: string[]) => spawnSync(helm, args, { encoding: 'utf8', cwd: charts });

  for (const chart of chartNames) {
    it(`${chart}: helm lint passes`, () => {
      const r = run('lint', '--strict', chart);
      expect(r.stdout + r.stderr).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
      expect(r.status).toBe(0);
    });
  }

  function template(chart: (typeof chartNames)[number], values: Values | undefined): Manifest[] {
    const args = ['template', chart, chart, '--namespace', 'istio-system'];
    if (values) {
      const file = join(dir, `${chart}-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, toYaml(values));
      args.push('--values', file);
    }
    const r = run(...args);
    expect(r.status, r.stderr).toBe(0);
    return parseYamlDocuments(r.stdout, `${chart} (helm template)`).documents.map((d) => d.value as Manifest);
  }

  for (const [label, overrides] of [
    ['the defaults', undefined],
    ['non-default values (revision, images, mesh config, resources, a named gateway, no CRDs, no PDB)', nonDefault],
  ] as const) {
    it(`helm template and weftctl install render the same objects: ${label}`, () => {
      const v: InstallValues = installValues(overrides ?? {});
      for (const chart of chartNames) {
        const fromHelm = template(chart, overrides?.[chart]);
        const fromTs = renderChart(chart, v[chart], v.namespace);
        expect(fromHelm.length, chart).toBeGreaterThan(0);
        expect(normalize(fromTs), chart).toEqual(normalize(fromHelm));
      }
    });
  }

  it('weftd’s RBAC grants exactly the API access weftd makes, no wildcard', () => {
    const objects = template('weftd', undefined);
    const clusterRole = objects.find((o) => o.kind === 'ClusterRole')!;
    const role = objects.find((o) => o.kind === 'Role')!;
    const strip = (rules: { by?: string[] }[]) => rules.map(({ by: _, ...r }) => r);
    expect(clusterRole.rules).toEqual(strip(weftdClusterAccess('istio-system')));
    expect(role.rules).toEqual(strip([...weftdNamespaceAccess]));
    // The list, as a person reviewing it reads it:
    const granted = (clusterRole.rules as { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[]).flatMap((r) =>
      r.resources.map((res) => `${r.apiGroups[0] || 'core'}/${res}${r.resourceNames ? `(${r.resourceNames.join(',')})` : ''}: ${r.verbs.join(',')}`),
    );
    expect(granted).toEqual([
      'apiextensions.k8s.io/customresourcedefinitions: list,watch',
      'networking.istio.io/destinationrules: list,watch',
      'networking.istio.io/gateways: list,watch',
      'networking.istio.io/serviceentries: list,watch',
      'networking.istio.io/sidecars: list,watch',
      'networking.istio.io/virtualservices: list,watch',
      'networking.istio.io/workloadentries: list,watch',
      'security.istio.io/authorizationpolicies: list,watch',
      'security.istio.io/peerauthentications: list,watch',
      'security.istio.io/requestauthentications: list,watch',
      'gateway.networking.k8s.io/gatewayclasses: list,watch',
      'gateway.networking.k8s.io/gateways: list,watch',
      'gateway.networking.k8s.io/httproutes: list,watch',
      'gateway.networking.k8s.io/grpcroutes: list,watch',
      'gateway.networking.k8s.io/referencegrants: list,watch',
      'core/namespaces: list,watch',
      'core/pods: list,watch',
      'core/services: list,watch',
      'gateway.networking.k8s.io/gatewayclasses: create',
      'gateway.networking.k8s.io/gateways: get',
      'gateway.networking.k8s.io/gatewayclasses/status: patch',
      'gateway.networking.k8s.io/gateways/status: patch',
      'gateway.networking.k8s.io/httproutes/status: patch',
      'gateway.networking.k8s.io/grpcroutes/status: patch',
      'core/secrets: get',
      'core/services: get',
      'core/serviceaccounts: create,patch',
      'core/services: create,patch',
      'apps/deployments: create,patch',
      'discovery.k8s.io/endpointslices: list,watch',
      'core/nodes: list,watch',
      'core/configmaps: create,list,patch,watch',
      'authentication.k8s.io/tokenreviews: create',
      'admissionregistration.k8s.io/mutatingwebhookconfigurations(istio-sidecar-injector): list,patch,watch',
      'admissionregistration.k8s.io/validatingwebhookconfigurations(istio-validator-istio-system): list,patch,watch',
    ]);
    const all = JSON.stringify([clusterRole.rules, role.rules]);
    expect(all).not.toContain('"*"');
    expect(all).not.toMatch(/"(delete|deletecollection|escalate|bind|impersonate)"/);
  });

  it('weftd’s Deployment and Service have Istio’s ports, and the webhooks Istio’s names and failure policy', () => {
    const objects = template('weftd', undefined);
    const svc = objects.find((o) => o.kind === 'Service')!;
    expect((svc.spec as { ports: { name: string; port: number; targetPort: number }[] }).ports.map((p) => `${p.name} ${p.port}->${p.targetPort}`)).toEqual([
      'grpc-xds 15010->15010',
      'https-dns 15012->15012',
      'http-monitoring 15014->15014',
      'https-webhook 443->15017',
    ]);
    const validating = objects.find((o) => o.kind === 'ValidatingWebhookConfiguration')!;
    const mutating = objects.find((o) => o.kind === 'MutatingWebhookConfiguration')!;
    expect(validating.metadata.name).toBe('istio-validator-istio-system');
    expect(mutating.metadata.name).toBe('istio-sidecar-injector');
    const hooks = [...(validating.webhooks as { name: string; failurePolicy: string }[]), ...(mutating.webhooks as { name: string; failurePolicy: string }[])];
    expect(hooks.map((h) => `${h.name} ${h.failurePolicy}`)).toEqual([
      'rev.validation.istio.io Fail',
      'rev.namespace.sidecar-injector.istio.io Fail',
      'rev.object.sidecar-injector.istio.io Fail',
      'namespace.sidecar-injector.istio.io Fail',
      'object.sidecar-injector.istio.io Fail',
    ]);
    expect(objects.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'MutatingWebhookConfiguration', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount', 'ValidatingWebhookConfiguration']);
  });

  it('the gateway’s Service has Istio’s ports and target ports (80 -> 8080: Istio’s bookinfo-gateway.yaml names 8080)', () => {
    const svc = template('gateway', undefined).find((o) => o.kind === 'Service')!;
    expect((svc.spec as { ports: { name: string; port: number; targetPort: number }[] }).ports.map((p) => `${p.name} ${p.port}->${p.targetPort}`)).toEqual(['status-port 15021->15021', 'http2 80->8080', 'https 443->8443']);
  });
});
