// Istio's MeshConfig as a user writes it (the `mesh` key of the `istio` ConfigMap, or a file
// given to `weftd --mesh-config`), read into the parts Weft uses. Unknown fields are ignored, as
// Istio ignores fields it does not know; a field Weft reads with the wrong type is an error
// naming the file, line and field.
import { parseDocument, isMap, isScalar, type Document, type Node as YamlNode, LineCounter } from 'yaml';
import type { K8sLabelSelector, LocalityLoadBalancerSetting } from '@weft/model';
import { defaultMeshConfig, type MeshConfig, type MeshExtensionProvider } from '../core/types.ts';

export class MeshConfigError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  constructor(message: string, file: string, line: number | undefined) {
    super(`${file}${line ? `:${line}` : ''}: ${message}`);
    this.name = 'MeshConfigError';
    this.file = file;
    this.line = line;
  }
}

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

/**
 * Parses MeshConfig YAML (camelCase, as in Istio's docs) over `base` (default: Weft's defaults).
 * Throws `MeshConfigError` with file and line for a value of the wrong type.
 */
export function parseMeshConfig(text: string, file: string, base: MeshConfig = defaultMeshConfig): MeshConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new MeshConfigError(e.message.split('\n')[0]!, file, e.linePos?.[0]?.line);
  }
  const root = doc.toJS() as Json;
  if (root === null || root === undefined) return { ...base };
  const lineOf = (path: readonly (string | number)[]): number | undefined => {
    const node = (doc as Document).getIn(path, true) as YamlNode | undefined;
    const pos = node && (isMap(node) || isScalar(node) || 'range' in node) ? node.range?.[0] : undefined;
    return pos === undefined ? undefined : lines.linePos(pos).line;
  };
  const fail = (path: readonly (string | number)[], want: string): never => {
    throw new MeshConfigError(`${path.join('.')} must be ${want}`, file, lineOf(path));
  };
  if (typeof root !== 'object' || Array.isArray(root)) fail([], 'a mapping');
  const m = root as Record<string, Json>;
  const out: MeshConfig = { ...base };
  const str = (path: string[], v: Json | undefined): string | undefined => (v === undefined || v === null ? undefined : typeof v === 'string' ? v : fail(path, 'a string'));
  const bool = (path: string[], v: Json | undefined): boolean | undefined => (v === undefined || v === null ? undefined : typeof v === 'boolean' ? v : fail(path, 'true or false'));
  const num = (path: string[], v: Json | undefined): number | undefined => (v === undefined || v === null ? undefined : typeof v === 'number' && Number.isFinite(v) ? v : fail(path, 'a number'));
  const obj = (path: string[], v: Json | undefined): Record<string, Json> | undefined =>
    v === undefined || v === null ? undefined : typeof v === 'object' && !Array.isArray(v) ? v : fail(path, 'a mapping');

  const td = str(['trustDomain'], m.trustDomain);
  if (td) out.trustDomain = td;
  const rn = str(['rootNamespace'], m.rootNamespace);
  if (rn) out.rootNamespace = rn;
  const otp = obj(['outboundTrafficPolicy'], m.outboundTrafficPolicy);
  const mode = str(['outboundTrafficPolicy', 'mode'], otp?.mode);
  if (mode !== undefined) {
    if (mode !== 'ALLOW_ANY' && mode !== 'REGISTRY_ONLY') fail(['outboundTrafficPolicy', 'mode'], 'ALLOW_ANY or REGISTRY_ONLY');
    out.outboundTrafficPolicy = mode as MeshConfig['outboundTrafficPolicy'];
  }
  const auto = bool(['enableAutoMtls'], m.enableAutoMtls);
  if (auto !== undefined) out.enableAutoMtls = auto;
  const ct = str(['connectTimeout'], m.connectTimeout);
  if (ct !== undefined) {
    const sec = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(ct);
    if (!sec) fail(['connectTimeout'], 'a duration such as 10s');
    const n = Number(sec![1]);
    out.connectTimeoutSeconds = sec![2] === 'ms' ? n / 1000 : sec![2] === 'm' ? n * 60 : n;
  }
  const alf = str(['accessLogFile'], m.accessLogFile);
  if (alf !== undefined) out.accessLogFile = alf;
  const ale = str(['accessLogEncoding'], m.accessLogEncoding);
  if (ale !== undefined) {
    if (ale !== 'TEXT' && ale !== 'JSON') fail(['accessLogEncoding'], 'TEXT or JSON');
    out.accessLogEncoding = ale as MeshConfig['accessLogEncoding'];
  }
  const alfmt = str(['accessLogFormat'], m.accessLogFormat);
  if (alfmt !== undefined) out.accessLogFormat = alfmt;
  const et = bool(['enableTracing'], m.enableTracing);
  if (et !== undefined) out.enableTracing = et;
  const dc = obj(['defaultConfig'], m.defaultConfig);
  const tracing = obj(['defaultConfig', 'tracing'], dc?.tracing);
  const sampling = num(['defaultConfig', 'tracing', 'sampling'], tracing?.sampling);
  if (sampling !== undefined) {
    if (sampling < 0 || sampling > 100) fail(['defaultConfig', 'tracing', 'sampling'], 'a percentage between 0 and 100');
    out.tracingSampling = sampling;
  }
  if (m.extensionProviders !== undefined && m.extensionProviders !== null) {
    if (!Array.isArray(m.extensionProviders)) fail(['extensionProviders'], 'a list');
    const providers: MeshExtensionProvider[] = [];
    for (const [i, raw] of (m.extensionProviders as Json[]).entries()) {
      const p = obj(['extensionProviders', String(i)], raw) ?? {};
      const name = str(['extensionProviders', String(i), 'name'], p.name);
      if (!name) fail(['extensionProviders', String(i), 'name'], 'a non-empty string');
      const provider: MeshExtensionProvider = { name: name! };
      const otel = obj(['extensionProviders', String(i), 'opentelemetry'], p.opentelemetry);
      if (otel) {
        const service = str(['extensionProviders', String(i), 'opentelemetry', 'service'], otel.service);
        const port = num(['extensionProviders', String(i), 'opentelemetry', 'port'], otel.port);
        if (!service) fail(['extensionProviders', String(i), 'opentelemetry', 'service'], 'a host name');
        if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) fail(['extensionProviders', String(i), 'opentelemetry', 'port'], 'a port number');
        const http = obj(['extensionProviders', String(i), 'opentelemetry', 'http'], otel.http);
        const path = http ? (str(['extensionProviders', String(i), 'opentelemetry', 'http', 'path'], http.path) ?? '/v1/traces') : undefined;
        provider.opentelemetry = { service: service!, port: port!, ...(path !== undefined ? { http: { path } } : {}) };
      }
      providers.push(provider);
    }
    out.extensionProviders = providers;
  }
  const dp = obj(['defaultProviders'], m.defaultProviders);
  if (dp?.tracing !== undefined && dp.tracing !== null) {
    if (!Array.isArray(dp.tracing) || dp.tracing.some((t) => typeof t !== 'string')) fail(['defaultProviders', 'tracing'], 'a list of provider names');
    out.defaultTracingProviders = dp.tracing as string[];
  }
  if (m.discoverySelectors !== undefined && m.discoverySelectors !== null) {
    if (!Array.isArray(m.discoverySelectors)) fail(['discoverySelectors'], 'a list of label selectors');
    out.discoverySelectors = (m.discoverySelectors as Json[]).map((raw, i) => {
      const at = ['discoverySelectors', String(i)];
      const sel = obj(at, raw) ?? {};
      const selector: K8sLabelSelector = {};
      const labels = obj([...at, 'matchLabels'], sel.matchLabels);
      if (labels) {
        for (const [k, v] of Object.entries(labels)) if (typeof v !== 'string') fail([...at, 'matchLabels', k], 'a string');
        selector.matchLabels = labels as Record<string, string>;
      }
      if (sel.matchExpressions !== undefined && sel.matchExpressions !== null) {
        if (!Array.isArray(sel.matchExpressions)) fail([...at, 'matchExpressions'], 'a list');
        selector.matchExpressions = (sel.matchExpressions as Json[]).map((e, j) => {
          const epath = [...at, 'matchExpressions', String(j)];
          const expr = obj(epath, e) ?? {};
          const key = str([...epath, 'key'], expr.key);
          if (!key) fail([...epath, 'key'], 'a label key');
          const operator = str([...epath, 'operator'], expr.operator);
          if (operator !== 'In' && operator !== 'NotIn' && operator !== 'Exists' && operator !== 'DoesNotExist') fail([...epath, 'operator'], 'In, NotIn, Exists or DoesNotExist');
          const values = expr.values ?? [];
          if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) fail([...epath, 'values'], 'a list of strings');
          if ((operator === 'In' || operator === 'NotIn') === ((values as string[]).length === 0)) fail([...epath, 'values'], operator === 'In' || operator === 'NotIn' ? `non-empty for ${operator}` : `empty for ${operator}`);
          return { key: key!, operator: operator as 'In' | 'NotIn' | 'Exists' | 'DoesNotExist', ...((values as string[]).length ? { values: values as string[] } : {}) };
        });
      }
      return selector;
    });
  }
  for (const key of ['defaultServiceExportTo', 'defaultVirtualServiceExportTo', 'defaultDestinationRuleExportTo'] as const) {
    const v = m[key];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) fail([key], 'a list of namespaces, ".", "*" or "~"');
    out[key] = v as string[];
  }
  const lls = obj(['localityLbSetting'], m.localityLbSetting);
  if (lls) out.localityLbSetting = localityLbSetting(lls, fail);
  return out;
}

/** `localityLbSetting`, checked field by field (the DestinationRule field's shape). */
function localityLbSetting(v: Record<string, Json>, fail: (path: readonly (string | number)[], want: string) => never): LocalityLoadBalancerSetting {
  const at = (...p: (string | number)[]) => ['localityLbSetting', ...p];
  const out: LocalityLoadBalancerSetting = {};
  if (v.enabled !== undefined && v.enabled !== null) out.enabled = typeof v.enabled === 'boolean' ? v.enabled : fail(at('enabled'), 'true or false');
  const list = (key: string): Json[] => (v[key] === undefined || v[key] === null ? [] : Array.isArray(v[key]) ? (v[key] as Json[]) : fail(at(key), 'a list'));
  const text = (x: Json | undefined, path: (string | number)[]): string => (typeof x === 'string' ? x : fail(path, 'a string'));
  const entry = (x: Json, path: (string | number)[]): Record<string, Json> => (x && typeof x === 'object' && !Array.isArray(x) ? x : fail(path, 'a mapping'));
  const failover = list('failover').map((x, i) => {
    const f = entry(x, at('failover', i));
    return { from: text(f.from, at('failover', i, 'from')), to: text(f.to, at('failover', i, 'to')) };
  });
  if (failover.length) out.failover = failover;
  const priority = list('failoverPriority').map((x, i) => text(x, at('failoverPriority', i)));
  if (priority.length) out.failoverPriority = priority;
  const distribute = list('distribute').map((x, i) => {
    const d = entry(x, at('distribute', i));
    const to = entry(d.to ?? {}, at('distribute', i, 'to'));
    for (const [k, w] of Object.entries(to)) if (typeof w !== 'number' || !Number.isInteger(w) || w < 0) fail(at('distribute', i, 'to', k), 'a whole number');
    return { from: text(d.from, at('distribute', i, 'from')), to: to as Record<string, number> };
  });
  if (distribute.length) out.distribute = distribute;
  return out;
}
