// `weftctl proxy-config listeners|routes|clusters|endpoints|secret WORKLOAD`: a proxy's config from
// its admin port (/config_dump, /clusters), as istioctl proxy-config prints it; `-o json` gives
// the raw dump section.
import { parseClusterKey } from '@weft/mesh';
import { X509Certificate } from 'node:crypto';
import { adminUrl, getText, proxyOrSay, runningMesh, table } from './client.ts';

export const proxyConfigKinds = ['listeners', 'routes', 'clusters', 'endpoints', 'secret'] as const;
export type ProxyConfigKind = (typeof proxyConfigKinds)[number];

type Json = Record<string, unknown>;

interface ConfigDump {
  configs: Json[];
}

function section(dump: ConfigDump, name: string): Json {
  return dump.configs.find((c) => String(c['@type']).endsWith(`.${name}`)) ?? {};
}

function arr(v: unknown): Json[] {
  return Array.isArray(v) ? (v as Json[]) : [];
}

function obj(v: unknown): Json {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

/** A filter chain's match, as istioctl words it. */
function chainMatch(m: Json): string {
  const parts: string[] = [];
  const port = obj(m.destination_port).value;
  if (port !== undefined) parts.push(`port ${str(port)}`);
  const ranges = arr(m.prefix_ranges).map((r) => `${str(r.address_prefix)}/${str(obj(r.prefix_len).value ?? 32)}`);
  if (ranges.length) parts.push(`addr ${ranges.join(',')}`);
  const sni = arr(m.server_names).map(str);
  if (sni.length) parts.push(`SNI: ${sni.join(',')}`);
  if (m.transport_protocol) parts.push(`Trans: ${str(m.transport_protocol)}`);
  const alpn = arr(m.application_protocols).map(str);
  if (alpn.length) parts.push(`App: ${alpn.join(',')}`);
  return parts.length ? parts.join('; ') : 'ALL';
}

/** Where a filter chain sends traffic: its route configuration, inline routes, or cluster. */
function chainDestination(chain: Json): string {
  for (const f of arr(chain.filters)) {
    const tc = obj(f.typed_config);
    if (str(f.name).includes('http_connection_manager')) {
      const rds = obj(tc.rds).route_config_name;
      if (rds) return `Route: ${str(rds)}`;
      const rc = obj(tc.route_config);
      const clusters = new Set<string>();
      for (const vh of arr(rc.virtual_hosts)) for (const r of arr(vh.routes)) if (obj(r.route).cluster) clusters.add(str(obj(r.route).cluster));
      return clusters.size ? `Inline Route: ${[...clusters].join(', ')}` : 'Inline Route';
    }
    if (str(f.name).includes('tcp_proxy')) {
      if (tc.cluster) return `Cluster: ${str(tc.cluster)}`;
      const weighted = arr(obj(tc.weighted_clusters).clusters).map((c) => `${str(c.name)} (${str(c.weight)})`);
      return `Cluster: ${weighted.join(', ')}`;
    }
  }
  return 'Non-HTTP/Non-TCP';
}

function listenersTable(dump: ConfigDump): string {
  const rows: string[][] = [];
  for (const l of arr(section(dump, 'ListenersConfigDump').dynamic_listeners)) {
    const listener = obj(obj(l.active_state).listener);
    const sa = obj(obj(listener.address).socket_address);
    for (const chain of arr(listener.filter_chains)) rows.push([str(l.name), str(sa.address), str(sa.port_value), chainMatch(obj(chain.filter_chain_match)), chainDestination(chain)]);
  }
  return table(['NAME', 'ADDRESS', 'PORT', 'MATCH', 'DESTINATION'], rows);
}

function routeMatch(m: Json): string {
  let path = '/*';
  if (m.path !== undefined) path = str(m.path);
  else if (m.prefix !== undefined) path = `${str(m.prefix)}*`;
  else if (m.path_separated_prefix !== undefined) path = `${str(m.path_separated_prefix)}*`;
  else if (m.safe_regex !== undefined) path = `~${str(obj(m.safe_regex).regex)}`;
  const headers = arr(m.headers).map((h) => {
    const sm = obj(h.string_match);
    const value = sm.exact ?? sm.prefix ?? obj(sm.safe_regex).regex ?? h.exact_match ?? h.prefix_match ?? '';
    return `${str(h.name)}=${str(value)}`;
  });
  return headers.length ? `${path} (${headers.join(', ')})` : path;
}

function routeDestination(r: Json): string {
  const route = obj(r.route);
  if (route.cluster) return str(route.cluster);
  const weighted = arr(obj(route.weighted_clusters).clusters);
  if (weighted.length) return weighted.map((c) => `${str(c.name)} ${str(obj(c.weight).value ?? c.weight)}%`).join(', ');
  if (r.direct_response) return `direct ${str(obj(r.direct_response).status)}`;
  if (r.redirect) return 'redirect';
  return '';
}

/** `reviews.default` from the route's istio metadata (`/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews`). */
function virtualServiceOf(r: Json): string {
  const istio = obj(obj(obj(r.metadata).filter_metadata).istio);
  const config = obj(obj(istio.fields).config).stringValue ?? istio.config;
  const m = /namespaces\/([^/]+)\/virtual-service\/([^/]+)/.exec(str(config));
  return m ? `${m[2]}.${m[1]}` : '';
}

function routesTable(dump: ConfigDump): string {
  const rows: string[][] = [];
  for (const d of arr(section(dump, 'RoutesConfigDump').dynamic_route_configs)) {
    const rc = obj(d.route_config);
    for (const vh of arr(rc.virtual_hosts)) {
      const domains = arr(vh.domains).map(str);
      const shown = domains.length > 2 ? `${domains.slice(0, 2).join(', ')} + ${domains.length - 2} more...` : domains.join(', ');
      const routes = arr(vh.routes);
      if (routes.length === 0) rows.push([str(rc.name), str(vh.name), shown, '(none)', '', '']);
      for (const r of routes) rows.push([str(rc.name), str(vh.name), shown, routeMatch(obj(r.match)), routeDestination(r), virtualServiceOf(r)]);
    }
  }
  return table(['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'DESTINATION', 'VIRTUAL SERVICE'], rows);
}

/** `outbound|9080|v1|reviews.default.svc.cluster.local` -> its parts; other names as they are. */
function clusterParts(name: string): { fqdn: string; port: string; subset: string; direction: string } {
  const k = parseClusterKey(name);
  if (k) return { direction: k.direction, port: String(k.port), subset: k.subset, fqdn: k.hostname };
  return { fqdn: name, port: '-', subset: '-', direction: '-' };
}

function destinationRuleOf(c: Json): string {
  const istio = obj(obj(obj(c.metadata).filter_metadata).istio);
  const config = obj(obj(istio.fields).config).stringValue ?? istio.config;
  const m = /namespaces\/([^/]+)\/destination-rule\/([^/]+)/.exec(str(config));
  return m ? `${m[2]}.${m[1]}` : '';
}

function clustersTable(dump: ConfigDump): string {
  const rows = arr(section(dump, 'ClustersConfigDump').dynamic_active_clusters).map((d) => {
    const c = obj(d.cluster);
    const p = clusterParts(str(c.name));
    return [p.fqdn, p.port, p.subset, p.direction.toUpperCase(), str(c.type), destinationRuleOf(c)];
  });
  return table(['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'DESTINATION RULE'], rows);
}

/** Envoy's /clusters text (`cluster::host:port::key::value`) as endpoint rows. */
export function endpointsTable(text: string): string {
  const byHost = new Map<string, { cluster: string; host: string; health: string }>();
  for (const line of text.split('\n')) {
    const parts = line.split('::');
    if (parts.length < 4) continue;
    const [cluster, host, key, value] = parts as [string, string, string, string];
    if (!/:\d+$/.test(host)) continue;
    const k = `${cluster} ${host}`;
    const e = byHost.get(k) ?? { cluster, host, health: 'healthy' };
    if (key === 'health_flags') e.health = value;
    byHost.set(k, e);
  }
  const rows = [...byHost.values()].map((e) => [e.host, e.health === 'healthy' ? 'HEALTHY' : 'UNHEALTHY', e.health.includes('failed_outlier_check') ? 'FAILED' : 'OK', e.cluster]);
  return table(['ENDPOINT', 'STATUS', 'OUTLIER CHECK', 'CLUSTER'], rows);
}

function secretTable(dump: ConfigDump): string {
  const rows = arr(section(dump, 'SecretsConfigDump').dynamic_active_secrets).map((d) => {
    const s = obj(d.secret);
    const tls = obj(s.tls_certificate);
    const ca = obj(obj(s.validation_context).trusted_ca);
    const b64 = str(obj(tls.certificate_chain).inline_bytes) || str(ca.inline_bytes);
    let info = ['', '', '', ''];
    if (b64) {
      try {
        const cert = new X509Certificate(Buffer.from(b64, 'base64'));
        const valid = Date.now() >= Date.parse(cert.validFrom) && Date.now() <= Date.parse(cert.validTo);
        info = [String(valid), cert.serialNumber.toLowerCase(), new Date(cert.validTo).toISOString(), new Date(cert.validFrom).toISOString()];
      } catch {
        info = ['false', '', '', ''];
      }
    }
    return [str(d.name), tls.certificate_chain ? 'Cert Chain' : 'CA', 'ACTIVE', ...info];
  });
  return table(['RESOURCE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE'], rows);
}

export async function proxyConfig(
  o: { stateDir: string; kind: ProxyConfigKind; workload: string; format: 'text' | 'json'; kube?: { kubeconfig: string | undefined; namespace: string } },
  io: { out: (s: string) => void; err: (s: string) => void },
): Promise<number> {
  let admin: (path: string) => Promise<string>;
  if (o.kube) {
    // On a cluster the admin port is on the pod's loopback only: read it over a port-forward, as istioctl.
    const kube = await import('@weft/kube');
    const { namespace } = o.kube;
    let kc: ReturnType<typeof kube.loadKubeConfig>;
    let pod: string;
    try {
      kc = kube.loadKubeConfig(o.kube.kubeconfig);
      pod = await kube.podByName(kc, namespace, o.workload);
    } catch (e) {
      io.err(`weftctl: ${kube.apiError(e)}\n`);
      return 1;
    }
    admin = async (path) => {
      const r = await kube.podPortGet(kc, namespace, pod, 15000, path);
      if (r.status !== 200) throw new Error(`${namespace}/${pod}:15000${path} answered ${r.status}: ${r.body.slice(0, 200)}`);
      return r.body;
    };
  } else {
    const s = await runningMesh(o.stateDir);
    const proxy = proxyOrSay(s, o.workload, io);
    if (!proxy) return 1;
    admin = (path) => getText(adminUrl(proxy, path));
  }
  if (o.kind === 'endpoints') {
    const text = await admin('/clusters');
    io.out(o.format === 'json' ? `${JSON.stringify(text.split('\n').filter(Boolean), null, 2)}\n` : endpointsTable(text));
    return 0;
  }
  const dump = JSON.parse(await admin('/config_dump')) as ConfigDump;
  const sections: Record<Exclude<ProxyConfigKind, 'endpoints'>, [string, (d: ConfigDump) => string]> = {
    listeners: ['ListenersConfigDump', listenersTable],
    routes: ['RoutesConfigDump', routesTable],
    clusters: ['ClustersConfigDump', clustersTable],
    secret: ['SecretsConfigDump', secretTable],
  };
  const [name, render] = sections[o.kind];
  io.out(o.format === 'json' ? `${JSON.stringify(section(dump, name), null, 2)}\n` : render(dump));
  return 0;
}
