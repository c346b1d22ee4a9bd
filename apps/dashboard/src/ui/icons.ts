// A lock drawn as SVG: machines without an emoji font (headless servers) show 🔒 as a blank box.
// The emoji stays in the text (hidden from sight), for copy and paste and for text searches.
import { lock } from './graph-model.ts';
import { html } from './html.ts';

export function Lock({ title = 'mutual TLS' }: { title?: string }) {
  return html`<span class="lock" title=${title} role="img" aria-label=${title}
    ><svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"
      ><path d="M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7h1zm2 0h4V5a2 2 0 0 0-4 0v2z" fill="currentColor" /></svg
    ><span class="visually-hidden">${lock}</span></span
  >`;
}
