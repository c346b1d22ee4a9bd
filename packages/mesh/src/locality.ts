// Where a workload is: the labels that name its locality, as Istio reads them (GetLocalityLabel,
// SanitizeLocalityLabel). Kubernetes label values cannot hold `/`, so dots stand for slashes.

/** The locality label (`us-east.us-east-1a.rack1`); it wins over the legacy one. */
export const LocalityLabel = 'topology.istio.io/locality';
/** The legacy locality label, still read. */
export const LegacyLocalityLabel = 'istio-locality';

/** `region/zone/subzone` from a pod's or WorkloadEntry's (or a proxy's) labels; undefined when none names one. */
export function localityOfLabels(labels: Readonly<Record<string, string>>): string | undefined {
  const value = labels[LocalityLabel] || labels[LegacyLocalityLabel];
  if (!value) return undefined;
  return value.includes('/') ? value : value.replaceAll('.', '/');
}
