// `weftctl proxy-status`: istioctl's proxy-status for the local mesh, from weftd's /debug/syncz.
import { nodeIdWorkload, tryParseNodeId } from '@weft/mesh';
import { allProxies, getJson, runningMesh, table, weftdUrl } from './client.ts';
import { rejectedConfig, rejectedConfigText } from './config-problems.ts';

export interface SynczType {
  status: 'ACKED' | 'NACKED' | 'SENT' | 'NOT_SENT';
  sent: string;
  acked: string;
  nacked: string;
  nackReason: string;
}

export interface SynczEntry {
  id: string;
  pushVersion?: string;
  connectedAt?: string;
  /** The stream proved an identity on weftd's TLS port and its node matched it; false on the plaintext port. */
  authenticated?: boolean;
  /** The SPIFFE ID it proved. */
  identity?: string;
  types: Record<string, SynczType>;
}

const columns: [string, string][] = [
  ['CDS', 'type.googleapis.com/envoy.config.cluster.v3.Cluster'],
  ['LDS', 'type.googleapis.com/envoy.config.listener.v3.Listener'],
  ['EDS', 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment'],
  ['RDS', 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration'],
  // weft-proxy's routes as virtual hosts (delta xDS): a rejected route shows here.
  ['VHDS', 'type.googleapis.com/envoy.config.route.v3.VirtualHost'],
  ['SDS', 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret'],
];

/** istioctl's words: SYNCED (acked what was sent), STALE (sent, not yet acked), NOT SENT, ERROR (rejected). */
export function syncWord(t: SynczType | undefined): string {
  if (!t) return 'NOT SENT';
  switch (t.status) {
    case 'ACKED':
      return 'SYNCED';
    case 'SENT':
      return 'STALE';
    case 'NACKED':
      return 'ERROR';
    default:
      return 'NOT SENT';
  }
}

/** `reviews-v2.default` from `sidecar~127.0.0.14~reviews-v2.default~default.svc.cluster.local`. */
export function proxyName(id: string): string {
  return nodeIdWorkload(id);
}

export async function proxyStatus(o: { stateDir: string; format: 'text' | 'json' }, io: { out: (s: string) => void; err: (s: string) => void }): Promise<number> {
  const s = await runningMesh(o.stateDir);
  const all = await getJson<SynczEntry[]>(weftdUrl(s, '/debug/syncz'));
  // Only a stream that proved its identity speaks for a proxy; unauthenticated ones exist only while
  // the plaintext port is open (`weftctl up --plaintext-xds`), and are marked as such.
  const plaintext = s.weftd!.xdsPort !== undefined;
  const entries = plaintext ? all : all.filter((e) => e.authenticated === true);
  if (o.format === 'json') {
    io.out(`${JSON.stringify(entries, null, 2)}\n`);
    return 0;
  }
  const used = columns.filter(([, url]) => entries.some((e) => e.types[url]));
  // Restarts as `weftctl up` counted them (mesh.json), as kubectl shows a pod's.
  const restarts = (id: string) => String(allProxies(s).find((p) => p.nodeId === id)?.run?.restarts ?? 0);
  const rows = entries
    .map((e) => [
      proxyName(e.id),
      tryParseNodeId(e.id)?.type ?? '',
      ...used.map(([, url]) => syncWord(e.types[url])),
      e.authenticated ? `weftd 127.0.0.1:${s.weftd!.caPort}` : `weftd 127.0.0.1:${s.weftd!.xdsPort} UNAUTHENTICATED`,
      e.pushVersion ?? '',
      e.authenticated ? restarts(e.id) : '-',
    ])
    .sort((a, b) => a[0]!.localeCompare(b[0]!));
  const connected = new Set(entries.filter((e) => e.authenticated).map((e) => e.id));
  for (const p of allProxies(s)) if (!connected.has(p.nodeId)) rows.push([`${p.name}.${p.namespace}`, p.type, ...used.map(() => 'NOT CONNECTED'), '-', '-', restarts(p.nodeId)]);
  io.out(table(['NAME', 'TYPE', ...used.map(([n]) => n), 'WEFTD', 'VERSION', 'RESTARTS'], rows));
  for (const e of entries) {
    for (const [url, t] of Object.entries(e.types)) {
      if (t.status === 'NACKED') io.out(`${proxyName(e.id)} rejected ${url.split('.').at(-1)} version ${t.nacked}: ${t.nackReason}\n`);
    }
  }
  // A config file weftd rejected: the proxies are in sync with the config in force, which is not
  // what the directory says. Reported, not an error status (istioctl proxy-status does the same).
  io.out(rejectedConfigText(await rejectedConfig(s)));
  const weftdRestarts = s.weftd!.run?.restarts ?? 0;
  if (weftdRestarts > 0) io.out(`weftd: restarted ${weftdRestarts} time${weftdRestarts === 1 ? '' : 's'} (last: it ${s.weftd!.run?.lastExit?.reason ?? 'exited'}); \`weftctl status\` shows every component\n`);
  return 0;
}
