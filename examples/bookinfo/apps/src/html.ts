// productpage's HTML. The markup keeps the cues people and tests use to tell the versions apart
// (see ../../README.md): the star wrapper `text-black-500` (reviews v2) or `text-red-500` (v3) with
// one `glyphicon-star` per full star, the error texts, the sign-in dialog.

export function escapeHtml(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A five-pointed star in a 20 x 20 box. */
const starPoints = Array.from({ length: 10 }, (_, i) => {
  const r = i % 2 === 0 ? 9.5 : 3.9;
  const a = -Math.PI / 2 + (i * Math.PI) / 5;
  return `${(10 + r * Math.cos(a)).toFixed(2)},${(10.6 + r * Math.sin(a)).toFixed(2)}`;
}).join(' ');

const fullStar = `<svg id="glyphicon glyphicon-star" class="h-5 w-5 flex-none" viewBox="0 0 20 20" fill="currentColor" aria-hidden="true"><polygon points="${starPoints}"/></svg>`;
const emptyStar = `<svg class="h-5 w-5 flex-none" viewBox="0 0 20 20" fill="none" stroke="currentColor" stroke-width="1.2" aria-hidden="true"><polygon points="${starPoints}"/></svg>`;

export interface Review {
  reviewer?: unknown;
  text?: unknown;
  rating?: { stars?: unknown; color?: unknown; error?: unknown };
}

export interface ReviewsResponse {
  podname?: unknown;
  clustername?: unknown;
  reviews?: Review[];
}

export interface PageModel {
  product: { title: string; descriptionHtml: string };
  user: string | undefined;
  detailsOk: boolean;
  details: Record<string, unknown>;
  reviewsOk: boolean;
  reviews: ReviewsResponse;
}

function stars(rating: NonNullable<Review['rating']>): string {
  const n = Math.max(0, Math.min(5, Math.trunc(Number(rating.stars))));
  const color = /^[a-z]+$/.test(String(rating.color)) ? String(rating.color) : 'black';
  return `<div class="flex gap-x-1 text-${color}-500">${fullStar.repeat(n)}${emptyStar.repeat(5 - n)}</div>`;
}

function review(r: Review): string {
  let rating = '';
  if (r.rating && typeof r.rating === 'object') {
    rating = typeof r.rating.stars === 'number' ? stars(r.rating) : '<p class="text-red-500">Ratings service is currently unavailable</p>';
  }
  return `
          <section class="review">
            <p>"${escapeHtml(r.text)}"</p>
            <p class="text-sm text-gray-600 reviewer">${escapeHtml(r.reviewer)}</p>
            ${rating}
          </section>`;
}

function detailsSection(m: PageModel): string {
  if (!m.detailsOk) {
    return `
        <p class="text-2xl text-red-500">Error fetching product details</p>
        <p class="text-lg text-gray-600">Sorry, product details are currently unavailable for this book.</p>`;
  }
  const d = m.details;
  const cols: [string, unknown][] = [
    ['ISBN-10', d['ISBN-10']],
    ['Publisher', d.publisher],
    ['Pages', d.pages],
    ['Type', d.type],
    ['Language', d.language],
  ];
  return `
        <h4 class="text-3xl font-semibold">Book Details</h4>
        <table class="details-table">
          <thead><tr>${cols.map(([h]) => `<th>${h}</th>`).join('')}</tr></thead>
          <tbody><tr>${cols.map(([, v]) => `<td>${escapeHtml(v)}</td>`).join('')}</tr></tbody>
        </table>`;
}

function reviewsSection(m: PageModel): string {
  if (!m.reviewsOk) {
    return `
        <p class="text-2xl text-red-500">Error fetching product reviews</p>
        <p class="text-lg text-gray-600">Sorry, product reviews are currently unavailable for this book.</p>`;
  }
  const r = m.reviews;
  const cluster = r.clustername !== undefined && r.clustername !== null && r.clustername !== 'null' ? ` on cluster <div>${escapeHtml(r.clustername)}</div>` : '';
  return `
        <h4 class="text-3xl font-semibold">Book Reviews</h4>${(r.reviews ?? []).map(review).join('')}
        <p class="text-sm text-gray-600 served-by">Reviews served by: <span>${escapeHtml(r.podname)}</span>${cluster}</p>`;
}

function header(user: string | undefined): string {
  const account = user
    ? `<div class="account"><p class="text-base font-medium text-gray-50">${escapeHtml(user)}</p><a href="logout" class="button">Sign out</a></div>`
    : `<button type="button" id="sign-in-button" class="button">Sign in</button>`;
  const dialog = user
    ? ''
    : `
    <dialog id="dialog">
      <h2 class="text-lg font-semibold">Sign in</h2>
      <form class="login" method="post" action='login' name="login_form">
        <label for="username">User name</label>
        <input id="username" name="username" type="text" autocomplete="username" required>
        <label for="password">Password</label>
        <input id="password" name="passwd" type="password" autocomplete="current-password">
        <div class="actions">
          <button type="button" id="cancel-button" class="button secondary">Cancel</button>
          <button type="submit" id="login-button" class="button">Sign in</button>
        </div>
      </form>
    </dialog>`;
  return `
    <nav class="bg-gray-800">
      <a href="/" class="brand">BookInfo Sample</a>
      ${account}
    </nav>${dialog}`;
}

const script = `
    <script>
      const dialog = document.getElementById('dialog');
      document.getElementById('sign-in-button')?.addEventListener('click', () => dialog.showModal());
      document.getElementById('cancel-button')?.addEventListener('click', () => dialog.close());
    </script>`;

function layout(body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Simple Bookstore App</title>
    <link rel="stylesheet" href="/static/bookinfo.css">
  </head>
  <body>${body}
  </body>
</html>
`;
}

export function productPage(m: PageModel): string {
  return layout(`${header(m.user)}
    <main>
      <div class="product">
        <h1 class="text-5xl font-bold tracking-tight text-blue-900">${escapeHtml(m.product.title)}</h1>
        <p class="description">${m.product.descriptionHtml}</p>
      </div>
      <div class="columns">
        <div class="column">${detailsSection(m)}
        </div>
        <div class="column">${reviewsSection(m)}
        </div>
      </div>
    </main>${script}`);
}

export interface ServiceNode {
  name: string;
  endpoint: string;
  children: ServiceNode[];
}

function tree(nodes: ServiceNode[]): string {
  if (nodes.length === 0) return '';
  const rows = nodes.map((n) => `<tr><td>${escapeHtml(n.name)}</td><td>${escapeHtml(n.endpoint)}</td><td>${tree(n.children)}</td></tr>`).join('');
  return `<table class="table table-condensed table-bordered table-hover"><thead><tr><th>name</th><th>endpoint</th><th>children</th></tr></thead><tbody>${rows}</tbody></table>`;
}

export function indexPage(root: ServiceNode): string {
  return layout(`
    <main>
      <h3 class="text-2xl font-semibold">Hello! This is a simple bookstore application consisting of three services as shown below</h3>
      ${tree([root])}
      <p>Click on one of the links below to auto generate a request to the backend as a real user or a tester</p>
      <p><a href="/productpage?u=normal">Normal user</a></p>
      <p><a href="/productpage?u=test">Test user</a></p>
    </main>`);
}
