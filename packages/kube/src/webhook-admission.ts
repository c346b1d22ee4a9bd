// admission.k8s.io/v1 AdmissionReview: what the API server POSTs to a webhook and what it expects
// back. Only the fields the webhooks use are typed; anything read from the wire is checked first.

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code?: number; message: string };
  patchType?: 'JSONPatch';
  /** Base64 of the JSON Patch. */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

/** Decides one request: allow (with a patch or warnings) or deny with a message. */
export type AdmissionHandler = (request: AdmissionRequest) => Omit<AdmissionResponse, 'uid'>;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const operations = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

/** The request of an AdmissionReview body, or why the body is not one (the sentence names what is wrong). */
export function parseAdmissionReview(body: string): { request: AdmissionRequest } | { error: string } {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch (e) {
    return { error: `the body is not JSON (${(e as Error).message})` };
  }
  if (!isObj(v)) return { error: 'the body is not a JSON object' };
  if (v.kind !== 'AdmissionReview') return { error: `kind is ${JSON.stringify(v.kind)}, not "AdmissionReview"` };
  if (v.apiVersion !== 'admission.k8s.io/v1') return { error: `apiVersion is ${JSON.stringify(v.apiVersion)}; this webhook speaks admission.k8s.io/v1 (set admissionReviewVersions: ["v1"])` };
  const r = v.request;
  if (!isObj(r)) return { error: 'request is missing' };
  if (typeof r.uid !== 'string' || r.uid === '') return { error: 'request.uid is missing' };
  const k = r.kind;
  if (!isObj(k) || typeof k.kind !== 'string' || typeof k.version !== 'string' || typeof (k.group ?? '') !== 'string') return { error: 'request.kind is not a {group, version, kind}' };
  if (typeof r.operation !== 'string' || !operations.has(r.operation)) return { error: `request.operation ${JSON.stringify(r.operation)} is not CREATE, UPDATE, DELETE or CONNECT` };
  if (r.namespace !== undefined && typeof r.namespace !== 'string') return { error: 'request.namespace is not a string' };
  return { request: { ...(r as unknown as AdmissionRequest), kind: { group: (k.group as string | undefined) ?? '', version: k.version, kind: k.kind } } };
}

/** The AdmissionReview answering `request`. */
export function admissionReview(uid: string, response: Omit<AdmissionResponse, 'uid'>): AdmissionReview {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, ...response } };
}

/** A denial with a message (HTTP-like code: 400 for bad input, 500 for the webhook's own failure). */
export function deny(message: string, code = 400): Omit<AdmissionResponse, 'uid'> {
  return { allowed: false, status: { code, message } };
}
