// A local OTLP trace receiver for tests: OTLP/HTTP (POST /v1/traces, application/x-protobuf) and
// OTLP/gRPC (TraceService/Export) on loopback, decoding ExportTraceServiceRequest with @weft/xds's
// OTLP decoder (the dashboard's receiver uses the same). It keeps every span it received.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as GrpcServer, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { decodeOtlpTraces, type OtlpSpan, type OtlpSpanKind, otlpTraceResponse } from '@weft/xds';

export type SpanKindName = OtlpSpanKind;

/** One received span, flattened, and how it arrived. */
export interface ReceivedSpan extends OtlpSpan {
  via: 'http' | 'grpc';
}

export interface OtlpReceiver {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly spans: readonly ReceivedSpan[];
  /** Export requests received (each may carry many spans). */
  readonly requests: number;
  /** Resolves with the spans once `predicate` holds for them; rejects after `timeoutMs`. */
  waitFor(predicate: (spans: readonly ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<readonly ReceivedSpan[]>;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Starts both receivers on `address` (random ports). */
export async function startOtlpReceiver(address = '127.0.0.1'): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  let requests = 0;
  const waiters = new Set<() => void>();

  const accept = (bytes: Uint8Array, via: ReceivedSpan['via']) => {
    const decoded = decodeOtlpTraces(bytes);
    requests++;
    for (const span of decoded) spans.push({ ...span, via });
    for (const w of waiters) w();
  };
  const emptyResponse = otlpTraceResponse;

  const http: Server = createServer(async (req, res) => {
    const body = await readBody(req);
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      res.writeHead(404).end();
      return;
    }
    try {
      accept(body, 'http');
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`cannot decode ExportTraceServiceRequest: ${(err as Error).message}`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(emptyResponse());
  });
  await new Promise<void>((resolve) => http.listen(0, address, resolve));

  const grpc = new GrpcServer();
  const service = {
    Export: {
      path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  } as ServiceDefinition;
  grpc.addService(service, {
    Export: (call: { request: Buffer }, callback: (err: Error | null, value?: Buffer) => void) => {
      try {
        accept(call.request, 'grpc');
        callback(null, emptyResponse());
      } catch (err) {
        callback(err as Error);
      }
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpc.bindAsync(`${address}:0`, ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );

  return {
    httpPort: (http.address() as AddressInfo).port,
    grpcPort,
    spans,
    get requests() {
      return requests;
    },
    waitFor(predicate, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(spans)) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(spans);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`OTLP receiver: condition not met within ${timeoutMs} ms; received ${spans.length} spans: ${spans.map((s) => `${s.kind} ${s.name}`).join(', ')}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    async close() {
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
      await new Promise<void>((resolve) => grpc.tryShutdown(() => resolve()));
    },
  };
}
