// Host names as Istio reads them: short names are completed from the namespace of the config
// that names them, wildcards (`*.example.com`, `*`) match by suffix.

/** The Kubernetes cluster domain Weft assumes (Istio's default). */
export const clusterDomain = 'cluster.local';

export function isWildcard(host: string): boolean {
  return host.startsWith('*');
}

/** `reviews` in namespace `default` -> `reviews.default.svc.cluster.local`. */
export function kubeServiceHost(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.${clusterDomain}`;
}

/**
 * The names a host may stand for, most likely first:
 * - `reviews` (no dot) in namespace `default`: `reviews.default.svc.cluster.local`;
 * - `reviews.prod` (one dot): `reviews.prod.svc.cluster.local`, then `reviews.prod` itself
 *   (it may also be an external name such as `example.com`);
 * - `reviews.prod.svc`: `reviews.prod.svc.cluster.local`, then itself;
 * - anything else (FQDNs, wildcards): itself.
 */
export function hostCandidates(host: string, namespace: string): string[] {
  if (host === '' || isWildcard(host)) return [host];
  const dots = host.split('.').length - 1;
  if (dots === 0) return [kubeServiceHost(host, namespace)];
  if (dots === 1) return [`${host}.svc.${clusterDomain}`, host];
  if (host.endsWith('.svc')) return [`${host}.${clusterDomain}`, host];
  return [host];
}

/** The first candidate: the fully qualified name a short name stands for. */
export function toFqdn(host: string, namespace: string): string {
  return hostCandidates(host, namespace)[0] ?? host;
}

/** Whether `pattern` (possibly a wildcard) covers the concrete or wildcard host `host`. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (isWildcard(pattern)) {
    const suffix = pattern.slice(1);
    if (isWildcard(host)) return host.slice(1).endsWith(suffix);
    return host.endsWith(suffix) && host.length > suffix.length;
  }
  return pattern === host;
}

/** Whether two hosts, either possibly a wildcard, have any name in common. */
export function hostsOverlap(a: string, b: string): boolean {
  return hostMatches(a, b) || hostMatches(b, a);
}

/** Namespaces an `exportTo` list makes a config visible to: `*` for all, `.` for its own, `~` for none. */
export function exportScope(exportTo: readonly string[] | undefined, ownNamespace: string): Set<string> {
  if (!exportTo || exportTo.length === 0) return new Set(['*']);
  const out = new Set<string>();
  for (const e of exportTo) {
    if (e === '*') return new Set(['*']);
    if (e === '.') out.add(ownNamespace);
    else if (e !== '~') out.add(e);
  }
  return out;
}

export function visibleFrom(scope: ReadonlySet<string>, namespace: string): boolean {
  return scope.has('*') || scope.has(namespace);
}
