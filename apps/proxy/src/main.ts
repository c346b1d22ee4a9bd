// weft-proxy: the sidecar. Flags and environment -> startProxy, until SIGTERM or SIGINT.
import { runProxyCommand, startProxy } from '@weft/proxy';

export function main(argv: readonly string[]): Promise<number> {
  return runProxyCommand('weft-proxy', argv, 'sidecar', startProxy);
}
