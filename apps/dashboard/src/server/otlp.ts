// The OTLP/HTTP trace receiver (POST /v1/traces, application/x-protobuf or application/json,
// optionally gzip): what the mesh's proxies export to in local mode, so that no Jaeger or
// collector is needed. Bodies are bounded (413 past `maxBodyBytes`, before or after gunzip);
// spans go to the TraceStore, which bounds what is kept.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createGunzip } from 'node:zlib';
import { decodeOtlpTraces, decodeOtlpTracesJson, type OtlpSpan, otlpTraceResponse } from '@weft/xds';

export const defaultMaxBodyBytes = 4 * 1024 * 1024;

export interface OtlpHandlerOptions {
  maxBodyBytes?: number;
  accept: (spans: OtlpSpan[]) => void;
  /** Told about each request that was not accepted (metrics): `too-large`, `bad-request`, `unsupported`. */
  onRejected?: (reason: string) => void;
}

class TooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new TooLarge(`the body (${declared} bytes) is over the limit of ${limit} bytes`));
      return;
    }
    const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
    const stream = encoding === 'gzip' ? req.pipe(createGunzip()) : req;
    if (encoding !== 'gzip' && encoding !== 'identity') {
      reject(new Error(`content-encoding ${encoding} is not supported (gzip or none)`));
      return;
    }
    let chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = () => new TooLarge(`the body is over the limit of ${limit} bytes${encoding === 'gzip' ? ' (uncompressed)' : ''}`);
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
      else {
        // Nothing more is kept. The rest is read and dropped, so that the client, still sending,
        // gets the 413 rather than a broken pipe; past 16 times the limit the connection goes.
        chunks = [];
        if (size > 16 * limit) {
          stream.destroy();
          reject(tooLarge());
        }
      }
    });
    stream.on('end', () => (size > limit ? reject(tooLarge()) : resolve(Buffer.concat(chunks))));
    stream.on('error', (e) => reject(new Error(`the body cannot be read: ${e.message}`)));
  });
}

/** Handles one request to the receiver's port. */
export function otlpHandler(o: OtlpHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const limit = o.maxBodyBytes ?? defaultMaxBodyBytes;
  const reject = (res: ServerResponse, status: number, reason: string, message: string) => {
    o.onRejected?.(reason);
    // Close after answering: the rest of a body we stopped reading is not worth draining.
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(`${message}\n`);
  };
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/v1/traces') return reject(res, 404, 'not-found', `no endpoint ${path}: OTLP/HTTP traces go to POST /v1/traces`);
    if (req.method !== 'POST') return reject(res, 405, 'method', 'POST only');
    const type = String(req.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim()
      .toLowerCase();
    const json = type === 'application/json';
    if (!json && type !== 'application/x-protobuf') return reject(res, 415, 'unsupported', `content-type ${type || '(none)'} is not OTLP/HTTP: application/x-protobuf or application/json`);
    readBody(req, limit).then(
      (body) => {
        let spans: OtlpSpan[];
        try {
          spans = json ? decodeOtlpTracesJson(body.toString('utf8')) : decodeOtlpTraces(body);
        } catch (e) {
          return reject(res, 400, 'bad-request', `cannot decode ExportTraceServiceRequest: ${(e as Error).message}`);
        }
        o.accept(spans);
        if (json) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(otlpTraceResponse());
      },
      (e: Error) => (e instanceof TooLarge ? reject(res, 413, 'too-large', e.message) : reject(res, 400, 'bad-request', e.message)),
    );
  };
}
