// The service model: what the mesh routes to, independent of where it was declared
// (ServiceEntry/WorkloadEntry in local mode, Kubernetes Services and Pods later).

/** Application protocols, named as Istio names them. */
export type Protocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'GRPC-WEB' | 'HTTPS' | 'TLS' | 'TCP' | 'MONGO' | 'MYSQL' | 'REDIS' | 'UDP' | 'UNSUPPORTED';

const byPrefix: Record<string, Protocol> = {
  http: 'HTTP',
  http2: 'HTTP2',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-WEB',
  https: 'HTTPS',
  tls: 'TLS',
  tcp: 'TCP',
  mongo: 'MONGO',
  mysql: 'MYSQL',
  redis: 'REDIS',
  udp: 'UDP',
  http_proxy: 'HTTP',
};

const appProtocols: Record<string, Protocol> = { 'kubernetes.io/h2c': 'HTTP2', 'kubernetes.io/ws': 'HTTP', 'kubernetes.io/wss': 'HTTPS' };

/**
 * The protocol of a port as Istio decides it: an explicit protocol or appProtocol wins;
 * otherwise the port name's prefix before '-' (`http-web` is HTTP); otherwise unsupported
 * (Istio then sniffs, Weft treats it as TCP).
 */
export function protocolOf(port: { protocol?: string | undefined; appProtocol?: string | undefined; name?: string | undefined }): Protocol {
  for (const candidate of [port.appProtocol, port.protocol]) {
    if (!candidate) continue;
    const lower = candidate.toLowerCase();
    const p = appProtocols[lower] ?? byPrefix[lower];
    if (p) return p;
  }
  const name = port.name?.toLowerCase();
  if (name) {
    const p = byPrefix[name] ?? byPrefix[name.split('-')[0]!];
    if (p) return p;
  }
  return 'UNSUPPORTED';
}

/** Ports whose unnamed traffic Istio takes as TCP rather than sniffing it: SMTP, DNS, MySQL, MongoDB. */
const wellKnownTcpPorts = new Set([25, 53, 3306, 27017]);

/**
 * The protocol of a Kubernetes Service port, exactly as Istio's ConvertProtocol decides it: UDP
 * ports are UDP; otherwise `appProtocol` when set (Kubernetes' `kubernetes.io/h2c`, `/ws`, `/wss`
 * included), else the port name, is read up to its first '-' (`grpc-web` as a whole); a name
 * that says nothing is TCP on the well-known ports and unsupported (sniffed) elsewhere. Unlike
 * `protocolOf`, an appProtocol Istio does not know hides the port name.
 */
export function kubernetesPortProtocol(port: { port: number; name?: string | undefined; protocol?: string | undefined; appProtocol?: string | undefined }): Protocol {
  if (port.protocol === 'UDP') return 'UDP';
  let name = port.name ?? '';
  if (port.appProtocol !== undefined && port.appProtocol !== null) {
    name = port.appProtocol;
    const standard = appProtocols[name];
    if (standard) return standard;
  }
  const lower = name.toLowerCase();
  if (lower.startsWith('grpc-web')) return 'GRPC-WEB';
  const dash = lower.indexOf('-');
  const p = byPrefix[dash < 0 ? lower : lower.slice(0, dash)];
  if (p) return p;
  return wellKnownTcpPorts.has(port.port) ? 'TCP' : 'UNSUPPORTED';
}

export function isHttpProtocol(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB';
}

export interface ServicePort {
  name: string;
  port: number;
  protocol: Protocol;
  /** Where endpoints listen when they give no port of their own (ServiceEntry `targetPort`). */
  targetPort?: number;
}

export type Resolution = 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'NONE';
export type Location = 'MESH_INTERNAL' | 'MESH_EXTERNAL';

/** One host the mesh can route to. A ServiceEntry with three hosts is three services. */
export interface Service {
  /** `reviews.default.svc.cluster.local`, `api.example.com` or a wildcard `*.example.com`. */
  hostname: string;
  /** Namespace of the declaring config. */
  namespace: string;
  /** The config that declared it: `ServiceEntry default/reviews`. */
  origin: { kind: string; namespace: string; name: string };
  ports: readonly ServicePort[];
  /** Virtual IPs (ServiceEntry `addresses`), empty when none. */
  addresses: readonly string[];
  resolution: Resolution;
  location: Location;
  /** Namespaces that can see it: `*` for all; otherwise names (`.` already resolved to the namespace). */
  exportTo: ReadonlySet<string>;
  /** Identities of the workloads behind it (ServiceEntry `subjectAltNames` and workload service accounts). */
  serviceAccounts: readonly string[];
  labels: Readonly<Record<string, string>>;
  /** ServiceEntry `workloadSelector`, when endpoints come from WorkloadEntries. */
  selector?: Readonly<Record<string, string>>;
}

export interface Locality {
  region?: string;
  zone?: string;
  subzone?: string;
}

/** `us-east/us-east-1a/rack1` -> parts; missing parts stay undefined. */
export function parseLocality(text: string | undefined): Locality {
  if (!text) return {};
  const [region, zone, subzone] = text.split('/');
  const out: Locality = {};
  if (region) out.region = region;
  if (zone) out.zone = zone;
  if (subzone) out.subzone = subzone;
  return out;
}

/** A workload that can serve traffic: a WorkloadEntry, a ServiceEntry inline endpoint, or a pod. */
export interface WorkloadInstance {
  name: string;
  namespace: string;
  /** IP address, hostname (DNS resolution) or `unix://` path. */
  address: string;
  labels: Readonly<Record<string, string>>;
  serviceAccount?: string;
  /** Port name -> port number overrides. */
  ports: Readonly<Record<string, number>>;
  locality: Locality;
  weight: number;
  network?: string;
  /** Whether it runs a sidecar, so mTLS is automatic toward it (label `security.istio.io/tlsMode: istio`). */
  tlsMode: 'istio' | 'disabled';
}

/** One address:port behind one service port. */
export interface Endpoint {
  address: string;
  /** Where to connect: the workload's port for this service port, or the target/service port. */
  port: number;
  /** The service port this endpoint serves. */
  servicePort: ServicePort;
  hostname: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  serviceAccount?: string;
  locality: Locality;
  weight: number;
  healthy: boolean;
  tlsMode: 'istio' | 'disabled';
  workloadName?: string;
  network?: string;
}

