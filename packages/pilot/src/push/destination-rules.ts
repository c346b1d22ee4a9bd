// DestinationRules indexed and looked up as Istio does (push_context.go setDestinationRules and
// destinationRule): the proxy's namespace first, then the service's namespace, then the root
// namespace; an exact host beats a wildcard; exportTo decides who sees a rule.
import { exportScope, type ExportScope, hostSubsetOf, isExportedTo, resolveHost } from '@weft/mesh';
import type { Config, DestinationRuleSpec, Subset } from '@weft/model';
import { labelsKey, selectsLabels, stringMap } from '../registry/labels.ts';

interface Consolidated {
  /** The rule in force: the first rule, with the subsets (and a missing traffic policy) of later ones merged in. */
  rule: Config<DestinationRuleSpec>;
  /** Who sees the rule (`exportScope`: `*` or namespaces). */
  exportTo: ExportScope;
  selector: Readonly<Record<string, string>> | undefined;
  selectorKey: string;
}

class RuleSet {
  readonly specific = new Map<string, Consolidated[]>();
  readonly wildcard = new Map<string, Consolidated[]>();

  /** Istio's mergeDestinationRule, simplified: rules for the same host merge when their exportTo and selector are equal. */
  add(host: string, config: Config<DestinationRuleSpec>, exportTo: ExportScope, selector: Readonly<Record<string, string>> | undefined): void {
    const m = host.startsWith('*') ? this.wildcard : this.specific;
    const list = m.get(host) ?? [];
    m.set(host, list);
    const selectorKey = selector ? labelsKey(selector) : '';
    const same = list.find((c) => c.selectorKey === selectorKey && !!c.selector === !!selector && sameSet(c.exportTo, exportTo));
    if (!same) {
      list.push({ rule: config, exportTo, selector, selectorKey });
      return;
    }
    const spec = same.rule.spec;
    const names = new Set((spec.subsets ?? []).map((s) => s.name));
    const added: Subset[] = (config.spec.subsets ?? []).filter((s) => !names.has(s.name));
    const merged: DestinationRuleSpec = { ...spec, subsets: [...(spec.subsets ?? []), ...added] };
    if (!spec.trafficPolicy && config.spec.trafficPolicy) merged.trafficPolicy = config.spec.trafficPolicy;
    same.rule = { ...same.rule, spec: merged };
  }

  /** Istio's MostSpecificHostMatch: the exact host, else the longest wildcard covering it. */
  match(hostname: string): Consolidated[][] {
    const out: Consolidated[][] = [];
    const exact = this.specific.get(hostname) ?? (hostname.startsWith('*') ? this.wildcard.get(hostname) : undefined);
    if (exact) out.push(exact);
    const wild = [...this.wildcard.keys()].filter((w) => w !== hostname && hostSubsetOf(hostname, w)).sort((a, b) => b.length - a.length);
    for (const w of wild) out.push(this.wildcard.get(w)!);
    return out;
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

/** Rules by level. Input must be in Istio's order for DestinationRules (selector first, then oldest, name, namespace). */
export class DestinationRuleIndex {
  readonly #namespaceLocal = new Map<string, RuleSet>();
  readonly #exported = new Map<string, RuleSet>();
  readonly #rootLocal = new RuleSet();
  readonly #rootNamespace: string;

  /** `defaultExportTo`: MeshConfig's defaultDestinationRuleExportTo, for rules that give none. */
  constructor(ordered: readonly Config<DestinationRuleSpec>[], rootNamespace: string, domainSuffix: string, defaultExportTo: readonly string[] = []) {
    this.#rootNamespace = rootNamespace;
    for (const c of ordered) {
      if (!c.spec?.host) continue;
      const ns = c.metadata.namespace;
      const host = resolveHost(c.spec.host, ns, domainSuffix);
      const labels = stringMap(c.spec.workloadSelector?.matchLabels);
      const selector = c.spec.workloadSelector ? labels : undefined;
      // A rule that selects workloads is never exported: it is for its own namespace only.
      const exportTo: ExportScope = selector ? new Set([ns]) : exportScope(c.spec.exportTo, ns, defaultExportTo);
      if (isExportedTo(exportTo, ns)) {
        const local = this.#namespaceLocal.get(ns) ?? new RuleSet();
        this.#namespaceLocal.set(ns, local);
        local.add(host, c, exportTo, selector);
      }
      const privateOnly = exportTo.size === 1 && exportTo.has(ns);
      if (!privateOnly) {
        const exported = this.#exported.get(ns) ?? new RuleSet();
        this.#exported.set(ns, exported);
        exported.add(host, c, exportTo, selector);
      } else if (ns === rootNamespace) {
        this.#rootLocal.add(host, c, exportTo, selector);
      }
    }
  }

  /**
   * The rule for `hostname` as a proxy in `proxyNamespace` with `labels` sees it. Levels, first
   * match wins: rules in the proxy's namespace (any exportTo; for a proxy in the root namespace,
   * the root namespace's private rules), then rules the service's namespace exports to the
   * proxy's, then rules the root namespace exports. In a level, a rule with a workloadSelector
   * applies only to proxies of its namespace whose labels match, and is preferred over one
   * without; a level with no applicable rule falls through to the next.
   */
  lookup(
    proxyNamespace: string,
    labels: Readonly<Record<string, string>>,
    hostname: string,
    serviceNamespace: string | undefined,
  ): Config<DestinationRuleSpec> | undefined {
    const pick = (set: RuleSet | undefined, exportedOnly: boolean): Config<DestinationRuleSpec> | undefined => {
      if (!set) return undefined;
      for (const candidates of set.match(hostname)) {
        const visible = exportedOnly ? candidates.filter((c) => isExportedTo(c.exportTo, proxyNamespace)) : candidates;
        const selecting = visible.find((c) => c.selector && c.rule.metadata.namespace === proxyNamespace && selectsLabels(c.selector, labels));
        if (selecting) return selecting.rule;
        const catchAll = visible.find((c) => !c.selector);
        if (catchAll) return catchAll.rule;
      }
      return undefined;
    };
    const local = proxyNamespace === this.#rootNamespace ? pick(this.#rootLocal, false) : pick(this.#namespaceLocal.get(proxyNamespace), false);
    if (local) return local;
    if (serviceNamespace) {
      const fromService = pick(this.#exported.get(serviceNamespace), true);
      if (fromService) return fromService;
    }
    return pick(this.#exported.get(this.#rootNamespace), true);
  }
}

/** Istio's order for DestinationRules: rules with a workloadSelector first, then oldest, name, namespace. */
export function destinationRuleOrder(order: (a: Config, b: Config) => number): (a: Config<DestinationRuleSpec>, b: Config<DestinationRuleSpec>) => number {
  return (a, b) => {
    const sa = a.spec?.workloadSelector ? 0 : 1;
    const sb = b.spec?.workloadSelector ? 0 : 1;
    return sa - sb || order(a, b);
  };
}
