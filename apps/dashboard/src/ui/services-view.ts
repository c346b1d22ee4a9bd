// Services: the list, and per service the config that applies to it (VirtualServices and
// DestinationRules with the file and line they came from), its endpoints, policies and problems.
import type { ServiceDetail, ServiceSummary, SourceRef } from './api.ts';
import { html } from './html.ts';
import { usePoll } from './poll.ts';
import { href } from './route.ts';

export function sourceText(s: SourceRef | { file: string; line?: number } | undefined): string {
  if (!s?.file) return '(no source)';
  return s.line === undefined ? s.file : `${s.file}:${s.line}`;
}

/** The file:line, and where weftd read it from when that is another file. */
function SourceNote({ s, testid }: { s: SourceRef | undefined; testid: string }) {
  return html`<code class="source" data-testid=${testid}>${sourceText(s)}</code>${s?.configFile ? html` <span class="muted small" title="the copy weftd reads">(read from <code>${sourceText(s.configFile)}</code>)</span>` : null}${s?.origin ? html` <span class="muted small">${s.origin}</span>` : null}`;
}

export function ServicesView({ host }: { host?: string | undefined }) {
  return host ? html`<${ServiceDetailView} host=${host} />` : html`<${ServiceList} />`;
}

function ServiceList() {
  const polled = usePoll<{ services: ServiceSummary[] }>('/api/services', 5000);
  const services = [...(polled.data?.services ?? [])].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  return html`<section class="view" data-testid="services-view">
    <h2>Services</h2>
    ${polled.error && !polled.data ? html`<div class="error-box" role="alert">${polled.error}</div>` : null}
    ${polled.data ? null : html`<p class="muted">loading…</p>`}
    <table data-testid="service-table">
      <thead><tr><th>Name</th><th>Namespace</th><th>Host</th></tr></thead>
      <tbody>
        ${services.map((s) => html`<tr key=${s.host} data-testid="service-row"><td><a href=${href('services', s.host)}>${s.name}</a></td><td>${s.namespace}</td><td><code>${s.host}</code></td></tr>`)}
      </tbody>
    </table>
  </section>`;
}

/** One entry of a VirtualService's spec.http as the API summarises it; read defensively. */
interface HttpSummary {
  name?: string;
  match?: unknown;
  matches?: unknown;
  route?: Destination[];
  destinations?: Destination[];
  redirect?: unknown;
  directResponse?: unknown;
  fault?: unknown;
}

interface Destination {
  host?: string;
  subset?: string;
  port?: number | { number?: number };
  weight?: number;
  destination?: { host?: string; subset?: string; port?: { number?: number } };
}

function stringMatchText(m: unknown): string {
  if (typeof m !== 'object' || m === null) return String(m);
  return Object.entries(m as Record<string, unknown>)
    .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
    .join(' ');
}

/** One Istio HTTPMatchRequest in words: `uri prefix "/reviews" and header end-user exact "jason"`. */
export function matchText(m: unknown): string {
  if (m === undefined || m === null) return 'any request';
  if (typeof m === 'string') return m;
  if (Array.isArray(m)) return m.length === 0 ? 'any request' : m.map(matchText).join(' or ');
  if (typeof m !== 'object') return String(m);
  const parts: string[] = [];
  for (const [k, v] of Object.entries(m as Record<string, unknown>)) {
    if (k === 'name') continue;
    if ((k === 'headers' || k === 'queryParams' || k === 'withoutHeaders') && typeof v === 'object' && v !== null) {
      for (const [name, sm] of Object.entries(v as Record<string, unknown>)) parts.push(`${k === 'queryParams' ? 'query' : k === 'withoutHeaders' ? 'no header' : 'header'} ${name} ${stringMatchText(sm)}`);
    } else if (['uri', 'scheme', 'method', 'authority'].includes(k)) parts.push(`${k} ${stringMatchText(v)}`);
    else parts.push(`${k} ${JSON.stringify(v)}`);
  }
  return parts.length === 0 ? 'any request' : parts.join(' and ');
}

function destinationText(d: Destination): string {
  const dest = d.destination ?? d;
  const port = typeof dest.port === 'number' ? dest.port : dest.port?.number;
  return `${dest.host ?? '?'}${port ? `:${port}` : ''}${dest.subset ? ` subset ${dest.subset}` : ''}`;
}

function HttpRoutes({ http }: { http: unknown[] | undefined }) {
  if (!http || http.length === 0) return html`<p class="muted">no HTTP routes</p>`;
  return html`<ol class="routes">
    ${http.map((raw, i) => {
      const r = (typeof raw === 'object' && raw !== null ? raw : {}) as HttpSummary;
      const dests = r.route ?? r.destinations ?? [];
      return html`<li key=${i} data-testid="vs-route">
        <span class="muted">${r.name ? `${r.name}: ` : ''}when</span> ${matchText(r.match ?? r.matches)}
        ${dests.length > 0 ? html`<ul>${dests.map((d, j) => html`<li key=${j} data-testid="vs-destination">${destinationText(d)}${d.weight !== undefined ? html` <b>${d.weight}%</b>` : null}</li>`)}</ul>` : null}
        ${r.redirect ? html`<div>redirect ${JSON.stringify(r.redirect)}</div>` : null}
        ${r.directResponse ? html`<div>direct response ${JSON.stringify(r.directResponse)}</div>` : null}
        ${r.fault ? html`<div>fault ${JSON.stringify(r.fault)}</div>` : null}
      </li>`;
    })}
  </ol>`;
}

function labelsText(labels: Record<string, string> | undefined): string {
  return labels ? Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ') : '';
}

function ServiceDetailView({ host }: { host: string }) {
  const polled = usePoll<ServiceDetail>(`/api/services/${encodeURIComponent(host)}`, 3000);
  const d = polled.data;
  return html`<section class="view" data-testid="service-detail">
    <p><a href=${href('services')}>← Services</a></p>
    <h2><code>${host}</code></h2>
    ${polled.error ? html`<div class="error-box" role="alert">${d ? 'Showing the last answer; ' : ''}${polled.error}</div>` : null}
    ${d
      ? html`
      <h3>Problems</h3>
      ${d.problems.length === 0 ? html`<p class="muted" data-testid="no-problems">none</p>` : html`<ul class="problems">${d.problems.map((p, i) => html`<li key=${i} data-testid="problem" data-severity=${p.severity ?? ''}><code>${p.file ?? '?'}:${p.line ?? '?'}</code> ${p.severity ? html`<span class=${`badge ${p.severity === 'error' ? 'bad' : 'warn'}`}>${p.severity}</span> ` : null}${p.kind ? `${p.kind} ${p.name ?? ''}: ` : ''}${p.message}</li>`)}</ul>`}
      <h3>VirtualServices</h3>
      ${d.virtualServices.length === 0 ? html`<p class="muted">none</p>` : null}
      ${d.virtualServices.map(
        (vs) => html`<div class="card" key=${`${vs.namespace}/${vs.name}`} data-testid="virtual-service" data-name=${vs.name}>
          <div><b>${vs.namespace}/${vs.name}</b> <${SourceNote} s=${vs.source} testid="vs-source" /></div>
          <div class="muted">hosts: ${(vs.hosts ?? []).join(', ')}</div>
          <${HttpRoutes} http=${vs.http} />
        </div>`,
      )}
      <h3>DestinationRules</h3>
      ${d.destinationRules.length === 0 ? html`<p class="muted">none</p>` : null}
      ${d.destinationRules.map(
        (dr) => html`<div class="card" key=${`${dr.namespace}/${dr.name}`} data-testid="destination-rule" data-name=${dr.name}>
          <div><b>${dr.namespace}/${dr.name}</b> <${SourceNote} s=${dr.source} testid="dr-source" /></div>
          <ul>${(dr.subsets ?? []).map((s) => html`<li key=${s.name} data-testid="dr-subset">subset <b>${s.name}</b> <span class="muted">${labelsText(s.labels)}</span></li>`)}</ul>
          ${dr.trafficPolicy ? html`<div class="muted">traffic policy: <code>${JSON.stringify(dr.trafficPolicy)}</code></div>` : null}
        </div>`,
      )}
      <h3>Endpoints</h3>
      <table data-testid="endpoint-table">
        <thead><tr><th>Workload</th><th>Address</th><th>Labels</th><th>Health</th></tr></thead>
        <tbody>${d.endpoints.map((e, i) => html`<tr key=${i} data-testid="endpoint-row"><td>${e.workload ?? ''}</td><td><code>${e.address}${e.port ? `:${e.port}` : ''}</code></td><td class="muted">${labelsText(e.labels)}</td><td class=${e.healthy === false ? 'bad' : 'good'}>${e.healthy === false ? 'unhealthy' : e.healthy === true ? 'healthy' : 'unknown'}</td></tr>`)}</tbody>
      </table>
      <h3>Policies</h3>
      ${d.policies.length === 0 ? html`<p class="muted">none</p>` : html`<ul>${d.policies.map((p, i) => html`<li key=${i} data-testid="policy">${p.kind} <b>${p.namespace}/${p.name}</b> <${SourceNote} s=${p.source} testid="policy-source" /></li>`)}</ul>`}
    `
      : polled.error
        ? null
        : html`<p class="muted">loading…</p>`}
  </section>`;
}
