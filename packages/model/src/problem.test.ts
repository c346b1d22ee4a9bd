import { describe, expect, it } from 'vitest';
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

