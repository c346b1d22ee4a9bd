// Test fixtures for the filter contract (tests only; not exported from the package).
import type { DownstreamConnection } from './filters.ts';

/** A plaintext downstream connection (127.0.0.9 -> 127.0.0.2:15006, original destination :9080); fields overridable. */
export function testConnection(o: Partial<DownstreamConnection> = {}): DownstreamConnection {
  return {
    remoteAddress: '127.0.0.9',
    remotePort: 40000,
    localAddress: '127.0.0.2',
    localPort: 15006,
    destinationAddress: '127.0.0.2',
    destinationPort: 9080,
    tls: false,
    peerPrincipal: undefined,
    peerCertificate: undefined,
    localPrincipal: undefined,
    sni: undefined,
    ...o,
  };
}
