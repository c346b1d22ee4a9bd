import { hostCandidates, hostSubsetOf, isWildcardHost } from '@weft/mesh';
import type { Analyzer } from './context.ts';
import { list, text } from './util.ts';

/**
 * Sidecar egress hosts (`namespace/dnsName`) naming a service that does not exist. Wildcard
 * names and namespaces (`*`, `~`) are not checked, nor namespaces the input has no service in
 * (their services are assumed to be defined elsewhere).
 */
export const sidecarEgressHostAnalyzer: Analyzer = {
  name: 'sidecar.EgressHostAnalyzer',
  description: 'Checks that the hosts a Sidecar imports in its egress listeners exist',
  analyze(ctx) {
    const namespacesWithServices = new Set(ctx.services.services.map((s) => s.namespace));
    for (const sc of ctx.of('networking.istio.io/Sidecar')) {
      list(sc.spec?.egress).forEach((listener, i) => {
        list(listener?.hosts).forEach((entry, j) => {
          if (!text(entry)) return;
          const slash = entry.indexOf('/');
          if (slash < 0) return;
          const nsPart = entry.slice(0, slash);
          const host = entry.slice(slash + 1);
          if (nsPart === '*' || nsPart === '~' || host === '' || isWildcardHost(host)) return;
          const ns = nsPart === '.' ? sc.metadata.namespace : nsPart;
          if (!namespacesWithServices.has(ns)) return;
          const candidates = hostCandidates(host, ns);
          const found = ctx.services.services.some((s) => s.namespace === ns && candidates.some((c) => (isWildcardHost(s.host) ? hostSubsetOf(c, s.host) : s.host === c)));
          if (found) return;
          ctx.report(
            sc,
            ['spec', 'egress', i, 'hosts', j],
            'IST0101',
            'error',
            `Referenced egress host not found: ${JSON.stringify(entry)} (no Service or ServiceEntry in namespace ${ns} defines ${candidates.join(' or ')})`,
          );
        });
      });
    }
  },
};

export const sidecarAnalyzers: readonly Analyzer[] = [sidecarEgressHostAnalyzer];
