// istio_authn: Istio's authentication filter (istio.envoy.config.filter.http.authn.v2alpha1.FilterConfig,
// sent as a TypedStruct), the JWT half of it. After jwt_authn, it takes the verified payload of one
// of its origins (jwt_authn's `payload` metadata, else the first issuer key in the policy's order)
// and writes the attributes
// AuthorizationPolicies match to the `istio_authn` dynamic metadata, as Istio's filter did:
//   request.auth.principal   `<iss>/<sub>`
//   request.auth.audiences   the first `aud`
//   request.auth.presenter   `azp`
//   request.auth.claims      every claim as a list of strings (a string is a one-element list, a
//                            list keeps its scalar items, `scope` and `permission` are also split
//                            at spaces); objects nest, so `request.auth.claims[a][b]` finds them
//   request.auth.raw_claims  the payload as JSON
// Nothing verified: nothing written (no principal), and the request goes on: whether a principal is
// needed is the AuthorizationPolicies' (RBAC's) decision.
import type { JWTPayload } from 'jose';
import { decodeAny, TypeUrl } from '@weft/xds';
import type { HttpFilter, HttpFilterContext, HttpFilterFactory, HttpStreamHooks } from '../core/filters.ts';
import { structToJson } from '../telemetry/workload.ts';
import { jwtAuthnFilterName } from './jwt-authn.ts';

export const istioAuthnFilterName = 'istio_authn';
export const istioAuthnConfigType = 'type.googleapis.com/istio.envoy.config.filter.http.authn.v2alpha1.FilterConfig';

const spaceDelimited = new Set(['scope', 'permission']);
const payloadKey = 'payload';

function scalar(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

/** Claims as Istio's authn filter stored them: lists of strings, nested objects as objects. */
export function claimsOf(payload: Readonly<Record<string, unknown>>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(payload)) {
    if (Array.isArray(v)) out[k] = v.map(scalar).filter((x): x is string => x !== undefined);
    else if (v !== null && typeof v === 'object') out[k] = depth < 8 ? claimsOf(v as Record<string, unknown>, depth + 1) : {};
    else {
      const s = scalar(v);
      if (s === undefined) continue;
      out[k] = depth === 0 && spaceDelimited.has(k) && s.includes(' ') ? [s, ...s.split(' ').filter(Boolean)] : [s];
    }
  }
  return out;
}

/** The `istio_authn` metadata for a verified payload. */
export function authnAttributes(payload: JWTPayload): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof payload.iss === 'string' && typeof payload.sub === 'string') out['request.auth.principal'] = `${payload.iss}/${payload.sub}`;
  const aud = typeof payload.aud === 'string' ? payload.aud : Array.isArray(payload.aud) ? payload.aud.find((a) => typeof a === 'string') : undefined;
  if (aud !== undefined) out['request.auth.audiences'] = aud;
  if (typeof payload.azp === 'string') out['request.auth.presenter'] = payload.azp;
  out['request.auth.claims'] = claimsOf(payload);
  out['request.auth.raw_claims'] = JSON.stringify(payload);
  return out;
}

export class IstioAuthnFilter implements HttpFilter {
  readonly name = istioAuthnFilterName;
  readonly issuers: readonly string[];
  readonly #hooks: HttpStreamHooks;

  constructor(issuers: readonly string[]) {
    this.issuers = issuers;
    this.#hooks = { onRequest: (ctx) => this.#onRequest(ctx) };
  }

  begin(): HttpStreamHooks {
    return this.#hooks;
  }

  #onRequest(ctx: HttpFilterContext): undefined {
    const md = ctx.dynamicMetadata;
    const verified = md?.[jwtAuthnFilterName];
    if (!md || !verified) return undefined;
    // Istio's pilot keeps the payload under `payload` (one key for every provider: the last one
    // verified); older configs keyed it by issuer.
    const shared = verified[payloadKey] as JWTPayload | undefined;
    if (shared && typeof shared === 'object' && typeof shared.iss === 'string' && this.issuers.includes(shared.iss)) {
      md[istioAuthnFilterName] = authnAttributes(shared);
      return undefined;
    }
    for (const issuer of this.issuers) {
      const payload = verified[issuer];
      if (payload && typeof payload === 'object') {
        md[istioAuthnFilterName] = authnAttributes(payload as JWTPayload);
        return undefined;
      }
    }
    return undefined;
  }
}

/** The TypedStruct carrying Istio's FilterConfig -> the filter (the issuers of `policy.origins[].jwt`). */
export const istioAuthnFilterFactory: HttpFilterFactory = (config) => {
  const typed = decodeAny(config, TypeUrl.TypedStruct);
  if (typed.type_url !== istioAuthnConfigType) throw new Error(`istio_authn: unexpected config type ${JSON.stringify(typed.type_url)}`);
  const value = structToJson(typed.value);
  const origins = (value.policy as { origins?: unknown } | undefined)?.origins;
  const issuers = Array.isArray(origins)
    ? origins.map((o) => (o as { jwt?: { issuer?: unknown } }).jwt?.issuer).filter((i): i is string => typeof i === 'string')
    : [];
  if (issuers.length === 0) return undefined;
  return new IstioAuthnFilter(issuers);
};
