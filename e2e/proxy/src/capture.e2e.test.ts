// Capture mode for real: pods as network namespaces, weft-iptables with the arguments Istio's
// injector gives istio-init, weft-proxy --mode capture as UID 1337 in each pod, weftd in a pod of
// its own. The app in pod a calls http://b:8000/ by name with no proxy settings; the request goes
// through a's sidecar (virtualOutbound -> 0.0.0.0_8000 by the original destination) and b's
// (virtualInbound, chain of port 8000) to the app. Skips with a message when not root.
import type { ChildProcess } from 'node:child_process';
import { createNetnsLab, type NetnsLab, type NetnsPod, netnsSkipReason } from '@weft/proxy/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, serviceEntry, workloadEntry } from './config.ts';
import { iptablesBin, istioInitArgs, plainEnv, waitForLog } from './capture-support.ts';
import { bins } from './mesh.ts';

const skipReason = netnsSkipReason();

describe.skipIf(skipReason !== undefined)('weft-proxy in capture mode between network-namespace pods', () => {
  let lab: NetnsLab | undefined;

  beforeAll(async () => {
    lab = await createNetnsLab(['a', 'b', 'istiod']);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('carries a plain curl from pod a to pod b through both sidecars', async () => {
    const [a, b, istiod] = [lab!.pod('a'), lab!.pod('b'), lab!.pod('istiod')];
    const { mkdtemp, rm, writeFile, chmod } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(`${tmpdir()}/weft-capture-`);
    try {
      await chmod(dir, 0o755);
      await writeFile(
        `${dir}/mesh.yaml`,
        join(
          serviceEntry('b', 'b', 8000),
          workloadEntry({ name: 'b', app: 'b', version: 'v1', address: b.address, port: 8000 }),
          workloadEntry({ name: 'a', app: 'a', version: 'v1', address: a.address, port: 8000 }),
        ),
      );
      const weftd = lab!.spawn(istiod, [process.execPath, bins.weftd, '--config-dir', dir, '--listen-address', istiod.address, '--no-ca', '--monitoring-port', '0']);
      await waitForLog(weftd, 'weftd ready', (l) => l.msg === 'weftd ready');
      for (const pod of [a, b]) {
        const r = await lab!.run(pod, [process.execPath, iptablesBin, ...istioInitArgs], { timeoutMs: 15_000 });
        expect(r.code, r.stderr).toBe(0);
      }
      const app = lab!.spawn(b, [process.execPath, bins.backend, '--name', 'b', '--address', '0.0.0.0', '--port', '8000']);
      const sidecar = (pod: NetnsPod): ChildProcess =>
        lab!.spawn(pod, [process.execPath, bins.proxy, '--mode', 'capture', '--xds-address', `${istiod.address}:15010`, '--ip', pod.address, '--pod', `${pod.name}-1`, '--namespace', 'default', '--labels', `app=${pod.name}`], { uid: 1337, gid: 1337 });
      const [sa, sb] = [sidecar(a), sidecar(b)];
      await Promise.all([
        waitForLog(app, 'backend listening', (l) => l.msg === 'listening'),
        waitForLog(sa, 'sidecar a ready', (l) => l.msg === 'proxy ready'),
        waitForLog(sb, 'sidecar b ready', (l) => l.msg === 'proxy ready'),
      ]);

      const curl = await lab!.run(a, ['curl', '-sS', '--max-time', '10', '-H', 'end-user: jason', 'http://b:8000/hello'], { env: plainEnv(), timeoutMs: 15_000 });
      expect(curl.code, curl.stderr).toBe(0);
      const seen = JSON.parse(curl.stdout) as { name: string; path: string; authority: string; headers: Record<string, string>; peer: string };
      expect(seen).toMatchObject({ name: 'b', path: '/hello', authority: 'b:8000' });
      expect(seen.headers['end-user']).toBe('jason');
      // a's sidecar routed it (request id, forwarded proto); b's sidecar delivered it over loopback.
      expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(seen.peer).toMatch(/^127\.0\.0\.1:/);

      const stats = async (pod: NetnsPod) => (await lab!.run(pod, ['curl', '-sS', 'http://127.0.0.1:15000/stats'], { env: plainEnv() })).stdout;
      // Outbound: virtualOutbound handed the connection to 0.0.0.0_8000 by its original destination.
      expect(await stats(a)).toMatch(/listener\.0\.0\.0\.0_8000\.http\.downstream_rq_total: 1\n/);
      expect(await stats(a)).toMatch(/cluster\.outbound\|8000\|\|b\.default\.svc\.cluster\.local\.upstream_rq_200: 1\n/);
      // Inbound: virtualInbound picked port 8000's chain and sent it to inbound|8000||.
      expect(await stats(b)).toMatch(/listener\.virtualInbound\.http\.downstream_rq_total: 1\n/);
      expect(await stats(b)).toMatch(/cluster\.inbound\|8000\|\|\.upstream_rq_200: 1\n/);

      // A port no service declares passes through (PassthroughCluster, then b's inbound passthrough).
      const other = lab!.spawn(b, [process.execPath, bins.backend, '--name', 'other', '--address', '0.0.0.0', '--port', '9999']);
      await waitForLog(other, 'other listening', (l) => l.msg === 'listening');
      const pass = await lab!.run(a, ['curl', '-sS', '--max-time', '10', `http://${b.address}:9999/x`], { env: plainEnv(), timeoutMs: 15_000 });
      expect(pass.code, pass.stderr).toBe(0);
      expect(JSON.parse(pass.stdout)).toMatchObject({ name: 'other', path: '/x' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
