import { describe, expect, it } from 'vitest';
import { exportScope, isExportedTo } from './export-to.ts';

const scope = (exportTo: string[] | undefined) => [...exportScope(exportTo, 'bookinfo')].sort();

describe('exportTo (Istio’s push context)', () => {
  it('is everyone without a list', () => {
    expect(scope(undefined)).toEqual(['*']);
    expect(scope([])).toEqual(['*']);
  });

  it('reads `.` as the own namespace and names as namespaces', () => {
    expect(scope(['.'])).toEqual(['bookinfo']);
    expect(scope(['.', 'istio-system'])).toEqual(['bookinfo', 'istio-system']);
  });

  // galley's analysis dropped `~` and kept the other names ({foo}); pilot and Istio export to no one.
  it('reads `~` as no one, whatever else the list names', () => {
    expect(scope(['~'])).toEqual([]);
    expect(scope(['~', 'foo'])).toEqual([]);
    expect(scope(['.', '~'])).toEqual([]);
  });

  it('lets `*` win over everything, `~` included', () => {
    expect(scope(['*', '~'])).toEqual(['*']);
    expect(scope(['.', '*'])).toEqual(['*']);
  });

  it('takes the mesh default when the config gives none', () => {
    expect([...exportScope(undefined, 'bookinfo', ['.'])]).toEqual(['bookinfo']);
    expect([...exportScope([], 'bookinfo', ['~'])]).toEqual([]);
    expect([...exportScope(['*'], 'bookinfo', ['.'])]).toEqual(['*']);
    expect([...exportScope(undefined, 'bookinfo', [])]).toEqual(['*']);
  });

  it('answers who sees it', () => {
    expect(isExportedTo(exportScope(['.'], 'bookinfo'), 'bookinfo')).toBe(true);
    expect(isExportedTo(exportScope(['.'], 'bookinfo'), 'other')).toBe(false);
    expect(isExportedTo(exportScope(undefined, 'bookinfo'), 'other')).toBe(true);
    expect(isExportedTo(exportScope(['~'], 'bookinfo'), 'bookinfo')).toBe(false);
  });
});
