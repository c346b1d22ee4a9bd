// Services, what applies to each, and proxies' sync state, from weftd's debug endpoints:
// /debug/configz (the config in force, each object with the file and line it was read from),
// /debug/syncz (each connected proxy's xDS state per type) and /debug/config_problems (files
// weftd rejected), plus galley's cross-resource analysis over the config in force.
import { hostSubsetOf, resolveHost, tryParseNodeId } from '@weft/mesh';
import { analysisMessages } from '@weft/galley';
import { type Config, configOrder, originLocation } from '@weft/model';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const arr = <T = Json>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);

export interface Source {
  file: string;
  line?: number;
  /** Where weftd read it, when that is a config directory file written from `file` (weftctl apply). */
  configFile?: { file: string; line?: number };
  /** What wrote it when that is not a file (`weftctl up (the ingress gateway ...)`). */
  origin?: string;
}

export interface ConfigzEntry {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string>; creationTimestamp?: string };
  spec: Json;
  source?: { file: string; line?: number; column?: number };
  /** The origin header of its file (@weft/model parseOriginHeader), filled in by the poller where the file is readable. */
  origin?: string;
}

export interface SynczEntry {
  id: string;
  types: Record<string, { status: string; acked?: string; sent?: string; nackReason?: string; lastAcked?: string; lastNacked?: string }>;
}

export interface ConfigProblemJson {
  severity: 'error' | 'warning';
  file?: string;
  line?: number;
  message: string;
  /** `VirtualService default/reviews`. */
  resource?: string;
  text?: string;
}

export interface WeftdData {
  configs: ConfigzEntry[];
  syncz: SynczEntry[];
  problems: Record<string, ConfigProblemJson[]>;
}

export interface ServiceProblem {
  file: string;
  line?: number;
  message: string;
  kind: string;
  name: string;
  severity: 'error' | 'warning';
}

/** Where an object came from: the user's file and line when its config-directory file says so, else the file weftd read. */
function sourceOf(c: ConfigzEntry): Source {
  const read = { file: c.source?.file ?? '', ...(c.source?.line !== undefined ? { line: c.source.line } : {}) };
  if (!c.origin) return read;
  const at = originLocation(c.origin);
  return at ? { ...at, configFile: read } : { ...read, origin: c.origin };
}
const selects = (selector: unknown, labels: Record<string, string>) => {
  const s = obj(selector);
  return Object.keys(s).length > 0 && Object.entries(s).every(([k, v]) => labels[k] === v);
};

export interface ServiceRef {
  host: string;
  namespace: string;
  name: string;
}

/**
 * Every host a ServiceEntry declares, and the services traffic was seen to (`observed`, from the
 * graph: on Kubernetes, Services are not in weftd's config), as {host, namespace, name}.
 */
export function servicesOf(configs: readonly ConfigzEntry[], observed: readonly ServiceRef[] = []): ServiceRef[] {
  const seen = new Map<string, ServiceRef>();
  for (const o of observed) seen.set(o.host, o);
  for (const c of configs) {
    if (c.kind !== 'ServiceEntry') continue;
    for (const host of arr<string>(c.spec.hosts)) {
      if (typeof host !== 'string' || seen.has(host)) continue;
      seen.set(host, { host, namespace: c.metadata.namespace, name: host.split('.')[0] ?? host });
    }
  }
  return [...seen.values()].sort((a, b) => a.host.localeCompare(b.host));
}

interface Destination {
  host: string;
  subset?: string;
  port?: number;
  weight: number;
}

/** spec.http as the page shows it: matches, destinations with weights (percent) and subsets, and what else a route does. */
function httpSummary(vs: ConfigzEntry): Json[] {
  return arr(vs.spec.http).map((r) => {
    const route = arr(r.route);
    const destinations: Destination[] = route.map((d) => {
      const dest = obj(d.destination);
      const port = obj(dest.port).number;
      return {
        host: resolveHost(String(dest.host ?? ''), vs.metadata.namespace),
        ...(dest.subset ? { subset: String(dest.subset) } : {}),
        ...(port !== undefined ? { port: Number(port) } : {}),
        weight: d.weight !== undefined ? Number(d.weight) : route.length === 1 ? 100 : 0,
      };
    });
    const out: Json = { matches: arr(r.match), destinations };
    for (const k of ['name', 'redirect', 'directResponse', 'rewrite', 'fault', 'timeout', 'retries', 'mirror', 'mirrorPercentage', 'headers']) if (r[k] !== undefined) out[k] = r[k];
    return out;
  });
}

const rootNamespace = 'istio-system';

/**
 * The page of one service (`host`): see the API contract in TEAM.md. Undefined when no
 * ServiceEntry declares it, it is not `observed` (traffic was seen to it) and no rule names it.
 */
export function serviceDetail(data: WeftdData, host: string, observed = false): Json | undefined {
  const configs = [...data.configs].sort(configOrder as (a: ConfigzEntry, b: ConfigzEntry) => number);
  const entries = configs.filter((c) => c.kind === 'ServiceEntry' && arr<string>(c.spec.hosts).includes(host));
  const routesTo = (vs: ConfigzEntry) => arr(vs.spec.http).some((r) => arr(r.route).some((d) => hostSubsetOf(resolveHost(String(obj(d.destination).host ?? ''), vs.metadata.namespace), host)));
  const virtualServices = configs
    .filter((c) => c.kind === 'VirtualService' && (arr<string>(c.spec.hosts).some((h) => hostSubsetOf(resolveHost(h, c.metadata.namespace), host)) || routesTo(c)))
    .map((c) => ({ name: c.metadata.name, namespace: c.metadata.namespace, source: sourceOf(c), hosts: arr<string>(c.spec.hosts), gateways: arr<string>(c.spec.gateways), http: httpSummary(c) }));
  const rules = configs.filter((c) => c.kind === 'DestinationRule' && hostSubsetOf(resolveHost(String(c.spec.host ?? ''), c.metadata.namespace), host));
  if (entries.length === 0 && !observed && virtualServices.length === 0 && rules.length === 0) return undefined;
  const destinationRules = rules
    .map((c) => ({
      name: c.metadata.name,
      namespace: c.metadata.namespace,
      source: sourceOf(c),
      subsets: arr(c.spec.subsets).map((s) => ({ name: String(s.name), labels: obj(s.labels) })),
      trafficPolicy: c.spec.trafficPolicy ?? null,
    }));

  // Endpoints: WorkloadEntries the ServiceEntries select, and endpoints they list.
  const connected = new Set(data.syncz.map((s) => tryParseNodeId(s.id)?.ipAddress).filter(Boolean));
  const endpoints: Json[] = [];
  for (const se of entries) {
    const ns = se.metadata.namespace;
    const ports = arr(se.spec.ports);
    const sel = obj(se.spec.workloadSelector).labels;
    const portOf = (wePorts: Json) => {
      const p = ports[0];
      if (!p) return undefined;
      return Number(wePorts[String(p.name)] ?? p.targetPort ?? p.number);
    };
    for (const we of configs) {
      if (we.kind !== 'WorkloadEntry' || we.metadata.namespace !== ns) continue;
      const labels = { ...obj(we.spec.labels), ...(we.metadata.labels ?? {}) } as Record<string, string>;
      if (!selects(sel, labels)) continue;
      const address = String(we.spec.address ?? '');
      endpoints.push({ workload: we.metadata.name, address, port: portOf(obj(we.spec.ports)), labels, healthy: connected.has(address) });
    }
    for (const e of arr(se.spec.endpoints)) {
      const address = String(e.address ?? '');
      endpoints.push({ address, port: portOf(obj(e.ports)), labels: obj(e.labels), healthy: connected.has(address) });
    }
  }

  // Policies that apply to any of its workloads: mesh-wide (root namespace, no selector), namespace-wide, or selecting one.
  const workloadLabels = endpoints.map((e) => e.labels as Record<string, string>);
  // Without a ServiceEntry (a Kubernetes Service), the namespace is the host's: <name>.<namespace>.svc.<domain>.
  const namespaces = new Set(entries.length > 0 ? entries.map((e) => e.metadata.namespace) : [host.split('.')[1] ?? '']);
  const policies = configs
    .filter((c) => ['PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication', 'Sidecar', 'Telemetry'].includes(c.kind))
    .filter((c) => {
      const sel = obj(c.spec.selector).matchLabels ?? obj(c.spec.workloadSelector).labels;
      if (!sel) return c.metadata.namespace === rootNamespace || namespaces.has(c.metadata.namespace);
      return namespaces.has(c.metadata.namespace) && workloadLabels.some((l) => selects(sel, l));
    })
    .map((c) => ({ kind: c.kind, name: c.metadata.name, namespace: c.metadata.namespace, source: sourceOf(c) }));

  // Problems: rejected files holding one of these objects, and analysis findings on them.
  const involved = [...entries, ...configs.filter((c) => virtualServices.some((v) => v.name === c.metadata.name && v.namespace === c.metadata.namespace && c.kind === 'VirtualService')), ...configs.filter((c) => c.kind === 'DestinationRule' && destinationRules.some((d) => d.name === c.metadata.name && d.namespace === c.metadata.namespace))];
  const subjects = new Set(involved.map((c) => `${c.kind} ${c.metadata.namespace}/${c.metadata.name}`));
  const files = new Set(involved.map((c) => c.source?.file).filter((f): f is string => !!f));
  const problems: ServiceProblem[] = [];
  for (const [file, list] of Object.entries(data.problems)) {
    for (const p of list) {
      const subject = p.resource ?? '';
      if (!files.has(file) && !subjects.has(subject)) continue;
      const [kind = '', name = ''] = subject.split(' ');
      problems.push({ file: p.file ?? file, ...(p.line !== undefined ? { line: p.line } : {}), message: p.message, kind, name, severity: p.severity });
    }
  }
  for (const m of analysis(data)) {
    const c = m.config as unknown as ConfigzEntry;
    if (!involved.includes(c)) continue;
    problems.push({ file: c.source?.file ?? '', ...(c.source?.line !== undefined ? { line: c.source.line } : {}), message: `${m.code}: ${m.message}`, kind: c.kind, name: `${c.metadata.namespace}/${c.metadata.name}`, severity: m.severity });
  }
  return { host, virtualServices, destinationRules, endpoints, policies, problems };
}

// Analysis runs once per distinct config snapshot (the poller replaces the array when configz changes).
let analysed: { configs: readonly ConfigzEntry[]; messages: ReturnType<typeof analysisMessages> } | undefined;
function analysis(data: WeftdData): ReturnType<typeof analysisMessages> {
  if (analysed?.configs !== data.configs) {
    let messages: ReturnType<typeof analysisMessages> = [];
    try {
      messages = analysisMessages(data.configs as unknown as Config[]);
    } catch {
      // An analyzer that fails on odd config must not take the page down; rejected files still show.
    }
    analysed = { configs: data.configs, messages };
  }
  return analysed.messages;
}

/** /api/proxies: each connected proxy and its state per xDS type (short names: `Cluster`, `Listener`...). */
export function proxiesOf(syncz: readonly SynczEntry[]): Json[] {
  return syncz
    .map((s) => {
      const n = tryParseNodeId(s.id);
      const [pod, namespace] = n ? [n.podName, n.namespace] : [s.id, ''];
      const types: Json = {};
      for (const [url, t] of Object.entries(s.types)) {
        types[url.slice(url.lastIndexOf('.') + 1)] = {
          status: t.status,
          ...(t.lastAcked ? { lastAckAt: t.lastAcked } : {}),
          ...(t.lastNacked ? { lastNackAt: t.lastNacked } : {}),
          ...(t.nackReason ? { nackReason: t.nackReason } : {}),
          ...(t.acked ?? t.sent ? { version: t.acked ?? t.sent } : {}),
        };
      }
      return { id: s.id, workload: pod, namespace, type: n?.type === 'router' ? 'gateway' : 'sidecar', address: n?.ipAddress ?? '', types };
    })
    .sort((a, b) => `${a.namespace}/${a.workload}`.localeCompare(`${b.namespace}/${b.workload}`));
}
