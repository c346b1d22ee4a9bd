import { describe, expect, it } from 'vitest';
import { ProblemList } from '../problem.ts';
import { widgetKind } from '../testing.ts';
import { validateStructure } from './structural.ts';

function check(spec: unknown) {
  const out = new ProblemList();
  validateStructure(widgetKind.spec, spec, ['spec'], out);
  return out.items.map((p) => `${p.path}: ${p.message}`);
}

describe('validateStructure', () => {
  it('accepts a well-formed spec', () => {
    expect(check({ hosts: ['a'], port: 80, weight: 10, mode: 'ON', timeout: '1s', labels: { a: 'b' }, match: { exact: '/' }, routes: [{ name: 'x' }] })).toEqual([]);
  });
  it('reports unknown fields with a suggestion', () => {
    expect(check({ hostz: ['a'] })).toEqual(['spec.hostz: unknown field "hostz" (did you mean "hosts"?)']);
  });
  it('reports every wrong type in one pass', () => {
    expect(check({ hosts: 'a', port: 'eighty', mode: 1, labels: { a: 3 } })).toEqual([
      'spec.hosts: expected a list, got string "a"',
      'spec.port: expected an integer, got string "eighty"',
      'spec.mode: expected a string, got number 1',
      'spec.labels.a: expected a string, got number 3',
    ]);
  });
  it('checks enums, ranges, durations and required fields', () => {
    expect(check({ mode: 'MAYBE', weight: 101, port: -1, timeout: '10', routes: [{ weight: 1 }] })).toEqual([
      'spec.mode: "MAYBE" is not one of ON, OFF',
      'spec.weight: 101 is above the maximum 100',
      'spec.port: -1 is below the minimum 0',
      'spec.timeout: "10" is not a duration (use a number and a unit: 10ms, 1.5s, 2m, 1h)',
      'spec.routes[0].name: required field "name" is missing',
    ]);
  });
  it('allows at most one alternative of a oneof', () => {
    expect(check({ match: { exact: '/', prefix: '/a' } })).toEqual(['spec.match.prefix: only one of exact, prefix, regex may be set, found exact and prefix']);
  });
  it('treats null as unset', () => {
    expect(check({ hosts: null, match: null })).toEqual([]);
  });
});
