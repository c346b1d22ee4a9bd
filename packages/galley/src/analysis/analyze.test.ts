import { describe, expect, it } from 'vitest';
import { allProblems, analyze, defaultAnalyzers, effectiveConfigs } from './analyze.ts';
import type { Analyzer } from './context.ts';
import { lineOf, load, reviewsPlatform } from './test-support.ts';

const vs = (name: string, subset: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: ${subset}
`;

describe('analyze', () => {
  it('returns the problems of each config, located in its source file', () => {
    const text = vs('reviews', 'v1');
    const configs = load(reviewsPlatform, text);
    const result = analyze(configs);
    expect([...result.keys()]).toEqual(configs);
    const problems = result.get(configs.at(-1)!)!;
    expect(problems).toEqual([
      {
        severity: 'error',
        code: 'IST0101',
        path: 'spec.http[0].route[0].destination.subset',
        message: 'Referenced subset not found: "v1" for host reviews.default.svc.cluster.local (no DestinationRule defines subsets for this host)',
        file: 'test-1.yaml',
        line: lineOf(text, 'subset'),
        column: 9,
      },
    ]);
    expect(allProblems(result)).toEqual(problems);
  });

  it('treats configs with the same kind, namespace and name as one object: the last one wins', () => {
    const first = vs('reviews', 'v1');
    const second = vs('reviews', 'v2');
    const configs = load(reviewsPlatform, first, second);
    expect(effectiveConfigs(configs)).toEqual([...configs.slice(0, 3), configs[4]]);
    const result = analyze(configs);
    expect(result.has(configs[3]!)).toBe(false);
    const problems = allProblems(result);
    // Only the surviving VirtualService is analyzed, and the two are not reported as conflicting (IST0109).
    expect(problems.map((p) => [p.code, p.file, p.message.slice(0, 36)])).toEqual([['IST0101', 'test-2.yaml', 'Referenced subset not found: "v2" fo']]);
  });

  it('runs the analyzers given, with a context that finds configs by kind and name', () => {
    const seen: string[] = [];
    const probe: Analyzer = {
      name: 'test.Probe',
      description: 'reports every VirtualService host',
      analyze(ctx) {
        for (const v of ctx.of('networking.istio.io/VirtualService')) {
          ctx.report(v, ['spec', 'hosts', 0], 'TEST1', 'warning', `host ${v.spec.hosts?.[0]}`);
        }
        seen.push(ctx.get('/Service', 'default', 'reviews')?.metadata.name ?? 'none');
        seen.push(ctx.services.lookup('reviews', 'default').service?.host ?? 'none');
        seen.push(String(ctx.services.workloads.length));
      },
    };
    const text = vs('r', 'v1');
    const result = analyze(load(reviewsPlatform, text), [probe]);
    expect(allProblems(result)).toEqual([expect.objectContaining({ code: 'TEST1', severity: 'warning', message: 'host reviews', path: 'spec.hosts[0]', line: lineOf(text, 'hosts') })]);
    expect(seen).toEqual(['reviews', 'reviews.default.svc.cluster.local', '2']);
  });

  it('names the analyzer that failed', () => {
    const broken: Analyzer = {
      name: 'test.Broken',
      description: '',
      analyze() {
        throw new Error('boom');
      },
    };
    expect(() => analyze([], [broken])).toThrow('analyzer test.Broken failed: boom');
  });

  it('does not crash on configs of the wrong shape', () => {
    const weird = [
      { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'x', namespace: 'default' }, spec: { hosts: 'reviews', http: [null, { route: 'x' }] } },
      { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'x', namespace: 'default' }, spec: { host: 3, subsets: {} } },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'x', namespace: 'default' }, spec: { ports: [null, { port: 'a' }] } },
      { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'x', namespace: 'default' }, spec: { selector: 'x', servers: [{}] } },
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x', namespace: 'default' }, spec: null },
    ];
    expect(() => analyze(weird)).not.toThrow();
  });

  it('has uniquely named analyzers', () => {
    const names = defaultAnalyzers.map((a) => a.name);
    expect(new Set(names).size).toBe(names.length);
  });
});
