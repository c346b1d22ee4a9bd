// Reads `nx run-many -t test --outputStyle=stream` output (each line `<project>: <vitest line>`)
// into `npm test`'s closing summary. Anything that failed counts as failed, not only failed tests:
// a suite whose hook threw or whose file did not load (vitest then reports its tests as skipped),
// an unhandled error, and a project whose runner exited non-zero without saying why. Skipped test
// files are listed with the reasons their tests printed (host.ts noteSkip).
import { skipMarker } from './host.ts';

export interface ProjectTally {
  passed: number;
  /** Failed tests. */
  failed: number;
  skipped: number;
  /** "Test Files N failed". */
  failedFiles: number;
  /** "Failed Suites N": a hook that threw, a file that did not load. */
  failedSuites: number;
  /** "Errors N errors": unhandled errors and rejections. */
  errors: number;
  /** Whether vitest printed its totals. */
  reported: boolean;
}

export interface SkippedFile {
  project: string;
  file: string;
  skipped: number;
  total: number;
  /** The file itself failed (a hook or its loading): its tests did not run for that reason. */
  fileFailed: boolean;
  reasons: string[];
}

const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const count = (text: string, what: string): number => Number(new RegExp(`(\\d+) ${what}`).exec(text)?.[1] ?? 0);

interface FileLine {
  skipped: number;
  total: number;
  failed: boolean;
}

export class TestOutputReader {
  readonly projects = new Map<string, ProjectTally>();
  /** Projects nx lists under "Failed tasks". */
  readonly failedTasks = new Set<string>();
  readonly #files = new Map<string, Map<string, FileLine>>();
  readonly #reasons = new Map<string, Map<string, Set<string>>>();
  /** Per project: the test file whose console output is being printed. */
  readonly #consoleOf = new Map<string, string | undefined>();
  #inFailedTasks = false;

  #tally(project: string): ProjectTally {
    let t = this.projects.get(project);
    if (!t) {
      t = { passed: 0, failed: 0, skipped: 0, failedFiles: 0, failedSuites: 0, errors: 0, reported: false };
      this.projects.set(project, t);
    }
    return t;
  }

  /** One line of output, without its newline. */
  line(raw: string): void {
    const text = raw.replace(ansi, '').replace(/\r$/, '');
    const prefixed = /^([@\w][\w@/.-]*): (.*)$/.exec(text);
    if (!prefixed) {
      this.#nxLine(text);
      return;
    }
    this.#inFailedTasks = false;
    this.#projectLine(prefixed[1]!, prefixed[2]!);
  }

  #nxLine(text: string): void {
    if (/^\s*Failed tasks:\s*$/.test(text)) {
      this.#inFailedTasks = true;
      return;
    }
    if (!this.#inFailedTasks) return;
    const task = /^\s*- (\S+):test\b/.exec(text);
    if (task) this.failedTasks.add(task[1]!);
    else if (text.trim() !== '') this.#inFailedTasks = false;
  }

  #projectLine(project: string, text: string): void {
    const trimmed = text.trim();
    // Console output comes as `stderr | src/a.test.ts [> suite > test]` and then its lines (nx drops
    // blank lines, so the block has no end of its own: the next line vitest prints ends it).
    const header = /^(?:stdout|stderr) \| (\S+)/.exec(trimmed);
    if (header) {
      this.#consoleOf.set(project, header[1]);
      return;
    }
    const consoleFile = this.#consoleOf.get(project);
    if (consoleFile !== undefined && trimmed.startsWith(skipMarker)) {
      this.#reason(project, consoleFile, trimmed.slice(skipMarker.length));
      return;
    }
    if (this.#vitestLine(project, trimmed)) this.#consoleOf.set(project, undefined);
  }

  /** Reads one of vitest's own lines; false for anything else. */
  #vitestLine(project: string, trimmed: string): boolean {
    let m = /^Test Files\s+(.*)\(\d+\)$/.exec(trimmed);
    if (m) {
      this.#tally(project).failedFiles += count(m[1]!, 'failed');
      return true;
    }
    m = /^Tests\s+(.*)\(\d+\)$/.exec(trimmed);
    if (m) {
      const t = this.#tally(project);
      t.reported = true;
      t.passed += count(m[1]!, 'passed');
      t.failed += count(m[1]!, 'failed');
      t.skipped += count(m[1]!, 'skipped') + count(m[1]!, 'todo');
      return true;
    }
    m = /^Errors\s+(\d+) errors?\b/.exec(trimmed);
    if (m) {
      this.#tally(project).errors += Number(m[1]);
      return true;
    }
    m = /Failed Suites (\d+)\b/.exec(trimmed);
    if (m && trimmed.startsWith('⎯')) {
      this.#tally(project).failedSuites += Number(m[1]);
      return true;
    }
    // A file's line: ` ✓ src/a.test.ts (5 tests | 2 skipped) 6ms`; ❯ marks a file that failed.
    m = /^([✓❯↓×]) (\S+) \((\d+) tests?(?: \| ([^)]*))?\)/.exec(trimmed);
    if (m) {
      const files = this.#files.get(project) ?? new Map<string, FileLine>();
      this.#files.set(project, files);
      files.set(m[2]!, { skipped: count(m[4] ?? '', 'skipped') + count(m[4] ?? '', 'todo'), total: Number(m[3]), failed: m[1] === '❯' || m[1] === '×' });
      return true;
    }
    return /^(?:RUN|FAIL|PASS)\b/.test(trimmed);
  }

  #reason(project: string, file: string, reason: string): void {
    const byFile = this.#reasons.get(project) ?? new Map<string, Set<string>>();
    this.#reasons.set(project, byFile);
    const reasons = byFile.get(file) ?? new Set<string>();
    byFile.set(file, reasons);
    reasons.add(reason);
  }

  /** Files with skipped tests, or with a skip reason printed, in the order projects reported. */
  skippedFiles(): SkippedFile[] {
    const out: SkippedFile[] = [];
    const projects = new Set([...this.#files.keys(), ...this.#reasons.keys()]);
    for (const project of projects) {
      const files = this.#files.get(project) ?? new Map<string, FileLine>();
      const reasons = this.#reasons.get(project) ?? new Map<string, Set<string>>();
      for (const file of new Set([...files.keys(), ...reasons.keys()])) {
        const f = files.get(file);
        const why = [...(reasons.get(file) ?? [])];
        if ((f?.skipped ?? 0) === 0 && why.length === 0) continue;
        out.push({ project, file, skipped: f?.skipped ?? 0, total: f?.total ?? 0, fileFailed: f?.failed ?? false, reasons: why });
      }
    }
    return out;
  }
}

export interface Summary {
  passed: number;
  failed: number;
  skipped: number;
  /** Lines to print before the closing line: what failed beyond tests, what skipped and why. */
  details: string[];
  /** The closing line: `N passed, N failed, N skipped`. */
  line: string;
  exitCode: number;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The summary of a run, from what the reader saw and the exit status of nx. */
export function summarize(reader: TestOutputReader, nxExit: number | null): Summary {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const failures: string[] = [];
  const projects = new Set([...reader.projects.keys(), ...reader.failedTasks]);
  for (const project of projects) {
    const t = reader.projects.get(project);
    const parts: string[] = [];
    let n = 0;
    if (t) {
      passed += t.passed;
      skipped += t.skipped;
      if (t.failed) parts.push(plural(t.failed, 'test'));
      if (t.failedSuites) parts.push(`${plural(t.failedSuites, 'suite')} (a hook threw or the file did not load; their tests count as skipped)`);
      if (t.errors) parts.push(plural(t.errors, 'unhandled error'));
      n = t.failed + t.failedSuites + t.errors;
      // vitest names failed suites on stderr; if that header was not seen, the failed files still count.
      if (t.failedFiles > 0 && t.failed + t.failedSuites === 0) {
        parts.push(plural(t.failedFiles, 'test file'));
        n += t.failedFiles;
      }
    }
    if (n === 0 && reader.failedTasks.has(project)) {
      parts.push(t?.reported ? 'its test runner exited non-zero' : 'its test runner exited non-zero without reporting results');
      n = 1;
    }
    if (n > 0) failures.push(`  ${project}: ${parts.join(', ')}`);
    failed += n;
  }
  if (failed === 0 && nxExit !== 0) {
    failures.push(`  nx exited ${nxExit ?? 'on a signal'} with no failure reported by any project`);
    failed = 1;
  }
  const details: string[] = [];
  const skippedFiles = reader.skippedFiles();
  if (skippedFiles.length > 0) {
    details.push(`Skipped (${plural(skipped, 'test')}):`);
    for (const f of skippedFiles) {
      const why = f.reasons.length > 0 ? f.reasons.join('; ') : f.fileFailed ? 'not run: the file failed (see Failed)' : 'no reason printed';
      const what = f.skipped > 0 ? `${f.skipped} of ${plural(f.total, 'test')}` : 'some tests';
      details.push(`  ${f.project} ${f.file}: ${what}: ${why}`);
    }
  }
  if (failures.length > 0) details.push('Failed:', ...failures);
  return { passed, failed, skipped, details, line: `${passed} passed, ${failed} failed, ${skipped} skipped`, exitCode: failed > 0 ? nxExit || 1 : 0 };
}
