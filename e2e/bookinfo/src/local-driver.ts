// The local driver: the mesh `weftctl up` runs (startLocalMesh: weftd with its CA, one BookInfo
// process and one weft-proxy sidecar per WorkloadEntry of examples/bookinfo/platform/local, each
// workload on its own loopback address, the ingress gateway on 127.0.0.1), no root. Config goes
// in through weftctl's own apply/delete (galley first, then the watched config directory, then
// wait for every proxy's ACK). Workloads move to a free 127.77.N net of their own so that a running
// demo (127.0.0.x) or another mesh is not disturbed.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOtlpReceiver } from '@weft/proxy/testing';
import { apply, defaultInitialConfig, type LocalMesh, prometheusQuery, remove, startLocalMesh } from '@weft/weftctl';
import { type BookinfoDriver, type PlaintextAnswer, runWeftctl, spanExportDelayMs, tracingMeshConfig } from './driver.ts';
import { hasNetworking, networking } from './reference.ts';

function canBind(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: address, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A plaintext HTTP/1.1 GET over a fresh TCP connection (no pooling, no proxy settings). */
export function rawGet(host: string, port: number, path: string, timeoutMs = 5000): Promise<PlaintextAnswer> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    let data = '';
    const done = (a: PlaintextAnswer) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(a);
    };
    const timer = setTimeout(() => done({ ok: false, error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nhost: ${host}:${port}\r\nconnection: close\r\n\r\n`));
    socket.on('data', (b: Buffer) => {
      data += b.toString('latin1');
    });
    socket.on('error', (e) => done({ ok: false, error: e.message }));
    socket.on('close', () => {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      if (m) done({ ok: true, status: Number(m[1]), body: data.slice(data.indexOf('\r\n\r\n') + 4) });
      else done({ ok: false, error: data ? `not HTTP: ${JSON.stringify(data.slice(0, 80))}` : 'connection closed without an answer' });
    });
  });
}

/** A loopback /24 (127.77.N) where the addresses a mesh takes are free: a demo or another test may run beside. */
export async function freeLoopbackNet(): Promise<string> {
  for (let i = 0; i < 30; i++) {
    const net = `127.77.${1 + Math.floor(Math.random() * 254)}`;
    const probes = await Promise.all([9, 10, 11, 12, 13, 14, 15].flatMap((h) => [canBind(`${net}.${h}`, 15000), canBind(`${net}.${h}`, h === 9 ? 8080 : 9080)]));
    if (probes.every(Boolean)) return net;
  }
  throw new Error('no free loopback net 127.77.N found');
}

export interface LocalDriverOptions {
  /** The loopback /24 the workloads move into (default: a free 127.77.N). */
  loopbackNet?: string;
  onProgress?: (component: string, text: string) => void;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export async function startLocalDriver(o: LocalDriverOptions = {}): Promise<BookinfoDriver & { mesh: LocalMesh; stateDir: string }> {
  const stateDir = await mkdtemp(join(tmpdir(), 'weft-e2e-bookinfo-local-'));
  const otlp = await startOtlpReceiver('127.0.0.1');
  const meshConfig = join(stateDir, 'mesh-config.yaml');
  await writeFile(meshConfig, tracingMeshConfig('127.0.0.1', otlp.httpPort));
  // The gateway listens on its own loopback address (127.77.N.9), where 8080 is free: Istio's
  // bookinfo-gateway.yaml (server port 8080, the container port behind the Service's 80 in Istio's
  // chart) applies unchanged; the example's Gateway (port 80) is translated to 8080 alike.
  const net = o.loopbackNet ?? (await freeLoopbackNet());
  const initialConfig = hasNetworking('bookinfo-gateway.yaml') ? [networking('bookinfo-gateway.yaml')] : defaultInitialConfig;
  const previousDelay = process.env.OTEL_BSP_SCHEDULE_DELAY;
  process.env.OTEL_BSP_SCHEDULE_DELAY = spanExportDelayMs;
  let mesh: LocalMesh;
  try {
    mesh = await startLocalMesh({
      stateDir,
      loopbackNet: net,
      ingressAddress: `${net}.9`,
      ingressPort: 8080,
      initialConfig,
      meshConfig,
      timeoutMs: 150_000,
      ...(o.logLevel ? { logLevel: o.logLevel } : {}),
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
  } catch (e) {
    await otlp.close();
    await rm(stateDir, { recursive: true, force: true });
    throw e;
  } finally {
    if (previousDelay === undefined) delete process.env.OTEL_BSP_SCHEDULE_DELAY;
    else process.env.OTEL_BSP_SCHEDULE_DELAY = previousDelay;
  }
  const state = mesh.state;
  const pids = [state.weftd?.pid, state.ingress?.pid, state.prometheus?.pid, ...state.proxies.map((p) => p.pid), ...state.apps.map((a) => a.pid)].filter((p): p is number => p !== undefined);
  const ports = [
    ...(state.ingress ? [`${state.ingress.address}:${state.ingress.httpPort}`] : []),
    ...(state.weftd ? [state.weftd.xdsPort, state.weftd.caPort, state.weftd.monitoringPort].filter((p) => p !== undefined).map((p) => `127.0.0.1:${p}`) : []),
    ...state.proxies.map((p) => `${p.address}:15001`),
    ...(state.prometheus ? [`127.0.0.1:${state.prometheus.port}`] : []),
  ];
  const proxy = (workload: string) => {
    const p = state.proxies.find((x) => x.name === workload);
    if (!p) throw new Error(`no workload ${workload}; there are ${state.proxies.map((x) => x.name).join(', ')}`);
    return p;
  };
  const io = { stateDir, namespace: 'default', waitMs: 20_000 };
  let stopped = false;
  mesh.onExit((component, how, logFile) => console.error(`local mesh: ${component} ${how} (log ${logFile})`));

  return {
    name: 'local',
    mesh,
    stateDir,
    namespace: 'default',
    productpageUrl: mesh.url,
    otlp,
    // weftctl up's Prometheus addon (when installed): it finds the proxies through the target files weftctl writes.
    ...(state.prometheus
      ? {
          prometheus: {
            async value(promql: string) {
              const samples = await prometheusQuery(state, promql);
              if (samples.length > 1) throw new Error(`Prometheus query ${promql}: ${samples.length} series, expected one (sum them)`);
              return samples[0]?.value;
            },
          },
        }
      : {}),
    async apply(files) {
      await runWeftctl(`weftctl apply -f ${files.join(' -f ')}`, (x) => apply({ ...io, files }, x));
    },
    async delete(files) {
      await runWeftctl(`weftctl delete -f ${files.join(' -f ')}`, (x) => remove({ ...io, files }, x));
    },
    async proxyStats(workload) {
      const p = proxy(workload);
      const r = await fetch(`http://${p.address}:15090/stats/prometheus`, { signal: AbortSignal.timeout(10_000) });
      if (r.status !== 200) throw new Error(`${workload}'s 15090 answered ${r.status}`);
      return r.text();
    },
    plaintextCall(workload, path) {
      // The sidecar fronts the service port 9080 on the workload's own address; the test process is
      // a client without a sidecar.
      return rawGet(proxy(workload).address, 9080, path);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await mesh.stop(5000);
      await otlp.close();
    },
    async leftovers() {
      const left: string[] = [];
      for (const pid of pids) if (alive(pid)) left.push(`process ${pid} is still running`);
      for (const hp of ports) {
        const [host, port] = hp.split(':') as [string, string];
        if (!(await canBind(host, Number(port)))) left.push(`${hp} is still in use`);
      }
      if (left.length === 0) await rm(stateDir, { recursive: true, force: true });
      return left;
    },
  };
}
