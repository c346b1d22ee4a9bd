import { describe, expect, it } from 'vitest';
import type { RegistryChange } from '../core/types.ts';
import { AggregateRegistry } from './aggregate.ts';
import { ServiceEntryRegistry } from './service-entry.ts';
import { apply, storeFrom } from './test-support.ts';

const entry = (name: string, protocol: string, address: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [shared.example.com]
  resolution: STATIC
  ports: [{number: 80, name: ${protocol}}]
  endpoints: [{address: ${address}}]
`;

describe('AggregateRegistry', () => {
  it('takes a duplicate hostname+namespace from the first registry and merges endpoints from all', () => {
    const first = new ServiceEntryRegistry(storeFrom(entry('a', 'http', '10.0.0.1')), { name: 'first' });
    const second = new ServiceEntryRegistry(
      storeFrom(
        entry('b', 'tcp', '10.0.0.2'),
        `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: only-here, namespace: default}
spec:
  hosts: [other.example.com]
  ports: [{number: 443, name: tls}]
`,
      ),
      { name: 'second' },
    );
    const agg = new AggregateRegistry([first, second]);
    expect(agg.services().map((s) => `${s.hostname}:${s.ports[0]!.protocol}:${s.origin.name}`)).toEqual(['shared.example.com:HTTP:a', 'other.example.com:TLS:only-here']);
    expect(agg.endpoints('shared.example.com', 'default', 80).map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(agg.workloads().map((w) => w.address)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(agg.registries.map((r) => r.name)).toEqual(['first', 'second']);
  });

  it('forwards its members changes, and announces members joining or leaving as service changes', () => {
    const store = storeFrom(entry('a', 'http', '10.0.0.1'));
    const member = new ServiceEntryRegistry(store, { name: 'se' });
    const agg = new AggregateRegistry([member]);
    const changes: RegistryChange[] = [];
    agg.onChange((c) => changes.push(c));
    expect(agg.services()).toHaveLength(1);

    apply(store, entry('a', 'http', '10.0.0.9'));
    apply(store, entry('a', 'tcp', '10.0.0.9'));
    expect(changes.map((c) => [c.services, [...c.endpoints]])).toEqual([
      [false, ['shared.example.com']],
      [true, ['shared.example.com']],
    ]);
    // The cached service list follows a service change.
    expect(agg.services()[0]!.ports[0]!.protocol).toBe('TCP');

    const extra = new ServiceEntryRegistry(storeFrom(entry('z', 'http', '10.0.0.3')), { name: 'extra' });
    agg.add(extra);
    expect(agg.endpoints('shared.example.com', 'default', 80).map((e) => e.address)).toEqual(['10.0.0.9', '10.0.0.3']);
    expect(agg.remove('extra')).toBe(true);
    expect(agg.remove('extra')).toBe(false);
    expect(changes.slice(2).map((c) => c.services)).toEqual([true, true]);
    expect(agg.endpoints('shared.example.com', 'default', 80).map((e) => e.address)).toEqual(['10.0.0.9']);

    agg.close();
    apply(store, entry('a', 'tcp', '10.0.0.8'));
    expect(changes).toHaveLength(4);
  });
});
