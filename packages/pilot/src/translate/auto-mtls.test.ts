// Automatic mTLS as Istio decides it: clusters toward sidecars carry a TLS transport socket for
// endpoints labelled `tlsMode: istio` without any DestinationRule, and EDS labels an endpoint so
// only when its workload has a sidecar and its PeerAuthentication does not DISABLE mTLS on the
// endpoint's port (Istio's mtlsChecker); a DestinationRule TLS mode overrides both.
import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { bookinfoPlatform, generate, must, productpage, pushFrom, typed } from './test-support.ts';

const EDS = TypeUrl.ClusterLoadAssignment;
const reviews = 'outbound|9080||reviews.default.svc.cluster.local';

function tlsModes(texts: string[]): Map<string, string | undefined> {
  const cla = must(generate(pushFrom([bookinfoPlatform(), ...texts]), productpage(), EDS, [reviews]).get(reviews));
  const out = new Map<string, string | undefined>();
  for (const l of cla.endpoints) {
    for (const e of l.lb_endpoints) {
      const addr = e.endpoint?.address?.socket_address?.address ?? '';
      out.set(addr, e.metadata?.filter_metadata['envoy.transport_socket_match']?.fields?.tlsMode?.stringValue);
    }
  }
  return out;
}

const pa = (name: string, selector: string, body: string) => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: default}
spec:
${selector ? `  selector: {matchLabels: {${selector}}}\n` : ''}${body}`;

describe('automatic mTLS', () => {
  it('without a DestinationRule, clusters toward sidecars use ISTIO_MUTUAL with the SPIFFE identities behind the service', () => {
    const c = must(generate(pushFrom([bookinfoPlatform()]), productpage(), TypeUrl.Cluster, [reviews]).get(reviews));
    expect(c.transport_socket).toBeNull();
    const [mtls, plain] = c.transport_socket_matches;
    expect(mtls?.match?.fields?.tlsMode?.stringValue).toBe('istio');
    const ctx = typed(mtls?.transport_socket?.typed_config, TypeUrl.UpstreamTlsContext);
    expect(ctx.sni).toBe('outbound_.9080_._.reviews.default.svc.cluster.local');
    expect(ctx.common_tls_context?.tls_certificate_sds_secret_configs.map((s) => s.name)).toEqual(['default']);
    expect(ctx.common_tls_context?.combined_validation_context?.validation_context_sds_secret_config?.name).toBe('ROOTCA');
    expect(ctx.common_tls_context?.combined_validation_context?.default_validation_context?.match_subject_alt_names.map((m) => m.exact)).toEqual([
      'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
    ]);
    expect(ctx.common_tls_context?.alpn_protocols).toEqual(['istio-peer-exchange', 'istio']);
    expect(plain?.transport_socket?.typed_config?.type_url).toBe(TypeUrl.RawBuffer);
  });

  it('labels every reviews endpoint for mTLS by default (they have sidecars)', () => {
    expect([...tlsModes([]).values()]).toEqual(['istio', 'istio', 'istio']);
  });

  it('leaves out endpoints whose workload PeerAuthentication disables mTLS, also at port level', () => {
    const modes = tlsModes([
      pa('v1-off', 'version: v1', '  mtls: {mode: DISABLE}\n'),
      pa('v2-port-off', 'version: v2', '  mtls: {mode: STRICT}\n  portLevelMtls:\n    9080: {mode: DISABLE}\n'),
      pa('v3-other-port', 'version: v3', '  mtls: {mode: STRICT}\n  portLevelMtls:\n    9999: {mode: DISABLE}\n'),
    ]);
    expect(modes.get('127.0.0.13')).toBeUndefined();
    expect(modes.get('127.0.0.14')).toBeUndefined();
    expect(modes.get('127.0.0.15')).toBe('istio');
  });

  it('follows a namespace-wide DISABLE unless the workload turns mTLS back on', () => {
    const modes = tlsModes([pa('ns-off', '', '  mtls: {mode: DISABLE}\n'), pa('v3-on', 'version: v3', '  mtls: {mode: PERMISSIVE}\n')]);
    expect([...modes.entries()].sort()).toEqual([
      ['127.0.0.13', undefined],
      ['127.0.0.14', undefined],
      ['127.0.0.15', 'istio'],
    ]);
  });

  it('lets a DestinationRule TLS mode decide over PeerAuthentication', () => {
    const dr = (mode: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: ${mode}}}
`;
    const off = pa('v1-off', 'version: v1', '  mtls: {mode: DISABLE}\n');
    expect([...tlsModes([off, dr('ISTIO_MUTUAL')]).values()]).toEqual(['istio', 'istio', 'istio']);
    expect([...tlsModes([dr('DISABLE')]).values()]).toEqual([undefined, undefined, undefined]);
  });
});
