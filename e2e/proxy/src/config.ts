// Istio YAML for the proxy tests: ServiceEntries and WorkloadEntries standing in for BookInfo-like
// services (one ServiceEntry per feature, selecting the same workloads, so every scenario's
// VirtualService and DestinationRule can be in force at once).

export interface Workload {
  name: string;
  app: string;
  version: string;
  address: string;
  /** The port the service's `http` (or `tcp`) port maps to on this workload. */
  port: number;
}

export function serviceEntry(host: string, app: string, port = 9080, protocol = 'HTTP'): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${host}
  namespace: default
spec:
  hosts: [${host}.default.svc.cluster.local]
  ports:
  - number: ${port}
    name: ${protocol === 'TCP' ? 'tcp' : 'http'}
    protocol: ${protocol}
  resolution: STATIC
  location: MESH_INTERNAL
  workloadSelector:
    labels:
      app: ${app}
`;
}

export function workloadEntry(w: Workload, portName = 'http'): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ${w.name}
  namespace: default
spec:
  address: ${w.address}
  labels:
    app: ${w.app}
    version: ${w.version}
  ports:
    ${portName}: ${w.port}
`;
}

export function subsets(host: string, versions: readonly string[], trafficPolicy = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ${host}
  namespace: default
spec:
  host: ${host}
${trafficPolicy ? `  trafficPolicy:\n${trafficPolicy.replace(/^/gm, '    ')}\n` : ''}  subsets:
${versions.map((v) => `  - name: ${v}\n    labels:\n      version: ${v}`).join('\n')}
`;
}

export function virtualService(name: string, hosts: string[], http: string, extra = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
  namespace: default
spec:
  hosts: [${hosts.join(', ')}]
${extra}  http:
${http.replace(/^/gm, '  ')}
`;
}

export function join(...docs: string[]): string {
  return docs.map((d) => d.trimEnd()).join('\n---\n');
}
