import { describe, expect, it } from 'vitest';
import { compileRe2, Re2Error, re2MaxProgramSize, re2Problem } from './re2.ts';

describe('compileRe2', () => {
  it('accepts the RE2 Istio users write, including syntax JavaScript lacks', () => {
    for (const p of ['^/productpage$', '/api/v[0-9]+/users/[a-z0-9-]+', '(?i).*(jason|mark).*', '^/static/.*\\.(css|js|png)$', '(?P<id>[0-9]+)', '\\pL+', '\\Qa.b\\E', 'foo(?i)bar', '[[:^alpha:]]+', '(?U)a+', 'abc\\z']) {
      expect(re2Problem(p), p).toBeUndefined();
    }
  });

  it('refuses what RE2 refuses, quoting the pattern and naming the construct', () => {
    expect(re2Problem('(a)\\1')).toBe('regex "(a)\\\\1": error parsing regexp: invalid escape sequence: `\\1` (RE2 has no backreferences)');
    expect(re2Problem('(?=a)b')).toMatch(/^regex "\(\?=a\)b": error parsing regexp: .*\(RE2 has no lookahead\)$/);
    expect(re2Problem('(?<!a)b')).toMatch(/RE2 has no lookbehind/);
    expect(re2Problem('(?<=a)b')).toMatch(/RE2 has no lookbehind/);
    expect(re2Problem('a\\Cb')).toMatch(/invalid escape sequence: `\\C`/);
    expect(re2Problem('abc\\Z')).toMatch(/RE2 has no \\Z; \\z is the end of the text/);
    expect(re2Problem('a++')).toMatch(/RE2 has no possessive quantifiers/);
    expect(re2Problem('/api/v[0-9]{1,1001}')).toMatch(/invalid repeat count: `\{1,1001\}` \(RE2 allows at most 1000 repetitions/);
    expect(re2Problem('(a{100}){100}')).toMatch(/invalid repeat count/);
    expect(re2Problem('/api/(v1')).toMatch(/missing closing \)/);
    expect(() => compileRe2('(')).toThrow(Re2Error);
  });

  it("refuses a program larger than Envoy's limit as Istio sets it, and takes a smaller limit", () => {
    const big = '[0-9]{1000}'.repeat(33);
    expect(re2Problem(big)).toMatch(new RegExp(`RE2 program size \\d+ > max program size of ${re2MaxProgramSize} \\(re2.max_program_size.error_level\\)`));
    expect(re2Problem('[0-9]{1000}'.repeat(32))).toBeUndefined();
    expect(compileRe2('/api/v[0-9]{1,200}').programSize).toBeGreaterThan(100);
    expect(re2Problem('/api/v[0-9]{1,200}', { maxProgramSize: 100 })).toMatch(/RE2 program size \d+ > max program size of 100/);
    // The size limit is per caller: the same pattern compiled under another limit is judged again.
    expect(re2Problem('/api/v[0-9]{1,200}')).toBeUndefined();
  });

  it("matches the whole value (Envoy's safe_regex) or a part of it", () => {
    const re = compileRe2('/api/v[0-9]+');
    expect(re.fullMatch('/api/v1')).toBe(true);
    expect(re.fullMatch('/api/v1/users')).toBe(false);
    expect(re.fullMatch('x/api/v1')).toBe(false);
    expect(re.partialMatch('x/api/v1/users')).toBe(true);
    // Full match of an alternation takes the branch that covers the value, not the first that matches.
    expect(compileRe2('a|ab').fullMatch('ab')).toBe(true);
    expect(compileRe2('').fullMatch('')).toBe(true);
    // Patterns with a literal start (checked before the match is set up) and whole literals.
    expect(compileRe2('abc|abd').fullMatch('abd')).toBe(true);
    expect(compileRe2('abc|abd').fullMatch('ab')).toBe(false);
    expect(compileRe2('abc|abd').fullMatch('xabc')).toBe(false);
    expect(compileRe2('\\Q*.json\\E').fullMatch('*.json')).toBe(true);
    expect(compileRe2('\\Q*.json\\E').fullMatch('*.jsonx')).toBe(false);
    expect(compileRe2('/a(?i)b').fullMatch('/aB')).toBe(true);
    expect(compileRe2('/a(?i)b').fullMatch('/AB')).toBe(false);
  });

  it('matches with RE2 semantics where JavaScript would differ', () => {
    // \d and \s are ASCII in RE2 (JavaScript's \s takes Unicode spaces, among them NBSP).
    expect(compileRe2('\\d+').fullMatch('٣')).toBe(false);
    expect(compileRe2('a\\sb').fullMatch('a\u00a0b')).toBe(false);
    expect(compileRe2('a\\sb').fullMatch('a\tb')).toBe(true);
    // \pL is a Unicode letter class (JavaScript without the u flag reads it as "pL").
    expect(compileRe2('\\pL+').fullMatch('héllo')).toBe(true);
    expect(compileRe2('\\pL+').fullMatch('pL')).toBe(true);
    expect(compileRe2('\\pL+').fullMatch('h3llo')).toBe(false);
    // (?i) may stand anywhere and applies from there on; case folding is Unicode's (K is the Kelvin sign).
    const mid = compileRe2('/api(?i)/users');
    expect(mid.fullMatch('/api/USERS')).toBe(true);
    expect(mid.fullMatch('/API/users')).toBe(false);
    expect(compileRe2('(?i)k').fullMatch('\u212a')).toBe(true);
    // . is one code point.
    expect(compileRe2('^.$').fullMatch('😀')).toBe(true);
    // \z is the end of the text; $ without (?m) is too (no match before a final newline).
    expect(compileRe2('abc\\z').partialMatch('abc')).toBe(true);
    expect(compileRe2('abc$').partialMatch('abc\n')).toBe(false);
    // (?U) swaps greediness; POSIX classes, negated ones included.
    expect(compileRe2('(?U)a+').globalReplace('aaa', 'X')).toBe('XXX');
    expect(compileRe2('a+').globalReplace('aaa', 'X')).toBe('X');
    expect(compileRe2('[[:^digit:]]+').fullMatch('abc')).toBe(true);
    expect(compileRe2('[[:^digit:]]+').fullMatch('ab1')).toBe(false);
    // \Q…\E quotes.
    expect(compileRe2('\\Qa.b\\E').fullMatch('a.b')).toBe(true);
    expect(compileRe2('\\Qa.b\\E').fullMatch('axb')).toBe(false);
  });

  it('finishes a catastrophic-backtracking pattern against a long non-matching value (linear time)', () => {
    // A backtracking engine takes exponential time here (2^n paths for n characters).
    const value = `${'a'.repeat(50_000)}!`;
    expect(compileRe2('(a+)+$').fullMatch(value)).toBe(false);
    expect(compileRe2('(a|aa)*b').fullMatch(value)).toBe(false);
    expect(compileRe2('(.*a){12}').partialMatch('a'.repeat(11))).toBe(false);
  });

  it("replaces every match with RE2's substitution syntax (Envoy's regex_rewrite)", () => {
    expect(compileRe2('^/regex/([a-z]+)/([a-z]+)$').globalReplace('/regex/one/two', '/\\2/\\1')).toBe('/two/one');
    expect(compileRe2('o').globalReplace('/foo/boo', '0')).toBe('/f00/b00');
    expect(compileRe2('/v[0-9]+/').globalReplace('/v1/users', '\\0\\0')).toBe('/v1//v1/users');
    expect(compileRe2('x').globalReplace('axb', '\\\\$1')).toBe('a\\$1b');
    // RE2 refuses a rewrite naming a group the pattern lacks: the value stays as it was.
    expect(compileRe2('(a)').globalReplace('abc', '\\2')).toBe('abc');
    // Empty matches: none right after a previous match (RE2 and Go agree; Java's find would add one).
    expect(compileRe2('a*').globalReplace('baaac', 'X')).toBe('XbXcX');
    expect(compileRe2('').globalReplace('ab', '-')).toBe('-a-b-');
    expect(compileRe2('').globalReplace('😀', '-')).toBe('-😀-');
  });

  it('compiles a pattern once', () => {
    expect(compileRe2('^/cached/[0-9]+$')).toBe(compileRe2('^/cached/[0-9]+$'));
  });
});
