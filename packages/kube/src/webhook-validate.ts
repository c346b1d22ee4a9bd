// The validating webhook (Istio's galley behind `validation.istio.io`): an Istio or Gateway API
// object created or updated through the API server is checked by the same code as `weftctl
// validate` and weftd's directory source (model's structure, galley's rules), and refused with
// galley's field path and reason. Kinds Weft does not model are let through with a warning rather
// than blocking what the cluster may use for something else.
import { validateConfig } from '@weft/galley';
import type { KubernetesObject } from '@kubernetes/client-node';
import { defaultKindRegistry, groupOf, type KindRegistry, type Problem, versionOf } from '@weft/model';
import { decodeClusterObject } from './convert.ts';
import { type AdmissionHandler, type AdmissionRequest, deny } from './webhook-admission.ts';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `spec.http[0].route[1].weight: weight -5 < 0`. */
function problemText(p: Problem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message;
}

/** Structural and semantic problems of an object as the API server sends it. */
export function objectProblems(object: Record<string, unknown>, registry: KindRegistry, namespace: string): { known: boolean; subject: string; problems: Problem[] } {
  const apiVersion = typeof object.apiVersion === 'string' ? object.apiVersion : '';
  const kind = typeof object.kind === 'string' ? object.kind : '';
  const meta = isObj(object.metadata) ? object.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  const subject = `${kind} ${namespace ? `${namespace}/` : ''}${name}`;
  const known = !('error' in registry.resolve(groupOf(apiVersion), versionOf(apiVersion), kind));
  if (!known) return { known, subject, problems: [] };
  // No source text: problems carry the field path, which is what the API server's caller sees.
  const withNamespace = namespace && meta.namespace === undefined ? { ...object, metadata: { ...meta, namespace } } : object;
  const loaded = decodeClusterObject(withNamespace as KubernetesObject, registry, '<admission>');
  const problems = [...loaded.problems];
  const broken = problems.some((p) => p.severity === 'error');
  if (loaded.config) problems.push(...validateConfig(loaded.config, { structurallyBroken: broken }));
  return { known, subject, problems };
}

/** The `/validate` handler. */
export function validationAdmission(registry: KindRegistry = defaultKindRegistry()): AdmissionHandler {
  return (request: AdmissionRequest) => {
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { allowed: true };
    const object = request.object;
    if (!isObj(object)) return deny('request.object is not a Kubernetes object');
    const { known, subject, problems } = objectProblems(object, registry, request.namespace ?? '');
    if (!known) return { allowed: true, warnings: [`Weft does not validate or use ${request.kind.group}/${request.kind.version} ${request.kind.kind}`] };
    const errors = problems.filter((p) => p.severity === 'error');
    const warnings = problems.filter((p) => p.severity === 'warning').map((p) => `${subject}: ${problemText(p)}`);
    if (errors.length > 0) return { ...deny(`configuration is invalid: ${subject}: ${errors.map(problemText).join('; ')}`), ...(warnings.length ? { warnings } : {}) };
    return { allowed: true, ...(warnings.length ? { warnings } : {}) };
  };
}
