// @weft/citadel: the mesh CA (Istio-compatible certificate signing), the signing service, the
// workload certificate manager, SDS, trust distribution, and SPIFFE mTLS helpers.
export {
  CaError,
  type CaErrorType,
  type CaMaterial,
  CertificateAuthority,
  type CertificateAuthorityOptions,
  caFileNames,
  defaultCertTtlSeconds,
  defaultMaxCertTtlSeconds,
  defaultRootTtlSeconds,
  type IssuedCertificate,
  type SelfSignedRootOptions,
  type ServingCertificate,
  type ServingCertificateOptions,
  type SignOptions,
  writeCaDirectory,
} from './ca.ts';
export { type CaCallerCredential, type CertificateRequest, createCaClient, requestCertificate } from './ca-client.ts';
export {
  type AuthenticatableCall,
  authenticateCaller,
  type BootstrapTokenVerifier,
  type CallerAuthentication,
  type CallerAuthenticator,
  callerAuthenticator,
  type PlatformTokenAuthenticator,
  type ServiceAccountIdentity,
} from './caller-auth.ts';
export {
  bearerMetadata,
  CaServer,
  type CaServerOptions,
  type CaServiceOptions,
  caServiceDefinition,
  caServiceName,
  createCaServiceHandlers,
  defaultServingNames,
  ServingCertificateProvider,
} from './ca-server.ts';
export {
  CertificateManager,
  type CertificateManagerOptions,
  type CsrSigner,
  issueWorkloadSecret,
  type SecretSource,
  type WorkloadSecret,
} from './cert-manager.ts';
export { citadelTypeFiles } from './codegen.ts';
export type { IstioCertificateRequest, IstioCertificateRequest__Output } from './generated/istio/v1/auth/IstioCertificateRequest.ts';
export type { IstioCertificateResponse, IstioCertificateResponse__Output } from './generated/istio/v1/auth/IstioCertificateResponse.ts';
export type {
  IstioCertificateServiceClient,
  IstioCertificateServiceDefinition,
  IstioCertificateServiceHandlers,
} from './generated/istio/v1/auth/IstioCertificateService.ts';
export { type CaExpiry, CitadelMetrics, type RefusalReason } from './metrics.ts';
export {
  CertificateSigner,
  type CertificateSpec,
  CsrError,
  createCsr,
  createSelfSignedCertificate,
  type DistinguishedName,
  generateRsaKeyPair,
  generateRsaKeyPairSync,
  joinPem,
  type KeyPairPem,
  type ParsedCsr,
  parseCsr,
  splitPemCertificates,
} from './pki.ts';
export { defaultSdsSocketPath, SdsServer, type SdsServerOptions, type SdsStreamStatus, secretResources } from './sds.ts';
export { checkedSpiffeId, spiffeIdOf, uriSans, type WorkloadIdentity } from './spiffe.ts';
export {
  followSecrets,
  matchSpiffeId,
  mtlsClientOptions,
  mtlsServerOptions,
  secureContextOptions,
  type SpiffeMatcher,
  type SpiffePeerResult,
  verifySpiffePeer,
} from './tls.ts';
export { type BootstrapClaims, bootstrapTokenAudience, bootstrapTokenIssuer, TokenError, unverifiedClaims } from './token.ts';
