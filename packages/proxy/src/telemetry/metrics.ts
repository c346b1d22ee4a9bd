// Istio's standard metrics, kept where the request path can update them cheaply: one series object
// per label set (found through the label caches in labels.ts, never by hashing labels per request),
// plain numbers for counters and bucket arrays for histograms. prom-client's Registry serves them:
// each family is a small object with prom-client's `get()` shape, read only when Prometheus scrapes.
import type { Registry } from 'prom-client';

/** Envoy's default histogram buckets (HistogramSettingsImpl::defaultBuckets), used by every Istio histogram. */
export const envoyDefaultBuckets: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

/** The 20 labels every Istio metric starts with, in Istio's order. */
export const peerLabelNames = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
] as const;

/** HTTP and gRPC metrics: the 20, then protocol, code, gRPC status, flags and security policy (25). */
export const httpLabelNames = [...peerLabelNames, 'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy'] as const;
/** TCP metrics: the 20, then protocol, flags and security policy (23; no response code or gRPC status). */
export const tcpLabelNames = [...peerLabelNames, 'request_protocol', 'response_flags', 'connection_security_policy'] as const;

export type Labels = Readonly<Record<string, string>>;

/** A histogram series: per-bucket counts (not cumulative; the last one is +Inf), sum and count. */
export class HistogramValues {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];
  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

/** The series of one HTTP label set: istio_requests_total and the three histograms. */
export class HttpSeries {
  readonly labels: Labels;
  requests = 0;
  readonly duration: HistogramValues;
  readonly requestBytes: HistogramValues;
  readonly responseBytes: HistogramValues;
  constructor(labels: Labels, buckets: readonly number[]) {
    this.labels = labels;
    this.duration = new HistogramValues(buckets);
    this.requestBytes = new HistogramValues(buckets);
    this.responseBytes = new HistogramValues(buckets);
  }
}

/** The series of one TCP label set. */
export class TcpSeries {
  readonly labels: Labels;
  opened = 0;
  closed = 0;
  sentBytes = 0;
  receivedBytes = 0;
  constructor(labels: Labels) {
    this.labels = labels;
  }
}

interface PromValue {
  value: number;
  labels: Labels;
  metricName?: string;
}

interface PromMetric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  get(): Promise<{ name: string; help: string; type: string; values: PromValue[]; aggregator: 'sum' }>;
  reset(): void;
}

function family(name: string, help: string, type: PromMetric['type'], values: () => PromValue[]): PromMetric {
  return {
    name,
    help,
    type,
    get: async () => ({ name, help, type, values: values(), aggregator: 'sum' }),
    reset: () => {},
  };
}

function histogramValues(name: string, series: readonly { labels: Labels; h: HistogramValues }[], bounds: readonly number[]): PromValue[] {
  const out: PromValue[] = [];
  const les = [...bounds.map(String), '+Inf'];
  for (const { labels, h } of series) {
    let acc = 0;
    for (let i = 0; i < les.length; i++) {
      acc += h.counts[i]!;
      out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: les[i]! }, value: acc });
    }
    out.push({ metricName: `${name}_sum`, labels, value: h.sum });
    out.push({ metricName: `${name}_count`, labels, value: h.count });
  }
  return out;
}

/** Every series of this proxy's Istio metrics. */
export class IstioMetrics {
  readonly http: HttpSeries[] = [];
  readonly tcp: TcpSeries[] = [];
  readonly buckets: readonly number[];
  /** `istio_build{component="proxy", tag=<ISTIO_VERSION>}`. */
  readonly version: string;
  constructor(options: { version: string; buckets?: readonly number[] }) {
    this.version = options.version;
    this.buckets = options.buckets ?? envoyDefaultBuckets;
  }

  readonly #httpByKey = new Map<string, HttpSeries>();
  readonly #tcpByKey = new Map<string, TcpSeries>();

  /** The HTTP series with these labels (one per label set, however often the caches ask). */
  httpSeries(labels: Labels): HttpSeries {
    const key = Object.values(labels).join('\u0000');
    let s = this.#httpByKey.get(key);
    if (!s) {
      s = new HttpSeries(labels, this.buckets);
      this.#httpByKey.set(key, s);
      this.http.push(s);
    }
    return s;
  }

  /** The TCP series with these labels. */
  tcpSeries(labels: Labels): TcpSeries {
    const key = Object.values(labels).join('\u0000');
    let s = this.#tcpByKey.get(key);
    if (!s) {
      s = new TcpSeries(labels);
      this.#tcpByKey.set(key, s);
      this.tcp.push(s);
    }
    return s;
  }

  /** Adds the metric families to a prom-client registry (read at scrape time). */
  register(registry: Registry): void {
    const b = this.buckets;
    const http = () => this.http;
    const tcp = () => this.tcp;
    const counter = (name: string, help: string, read: () => PromValue[]) => family(name, help, 'counter', read);
    const metrics: PromMetric[] = [
      counter('istio_requests_total', 'Requests, by Istio standard labels.', () => http().map((s) => ({ labels: s.labels, value: s.requests }))),
      family('istio_request_duration_milliseconds', 'Request duration in milliseconds.', 'histogram', () =>
        histogramValues('istio_request_duration_milliseconds', http().map((s) => ({ labels: s.labels, h: s.duration })), b),
      ),
      family('istio_request_bytes', 'Request size in bytes (headers and body as received).', 'histogram', () =>
        histogramValues('istio_request_bytes', http().map((s) => ({ labels: s.labels, h: s.requestBytes })), b),
      ),
      family('istio_response_bytes', 'Response size in bytes (headers and body as sent).', 'histogram', () =>
        histogramValues('istio_response_bytes', http().map((s) => ({ labels: s.labels, h: s.responseBytes })), b),
      ),
      counter('istio_tcp_connections_opened_total', 'TCP connections opened.', () => tcp().map((s) => ({ labels: s.labels, value: s.opened }))),
      counter('istio_tcp_connections_closed_total', 'TCP connections closed.', () => tcp().map((s) => ({ labels: s.labels, value: s.closed }))),
      counter('istio_tcp_sent_bytes_total', 'Bytes sent to the downstream peer over TCP.', () => tcp().map((s) => ({ labels: s.labels, value: s.sentBytes }))),
      counter('istio_tcp_received_bytes_total', 'Bytes received from the downstream peer over TCP.', () => tcp().map((s) => ({ labels: s.labels, value: s.receivedBytes }))),
      family('istio_build', 'Istio component build info.', 'gauge', () => [{ labels: { component: 'proxy', tag: this.version || 'unknown' }, value: 1 }]),
    ];
    // prom-client's Registry reads a metric through `get()`; these families have its shape.
    for (const m of metrics) registry.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
  }
}
