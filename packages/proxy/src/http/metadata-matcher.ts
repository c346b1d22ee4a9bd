// Envoy's MetadataMatcher over dynamic metadata (plain JSON by filter name): RBAC's `metadata`
// principals and permissions (istio_authn's request.auth.*) and routes' `dynamic_metadata`
// (Istio's `@request.auth.claims` VirtualService matches on jwt_authn's payload) share it.
import type { RouteConfiguration__Output } from '@weft/xds';
import { compileStringMatcher, RouteConfigError } from './matchers.ts';

type RouteMatch = NonNullable<RouteConfiguration__Output['virtual_hosts'][number]['routes'][number]['match']>;
export type MetadataMatcherConfig = RouteMatch['dynamic_metadata'][number];
type ValueMatcher = NonNullable<MetadataMatcherConfig['value']>;

/** Dynamic metadata as filters write it: filter name -> its JSON. */
export type MetadataSource = Readonly<Record<string, unknown>> | undefined;

/** Envoy's ValueMatcher over a metadata value; `undefined` is "no value". */
function valueTest(m: ValueMatcher | null): (v: unknown) => boolean {
  if (!m) return () => false;
  switch (m.match_pattern) {
    case 'string_match': {
      const t = compileStringMatcher(m.string_match!);
      return (v) => typeof v === 'string' && t(v);
    }
    case 'list_match': {
      const one = valueTest(m.list_match?.one_of ?? null);
      return (v) => Array.isArray(v) && v.some(one);
    }
    case 'or_match': {
      const any = (m.or_match?.value_matchers ?? []).map((x) => valueTest(x));
      return (v) => any.some((t) => t(v));
    }
    case 'present_match': {
      const want = m.present_match ?? false;
      return (v) => want && v !== undefined;
    }
    case 'null_match':
      return (v) => v === null;
    case 'bool_match': {
      const want = m.bool_match ?? false;
      return (v) => v === want;
    }
    case 'double_match': {
      const d = m.double_match!;
      if (d.match_pattern === 'exact') return (v) => typeof v === 'number' && v === d.exact;
      const start = Number(d.range?.start ?? 0);
      const end = Number(d.range?.end ?? 0);
      return (v) => typeof v === 'number' && v >= start && v < end;
    }
    default:
      throw new RouteConfigError(`unsupported metadata value matcher ${m.match_pattern ?? '(none)'}`);
  }
}

/** A MetadataMatcher: the value at `filter`'s `path` tested, `invert` flipping the answer. */
export function compileMetadataMatcher(m: MetadataMatcherConfig): (metadata: MetadataSource) => boolean {
  const value = valueTest(m.value);
  const keys = m.path.map((p) => p.key ?? '');
  return (metadata) => {
    let v: unknown = metadata?.[m.filter];
    for (const k of keys) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined;
    return value(v) !== m.invert;
  };
}
