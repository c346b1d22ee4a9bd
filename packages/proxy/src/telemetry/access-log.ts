// Envoy's file access logger (envoy.access_loggers.file) on HTTP connection managers and tcp_proxy:
// the format (text with %COMMAND% operators, or JSON; access-log-format.ts) is compiled once per
// chain; each finished request or connection becomes one line. Lines go to
// the file (`/dev/stdout` is the process's standard output, apart from the proxy's own JSON logs
// on stderr), buffered and flushed every 250 ms as Envoy flushes its log files periodically.
import { createWriteStream, type WriteStream } from 'node:fs';
import { type AccessLog__Output, decodeAny, type FileAccessLog__Output, TypeUrl } from '@weft/xds';
import type { ConnectionManagerFilterFactory, FilterHeaders, HttpFilter, HttpFilterContext, HttpStreamHooks, NetworkFilter, TcpChainFilterFactory, TcpConnectionHooks, TcpFilterContext } from '../core/filters.ts';
import { envoyDefaultFormat, jsonFormatter, type LogEntry, type LogFormatter, textFormatter } from './access-log-format.ts';
import { structToJson } from './workload.ts';

/** Where lines go: buffered, flushed every `flushMs` and on `flushAll()`. */
class FileSink {
  readonly path: string;
  #buffer: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #stream: WriteStream | undefined;
  readonly #flushMs: number;
  constructor(path: string, flushMs: number) {
    this.path = path;
    this.#flushMs = flushMs;
  }
  write(line: string): void {
    this.#buffer.push(line);
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), this.#flushMs);
      this.#timer.unref();
    }
  }
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#buffer.length === 0) return;
    const text = this.#buffer.join('');
    this.#buffer = [];
    if (this.path === '/dev/stdout') process.stdout.write(text);
    else if (this.path === '/dev/stderr') process.stderr.write(text);
    else {
      this.#stream ??= createWriteStream(this.path, { flags: 'a' }).on('error', () => {});
      this.#stream.write(text);
    }
  }
}

/** The access log sinks of one proxy (one per path, shared by every chain logging there). */
export class AccessLogSinks {
  readonly #sinks = new Map<string, FileSink>();
  readonly #flushMs: number;
  constructor(flushMs = 250) {
    this.#flushMs = flushMs;
  }
  sink(path: string): (line: string) => void {
    let s = this.#sinks.get(path);
    if (!s) {
      s = new FileSink(path, this.#flushMs);
      this.#sinks.set(path, s);
    }
    const sink = s;
    return (line) => sink.write(line);
  }
  flushAll(): void {
    for (const s of this.#sinks.values()) s.flush();
  }
}

/** One configured access log: its formatter and where it writes. */
export interface CompiledAccessLog {
  readonly path: string;
  readonly format: LogFormatter;
}

/** Compiles an `access_log` entry; throws (the NACK reason) for a logger or filter Weft does not implement. */
export function compileAccessLog(al: AccessLog__Output, where: string): CompiledAccessLog {
  const type = al.typed_config?.type_url;
  if (type !== TypeUrl.FileAccessLog) throw new Error(`${where}: access logger ${JSON.stringify(al.name)}${type ? ` (${type})` : ''} is not supported (only envoy.access_loggers.file)`);
  if (al.filter) throw new Error(`${where}: access log ${JSON.stringify(al.name)}: access log filters are not supported`);
  const f: FileAccessLog__Output = decodeAny(al.typed_config!, TypeUrl.FileAccessLog);
  if (!f.path) throw new Error(`${where}: access log ${JSON.stringify(al.name)} has no path`);
  const here = `${where}: access log ${f.path}`;
  let format: LogFormatter;
  switch (f.access_log_format) {
    case 'format':
      format = textFormatter(f.format || envoyDefaultFormat, false, here);
      break;
    case 'json_format':
    case 'typed_json_format':
      format = jsonFormatter(structToJson(f[f.access_log_format]), false, here);
      break;
    case 'log_format': {
      const lf = f.log_format!;
      if (lf.format === 'json_format') format = jsonFormatter(structToJson(lf.json_format), lf.omit_empty_values, here);
      else {
        const text = lf.format === 'text_format' ? (lf.text_format ?? '') : lf.text_format_source?.inline_string;
        if (lf.format === 'text_format_source' && lf.text_format_source?.specifier !== 'inline_string') {
          throw new Error(`${here}: text_format_source must be an inline_string`);
        }
        format = textFormatter(text || envoyDefaultFormat, lf.omit_empty_values, here);
      }
      break;
    }
    default:
      format = textFormatter(envoyDefaultFormat, false, here);
  }
  return { path: f.path, format };
}

class HttpAccessLogHooks implements HttpStreamHooks {
  readonly #logs: readonly { log: CompiledAccessLog; write: (line: string) => void }[];
  #responseHeaders: FilterHeaders | undefined;
  constructor(logs: readonly { log: CompiledAccessLog; write: (line: string) => void }[]) {
    this.#logs = logs;
  }
  onResponse(_ctx: HttpFilterContext, _status: number, headers: FilterHeaders): void {
    this.#responseHeaders = headers;
  }
  onComplete(ctx: HttpFilterContext): void {
    const e: LogEntry = {
      record: ctx.record,
      connection: ctx.connection,
      method: ctx.method,
      path: ctx.path,
      authority: ctx.authority,
      scheme: ctx.scheme,
      requestHeaders: ctx.requestHeaders,
      responseHeaders: this.#responseHeaders,
    };
    for (const l of this.#logs) l.write(l.log.format(e));
  }
}

class TcpAccessLogHooks implements TcpConnectionHooks {
  readonly #logs: readonly { log: CompiledAccessLog; write: (line: string) => void }[];
  constructor(logs: readonly { log: CompiledAccessLog; write: (line: string) => void }[]) {
    this.#logs = logs;
  }
  onClose(ctx: TcpFilterContext): void {
    const e: LogEntry = { record: ctx.record, connection: ctx.connection };
    for (const l of this.#logs) l.write(l.log.format(e));
  }
}

/** Connection-manager filter for `access_log` on HTTP connection managers (none when it has none). */
export function httpAccessLogFactory(sinks: AccessLogSinks): ConnectionManagerFilterFactory {
  return (hcm, site): HttpFilter | undefined => {
    if (!hcm.access_log || hcm.access_log.length === 0) return undefined;
    const logs = hcm.access_log.map((al) => {
      const log = compileAccessLog(al, site.where);
      return { log, write: sinks.sink(log.path) };
    });
    return { name: 'envoy.access_loggers.file', begin: () => new HttpAccessLogHooks(logs) };
  };
}

/** TCP-chain filter for tcp_proxy's `access_log`. */
export function tcpAccessLogFactory(sinks: AccessLogSinks): TcpChainFilterFactory {
  return (site): NetworkFilter | undefined => {
    const als = site.tcpProxy?.access_log;
    if (!als || als.length === 0) return undefined;
    const logs = als.map((al) => {
      const log = compileAccessLog(al, site.where);
      return { log, write: sinks.sink(log.path) };
    });
    return { name: 'envoy.access_loggers.file', begin: () => new TcpAccessLogHooks(logs) };
  };
}
