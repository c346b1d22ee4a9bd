// Pilot's ADS at scale: weftd as a child process serving 1,000 services x 3 endpoints (ServiceEntry
// + WorkloadEntry files) to raw ADS clients that behave like Envoy sidecars (wildcard CDS and LDS,
// then EDS and RDS for what those name) and ACK everything.
// Prints: time to the first full push to all clients, the server's resident memory and CPU, and
// convergence (file write -> each client's ACK) after one VirtualService change.
// Goals (issue 4): 1,000 clients within 1 GB and 1 CPU; one change converges at p99 within 100 ms.
//
// Environment: BENCH_PILOT_CLIENTS (default "100,1000": one run per count), BENCH_PILOT_SERVICES
// (1000), BENCH_PILOT_DEBOUNCE_MS (10: both weftd's file and push debounce; Istio's default is 100),
// BENCH_PILOT_WEFTD_NODE_OPTIONS (Node options for the weftd process, for profiling).
import { nodeId } from '@weft/mesh';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { credentials, makeGenericClientConstructor, Metadata } from '@grpc/grpc-js';
import {
  type AggregatedDiscoveryServiceClient,
  adsServiceDefinition,
  type DiscoveryRequest,
  type DiscoveryResponse__Output,
  encodeMessage,
  TypeUrl,
} from '@weft/xds';
import { clusterNameAndType, edsType, mb, metric, movingEndpoint, msFmt, namespace, peakRss, percentile, routeNames, serviceConfig, startWeftd, until, virtualService } from './support.ts';

const clientCounts = (process.env.BENCH_PILOT_CLIENTS ?? '100,1000').split(',').map(Number).filter((n) => n > 0);
const services = Number(process.env.BENCH_PILOT_SERVICES ?? 1000);
const debounceMs = Number(process.env.BENCH_PILOT_DEBOUNCE_MS ?? 10);

// ------------------------------------------------------------------ clients

const types = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration] as const;

// The ADS client createAdsClient makes, except that requests already encoded pass through: the
// clients send each EDS subscription (a thousand names) in every ACK, and encoding that a million
// times would make the bench measure its own clients rather than the server.
const definition = adsServiceDefinition();
const AdsClient = makeGenericClientConstructor(
  {
    ...definition,
    StreamAggregatedResources: {
      ...definition.StreamAggregatedResources,
      requestSerialize: (r: DiscoveryRequest | Buffer) => (Buffer.isBuffer(r) ? r : definition.StreamAggregatedResources.requestSerialize(r)),
    },
  },
  'AggregatedDiscoveryService',
);

/** The encoded resource_names field of a subscription, shared by every client with the same one. */
const encodedNames = new Map<string, Buffer>();

function namesBytes(names: readonly string[]): Buffer {
  const key = names.join('\n');
  let b = encodedNames.get(key);
  if (!b) {
    b = encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', { resource_names: [...names] });
    encodedNames.set(key, b);
  }
  return b;
}

/** An Envoy-like SotW client that subscribes to what CDS and LDS name and ACKs everything. */
class BenchClient {
  readonly #client: AggregatedDiscoveryServiceClient;
  readonly #stream;
  readonly #names = new Map<string, string[]>();
  readonly #nonces = new Map<string, string>();
  /** When each type was first ACKed (performance.now()). */
  readonly firstAck = new Map<string, number>();
  /** Called on every ACK with the type and version. */
  onAck: ((type: string, version: string, at: number) => void) | undefined;
  failed: Error | undefined;
  /** Resource bytes received. */
  bytes = 0;

  constructor(target: string, i: number) {
    // One connection per client, as sidecars have; a large HTTP/2 receive window, as Envoy
    // advertises (256 MiB by default), so big responses are not paced by window updates.
    this.#client = new AdsClient(target, credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': -1,
      'grpc-node.flow_control_window': 16 * 1024 * 1024,
    }) as unknown as AggregatedDiscoveryServiceClient;
    this.#stream = this.#client.StreamAggregatedResources(new Metadata());
    const ip = `127.200.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    const id = nodeId({ type: 'sidecar', ip, pod: `client-${i}`, namespace });
    this.#stream.on('data', (r: DiscoveryResponse__Output) => this.#onResponse(r));
    this.#stream.on('error', (err: Error) => {
      this.failed = err;
    });
    this.#stream.write({
      node: { id, metadata: { fields: { NAMESPACE: { stringValue: namespace, kind: 'stringValue' } } } },
      type_url: TypeUrl.Cluster,
      resource_names: [],
    });
    this.#stream.write({ type_url: TypeUrl.Listener, resource_names: [] });
  }

  get complete(): boolean {
    return types.every((t) => this.firstAck.has(t));
  }

  #request(type: string, names: readonly string[], version: string, nonce: string): void {
    const head = encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', { type_url: type, version_info: version, response_nonce: nonce });
    (this.#stream as unknown as { write(b: Buffer): boolean }).write(names.length ? Buffer.concat([head, namesBytes(names)]) : head);
  }

  #onResponse(r: DiscoveryResponse__Output): void {
    const type = r.type_url;
    for (const a of r.resources) this.bytes += a.value.length;
    let follow: { type: string; names: string[] } | undefined;
    if (type === TypeUrl.Cluster) {
      const eds = r.resources.map((a) => clusterNameAndType(a.value)).filter((c) => c.type === edsType).map((c) => c.name).sort();
      follow = { type: TypeUrl.ClusterLoadAssignment, names: eds };
    } else if (type === TypeUrl.Listener) {
      follow = { type: TypeUrl.RouteConfiguration, names: [...new Set(r.resources.flatMap(routeNames))].sort() };
    }
    this.#request(type, this.#names.get(type) ?? [], r.version_info, r.nonce);
    this.#nonces.set(type, r.nonce);
    const at = performance.now();
    if (!this.firstAck.has(type)) this.firstAck.set(type, at);
    this.onAck?.(type, r.version_info, at);
    if (follow) {
      const before = this.#names.get(follow.type);
      if (before?.join('\n') !== follow.names.join('\n')) {
        this.#names.set(follow.type, follow.names);
        // The first request of a type has no nonce; later name changes ride on the last nonce.
        this.#request(follow.type, follow.names, '', before ? (this.#nonces.get(follow.type) ?? '') : '');
      }
    }
  }

  close(): void {
    this.#stream.end();
    this.#client.close();
  }
}

// ------------------------------------------------------------------ run

async function run(clientCount: number, configDir: string): Promise<{ ok: boolean; rss: number; cpu: number; p99: number }> {
  await writeFile(join(configDir, 'vs.yaml'), virtualService('5s'));
  await writeFile(join(configDir, 'moving.yaml'), movingEndpoint('127.12.0.2'));
  const weftd = await startWeftd(configDir, debounceMs);
  const clients: BenchClient[] = [];
  try {
    const rssIdle = await metric(weftd, 'process_resident_memory_bytes');
    const cpu0 = await metric(weftd, 'process_cpu_seconds_total');
    const t0 = performance.now();
    for (let i = 0; i < clientCount; i++) clients.push(new BenchClient(weftd.xds, i));
    const allIn = await until(() => clients.every((c) => c.complete || c.failed), 120_000);
    const firstPushMs = performance.now() - t0;
    const failed = clients.filter((c) => c.failed).length;
    const cpu1 = await metric(weftd, 'process_cpu_seconds_total');
    const rss = await metric(weftd, 'process_resident_memory_bytes');
    const connected = await metric(weftd, 'pilot_xds_connected');
    const pushCpu = cpu1 - cpu0;
    console.log(`  ${clientCount} clients: first full push (CDS, EDS, LDS, RDS ACKed) to all: ${allIn ? msFmt(firstPushMs) : `not within 120 s`}${failed ? ` (${failed} streams failed)` : ''}; connected ${connected}`);
    console.log(`    server CPU during it: ${pushCpu.toFixed(2)} s (${((pushCpu / (firstPushMs / 1000)) * 100).toFixed(0)}% of one core); RSS ${mb(rssIdle)} before clients, ${mb(rss)} after`);

    // One change, then each client's ACK of the type it changes: file write -> ACK, per client.
    const measure = async (what: string, type: string, file: string, text: string) => {
      const latencies: number[] = [];
      const acked = new Set<BenchClient>();
      let changeAt = 0;
      for (const c of clients) {
        c.onAck = (t, _version, at) => {
          if (changeAt === 0 || t !== type || acked.has(c)) return;
          acked.add(c);
          latencies.push(at - changeAt);
        };
      }
      const cpu0 = await metric(weftd, 'process_cpu_seconds_total');
      const bytes0 = clients.reduce((n, c) => n + c.bytes, 0);
      changeAt = performance.now();
      await writeFile(join(configDir, file), text);
      const converged = await until(() => latencies.length === clients.length, 60_000);
      const cpu1 = await metric(weftd, 'process_cpu_seconds_total');
      const bytes = clients.reduce((n, c) => n + c.bytes, 0) - bytes0;
      latencies.sort((a, b) => a - b);
      const push = (await (await fetch(`${weftd.monitoring}/debug/push_status`)).json()) as { durationMs: number; buildMs: number; debounceMs: number; responses: number };
      const p50 = percentile(latencies, 50);
      const p99 = percentile(latencies, 99);
      console.log(
        `    ${what}, file write -> each client's ACK: p50 ${msFmt(p50)}, p99 ${msFmt(p99)}, max ${msFmt(latencies.at(-1) ?? Number.NaN)}` +
          (converged ? '' : ` (only ${latencies.length} of ${clients.length} clients within 60 s)`),
      );
      console.log(
        `      ${mb(bytes)} sent (${(bytes / 1024 / clients.length).toFixed(1)} KiB per client); server: debounce ${msFmt(push.debounceMs)}, push context ${msFmt(push.buildMs)}, ` +
          `generate+send to all ${msFmt(push.durationMs - push.buildMs)} (${push.responses} responses), CPU ${(cpu1 - cpu0).toFixed(2)} s`,
      );
      for (const c of clients) c.onAck = undefined;
      return { converged, p99 };
    };
    // The VirtualService change rewrites the port-80 route configuration every sidecar holds (all
    // services' virtual hosts); the endpoint change sends one cluster's endpoints (EDS only).
    const routes = await measure('one VirtualService change (RDS)', TypeUrl.RouteConfiguration, 'vs.yaml', virtualService('7s'));
    const endpoints = await measure('one endpoint change (EDS, one cluster)', TypeUrl.ClusterLoadAssignment, 'moving.yaml', movingEndpoint('127.12.0.99'));
    const converged = routes.converged && endpoints.converged;
    const p99 = routes.p99;
    const peak = await peakRss(weftd.pid);
    const rssAfter = await metric(weftd, 'process_resident_memory_bytes');
    console.log(`    server RSS ${mb(rssAfter)}, peak ${mb(peak)}`);
    return { ok: allIn && converged && failed === 0, rss: Math.max(peak, rssAfter), cpu: pushCpu / (firstPushMs / 1000), p99 };
  } finally {
    for (const c of clients) c.close();
    await weftd.stop();
  }
}

/**
 * The same clients against floor-server.ts: one pre-encoded route configuration of the same size
 * written to every stream. What any ADS server on @grpc/grpc-js needs at least, on this machine,
 * to deliver one route change to every client: weftd's push cannot converge faster than this.
 */
async function runFloor(clientCount: number): Promise<void> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./floor-server.ts', import.meta.url)), '--services', String(services)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  let pending = '';
  child.stdout.on('data', (b: Buffer) => {
    pending += b.toString();
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const l of parts) {
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {}
    }
  });
  const clients: BenchClient[] = [];
  try {
    if (!(await until(() => lines.some((l) => l.msg === 'listening'), 30_000))) throw new Error('the floor server did not start');
    const ready = lines.find((l) => l.msg === 'listening')!;
    for (let i = 0; i < clientCount; i++) clients.push(new BenchClient(`127.0.0.1:${ready.port as number}`, i));
    if (!(await until(() => clients.every((c) => c.complete || c.failed), 120_000))) throw new Error('floor clients did not all get the first push');
    const latencies: number[] = [];
    const acked = new Set<BenchClient>();
    for (const c of clients) {
      c.onAck = (t, version, at) => {
        if (t !== TypeUrl.RouteConfiguration || version !== '2' || acked.has(c)) return;
        acked.add(c);
        latencies.push(at - start);
      };
    }
    const start = performance.now();
    child.stdin.write('push\n');
    const converged = await until(() => latencies.length === clients.length, 60_000);
    latencies.sort((a, b) => a - b);
    const pushed = lines.find((l) => l.msg === 'pushed');
    console.log(
      `  platform floor (floor-server.ts: @grpc/grpc-js writing one pre-encoded ${((ready.routeConfigBytes as number) / 1024).toFixed(0)} KiB route configuration to every stream), ${clientCount} clients: ` +
        `push -> each client's receipt p50 ${msFmt(percentile(latencies, 50))}, p99 ${msFmt(percentile(latencies, 99))}` +
        (pushed ? `; the writes alone took ${msFmt(pushed.ms as number)}` : '') +
        (converged ? '' : ` (only ${latencies.length} of ${clients.length} within 60 s)`),
    );
  } finally {
    for (const c of clients) c.close();
    child.kill('SIGTERM');
  }
}

const dir = await mkdtemp(join(tmpdir(), 'weft-bench-pilot-'));
try {
  const configDir = join(dir, 'config');
  await mkdir(configDir);
  const t = performance.now();
  await writeFile(join(configDir, 'services.yaml'), serviceConfig(services));
  console.log(
    `pilot ADS: weftd (child process) with ${services} ServiceEntries x 3 WorkloadEntries; Envoy-style SotW clients ACKing everything; debounce ${debounceMs} ms (file) + ${debounceMs} ms (push) [config written in ${msFmt(performance.now() - t)}]`,
  );
  const results: { clients: number; ok: boolean; rss: number; cpu: number; p99: number }[] = [];
  for (const n of clientCounts) results.push({ clients: n, ...(await run(n, configDir)) });
  const big = results.find((r) => r.clients >= 1000);
  if (big) {
    console.log(
      `  goals at ${big.clients} clients: memory ${mb(big.rss)} (goal 1024 MB: ${big.rss <= 1024 * 1048576 ? 'met' : 'NOT met'}); ` +
        `CPU ${(big.cpu * 100).toFixed(0)}% of one core during the first push (goal 1 CPU: ${big.cpu <= 1.05 ? 'met' : 'NOT met'}); ` +
        `VirtualService convergence p99 ${msFmt(big.p99)} (goal 100 ms: ${big.p99 <= 100 ? 'met' : 'NOT met'})`,
    );
  } else console.log('  the 1,000-client case was not run (BENCH_PILOT_CLIENTS)');
  await runFloor(Math.max(...clientCounts));
  if (results.some((r) => !r.ok)) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
