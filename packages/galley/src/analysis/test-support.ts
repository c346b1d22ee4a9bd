// Helpers for the analysis tests: load YAML text, analyze it, and flatten the findings.
import { type Config, defaultKindRegistry, describeConfig, loadText } from '@weft/model';
import { analyze } from './analyze.ts';
import type { Analyzer } from './context.ts';

export interface Finding {
  /** `VirtualService default/reviews`. */
  subject: string;
  code: string | undefined;
  severity: string;
  path: string;
  message: string;
  line: number | undefined;
}

/** Loads one or more YAML texts (each its own file, in order); fails on structural problems, which would make a test meaningless. */
export function load(...texts: string[]): Config[] {
  const configs: Config[] = [];
  texts.forEach((text, i) => {
    const r = loadText(text, `test-${i}.yaml`, { registry: defaultKindRegistry() });
    const problems = [...r.problems, ...r.resources.flatMap((x) => x.problems)].filter((p) => p.severity === 'error');
    if (problems.length > 0) throw new Error(`test input does not load: ${problems.map((p) => `${p.line}: ${p.path} ${p.message}`).join('; ')}`);
    for (const x of r.resources) if (x.config) configs.push(x.config);
  });
  return configs;
}

export function findings(configs: readonly Config[], analyzers?: readonly Analyzer[]): Finding[] {
  const out: Finding[] = [];
  for (const [config, problems] of analyze(configs, analyzers)) {
    for (const p of problems) out.push({ subject: describeConfig(config), code: p.code, severity: p.severity, path: p.path, message: p.message, line: p.line });
  }
  return out;
}

/** Loads and analyzes in one step. */
export function run(text: string | string[], analyzers?: readonly Analyzer[]): Finding[] {
  return findings(load(...(Array.isArray(text) ? text : [text])), analyzers);
}

/** Findings with the given code. */
export function withCode(fs: readonly Finding[], code: string): Finding[] {
  return fs.filter((f) => f.code === code);
}

/** A namespace's worth of reviews: a Service on 9080 and Deployments v1 and v2. */
export const reviewsPlatform = `apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  selector:
    app: reviews
  ports:
  - name: http
    port: 9080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-v1
spec:
  selector:
    matchLabels: {app: reviews, version: v1}
  template:
    metadata:
      labels: {app: reviews, version: v1}
    spec:
      containers:
      - name: reviews
        image: weft/examples-bookinfo-reviews:latest
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-v2
spec:
  selector:
    matchLabels: {app: reviews, version: v2}
  template:
    metadata:
      labels: {app: reviews, version: v2}
    spec:
      containers:
      - name: reviews
        image: weft/examples-bookinfo-reviews:latest
`;

/** 1-based line of the `nth` (0-based) occurrence of `needle` in `text`. */
export function lineOf(text: string, needle: string, nth = 0): number {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`${JSON.stringify(needle)} (occurrence ${nth}) not in text`);
  }
  return text.slice(0, at).split('\n').length;
}
