import { isWildcardHost } from '@weft/mesh';
import { namespacedName } from '@weft/model';
import type { Analyzer } from './context.ts';
import { formatLabels, isEmpty, labelsOf, list, selects, text } from './util.ts';

export const destinationRuleHostAnalyzer: Analyzer = {
  name: 'destinationrule.HostAnalyzer',
  description: 'Checks that the host of each DestinationRule is a known Service or ServiceEntry host',
  analyze(ctx) {
    for (const dr of ctx.of('networking.istio.io/DestinationRule')) {
      const host = text(dr.spec?.host);
      if (!host || isWildcardHost(host)) continue;
      const l = ctx.services.lookup(host, dr.metadata.namespace);
      if (l.service) continue;
      const shown = host.includes('.') ? host : l.fqdn;
      const detail = l.candidates.length <= 1 ? 'no Service or ServiceEntry defines it' : `no Service or ServiceEntry defines ${l.candidates.join(' or ')}`;
      ctx.report(dr, ['spec', 'host'], 'IST0101', 'error', `Referenced host not found: ${JSON.stringify(shown)} (${detail})`);
    }
  },
};

/**
 * Subsets whose labels select none of the workloads behind the host. The check runs only where
 * the input shows those workloads: a Service whose selector picks none of the input's workloads
 * is assumed to have them elsewhere, and is left alone.
 */
export const subsetSelectsPodsAnalyzer: Analyzer = {
  name: 'destinationrule.SubsetSelectPodAnalyzer',
  description: 'Checks that each DestinationRule subset selects at least one workload of its host',
  analyze(ctx) {
    for (const dr of ctx.of('networking.istio.io/DestinationRule')) {
      const host = text(dr.spec?.host);
      if (!host || isWildcardHost(host)) continue;
      const l = ctx.services.lookup(host, dr.metadata.namespace);
      const svc = l.service;
      if (!svc) continue;
      const endpoints = ctx.services.endpointsOf(svc);
      if (!endpoints || endpoints.length === 0) continue;
      list(dr.spec.subsets).forEach((subset, i) => {
        const labels = labelsOf(subset?.labels);
        if (!subset || isEmpty(labels) || !labels) return;
        if (endpoints.some((e) => selects(labels, e))) return;
        const seen = Object.keys(labels)
          .map((k) => {
            const values = [...new Set(endpoints.map((e) => e[k]).filter((v): v is string => v !== undefined))].sort();
            return values.length === 0 ? `none has a ${k} label` : `${k}: ${values.join(', ')}`;
          })
          .join('; ');
        ctx.report(
          dr,
          ['spec', 'subsets', i, 'labels'],
          'IST0173',
          'warning',
          `The subset ${JSON.stringify(subset.name)} (${formatLabels(labels)}) selects no workload of ${l.fqdn}, so traffic routed to it fails with 503 (workloads of ${svc.kind} ${namespacedName(svc.config.metadata)} have ${seen})`,
        );
      });
    }
  },
};

export const destinationRuleAnalyzers: readonly Analyzer[] = [destinationRuleHostAnalyzer, subsetSelectsPodsAnalyzer];
