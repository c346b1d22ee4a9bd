// RE2, the one regex engine of the mesh: Istio validates VirtualService regexes with Go's regexp
// (RE2 syntax) and Envoy compiles `safe_regex` with RE2. re2js is a port of Go's regexp, so galley
// refuses what Istio refuses, and the proxy matches as Envoy does: in linear time (no
// backtracking, so a hostile pattern or header costs time proportional to its length), with
// RE2's syntax (`(?i)` anywhere, `\pL`, `\z`, `\Q…\E`, POSIX classes, `(?U)`) and semantics
// (`\s` and `\d` ASCII, `.` one code point). Galley, pilot and the proxy all compile through here.
import { RE2JS } from 're2js';

/**
 * The largest RE2 program a route or policy regex may compile to: Envoy's runtime key
 * `re2.max_program_size.error_level`, which Istio's bootstrap sets to 32768 (Envoy's own default
 * is 100, which Istio raised because ordinary route regexes exceed it). The size is the number of
 * instructions of the compiled program as Go's regexp (and re2js) count them; C++ RE2, which
 * Envoy uses, compiles to UTF-8 byte ranges and counts somewhat differently, so patterns within a
 * few percent of the limit may be judged differently. This is the only estimate of that size in
 * Weft.
 */
export const re2MaxProgramSize = 32768;

/** RE2's limit on a repetition count (`{n}`, `{n,m}`), and on nested counts multiplied. */
export const re2MaxRepeat = 1000;

/** A pattern RE2 refuses, or one too large; `message` names what and why. */
export class Re2Error extends Error {
  override readonly name = 'Re2Error';
  readonly pattern: string;
  constructor(pattern: string, message: string) {
    super(message);
    this.pattern = pattern;
  }
}

export interface Re2 {
  readonly pattern: string;
  /** Instructions in the compiled program (see `re2MaxProgramSize`). */
  readonly programSize: number;
  /** RE2::FullMatch, as Envoy's `safe_regex` matches: the whole value. */
  fullMatch(value: string): boolean;
  /** RE2::PartialMatch: somewhere in the value (the admin `/stats?filter=`). */
  partialMatch(value: string): boolean;
  /**
   * RE2::GlobalReplace, as Envoy's `regex_rewrite` and `substitution` use it: every
   * non-overlapping match replaced, `\0`…`\9` the groups, `\\` a backslash. A substitution naming a
   * group the pattern lacks leaves the value unchanged (RE2 refuses the rewrite).
   */
  globalReplace(value: string, substitution: string): string;
}

export interface Re2Options {
  /** Refuse programs larger than this (default `re2MaxProgramSize`). */
  maxProgramSize?: number;
}

// What re2js (Go's messages) says, and the construct a user coming from JavaScript or PCRE meant.
const hints: [RegExp, string][] = [
  [/invalid escape sequence: `\\[1-9]/, 'RE2 has no backreferences'],
  [/invalid or unsupported Perl syntax: `\(\?[=!]/, 'RE2 has no lookahead'],
  [/invalid named capture: `\(\?<[=!]/, 'RE2 has no lookbehind'],
  [/invalid escape sequence: `\\C`/, 'RE2 refuses \\C (any byte) here'],
  [/invalid escape sequence: `\\Z`/, 'RE2 has no \\Z; \\z is the end of the text'],
  [/invalid nested repetition operator: `[*+?]\+`/, 'RE2 has no possessive quantifiers'],
  [/invalid repeat count/, `RE2 allows at most ${re2MaxRepeat} repetitions, nested counts multiplied`],
];

function describe(pattern: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const hint = hints.find(([re]) => re.test(message))?.[1];
  return `regex ${JSON.stringify(pattern)}: ${message}${hint ? ` (${hint})` : ''}`;
}

type Substitution = readonly (string | number)[];

function parseSubstitution(sub: string): Substitution {
  const parts: (string | number)[] = [];
  let lit = '';
  for (let i = 0; i < sub.length; i++) {
    const c = sub[i]!;
    const n = sub[i + 1];
    if (c === '\\' && n !== undefined && n >= '0' && n <= '9') {
      if (lit) parts.push(lit);
      lit = '';
      parts.push(n.charCodeAt(0) - 48);
      i++;
    } else if (c === '\\' && n === '\\') {
      lit += '\\';
      i++;
    } else lit += c;
  }
  if (lit) parts.push(lit);
  return parts;
}

class CompiledRe2 implements Re2 {
  readonly pattern: string;
  readonly programSize: number;
  readonly #re: RE2JS;
  readonly #groups: number;
  /** A literal every match starts with, and whether it is the whole pattern (Go's prog.Prefix()). */
  readonly #prefix: string;
  readonly #prefixComplete: boolean;
  readonly #substitutions = new Map<string, Substitution | undefined>();

  constructor(pattern: string, re: RE2JS) {
    this.pattern = pattern;
    this.#re = re;
    this.programSize = re.programSize();
    this.#groups = re.groupCount();
    // Setting up a match costs about 0.4 µs whatever the value; a route table tries many patterns
    // per request, most failing on their literal start (`/reviews/v[0-9]+` against `/ratings/…`).
    // re2js keeps Go's literal prefix on its compiled RE2; read defensively, as it is not API.
    const inner = re.re2() as unknown as { prefix?: unknown; prefixComplete?: unknown };
    this.#prefix = typeof inner.prefix === 'string' ? inner.prefix : '';
    this.#prefixComplete = this.#prefix !== '' && inner.prefixComplete === true;
  }

  fullMatch(value: string): boolean {
    if (this.#prefix !== '') {
      if (!value.startsWith(this.#prefix)) return false;
      if (this.#prefixComplete) return value.length === this.#prefix.length;
    }
    return this.#re.matches(value);
  }

  partialMatch(value: string): boolean {
    return this.#re.test(value);
  }

  #substitution(sub: string): Substitution | undefined {
    if (this.#substitutions.has(sub)) return this.#substitutions.get(sub);
    const parts = parseSubstitution(sub);
    const ok = parts.every((p) => typeof p === 'string' || p <= this.#groups);
    const out = ok ? parts : undefined;
    if (this.#substitutions.size < 64) this.#substitutions.set(sub, out);
    return out;
  }

  globalReplace(value: string, substitution: string): string {
    const parts = this.#substitution(substitution);
    if (!parts) return value;
    const m = this.#re.matcher(value);
    let out = '';
    let copied = 0;
    let lastEnd = -1;
    let pos = 0;
    while (pos <= value.length && m.find(pos)) {
      const start = m.start();
      const end = m.end();
      // As RE2 (and Go): no empty match right where the previous match ended.
      if (start === end && start === lastEnd) {
        if (start >= value.length) break;
        pos = start + (value.codePointAt(start)! > 0xffff ? 2 : 1);
        continue;
      }
      out += value.slice(copied, start);
      for (const p of parts) out += typeof p === 'string' ? p : (m.group(p) ?? '');
      copied = end;
      lastEnd = end;
      pos = start === end ? end + (end < value.length && value.codePointAt(end)! > 0xffff ? 2 : 1) : end;
    }
    return out + value.slice(copied);
  }
}

// Compiled once per pattern for the whole process: a push recompiles route configurations whose
// regexes mostly did not change, and a certificate check runs per handshake. Bounded, oldest out.
const cacheLimit = 4096;
const cache = new Map<string, CompiledRe2 | Re2Error>();

function compileUncached(pattern: string, maxProgramSize: number): CompiledRe2 | Re2Error {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    return new Re2Error(pattern, describe(pattern, err));
  }
  const compiled = new CompiledRe2(pattern, re);
  if (compiled.programSize > maxProgramSize) {
    return new Re2Error(pattern, `regex ${JSON.stringify(pattern)}: RE2 program size ${compiled.programSize} > max program size of ${maxProgramSize} (re2.max_program_size.error_level)`);
  }
  return compiled;
}

function lookup(pattern: string, options: Re2Options): CompiledRe2 | Re2Error {
  const max = options.maxProgramSize ?? re2MaxProgramSize;
  const key = max === re2MaxProgramSize ? pattern : `${max}\u0000${pattern}`;
  let hit = cache.get(key);
  if (hit) {
    cache.delete(key);
  } else {
    hit = compileUncached(pattern, max);
    if (cache.size >= cacheLimit) cache.delete(cache.keys().next().value!);
  }
  cache.set(key, hit);
  return hit;
}

/** `pattern` compiled with RE2; throws `Re2Error` for what RE2 (or the size limit) refuses. */
export function compileRe2(pattern: string, options: Re2Options = {}): Re2 {
  const r = lookup(pattern, options);
  if (r instanceof Re2Error) throw r;
  return r;
}

/** Why RE2 refuses `pattern` (a sentence that quotes it), or undefined. */
export function re2Problem(pattern: string, options: Re2Options = {}): string | undefined {
  const r = lookup(pattern, options);
  return r instanceof Re2Error ? r.message : undefined;
}
