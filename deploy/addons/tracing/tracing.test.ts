// The tracing addon fits the mesh it is meant for: `weftctl install --values
// deploy/addons/tracing/values.yaml` renders a mesh config that weftd reads (the same parser weftd
// runs on the `istio` ConfigMap) into a tracing provider whose address is a Service of the addon,
// on a port it exposes, and the collector forwards to a Service of the addon that Jaeger backs.
// The objects themselves are checked by a real API server in deploy/manifests.kube.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { installValues, type Manifest, renderInstall, type Values } from '@weft/kube';
import { parseYamlDocuments } from '@weft/model';
import { parseMeshConfig } from '@weft/pilot';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const dir = import.meta.dirname;
const read = (file: string): Manifest[] =>
  parseYamlDocuments(readFileSync(join(dir, file), 'utf8'), file)
    .documents.map((d) => d.value as Manifest)
    .filter(Boolean);
const addon = [...read('opentelemetry-collector.yaml'), ...read('jaeger.yaml')];

interface ServiceLike {
  metadata: { name: string; namespace: string };
  spec: { selector: Record<string, string>; ports: { port: number; targetPort: number }[] };
}
const services = addon.filter((m) => m.kind === 'Service') as unknown as ServiceLike[];
const deployments = addon.filter((m) => m.kind === 'Deployment') as unknown as {
  spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: { ports: { containerPort: number }[] }[] } } };
}[];

/** The addon's Service at `host:port` (a cluster-local FQDN), and the container port behind it. */
function backing(host: string, port: number): { service: string; containerPort: number } | undefined {
  for (const s of services) {
    if (host !== `${s.metadata.name}.${s.metadata.namespace}.svc.cluster.local`) continue;
    const p = s.spec.ports.find((x) => x.port === port);
    if (!p) continue;
    const pod = deployments.find((d) => Object.entries(s.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
    const listens = pod?.spec.template.spec.containers.some((c) => c.ports.some((cp) => cp.containerPort === p.targetPort));
    if (listens) return { service: s.metadata.name, containerPort: p.targetPort };
  }
  return undefined;
}

describe('deploy/addons/tracing', () => {
  it('values.yaml makes weftd trace to the addon’s collector, and keeps the chart’s other mesh defaults', () => {
    const values = parseYamlDocuments(readFileSync(join(dir, 'values.yaml'), 'utf8'), 'values.yaml').documents[0]?.value as Partial<Record<'weftd', Values>>;
    const objects = renderInstall(installValues(values)).flatMap((c) => c.manifests);
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'istio') as (Manifest & { data: { mesh: string } }) | undefined;
    expect(cm, 'the istio ConfigMap').toBeDefined();
    const mesh = parseMeshConfig(cm!.data.mesh, 'istio ConfigMap');
    expect(mesh.enableTracing).toBe(true);
    expect(mesh.tracingSampling).toBe(1);
    expect(mesh.defaultTracingProviders).toEqual(['otel-tracing']);
    const provider = mesh.extensionProviders.find((p) => p.name === 'otel-tracing')?.opentelemetry;
    expect(provider).toEqual({ service: 'opentelemetry-collector.istio-system.svc.cluster.local', port: 4317 });
    expect(backing(provider!.service, provider!.port)).toEqual({ service: 'opentelemetry-collector', containerPort: 4317 });
    // deep-merged over the chart's defaults: the proxies still find weftd
    expect((parse(cm!.data.mesh) as { defaultConfig: { discoveryAddress?: string } }).defaultConfig.discoveryAddress).toBe('weftd.istio-system.svc:15012');
  });

  it('the collector exports to a Service of the addon that Jaeger listens behind', () => {
    const cm = addon.find((m) => m.kind === 'ConfigMap' && m.metadata.name === 'opentelemetry-collector') as unknown as { data: { 'config.yaml': string } };
    const config = parse(cm.data['config.yaml']) as {
      exporters: Record<string, { endpoint: string }>;
      service: { pipelines: { traces: { receivers: string[]; exporters: string[] } } };
      receivers: { otlp: { protocols: { grpc: { endpoint: string }; http: { endpoint: string } } } };
    };
    const exporters = config.service.pipelines.traces.exporters;
    expect(exporters).toEqual(['otlp/jaeger']);
    const [host, port] = config.exporters['otlp/jaeger']!.endpoint.split(':');
    expect(backing(host!, Number(port))).toEqual({ service: 'jaeger-collector', containerPort: 4317 });
    expect(config.receivers.otlp.protocols.grpc.endpoint).toBe('0.0.0.0:4317');
  });

  it('the Jaeger UI is the `tracing` Service on port 80, as Istio’s addon names it', () => {
    const ui = services.find((s) => s.metadata.name === 'tracing');
    expect(ui?.spec.ports).toEqual([expect.objectContaining({ port: 80, targetPort: 16686 })]);
  });
});
