import type { KindSchema } from '../schema/dsl.ts';
import { type GroupKind, groupKind } from './config.ts';

/** Lookup of the kinds a process understands. Built explicitly; nothing registers itself on import. */
export class KindRegistry {
  readonly #byGroupKind = new Map<GroupKind, KindSchema>();
  readonly #byKind = new Map<string, KindSchema[]>();

  constructor(kinds: readonly KindSchema[]) {
    for (const k of kinds) {
      this.#byGroupKind.set(groupKind(k.group, k.kind), k);
      const list = this.#byKind.get(k.kind) ?? [];
      list.push(k);
      this.#byKind.set(k.kind, list);
    }
  }

  get(gk: GroupKind): KindSchema | undefined {
    return this.#byGroupKind.get(gk);
  }

  all(): KindSchema[] {
    return [...this.#byGroupKind.values()];
  }

  /** Resolves an apiVersion/kind pair, or explains why it cannot be resolved. */
  resolve(group: string, version: string, kind: string): { schema: KindSchema } | { error: string } {
    const schema = this.#byGroupKind.get(groupKind(group, kind));
    if (schema) {
      if (schema.versions.includes(version)) return { schema };
      const apiVersions = schema.versions.map((v) => (group ? `${group}/${v}` : v)).join(', ');
      return { error: `${kind} is not served at version ${version} of ${group || 'the core group'}; use one of ${apiVersions}` };
    }
    const elsewhere = this.#byKind.get(kind);
    if (elsewhere) {
      const where = elsewhere.map((k) => `${k.group || 'core'}/${k.versions.at(-1)}`).join(', ');
      return { error: `unknown kind ${kind} in group ${group || 'core'}; ${kind} is served by ${where}` };
    }
    return { error: `unknown kind ${JSON.stringify(kind)} (apiVersion ${group ? `${group}/` : ''}${version}); Weft knows ${this.#knownList()}` };
  }

  #knownList(): string {
    return [...new Set(this.all().map((k) => k.kind))].sort().join(', ');
  }
}

