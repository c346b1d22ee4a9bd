// Gateway credentials from a directory, for local mode (no Kubernetes secrets, and pilot does not
// serve them): a Gateway server's `credentialName: bookinfo-cert` becomes the SDS secret
// `kubernetes://bookinfo-cert`, read from either
//   DIR/bookinfo-cert.crt + DIR/bookinfo-cert.key   (+ DIR/bookinfo-cert.ca.crt)
//   DIR/bookinfo-cert/tls.crt + tls.key             (+ ca.crt), the layout of a kubernetes.io/tls secret
// A CA file becomes `kubernetes://bookinfo-cert-cacert` (Istio's name for it, used by MUTUAL).
import { credentialCaName, credentialSecretName } from '@weft/mesh';
import { existsSync, readdirSync, readFileSync, statSync, type FSWatcher, watch } from 'node:fs';
import { join } from 'node:path';
import { decodeMessage, encodeMessage, type Secret__Output } from '@weft/xds';

const secretType = 'envoy.extensions.transport_sockets.tls.v3.Secret';

function secret(name: string, value: Record<string, unknown>): Secret__Output {
  return decodeMessage(secretType, encodeMessage(secretType, { name, ...value }));
}

function tlsSecret(name: string, cert: Buffer, key: Buffer): Secret__Output {
  return secret(name, { tls_certificate: { certificate_chain: { inline_bytes: cert }, private_key: { inline_bytes: key } } });
}

function caSecret(name: string, ca: Buffer): Secret__Output {
  return secret(name, { validation_context: { trusted_ca: { inline_bytes: ca } } });
}

/** Every credential in `dir`, by SDS name (`kubernetes://<name>`, and the bare `<name>`). */
export function loadCredentials(dir: string): Map<string, Secret__Output> {
  const out = new Map<string, Secret__Output>();
  const add = (name: string, s: (n: string) => Secret__Output) => {
    out.set(credentialSecretName(name), s(credentialSecretName(name)));
    out.set(name, s(name));
  };
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) {
      const crt = join(path, 'tls.crt');
      const key = join(path, 'tls.key');
      if (existsSync(crt) && existsSync(key)) {
        const c = readFileSync(crt);
        const k = readFileSync(key);
        add(entry, (n) => tlsSecret(n, c, k));
      }
      const ca = join(path, 'ca.crt');
      if (existsSync(ca)) {
        const c = readFileSync(ca);
        add(credentialCaName(entry), (n) => caSecret(n, c));
      }
      continue;
    }
    if (entry.endsWith('.ca.crt')) {
      const name = entry.slice(0, -'.ca.crt'.length);
      const c = readFileSync(path);
      add(credentialCaName(name), (n) => caSecret(n, c));
      continue;
    }
    if (entry.endsWith('.crt')) {
      const name = entry.slice(0, -'.crt'.length);
      const key = join(dir, `${name}.key`);
      if (!existsSync(key)) continue;
      const c = readFileSync(path);
      const k = readFileSync(key);
      add(name, (n) => tlsSecret(n, c, k));
    }
  }
  return out;
}

/** Calls `onChange` with the reloaded credentials whenever the directory changes (debounced). */
export function watchCredentials(dir: string, onChange: (secrets: Map<string, Secret__Output>) => void, onError: (err: Error) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { recursive: true }, () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        try {
          onChange(loadCredentials(dir));
        } catch (err) {
          onError(err as Error);
        }
      }, 100);
    });
    watcher.on('error', onError);
  } catch (err) {
    onError(err as Error);
  }
  return () => {
    clearTimeout(timer);
    watcher?.close();
  };
}
