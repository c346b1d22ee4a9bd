// Reading a running mesh: weftd's debug endpoints and a proxy's admin port.
import { type MeshState, type ProxyState, runningMesh } from '../up/state.ts';

export async function getJson<T>(url: string): Promise<T> {
  let r: Response;
  try {
    r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new Error(`${url}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`);
  }
  if (r.status !== 200) throw new Error(`${url} answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
  return (await r.json()) as T;
}

export async function getText(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (r.status !== 200) throw new Error(`${url} answered ${r.status}`);
  return r.text();
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
