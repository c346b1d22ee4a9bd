// Hash routes: #/graph (default), #/services, #/services/<host>, #/proxies, #/traces,
// #/traces/<traceId>, #/why; a query after `?` carries a view's settings (#/graph?window=30s).
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  view: 'graph' | 'services' | 'proxies' | 'traces' | 'why';
  /** The part after the view: a service host or a trace id. */
  arg?: string;
  query: URLSearchParams;
}

const views: Route['view'][] = ['graph', 'services', 'proxies', 'traces', 'why'];

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  const [first, ...rest] = path.split('/');
  const view = views.find((v) => v === first) ?? 'graph';
  const arg = rest.length > 0 && view === first ? decodeURIComponent(rest.join('/')) : undefined;
  return { view, query, ...(arg ? { arg } : {}) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function href(view: Route['view'], arg?: string): string {
  return `#/${view}${arg ? `/${encodeURIComponent(arg)}` : ''}`;
}
