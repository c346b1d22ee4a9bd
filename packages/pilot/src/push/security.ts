// Which security policies apply to a workload: PeerAuthentication merged as Istio's
// ComposePeerAuthentication does, AuthorizationPolicies selected as WorkloadPolicyMatcher does.
import type { AuthorizationPolicySpec, Config, PeerAuthenticationSpec, PolicyTargetReference, RequestAuthenticationSpec } from '@weft/model';
import type { EffectiveAuthorization, EffectivePeerAuthentication } from '../core/types.ts';
import { isEmptyLabels, selectsLabels, stringMap } from '../registry/labels.ts';

type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

function modeOf(mtls: { mode?: string } | undefined): MtlsMode | undefined {
  const m = mtls?.mode;
  return m === 'STRICT' || m === 'PERMISSIVE' || m === 'DISABLE' ? m : undefined;
}

function hasSelector(spec: PeerAuthenticationSpec | AuthorizationPolicySpec | undefined): boolean {
  return !isEmptyLabels(stringMap(spec?.selector?.matchLabels));
}

/**
 * The mTLS mode of a workload's inbound ports. Candidates are the PeerAuthentications of the
 * root namespace and of the workload's namespace, in Istio's order. Per level the first wins:
 * mesh (root namespace, no selector) < namespace (no selector) < workload (selector matching the
 * labels; ignored in the root namespace). A level whose mode is UNSET inherits the one above;
 * the default is PERMISSIVE. Port-level modes come only from the workload policy; an UNSET port
 * takes the workload's mode.
 */
export function composePeerAuthentication(
  candidates: readonly Config<PeerAuthenticationSpec>[],
  rootNamespace: string,
  namespace: string,
  labels: Readonly<Record<string, string>>,
): EffectivePeerAuthentication {
  let mesh: Config<PeerAuthenticationSpec> | undefined;
  let ns: Config<PeerAuthenticationSpec> | undefined;
  let workload: Config<PeerAuthenticationSpec> | undefined;
  for (const c of candidates) {
    const cns = c.metadata.namespace;
    if (cns !== rootNamespace && cns !== namespace) continue;
    if (!hasSelector(c.spec)) {
      if (cns === rootNamespace) mesh ??= c;
      else ns ??= c;
    } else if (cns !== rootNamespace && selectsLabels(stringMap(c.spec.selector?.matchLabels), labels)) {
      workload ??= c;
    }
  }
  let mode: MtlsMode = 'PERMISSIVE';
  for (const c of [mesh, ns, workload]) {
    const m = modeOf(c?.spec?.mtls);
    if (m) mode = m;
  }
  const portLevel = new Map<number, MtlsMode>();
  for (const [port, mtls] of Object.entries(workload?.spec?.portLevelMtls ?? {})) {
    const n = Number(port);
    if (Number.isInteger(n)) portLevel.set(n, modeOf(mtls) ?? mode);
  }
  return { mode, portLevel, sources: [workload, ns, mesh].filter((c): c is Config<PeerAuthenticationSpec> => c !== undefined) };
}

/** What AuthorizationPolicy and RequestAuthentication attach by: a selector or target references. */
type TargetedSpec = Pick<AuthorizationPolicySpec, 'selector' | 'targetRef' | 'targetRefs'>;

/** The target references of a policy: `targetRefs`, else the legacy `targetRef`. */
function targetRefsOf(spec: TargetedSpec | undefined): PolicyTargetReference[] {
  if (spec?.targetRefs && spec.targetRefs.length > 0) return spec.targetRefs;
  return spec?.targetRef ? [spec.targetRef] : [];
}

/** The label Gateway API deployments carry: the name of their Gateway. */
export const gatewayNameLabel = 'gateway.networking.k8s.io/gateway-name';

/** What a policy is matched against. */
export interface PolicyTarget {
  namespace: string;
  labels: Readonly<Record<string, string>>;
  /** networking.istio.io Gateways (`namespace/name`) the workload serves, for targetRef attachment. */
  gateways: readonly string[];
}

/**
 * Istio's WorkloadPolicyMatcher.ShouldAttachPolicy for sidecars and gateways (no waypoints): a
 * targetRef to an Istio Gateway the workload serves attaches (policy in the gateway's
 * namespace); a workload that is no Gateway API gateway ignores policies with targetRefs and
 * applies the selector; a Gateway API gateway applies the selector when there are no targetRefs,
 * else a targetRef to its Gateway in the policy's namespace.
 */
export function policyApplies(policy: Config<TargetedSpec>, target: PolicyTarget): boolean {
  if (attachesToIstioGateway(policy, target)) return true;
  const refs = targetRefsOf(policy.spec);
  const selected = () => selectsLabels(stringMap(policy.spec?.selector?.matchLabels), target.labels);
  const gatewayName = target.labels[gatewayNameLabel];
  if (gatewayName === undefined) return refs.length === 0 && selected();
  if (refs.length === 0) return selected();
  if (policy.metadata.namespace !== target.namespace) return false;
  return refs.some(
    (ref) => (ref.group ?? '') === 'gateway.networking.k8s.io' && ref.kind === 'Gateway' && ref.name === gatewayName && (!ref.namespace || ref.namespace === target.namespace),
  );
}

/** A targetRef to a networking.istio.io Gateway the workload serves, the policy living in the Gateway's namespace. */
function attachesToIstioGateway(policy: Config<TargetedSpec>, target: PolicyTarget): boolean {
  const policyNs = policy.metadata.namespace;
  return targetRefsOf(policy.spec).some(
    (ref) => (ref.group ?? '') === 'networking.istio.io' && ref.kind === 'Gateway' && (ref.namespace || policyNs) === policyNs && target.gateways.includes(`${policyNs}/${ref.name}`),
  );
}

/**
 * AuthorizationPolicies that apply to a workload, grouped by action (ALLOW when unset): those of
 * the root namespace (mesh-wide, or wherever their selector matches), then those of its own
 * namespace, then those attached by targetRef to the Istio Gateways it serves (which live in
 * the Gateways' namespaces), each in Istio's order.
 */
export function selectAuthorization(
  byNamespace: ReadonlyMap<string, readonly Config<AuthorizationPolicySpec>[]>,
  rootNamespace: string,
  target: PolicyTarget,
): EffectiveAuthorization {
  const out = { allow: [] as Config<AuthorizationPolicySpec>[], deny: [] as Config<AuthorizationPolicySpec>[], audit: [] as Config<AuthorizationPolicySpec>[], custom: [] as Config<AuthorizationPolicySpec>[] };
  const namespaces = [...new Set([rootNamespace, target.namespace])];
  const gatewayNamespaces = [...new Set(target.gateways.map((g) => g.slice(0, g.indexOf('/'))))].filter((ns) => !namespaces.includes(ns));
  const candidates = [
    ...namespaces.flatMap((ns) => (byNamespace.get(ns) ?? []).filter((p) => policyApplies(p, target))),
    ...gatewayNamespaces.flatMap((ns) => (byNamespace.get(ns) ?? []).filter((p) => attachesToIstioGateway(p, target))),
  ];
  for (const p of candidates) {
    switch (p.spec?.action ?? 'ALLOW') {
      case 'DENY':
        out.deny.push(p);
        break;
      case 'AUDIT':
        out.audit.push(p);
        break;
      case 'CUSTOM':
        out.custom.push(p);
        break;
      default:
        out.allow.push(p);
    }
  }
  return out;
}

/**
 * RequestAuthentications that apply to a workload (Istio's GetJwtPoliciesForWorkload): the same
 * attachment as AuthorizationPolicies; all of them combine (their JWT rules are merged).
 */
export function selectRequestAuthentications(
  byNamespace: ReadonlyMap<string, readonly Config<RequestAuthenticationSpec>[]>,
  rootNamespace: string,
  target: PolicyTarget,
): Config<RequestAuthenticationSpec>[] {
  const namespaces = [...new Set([rootNamespace, target.namespace])];
  const gatewayNamespaces = [...new Set(target.gateways.map((g) => g.slice(0, g.indexOf('/'))))].filter((ns) => !namespaces.includes(ns));
  return [
    ...namespaces.flatMap((ns) => (byNamespace.get(ns) ?? []).filter((p) => policyApplies(p, target))),
    ...gatewayNamespaces.flatMap((ns) => (byNamespace.get(ns) ?? []).filter((p) => attachesToIstioGateway(p, target))),
  ];
}
