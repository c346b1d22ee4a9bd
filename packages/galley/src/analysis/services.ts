import { exportScope, type ExportScope, ExportToAnnotation, hostCandidates, hostSubsetOf, isExportedTo, isWildcardHost, kubeServiceHost } from '@weft/mesh';
import { type Config, type FieldPath, groupKindOf, type K8sDeploymentSpec, type K8sServiceSpec, type ServiceEntrySpec, type WorkloadEntrySpec } from '@weft/model';
import { isEmpty, labelsOf, list, num, selects, text } from './util.ts';


export interface MeshServicePort {
  number: number;
  name?: string;
  /** Service: `TCP`/`UDP`/`SCTP`; ServiceEntry: the application protocol (`HTTP`, `TLS`, ...). */
  protocol?: string;
  appProtocol?: string;
  targetPort?: number | string;
  /** Where the port is declared in its config. */
  path: FieldPath;
}

/** One host of the mesh's service registry, from a Kubernetes Service or a ServiceEntry. */
export interface MeshService {
  /** `reviews.default.svc.cluster.local`, or a ServiceEntry host (possibly a wildcard). */
  host: string;
  namespace: string;
  kind: 'Service' | 'ServiceEntry';
  config: Config;
  ports: readonly MeshServicePort[];
  /** Service `selector`, ServiceEntry `workloadSelector.labels`. */
  selector?: Readonly<Record<string, string>>;
  /** Namespaces the host is visible to (`*` for all). */
  exportTo: ExportScope;
  /** Labels of a ServiceEntry's inline endpoints. */
  endpointLabels?: readonly Readonly<Record<string, string>>[];
}

/** Something that runs: a Deployment's pods, a Pod, or a WorkloadEntry. */
export interface Workload {
  kind: 'Deployment' | 'Pod' | 'WorkloadEntry';
  name: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  config: Config;
}

/** What a host name resolved to, from the point of view of one namespace. */
export interface HostLookup {
  /** The service, when one is visible. */
  service?: MeshService;
  /** The canonical name: the service's host when found by exact name, else the first candidate. */
  fqdn: string;
  /** Every name tried, most likely first. */
  candidates: readonly string[];
}

/**
 * The mesh's services and workloads as the input describes them: Kubernetes Services
 * (`<name>.<namespace>.svc.cluster.local`), ServiceEntry hosts, and workloads from Deployments,
 * Pods and WorkloadEntries.
 */
export class ServiceIndex {
  readonly services: MeshService[] = [];
  readonly workloads: Workload[] = [];
  readonly #byHost = new Map<string, MeshService[]>();
  readonly #wildcards: MeshService[] = [];
  /** Answers of `lookup`, by namespace and host: thousands of routes name the same few hosts. */
  readonly #lookups = new Map<string, HostLookup>();
  readonly #kube = new Map<string, MeshService>();

  constructor(configs: readonly Config[]) {
    for (const c of configs) {
      const gk = groupKindOf(c);
      if (gk === '/Service') this.#addKubeService(c as Config<K8sServiceSpec>);
      else if (gk === 'networking.istio.io/ServiceEntry') this.#addServiceEntry(c as Config<ServiceEntrySpec>);
      else if (gk === 'apps/Deployment') {
        const spec = (c.spec ?? {}) as Partial<K8sDeploymentSpec>;
        const labels = labelsOf(spec.template?.metadata?.labels) ?? labelsOf(spec.selector?.matchLabels) ?? {};
        this.workloads.push({ kind: 'Deployment', name: c.metadata.name, namespace: c.metadata.namespace, labels, config: c });
      } else if (gk === '/Pod') {
        this.workloads.push({ kind: 'Pod', name: c.metadata.name, namespace: c.metadata.namespace, labels: labelsOf(c.metadata.labels) ?? {}, config: c });
      } else if (gk === 'networking.istio.io/WorkloadEntry') {
        const spec = (c.spec ?? {}) as Partial<WorkloadEntrySpec>;
        const labels = { ...labelsOf(c.metadata.labels), ...labelsOf(spec.labels) };
        this.workloads.push({ kind: 'WorkloadEntry', name: c.metadata.name, namespace: c.metadata.namespace, labels, config: c });
      }
    }
  }

  #add(s: MeshService): void {
    this.services.push(s);
    if (isWildcardHost(s.host)) this.#wildcards.push(s);
    else {
      const l = this.#byHost.get(s.host);
      if (l) l.push(s);
      else this.#byHost.set(s.host, [s]);
    }
  }

  #addKubeService(c: Config<K8sServiceSpec>): void {
    const spec = (c.spec ?? {}) as Partial<K8sServiceSpec>;
    const ns = c.metadata.namespace;
    const ports: MeshServicePort[] = [];
    list(spec.ports).forEach((p, i) => {
      const number = num(p?.port);
      if (number === undefined) return;
      const port: MeshServicePort = { number, path: ['spec', 'ports', i] };
      if (text(p.name)) port.name = p.name;
      port.protocol = text(p.protocol) ?? 'TCP';
      if (text(p.appProtocol)) port.appProtocol = p.appProtocol;
      if (typeof p.targetPort === 'number' || text(p.targetPort)) port.targetPort = p.targetPort;
      ports.push(port);
    });
    const anno = text(c.metadata.annotations?.[ExportToAnnotation]);
    const s: MeshService = {
      host: kubeServiceHost(c.metadata.name, ns),
      namespace: ns,
      kind: 'Service',
      config: c,
      ports,
      exportTo: exportScope(
        anno?.split(',').map((x) => x.trim()),
        ns,
      ),
    };
    const selector = labelsOf(spec.selector);
    if (!isEmpty(selector)) s.selector = selector;
    this.#add(s);
    this.#kube.set(`${ns}/${c.metadata.name}`, s);
  }

  #addServiceEntry(c: Config<ServiceEntrySpec>): void {
    const spec = (c.spec ?? {}) as Partial<ServiceEntrySpec>;
    const ns = c.metadata.namespace;
    const ports: MeshServicePort[] = [];
    list(spec.ports).forEach((p, i) => {
      const number = num(p?.number);
      if (number === undefined) return;
      const port: MeshServicePort = { number, path: ['spec', 'ports', i] };
      if (text(p.name)) port.name = p.name;
      if (text(p.protocol)) port.protocol = p.protocol;
      if (num(p.targetPort) !== undefined) port.targetPort = p.targetPort;
      ports.push(port);
    });
    const exportTo = exportScope(
      list(spec.exportTo).filter((x): x is string => typeof x === 'string'),
      ns,
    );
    const selector = labelsOf(spec.workloadSelector?.labels);
    const endpoints = list(spec.endpoints).map((e) => labelsOf(e?.labels) ?? {});
    for (const h of list(spec.hosts)) {
      if (!text(h)) continue;
      const s: MeshService = { host: h, namespace: ns, kind: 'ServiceEntry', config: c, ports, exportTo };
      if (!isEmpty(selector)) s.selector = selector;
      if (endpoints.length > 0) s.endpointLabels = endpoints;
      this.#add(s);
    }
  }

  /** The Kubernetes Service `namespace/name`, if the input has it. */
  kubeService(namespace: string, name: string): MeshService | undefined {
    return this.#kube.get(`${namespace}/${name}`);
  }

  /**
   * Resolves `host` as named by a config in `namespace`: exact names first (a Service or a
   * ServiceEntry host visible to that namespace), then ServiceEntry wildcard hosts covering it.
   */
  lookup(host: string, namespace: string): HostLookup {
    const key = `${namespace}/${host}`;
    let found = this.#lookups.get(key);
    if (!found) {
      found = this.#lookup(host, namespace);
      this.#lookups.set(key, found);
    }
    return found;
  }

  #lookup(host: string, namespace: string): HostLookup {
    const candidates = hostCandidates(host, namespace);
    for (const name of candidates) {
      const found = this.#byHost.get(name)?.find((s) => isExportedTo(s.exportTo, namespace));
      if (found) return { service: found, fqdn: name, candidates };
    }
    const fqdn = candidates[0] ?? host;
    if (!isWildcardHost(host)) {
      for (const name of candidates) {
        const found = this.#wildcards.find((s) => isExportedTo(s.exportTo, namespace) && hostSubsetOf(name, s.host));
        if (found) return { service: found, fqdn: name, candidates };
      }
    } else {
      const found = this.#wildcards.find((s) => isExportedTo(s.exportTo, namespace) && s.host === host);
      if (found) return { service: found, fqdn: host, candidates };
    }
    return { fqdn, candidates };
  }

  /** Workloads in `namespace` (every namespace when undefined) whose labels carry `selector`. */
  select(selector: Readonly<Record<string, string>>, namespace?: string): Workload[] {
    return this.workloads.filter((w) => (namespace === undefined || w.namespace === namespace) && selects(selector, w.labels));
  }

  /** Whether the input has any workload in `namespace` (in any namespace when undefined). */
  hasWorkloads(namespace?: string): boolean {
    return this.workloads.some((w) => namespace === undefined || w.namespace === namespace);
  }

  /**
   * Label sets of the endpoints behind a service, as far as the input shows them: workloads its
   * selector picks (in its namespace), or a ServiceEntry's inline endpoints. Undefined when the
   * input cannot tell (no selector, or an external ServiceEntry).
   */
  endpointsOf(s: MeshService): Readonly<Record<string, string>>[] | undefined {
    if (s.kind === 'ServiceEntry' && s.endpointLabels) {
      const sel = s.selector ?? {};
      return s.endpointLabels.map((l) => ({ ...sel, ...l }));
    }
    if (!s.selector) return undefined;
    return this.select(s.selector, s.namespace).map((w) => w.labels);
  }
}
