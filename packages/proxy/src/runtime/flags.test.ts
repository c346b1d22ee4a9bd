import { nodeId } from '@weft/mesh';
import { describe, expect, it } from 'vitest';
import { parseProxyFlags, UsageError } from './flags.ts';

describe('parseProxyFlags', () => {
  it('builds the node identity from flags, with Istio environment variables as defaults', () => {
    const o = parseProxyFlags(['--xds-address', '127.0.0.1:15010', '--ip', '127.0.1.7', '--pod', 'reviews-v1-abc', '--labels', 'app=reviews,version=v1'], { POD_NAMESPACE: 'bookinfo', SERVICE_ACCOUNT: 'bookinfo-reviews', ISTIO_META_MESH_ID: 'mesh1' }, 'sidecar');
    if (o === 'help') throw new Error('help');
    expect(nodeId(o.node)).toBe('sidecar~127.0.1.7~reviews-v1-abc.bookinfo~bookinfo.svc.cluster.local');
    expect(o.node).toMatchObject({ labels: { app: 'reviews', version: 'v1' }, serviceAccount: 'bookinfo-reviews', metadata: { MESH_ID: 'mesh1', INTERCEPTION_MODE: 'NONE' } });
    // Local mode binds on the workload's own address by default.
    expect(o).toMatchObject({ mode: 'local', bindAddress: '127.0.1.7', healthHost: '127.0.1.7' });
  });

  it('takes a whole node id, gateway type and app ports', () => {
    const o = parseProxyFlags(['--node-id', 'router~10.0.0.9~istio-ingressgateway-1.istio-system~istio-system.svc.example.org', '--mode', 'capture', '--app-ports', '9080=19080,9443=19443'], {}, 'sidecar');
    if (o === 'help') throw new Error('help');
    expect(o.node).toMatchObject({ type: 'router', ip: '10.0.0.9', pod: 'istio-ingressgateway-1', namespace: 'istio-system', domainSuffix: 'example.org' });
    expect(o.bindAddress).toBeUndefined();
    expect([...(o.appPorts ?? [])]).toEqual([
      [9080, 19080],
      [9443, 19443],
    ]);
  });

  it('takes -1 (no port) for the health port with or without =', () => {
    for (const argv of [['--health-port', '-1'], ['--health-port=-1']]) {
      const o = parseProxyFlags(argv, {}, 'sidecar');
      if (o === 'help') throw new Error('help');
      expect(o.healthPort).toBe(-1);
    }
  });

  it('takes --owner-uid in local mode only, as a user id', () => {
    const o = parseProxyFlags(['--owner-uid', '1000'], {}, 'sidecar');
    if (o === 'help') throw new Error('help');
    expect(o.ownerUid).toBe(1000);
    expect(() => parseProxyFlags(['--owner-uid', 'alice'], {}, 'sidecar')).toThrow(/--owner-uid must be a user id/);
    expect(() => parseProxyFlags(['--owner-uid', '-1'], {}, 'sidecar')).toThrow(/--owner-uid must be a user id/);
    expect(() => parseProxyFlags(['--owner-uid', '0', '--mode', 'capture'], {}, 'sidecar')).toThrow(/--owner-uid is for local mode/);
  });

  it('takes the longest xDS reconnect wait (weftctl up shortens it: pilot is on the same machine)', () => {
    const o = parseProxyFlags(['--xds-max-backoff-ms', '1000'], {}, 'sidecar');
    if (o === 'help') throw new Error('help');
    expect(o.maxBackoffMs).toBe(1000);
    expect(() => parseProxyFlags(['--xds-max-backoff-ms', '0'], {}, 'sidecar')).toThrow(/--xds-max-backoff-ms must be at least 1/);
    expect(() => parseProxyFlags(['--xds-max-backoff-ms', 'soon'], {}, 'sidecar')).toThrow(/must be a number of milliseconds/);
  });

  it("takes the drain: --drain-ms, and Istio's EXIT_ON_ZERO_ACTIVE_CONNECTIONS and MINIMUM_DRAIN_DURATION (flags win)", () => {
    const fromEnv = parseProxyFlags(['--mode', 'capture', '--drain-ms', '8000'], { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true', MINIMUM_DRAIN_DURATION: '2s' }, 'sidecar');
    if (fromEnv === 'help') throw new Error('help');
    expect(fromEnv).toMatchObject({ drainMs: 8000, exitOnZeroActiveConnections: true, minDrainMs: 2000 });
    const fromFlags = parseProxyFlags(['--exit-on-zero-active-connections', '--min-drain-ms', '300'], { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'false', MINIMUM_DRAIN_DURATION: '2s' }, 'sidecar');
    if (fromFlags === 'help') throw new Error('help');
    expect(fromFlags).toMatchObject({ exitOnZeroActiveConnections: true, minDrainMs: 300 });
    const none = parseProxyFlags(['--mode', 'capture'], {}, 'sidecar');
    if (none === 'help') throw new Error('help');
    expect(none.exitOnZeroActiveConnections).toBeUndefined();
    expect(() => parseProxyFlags([], { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'yes' }, 'sidecar')).toThrow(/EXIT_ON_ZERO_ACTIVE_CONNECTIONS must be true or false, not "yes"/);
    expect(() => parseProxyFlags([], { MINIMUM_DRAIN_DURATION: 'soon' }, 'sidecar')).toThrow(/MINIMUM_DRAIN_DURATION must be a duration/);
  });

  it('refuses what it cannot use, saying why', () => {
    expect(() => parseProxyFlags(['--type', 'gateway'], {}, 'sidecar')).toThrow(UsageError);
    expect(() => parseProxyFlags(['--admin-port', '99999'], {}, 'sidecar')).toThrow(/--admin-port must be a port number/);
    expect(() => parseProxyFlags(['--app-ports', '9080:19080'], {}, 'sidecar')).toThrow(/not PORT=APPPORT/);
    expect(() => parseProxyFlags(['--labels', 'app'], {}, 'sidecar')).toThrow(/not key=value/);
    expect(() => parseProxyFlags(['--bogus'], {}, 'sidecar')).toThrow(/bogus/);
    expect(parseProxyFlags(['-h'], {}, 'router')).toBe('help');
  });
});
