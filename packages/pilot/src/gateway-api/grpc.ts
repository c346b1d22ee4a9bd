// GRPCRoute as the HTTPRoute it amounts to, so one conversion serves both (Istio converts GRPCRoute
// to the same VirtualService HTTP rules): a gRPC method match is a match on the request path
// `/<service>/<method>`, header matches and filters keep their meaning, backends are the same.
import type { GRPCRouteSpec, HTTPRouteSpec, K8sGRPCRouteMatch, K8sHTTPRouteMatch } from '@weft/model';

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A method match as a path match: exact `/svc/method`, `/svc/` prefix, or a regex for the other shapes. */
function pathOf(m: K8sGRPCRouteMatch['method']): K8sHTTPRouteMatch['path'] | undefined {
  if (!m || (!m.service && !m.method)) return undefined;
  if ((m.type ?? 'Exact') === 'RegularExpression') return { type: 'RegularExpression', value: `/${m.service || '[^/]+'}/${m.method || '[^/]+'}` };
  if (m.service && m.method) return { type: 'Exact', value: `/${m.service}/${m.method}` };
  if (m.service) return { type: 'PathPrefix', value: `/${m.service}` };
  return { type: 'RegularExpression', value: `/[^/]+/${escapeRegex(m.method!)}` };
}

export function grpcAsHttp(spec: GRPCRouteSpec): HTTPRouteSpec {
  return {
    ...(spec.parentRefs ? { parentRefs: spec.parentRefs } : {}),
    ...(spec.hostnames ? { hostnames: spec.hostnames } : {}),
    rules: (spec.rules ?? [{}]).map((rule) => ({
      ...(rule.matches
        ? {
            matches: rule.matches.map((m) => {
              const path = pathOf(m.method);
              return { ...(path ? { path } : {}), ...(m.headers ? { headers: m.headers } : {}) };
            }),
          }
        : {}),
      ...(rule.filters ? { filters: rule.filters } : {}),
      ...(rule.backendRefs ? { backendRefs: rule.backendRefs } : {}),
    })),
  };
}
