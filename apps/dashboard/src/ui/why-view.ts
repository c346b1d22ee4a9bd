// "Why did this request go there": the source workload's own proxy answers (its /debug/why, through
// /api/why), running the route selection and endpoint choice that decide real requests. The UI only
// asks and shows.
import { useEffect, useState } from 'preact/hooks';
import { getJson, type ProxyInfo, type WhyAnswer } from './api.ts';
import { html } from './html.ts';
import { usePoll } from './poll.ts';
import type { Route } from './route.ts';

export interface WhyRequest {
  source: string;
  authority: string;
  path: string;
  method: string;
  /** One `name: value` a line. */
  headers: string;
}

/** The /api/why query of a request; header lines without a colon are refused with a message. */
export function whyQuery(r: WhyRequest): string {
  return `/api/why?${whyParams(r).toString()}`;
}

/** The request as query parameters (the API's, also the view's own: `#/why?source=..&header=k:v`). */
export function whyParams(r: WhyRequest): URLSearchParams {
  const q = new URLSearchParams({ source: r.source, authority: r.authority.trim(), path: r.path.trim() || '/', method: r.method });
  for (const line of r.headers.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const i = t.indexOf(':');
    if (i <= 0) throw new Error(`header "${t}" has no name: write it as name: value`);
    q.append('header', `${t.slice(0, i).trim().toLowerCase()}:${t.slice(i + 1).trim()}`);
  }
  return q;
}

/** A request from the view's query (a shared link), the defaults for what it does not say. */
export function requestOf(query: URLSearchParams): WhyRequest {
  return {
    source: query.get('source') ?? '',
    authority: query.get('authority') ?? 'reviews:9080',
    path: query.get('path') ?? '/reviews/0',
    method: query.get('method') ?? 'GET',
    headers: query
      .getAll('header')
      .map((h) => h.replace(':', ': '))
      .join('\n'),
  };
}

const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];

export function WhyView({ route }: { route: Route }) {
  const proxies = usePoll<{ proxies: ProxyInfo[] }>('/api/proxies', 10_000);
  const sources = [...new Set((proxies.data?.proxies ?? []).map((p) => `${p.namespace}/${p.workload}`))].sort();
  const [req, setReq] = useState<WhyRequest>(() => requestOf(route.query));
  const [answer, setAnswer] = useState<WhyAnswer | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const source = req.source || sources.find((s) => s.endsWith('/productpage-v1')) || sources[0] || '';

  const set = (k: keyof WhyRequest) => (e: Event) => setReq({ ...req, [k]: (e.target as HTMLInputElement).value });
  const ask = async (r: WhyRequest) => {
    setBusy(true);
    setError(undefined);
    try {
      // The address bar keeps the question (a link that asks it again), without a new history entry.
      history.replaceState(null, '', `#/why?${whyParams(r).toString()}`);
      setAnswer(await getJson<WhyAnswer>(whyQuery(r), 15_000));
    } catch (err) {
      setAnswer(undefined);
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const submit = (e: Event) => {
    e.preventDefault();
    void ask({ ...req, source });
  };
  // A link that names a source asks at once.
  useEffect(() => {
    if (route.query.get('source')) void ask(requestOf(route.query));
  }, []);

  return html`<section class="view" data-testid="why-view">
    <h2>Why did this request go there?</h2>
    <p class="muted">The source workload's proxy runs its own route selection and endpoint choice on the request (nothing is sent).</p>
    <form class="why-form" data-testid="why-form" onSubmit=${submit}>
      <label>Source workload <select data-testid="why-source" value=${source} onChange=${set('source')}>
        ${sources.length === 0 ? html`<option value="">${proxies.error ? 'no proxies (see the banner)' : 'loading…'}</option>` : null}
        ${sources.map((s) => html`<option key=${s} value=${s}>${s}</option>`)}
      </select></label>
      <label>Method <select data-testid="why-method" value=${req.method} onChange=${set('method')}>${methods.map((m) => html`<option key=${m} value=${m}>${m}</option>`)}</select></label>
      <label>Authority <input data-testid="why-authority" value=${req.authority} onInput=${set('authority')} placeholder="reviews:9080" /></label>
      <label>Path <input data-testid="why-path" value=${req.path} onInput=${set('path')} placeholder="/" /></label>
      <label class="wide"><span>Headers (one <code>name: value</code> a line)</span> <textarea data-testid="why-headers" rows="3" value=${req.headers} onInput=${set('headers')} placeholder="end-user: jason"></textarea></label>
      <button type="submit" data-testid="why-submit" disabled=${busy || !source}>${busy ? 'Asking…' : 'Ask the proxy'}</button>
    </form>
    ${error ? html`<div class="error-box" role="alert" data-testid="why-error">${error}</div>` : null}
    ${answer ? html`<${WhyResult} a=${answer} />` : null}
  </section>`;
}

function WhyResult({ a }: { a: WhyAnswer }) {
  const match = a.route?.match === undefined ? '' : typeof a.route.match === 'string' ? a.route.match : JSON.stringify(a.route.match);
  return html`<div class="card why-result" data-testid="why-result">
    <table class="kv">
      <tbody>
        ${a.source ? html`<tr><th>Source</th><td>${a.source}</td></tr>` : null}
        ${a.listener ? html`<tr><th>Listener</th><td><code>${a.listener}</code></td></tr>` : null}
        ${a.routeConfig ? html`<tr><th>Route config</th><td><code>${a.routeConfig}</code></td></tr>` : null}
        ${a.virtualHost ? html`<tr><th>Virtual host</th><td><code>${a.virtualHost}</code></td></tr>` : null}
        <tr><th>Route</th><td data-testid="why-route"><code>${a.route ? a.route.name || '(unnamed)' : '(none)'}</code> ${match ? html`<span class="muted">${match}</span>` : null}</td></tr>
        <tr><th>Cluster</th><td><code data-testid="why-cluster">${a.cluster ?? '(none)'}</code></td></tr>
        <tr><th>Endpoint</th><td data-testid="why-endpoint">${a.endpoint ? html`<code>${a.endpoint.address}:${a.endpoint.port}</code> ${a.endpoint.health ?? ''} ${a.endpoint.locality ? html`<span class="muted">${JSON.stringify(a.endpoint.locality)}</span>` : null}` : '(none)'}</td></tr>
        ${a.weights ? html`<tr><th>Weights</th><td><code>${JSON.stringify(a.weights)}</code></td></tr>` : null}
        ${a.direct ? html`<tr><th>Answered by the proxy</th><td data-testid="why-direct">${JSON.stringify(a.direct)}</td></tr>` : null}
        ${a.error ? html`<tr><th>Error</th><td class="bad">${a.error}</td></tr>` : null}
      </tbody>
    </table>
    ${a.why && a.why.length > 0 ? html`<h3>Steps</h3><ol data-testid="why-steps">${a.why.map((s, i) => html`<li key=${i}>${s}</li>`)}</ol>` : null}
    <details><summary>The proxy's answer</summary><pre>${JSON.stringify(a, null, 2)}</pre></details>
  </div>`;
}
