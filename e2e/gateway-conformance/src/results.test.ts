import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareWithKnown, failureReason, formatRun, parseGoTestJson, parseKnownFailures } from './results.ts';

const T = 'TestGatewayAPIConformance';
const ev = (Action: string, Test?: string, extra: { Output?: string; Elapsed?: number } = {}) => JSON.stringify({ Time: '2026-12-07T16:50:00Z', Action, Package: 'weft.local/e2e/gateway-conformance', ...(Test ? { Test } : {}), ...extra });
const out = (Test: string, Output: string) => ev('output', Test, { Output });

// The shape go test -json gives for the suite: testify's failure block, nested subtests, a skip.
const sample = [
  ev('start'),
  ev('run', T),
  out(T, '=== RUN   TestGatewayAPIConformance\n'),
  ev('run', `${T}/Setup`),
  out(`${T}/Setup`, '    suite.go:389: 2026-12-07T16:50:01Z: Test Setup: Ensuring GatewayClass has been accepted\n'),
  ev('pass', `${T}/Setup`, { Elapsed: 41.2 }),
  ev('run', `${T}/HTTPRouteSimpleSameNamespace`),
  out(`${T}/HTTPRouteSimpleSameNamespace`, '    helpers.go:391: \n'),
  out(`${T}/HTTPRouteSimpleSameNamespace`, '        \tError Trace:\t/root/go/pkg/mod/sigs.k8s.io/gateway-api/conformance@v1.6.3/utils/kubernetes/helpers.go:391\n'),
  out(`${T}/HTTPRouteSimpleSameNamespace`, '        \tError:      \tReceived unexpected error:\n'),
  out(`${T}/HTTPRouteSimpleSameNamespace`, '        \t            \tcontext deadline exceeded\n'),
  out(`${T}/HTTPRouteSimpleSameNamespace`, '        \tTest:       \tTestGatewayAPIConformance/HTTPRouteSimpleSameNamespace\n'),
  out(`${T}/HTTPRouteSimpleSameNamespace`, '        \tMessages:   \terror waiting for HTTPRoute status to have a Condition matching expectations\n'),
  ev('fail', `${T}/HTTPRouteSimpleSameNamespace`, { Elapsed: 60.3 }),
  ev('run', `${T}/HTTPRouteHeaderMatching`),
  ev('run', `${T}/HTTPRouteHeaderMatching/0_request_to_'/'_should_go_to_infra-backend-v1`),
  out(`${T}/HTTPRouteHeaderMatching/0_request_to_'/'_should_go_to_infra-backend-v1`, '    http.go:229: 2026-12-07T16:52:00Z: Request failed, not ready yet: Get "http://10.96.4.4/": dial tcp 10.96.4.4:80: connect: connection refused\n'),
  out(`${T}/HTTPRouteHeaderMatching/0_request_to_'/'_should_go_to_infra-backend-v1`, '    http.go:306: 2026-12-07T16:52:30Z: timeout while waiting after 26 attempts, 0/3 successes\n'),
  ev('fail', `${T}/HTTPRouteHeaderMatching/0_request_to_'/'_should_go_to_infra-backend-v1`, { Elapsed: 30 }),
  out(`${T}/HTTPRouteHeaderMatching`, '    apply.go:290: 2026-12-07T16:52:31Z: Deleting header-matching HTTPRoute\n'),
  ev('fail', `${T}/HTTPRouteHeaderMatching`, { Elapsed: 30.1 }),
  ev('run', `${T}/HTTPRouteRequestMirror`),
  out(`${T}/HTTPRouteRequestMirror`, '    conformance.go:56: Skipping HTTPRouteRequestMirror: suite does not support HTTPRouteRequestMirror\n'),
  ev('skip', `${T}/HTTPRouteRequestMirror`, { Elapsed: 0 }),
  ev('run', `${T}/GatewayClassObservedGenerationBump`),
  ev('pass', `${T}/GatewayClassObservedGenerationBump`, { Elapsed: 2.5 }),
  ev('fail', T, { Elapsed: 200 }),
  ev('output', undefined, { Output: 'FAIL\tweft.local/e2e/gateway-conformance\t200.1s\n' }),
  ev('fail'),
].join('\n');

describe('parseGoTestJson', () => {
  it('gives each direct subtest its result, time and (for a failure) the suite’s reason; nested cases count toward their test', () => {
    const run = parseGoTestJson(sample, T);
    expect(run.verdict).toBe('fail');
    expect(run.tests.map((t) => [t.name, t.result])).toEqual([
      ['Setup', 'pass'],
      ['HTTPRouteSimpleSameNamespace', 'fail'],
      ['HTTPRouteHeaderMatching', 'fail'],
      ['HTTPRouteRequestMirror', 'skip'],
      ['GatewayClassObservedGenerationBump', 'pass'],
    ]);
    expect(run.tests[1]).toMatchObject({ seconds: 60.3, reason: 'error waiting for HTTPRoute status to have a Condition matching expectations: Received unexpected error: context deadline exceeded' });
    // a failing case's own lines, not its test's cleanup lines, and without the timestamp
    expect(run.tests[2]?.reason).toBe(`0_request_to_'/'_should_go_to_infra-backend-v1: Request failed, not ready yet: Get "http://10.96.4.4/": dial tcp 10.96.4.4:80: connect: connection refused (then timeout while waiting after 26 attempts, 0/3 successes)`);
    expect(run.topLevel).toContain('FAIL\tweft.local/e2e/gateway-conformance\t200.1s');
  });

  it('says "none" when the Go test never ended (killed, build failure) and keeps the compiler’s lines', () => {
    const run = parseGoTestJson('# weft.local/e2e/gateway-conformance\n./conformance_test.go:3:2: undefined: x\n', T);
    expect(run.verdict).toBe('none');
    expect(run.tests).toEqual([]);
    expect(run.topLevel).toEqual(['# weft.local/e2e/gateway-conformance', './conformance_test.go:3:2: undefined: x']);
  });

  it('prints one line per test and the totals', () => {
    const text = formatRun(parseGoTestJson(sample, T));
    expect(text).toMatch(/^FAIL {2}HTTPRouteSimpleSameNamespace +60\.3 s\n {8}error waiting for HTTPRoute status/m);
    expect(text.split('\n').at(-1)).toBe('2 passed, 2 failed, 1 skipped (5 tests)');
  });
});

describe('failureReason', () => {
  it('falls back to the last log line, then to a fixed sentence', () => {
    expect(failureReason(['    helpers.go:10: first', '    helpers.go:11: second'])).toBe('second');
    expect(failureReason(['    pod.go:72: 2026-12-07T16:52:57.6Z: not ready yet: wanted 200, got 404', '    apply.go:290: 2026-12-07T16:53:28.1Z: Deleting x HTTPRoute'])).toBe('not ready yet: wanted 200, got 404');
    expect(failureReason([])).toBe('failed without a message');
  });
});

describe('known failures', () => {
  const readme = (rows: string) => `# x\n\n<!-- known-failures:start -->\n| test | profile | reason |\n|---|---|---|\n${rows}<!-- known-failures:end -->\n`;

  it('reads the table between the markers; every row needs a reason and appears once', () => {
    expect(parseKnownFailures(readme('| `HTTPRouteSimpleSameNamespace` | GATEWAY-HTTP | no status | yet |\n'))).toEqual([{ test: 'HTTPRouteSimpleSameNamespace', profile: 'GATEWAY-HTTP', reason: 'no status | yet' }]);
    expect(() => parseKnownFailures(readme('| A | GATEWAY-HTTP |  |\n'))).toThrow(/A has no reason/);
    expect(() => parseKnownFailures(readme('| A | MESH-HTTP | r |\n| A | MESH-HTTP | r |\n'))).toThrow(/A is listed twice/);
    expect(() => parseKnownFailures('# no table')).toThrow(/no known-failures table/);
  });

  it('a failure not listed and a listed test that passes are both reported; a listed failure is expected', () => {
    const run = parseGoTestJson(sample, T);
    const known = parseKnownFailures(readme('| HTTPRouteHeaderMatching | GATEWAY-HTTP | listeners not programmed |\n| GatewayClassObservedGenerationBump | GATEWAY-HTTP | was broken |\n'));
    const c = compareWithKnown(run, known);
    expect(c.unlisted.map((t) => t.name)).toEqual(['HTTPRouteSimpleSameNamespace']);
    expect(c.fixed.map((k) => k.test)).toEqual(['GatewayClassObservedGenerationBump']);
    expect(c.expected.map((t) => t.name)).toEqual(['HTTPRouteHeaderMatching']);
  });

  it("the committed README's table parses", () => {
    expect(() => parseKnownFailures(readFileSync(join(import.meta.dirname, '../README.md'), 'utf8'))).not.toThrow();
  });
});
