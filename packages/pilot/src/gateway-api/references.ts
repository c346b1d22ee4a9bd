// Cross-namespace references as the Gateway API allows them: a reference from one namespace to an
// object of another is permitted only when a ReferenceGrant in the target namespace names the
// source (group, kind, namespace) in `from` and the target (group, kind, optional name) in `to`.
import type { Config, ReferenceGrantSpec } from '@weft/model';

export interface Reference {
  fromGroup: string;
  fromKind: string;
  fromNamespace: string;
  toGroup: string;
  toKind: string;
  toNamespace: string;
  toName: string;
}

export class ReferenceGrants {
  readonly #byNamespace = new Map<string, ReferenceGrantSpec[]>();

  constructor(grants: readonly Config<ReferenceGrantSpec>[]) {
    for (const g of grants) {
      const l = this.#byNamespace.get(g.metadata.namespace) ?? [];
      l.push(g.spec ?? {});
      this.#byNamespace.set(g.metadata.namespace, l);
    }
  }

  /** Whether `ref` is allowed: same namespace, or granted by a ReferenceGrant of the target namespace. */
  allows(ref: Reference): boolean {
    if (ref.fromNamespace === ref.toNamespace) return true;
    for (const g of this.#byNamespace.get(ref.toNamespace) ?? []) {
      const from = (g.from ?? []).some((f) => (f.group ?? '') === ref.fromGroup && f.kind === ref.fromKind && f.namespace === ref.fromNamespace);
      if (!from) continue;
      const to = (g.to ?? []).some((t) => (t.group ?? '') === ref.toGroup && t.kind === ref.toKind && (!t.name || t.name === ref.toName));
      if (to) return true;
    }
    return false;
  }
}
