import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDetails } from './details.ts';
import type { RunningService } from './server.ts';
import { startTestProxy, type TestProxy } from './test-proxy.ts';

describe('details v1', () => {
  let details: RunningService;
  beforeAll(async () => {
    details = await startDetails({ address: '127.0.0.1', port: 0, log: false });
  });
  afterAll(() => details.close());

  it('answers /health', async () => {
    const r = await fetch(`${details.url}/health`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.text()).toBe('{"status":"Details is healthy"}');
  });

  it('gives the book details, byte for byte, with the id asked for', async () => {
    const r = await fetch(`${details.url}/details/0`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.text()).toBe(
      '{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}',
    );
    expect(((await (await fetch(`${details.url}/details/42`)).json()) as { id: number }).id).toBe(42);
  });

  it('takes the last segment of any path under /details, for GET, HEAD and POST', async () => {
    expect(((await (await fetch(`${details.url}/details/books/7`)).json()) as { id: number }).id).toBe(7);
    expect((await fetch(`${details.url}/details/3`, { method: 'POST', body: 'x' })).status).toBe(200);
    const head = await fetch(`${details.url}/details/3`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('rejects an id that is not a number with 400', async () => {
    const r = await fetch(`${details.url}/details/abc`);
    expect(r.status).toBe(400);
    expect(await r.text()).toBe('{"error":"please provide numeric product id"}');
  });

  it('answers 404 outside /details and /health', async () => {
    expect((await fetch(`${details.url}/detailsx/0`)).status).toBe(404);
    expect((await fetch(`${details.url}/`)).status).toBe(404);
  });
});

describe('details v2 (external book service)', () => {
  let books: ReturnType<typeof createServer>;
  let booksUrl: string;
  let received: { url: string; headers: IncomingHttpHeaders }[] = [];
  let answer: { status: number; body: string };
  let proxy: TestProxy;
  let details: RunningService;

  beforeAll(async () => {
    books = createServer((req, res) => {
      received.push({ url: req.url ?? '', headers: req.headers });
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
    await new Promise<void>((r) => books.listen(0, '127.0.0.1', r));
    booksUrl = `http://127.0.0.1:${(books.address() as AddressInfo).port}`;
    // As in Istio's egress task: plain HTTP to port 80, through the sidecar (here, the test proxy).
    proxy = await startTestProxy({ 'www.googleapis.com:80': booksUrl, 'www.googleapis.com': booksUrl });
    details = await startDetails({ address: '127.0.0.1', port: 0, version: 'v2', doNotEncrypt: true, proxy: { httpProxy: proxy.url }, log: false });
  });
  afterAll(async () => {
    await details.close();
    await proxy.close();
    books.close();
  });

  it('maps the Google Books answer and passes on the trace headers and end-user', async () => {
    received = [];
    answer = {
      status: 200,
      body: JSON.stringify({
        items: [
          {
            volumeInfo: {
              authors: ['William Shakespeare', 'Someone Else'],
              publishedDate: '2002-07-01',
              printType: 'BOOK',
              pageCount: 80,
              publisher: 'Dover Publications',
              language: 'en',
              industryIdentifiers: [
                { type: 'ISBN_13', identifier: '9780486424613' },
                { type: 'ISBN_10', identifier: '0486424618' },
              ],
            },
          },
        ],
      }),
    };
    const r = await fetch(`${details.url}/details/0`, { headers: { 'x-request-id': 'req-1', 'end-user': 'jason', 'x-b3-traceid': 'abc', 'x-other': 'no' } });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe(
      '{"id":0,"author":"William Shakespeare","year":"2002-07-01","type":"paperback","pages":80,"publisher":"Dover Publications","language":"English","ISBN-10":"0486424618","ISBN-13":"9780486424613"}',
    );
    expect(proxy.seen.at(-1)!.target).toBe('http://www.googleapis.com/books/v1/volumes?q=isbn:0486424618');
    expect(received).toHaveLength(1);
    expect(received[0]!.url).toBe('/books/v1/volumes?q=isbn:0486424618');
    expect(received[0]!.headers['x-request-id']).toBe('req-1');
    expect(received[0]!.headers['end-user']).toBe('jason');
    expect(received[0]!.headers['x-b3-traceid']).toBe('abc');
    expect(received[0]!.headers['x-other']).toBeUndefined();
  });

  it('says unknown for types and languages it does not map', async () => {
    answer = { status: 200, body: JSON.stringify({ items: [{ volumeInfo: { authors: ['A'], printType: 'MAGAZINE', language: 'fr' } }] }) };
    const d = (await (await fetch(`${details.url}/details/0`)).json()) as Record<string, unknown>;
    expect(d.type).toBe('unknown');
    expect(d.language).toBe('unknown');
  });

  it('answers 400 with the reason when the book service fails', async () => {
    answer = { status: 503, body: '{}' };
    const r = await fetch(`${details.url}/details/0`);
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: 'the book service answered 503' });
  });
});
