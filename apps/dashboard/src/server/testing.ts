// Test support: the dashboard as a process (its bin), and a real Prometheus (Debian's) with the
// route prefix and basic auth `weftctl up` gives it. Used by this package's tests only.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/weft-dashboard.js', import.meta.url));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface DashboardProcess {
  port: number;
  otlpPort: number;
  url: string;
  child: ChildProcess;
  /** Every JSON line it logged. */
  lines: Record<string, unknown>[];
  get<T = Record<string, unknown>>(path: string): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

/** Starts weft-dashboard with `args` and waits for its ready line. */
export async function startDashboardProcess(args: readonly string[]): Promise<DashboardProcess> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const rl = createInterface({ input: child.stderr! });
    rl.on('line', (text) => {
      try {
        const l = JSON.parse(text) as Record<string, unknown>;
        lines.push(l);
        if (l.msg === 'dashboard ready') resolve(l);
      } catch {
        lines.push({ raw: text });
      }
    });
    child.once('exit', (code) => reject(new Error(`weft-dashboard exited (${code}) before it was ready: ${JSON.stringify(lines)}`)));
  });
  const l = await ready;
  const port = Number(l.port);
  return {
    port,
    otlpPort: Number(l.otlpPort),
    url: String(l.url),
    child,
    lines,
    async get<T>(path: string) {
      const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(15_000) });
      return { status: r.status, body: (await r.json()) as T };
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface PrometheusProcess {
  port: number;
  /** http://127.0.0.1:<port>/prometheus */
  url: string;
  passwordFile: string;
  password: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real Prometheus scraping `targets` every second, under the route prefix /prometheus/ with
 * basic auth (user weft), its data in `dir`; start() may be called again after stop() (same port).
 */
export async function prometheusProcess(dir: string, targets: readonly string[]): Promise<PrometheusProcess> {
  const { hash } = await import('bcryptjs');
  await mkdir(join(dir, 'data'), { recursive: true });
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'web.yml'), `basic_auth_users:\n  weft: ${JSON.stringify(await hash(password, 4))}\n`);
  await writeFile(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: fixture\n  static_configs:\n  - targets: ${JSON.stringify(targets)}\n`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/prometheus`;
  let child: ChildProcess | undefined;
  const auth = { authorization: `Basic ${Buffer.from(`weft:${password}`).toString('base64')}` };
  return {
    port,
    url,
    passwordFile,
    password,
    async start() {
      child = spawn(
        'prometheus',
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--web.config.file=${join(dir, 'web.yml')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          `--web.external-url=${url}/`,
          '--web.route-prefix=/prometheus/',
          `--storage.tsdb.path=${join(dir, 'data')}`,
        ],
        { stdio: 'ignore' },
      );
      await until('Prometheus ready', async () => (await fetch(`${url}/-/ready`, { headers: auth })).ok, 30_000);
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    },
  };
}
