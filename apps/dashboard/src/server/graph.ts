// The service graph from Prometheus, as Kiali draws its workload graph: istio_requests_total and
// istio_request_duration_milliseconds_bucket as reported by the destination's proxy (it sees
// every caller, including the ingress gateway, and knows whether the connection was mTLS), one
// edge per source workload -> destination workload, each destination workload grouped under the
// service (destination_service) it was reached as.

export interface GraphNode {
  id: string;
  kind: 'service' | 'workload' | 'gateway' | 'unknown';
  label: string;
  namespace: string;
  service?: string;
  version?: string;
  /** The id of the service node this workload is grouped under. */
  parent?: string;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  /** Requests per second over the window. */
  rps: number;
  /** Share of requests not answered 5xx (1 when there were none). */
  successRate: number;
  p99Ms: number | null;
  /** Every request of the window on a mutual_tls connection (as the destination reported it). */
  mtls: boolean;
  /** successRate < 0.95 or any 5xx. */
  error: boolean;
}

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** One sample of a Prometheus instant vector (`/api/v1/query` resultType vector). */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/**
 * The window a graph request without one gets, and the one always polled: the page's default, short
 * enough that a route change shows as rates falling to 0 within a minute (a 1m rate takes longer).
 */
export const defaultWindow = '30s';

/** `30s`, `1m`, `5m`, `1h`: a PromQL range the API accepts (bounded: at least 10 s, at most 1 day). */
export function parseWindow(text: string | null): string | undefined {
  const w = text ?? defaultWindow;
  const m = /^(\d{1,5})(s|m|h)$/.exec(w);
  if (!m) return undefined;
  const seconds = Number(m[1]) * (m[2] === 's' ? 1 : m[2] === 'm' ? 60 : 3600);
  return seconds >= 10 && seconds <= 86_400 ? w : undefined;
}

const edgeLabels = [
  'source_workload',
  'source_workload_namespace',
  'source_app',
  'source_version',
  'destination_workload',
  'destination_workload_namespace',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_app',
  'destination_version',
];

/** The PromQL the graph is built from, for one window. */
export function graphQueries(window: string): { requests: string; p99: string } {
  return {
    requests: `sum by (${[...edgeLabels, 'response_code', 'connection_security_policy'].join(', ')}) (rate(istio_requests_total{reporter="destination"}[${window}]))`,
    p99: `histogram_quantile(0.99, sum by (le, source_workload, source_workload_namespace, destination_workload, destination_workload_namespace) (rate(istio_request_duration_milliseconds_bucket{reporter="destination"}[${window}])))`,
  };
}

const isGatewayName = (workload: string) => /(^|-)(ingress|egress)gateway($|-)/.test(workload);

/**
 * Builds the graph. `gateways` are workload ids (`istio-system/istio-ingressgateway`) known to be
 * gateways (weftd's router proxies); names like `*-ingressgateway` are taken as gateways too.
 */
export function buildGraph(requests: readonly PromSample[], p99: readonly PromSample[], gateways: ReadonlySet<string> = new Set()): Graph {
  const nodes = new Map<string, GraphNode>();
  interface Acc {
    source: string;
    target: string;
    total: number;
    fiveXx: number;
    mtls: number;
    series: number;
    mtlsSeries: number;
  }
  const edges = new Map<string, Acc>();
  const workloadNode = (ns: string, workload: string, app: string | undefined, version: string | undefined): string => {
    if (!workload || workload === 'unknown') {
      if (!nodes.has('unknown')) nodes.set('unknown', { id: 'unknown', kind: 'unknown', label: 'unknown', namespace: ns && ns !== 'unknown' ? ns : '' });
      return 'unknown';
    }
    const id = `${ns}/${workload}`;
    if (!nodes.has(id)) {
      const gateway = gateways.has(id) || isGatewayName(workload);
      nodes.set(id, {
        id,
        kind: gateway ? 'gateway' : 'workload',
        label: workload,
        namespace: ns,
        ...(app && app !== 'unknown' ? { service: app } : {}),
        ...(version && version !== 'unknown' ? { version } : {}),
      });
    }
    return id;
  };
  for (const s of requests) {
    const m = s.metric;
    const rate = Number(s.value[1]);
    if (!Number.isFinite(rate)) continue;
    const source = workloadNode(m.source_workload_namespace ?? '', m.source_workload ?? '', m.source_app, m.source_version);
    const target = workloadNode(m.destination_workload_namespace ?? '', m.destination_workload ?? '', m.destination_app, m.destination_version);
    const host = m.destination_service;
    if (host && host !== 'unknown' && target !== 'unknown') {
      const svcId = `svc:${host}`;
      if (!nodes.has(svcId)) nodes.set(svcId, { id: svcId, kind: 'service', label: m.destination_service_name || host, namespace: m.destination_service_namespace ?? '', service: host });
      const t = nodes.get(target)!;
      if (t.kind === 'workload' && t.parent === undefined) {
        t.parent = svcId;
        t.service = m.destination_service_name || t.service;
      }
    }
    const id = `${source}->${target}`;
    let e = edges.get(id);
    if (!e) {
      e = { source, target, total: 0, fiveXx: 0, mtls: 0, series: 0, mtlsSeries: 0 };
      edges.set(id, e);
    }
    e.total += rate;
    const code = Number(m.response_code);
    if (code >= 500 || code === 0) e.fiveXx += rate;
    e.series++;
    if (m.connection_security_policy === 'mutual_tls') {
      e.mtls += rate;
      e.mtlsSeries++;
    }
  }
  const p99s = new Map<string, number>();
  for (const s of p99) {
    const m = s.metric;
    const v = Number(s.value[1]);
    const src = m.source_workload && m.source_workload !== 'unknown' ? `${m.source_workload_namespace}/${m.source_workload}` : 'unknown';
    const dst = m.destination_workload && m.destination_workload !== 'unknown' ? `${m.destination_workload_namespace}/${m.destination_workload}` : 'unknown';
    if (Number.isFinite(v)) p99s.set(`${src}->${dst}`, v);
  }
  const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
  const out: GraphEdge[] = [...edges].map(([id, e]) => {
    const successRate = e.total > 0 ? 1 - e.fiveXx / e.total : 1;
    const p = p99s.get(id);
    return {
      id,
      source: e.source,
      target: e.target,
      rps: round(e.total, 3),
      successRate: round(successRate, 4),
      p99Ms: p === undefined ? null : round(p, 2),
      // A share, not an exact 1: rates are extrapolated per series and sum with rounding error.
      // Without traffic in the window, what the series say (every one mutual_tls).
      mtls: e.total > 0 ? e.mtls / e.total >= 0.999 : e.series > 0 && e.mtlsSeries === e.series,
      error: successRate < 0.95 || e.fiveXx > 0,
    };
  });
  return { nodes: [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id)), edges: out.sort((a, b) => a.id.localeCompare(b.id)) };
}
