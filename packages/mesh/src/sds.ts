// SDS resource names: the workload certificate and mesh root the agent serves, and gateway
// credentials (`credentialName`) as Istio names them.

/** The workload certificate and key. */
export const WorkloadCertSecret = 'default';
/** The mesh's root certificate(s), to validate peers. */
export const RootCertSecret = 'ROOTCA';
/** Prefix of a gateway credential's SDS name. */
export const CredentialSecretPrefix = 'kubernetes://';
/** Suffix Istio appends to a credential's name for its CA bundle. */
export const CredentialCaSuffix = '-cacert';

/** `bookinfo-cert` -> `kubernetes://bookinfo-cert`. */
export function credentialSecretName(credentialName: string): string {
  return `${CredentialSecretPrefix}${credentialName}`;
}

/** `bookinfo-cert` -> `bookinfo-cert-cacert`: the credential holding its CA bundle (MUTUAL). */
export function credentialCaName(credentialName: string): string {
  return `${credentialName}${CredentialCaSuffix}`;
}
