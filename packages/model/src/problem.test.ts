import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.ts';
import { formatPath, formatProblem } from './problem.ts';

describe('formatPath', () => {
  it('writes indexes and quotes keys that are not identifiers', () => {
    expect(formatPath(['spec', 'http', 0, 'route', 1, 'weight'])).toBe('spec.http[0].route[1].weight');
    expect(formatPath(['metadata', 'labels', 'app.kubernetes.io/name'])).toBe('metadata.labels["app.kubernetes.io/name"]');
    expect(formatPath([])).toBe('');
  });
  it('formats a problem like a compiler', () => {
    const line = formatProblem({ severity: 'error', path: 'spec.hosts[0]', message: 'bad host', file: 'a.yaml', line: 3, column: 5 }, 'VirtualService default/r');
    expect(line).toBe('a.yaml:3:5: error: VirtualService default/r: spec.hosts[0]: bad host');
  });
});

describe('parseDuration', () => {
  it('accepts Go and protojson durations', () => {
    expect(parseDuration('10ms')).toBeCloseTo(0.01);
    expect(parseDuration('1.5s')).toBe(1.5);
    expect(parseDuration('1h30m')).toBe(5400);
    expect(parseDuration('3600s')).toBe(3600);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('-2s')).toBe(-2);
  });
  it('rejects text that is not a duration', () => {
    for (const bad of ['', '10', 's', '1x', '1 s', 'abc', '1.2.3s']) expect(parseDuration(bad), bad).toBeUndefined();
  });
});
