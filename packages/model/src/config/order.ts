// Istio's order of configs, and the creation timestamps it rests on. Whenever two configs compete
// (two VirtualServices for one host, two DestinationRules, two ServiceEntries defining a hostname,
// two namespace-wide Sidecars or PeerAuthentications) Istio keeps the one that comes first in this
// order: the oldest, then by name, then by namespace (model.sortConfigByCreationTime).
import type { Config } from './config.ts';

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Milliseconds since the epoch of an RFC 3339 timestamp (Kubernetes' `metav1.Time`:
 * `2024-05-01T12:00:00Z`, fractional seconds and offsets allowed), or undefined when it is not one.
 */
export function parseTimestamp(text: string): number | undefined {
  const m = rfc3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  // Date.parse rolls 2024-02-30 over into March; Go's time.Parse (and so Kubernetes) refuses it.
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * The form Weft writes: RFC 3339 in UTC with milliseconds. Kubernetes keeps whole seconds, so two
 * objects created within one second tie there and their names decide; Istio's own in-memory and
 * file stores keep the full time.Now(), and so does Weft (to the millisecond), so that of two
 * objects applied one after the other the first stays the older.
 */
export function formatTimestamp(ms: number): string {
  return new Date(ms).toISOString();
}

/** A config's creation time in milliseconds; 0 (the oldest possible, as Go's zero time) when it has none. */
export function creationTime(c: Pick<Config, 'metadata'>): number {
  const t = c.metadata.creationTimestamp;
  return (t === undefined ? undefined : parseTimestamp(t)) ?? 0;
}

/** Byte-wise comparison, as Go's `strings.Compare` (locale-independent). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Istio's configCompareByCreationTime: oldest first, then by name, then by namespace. */
export function configOrder(a: Pick<Config, 'metadata'>, b: Pick<Config, 'metadata'>): number {
  return (
    creationTime(a) - creationTime(b) ||
    compareStrings(a.metadata.name, b.metadata.name) ||
    compareStrings(a.metadata.namespace, b.metadata.namespace)
  );
}
