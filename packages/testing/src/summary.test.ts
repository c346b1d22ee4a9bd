// The closing summary over captured output: the vitest lines in testdata/ are real runs (a full
// `npm test` with one failing test; a sample project with a failing test, beforeAll, afterAll,
// module load and an unhandled rejection; the e2e/proxy telemetry case where beforeAll threw), in
// nx's stream framing (`<project>: <line>`, blank lines dropped).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { summarize, TestOutputReader } from './summary.ts';

function read(text: string, nxExit: number | null) {
  const reader = new TestOutputReader();
  for (const line of text.split('\n')) reader.line(line);
  return { reader, summary: summarize(reader, nxExit) };
}
const sample = (name: string) => readFileSync(new URL(`./testdata/${name}`, import.meta.url), 'utf8');

describe('npm test summary', () => {
  it('a clean run: totals, exit 0, nothing listed', () => {
    const { summary } = read(sample('nx-pass.txt'), 0);
    expect(summary.line).toBe('1 passed, 0 failed, 0 skipped');
    expect(summary.exitCode).toBe(0);
    expect(summary.details).toEqual([]);
  });

  it('a whole run with one failing test (14 projects)', () => {
    const { summary, reader } = read(sample('nx-one-failed-test.txt'), 1);
    expect(reader.projects.size).toBe(14);
    expect(reader.failedTasks).toEqual(new Set(['@weft/proxy']));
    expect(summary.line).toBe('1198 passed, 1 failed, 0 skipped');
    expect(summary.details).toEqual(['Failed:', '  @weft/proxy: 1 test']);
    expect(summary.exitCode).toBe(1);
  });

  it('a beforeAll that threw is a failure, not "0 failed" with its tests skipped (issue 11, item 9)', () => {
    const { summary } = read(sample('vitest-hook-failure.txt'), 1);
    expect(summary.line).toBe('1 passed, 1 failed, 7 skipped');
    expect(summary.exitCode).toBe(1);
    expect(summary.details).toContain('  @weft/e2e-proxy: 1 suite (a hook threw or the file did not load; their tests count as skipped)');
    expect(summary.details).toContain('  @weft/e2e-proxy src/hook.test.ts: 2 of 2 tests: not run: the file failed (see Failed)');
  });

  it('counts failed tests, failed suites (beforeAll, afterAll, a file that did not load) and unhandled errors', () => {
    const { summary } = read(sample('vitest-every-failure.txt'), 1);
    // Test Files 4 failed | 2 passed | 1 skipped (7); Tests 1 failed | 4 passed | 7 skipped (12); Errors 1 error; Failed Suites 3
    expect(summary.line).toBe('4 passed, 5 failed, 7 skipped');
    expect(summary.details).toEqual([
      'Skipped (7 tests):',
      '  @weft/sample src/hook.test.ts: 2 of 2 tests: not run: the file failed (see Failed)',
      '  @weft/sample src/skip.test.ts: 4 of 5 tests: needs root (CI runs the tests as root: sudo npm test)',
      '  @weft/sample src/allskip.test.ts: 1 of 1 test: needs prometheus (apt-get install -y prometheus)',
      'Failed:',
      '  @weft/sample: 1 test, 3 suites (a hook threw or the file did not load; their tests count as skipped), 1 unhandled error',
    ]);
    expect(summary.exitCode).toBe(1);
  });

  it('"Test Files 1 failed" alone still counts when the failed-suite header was not seen', () => {
    const text = sample('vitest-hook-failure.txt').replace(/^.*Failed Suites 1.*$/m, '');
    const { summary } = read(text, 1);
    expect(summary.failed).toBe(1);
    expect(summary.details).toContain('  @weft/e2e-proxy: 1 test file');
  });

  it('"Errors 1 error" alone is a failure', () => {
    const { summary } = read(['@weft/x:  ✓ src/a.test.ts (2 tests) 5ms', '@weft/x:  Test Files  1 passed (1)', '@weft/x:       Tests  2 passed (2)', '@weft/x:      Errors  1 error'].join('\n'), 1);
    expect(summary.line).toBe('2 passed, 1 failed, 0 skipped');
    expect(summary.details).toEqual(['Failed:', '  @weft/x: 1 unhandled error']);
  });

  it('a project whose runner exited non-zero without results, and nx failing with nothing reported, both count', () => {
    const crash = ['> nx run @weft/x:test', '@weft/x: > vitest run', '@weft/x: Error: Cannot find module vitest.config.ts', 'Failed tasks:', '', '- @weft/x:test', '', '  Run duration: 1s'];
    const a = read(crash.join('\n'), 1).summary;
    expect(a.line).toBe('0 passed, 1 failed, 0 skipped');
    expect(a.details).toEqual(['Failed:', '  @weft/x: its test runner exited non-zero without reporting results']);
    const b = read('@weft/x:       Tests  2 passed (2)', 130).summary;
    expect(b.failed).toBe(1);
    expect(b.exitCode).toBe(130);
    expect(b.details).toEqual(['Failed:', '  nx exited 130 with no failure reported by any project']);
  });

  it('attributes skip reasons to the file vitest printed them under, with projects interleaved and colours on', () => {
    const esc = String.fromCharCode(27);
    const lines = [
      `@weft/a: ${esc}[90mstderr${esc}[2m | src/x.test.ts${esc}[22m${esc}[39m`,
      '@weft/b: stdout | src/y.test.ts > suite > test',
      '@weft/b: some output',
      '@weft/a: skip reason: needs root',
      '@weft/a: skip reason: needs root',
      '@weft/a:  ✓ src/x.test.ts (3 tests | 3 skipped) 2ms',
      '@weft/b:  ✓ src/y.test.ts (1 test) 2ms',
      '@weft/b: skip reason: outside any console block is not attributed',
      `@weft/a:       Tests  ${esc}[1m${esc}[33m3 skipped${esc}[39m${esc}[22m (3)`,
      '@weft/b:       Tests  1 passed (1)',
    ];
    const { summary } = read(lines.join('\n'), 0);
    expect(summary.line).toBe('1 passed, 0 failed, 3 skipped');
    expect(summary.details).toEqual(['Skipped (3 tests):', '  @weft/a src/x.test.ts: 3 of 3 tests: needs root']);
  });
});
