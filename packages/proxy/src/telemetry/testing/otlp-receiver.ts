// A local OTLP trace receiver for tests: OTLP/HTTP (POST /v1/traces, application/x-protobuf) and
// OTLP/gRPC (TraceService/Export) on loopback, decoding ExportTraceServiceRequest with protobufjs
// and the OTLP protos (otlp-trace.proto beside this file). It keeps every span it received.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server as GrpcServer, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { loadRoot } from '@weft/xds';

export type SpanKindName = 'UNSPECIFIED' | 'INTERNAL' | 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER';

/** One received span, flattened. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: SpanKindName;
  /** Milliseconds since the epoch (from the nanosecond fields). */
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number | boolean>;
  status: 'UNSET' | 'OK' | 'ERROR';
  /** The resource's attributes (`service.name`...). */
  resource: Record<string, string | number | boolean>;
  scope: string;
  /** How it arrived. */
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

const kinds: SpanKindName[] = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const statuses = ['UNSET', 'OK', 'ERROR'] as const;

interface AnyValueJson {
  string_value?: string;
  bool_value?: boolean;
  int_value?: string;
  double_value?: number;
  value?: string;
}
interface KeyValueJson {
  key: string;
  value?: AnyValueJson;
}
interface SpanJson {
  trace_id: Buffer;
  span_id: Buffer;
  parent_span_id: Buffer;
  trace_state: string;
  name: string;
  kind: number;
  start_time_unix_nano: string;
  end_time_unix_nano: string;
  attributes: KeyValueJson[];
  status?: { code: number } | null;
}
interface RequestJson {
  resource_spans: { resource?: { attributes: KeyValueJson[] } | null; scope_spans: { scope?: { name: string } | null; spans: SpanJson[] }[] }[];
}

function attrs(list: readonly KeyValueJson[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) {
    const v = kv.value;
    if (!v) continue;
    if (v.string_value !== undefined) out[kv.key] = v.string_value;
    else if (v.bool_value !== undefined) out[kv.key] = v.bool_value;
    else if (v.int_value !== undefined) out[kv.key] = Number(v.int_value);
    else if (v.double_value !== undefined) out[kv.key] = v.double_value;
  }
  return out;
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
  const root = loadRoot([dirname(fileURLToPath(import.meta.url))], ['otlp-trace.proto']);
  const requestType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const responseType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
  const spans: ReceivedSpan[] = [];
  let requests = 0;
  const waiters = new Set<() => void>();

  const accept = (bytes: Uint8Array, via: ReceivedSpan['via']) => {
    const req = requestType.toObject(requestType.decode(bytes), { longs: String, defaults: true, oneofs: false }) as RequestJson;
    requests++;
    for (const rs of req.resource_spans) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scope_spans) {
        for (const s of ss.spans) {
          spans.push({
            traceId: Buffer.from(s.trace_id).toString('hex'),
            spanId: Buffer.from(s.span_id).toString('hex'),
            parentSpanId: Buffer.from(s.parent_span_id).toString('hex'),
            traceState: s.trace_state,
            name: s.name,
            kind: kinds[s.kind] ?? 'UNSPECIFIED',
            startMs: Number(BigInt(s.start_time_unix_nano) / 1000n) / 1000,
            endMs: Number(BigInt(s.end_time_unix_nano) / 1000n) / 1000,
            attributes: attrs(s.attributes),
            status: statuses[s.status?.code ?? 0] ?? 'UNSET',
            resource,
            scope: ss.scope?.name ?? '',
            via,
          });
        }
      }
    }
    for (const w of waiters) w();
  };
  const emptyResponse = () => Buffer.from(responseType.encode(responseType.create({})).finish());

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
