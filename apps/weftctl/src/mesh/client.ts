// Reading a running mesh: weftd's debug endpoints and a proxy's admin port.
import { type MeshState, type ProxyState, type RunState, runningMesh } from '../up/state.ts';

/** A component of the mesh did not answer at all (refused, reset, timed out): dead, or restarting. */
export class NotAnsweringError extends Error {
  readonly url: string;
  constructor(url: string, why: string) {
    super(`${url}: ${why}`);
    this.url = url;
  }
}

async function get(url: string): Promise<Response> {
  try {
    return await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new NotAnsweringError(url, (e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message);
  }
}

export async function getJson<T>(url: string): Promise<T> {
  const r = await get(url);
  if (r.status !== 200) throw new Error(`${url} answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
  return (await r.json()) as T;
}

export async function getText(url: string): Promise<string> {
  const r = await get(url);
  if (r.status !== 200) throw new Error(`${url} answered ${r.status}`);
  return r.text();
}

/** What a user reads when a component did not answer: which one, and where to look. */
export function notAnsweringMessage(s: MeshState | undefined, e: NotAnsweringError): string {
  const origin = new URL(e.url).origin;
  const restarting = (run: RunState | undefined) =>
    run && (run.phase === 'waiting' || run.phase === 'starting') ? `it is restarting: it ${run.lastExit?.reason ?? 'exited'};` : 'restarting?';
  if (s?.weftd && weftdUrl(s, '').replace(/\/$/, '') === origin) return `weftd is not answering at ${origin} (${restarting(s.weftd.run)} see ${s.weftd.logFile}; \`weftctl status\` shows every component)`;
  const proxy = s ? allProxies(s).find((p) => adminUrl(p, '').replace(/\/$/, '') === origin) : undefined;
  if (proxy) return `the proxy of ${proxy.name}.${proxy.namespace} is not answering at ${origin} (${restarting(proxy.run)} see ${proxy.logFile}; \`weftctl status\` shows every component)`;
  return `${e.url} is not answering (${e.message.slice(e.url.length + 2)})`;
}

export function weftdUrl(s: MeshState, path: string): string {
  return `http://${s.weftd!.address ?? '127.0.0.1'}:${s.weftd!.monitoringPort}${path}`;
}

export function adminUrl(p: ProxyState, path: string): string {
  return `http://${p.adminAddress}:${p.adminPort}${path}`;
}

/** Every proxy of the mesh, the ingress gateway first. */
export function allProxies(s: MeshState): ProxyState[] {
  return [...(s.ingress ? [s.ingress] : []), ...s.proxies];
}

/** A proxy by workload name (`reviews-v2`), `name.namespace`, or node id. */
export function findProxy(s: MeshState, ref: string): ProxyState {
  const all = allProxies(s);
  const found = all.find((p) => p.name === ref || `${p.name}.${p.namespace}` === ref || p.nodeId === ref);
  if (!found) throw new Error(`no proxy ${JSON.stringify(ref)} in the running mesh; there are: ${all.map((p) => `${p.name}.${p.namespace}`).join(', ')}`);
  return found;
}

/** The proxy `ref` names, or undefined once the user is told which ones there are (the caller exits 1). */
export function proxyOrSay(s: MeshState, ref: string, io: { err: (s: string) => void }): ProxyState | undefined {
  try {
    return findProxy(s, ref);
  } catch (e) {
    io.err(`weftctl: ${(e as Error).message}\n`);
    return undefined;
  }
}

export { runningMesh };

/** A plain text table: columns padded to their widest cell, separated by three spaces (as istioctl). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
