// The Prometheus addon of local mode: `weftctl up` runs Debian's prometheus (/usr/bin/prometheus)
// beside the mesh, as Istio's samples/addons run one in the cluster. What Kubernetes service
// discovery and the prometheus.io annotations give the kube addon (deploy/addons/prometheus), file
// discovery gives here: weftctl writes the targets from mesh.json's proxies and weftd, with the
// labels kubernetes_sd's relabelling would put on them (the pod's labels, namespace, pod), and
// rewrites the files as proxies come and go. Everything lives in <stateDir>/prometheus/: the
// configuration, the target files, the TSDB (kept across runs) and the password of its basic auth.
import { randomBytes } from 'node:crypto';
import { access, chmod, constants, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { hash } from 'bcryptjs';
import { stringify } from 'yaml';
import type { LogLine } from './processes.ts';
import type { MeshState, PrometheusState, ProxyState, RunState } from './state.ts';
import { freePort, type ListenAddress, type Supervised } from './supervisor.ts';

export const prometheusInstall = 'apt-get install -y prometheus';
/** The basic-auth user; the password is in PrometheusState.passwordFile. */
export const prometheusUser = 'weft';
/** Every path of the web UI and API is under it, so a reverse proxy (the dashboard) can serve it there. */
export const prometheusRoutePrefix = '/prometheus/';
/** A demo scrapes often: a page load shows in a graph within seconds. */
export const scrapeInterval = '2s';

/** A file_sd target group. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** The target files: `pods` as the kube addon's kubernetes-pods job (15020, weftd's /metrics), `envoy` the proxies' 15090. */
export interface FileSdTargets {
  pods: TargetGroup[];
  envoy: TargetGroup[];
}

/** A label name as Kubernetes service discovery writes one (`security.istio.io/tlsMode` -> `security_istio_io_tlsMode`). */
export function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** kubernetes-pods' relabelling: every pod label (labelmap), then namespace and pod. */
function podLabels(labels: Record<string, string>, namespace: string, pod: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) out[sanitizeLabelName(k)] = v;
  out.namespace = namespace;
  out.pod = pod;
  return out;
}

/** weftd's pod labels in the chart (deploy/charts/weftd): what its series carry in a cluster. */
const weftdLabels = { app: 'weftd', istio: 'pilot' };

/**
 * What to scrape in the mesh of `state`: each proxy's merged metrics (15020) and proxy stats (15090)
 * on its address, and weftd's monitoring port. A proxy that exited for good (not restarted) is left
 * out; one waiting to restart stays, and shows as down meanwhile, as a restarting container would.
 */
export function fileSdTargets(state: Pick<MeshState, 'proxies' | 'ingress' | 'weftd'>): FileSdTargets {
  const proxies: ProxyState[] = [...(state.ingress ? [state.ingress] : []), ...state.proxies].filter((p) => p.run?.phase !== 'exited' && p.run?.phase !== 'stopped');
  const pods: TargetGroup[] = proxies.map((p) => ({ targets: [`${p.address}:15020`], labels: podLabels(p.labels, p.namespace, p.name) }));
  const envoy: TargetGroup[] = proxies.map((p) => ({ targets: [`${p.address}:15090`], labels: podLabels(p.labels, p.namespace, p.name) }));
  const d = state.weftd;
  if (d && d.run?.phase !== 'exited' && d.run?.phase !== 'stopped') {
    pods.push({ targets: [`${d.address ?? '127.0.0.1'}:${d.monitoringPort}`], labels: { ...podLabels(weftdLabels, 'istio-system', 'weftd'), __metrics_path__: '/metrics' } });
  }
  return { pods, envoy };
}

export interface PrometheusPaths {
  dir: string;
  config: string;
  webConfig: string;
  passwordFile: string;
  podsFile: string;
  envoyFile: string;
  data: string;
}

export function prometheusPaths(stateDir: string): PrometheusPaths {
  const dir = join(stateDir, 'prometheus');
  return {
    dir,
    config: join(dir, 'prometheus.yml'),
    webConfig: join(dir, 'web.yml'),
    passwordFile: join(dir, 'password'),
    podsFile: join(dir, 'targets-pods.json'),
    envoyFile: join(dir, 'targets-envoy.json'),
    data: join(dir, 'data'),
  };
}

/**
 * prometheus.yml. The merged endpoint (15020) carries everything 15090 does plus the agent's and
 * the application's series; scraping both whole would count every request twice (a sum over
 * istio_requests_total doubled). So the envoy_* series come from 15090 (Istio's envoy-stats job)
 * and everything else from 15020 (kubernetes-pods, as in the kube addon): each series once.
 */
export function prometheusConfig(paths: PrometheusPaths, port: number): string {
  const config = {
    global: { scrape_interval: scrapeInterval, scrape_timeout: scrapeInterval },
    scrape_configs: [
      {
        job_name: 'prometheus',
        metrics_path: `${prometheusRoutePrefix}metrics`,
        basic_auth: { username: prometheusUser, password_file: paths.passwordFile },
        static_configs: [{ targets: [`127.0.0.1:${port}`], labels: { app: 'prometheus' } }],
      },
      {
        job_name: 'kubernetes-pods',
        metrics_path: '/stats/prometheus',
        file_sd_configs: [{ files: [paths.podsFile], refresh_interval: '30s' }],
        metric_relabel_configs: [{ source_labels: ['__name__'], regex: 'envoy_.*', action: 'drop' }],
      },
      {
        job_name: 'envoy-stats',
        metrics_path: '/stats/prometheus',
        file_sd_configs: [{ files: [paths.envoyFile], refresh_interval: '30s' }],
        metric_relabel_configs: [{ source_labels: ['__name__'], regex: 'envoy_.*', action: 'keep' }],
      },
    ],
  };
  return `# Written by \`weftctl up\` at each start (apps/weftctl/src/up/prometheus.ts); edits are lost.\n${stringify(config)}`;
}

/** --web.config.file: only the bcrypt hash of the password. */
export function webConfig(passwordHash: string): string {
  return `# Written by \`weftctl up\`: basic auth for user ${prometheusUser}; the password is in the file \`password\` beside this one.\n${stringify({ basic_auth_users: { [prometheusUser]: passwordHash } })}`;
}

let writes = 0;

/** Replaces `file` in one step (Prometheus's file discovery never reads half a file). */
async function writeAtomically(file: string, text: string, mode = 0o644): Promise<void> {
  const tmp = `${file}.${process.pid}.${++writes}.tmp`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, file);
}

/** The prometheus executable on `PATH`, or undefined. */
export async function findPrometheus(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, 'prometheus');
    if (
      await access(file, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return file;
  }
  return undefined;
}

/** The password kept from an earlier run (a browser that saved it keeps working), else a new one; the file is made 0600. */
async function password(file: string): Promise<string> {
  const kept = (await readFile(file, 'utf8').catch(() => '')).trim();
  const pw = kept.length >= 16 ? kept : randomBytes(18).toString('base64url');
  if (pw !== kept) await writeAtomically(file, `${pw}\n`, 0o600);
  await chmod(file, 0o600);
  return pw;
}

/** The Authorization header for the addon's basic auth. */
export async function prometheusAuthorization(p: Pick<PrometheusState, 'passwordFile'>): Promise<string> {
  const pw = (await readFile(p.passwordFile, 'utf8')).trim();
  return `Basic ${Buffer.from(`${prometheusUser}:${pw}`).toString('base64')}`;
}

/** GET `path` (e.g. `api/v1/targets`, relative to the route prefix) of the addon's HTTP API: its `data`, or a thrown error with Prometheus's. */
export async function prometheusApi(p: Pick<PrometheusState, 'url' | 'passwordFile'>, path: string, timeoutMs = 10_000): Promise<unknown> {
  const r = await fetch(new URL(path.replace(/^\//, ''), p.url), { headers: { authorization: await prometheusAuthorization(p) }, signal: AbortSignal.timeout(timeoutMs) });
  const text = await r.text();
  let body: { status?: string; data?: unknown; error?: string };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`Prometheus ${path}: HTTP ${r.status}: ${text.slice(0, 200)}`);
  }
  if (body.status !== 'success') throw new Error(`Prometheus ${path}: HTTP ${r.status}: ${body.error ?? text.slice(0, 200)}`);
  return body.data;
}

/** One series of an instant query. */
export interface PrometheusSample {
  metric: Record<string, string>;
  value: number;
}

/** An instant query against the mesh's Prometheus: its series (a scalar comes back as one series without labels). */
export async function prometheusQuery(state: Pick<MeshState, 'prometheus' | 'stateDir'>, promql: string): Promise<PrometheusSample[]> {
  if (!state.prometheus) throw new Error(`the local mesh in ${state.stateDir} runs without Prometheus (\`weftctl up --no-addons\`, or not installed: ${prometheusInstall})`);
  const data = (await prometheusApi(state.prometheus, `api/v1/query?query=${encodeURIComponent(promql)}`)) as { resultType: string; result: unknown };
  if (data.resultType === 'scalar') return [{ metric: {}, value: Number((data.result as [number, string])[1]) }];
  if (data.resultType !== 'vector') throw new Error(`Prometheus query ${promql}: a ${data.resultType}, not an instant vector`);
  return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
}

/** A target as /api/v1/targets lists it. */
export interface PrometheusTarget {
  scrapePool: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  labels: Record<string, string>;
}

export async function prometheusTargets(p: Pick<PrometheusState, 'url' | 'passwordFile'>): Promise<PrometheusTarget[]> {
  return ((await prometheusApi(p, 'api/v1/targets?state=active')) as { activeTargets: PrometheusTarget[] }).activeTargets;
}

/** The scrape URLs Prometheus should have for these targets. */
export function expectedScrapeUrls(t: FileSdTargets, self: PrometheusState): string[] {
  const url = (g: TargetGroup) => `http://${g.targets[0]}${g.labels.__metrics_path__ ?? '/stats/prometheus'}`;
  return [`http://127.0.0.1:${self.port}${prometheusRoutePrefix}metrics`, ...t.pods.map(url), ...t.envoy.map(url)];
}

/** mesh.ts's way of starting a supervised component. */
export type SpawnComponent = (
  name: string,
  args: () => string[],
  file: string,
  how: { ready: (l: LogLine) => boolean; entry: () => { pid: number; run?: RunState } | undefined; listens?: () => ListenAddress[]; command?: string },
) => Supervised;

export interface PrometheusAddonContext {
  stateDir: string;
  /** The mesh's state: `prometheus` is set in it once Prometheus serves. */
  state: MeshState;
  spawn: SpawnComponent;
  /** Writes mesh.json. */
  save: () => Promise<void>;
  progress: (component: string, text: string) => void;
  env?: NodeJS.ProcessEnv;
  /** How long Prometheus may take to serve. */
  timeoutMs: number;
}

export interface PrometheusAddon {
  /** Rewrites the target files from `state` when what they say changed (called on every mesh.json write). */
  update(state: MeshState): Promise<void>;
  /**
   * Waits until Prometheus has discovered every target and scraped each successfully (at most
   * `ms`), then says so in a progress line with the time since `meshReadyAt`; says what is missing
   * otherwise. Never throws: the mesh runs without its addon.
   */
  ready(ms: number, meshReadyAt: number, signal?: AbortSignal): Promise<boolean>;
}

const readyLine = (l: LogLine) => l.msg === 'Server is ready to receive web requests.';

/** Starts Prometheus; undefined (after a progress line saying why) when it is not installed. */
export async function startPrometheus(c: PrometheusAddonContext): Promise<PrometheusAddon | undefined> {
  const bin = await findPrometheus(c.env);
  if (!bin) {
    c.progress('prometheus', `not installed: the Prometheus addon is skipped (${prometheusInstall}); the mesh starts without it`);
    return undefined;
  }
  const started = Date.now();
  const paths = prometheusPaths(c.stateDir);
  // The TSDB holds every metric of the mesh, whose ports serve only this user: its files too.
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await chmod(paths.dir, 0o700);
  await mkdir(paths.data, { recursive: true });
  const pw = await password(paths.passwordFile);
  const port = await freePort();
  await writeAtomically(paths.webConfig, webConfig(await hash(pw, 10)), 0o600);
  await writeAtomically(paths.config, prometheusConfig(paths, port));
  let written = '';
  const update = async (state: MeshState) => {
    const t = fileSdTargets(state);
    const text = JSON.stringify(t);
    if (text === written) return;
    await writeAtomically(paths.podsFile, `${JSON.stringify(t.pods, null, 2)}\n`);
    await writeAtomically(paths.envoyFile, `${JSON.stringify(t.envoy, null, 2)}\n`);
    written = text;
  };
  await update(c.state);
  const url = `http://127.0.0.1:${port}${prometheusRoutePrefix}`;
  const args = [
    `--config.file=${paths.config}`,
    `--web.config.file=${paths.webConfig}`,
    `--web.listen-address=127.0.0.1:${port}`,
    `--web.external-url=${url}`,
    `--web.route-prefix=${prometheusRoutePrefix}`,
    `--storage.tsdb.path=${paths.data}`,
    '--log.format=json',
  ];
  const s = c.spawn('prometheus', () => args, 'prometheus.log', {
    command: bin,
    ready: readyLine,
    entry: () => c.state.prometheus,
    listens: () => [{ address: '127.0.0.1', port, what: 'Prometheus' }],
  });
  const serving = s.waitFor(readyLine, 'it served', c.timeoutMs).then(
    async () => {
      c.state.prometheus = { pid: s.pid, port, url, passwordFile: paths.passwordFile, logFile: s.logFile, run: s.status() };
      await c.save();
      return c.state.prometheus;
    },
    (e: Error) => {
      // Not restarted: an addon that cannot start says so once, and the mesh goes on.
      s.stop()?.signal('SIGKILL');
      c.progress('prometheus', `could not start, the mesh runs without it: ${e.message}`);
      return undefined;
    },
  );

  return {
    update,
    async ready(ms, meshReadyAt, signal) {
      const deadline = Date.now() + ms;
      const p = await serving;
      if (!p) return false;
      // Whatever mesh.json says now is in the target files (a write may have come before this addon was handed over).
      await update(c.state);
      let missing: string[] = [];
      for (;;) {
        if (signal?.aborted) return false;
        const expected = expectedScrapeUrls(fileSdTargets(c.state), p);
        const targets = await prometheusTargets(p).catch((e: Error) => e);
        if (targets instanceof Error) missing = [`its API: ${targets.message}`];
        else {
          const byUrl = new Map(targets.map((t) => [t.scrapeUrl, t]));
          missing = expected.flatMap((u) => {
            const t = byUrl.get(u);
            if (t?.health === 'up') return [];
            return [`${u} ${t ? `${t.health}${t.lastError ? ` (${t.lastError})` : ''}` : 'not discovered yet'}`];
          });
          if (missing.length === 0) {
            const after = ((Date.now() - meshReadyAt) / 1000).toFixed(1);
            c.progress('prometheus', `ready on ${url} (user ${prometheusUser}, password in ${p.passwordFile}): ${expected.length} targets up, ${after} s after the mesh (${((Date.now() - started) / 1000).toFixed(1)} s after its start)`);
            return true;
          }
        }
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      c.progress('prometheus', `serving on ${url} (user ${prometheusUser}, password in ${p.passwordFile}), but after ${Math.round(ms / 1000)} s not every target is up: ${missing.slice(0, 4).join('; ')}${missing.length > 4 ? ` and ${missing.length - 4} more` : ''}`);
      return false;
    },
  };
}
