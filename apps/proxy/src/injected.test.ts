// The injector (@weft/kube) writes command lines for two programs it does not own: istio-init's
// for weft-iptables and istio-proxy's for weft-proxy. Here they are read by those programs' own
// parsers, with the environment the kubelet would give the container, so that a flag renamed on
// either side fails a test rather than a pod.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultInjectionValues, injectPod, type PodParts, workloadOfPod } from '@weft/kube';
import { parseProxyFlags, runIptablesCli } from '@weft/proxy';
import { describe, expect, it } from 'vitest';

const metadata = {
  name: 'reviews-v1-7f9c',
  namespace: 'shop',
  labels: { app: 'reviews', version: 'v1' },
  annotations: { 'traffic.sidecar.istio.io/excludeOutboundPorts': '5432', 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.96.0.1/32' },
};
const spec = {
  serviceAccountName: 'bookinfo-reviews',
  containers: [{ name: 'reviews', image: 'reviews:1', ports: [{ containerPort: 9080 }], readinessProbe: { httpGet: { path: '/health', port: 9080 } } }],
};
const result = injectPod({ metadata, spec }, defaultInjectionValues({ discoveryAddress: 'weftd.weft-system.svc:15012' }), workloadOfPod(metadata, 'shop'));
if (!result.injected) throw new Error(result.reason);
const pod = result.pod;
type V1Container = NonNullable<PodParts['spec']>['containers'][number];
type V1EnvVar = NonNullable<V1Container['env']>[number];
const container = (list: V1Container[] | undefined, name: string) => list!.find((c) => c.name === name)!;

/** The container's environment as the kubelet resolves it for this pod (downward API included). */
function kubeletEnv(env: V1EnvVar[] | undefined): Record<string, string> {
  const fields: Record<string, string> = {
    'metadata.name': metadata.name,
    'metadata.namespace': metadata.namespace,
    'status.podIP': '10.244.0.17',
    'status.hostIP': '10.200.0.1',
    'spec.serviceAccountName': spec.serviceAccountName,
    'spec.nodeName': 'kube-local',
  };
  const out: Record<string, string> = {};
  for (const e of env ?? []) out[e.name] = e.value ?? fields[e.valueFrom?.fieldRef?.fieldPath ?? ''] ?? '';
  return out;
}

describe('the injected pod’s command lines, read by the programs they start', () => {
  it('istio-proxy: weft-proxy in capture mode as this pod’s workload, xDS over TLS to weftd with the projected token', () => {
    const proxy = container(pod.spec.containers, 'istio-proxy');
    expect(proxy.command).toEqual(['weft-proxy']);
    // The downward-API files the kubelet would mount at /etc/istio/pod.
    const dir = mkdtempSync(join(tmpdir(), 'weft-injected-'));
    const labelsFile = join(dir, 'labels');
    writeFileSync(labelsFile, Object.entries(pod.metadata.labels ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join('\n'));
    const args = proxy.args!.map((a) => (a === '/etc/istio/pod/labels' ? labelsFile : a));
    const o = parseProxyFlags(args, kubeletEnv(proxy.env), 'sidecar');
    if (o === 'help') throw new Error('help');
    expect(o.mode).toBe('capture');
    expect(o.xdsTls).toBe(true);
    expect(o.xdsAddress).toBe('weftd.weft-system.svc:15012');
    expect(o.ca).toMatchObject({
      address: 'weftd.weft-system.svc:15012',
      serverName: 'istiod.istio-system.svc',
      rootCertFile: '/var/run/secrets/istio/root-cert.pem',
      tokenFile: '/var/run/secrets/tokens/istio-token',
      trustDomain: 'cluster.local',
    });
    expect(o.node).toMatchObject({ type: 'sidecar', ip: '10.244.0.17', pod: 'reviews-v1-7f9c', namespace: 'shop', serviceAccount: 'bookinfo-reviews', workloadName: 'reviews-v1-7f9c', clusterId: 'Kubernetes' });
    expect(o.node.labels).toMatchObject({ app: 'reviews', version: 'v1', 'security.istio.io/tlsMode': 'istio' });
    expect(o.node.metadata).toMatchObject({ INTERCEPTION_MODE: 'REDIRECT', APP_CONTAINERS: 'reviews', NODE_NAME: 'kube-local', OWNER: 'kubernetes://apis/v1/namespaces/shop/pods/reviews-v1-7f9c' });
    expect([...(o.appProbers?.keys() ?? [])]).toEqual(['/app-health/reviews/readyz']);
    // The defaults the template relies on: Istio's ports.
    expect([o.outboundPort ?? 15001, o.inboundPort ?? 15006, o.healthPort ?? 15021, o.statsPort, o.statusPort]).toEqual([15001, 15006, 15021, 15090, 15020]);
  });

  it('istio-init: weft-iptables accepts istio-iptables’ arguments and would capture as the template says', async () => {
    const init = container(pod.spec.initContainers, 'istio-init');
    expect(init.command).toEqual(['weft-iptables']);
    let out = '';
    let err = '';
    const code = await runIptablesCli(['--dry-run', ...init.args!], { stdout: (t) => (out += t), stderr: (t) => (err += t), env: {}, localAddresses: ['10.244.0.17'], resolvConf: 'nameserver 10.96.0.10\n', passwd: '' });
    expect(err).not.toMatch(/unknown flag|needs a value|not supported/);
    expect(code).toBe(0);
    expect(out).toContain('-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN');
    expect(out).toContain('--dport 15020 -j RETURN');
    expect(out).toMatch(/ISTIO_OUTPUT .*--dport 5432 -j RETURN|--dport 5432 -j RETURN/);
    expect(out).toContain('10.96.0.1/32 -j RETURN');
    expect(out).toContain('--uid-owner 1337');
    expect(out).toContain('-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001');
    expect(out).toContain('-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006');
  });
});
