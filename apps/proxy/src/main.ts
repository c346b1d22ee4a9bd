// weft-proxy: the sidecar. Flags and environment -> startProxy, until SIGTERM or SIGINT.
import { runProxyCommand, runWaitCommand, startProxy } from '@weft/proxy';

export function main(argv: readonly string[]): Promise<number> {
  // `weft-proxy wait`: the postStart hook of an injected pod that holds its application until the proxy is ready.
  if (argv[0] === 'wait') return runWaitCommand(argv.slice(1), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
  return runProxyCommand('weft-proxy', argv, 'sidecar', startProxy);
}
