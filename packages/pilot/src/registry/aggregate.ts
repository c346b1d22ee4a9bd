// Several registries seen as one: ServiceEntries now, Kubernetes Services and Pods later.
import type { Endpoint, Service, WorkloadInstance } from '@weft/model';
import type { RegistryChange, ServiceRegistry } from '../core/types.ts';

const noEndpoints: readonly Endpoint[] = Object.freeze([]);

/**
 * Combines registries in the order given. A hostname defined in the same namespace by two
 * registries is the first registry's service; endpoints of a hostname are merged from every
 * registry that has some (Istio shards endpoints by registry the same way). Changes of any
 * member are forwarded as they are; adding or removing a member is a `{services: true}` change.
 *
 * Single-threaded (Node). The merged service list is computed on demand and kept until a
 * member reports a change.
 */
export class AggregateRegistry implements ServiceRegistry {
  readonly name: string;
  readonly #members: { registry: ServiceRegistry; unsubscribe: () => void }[] = [];
  readonly #listeners = new Set<(change: RegistryChange) => void>();
  #services: readonly Service[] | undefined;

  constructor(registries: readonly ServiceRegistry[] = [], opts: { name?: string } = {}) {
    this.name = opts.name ?? 'aggregate';
    for (const r of registries) this.#attach(r);
  }

  /** The members, in precedence order. */
  get registries(): readonly ServiceRegistry[] {
    return this.#members.map((m) => m.registry);
  }

  /** Appends a registry (lowest precedence) and announces a full change. */
  add(registry: ServiceRegistry): void {
    this.#attach(registry);
    this.#forward({ services: true, endpoints: new Set() });
  }

  /** Removes a registry by name; returns whether one was removed. */
  remove(name: string): boolean {
    const i = this.#members.findIndex((m) => m.registry.name === name);
    if (i < 0) return false;
    this.#members[i]!.unsubscribe();
    this.#members.splice(i, 1);
    this.#forward({ services: true, endpoints: new Set() });
    return true;
  }

  /** Stops listening to the members. */
  close(): void {
    for (const m of this.#members) m.unsubscribe();
    this.#members.length = 0;
    this.#listeners.clear();
  }

  services(): readonly Service[] {
    if (this.#services) return this.#services;
    const seen = new Set<string>();
    const out: Service[] = [];
    for (const { registry } of this.#members) {
      for (const s of registry.services()) {
        const key = `${s.namespace}/${s.hostname}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(s);
      }
    }
    this.#services = out;
    return out;
  }

  endpoints(hostname: string, namespace: string, port: number): readonly Endpoint[] {
    let only: readonly Endpoint[] | undefined;
    let merged: Endpoint[] | undefined;
    for (const { registry } of this.#members) {
      const eps = registry.endpoints(hostname, namespace, port);
      if (eps.length === 0) continue;
      if (!only) only = eps;
      else merged = [...(merged ?? only), ...eps];
    }
    return merged ?? only ?? noEndpoints;
  }

  workloads(): readonly WorkloadInstance[] {
    if (this.#members.length === 1) return this.#members[0]!.registry.workloads();
    return this.#members.flatMap((m) => m.registry.workloads());
  }

  onChange(listener: (change: RegistryChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #attach(registry: ServiceRegistry): void {
    const unsubscribe = registry.onChange((change) => this.#forward(change));
    this.#members.push({ registry, unsubscribe });
    this.#services = undefined;
  }

  #forward(change: RegistryChange): void {
    if (change.services) this.#services = undefined;
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch (e) {
        console.error(JSON.stringify({ level: 'error', msg: 'registry listener failed', registry: this.name, error: String(e) }));
      }
    }
  }
}
