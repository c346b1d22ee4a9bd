// envoy.filters.http.rbac and envoy.filters.network.rbac: pilot's AuthorizationPolicies, compiled
// per chain (see rbac.ts for the engine). HTTP: a denied request gets Envoy's local reply, 403
// `RBAC: access denied`, with %RESPONSE_CODE_DETAILS% `rbac_access_denied_matched_policy[<policy>]`
// (`[none]` when an ALLOW engine matched nothing) and no response flag, as Envoy records it. TCP:
// a denied connection is closed before the upstream is dialled (Envoy decides on the first bytes;
// the client sees the same close), with %CONNECTION_TERMINATION_DETAILS% set likewise.
// A filter with no enforced `rules` (only dry-run shadow_rules) changes nothing and costs nothing.
import { decodeAny, type HttpConnectionManager__Output, TypeUrl } from '@weft/xds';
import type { FilterLocalReply, HttpFilter, HttpFilterContext, HttpFilterFactory, HttpStreamHooks, NetworkFilter, NetworkFilterFactory, TcpConnectionHooks } from '../core/filters.ts';
import { RequestView } from '../http/view.ts';
import { compileRbac, type RbacEngine, type RbacInput } from './rbac.ts';

export const rbacDeniedBody = 'RBAC: access denied';

export function rbacDeniedDetails(policy: string | undefined): string {
  return `rbac_access_denied_matched_policy[${policy ?? 'none'}]`;
}

/**
 * The client address the connection manager derived, as Envoy's mutateRequestHeaders does:
 * with use_remote_address, the peer (or, with xff_num_trusted_hops N > 0, the Nth X-Forwarded-For
 * entry from the right as the client sent it); without it, the (N+1)th entry from the right; the
 * peer when X-Forwarded-For has no such entry.
 */
export function downstreamRemoteIp(hcm: HttpConnectionManager__Output | undefined, peer: string, xff: string | string[] | undefined): string {
  const useRemote = hcm?.use_remote_address?.value ?? false;
  const hops = hcm?.xff_num_trusted_hops ?? 0;
  if (useRemote && hops === 0) return peer;
  if (xff === undefined) return peer;
  let list = (Array.isArray(xff) ? xff.join(',') : xff)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  // The router has appended the peer already (use_remote_address without skip_xff_append).
  if (useRemote && !hcm?.skip_xff_append && list.at(-1) === peer) list = list.slice(0, -1);
  const skip = useRemote ? hops - 1 : hops;
  const entry = list[list.length - 1 - skip];
  return entry ?? peer;
}

function httpInput(ctx: HttpFilterContext, hcm: HttpConnectionManager__Output | undefined): RbacInput {
  let remote: string | undefined;
  return {
    connection: ctx.connection,
    request: new RequestView(ctx.method, ctx.authority, ctx.path, ctx.scheme, ctx.requestHeaders),
    ...(ctx.dynamicMetadata ? { metadata: ctx.dynamicMetadata } : {}),
    remoteIp: () => {
      remote ??= downstreamRemoteIp(hcm, ctx.connection.remoteAddress, ctx.requestHeaders['x-forwarded-for']);
      return remote;
    },
  };
}

/** One RBAC HTTP filter instance (a chain has one per action). */
export class RbacHttpFilter implements HttpFilter {
  readonly name = 'envoy.filters.http.rbac';
  readonly engine: RbacEngine;
  readonly #hooks: HttpStreamHooks;

  constructor(engine: RbacEngine, hcm: HttpConnectionManager__Output | undefined) {
    this.engine = engine;
    this.#hooks = {
      onRequest: (ctx): FilterLocalReply | undefined => {
        const d = engine.evaluate(httpInput(ctx, hcm));
        if (d.allowed) return undefined;
        return { status: 403, body: rbacDeniedBody, details: rbacDeniedDetails(d.policy) };
      },
    };
  }

  begin(): HttpStreamHooks {
    return this.#hooks;
  }
}

/** One RBAC network filter instance. */
export class RbacNetworkFilter implements NetworkFilter {
  readonly name = 'envoy.filters.network.rbac';
  readonly engine: RbacEngine;
  readonly #hooks: TcpConnectionHooks;

  constructor(engine: RbacEngine) {
    this.engine = engine;
    this.#hooks = {
      onConnect: (ctx) => {
        const c = ctx.connection;
        const d = engine.evaluate({ connection: c, request: undefined, remoteIp: () => c.remoteAddress });
        if (!d.allowed) ctx.record.connectionTerminationDetails = rbacDeniedDetails(d.policy);
        return d.allowed;
      },
    };
  }

  begin(): TcpConnectionHooks {
    return this.#hooks;
  }
}

/** `envoy.extensions.filters.http.rbac.v3.RBAC` -> a filter, or undefined when it enforces nothing. */
export const rbacHttpFilterFactory: HttpFilterFactory = (config, site) => {
  const rbac = decodeAny(config, TypeUrl.HttpRbac);
  if (rbac.matcher || rbac.shadow_matcher) throw new Error('the RBAC matcher API (matcher, shadow_matcher) is not supported; use rules');
  // Shadow rules (Istio's dry-run) are not enforced; Weft does not report their result yet.
  if (!rbac.rules) return undefined;
  return new RbacHttpFilter(compileRbac(rbac.rules), site.hcm);
};

/** `envoy.extensions.filters.network.rbac.v3.RBAC` -> a filter, or undefined when it enforces nothing. */
export const rbacNetworkFilterFactory: NetworkFilterFactory = (config) => {
  const rbac = decodeAny(config, TypeUrl.NetworkRbac);
  if (rbac.matcher || rbac.shadow_matcher) throw new Error('the RBAC matcher API (matcher, shadow_matcher) is not supported; use rules');
  if (!rbac.rules) return undefined;
  return new RbacNetworkFilter(compileRbac(rbac.rules));
};
