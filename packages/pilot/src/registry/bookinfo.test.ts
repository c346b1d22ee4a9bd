import { fileURLToPath } from 'node:url';
import { analyze } from '@weft/galley';
import { type Config, defaultKindRegistry, loadPaths, MemoryConfigStore } from '@weft/model';
import { describe, expect, it } from 'vitest';
import { buildPushContext } from '../push/context.ts';
import { sidecar } from '../push/test-support.ts';
import { ServiceEntryRegistry } from './service-entry.ts';

const bookinfo = fileURLToPath(new URL('../../../../examples/bookinfo/', import.meta.url));

async function load(paths: string[]): Promise<Config[]> {
  const r = await loadPaths(paths, { registry: defaultKindRegistry() });
  const problems = [...r.problems, ...r.resources.flatMap((x) => x.problems)].filter((p) => p.severity === 'error');
  expect(problems).toEqual([]);
  return r.resources.flatMap((x) => (x.config ? [x.config] : []));
}

describe('examples/bookinfo/platform/local', () => {
  it('analyzes without errors together with the networking configs (only the versions it does not run are warned about)', async () => {
    const configs = await load([`${bookinfo}networking`, `${bookinfo}platform/local`]);
    const found = [...analyze(configs)].flatMap(([c, problems]) => problems.map((p) => ({ name: c.metadata.name, severity: p.severity, code: p.code })));
    expect(found.filter((p) => p.severity === 'error')).toEqual([]);
    expect(new Set(found.map((p) => `${p.name}:${p.code}`))).toEqual(new Set(['ratings:IST0173', 'details:IST0173']));
  });

  it('routes every subset of virtual-service-all-v1 and of the reviews tasks to a running instance', async () => {
    const store = new MemoryConfigStore();
    for (const c of await load([`${bookinfo}platform/local`, `${bookinfo}networking/destination-rule-all.yaml`])) store.upsert(c);
    const push = buildPushContext({ store, registry: new ServiceEntryRegistry(store), version: 'v1' });
    const productpage = sidecar('default', '127.0.0.10', {}, 'productpage-v1');
    const cases: [string, string, string[]][] = [
      ['productpage', 'v1', ['127.0.0.10']],
      ['details', 'v1', ['127.0.0.11']],
      ['ratings', 'v1', ['127.0.0.12']],
      ['reviews', 'v1', ['127.0.0.13']],
      ['reviews', 'v2', ['127.0.0.14']],
      ['reviews', 'v3', ['127.0.0.15']],
    ];
    for (const [name, subset, addresses] of cases) {
      const host = `${name}.default.svc.cluster.local`;
      const labels = push.destinationRule(productpage, host)!.spec.subsets!.find((s) => s.name === subset)!.labels;
      const eps = push.endpoints(push.service(host, 'default')!, 9080, labels);
      expect(eps.map((e) => e.address)).toEqual(addresses);
      expect(eps.every((e) => e.tlsMode === 'istio' && e.serviceAccount === `bookinfo-${name}`)).toBe(true);
    }
  });
});
