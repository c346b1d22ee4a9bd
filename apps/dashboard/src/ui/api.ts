// The dashboard's JSON API as the UI reads it (GET only, see apps/dashboard's README), and the one
// place the UI talks to the server: every answer's `sources` feeds the banners, a failed fetch
// feeds the "dashboard unreachable" banner, and no error escapes as an unhandled rejection.
// The graph's types are the server's own (server/graph.ts imports nothing, so the browser's
// typecheck can read it; a type import, erased from the bundle).
import type { GraphEdge, GraphNode } from '../server/graph.ts';
import type { GraphLayout } from './graph-model.ts';

export type { GraphEdge, GraphNode };

export interface SourceState {
  ok: boolean;
  url: string;
  error?: string;
  /** ISO time of the last good answer. */
  lastOkAt?: string;
}

export interface Sources {
  weftd: SourceState;
  prometheus: SourceState;
}

export interface GraphAnswer {
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** ELK's positions, computed by the server for this graph's shape (absent: the page lays out itself). */
  layout?: GraphLayout;
  sources: Sources;
}

export interface SourceRef {
  /** In local mode the file and line the user applied; otherwise the file weftd read. */
  file: string;
  line?: number;
  /** Where weftd read it (the config directory's copy), when `file` is the user's. */
  configFile?: { file: string; line?: number };
  /** Who wrote it when not a file (`weftctl up (...)`). */
  origin?: string;
}

export interface ServiceSummary {
  host: string;
  namespace: string;
  name: string;
}

export interface VirtualServiceInfo {
  name: string;
  namespace: string;
  source?: SourceRef;
  hosts?: string[];
  http?: unknown[];
}

export interface DestinationRuleInfo {
  name: string;
  namespace: string;
  source?: SourceRef;
  subsets?: { name: string; labels?: Record<string, string> }[];
  trafficPolicy?: unknown;
}

export interface EndpointInfo {
  workload?: string | null;
  address: string;
  port?: number;
  labels?: Record<string, string>;
  healthy?: boolean;
}

export interface PolicyInfo {
  kind: string;
  name: string;
  namespace: string;
  source?: SourceRef;
}

export interface Problem {
  file?: string;
  line?: number | null;
  message: string;
  kind?: string;
  name?: string;
  severity?: 'error' | 'warning';
}

export interface ServiceDetail {
  host: string;
  virtualServices: VirtualServiceInfo[];
  destinationRules: DestinationRuleInfo[];
  endpoints: EndpointInfo[];
  policies: PolicyInfo[];
  problems: Problem[];
  sources: Sources;
}

export interface XdsTypeState {
  status: string;
  lastAckAt?: string;
  lastNackAt?: string;
  nackReason?: string;
  version?: string;
}

export interface ProxyInfo {
  id: string;
  workload: string;
  namespace: string;
  types: Record<string, XdsTypeState>;
}

export interface TraceSummary {
  traceId: string;
  root: string;
  service: string;
  startMs: number;
  durationMs: number;
  spans: number;
  error: boolean;
}

export interface Span {
  spanId: string;
  parentSpanId?: string | null;
  name: string;
  service: string;
  startMs: number;
  endMs: number;
  kind?: string | number;
  status?: unknown;
  attributes?: Record<string, unknown>;
}

export interface TraceDetail {
  traceId: string;
  spans: Span[];
}

/** The proxy's /debug/why answer, unchanged, plus the source it was asked of. */
export interface WhyAnswer {
  source?: string;
  listener?: string;
  routeConfig?: string;
  virtualHost?: string;
  route?: { name?: string; match?: unknown };
  cluster?: string;
  endpoint?: { address: string; port: number; locality?: unknown; health?: string };
  weights?: unknown;
  why?: string[];
  direct?: { status?: number };
  error?: string;
}

type Listener = () => void;

/** What the banners show: the last `sources` any answer carried, and whether the dashboard itself answers. */
export const status = {
  sources: undefined as Sources | undefined,
  /** Set while requests to the dashboard server fail (it stopped, or the network). */
  dashboardError: undefined as string | undefined,
  listeners: new Set<Listener>(),
  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  },
  notify(): void {
    for (const l of this.listeners) l();
  },
};

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function isSources(v: unknown): v is Sources {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return typeof s.weftd === 'object' && s.weftd !== null && typeof s.prometheus === 'object' && s.prometheus !== null;
}

const early = new Map<string, Promise<unknown>>();

/**
 * Sends a GET now, before any view asks for it: the page's first request leaves while the page
 * renders instead of after its first paint. The next getJson of the same path takes the answer.
 */
export function prefetchJson(path: string): void {
  if (early.has(path)) return;
  const p = fetchJson(path, 8000);
  // Whoever takes it sees the error; until then it is not an unhandled rejection.
  p.catch(() => {});
  early.set(path, p);
}

/** GET a JSON answer of the dashboard; a non-2xx answer throws an ApiError with the server's message. */
export function getJson<T>(path: string, timeoutMs = 8000): Promise<T> {
  const prefetched = early.get(path);
  if (prefetched) {
    early.delete(path);
    return prefetched as Promise<T>;
  }
  return fetchJson<T>(path, timeoutMs);
}

async function fetchJson<T>(path: string, timeoutMs: number): Promise<T> {
  let r: Response;
  try {
    r = await fetch(path, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    status.dashboardError = `the dashboard server did not answer (${(e as Error).message})`;
    status.notify();
    throw e;
  }
  if (status.dashboardError) {
    status.dashboardError = undefined;
    status.notify();
  }
  const text = await r.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError(r.status, `${path} answered ${r.status} with no JSON: ${text.slice(0, 200)}`);
  }
  if (typeof body === 'object' && body !== null && isSources((body as { sources?: unknown }).sources)) {
    status.sources = (body as { sources: Sources }).sources;
    status.notify();
  }
  if (!r.ok) {
    const message = typeof body === 'object' && body !== null && typeof (body as { error?: unknown }).error === 'string' ? (body as { error: string }).error : `${path} answered ${r.status}`;
    throw new ApiError(r.status, message);
  }
  return body as T;
}
