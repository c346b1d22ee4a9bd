/** A path to a field: `['spec', 'http', 0, 'route', 1, 'weight']`. */
export type PathSegment = string | number;
export type FieldPath = readonly PathSegment[];

const plainKey = /^[A-Za-z_$][\w$-]*$/;

/** `spec.http[0].route[1].weight`; keys that are not identifiers are quoted: `metadata.labels["app.kubernetes.io/name"]`. */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (plainKey.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

export type Severity = 'error' | 'warning';

/** One thing wrong with an input, located as precisely as the source allows. */
export interface Problem {
  severity: Severity;
  /** Display path of the field (`spec.http[0].route`), empty for the whole document. */
  path: string;
  message: string;
  /** Stable code: Istio analyzer codes (IST0101) where the meaning is the same, else Weft's own (WEFT1xxx). */
  code?: string;
  file?: string;
  /** 1-based. */
  line?: number;
  /** 1-based. */
  column?: number;
}

/** Builds problems for one resource, resolving paths to source positions when a source is known. */
export interface Locator {
  readonly file: string;
  /** Position of the field at `path`, or of its nearest ancestor that exists in the source. */
  positionOf(path: FieldPath): { line: number; column: number };
}

export class ProblemList {
  readonly items: Problem[] = [];
  readonly locator: Locator | undefined;
  constructor(locator?: Locator) {
    this.locator = locator;
  }

  error(path: FieldPath, message: string, code?: string): void {
    this.add('error', path, message, code);
  }
  warning(path: FieldPath, message: string, code?: string): void {
    this.add('warning', path, message, code);
  }
  add(severity: Severity, path: FieldPath, message: string, code?: string): void {
    const p: Problem = { severity, path: formatPath(path), message };
    if (code) p.code = code;
    if (this.locator) {
      const pos = this.locator.positionOf(path);
      p.file = this.locator.file;
      p.line = pos.line;
      p.column = pos.column;
    }
    this.items.push(p);
  }
  get errors(): Problem[] {
    return this.items.filter((p) => p.severity === 'error');
  }
  get warnings(): Problem[] {
    return this.items.filter((p) => p.severity === 'warning');
  }
  hasErrors(): boolean {
    return this.items.some((p) => p.severity === 'error');
  }
}

/** Compiler-style line: `file:line:col: error: VirtualService default/reviews: spec.http[0]: message`. */
export function formatProblem(p: Problem, subject?: string): string {
  const where = p.file ? `${p.file}:${p.line ?? 1}:${p.column ?? 1}: ` : '';
  const who = subject ? `${subject}: ` : '';
  const field = p.path ? `${p.path}: ` : '';
  const code = p.code ? ` [${p.code}]` : '';
  return `${where}${p.severity}: ${who}${field}${p.message}${code}`;
}
