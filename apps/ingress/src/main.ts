// weft-ingress: the same proxy as a gateway (`router`): pilot sends it a listener per Gateway
// server port, selected by this proxy's labels. Flags and environment -> startProxy.
import { runProxyCommand, startProxy } from '@weft/proxy';

export function main(argv: readonly string[]): Promise<number> {
  return runProxyCommand('weft-ingress', argv, 'router', startProxy);
}
