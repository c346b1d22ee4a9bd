// Istio's HTTP metadata exchange: each side sends its workload identity in `x-envoy-peer-metadata`
// (base64 of a serialized google.protobuf.Struct: NAME, NAMESPACE, WORKLOAD_NAME, CLUSTER_ID,
// LABELS with the canonical service labels, app and version, OWNER) and `x-envoy-peer-metadata-id`
// (its node id). The client sidecar adds both to upstream requests; the server sidecar reads and
// removes them before the application sees them and answers with its own, which the client reads
// and removes. The Struct codec here is the few lines of protobuf wire format it needs (encoded
// once per proxy, decoded once per new peer thanks to the cache), not the full proto runtime.
import { canonicalNameLabel, canonicalRevisionLabel, type WorkloadInfo } from './workload.ts';

export const mxHeader = 'x-envoy-peer-metadata';
export const mxIdHeader = 'x-envoy-peer-metadata-id';

/** A google.protobuf.Struct as plain JSON (strings, numbers, booleans, null, lists, objects). */
export type StructJson = { [key: string]: unknown };

// --- encoding ----------------------------------------------------------------------------------

function varint(out: number[], n: number): void {
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

function lengthDelimited(out: number[], field: number, bytes: Uint8Array | number[]): void {
  varint(out, (field << 3) | 2);
  varint(out, bytes.length);
  for (const b of bytes) out.push(b);
}

function encodeValue(v: unknown): number[] {
  const out: number[] = [];
  if (v === null || v === undefined) {
    varint(out, (1 << 3) | 0);
    varint(out, 0);
  } else if (typeof v === 'number') {
    varint(out, (2 << 3) | 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    for (const x of b) out.push(x);
  } else if (typeof v === 'string') {
    lengthDelimited(out, 3, Buffer.from(v, 'utf8'));
  } else if (typeof v === 'boolean') {
    varint(out, (4 << 3) | 0);
    varint(out, v ? 1 : 0);
  } else if (Array.isArray(v)) {
    const list: number[] = [];
    for (const item of v) lengthDelimited(list, 1, encodeValue(item));
    lengthDelimited(out, 6, list);
  } else if (typeof v === 'object') {
    lengthDelimited(out, 5, encodeStructBytes(v as StructJson));
  } else {
    lengthDelimited(out, 3, Buffer.from(String(v), 'utf8'));
  }
  return out;
}

function encodeStructBytes(s: StructJson): number[] {
  const out: number[] = [];
  // Deterministic serialization: map entries by key.
  for (const key of Object.keys(s).sort()) {
    const entry: number[] = [];
    lengthDelimited(entry, 1, Buffer.from(key, 'utf8'));
    lengthDelimited(entry, 2, encodeValue(s[key]));
    lengthDelimited(out, 1, entry);
  }
  return out;
}

/** Serializes a Struct (protobuf wire format, map keys sorted as protobuf's deterministic mode does). */
export function encodeStruct(s: StructJson): Buffer {
  return Buffer.from(encodeStructBytes(s));
}

// --- decoding ----------------------------------------------------------------------------------

class Reader {
  pos: number;
  readonly end: number;
  readonly buf: Buffer;
  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }
  varint(): number {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
      if (mul > 2 ** 63) throw new Error('varint too long');
    }
  }
  /** The bounds of a length-delimited field's payload (and skips past it). */
  sub(): Reader {
    const len = this.varint();
    if (this.pos + len > this.end) throw new Error('truncated length-delimited field');
    const r = new Reader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.sub();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new Error('truncated fixed-width field');
  }
  string(): string {
    const r = this.sub();
    return this.buf.toString('utf8', r.pos, r.end);
  }
}

function decodeValue(r: Reader): unknown {
  let value: unknown = null;
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 0) {
      r.varint();
      value = null;
    } else if (field === 2 && wire === 1) {
      if (r.pos + 8 > r.end) throw new Error('truncated double');
      value = r.buf.readDoubleLE(r.pos);
      r.pos += 8;
    } else if (field === 3 && wire === 2) value = r.string();
    else if (field === 4 && wire === 0) value = r.varint() !== 0;
    else if (field === 5 && wire === 2) value = decodeStructReader(r.sub());
    else if (field === 6 && wire === 2) {
      const list: unknown[] = [];
      const lr = r.sub();
      while (lr.pos < lr.end) {
        const t = lr.varint();
        if (t === ((1 << 3) | 2)) list.push(decodeValue(lr.sub()));
        else lr.skip(t & 7);
      }
      value = list;
    } else r.skip(wire);
  }
  return value;
}

function decodeStructReader(r: Reader): StructJson {
  const out: StructJson = {};
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag !== ((1 << 3) | 2)) {
      r.skip(tag & 7);
      continue;
    }
    const entry = r.sub();
    let key = '';
    let value: unknown = null;
    while (entry.pos < entry.end) {
      const t = entry.varint();
      if (t === ((1 << 3) | 2)) key = entry.string();
      else if (t === ((2 << 3) | 2)) value = decodeValue(entry.sub());
      else entry.skip(t & 7);
    }
    out[key] = value;
  }
  return out;
}

/** Parses a serialized Struct; throws on malformed input. */
export function decodeStruct(bytes: Buffer): StructJson {
  return decodeStructReader(new Reader(bytes));
}

// --- workload metadata <-> Struct ---------------------------------------------------------------

/** The Struct Istio's metadata exchange sends for a workload (only the non-empty fields). */
export function workloadToStruct(w: WorkloadInfo): StructJson {
  const s: StructJson = {};
  if (w.instance) s.NAME = w.instance;
  if (w.namespace) s.NAMESPACE = w.namespace;
  if (w.workloadName) s.WORKLOAD_NAME = w.workloadName;
  if (w.cluster) s.CLUSTER_ID = w.cluster;
  const labels: Record<string, string> = {};
  if (w.canonicalName) labels[canonicalNameLabel] = w.canonicalName;
  if (w.canonicalRevision) labels[canonicalRevisionLabel] = w.canonicalRevision;
  if (w.app) labels.app = w.app;
  if (w.version) labels.version = w.version;
  s.LABELS = labels;
  if (w.owner) s.OWNER = w.owner;
  return s;
}

function field(s: StructJson, key: string): string {
  const v = s[key];
  return typeof v === 'string' ? v : '';
}

/** A peer's workload from its metadata Struct (the fields Istio's telemetry reads). */
export function structToWorkload(s: StructJson): WorkloadInfo {
  const labels = typeof s.LABELS === 'object' && s.LABELS !== null && !Array.isArray(s.LABELS) ? (s.LABELS as StructJson) : {};
  return {
    instance: field(s, 'NAME'),
    namespace: field(s, 'NAMESPACE'),
    workloadName: field(s, 'WORKLOAD_NAME'),
    cluster: field(s, 'CLUSTER_ID'),
    canonicalName: field(labels, canonicalNameLabel),
    canonicalRevision: field(labels, canonicalRevisionLabel),
    app: field(labels, 'app'),
    version: field(labels, 'version'),
    owner: field(s, 'OWNER'),
  };
}

/** The `x-envoy-peer-metadata` value for a workload: base64 of the serialized Struct. */
export function encodeMx(w: WorkloadInfo): string {
  return encodeStruct(workloadToStruct(w)).toString('base64');
}

/** Decodes an `x-envoy-peer-metadata` value; undefined when it is not base64 of a Struct. */
export function decodeMx(value: string): WorkloadInfo | undefined {
  try {
    return structToWorkload(decodeStruct(Buffer.from(value, 'base64')));
  } catch {
    return undefined;
  }
}

/**
 * Decoded peers by peer id (as Istio's MX cache, 500 entries; the oldest quarter goes when full):
 * a peer's header is decoded once, and every later request from it maps to the same object, which
 * the label caches key on.
 */
export class PeerCache {
  readonly #byKey = new Map<string, WorkloadInfo>();
  readonly #max: number;
  constructor(max = 500) {
    this.#max = max;
  }
  lookup(id: string | undefined, value: string): WorkloadInfo | undefined {
    const key = id || value;
    const hit = this.#byKey.get(key);
    if (hit) return hit;
    const peer = decodeMx(value);
    if (!peer) return undefined;
    if (this.#byKey.size >= this.#max) {
      let drop = Math.max(1, Math.floor(this.#max / 4));
      for (const k of this.#byKey.keys()) {
        this.#byKey.delete(k);
        if (--drop === 0) break;
      }
    }
    this.#byKey.set(key, peer);
    return peer;
  }
  get size(): number {
    return this.#byKey.size;
  }
}
