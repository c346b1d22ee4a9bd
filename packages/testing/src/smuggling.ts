// Request smuggling as an attacker writes it: raw bytes for one keep-alive connection, each with an
// ambiguous framing that hides a second request (GET /smuggled) inside the first. A forwarder must answer
// each with 400 and never pass the hidden request on, and still forward what is well framed. Sent to
// weft-proxy by e2e/proxy's smuggling suite and to bench/proxy's native prototype before it is measured.

/** The path of the request each attack hides. */
export const smuggledPath = '/smuggled';

/** The attacks, by name, for requests to `authority` (the Host header's value). */
export function smugglingAttacks(authority: string): [name: string, bytes: string][] {
  const host = `Host: ${authority}\r\n`;
  const hidden = `GET ${smuggledPath} HTTP/1.1\r\n${host}\r\n`;
  return [
    ['Content-Length and Transfer-Encoding (CL.TE)', `POST / HTTP/1.1\r\n${host}Content-Length: ${5 + hidden.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`],
    ['Transfer-Encoding before Content-Length (TE.CL)', `POST / HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${(hidden.length + 2).toString(16)}\r\nxx${hidden}\r\n0\r\n\r\n`],
    ['two different Content-Lengths', `POST / HTTP/1.1\r\n${host}Content-Length: 0\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`],
    ['a Transfer-Encoding folded onto the next line (obs-fold)', `POST / HTTP/1.1\r\n${host}Content-Length: ${5 + hidden.length}\r\nX-Padding: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${hidden}`],
    ['bare LF line endings', `POST / HTTP/1.1\n${host.replace('\r\n', '\n')}Content-Length: ${hidden.length}\nTransfer-Encoding: chunked\n\n0\n\n${hidden}`],
    ['a Transfer-Encoding that is not chunked last', `POST / HTTP/1.1\r\n${host}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${hidden}`],
    ['a space before the header colon', `POST / HTTP/1.1\r\n${host}Content-Length : ${hidden.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`],
  ];
}

/** Well framed, so it must pass: a chunked POST /upload (body "hello"), then a pipelined GET /next that closes. */
export function wellFramedPipeline(authority: string): string {
  const host = `Host: ${authority}\r\n`;
  return `POST /upload HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\n${host}Connection: close\r\n\r\n`;
}
