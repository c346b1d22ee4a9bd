// The local topology: which workloads run and where, read from the same Istio YAML weftd serves
// (platform/local/bookinfo.yaml: a ServiceEntry per service, a WorkloadEntry per instance, each on
// its own loopback address). From it: one application process and one sidecar per WorkloadEntry,
// the sidecar fronting the service ports at the workload's address.
import type { Config } from '@weft/model';

export interface TopologyPort {
  /** The service port name (`http`). */
  name: string;
  /** The service port (9080). */
  port: number;
  /** Where the sidecar accepts the service's traffic (the workload's port for it). */
  targetPort: number;
  protocol: string;
}

export interface Workload {
  /** The WorkloadEntry's name, used as the pod name (`reviews-v2`). */
  name: string;
  namespace: string;
  /** Its loopback address. */
  address: string;
  serviceAccount: string;
  labels: Record<string, string>;
  /** `app` label: which BookInfo service runs (`reviews`). */
  app: string;
  version: string;
  /** Services selecting it, by host. */
  services: string[];
  ports: TopologyPort[];
}

interface ServiceEntrySpecLike {
  hosts?: string[];
  ports?: { number: number; name: string; protocol?: string; targetPort?: number }[];
  workloadSelector?: { labels?: Record<string, string> };
}

interface WorkloadEntrySpecLike {
  address?: string;
  serviceAccount?: string;
  labels?: Record<string, string>;
  ports?: Record<string, number>;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The workloads the configs describe: every WorkloadEntry with an address, and the ServiceEntries that select it. */
export function workloadsOf(configs: readonly Config[]): Workload[] {
  const entries = configs.filter((c) => c.kind === 'ServiceEntry');
  const out: Workload[] = [];
  for (const c of configs) {
    if (c.kind !== 'WorkloadEntry') continue;
    const spec = c.spec as WorkloadEntrySpecLike;
    if (!spec.address) continue;
    const labels = { ...(spec.labels ?? {}) };
    const namespace = c.metadata.namespace ?? 'default';
    const services: string[] = [];
    const ports = new Map<number, TopologyPort>();
    for (const se of entries) {
      if ((se.metadata.namespace ?? 'default') !== namespace) continue;
      const s = se.spec as ServiceEntrySpecLike;
      if (!selects(s.workloadSelector?.labels, labels)) continue;
      services.push(...(s.hosts ?? []));
      for (const p of s.ports ?? []) {
        const targetPort = spec.ports?.[p.name] ?? p.targetPort ?? p.number;
        if (!ports.has(targetPort)) ports.set(targetPort, { name: p.name, port: p.number, targetPort, protocol: p.protocol ?? 'TCP' });
      }
    }
    out.push({
      name: c.metadata.name,
      namespace,
      address: spec.address,
      serviceAccount: spec.serviceAccount ?? 'default',
      labels,
      app: labels.app ?? c.metadata.name,
      version: labels.version ?? 'v1',
      services,
      ports: [...ports.values()],
    });
  }
  return out;
}

/**
 * Moves a loopback address into another /24 (`127.0.0.14` with net `127.0.7` -> `127.0.7.14`),
 * so that a second mesh (a test beside a running demo) gets addresses of its own.
 */
export function moveAddress(address: string, loopbackNet: string | undefined): string {
  if (!loopbackNet) return address;
  const m = /^127\.\d+\.\d+\.(\d+)$/.exec(address);
  return m ? `${loopbackNet}.${m[1]}` : address;
}

/** Checks a `--loopback-net` value: three octets of 127.0.0.0/8. */
export function checkLoopbackNet(net: string): string | undefined {
  const m = /^127\.(\d{1,3})\.(\d{1,3})$/.exec(net);
  if (!m || Number(m[1]) > 255 || Number(m[2]) > 255) return `${JSON.stringify(net)} is not the first three octets of a loopback address, such as 127.0.0 or 127.0.5`;
  return undefined;
}

/** The configs with every WorkloadEntry's address moved into `loopbackNet`. */
export function withAddressesMoved(configs: readonly Config[], loopbackNet: string | undefined): Config[] {
  if (!loopbackNet) return [...configs];
  return configs.map((c) => {
    if (c.kind !== 'WorkloadEntry') return c;
    const spec = c.spec as WorkloadEntrySpecLike;
    if (!spec.address) return c;
    return { ...c, spec: { ...spec, address: moveAddress(spec.address, loopbackNet) } };
  });
}

export interface IngressTopology {
  name: string;
  namespace: string;
  address: string;
  serviceAccount: string;
  labels: Record<string, string>;
  /** Where its HTTP listener for Gateway port 80 listens (the Service's target port). */
  httpPort: number;
}

/**
 * The ingress gateway as local config: a ServiceEntry like the `istio-ingressgateway` Service
 * (port 80 with a target port, as Istio's chart maps 80 to 8080) and a WorkloadEntry for the one
 * gateway instance. Pilot translates a Gateway's port 80 to that target port (Istio's gateway
 * port translation), so the gateway needs no privileged port and `bookinfo-gateway.yaml` applies
 * unchanged.
 */
export function ingressConfigs(g: IngressTopology): Config[] {
  const host = `${g.name}.${g.namespace}.svc.cluster.local`;
  return [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: g.name, namespace: g.namespace, labels: { ...g.labels } },
      spec: {
        hosts: [host],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: 80, name: 'http2', protocol: 'HTTP', targetPort: g.httpPort }],
        workloadSelector: { labels: { ...g.labels } },
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: g.name, namespace: g.namespace },
      spec: { address: g.address, serviceAccount: g.serviceAccount, labels: { ...g.labels } },
    },
  ];
}
