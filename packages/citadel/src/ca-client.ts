// The workload side of CreateCertificate.
import { type ChannelCredentials, type ChannelOptions, credentials, makeGenericClientConstructor, Metadata, type ServiceError } from '@grpc/grpc-js';
import { controlPlaneServerName } from '@weft/model';
import { caServiceDefinition } from './ca-server.ts';
import type { IstioCertificateServiceClient } from './generated/istio/v1/auth/IstioCertificateService.ts';

/** A typed client of istio.v1.auth.IstioCertificateService; the CA is verified as `options` name it, else by {@link controlPlaneServerName}. */
export function createCaClient(target: string, channelCredentials: ChannelCredentials, options?: ChannelOptions): IstioCertificateServiceClient {
  const Client = makeGenericClientConstructor(caServiceDefinition(), 'IstioCertificateService');
  const serverName = controlPlaneServerName(target, options?.['grpc.ssl_target_name_override'] as string | undefined);
  const named: ChannelOptions = serverName ? { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName, ...options } : { ...options };
  return new Client(target, channelCredentials, named) as unknown as IstioCertificateServiceClient;
}

/** How a caller proves who it is: its current certificate (mTLS), or a bootstrap token. */
export type CaCallerCredential = { kind: 'certificate'; certChainPem: string; privateKeyPem: string } | { kind: 'token'; token: string };

export interface CertificateRequest {
  /** host:port of the CA (Istio: istiod:15012). */
  address: string;
  /** Roots that the CA's serving certificate must chain to. */
  rootCertPem: string;
  /** Name to check the CA's certificate against; default: the host of `address`, or istiod's name when that is an IP. */
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
