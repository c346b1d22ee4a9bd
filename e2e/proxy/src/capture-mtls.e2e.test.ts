// Mutual TLS in capture mode: pods as network namespaces (as capture.e2e.test.ts), weftd with its
// CA in a pod of its own, each sidecar (UID 1337, iptables from weft-iptables) with an identity
// from it. Pod b's workload is STRICT: the app in pod a reaches it by name through both sidecars
// over mTLS (auto mTLS, no DestinationRule) and b's app sees a's SPIFFE ID in
// x-forwarded-client-cert; a client without a sidecar is refused on b's captured port.
// Skips with a message when not root.
import type { ChildProcess } from 'node:child_process';
import { createNetnsLab, type NetnsLab, type NetnsPod, netnsSkipReason } from '@weft/proxy/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, serviceEntry } from './config.ts';
import { iptablesBin, istioInitArgs, plainEnv, waitForLog } from './capture-support.ts';
import { bins } from './mesh.ts';

const skipReason = netnsSkipReason();

describe.skipIf(skipReason !== undefined)('mTLS between capture-mode sidecars', () => {
  let lab: NetnsLab | undefined;

  beforeAll(async () => {
    lab = await createNetnsLab(['ma', 'mb', 'mistiod']);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('carries a request from pod a to STRICT pod b over mTLS and refuses a client without a sidecar', async () => {
    const [a, b, istiod] = [lab!.pod('ma'), lab!.pod('mb'), lab!.pod('mistiod')];
    const { mkdtemp, mkdir, rm, writeFile, chmod, readFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { CertificateAuthority } = await import('@weft/citadel');
    const dir = await mkdtemp(`${tmpdir()}/weft-capture-mtls-`);
    try {
      await chmod(dir, 0o755);
      const caDir = `${dir}/ca`;
      await mkdir(caDir, { mode: 0o755 });
      const we = (name: string, address: string) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: default}
spec:
  address: ${address}
  serviceAccount: ${name}-sa
  labels: {app: ${name}}
  ports: {http: 8000}
`;
      await writeFile(
        `${dir}/mesh.yaml`,
        join(
          serviceEntry('mb', 'mb', 8000),
          we('mb', b.address),
          we('ma', a.address),
          'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: mb, namespace: default}\nspec:\n  selector: {matchLabels: {app: mb}}\n  mtls: {mode: STRICT}\n',
        ),
      );
      const weftd = lab!.spawn(istiod, [process.execPath, bins.weftd, '--config-dir', dir, '--listen-address', istiod.address, '--ca-dir', caDir, '--monitoring-port', '0']);
      await waitForLog(weftd, 'weftd ready', (l) => l.msg === 'weftd ready');
      const ca = await CertificateAuthority.open(caDir);
      for (const pod of [a, b]) {
        await writeFile(`${dir}/${pod.name}.token`, ca.issueBootstrapToken('default', `${pod.name}-sa`), { mode: 0o644 });
        const r = await lab!.run(pod, [process.execPath, iptablesBin, ...istioInitArgs], { timeoutMs: 15_000 });
        expect(r.code, r.stderr).toBe(0);
      }
      const app = lab!.spawn(b, [process.execPath, bins.backend, '--name', 'mb', '--address', '0.0.0.0', '--port', '8000']);
      const sidecar = (pod: NetnsPod): ChildProcess =>
        lab!.spawn(
          pod,
          [
            process.execPath,
            bins.proxy,
            '--mode',
            'capture',
            '--xds-address',
            `${istiod.address}:15010`,
            '--ip',
            pod.address,
            '--pod',
            `${pod.name}-1`,
            '--namespace',
            'default',
            '--labels',
            `app=${pod.name}`,
            '--service-account',
            `${pod.name}-sa`,
            '--ca-address',
            `${istiod.address}:15012`,
            // The CA's serving certificate names istiod, not the pod's address.
            '--ca-server-name',
            'istiod.istio-system.svc',
            '--ca-root-cert',
            `${caDir}/root-cert.pem`,
            '--ca-token-file',
            `${dir}/${pod.name}.token`,
          ],
          { uid: 1337, gid: 1337 },
        );
      const [sa, sb] = [sidecar(a), sidecar(b)];
      await Promise.all([
        waitForLog(app, 'backend listening', (l) => l.msg === 'listening'),
        waitForLog(sa, 'sidecar a ready', (l) => l.msg === 'proxy ready'),
        waitForLog(sb, 'sidecar b ready', (l) => l.msg === 'proxy ready'),
      ]);

      const curl = await lab!.run(a, ['curl', '-sS', '--max-time', '10', 'http://mb:8000/hello'], { env: plainEnv(), timeoutMs: 15_000 });
      expect(curl.code, curl.stderr).toBe(0);
      const seen = JSON.parse(curl.stdout) as { name: string; headers: Record<string, string> };
      expect(seen.name).toBe('mb');
      expect(seen.headers['x-forwarded-client-cert']).toMatch(
        /^By=spiffe:\/\/cluster\.local\/ns\/default\/sa\/mb-sa;Hash=[0-9a-f]{64};Subject="";URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/ma-sa$/,
      );
      const stats = async (pod: NetnsPod) => (await lab!.run(pod, ['curl', '-sS', 'http://127.0.0.1:15000/stats'], { env: plainEnv() })).stdout;
      expect(await stats(a)).toMatch(/cluster\.outbound\|8000\|\|mb\.default\.svc\.cluster\.local\.ssl\.handshake: [1-9]/);

      // The istiod pod has no sidecar: its plaintext request to b's port is refused by b's STRICT inbound.
      const plain = await lab!.run(istiod, ['curl', '-sS', '--max-time', '5', `http://${b.address}:8000/`], { env: plainEnv(), timeoutMs: 15_000 });
      expect(plain.code).not.toBe(0);
      expect(plain.stdout).toBe('');
      // The root is the one weftd keeps in its CA directory.
      expect(await readFile(`${caDir}/root-cert.pem`, 'utf8')).toContain('BEGIN CERTIFICATE');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
