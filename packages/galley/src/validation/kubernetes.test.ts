import { describe, expect, it } from 'vitest';
import { lineOf, validateYaml as validate } from './test-support.ts';
import type { ResourceReport } from './validate.ts';


const service = (spec: string) => `apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: shop
spec:
${spec}`;
const deployment = (spec: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-v1
  namespace: shop
spec:
${spec}`;
/** Kinds whose body is at the top level: `body` follows metadata directly. */
const topLevel = (kind: string, body: string) => `apiVersion: v1
kind: ${kind}
metadata:
  name: settings
  namespace: shop
${body}`;

interface Case {
  title: string;
  yaml: string;
  path: string;
  at: string;
  message: string | { contains: string };
}

function expectError(report: ResourceReport, c: Omit<Case, 'title'>): void {
  const atPath = report.errors.filter((p) => p.path === c.path);
  const p = typeof c.message === 'string' ? atPath.find((x) => x.message === c.message) : atPath.find((x) => x.message.includes((c.message as { contains: string }).contains));
  expect(p, `no error at ${c.path} with message ${JSON.stringify(c.message)}; got ${JSON.stringify(report.errors.map((x) => `${x.path}: ${x.message}`))}`).toBeDefined();
  expect(p!.line).toBe(lineOf(c.yaml, c.at));
  expect(report.valid).toBe(false);
}

const invalid: Case[] = [
  {
    title: 'service port out of range',
    yaml: service('  ports:\n  - port: 0\n'),
    path: 'spec.ports[0].port',
    at: 'port: 0',
    message: '0 is below the minimum 1',
  },
  {
    title: 'unnamed port among several',
    yaml: service('  ports:\n  - name: http\n    port: 80\n  - port: 9080\n'),
    path: 'spec.ports[1]',
    at: '- port: 9080',
    message: 'port name is required when a service has more than one port',
  },
  {
    title: 'duplicate port names',
    yaml: service('  ports:\n  - name: http\n    port: 80\n  - port: 8080\n    name: http\n'),
    path: 'spec.ports[1].name',
    at: '    name: http',
    message: 'duplicate port name "http" (also ports[0])',
  },
  {
    title: 'port name that is not a DNS label',
    yaml: service('  ports:\n  - name: HTTP_web\n    port: 80\n'),
    path: 'spec.ports[0].name',
    at: 'name: HTTP_web',
    message: { contains: 'invalid port name: "HTTP_web" is not a valid DNS-1123 label' },
  },
  {
    title: 'same port and protocol twice',
    yaml: service('  ports:\n  - name: a\n    port: 80\n  - port: 80\n    name: b\n'),
    path: 'spec.ports[1].port',
    at: '- port: 80',
    message: 'duplicate port 80/TCP (also ports[0])',
  },
  {
    title: 'targetPort out of range',
    yaml: service('  ports:\n  - port: 80\n    targetPort: 70000\n'),
    path: 'spec.ports[0].targetPort',
    at: 'targetPort: 70000',
    message: 'targetPort 70000 must be between 1 and 65535',
  },
  {
    title: 'targetPort name longer than 15',
    yaml: service('  ports:\n  - port: 80\n    targetPort: http-web-frontend\n'),
    path: 'spec.ports[0].targetPort',
    at: 'targetPort:',
    message: 'targetPort must be a port number or a container port name (IANA_SVC_NAME): "http-web-frontend" is longer than 15 characters',
  },
  {
    title: 'targetPort name with an underscore',
    yaml: service('  ports:\n  - port: 80\n    targetPort: http_web\n'),
    path: 'spec.ports[0].targetPort',
    at: 'targetPort:',
    message: { contains: `"http_web" must contain only lowercase letters, digits and '-'` },
  },
  {
    title: 'unknown protocol',
    yaml: service('  ports:\n  - port: 80\n    protocol: HTTP\n'),
    path: 'spec.ports[0].protocol',
    at: 'protocol: HTTP',
    message: '"HTTP" is not one of TCP, UDP, SCTP',
  },
  {
    title: 'nodePort on a ClusterIP service',
    yaml: service('  ports:\n  - port: 80\n    nodePort: 30080\n'),
    path: 'spec.ports[0].nodePort',
    at: 'nodePort: 30080',
    message: 'nodePort may not be used when type is ClusterIP',
  },
  {
    title: 'selector label value with a space',
    yaml: service('  selector:\n    app: "reviews v1"\n  ports:\n  - port: 80\n'),
    path: 'spec.selector.app',
    at: 'app: "reviews v1"',
    message: { contains: 'label value "reviews v1" is invalid' },
  },
  {
    title: 'selector label key with a bad prefix',
    yaml: service('  selector:\n    Example.COM/app: reviews\n  ports:\n  - port: 80\n'),
    path: 'spec.selector["Example.COM/app"]',
    at: 'Example.COM/app',
    message: 'label key "Example.COM/app" has an invalid prefix (must be a DNS-1123 subdomain)',
  },
  {
    title: 'service without ports',
    yaml: service('  selector:\n    app: reviews\n'),
    path: 'spec',
    at: 'spec:',
    message: 'a service needs at least one port (only headless services, clusterIP: None, may have none)',
  },
  {
    title: 'ExternalName without externalName',
    yaml: service('  type: ExternalName\n'),
    path: 'spec.type',
    at: 'type: ExternalName',
    message: 'an ExternalName service requires spec.externalName',
  },
  {
    title: 'clusterIP that is not an IP',
    yaml: service('  clusterIP: auto\n  ports:\n  - port: 80\n'),
    path: 'spec.clusterIP',
    at: 'clusterIP: auto',
    message: 'clusterIP "auto" must be an IP address, "None" or empty',
  },
  {
    title: 'deployment selector not matching the template',
    yaml: deployment('  selector:\n    matchLabels:\n      app: reviews\n  template:\n    metadata:\n      labels:\n        app: ratings\n    spec:\n      containers:\n      - name: app\n        image: reviews:1\n'),
    path: 'spec.selector',
    at: 'selector:',
    message: '`selector` does not match template `labels`: the deployment would not own the pods it creates',
  },
  {
    title: 'deployment with an empty selector',
    yaml: deployment('  selector: {}\n  template:\n    spec:\n      containers:\n      - name: app\n        image: reviews:1\n'),
    path: 'spec.selector',
    at: 'selector: {}',
    message: 'empty selector is invalid for a deployment: it must select the pods of its template',
  },
  {
    title: 'In requirement without values',
    yaml: deployment(
      '  selector:\n    matchExpressions:\n    - key: app\n      operator: In\n      values: []\n  template:\n    metadata:\n      labels:\n        app: reviews\n    spec:\n      containers:\n      - name: app\n        image: reviews:1\n',
    ),
    path: 'spec.selector.matchExpressions[0].values',
    at: 'values: []',
    message: 'values must be non-empty when operator is In',
  },
  {
    title: 'duplicate container names',
    yaml: deployment(
      '  selector:\n    matchLabels:\n      app: reviews\n  template:\n    metadata:\n      labels:\n        app: reviews\n    spec:\n      containers:\n      - name: app\n        image: reviews:1\n      - image: proxy:1\n        name: app\n',
    ),
    path: 'spec.template.spec.containers[1].name',
    at: '        name: app',
    message: 'duplicate container name "app" (also containers[0])',
  },
  {
    title: 'container without image',
    yaml: deployment('  selector:\n    matchLabels:\n      app: reviews\n  template:\n    metadata:\n      labels:\n        app: reviews\n    spec:\n      containers:\n      - name: app\n'),
    path: 'spec.template.spec.containers[0]',
    at: '- name: app',
    message: 'container image is required',
  },
  {
    title: 'container port name too long',
    yaml: deployment(
      '  selector:\n    matchLabels:\n      app: reviews\n  template:\n    metadata:\n      labels:\n        app: reviews\n    spec:\n      containers:\n      - name: app\n        image: reviews:1\n        ports:\n        - containerPort: 9080\n          name: reviews-http-port\n',
    ),
    path: 'spec.template.spec.containers[0].ports[0].name',
    at: 'name: reviews-http-port',
    message: 'invalid port name: "reviews-http-port" is longer than 15 characters',
  },
  {
    title: 'pod without containers',
    yaml: 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: shop\nspec:\n  containers: []\n',
    path: 'spec.containers',
    at: 'containers: []',
    message: 'a pod needs at least one container',
  },
  {
    title: 'pod with an invalid service account name',
    yaml: 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: shop\nspec:\n  serviceAccountName: Reviews_SA\n  containers:\n  - name: app\n    image: reviews:1\n',
    path: 'spec.serviceAccountName',
    at: 'serviceAccountName:',
    message: '"Reviews_SA" is not a valid service account name (DNS-1123 subdomain)',
  },
  {
    title: 'ConfigMap key with a space',
    yaml: topLevel('ConfigMap', 'data:\n  "app config": x\n'),
    path: 'data["app config"]',
    at: '"app config"',
    message: `key "app config" must consist of letters, digits, '-', '_' or '.' (and not be "." or "..")`,
  },
  {
    title: 'ConfigMap key in data and binaryData',
    yaml: topLevel('ConfigMap', 'data:\n  cert: plain\nbinaryData:\n  cert: aGVsbG8=\n'),
    path: 'binaryData.cert',
    at: 'cert: aGVsbG8=',
    message: 'key "cert" is also in data; a key may appear only once',
  },
  {
    title: 'Secret data that is not base64',
    yaml: topLevel('Secret', 'data:\n  password: hunter2!\n'),
    path: 'data.password',
    at: 'password: hunter2!',
    message: 'value of "password" is not valid base64 (data holds base64; use stringData for plain text)',
  },
  {
    title: 'TLS Secret without a key',
    yaml: topLevel('Secret', 'type: kubernetes.io/tls\nstringData:\n  tls.crt: "-----BEGIN CERTIFICATE-----"\n'),
    path: 'type',
    at: 'type: kubernetes.io/tls',
    message: 'a Secret of type kubernetes.io/tls must have the key "tls.key" in data or stringData',
  },
  {
    title: 'ServiceAccount image pull secret without a name',
    yaml: topLevel('ServiceAccount', 'imagePullSecrets:\n- name: ""\n'),
    path: 'imagePullSecrets[0]',
    at: '- name: ""',
    message: 'imagePullSecrets entries need the name of a Secret',
  },
  {
    title: 'Namespace finalizer that is not qualified',
    yaml: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\nspec:\n  finalizers: ["cleanup"]\n',
    path: 'spec.finalizers[0]',
    at: 'finalizers:',
    message: 'finalizer "cleanup" must be fully qualified (e.g. example.com/cleanup)',
  },
];

describe('Kubernetes kinds', () => {
  it.each(invalid)('rejects $title', (c) => expectError(validate(c.yaml), c));

  it('accepts a typical service, deployment, headless service and configuration objects', () => {
    const svc = validate(
      service(`  selector:
    app: reviews
  ports:
  - name: http
    port: 9080
    targetPort: http-web
  - name: grpc
    port: 9090
    targetPort: 9090
    appProtocol: grpc
`),
    );
    expect(svc.errors).toEqual([]);
    expect(validate(service('  clusterIP: None\n  selector:\n    app: reviews\n')).errors).toEqual([]);
    expect(validate(service('  type: ExternalName\n  externalName: db.example.com\n')).errors).toEqual([]);
    const dep = validate(
      deployment(`  replicas: 2
  selector:
    matchLabels:
      app: reviews
    matchExpressions:
    - key: version
      operator: In
      values: [v1, v2]
  template:
    metadata:
      labels:
        app: reviews
        version: v1
      annotations:
        sidecar.istio.io/inject: "true"
    spec:
      serviceAccountName: bookinfo-reviews
      containers:
      - name: reviews
        image: docker.io/istio/examples-bookinfo-reviews-v1:1.20.1
        ports:
        - containerPort: 9080
          name: http-web
`),
    );
    expect(dep.errors).toEqual([]);
    expect(validate(topLevel('ConfigMap', 'data:\n  mesh.yaml: "a: b"\nbinaryData:\n  logo.png: aGVsbG8=\n')).errors).toEqual([]);
    expect(validate(topLevel('Secret', 'type: kubernetes.io/tls\ndata:\n  tls.crt: aGVsbG8=\n  tls.key: aGVsbG8=\n')).errors).toEqual([]);
    expect(validate(topLevel('ServiceAccount', 'automountServiceAccountToken: false\n')).errors).toEqual([]);
  });

  it('reports every problem of a service in one pass', () => {
    const yaml = service(`  type: ClusterIP
  selector:
    "": reviews
  ports:
  - name: http
    port: 80
    targetPort: 0
    nodePort: 31000
  - port: 81
  externalIPs: ["1.2.3"]
`);
    const r = validate(yaml);
    expect(r.errors.map((p) => [p.line, p.path])).toEqual([
      [lineOf(yaml, '"": reviews'), 'spec.selector[""]'],
      [lineOf(yaml, 'targetPort: 0'), 'spec.ports[0].targetPort'],
      [lineOf(yaml, 'nodePort: 31000'), 'spec.ports[0].nodePort'],
      [lineOf(yaml, '- port: 81'), 'spec.ports[1]'],
      [lineOf(yaml, 'externalIPs:'), 'spec.externalIPs[0]'],
    ]);
  });
});
