// The Grafana dashboards of deploy/addons/grafana/dashboards, read the way Grafana reads them: every
// panel's PromQL with the template variables replaced by given values, so that a test can run each
// query against a real Prometheus ("no dead panel") and a static test can check that every query
// parses and uses only variables the dashboard defines.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** This addon's directory (provisioning/, dashboards/, the kustomization). */
export const grafanaAddonDir = import.meta.dirname;
export const dashboardsDir = join(grafanaAddonDir, 'dashboards');

export interface DataSourceRef {
  type?: string;
  uid?: string;
}

export interface Target {
  refId: string;
  expr?: string;
  legendFormat?: string;
  instant?: boolean;
  range?: boolean;
  format?: string;
  datasource?: DataSourceRef;
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: DataSourceRef;
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  /** Data links: Grafana fills `${__field.labels.<name>}` from the series clicked. */
  fieldConfig?: { defaults?: { links?: { title: string; url: string }[] } };
  /** A collapsed row keeps its panels here. */
  panels?: Panel[];
}

export interface TemplateVariable {
  name: string;
  type: string;
  label?: string;
  query?: string | { query: string };
  definition?: string;
  datasource?: DataSourceRef;
}

export interface Dashboard {
  uid: string;
  title: string;
  description?: string;
  tags?: string[];
  panels: Panel[];
  templating: { list: TemplateVariable[] };
  /** The file it was read from (not part of Grafana's model). */
  file: string;
}

/** Values for a dashboard's variables, as Grafana would give them at query time. */
export interface Substitution {
  /** Template variables by name: `{ service: 'reviews.default.svc.cluster.local' }`. */
  variables?: Record<string, string>;
  /** `$__rate_interval` (Grafana: at least four scrape intervals), e.g. `1m`. */
  rateInterval: string;
  /** `$__interval` (the step), e.g. `15s`. */
  interval: string;
  /** `$__range` (the time range's length), e.g. `15m`. */
  range?: string;
}

/** Grafana's global variables these dashboards may use. */
export const builtinVariables: ReadonlySet<string> = new Set(['__rate_interval', '__interval', '__interval_ms', '__range', '__range_s', '__range_ms']);

// $name, ${name}, ${name:format}, [[name]], [[name:format]] (Grafana's three syntaxes)
const variablePattern = /\$([A-Za-z_]\w*)|\$\{([A-Za-z_]\w*)(?::[^}]*)?\}|\[\[([A-Za-z_]\w*)(?::[^\]]*)?\]\]/g;

/** The names of the variables a text refers to, in order of first use. */
export function variablesIn(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(variablePattern)) names.add((m[1] ?? m[2] ?? m[3])!);
  return [...names];
}

/** Seconds in a Prometheus duration such as `1m30s`. */
function durationSeconds(d: string): number {
  if (!/^(\d+(ms|s|m|h|d|w|y))+$/.test(d)) throw new Error(`not a Prometheus duration: ${JSON.stringify(d)}`);
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let total = 0;
  for (const m of d.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) total += Number(m[1]) * units[m[2]!]!;
  return total;
}

function builtinValue(name: string, s: Substitution): string | undefined {
  switch (name) {
    case '__rate_interval':
      return s.rateInterval;
    case '__interval':
      return s.interval;
    case '__interval_ms':
      return String(durationSeconds(s.interval) * 1000);
    case '__range':
      return s.range;
    case '__range_s':
      return s.range === undefined ? undefined : String(durationSeconds(s.range));
    case '__range_ms':
      return s.range === undefined ? undefined : String(durationSeconds(s.range) * 1000);
    default:
      return undefined;
  }
}

/** `text` with every variable replaced; throws naming the first one `s` gives no value for. */
export function substitute(text: string, s: Substitution, where = 'query'): string {
  return text.replace(variablePattern, (_whole, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    const value = builtinVariables.has(name) ? builtinValue(name, s) : s.variables?.[name];
    if (value === undefined) throw new Error(`${where}: no value for $${name} (in ${JSON.stringify(text)})`);
    return value;
  });
}

/** Every dashboard JSON file of `dir`, parsed; throws naming the file when one is not valid. */
export function loadDashboards(dir = dashboardsDir): Dashboard[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const file = join(dir, f);
      let d: Omit<Dashboard, 'file'>;
      try {
        d = JSON.parse(readFileSync(file, 'utf8')) as Omit<Dashboard, 'file'>;
      } catch (e) {
        throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
      }
      if (typeof d.uid !== 'string' || typeof d.title !== 'string' || !Array.isArray(d.panels)) throw new Error(`${file}: not a Grafana dashboard (uid, title and panels are required)`);
      return { ...d, templating: { list: d.templating?.list ?? [] }, file };
    });
}

/** A dashboard's panels in order, the panels of collapsed rows included. */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** One target (query) of one panel. */
export interface PanelQuery {
  dashboard: string;
  dashboardUid: string;
  panel: string;
  panelId: number;
  panelType: string;
  refId: string;
  /** The expression as written in the dashboard. */
  raw: string;
  /** With the variables replaced. */
  expr: string;
  legend?: string;
  /** An instant query (tables); otherwise Grafana runs it over the time range. */
  instant: boolean;
}

/** Every panel query of `dashboards` with the variables replaced (panels without targets, rows, are skipped). */
export function panelQueries(s: Substitution, dashboards: readonly Dashboard[] = loadDashboards()): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const d of dashboards) {
    for (const p of allPanels(d)) {
      for (const t of p.targets ?? []) {
        const raw = t.expr ?? '';
        out.push({
          dashboard: d.title,
          dashboardUid: d.uid,
          panel: substitute(p.title, s, `${d.uid} panel ${p.id} title`),
          panelId: p.id,
          panelType: p.type,
          refId: t.refId,
          raw,
          expr: substitute(raw, s, `${d.uid} panel ${p.id} (${p.title}) ${t.refId}`),
          ...(t.legendFormat ? { legend: t.legendFormat } : {}),
          instant: t.instant === true && t.range !== true,
        });
      }
    }
  }
  return out;
}

/** A query variable's query as PromQL that yields one series per value Grafana would offer. */
export interface VariableQuery {
  dashboard: string;
  dashboardUid: string;
  variable: string;
  raw: string;
  expr: string;
}

/**
 * Grafana's Prometheus variable functions as plain PromQL: `label_values(sel, label)` is the values
 * of `label` in `group by (label) (sel)`, `query_result(q)` is `q`.
 */
export function variableQueryExpr(query: string): string {
  const q = query.trim();
  const lv = /^label_values\((.*),\s*([A-Za-z_]\w*)\s*\)$/s.exec(q);
  if (lv) return `group by (${lv[2]}) (${lv[1]!.trim()})`;
  const qr = /^query_result\((.*)\)$/s.exec(q);
  if (qr) return qr[1]!.trim();
  throw new Error(`unsupported variable query (label_values(selector, label) or query_result(expr)): ${q}`);
}

/** Every query variable of `dashboards` as PromQL, variables replaced (a variable may use the ones before it). */
export function variableQueries(s: Substitution, dashboards: readonly Dashboard[] = loadDashboards()): VariableQuery[] {
  const out: VariableQuery[] = [];
  for (const d of dashboards) {
    for (const v of d.templating.list) {
      if (v.type !== 'query') continue;
      const raw = typeof v.query === 'string' ? v.query : (v.query?.query ?? v.definition ?? '');
      out.push({ dashboard: d.title, dashboardUid: d.uid, variable: v.name, raw, expr: substitute(variableQueryExpr(raw), s, `${d.uid} variable ${v.name}`) });
    }
  }
  return out;
}

/**
 * Why a panel may show 0 through `... or vector(0)` after ordinary traffic: the metric (or the
 * label value) has no samples until something happens. A prom-client counter with labels, like a
 * proxy's TCP counters, exports no series before its first increment. `match` is a metric name or
 * a matcher as the queries write it; the e2e test accepts an all-fallback answer only for these.
 */
export const fallbackReasons: readonly { match: string; why: string }[] = [
  { match: 'istio_tcp_received_bytes_total', why: 'no TCP traffic (every BookInfo service speaks HTTP)' },
  { match: 'istio_tcp_sent_bytes_total', why: 'no TCP traffic (every BookInfo service speaks HTTP)' },
  { match: 'pilot_total_xds_rejects', why: 'no proxy rejected (NACKed) a push' },
  { match: 'pilot_xds_generate_errors', why: 'weftd generated every xDS response' },
  { match: 'citadel_server_csr_refused_count', why: 'the CA refused no CSR' },
  { match: 'response_code=~"5.."', why: 'no server sidecar answered a 5xx' },
];
