// forwardService on a real cluster: a Service of the test's own in kube-system, selecting CoreDNS
// (the one pod every cluster has), maps its port to CoreDNS's health port 8080; a local GET goes
// through the API server's portforward subresource and gets CoreDNS's `OK`. Named target ports
// resolve through the pod's container ports; a Service without a ready pod is refused with the
// reason. The Services are removed after.
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { holdClusterLock, kubeCluster, needsKube } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../client.ts';
import { findService, forwardService, servicePodPort } from './port-forward.ts';

const skip = needsKube();
const suffix = randomBytes(3).toString('hex');
const health = `weft-test-pf-${suffix}`;
const named = `weft-test-pf-named-${suffix}`;
const nobody = `weft-test-pf-nobody-${suffix}`;

describe.skipIf(skip !== undefined)('forwardService on a real cluster', () => {
  let core: CoreV1Api;
  let kc: ReturnType<typeof loadKubeConfig>;
  let release: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    kc = loadKubeConfig(await kubeCluster());
    release = await holdClusterLock('shared');
    core = kc.makeApiClient(CoreV1Api);
    const svc = (name: string, selector: Record<string, string>, targetPort: number | string) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'kube-system', labels: { 'weft-test': 'port-forward', 'weft-test-pf': name === health ? suffix : 'other' } },
      spec: { selector, ports: [{ name: 'http', port: 18080, targetPort }] },
    });
    await core.createNamespacedService({ namespace: 'kube-system', body: svc(health, { 'k8s-app': 'kube-dns' }, 8080) });
    await core.createNamespacedService({ namespace: 'kube-system', body: svc(named, { 'k8s-app': 'kube-dns' }, 'dns-tcp') });
    await core.createNamespacedService({ namespace: 'kube-system', body: svc(nobody, { 'k8s-app': `no-such-app-${suffix}` }, 8080) });
  }, 20 * 60_000);

  afterAll(async () => {
    for (const name of [health, named, nobody]) await core?.deleteNamespacedService({ name, namespace: 'kube-system' }).catch(() => {});
    await release?.();
  });

  it('serves the Service on a local port: a GET reaches the pod behind it', async () => {
    const errors: string[] = [];
    const f = await forwardService(kc, { namespace: 'kube-system', service: health, port: 18080, onError: (m) => errors.push(m) });
    try {
      expect(f.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(f.target.port).toBe(8080);
      expect(f.target.pod).toMatch(/^coredns-/);
      // two requests, two streams: the second must not depend on the first's connection
      for (let i = 0; i < 2; i++) {
        const r = await fetch(`${f.url}/health`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(20_000) });
        expect(r.status).toBe(200);
        expect((await r.text()).trim()).toBe('OK');
      }
      expect(errors).toEqual([]);
    } finally {
      await f.close();
    }
  });

  it('maps a named target port through the pod’s container ports', async () => {
    const svc = await core.readNamespacedService({ name: named, namespace: 'kube-system' });
    expect((await servicePodPort(core, svc, 18080)).port).toBe(53);
  });

  it('finds a Service by name in its namespace, else by label in any namespace', async () => {
    expect(await findService(kc, { namespace: 'kube-system', name: health, labelSelector: 'weft-test-pf=none' })).toEqual({ namespace: 'kube-system', service: health });
    expect(await findService(kc, { namespace: 'default', name: `absent-${suffix}`, labelSelector: `weft-test-pf=${suffix}` })).toEqual({ namespace: 'kube-system', service: health });
    expect(await findService(kc, { namespace: 'default', name: `absent-${suffix}`, labelSelector: `weft-test-pf=none-${suffix}` })).toBeUndefined();
  });

  it('refuses a Service with no ready pod, or a port it does not have, saying which', async () => {
    await expect(forwardService(kc, { namespace: 'kube-system', service: nobody, port: 18080 })).rejects.toThrow(`no ready pod behind Service kube-system/${nobody} (0 pods match k8s-app=no-such-app-${suffix})`);
    await expect(forwardService(kc, { namespace: 'kube-system', service: health, port: 9999 })).rejects.toThrow(`Service kube-system/${health} has no port 9999 (it has 18080)`);
    await expect(forwardService(kc, { namespace: 'kube-system', service: `absent-${suffix}`, port: 80 })).rejects.toThrow(`Service kube-system/absent-${suffix}`);
  });
});
