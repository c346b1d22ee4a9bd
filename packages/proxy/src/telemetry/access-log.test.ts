import { encodeAny, TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { testConnection } from '../core/test-support.ts';
import type { RequestRecord, ResponseFlag } from '../core/types.ts';
import { compileAccessLog } from './access-log.ts';
import { compileFormat, jsonFormatter, type LogEntry, responseCodeDetails, strftime, textFormatter } from './access-log-format.ts';

// Istio's default TEXT format (pilot's EnvoyTextLogFormat), as meshConfig.accessLogFile uses it.
const istioText =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

const conn = testConnection({ remoteAddress: '127.0.0.7', remotePort: 51234 });

function rec(o: Partial<RequestRecord> = {}): RequestRecord {
  return {
    direction: 'inbound',
    listener: 'virtualInbound',
    protocol: 'HTTP/1.1',
    startTime: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
    durationMs: 12,
    responseCode: 200,
    responseFlags: new Set<ResponseFlag>(),
    bytesReceived: 0,
    bytesSent: 295,
    attempts: 1,
    routeName: 'default',
    upstreamCluster: 'inbound|9080||',
    upstreamHost: '127.0.0.1:19080',
    ...o,
  };
}

const entry = (o: Partial<LogEntry> = {}): LogEntry => ({
  record: rec(),
  connection: conn,
  method: 'GET',
  path: '/productpage?u=1',
  authority: 'productpage:9080',
  scheme: 'http',
  requestHeaders: { 'user-agent': 'curl/8.5.0', 'x-request-id': '4f0c7d2e-1111-2222-3333-444455556666', 'x-forwarded-proto': 'http' },
  responseHeaders: { 'x-envoy-upstream-service-time': '10', 'content-type': 'text/html' },
  ...o,
});

describe('access log formats', () => {
  it("renders Istio's default text line: values, '-' for what is absent, addresses with ports", () => {
    const line = textFormatter(istioText)(entry());
    expect(line).toBe(
      '[2026-01-02T03:04:05.678Z] "GET /productpage?u=1 HTTP/1.1" 200 - via_upstream - "-" 0 295 12 10 "-" "curl/8.5.0" "4f0c7d2e-1111-2222-3333-444455556666" "productpage:9080" "127.0.0.1:19080" inbound|9080|| - 127.0.0.2:9080 127.0.0.7:51234 - default\n',
    );
  });

  it('a failed request shows its flags and details; a TCP connection has no HTTP fields', () => {
    const failed = textFormatter(istioText)(
      entry({ record: rec({ responseCode: 503, responseFlags: new Set<ResponseFlag>(['UF', 'URX']), upstreamHost: '127.0.0.1:1', bytesSent: 91 }), responseHeaders: {} }),
    );
    expect(failed).toContain('" 503 UF,URX upstream_reset_before_response_started{connection_failure} - "-" 0 91 12 - "-"');
    const tcp = textFormatter(istioText)({ record: rec({ protocol: 'TCP', responseCode: 0, routeName: undefined, upstreamCluster: 'outbound|3306||mysql.default.svc.cluster.local', upstreamHost: '127.0.0.9:3306' }), connection: { ...conn, sni: 'mysql' } });
    expect(tcp).toBe(
      '[2026-01-02T03:04:05.678Z] "- - -" 0 - - - "-" 0 295 12 - "-" "-" "-" "-" "127.0.0.9:3306" outbound|3306||mysql.default.svc.cluster.local - 127.0.0.2:9080 127.0.0.7:51234 mysql -\n',
    );
  });

  it('JSON: keys sorted, lone numeric operators typed, absent values null, mixed text stays a string', () => {
    const f = jsonFormatter({ response_code: '%RESPONSE_CODE%', duration: '%DURATION%', path: '%REQ(:PATH)%', upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%', sni: '%REQUESTED_SERVER_NAME%', where: 'at %DOWNSTREAM_LOCAL_ADDRESS%', kind: 'http', nested: { flags: '%RESPONSE_FLAGS%' } });
    const line = f(entry());
    expect(line.endsWith('\n')).toBe(true);
    expect(Object.keys(JSON.parse(line))).toEqual(['duration', 'kind', 'nested', 'path', 'response_code', 'sni', 'upstream_service_time', 'where']);
    expect(JSON.parse(line)).toEqual({ duration: 12, kind: 'http', nested: { flags: '-' }, path: '/productpage?u=1', response_code: 200, sni: null, upstream_service_time: '10', where: 'at 127.0.0.2:9080' });
    expect(JSON.parse(jsonFormatter({ sni: '%REQUESTED_SERVER_NAME%', code: '%RESPONSE_CODE%' }, true)(entry()))).toEqual({ code: 200 });
  });

  it('a TCP connection closed by the network RBAC shows why; upstream SANs of an mTLS hop', () => {
    const denied = textFormatter(istioText)({
      record: rec({ protocol: 'TCP', responseCode: 0, routeName: undefined, connectionTerminationDetails: 'rbac_access_denied_matched_policy[none]' }),
      connection: conn,
    });
    expect(denied).toContain('"- - -" 0 - - rbac_access_denied_matched_policy[none] "-"');
    const sans = textFormatter('%UPSTREAM_PEER_URI_SAN% %UPSTREAM_LOCAL_URI_SAN%\n')(
      entry({ record: rec({ upstreamPeerPrincipal: 'spiffe://cluster.local/ns/default/sa/reviews', upstreamLocalPrincipal: 'spiffe://cluster.local/ns/default/sa/productpage' }) }),
    );
    expect(sans).toBe('spiffe://cluster.local/ns/default/sa/reviews spiffe://cluster.local/ns/default/sa/productpage\n');
  });

  it('START_TIME formats, header alternatives and length limits', () => {
    expect(strftime('%Y/%m/%dT%H:%M:%E3S %s %%', Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toBe('2026/01/02T03:04:05.678 1767323045 %');
    expect(textFormatter('%REQ(X-ENVOY-ORIGINAL-PATH?:PATH):5% %REQ(USER-AGENT):4% %START_TIME(%s)%')(entry())).toBe('/prod curl 1767323045');
    expect(textFormatter('%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%')(entry({ requestHeaders: { 'x-envoy-original-path': '/before' } }))).toBe('/before');
  });

  it('refuses operators it does not implement and stray percent signs, saying where', () => {
    expect(() => compileFormat('%NOT_AN_OPERATOR%', 'listener x')).toThrow(/listener x: access log command operator %NOT_AN_OPERATOR% is not supported/);
    expect(() => compileFormat('100% done')).toThrow(/expected %COMMAND%/);
    expect(() => compileFormat('%REQ()%')).toThrow(/needs an argument/);
  });

  it('RESPONSE_CODE_DETAILS: what a filter decided, else via_upstream for an upstream answer', () => {
    expect(responseCodeDetails(rec())).toBe('via_upstream');
    expect(responseCodeDetails(rec({ responseCode: 403, upstreamHost: undefined, responseCodeDetails: 'rbac_access_denied_matched_policy[none]' }))).toBe('rbac_access_denied_matched_policy[none]');
    expect(responseCodeDetails(rec({ responseCode: 404, upstreamHost: undefined, responseFlags: new Set<ResponseFlag>(['NR']) }))).toBe('route_not_found');
  });
});

describe('compileAccessLog', () => {
  it('reads envoy.access_loggers.file as pilot sends it (text_format_source, json_format, Envoy’s default)', () => {
    const text = compileAccessLog(
      { name: 'envoy.access_loggers.file', filter: null, typed_config: encodeAny(TypeUrl.FileAccessLog, { path: '/dev/stdout', log_format: { text_format_source: { inline_string: '%RESPONSE_CODE% %ROUTE_NAME%\n' } } }) },
      'l#0',
    );
    expect(text.path).toBe('/dev/stdout');
    expect(text.format(entry())).toBe('200 default\n');
    const json = compileAccessLog(
      {
        name: 'envoy.access_loggers.file',
        filter: null,
        typed_config: encodeAny(TypeUrl.FileAccessLog, { path: '/tmp/x.log', log_format: { json_format: { fields: { code: { stringValue: '%RESPONSE_CODE%' } } } } }),
      },
      'l#0',
    );
    expect(json.format(entry())).toBe('{"code":200}\n');
    const plain = compileAccessLog({ name: 'envoy.access_loggers.file', filter: null, typed_config: encodeAny(TypeUrl.FileAccessLog, { path: '/dev/stdout' }) }, 'l#0');
    expect(plain.format(entry())).toMatch(/^\[2026-01-02T03:04:05.678Z\] "GET \/productpage\?u=1 HTTP\/1.1" 200 - 0 295 12 10 "-" "curl\/8.5.0" /);
  });

  it('refuses loggers and filters it does not implement (a NACK, not silence)', () => {
    expect(() => compileAccessLog({ name: 'envoy.access_loggers.http_grpc', filter: null, typed_config: { type_url: 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig', value: Buffer.alloc(0) } }, 'l#0')).toThrow(/is not supported/);
    expect(() =>
      compileAccessLog({ name: 'f', filter: { status_code_filter: null } as never, typed_config: encodeAny(TypeUrl.FileAccessLog, { path: '/dev/stdout' }) }, 'l#0'),
    ).toThrow(/filters are not supported/);
  });
});
