// A tiny gRPC service of our own: `weft.e2e.Echo/Version` answers which version of the backend
// served the call. Messages are JSON, so no proto file is needed; gRPC does not mind.
import { type CallOptions, type ChannelCredentials, type ChannelOptions, makeGenericClientConstructor, Metadata, Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';

export interface VersionRequest {
  from: string;
}
export interface VersionReply {
  version: string;
  port: number;
}

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
};

export const echoService = {
  Version: {
    path: '/weft.e2e.Echo/Version',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize as (b: Buffer) => VersionRequest,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize as (b: Buffer) => VersionReply,
  },
} satisfies ServiceDefinition;

/** A backend on 127.0.0.1 that says it is `version`. */
export async function startBackend(version: string): Promise<{ port: number; calls: () => number; close: () => void }> {
  const server = new Server();
  let calls = 0;
  let port = 0;
  server.addService(echoService, {
    Version: (_call: unknown, callback: (err: null, reply: VersionReply) => void) => {
      calls++;
      callback(null, { version, port });
    },
  });
  port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, calls: () => calls, close: () => server.forceShutdown() };
}

const EchoClientCtor = makeGenericClientConstructor(echoService, 'Echo');

export class EchoClient {
  readonly #client: InstanceType<typeof EchoClientCtor>;

  constructor(target: string, credentials: ChannelCredentials, options?: ChannelOptions) {
    this.#client = new EchoClientCtor(target, credentials, options);
  }

  version(headers: Record<string, string> = {}, options: CallOptions = { deadline: Date.now() + 5000 }): Promise<VersionReply> {
    const md = new Metadata();
    for (const [k, v] of Object.entries(headers)) md.set(k, v);
    return new Promise((resolve, reject) => {
      (this.#client as unknown as Record<string, (req: VersionRequest, md: Metadata, opts: CallOptions, cb: (err: Error | null, reply?: VersionReply) => void) => void>)
        .Version!({ from: 'e2e' }, md, options, (err, reply) => (err ? reject(err) : resolve(reply!)));
    });
  }

  close(): void {
    this.#client.close();
  }
}
