import { exportScope, type ExportScope, hostsMatch, hostSubsetOf, isExportedTo, isWildcardHost, resolveHost } from '@weft/mesh';
import { type Config, configOrder, type Destination, type FieldPath, type GatewaySpec, namespacedName, type VirtualServiceSpec } from '@weft/model';
import type { Analyzer } from './context.ts';
import type { HostLookup } from './services.ts';
import { canonicalJson, joinWords, list, num, quotedList, text } from './util.ts';

type VirtualServiceConfig = Config<VirtualServiceSpec>;

/** The implicit gateway of sidecars. */
export const meshGateway = 'mesh';

/** A destination named by a VirtualService, with where it sits. */
export interface NamedDestination {
  destination: Destination;
  /** Path of the `destination` object (or of `mirror`). */
  path: FieldPath;
  mirror: boolean;
}

/** Every destination of routes and mirrors, in document order. */
export function destinationsOf(spec: VirtualServiceSpec): NamedDestination[] {
  const out: NamedDestination[] = [];
  const add = (d: unknown, path: FieldPath, mirror: boolean) => {
    if (typeof d === 'object' && d !== null && typeof (d as Destination).host === 'string') out.push({ destination: d as Destination, path, mirror });
  };
  list(spec.http).forEach((r, i) => {
    list(r?.route).forEach((rd, j) => {
      add(rd?.destination, ['spec', 'http', i, 'route', j, 'destination'], false);
    });
    if (r?.mirror) add(r.mirror, ['spec', 'http', i, 'mirror'], true);
    list(r?.mirrors).forEach((m, k) => {
      add(m?.destination, ['spec', 'http', i, 'mirrors', k, 'destination'], true);
    });
  });
  for (const section of ['tcp', 'tls'] as const) {
    list<{ route?: { destination: Destination }[] }>(spec[section]).forEach((r, i) => {
      list(r?.route).forEach((rd, j) => {
        add(rd?.destination, ['spec', section, i, 'route', j, 'destination'], false);
      });
    });
  }
  return out;
}

function notFoundDetail(l: HostLookup): string {
  if (l.candidates.length <= 1) return 'no Service or ServiceEntry defines it';
  return `no Service or ServiceEntry defines ${l.candidates.join(' or ')}`;
}

/** The name to show for a host that was not found: the FQDN a short name stands for, else the host as written. */
function shownHost(host: string, l: HostLookup): string {
  return host.includes('.') ? host : l.fqdn;
}

export const destinationHostAnalyzer: Analyzer = {
  name: 'virtualservice.DestinationHostAnalyzer',
  description: 'Checks that the destination hosts and ports of each VirtualService exist',
  analyze(ctx) {
    for (const vs of ctx.of('networking.istio.io/VirtualService')) {
      const ns = vs.metadata.namespace;
      for (const d of destinationsOf(vs.spec ?? {})) {
        const host = d.destination.host;
        if (!host || isWildcardHost(host)) continue;
        const l = ctx.services.lookup(host, ns);
        const hostPath = [...d.path, 'host'];
        if (!l.service) {
          ctx.report(vs, hostPath, 'IST0101', 'error', `Referenced ${d.mirror ? 'mirror host' : 'host'} not found: ${JSON.stringify(shownHost(host, l))} (${notFoundDetail(l)})`);
          continue;
        }
        const svc = l.service;
        const ports = svc.ports.map((p) => p.number);
        if (ports.length === 0) continue;
        const port = num(d.destination.port?.number);
        if (port === undefined) {
          if (ports.length > 1) {
            ctx.report(
              vs,
              hostPath,
              'IST0112',
              'error',
              `This VirtualService routes to ${l.fqdn}, which exposes several ports (${ports.join(', ')}): give destination.port.number to say which one`,
            );
          }
        } else if (!ports.includes(port)) {
          ctx.report(
            vs,
            [...d.path, 'port', 'number'],
            'IST0101',
            'error',
            `Referenced host:port not found: "${l.fqdn}:${port}" (the ${svc.kind} ${namespacedName(svc.config.metadata)} exposes ${ports.length === 1 ? 'port' : 'ports'} ${ports.join(', ')})`,
          );
        }
      }
    }
  },
};

interface SubsetSource {
  host: string;
  subsets: string[];
  exportTo: ExportScope;
}

export const destinationRuleSubsetAnalyzer: Analyzer = {
  name: 'virtualservice.DestinationRuleAnalyzer',
  description: 'Checks that the subsets VirtualServices route to are defined by a DestinationRule for the host',
  analyze(ctx) {
    const rules: SubsetSource[] = [];
    for (const dr of ctx.of('networking.istio.io/DestinationRule')) {
      const host = text(dr.spec?.host);
      if (!host) continue;
      const ns = dr.metadata.namespace;
      rules.push({
        host: isWildcardHost(host) ? host : ctx.services.lookup(host, ns).fqdn,
        subsets: list(dr.spec.subsets)
          .map((s) => s?.name)
          .filter((n): n is string => typeof n === 'string'),
        exportTo: exportScope(list(dr.spec.exportTo), ns),
      });
    }
    for (const vs of ctx.of('networking.istio.io/VirtualService')) {
      const ns = vs.metadata.namespace;
      for (const d of destinationsOf(vs.spec ?? {})) {
        const subset = text(d.destination.subset);
        const host = d.destination.host;
        if (!subset || !host || isWildcardHost(host)) continue;
        const fqdn = ctx.services.lookup(host, ns).fqdn;
        const visible = rules.filter((r) => isExportedTo(r.exportTo, ns));
        let applying = visible.filter((r) => r.host === fqdn);
        if (applying.length === 0) applying = visible.filter((r) => isWildcardHost(r.host) && hostSubsetOf(fqdn, r.host));
        const defined = [...new Set(applying.flatMap((r) => r.subsets))];
        if (defined.includes(subset)) continue;
        const why = applying.length === 0 ? 'no DestinationRule defines subsets for this host' : defined.length === 0 ? 'its DestinationRule defines no subsets' : `defined subsets: ${defined.join(', ')}`;
        ctx.report(vs, [...d.path, 'subset'], 'IST0101', 'error', `Referenced subset not found: ${JSON.stringify(subset)} for host ${fqdn} (${why})`);
      }
    }
  },
};

function boundToMesh(spec: VirtualServiceSpec): boolean {
  const gws = list(spec.gateways);
  return gws.length === 0 || gws.includes(meshGateway);
}

export const conflictingMeshGatewayHostsAnalyzer: Analyzer = {
  name: 'virtualservice.ConflictingMeshGatewayHostsAnalyzer',
  description: 'Checks that no two VirtualServices bound to the mesh gateway define the same host',
  analyze(ctx) {
    // scope namespace + "|" + host -> the VirtualServices (and host index) defining it
    const byHost = new Map<string, { vs: VirtualServiceConfig; index: number; host: string }[]>();
    for (const vs of ctx.of('networking.istio.io/VirtualService')) {
      const spec = vs.spec ?? {};
      if (!boundToMesh(spec)) continue;
      const ns = vs.metadata.namespace;
      const scope = exportScope(list(spec.exportTo), ns);
      list(spec.hosts).forEach((h, index) => {
        if (!text(h)) return;
        const host = isWildcardHost(h) ? h : ctx.services.lookup(h, ns).fqdn;
        for (const s of scope) {
          const key = `${s}|${host}`;
          const l = byHost.get(key) ?? [];
          if (!l.some((e) => e.vs === vs)) l.push({ vs, index, host });
          byHost.set(key, l);
        }
      });
    }
    const reported = new Set<string>();
    for (const entries of byHost.values()) {
      if (entries.length < 2) continue;
      const names = entries.map((e) => namespacedName(e.vs.metadata)).sort();
      // Istio keeps the oldest (then the first by name, then by namespace). Configs read from files
      // carry no creation time yet: then only the order in which they will be created can tell.
      const dated = entries.every((e) => e.vs.metadata.creationTimestamp !== undefined);
      const oldest = [...entries].sort((a, b) => configOrder(a.vs, b.vs))[0]!.vs;
      for (const e of entries) {
        const key = `${namespacedName(e.vs.metadata)}#${e.index}`;
        if (reported.has(key)) continue;
        reported.add(key);
        const both = names.length === 2 ? 'both' : 'all';
        const outcome = !dated
          ? 'only the one created first applies to it'
          : e.vs === oldest
            ? 'this one, the oldest, applies to it and the others are ignored for it'
            : `only the oldest, ${namespacedName(oldest.metadata)}, applies to it and this one is ignored for it`;
        ctx.report(
          e.vs,
          ['spec', 'hosts', e.index],
          'IST0109',
          'error',
          `The VirtualServices ${joinWords(names)} are ${both} bound to the mesh gateway and define the same host ${e.host}: ${outcome}; merge them into one VirtualService`,
        );
      }
    }
  },
};

/** Server hosts of a Gateway that apply to VirtualServices of `vsNamespace` (`ns/host` forms resolved). */
function gatewayHostsFor(gw: Config<GatewaySpec>, vsNamespace: string): string[] {
  const out: string[] = [];
  for (const server of list(gw.spec?.servers)) {
    for (const h of list(server?.hosts)) {
      if (!text(h)) continue;
      const slash = h.indexOf('/');
      if (slash < 0) {
        out.push(h);
        continue;
      }
      const ns = h.slice(0, slash);
      const host = h.slice(slash + 1);
      if (ns === '*' || ns === vsNamespace || (ns === '.' && gw.metadata.namespace === vsNamespace)) out.push(host);
    }
  }
  return out;
}

export const gatewayReferenceAnalyzer: Analyzer = {
  name: 'virtualservice.GatewayAnalyzer',
  description: 'Checks that the gateways of each VirtualService exist and expose its hosts',
  analyze(ctx) {
    for (const vs of ctx.of('networking.istio.io/VirtualService')) {
      const ns = vs.metadata.namespace;
      const spec = vs.spec ?? {};
      const vsHosts = list(spec.hosts)
        .filter((h): h is string => !!text(h))
        .map((h) => resolveHost(h, ns));
      list(spec.gateways).forEach((ref, i) => {
        if (!text(ref) || ref === meshGateway) return;
        const slash = ref.indexOf('/');
        const gwNs = slash < 0 ? ns : ref.slice(0, slash);
        const gwName = slash < 0 ? ref : ref.slice(slash + 1);
        const gw = ctx.get('networking.istio.io/Gateway', gwNs, gwName);
        if (!gw) {
          ctx.report(vs, ['spec', 'gateways', i], 'IST0101', 'error', `Referenced gateway not found: ${JSON.stringify(ref)} (no Gateway ${gwNs}/${gwName} in the input)`);
          return;
        }
        const gwHosts = gatewayHostsFor(gw, ns);
        if (vsHosts.length === 0 || vsHosts.some((vh) => gwHosts.some((gh) => hostsMatch(gh, vh)))) return;
        const accepts = gwHosts.length === 0 ? `none of its servers accepts hosts for namespace ${ns}` : `its servers accept ${quotedList([...new Set(gwHosts)])}`;
        ctx.report(vs, ['spec', 'gateways', i], 'IST0132', 'warning', `VirtualService host${vsHosts.length === 1 ? '' : 's'} ${quotedList(vsHosts)} not found in Gateway ${gwNs}/${gwName}: ${accepts}`);
      });
    }
  },
};

/** `"name"` when the rule or match has a name, else `#index`, as Istio writes them. */
function ruleName(rule: unknown, index: number): string {
  const name = typeof rule === 'object' && rule !== null ? (rule as { name?: unknown }).name : undefined;
  return typeof name === 'string' && name !== '' ? JSON.stringify(name) : `#${index}`;
}

/** A match's conditions, for comparing; its name and stat prefix do not change what it matches. */
function matchKey(m: unknown): string {
  if (typeof m !== 'object' || m === null) return canonicalJson(m);
  const { name: _name, statPrefix: _statPrefix, ...rest } = m as Record<string, unknown>;
  return canonicalJson(rest);
}

export const unreachableRulesAnalyzer: Analyzer = {
  name: 'virtualservice.UnreachableRulesAnalyzer',
  description: 'Checks for VirtualService rules that can never match: after a catch-all, or with only matches earlier rules already take',
  analyze(ctx) {
    for (const vs of ctx.of('networking.istio.io/VirtualService')) {
      for (const section of ['http', 'tcp', 'tls'] as const) {
        const rules = list<{ match?: unknown[] }>(vs.spec?.[section] as { match?: unknown[] }[] | undefined);
        const seen = new Map<string, number>();
        let catchAll = -1;
        rules.forEach((rule, i) => {
          const name = ruleName(rule, i);
          const matches = list(rule?.match);
          if (catchAll >= 0) {
            ctx.report(
              vs,
              ['spec', section, i],
              'IST0130',
              'warning',
              `VirtualService rule ${name} not used (rule ${ruleName(rules[catchAll], catchAll)} before it has no match, so it takes every request; move the catch-all rule last)`,
            );
            return;
          }
          if (matches.length === 0) {
            catchAll = i;
            return;
          }
          let duplicates = 0;
          matches.forEach((m, j) => {
            const key = matchKey(m);
            const earlier = seen.get(key);
            if (earlier === undefined) {
              seen.set(key, i);
              return;
            }
            duplicates++;
            if (earlier !== i) {
              ctx.report(
                vs,
                ['spec', section, i, 'match', j],
                'IST0131',
                'warning',
                `VirtualService rule ${name} match ${ruleName(m, j)} is not used (duplicate of a match in rule ${ruleName(rules[earlier], earlier)})`,
              );
            } else {
              ctx.report(vs, ['spec', section, i, 'match', j], 'IST0131', 'warning', `VirtualService rule ${name} match ${ruleName(m, j)} is not used (duplicate of an earlier match in the same rule)`);
            }
          });
          if (duplicates === matches.length) {
            ctx.report(vs, ['spec', section, i], 'IST0130', 'warning', `VirtualService rule ${name} not used (all its matches are taken by earlier rules)`);
          }
        });
      }
    }
  },
};

export const virtualServiceAnalyzers: readonly Analyzer[] = [gatewayReferenceAnalyzer, destinationHostAnalyzer, destinationRuleSubsetAnalyzer, conflictingMeshGatewayHostsAnalyzer, unreachableRulesAnalyzer];
