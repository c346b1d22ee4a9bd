// Gateway API matching on VirtualServices converted from HTTPRoutes (annotation
// `internal.istio.io/route-semantics: gateway`), as Istio's route.go applies it: a path prefix
// matches whole path segments (`/foo` matches `/foo` and `/foo/bar`, never `/foobar`), a prefix
// replacement drops exactly the matched segments, and a backend that does not exist answers 500.
import type { Config, VirtualServiceSpec } from '@weft/model';
import type { Route } from '@weft/xds';
import type { RouteMatch } from './envoy.ts';

export function hasGatewaySemantics(vs: Config<VirtualServiceSpec>): boolean {
  return vs.metadata.annotations?.['internal.istio.io/route-semantics'] === 'gateway';
}

/** A prefix other than `/` becomes a path-separated prefix (without its trailing slashes). */
export function gatewayMatch(match: RouteMatch): RouteMatch {
  if (match.prefix === undefined || match.prefix === '/') return match;
  const trimmed = match.prefix.replace(/\/+$/, '');
  const { prefix: _prefix, ...rest } = match;
  return trimmed === '' ? { ...rest, prefix: '/' } : { ...rest, path_separated_prefix: trimmed };
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

type RegexRewrite = { pattern: { regex: string }; substitution: string };

/** ReplacePrefixMatch as a regex rewrite, so `/prefix/one/two` with `/prefix/one` -> `/` is `/two` and not `//two`. */
export function prefixReplacement(match: RouteMatch | undefined, replacement: string): RegexRewrite | undefined {
  const prefix = match?.path_separated_prefix ?? (match?.prefix === '/' ? '' : undefined);
  if (prefix === undefined) return undefined;
  const r = replacement.replace(/\/+$/, '');
  if (r === '') return { pattern: { regex: `^${escapeRegex(prefix)}/*(.*)` }, substitution: '/\\1' };
  return { pattern: { regex: `^${escapeRegex(prefix)}(/?)(.*)` }, substitution: prefix === '' ? `${r}/\\2` : `${r}\\1\\2` };
}

export type RedirectAction = NonNullable<Route['redirect']>;
