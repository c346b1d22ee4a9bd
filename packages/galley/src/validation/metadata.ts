// Rules for `metadata` that hold for every kind: object and namespace names, label keys and values,
// annotation keys, and the annotations Istio gives a meaning to (`istio.io/dry-run`).
import { groupKindOf, groupOf } from '@weft/model';
import { dns1123LabelError, isDns1123Subdomain, isString, labelKeyError, labelValueError } from './common.ts';
import type { ValidationContext } from './context.ts';

/** Kinds whose names are DNS-1123 labels (they become DNS labels themselves); all others are subdomains. */
const labelNamedKinds = new Set(['/Service', '/Namespace']);

/** Kubernetes' limit on the total size of an object's annotations (keys and values). */
const maxAnnotationBytes = 256 * 1024;

const dryRunAnnotation = 'istio.io/dry-run';

/** Go's strconv.ParseBool, which Istio applies to `istio.io/dry-run`. */
const goBools = new Set(['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False']);

function subdomainError(s: string): string | undefined {
  if (s.length > 253) return `${JSON.stringify(`${s.slice(0, 30)}…`)} is longer than 253 characters`;
  if (!isDns1123Subdomain(s)) return `${JSON.stringify(s)} is not a valid DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)`;
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks `metadata` of any resource; problems are reported at `metadata.<field>`. */
export function validateMetadata(ctx: ValidationContext): void {
  const { config } = ctx;
  const meta = config.metadata;
  const gk = groupKindOf(config);

  // An empty or missing name is the loader's to report.
  if (isString(meta.name) && meta.name !== '') {
    const e = labelNamedKinds.has(gk) ? dns1123LabelError(meta.name) : subdomainError(meta.name);
    if (e) ctx.metaError(['name'], `invalid ${config.kind} name: ${e}`);
  }
  if (isString(meta.namespace) && meta.namespace !== '') {
    const e = dns1123LabelError(meta.namespace);
    if (e) ctx.metaError(['namespace'], `invalid namespace: ${e}`);
  }

  if (isObject(meta.labels)) {
    for (const [key, value] of Object.entries(meta.labels)) {
      const keyProblem = labelKeyError(key);
      if (keyProblem) ctx.metaError(['labels', key], keyProblem);
      if (isString(value)) {
        const valueProblem = labelValueError(value);
        if (valueProblem) ctx.metaError(['labels', key], valueProblem);
      }
    }
  }

  if (isObject(meta.annotations)) {
    let bytes = 0;
    for (const [key, value] of Object.entries(meta.annotations)) {
      bytes += Buffer.byteLength(key) + (isString(value) ? Buffer.byteLength(value) : 0);
      const keyProblem = labelKeyError(key);
      if (keyProblem) ctx.metaError(['annotations', key], keyProblem.replace(/^label key/, 'annotation key'));
    }
    if (bytes > maxAnnotationBytes) ctx.metaError(['annotations'], `annotations take ${bytes} bytes; the total may be at most ${maxAnnotationBytes} (256 KiB)`);
    validateDryRun(ctx, meta.annotations);
  }
}

/** Istio accepts `istio.io/dry-run` on AuthorizationPolicy (ALLOW and DENY) only, with a boolean value. */
function validateDryRun(ctx: ValidationContext, annotations: Record<string, unknown>): void {
  if (!(dryRunAnnotation in annotations)) return;
  const { config } = ctx;
  if (!groupOf(config.apiVersion).endsWith('istio.io')) return;
  const path = ['annotations', dryRunAnnotation];
  if (groupKindOf(config) !== 'security.istio.io/AuthorizationPolicy') {
    ctx.metaError(path, `${config.kind} does not support the annotation ${dryRunAnnotation} (only AuthorizationPolicy does); please remove it`);
    return;
  }
  const spec = isObject(config.spec) ? config.spec : {};
  const action = isString(spec.action) ? spec.action : 'ALLOW';
  if (action !== 'ALLOW' && action !== 'DENY') {
    ctx.metaError(path, `the annotation ${dryRunAnnotation} currently only supports action ALLOW/DENY, found action ${action}`);
    return;
  }
  const value = annotations[dryRunAnnotation];
  if (!isString(value) || !goBools.has(value)) {
    ctx.metaError(path, `annotation ${dryRunAnnotation} has invalid value ${JSON.stringify(value)}: use "true" or "false"`);
  }
}
