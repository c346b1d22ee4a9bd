// details: the book's details as JSON. v1 has them built in; v2 reads them from the Google Books
// API (ISBN 0486424618), over plain HTTP on port 80 when DO_NOT_ENCRYPT is set (for the egress
// tasks, where the sidecar originates TLS).
import type { IncomingMessage } from 'node:http';
import { call, type ProxySettings, pickHeaders } from './client.ts';
import { reviewsForwardedHeaders } from './headers.ts';
import { createLogger, type LogSink } from './log.ts';
import { type ListenOptions, type RunningService, sendJson, serve } from './server.ts';

export interface DetailsOptions extends ListenOptions {
  /** Reported in logs; default v1. `v2` turns the external book service on. */
  version?: string;
  /** Read details from the external book service (ENABLE_EXTERNAL_BOOK_SERVICE); default: version is v2. */
  externalBookService?: boolean;
  /** Reach the book service with plain HTTP on port 80 (DO_NOT_ENCRYPT). */
  doNotEncrypt?: boolean;
  /** The book service's host; default www.googleapis.com. */
  bookServiceHost?: string;
  proxy?: ProxySettings;
  log?: LogSink;
}

interface Book {
  id: number;
  author: unknown;
  year: unknown;
  type: string;
  pages: unknown;
  publisher: unknown;
  language: string;
  'ISBN-10': unknown;
  'ISBN-13': unknown;
}

const isbn = '0486424618';

export function defaultDetails(id: number): Book {
  return {
    id,
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  };
}

interface VolumeInfo {
  authors?: unknown[];
  publishedDate?: unknown;
  printType?: unknown;
  pageCount?: unknown;
  publisher?: unknown;
  language?: unknown;
  industryIdentifiers?: { type?: unknown; identifier?: unknown }[];
}

async function externalDetails(o: DetailsOptions, id: number, req: IncomingMessage): Promise<Book> {
  const host = o.bookServiceHost ?? 'www.googleapis.com';
  const url = o.doNotEncrypt ? `http://${host}:80/books/v1/volumes?q=isbn:${isbn}` : `https://${host}/books/v1/volumes?q=isbn:${isbn}`;
  const r = await call(url, { timeoutMs: 5000, headers: pickHeaders(req.headers, reviewsForwardedHeaders), ...(o.proxy ? { proxy: o.proxy } : {}) });
  if (r.status !== 200) throw new Error(`the book service answered ${r.status}`);
  const body = JSON.parse(r.body) as { items?: { volumeInfo?: VolumeInfo }[] };
  const book = body.items?.[0]?.volumeInfo;
  if (!book) throw new Error(`the book service has no book with ISBN ${isbn}`);
  const identifier = (type: string) => book.industryIdentifiers?.find((i) => i.type === type)?.identifier;
  return {
    id,
    author: book.authors?.[0],
    year: book.publishedDate,
    type: book.printType === 'BOOK' ? 'paperback' : 'unknown',
    pages: book.pageCount,
    publisher: book.publisher,
    language: book.language === 'en' ? 'English' : 'unknown',
    'ISBN-10': identifier('ISBN_10'),
    'ISBN-13': identifier('ISBN_13'),
  };
}

export function startDetails(o: DetailsOptions = {}): Promise<RunningService> {
  const version = o.version ?? 'v1';
  const external = o.externalBookService ?? version === 'v2';
  const log = createLogger('details', o.log, { version });
  return serve('details', version, o, log, async (req, res, url) => {
    if (url.pathname === '/health') return sendJson(res, 200, JSON.stringify({ status: 'Details is healthy' }));
    if (url.pathname === '/details' || url.pathname.startsWith('/details/')) {
      // Any method and any path under /details: the last segment is the product id.
      const segment = decodeURIComponent(url.pathname.split('/').filter(Boolean).pop() ?? '');
      if (!/^[+-]?\d+$/.test(segment)) return sendJson(res, 400, JSON.stringify({ error: 'please provide numeric product id' }));
      const id = Number(segment);
      if (!external) return sendJson(res, 200, JSON.stringify(defaultDetails(id)));
      try {
        return sendJson(res, 200, JSON.stringify(await externalDetails(o, id, req)));
      } catch (err) {
        log.warn('book service failed', { error: err });
        return sendJson(res, 400, JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
      }
    }
    sendJson(res, 404, JSON.stringify({ error: 'not found' }));
  });
}
