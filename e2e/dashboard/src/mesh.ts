// One local BookInfo mesh as `weftctl up` runs it, with its addons (Prometheus and the dashboard,
// whose OTLP receiver gets every proxy's spans through the mesh config weftctl writes), workloads
// moved to a free 127.77.N net, the gateway on 127.77.N.9:8080; config through weftctl's own
// apply/delete; a background page-view loop through the gateway.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apply, type LocalMesh, remove, startLocalMesh } from '@weft/weftctl';
import { runWeftctl, spanExportDelayMs } from '../../bookinfo/src/driver.ts';
import { freeLoopbackNet } from '../../bookinfo/src/local-driver.ts';
import { PageUser } from '../../bookinfo/src/page.ts';
import { networking } from '../../bookinfo/src/reference.ts';

/** A page view after another, as long as it runs (`pauseMs` between them). */
export class Traffic {
  ok = 0;
  failed = 0;
  lastError: string | undefined;
  #running = false;
  #loop: Promise<void> | undefined;

  readonly url: string;
  readonly pauseMs: number;

  constructor(url: string, pauseMs: number) {
    this.url = url;
    this.pauseMs = pauseMs;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const user = new PageUser(this.url);
    this.#loop = (async () => {
      while (this.#running) {
        try {
          const p = await user.load(10_000);
          if (p.status === 200) this.ok++;
          else {
            this.failed++;
            this.lastError = `status ${p.status}`;
          }
        } catch (e) {
          this.failed++;
          this.lastError = (e as Error).message;
        }
        await new Promise((r) => setTimeout(r, this.pauseMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

export interface DashboardMesh {
  mesh: LocalMesh;
  stateDir: string;
  productpageUrl: string;
  /** http://127.0.0.1:<port>/ */
  dashboardUrl: string;
  progress: string[];
  apply(files: string[]): Promise<void>;
  delete(files: string[]): Promise<void>;
  /** Prometheus's readiness through its own port and basic auth (the state's password file). */
  prometheusReady(): Promise<boolean>;
  prometheusPid(): number | undefined;
  stop(): Promise<void>;
}

export async function startDashboardMesh(): Promise<DashboardMesh> {
  const stateDir = await mkdtemp(join(tmpdir(), 'weft-e2e-dashboard-'));
  const net = await freeLoopbackNet();
  const progress: string[] = [];
  const previousDelay = process.env.OTEL_BSP_SCHEDULE_DELAY;
  // Proxies export spans every 200 ms instead of 5 s: a page view's trace is complete soon after it.
  process.env.OTEL_BSP_SCHEDULE_DELAY = spanExportDelayMs;
  let mesh: LocalMesh;
  const t0 = Date.now();
  try {
    mesh = await startLocalMesh({
      stateDir,
      loopbackNet: net,
      ingressAddress: `${net}.9`,
      ingressPort: 8080,
      initialConfig: [networking('bookinfo-gateway.yaml')],
      timeoutMs: 180_000,
      onProgress: (component, text) => progress.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${component}: ${text}`),
    });
  } catch (e) {
    await rm(stateDir, { recursive: true, force: true });
    throw new Error(`the mesh did not start: ${(e as Error).message}\n${progress.join('\n')}`);
  } finally {
    if (previousDelay === undefined) delete process.env.OTEL_BSP_SCHEDULE_DELAY;
    else process.env.OTEL_BSP_SCHEDULE_DELAY = previousDelay;
  }
  console.log(`mesh up in ${((Date.now() - t0) / 1000).toFixed(1)} s:\n${progress.join('\n')}`);
  mesh.onExit((component, how, logFile) => console.error(`local mesh: ${component} ${how} (log ${logFile})`));
  const state = mesh.state;
  const stop = async () => {
    await mesh.stop(5000);
    await rm(stateDir, { recursive: true, force: true });
  };
  if (!state.dashboard) {
    await stop();
    throw new Error(`the mesh started without the dashboard (no "dashboard" in mesh.json); progress:\n${progress.join('\n')}`);
  }
  const dashboardUrl = state.dashboard.url;
  const io = { stateDir, namespace: 'default', waitMs: 30_000 };
  return {
    mesh,
    stateDir,
    productpageUrl: mesh.url,
    dashboardUrl,
    progress,
    async apply(files) {
      await runWeftctl(`weftctl apply -f ${files.join(' -f ')}`, (x) => apply({ ...io, files }, x));
    },
    async delete(files) {
      await runWeftctl(`weftctl delete -f ${files.join(' -f ')}`, (x) => remove({ ...io, files }, x));
    },
    async prometheusReady() {
      const p = state.prometheus;
      if (!p) return false;
      try {
        const password = (await readFile(p.passwordFile, 'utf8')).trim();
        const r = await fetch(new URL('-/ready', p.url), { headers: { authorization: `Basic ${Buffer.from(`weft:${password}`).toString('base64')}` }, signal: AbortSignal.timeout(2000) });
        await r.text();
        return r.status === 200;
      } catch {
        return false;
      }
    },
    prometheusPid: () => state.prometheus?.pid,
    stop,
  };
}
