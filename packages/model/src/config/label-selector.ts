// Kubernetes label selectors (metav1.LabelSelector): one matcher for every place that selects by
// labels with matchLabels and matchExpressions (a Deployment's template, MeshConfig's
// discoverySelectors, webhook namespace selectors).
import type { K8sLabelSelector } from '../generated/types.ts';

/**
 * Whether `labels` satisfy `selector`: every matchLabels pair and every expression (In, NotIn,
 * Exists, DoesNotExist). An empty selector matches everything. Tolerates a malformed selector (as
 * read from user input before validation): parts that are not of the right shape are ignored.
 */
export function labelSelectorMatches(selector: K8sLabelSelector, labels: Readonly<Record<string, unknown>>): boolean {
  const matchLabels = selector.matchLabels;
  if (typeof matchLabels === 'object' && matchLabels !== null) {
    for (const [k, v] of Object.entries(matchLabels)) if (labels[k] !== v) return false;
  }
  for (const req of Array.isArray(selector.matchExpressions) ? selector.matchExpressions : []) {
    if (typeof req !== 'object' || req === null) continue;
    const has = Object.hasOwn(labels, req.key);
    const values: readonly unknown[] = Array.isArray(req.values) ? req.values : [];
    switch (req.operator) {
      case 'In':
        if (!has || !values.includes(labels[req.key])) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[req.key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}
