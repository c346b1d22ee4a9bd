import { createServer } from 'node:net';
import { status } from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from './ca.ts';
import type { CaCallerCredential } from './ca-client.ts';
import { CaServer } from './ca-server.ts';
import { CertificateManager, type WorkloadSecret } from './cert-manager.ts';
import { silentLogger } from '@weft/model';
import { spiffeIdOf } from './spiffe.ts';
import { captureLogger } from './testing.ts';

const ratings = 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings';

let ca: CertificateAuthority;
beforeAll(async () => {
  ca = new CertificateAuthority(await CertificateAuthority.generateRoot(), { logger: silentLogger });
});

/** An in-process signer that records which credential each request used. */
function recordingSigner(fail?: (n: number, c: CaCallerCredential) => Error | undefined) {
  const calls: CaCallerCredential['kind'][] = [];
  const signer = async (csrPem: string, ttlSeconds: number, credential: CaCallerCredential) => {
    calls.push(credential.kind);
    const err = fail?.(calls.length, credential);
    if (err) throw err;
    const identity = credential.kind === 'token' ? ca.verifyBootstrapToken(credential.token) : spiffeIdOf(credential.certChainPem);
    return ca.sign(csrPem, { ...(identity ? { identity } : {}), ttlSeconds }).chain;
  };
  return { calls, signer };
}

describe('CertificateManager', () => {
  it('gets its first certificate with the bootstrap token, renews with its own certificate, and notifies subscribers', async () => {
    const { calls, signer } = recordingSigner();
    const manager = new CertificateManager({
      identity: { namespace: 'default', serviceAccount: 'bookinfo-ratings' },
      rootCertPem: ca.rootCertPem,
      bootstrapToken: () => ca.issueBootstrapToken('default', 'bookinfo-ratings'),
      ttlSeconds: 3600,
      signer,
      logger: silentLogger,
    });
    const seen: WorkloadSecret[] = [];
    manager.subscribe((s) => seen.push(s));
    const first = await manager.start();
    expect(first.spiffeId).toBe(ratings);
    expect(spiffeIdOf(first.certChainPem)).toBe(ratings);
    expect(first.rootCertPem).toBe(ca.rootCertPem);
    expect(first.certChainPem).not.toContain(ca.roots[0]!.trim().split('\n')[1]);
    expect(first.notAfter.getTime() - first.notBefore.getTime()).toBe(3600_000);
    // Rotation is due at half the lifetime, give or take Istio's 1% jitter.
    const due = manager.nextRotation!.getTime() - first.notBefore.getTime();
    expect(due).toBeGreaterThanOrEqual(0.49 * 3600_000);
    expect(due).toBeLessThanOrEqual(0.51 * 3600_000);

    const second = await manager.rotate();
    expect(second.serialNumber).not.toBe(first.serialNumber);
    expect(second.privateKeyPem).not.toBe(first.privateKeyPem);
    expect(calls).toEqual(['token', 'certificate']);
    expect(seen.map((s) => s.version)).toEqual(['1', '2']);

    manager.setRootCert(`${ca.rootCertPem}`);
    expect(seen.map((s) => s.version)).toEqual(['1', '2', '3']);
    expect(seen[2]!.serialNumber).toBe(second.serialNumber);
    manager.stop();
  });

  it('falls back to the bootstrap token when the CA no longer accepts its certificate', async () => {
    const { calls, signer } = recordingSigner((n) => (n === 2 ? Object.assign(new Error('no'), { code: status.UNAUTHENTICATED }) : undefined));
    const manager = new CertificateManager({
      identity: ratings,
      rootCertPem: ca.rootCertPem,
      bootstrapToken: ca.issueBootstrapToken('default', 'bookinfo-ratings'),
      signer,
      retry: { initialMs: 10, maxMs: 20 },
      logger: silentLogger,
    });
    await manager.start();
    await manager.rotate();
    expect(calls).toEqual(['token', 'certificate', 'token']);
    manager.stop();
  });

  it('retries with exponential backoff while the CA is down, and gets its certificate once it is up', async () => {
    // A port with nothing listening on it (yet).
    const probe = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => probe.once('listening', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));

    const log = captureLogger('citadel');
    const manager = new CertificateManager({
      identity: ratings,
      rootCertPem: ca.rootCertPem,
      caAddress: `127.0.0.1:${port}`,
      bootstrapToken: ca.issueBootstrapToken('default', 'bookinfo-ratings'),
      retry: { initialMs: 100, maxMs: 2000 },
      requestTimeoutMs: 2000,
      logger: log.logger,
    });
    const started = manager.start();
    const failures = () => log.lines.filter((l) => l.msg === 'certificate request failed; retrying');
    while (failures().length < 3) await new Promise((r) => setTimeout(r, 25));
    const server = await CaServer.start({ ca, port, logger: silentLogger });
    try {
      const secret = await started;
      expect(secret.spiffeId).toBe(ratings);
      const delays = failures().map((l) => l.retryInMs as number);
      // 100, 200, 400 ms (±20%): each wait about doubles.
      expect(delays[0]).toBeGreaterThanOrEqual(80);
      expect(delays[0]).toBeLessThanOrEqual(120);
      expect(delays[1]! / delays[0]!).toBeGreaterThan(1.3);
      expect(delays[2]! / delays[1]!).toBeGreaterThan(1.3);
      expect(failures()[0]).toMatchObject({ level: 'warn', identity: ratings, error: { code: 'UNAVAILABLE' } });
    } finally {
      manager.stop();
      await server.close();
    }
  });
});

