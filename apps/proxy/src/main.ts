// weft-proxy: the sidecar. Flags and environment -> startProxy, until SIGTERM or SIGINT.
import { runDrainCommand, runProxyCommand, runWaitCommand, startProxy } from '@weft/proxy';

export function main(argv: readonly string[]): Promise<number> {
  // `weft-proxy wait`: the postStart hook of an injected pod that holds its application until the proxy is ready.
  if (argv[0] === 'wait') return runWaitCommand(argv.slice(1), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
  // `weft-proxy drain`: the preStop hook of a native sidecar (pilot-agent's POST /drain).
  if (argv[0] === 'drain') return runDrainCommand(argv.slice(1), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
  return runProxyCommand('weft-proxy', argv, 'sidecar', startProxy);
}
