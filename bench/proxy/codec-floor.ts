// A floor for stack (b) of issue 14: an HTTP/1.1 forwarder of our own over node:net, parsing both
// directions with llhttp (the audited parser Node's http module uses, here as the WebAssembly build
// undici ships), bodies forwarded as slices of the socket's own chunks (no per-chunk objects beyond
// the slice). No routing, filters or telemetry: what this codec costs, beside node:http + undici
// (floor.ts) and Bun (bun-floor.ts). Runs on Node and on Bun unchanged.
//   node codec-floor.ts --address A --port P --upstream HOST:PORT [--workers N] [--burn-us U]
// --burn-us U spins U microseconds per request: a stand-in for a proxy's own work per request (routing,
// filters, telemetry), to see what more event loops do for a forwarder that costs as much as weft-proxy.
// Prints one JSON line {"msg":"listening","port":N} once it listens.
import { createRequire } from 'node:module';
import { connect, createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { listenOnLoops } from './event-loops.ts';

const { values } = parseArgs({ options: { address: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' }, upstream: { type: 'string' }, workers: { type: 'string', default: '1' }, 'burn-us': { type: 'string', default: '0' } } });
if (!values.upstream) throw new Error('--upstream HOST:PORT is required');
const [upHost, upPort] = [values.upstream.slice(0, values.upstream.lastIndexOf(':')), Number(values.upstream.slice(values.upstream.lastIndexOf(':') + 1))];

// ------------------------------------------------------------------ llhttp

// The lib settings of the workspace carry no WebAssembly types: the little used here.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, (...args: number[]) => number>>) => { exports: unknown };
}
const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
interface Llhttp {
  memory: { buffer: ArrayBuffer };
  llhttp_alloc(type: number): number;
  llhttp_execute(p: number, data: number, len: number): number;
  llhttp_get_method(p: number): number;
  llhttp_should_keep_alive(p: number): number;
  malloc(n: number): number;
  free(p: number): void;
}
const require = createRequire(import.meta.url);
const wasm = require('undici/lib/llhttp/llhttp_simd-wasm.js') as Uint8Array;

interface Handler {
  onUrl(chunk: Buffer): void;
  onStatus(code: number): void;
  onHeaderField(chunk: Buffer): void;
  onHeaderValue(chunk: Buffer): void;
  onHeadersComplete(statusCode: number, keepAlive: boolean): number;
  onBody(chunk: Buffer): void;
  onMessageComplete(): void;
}
const parsers = new Map<number, Handler>();
let current: Buffer = Buffer.alloc(0);
let currentPtr = 0;
const slice = (at: number, len: number) => current.subarray(at - currentPtr, at - currentPtr + len);
const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm), {
  env: {
    wasm_on_url: (p: number, at: number, len: number) => {
      parsers.get(p)!.onUrl(slice(at, len));
      return 0;
    },
    wasm_on_status: () => 0,
    wasm_on_message_begin: () => 0,
    wasm_on_header_field: (p: number, at: number, len: number) => {
      parsers.get(p)!.onHeaderField(slice(at, len));
      return 0;
    },
    wasm_on_header_value: (p: number, at: number, len: number) => {
      parsers.get(p)!.onHeaderValue(slice(at, len));
      return 0;
    },
    wasm_on_headers_complete: (p: number, status: number, _upgrade: number, keepAlive: number) => parsers.get(p)!.onHeadersComplete(status, keepAlive === 1),
    wasm_on_body: (p: number, at: number, len: number) => {
      parsers.get(p)!.onBody(slice(at, len));
      return 0;
    },
    wasm_on_message_complete: (p: number) => {
      parsers.get(p)!.onMessageComplete();
      return 0;
    },
  },
});
const ll = instance.exports as unknown as Llhttp;
let bufPtr = 0;
let bufSize = 0;
const methods = ['DELETE', 'GET', 'HEAD', 'POST', 'PUT', 'CONNECT', 'OPTIONS', 'TRACE'];

function execute(p: number, chunk: Buffer): number {
  if (chunk.length > bufSize) {
    if (bufPtr) ll.free(bufPtr);
    bufSize = Math.ceil(chunk.length / 4096) * 4096;
    bufPtr = ll.malloc(bufSize);
  }
  new Uint8Array(ll.memory.buffer, bufPtr, chunk.length).set(chunk);
  current = chunk;
  currentPtr = bufPtr;
  return ll.llhttp_execute(p, bufPtr, chunk.length);
}

// ------------------------------------------------------------------ upstream connections

const burnNs = BigInt(Math.round(Number(values['burn-us']) * 1000));
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection']);

class Upstream implements Handler {
  readonly socket: Socket;
  readonly ptr = ll.llhttp_alloc(2);
  downstream: Downstream | undefined;
  #field = '';
  #head = '';
  #chunked = false;
  constructor() {
    parsers.set(this.ptr, this);
    this.socket = connect(upPort, upHost);
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => {
      if (execute(this.ptr, chunk) !== 0) this.socket.destroy();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      parsers.delete(this.ptr);
      idle.splice(idle.indexOf(this), 1);
      this.downstream?.socket.destroy();
    });
  }
  onUrl(): void {}
  onStatus(): void {}
  onHeaderField(chunk: Buffer): void {
    this.#field = chunk.toString('latin1').toLowerCase();
  }
  onHeaderValue(chunk: Buffer): void {
    if (hopByHop.has(this.#field)) {
      if (this.#field === 'transfer-encoding') this.#chunked = true;
      return;
    }
    this.#head += `${this.#field}: ${chunk.toString('latin1')}\r\n`;
  }
  onHeadersComplete(status: number): number {
    const head = `HTTP/1.1 ${status} OK\r\n${this.#head}${this.#chunked ? 'transfer-encoding: chunked\r\n' : ''}\r\n`;
    this.#head = '';
    this.downstream!.socket.write(head, 'latin1');
    return 0;
  }
  onBody(chunk: Buffer): void {
    const d = this.downstream!.socket;
    if (this.#chunked) d.write(`${chunk.length.toString(16)}\r\n`);
    // The slice is of the socket's own chunk, which nobody reuses: no copy.
    d.write(chunk);
    if (this.#chunked) d.write('\r\n');
  }
  onMessageComplete(): void {
    if (this.#chunked) this.downstream!.socket.write('0\r\n\r\n');
    this.#chunked = false;
    const d = this.downstream!;
    this.downstream = undefined;
    idle.push(this);
    d.done();
  }
}
const idle: Upstream[] = [];

// ------------------------------------------------------------------ downstream connections

class Downstream implements Handler {
  readonly socket: Socket;
  readonly ptr = ll.llhttp_alloc(1);
  #url = '';
  #field = '';
  #head = '';
  #upstream: Upstream | undefined;
  #queue: Buffer[] = [];
  constructor(socket: Socket) {
    this.socket = socket;
    parsers.set(this.ptr, this);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.#upstream && this.#queue.length === 0 && execute(this.ptr, chunk) === 0) return;
      if (!this.#upstream) {
        if (execute(this.ptr, chunk) !== 0) socket.destroy();
      } else this.#queue.push(chunk);
    });
    socket.on('error', () => {});
    socket.on('close', () => parsers.delete(this.ptr));
  }
  onUrl(chunk: Buffer): void {
    this.#url += chunk.toString('latin1');
  }
  onStatus(): void {}
  onHeaderField(chunk: Buffer): void {
    this.#field = chunk.toString('latin1').toLowerCase();
  }
  onHeaderValue(chunk: Buffer): void {
    if (!hopByHop.has(this.#field)) this.#head += `${this.#field}: ${chunk.toString('latin1')}\r\n`;
  }
  onHeadersComplete(): number {
    if (burnNs) for (const end = process.hrtime.bigint() + burnNs; process.hrtime.bigint() < end; );
    const up = idle.pop() ?? new Upstream();
    up.downstream = this;
    this.#upstream = up;
    up.socket.write(`${methods[ll.llhttp_get_method(this.ptr)] ?? 'GET'} ${this.#url} HTTP/1.1\r\n${this.#head}\r\n`, 'latin1');
    this.#url = '';
    this.#head = '';
    return 0;
  }
  onBody(chunk: Buffer): void {
    this.#upstream!.socket.write(chunk);
  }
  onMessageComplete(): void {}
  done(): void {
    this.#upstream = undefined;
    const q = this.#queue;
    this.#queue = [];
    for (const chunk of q) if (execute(this.ptr, chunk) !== 0) this.socket.destroy();
  }
}

const server = createServer({ noDelay: true }, (socket) => new Downstream(socket));
await listenOnLoops(server, new URL(import.meta.url), { address: values.address, port: Number(values.port), workers: Number(values.workers) });
process.on('SIGTERM', () => process.exit(0));
