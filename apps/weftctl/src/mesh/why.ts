// `weftctl why WORKLOAD URL [-H 'name: value']...`: where the workload's proxy would send that
// request, and why. The proxy answers itself (its admin port's /debug/why runs the request
// path's own listener, route and endpoint decisions, without side effects); this only asks the
// right proxy and prints the answer.
import type { WhyAnswer } from '@weft/proxy';
import type { ProxyState } from '../up/state.ts';
import { adminUrl, NotAnsweringError, proxyOrSay, runningMesh } from './client.ts';

export type { WhyAnswer };

export class WhyUsageError extends Error {}

/** The /debug/why query for a URL and `-H` headers; throws WhyUsageError on what a user can fix. */
export function whyQuery(url: string, headers: readonly string[], method = 'GET'): URLSearchParams {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new WhyUsageError(`${JSON.stringify(url)} is not a URL (e.g. http://reviews:9080/reviews/0)`);
  }
  if (u.protocol !== 'http:') throw new WhyUsageError(`why follows plain HTTP requests (http://...), not ${u.protocol.slice(0, -1)}: the proxy routes TLS by SNI alone`);
  if (u.username || u.password) throw new WhyUsageError('the URL must not carry credentials');
  const q = new URLSearchParams();
  q.set('authority', u.host);
  q.set('path', `${u.pathname}${u.search}`);
  q.set('method', method);
  q.set('port', u.port || '80');
  for (const h of headers) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new WhyUsageError(`-H ${JSON.stringify(h)}: give a header as 'name: value'`);
    q.append('header', `${h.slice(0, colon).trim()}:${h.slice(colon + 1).trim()}`);
  }
  return q;
}

/** Asks the proxy; an answer other than 200 becomes an Error with the proxy's reason. */
export async function askProxy(proxy: ProxyState, query: URLSearchParams): Promise<WhyAnswer> {
  const url = adminUrl(proxy, `/debug/why?${query}`);
  let r: Response;
  try {
    r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    const cause = (e as Error).cause;
    throw new NotAnsweringError(url, cause instanceof Error ? cause.message : (e as Error).message);
  }
  const text = await r.text();
  if (r.status !== 200) {
    let reason = text.trim();
    try {
      reason = (JSON.parse(text) as { error?: string }).error ?? reason;
    } catch {}
    throw new Error(`the proxy of ${proxy.name}.${proxy.namespace} answered ${r.status}: ${reason.slice(0, 300)}`);
  }
  return JSON.parse(text) as WhyAnswer;
}

const directText: Record<string, string> = {
  redirect: 'a redirect',
  direct_response: 'a direct response',
  fault: 'fault injection',
  no_route: 'no route (NR)',
  no_cluster: 'no cluster (NC)',
};

/** The answer as a user reads it: what was decided, then why, step by step. */
export function whyText(a: WhyAnswer, workload: string): string {
  const r = a.request;
  const headers = Object.entries(r.headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}`));
  const rows: [string, string][] = [
    ['listener', a.listener ? `${a.listener}${a.filterChain ? ` (filter chain ${a.filterChain})` : ''}` : '-'],
    ['route config', a.routeConfig ?? '-'],
    ['virtual host', a.virtualHost ?? '-'],
    ['route', a.route ? `${a.route.name || '(unnamed)'}  match ${JSON.stringify(a.route.match)}` : '-'],
  ];
  if (a.route?.config) rows.push(['from', a.route.config]);
  if (a.weights) rows.push(['weights', a.weights.map((w) => `${w.cluster} ${w.weight}`).join(', ')]);
  rows.push(['cluster', a.cluster ?? '-']);
  rows.push(['endpoint', a.endpoint ? `${a.endpoint.address}:${a.endpoint.port} (${a.endpoint.health}${a.endpoint.locality ? `, ${a.endpoint.locality}` : ''})` : '-']);
  if (a.direct) rows.push(['answered by', `the proxy itself: ${a.direct.status}, ${directText[a.direct.kind] ?? a.direct.kind}`]);
  const head = `${workload} -> ${r.method} http://${r.authority}${r.path}${headers.length > 0 ? `  [${headers.join('; ')}]` : ''}\n\n`;
  const width = Math.max(...rows.map(([k]) => k.length));
  const decided = rows.map(([k, v]) => `  ${k.padEnd(width)}   ${v}\n`).join('');
  const steps = a.why.map((s, i) => `  ${i + 1}. ${s}`).join('\n');
  return `${head}${decided}\nWhy:\n${steps}\n`;
}

export async function why(
  o: { stateDir: string; workload: string; url: string; headers: readonly string[]; format: 'text' | 'json' },
  io: { out: (s: string) => void; err: (s: string) => void },
): Promise<number> {
  const query = whyQuery(o.url, o.headers);
  const s = await runningMesh(o.stateDir);
  const proxy = proxyOrSay(s, o.workload, io);
  if (!proxy) return 1;
  let answer: WhyAnswer;
  try {
    answer = await askProxy(proxy, query);
  } catch (e) {
    if (e instanceof NotAnsweringError) throw e;
    io.err(`weftctl: ${(e as Error).message}\n`);
    return 1;
  }
  io.out(o.format === 'json' ? `${JSON.stringify(answer, null, 2)}\n` : whyText(answer, proxy.name));
  return 0;
}
