import { describe, expect, it } from 'vitest';
import { localityOfLabels } from './locality.ts';

describe('localityOfLabels (Istio GetLocalityLabel + SanitizeLocalityLabel)', () => {
  it('reads topology.istio.io/locality first, then istio-locality; dots stand for slashes unless slashes are there', () => {
    expect(localityOfLabels({ 'istio-locality': 'us-east.us-east-1a.rack1' })).toBe('us-east/us-east-1a/rack1');
    expect(localityOfLabels({ 'topology.istio.io/locality': 'eu-west.b', 'istio-locality': 'us-east.a' })).toBe('eu-west/b');
    expect(localityOfLabels({ 'istio-locality': 'us-east/zone.with.dots' })).toBe('us-east/zone.with.dots');
    expect(localityOfLabels({ app: 'x' })).toBeUndefined();
  });
});
