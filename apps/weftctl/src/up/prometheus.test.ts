// The Prometheus addon's files (configuration, web config, file_sd targets) from a mesh state, checked
// by Prometheus's own promtool where it is installed: the targets and labels it would scrape, as
// `promtool check service-discovery` computes them.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { compare } from 'bcryptjs';
import { needs } from '@weft/testing';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { fileSdTargets, findPrometheus, prometheusConfig, prometheusPaths, sanitizeLabelName, startPrometheus, webConfig } from './prometheus.ts';
import type { MeshState, ProxyState } from './state.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'weftctl-prometheus-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function proxy(name: string, address: string, labels: Record<string, string>, over: Partial<ProxyState> = {}): ProxyState {
  return { type: 'sidecar', name, namespace: 'default', nodeId: `sidecar~${address}~${name}.default~default.svc.cluster.local`, address, serviceAccount: 'bookinfo', labels, pid: 1, adminAddress: address, adminPort: 15000, logFile: '/dev/null', ...over };
}

const running = { phase: 'running' as const, restarts: 0, since: '2026-12-07T00:00:00Z', failures: 0, crashLoop: false };
const state: Pick<MeshState, 'proxies' | 'ingress' | 'weftd'> = {
  weftd: { pid: 2, caPort: 40001, monitoringPort: 40002, logFile: '/dev/null', run: running },
  ingress: { ...proxy('istio-ingressgateway', '127.0.65.9', { app: 'istio-ingressgateway', istio: 'ingressgateway' }), type: 'router', namespace: 'istio-system', httpPort: 8080 },
  proxies: [
    proxy('reviews-v2', '127.0.65.14', { app: 'reviews', version: 'v2', 'security.istio.io/tlsMode': 'istio' }, { run: { ...running, phase: 'waiting' } }),
    proxy('ratings-v1', '127.0.65.12', { app: 'ratings', version: 'v1' }),
    proxy('details-v1', '127.0.65.11', { app: 'details', version: 'v1' }, { run: { ...running, phase: 'stopped' } }),
  ],
};

describe('the target files', () => {
  it('list each proxy on 15020 and 15090 and weftd on its monitoring port, labelled as kubernetes-pods relabels a pod', () => {
    const t = fileSdTargets(state);
    expect(t.pods).toEqual([
      { targets: ['127.0.65.9:15020'], labels: { app: 'istio-ingressgateway', istio: 'ingressgateway', namespace: 'istio-system', pod: 'istio-ingressgateway' } },
      { targets: ['127.0.65.14:15020'], labels: { app: 'reviews', version: 'v2', security_istio_io_tlsMode: 'istio', namespace: 'default', pod: 'reviews-v2' } },
      { targets: ['127.0.65.12:15020'], labels: { app: 'ratings', version: 'v1', namespace: 'default', pod: 'ratings-v1' } },
      { targets: ['127.0.0.1:40002'], labels: { app: 'weftd', istio: 'pilot', namespace: 'istio-system', pod: 'weftd', __metrics_path__: '/metrics' } },
    ]);
    expect(t.envoy.map((g) => g.targets[0])).toEqual(['127.0.65.9:15090', '127.0.65.14:15090', '127.0.65.12:15090']);
    // A proxy waiting to restart stays (down meanwhile); one stopped for good is gone.
    expect(JSON.stringify(t)).not.toContain('details-v1');
  });

  it('names labels as Kubernetes service discovery does', () => {
    expect(sanitizeLabelName('service.istio.io/canonical-name')).toBe('service_istio_io_canonical_name');
    expect(sanitizeLabelName('app')).toBe('app');
  });
});

describe('prometheus.yml and web.yml', () => {
  const paths = prometheusPaths(dir);
  mkdirSync(paths.dir, { recursive: true });
  const password = 'correct horse battery staple';
  writeFileSync(paths.passwordFile, `${password}\n`, { mode: 0o600 });
  const t = fileSdTargets(state);
  writeFileSync(paths.podsFile, JSON.stringify(t.pods));
  writeFileSync(paths.envoyFile, JSON.stringify(t.envoy));
  writeFileSync(paths.config, prometheusConfig(paths, 39090));

  it('scrape every 2 s: itself with basic auth from the password file, the pods (all but envoy_*) and envoy-stats (only envoy_*) from the target files', () => {
    const c = parse(readFileSync(paths.config, 'utf8')) as { global: Record<string, string>; scrape_configs: Record<string, unknown>[] };
    expect(c.global).toEqual({ scrape_interval: '2s', scrape_timeout: '2s' });
    expect(c.scrape_configs.map((j) => j.job_name)).toEqual(['prometheus', 'kubernetes-pods', 'envoy-stats']);
    expect(c.scrape_configs[0]).toMatchObject({ metrics_path: '/prometheus/metrics', basic_auth: { username: 'weft', password_file: paths.passwordFile }, static_configs: [{ targets: ['127.0.0.1:39090'] }] });
    expect(c.scrape_configs[1]).toMatchObject({ file_sd_configs: [{ files: [paths.podsFile] }], metric_relabel_configs: [{ source_labels: ['__name__'], regex: 'envoy_.*', action: 'drop' }] });
    expect(c.scrape_configs[2]).toMatchObject({ file_sd_configs: [{ files: [paths.envoyFile] }], metric_relabel_configs: [{ source_labels: ['__name__'], regex: 'envoy_.*', action: 'keep' }] });
    expect(readFileSync(paths.config, 'utf8')).not.toContain(password);
  });

  it('web.yml holds only a bcrypt hash of the password, for user weft', async () => {
    const text = webConfig(await import('bcryptjs').then((b) => b.hash(password, 4)));
    const users = (parse(text) as { basic_auth_users: Record<string, string> }).basic_auth_users;
    expect(Object.keys(users)).toEqual(['weft']);
    expect(await compare(password, users.weft!)).toBe(true);
    expect(await compare('another', users.weft!)).toBe(false);
    expect(text).not.toContain(password);
    writeFileSync(paths.webConfig, text);
  });

  const promtool = needs({ tools: ['promtool'] });
  it.skipIf(promtool !== undefined)('promtool accepts both and finds the targets with their labels (check service-discovery)', async () => {
    await run('promtool', ['check', 'config', paths.config]);
    await run('promtool', ['check', 'web-config', paths.webConfig]);
    const sd = async (job: string) =>
      JSON.parse((await run('promtool', ['check', 'service-discovery', paths.config, job, '--timeout=2s'], { encoding: 'utf8' })).stdout) as { labels: Record<string, string> }[];
    const pods = await sd('kubernetes-pods');
    const reviews = pods.find((p) => p.labels.pod === 'reviews-v2')?.labels;
    expect(reviews).toMatchObject({ job: 'kubernetes-pods', instance: '127.0.65.14:15020', __metrics_path__: '/stats/prometheus', namespace: 'default', app: 'reviews', version: 'v2' });
    expect(pods.find((p) => p.labels.pod === 'weftd')?.labels).toMatchObject({ instance: '127.0.0.1:40002', __metrics_path__: '/metrics', namespace: 'istio-system', app: 'weftd' });
    const envoy = await sd('envoy-stats');
    expect(envoy.map((p) => `${p.labels.instance} ${p.labels.namespace}/${p.labels.pod}`).sort()).toEqual(['127.0.65.12:15090 default/ratings-v1', '127.0.65.14:15090 default/reviews-v2', '127.0.65.9:15090 istio-system/istio-ingressgateway']);
  });
});

describe('without prometheus on PATH', () => {
  it('findPrometheus finds an executable named prometheus on PATH, nothing else', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    expect(await findPrometheus({ PATH: bin })).toBeUndefined();
    writeFileSync(join(bin, 'prometheus'), '#!/bin/sh\n');
    expect(await findPrometheus({ PATH: bin })).toBeUndefined();
    chmodSync(join(bin, 'prometheus'), 0o755);
    expect(await findPrometheus({ PATH: `/nonexistent:${bin}` })).toBe(join(bin, 'prometheus'));
  });

  it('the addon is skipped with the install command, and nothing is started or written', async () => {
    const lines: string[] = [];
    const stateDir = join(dir, 'absent');
    const addon = await startPrometheus({
      stateDir,
      state: { pid: process.pid, startedAt: '', stateDir, configDir: '', caDir: '', proxies: [], apps: [] },
      spawn: () => {
        throw new Error('nothing may be started');
      },
      save: async () => {},
      progress: (c, text) => lines.push(`${c} ${text}`),
      env: { PATH: '/nonexistent' },
      timeoutMs: 1000,
    });
    expect(addon).toBeUndefined();
    expect(lines).toEqual(['prometheus not installed: the Prometheus addon is skipped (apt-get install -y prometheus); the mesh starts without it']);
    expect(() => statSync(join(stateDir, 'prometheus'))).toThrow();
  });
});
