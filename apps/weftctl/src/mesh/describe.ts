// `weftctl describe WORKLOAD`: which services, routing rules and policies apply to a workload of
// the running mesh, and why, in the manner of `istioctl x describe pod`. weftd answers it from
// pilot's live push context (/debug/describe?proxyID=...: the selection that built the proxy's
// config), so this file only words the answer; it applies no selection rule of its own.
import type { DescribedRoute, DescribedVirtualService, ProxyDescription } from '@weft/pilot';
import type { MeshState, ProxyState } from '../up/state.ts';
import { getJson, NotAnsweringError, proxyOrSay, runningMesh, weftdUrl } from './client.ts';

type Json = Record<string, unknown>;

function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

function obj(v: unknown): Json {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

function name(c: { name: string; namespace: string }): string {
  return `${c.name}.${c.namespace}`;
}

/** An HTTP match as a short phrase: `uri prefix /api, headers end-user=jason`. */
function matchText(m: Json): string {
  const parts: string[] = [];
  for (const field of ['uri', 'scheme', 'method', 'authority']) {
    for (const [k, v] of Object.entries(obj(m[field]))) parts.push(`${field} ${k} ${String(v)}`);
  }
  for (const [h, sm] of Object.entries(obj(m.headers))) for (const [k, v] of Object.entries(obj(sm))) parts.push(`header ${h} ${k === 'exact' ? '=' : k} ${String(v)}`);
  for (const [h, sm] of Object.entries(obj(m.queryParams))) for (const [k, v] of Object.entries(obj(sm))) parts.push(`query ${h} ${k === 'exact' ? '=' : k} ${String(v)}`);
  if (m.port !== undefined) parts.push(`port ${String(m.port)}`);
  if (Object.keys(obj(m.sourceLabels)).length) parts.push(`from ${labelText(obj(m.sourceLabels) as Record<string, string>)}`);
  if (Array.isArray(m.gateways) && m.gateways.length) parts.push(`gateways ${(m.gateways as string[]).join(',')}`);
  return parts.join(', ') || 'everything';
}

function routeMatches(r: DescribedRoute): string {
  return r.match.length === 0 ? 'everything' : r.match.map(matchText).join(' OR ');
}

function meshRoutes(vs: DescribedVirtualService, out: string[]): void {
  let reaching = 0;
  const notReaching: string[] = [];
  for (const r of vs.routes) {
    for (const d of r.destinations) {
      const text = `Route to host "${d.host}"${d.subset ? ` subset "${d.subset}"` : ''} with weight ${d.weight}% for (${routeMatches(r)})`;
      if (d.reachesWorkload) {
        reaching++;
        out.push(`   ${text}`);
      } else notReaching.push(`${text}: subset ${d.subset} does not select this pod`);
    }
    if (r.fault) out.push(`   Fault injection for (${routeMatches(r)}): ${Object.keys(r.fault).join(', ')}`);
    if (r.timeout) out.push(`   Timeout ${r.timeout} for (${routeMatches(r)})`);
    if (r.retries) out.push(`   Retries ${JSON.stringify(r.retries)} for (${routeMatches(r)})`);
  }
  if (reaching === 0 && notReaching.length > 0) out.push(`   WARNING: No destinations match pod subsets (checked ${vs.httpRoutes} HTTP routes)`);
  for (const t of notReaching) out.push(`      ${t}`);
}

/** The lines explaining one workload, from weftd's answer. */
export function describeWorkload(d: ProxyDescription, p: ProxyState, mesh: MeshState): string[] {
  const out: string[] = [];
  const app = mesh.apps.find((a) => a.workload === p.name);
  out.push(`Pod: ${d.proxy.podName}.${d.proxy.namespace}`);
  out.push(`   ${d.proxy.type === 'router' ? 'Gateway' : 'Sidecar'} on ${p.address}${app ? `; application ${app.service} ${app.version} on ${app.address}:${app.port}` : ''}`);
  out.push(`   Labels: ${labelText(d.proxy.labels) || '(none)'}`);
  if (d.proxy.identity) out.push(`   Identity: ${d.proxy.identity}`);
  if (d.services.length === 0) out.push('   No service selects this workload (no ServiceEntry workloadSelector matches its labels, none lists its address)');

  for (const s of d.services) {
    out.push('--------------------');
    const why = 'workloadSelector' in s.selectedBy ? `its workloadSelector ${labelText(s.selectedBy.workloadSelector)} matches` : `it lists this address (${s.selectedBy.address})`;
    out.push(`Service: ${s.hostname} (${s.origin.kind} ${name(s.origin)}: ${why})`);
    for (const port of s.ports) out.push(`   Port: ${port.name} ${port.number}/${port.protocol}${port.targetPort !== undefined ? ` targets pod port ${port.targetPort}` : ''}`);

    const dr = s.destinationRule;
    if (dr) {
      out.push(`DestinationRule: ${name(dr)} for "${dr.host}"`);
      if (dr.subsets.length > 0) {
        out.push(`   Matching subsets: ${dr.subsets.filter((x) => x.selectsWorkload).map((x) => x.name).join(',') || '(none)'}`);
        const other = dr.subsets.filter((x) => !x.selectsWorkload).map((x) => x.name);
        if (other.length) out.push(`      (Non-matching subsets ${other.join(',')})`);
      }
      const tp = obj(dr.trafficPolicy);
      if (Object.keys(tp).length === 0) out.push('   No Traffic Policy');
      else {
        const tls = obj(tp.tls).mode;
        out.push(`   Traffic Policy: ${[tls ? `TLS ${String(tls)}` : '', ...Object.keys(tp).filter((k) => k !== 'tls')].filter(Boolean).join(', ')}`);
      }
    } else out.push('   No DestinationRule (no subsets; clients use mTLS automatically when this workload has a sidecar)');

    for (const vs of s.virtualServices) {
      if (vs.ignoredFor) {
        out.push(`VirtualService: ${name(vs)} (ignored for ${vs.ignoredFor.host}: ${name(vs.ignoredFor.winner)} is older and defines the same host)`);
        continue;
      }
      out.push(`VirtualService: ${name(vs)}`);
      meshRoutes(vs, out);
    }
    for (const vs of s.gateways) {
      const ingress = mesh.ingress && mesh.url ? ` http://127.0.0.1:${mesh.ingress.httpPort}` : '';
      out.push(`Exposed on Ingress Gateway${ingress} (Gateway ${vs.gateways.join(', ')})`);
      out.push(`VirtualService: ${name(vs)}`);
      for (const r of vs.routes) out.push(`   ${routeMatches(r)}`);
    }
  }

  out.push('--------------------');
  const pa = d.peerAuthentication;
  out.push('Effective PeerAuthentication:');
  out.push(`   Workload mTLS mode: ${pa.mode}${pa.sources.length === 0 ? ' (the default: no PeerAuthentication applies)' : ''}`);
  for (const [port, mode] of Object.entries(pa.portLevel)) out.push(`   Port ${port}: ${mode}`);
  if (pa.sources.length) {
    out.push('Applied PeerAuthentication:');
    const scope = { workload: 'selects this workload', namespace: `namespace-wide in ${d.proxy.namespace}`, mesh: 'mesh-wide' } as const;
    for (const c of pa.sources) out.push(`   ${name(c)} (${scope[c.scope]}${c.mode ? `: ${c.mode}` : ''})`);
  }

  if (d.authorization.length === 0) out.push('AuthorizationPolicies: none (every request is allowed)');
  else {
    out.push('AuthorizationPolicies:');
    for (const c of d.authorization) {
      const scope = c.selector ? `selects ${labelText(c.selector)}` : c.scope === 'mesh' ? 'mesh-wide' : `namespace-wide in ${d.proxy.namespace}`;
      out.push(`   ${c.action} ${name(c)} (${scope}; ${c.rules} rule(s))`);
    }
    if (d.authorization.some((c) => c.action === 'ALLOW')) out.push('   With an ALLOW policy, requests that match none of its rules are denied (403).');
  }
  return out;
}

export async function describe(o: { stateDir: string; workload: string; format: 'text' | 'json' }, io: { out: (s: string) => void; err: (s: string) => void }): Promise<number> {
  const s = await runningMesh(o.stateDir);
  const proxy = proxyOrSay(s, o.workload, io);
  if (!proxy) return 1;
  let body: ProxyDescription;
  try {
    body = await getJson<ProxyDescription>(weftdUrl(s, `/debug/describe?proxyID=${encodeURIComponent(proxy.nodeId)}`));
  } catch (e) {
    if (e instanceof NotAnsweringError) throw e;
    // 404: the proxy is not connected to weftd (starting, restarting, or rejected by it).
    io.err(`weftctl: weftd cannot describe ${proxy.name}: ${(e as Error).message}\n`);
    return 1;
  }
  const lines = describeWorkload(body, proxy, s);
  io.out(o.format === 'json' ? `${JSON.stringify({ workload: proxy, description: body, lines }, null, 2)}\n` : `${lines.join('\n')}\n`);
  return 0;
}
