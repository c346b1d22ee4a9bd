import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeOtlpTraces, decodeOtlpTracesJson, otlpTraceResponse } from './otlp.ts';
import { loadRoot } from './protos.ts';

const root = loadRoot([fileURLToPath(new URL('../protos/', import.meta.url))], ['otlp-trace.proto']);
const request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

const traceId = '5b8efff798038103d269b633813fc60c';
const spanId = 'eee19b7ec3c1b174';
const parent = 'aaaaaaaaaaaaaaaa';

describe('OTLP trace decoding', () => {
  it('reads a protobuf export request: ids as hex, nanoseconds as milliseconds, kinds, status and attributes', () => {
    const bytes = request
      .encode(
        request.fromObject({
          resource_spans: [
            {
              resource: { attributes: [{ key: 'service.name', value: { string_value: 'reviews.default' } }] },
              scope_spans: [
                {
                  scope: { name: 'envoy' },
                  spans: [
                    {
                      trace_id: Buffer.from(traceId, 'hex'),
                      span_id: Buffer.from(spanId, 'hex'),
                      parent_span_id: Buffer.from(parent, 'hex'),
                      name: 'reviews.default.svc.cluster.local:9080/*',
                      kind: 3,
                      start_time_unix_nano: '1544712660000123456',
                      end_time_unix_nano: '1544712660250000000',
                      attributes: [
                        { key: 'http.status_code', value: { int_value: 503 } },
                        { key: 'upstream_cluster', value: { string_value: 'outbound|9080|v2|reviews' } },
                        { key: 'sampled', value: { bool_value: true } },
                      ],
                      status: { code: 2, message: 'upstream reset' },
                    },
                  ],
                },
              ],
            },
          ],
        }),
      )
      .finish();
    const [s, ...rest] = decodeOtlpTraces(bytes);
    expect(rest).toEqual([]);
    expect(s).toMatchObject({
      traceId,
      spanId,
      parentSpanId: parent,
      kind: 'CLIENT',
      startMs: 1544712660000.123,
      endMs: 1544712660250,
      status: 'ERROR',
      statusMessage: 'upstream reset',
      resource: { 'service.name': 'reviews.default' },
      scope: 'envoy',
      attributes: { 'http.status_code': 503, upstream_cluster: 'outbound|9080|v2|reviews', sampled: true },
    });
  });

  it('reads OTLP/JSON (camelCase keys, hex ids, string nanoseconds) into the same spans', () => {
    const json = JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'productpage.default' } }] },
          scopeSpans: [{ spans: [{ traceId, spanId, name: 'GET /productpage', kind: 2, startTimeUnixNano: '1544712660000000000', endTimeUnixNano: 1544712661000000000, attributes: [{ key: 'n', value: { intValue: '7' } }] }] }],
        },
      ],
    });
    const [s] = decodeOtlpTracesJson(json);
    expect(s).toMatchObject({ traceId, spanId, parentSpanId: '', kind: 'SERVER', startMs: 1544712660000, endMs: 1544712661000, status: 'UNSET', attributes: { n: 7 }, resource: { 'service.name': 'productpage.default' } });
  });

  it('says what is wrong with a bad request', () => {
    expect(() => decodeOtlpTracesJson('{"resourceSpans": [')).toThrow(/not JSON/);
    expect(() => decodeOtlpTracesJson('[]')).toThrow(/must be a JSON object/);
    expect(() => decodeOtlpTracesJson(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'xyz', spanId }] }] }] }))).toThrow(/traceId must be 32 hex digits/);
    expect(() => decodeOtlpTraces(Buffer.from([0x0a, 0xff, 0xff, 0xff]))).toThrow();
    expect(otlpTraceResponse().length).toBe(0);
  });
});
