// The install renderer's own behaviour (its equality with `helm template` is deploy/charts' test):
// Helm's merge of values, and a values file's mistakes reported by path instead of a broken manifest.
import { describe, expect, it } from 'vitest';
import { installValues, mergeValues, renderInstall } from './manifests.ts';

describe('install values', () => {
  it('merge as Helm merges: maps key by key, lists and scalars replaced, null removes', () => {
    expect(mergeValues({ a: { b: 1, c: [1, 2] }, d: 'x', e: 1 }, { a: { c: [3] }, d: 'y', e: null })).toEqual({ a: { b: 1, c: [3] }, d: 'y' });
  });

  it('render every chart from the charts’ own defaults, in install order', () => {
    const charts = renderInstall(installValues());
    expect(charts.map((c) => c.chart)).toEqual(['base', 'weftd', 'gateway']);
    const weftd = charts[1]!.manifests;
    const deployment = weftd.find((m) => m.kind === 'Deployment')!;
    expect(JSON.stringify(deployment)).toContain('"image":"weft/weftd:0.1.0"');
    expect(renderInstall(installValues({}, { gateway: false })).map((c) => c.chart)).toEqual(['base', 'weftd']);
    // the revision selects the injector's webhooks: a named one answers istio.io/rev only
    const canary = renderInstall(installValues({ weftd: { revision: 'canary' } }))[1]!.manifests.find((m) => m.kind === 'MutatingWebhookConfiguration')!;
    expect((canary.webhooks as { name: string }[]).map((w) => w.name)).toEqual(['rev.namespace.sidecar-injector.istio.io', 'rev.object.sidecar-injector.istio.io']);
  });

  it('name a missing or mistyped value by its path', () => {
    expect(() => renderInstall(installValues({ weftd: { replicaCount: 'two' } }))).toThrow('values: weftd.replicaCount must be a number, not "two"');
    expect(() => renderInstall(installValues({ gateway: { labels: null } }))).toThrow('values: gateway.labels must be a mapping, and is missing');
    expect(() => renderInstall(installValues({ weftd: { podDisruptionBudget: { minAvailable: true } } }))).toThrow('weftd.podDisruptionBudget.minAvailable must be a number or a percentage, not true');
  });
});
