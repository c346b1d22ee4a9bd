// Envoy compiles every RegexMatcher of a resource with RE2 when it accepts the resource, and NACKs
// the resource if one does not compile or is over `re2.max_program_size.error_level`. The router,
// RBAC and cluster compiles reach the regexes they use; this walk finds the rest (fields Weft reads
// later or not at all), so nothing Envoy would refuse is accepted here. Compiles are cached per
// pattern (model's compileRe2), so the walk after a compile costs a lookup per regex.
import { re2Problem } from '@weft/model';

const regexKeys = new Set(['safe_regex', 'safe_regex_match', 'pattern']);

/**
 * Every RE2 problem in a decoded message: RegexMatchers sit under `safe_regex` (route, header,
 * query and SAN matchers), `safe_regex_match` and `pattern` (regex rewrites). Throws the first,
 * with the field path.
 */
export function checkRe2Patterns(message: unknown): void {
  const walk = (v: unknown, path: string, key: string): void => {
    if (v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Uint8Array) return;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) walk(v[i], `${path}[${i}]`, key);
      return;
    }
    const o = v as Record<string, unknown>;
    if (regexKeys.has(key) && typeof o.regex === 'string') {
      const problem = re2Problem(o.regex);
      if (problem) throw new Error(`${path}: ${problem}`);
    }
    for (const [k, x] of Object.entries(o)) walk(x, path ? `${path}.${k}` : k, k);
  };
  walk(message, '', '');
}
