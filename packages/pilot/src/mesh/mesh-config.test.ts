import { describe, expect, it } from 'vitest';
import { defaultMeshConfig } from '../core/types.ts';
import { MeshConfigError, parseMeshConfig } from './mesh-config.ts';

describe('parseMeshConfig', () => {
  it('reads the fields Weft uses and keeps defaults for the rest', () => {
    const m = parseMeshConfig(
      [
        'accessLogFile: /dev/stdout',
        'enableTracing: true',
        'outboundTrafficPolicy:',
        '  mode: REGISTRY_ONLY',
        'defaultConfig:',
        '  tracing:',
        '    sampling: 100',
        'extensionProviders:',
        '- name: otel',
        '  opentelemetry:',
        '    service: otel-collector.observability.svc.cluster.local',
        '    port: 4317',
        'defaultProviders:',
        '  tracing: [otel]',
        'someFieldWeftIgnores: 1',
      ].join('\n'),
      'mesh.yaml',
    );
    expect(m.accessLogFile).toBe('/dev/stdout');
    expect(m.enableTracing).toBe(true);
    expect(m.tracingSampling).toBe(100);
    expect(m.outboundTrafficPolicy).toBe('REGISTRY_ONLY');
    expect(m.extensionProviders).toEqual([{ name: 'otel', opentelemetry: { service: 'otel-collector.observability.svc.cluster.local', port: 4317 } }]);
    expect(m.defaultTracingProviders).toEqual(['otel']);
    expect(m.trustDomain).toBe(defaultMeshConfig.trustDomain);
  });

  it('names the file, line and field of a value of the wrong type', () => {
    const text = ['accessLogFile: /dev/stdout', 'defaultConfig:', '  tracing:', '    sampling: lots'].join('\n');
    expect(() => parseMeshConfig(text, 'mesh.yaml')).toThrow(MeshConfigError);
    expect(() => parseMeshConfig(text, 'mesh.yaml')).toThrow('mesh.yaml:4: defaultConfig.tracing.sampling must be a number');
  });

  it('reads discoverySelectors (Istio’s label selectors) and says which part of one is wrong', () => {
    const m = parseMeshConfig(
      ['discoverySelectors:', '- matchLabels: {team: a}', '- matchExpressions:', '  - {key: env, operator: In, values: [prod, staging]}', '  - {key: legacy, operator: DoesNotExist}'].join('\n'),
      'mesh.yaml',
    );
    expect(m.discoverySelectors).toEqual([
      { matchLabels: { team: 'a' } },
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'staging'] }, { key: 'legacy', operator: 'DoesNotExist' }] },
    ]);
    expect(() => parseMeshConfig('discoverySelectors:\n- matchExpressions:\n  - {key: env, operator: Like, values: [a]}', 'mesh.yaml')).toThrow(
      'mesh.yaml:3: discoverySelectors.0.matchExpressions.0.operator must be In, NotIn, Exists or DoesNotExist',
    );
    expect(() => parseMeshConfig('discoverySelectors:\n- matchExpressions:\n  - {key: env, operator: In}', 'mesh.yaml')).toThrow('discoverySelectors.0.matchExpressions.0.values must be non-empty for In');
    expect(() => parseMeshConfig('discoverySelectors: {team: a}', 'mesh.yaml')).toThrow('mesh.yaml:1: discoverySelectors must be a list of label selectors');
  });

  it('an empty file is the defaults', () => {
    expect(parseMeshConfig('', 'mesh.yaml')).toEqual(defaultMeshConfig);
  });
});
