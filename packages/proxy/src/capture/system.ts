// Running the host tools (iptables-restore, iptables-save, ip) and structured logging for the
// one-shot weft-iptables command.
import { spawn } from 'node:child_process';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one program with arguments (never through a shell) and optional standard input. */
export type CommandRunner = (command: string, args: string[], input?: string) => Promise<CommandResult>;

/**
 * Runs commands on this machine. With `networkNamespace` (a path such as /var/run/netns/pod or
 * /proc/PID/ns/net), each command runs inside that network namespace through nsenter.
 */
export function systemRunner(networkNamespace?: string): CommandRunner {
  return (command, args, input) =>
    new Promise((resolve) => {
      const argv = networkNamespace ? ['nsenter', `--net=${networkNamespace}`, '--', command, ...args] : [command, ...args];
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      child.on('error', (err) => resolve({ code: 127, stdout, stderr: `${stderr}${err.message}` }));
      child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
      child.stdin.on('error', () => {});
      child.stdin.end(input ?? '');
    });
}

export type LogFields = Record<string, unknown>;

export interface CaptureLogger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** One JSON object per line: `{"time","level","scope","msg",...fields}`, the workspace's log shape. */
export function jsonLogger(sink: (line: string) => void, scope = 'weft-iptables'): CaptureLogger {
  const write = (level: string, msg: string, fields?: LogFields): void => {
    sink(JSON.stringify({ time: new Date().toISOString(), level, scope, msg, ...fields }));
  };
  return {
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
  };
}
