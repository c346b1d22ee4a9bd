// The Kubernetes API access weftd makes, rule by rule, with the module that makes it. The weftd
// chart's ClusterRole and Role grant exactly these (least privilege: deploy/charts/charts.test.ts
// compares them, and the install test runs weftd under them and finds no "forbidden" in its log).
// access.test.ts reads the modules' calls and fails on a call without a rule or a rule without a call.
// A part that starts calling the API for something new adds its rule here and to
// deploy/charts/weftd/templates/rbac.yaml.

export interface AccessRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  /** Only these objects (list and watch then need a metadata.name field selector). */
  resourceNames?: string[];
  /** The modules of packages/kube that need the rule. */
  by: string[];
}

/** Cluster-wide: a ClusterRole bound to weftd's ServiceAccount. `namespace` is weftd's (it names the validating webhook configuration). */
export function weftdClusterAccess(namespace: string): AccessRule[] {
  return [
    { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: ['list', 'watch'], by: ['config-source.ts'] },
    {
      apiGroups: ['networking.istio.io'],
      resources: ['destinationrules', 'gateways', 'serviceentries', 'sidecars', 'virtualservices', 'workloadentries'],
      verbs: ['list', 'watch'],
      by: ['config-source.ts'],
    },
    { apiGroups: ['security.istio.io'], resources: ['authorizationpolicies', 'peerauthentications', 'requestauthentications'], verbs: ['list', 'watch'], by: ['config-source.ts'] },
    { apiGroups: ['gateway.networking.k8s.io'], resources: ['gatewayclasses', 'gateways', 'httproutes', 'grpcroutes', 'referencegrants'], verbs: ['list', 'watch'], by: ['config-source.ts'] },
    { apiGroups: [''], resources: ['namespaces', 'pods', 'services'], verbs: ['list', 'watch'], by: ['registry-watch.ts', 'root-cert.ts'] },
    // The Gateway API controller (leader only): GatewayClasses istio and weft, statuses, a gateway per Gateway.
    { apiGroups: ['gateway.networking.k8s.io'], resources: ['gatewayclasses'], verbs: ['create'], by: ['gateway-controller.ts'] },
    { apiGroups: ['gateway.networking.k8s.io'], resources: ['gateways'], verbs: ['get'], by: ['gateway-controller.ts'] },
    {
      apiGroups: ['gateway.networking.k8s.io'],
      resources: ['gatewayclasses/status', 'gateways/status', 'httproutes/status', 'grpcroutes/status'],
      verbs: ['patch'],
      by: ['gateway-controller.ts'],
    },
    { apiGroups: [''], resources: ['secrets', 'services'], verbs: ['get'], by: ['gateway-controller.ts'] },
    { apiGroups: [''], resources: ['serviceaccounts', 'services'], verbs: ['create', 'patch'], by: ['gateway-controller.ts'] },
    { apiGroups: ['apps'], resources: ['deployments'], verbs: ['create', 'patch'], by: ['gateway-controller.ts'] },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'], by: ['registry-watch.ts'] },
    { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'], by: ['registry-watch.ts'] },
    { apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'list', 'patch', 'watch'], by: ['root-cert.ts'] },
    { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'], by: ['token-review.ts'] },
    { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['istio-sidecar-injector'], verbs: ['list', 'patch', 'watch'], by: ['webhook-cabundle.ts'] },
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['validatingwebhookconfigurations'],
      resourceNames: [`istio-validator-${namespace}`],
      verbs: ['list', 'patch', 'watch'],
      by: ['webhook-cabundle.ts'],
    },
  ];
}

/** In weftd's own namespace: a Role. */
export const weftdNamespaceAccess: readonly AccessRule[] = [
  { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'get'], by: ['ca-secret.ts'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create', 'get', 'update'], by: ['leader-election.ts'] },
];

/** A rule as RBAC writes it (without `by`). */
export function policyRule(rule: AccessRule): Record<string, string[]> {
  return { apiGroups: rule.apiGroups, resources: rule.resources, ...(rule.resourceNames ? { resourceNames: rule.resourceNames } : {}), verbs: rule.verbs };
}
