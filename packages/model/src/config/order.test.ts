import { describe, expect, it } from 'vitest';
import { loadText } from '../yaml/loader.ts';
import { testRegistry } from '../testing.ts';
import { configOrder, creationTime, formatTimestamp, parseTimestamp } from './order.ts';

const meta = (name: string, namespace: string, creationTimestamp?: string) => ({ metadata: { name, namespace, ...(creationTimestamp ? { creationTimestamp } : {}) } });

describe('timestamps', () => {
  it('reads RFC 3339 as Kubernetes does, with fractions and offsets, and refuses what Go refuses', () => {
    expect(parseTimestamp('2024-05-01T12:00:00Z')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(parseTimestamp('2024-05-01T12:00:00.250Z')).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 250));
    expect(parseTimestamp('2024-05-01T14:00:00+02:00')).toBe(Date.UTC(2024, 4, 1, 12));
    for (const bad of ['2024-02-30T00:00:00Z', '2024-05-01 12:00:00Z', '2024-05-01T12:00:00', 'yesterday', '2024-05-01T24:00:00Z']) expect(parseTimestamp(bad)).toBeUndefined();
    expect(formatTimestamp(Date.UTC(2024, 4, 1, 12, 0, 0, 250))).toBe('2024-05-01T12:00:00.250Z');
  });

  it('counts a config without a timestamp as the oldest', () => {
    expect(creationTime(meta('a', 'ns'))).toBe(0);
    expect(creationTime(meta('a', 'ns', '1970-01-01T00:00:01Z'))).toBe(1000);
  });

  it('rejects a creationTimestamp that is not a time, at its line', () => {
    const text = 'apiVersion: test.weft.dev/v1\nkind: Widget\nmetadata:\n  name: a\n  creationTimestamp: last tuesday\nspec: {port: 80}\n';
    const r = loadText(text, 'a.yaml', { registry: testRegistry() });
    expect(r.resources[0]!.problems).toEqual([expect.objectContaining({ severity: 'error', path: 'metadata.creationTimestamp', line: 5 })]);
  });
});

describe("Istio's config order", () => {
  it('puts the oldest first, then orders by name, then by namespace', () => {
    const configs = [
      meta('z-old', 'b', '2024-01-01T00:00:00Z'),
      meta('a-new', 'a', '2024-03-01T00:00:00Z'),
      meta('a-new-ms', 'a', '2024-03-01T00:00:00.001Z'),
      meta('same', 'b', '2024-01-01T00:00:00Z'),
      meta('same', 'a', '2024-01-01T00:00:00Z'),
      meta('none', 'x'),
    ];
    expect(configs.sort(configOrder).map((c) => `${c.metadata.namespace}/${c.metadata.name}`)).toEqual(['x/none', 'a/same', 'b/same', 'b/z-old', 'a/a-new', 'a/a-new-ms']);
  });
});
