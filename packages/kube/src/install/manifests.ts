// What `weftctl install` applies: the objects of deploy/charts' base, weftd and gateway charts,
// rendered here in TypeScript from the charts' own values.yaml (the defaults) merged with the
// user's values, so that installing needs no helm. The Helm templates stay the chart users' way
// in; deploy/charts/charts.test.ts renders both with `helm template` and this for several sets of
// values and requires the same objects, so the two cannot drift.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseYamlDocuments, toYaml } from '@weft/model';
import { policyRule, weftdClusterAccess, weftdNamespaceAccess } from './access.ts';

/** A manifest object (what the API server takes). */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export type ChartName = 'base' | 'weftd' | 'gateway';
export const chartNames: readonly ChartName[] = ['base', 'weftd', 'gateway'];

/** deploy/charts and deploy/crds of the checkout this module is in. */
export const chartsDir = fileURLToPath(new URL('../../../../deploy/charts/', import.meta.url));
const crdFile = fileURLToPath(new URL('../../../../deploy/crds/crd-all.gen.yaml', import.meta.url));

export type Values = { [key: string]: unknown };

export interface InstallValues {
  /** The release namespace: weftd's, the gateway's (Istio: istio-system). */
  namespace: string;
  base: Values;
  weftd: Values;
  gateway: Values;
  /** Whether to install the gateway chart at all. */
  gatewayEnabled: boolean;
}

function parseYaml(text: string, file: string): unknown[] {
  const { documents, problems } = parseYamlDocuments(text, file);
  if (problems.length > 0) throw new Error(`${file}: ${problems[0]!.message}`);
  return documents.map((d) => d.value);
}

/** A chart's values.yaml. */
export function chartDefaults(chart: ChartName, dir = chartsDir): Values {
  const file = `${dir}/${chart}/values.yaml`;
  if (!existsSync(file)) throw new Error(`no ${file}: weftctl install renders the charts of its own checkout`);
  return (parseYaml(readFileSync(file, 'utf8'), file)[0] ?? {}) as Values;
}

const isObject = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Helm's merge of values: maps merge key by key, anything else (lists too) replaces; null deletes. */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isObject(v) && isObject(out[k])) out[k] = mergeValues(out[k] as Values, v);
    else out[k] = structuredClone(v);
  }
  return out;
}

/** Defaults of every chart, then `overrides` per chart (e.g. from `weftctl install --values FILE`). */
export function installValues(overrides: Partial<Record<ChartName, Values>> = {}, options: { namespace?: string; gateway?: boolean; dir?: string } = {}): InstallValues {
  const dir = options.dir ?? chartsDir;
  return {
    namespace: options.namespace ?? 'istio-system',
    base: mergeValues(chartDefaults('base', dir), overrides.base ?? {}),
    weftd: mergeValues(chartDefaults('weftd', dir), overrides.weftd ?? {}),
    gateway: mergeValues(chartDefaults('gateway', dir), overrides.gateway ?? {}),
    gatewayEnabled: options.gateway ?? true,
  };
}

/** A value by dotted path, checked: a missing or mistyped value is the user's values file's fault, said plainly. */
function get<T>(values: Values, chart: ChartName, path: string, type: 'string' | 'number' | 'boolean' | 'object' | 'array'): T {
  let v: unknown = values;
  for (const k of path.split('.')) v = isObject(v) ? v[k] : undefined;
  const actual = Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
  if (actual !== type) throw new Error(`values: ${chart}.${path} must be ${type === 'array' ? 'a list' : type === 'object' ? 'a mapping' : `a ${type}`}${v === undefined ? ', and is missing' : `, not ${JSON.stringify(v)}`}`);
  return v as T;
}

/** The CRDs of deploy/crds (one source: model's generator). */
export function crdManifests(file = crdFile): Manifest[] {
  return parseYaml(readFileSync(file, 'utf8'), file) as Manifest[];
}

export function renderBase(values: Values): Manifest[] {
  const out: Manifest[] = [];
  if (get<boolean>(values, 'base', 'crds.enabled', 'boolean')) out.push(...crdManifests());
  if (get<boolean>(values, 'base', 'clusterRoles.enabled', 'boolean')) {
    const groups = ['networking.istio.io', 'security.istio.io', 'gateway.networking.k8s.io'];
    out.push(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'weft-reader', labels: { 'app.kubernetes.io/part-of': 'weft', 'rbac.authorization.k8s.io/aggregate-to-view': 'true' } },
        rules: [{ apiGroups: groups, resources: ['*'], verbs: ['get', 'list', 'watch'] }],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'weft-editor', labels: { 'app.kubernetes.io/part-of': 'weft', 'rbac.authorization.k8s.io/aggregate-to-admin': 'true', 'rbac.authorization.k8s.io/aggregate-to-edit': 'true' } },
        rules: [{ apiGroups: groups, resources: ['*'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'] }],
      },
    );
  }
  return out;
}

/** The revision the injector selects with istio.io/rev ("" is `default`). */
export function revisionOf(values: Values): string {
  return get<string>(values, 'weftd', 'revision', 'string') || 'default';
}

export function renderWeftd(values: Values, namespace: string): Manifest[] {
  const rev = revisionOf(values);
  const labels = () => ({ app: 'weftd', istio: 'pilot', 'istio.io/rev': rev, 'app.kubernetes.io/name': 'weftd', 'app.kubernetes.io/part-of': 'weft' });
  const meta = (name: string, namespaced = true) => ({ name, ...(namespaced ? { namespace } : {}), labels: labels() });
  const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  const failurePolicy = get<string>(values, 'weftd', 'webhook.failurePolicy', 'string');
  const service = (path: string) => ({ service: { name: 'weftd', namespace, path, port: 443 } });
  const clusterRole = `weftd-${namespace}`;
  const injectors = values.revision === '' ? ['rev.namespace', 'rev.object', 'namespace', 'object'] : ['rev.namespace', 'rev.object'];
  const selectors: Record<string, { namespaceSelector: unknown; objectSelector: unknown }> = {
    'rev.namespace': {
      namespaceSelector: {
        matchExpressions: [
          { key: 'istio.io/rev', operator: 'In', values: [rev] },
          { key: 'istio-injection', operator: 'DoesNotExist' },
        ],
      },
      objectSelector: { matchExpressions: [{ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] }] },
    },
    'rev.object': {
      namespaceSelector: {
        matchExpressions: [
          { key: 'istio.io/rev', operator: 'DoesNotExist' },
          { key: 'istio-injection', operator: 'DoesNotExist' },
        ],
      },
      objectSelector: {
        matchExpressions: [
          { key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] },
          { key: 'istio.io/rev', operator: 'In', values: [rev] },
        ],
      },
    },
    namespace: {
      namespaceSelector: { matchExpressions: [{ key: 'istio-injection', operator: 'In', values: ['enabled'] }] },
      objectSelector: { matchExpressions: [{ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] }] },
    },
    object: {
      namespaceSelector: {
        matchExpressions: [
          { key: 'istio-injection', operator: 'DoesNotExist' },
          { key: 'istio.io/rev', operator: 'DoesNotExist' },
        ],
      },
      objectSelector: {
        matchExpressions: [
          { key: 'sidecar.istio.io/inject', operator: 'In', values: ['true'] },
          { key: 'istio.io/rev', operator: 'DoesNotExist' },
        ],
      },
    },
  };
  const ports = [
    ['grpc-xds', 15010],
    ['https-dns', 15012],
    ['http-monitoring', 15014],
    ['https-webhook', 15017],
  ] as const;
  const out: Manifest[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('weftd') },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(clusterRole, false), rules: weftdClusterAccess(namespace).map(policyRule) },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: meta(clusterRole, false),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects: [{ kind: 'ServiceAccount', name: 'weftd', namespace }],
    },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta('weftd'), rules: weftdNamespaceAccess.map(policyRule) },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta('weftd'),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'weftd' },
      subjects: [{ kind: 'ServiceAccount', name: 'weftd', namespace }],
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta('istio'),
      data: { mesh: meshYaml(get<Values>(values, 'weftd', 'meshConfig', 'object')), meshNetworks: 'networks: {}' },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta('weftd'),
      spec: {
        replicas: get<number>(values, 'weftd', 'replicaCount', 'number'),
        selector: { matchLabels: { app: 'weftd' } },
        template: {
          metadata: { labels: { ...labels(), 'sidecar.istio.io/inject': 'false' }, annotations: { 'prometheus.io/port': '15014', 'prometheus.io/scrape': 'true' } },
          spec: {
            serviceAccountName: 'weftd',
            terminationGracePeriodSeconds: 10,
            securityContext: { runAsUser: 1337, runAsGroup: 1337, runAsNonRoot: true },
            containers: [
              {
                name: 'discovery',
                image: get<string>(values, 'weftd', 'image', 'string'),
                imagePullPolicy: get<string>(values, 'weftd', 'imagePullPolicy', 'string'),
                args: [
                  '--kube',
                  '--listen-address',
                  '0.0.0.0',
                  '--mesh-config',
                  '/etc/istio/config/mesh',
                  '--proxy-image',
                  get<string>(values, 'weftd', 'proxyImage', 'string'),
                  '--proxy-cpu',
                  get<string>(values, 'weftd', 'proxyCPU', 'string'),
                  '--proxy-memory',
                  get<string>(values, 'weftd', 'proxyMemory', 'string'),
                  '--log-level',
                  get<string>(values, 'weftd', 'logLevel', 'string'),
                ],
                env: [fieldEnv('POD_NAME', 'metadata.name'), fieldEnv('POD_NAMESPACE', 'metadata.namespace')],
                ports: ports.map(([name, containerPort]) => ({ name, containerPort, protocol: 'TCP' })),
                readinessProbe: { httpGet: { path: '/healthz', port: 15014 }, periodSeconds: 3, timeoutSeconds: 5 },
                resources: get<Values>(values, 'weftd', 'resources', 'object'),
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                volumeMounts: [
                  { name: 'config-volume', mountPath: '/etc/istio/config' },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
              },
            ],
            volumes: [
              { name: 'config-volume', configMap: { name: 'istio' } },
              { name: 'tmp', emptyDir: {} },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('weftd'),
      spec: {
        selector: { app: 'weftd' },
        ports: ports.map(([name, port]) => ({ name, port: port === 15017 ? 443 : port, targetPort: port, protocol: 'TCP' })),
      },
    },
  ];
  if (get<boolean>(values, 'weftd', 'podDisruptionBudget.enabled', 'boolean')) {
    const minAvailable = get<Values>(values, 'weftd', 'podDisruptionBudget', 'object').minAvailable;
    if (typeof minAvailable !== 'number' && typeof minAvailable !== 'string') throw new Error(`values: weftd.podDisruptionBudget.minAvailable must be a number or a percentage, not ${JSON.stringify(minAvailable)}`);
    out.push({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta('weftd'), spec: { minAvailable, selector: { matchLabels: { app: 'weftd' } } } });
  }
  const webhookCommon = { failurePolicy, sideEffects: 'None', admissionReviewVersions: ['v1'], timeoutSeconds: 10 };
  out.push(
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: meta(`istio-validator-${namespace}`, false),
      webhooks: [
        {
          name: 'rev.validation.istio.io',
          clientConfig: service('/validate'),
          rules: [{ operations: ['CREATE', 'UPDATE'], apiGroups: ['networking.istio.io', 'security.istio.io'], apiVersions: ['*'], resources: ['*'] }],
          ...webhookCommon,
        },
      ],
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: meta('istio-sidecar-injector', false),
      webhooks: injectors.map((s) => ({
        name: `${s}.sidecar-injector.istio.io`,
        clientConfig: service('/inject'),
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        ...webhookCommon,
        reinvocationPolicy: 'Never',
        ...selectors[s],
      })),
    },
  );
  return out;
}

/** MeshConfig as the ConfigMap holds it: YAML with sorted keys, as Helm's toYaml writes it. */
function meshYaml(meshConfig: Values): string {
  return toYaml(sortKeys(meshConfig)).replace(/\n$/, '');
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (!isObject(v)) return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, sortKeys(v[k])]),
  );
}

export function renderGateway(values: Values, namespace: string): Manifest[] {
  const name = get<string>(values, 'gateway', 'name', 'string');
  const labels = get<Record<string, string>>(values, 'gateway', 'labels', 'object');
  const withPartOf = () => ({ ...labels, 'app.kubernetes.io/part-of': 'weft' });
  const labelList = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
  const fieldEnv = (n: string, fieldPath: string) => ({ name: n, valueFrom: { fieldRef: { fieldPath } } });
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace, labels: withPartOf() } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace, labels: withPartOf() },
      spec: {
        replicas: get<number>(values, 'gateway', 'replicaCount', 'number'),
        selector: { matchLabels: { ...labels } },
        template: {
          metadata: {
            labels: { ...labels, 'sidecar.istio.io/inject': 'false', 'app.kubernetes.io/part-of': 'weft' },
            annotations: { 'prometheus.io/path': '/stats/prometheus', 'prometheus.io/port': '15020', 'prometheus.io/scrape': 'true' },
          },
          spec: {
            serviceAccountName: name,
            terminationGracePeriodSeconds: 10,
            securityContext: { runAsUser: 1337, runAsGroup: 1337, runAsNonRoot: true, sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] },
            containers: [
              {
                name: 'istio-proxy',
                image: get<string>(values, 'gateway', 'image', 'string'),
                imagePullPolicy: get<string>(values, 'gateway', 'imagePullPolicy', 'string'),
                command: ['weft-ingress'],
                args: [
                  '--xds-tls',
                  '--ca-address',
                  get<string>(values, 'gateway', 'discoveryAddress', 'string'),
                  '--ca-server-name',
                  'istiod.istio-system.svc',
                  '--ca-root-cert',
                  '/var/run/secrets/istio/root-cert.pem',
                  '--ca-token-file',
                  '/var/run/secrets/tokens/istio-token',
                  '--trust-domain',
                  get<string>(values, 'gateway', 'trustDomain', 'string'),
                  '--labels',
                  labelList,
                  '--log-level',
                  get<string>(values, 'gateway', 'logLevel', 'string'),
                ],
                env: [
                  fieldEnv('POD_NAME', 'metadata.name'),
                  fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
                  fieldEnv('INSTANCE_IP', 'status.podIP'),
                  fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
                  { name: 'ISTIO_META_WORKLOAD_NAME', value: name },
                ],
                ports: [{ name: 'http-envoy-prom', containerPort: 15090, protocol: 'TCP' }],
                readinessProbe: { httpGet: { path: '/healthz/ready', port: 15021 }, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 30 },
                resources: get<Values>(values, 'gateway', 'resources', 'object'),
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                volumeMounts: [
                  { name: 'istiod-ca-cert', mountPath: '/var/run/secrets/istio' },
                  { name: 'istio-token', mountPath: '/var/run/secrets/tokens' },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
              },
            ],
            volumes: [
              { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
              { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { path: 'istio-token', expirationSeconds: 43200, audience: 'istio-ca' } }] } },
              { name: 'tmp', emptyDir: {} },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace, labels: withPartOf() },
      spec: { type: get<string>(values, 'gateway', 'service.type', 'string'), selector: { ...labels }, ports: get<unknown[]>(values, 'gateway', 'service.ports', 'array') },
    },
  ];
}

/** Every object of one chart. */
export function renderChart(chart: ChartName, values: Values, namespace: string): Manifest[] {
  if (chart === 'base') return renderBase(values);
  if (chart === 'weftd') return renderWeftd(values, namespace);
  return renderGateway(values, namespace);
}

/** Every object `weftctl install` applies, chart by chart, in the order it applies them. */
export function renderInstall(v: InstallValues): { chart: ChartName; manifests: Manifest[] }[] {
  const charts: ChartName[] = v.gatewayEnabled ? ['base', 'weftd', 'gateway'] : ['base', 'weftd'];
  return charts.map((chart) => ({ chart, manifests: renderChart(chart, v[chart], v.namespace) }));
}
