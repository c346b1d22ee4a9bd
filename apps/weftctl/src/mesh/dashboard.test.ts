import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../main.ts';
import { type MeshState, processStart, writeState } from '../up/state.ts';
import { componentStatuses } from './status.ts';

async function weftctl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err };
}

describe('weftctl dashboard', () => {
  let dir: string;
  let path: string | undefined;
  // A mesh.json as `weftctl up` writes it, owned by this (live) process.
  const mesh = (extra: Partial<MeshState>): MeshState => ({
    pid: process.pid,
    pidStart: processStart(process.pid)!,
    startedAt: new Date().toISOString(),
    stateDir: dir,
    configDir: join(dir, 'config'),
    caDir: join(dir, 'ca'),
    weftd: { pid: process.pid, caPort: 1, monitoringPort: 2, logFile: '' },
    proxies: [],
    apps: [],
    ...extra,
  });
  const dashboard = { pid: process.pid, port: 41234, url: 'http://127.0.0.1:41234/', otlpPort: 41235, logFile: '' };
  const prometheus = { pid: process.pid, port: 41236, url: 'http://127.0.0.1:41236/prometheus/', passwordFile: '/x/password', logFile: '' };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weftctl-dashboard-'));
    path = process.env.PATH;
  });
  afterEach(async () => {
    process.env.PATH = path;
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the dashboard URL, and Prometheus through it', async () => {
    await writeState(mesh({ dashboard, prometheus }));
    expect(await weftctl(['dashboard', '--state-dir', dir])).toEqual({ code: 0, out: 'http://127.0.0.1:41234/\n', err: '' });
    expect(await weftctl(['dashboard', 'weft', '--state-dir', dir])).toMatchObject({ code: 0, out: 'http://127.0.0.1:41234/\n' });
    expect(await weftctl(['dashboard', 'prometheus', '--state-dir', dir])).toMatchObject({ code: 0, out: 'http://127.0.0.1:41234/prometheus/\n' });
  });

  it('weftctl status lists the addons after the workloads', () => {
    const rows = componentStatuses(mesh({ dashboard: { ...dashboard, run: { phase: 'running', restarts: 1, since: new Date().toISOString(), failures: 0, crashLoop: false } }, prometheus }));
    expect(rows.map((r) => [r.name, r.kind, r.state, r.restarts])).toEqual([
      ['weftd', 'weftd', 'running', 0],
      ['prometheus', 'addon', 'running', 0],
      ['dashboard', 'addon', 'running', 1],
    ]);
  });

  it('says what is missing: no mesh, no dashboard, no Prometheus; refuses other targets', async () => {
    const none = await weftctl(['dashboard', '--state-dir', dir]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no local mesh is running .*weftctl up/);
    await writeState(mesh({}));
    const noDashboard = await weftctl(['dashboard', '--state-dir', dir]);
    expect(noDashboard.code).toBe(1);
    expect(noDashboard.err).toContain(`runs without the dashboard`);
    const noPrometheus = await weftctl(['dashboard', 'prometheus', '--state-dir', dir]);
    expect(noPrometheus.code).toBe(1);
    expect(noPrometheus.err).toContain('apt-get install -y prometheus');
    await writeState(mesh({ prometheus }));
    const direct = await weftctl(['dashboard', 'prometheus', '--state-dir', dir]);
    expect(direct).toMatchObject({ code: 0, out: 'http://127.0.0.1:41236/prometheus/\n' });
    expect(direct.err).toContain('/x/password');
    const bad = await weftctl(['dashboard', 'grafana', '--state-dir', dir]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/dashboard shows weft or prometheus, not "grafana"/);
  });

  it('--open hands the URL to xdg-open, and says how to get it when it is missing', async () => {
    await writeState(mesh({ dashboard }));
    const opened = join(dir, 'opened');
    await writeFile(join(dir, 'xdg-open'), `#!/bin/sh\necho "$@" > ${opened}\n`);
    await chmod(join(dir, 'xdg-open'), 0o755);
    process.env.PATH = dir;
    expect(await weftctl(['dashboard', '--open', '--state-dir', dir])).toMatchObject({ code: 0, out: 'http://127.0.0.1:41234/\n' });
    let text = '';
    for (let i = 0; i < 50 && !text; i++) {
      text = await readFile(opened, 'utf8').catch(() => '');
      if (!text) await new Promise((r) => setTimeout(r, 100));
    }
    expect(text).toBe('http://127.0.0.1:41234/\n');
    process.env.PATH = join(dir, 'nothing');
    const missing = await weftctl(['dashboard', '--open', '--state-dir', dir]);
    expect(missing).toMatchObject({ code: 0, out: 'http://127.0.0.1:41234/\n' });
    expect(missing.err).toContain('apt-get install -y xdg-utils');
  });
});
