/** DNS suffix of Kubernetes-style service names. */
export const defaultDomainSuffix = 'cluster.local';

/**
 * Resolves a host as written in a config of `namespace` to a fully qualified name, as Istio does:
 * a short name `reviews` is `reviews.<namespace>.svc.cluster.local`; anything with a dot, and
 * wildcards, are taken as written.
 */
export function resolveHost(host: string, namespace: string, domainSuffix = defaultDomainSuffix): string {
  if (host === '*' || host.startsWith('*') || host.includes('.')) return host;
  return `${host}.${namespace}.svc.${domainSuffix}`;
}

/** Whether `pattern` (possibly `*.example.com` or `*`) covers `host` (possibly itself a wildcard). */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1);
    if (host.startsWith('*')) return host.slice(1).endsWith(suffix);
    return host.endsWith(suffix);
  }
  return false;
}

/** Whether two host patterns can match a common name. */
export function hostsOverlap(a: string, b: string): boolean {
  return hostMatches(a, b) || hostMatches(b, a);
}
