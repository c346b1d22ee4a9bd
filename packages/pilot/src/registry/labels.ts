// Label selection and label sets, shared by the registries and the push context. (Istio's order
// of configs is @weft/model's configOrder.)
/** Whether every label of `selector` is on `labels` with the same value (an empty selector selects everything). */
export function selectsLabels(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/** A stable text form of a label set, for cache keys. */
export function labelsKey(labels: Readonly<Record<string, string>> | undefined): string {
  if (!labels) return '';
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

export function isEmptyLabels(labels: Readonly<Record<string, string>> | undefined): boolean {
  return !labels || Object.keys(labels).length === 0;
}

/** Keeps only string values: YAML may carry numbers or booleans where labels are expected. */
export function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!value || typeof value !== 'object' || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
  }
  return out;
}
