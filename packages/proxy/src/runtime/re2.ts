// Envoy compiles `safe_regex` with RE2, which refuses some patterns JavaScript accepts, and Envoy
// refuses regexes whose RE2 program is larger than 100 instructions (its default
// `re2.max_program_size.error_level`). A route configuration carrying one is NACKed by Envoy; so
// it is here, before the router's JavaScript translation would quietly accept it.

/** RE2's limit on a repetition count (`{n}`, `{n,m}`): kMaxRepeat. */
export const re2MaxRepeat = 1000;
/** Envoy's default `re2.max_program_size.error_level`. */
export const envoyMaxProgramSize = 100;

/** Why RE2 would refuse `pattern`, or undefined. */
export function re2Problem(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n === 'C') return 'RE2 does not support \\C';
      if (!inClass && n !== undefined && /[1-9]/.test(n)) return 'RE2 does not support backreferences';
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      if (pattern[i + 1] === '^') i++;
      if (pattern[i + 1] === ']') i++;
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i + 2, i + 4);
      if (rest.startsWith('=') || rest.startsWith('!') || rest === '<=' || rest === '<!') return 'RE2 does not support lookaround';
    }
    if (c === '{') {
      const m = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i));
      if (!m) continue;
      const min = Number(m[1]);
      const max = m[2] ? Number(m[2]) : min;
      if (min > re2MaxRepeat || max > re2MaxRepeat) return `bad repetition operator ${m[0]}: RE2 allows at most ${re2MaxRepeat} repetitions`;
      i += m[0].length - 1;
    }
  }
  const size = re2ProgramSizeAtLeast(pattern);
  if (size > envoyMaxProgramSize) return `RE2 program size of at least ${size} > max program size of ${envoyMaxProgramSize} (Envoy's re2.max_program_size.error_level)`;
  return undefined;
}

/**
 * A lower bound of RE2's program size for `pattern`: one byte-matching instruction per byte of
 * every literal and one per character class, repetitions expanded as RE2 expands them
 * (`x{2,5}` is five copies of x), plus the final match instruction. RE2's real count is larger
 * (alternations, captures, UTF-8 ranges), so a pattern over the limit here is over it in Envoy;
 * the literal prefix RE2 strips from `^literal…` patterns is not counted.
 */
export function re2ProgramSizeAtLeast(pattern: string): number {
  let i = 0;
  const peek = () => pattern[i];
  const utf8 = (ch: string) => Buffer.byteLength(ch, 'utf8');
  // RE2 factors alternations (`abc|abd` is `ab[cd]`), so only the largest branch is sure to count.
  const alternation = (): number => {
    let most = concatenation();
    while (peek() === '|') {
      i++;
      most = Math.max(most, concatenation());
    }
    return most;
  };
  const concatenation = (): number => {
    let total = 0;
    while (i < pattern.length && peek() !== '|' && peek() !== ')') total += repeated();
    return total;
  };
  /** RE2 expands bounded repetitions into copies: `x{2,5}` is five x. */
  const repeated = (): number => {
    const size = atom();
    let n = size;
    for (;;) {
      const c = peek();
      if (c === '*' || c === '+' || c === '?') {
        i++;
      } else if (c === '{') {
        const m = /^\{(\d+)(?:(,)(\d*))?\}/.exec(pattern.slice(i));
        if (!m) break;
        i += m[0].length;
        const min = Number(m[1]);
        const max = m[2] ? (m[3] ? Number(m[3]) : undefined) : min;
        n = size * Math.max(1, max ?? min);
      } else break;
      if (peek() === '?') i++;
    }
    return n;
  };
  const atom = (): number => {
    const c = pattern[i++]!;
    switch (c) {
      case '^':
      case '$':
        return 0;
      case '.':
        return 1;
      case '(': {
        if (peek() === '?') {
          const flags = /^\?[imsU-]*\)/.exec(pattern.slice(i));
          if (flags) {
            i += flags[0].length;
            return 0;
          }
          const named = /^\?(?:P?<\w+>|[imsU-]*:)/.exec(pattern.slice(i));
          if (named) i += named[0].length;
        }
        const inner = alternation();
        if (peek() === ')') i++;
        return inner;
      }
      case '[': {
        if (peek() === '^') i++;
        if (peek() === ']') i++;
        while (i < pattern.length && peek() !== ']') {
          if (peek() === '\\') i += 2;
          else if (pattern.startsWith('[:', i)) i = Math.max(i + 2, pattern.indexOf(':]', i + 2) + 2);
          else i++;
        }
        i++;
        return 1;
      }
      case '\\': {
        const e = pattern[i++] ?? '';
        if ('bBAzZ'.includes(e)) return 0;
        if (e === 'p' || e === 'P') {
          if (peek() === '{') i = pattern.indexOf('}', i) + 1 || pattern.length;
          else i++;
          return 1;
        }
        if (e === 'Q') {
          const end = pattern.indexOf('\\E', i);
          const lit = pattern.slice(i, end < 0 ? pattern.length : end);
          i = end < 0 ? pattern.length : end + 2;
          return utf8(lit);
        }
        if (e === 'x') {
          const m = /^(?:\{[0-9a-fA-F]+\}|[0-9a-fA-F]{2})/.exec(pattern.slice(i));
          if (m) i += m[0].length;
          return 1;
        }
        return 1;
      }
      default: {
        const cp = pattern.codePointAt(i - 1)!;
        if (cp > 0xffff) i++;
        return utf8(String.fromCodePoint(cp));
      }
    }
  };
  let size = alternation();
  // RE2 strips the literal prefix of `^literal…` (RequiredPrefix) before compiling.
  const flags = /^(?:\(\?[imsU-]*\))*/.exec(pattern)![0];
  const prefix = /^\^((?:[^\\.[\](){}|*+?^$]|\\[^\w\s])*)/.exec(pattern.slice(flags.length));
  if (prefix?.[1] && !pattern.includes('|')) {
    const next = pattern[flags.length + prefix[0].length];
    const literal = next === '*' || next === '?' || next === '{' || next === '+' ? prefix[1].slice(0, -1) : prefix[1];
    size -= utf8(literal.replace(/\\(.)/g, '$1'));
  }
  return Math.max(0, size) + 1;
}

const regexKeys = new Set(['safe_regex', 'safe_regex_match', 'pattern']);

/**
 * Every RE2 problem in a decoded message: RegexMatchers sit under `safe_regex` (route, header and
 * query matchers), `safe_regex_match` and `pattern` (regex rewrites). Throws the first.
 */
export function checkRe2Patterns(message: unknown): void {
  const walk = (v: unknown, key: string): void => {
    if (v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Uint8Array) return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x, key);
      return;
    }
    const o = v as Record<string, unknown>;
    if (regexKeys.has(key) && typeof o.regex === 'string') {
      const problem = re2Problem(o.regex);
      if (problem) throw new Error(`regex ${JSON.stringify(o.regex)}: ${problem}`);
    }
    for (const [k, x] of Object.entries(o)) walk(x, k);
  };
  walk(message, '');
}
