// Envoy's route, string, header and query-parameter matchers, compiled once per route
// configuration into plain predicates. Regexes are RE2 (`safe_regex`: a full match, linear time).
import { compileRe2, type Re2, Re2Error } from '@weft/model';
import type { RouteConfiguration__Output } from '@weft/xds';
import type { CompiledRoute } from './compile.ts';
import { compileMetadataMatcher } from './metadata-matcher.ts';
import type { RequestView } from './view.ts';

type VirtualHost = RouteConfiguration__Output['virtual_hosts'][number];
type Route = VirtualHost['routes'][number];
type RouteMatch = NonNullable<Route['match']>;
export type HeaderMatcherConfig = RouteMatch['headers'][number];
export type QueryParameterMatcherConfig = RouteMatch['query_parameters'][number];
export type StringMatcherConfig = NonNullable<HeaderMatcherConfig['string_match']>;
export type RegexMatcherConfig = NonNullable<StringMatcherConfig['safe_regex']>;
export type FractionalPercentConfig = NonNullable<NonNullable<RouteMatch['runtime_fraction']>['default_value']>;

/** A configuration the router cannot apply; the xDS client NACKs with this message. */
export class RouteConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RouteConfigError';
  }
}

/** A regex rewrite (`regex_rewrite`, `host_rewrite_path_regex`, a hash policy's): RE2::GlobalReplace. */
export interface RegexRewrite {
  readonly re: Re2;
  readonly substitution: string;
}

/** `pattern` compiled with RE2 (model's, shared with galley), as Envoy compiles `safe_regex`; what RE2 refuses NACKs. */
export function compileRegex(pattern: string): Re2 {
  try {
    return compileRe2(pattern);
  } catch (err) {
    if (err instanceof Re2Error) throw new RouteConfigError(err.message);
    throw err;
  }
}

/** A RegexMatchAndSubstitute as RE2::GlobalReplace applies it. */
export function compileRegexRewrite(rx: { pattern: { regex: string } | null; substitution: string } | null | undefined): RegexRewrite | undefined {
  if (!rx?.pattern) return undefined;
  return { re: compileRegex(rx.pattern.regex), substitution: rx.substitution };
}

export type StringTest = (value: string) => boolean;

/** Envoy's StringMatcher: exact / prefix / suffix / contains (optionally ignoring case) / safe_regex (full match). */
export function compileStringMatcher(m: StringMatcherConfig): StringTest {
  const ic = m.ignore_case;
  switch (m.match_pattern) {
    case 'exact': {
      const v = ic ? m.exact!.toLowerCase() : m.exact!;
      return ic ? (s) => s.toLowerCase() === v : (s) => s === v;
    }
    case 'prefix': {
      const v = ic ? m.prefix!.toLowerCase() : m.prefix!;
      return ic ? (s) => s.toLowerCase().startsWith(v) : (s) => s.startsWith(v);
    }
    case 'suffix': {
      const v = ic ? m.suffix!.toLowerCase() : m.suffix!;
      return ic ? (s) => s.toLowerCase().endsWith(v) : (s) => s.endsWith(v);
    }
    case 'contains': {
      const v = ic ? m.contains!.toLowerCase() : m.contains!;
      return ic ? (s) => s.toLowerCase().includes(v) : (s) => s.includes(v);
    }
    case 'safe_regex': {
      const re = compileRegex(m.safe_regex?.regex ?? '');
      return (s) => re.fullMatch(s);
    }
    default:
      throw new RouteConfigError(`unsupported string matcher ${m.match_pattern ?? '(none)'}`);
  }
}

/** One compiled header matcher; `:method`, `:authority`, `:path`, `:scheme` read the request line. */
export interface HeaderTest {
  readonly name: string;
  test(view: RequestView): boolean;
}

/** Envoy's HeaderUtility::matchHeaders, including the missing-header and invert rules. */
export function compileHeaderMatcher(m: HeaderMatcherConfig): HeaderTest {
  const name = m.name.toLowerCase();
  const invert = m.invert_match;
  const missingAsEmpty = m.treat_missing_header_as_empty;
  let present: boolean | undefined;
  let test: StringTest | undefined;
  switch (m.header_match_specifier) {
    case 'string_match':
      test = compileStringMatcher(m.string_match!);
      break;
    case 'exact_match': {
      const v = m.exact_match!;
      test = (s) => v === '' || s === v;
      break;
    }
    case 'prefix_match': {
      const v = m.prefix_match!;
      test = (s) => s.startsWith(v);
      break;
    }
    case 'suffix_match': {
      const v = m.suffix_match!;
      test = (s) => s.endsWith(v);
      break;
    }
    case 'contains_match': {
      const v = m.contains_match!;
      test = (s) => s.includes(v);
      break;
    }
    case 'safe_regex_match': {
      const re = compileRegex(m.safe_regex_match?.regex ?? '');
      test = (s) => re.fullMatch(s);
      break;
    }
    case 'range_match': {
      const start = Number(m.range_match?.start ?? 0);
      const end = Number(m.range_match?.end ?? 0);
      test = (s) => {
        if (!/^-?\d+$/.test(s)) return false;
        const n = Number(s);
        return n >= start && n < end;
      };
      break;
    }
    case 'present_match':
      present = m.present_match ?? true;
      break;
    default:
      present = true;
  }
  return {
    name,
    test(view) {
      let value = view.header(name);
      if (value === undefined) {
        if (!missingAsEmpty) return present !== undefined && present === invert;
        value = '';
      }
      const match = present !== undefined ? present : test!(value);
      return match !== invert;
    },
  };
}

export interface QueryTest {
  readonly name: string;
  test(view: RequestView): boolean;
}

/** Envoy's QueryParameterMatcher: the first value of the parameter; absent never matches. */
export function compileQueryMatcher(m: QueryParameterMatcherConfig): QueryTest {
  const name = m.name;
  const test = m.query_parameter_match_specifier === 'string_match' && m.string_match ? compileStringMatcher(m.string_match) : undefined;
  return {
    name,
    test(view) {
      const value = view.queryParam(name);
      if (value === undefined) return false;
      return test ? test(value) : true;
    },
  };
}

const denominators: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

export interface Fraction {
  numerator: number;
  denominator: number;
}

export function fraction(p: FractionalPercentConfig | null | undefined, fallback: Fraction = { numerator: 100, denominator: 100 }): Fraction {
  if (!p) return fallback;
  return { numerator: p.numerator, denominator: denominators[p.denominator] ?? 100 };
}

/** Envoy's featureEnabled: a random draw in [0, denominator) below the numerator. */
export function sampled(f: Fraction, random: () => number): boolean {
  if (f.numerator >= f.denominator) return true;
  if (f.numerator <= 0) return false;
  return Math.floor(random() * f.denominator) < f.numerator;
}

function compilePathMatcher(m: RouteMatch): { kind: CompiledRoute['matchKind']; prefix: string; test: (view: RequestView) => boolean } {
  const caseSensitive = m.case_sensitive?.value ?? true;
  switch (m.path_specifier) {
    case 'prefix': {
      const p = m.prefix ?? '';
      if (p === '' || p === '/') return { kind: 'prefix', prefix: p, test: p === '' ? () => true : (v) => v.pathOnly.startsWith('/') };
      if (caseSensitive) return { kind: 'prefix', prefix: p, test: (v) => v.pathOnly.startsWith(p) };
      const lower = p.toLowerCase();
      return { kind: 'prefix', prefix: p, test: (v) => v.pathOnly.slice(0, lower.length).toLowerCase() === lower };
    }
    case 'path': {
      const p = m.path ?? '';
      if (caseSensitive) return { kind: 'path', prefix: p, test: (v) => v.pathOnly === p };
      const lower = p.toLowerCase();
      return { kind: 'path', prefix: p, test: (v) => v.pathOnly.toLowerCase() === lower };
    }
    case 'safe_regex': {
      const re = compileRegex(m.safe_regex?.regex ?? '');
      return { kind: 'safe_regex', prefix: '', test: (v) => re.fullMatch(v.pathOnly) };
    }
    case 'path_separated_prefix': {
      const p = m.path_separated_prefix ?? '';
      if (p.endsWith('/') || p.includes('?') || p.includes('#')) throw new RouteConfigError(`path_separated_prefix ${JSON.stringify(p)} must not end with / or contain ? or #`);
      const cmp = caseSensitive ? p : p.toLowerCase();
      return {
        kind: 'path_separated_prefix',
        prefix: p,
        test: (v) => {
          const path = caseSensitive ? v.pathOnly : v.pathOnly.toLowerCase();
          return path === cmp || (path.startsWith(cmp) && path.charCodeAt(cmp.length) === 47);
        },
      };
    }
    default:
      throw new RouteConfigError(`unsupported path match ${m.path_specifier ?? '(none)'}`);
  }
}

/** A route's `match` as one predicate, and what prefix_rewrite needs of the path match. */
export function compileMatch(m: RouteMatch | null): { kind: CompiledRoute['matchKind']; prefix: string; matches: CompiledRoute['matches'] } {
  if (!m) throw new RouteConfigError('route has no match');
  const path = compilePathMatcher(m);
  const dynamic = m.dynamic_metadata.map(compileMetadataMatcher);
  const headers: HeaderTest[] = m.headers.map(compileHeaderMatcher);
  const query: QueryTest[] = m.query_parameters.map(compileQueryMatcher);
  const runtime: Fraction | undefined = m.runtime_fraction ? fraction(m.runtime_fraction.default_value) : undefined;
  const grpc = m.grpc !== null && m.grpc !== undefined;
  const tlsPresented = m.tls_context?.presented?.value;
  const pathTest = path.test;
  let matches: CompiledRoute['matches'];
  if (headers.length === 0 && query.length === 0 && dynamic.length === 0 && !runtime && !grpc && tlsPresented === undefined) {
    matches = (view) => pathTest(view);
  } else {
    // Every test must hold, so their order is only cost: the path first (a prefix, or a regex whose
    // literal start rejects most paths in a few ns) spares the header and query regexes of routes
    // for other paths. The runtime draw stays first, as Envoy draws it for each route it reaches.
    matches = (view, random) => {
      if (runtime && !sampled(runtime, random)) return false;
      if (!pathTest(view)) return false;
      for (const h of headers) if (!h.test(view)) return false;
      for (const q of query) if (!q.test(view)) return false;
      for (const d of dynamic) if (!d(view.dynamicMetadata)) return false;
      if (grpc && !isGrpcContentType(view.header('content-type'))) return false;
      return tlsPresented === undefined || (view.scheme === 'https') === tlsPresented;
    };
  }
  return { kind: path.kind, prefix: path.prefix, matches };
}

/** `application/grpc` or `application/grpc+proto` etc. (not grpc-web). */
export function isGrpcContentType(ct: string | undefined): boolean {
  if (!ct?.startsWith('application/grpc')) return false;
  return ct.length === 16 || ct.charCodeAt(16) === 43 /* + */ || ct.charCodeAt(16) === 59 /* ; */;
}
