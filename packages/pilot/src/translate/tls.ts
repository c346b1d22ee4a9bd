// TLS contexts: what a sidecar presents and verifies, following Istio's cluster_tls.go and
// security/model (SDS names `default` and `ROOTCA`, SANs from the destination's identities).
import { credentialCaName, credentialSecretName, RootCertSecret, WorkloadCertSecret } from '@weft/mesh';
import type { ClientTLSSettings, ServerTLSSettings } from '@weft/model';
import { type CommonTlsContext, type DownstreamTlsContext, encodeAny, type SdsSecretConfig, TypeUrl, type UpstreamTlsContext } from '@weft/xds';
import { adsConfigSource, type ConfigSource, sdsGrpcConfigSource, type StringMatcher, type TransportSocket, tlsTransportSocket } from './envoy.ts';

/** ALPN of mesh mTLS toward sidecars: peer metadata exchange, then plain `istio`. */
export const mtlsAlpn = ['istio-peer-exchange', 'istio'] as const;
/** The same for HTTP/2 upstreams. */
export const mtlsH2Alpn = ['istio-peer-exchange', 'istio', 'h2'] as const;
/** ALPN inbound: what HTTP chains and TCP chains accept. */
export const inboundHttpAlpn = ['h2', 'http/1.1'] as const;
export const inboundTcpAlpn = ['istio-peer-exchange', 'h2', 'http/1.1'] as const;
/** ALPNs a sidecar's client side sends over mTLS; inbound filter chains match on them. */
export const mtlsHttpAlpns = ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'] as const;
export const allIstioMtlsAlpns = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'] as const;
export const plaintextHttpAlpns = ['http/1.1', 'h2c'] as const;

const meshTlsParams = {
  tls_minimum_protocol_version: 'TLSv1_2',
  tls_maximum_protocol_version: 'TLSv1_3',
  cipher_suites: [
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'AES256-GCM-SHA384',
    'AES128-GCM-SHA256',
  ],
} as const;

export function sdsSecret(name: string, source: ConfigSource = sdsGrpcConfigSource()): SdsSecretConfig {
  return { name, sds_config: source };
}

function exactMatchers(values: readonly string[]): StringMatcher[] {
  return values.map((v) => ({ exact: v }));
}

/** The workload certificate (`default`) and the mesh root (`ROOTCA`) from the agent's SDS, verifying `sans`. */
export function meshCommonTlsContext(sans: readonly string[], alpn: readonly string[]): CommonTlsContext {
  return {
    alpn_protocols: [...alpn],
    tls_certificate_sds_secret_configs: [sdsSecret(WorkloadCertSecret)],
    combined_validation_context: {
      default_validation_context: sans.length > 0 ? { match_subject_alt_names: exactMatchers(sans) } : {},
      validation_context_sds_secret_config: sdsSecret(RootCertSecret),
    },
  };
}

/** ISTIO_MUTUAL toward a sidecar: SNI names the cluster, SANs are the destination's SPIFFE identities. */
export function istioMutualUpstream(sans: readonly string[], sni: string, http2: boolean): UpstreamTlsContext {
  return { common_tls_context: meshCommonTlsContext(sans, http2 ? mtlsH2Alpn : mtlsAlpn), sni };
}

/** SIMPLE or MUTUAL toward anything: certificates from files or from a credential served by pilot over ADS. */
export function clientTlsUpstream(tls: ClientTLSSettings, defaultSni: string | undefined, http2: boolean): UpstreamTlsContext | undefined {
  if (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL') return undefined;
  const common: CommonTlsContext = {};
  if (http2) common.alpn_protocols = ['h2'];
  const sans = exactMatchers(tls.subjectAltNames ?? []);
  if (tls.credentialName) {
    const secret = credentialSecretName(tls.credentialName);
    if (tls.mode === 'MUTUAL') common.tls_certificate_sds_secret_configs = [sdsSecret(secret, adsConfigSource(false))];
    if (!tls.insecureSkipVerify) {
      common.combined_validation_context = {
        default_validation_context: { match_subject_alt_names: sans },
        validation_context_sds_secret_config: sdsSecret(credentialCaName(secret), adsConfigSource(false)),
      };
    }
  } else {
    if (tls.mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey) {
      common.tls_certificates = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
    }
    if (!tls.insecureSkipVerify && (tls.caCertificates || sans.length > 0)) {
      common.validation_context = {
        ...(tls.caCertificates ? { trusted_ca: { filename: tls.caCertificates } } : {}),
        ...(tls.caCrl ? { crl: { filename: tls.caCrl } } : {}),
        match_subject_alt_names: sans,
      };
    }
  }
  const sni = tls.sni ?? defaultSni;
  return { common_tls_context: common, ...(sni ? { sni } : {}) };
}

export function upstreamTransportSocket(ctx: UpstreamTlsContext): TransportSocket {
  return tlsTransportSocket(encodeAny(TypeUrl.UpstreamTlsContext, ctx));
}

export function downstreamTransportSocket(ctx: DownstreamTlsContext): TransportSocket {
  return tlsTransportSocket(encodeAny(TypeUrl.DownstreamTlsContext, ctx));
}

/** Inbound mTLS: require a client certificate signed by the mesh root; present the workload certificate. */
export function inboundMtls(protocol: 'http' | 'tcp'): DownstreamTlsContext {
  return {
    common_tls_context: {
      tls_params: { ...meshTlsParams, cipher_suites: [...meshTlsParams.cipher_suites] },
      alpn_protocols: protocol === 'http' ? [...inboundHttpAlpn] : [...inboundTcpAlpn],
      tls_certificate_sds_secret_configs: [sdsSecret(WorkloadCertSecret)],
      combined_validation_context: {
        default_validation_context: {},
        validation_context_sds_secret_config: sdsSecret(RootCertSecret),
      },
    },
    require_client_certificate: { value: true },
  };
}

const tlsVersions: Record<string, 'TLS_AUTO' | 'TLSv1_0' | 'TLSv1_1' | 'TLSv1_2' | 'TLSv1_3'> = {
  TLS_AUTO: 'TLS_AUTO',
  TLSV1_0: 'TLSv1_0',
  TLSV1_1: 'TLSv1_1',
  TLSV1_2: 'TLSv1_2',
  TLSV1_3: 'TLSv1_3',
};

/** A gateway server's TLS (SIMPLE, MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL), as Istio's BuildListenerTLSContext. */
export function gatewayServerTls(tls: ServerTLSSettings, http: boolean): DownstreamTlsContext {
  const mutual = tls.mode === 'MUTUAL' || tls.mode === 'ISTIO_MUTUAL';
  const validateClient = mutual || tls.mode === 'OPTIONAL_MUTUAL';
  const common: CommonTlsContext = { alpn_protocols: http ? [...inboundHttpAlpn] : [] };
  const sans = exactMatchers(tls.subjectAltNames ?? []);
  if (tls.mode === 'ISTIO_MUTUAL') {
    Object.assign(common, meshCommonTlsContext([], common.alpn_protocols ?? []));
    if (sans.length > 0) common.combined_validation_context = { ...common.combined_validation_context, default_validation_context: { match_subject_alt_names: sans } };
  } else if (tls.credentialName || (tls.credentialNames?.length ?? 0) > 0) {
    const names = tls.credentialName ? [tls.credentialName] : (tls.credentialNames ?? []);
    common.tls_certificate_sds_secret_configs = names.map((n) => sdsSecret(credentialSecretName(n), adsConfigSource(false)));
    if (validateClient) {
      const ca = tls.caCertCredentialName ?? credentialCaName(names[0]!);
      common.combined_validation_context = {
        default_validation_context: { match_subject_alt_names: sans },
        validation_context_sds_secret_config: sdsSecret(credentialSecretName(ca), adsConfigSource(false)),
      };
    }
  } else {
    const certs = tls.tlsCertificates?.length
      ? tls.tlsCertificates
      : tls.serverCertificate
        ? [{ serverCertificate: tls.serverCertificate, privateKey: tls.privateKey, caCertificates: tls.caCertificates }]
        : [];
    common.tls_certificates = certs
      .filter((c) => c.serverCertificate && c.privateKey)
      .map((c) => ({ certificate_chain: { filename: c.serverCertificate }, private_key: { filename: c.privateKey } }));
    const ca = tls.caCertificates ?? certs[0]?.caCertificates;
    if (validateClient && ca) {
      common.validation_context = {
        trusted_ca: { filename: ca },
        ...(tls.caCrl ? { crl: { filename: tls.caCrl } } : {}),
        match_subject_alt_names: sans,
        verify_certificate_spki: tls.verifyCertificateSpki ?? [],
        verify_certificate_hash: tls.verifyCertificateHash ?? [],
      };
    }
  }
  if (tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL') {
    const params: NonNullable<CommonTlsContext['tls_params']> = {};
    if (tls.minProtocolVersion && tls.minProtocolVersion !== 'TLS_AUTO') params.tls_minimum_protocol_version = tlsVersions[tls.minProtocolVersion];
    if (tls.maxProtocolVersion && tls.maxProtocolVersion !== 'TLS_AUTO') params.tls_maximum_protocol_version = tlsVersions[tls.maxProtocolVersion];
    if (tls.cipherSuites?.length) params.cipher_suites = [...tls.cipherSuites];
    if (Object.keys(params).length > 0) common.tls_params = params;
  }
  return { common_tls_context: common, require_client_certificate: { value: mutual } };
}

/**
 * Proxyless gRPC: certificates come from the client's bootstrap certificate providers (instance
 * `default`, certificates `default` and `ROOTCA`), as Istio's grpcgen does; gRPC rejects SDS here.
 */
function grpcCommonTlsContext(sans: readonly string[]): CommonTlsContext {
  return {
    tls_certificate_provider_instance: { instance_name: 'default', certificate_name: WorkloadCertSecret },
    combined_validation_context: {
      default_validation_context: {
        ca_certificate_provider_instance: { instance_name: 'default', certificate_name: RootCertSecret },
        ...(sans.length > 0 ? { match_subject_alt_names: exactMatchers(sans) } : {}),
      },
    },
  };
}

export function grpcMutualUpstream(sans: readonly string[], sni: string): UpstreamTlsContext {
  return { common_tls_context: grpcCommonTlsContext(sans), sni };
}

/** A proxyless gRPC server under STRICT mTLS: its workload certificate, a client certificate required and checked against the mesh root (gRPC servers match no SANs). */
export function grpcMutualDownstream(): DownstreamTlsContext {
  return { common_tls_context: grpcCommonTlsContext([]), require_client_certificate: { value: true } };
}
