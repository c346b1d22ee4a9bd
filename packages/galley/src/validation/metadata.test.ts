import { describe, expect, it } from 'vitest';
import { lineOf, validateYaml as validate } from './test-support.ts';


/** A resource of `apiVersion`/`kind` with the given metadata lines and spec. */
const resource = (apiVersion: string, kind: string, metadata: string, spec = 'spec: {}\n') => `apiVersion: ${apiVersion}
kind: ${kind}
metadata:
${metadata}${spec}`;
const policy = (metadata: string, spec = 'spec:\n  action: ALLOW\n') => resource('security.istio.io/v1', 'AuthorizationPolicy', metadata, spec);
const svc = (metadata: string) => resource('v1', 'Service', metadata, 'spec:\n  ports:\n  - port: 80\n');

interface Case {
  title: string;
  yaml: string;
  path: string;
  at: string;
  message: string;
}

const invalid: Case[] = [
  {
    title: 'Istio resource name with upper case',
    yaml: policy('  name: AllowAll\n  namespace: shop\n'),
    path: 'metadata.name',
    at: 'name: AllowAll',
    message: `invalid AuthorizationPolicy name: "AllowAll" is not a valid DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)`,
  },
  {
    title: 'Service name with a dot',
    yaml: svc('  name: reviews.v1\n  namespace: shop\n'),
    path: 'metadata.name',
    at: 'name: reviews.v1',
    message: `invalid Service name: "reviews.v1" is not a valid DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)`,
  },
  {
    title: 'Namespace name longer than 63',
    yaml: resource('v1', 'Namespace', `  name: ${'n'.repeat(64)}\n`),
    path: 'metadata.name',
    at: 'name: nnnn',
    message: `invalid Namespace name: "${'n'.repeat(64)}" is longer than 63 characters`,
  },
  {
    title: 'Gateway API resource name with an underscore',
    yaml: resource('gateway.networking.k8s.io/v1', 'HTTPRoute', '  name: my_route\n  namespace: shop\n'),
    path: 'metadata.name',
    at: 'name: my_route',
    message: `invalid HTTPRoute name: "my_route" is not a valid DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)`,
  },
  {
    title: 'ConfigMap name ending with a dash',
    yaml: resource('v1', 'ConfigMap', '  name: settings-\n  namespace: shop\n', 'data: {}\n'),
    path: 'metadata.name',
    at: 'name: settings-',
    message: `invalid ConfigMap name: "settings-" is not a valid DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)`,
  },
  {
    title: 'namespace with a dot',
    yaml: policy('  name: allow\n  namespace: shop.prod\n'),
    path: 'metadata.namespace',
    at: 'namespace: shop.prod',
    message: `invalid namespace: "shop.prod" is not a valid DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)`,
  },
  {
    title: 'label key with two slashes',
    yaml: policy('  name: allow\n  labels:\n    example.com/team/a: shop\n'),
    path: 'metadata.labels["example.com/team/a"]',
    at: 'example.com/team/a',
    message: 'label key "example.com/team/a" has an invalid prefix (must be a DNS-1123 subdomain)',
  },
  {
    title: 'label value with a space',
    yaml: policy('  name: allow\n  labels:\n    team: "shop front"\n'),
    path: 'metadata.labels.team',
    at: 'team: "shop front"',
    message: `label value "shop front" is invalid (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)`,
  },
  {
    title: 'label value longer than 63',
    yaml: svc(`  name: reviews\n  labels:\n    version: ${'v'.repeat(64)}\n`),
    path: 'metadata.labels.version',
    at: 'version: vvvv',
    message: `label value "${'v'.repeat(64)}" is invalid (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)`,
  },
  {
    title: 'annotation key with a space',
    yaml: policy('  name: allow\n  annotations:\n    "owner team": shop\n'),
    path: 'metadata.annotations["owner team"]',
    at: '"owner team"',
    message: `annotation key "owner team" is invalid (a name of at most 63 letters, digits, '-', '_' or '.', optionally prefixed by a DNS subdomain and '/')`,
  },
  {
    title: 'dry-run on a kind that does not support it',
    yaml: resource('security.istio.io/v1', 'PeerAuthentication', '  name: strict\n  annotations:\n    istio.io/dry-run: "true"\n'),
    path: 'metadata.annotations["istio.io/dry-run"]',
    at: 'istio.io/dry-run',
    message: 'PeerAuthentication does not support the annotation istio.io/dry-run (only AuthorizationPolicy does); please remove it',
  },
  {
    title: 'dry-run on an AUDIT policy',
    yaml: policy('  name: audit\n  annotations:\n    istio.io/dry-run: "true"\n', 'spec:\n  action: AUDIT\n  rules:\n  - {}\n'),
    path: 'metadata.annotations["istio.io/dry-run"]',
    at: 'istio.io/dry-run',
    message: 'the annotation istio.io/dry-run currently only supports action ALLOW/DENY, found action AUDIT',
  },
  {
    title: 'dry-run that is not a boolean',
    yaml: policy('  name: allow\n  annotations:\n    istio.io/dry-run: "yes"\n'),
    path: 'metadata.annotations["istio.io/dry-run"]',
    at: 'istio.io/dry-run',
    message: 'annotation istio.io/dry-run has invalid value "yes": use "true" or "false"',
  },
];

describe('metadata', () => {
  it.each(invalid)('rejects $title', (c) => {
    const r = validate(c.yaml);
    const p = r.errors.find((x) => x.path === c.path);
    expect(p, JSON.stringify(r.errors)).toBeDefined();
    expect(p!.message).toBe(c.message);
    expect(p!.line).toBe(lineOf(c.yaml, c.at));
    expect(r.valid).toBe(false);
  });

  it('accepts names, namespaces, labels and annotations Kubernetes accepts', () => {
    const r = validate(
      policy(`  name: allow.reviews-v1
  namespace: shop-prod
  labels:
    app.kubernetes.io/name: reviews
    version: v1.2_3
    empty: ""
  annotations:
    istio.io/dry-run: "true"
    kubectl.kubernetes.io/last-applied-configuration: "{}"
    note: "any text at all, even with spaces"
`),
    );
    expect(r.errors).toEqual([]);
    expect(validate(resource('gateway.networking.k8s.io/v1', 'GatewayClass', '  name: istio.io\n', 'spec:\n  controllerName: istio.io/gateway-controller\n')).errors).toEqual([]);
  });

  it('reports every metadata problem in one pass, with the spec problems', () => {
    const yaml = policy('  name: Allow\n  namespace: Shop\n  labels:\n    "-bad": ok\n', 'spec:\n  action: DENY\n');
    const r = validate(yaml);
    expect(r.errors.map((p) => [p.line, p.path])).toEqual([
      [lineOf(yaml, 'name: Allow'), 'metadata.name'],
      [lineOf(yaml, 'namespace: Shop'), 'metadata.namespace'],
      [lineOf(yaml, '"-bad": ok'), 'metadata.labels["-bad"]'],
      [lineOf(yaml, 'action: DENY'), 'spec.action'],
    ]);
  });
});
