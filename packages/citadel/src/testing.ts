// Helpers for this package's tests (not exported): temp dirs, the openssl binary, a plug-in CA.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import type { DiscoveryRequest, DiscoveryResponse__Output } from '@weft/xds';
import type { SecretSource, WorkloadSecret } from './cert-manager.ts';
import { createLogger, type Logger } from '@weft/model';

export function tempDir(prefix = 'weft-citadel-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Runs the real openssl binary; throws with its stderr when it fails. */
export function openssl(args: string[], cwd?: string): string {
  try {
    return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

/**
 * An Istio-style plug-in cacerts directory made with openssl, as Istio's docs do it: a root and an
 * intermediate signed by it; ca-cert.pem/ca-key.pem are the intermediate, cert-chain.pem is
 * intermediate + root.
 */
export function makePluggedCaDir(dir: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'root-key.pem', '-out', 'root-cert.pem', '-days', '3650', '-subj', '/O=Istio/CN=Root CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.csr', '-subj', '/O=Istio/CN=Intermediate CA/L=cluster1'], dir);
  writeFileSync(join(dir, 'ca.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  openssl(['x509', '-req', '-in', 'ca.csr', '-CA', 'root-cert.pem', '-CAkey', 'root-key.pem', '-CAcreateserial', '-out', 'ca-cert.pem', '-days', '730', '-sha256', '-extfile', 'ca.ext'], dir);
  const chain = `${openssl(['x509', '-in', 'ca-cert.pem'], dir)}${openssl(['x509', '-in', 'root-cert.pem'], dir)}`;
  writeFileSync(join(dir, 'cert-chain.pem'), chain);
}

/** A logger whose lines are kept (parsed) for assertions. */
export function captureLogger(scope = 'test'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { logger: createLogger({ scope, level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }), lines };
}

/** A secret source the test controls. */
export class FixedSource implements SecretSource {
  current: WorkloadSecret | undefined;
  private readonly listeners = new Set<(s: WorkloadSecret) => void>();
  subscribe(listener: (s: WorkloadSecret) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  set(secret: WorkloadSecret): void {
    this.current = secret;
    for (const l of this.listeners) l(secret);
  }
}

/** Reads responses from an SDS stream one at a time, with a timeout. */
export function sdsReader(stream: ClientDuplexStream<DiscoveryRequest, DiscoveryResponse__Output>) {
  const queue: DiscoveryResponse__Output[] = [];
  const waiters: Array<{ resolve: (r: DiscoveryResponse__Output) => void; reject: (e: Error) => void }> = [];
  let failure: ServiceError | undefined;
  stream.on('data', (r: DiscoveryResponse__Output) => {
    const w = waiters.shift();
    if (w) w.resolve(r);
    else queue.push(r);
  });
  stream.on('error', (e: ServiceError) => {
    failure = e;
    for (const w of waiters.splice(0)) w.reject(new Error(`stream failed: ${e.message}`));
  });
  return {
    next(timeoutMs = 3000): Promise<DiscoveryResponse__Output> {
      const r = queue.shift();
      if (r) return Promise.resolve(r);
      if (failure) return Promise.reject(new Error(`stream failed: ${failure.message}`));
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no SDS response in time')), timeoutMs);
        waiters.push({
          resolve: (x) => {
            clearTimeout(t);
            resolve(x);
          },
          reject: (e) => {
            clearTimeout(t);
            reject(e);
          },
        });
      });
    },
    async none(ms = 300): Promise<boolean> {
      await new Promise((r) => setTimeout(r, ms));
      return queue.length === 0;
    },
  };
}
