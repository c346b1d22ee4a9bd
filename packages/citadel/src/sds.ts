// Envoy SDS v3 (envoy.service.secret.v3.SecretDiscoveryService) for the workload's own secrets:
// `default` (its certificate chain and key) and `ROOTCA` (the trust bundle). State of the world over
// StreamSecrets, with versions and nonces: a request whose response_nonce is not the last one sent
// is stale and ignored; one that carries it ACKs (or, with error_detail, NACKs) that response. A new
// certificate is pushed to every stream as soon as the manager has it. FetchSecrets answers once.
import { RootCertSecret, WorkloadCertSecret } from '@weft/mesh';
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Server, type ServerDuplexStream, ServerCredentials, status } from '@grpc/grpc-js';
import {
  type Any__Output,
  type DiscoveryRequest__Output,
  type DiscoveryResponse,
  encodeAny,
  type SecretDiscoveryServiceHandlers,
  sdsServiceDefinition,
  TypeUrl,
} from '@weft/xds';
import type { SecretSource, WorkloadSecret } from './cert-manager.ts';
import { createLogger, type Logger } from '@weft/model';

/** Istio's SDS socket, relative to the proxy's working directory. */
export const defaultSdsSocketPath = './var/run/secrets/workload-spiffe-uds/socket';

/** The Envoy Secret resources for `names` (unknown names are skipped). */
export function secretResources(secret: WorkloadSecret, names: Iterable<string>): Any__Output[] {
  const out: Any__Output[] = [];
  for (const name of names) {
    if (name === WorkloadCertSecret) {
      out.push(
        encodeAny(TypeUrl.Secret, {
          name,
          tls_certificate: {
            certificate_chain: { inline_bytes: Buffer.from(secret.certChainPem) },
            private_key: { inline_bytes: Buffer.from(secret.privateKeyPem) },
          },
        }),
      );
    } else if (name === RootCertSecret) {
      out.push(encodeAny(TypeUrl.Secret, { name, validation_context: { trusted_ca: { inline_bytes: Buffer.from(secret.rootCertPem) } } }));
    }
  }
  return out;
}

export interface SdsServerOptions {
  source: SecretSource;
  /**
   * Where to listen: `unix:<path>` (Istio: unix:./var/run/secrets/workload-spiffe-uds/socket) or
   * `host:port` (port 0 picks one). The SDS socket is local and unauthenticated, like Istio's.
   */
  address: string;
  logger?: Logger;
}

/** What the server knows about one stream, for debugging. */
export interface SdsStreamStatus {
  id: number;
  nodeId: string;
  resourceNames: string[];
  sentVersion: string | undefined;
  sentNonce: string | undefined;
  ackedVersion: string | undefined;
  nacked: { version: string; nonce: string; message: string } | undefined;
}

interface Stream {
  call: ServerDuplexStream<DiscoveryRequest__Output, DiscoveryResponse>;
  status: SdsStreamStatus;
  opened: boolean;
  names: Set<string>;
}

export class SdsServer {
  /** The address clients dial (`unix:<path>` or `host:port` with the bound port). */
  readonly address: string;
  private readonly server: Server;
  private readonly streams: Set<Stream>;
  private readonly unsubscribe: () => void;
  private readonly socketPath: string | undefined;

  private constructor(server: Server, address: string, streams: Set<Stream>, unsubscribe: () => void, socketPath: string | undefined) {
    this.server = server;
    this.address = address;
    this.streams = streams;
    this.unsubscribe = unsubscribe;
    this.socketPath = socketPath;
  }

  static async start(options: SdsServerOptions): Promise<SdsServer> {
    const logger = options.logger ?? createLogger({ scope: 'sds' });
    const streams = new Set<Stream>();
    const source = options.source;
    let nextId = 0;

    const push = (s: Stream, secret: WorkloadSecret | undefined) => {
      if (!secret || s.names.size === 0) return;
      const nonce = randomBytes(8).toString('hex');
      const resources = secretResources(secret, s.names);
      s.call.write({ version_info: secret.version, resources, type_url: TypeUrl.Secret, nonce });
      s.status.sentVersion = secret.version;
      s.status.sentNonce = nonce;
      logger.info('pushed secrets', { stream: s.status.id, node: s.status.nodeId, resources: [...s.names], version: secret.version, nonce });
    };

    const unsubscribe = source.subscribe((secret) => {
      for (const s of streams) push(s, secret);
    });

    const handlers: SecretDiscoveryServiceHandlers = {
      StreamSecrets(call) {
        const s: Stream = {
          call,
          opened: false,
          names: new Set(),
          status: { id: ++nextId, nodeId: '', resourceNames: [], sentVersion: undefined, sentNonce: undefined, ackedVersion: undefined, nacked: undefined },
        };
        streams.add(s);
        const close = () => {
          if (streams.delete(s)) logger.info('SDS stream closed', { stream: s.status.id, node: s.status.nodeId });
        };
        call.on('data', (req: DiscoveryRequest__Output) => {
          if (req.type_url && req.type_url !== TypeUrl.Secret) {
            logger.warn('SDS request for another type', { stream: s.status.id, typeUrl: req.type_url });
            call.emit('error', { code: status.INVALID_ARGUMENT, details: `SDS serves ${TypeUrl.Secret} only, not ${req.type_url}` });
            return;
          }
          if (!s.opened) {
            s.opened = true;
            s.status.nodeId = req.node?.id ?? '';
            logger.info('SDS stream opened', { stream: s.status.id, node: s.status.nodeId, resources: req.resource_names, peer: call.getPeer() });
          }
          if (req.response_nonce) {
            if (req.response_nonce !== s.status.sentNonce) {
              logger.debug('ignoring request with a stale nonce', { stream: s.status.id, nonce: req.response_nonce });
              return;
            }
            if (req.error_detail) {
              s.status.nacked = { version: s.status.sentVersion ?? '', nonce: req.response_nonce, message: req.error_detail.message };
              logger.warn('secrets NACKed', { stream: s.status.id, node: s.status.nodeId, version: s.status.sentVersion, error: req.error_detail.message });
            } else {
              s.status.ackedVersion = req.version_info;
              s.status.nacked = undefined;
              logger.debug('secrets ACKed', { stream: s.status.id, version: req.version_info });
            }
          }
          const names = new Set(req.resource_names);
          const changed = names.size !== s.names.size || [...names].some((n) => !s.names.has(n));
          const unknown = [...names].filter((n) => n !== WorkloadCertSecret && n !== RootCertSecret);
          if (unknown.length > 0 && changed) logger.warn('unknown SDS resource names', { stream: s.status.id, names: unknown });
          s.names = names;
          s.status.resourceNames = [...names];
          // A first request, or a change of subscription, gets the current secrets. An ACK or a NACK
          // of the current set gets nothing until a new certificate arrives.
          if (!req.response_nonce || changed) push(s, source.current);
        });
        call.on('end', () => {
          close();
          call.end();
        });
        call.on('error', close);
        call.on('cancelled', close);
      },
      FetchSecrets(call, callback) {
        const secret = source.current;
        if (!secret) {
          callback({ code: status.UNAVAILABLE, details: 'no workload certificate yet' });
          return;
        }
        callback(null, {
          version_info: secret.version,
          resources: secretResources(secret, call.request.resource_names),
          type_url: TypeUrl.Secret,
          nonce: randomBytes(8).toString('hex'),
        });
      },
      DeltaSecrets(call) {
        call.emit('error', { code: status.UNIMPLEMENTED, details: 'delta SDS is not supported; use StreamSecrets' });
      },
    };

    const server = new Server();
    server.addService(sdsServiceDefinition(), handlers);
    let socketPath: string | undefined;
    if (options.address.startsWith('unix:')) {
      socketPath = options.address.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
      await mkdir(dirname(socketPath), { recursive: true });
      await rm(socketPath, { force: true });
    }
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(options.address, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    const address = socketPath !== undefined ? options.address : options.address.replace(/:\d+$/, `:${port}`);
    logger.info('SDS listening', { address });
    return new SdsServer(server, address, streams, unsubscribe, socketPath);
  }

  /** Per-stream state: node, subscribed names, versions sent and acknowledged, the last NACK. */
  streamStatus(): SdsStreamStatus[] {
    return [...this.streams].map((s) => ({ ...s.status, resourceNames: [...s.status.resourceNames] }));
  }

  async close(): Promise<void> {
    this.unsubscribe();
    for (const s of this.streams) s.call.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.socketPath !== undefined) await rm(this.socketPath, { force: true });
  }
}
