// Where the application's own Prometheus metrics are, for the merged 15020 endpoint. Istio's injector
// moves a pod's `prometheus.io/port` and `prometheus.io/path` annotations into the sidecar's
// ISTIO_PROMETHEUS_ANNOTATIONS (JSON `{"scrape":"true","port":"9102","path":"/metrics"}`) and points
// the annotations at 15020; the agent then scrapes the application there. Weft reads the same
// variable, or the annotations in the node metadata (ANNOTATIONS), or an explicit URL.

export interface AppMetricsSources {
  /** `--app-metrics-url`. */
  url?: string | undefined;
  /** ISTIO_PROMETHEUS_ANNOTATIONS. */
  prometheusAnnotations?: string | undefined;
  /** Node metadata ANNOTATIONS (an object, or JSON text as ISTIO_META_ANNOTATIONS gives it). */
  annotations?: unknown;
  /** Where the application listens (local mode: --app-address), and its port mapping (--app-ports). */
  appAddress?: string | undefined;
  appPorts?: ReadonlyMap<number, number> | undefined;
}

/** Thrown for a value that cannot name a metrics endpoint; the message says which and why. */
export class AppMetricsError extends Error {}

function fromAnnotations(a: Record<string, unknown>, keys: { scrape: string; port: string; path: string }, what: string, s: AppMetricsSources): string | undefined {
  const scrape = a[keys.scrape];
  if (scrape === false || scrape === 'false') return undefined;
  const portText = a[keys.port];
  if (portText === undefined || portText === '') return undefined;
  const port = Number(portText);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new AppMetricsError(`${what}: ${keys.port} ${JSON.stringify(portText)} is not a port number`);
  // The agent's own port: the annotations were already rewritten to point at it.
  if (port === 15020) return undefined;
  const pathValue = a[keys.path];
  const path = typeof pathValue === 'string' && pathValue ? (pathValue.startsWith('/') ? pathValue : `/${pathValue}`) : '/metrics';
  const host = s.appAddress ?? '127.0.0.1';
  const target = s.appPorts?.get(port) ?? port;
  return `http://${host.includes(':') ? `[${host}]` : host}:${target}${path}`;
}

function parseObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new AppMetricsError(`${what} is not JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new AppMetricsError(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

/** The application's metrics URL, or undefined when the application exposes none. */
export function appMetricsUrl(s: AppMetricsSources): string | undefined {
  if (s.url !== undefined) {
    let u: URL;
    try {
      u = new URL(s.url);
    } catch {
      throw new AppMetricsError(`--app-metrics-url ${JSON.stringify(s.url)} is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new AppMetricsError(`--app-metrics-url ${JSON.stringify(s.url)} must be http:// or https://`);
    return u.toString();
  }
  if (s.prometheusAnnotations) {
    return fromAnnotations(parseObject(s.prometheusAnnotations, 'ISTIO_PROMETHEUS_ANNOTATIONS'), { scrape: 'scrape', port: 'port', path: 'path' }, 'ISTIO_PROMETHEUS_ANNOTATIONS', s);
  }
  if (s.annotations !== undefined && s.annotations !== null) {
    const a = typeof s.annotations === 'string' ? parseObject(s.annotations, 'ANNOTATIONS metadata') : s.annotations;
    if (typeof a !== 'object' || Array.isArray(a)) throw new AppMetricsError('ANNOTATIONS metadata must be an object');
    return fromAnnotations(a as Record<string, unknown>, { scrape: 'prometheus.io/scrape', port: 'prometheus.io/port', path: 'prometheus.io/path' }, 'ANNOTATIONS metadata', s);
  }
  return undefined;
}
