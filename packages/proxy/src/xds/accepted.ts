// What the client has accepted from pilot, per type: each resource's decoded object, bytes, version
// and when it changed; and the route configurations as the router takes them (virtual hosts
// assembled in, vhds.ts). A response is decoded and checked whole (decode, checkRoutes) before
// anything of it is taken in (accept): a response that fails is NACKed and changes nothing.
import { type Any__Output, decodeAny, type RouteConfiguration__Output, TypeUrl, type VirtualHost__Output } from '@weft/xds';
import type { XdsResponse } from './protocol.ts';
import { assembleRoutes, localVirtualHost, routeConfigOf } from './vhds.ts';
import type { AcceptedConfig } from './warming.ts';

/** When and at which version a resource last changed (for /config_dump). */
export interface ResourceInfo {
  version: string;
  lastUpdated: Date;
}

const ResourceWrapper = 'type.googleapis.com/envoy.service.discovery.v3.Resource';

/** The resource types the proxy subscribes to, in the order Envoy initializes them (delta adds VirtualHost after them). */
export const subscribedTypes = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration] as const;
export type SubscribedType = (typeof subscribedTypes)[number] | typeof TypeUrl.VirtualHost;
export const allTypes: readonly SubscribedType[] = [...subscribedTypes, TypeUrl.VirtualHost];

export const shortNames: Record<SubscribedType, string> = {
  [TypeUrl.Cluster]: 'cds',
  [TypeUrl.ClusterLoadAssignment]: 'eds',
  [TypeUrl.Listener]: 'lds',
  [TypeUrl.RouteConfiguration]: 'rds',
  [TypeUrl.VirtualHost]: 'vhds',
};

/** Everything of the type, not a list of names (the virtual hosts: of every route configuration pilot gives this proxy). */
export function isWildcard(t: SubscribedType): boolean {
  return t === TypeUrl.Listener || t === TypeUrl.Cluster || t === TypeUrl.VirtualHost;
}

function resourceName(t: SubscribedType, r: Record<string, unknown>): string {
  return String((t === TypeUrl.ClusterLoadAssignment ? r.cluster_name : r.name) ?? '');
}

export interface Decoded {
  resource: object;
  bytes: Buffer;
  /** The resource's version (delta). */
  version?: string;
}

/**
 * Checks one decoded resource before it is accepted; throws an Error whose message becomes the
 * NACK reason. The proxy's parts plug in here (the router compiles route configurations, the
 * listeners check their filters).
 */
export type ResourceValidator = (typeUrl: string, name: string, resource: unknown) => void;


export class AcceptedStore {
  readonly versions: Record<string, string> = {};
  readonly maps = new Map<SubscribedType, Map<string, object>>();
  readonly bytes = new Map<SubscribedType, Map<string, Buffer>>();
  readonly info = new Map<SubscribedType, Map<string, ResourceInfo>>();
  /** Resource versions as delta named them (initial_resource_versions on reconnect). */
  readonly held = new Map<SubscribedType, Map<string, string>>();
  /** Route configurations as the router takes them (virtual hosts assembled). */
  routes = new Map<string, RouteConfiguration__Output>();
  readonly everAccepted = new Set<SubscribedType>();
  readonly lastAccepted = new Map<SubscribedType, Date>();
  /** Responses accepted. */
  count = 0;
  readonly #validate: ResourceValidator | undefined;
  /** Route configurations whose inputs changed since `routes` was assembled. */
  readonly #dirtyRoutes = new Set<string>();

  constructor(validate: ResourceValidator | undefined) {
    this.#validate = validate;
    for (const t of allTypes) {
      this.maps.set(t, new Map());
      this.bytes.set(t, new Map());
      this.info.set(t, new Map());
      this.held.set(t, new Map());
    }
  }

  /** Puts in force the route configurations `checkRoutes` assembled for an accepted response. */
  commitRoutes(routes: Map<string, RouteConfiguration__Output>): void {
    this.routes = routes;
    this.#dirtyRoutes.clear();
  }

  /** Drops what is no longer subscribed (SotW EDS and RDS responses list only what changed). */
  keepOnly(t: SubscribedType, wanted: ReadonlySet<string>): void {
    const map = this.maps.get(t)!;
    for (const name of [...map.keys()]) {
      if (wanted.has(name)) continue;
      map.delete(name);
      this.bytes.get(t)!.delete(name);
      this.info.get(t)!.delete(name);
      this.held.get(t)!.delete(name);
      if (t === TypeUrl.RouteConfiguration) this.routes.delete(name);
    }
  }

  /** Everything accepted, as warming takes it. */
  config(secrets: ReadonlyMap<string, AcceptedConfig['secrets'] extends ReadonlyMap<string, infer S> ? S : never>): AcceptedConfig {
    return {
      versions: this.versions,
      listeners: this.maps.get(TypeUrl.Listener) as AcceptedConfig['listeners'],
      routes: this.routes,
      clusters: this.maps.get(TypeUrl.Cluster) as AcceptedConfig['clusters'],
      endpoints: this.maps.get(TypeUrl.ClusterLoadAssignment) as AcceptedConfig['endpoints'],
      secrets,
    };
  }

  /** Decodes and checks every resource; throws with a reason naming the resource on the first problem. */
  decode(t: SubscribedType, resources: XdsResponse['resources']): Map<string, Decoded> {
    const out = new Map<string, Decoded>();
    const oldBytes = this.bytes.get(t)!;
    const oldMap = this.maps.get(t)!;
    for (const [i, raw] of resources.entries()) {
      let any: Any__Output = raw.any;
      if (any.type_url === ResourceWrapper) {
        const wrapped = decodeAny(any, ResourceWrapper) as { resource?: Any__Output | null };
        if (!wrapped.resource) throw new Error(`resource ${i}: an empty Resource wrapper`);
        any = wrapped.resource;
      }
      if (any.type_url !== t) throw new Error(`resource ${i}: type ${any.type_url} in a ${shortNames[t].toUpperCase()} response`);
      const bytes = Buffer.isBuffer(any.value) ? any.value : Buffer.from(any.value);
      let resource: object;
      let name: string;
      try {
        resource = decodeAny(any) as object;
        name = raw.name || resourceName(t, resource as Record<string, unknown>);
      } catch (err) {
        throw new Error(`resource ${i}: cannot decode ${shortNames[t].toUpperCase()} resource: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (!name) throw new Error(`resource ${i}: ${shortNames[t].toUpperCase()} resource without a name`);
      if (out.has(name)) throw new Error(`${kindOf(t)} ${name}: listed twice in one response`);
      const previous = oldBytes.get(name);
      if (previous?.equals(bytes)) {
        // Unchanged: keep the object, so everything cached against it stays valid.
        out.set(name, { resource: oldMap.get(name)!, bytes: previous, ...(raw.version ? { version: raw.version } : {}) });
        continue;
      }
      if (t === TypeUrl.VirtualHost) {
        // Checked within its route configuration (#checkRoutes): domains must be unique across virtual hosts.
        if (routeConfigOf(name) === undefined) throw new Error(`virtual host ${name}: not named <route configuration>/<virtual host>`);
        resource = localVirtualHost(name, resource as VirtualHost__Output);
      } else if (this.#validate) {
        try {
          this.#validate(t, name, resource);
        } catch (err) {
          throw new Error(`${kindOf(t)} ${name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      out.set(name, { resource, bytes, ...(raw.version ? { version: raw.version } : {}) });
    }
    return out;
  }

  /**
   * For route configurations and virtual hosts: the route configurations the router would take if
   * the response were accepted, each one whose inputs changed checked as a whole (throws for the NACK).
   */
  checkRoutes(t: SubscribedType, decoded: Map<string, Decoded>, removed: readonly string[], full: boolean): Map<string, RouteConfiguration__Output> | undefined {
    if (t !== TypeUrl.RouteConfiguration && t !== TypeUrl.VirtualHost) return undefined;
    const next = <V>(current: ReadonlyMap<string, V>): Map<string, V> => {
      const m = new Map(current);
      if (full) for (const name of m.keys()) if (!decoded.has(name)) m.delete(name);
      for (const name of removed) m.delete(name);
      for (const [name, d] of decoded) m.set(name, d.resource as V);
      return m;
    };
    const rds = this.maps.get(TypeUrl.RouteConfiguration) as Map<string, RouteConfiguration__Output>;
    const vhds = this.maps.get(TypeUrl.VirtualHost) as Map<string, VirtualHost__Output>;
    const dirty = new Set(this.#dirtyRoutes);
    for (const name of [...decoded.keys(), ...removed]) {
      const rc = t === TypeUrl.RouteConfiguration ? name : routeConfigOf(name);
      if (rc !== undefined) dirty.add(rc);
    }
    const routes = assembleRoutes(t === TypeUrl.RouteConfiguration ? next(rds) : rds, t === TypeUrl.VirtualHost ? next(vhds) : vhds, this.routes, dirty);
    if (this.#validate) {
      for (const name of dirty) {
        const rc = routes.get(name);
        if (!rc?.vhds) continue;
        try {
          this.#validate(TypeUrl.RouteConfiguration, name, rc);
        } catch (err) {
          throw new Error(`route configuration ${name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    return routes;
  }

  /** Takes a checked response in; returns how many resources changed. */
  accept(t: SubscribedType, version: string, decoded: Map<string, Decoded>, removed: readonly string[], full: boolean): number {
    const map = this.maps.get(t)!;
    const bytes = this.bytes.get(t)!;
    const info = this.info.get(t)!;
    const held = this.held.get(t)!;
    const now = new Date();
    let changed = 0;
    const drop = (name: string) => {
      if (!map.delete(name)) return;
      bytes.delete(name);
      info.delete(name);
      held.delete(name);
      changed++;
    };
    if (full) for (const name of [...map.keys()]) if (!decoded.has(name)) drop(name);
    for (const name of removed) drop(name);
    for (const [name, d] of decoded) {
      if (d.version) held.set(name, d.version);
      if (map.get(name) === d.resource) continue;
      map.set(name, d.resource);
      bytes.set(name, d.bytes);
      info.set(name, { version, lastUpdated: now });
      changed++;
    }
    if (t === TypeUrl.VirtualHost && changed > 0) {
      // The route configuration a virtual host belongs to changed with it (config_dump, syncz).
      const rdsInfo = this.info.get(TypeUrl.RouteConfiguration)!;
      for (const name of [...decoded.keys(), ...removed]) {
        const rc = routeConfigOf(name);
        if (rc !== undefined && rdsInfo.has(rc)) rdsInfo.set(rc, { version, lastUpdated: now });
      }
    }
    this.versions[t] = version;
    this.everAccepted.add(t);
    this.lastAccepted.set(t, now);
    this.count++;
    return changed;
  }
}

function kindOf(t: SubscribedType): string {
  switch (t) {
    case TypeUrl.Listener:
      return 'listener';
    case TypeUrl.Cluster:
      return 'cluster';
    case TypeUrl.RouteConfiguration:
      return 'route configuration';
    case TypeUrl.VirtualHost:
      return 'virtual host';
    default:
      return 'cluster load assignment';
  }
}
