// Defensive reads of specs. Analysis normally sees resources that passed validation, but it must
// not crash on one that did not: a field of the wrong type reads as absent.

export function list<T>(v: readonly T[] | T[] | undefined | null): readonly T[] {
  return Array.isArray(v) ? v : [];
}

export function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function labelsOf(v: unknown): Record<string, string> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** Whether `labels` carries every key/value of `selector` (an empty selector selects everything). */
export function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>> | undefined): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels?.[k] !== v) return false;
  return true;
}

export function isEmpty(o: Readonly<Record<string, string>> | undefined): boolean {
  return !o || Object.keys(o).length === 0;
}

/** `app=reviews,version=v1`, as Kubernetes prints selectors. */
export function formatLabels(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** `a, b and c`. */
export function joinWords(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** `"a", "b" and "c"`. */
export function quotedList(items: readonly string[]): string {
  return joinWords(items.map((s) => JSON.stringify(s)));
}

// One home: model's canonicalJson (specDigest hashes the same text).
export { canonicalJson } from '@weft/model';
