import { namespacedName } from '@weft/model';
import type { Analyzer } from './context.ts';
import type { MeshService } from './services.ts';
import { formatLabels, isEmpty, joinWords, labelsOf, list, num, selects } from './util.ts';

/**
 * Gateway server ports that the Kubernetes Service in front of the gateway workloads does not
 * expose. Runs only when the input has both the workloads the Gateway selects and a Service
 * selecting them; without them the gateway is assumed to be installed elsewhere.
 * A server port counts as exposed when it is a Service port or a numeric targetPort.
 */
export const ingressGatewayPortAnalyzer: Analyzer = {
  name: 'gateway.IngressGatewayPortAnalyzer',
  description: "Checks a Gateway's server ports against the Kubernetes Service of the gateway workloads",
  analyze(ctx) {
    for (const gw of ctx.of('networking.istio.io/Gateway')) {
      const selector = labelsOf(gw.spec?.selector);
      if (!selector || isEmpty(selector)) continue;
      const workloads = ctx.services.select(selector);
      if (workloads.length === 0) continue;
      const services = new Set<MeshService>();
      for (const s of ctx.services.services) {
        if (s.kind !== 'Service' || !s.selector) continue;
        const sel = s.selector;
        if (workloads.some((w) => w.namespace === s.namespace && selects(sel, w.labels))) services.add(s);
      }
      if (services.size === 0) continue;
      const exposed = new Set<number>();
      const listed: number[] = [];
      for (const s of services) {
        for (const p of s.ports) {
          if (p.protocol && p.protocol !== 'TCP') continue;
          exposed.add(p.number);
          listed.push(p.number);
          if (typeof p.targetPort === 'number') exposed.add(p.targetPort);
        }
      }
      const names = [...services].map((s) => namespacedName(s.config.metadata));
      list(gw.spec.servers).forEach((server, i) => {
        const port = num(server?.port?.number);
        if (port === undefined || exposed.has(port)) return;
        const ports = [...new Set(listed)].sort((a, b) => a - b);
        ctx.report(
          gw,
          ['spec', 'servers', i, 'port', 'number'],
          'IST0162',
          'warning',
          `The gateway listens on port ${port}, which the Service${names.length === 1 ? '' : 's'} ${joinWords(names)} of its workloads (selector ${formatLabels(selector)}) ${names.length === 1 ? 'does' : 'do'} not expose (${ports.length === 0 ? 'no TCP ports' : `ports ${ports.join(', ')}`}): clients cannot reach this server through the Service`,
        );
      });
    }
  },
};

export const gatewayAnalyzers: readonly Analyzer[] = [ingressGatewayPortAnalyzer];
