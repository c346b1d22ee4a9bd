// The JSON Patch (RFC 6902) an admission response carries: from the pod the API server sent to the
// injected pod. Injection rewrites whole fields (the container lists, the volumes, the label and
// annotation maps), so the patch replaces each changed field of `metadata` and `spec` as a whole:
// short, and applied exactly as computed whatever the field held.
import { isDeepStrictEqual } from 'node:util';

export type JsonPatchOperation = { op: 'add'; path: string; value: unknown } | { op: 'remove'; path: string };

/** RFC 6901: `~` and `/` in a member name. */
function pointer(...segments: string[]): string {
  return segments.map((s) => `/${s.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Operations turning `before` into `after` on the members of `metadata` and `spec` (`add` replaces an existing member). */
export function podPatch(before: { metadata?: unknown; spec?: unknown }, after: { metadata?: unknown; spec?: unknown }): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  for (const part of ['metadata', 'spec'] as const) {
    const from = before[part];
    const to = after[part];
    if (isDeepStrictEqual(from, to)) continue;
    if (!isObj(from) || !isObj(to)) {
      ops.push(to === undefined ? { op: 'remove', path: pointer(part) } : { op: 'add', path: pointer(part), value: to });
      continue;
    }
    for (const key of Object.keys(from)) if (!(key in to)) ops.push({ op: 'remove', path: pointer(part, key) });
    for (const [key, value] of Object.entries(to)) if (!isDeepStrictEqual(from[key], value)) ops.push({ op: 'add', path: pointer(part, key), value });
  }
  return ops;
}

/** Applies `ops` as podPatch produces them (tests, and kube-inject's check that the patch gives the pod). */
export function applyPodPatch<T extends object>(doc: T, ops: readonly JsonPatchOperation[]): T {
  const out = structuredClone(doc) as Obj;
  for (const op of ops) {
    const segs = op.path
      .split('/')
      .slice(1)
      .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
    let target: Obj = out;
    for (const s of segs.slice(0, -1)) {
      const next = target[s];
      if (!isObj(next)) throw new Error(`patch path ${op.path}: ${s} is not an object`);
      target = next;
    }
    const last = segs.at(-1)!;
    if (op.op === 'remove') delete target[last];
    else target[last] = structuredClone(op.value);
  }
  return out as T;
}
