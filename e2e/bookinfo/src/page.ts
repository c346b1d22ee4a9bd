// The product page as a user sees it: loaded through the ingress gateway, read by the cues the
// BookInfo spec gives (../shared/reference/bookinfo-spec.md §2 "HTML cues"): the star wrapper
// `gap-x-1 text-black-500` (reviews v2) or `gap-x-1 text-red-500` (v3), none for v1; the ratings
// and reviews error texts; "Reviews served by: <pod>"; the signed-in user's name.

/** What the reviews part of a page shows. */
export type ReviewsShown = 'v1' | 'v2' | 'v3' | 'ratings-unavailable' | 'reviews-unavailable' | 'unknown';

export interface ProductPage {
  status: number;
  html: string;
  /** Milliseconds from sending the request to the end of the body. */
  ms: number;
  shown: ReviewsShown;
  /**
   * The workload behind "Reviews served by: <pod>" (the reviews instance's HOSTNAME), when shown:
   * `reviews-v2`, also for a Deployment's pod `reviews-v2-<template hash>-<id>` (servedByPod).
   */
  servedBy?: string;
  /** The pod name as shown. */
  servedByPod?: string;
  /** The signed-in user, when the page shows one. */
  user?: string;
  /** Full stars in the page (`glyphicon-star` SVGs with fill="currentColor"). */
  fullStars: number;
}

export const texts = {
  reviewsUnavailable: 'Sorry, product reviews are currently unavailable for this book.',
  ratingsUnavailable: 'Ratings service is currently unavailable',
  detailsOk: 'Book Details',
  reviewsOk: 'Book Reviews',
};

/** Reads the version cues of a product page. */
export function readPage(status: number, html: string, ms: number): ProductPage {
  const black = html.includes('gap-x-1 text-black-500');
  const red = html.includes('gap-x-1 text-red-500');
  let shown: ReviewsShown = 'unknown';
  if (html.includes(texts.reviewsUnavailable)) shown = 'reviews-unavailable';
  else if (html.includes(texts.ratingsUnavailable)) shown = 'ratings-unavailable';
  else if (black && !red) shown = 'v2';
  else if (red && !black) shown = 'v3';
  else if (!black && !red && html.includes(texts.reviewsOk)) shown = 'v1';
  const servedByPod = /Reviews served by:\s*<span>([^<]*)<\/span>/.exec(html)?.[1];
  const servedBy = servedByPod === undefined ? undefined : workloadOfPod(servedByPod);
  const user = /<p class="text-base font-medium text-gray-50">([^<]*)<\/p>/.exec(html)?.[1];
  const fullStars = (html.match(/<svg id="glyphicon glyphicon-star"[^>]*fill="currentColor"/g) ?? []).length;
  return { status, html, ms, shown, fullStars, ...(servedBy !== undefined ? { servedBy, servedByPod } : {}), ...(user !== undefined ? { user } : {}) };
}

/** A Deployment's pod is named `<deployment>-<pod template hash>-<5 characters>`; other names are the workload's own. */
export function workloadOfPod(pod: string): string {
  return /^(.+)-[a-z0-9]{1,10}-[a-z0-9]{5}$/.exec(pod)?.[1] ?? pod;
}

/** A browser-like user of the product page: keeps the session cookie productpage sets. */
export class PageUser {
  readonly url: string;
  cookie: string | undefined;

  /** `url`: http://<ingress>/productpage. */
  constructor(url: string) {
    this.url = url;
  }

  async load(timeoutMs = 20_000): Promise<ProductPage> {
    const started = performance.now();
    const r = await fetch(this.url, { headers: this.cookie ? { cookie: this.cookie } : {}, signal: AbortSignal.timeout(timeoutMs) });
    const html = await r.text();
    return readPage(r.status, html, performance.now() - started);
  }

  /** Loads the page `n` times, `concurrency` at a time; counts what the reviews part showed. */
  async loadMany(n: number, concurrency = 4): Promise<{ counts: Record<ReviewsShown, number>; pages: ProductPage[] }> {
    const counts: Record<ReviewsShown, number> = { v1: 0, v2: 0, v3: 0, 'ratings-unavailable': 0, 'reviews-unavailable': 0, unknown: 0 };
    const pages: ProductPage[] = [];
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        const p = await this.load();
        if (p.status !== 200) throw new Error(`${this.url} answered ${p.status}: ${p.html.slice(0, 300)}`);
        counts[p.shown]++;
        pages.push(p);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
    return { counts, pages };
  }

  /**
   * Signs in through productpage's form, as the page's dialog does: POST /login with the form
   * fields `username` and `passwd`, the page as Referer; productpage answers 302 back to it with
   * its session cookie, which every later load sends.
   */
  async login(username: string): Promise<void> {
    const loginUrl = new URL('login', this.url).toString();
    const r = await fetch(loginUrl, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', referer: this.url },
      body: new URLSearchParams({ username, passwd: 'any password works' }).toString(),
      signal: AbortSignal.timeout(20_000),
    });
    await r.text();
    if (r.status !== 302) throw new Error(`POST ${loginUrl} answered ${r.status}, not 302`);
    const setCookie = r.headers.getSetCookie().find((c) => c.startsWith('session='));
    if (!setCookie) throw new Error(`POST ${loginUrl} set no session cookie (set-cookie: ${r.headers.getSetCookie().join(' | ')})`);
    this.cookie = setCookie.split(';')[0];
    const location = r.headers.get('location');
    if (location === null || new URL(location, loginUrl).toString() !== this.url) throw new Error(`POST ${loginUrl} redirected to ${location}, not back to ${this.url}`);
  }
}
