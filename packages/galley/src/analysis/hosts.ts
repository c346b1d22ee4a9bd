// Which service a host in a config may stand for, for the analyzers' lookups. Istio's host rules
// (matching, FQDNs) are @weft/mesh's.

import { defaultDomainSuffix, isWildcardHost, kubeServiceHost } from '@weft/mesh';

/**
 * The names a host may stand for, most likely first:
 * - `reviews` (no dot) in namespace `default`: `reviews.default.svc.cluster.local`;
 * - `reviews.prod` (one dot): `reviews.prod.svc.cluster.local`, then `reviews.prod` itself
 *   (it may also be an external name such as `example.com`);
 * - `reviews.prod.svc`: `reviews.prod.svc.cluster.local`, then itself;
 * - anything else (FQDNs, wildcards): itself.
 */
export function hostCandidates(host: string, namespace: string): string[] {
  if (host === '' || isWildcardHost(host)) return [host];
  const dots = host.split('.').length - 1;
  if (dots === 0) return [kubeServiceHost(host, namespace)];
  if (dots === 1) return [`${host}.svc.${defaultDomainSuffix}`, host];
  if (host.endsWith('.svc')) return [`${host}.${defaultDomainSuffix}`, host];
  return [host];
}
