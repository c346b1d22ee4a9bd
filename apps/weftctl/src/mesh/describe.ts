// `weftctl describe WORKLOAD`: which services, routing rules and policies apply to a workload of
// the running mesh, and why, in the manner of `istioctl x describe pod`. Read from weftd's
// /debug/configz (the config in force) with Istio's selection rules: services select by labels,
// DestinationRule subsets by labels, VirtualServices route to a host (and subset), policies apply
// mesh-wide (root namespace), namespace-wide, or by workload selector, the most specific winning.
import { defaultTrustDomain, hostsMatch, hostSubsetOf, resolveHost, spiffeId } from '@weft/mesh';
import { configOrder } from '@weft/model';
import type { MeshState, ProxyState } from '../up/state.ts';
import { findProxy, getJson, runningMesh, weftdUrl } from './client.ts';

type Json = Record<string, unknown>;

export interface ConfigEntry {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string>; creationTimestamp?: string };
  spec: Json;
}

const rootNamespace = 'istio-system';

function selects(selector: unknown, labels: Record<string, string>): boolean {
  if (!selector || typeof selector !== 'object') return false;
  return Object.entries(selector as Record<string, string>).every(([k, v]) => labels[k] === v);
}

function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

function arr<T = Json>(v: unknown): T[] {
  return Array.isArray(v) ? (v as T[]) : [];
}

function obj(v: unknown): Json {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

function name(c: ConfigEntry): string {
  return `${c.metadata.name}.${c.metadata.namespace}`;
}

interface ServiceInfo {
  entry: ConfigEntry;
  host: string;
  ports: { name: string; number: number; protocol: string; targetPort: number }[];
}

/** An HTTP match as a short phrase: `uri prefix /api, headers end-user=jason`. */
function matchText(m: Json): string {
  const parts: string[] = [];
  for (const field of ['uri', 'scheme', 'method', 'authority']) {
    const sm = obj(m[field]);
    for (const [k, v] of Object.entries(sm)) parts.push(`${field} ${k} ${String(v)}`);
  }
  for (const [h, sm] of Object.entries(obj(m.headers))) for (const [k, v] of Object.entries(obj(sm))) parts.push(`header ${h} ${k === 'exact' ? '=' : k} ${String(v)}`);
  for (const [h, sm] of Object.entries(obj(m.queryParams))) for (const [k, v] of Object.entries(obj(sm))) parts.push(`query ${h} ${k === 'exact' ? '=' : k} ${String(v)}`);
  if (m.port !== undefined) parts.push(`port ${String(m.port)}`);
  if (arr(m.sourceLabels).length || Object.keys(obj(m.sourceLabels)).length) parts.push(`from ${labelText(obj(m.sourceLabels) as Record<string, string>)}`);
  if (arr(m.gateways).length) parts.push(`gateways ${arr<string>(m.gateways).join(',')}`);
  return parts.join(', ') || 'everything';
}

function routeMatches(route: Json): string {
  const ms = arr(route.match);
  return ms.length === 0 ? 'everything' : ms.map(matchText).join(' OR ');
}

/** The lines explaining one workload. */
export function describeWorkload(input: readonly ConfigEntry[], p: ProxyState, mesh: MeshState): string[] {
  // Istio's order (oldest, then name, then namespace): where configs compete, the first applies.
  const configs = [...input].sort(configOrder);
  const out: string[] = [];
  const ns = p.namespace;
  const labels = p.labels;
  const app = mesh.apps.find((a) => a.workload === p.name);
  out.push(`Pod: ${p.name}.${ns}`);
  out.push(`   ${p.type === 'router' ? 'Gateway' : 'Sidecar'} on ${p.address}${app ? `; application ${app.service} ${app.version} on ${app.address}:${app.port}` : ''}`);
  out.push(`   Labels: ${labelText(labels) || '(none)'}`);
  out.push(`   Identity: ${spiffeId(defaultTrustDomain, ns, p.serviceAccount)}`);

  // Services: ServiceEntries in the workload's namespace whose workloadSelector matches its labels.
  const services: ServiceInfo[] = [];
  for (const se of configs.filter((c) => c.kind === 'ServiceEntry' && c.metadata.namespace === ns)) {
    const sel = obj(se.spec.workloadSelector).labels;
    const byAddress = arr(se.spec.endpoints).some((e) => obj(e).address === p.address);
    if (!selects(sel, labels) && !byAddress) continue;
    const we = configs.find((c) => c.kind === 'WorkloadEntry' && c.metadata.namespace === ns && c.metadata.name === p.name);
    const wePorts = obj(we?.spec.ports) as Record<string, number>;
    for (const host of arr<string>(se.spec.hosts)) {
      services.push({
        entry: se,
        host,
        ports: arr(se.spec.ports).map((x) => ({
          name: String(x.name),
          number: Number(x.number),
          protocol: String(x.protocol ?? 'TCP'),
          targetPort: Number(wePorts[String(x.name)] ?? x.targetPort ?? x.number),
        })),
      });
    }
  }
  if (services.length === 0) out.push('   No service selects this workload (no ServiceEntry workloadSelector matches its labels)');

  for (const s of services) {
    out.push('--------------------');
    const why = selects(obj(s.entry.spec.workloadSelector).labels, labels) ? `its workloadSelector ${labelText(obj(obj(s.entry.spec.workloadSelector).labels) as Record<string, string>)} matches` : 'it lists this address';
    out.push(`Service: ${s.host} (ServiceEntry ${name(s.entry)}: ${why})`);
    for (const port of s.ports) out.push(`   Port: ${port.name} ${port.number}/${port.protocol} targets pod port ${port.targetPort}`);

    // DestinationRules for the host: subsets that select this workload, and the traffic policy.
    const rules = configs.filter((c) => c.kind === 'DestinationRule' && hostSubsetOf(s.host, resolveHost(String(c.spec.host), c.metadata.namespace)));
    const subsetsOfPod = new Set<string>();
    const subsetLabels = new Map<string, Record<string, string>>();
    for (const dr of rules) {
      out.push(`DestinationRule: ${name(dr)} for "${String(dr.spec.host)}"`);
      const subsets = arr(dr.spec.subsets);
      const matching = subsets.filter((x) => selects(x.labels, labels)).map((x) => String(x.name));
      const other = subsets.filter((x) => !selects(x.labels, labels)).map((x) => String(x.name));
      for (const x of subsets) subsetLabels.set(String(x.name), obj(x.labels) as Record<string, string>);
      for (const m of matching) subsetsOfPod.add(m);
      if (subsets.length > 0) {
        out.push(`   Matching subsets: ${matching.join(',') || '(none)'}`);
        if (other.length) out.push(`      (Non-matching subsets ${other.join(',')})`);
      }
      const tp = obj(dr.spec.trafficPolicy);
      if (Object.keys(tp).length === 0) out.push('   No Traffic Policy');
      else {
        const tls = obj(tp.tls).mode;
        out.push(`   Traffic Policy: ${[tls ? `TLS ${String(tls)}` : '', ...Object.keys(tp).filter((k) => k !== 'tls')].filter(Boolean).join(', ')}`);
      }
    }
    if (rules.length === 0) out.push('   No DestinationRule (no subsets; clients use mTLS automatically when this workload has a sidecar)');

    // VirtualServices for the host, in the mesh (sidecars) and at gateways.
    let meshOwner: ConfigEntry | undefined;
    for (const vs of configs.filter((c) => c.kind === 'VirtualService')) {
      const hosts = arr<string>(vs.spec.hosts).map((h) => resolveHost(h, vs.metadata.namespace));
      const gateways = arr<string>(vs.spec.gateways);
      const inMesh = gateways.length === 0 || gateways.includes('mesh');
      if (inMesh && hosts.includes(s.host)) {
        if (meshOwner) {
          out.push(`VirtualService: ${name(vs)} (ignored for ${s.host}: ${name(meshOwner)} is older and defines the same host)`);
          continue;
        }
        meshOwner = vs;
      }
      const http = arr(vs.spec.http);
      const toHost = (d: Json) => hostsMatch(resolveHost(String(obj(d.destination).host), vs.metadata.namespace), s.host);
      const routesHere = http.filter((r) => arr(r.route).some(toHost));
      if (inMesh && hosts.some((h) => hostsMatch(h, s.host))) {
        out.push(`VirtualService: ${name(vs)}`);
        let reaching = 0;
        const notReaching: string[] = [];
        for (const r of http) {
          const dests = arr(r.route);
          const total = dests.reduce((n, d) => n + Number(d.weight ?? (dests.length === 1 ? 100 : 0)), 0) || 100;
          for (const d of dests.filter(toHost)) {
            const subset = obj(d.destination).subset as string | undefined;
            const weight = Math.round((Number(d.weight ?? (dests.length === 1 ? 100 : 0)) / total) * 100);
            const reaches = subset === undefined || subsetsOfPod.has(subset) || (subsetLabels.has(subset) && selects(subsetLabels.get(subset), labels));
            const text = `Route to host "${String(obj(d.destination).host)}"${subset ? ` subset "${subset}"` : ''} with weight ${weight}% for (${routeMatches(r)})`;
            if (reaches) {
              reaching++;
              out.push(`   ${text}`);
            } else notReaching.push(`${text}: subset ${subset} does not select this pod`);
          }
          if (r.fault) out.push(`   Fault injection for (${routeMatches(r)}): ${Object.keys(obj(r.fault)).join(', ')}`);
          if (r.timeout) out.push(`   Timeout ${String(r.timeout)} for (${routeMatches(r)})`);
          if (r.retries) out.push(`   Retries ${JSON.stringify(r.retries)} for (${routeMatches(r)})`);
        }
        if (reaching === 0 && notReaching.length > 0) out.push(`   WARNING: No destinations match pod subsets (checked ${http.length} HTTP routes)`);
        for (const t of notReaching) out.push(`      ${t}`);
      } else if (!inMesh && routesHere.length > 0) {
        const gw = gateways.join(', ');
        const ingress = mesh.ingress && mesh.url ? ` http://127.0.0.1:${mesh.ingress.httpPort}` : '';
        out.push(`Exposed on Ingress Gateway${ingress} (Gateway ${gw})`);
        out.push(`VirtualService: ${name(vs)}`);
        for (const r of routesHere) out.push(`   ${routeMatches(r)}`);
      }
    }
  }

  // mTLS: the most specific PeerAuthentication (workload selector > namespace > mesh-wide in the root namespace).
  out.push('--------------------');
  const pas = configs.filter((c) => c.kind === 'PeerAuthentication');
  const workloadPa = pas.find((c) => c.metadata.namespace === ns && c.spec.selector && selects(obj(c.spec.selector).matchLabels, labels));
  const namespacePa = pas.find((c) => c.metadata.namespace === ns && !c.spec.selector);
  const meshPa = pas.find((c) => c.metadata.namespace === rootNamespace && !c.spec.selector);
  const applied = [workloadPa, namespacePa, meshPa].filter((x): x is ConfigEntry => x !== undefined);
  const modeOf = (c: ConfigEntry | undefined) => {
    const m = obj(c?.spec.mtls).mode;
    return m && m !== 'UNSET' ? String(m) : undefined;
  };
  const mode = modeOf(workloadPa) ?? modeOf(namespacePa) ?? modeOf(meshPa) ?? 'PERMISSIVE';
  out.push('Effective PeerAuthentication:');
  out.push(`   Workload mTLS mode: ${mode}${applied.length === 0 ? ' (the default: no PeerAuthentication applies)' : ''}`);
  const portLevel = obj(workloadPa?.spec.portLevelMtls);
  for (const [port, v] of Object.entries(portLevel)) out.push(`   Port ${port}: ${String(obj(v).mode ?? 'UNSET')}`);
  if (applied.length) {
    out.push('Applied PeerAuthentication:');
    for (const c of applied) out.push(`   ${name(c)} (${c === workloadPa ? 'selects this workload' : c === namespacePa ? `namespace-wide in ${ns}` : 'mesh-wide'}${modeOf(c) ? `: ${modeOf(c)}` : ''})`);
  }

  // Authorization: policies in the root namespace without a selector apply mesh-wide; others by namespace and selector.
  const policies = configs.filter((c) => {
    if (c.kind !== 'AuthorizationPolicy') return false;
    const sel = obj(c.spec.selector).matchLabels;
    if (c.metadata.namespace === rootNamespace && !sel) return true;
    if (c.metadata.namespace !== ns) return false;
    return !sel || selects(sel, labels);
  });
  if (policies.length === 0) out.push('AuthorizationPolicies: none (every request is allowed)');
  else {
    out.push('AuthorizationPolicies:');
    for (const c of policies) {
      const action = String(c.spec.action ?? 'ALLOW');
      const sel = obj(c.spec.selector).matchLabels;
      const scope = sel ? `selects ${labelText(sel as Record<string, string>)}` : c.metadata.namespace === rootNamespace ? 'mesh-wide' : `namespace-wide in ${ns}`;
      out.push(`   ${action} ${name(c)} (${scope}; ${arr(c.spec.rules).length} rule(s))`);
    }
    if (policies.some((c) => String(c.spec.action ?? 'ALLOW') === 'ALLOW')) out.push('   With an ALLOW policy, requests that match none of its rules are denied (403).');
  }
  return out;
}

export async function describe(o: { stateDir: string; workload: string; format: 'text' | 'json' }, io: { out: (s: string) => void; err: (s: string) => void }): Promise<number> {
  const s = await runningMesh(o.stateDir);
  let proxy: ProxyState;
  try {
    proxy = findProxy(s, o.workload);
  } catch (e) {
    io.err(`weftctl: ${(e as Error).message}\n`);
    return 1;
  }
  const configs = await getJson<ConfigEntry[]>(weftdUrl(s, '/debug/configz'));
  const lines = describeWorkload(configs, proxy, s);
  io.out(o.format === 'json' ? `${JSON.stringify({ workload: proxy, lines }, null, 2)}\n` : `${lines.join('\n')}\n`);
  return 0;
}
