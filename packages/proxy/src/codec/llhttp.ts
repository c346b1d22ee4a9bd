// HTTP/1.1 message parsing with llhttp, the parser Node's http module and undici use, here as the
// WebAssembly build undici ships (undici is already a dependency; its wasm has no JavaScript
// around it that we would need). We do not write an HTTP parser: framing is where request
// smuggling lives, and llhttp in its strict mode (no lenient flags set here) refuses what RFC 9112
// lets a recipient refuse: Content-Length with Transfer-Encoding, two Content-Lengths, obs-fold,
// bare LF, a Transfer-Encoding that does not end in chunked, whitespace before a header colon.
//
// One WebAssembly instance serves every parser of the process. Input is copied into the
// instance's memory once per socket read; body data the callbacks report is a slice of the
// caller's own Buffer, not a copy, and URL and header pieces are strings read from it directly
// (no Buffer view made per piece: a request head has a dozen of them).
import { createRequire } from 'node:module';

/**
 * What a parser reports, in message order. Header names and values may arrive in pieces (a read
 * that ends inside one). The head callbacks return false to fail the message (a head too large).
 * Callbacks run inside `execute`: they must not call `execute` of any parser (defer instead).
 */
export interface ParserEvents {
  /** Latin-1 text: one character per byte on the wire. */
  onUrl(text: string): boolean;
  onHeaderField(text: string): boolean;
  onHeaderValue(text: string): boolean;
  /**
   * The head is complete. Return 0 to read a body as the headers say, 1 to read none (a response
   * to HEAD, a 204 or 304), 2 to stop reading this connection as HTTP (CONNECT and Upgrade).
   */
  onHeadersComplete(status: number, upgrade: boolean, keepAlive: boolean): 0 | 1 | 2;
  onBody(chunk: Buffer): void;
  /** Return true to pause the parser after this message (the next one waits until `resume`). */
  onMessageComplete(): boolean;
}

export const ParserType = { request: 1, response: 2 } as const;

/**
 * A head's header fields as llhttp reports them, in pieces: joins each name and value, hands the
 * pair on (name lower-cased) once the next field starts or the head ends, and counts the head's
 * bytes against `max` (the callbacks return what `field`/`value`/`count` return).
 */
export class HeadFields {
  #field = '';
  #value = '';
  #inValue = false;
  /** Bytes of the head so far (request line or status line pieces counted through `count`). */
  bytes = 0;
  readonly #max: number;
  readonly #onHeader: (name: string, value: string) => void;

  constructor(max: number, onHeader: (name: string, value: string) => void) {
    this.#max = max;
    this.#onHeader = onHeader;
  }

  count(text: string): boolean {
    this.bytes += text.length;
    return this.bytes <= this.#max;
  }

  field(text: string): boolean {
    if (this.#inValue) this.flush();
    this.#field += text;
    return this.count(text);
  }

  value(text: string): boolean {
    this.#inValue = true;
    this.#value += text;
    return this.count(text);
  }

  /** The head went past `max`. */
  get overflowed(): boolean {
    return this.bytes > this.#max;
  }

  /** Hands on the field being read, if any. */
  flush(): void {
    if (!this.#inValue) return;
    const name = this.#field.toLowerCase();
    const value = this.#value;
    this.#field = '';
    this.#value = '';
    this.#inValue = false;
    this.#onHeader(name, value);
  }

  /** The head is complete: its last field handed on, the byte count reset for the next one. */
  end(): void {
    this.flush();
    this.bytes = 0;
  }
}

/** What `execute` did with a read. */
export type ExecuteResult =
  | { kind: 'ok' }
  /** Paused after a message (or for an upgrade): `rest` is the part of the read not parsed yet. */
  | { kind: 'paused'; rest: Buffer; upgrade: boolean }
  | { kind: 'error'; code: string; reason: string };

interface LlhttpExports {
  memory: { buffer: ArrayBuffer };
  llhttp_alloc(type: number): number;
  llhttp_free(p: number): void;
  llhttp_execute(p: number, data: number, len: number): number;
  llhttp_finish(p: number): number;
  llhttp_resume(p: number): void;
  llhttp_resume_after_upgrade(p: number): void;
  llhttp_get_method(p: number): number;
  llhttp_get_http_major(p: number): number;
  llhttp_get_http_minor(p: number): number;
  llhttp_get_error_pos(p: number): number;
  llhttp_get_error_reason(p: number): number;
  llhttp_errno_name(errno: number): number;
  llhttp_method_name(method: number): number;
  malloc(n: number): number;
  free(p: number): void;
}

// The workspace's lib settings have no WebAssembly types; the little used here.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, (...args: number[]) => number>>) => { exports: unknown };
}

const HPE_PAUSED = 21;
const HPE_PAUSED_UPGRADE = 22;

const parsers = new Map<number, ParserEvents>();
// The read being parsed: callbacks turn wasm memory offsets into slices of it.
let current: Buffer = Buffer.alloc(0);
let currentPtr = 0;
const slice = (at: number, len: number): Buffer => current.subarray(at - currentPtr, at - currentPtr + len);
// Buffer's own latin1Slice (Node and Bun), which toString('latin1', start, end) calls after checking its arguments.
type Latin1 = { latin1Slice(start: number, end: number): string };
const text = (at: number, len: number): string => (current as unknown as Latin1).latin1Slice(at - currentPtr, at - currentPtr + len);

let ll: LlhttpExports | undefined;
function instance(): LlhttpExports {
  if (ll) return ll;
  const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  const load = createRequire(import.meta.url);
  let module: object;
  try {
    // The SIMD build where the CPU has it, as undici does.
    module = new wasmApi.Module(load('undici/lib/llhttp/llhttp_simd-wasm.js') as Uint8Array);
  } catch {
    module = new wasmApi.Module(load('undici/lib/llhttp/llhttp-wasm.js') as Uint8Array);
  }
  const events = (p: number): ParserEvents => parsers.get(p)!;
  const made = new wasmApi.Instance(module, {
    env: {
      wasm_on_message_begin: () => 0,
      wasm_on_url: (p, at, len) => {
        return events(p).onUrl(text(at, len)) ? 0 : -1;
      },
      wasm_on_status: () => 0,
      wasm_on_header_field: (p, at, len) => {
        return events(p).onHeaderField(text(at, len)) ? 0 : -1;
      },
      wasm_on_header_value: (p, at, len) => {
        return events(p).onHeaderValue(text(at, len)) ? 0 : -1;
      },
      wasm_on_headers_complete: (p, status, upgrade, keepAlive) => events(p).onHeadersComplete(status, upgrade === 1, keepAlive === 1),
      wasm_on_body: (p, at, len) => {
        events(p).onBody(slice(at, len));
        return 0;
      },
      wasm_on_message_complete: (p) => (events(p).onMessageComplete() ? HPE_PAUSED : 0),
    },
  });
  ll = made.exports as LlhttpExports;
  return ll;
}

let inputPtr = 0;
let inputSize = 0;
let executing = false;
const empty = Buffer.alloc(0);

function cString(ptr: number): string {
  const mem = new Uint8Array(ll!.memory.buffer);
  let end = ptr;
  while (mem[end] !== 0 && end - ptr < 256) end++;
  return Buffer.from(mem.buffer, ptr, end - ptr).toString('latin1');
}

const methodNames = new Map<number, string>();

/** One HTTP/1.x message stream (a connection's requests, or its responses). */
export class Parser {
  readonly #ptr: number;
  #freed = false;

  constructor(type: (typeof ParserType)[keyof typeof ParserType], events: ParserEvents) {
    this.#ptr = instance().llhttp_alloc(type);
    parsers.set(this.#ptr, events);
  }

  /** Parses one read. */
  execute(data: Buffer): ExecuteResult {
    const l = ll!;
    if (executing) throw new Error('llhttp: execute called from a parser callback');
    if (data.length > inputSize) {
      if (inputPtr) l.free(inputPtr);
      inputSize = Math.max(16 * 1024, 2 ** Math.ceil(Math.log2(data.length)));
      inputPtr = l.malloc(inputSize);
    }
    new Uint8Array(l.memory.buffer, inputPtr, data.length).set(data);
    current = data;
    currentPtr = inputPtr;
    executing = true;
    let errno: number;
    try {
      errno = l.llhttp_execute(this.#ptr, inputPtr, data.length);
    } finally {
      executing = false;
      current = empty;
    }
    if (errno === 0) return { kind: 'ok' };
    if (errno === HPE_PAUSED || errno === HPE_PAUSED_UPGRADE) {
      const at = l.llhttp_get_error_pos(this.#ptr) - inputPtr;
      return { kind: 'paused', rest: data.subarray(at), upgrade: errno === HPE_PAUSED_UPGRADE };
    }
    return { kind: 'error', code: cString(l.llhttp_errno_name(errno)), reason: cString(l.llhttp_get_error_reason(this.#ptr)) };
  }

  /** The connection ended: completes a message whose end is the end of the stream (a response without length). */
  finish(): ExecuteResult {
    const errno = ll!.llhttp_finish(this.#ptr);
    return errno === 0 ? { kind: 'ok' } : { kind: 'error', code: cString(ll!.llhttp_errno_name(errno)), reason: cString(ll!.llhttp_get_error_reason(this.#ptr)) };
  }

  /** Continues after a pause; feed the paused read's `rest` next. */
  resume(): void {
    ll!.llhttp_resume(this.#ptr);
  }

  /** The request method of the message being parsed (after its head). */
  get method(): string {
    const m = ll!.llhttp_get_method(this.#ptr);
    let name = methodNames.get(m);
    if (name === undefined) {
      name = cString(ll!.llhttp_method_name(m));
      methodNames.set(m, name);
    }
    return name;
  }

  get httpMinor(): number {
    return ll!.llhttp_get_http_minor(this.#ptr);
  }

  get httpMajor(): number {
    return ll!.llhttp_get_http_major(this.#ptr);
  }

  /** Frees the parser; from inside one of its callbacks, once `execute` has returned. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    if (executing) queueMicrotask(() => this.#release());
    else this.#release();
  }

  #release(): void {
    parsers.delete(this.#ptr);
    ll!.llhttp_free(this.#ptr);
  }
}
