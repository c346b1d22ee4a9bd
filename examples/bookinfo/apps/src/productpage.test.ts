// productpage against the real details, reviews (v1, v2, v3) and ratings, all in-process. Every
// call between services goes through a test proxy standing where the sidecar's outbound port is
// (absolute-form requests to http://details:9080 and so on), which records what each service
// sent and can inject faults as a VirtualService would.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { upstreamsFromEnv } from './config.ts';
import { startDetails } from './details.ts';
import { productpageForwardedHeaders, reviewsForwardedHeaders } from './headers.ts';
import { startProductpage } from './productpage.ts';
import { startRatings } from './ratings.ts';
import { startReviews } from './reviews.ts';
import type { RunningService } from './server.ts';
import { type Seen, startTestProxy, type TestProxy } from './test-proxy.ts';

let proxy: TestProxy;
let details: RunningService;
let ratings: RunningService;
let reviews: Record<'v1' | 'v2' | 'v3', RunningService>;
let productpage: RunningService;

const count = (text: string, s: string) => text.split(s).length - 1;
const ratingsUnavailable = '<p class="text-red-500">Ratings service is currently unavailable</p>';

async function page(headers: Record<string, string> = {}): Promise<{ status: number; text: string; ms: number }> {
  const t0 = performance.now();
  const r = await fetch(`${productpage.url}/productpage`, { headers });
  const text = await r.text();
  return { status: r.status, text, ms: performance.now() - t0 };
}

function useReviews(v: 'v1' | 'v2' | 'v3'): void {
  proxy.routes.set('reviews:9080', reviews[v].url);
}

const calls = (authority: string, from = 0): Seen[] => proxy.seen.slice(from).filter((s) => s.authority === authority);

async function login(user: string): Promise<string> {
  const r = await fetch(`${productpage.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', referer: 'http://bookinfo.example/productpage' },
    body: new URLSearchParams({ username: user, passwd: 'anything' }).toString(),
    redirect: 'manual',
  });
  expect(r.status).toBe(302);
  expect(r.headers.get('location')).toBe('http://bookinfo.example/productpage');
  const cookie = r.headers.get('set-cookie') ?? '';
  expect(cookie).toMatch(/^session=[^;]+; HttpOnly; Path=\//);
  return cookie.split(';')[0]!;
}

beforeAll(async () => {
  proxy = await startTestProxy();
  const via = { httpProxy: proxy.url };
  [details, ratings] = await Promise.all([startDetails({ address: '127.0.0.1', port: 0, log: false }), startRatings({ address: '127.0.0.1', port: 0, log: false })]);
  const [v1, v2, v3] = await Promise.all(
    (['v1', 'v2', 'v3'] as const).map((v) => startReviews({ address: '127.0.0.1', port: 0, version: v, podName: `reviews-${v}-5d8f`, proxy: via, log: false })),
  );
  reviews = { v1: v1!, v2: v2!, v3: v3! };
  productpage = await startProductpage({ address: '127.0.0.1', port: 0, proxy: via, log: false });
});

beforeEach(() => {
  proxy.faults.length = 0;
  proxy.routes.set('details:9080', details.url);
  proxy.routes.set('ratings:9080', ratings.url);
  useReviews('v1');
});

afterAll(async () => {
  await productpage.close(0);
  await Promise.all([details, ratings, ...Object.values(reviews)].map((s) => s.close(0)));
  await proxy.close();
});

describe('the product page', () => {
  it('shows the book, its details and the v1 reviews without stars', async () => {
    const { status, text } = await page();
    expect(status).toBe(200);
    expect(text).toContain('<title>Simple Bookstore App</title>');
    expect(text).toContain('<h1 class="text-5xl font-bold tracking-tight text-blue-900">The Comedy of Errors</h1>');
    expect(text).toContain('<b>William Shakespeare\'s</b> early plays');
    expect(text).toContain('<h4 class="text-3xl font-semibold">Book Details</h4>');
    for (const h of ['ISBN-10', 'Publisher', 'Pages', 'Type', 'Language']) expect(text).toContain(`<th>${h}</th>`);
    for (const v of ['1234567890', 'PublisherA', '200', 'paperback', 'English']) expect(text).toContain(`<td>${v}</td>`);
    expect(text).toContain('<h4 class="text-3xl font-semibold">Book Reviews</h4>');
    expect(text).toContain('<p>"An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"</p>');
    expect(text).toContain('Reviewer2');
    expect(text).toMatch(/Reviews served by: <span>reviews-v1-5d8f<\/span>/);
    expect(text).not.toContain('on cluster');
    expect(count(text, 'glyphicon-star')).toBe(0);
    expect(text).not.toContain('gap-x-1 text-');
    expect(text).not.toContain('Ratings service is currently unavailable');
    // Calls went through the proxy by service name: details, then reviews; v1 does not call ratings.
    expect(proxy.seen.slice(-2).map((s) => s.target)).toEqual(['http://details:9080/details/0', 'http://reviews:9080/reviews/0']);
  });

  it('shows 5 + 4 black stars with reviews v2', async () => {
    useReviews('v2');
    const { text } = await page();
    expect(count(text, 'glyphicon-star')).toBe(9);
    expect(count(text, '<div class="flex gap-x-1 text-black-500">')).toBe(2);
    expect(text).not.toContain('gap-x-1 text-red-500');
    expect(text).toMatch(/Reviews served by: <span>reviews-v2-5d8f<\/span>/);
  });

  it('shows red stars with reviews v3', async () => {
    useReviews('v3');
    const { text } = await page();
    expect(count(text, 'glyphicon-star')).toBe(9);
    expect(count(text, '<div class="flex gap-x-1 text-red-500">')).toBe(2);
    expect(text).not.toContain('text-black-500');
  });

  it('offers a sign-in dialog when nobody is signed in', async () => {
    const { text } = await page();
    expect(text).toContain('<button type="button" id="sign-in-button"');
    expect(text).toContain('<dialog id="dialog">');
    expect(text).toContain(`method="post" action='login' name="login_form"`);
    expect(text).toContain('<input id="username" name="username"');
    expect(text).toContain('<input id="password" name="passwd" type="password"');
    expect(text).not.toContain('Sign out');
  });
});

describe('signing in', () => {
  it('as jason: the page says so, and end-user: jason reaches reviews and (from reviews) ratings', async () => {
    useReviews('v2');
    const cookie = await login('jason');
    const from = proxy.seen.length;
    const { text } = await page({ cookie });
    expect(text).toContain('<p class="text-base font-medium text-gray-50">jason</p>');
    expect(text).toMatch(/<a href="logout"[^>]*>Sign out<\/a>/);
    expect(text).not.toContain('id="sign-in-button"');
    const [d] = calls('details:9080', from);
    const [r] = calls('reviews:9080', from);
    const [ra] = calls('ratings:9080', from);
    expect(d!.headers['end-user']).toBe('jason');
    expect(r!.headers['end-user']).toBe('jason');
    expect(r!.headers.cookie).toBe(cookie);
    expect(ra!.headers['end-user']).toBe('jason');
  });

  it('routing on end-user works as with a VirtualService: a fault only for jason', async () => {
    useReviews('v2');
    proxy.faults.push({ authority: 'ratings:9080', endUser: 'jason', abortStatus: 500 });
    const cookie = await login('jason');
    expect(count((await page({ cookie })).text, ratingsUnavailable)).toBe(2);
    expect(count((await page()).text, 'glyphicon-star')).toBe(9);
  });

  it('any password works; a session cookie that was not signed by productpage is ignored', async () => {
    const cookie = await login('alice');
    expect((await page({ cookie })).text).toContain('>alice</p>');
    const forged = `session=${Buffer.from('{"user":"jason"}').toString('base64url')}.AAAA`;
    const from = proxy.seen.length;
    expect((await page({ cookie: forged })).text).toContain('id="sign-in-button"');
    expect(calls('reviews:9080', from)[0]!.headers['end-user']).toBeUndefined();
  });

  it('signing out clears the session and goes back to the page', async () => {
    const cookie = await login('jason');
    const r = await fetch(`${productpage.url}/logout`, { headers: { cookie, referer: 'http://bookinfo.example/productpage' }, redirect: 'manual' });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('http://bookinfo.example/productpage');
    expect(r.headers.get('set-cookie')).toMatch(/^session=; Expires=Thu, 01 Jan 1970/);
  });

  it('without a Referer, login redirects to the product page', async () => {
    const r = await fetch(`${productpage.url}/login`, { method: 'POST', body: 'username=jason', headers: { 'content-type': 'application/x-www-form-urlencoded' }, redirect: 'manual' });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('productpage');
  });

  it('GET /login is not allowed', async () => {
    expect((await fetch(`${productpage.url}/login`)).status).toBe(405);
  });
});

describe('failures', () => {
  it('ratings down: each review says "Ratings service is currently unavailable", quickly', async () => {
    useReviews('v3');
    proxy.routes.delete('ratings:9080');
    const { status, text, ms } = await page();
    expect(status).toBe(200);
    expect(count(text, ratingsUnavailable)).toBe(2);
    expect(count(text, 'glyphicon-star')).toBe(0);
    expect(text).toContain('Book Reviews');
    expect(ms).toBeLessThan(2500);
  });

  it('ratings delayed 7 s with reviews v3: the ratings error after about 2.5 s', async () => {
    useReviews('v3');
    proxy.faults.push({ authority: 'ratings:9080', delayMs: 7000 });
    const { text, ms } = await page();
    expect(count(text, ratingsUnavailable)).toBe(2);
    expect(ms).toBeGreaterThanOrEqual(2400);
    expect(ms).toBeLessThan(5000);
  });

  it('ratings delayed 7 s for jason with reviews v2: reviews unavailable after two 3 s attempts', async () => {
    useReviews('v2');
    proxy.faults.push({ authority: 'ratings:9080', endUser: 'jason', delayMs: 7000 });
    const cookie = await login('jason');
    const from = proxy.seen.length;
    const { status, text, ms } = await page({ cookie });
    expect(status).toBe(200);
    expect(text).toContain('<p class="text-2xl text-red-500">Error fetching product reviews</p>');
    expect(text).toContain('<p class="text-lg text-gray-600">Sorry, product reviews are currently unavailable for this book.</p>');
    expect(text).toContain('Book Details');
    expect(calls('reviews:9080', from)).toHaveLength(2);
    expect(ms).toBeGreaterThanOrEqual(5800);
    expect(ms).toBeLessThan(9000);
  });

  it('reviews failing: two attempts, then the reviews error text', async () => {
    proxy.faults.push({ authority: 'reviews:9080', abortStatus: 503 });
    const from = proxy.seen.length;
    const { status, text } = await page();
    expect(status).toBe(200);
    expect(text).toContain('Error fetching product reviews');
    expect(text).toContain('Sorry, product reviews are currently unavailable for this book.');
    expect(text).not.toContain('Book Reviews');
    expect(calls('reviews:9080', from)).toHaveLength(2);
  });

  it('reviews failing once: the second attempt shows the reviews', async () => {
    let n = 0;
    proxy.faults.push({
      authority: 'reviews:9080',
      get abortStatus() {
        n++;
        return n === 1 ? 503 : undefined;
      },
    });
    const { text } = await page();
    expect(text).toContain('Book Reviews');
  });

  it('details down: the details error text, one attempt, reviews still shown', async () => {
    proxy.routes.delete('details:9080');
    const from = proxy.seen.length;
    const { status, text } = await page();
    expect(status).toBe(200);
    expect(text).toContain('<p class="text-2xl text-red-500">Error fetching product details</p>');
    expect(text).toContain('<p class="text-lg text-gray-600">Sorry, product details are currently unavailable for this book.</p>');
    expect(text).toContain('Book Reviews');
    expect(calls('details:9080', from)).toHaveLength(1);
  });
});

describe('header propagation, end to end', () => {
  it('productpage passes on exactly its list (B3 re-injected, end-user its own); reviews passes its list to ratings', async () => {
    useReviews('v2');
    const cookie = await login('jason');
    const incoming: Record<string, string> = {};
    for (const h of productpageForwardedHeaders) incoming[h] = `in-${h}`;
    incoming.cookie = `${cookie}; theme=dark`;
    Object.assign(incoming, {
      'x-b3-traceid': '463ac35c9f6413ad48485a3953bb6124',
      'x-b3-spanid': 'e457b5a2e4d86bd1',
      'x-b3-parentspanid': '0020000000000001',
      'x-b3-sampled': '1',
      'x-b3-flags': '0',
      'end-user': 'mallory',
      'x-forwarded-for': '10.1.2.3',
      'x-custom': 'not forwarded',
    });
    const from = proxy.seen.length;
    await page(incoming);
    const expected = { ...Object.fromEntries(productpageForwardedHeaders.map((h) => [h, incoming[h]!])) };
    Object.assign(expected, { 'x-b3-traceid': '463ac35c9f6413ad48485a3953bb6124', 'x-b3-spanid': 'e457b5a2e4d86bd1', 'x-b3-sampled': '1', 'end-user': 'jason' });
    const transport = ['host', 'connection'];
    for (const authority of ['details:9080', 'reviews:9080']) {
      const [seen] = calls(authority, from);
      const got = Object.fromEntries(Object.entries(seen!.headers).filter(([k]) => !transport.includes(k)));
      expect(got, authority).toEqual(expected);
    }
    // reviews -> ratings: the reviews list, as it arrived from productpage, plus Accept.
    const [toRatings] = calls('ratings:9080', from);
    const got = Object.fromEntries(Object.entries(toRatings!.headers).filter(([k]) => !transport.includes(k)));
    const want = Object.fromEntries(reviewsForwardedHeaders.filter((h) => expected[h] !== undefined).map((h) => [h, expected[h]!]));
    expect(got).toEqual({ ...want, accept: 'application/json' });
    expect(got['end-user']).toBe('jason');
    expect(got['x-b3-spanid']).toBe('e457b5a2e4d86bd1');
  });

  it('a 64-bit B3 trace id goes out as 128 bits; no sampling header goes out as 0; a bad id is dropped', async () => {
    let from = proxy.seen.length;
    await page({ 'x-b3-traceid': 'a2fb4a1d1a96d312', 'x-b3-spanid': 'e457b5a2e4d86bd1' });
    let h = calls('details:9080', from)[0]!.headers;
    expect([h['x-b3-traceid'], h['x-b3-spanid'], h['x-b3-sampled']]).toEqual(['0000000000000000a2fb4a1d1a96d312', 'e457b5a2e4d86bd1', '0']);
    from = proxy.seen.length;
    await page({ 'x-b3-traceid': 'not-hex', 'x-b3-spanid': 'e457b5a2e4d86bd1', 'x-b3-sampled': '1' });
    h = calls('details:9080', from)[0]!.headers;
    expect(h['x-b3-traceid']).toBeUndefined();
    expect(h['x-b3-spanid']).toBeUndefined();
  });

  it('an incoming end-user header is not passed on when nobody is signed in', async () => {
    const from = proxy.seen.length;
    await page({ 'end-user': 'jason' });
    expect(calls('reviews:9080', from)[0]!.headers['end-user']).toBeUndefined();
  });
});

describe('the other routes', () => {
  it('/health', async () => {
    const r = await fetch(`${productpage.url}/health`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await r.text()).toBe('Product page is healthy');
  });

  it('/ and /index.html show the service tree and the user links', async () => {
    for (const p of ['/', '/index.html']) {
      const text = await (await fetch(`${productpage.url}${p}`)).text();
      expect(text).toContain('Hello! This is a simple bookstore application consisting of three services as shown below');
      expect(text).toContain('class="table table-condensed table-bordered table-hover"');
      expect(text).toContain('http://ratings:9080');
      expect(text).toContain('<a href="/productpage?u=normal">Normal user</a>');
      expect(text).toContain('<a href="/productpage?u=test">Test user</a>');
    }
  });

  it('/api/v1/products lists the book as Python writes JSON', async () => {
    const r = await fetch(`${productpage.url}/api/v1/products`);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.text()).toBe(
      '[{"id": 0, "title": "The Comedy of Errors", "descriptionHtml": "<a href=\\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\\">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare\'s</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play."}]',
    );
  });

  it('/api/v1/products/<id>, /reviews and /ratings proxy the services, or give their error with the status', async () => {
    const d = await fetch(`${productpage.url}/api/v1/products/0`);
    expect(d.status).toBe(200);
    expect(await d.text()).toBe(
      '{"id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200, "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"}',
    );
    const bad = await fetch(`${productpage.url}/api/v1/products/abc`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toBe('{"error": "Sorry, product details are currently unavailable for this book."}');
    const rv = (await (await fetch(`${productpage.url}/api/v1/products/0/reviews`)).json()) as { podname: string };
    expect(rv.podname).toBe('reviews-v1-5d8f');
    const from = proxy.seen.length;
    expect(await (await fetch(`${productpage.url}/api/v1/products/0/ratings`)).json()).toEqual({ id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
    expect(calls('ratings:9080', from).map((s) => s.target)).toEqual(['http://ratings:9080/ratings/0']);
    proxy.routes.delete('ratings:9080');
    const down = await fetch(`${productpage.url}/api/v1/products/0/ratings`);
    expect(down.status).toBe(503);
    expect(await down.text()).toBe('{"error": "Sorry, product ratings are currently unavailable for this book."}');
    proxy.faults.push({ authority: 'reviews:9080', abortStatus: 502 });
    const rdown = await fetch(`${productpage.url}/api/v1/products/0/reviews`);
    expect(rdown.status).toBe(502);
    expect(await rdown.text()).toBe('{"error": "Sorry, product reviews are currently unavailable for this book."}');
  });

  it('/metrics counts the results of the calls by service and status', async () => {
    proxy.routes.delete('details:9080');
    await page();
    const text = await (await fetch(`${productpage.url}/metrics`)).text();
    expect(text).toContain('# TYPE request_result_total counter');
    expect(text).toMatch(/^request_result_total\{destination_app="details",response_code="503"\} [1-9]\d*\.0$/m);
    expect(text).toMatch(/^request_result_total\{destination_app="reviews",response_code="200"\} [1-9]\d*\.0$/m);
    expect(text).toMatch(/^request_result_created\{destination_app="details",response_code="503"\} \d+\.\d+$/m);
  });

  it('serves its stylesheet under /static, and nothing outside it', async () => {
    const css = await fetch(`${productpage.url}/static/bookinfo.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(await css.text()).toContain('.text-black-500');
    expect((await fetch(`${productpage.url}/static/..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${productpage.url}/nothing-here`)).status).toBe(404);
  });
});

describe('without a proxy', () => {
  it('reaches its peers at the addresses the environment gives (DETAILS_HOSTNAME, ..._SERVICE_PORT)', async () => {
    const d = new URL(details.url);
    const r = new URL(reviews.v3.url);
    const upstreams = upstreamsFromEnv({ DETAILS_HOSTNAME: d.hostname, DETAILS_SERVICE_PORT: d.port, REVIEWS_HOSTNAME: r.hostname, REVIEWS_SERVICE_PORT: r.port });
    const direct = await startProductpage({ address: '127.0.0.1', port: 0, upstreams, log: false });
    try {
      proxy.routes.set('ratings:9080', ratings.url); // reviews v3 still reaches ratings through the proxy
      const text = await (await fetch(`${direct.url}/productpage`)).text();
      expect(text).toContain('Book Details');
      expect(count(text, '<div class="flex gap-x-1 text-red-500">')).toBe(2);
    } finally {
      await direct.close(0);
    }
  });

  it('builds peer addresses as the originals do', () => {
    expect(upstreamsFromEnv({})).toEqual({ details: 'http://details:9080', reviews: 'http://reviews:9080', ratings: 'http://ratings:9080' });
    expect(upstreamsFromEnv({ SERVICES_DOMAIN: 'bookinfo.svc.cluster.local', RATINGS_SERVICE_PORT: '9999' }).ratings).toBe('http://ratings.bookinfo.svc.cluster.local:9999');
  });
});
