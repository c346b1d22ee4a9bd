// The page: navigation, a banner per unreachable source (the data shown stays the last good one),
// and the current view inside an error boundary, so that a view that throws shows its error
// instead of a blank page.
import { Component, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { type SourceState, status } from './api.ts';
import { GraphView } from './graph-view.ts';
import { html } from './html.ts';
import { ProxiesView } from './proxies-view.ts';
import { href, type Route, useRoute } from './route.ts';
import { ServicesView } from './services-view.ts';
import { TracesView } from './traces-view.ts';
import { WhyView } from './why-view.ts';

const sourceNames: Record<string, string> = { prometheus: 'Prometheus', weftd: 'weftd' };

function useStatus(): typeof status {
  const [, setTick] = useState(0);
  useEffect(() => status.subscribe(() => setTick((t) => t + 1)), []);
  return status;
}

function Banner({ name, s }: { name: string; s: SourceState }) {
  const since = s.lastOkAt ? `; showing the data from ${new Date(s.lastOkAt).toLocaleTimeString()}` : '; no data from it yet';
  return html`<div class="banner" role="alert" data-testid=${`banner-${name}`} data-source=${name}>
    <b>${sourceNames[name] ?? name} is unreachable</b> (${s.url}): ${s.error ?? 'no answer'}${since}. Retrying.
  </div>`;
}

function Banners() {
  const st = useStatus();
  const sources = st.sources;
  return html`<div class="banners" data-testid="banners">
    ${st.dashboardError ? html`<div class="banner" role="alert" data-testid="banner-dashboard"><b>The dashboard server is unreachable</b>: ${st.dashboardError}. Showing the last data; retrying.</div>` : null}
    ${sources ? Object.entries(sources).map(([name, s]) => (s && !s.ok ? html`<${Banner} key=${name} name=${name} s=${s} />` : null)) : null}
  </div>`;
}

class ErrorBoundary extends Component<{ children?: ComponentChildren; view: string }, { error?: string }> {
  override state: { error?: string } = {};
  override componentDidCatch(e: unknown): void {
    this.setState({ error: e instanceof Error ? e.message : String(e) });
  }
  override componentDidUpdate(prev: { view: string }): void {
    if (prev.view !== this.props.view && this.state.error) this.setState({ error: undefined });
  }
  override render() {
    if (this.state.error) return html`<div class="error-box" role="alert" data-testid="view-error">This view failed: ${this.state.error}. Other views still work; reload to try again.</div>`;
    return this.props.children;
  }
}

function View({ route }: { route: Route }) {
  switch (route.view) {
    case 'services':
      return html`<${ServicesView} host=${route.arg} />`;
    case 'proxies':
      return html`<${ProxiesView} />`;
    case 'traces':
      return html`<${TracesView} traceId=${route.arg} />`;
    case 'why':
      return html`<${WhyView} route=${route} />`;
    default:
      return html`<${GraphView} route=${route} />`;
  }
}

const nav: [Route['view'], string][] = [
  ['graph', 'Graph'],
  ['services', 'Services'],
  ['proxies', 'Proxies'],
  ['traces', 'Traces'],
  ['why', 'Why'],
];

export function App() {
  const route = useRoute();
  return html`<div class="app">
    <header>
      <h1>Weft</h1>
      <nav>${nav.map(([v, label]) => html`<a key=${v} href=${href(v)} class=${route.view === v ? 'active' : ''} data-testid=${`nav-${v}`}>${label}</a>`)}</nav>
    </header>
    <${Banners} />
    <main>
      <${ErrorBoundary} view=${`${route.view}/${route.arg ?? ''}`}>
        <${View} key=${route.view} route=${route} />
      </${ErrorBoundary}>
    </main>
  </div>`;
}
