import type { Config, TypeWorkloadSelector } from '@weft/model';
import type { AnalysisContext, Analyzer } from './context.ts';
import { formatLabels, isEmpty, labelsOf } from './util.ts';

/** Istio's root namespace: policies there with a selector apply in every namespace. */
export const rootNamespace = 'istio-system';

function checkSelector(ctx: AnalysisContext, config: Config<{ selector?: TypeWorkloadSelector }>): void {
  const labels = labelsOf(config.spec?.selector?.matchLabels);
  if (!labels || isEmpty(labels)) return;
  const ns = config.metadata.namespace;
  const scope = ns === rootNamespace ? undefined : ns;
  // Without workloads in scope the input says nothing about what the policy selects.
  if (!ctx.services.hasWorkloads(scope)) return;
  if (ctx.services.select(labels, scope).length > 0) return;
  const where = scope === undefined ? 'in any namespace' : `in namespace ${ns}`;
  ctx.report(config, ['spec', 'selector', 'matchLabels'], 'IST0127', 'warning', `No matching workloads for this resource with the following labels: ${formatLabels(labels)} (no Deployment, Pod or WorkloadEntry ${where} has them, so this ${config.kind} applies to nothing)`);
}

export const policySelectorAnalyzer: Analyzer = {
  name: 'security.SelectorAnalyzer',
  description: 'Checks that AuthorizationPolicy, PeerAuthentication and RequestAuthentication selectors match some workload',
  analyze(ctx) {
    for (const c of ctx.of('security.istio.io/AuthorizationPolicy')) checkSelector(ctx, c);
    for (const c of ctx.of('security.istio.io/PeerAuthentication')) checkSelector(ctx, c);
    for (const c of ctx.of('security.istio.io/RequestAuthentication')) checkSelector(ctx, c);
  },
};

export const securityAnalyzers: readonly Analyzer[] = [policySelectorAnalyzer];
