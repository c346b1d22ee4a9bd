// Proxies: per proxy and xDS type, the sync status, the last ACK and NACK, and a NACK's reason.
import type { ProxyInfo, XdsTypeState } from './api.ts';
import { html } from './html.ts';
import { usePoll } from './poll.ts';

// Envoy's order of the types (clusters before the listeners and routes that name them), by the
// type URL's last part or the short name.
const order = ['CLUSTER', 'CDS', 'CLUSTERLOADASSIGNMENT', 'EDS', 'LISTENER', 'LDS', 'ROUTECONFIGURATION', 'RDS', 'SECRET', 'SDS'];

function rank(t: string): number {
  const i = order.indexOf(t.toUpperCase());
  return i < 0 ? order.length : i;
}

export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

function TypeCell({ t }: { t: XdsTypeState | undefined }) {
  if (!t) return html`<td class="muted">–</td>`;
  const cls = t.status === 'ACKED' || t.status === 'SYNCED' ? 'good' : t.status === 'NACKED' ? 'bad' : 'warn';
  return html`<td data-testid="xds-cell" data-status=${t.status}>
    <span class=${`badge ${cls}`}>${t.status}</span>
    ${t.lastAckAt ? html`<div class="muted small" title=${t.lastAckAt}>ACK ${ago(t.lastAckAt)}</div>` : null}
    ${t.lastNackAt ? html`<div class="bad small" title=${t.lastNackAt}>NACK ${ago(t.lastNackAt)}</div>` : null}
    ${t.nackReason ? html`<div class="bad small" data-testid="nack-reason">${t.nackReason}</div>` : null}
  </td>`;
}

export function ProxiesView() {
  const polled = usePoll<{ proxies: ProxyInfo[] }>('/api/proxies', 3000);
  const proxies = [...(polled.data?.proxies ?? [])].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.workload.localeCompare(b.workload));
  const types = [...new Set(proxies.flatMap((p) => Object.keys(p.types)))].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return html`<section class="view" data-testid="proxies-view">
    <h2>Proxies</h2>
    ${polled.error ? html`<div class="error-box" role="alert">${polled.data ? 'Showing the last answer; ' : ''}${polled.error}</div>` : null}
    ${polled.data ? null : html`<p class="muted">loading…</p>`}
    ${polled.data && proxies.length === 0 ? html`<p class="muted">No proxy is connected.</p>` : null}
    <table data-testid="proxy-table">
      <thead><tr><th>Proxy</th><th>Namespace</th>${types.map((t) => html`<th key=${t}>${t}</th>`)}</tr></thead>
      <tbody>
        ${proxies.map((p) => html`<tr key=${p.id} data-testid="proxy-row" data-proxy=${p.id}><td><b>${p.workload}</b><div class="muted small">${p.id}</div></td><td>${p.namespace}</td>${types.map((t) => html`<${TypeCell} key=${t} t=${p.types[t]} />`)}</tr>`)}
      </tbody>
    </table>
  </section>`;
}
