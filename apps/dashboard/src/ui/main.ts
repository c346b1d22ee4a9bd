// The dashboard's browser entry (bundled by the dashboard server with esbuild at start). Mounts the
// app into #app (made when the page has none), with its stylesheet; errors no view caught are
// shown on the page rather than leaving it blank.
import { render } from 'preact';
import { prefetchJson } from './api.ts';
import { App } from './app.ts';
import { graphPath, windowOf } from './graph-view.ts';
import { html } from './html.ts';
import { parseHash } from './route.ts';
import { css } from './style.ts';

// The graph (the first page most open) asks for its data before the first render.
const first = parseHash(location.hash);
if (first.view === 'graph') prefetchJson(graphPath(windowOf(first)));

function showFatal(message: string): void {
  let box = document.getElementById('weft-fatal');
  if (!box) {
    box = document.createElement('div');
    box.id = 'weft-fatal';
    box.className = 'error-box';
    box.setAttribute('role', 'alert');
    box.dataset.testid = 'fatal-error';
    document.body.prepend(box);
  }
  box.textContent = `The dashboard hit an error: ${message}. Reload the page; if it persists, the dashboard's log says more.`;
}

addEventListener('error', (e) => showFatal(e.message || String(e.error)));
addEventListener('unhandledrejection', (e) => {
  // Handled here, so that it is shown on the page and not only as a console error.
  e.preventDefault();
  showFatal(e.reason instanceof Error ? e.reason.message : String(e.reason));
});

const style = document.createElement('style');
style.textContent = css;
document.head.append(style);

let root = document.getElementById('app');
if (!root) {
  root = document.createElement('div');
  root.id = 'app';
  document.body.append(root);
}
try {
  render(html`<${App} />`, root);
} catch (e) {
  showFatal((e as Error).message);
}
