// The sidecar template, unit by unit: the expectations are written out field by field here (what a
// reviewer who knows Istio's injected pods should recognise), not copied from Istio's golden files.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { injectPod } from './inject.ts';
import { applyPodPatch, podPatch } from './patch.ts';
import { InjectionError } from './template.ts';
import { defaultInjectionValues } from './values.ts';
import { workloadOfPod } from './workload.ts';

const values = defaultInjectionValues({ proxyImage: 'weft/proxy:test', discoveryAddress: 'weftd.weft-system.svc:15012' });

function pod(extra: Partial<V1Pod> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'reviews-v1', namespace: 'shop', labels: { app: 'reviews', version: 'v1' } },
    spec: {
      containers: [
        {
          name: 'reviews',
          image: 'bookinfo/reviews:1',
          ports: [{ name: 'http', containerPort: 9080 }],
          readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 5 },
          livenessProbe: { tcpSocket: { port: 9080 } },
        },
      ],
    },
    ...extra,
  };
}

function inject(p: V1Pod) {
  const r = injectPod(p, values, workloadOfPod(p.metadata, p.metadata?.namespace ?? 'default'));
  if (!r.injected) throw new Error(`not injected: ${r.reason}`);
  return r.pod;
}

const byName = (cs: V1Container[] | undefined, name: string) => cs?.find((c) => c.name === name);
const env = (c: V1Container | undefined) => Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

describe('the injected pod', () => {
  const out = inject(pod());
  const init = byName(out.spec.initContainers, 'istio-init')!;
  const proxy = byName(out.spec.containers, 'istio-proxy')!;

  it('runs weft-iptables as istio-init with istio-iptables’ arguments, as root with NET_ADMIN and NET_RAW only', () => {
    expect(init.image).toBe('weft/proxy:test');
    expect(init.command).toEqual(['weft-iptables']);
    expect(init.args).toEqual(['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020']);
    expect(init.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    });
  });

  it('runs weft-proxy as istio-proxy in capture mode, UID/GID 1337, xDS over TLS to weftd with the projected token', () => {
    expect(proxy.image).toBe('weft/proxy:test');
    expect(proxy.command).toEqual(['weft-proxy']);
    expect(proxy.args).toEqual([
      '--mode',
      'capture',
      '--xds-tls',
      '--ca-address',
      'weftd.weft-system.svc:15012',
      '--ca-server-name',
      'istiod.istio-system.svc',
      '--ca-root-cert',
      '/var/run/secrets/istio/root-cert.pem',
      '--ca-token-file',
      '/var/run/secrets/tokens/istio-token',
      '--trust-domain',
      'cluster.local',
      '--domain-suffix',
      'cluster.local',
      '--labels-file',
      '/etc/istio/pod/labels',
      '--log-level',
      'info',
    ]);
    expect(proxy.securityContext).toMatchObject({ runAsUser: 1337, runAsGroup: 1337, runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(proxy.ports).toEqual([{ containerPort: 15090, protocol: 'TCP', name: 'http-envoy-prom' }]);
    expect(proxy.readinessProbe).toEqual({ httpGet: { path: '/healthz/ready', port: 15021 }, initialDelaySeconds: 0, periodSeconds: 15, timeoutSeconds: 3, failureThreshold: 4 });
    expect(proxy.startupProbe).toEqual({ httpGet: { path: '/healthz/ready', port: 15021 }, initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 600 });
    expect(proxy.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2000m', memory: '1024Mi' } });
    expect(proxy.volumeMounts).toEqual([
      { name: 'istiod-ca-cert', mountPath: '/var/run/secrets/istio' },
      { name: 'istio-token', mountPath: '/var/run/secrets/tokens' },
      { name: 'istio-podinfo', mountPath: '/etc/istio/pod' },
    ]);
  });

  it('gives the proxy the downward-API environment Istio’s template sets', () => {
    const e = env(proxy);
    expect(e.POD_NAME).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(e.POD_NAMESPACE).toEqual({ fieldRef: { fieldPath: 'metadata.namespace' } });
    expect(e.INSTANCE_IP).toEqual({ fieldRef: { fieldPath: 'status.podIP' } });
    expect(e.SERVICE_ACCOUNT).toEqual({ fieldRef: { fieldPath: 'spec.serviceAccountName' } });
    expect(e.ISTIO_META_NODE_NAME).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
    expect(e.CA_ADDR).toBe('weftd.weft-system.svc:15012');
    expect(e.ISTIO_META_POD_PORTS).toBe('[{"name":"http","containerPort":9080,"protocol":"TCP"}]');
    expect(e.ISTIO_META_APP_CONTAINERS).toBe('reviews');
    expect(e.ISTIO_META_CLUSTER_ID).toBe('Kubernetes');
    expect(e.ISTIO_META_INTERCEPTION_MODE).toBe('REDIRECT');
    expect(e.ISTIO_META_WORKLOAD_NAME).toBe('reviews-v1');
    expect(e.ISTIO_META_OWNER).toBe('kubernetes://apis/v1/namespaces/shop/pods/reviews-v1');
    expect(e.ISTIO_META_MESH_ID).toBe('cluster.local');
    expect(e.TRUST_DOMAIN).toBe('cluster.local');
  });

  it('mounts a projected token for audience istio-ca and the istio-ca-root-cert ConfigMap', () => {
    expect(out.spec.volumes).toEqual([
      {
        name: 'istio-podinfo',
        downwardAPI: {
          items: [
            { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
            { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
          ],
        },
      },
      { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { path: 'istio-token', expirationSeconds: 43200, audience: 'istio-ca' } }] } },
      { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
    ]);
  });

  it('rewrites the application’s HTTP and TCP probes to 15020 /app-health and gives the originals to the proxy', () => {
    const app = byName(out.spec.containers, 'reviews')!;
    expect(app.readinessProbe).toEqual({ periodSeconds: 5, httpGet: { path: '/app-health/reviews/readyz', port: 15020, scheme: 'HTTP' } });
    expect(app.livenessProbe).toEqual({ httpGet: { path: '/app-health/reviews/livez', port: 15020, scheme: 'HTTP' } });
    expect(JSON.parse(env(proxy).ISTIO_KUBE_APP_PROBERS as string)).toEqual({
      '/app-health/reviews/readyz': { httpGet: { path: '/ready', port: 9080, scheme: 'HTTP' }, timeoutSeconds: 1 },
      '/app-health/reviews/livez': { tcpSocket: { port: 9080 }, timeoutSeconds: 1 },
    });
  });

  it('labels and annotates the pod as Istio does, and keeps the proxy last', () => {
    expect(out.metadata.labels).toEqual({
      app: 'reviews',
      version: 'v1',
      'security.istio.io/tlsMode': 'istio',
      'service.istio.io/canonical-name': 'reviews',
      'service.istio.io/canonical-revision': 'v1',
    });
    expect(out.metadata.annotations).toEqual({
      'istio.io/rev': 'default',
      'kubectl.kubernetes.io/default-logs-container': 'reviews',
      'kubectl.kubernetes.io/default-container': 'reviews',
      'prometheus.io/port': '15020',
      'prometheus.io/path': '/stats/prometheus',
      'prometheus.io/scrape': 'true',
      'sidecar.istio.io/status': '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-podinfo","istio-token","istiod-ca-cert"],"imagePullSecrets":null,"revision":"default"}',
    });
    expect(out.spec.containers.map((c) => c.name)).toEqual(['reviews', 'istio-proxy']);
  });

  it('leaves the input pod as it was', () => {
    const p = pod();
    const copy = structuredClone(p);
    inject(p);
    expect(p).toEqual(copy);
  });

  it('is described by a JSON patch that turns the original into it', () => {
    const p = pod();
    const ops = podPatch(p, inject(p));
    expect(ops.map((o) => o.path).sort()).toEqual(['/metadata/annotations', '/metadata/labels', '/spec/containers', '/spec/initContainers', '/spec/volumes']);
    expect(applyPodPatch(p, ops)).toEqual({ ...p, ...inject(p) });
  });
});

describe('annotations Istio users set', () => {
  const withAnnotations = (a: Record<string, string>) => pod({ metadata: { ...pod().metadata, annotations: a } });

  it('resources, capture ranges and ports, log level', () => {
    const out = inject(
      withAnnotations({
        'sidecar.istio.io/proxyCPU': '50m',
        'sidecar.istio.io/proxyMemory': '64Mi',
        'sidecar.istio.io/proxyCPULimit': '1',
        'sidecar.istio.io/proxyMemoryLimit': '256Mi',
        'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.96.0.0/12,10.244.0.0/16',
        'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.96.0.1/32',
        'traffic.sidecar.istio.io/includeInboundPorts': '9080',
        'traffic.sidecar.istio.io/excludeInboundPorts': '8081,15020',
        'traffic.sidecar.istio.io/excludeOutboundPorts': '5432',
        'sidecar.istio.io/logLevel': 'warning',
      }),
    );
    const init = byName(out.spec.initContainers, 'istio-init')!;
    const proxy = byName(out.spec.containers, 'istio-proxy')!;
    expect(proxy.resources).toEqual({ requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } });
    expect(init.resources).toEqual(proxy.resources);
    expect(init.args).toEqual(['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '10.96.0.0/12,10.244.0.0/16', '-x', '10.96.0.1/32', '-b', '9080', '-d', '15090,15021,15020,8081', '-o', '5432']);
    expect(proxy.args?.slice(-2)).toEqual(['--log-level', 'warn']);
  });

  it('holdApplicationUntilProxyStarts puts the proxy first and makes the kubelet wait for it', () => {
    const out = inject(withAnnotations({ 'proxy.istio.io/config': '{ "holdApplicationUntilProxyStarts": true }' }));
    expect(out.spec.containers.map((c) => c.name)).toEqual(['istio-proxy', 'reviews']);
    expect(out.spec.containers[0]!.lifecycle).toEqual({ postStart: { exec: { command: ['weft-proxy', 'wait'] } } });
  });

  it('stops as Istio’s classic sidecar does: no preStop hook (the proxy drains on SIGTERM), the pod’s grace period untouched', () => {
    const out = inject(pod());
    const proxy = byName(out.spec.containers, 'istio-proxy')!;
    expect(proxy.lifecycle).toBeUndefined();
    expect(out.spec.terminationGracePeriodSeconds).toBeUndefined();
    expect(proxy.args).not.toContain('--drain-ms');
    const kept = inject(pod({ spec: { ...pod().spec!, terminationGracePeriodSeconds: 45 } }));
    expect(kept.spec.terminationGracePeriodSeconds).toBe(45);
  });

  it('sidecar.istio.io/nativeSidecar "true": istio-proxy is a native sidecar (init container that keeps running) whose preStop hook starts the drain', () => {
    const out = inject(withAnnotations({ 'sidecar.istio.io/nativeSidecar': 'true', 'proxy.istio.io/config': '{ "holdApplicationUntilProxyStarts": true }' }));
    expect(out.spec.initContainers?.map((c) => c.name)).toEqual(['istio-init', 'istio-proxy']);
    expect(out.spec.containers.map((c) => c.name)).toEqual(['reviews']);
    const proxy = byName(out.spec.initContainers, 'istio-proxy')!;
    expect(proxy.restartPolicy).toBe('Always');
    // Istio's: the kubelet starts the application once the startup probe passes, so no postStart wait
    expect(proxy.lifecycle).toEqual({ preStop: { exec: { command: ['weft-proxy', 'drain'] } } });
    expect(proxy.startupProbe?.periodSeconds).toBe(1);
    expect(JSON.parse(out.metadata.annotations?.['sidecar.istio.io/status'] ?? '{}')).toMatchObject({ initContainers: ['istio-init', 'istio-proxy'], containers: null });
    // the application's probes still go to the proxy's status port
    expect(byName(out.spec.containers, 'reviews')!.readinessProbe).toEqual({ periodSeconds: 5, httpGet: { path: '/app-health/reviews/readyz', port: 15020, scheme: 'HTTP' } });
    expect(injectPod(out, values, workloadOfPod(out.metadata, 'shop'))).toMatchObject({ injected: false });
    // the value turns it on for every pod; the annotation "false" turns it off again
    const everywhere = defaultInjectionValues({ ...values, nativeSidecars: true });
    const on = injectPod(pod(), everywhere, workloadOfPod(pod().metadata, 'shop'));
    expect(on.injected && on.pod.spec.initContainers?.map((c) => c.name)).toEqual(['istio-init', 'istio-proxy']);
    const off = injectPod(withAnnotations({ 'sidecar.istio.io/nativeSidecar': 'false' }), everywhere, workloadOfPod(pod().metadata, 'shop'));
    expect(off.injected && off.pod.spec.containers.map((c) => c.name)).toEqual(['reviews', 'istio-proxy']);
  });

  it('proxy.istio.io/config: terminationDrainDuration is the proxy’s drain, discoveryAddress its xDS server, proxyMetadata its environment', () => {
    const out = inject(
      withAnnotations({
        'proxy.istio.io/config': 'terminationDrainDuration: 12s\ndiscoveryAddress: weftd-canary.weft-system.svc:15012\nproxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"\n  MINIMUM_DRAIN_DURATION: 3s\n',
      }),
    );
    const proxy = byName(out.spec.containers, 'istio-proxy')!;
    expect(proxy.args?.slice(-4)).toEqual(['--xds-address', 'weftd-canary.weft-system.svc:15012', '--drain-ms', '12000']);
    // The certificate still comes from the CA named by the values.
    expect(proxy.args?.[proxy.args.indexOf('--ca-address') + 1]).toBe('weftd.weft-system.svc:15012');
    expect(env(proxy)).toMatchObject({ EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true', MINIMUM_DRAIN_DURATION: '3s' });
    expect(() => inject(withAnnotations({ 'proxy.istio.io/config': '{"terminationDrainDuration": "soon", "discoveryAddress": "nowhere", "proxyMetadata": {"A": 1}}' }))).toThrow(
      /terminationDrainDuration "soon" is not a duration \(e\.g\. 5s\); annotation proxy\.istio\.io\/config: discoveryAddress "nowhere" is not host:port; annotation proxy\.istio\.io\/config: proxyMetadata A: 1 is not a string/,
    );
  });

  it('readiness.status.sidecar.istio.io annotations set the proxy’s readiness probe', () => {
    const out = inject(withAnnotations({ 'readiness.status.sidecar.istio.io/initialDelaySeconds': '1', 'readiness.status.sidecar.istio.io/periodSeconds': '2', 'readiness.status.sidecar.istio.io/failureThreshold': '30' }));
    expect(byName(out.spec.containers, 'istio-proxy')!.readinessProbe).toMatchObject({ initialDelaySeconds: 1, periodSeconds: 2, failureThreshold: 30 });
    expect(() => inject(withAnnotations({ 'readiness.status.sidecar.istio.io/periodSeconds': '0' }))).toThrow(/readiness\.status\.sidecar\.istio\.io\/periodSeconds: "0" is not a whole number of at least 1/);
  });

  it('rewriteAppHTTPProbers "false" keeps the probes', () => {
    const out = inject(withAnnotations({ 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' }));
    expect(byName(out.spec.containers, 'reviews')!.readinessProbe).toEqual(pod().spec!.containers[0]!.readinessProbe);
    expect(env(byName(out.spec.containers, 'istio-proxy')).ISTIO_KUBE_APP_PROBERS).toBeUndefined();
  });

  it('prometheus.io annotations move to the proxy, which merges the application’s metrics on 15020', () => {
    const out = inject(withAnnotations({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102', 'prometheus.io/path': '/metrics' }));
    expect(env(byName(out.spec.containers, 'istio-proxy')).ISTIO_PROMETHEUS_ANNOTATIONS).toBe('{"scrape":"true","path":"/metrics","port":"9102"}');
    expect(out.metadata.annotations).toMatchObject({ 'prometheus.io/port': '15020', 'prometheus.io/path': '/stats/prometheus', 'prometheus.io/scrape': 'true' });
  });

  it('an image annotation replaces the proxy image', () => {
    const out = inject(withAnnotations({ 'sidecar.istio.io/proxyImage': 'registry.example/weft/proxy:dev' }));
    expect(byName(out.spec.containers, 'istio-proxy')!.image).toBe('registry.example/weft/proxy:dev');
  });

  it('refuses values it cannot honour, naming every bad annotation', () => {
    const bad = withAnnotations({
      'sidecar.istio.io/proxyCPU': 'lots',
      'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/33',
      'traffic.sidecar.istio.io/excludeInboundPorts': '70000',
      'sidecar.istio.io/interceptionMode': 'TPROXY',
    });
    let err: unknown;
    try {
      inject(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InjectionError);
    expect((err as InjectionError).problems).toEqual([
      'annotation sidecar.istio.io/proxyCPU: "lots" is not a Kubernetes quantity (e.g. 100m, 128Mi)',
      'annotation sidecar.istio.io/interceptionMode: "TPROXY": Weft\'s sidecars capture with REDIRECT only',
      'annotation traffic.sidecar.istio.io/includeOutboundIPRanges: "10.0.0.0/33" is not a CIDR (e.g. 10.96.0.0/12)',
      'annotation traffic.sidecar.istio.io/excludeInboundPorts: "70000" is not a port number (1-65535)',
    ]);
  });
});

describe('which pods get a sidecar', () => {
  const decide = (p: V1Pod) => injectPod(p, values, workloadOfPod(p.metadata, 'shop'));

  it('not with sidecar.istio.io/inject "false" (label or annotation; the label wins)', () => {
    expect(decide(pod({ metadata: { name: 'a', labels: { 'sidecar.istio.io/inject': 'false' } } }))).toEqual({ injected: false, reason: 'label sidecar.istio.io/inject: "false"' });
    expect(decide(pod({ metadata: { name: 'a', annotations: { 'sidecar.istio.io/inject': 'false' } } })).injected).toBe(false);
    expect(decide(pod({ metadata: { name: 'a', labels: { 'sidecar.istio.io/inject': 'true' }, annotations: { 'sidecar.istio.io/inject': 'false' } } })).injected).toBe(true);
  });

  it('not host-network pods, system namespaces or pods already injected', () => {
    expect(decide(pod({ spec: { ...pod().spec!, hostNetwork: true } })).injected).toBe(false);
    expect(decide(pod({ metadata: { name: 'a', namespace: 'kube-system' } })).injected).toBe(false);
    const once = inject(pod());
    expect(decide({ ...pod(), ...once })).toMatchObject({ injected: false, reason: expect.stringContaining('already injected') });
  });
});

describe('the workload of a pod', () => {
  it('a ReplicaSet named after its pod-template-hash is its Deployment; a Job with a timestamp suffix is its CronJob', () => {
    const owned = (kind: string, name: string, labels: Record<string, string> = {}) =>
      workloadOfPod({ name: 'x-1', generateName: 'x-', labels, ownerReferences: [{ apiVersion: kind === 'Job' ? 'batch/v1' : 'apps/v1', kind, name, uid: 'u', controller: true }] }, 'ns');
    expect(owned('ReplicaSet', 'reviews-v1-5d9f7c', { 'pod-template-hash': '5d9f7c' })).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'reviews-v1', namespace: 'ns' });
    expect(owned('Job', 'report-28901440')).toEqual({ apiVersion: 'batch/v1', kind: 'CronJob', name: 'report', namespace: 'ns' });
    expect(owned('StatefulSet', 'db')).toEqual({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', namespace: 'ns' });
  });
});
