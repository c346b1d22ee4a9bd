import type { K8sServiceSpec } from '@weft/model';
import type { Analyzer } from './context.ts';
import { labelsOf, list, num, text } from './util.ts';

/** Protocols Istio recognises in a port name prefix or an appProtocol (compared case-insensitively). */
export const knownProtocols: ReadonlySet<string> = new Set(['http', 'http2', 'https', 'http_proxy', 'grpc', 'grpc-web', 'tcp', 'tls', 'udp', 'mongo', 'mysql', 'redis']);

/** Kubernetes' standard appProtocol values. */
const kubernetesAppProtocols = new Set(['kubernetes.io/h2c', 'kubernetes.io/ws', 'kubernetes.io/wss']);

/** Namespaces whose Services Istio does not check. */
const systemNamespaces = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']);

/** Values of the `istio` label that mark Istio's own Services (control plane and gateways). */
const istioComponents = new Set(['pilot', 'istiod', 'ingressgateway', 'egressgateway', 'eastwestgateway']);

/** Whether a port name (`http-web`) or appProtocol (`grpc`) names a protocol Istio knows. */
export function protocolOfName(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (kubernetesAppProtocols.has(lower)) return lower;
  if (lower.startsWith('grpc-web')) return 'grpc-web';
  const prefix = lower.split('-')[0] ?? lower;
  return knownProtocols.has(prefix) ? prefix : undefined;
}

export const portNameAnalyzer: Analyzer = {
  name: 'service.PortNameAnalyzer',
  description: 'Checks that Service ports name their protocol (<protocol>[-<suffix>] or appProtocol)',
  analyze(ctx) {
    for (const svc of ctx.of('/Service')) {
      if (systemNamespaces.has(svc.metadata.namespace)) continue;
      const istio = labelsOf(svc.metadata.labels)?.istio;
      if (istio && istioComponents.has(istio)) continue;
      const spec = (svc.spec ?? {}) as Partial<K8sServiceSpec>;
      if (spec.type === 'ExternalName') continue;
      list(spec.ports).forEach((p, i) => {
        if (!p || p.protocol === 'UDP') return;
        const port = num(p.port);
        const name = text(p.name);
        const appProtocol = text(p.appProtocol);
        const target = p.targetPort === undefined ? String(port ?? '') : String(p.targetPort);
        const where = `port ${port ?? '?'}, targetPort ${target}`;
        if (appProtocol) {
          if (protocolOfName(appProtocol)) return;
          ctx.report(
            svc,
            ['spec', 'ports', i, 'appProtocol'],
            'IST0118',
            'warning',
            `appProtocol ${JSON.stringify(appProtocol)} (${where}) is not a protocol Istio knows (${[...knownProtocols].join(', ')}), so Istio falls back to protocol sniffing`,
          );
          return;
        }
        if (name && protocolOfName(name)) return;
        ctx.report(
          svc,
          name ? ['spec', 'ports', i, 'name'] : ['spec', 'ports', i],
          'IST0118',
          'warning',
          `${name ? `Port name ${JSON.stringify(name)}` : 'Unnamed port'} (${where}) does not follow Istio's naming convention <protocol>[-<suffix>] (for example http-web or grpc-api) and has no appProtocol, so Istio falls back to protocol sniffing`,
        );
      });
    }
  },
};

export const serviceAnalyzers: readonly Analyzer[] = [portNameAnalyzer];
