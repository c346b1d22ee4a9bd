// For tests of weftctl and of the suites that drive it: one command run in-process, its output kept.
import { main } from './main.ts';

export interface WeftctlRun {
  code: number;
  out: string;
  err: string;
}

/** Runs `weftctl <args>` in this process (with `--state-dir stateDir` when given) and keeps what it printed. */
export async function runWeftctlCommand(args: readonly string[], stateDir?: string): Promise<WeftctlRun> {
  let out = '';
  let err = '';
  const code = await main([...args, ...(stateDir ? ['--state-dir', stateDir] : [])], {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err };
}
