import { type Config, type FieldPath, type HTTPRouteSpec, type K8sBackendObjectReference, namespacedName } from '@weft/model';
import type { AnalysisContext, Analyzer } from './context.ts';
import { list, num, text } from './util.ts';

function checkBackend(ctx: AnalysisContext, route: Config<HTTPRouteSpec>, ref: K8sBackendObjectReference | undefined, path: FieldPath, what: string): void {
  const name = text(ref?.name);
  if (!ref || !name) return;
  const group = ref.group ?? '';
  const kind = ref.kind ?? 'Service';
  const ns = text(ref.namespace) ?? route.metadata.namespace;
  const port = num(ref.port);
  if (group === '' && kind === 'Service') {
    const svc = ctx.services.kubeService(ns, name);
    if (!svc) {
      ctx.report(route, [...path, 'name'], 'IST0101', 'error', `Referenced Service not found: "${ns}/${name}" (${what} names no Service in the input)`);
      return;
    }
    const ports = svc.ports.map((p) => p.number);
    if (port !== undefined && ports.length > 0 && !ports.includes(port)) {
      ctx.report(route, [...path, 'port'], 'IST0101', 'error', `Referenced host:port not found: "${svc.host}:${port}" (the Service ${namespacedName(svc.config.metadata)} exposes ${ports.length === 1 ? 'port' : 'ports'} ${ports.join(', ')})`);
    }
  } else if (group === 'networking.istio.io' && kind === 'Hostname') {
    const l = ctx.services.lookup(name, ns);
    if (!l.service) ctx.report(route, [...path, 'name'], 'IST0101', 'error', `Referenced host not found: ${JSON.stringify(name)} (no ServiceEntry defines it)`);
  }
}

export const httpRouteBackendAnalyzer: Analyzer = {
  name: 'gatewayapi.BackendRefAnalyzer',
  description: 'Checks that the Services HTTPRoutes send traffic to (backendRefs and mirrors) exist and expose the port',
  analyze(ctx) {
    for (const route of ctx.of('gateway.networking.k8s.io/HTTPRoute')) {
      list(route.spec?.rules).forEach((rule, i) => {
        list(rule?.backendRefs).forEach((ref, j) => {
          const base: FieldPath = ['spec', 'rules', i, 'backendRefs', j];
          checkBackend(ctx, route, ref, base, 'the backendRef');
          list(ref?.filters).forEach((f, k) => {
            checkBackend(ctx, route, f?.requestMirror?.backendRef, [...base, 'filters', k, 'requestMirror', 'backendRef'], 'the mirror filter');
          });
        });
        list(rule?.filters).forEach((f, k) => {
          checkBackend(ctx, route, f?.requestMirror?.backendRef, ['spec', 'rules', i, 'filters', k, 'requestMirror', 'backendRef'], 'the mirror filter');
        });
      });
    }
  },
};

export const gatewayApiAnalyzers: readonly Analyzer[] = [httpRouteBackendAnalyzer];
