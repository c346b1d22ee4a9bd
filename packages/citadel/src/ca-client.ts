// The workload side of CreateCertificate.
import { type ChannelCredentials, type ChannelOptions, credentials, makeGenericClientConstructor, Metadata, type ServiceError } from '@grpc/grpc-js';
import { caServiceDefinition } from './ca-server.ts';
import type { IstioCertificateServiceClient } from './generated/istio/v1/auth/IstioCertificateService.ts';

/** A typed client of istio.v1.auth.IstioCertificateService. */
export function createCaClient(target: string, channelCredentials: ChannelCredentials, options?: ChannelOptions): IstioCertificateServiceClient {
  const Client = makeGenericClientConstructor(caServiceDefinition(), 'IstioCertificateService');
  return new Client(target, channelCredentials, options) as unknown as IstioCertificateServiceClient;
}

/** How a caller proves who it is: its current certificate (mTLS), or a bootstrap token. */
export type CaCallerCredential = { kind: 'certificate'; certChainPem: string; privateKeyPem: string } | { kind: 'token'; token: string };

export interface CertificateRequest {
  /** host:port of the CA (Istio: istiod:15012). */
  address: string;
  /** Roots that the CA's serving certificate must chain to. */
  rootCertPem: string;
  /** Name to check the CA's certificate against, when `address` is not one of its SANs. */
  serverName?: string;
  csrPem: string;
  /** Seconds; 0 lets the CA choose its default. */
  ttlSeconds?: number;
  credential: CaCallerCredential;
  timeoutMs?: number;
}

/** Calls CreateCertificate once on a channel of its own and returns the chain (leaf first, root last). */
export function requestCertificate(request: CertificateRequest): Promise<string[]> {
  const root = Buffer.from(request.rootCertPem);
  const creds =
    request.credential.kind === 'certificate'
      ? credentials.createSsl(root, Buffer.from(request.credential.privateKeyPem), Buffer.from(request.credential.certChainPem))
      : credentials.createSsl(root);
  const options: ChannelOptions = request.serverName ? { 'grpc.ssl_target_name_override': request.serverName, 'grpc.default_authority': request.serverName } : {};
  const client = createCaClient(request.address, creds, options);
  const metadata = new Metadata();
  if (request.credential.kind === 'token') metadata.set('authorization', `Bearer ${request.credential.token}`);
  return new Promise<string[]>((resolve, reject) => {
    client.CreateCertificate(
      { csr: request.csrPem, validity_duration: request.ttlSeconds ?? 0 },
      metadata,
      { deadline: Date.now() + (request.timeoutMs ?? 10_000) },
      (err: ServiceError | null, response) => {
        client.close();
        if (err) reject(err);
        else if (!response || response.cert_chain.length === 0) reject(new Error('CA returned an empty certificate chain'));
        else resolve(response.cert_chain);
      },
    );
  });
}
