// Traces: the recent ones the dashboard received, and one as a waterfall of its spans.
import type { Span, TraceDetail, TraceSummary } from './api.ts';
import { formatMs } from './graph-model.ts';
import { html } from './html.ts';
import { usePoll } from './poll.ts';
import { href } from './route.ts';
import { waterfall } from './waterfall.ts';

export function TracesView({ traceId }: { traceId?: string | undefined }) {
  return traceId ? html`<${TraceWaterfall} traceId=${traceId} />` : html`<${TraceList} />`;
}

function TraceList() {
  const polled = usePoll<{ traces: TraceSummary[] }>('/api/traces', 3000);
  const traces = [...(polled.data?.traces ?? [])].sort((a, b) => b.startMs - a.startMs);
  return html`<section class="view" data-testid="traces-view">
    <h2>Recent traces</h2>
    ${polled.error ? html`<div class="error-box" role="alert">${polled.data ? 'Showing the last answer; ' : ''}${polled.error}</div>` : null}
    ${polled.data ? null : html`<p class="muted">loading…</p>`}
    ${polled.data && traces.length === 0 ? html`<p class="muted">No trace received yet.</p>` : null}
    <table data-testid="trace-table">
      <thead><tr><th>Started</th><th>Root</th><th>Service</th><th>Spans</th><th>Duration</th></tr></thead>
      <tbody>
        ${traces.map(
          (t) => html`<tr key=${t.traceId} data-testid="trace-row" data-trace=${t.traceId} data-spans=${String(t.spans)} class=${t.error ? 'error' : ''}>
            <td>${new Date(t.startMs).toLocaleTimeString()}</td>
            <td><a href=${href('traces', t.traceId)}>${t.root}</a></td>
            <td>${t.service}</td>
            <td class="num">${t.spans}</td>
            <td class="num">${formatMs(t.durationMs)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

function TraceWaterfall({ traceId }: { traceId: string }) {
  // Spans of one trace arrive in batches from several proxies: polled until it is complete.
  const polled = usePoll<TraceDetail>(`/api/traces/${encodeURIComponent(traceId)}`, 3000);
  const w = waterfall(polled.data?.spans ?? []);
  return html`<section class="view" data-testid="trace-detail">
    <p><a href=${href('traces')}>← Traces</a></p>
    <h2>Trace <code>${traceId}</code></h2>
    ${polled.error ? html`<div class="error-box" role="alert">${polled.data ? 'Showing the last answer; ' : ''}${polled.error}</div>` : null}
    ${polled.data ? html`<p class="muted">${w.rows.length} spans, ${formatMs(w.durationMs)}</p>` : polled.error ? null : html`<p class="muted">loading…</p>`}
    <div class="waterfall" data-testid="waterfall">
      ${w.rows.length > 0
        ? html`<div class="span-row axis" aria-hidden="true">
            <div class="span-name muted">service / span</div>
            <div class="span-track">${[0, 25, 50, 75, 100].map((pct) => html`<span class="tick" style=${`left:${pct}%`}>${formatMs((w.durationMs * pct) / 100)}</span>`)}</div>
            <div class="span-ms muted">duration</div>
          </div>`
        : null}
      ${w.rows.map(
        (r) => html`<div class="span-row" key=${r.span.spanId} data-testid="span-row" data-span=${r.span.spanId} data-parent=${r.span.parentSpanId ?? ''} data-depth=${String(r.depth)} data-service=${r.span.service}>
          <div class="span-name" style=${`padding-left:${r.depth * 16 + 4}px`} title=${spanTitle(r.span)}><b>${r.span.service}</b> ${r.span.name}</div>
          <div class="span-track"><div class=${`span-bar${isError(r.span.status) ? ' error' : ''}`} style=${`left:${r.offsetPct}%;width:${r.widthPct}%`}></div></div>
          <div class="span-ms num">${formatMs(r.durationMs)}</div>
        </div>`,
      )}
    </div>
  </section>`;
}

function spanTitle(s: Span): string {
  const attrs = Object.entries(s.attributes ?? {})
    .slice(0, 12)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return [`${s.service}: ${s.name}`, ...(s.kind !== undefined ? [`kind ${String(s.kind)}`] : []), ...attrs].join('\n');
}

function isError(status: unknown): boolean {
  if (typeof status === 'string') return /error/i.test(status);
  if (typeof status === 'object' && status !== null) {
    const code = (status as { code?: unknown }).code;
    return code === 2 || code === 'STATUS_CODE_ERROR' || code === 'ERROR';
  }
  return false;
}
