// Manifests for Kubernetes-tier tests that run weftd as a process on kube-local's node (not in a
// pod) and inject pods in a namespace of their own: a selector-less Service `weftd` whose
// EndpointSlice points at the node address (the injected template dials weftd.<ns>.svc:15012), the
// injection webhook for the test's labelled namespaces, and BookInfo's ratings-v1 to inject.

export interface HostWeftdManifests {
  /** weftd's namespace (its --system-namespace). */
  systemNamespace: string;
  /** The value of the `weft-test` label on the test's namespaces; also the webhook configuration's name. */
  scope: string;
  /** The node address weftd listens on (--listen-address). */
  nodeAddress: string;
  /** weftd's --ca-port: Service port 15012 (https-dns). */
  caPort: number;
  /** weftd's --webhook-port. */
  webhookPort: number;
  /** weftd's --monitoring-port, also as Service port 15014 (http-monitoring, the chart's name) when given. */
  monitoringPort?: number;
}

/** The Service and EndpointSlice that make the host's weftd `weftd.<ns>.svc`, and the injection webhook pointing at it. */
export function hostWeftdManifests(o: HostWeftdManifests): string {
  const ports = [{ name: 'https-dns', port: 15012, target: o.caPort }, ...(o.monitoringPort !== undefined ? [{ name: 'http-monitoring', port: 15014, target: o.monitoringPort }] : [])];
  return `apiVersion: v1
kind: Service
metadata: {name: weftd, namespace: ${o.systemNamespace}}
spec:
  ports:
${ports.map((p) => `  - {name: ${p.name}, port: ${p.port}, targetPort: ${p.target}, protocol: TCP}`).join('\n')}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: weftd-host, namespace: ${o.systemNamespace}, labels: {kubernetes.io/service-name: weftd}}
addressType: IPv4
ports: [${ports.map((p) => `{name: ${p.name}, port: ${p.target}, protocol: TCP}`).join(', ')}]
endpoints: [{addresses: [${o.nodeAddress}]}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: ${o.scope}}
webhooks:
- name: namespace.sidecar-injector.istio.io
  clientConfig: {url: "https://${o.nodeAddress}:${o.webhookPort}/inject"}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
  namespaceSelector:
    matchLabels: {weft-test: ${o.scope}}
    matchExpressions: [{key: istio-injection, operator: In, values: [enabled]}]
  objectSelector: {matchExpressions: [{key: sidecar.istio.io/inject, operator: NotIn, values: ["false"]}]}
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
`;
}

/** BookInfo's ratings-v1 Deployment and its Service in `namespace`, from the weft/bookinfo image `image`. */
export function ratingsManifests(namespace: string, image: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ratings-v1, namespace: ${namespace}}
spec:
  replicas: 1
  selector: {matchLabels: {app: ratings, version: v1}}
  template:
    metadata: {labels: {app: ratings, version: v1}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: ratings
        image: ${image}
        env: [{name: SERVICE, value: ratings}, {name: SERVICE_VERSION, value: v1}]
        ports: [{name: http, containerPort: 9080}]
        readinessProbe: {httpGet: {path: /health, port: http}, periodSeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: ${namespace}}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
`;
}
