// weftctl kube-inject: every workload kind gets the sidecar weftd's webhook would give its pods
// (the same injectPod), other objects pass through, and bad input is reported at its line.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultInjectionValues, injectPod, workloadOfPod } from '@weft/kube';
import { parseYamlDocuments } from '@weft/model';
import { describe, expect, it } from 'vitest';
import { runWeftctlCommand } from './testing.ts';

const dir = mkdtempSync(join(tmpdir(), 'weftctl-kube-inject-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const podSpec = `
      containers:
      - name: app
        image: app:1
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: http}}`;
const template = `
    metadata:
      labels: {app: shop}
    spec:${podSpec}`;

const workloads = `apiVersion: v1
kind: Pod
metadata: {name: shop-pod, namespace: shop, labels: {app: shop}}
spec:${podSpec.replace(/\n {6}/g, '\n  ')}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop}
spec:
  selector: {matchLabels: {app: shop}}
  template:${template}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: shop-db}
spec:
  serviceName: db
  selector: {matchLabels: {app: shop}}
  template:${template}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: shop-agent}
spec:
  selector: {matchLabels: {app: shop}}
  template:${template}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: shop-rs}
spec:
  selector: {matchLabels: {app: shop}}
  template:${template}
---
apiVersion: batch/v1
kind: Job
metadata: {name: shop-job}
spec:
  template:${template}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: shop-report}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:${template.replace(/\n/g, '\n    ')}
---
apiVersion: v1
kind: Service
metadata: {name: shop}
spec: {ports: [{port: 80, targetPort: 8080}]}
`;

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, walked by the shape each kind has
type Obj = Record<string, any>;
const podOf: Record<string, (o: Obj) => Obj> = {
  Pod: (o) => o,
  CronJob: (o) => o.spec.jobTemplate.spec.template,
};

describe('weftctl kube-inject', () => {
  it('injects the pod of every workload kind as the webhook would, and passes other objects through', async () => {
    const input = file('all.yaml', workloads);
    const r = await runWeftctlCommand(['kube-inject', '-f', input, '-n', 'shop', '--system-namespace', 'weft-system', '--proxy-image', 'weft/proxy:dev']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const inDocs = parseYamlDocuments(workloads, 'in').documents.map((d) => d.value as Obj);
    const outDocs = parseYamlDocuments(r.out, 'out').documents.map((d) => d.value as Obj);
    expect(outDocs.map((d) => d.kind)).toEqual(['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Service']);
    const values = defaultInjectionValues({ discoveryAddress: 'weftd.weft-system.svc:15012', proxyImage: 'weft/proxy:dev' });
    for (const [i, doc] of inDocs.entries()) {
      if (doc.kind === 'Service') {
        expect(outDocs[i]).toEqual(doc);
        continue;
      }
      const at = podOf[doc.kind] ?? ((o: Obj) => o.spec.template);
      const pod = at(doc);
      const workload = doc.kind === 'Pod' ? workloadOfPod(doc.metadata, 'shop') : { apiVersion: doc.apiVersion, kind: doc.kind, name: doc.metadata.name, namespace: 'shop' };
      const expected = injectPod({ metadata: { ...pod.metadata, namespace: pod.metadata.namespace ?? 'shop' }, spec: pod.spec }, values, workload);
      if (!expected.injected) throw new Error(expected.reason);
      const got = at(outDocs[i]!);
      expect(got.spec, doc.kind).toEqual(expected.pod.spec);
      expect(got.metadata.labels, doc.kind).toEqual(expected.pod.metadata.labels);
      expect(got.metadata.annotations, doc.kind).toEqual(expected.pod.metadata.annotations);
      const proxy = got.spec.containers.find((c: Obj) => c.name === 'istio-proxy');
      expect(proxy.image).toBe('weft/proxy:dev');
      expect(proxy.env.find((e: Obj) => e.name === 'ISTIO_META_OWNER').value).toBe(
        doc.kind === 'Pod' ? 'kubernetes://apis/v1/namespaces/shop/pods/shop-pod' : `kubernetes://apis/${doc.apiVersion}/namespaces/shop/${doc.kind.toLowerCase()}s/${doc.metadata.name}`,
      );
    }
    // The file's own namespaces are kept as written.
    expect(outDocs[1]!.metadata.namespace).toBeUndefined();
    expect(outDocs[0]!.metadata.namespace).toBe('shop');
  });

  it('says which workloads it leaves alone, on stderr, and prints them unchanged', async () => {
    const input = file('off.yaml', `apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {sidecar.istio.io/inject: "false"}}\nspec: {containers: [{name: a, image: a}]}\n`);
    const r = await runWeftctlCommand(['kube-inject', '-f', input]);
    expect(r.code).toBe(0);
    expect(r.err).toBe('weftctl: Pod default/p: not injected: annotation sidecar.istio.io/inject: "false"\n');
    expect(r.out).not.toContain('istio-proxy');
  });

  it('refuses annotations it cannot honour, at their line, and prints nothing', async () => {
    const input = file('bad.yaml', `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    sidecar.istio.io/proxyCPU: lots\nspec: {containers: [{name: a, image: a}]}\n`);
    const r = await runWeftctlCommand(['kube-inject', '-f', input]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(`${input}:5:3: error: metadata.annotations: Pod p: annotation sidecar.istio.io/proxyCPU: "lots" is not a Kubernetes quantity (e.g. 100m, 128Mi) [WEFT1201]\n`);
  });

  it('needs exactly one file, and says so', async () => {
    expect(await runWeftctlCommand(['kube-inject'])).toMatchObject({ code: 2, err: expect.stringContaining('kube-inject needs exactly one -f FILE') });
    expect(await runWeftctlCommand(['kube-inject', '-f', join(dir, 'missing.yaml')])).toMatchObject({ code: 1, err: expect.stringContaining('no such file') });
  });
});
