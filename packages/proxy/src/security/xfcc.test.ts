// x-forwarded-client-cert as Envoy's connection manager sets it, per forward_client_cert_details,
// with a real mesh certificate as the peer's.
import { createHash, X509Certificate } from 'node:crypto';
import { CertificateAuthority, issueWorkloadSecret } from '@weft/citadel';
import { silentLogger } from '@weft/model';
import { decodeMessage, encodeMessage, type HttpConnectionManager, type HttpConnectionManager__Output } from '@weft/xds';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DownstreamConnection, FilterHeaders, HttpFilterContext } from '../core/filters.ts';
import { newRecord } from '../http/test-support.ts';
import { xfccFilterFactory } from './xfcc.ts';

let peerDer: Buffer;
let hash: string;

beforeAll(async () => {
  const ca = new CertificateAuthority(await CertificateAuthority.generateRoot({ keyBits: 2048 }), { logger: silentLogger });
  const s = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'productpage' }, { keyBits: 2048 });
  peerDer = new X509Certificate(s.certChainPem).raw;
  hash = createHash('sha256').update(peerDer).digest('hex');
}, 30_000);

function hcm(extra: Partial<HttpConnectionManager>): HttpConnectionManager__Output {
  const name = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
  return decodeMessage(name, encodeMessage(name, { stat_prefix: 'inbound_0.0.0.0_9080', ...extra }));
}

const inbound = { forward_client_cert_details: 'APPEND_FORWARD', set_current_client_cert_details: { subject: { value: true }, uri: true, dns: true } } as const;

function connection(mtls: boolean): DownstreamConnection {
  return {
    remoteAddress: '127.0.0.1',
    remotePort: 40000,
    localAddress: '127.0.0.14',
    localPort: 9080,
    destinationAddress: '127.0.0.14',
    destinationPort: 9080,
    tls: mtls,
    peerPrincipal: mtls ? 'spiffe://cluster.local/ns/default/sa/productpage' : undefined,
    peerCertificate: mtls ? peerDer : undefined,
    localPrincipal: mtls ? 'spiffe://cluster.local/ns/default/sa/reviews' : undefined,
    sni: undefined,
  };
}

/** Runs the filter over one request; the headers as they go upstream. */
function run(config: HttpConnectionManager__Output, conn: DownstreamConnection, headers: FilterHeaders): FilterHeaders {
  const f = xfccFilterFactory(config, { where: 'test', listener: 'virtualInbound', direction: 'inbound', hcm: config });
  if (!f) return headers;
  const ctx: HttpFilterContext = { connection: conn, record: newRecord(), method: 'GET', authority: 'reviews', path: '/', scheme: 'https', requestHeaders: headers, routeName: undefined, upstreamCluster: undefined };
  const reply = f.begin(ctx)?.onRequest?.(ctx);
  expect(reply).toBeUndefined();
  return headers;
}

const element = () => `By=spiffe://cluster.local/ns/default/sa/reviews;Hash=${hash};Subject="";URI=spiffe://cluster.local/ns/default/sa/productpage`;

describe('x-forwarded-client-cert', () => {
  it('APPEND_FORWARD (sidecar inbound): adds By, Hash, Subject and URI after what came in', () => {
    expect(run(hcm(inbound), connection(true), {})['x-forwarded-client-cert']).toBe(element());
    const prior = 'By=spiffe://cluster.local/ns/default/sa/productpage;URI=spiffe://cluster.local/ns/istio-system/sa/ingress';
    expect(run(hcm(inbound), connection(true), { 'x-forwarded-client-cert': prior })['x-forwarded-client-cert']).toBe(`${prior},${element()}`);
  });

  it('drops the header of a client without a certificate, whatever it claims', () => {
    const h = run(hcm(inbound), connection(false), { 'x-forwarded-client-cert': 'URI=spiffe://cluster.local/ns/default/sa/admin' });
    expect(h['x-forwarded-client-cert']).toBeUndefined();
  });

  it('SANITIZE_SET replaces it; FORWARD_ONLY passes it on; only the details asked for are set', () => {
    const prior = { 'x-forwarded-client-cert': 'URI=spiffe://elsewhere' };
    expect(run(hcm({ ...inbound, forward_client_cert_details: 'SANITIZE_SET' }), connection(true), { ...prior })['x-forwarded-client-cert']).toBe(element());
    expect(run(hcm({ forward_client_cert_details: 'FORWARD_ONLY' }), connection(true), { ...prior })['x-forwarded-client-cert']).toBe('URI=spiffe://elsewhere');
    const uriOnly = run(hcm({ forward_client_cert_details: 'SANITIZE_SET', set_current_client_cert_details: { uri: true } }), connection(true), {});
    expect(uriOnly['x-forwarded-client-cert']).toBe(`By=spiffe://cluster.local/ns/default/sa/reviews;Hash=${hash};URI=spiffe://cluster.local/ns/default/sa/productpage`);
  });

  it('is not a filter at all for SANITIZE (the default; the router drops the header) and ALWAYS_FORWARD_ONLY', () => {
    const site = { where: 'test', listener: 'x', direction: 'outbound' as const };
    expect(xfccFilterFactory(hcm({}), site)).toBeUndefined();
    expect(xfccFilterFactory(hcm({ forward_client_cert_details: 'ALWAYS_FORWARD_ONLY' }), site)).toBeUndefined();
  });
});
