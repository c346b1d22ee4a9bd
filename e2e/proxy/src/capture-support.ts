// What the capture-mode suites share: istio-init's arguments for weft-iptables, an environment
// without proxy settings (apps in pods must not use an HTTP proxy), and waiting for a JSON log line.
import type { ChildProcess } from 'node:child_process';

/** The arguments Istio's injector gives istio-init. */
export const istioInitArgs = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020'];
export const iptablesBin = new URL('../../../packages/proxy/bin/weft-iptables.js', import.meta.url).pathname;

/** This process's environment without HTTP proxy settings. */
export function plainEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(https?|all|no)_proxy$/i.test(k)) delete env[k];
  return env;
}

/** Waits for a JSON log line on stdout or stderr. */
export function waitForLog(child: ChildProcess, what: string, match: (l: Record<string, unknown>) => boolean, ms = 20_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const seen: string[] = [];
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms:\n${seen.slice(-20).join('\n')}`)), ms);
    for (const stream of [child.stdout!, child.stderr!]) {
      let pending = '';
      stream.on('data', (b: Buffer) => {
        pending += b.toString();
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const text of lines) {
          seen.push(text);
          try {
            const l = JSON.parse(text) as Record<string, unknown>;
            if (match(l)) {
              clearTimeout(timer);
              resolve(l);
            }
          } catch {}
        }
      });
    }
  });
}
