// OTLP trace export requests (ExportTraceServiceRequest) as flat spans: the one decoder of the
// protocol in Weft, used by the dashboard's receiver and the tests' receiver. Protobuf
// (application/x-protobuf, and OTLP/gRPC's message) with protobufjs and ../protos/otlp-trace.proto;
// OTLP/JSON (application/json) by the protocol's JSON mapping: lowerCamelCase keys, trace and span
// ids as hex (not base64), enums as integers, 64-bit integers as strings or numbers.
import { fileURLToPath } from 'node:url';
import type { Root, Type } from 'protobufjs';
import { loadRoot } from './protos.ts';

export type OtlpSpanKind = 'UNSPECIFIED' | 'INTERNAL' | 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER';
export type OtlpAttributeValue = string | number | boolean;

/** One span of an export request, flattened with its resource and scope. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: OtlpSpanKind;
  /** Milliseconds since the epoch (from the nanosecond fields, microsecond precision). */
  startMs: number;
  endMs: number;
  attributes: Record<string, OtlpAttributeValue>;
  status: 'UNSET' | 'OK' | 'ERROR';
  statusMessage: string;
  /** The resource's attributes (`service.name`...). */
  resource: Record<string, OtlpAttributeValue>;
  scope: string;
}

const kinds: OtlpSpanKind[] = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const statuses = ['UNSET', 'OK', 'ERROR'] as const;

let root: Root | undefined;
function type(name: 'ExportTraceServiceRequest' | 'ExportTraceServiceResponse'): Type {
  root ??= loadRoot([fileURLToPath(new URL('../protos/', import.meta.url))], ['otlp-trace.proto']);
  return root.lookupType(`opentelemetry.proto.collector.trace.v1.${name}`);
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** An AnyValue (protobuf object or OTLP/JSON) as a scalar; arrays and maps as their JSON text. */
function anyValue(v: Json, json: boolean): OtlpAttributeValue | undefined {
  const key = (snake: string, camel: string) => (json ? v[camel] : v[snake]);
  const s = key('string_value', 'stringValue');
  if (typeof s === 'string') return s;
  const b = key('bool_value', 'boolValue');
  if (typeof b === 'boolean') return b;
  const i = key('int_value', 'intValue');
  if (typeof i === 'string' || typeof i === 'number') return Number(i);
  const d = key('double_value', 'doubleValue');
  if (typeof d === 'number') return d;
  if (typeof d === 'string') return Number(d);
  const a = key('array_value', 'arrayValue');
  if (a) return JSON.stringify(list(obj(a).values).map((x) => anyValue(obj(x), json) ?? null));
  const kv = key('kvlist_value', 'kvlistValue');
  if (kv) return JSON.stringify(attributes(obj(kv).values, json));
  return undefined;
}

function attributes(l: unknown, json: boolean): Record<string, OtlpAttributeValue> {
  const out: Record<string, OtlpAttributeValue> = {};
  for (const item of list(l)) {
    const kv = obj(item);
    if (typeof kv.key !== 'string') continue;
    const v = anyValue(obj(kv.value), json);
    if (v !== undefined) out[kv.key] = v;
  }
  return out;
}

/** Nanoseconds (string, number or protobufjs Long-as-string) to milliseconds with microsecond precision. */
function nanosToMs(v: unknown, what: string): number {
  if (v === undefined || v === null || v === '') return 0;
  const text = String(v);
  if (!/^\d+$/.test(text)) throw new Error(`${what} must be an unsigned integer of nanoseconds, not ${JSON.stringify(v)}`);
  return Number(BigInt(text) / 1000n) / 1000;
}

function hexId(v: unknown, bytes: number, what: string, json: boolean): string {
  if (v === undefined || v === null || v === '') return '';
  if (!json) return Buffer.from(v as Uint8Array).toString('hex');
  if (typeof v !== 'string' || !new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(v)) throw new Error(`${what} must be ${bytes * 2} hex digits, not ${JSON.stringify(v)}`);
  return v.toLowerCase();
}

function spans(request: Json, json: boolean): OtlpSpan[] {
  const k = (snake: string, camel: string) => (json ? camel : snake);
  const out: OtlpSpan[] = [];
  for (const rsItem of list(request[k('resource_spans', 'resourceSpans')])) {
    const rs = obj(rsItem);
    const resource = attributes(obj(rs.resource).attributes, json);
    for (const ssItem of list(rs[k('scope_spans', 'scopeSpans')])) {
      const ss = obj(ssItem);
      const scope = String(obj(ss.scope).name ?? '');
      for (const spanItem of list(ss.spans)) {
        const s = obj(spanItem);
        const status = obj(s.status);
        const traceId = hexId(s[k('trace_id', 'traceId')], 16, 'traceId', json);
        const spanId = hexId(s[k('span_id', 'spanId')], 8, 'spanId', json);
        if (!traceId || !spanId) throw new Error('a span without traceId or spanId');
        out.push({
          traceId,
          spanId,
          parentSpanId: hexId(s[k('parent_span_id', 'parentSpanId')], 8, 'parentSpanId', json),
          traceState: String(s[k('trace_state', 'traceState')] ?? ''),
          name: String(s.name ?? ''),
          kind: kinds[Number(s.kind ?? 0)] ?? 'UNSPECIFIED',
          startMs: nanosToMs(s[k('start_time_unix_nano', 'startTimeUnixNano')], 'startTimeUnixNano'),
          endMs: nanosToMs(s[k('end_time_unix_nano', 'endTimeUnixNano')], 'endTimeUnixNano'),
          attributes: attributes(s.attributes, json),
          status: statuses[Number(status.code ?? 0)] ?? 'UNSET',
          statusMessage: String(status.message ?? ''),
          resource,
          scope,
        });
      }
    }
  }
  return out;
}

/** Decodes a protobuf ExportTraceServiceRequest (OTLP/HTTP application/x-protobuf, or OTLP/gRPC's message). */
export function decodeOtlpTraces(bytes: Uint8Array): OtlpSpan[] {
  const t = type('ExportTraceServiceRequest');
  return spans(t.toObject(t.decode(bytes), { longs: String, defaults: false }) as Json, false);
}

/** Decodes an OTLP/JSON ExportTraceServiceRequest (application/json). */
export function decodeOtlpTracesJson(text: string): OtlpSpan[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('an ExportTraceServiceRequest must be a JSON object');
  return spans(parsed as Json, true);
}

/** The empty ExportTraceServiceResponse (every span accepted), protobuf-encoded. */
export function otlpTraceResponse(): Buffer {
  const t = type('ExportTraceServiceResponse');
  return Buffer.from(t.encode(t.create({})).finish());
}
