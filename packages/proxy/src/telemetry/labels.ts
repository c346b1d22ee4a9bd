// Istio's label values (istio_stats' populatePeerInfo), computed once per distinct combination of
// what they depend on and cached: the reporter and local workload (fixed per proxy), the peer
// (an object from the metadata-exchange or endpoint caches), the destination service (an object
// per cluster or Host header), the principals; then per response code, gRPC status and flags. A
// request whose combination was seen before finds its series through a few Map lookups, without
// building strings or label objects.
import { parseSpiffeId } from '@weft/mesh';
import { formatResponseFlags, type ResponseFlag } from '../core/types.ts';
import { type HttpSeries, type IstioMetrics, type Labels, peerLabelNames, type TcpSeries } from './metrics.ts';
import type { ServiceInfo } from './metadata.ts';
import type { WorkloadInfo } from './workload.ts';

export type Reporter = 'source' | 'destination';

const unknown = 'unknown';
const latest = 'latest';

export interface PeerLabelInput {
  reporter: Reporter;
  local: WorkloadInfo;
  /** The other side's workload; undefined when unknown. */
  peer: WorkloadInfo | undefined;
  service: ServiceInfo;
  /** The other side's SAN ('' when not mTLS). */
  peerPrincipal: string;
  /** This proxy's SAN on the connection ('' when not mTLS). */
  localPrincipal: string;
}

/** The first 20 label values, in Istio's order, with Istio's fallbacks (`unknown`, `latest`, the local canonical name). */
export function peerLabelValues(i: PeerLabelInput): string[] {
  const { local, peer, service } = i;
  const peerNamespace = parseSpiffeId(i.peerPrincipal)?.namespace || peer?.namespace || '';
  if (i.reporter === 'destination') {
    return [
      'destination',
      peer?.workloadName || unknown,
      peer?.canonicalName || unknown,
      peer?.canonicalRevision || latest,
      peerNamespace || unknown,
      i.peerPrincipal || unknown,
      peer?.app || unknown,
      peer?.version || unknown,
      peer?.cluster || unknown,
      local.workloadName,
      local.namespace,
      i.localPrincipal || unknown,
      local.app,
      local.version,
      service.host || local.canonicalName,
      local.canonicalName,
      local.canonicalRevision,
      service.name || local.canonicalName,
      local.namespace,
      local.cluster,
    ];
  }
  return [
    'source',
    local.workloadName,
    local.canonicalName,
    local.canonicalRevision,
    local.namespace,
    i.localPrincipal || unknown,
    local.app,
    local.version,
    local.cluster,
    peer?.workloadName || unknown,
    peerNamespace || unknown,
    i.peerPrincipal || unknown,
    peer?.app || unknown,
    peer?.version || unknown,
    service.host || unknown,
    peer?.canonicalName || unknown,
    peer?.canonicalRevision || latest,
    service.name || unknown,
    service.namespace || peerNamespace || unknown,
    peer?.cluster || unknown,
  ];
}

/** `connection_security_policy`: unknown for the source reporter; mutual_tls or none on the destination side. */
export function securityPolicy(reporter: Reporter, mtls: boolean): string {
  if (reporter === 'source') return unknown;
  return mtls ? 'mutual_tls' : 'none';
}

/** Labels for one HTTP series, in Istio's order. */
export function httpLabels(peerValues: readonly string[], protocol: 'http' | 'grpc', code: number, grpcStatus: number | undefined, flags: string, policy: string): Labels {
  const l: Record<string, string> = {};
  for (let i = 0; i < peerLabelNames.length; i++) l[peerLabelNames[i]!] = peerValues[i]!;
  l.request_protocol = protocol;
  l.response_code = String(code);
  l.grpc_response_status = protocol === 'grpc' && grpcStatus !== undefined ? String(grpcStatus) : '';
  l.response_flags = flags;
  l.connection_security_policy = policy;
  return l;
}

/** Labels for one TCP series, in Istio's order. */
export function tcpLabels(peerValues: readonly string[], flags: string, policy: string): Labels {
  const l: Record<string, string> = {};
  for (let i = 0; i < peerLabelNames.length; i++) l[peerLabelNames[i]!] = peerValues[i]!;
  l.request_protocol = 'tcp';
  l.response_flags = flags;
  l.connection_security_policy = policy;
  return l;
}

/** The series of one peer/service/principal combination, by code, gRPC status and flags. */
class PeerEntry {
  readonly values: string[];
  readonly policy: string;
  readonly http = new Map<string, Map<number, HttpSeries>>();
  readonly tcp = new Map<string, TcpSeries>();
  constructor(values: string[], policy: string) {
    this.values = values;
    this.policy = policy;
  }
}

const noPeer: WorkloadInfo = Object.freeze({ instance: '', namespace: '', workloadName: '', cluster: '', canonicalName: '', canonicalRevision: '', app: '', version: '', owner: '' });

function flagsText(flags: ReadonlySet<ResponseFlag>): string {
  return flags.size === 0 ? '-' : formatResponseFlags(flags);
}

/** Bound on cached peer combinations per reporter (a proxy talking to very many peers starts over). */
const maxEntries = 10_000;

/** The label caches of one reporter (one per proxy side), over one metrics store. */
export class SeriesCache {
  readonly reporter: Reporter;
  readonly local: WorkloadInfo;
  readonly #metrics: IstioMetrics;
  // peer -> service -> peer principal -> local principal -> entry
  #entries = new Map<WorkloadInfo, Map<ServiceInfo, Map<string, Map<string, PeerEntry>>>>();
  #count = 0;

  constructor(reporter: Reporter, local: WorkloadInfo, metrics: IstioMetrics) {
    this.reporter = reporter;
    this.local = local;
    this.#metrics = metrics;
  }

  #entry(peer: WorkloadInfo | undefined, service: ServiceInfo, peerPrincipal: string, localPrincipal: string, mtls: boolean): PeerEntry {
    const p = peer ?? noPeer;
    let bySvc = this.#entries.get(p);
    if (!bySvc) {
      if (this.#count >= maxEntries) {
        this.#entries = new Map();
        this.#count = 0;
      }
      bySvc = new Map();
      this.#entries.set(p, bySvc);
    }
    let byPeerSan = bySvc.get(service);
    if (!byPeerSan) {
      byPeerSan = new Map();
      bySvc.set(service, byPeerSan);
    }
    let byLocalSan = byPeerSan.get(peerPrincipal);
    if (!byLocalSan) {
      byLocalSan = new Map();
      byPeerSan.set(peerPrincipal, byLocalSan);
    }
    let e = byLocalSan.get(localPrincipal);
    if (!e) {
      const values = peerLabelValues({ reporter: this.reporter, local: this.local, peer, service, peerPrincipal, localPrincipal });
      e = new PeerEntry(values, securityPolicy(this.reporter, mtls));
      byLocalSan.set(localPrincipal, e);
      this.#count++;
    }
    return e;
  }

  /** The HTTP series for one finished request. */
  http(
    peer: WorkloadInfo | undefined,
    service: ServiceInfo,
    peerPrincipal: string,
    localPrincipal: string,
    mtls: boolean,
    grpc: boolean,
    code: number,
    grpcStatus: number | undefined,
    flags: ReadonlySet<ResponseFlag>,
  ): HttpSeries {
    const e = this.#entry(peer, service, peerPrincipal, localPrincipal, mtls);
    const f = flagsText(flags);
    let byCode = e.http.get(f);
    if (!byCode) {
      byCode = new Map();
      e.http.set(f, byCode);
    }
    const key = code * 64 + (grpc ? 32 + (grpcStatus === undefined ? 31 : grpcStatus & 31) : 0);
    let s = byCode.get(key);
    if (!s) {
      s = this.#metrics.httpSeries(httpLabels(e.values, grpc ? 'grpc' : 'http', code, grpcStatus, f, e.policy));
      byCode.set(key, s);
    }
    return s;
  }

  /** The TCP series for one connection (labels fixed when it is first reported, as Istio's). */
  tcp(peer: WorkloadInfo | undefined, service: ServiceInfo, peerPrincipal: string, localPrincipal: string, mtls: boolean, flags: ReadonlySet<ResponseFlag>): TcpSeries {
    const e = this.#entry(peer, service, peerPrincipal, localPrincipal, mtls);
    const f = flagsText(flags);
    let s = e.tcp.get(f);
    if (!s) {
      s = this.#metrics.tcpSeries(tcpLabels(e.values, f, e.policy));
      e.tcp.set(f, s);
    }
    return s;
  }
}
