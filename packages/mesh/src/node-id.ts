// xDS node IDs as Istio's agent builds them: `sidecar~10.1.1.2~reviews-v1-abc.default~default.svc.cluster.local`
// (`router~…` for gateways): type, IP, `<pod>.<namespace>`, the namespace's DNS domain.
import { isIpAddress } from './ip.ts';

export type NodeType = 'sidecar' | 'router';

export const defaultDomainSuffix = 'cluster.local';

/** The parts of a node ID. */
export interface NodeId {
  type: NodeType;
  /** The IP part as written (an IP address unless parsed with `requireIp: false`). */
  ipAddress: string;
  /** `reviews-v1-abc`. */
  podName: string;
  /** `default`: from the DNS domain, else from the part after the pod name (as Istio's GetProxyConfigNamespace). */
  namespace: string;
  /** `default.svc.cluster.local`. */
  dnsDomain: string;
  /** `cluster.local` when the DNS domain is `<namespace>.svc.<suffix>`, else undefined. */
  domainSuffix: string | undefined;
}

/** `sidecar~10.1.1.2~reviews-v1-abc.default~default.svc.cluster.local`. */
export function nodeId(n: { type: NodeType; ip: string; pod: string; namespace: string; domainSuffix?: string | undefined }): string {
  return `${n.type}~${n.ip}~${n.pod}.${n.namespace}~${n.namespace}.svc.${n.domainSuffix ?? defaultDomainSuffix}`;
}

const nodeIdForm = '<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local';

/** A node ID that is not one; the message says what is wrong and the expected form. */
export class NodeIdError extends Error {
  override readonly name = 'NodeIdError';
}

function invalid(id: string, why: string): NodeIdError {
  return new NodeIdError(`node id ${JSON.stringify(id)}: ${why} (expected ${nodeIdForm}, type sidecar or router)`);
}

/** Parses a node ID; throws `NodeIdError` saying what is wrong. */
export function parseNodeId(id: string, options: { requireIp?: boolean } = {}): NodeId {
  if (!id) throw invalid(id, 'empty');
  const parts = id.split('~');
  if (parts.length !== 4) throw invalid(id, `has ${parts.length} part${parts.length === 1 ? '' : 's'} separated by "~", not 4`);
  const [type, ip, podPart, dnsDomain] = parts as [string, string, string, string];
  if (type !== 'sidecar' && type !== 'router') throw invalid(id, `type ${JSON.stringify(type)} is neither sidecar nor router`);
  if ((options.requireIp ?? true) && !isIpAddress(ip)) throw invalid(id, `${JSON.stringify(ip)} is not an IP address`);
  if (!podPart) throw invalid(id, 'the pod part is empty');
  const dot = podPart.lastIndexOf('.');
  const fromDomain = dnsDomain.includes('.') ? dnsDomain.slice(0, dnsDomain.indexOf('.')) : '';
  const namespace = fromDomain || (dot > 0 ? podPart.slice(dot + 1) : '');
  if (!namespace) throw invalid(id, 'no namespace in the pod part or the DNS domain');
  const podName = podPart.endsWith(`.${namespace}`) ? podPart.slice(0, -(namespace.length + 1)) : podPart;
  const svc = `${namespace}.svc.`;
  const domainSuffix = dnsDomain.startsWith(svc) && dnsDomain.length > svc.length ? dnsDomain.slice(svc.length) : undefined;
  return { type, ipAddress: ip, podName, namespace, dnsDomain, domainSuffix };
}

/** The parts of a node ID, or undefined when it is none (proxyless gRPC clients name themselves freely); the IP is not checked. For display. */
export function tryParseNodeId(id: string): NodeId | undefined {
  try {
    return parseNodeId(id, { requireIp: false });
  } catch {
    return undefined;
  }
}

/** `reviews-v2.default` (the `<pod>.<namespace>` part) for display; the ID itself when it has no such part. */
export function nodeIdWorkload(id: string): string {
  const parts = id.split('~');
  return parts.length === 4 && parts[2] ? parts[2] : id;
}
