// What a run of the conformance suite said, read from `go test -json`, and how it compares with
// the known failures the README lists (a test that fails must be listed with its reason; a listed
// test that passes must leave the list).

/** One test of the suite (a direct subtest of the Go test, `Setup` included) and how it ended. */
export interface TestOutcome {
  name: string;
  result: 'pass' | 'fail' | 'skip';
  seconds: number;
  /** For a failure: the suite's own words (testify's Error/Messages, else the last log line). */
  reason?: string;
}

export interface SuiteRun {
  /** In the order the suite finished them. */
  tests: TestOutcome[];
  /** Whether the Go test as a whole passed, failed, or never said (killed, build failure). */
  verdict: 'pass' | 'fail' | 'none';
  /** Output that belongs to no subtest (build errors, panics, the Go test's own log). */
  topLevel: string[];
}

interface TestEvent {
  Action: string;
  Test?: string;
  Elapsed?: number;
  Output?: string;
}

/** Splits `go test -json` output into per-test outcomes. Lines that are not JSON count as top-level output. */
export function parseGoTestJson(text: string, goTest: string): SuiteRun {
  const outputs = new Map<string, string[]>();
  const firstFailedCase = new Map<string, string>();
  const tests: TestOutcome[] = [];
  const topLevel: string[] = [];
  let verdict: SuiteRun['verdict'] = 'none';
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let event: TestEvent;
    try {
      event = JSON.parse(line) as TestEvent;
    } catch {
      topLevel.push(line);
      continue;
    }
    if (event.Test === undefined || !event.Test.startsWith(`${goTest}`)) {
      if (event.Action === 'output' && event.Output) topLevel.push(event.Output.replace(/\n$/, ''));
      continue;
    }
    const parts = event.Test.split('/');
    if (parts[0] !== goTest) continue;
    if (parts.length === 1) {
      if (event.Action === 'pass' || event.Action === 'fail') verdict = event.Action;
      else if (event.Action === 'output' && event.Output) topLevel.push(event.Output.replace(/\n$/, ''));
      continue;
    }
    // nested subtests (a test's own t.Run cases) count toward the suite's test that holds them
    const name = parts[1] as string;
    if (event.Action === 'output' && event.Output) {
      for (const key of new Set([name, event.Test])) {
        const list = outputs.get(key) ?? [];
        list.push(event.Output.replace(/\n$/, ''));
        outputs.set(key, list);
      }
      continue;
    }
    if (parts.length > 2) {
      if (event.Action === 'fail' && !firstFailedCase.has(name)) firstFailedCase.set(name, event.Test);
      continue;
    }
    if (event.Action === 'pass' || event.Action === 'fail' || event.Action === 'skip') {
      const outcome: TestOutcome = { name, result: event.Action, seconds: event.Elapsed ?? 0 };
      if (event.Action === 'fail') {
        // the first case that failed says more than the test's own last lines (its cleanup)
        const failedCase = firstFailedCase.get(name);
        outcome.reason = failedCase ? `${failedCase.split('/').slice(2).join('/')}: ${failureReason(outputs.get(failedCase) ?? [])}` : failureReason(outputs.get(name) ?? []);
      }
      tests.push(outcome);
    }
  }
  return { tests, verdict, topLevel };
}

const MAX_REASON = 700;

/**
 * The suite's explanation of a failure: testify's `Error:` (with its continuation lines) and
 * `Messages:` blocks, the first of them; else the last `file.go:N: ...` log line.
 */
export function failureReason(lines: readonly string[]): string {
  for (let i = 0; i < lines.length; i++) {
    const error = /^\s*Error:\s*(.*)$/.exec(lines[i] as string);
    if (!error) continue;
    const parts = [error[1] as string];
    let messages = '';
    let continuing = true;
    for (let j = i + 1; j < lines.length; j++) {
      const l = lines[j] as string;
      if (/^\s*Error Trace:/.test(l) || /^\s*---\s/.test(l) || /^=== /.test(l)) break;
      const m = /^\s*Messages:\s*(.*)$/.exec(l);
      if (m) {
        messages = m[1] as string;
        break;
      }
      // testify's block: labelled lines (Test:, Error:) end the message's continuation lines
      if (/^\s*(Test|Error):/.test(l)) continuing = false;
      else if (continuing) parts.push(l.trim());
    }
    // the suite's last word before it gave up says what it saw (a stale condition, a status code)
    const seen = telling(lines.slice(0, i)).at(-1);
    return clip([messages, parts.join(' ')].filter((s) => s.trim()).join(': ') + (seen ? `; last seen: ${seen}` : ''));
  }
  const logged = logLines(lines);
  const timeout = logged.find((l) => l.startsWith('timeout while waiting'));
  const last = telling(lines).at(-1) ?? logged.at(-1);
  if (!last) return 'failed without a message';
  return clip(timeout && last !== timeout ? `${last} (then ${timeout})` : last);
}

/** The `file.go:N: ` log lines of a test, without that prefix and the suite's timestamp. */
function logLines(lines: readonly string[]): string[] {
  return lines.filter((l) => /^\s+[\w.-]+\.go:\d+: /.test(l)).map((l) => l.replace(/^\s+[\w.-]+\.go:\d+: (\d{4}-\d\d-\d\dT[\d:.]+Z: )?/, ''));
}

/** Log lines that say something about why: not the suite's own progress lines. */
function telling(lines: readonly string[]): string[] {
  return logLines(lines).filter((l) => l.trim() && !/^(Deleting|Creating|Applying|Running|Got resp|Request passed|timeout while waiting)\b/.test(l));
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > MAX_REASON ? `${one.slice(0, MAX_REASON - 1)}…` : one;
}

/** A row of the README's known-failures table. */
export interface KnownFailure {
  test: string;
  profile: string;
  reason: string;
}

const START = '<!-- known-failures:start -->';
const END = '<!-- known-failures:end -->';

/** The known-failures table between its markers in the README: `| test | profile | reason |`. */
export function parseKnownFailures(readme: string): KnownFailure[] {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`the README has no known-failures table (between ${START} and ${END})`);
  const rows: KnownFailure[] = [];
  for (const line of readme.slice(start + START.length, end).split('\n')) {
    if (!line.trim().startsWith('|')) continue;
    const cells = line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim());
    if (cells.length < 3 || /^-+$/.test(cells[0] as string) || cells[0] === 'test') continue;
    const [test, profile, ...reason] = cells as [string, string, ...string[]];
    const name = test.replace(/`/g, '');
    const why = reason.join(' | ').trim();
    if (!why) throw new Error(`known failure ${name} has no reason`);
    if (rows.some((r) => r.test === name)) throw new Error(`known failure ${name} is listed twice`);
    rows.push({ test: name, profile, reason: why });
  }
  return rows;
}

export interface Comparison {
  /** Failed and not listed: a regression (or a new test), with the suite's reason. */
  unlisted: TestOutcome[];
  /** Listed and passed: the list must shrink. */
  fixed: KnownFailure[];
  /** Listed, failed: expected. */
  expected: TestOutcome[];
}

export function compareWithKnown(run: SuiteRun, known: readonly KnownFailure[]): Comparison {
  const listed = new Set(known.map((k) => k.test));
  const failed = run.tests.filter((t) => t.result === 'fail');
  const passed = new Set(run.tests.filter((t) => t.result === 'pass').map((t) => t.name));
  return {
    unlisted: failed.filter((t) => !listed.has(t.name)),
    fixed: known.filter((k) => passed.has(k.test)),
    expected: failed.filter((t) => listed.has(t.name)),
  };
}

/** The per-test lines and the totals, as the Kubernetes-tier test prints them. */
export function formatRun(run: SuiteRun): string {
  const lines = run.tests.map((t) => `${t.result.toUpperCase().padEnd(4)}  ${t.name.padEnd(58)} ${t.seconds.toFixed(1).padStart(6)} s${t.reason ? `\n        ${t.reason}` : ''}`);
  const count = (r: TestOutcome['result']) => run.tests.filter((t) => t.result === r).length;
  lines.push(`${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped (${run.tests.length} tests)`);
  return lines.join('\n');
}
