// Small rules shared by the registries and the push context: Istio's ordering of configs and
// label selection.
import type { Config } from '@weft/model';

function created(c: Config): number {
  const t = c.metadata.creationTimestamp;
  if (!t) return 0;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? 0 : ms;
}

/**
 * Istio's order of configs of one kind (`sortConfigByCreationTime`): oldest first, then by name,
 * then by namespace. Configs without a timestamp count as the oldest, so files without
 * timestamps are ordered by name.
 */
export function istioOrder(a: Config, b: Config): number {
  return (
    created(a) - created(b) ||
    compareStrings(a.metadata.name, b.metadata.name) ||
    compareStrings(a.metadata.namespace, b.metadata.namespace)
  );
}

/** Byte-wise comparison, as Go's `cmp.Compare` on strings (locale-independent). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

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
