// What the pilot benches share: the mesh they load into weftd (1,000 ServiceEntries x 3
// WorkloadEntries, a VirtualService, one endpoint that moves), weftd as a child process, its
// metrics, and the few statistics they print.
import { spawn } from 'node:child_process';
import { hash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type Any__Output, decodeAny, TypeUrl } from '@weft/xds';

export const namespace = 'bench';
const weftdBin = fileURLToPath(new URL('../../apps/weftd/bin/weftd.js', import.meta.url));

// ------------------------------------------------------------------ config

export const svcHost = (i: number) => `svc-${i}.${namespace}.svc.cluster.local`;

/** `services` ServiceEntries on port 80, each with 3 WorkloadEntries (svc-1's third is in moving.yaml). */
export function serviceConfig(services: number): string {
  const docs: string[] = [];
  for (let i = 0; i < services; i++) {
    docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc-${i}, namespace: ${namespace}}
spec:
  hosts: [${svcHost(i)}]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: svc-${i}}}
`);
    for (let j = 0; j < 3; j++) if (!(i === 1 && j === 2)) docs.push(workloadEntry(i, j, `127.${10 + j}.${Math.floor(i / 250)}.${(i % 250) + 1}`));
  }
  return docs.join('---\n');
}

// Loopback addresses: config only, nothing is ever sent to them.
const workloadEntry = (i: number, j: number, address: string) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: svc-${i}-${j}, namespace: ${namespace}}
spec:
  address: ${address}
  labels: {app: svc-${i}, version: v${j + 1}}
  ports: {http: 8080}
`;

/** The one endpoint the endpoint-change measurement moves, in a file of its own. */
export const movingEndpoint = (address: string) => workloadEntry(1, 2, address);

/** A VirtualService on svc-0; changing `timeout` changes one virtual host of every sidecar's port-80 routes. */
export const virtualService = (timeout: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-0, namespace: ${namespace}}
spec:
  hosts: [${svcHost(0)}]
  http:
  - route:
    - destination: {host: ${svcHost(0)}, port: {number: 80}}
    timeout: ${timeout}
`;

// ------------------------------------------------------------------ weftd

export interface Weftd {
  pid: number;
  xds: string;
  monitoring: string;
  stop(): Promise<void>;
}

export async function startWeftd(configDir: string, debounceMs: number): Promise<Weftd> {
  const args = ['--config-dir', configDir, '--namespace', namespace, '--xds-port', '0', '--monitoring-port', '0', '--no-ca'];
  args.push('--debounce-ms', String(debounceMs), '--file-debounce-ms', String(debounceMs));
  // BENCH_PILOT_WEFTD_NODE_OPTIONS: e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the server.
  const env = { ...process.env, NODE_OPTIONS: process.env.BENCH_PILOT_WEFTD_NODE_OPTIONS ?? '' };
  const child = spawn(process.execPath, [weftdBin, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let buffered = '';
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stderr.on('data', (b: Buffer) => {
      buffered += b.toString();
      for (const line of buffered.split('\n')) {
        if (!line.includes('"weftd ready"')) continue;
        try {
          resolve(JSON.parse(line) as Record<string, unknown>);
        } catch {}
      }
      if (buffered.length > 1e6) buffered = buffered.slice(-1e5);
    });
    child.on('exit', (code) => reject(new Error(`weftd exited with ${code}: ${buffered.slice(-2000)}`)));
  });
  child.stderr.removeAllListeners('data');
  child.stderr.resume();
  return {
    pid: child.pid!,
    xds: `127.0.0.1:${ready.xdsPort as number}`,
    monitoring: `http://127.0.0.1:${ready.monitoringPort as number}`,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function metric(weftd: Weftd, name: string): Promise<number> {
  const text = await (await fetch(`${weftd.monitoring}/metrics`)).text();
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/** Peak resident memory of a process (Linux), bytes. */
export async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

// ------------------------------------------------------------------ reading responses (just enough to subscribe)

/** Top-level `name` (field 1) and `type` (field 2) of an encoded Cluster, without decoding the rest. */
export function clusterNameAndType(buf: Uint8Array): { name: string; type: number } {
  let pos = 0;
  let name = '';
  let type = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[pos++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (pos < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const v = varint();
      if (field === 2) type = v;
    } else if (wire === 2) {
      const len = varint();
      if (field === 1) name = Buffer.from(buf.buffer, buf.byteOffset + pos, len).toString('utf8');
      pos += len;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else break;
  }
  return { name, type };
}

export const edsType = 3;
const routeNamesCache = new Map<string, string[]>();

/** RDS names a listener's HTTP connection managers refer to (decoded once per distinct listener). */
export function routeNames(any: Any__Output): string[] {
  const key = hash('sha1', any.value, 'base64');
  const cached = routeNamesCache.get(key);
  if (cached) return cached;
  const listener = decodeAny(any, TypeUrl.Listener);
  const out: string[] = [];
  for (const chain of [...listener.filter_chains, ...(listener.default_filter_chain ? [listener.default_filter_chain] : [])]) {
    for (const f of chain.filters) {
      if (f.typed_config?.type_url !== TypeUrl.HttpConnectionManager) continue;
      const hcm = decodeAny(f.typed_config, TypeUrl.HttpConnectionManager);
      if (hcm.rds?.route_config_name) out.push(hcm.rds.route_config_name);
    }
  }
  routeNamesCache.set(key, out);
  return out;
}

// ------------------------------------------------------------------ numbers

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const mb = (bytes: number) => `${(bytes / 1048576).toFixed(bytes < 10 * 1048576 ? 2 : 0)} MB`;
export const msFmt = (ms: number) => `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;

export async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}
