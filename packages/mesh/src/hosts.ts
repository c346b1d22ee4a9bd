// Host names as Istio reads them (pkg/config/host.Name, model.ResolveShortnameToFQDN): a leading
// `*` makes a wildcard that matches by suffix (`*` alone matches every name); a short name in a
// config is completed from the config's namespace.
import { isIpAddress } from './ip.ts';
import { defaultDomainSuffix } from './node-id.ts';

export function isWildcardHost(host: string): boolean {
  return host.startsWith('*');
}

/**
 * Istio's host.Name.Matches: `a` and `b` (either may be a wildcard) select a common name.
 * Symmetric: `*.example.com` matches `a.example.com` and `*.a.example.com` both ways.
 */
export function hostsMatch(a: string, b: string): boolean {
  const aw = isWildcardHost(a);
  const bw = isWildcardHost(b);
  if (aw) {
    if (bw) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
    return b.endsWith(a.slice(1));
  }
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/**
 * Istio's host.Name.SubsetOf: every name `a` selects is selected by `b` ("b covers a").
 * `a.example.com` is a subset of `*.example.com`, not the other way round; `*` covers everything.
 */
export function hostSubsetOf(a: string, b: string): boolean {
  const aw = isWildcardHost(a);
  const bw = isWildcardHost(b);
  if (aw) return bw && a.length >= b.length && a.slice(1).endsWith(b.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** `reviews` in `default` -> `reviews.default.svc.cluster.local`: a Kubernetes Service's host name. */
export function kubeServiceHost(name: string, namespace: string, domainSuffix = defaultDomainSuffix): string {
  return `${name}.${namespace}.svc.${domainSuffix}`;
}

/**
 * A host as written in a config of `namespace`, as a fully qualified name (Istio's
 * ResolveShortnameToFQDN): a name without a dot (`reviews`) is a Service of that namespace;
 * `*`, IP addresses and anything with a dot (`reviews.prod`, `*.example.com`) stay as written.
 */
export function resolveHost(host: string, namespace: string, domainSuffix = defaultDomainSuffix): string {
  if (host === '*' || host.includes('.') || isIpAddress(host)) return host;
  return kubeServiceHost(host, namespace, domainSuffix);
}

/**
 * The hosts a name a client or a config uses may stand for, the Kubernetes Service first (as a
 * pod's resolver tries its search list `<ns>.svc.<suffix> svc.<suffix>` before the name as written,
 * ndots 5), then the name as written: `reviews` -> `reviews.<namespace>.svc.<suffix>`;
 * `reviews.prod` -> `reviews.prod.svc.<suffix>`, `reviews.prod`; `reviews.prod.svc` ->
 * `reviews.prod.svc.<suffix>`, `reviews.prod.svc`; FQDNs, wildcards and IP addresses as written.
 * The first of them the registry knows is the one meant (galley's analyzers, proxyless gRPC
 * targets, the local outbound proxy).
 */
export function hostCandidates(host: string, namespace: string, domainSuffix = defaultDomainSuffix): string[] {
  if (host === '' || isWildcardHost(host) || isIpAddress(host)) return [host];
  if (!host.includes('.')) return [kubeServiceHost(host, namespace, domainSuffix)];
  const dots = host.split('.').length - 1;
  if (dots === 1) return [`${host}.svc.${domainSuffix}`, host];
  if (dots === 2 && host.endsWith('.svc')) return [`${host}.${domainSuffix}`, host];
  return [host];
}
