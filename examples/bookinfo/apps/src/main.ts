// The `bookinfo` command: runs one BookInfo service until SIGTERM or SIGINT.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { checkProxyUrl, type ProxySettings, proxyFromEnv } from './client.ts';
import { checkUpstreams, upstreamsFromEnv } from './config.ts';
import { startDetails } from './details.ts';
import { createLogger, type LogSink } from './log.ts';
import { startProductpage } from './productpage.ts';
import { type RatingsVersion, ratingsVersions, startRatings } from './ratings.ts';
import { startReviews } from './reviews.ts';
import type { RunningService } from './server.ts';

export const services = ['productpage', 'details', 'reviews', 'ratings'] as const;
export type ServiceName = (typeof services)[number];

const versions: Record<ServiceName, readonly string[]> = {
  productpage: ['v1'],
  details: ['v1', 'v2'],
  reviews: ['v1', 'v2', 'v3'],
  ratings: ratingsVersions,
};

export function usage(): string {
  return `bookinfo: one service of the BookInfo sample application

Usage:
  bookinfo --service productpage|details|reviews|ratings [--version V] [options]

Options:
  --service NAME      the service to run (env SERVICE)
  --version V         its version (env SERVICE_VERSION; default v1): details v1|v2,
                      reviews v1 (no ratings) | v2 (black stars) | v3 (red stars),
                      ratings v1|v-faulty|v-delayed|v-unavailable|v-unhealthy
  --address ADDR      address to listen on (env BIND_ADDRESS; default :: , every address)
  --port PORT         port to listen on (env PORT; default 9080)
  --http-proxy URL    send calls to other services through this HTTP proxy, e.g. the
                      sidecar's outbound port http://127.0.0.14:15001 (env http_proxy, HTTP_PROXY)
  --no-proxy LIST     hosts to call directly (env no_proxy, NO_PROXY)
  --pod-name NAME     the instance's name (env HOSTNAME, as Kubernetes sets it; default the
                      machine's name): reviews shows it as "Reviews served by"
  --drain-ms MS       on SIGTERM, let requests in flight finish for this long (default 5000)
  -h, --help          this text

Environment, as the original services read it:
  DETAILS_HOSTNAME, DETAILS_SERVICE_PORT, REVIEWS_HOSTNAME, REVIEWS_SERVICE_PORT,
  RATINGS_HOSTNAME, RATINGS_SERVICE_PORT, SERVICES_DOMAIN   peers: http://HOST[.DOMAIN]:PORT
  ENABLE_RATINGS, STAR_COLOR, CLUSTER_NAME                  reviews
  ENABLE_EXTERNAL_BOOK_SERVICE, DO_NOT_ENCRYPT              details
  FLOOD_FACTOR, SESSION_SECRET                              productpage

Logs are JSON lines on stdout. SIGTERM and SIGINT drain and stop.`;
}

export class UsageError extends Error {}

function bool(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new UsageError(`${name} must be true or false, not ${JSON.stringify(value)}`);
}

function int(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`);
  return n;
}

export interface Command {
  service: ServiceName;
  version: string;
  drainMs: number;
  /** Starts the service; `log` overrides where its log lines go (default stdout). */
  start(log?: LogSink): Promise<RunningService>;
}

/** Parses the command line and environment into the service to start; throws UsageError. */
export function parseCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Command | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        service: { type: 'string' },
        version: { type: 'string' },
        address: { type: 'string' },
        port: { type: 'string' },
        'http-proxy': { type: 'string' },
        'no-proxy': { type: 'string' },
        'drain-ms': { type: 'string' },
        'pod-name': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const str = (k: string) => values[k] as string | undefined;
  const service = str('service') ?? env.SERVICE;
  if (!service) throw new UsageError('--service is required: productpage, details, reviews or ratings');
  if (!(services as readonly string[]).includes(service)) throw new UsageError(`--service must be productpage, details, reviews or ratings, not ${JSON.stringify(service)}`);
  const name = service as ServiceName;
  const version = str('version') ?? env.SERVICE_VERSION ?? 'v1';
  if (!versions[name].includes(version)) {
    const why = name === 'ratings' && version === 'v2' ? ' (v2 reads ratings from a database, which this build does not include)' : '';
    throw new UsageError(`${name} has no version ${JSON.stringify(version)}${why}; it has ${versions[name].join(', ')}`);
  }
  const address = str('address') ?? env.BIND_ADDRESS ?? '::';
  const port = int('--port', str('port') ?? env.PORT, 0, 65535) ?? 9080;
  const drainMs = int('--drain-ms', str('drain-ms'), 0, 3_600_000) ?? 5000;
  const proxy: ProxySettings = proxyFromEnv(env);
  if (str('http-proxy') !== undefined) proxy.httpProxy = str('http-proxy')!;
  if (str('no-proxy') !== undefined) proxy.noProxy = str('no-proxy')!;
  if (proxy.httpProxy) {
    const problem = checkProxyUrl(proxy.httpProxy);
    if (problem) throw new UsageError(`--http-proxy: ${problem}`);
  } else delete proxy.httpProxy;
  const upstreams = upstreamsFromEnv(env);
  try {
    checkUpstreams(upstreams);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const listen = { address, port };
  const logTo = (log: LogSink | undefined) => (log !== undefined ? { log } : {});

  let start: (log?: LogSink) => Promise<RunningService>;
  switch (name) {
    case 'productpage': {
      const floodFactor = int('FLOOD_FACTOR', env.FLOOD_FACTOR, 0, 10_000);
      start = (log) =>
        startProductpage({
          ...listen,
          ...logTo(log),
          version,
          upstreams,
          proxy,
          ...(floodFactor !== undefined ? { floodFactor } : {}),
          ...(env.SESSION_SECRET ? { sessionSecret: env.SESSION_SECRET } : {}),
        });
      break;
    }
    case 'details': {
      const external = bool('ENABLE_EXTERNAL_BOOK_SERVICE', env.ENABLE_EXTERNAL_BOOK_SERVICE);
      const plain = bool('DO_NOT_ENCRYPT', env.DO_NOT_ENCRYPT);
      start = (log) => startDetails({ ...listen, ...logTo(log), version, proxy, ...(external !== undefined ? { externalBookService: external } : {}), ...(plain !== undefined ? { doNotEncrypt: plain } : {}) });
      break;
    }
    case 'reviews': {
      const enableRatings = bool('ENABLE_RATINGS', env.ENABLE_RATINGS);
      start = (log) =>
        startReviews({
          ...listen,
          ...logTo(log),
          version,
          proxy,
          ratings: upstreams.ratings,
          podName: str('pod-name') || env.HOSTNAME || hostname(),
          ...(env.CLUSTER_NAME ? { clusterName: env.CLUSTER_NAME } : {}),
          ...(enableRatings !== undefined ? { enableRatings } : {}),
          ...(env.STAR_COLOR ? { starColor: env.STAR_COLOR } : {}),
        });
      break;
    }
    case 'ratings':
      start = (log) => startRatings({ ...listen, ...logTo(log), version: version as RatingsVersion });
      break;
  }
  return { service: name, version, drainMs, start };
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let cmd: Command | 'help';
  try {
    cmd = parseCommand(argv, env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bookinfo: ${err.message}\n\n${usage()}\n`);
      return 2;
    }
    throw err;
  }
  if (cmd === 'help') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const log = createLogger(cmd.service, undefined, { version: cmd.version });
  let running: RunningService;
  try {
    running = await cmd.start();
  } catch (err) {
    log.error('cannot start', { error: err });
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      log.info('signal', { signal });
      void running.close(cmd.drainMs).then(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}
