// Filter chain matching and listener checks, on the listeners pilot generates.
import { decodeMessage, encodeAny, encodeMessage, type Listener, type Listener__Output, TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { type ConnectionFacts, compileListener, selectChain } from './chains.ts';
import { classify, h2Preface } from './detect.ts';

const listenerType = 'envoy.config.listener.v3.Listener';
const decode = (l: Listener): Listener__Output => decodeMessage(listenerType, encodeMessage(listenerType, l));
const tcp = (cluster: string) => ({ name: 'envoy.filters.network.tcp_proxy', typed_config: encodeAny(TypeUrl.TcpProxy, { stat_prefix: cluster, cluster }) });
const hcm = (route: string) => ({
  name: 'envoy.filters.network.http_connection_manager',
  typed_config: encodeAny(TypeUrl.HttpConnectionManager, {
    stat_prefix: route,
    rds: { route_config_name: route, config_source: { ads: {} } },
    http_filters: [
      { name: 'envoy.filters.http.fault', typed_config: encodeAny(TypeUrl.HttpFault, {}) },
      { name: 'envoy.filters.http.router', typed_config: encodeAny(TypeUrl.Router, {}) },
    ],
  }),
});

const facts = (f: Partial<ConnectionFacts>): ConnectionFacts => ({
  destinationAddress: '10.0.0.1',
  destinationPort: 9080,
  sourceAddress: '10.0.0.2',
  sourcePort: 40000,
  transport: 'raw_buffer',
  sni: undefined,
  alpn: [],
  ...f,
});

// virtualInbound in PERMISSIVE mode, as pilot builds it: mTLS and plaintext chains per port, passthrough chains.
const virtualInbound = decode({
  name: 'virtualInbound',
  address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
  filter_chains: [
    { name: 'virtualInbound-blackhole', filter_chain_match: { destination_port: { value: 15006 } }, filters: [tcp('BlackHoleCluster')] },
    { name: 'virtualInbound-catchall-http', filter_chain_match: { transport_protocol: 'raw_buffer', application_protocols: ['http/1.1', 'h2c'] }, filters: [hcm('InboundPassthroughCluster')] },
    { name: 'virtualInbound', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: [tcp('InboundPassthroughCluster')] },
    {
      name: '0.0.0.0_9080',
      filter_chain_match: { destination_port: { value: 9080 }, transport_protocol: 'tls', application_protocols: ['istio', 'istio-http/1.1'] },
      transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: encodeAny(TypeUrl.DownstreamTlsContext, {}) },
      filters: [hcm('inbound|9080||')],
    },
    { name: '0.0.0.0_9080', filter_chain_match: { destination_port: { value: 9080 }, transport_protocol: 'raw_buffer' }, filters: [hcm('inbound|9080||')] },
    { name: 'tcp_3306', filter_chain_match: { destination_port: { value: 3306 }, transport_protocol: 'raw_buffer' }, filters: [tcp('inbound|3306||')] },
  ],
});

describe('selectChain', () => {
  const l = compileListener(virtualInbound);

  it('picks the chain of the destination port, by transport protocol', () => {
    expect(selectChain(l, facts({ destinationPort: 9080 }))?.http?.routeName).toBe('inbound|9080||');
    expect(selectChain(l, facts({ destinationPort: 9080 }))?.tls).toBeUndefined();
    const tls = selectChain(l, facts({ destinationPort: 9080, transport: 'tls', alpn: ['istio-http/1.1'] }));
    expect(tls?.tls).toBeDefined();
    expect(selectChain(l, facts({ destinationPort: 3306 }))?.tcp?.action.cluster).toBe('inbound|3306||');
  });

  it('sends other ports to the passthrough chains, HTTP or TCP by what the client speaks', () => {
    expect(selectChain(l, facts({ destinationPort: 7777, alpn: ['http/1.1'] }))?.name).toBe('virtualInbound-catchall-http');
    expect(selectChain(l, facts({ destinationPort: 7777, alpn: [] }))?.name).toBe('virtualInbound');
    expect(selectChain(l, facts({ destinationPort: 15006 }))?.tcp?.action.cluster).toBe('BlackHoleCluster');
    // TLS to a port without a TLS chain matches nothing (Envoy closes the connection).
    expect(selectChain(l, facts({ destinationPort: 7777, transport: 'tls' }))).toBeUndefined();
  });

  it('matches server names exactly before wildcards, and falls back to the default chain', () => {
    const gw = compileListener(
      decode({
        name: '0.0.0.0_443',
        address: { socket_address: { address: '0.0.0.0', port_value: 443 } },
        filter_chains: [
          { name: 'exact', filter_chain_match: { server_names: ['bookinfo.example.com'] }, filters: [hcm('a')] },
          { name: 'wild', filter_chain_match: { server_names: ['*.example.com'] }, filters: [hcm('b')] },
        ],
        default_filter_chain: { name: 'default', filters: [tcp('PassthroughCluster')] },
      }),
    );
    expect(gw.needsInspection).toBe(true);
    expect(selectChain(gw, facts({ destinationPort: 443, transport: 'tls', sni: 'bookinfo.example.com' }))?.name).toBe('exact');
    expect(selectChain(gw, facts({ destinationPort: 443, transport: 'tls', sni: 'ratings.example.com' }))?.name).toBe('wild');
    expect(selectChain(gw, facts({ destinationPort: 443, transport: 'tls', sni: 'example.org' }))?.name).toBe('default');
  });

  it('matches destination prefixes, longest first', () => {
    const l2 = compileListener(
      decode({
        name: 'x',
        address: { socket_address: { address: '0.0.0.0', port_value: 1 } },
        filter_chains: [
          { name: 'wide', filter_chain_match: { prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: { value: 8 } }] }, filters: [tcp('a')] },
          { name: 'narrow', filter_chain_match: { prefix_ranges: [{ address_prefix: '10.1.0.0', prefix_len: { value: 16 } }] }, filters: [tcp('b')] },
          { name: 'any', filters: [tcp('c')] },
        ],
      }),
    );
    expect(selectChain(l2, facts({ destinationAddress: '10.1.2.3' }))?.name).toBe('narrow');
    expect(selectChain(l2, facts({ destinationAddress: '10.2.2.3' }))?.name).toBe('wide');
    expect(selectChain(l2, facts({ destinationAddress: '192.168.1.1' }))?.name).toBe('any');
  });
});

describe('compileListener', () => {
  it('refuses what Weft does not implement, naming it', () => {
    const bad = decode({
      name: '0.0.0.0_27017',
      address: { socket_address: { address: '0.0.0.0', port_value: 27017 } },
      filter_chains: [{ filters: [{ name: 'envoy.filters.network.mongo_proxy', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy', value: Buffer.alloc(0) } }, tcp('x')] }],
    });
    expect(() => compileListener(bad)).toThrow(/unsupported network filter "envoy.filters.network.mongo_proxy"/);
    const badHttpFilter = decode({
      name: 'l',
      address: { socket_address: { address: '0.0.0.0', port_value: 80 } },
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: encodeAny(TypeUrl.HttpConnectionManager, {
                rds: { route_config_name: 'r' },
                http_filters: [
                  { name: 'envoy.filters.http.lua', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua', value: Buffer.alloc(0) } },
                  { name: 'envoy.filters.http.router', typed_config: encodeAny(TypeUrl.Router, {}) },
                ],
              }),
            },
          ],
        },
      ],
    });
    expect(() => compileListener(badHttpFilter)).toThrow(/unsupported HTTP filter "envoy.filters.http.lua"/);
  });
});

describe('classify (listener filters)', () => {
  it('tells HTTP/1.1, HTTP/1.0, h2c prior knowledge, TLS and other bytes apart', () => {
    expect(classify(Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'))).toEqual({ transport: 'raw_buffer', alpn: ['http/1.1'] });
    expect(classify(Buffer.from('GET / HTTP/1.0\r\n'))).toEqual({ transport: 'raw_buffer', alpn: ['http/1.0'] });
    expect(classify(Buffer.from('GET /long-path'))).toBe('more');
    expect(classify(h2Preface)).toEqual({ transport: 'raw_buffer', alpn: ['h2c'] });
    expect(classify(h2Preface.subarray(0, 10))).toBe('more');
    expect(classify(Buffer.from([0x00, 0x01, 0x02]))).toEqual({ transport: 'raw_buffer', alpn: [] });
    expect(classify(Buffer.from('\x16\x03\x01\x00'))).toBe('more');
  });

  it('reads SNI and ALPN from a TLS ClientHello', async () => {
    const { connect } = await import('node:tls');
    const { createServer } = await import('node:net');
    const first = await new Promise<Buffer>((resolve) => {
      const server = createServer((s) => {
        s.once('data', (d: Buffer) => {
          resolve(d);
          s.destroy();
          server.close();
        });
      }).listen(0, '127.0.0.1', () => {
        const port = (server.address() as { port: number }).port;
        connect({ host: '127.0.0.1', port, servername: 'bookinfo.example.com', ALPNProtocols: ['h2', 'http/1.1'] }).on('error', () => {});
      });
    });
    expect(classify(first)).toEqual({ transport: 'tls', sni: 'bookinfo.example.com', alpn: ['h2', 'http/1.1'] });
  });
});
