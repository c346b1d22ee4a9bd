// The platform manifests (../../platform) describe these services: the Kubernetes Deployments and
// the local-mode WorkloadEntries name the same instances (app, version, service account, port),
// and each local instance's command is a `bookinfo` command line that starts that service.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { parseCommand } from './main.ts';

interface Resource {
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

async function resources(file: string): Promise<Resource[]> {
  const text = await readFile(new URL(`../../platform/${file}`, import.meta.url), 'utf8');
  return text
    .split(/^---$/m)
    .map((doc) => load(doc) as Resource | undefined)
    .filter((r): r is Resource => !!r);
}

interface Instance {
  name: string;
  app: string;
  version: string;
  serviceAccount: string;
}

interface Container {
  args?: string[];
  env?: { name: string; value: string }[];
  ports?: { containerPort: number }[];
}

describe('platform manifests', () => {
  it('kube and local run the same instances of the same services on port 9080', async () => {
    const kube = await resources('kube/bookinfo.yaml');
    const local = await resources('local/bookinfo.yaml');
    const kubeInstances: Instance[] = kube
      .filter((r) => r.kind === 'Deployment')
      .map((d) => {
        const tpl = (d.spec.template as { metadata: { labels: Record<string, string> }; spec: { serviceAccountName: string } }).metadata.labels;
        const sa = (d.spec.template as { spec: { serviceAccountName: string } }).spec.serviceAccountName;
        return { name: d.metadata.name, app: tpl.app!, version: tpl.version!, serviceAccount: sa };
      });
    const localInstances: Instance[] = local
      .filter((r) => r.kind === 'WorkloadEntry')
      .map((w) => {
        const spec = w.spec as { labels: Record<string, string>; serviceAccount: string };
        return { name: w.metadata.name, app: spec.labels.app!, version: spec.labels.version!, serviceAccount: spec.serviceAccount };
      });
    const byName = (a: Instance, b: Instance) => a.name.localeCompare(b.name);
    expect(localInstances.sort(byName)).toEqual(kubeInstances.sort(byName));
    expect(kubeInstances.map((i) => i.name).sort()).toEqual(['details-v1', 'productpage-v1', 'ratings-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3']);

    const kubeServices = kube.filter((r) => r.kind === 'Service').map((s) => [s.metadata.name, (s.spec.ports as { port: number; name: string }[]).map((p) => `${p.name}:${p.port}`)]);
    const localServices = local
      .filter((r) => r.kind === 'ServiceEntry')
      .map((s) => [(s.spec.hosts as string[])[0]!.split('.')[0], (s.spec.ports as { number: number; name: string }[]).map((p) => `${p.name}:${p.number}`)]);
    expect(new Map(localServices as [string, string[]][])).toEqual(new Map(kubeServices as [string, string[]][]));
    expect(new Set(kube.filter((r) => r.kind === 'ServiceAccount').map((s) => s.metadata.name))).toEqual(new Set(kubeInstances.map((i) => i.serviceAccount)));
  });

  it('each instance runs the bookinfo command for its service and version, in both', async () => {
    const kube = await resources('kube/bookinfo.yaml');
    const local = await resources('local/bookinfo.yaml');
    for (const w of local.filter((r) => r.kind === 'WorkloadEntry')) {
      const spec = w.spec as { address: string; labels: Record<string, string> };
      const command = w.metadata.annotations?.['weft.dev/command'];
      const appPort = w.metadata.annotations?.['weft.dev/app-port'];
      expect(command, w.metadata.name).toMatch(/^bookinfo /);
      expect(appPort, w.metadata.name).toMatch(/^\d+$/);
      // What `weftctl up` adds (see the file's header).
      const argv = [...command!.split(/\s+/).slice(1), '--address', spec.address, '--port', appPort!, '--http-proxy', `http://${spec.address}:15001`, '--pod-name', w.metadata.name];
      const cmd = parseCommand(argv, {});
      if (cmd === 'help') throw new Error('help');
      expect([cmd.service, cmd.version], w.metadata.name).toEqual([spec.labels.app, spec.labels.version]);

      const d = kube.find((r) => r.kind === 'Deployment' && r.metadata.name === w.metadata.name)!;
      const c = (d.spec.template as { spec: { containers: Container[] } }).spec.containers[0]!;
      const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
      const kcmd = parseCommand(c.args ?? [], env);
      if (kcmd === 'help') throw new Error('help');
      expect([kcmd.service, kcmd.version], d.metadata.name).toEqual([spec.labels.app, spec.labels.version]);
      expect(c.ports?.map((p) => p.containerPort)).toEqual([9080]);
    }
  });

  const istioYaml = new URL('../../../../../shared/reference/istio/samples/bookinfo/platform/kube/bookinfo.yaml', import.meta.url);
  it.skipIf(!existsSync(istioYaml))('kube/bookinfo.yaml is Istio’s bookinfo.yaml but for the image and the environment that picks the service (ports, service accounts, labels, probes, volumes kept)', async () => {
    const all = (text: string) =>
      text
        .split(/^---$/m)
        .map((doc) => load(doc) as Resource | undefined)
        .filter((r): r is Resource => !!r);
    const ours = await resources('kube/bookinfo.yaml');
    const istio = all(await readFile(istioYaml, 'utf8'));
    // what Weft's file adds: one image for every service, told which to run by its environment
    const picks = new Set(['SERVICE', 'SERVICE_VERSION', 'ENABLE_RATINGS', 'STAR_COLOR']);
    const withoutImage = (r: Resource) => {
      const copy = structuredClone(r);
      if (copy.kind !== 'Deployment') return copy;
      for (const c of (copy.spec.template as { spec: { containers: (Container & { image?: string })[] } }).spec.containers) {
        delete c.image;
        c.env = c.env?.filter((e) => !picks.has(e.name));
        if (c.env?.length === 0) delete c.env;
      }
      return copy;
    };
    expect(ours.map(withoutImage)).toEqual(istio.map(withoutImage));
    for (const d of ours.filter((r) => r.kind === 'Deployment')) {
      const c = (d.spec.template as { spec: { containers: (Container & { image?: string })[] } }).spec.containers[0]!;
      expect(c.image, d.metadata.name).toBe('weft/bookinfo:0.1.0');
    }
  });

  it('a local instance starts on the address the file gives it, named after its WorkloadEntry', async () => {
    const local = await resources('local/bookinfo.yaml');
    const w = local.find((r) => r.kind === 'WorkloadEntry' && r.metadata.name === 'reviews-v3')!;
    const address = (w.spec as { address: string }).address;
    // Port 0 rather than the file's app port: another Weft on this machine may be running BookInfo.
    const argv = [...w.metadata.annotations!['weft.dev/command']!.split(/\s+/).slice(1), '--address', address, '--port', '0', '--pod-name', w.metadata.name];
    const cmd = parseCommand(argv, { ENABLE_RATINGS: 'false' });
    if (cmd === 'help') throw new Error('help');
    const s = await cmd.start(false);
    try {
      expect(s.address).toBe(address);
      const body = (await (await fetch(`${s.url}/reviews/0`)).json()) as { podname: string };
      expect(body.podname).toBe('reviews-v3');
    } finally {
      await s.close(0);
    }
  });
});
