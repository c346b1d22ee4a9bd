// Structured logs: one JSON object per line, `{"time","level","scope","msg",...fields}`.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  with(fields: LogFields): Logger;
}

export interface LoggerOptions {
  scope: string;
  /** Lines below this level are dropped; default `info`, or `WEFT_LOG_LEVEL`. */
  level?: LogLevel;
  /** Where lines go (without the trailing newline added for streams); default stderr. */
  sink?: (line: string) => void;
  /** Fields added to every line. */
  fields?: LogFields;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function envLevel(): LogLevel | undefined {
  const v = process.env.WEFT_LOG_LEVEL;
  return v === 'debug' || v === 'info' || v === 'warn' || v === 'error' ? v : undefined;
}

function serialize(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, ...('code' in value ? { code: value.code } : {}) };
  if (typeof value === 'bigint') return value.toString();
  return value;
}

export function createLogger(options: LoggerOptions): Logger {
  const min = rank[options.level ?? envLevel() ?? 'info'];
  const sink = options.sink ?? ((line: string) => process.stderr.write(`${line}\n`));
  const make = (base: LogFields): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
      if (rank[level] < min) return;
      const record: LogFields = { time: new Date().toISOString(), level, scope: options.scope, msg };
      for (const [k, v] of Object.entries(base)) record[k] = serialize(v);
      if (fields) for (const [k, v] of Object.entries(fields)) record[k] = serialize(v);
      sink(JSON.stringify(record));
    };
    return {
      debug: (msg, fields) => emit('debug', msg, fields),
      info: (msg, fields) => emit('info', msg, fields),
      warn: (msg, fields) => emit('warn', msg, fields),
      error: (msg, fields) => emit('error', msg, fields),
      with: (fields) => make({ ...base, ...fields }),
    };
  };
  return make(options.fields ?? {});
}

/** A logger that writes nothing (the default of library objects constructed without one). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  with: () => silentLogger,
};
