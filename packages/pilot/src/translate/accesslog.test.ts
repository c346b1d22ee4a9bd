import { type Listener__Output, TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import type { MeshConfig } from '../core/types.ts';
import { istioJsonLogFormat, istioTextLogFormat } from './accesslog.ts';
import { bookinfoPlatform, generate, must, productpage, pushFrom, router, structString, typed } from './test-support.ts';

const hcmType = TypeUrl.HttpConnectionManager;
const tcpType = TypeUrl.TcpProxy;

const gatewayYaml = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ['*']}]
`;

/** Every connection manager and tcp_proxy of the listeners, decoded. */
function terminalFilters(listeners: Map<string, Listener__Output>) {
  const hcms = [];
  const tcps = [];
  for (const l of listeners.values()) {
    for (const chain of [...l.filter_chains, ...(l.default_filter_chain ? [l.default_filter_chain] : [])]) {
      for (const f of chain.filters) {
        if (f.typed_config?.type_url === hcmType) hcms.push({ listener: l.name, hcm: typed(f.typed_config, hcmType) });
        if (f.typed_config?.type_url === tcpType) tcps.push({ listener: l.name, tcp: typed(f.typed_config, tcpType) });
      }
    }
  }
  return { hcms, tcps };
}

function fileLog(al: { name: string; typed_config?: { type_url: string; value: Buffer | Uint8Array | string } | null }) {
  expect(al.name).toBe('envoy.access_loggers.file');
  return typed(must(al.typed_config), TypeUrl.FileAccessLog);
}

const sidecarListeners = (mesh: Partial<MeshConfig>) => generate(pushFrom([bookinfoPlatform()], mesh), productpage(), TypeUrl.Listener);

describe('access logs from MeshConfig', () => {
  it('none without accessLogFile', () => {
    const { hcms, tcps } = terminalFilters(sidecarListeners({}));
    expect(hcms.length).toBeGreaterThan(0);
    for (const { hcm } of hcms) expect(hcm.access_log).toEqual([]);
    for (const { tcp } of tcps) expect(tcp.access_log).toEqual([]);
  });

  it("accessLogFile: every sidecar connection manager and tcp_proxy logs there in Istio's TEXT format, the rest of each filter unchanged", () => {
    const plain = terminalFilters(sidecarListeners({}));
    const logged = terminalFilters(sidecarListeners({ accessLogFile: '/dev/stdout' }));
    expect(logged.hcms.length).toBe(plain.hcms.length);
    expect(logged.tcps.length).toBe(plain.tcps.length);
    // virtualOutbound's passthrough, virtualInbound's TCP chains and the HTTP listeners are all covered.
    expect(new Set(logged.tcps.map((t) => t.listener))).toContain('virtualOutbound');
    expect(new Set(logged.hcms.map((t) => t.listener))).toContain('virtualInbound');
    for (const [i, { hcm }] of logged.hcms.entries()) {
      expect(hcm.access_log).toHaveLength(1);
      const f = fileLog(hcm.access_log[0]!);
      expect(f.path).toBe('/dev/stdout');
      expect(f.log_format?.text_format_source?.inline_string).toBe(istioTextLogFormat);
      expect({ ...hcm, access_log: [] }).toEqual(plain.hcms[i]!.hcm);
    }
    for (const [i, { tcp }] of logged.tcps.entries()) {
      expect(tcp.access_log).toHaveLength(1);
      expect(fileLog(tcp.access_log[0]!).log_format?.text_format_source?.inline_string).toBe(istioTextLogFormat);
      expect({ ...tcp, access_log: [] }).toEqual(plain.tcps[i]!.tcp);
    }
  });

  it('JSON encoding: Istio’s JSON fields; a custom accessLogFormat replaces them', () => {
    const { hcms } = terminalFilters(sidecarListeners({ accessLogFile: '/var/log/weft/access.log', accessLogEncoding: 'JSON' }));
    const f = fileLog(hcms[0]!.hcm.access_log[0]!);
    expect(f.path).toBe('/var/log/weft/access.log');
    const json = must(f.log_format?.json_format);
    expect(Object.keys(json.fields).sort()).toEqual(Object.keys(istioJsonLogFormat).sort());
    expect(structString(json, 'upstream_cluster')).toBe('%UPSTREAM_CLUSTER_RAW%');

    const custom = terminalFilters(sidecarListeners({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON', accessLogFormat: '{"code": "%RESPONSE_CODE%", "who": "%DOWNSTREAM_PEER_URI_SAN%"}' }));
    const cj = must(fileLog(custom.hcms[0]!.hcm.access_log[0]!).log_format?.json_format);
    expect(Object.keys(cj.fields).sort()).toEqual(['code', 'who']);
    // A JSON format that does not parse falls back to Istio's (Istio logs the error and does the same).
    const bad = terminalFilters(sidecarListeners({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON', accessLogFormat: '{not json' }));
    expect(Object.keys(must(fileLog(bad.hcms[0]!.hcm.access_log[0]!).log_format?.json_format).fields)).toHaveLength(Object.keys(istioJsonLogFormat).length);
  });

  it('a custom TEXT format gets the newline Istio adds', () => {
    const { tcps } = terminalFilters(sidecarListeners({ accessLogFile: '/dev/stdout', accessLogFormat: '%START_TIME% %RESPONSE_CODE%' }));
    expect(fileLog(tcps[0]!.tcp.access_log[0]!).log_format?.text_format_source?.inline_string).toBe('%START_TIME% %RESPONSE_CODE%\n');
  });

  it('gateways log too', () => {
    const gw = router('127.0.0.30', 'istio-ingressgateway-1', { istio: 'ingressgateway' });
    const listeners = generate(pushFrom([bookinfoPlatform(), gatewayYaml], { accessLogFile: '/dev/stdout' }), gw, TypeUrl.Listener);
    const { hcms } = terminalFilters(listeners);
    expect(hcms.length).toBeGreaterThan(0);
    for (const { hcm } of hcms) expect(fileLog(must(hcm.access_log[0])).path).toBe('/dev/stdout');
  });
});
