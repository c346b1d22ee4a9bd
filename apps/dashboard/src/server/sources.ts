// Where the dashboard's sources are and how they are read. weftd (its monitoring port's /debug/*)
// and Prometheus (its HTTP API, behind basic auth in local mode) are found from flags, or from a
// local mesh's mesh.json, read again at every poll so that a component restarted on another port
// is followed. Each source has a SourceState the API returns with every answer: whether its last
// poll worked, the reason when not, and when it last did.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface SourceState {
  ok: boolean;
  url: string;
  error?: string;
  /** ISO time of the last successful poll. */
  lastOkAt?: string;
}

export type SourceName = 'weftd' | 'prometheus';

/** A sidecar's or gateway's admin server, for /api/why. */
export interface ProxyAdmin {
  /** `<namespace>/<workload>` */
  id: string;
  address: string;
  port: number;
}

export interface Endpoints {
  /** weftd's monitoring base URL (`http://127.0.0.1:15014`). */
  weftd?: string;
  /** Prometheus' base URL including its route prefix (`http://127.0.0.1:9090/prometheus`). */
  prometheus?: string;
  /** Basic-auth password for the user `weft` (read from the password file). */
  prometheusPassword?: string;
  /** The mesh's proxies (from mesh.json only). */
  proxies: ProxyAdmin[];
  /** Why a source is unknown (no mesh running, a component not started yet). */
  missing?: Partial<Record<SourceName, string>>;
}

export interface LocatorOptions {
  weftdUrl?: string;
  prometheusUrl?: string;
  prometheusPasswordFile?: string;
  stateDir?: string;
}

interface MeshJson {
  weftd?: { monitoringPort?: number; address?: string };
  prometheus?: { url?: string; port?: number; passwordFile?: string };
  ingress?: { name: string; namespace: string; adminAddress: string; adminPort: number };
  proxies?: { name: string; namespace: string; adminAddress: string; adminPort: number }[];
}

const trimSlash = (u: string) => u.replace(/\/+$/, '');

/** Finds the sources at each call: flags win over mesh.json. */
export function locator(o: LocatorOptions): () => Promise<Endpoints> {
  return async () => {
    const out: Endpoints = { proxies: [], missing: {} };
    let mesh: MeshJson | undefined;
    if (o.stateDir) {
      const file = join(o.stateDir, 'mesh.json');
      try {
        mesh = JSON.parse(await readFile(file, 'utf8')) as MeshJson;
      } catch (e) {
        const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `no local mesh is running (${file} does not exist)` : `${file} cannot be read: ${(e as Error).message}`;
        out.missing = { weftd: why, prometheus: why };
      }
    }
    if (o.weftdUrl) out.weftd = trimSlash(o.weftdUrl);
    else if (mesh?.weftd?.monitoringPort) out.weftd = `http://${mesh.weftd.address ?? '127.0.0.1'}:${mesh.weftd.monitoringPort}`;
    else if (mesh) out.missing!.weftd = 'weftd has not started yet (mesh.json has no weftd)';
    else if (!o.stateDir) out.missing!.weftd = 'no weftd configured (--weftd-url or --state-dir)';

    let passwordFile = o.prometheusPasswordFile;
    if (o.prometheusUrl) out.prometheus = trimSlash(o.prometheusUrl);
    else if (mesh?.prometheus?.url) {
      out.prometheus = trimSlash(mesh.prometheus.url);
      passwordFile ??= mesh.prometheus.passwordFile;
    } else if (mesh) out.missing!.prometheus = 'Prometheus is not part of this mesh (mesh.json has no prometheus: is the prometheus package installed? `apt-get install -y prometheus`)';
    else if (!o.stateDir) out.missing!.prometheus = 'no Prometheus configured (--prometheus-url or --state-dir)';
    if (passwordFile) {
      try {
        out.prometheusPassword = (await readFile(passwordFile, 'utf8')).trim();
      } catch (e) {
        out.missing!.prometheus = `the Prometheus password file ${passwordFile} cannot be read: ${(e as Error).message}`;
        delete out.prometheus;
      }
    }
    for (const p of [...(mesh?.ingress ? [mesh.ingress] : []), ...(mesh?.proxies ?? [])]) out.proxies.push({ id: `${p.namespace}/${p.name}`, address: p.adminAddress, port: p.adminPort });
    return out;
  };
}

/** The basic-auth header for Prometheus (user `weft`, as `weftctl up` configures it). */
export function prometheusAuth(password: string | undefined): Record<string, string> {
  return password ? { authorization: `Basic ${Buffer.from(`weft:${password}`).toString('base64')}` } : {};
}

/** A fetch failure as a short reason: `connect ECONNREFUSED 127.0.0.1:9090`, `no answer within 3 s`. */
export function fetchError(e: unknown, timeoutMs: number): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return `no answer within ${timeoutMs / 1000} s`;
  if (err?.cause?.message) return err.cause.message;
  return err?.message ?? String(e);
}

export class HttpStatusError extends Error {}

/** GET `url` as text, bounded by `timeoutMs`; throws with a short reason (the caller names the source). */
export async function getText(url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<string> {
  let r: Response;
  try {
    r = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new Error(`unreachable: ${fetchError(e, timeoutMs)}`);
  }
  let text: string;
  try {
    text = await r.text();
  } catch (e) {
    throw new Error(`answer cut short: ${fetchError(e, timeoutMs)}`);
  }
  if (r.status === 401) throw new HttpStatusError('refused the credentials (401): is the password file the one this Prometheus was started with?');
  if (!r.ok) throw new HttpStatusError(`answered ${r.status} for ${new URL(url).pathname}: ${text.slice(0, 200).trim()}`);
  return text;
}

/** GET `url` as JSON (see getText). */
export async function getJson<T>(url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<T> {
  const text = await getText(url, timeoutMs, headers);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new HttpStatusError(`answered something that is not JSON for ${new URL(url).pathname}: ${JSON.stringify(text.slice(0, 80))}`);
  }
}

/** The state of one source, updated by each poll. */
export class SourceTracker {
  readonly name: SourceName;
  #state: SourceState;
  constructor(name: SourceName) {
    this.name = name;
    this.#state = { ok: false, url: '', error: 'not polled yet' };
  }
  get state(): SourceState {
    return this.#state;
  }
  succeeded(url: string): void {
    this.#state = { ok: true, url, lastOkAt: new Date().toISOString() };
  }
  failed(url: string, error: string): void {
    this.#state = { ok: false, url, error, ...(this.#state.lastOkAt ? { lastOkAt: this.#state.lastOkAt } : {}) };
  }
}
