// Structured logs: one JSON object per line, `{"time","level","scope","msg",...fields}` (the same
// shape as Weft's own processes, so one reader handles both). The services write to stdout.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** Where log lines go: a function taking one line (no newline), or `false` for none. */
export type LogSink = ((line: string) => void) | false;

function serialize(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, ...('code' in value ? { code: value.code } : {}) };
  return value;
}

export function createLogger(scope: string, sink: LogSink = (line) => process.stdout.write(`${line}\n`), base: LogFields = {}): Logger {
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (sink === false) return;
    const record: LogFields = { time: new Date().toISOString(), level, scope, msg };
    for (const [k, v] of Object.entries(base)) record[k] = serialize(v);
    if (fields) for (const [k, v] of Object.entries(fields)) record[k] = serialize(v);
    sink(JSON.stringify(record));
  };
  return {
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
  };
}
