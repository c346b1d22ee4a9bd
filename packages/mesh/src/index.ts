// @weft/mesh: the mesh's vocabulary, one home for each name format and rule that several parts
// of Weft (and Istio's tools) must agree on. Dependency-free.
export { type ClusterKey, clusterKey, inboundClusterKey, outboundClusterKey, parseClusterKey, sniClusterKey, type TrafficDirection } from './cluster-key.ts';
export { type ProtoDuration, parseDuration, parseDurationNanos, protoDuration, protoDurationFromNanos, protoDurationMs, protoDurationOf } from './duration.ts';
export { type ExportScope, ExportToAnnotation, exportScope, isExportedTo } from './export-to.ts';
export { hostCandidates, hostSubsetOf, hostsMatch, isWildcardHost, kubeServiceHost, resolveHost } from './hosts.ts';
export { isIpAddress } from './ip.ts';
export { LegacyLocalityLabel, LocalityLabel, localityOfLabels } from './locality.ts';
export {
  BlackHoleCluster,
  InboundPassthroughCluster,
  InboundPassthroughClusterIpv4,
  InboundPassthroughClusterIpv6,
  isSpecialCluster,
  PassthroughCluster,
  SdsClusterName,
  VirtualInboundListener,
  VirtualOutboundListener,
} from './names.ts';
export { defaultDomainSuffix, type NodeId, NodeIdError, type NodeType, nodeId, nodeIdWorkload, parseNodeId, tryParseNodeId } from './node-id.ts';
export { CredentialCaSuffix, CredentialSecretPrefix, credentialCaName, credentialSecretName, RootCertSecret, WorkloadCertSecret } from './sds.ts';
export {
  defaultTrustDomain,
  firstUriSan,
  parseSpiffeId,
  parseSubjectAltNames,
  type SpiffeIdentity,
  type SubjectAltName,
  spiffeId,
  spiffeIdentityProblem,
  spiffeIdOfSans,
  spiffePrefix,
  uriSans,
} from './spiffe.ts';
