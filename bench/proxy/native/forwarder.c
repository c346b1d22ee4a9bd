// Issue 14's "native byte path", a prototype for measurement only: an HTTP/1.1 forwarder whose bytes
// never become JavaScript objects, driven from Node's own event loop, with the per-request decision
// (which upstream endpoint) still made by a TypeScript function. It answers one question: if the
// proxy kept its routing in TypeScript and moved reading, parsing and writing into native code, what
// would a hop cost? (bench/proxy/native-floor.ts loads it; hop.ts measures it beside the other floors.)
//
// - Parsing: llhttp, the parser Node's own http module uses, from Debian's node-llhttp sources
//   (/usr/share/llhttp); both directions, so message boundaries (Content-Length, chunked) are the
//   parser's, not ours. Request and response bytes are forwarded as received (no header rewriting).
// - I/O: non-blocking sockets watched with uv_poll on Node's loop (napi_get_uv_event_loop), read(2)
//   and write(2) straight from and to per-connection buffers.
// - Decision: for each request head, route(host, path) is called synchronously on the JS thread and
//   returns an endpoint index (registered with addEndpoint); idle upstream connections are pooled per
//   endpoint.
// Built with -fvisibility=hidden -Wl,-Bsymbolic: Node's binary exports its own (newer) llhttp, and without
// them this library's calls bind to Node's copy, whose structures differ (no callback ever fires).
// TLS (mutual, both directions, with `tls()`) through the OpenSSL Node links.
// Not a product: no HTTP/2, no timeouts, no retries, one request at a time per connection.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include "llhttp.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// The few libuv symbols used, declared here (Node exports them; its uv.h is not on every machine).
// Only `data`, uv_poll_t's first field, is touched; the padding is larger than any libuv 1.x uv_poll_t.
typedef struct uv_loop_s uv_loop_t;
typedef struct { void *data; char opaque[504]; } uv_poll_t;
typedef void (*uv_poll_cb)(uv_poll_t *, int status, int events);
extern int uv_poll_init(uv_loop_t *, uv_poll_t *, int fd);
extern int uv_poll_start(uv_poll_t *, int events, uv_poll_cb);
extern int uv_poll_stop(uv_poll_t *);
extern void uv_close(void *handle, void (*)(void *));
enum { UV_READABLE = 1, UV_WRITABLE = 2 };


// TLS (--tls-*): OpenSSL as Node links it (its binary exports the library; declared here, as libuv is).
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_method_st SSL_METHOD;
extern const SSL_METHOD *TLS_method(void);
extern SSL_CTX *SSL_CTX_new(const SSL_METHOD *);
extern int SSL_CTX_use_certificate_chain_file(SSL_CTX *, const char *);
extern int SSL_CTX_use_PrivateKey_file(SSL_CTX *, const char *, int);
extern int SSL_CTX_load_verify_locations(SSL_CTX *, const char *, const char *);
extern void SSL_CTX_set_verify(SSL_CTX *, int, void *);
extern long SSL_CTX_ctrl(SSL_CTX *, int, long, void *);
extern int SSL_CTX_set_session_id_context(SSL_CTX *, const unsigned char *, unsigned int);
extern SSL *SSL_new(SSL_CTX *);
extern int SSL_set_fd(SSL *, int);
extern void SSL_set_accept_state(SSL *);
extern void SSL_set_connect_state(SSL *);
extern int SSL_read_ex(SSL *, void *, size_t, size_t *);
extern int SSL_write_ex(SSL *, const void *, size_t, size_t *);
extern int SSL_get_error(const SSL *, int);
extern int SSL_pending(const SSL *);
extern void SSL_free(SSL *);
enum { SSL_FILETYPE_PEM = 1, SSL_VERIFY_PEER = 1, SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 2, SSL_ERROR_WANT_READ = 2, SSL_ERROR_WANT_WRITE = 3,
       SSL_ERROR_ZERO_RETURN = 6, SSL_CTRL_MODE = 33, SSL_MODE_ENABLE_PARTIAL_WRITE = 1, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER = 2 };
static SSL_CTX *g_server_tls, *g_client_tls;  // TLS on accepted connections / on upstream connections

enum kind { LISTENER, DOWN, UP };
#define BUF 65536

// A message's header lines as the parser hands them over (pieces of one name or value can arrive in
// separate reads): slots alternate name, value.
typedef struct {
  char buf[8192];
  size_t len;
  int count, open, overflow;
  uint32_t off[128], n[128];
} headers;

typedef struct conn conn;
struct conn {
  uv_poll_t poll;
  int fd, kind, events, endpoint;
  SSL *ssl;         // NULL: plain TCP
  conn *peer;       // DOWN: the upstream carrying its request; UP: the downstream it answers
  conn *next_idle;  // UP: the endpoint's idle list
  llhttp_t parser;
  char *out;        // bytes waiting for this fd to become writable
  size_t out_len, out_cap;
  char in[BUF];     // DOWN: bytes read and not yet forwarded (pipelined requests wait here)
  size_t in_len, parsed, forwarded;
  int head_done, msg_done, waiting, keep_alive, closing, answered, connecting, no_route;
  char host[256], path[2048];
  size_t host_len, path_len;
  int field_is_host, last_was_value;
  headers h;            // heads mode: this message's headers
  const char *read_at;  // heads mode: the read buffer being parsed, and where this message's head began in it
  size_t read_len, head_from, skip_to;
};

typedef struct { struct sockaddr_in addr; conn *idle; } endpoint;

static napi_env g_env;
static napi_ref g_route, g_respond;  // g_respond set: heads mode (TypeScript rewrites both heads)
static uv_loop_t *g_loop;
static endpoint g_endpoints[64];
static int g_endpoint_count;
static llhttp_settings_t g_request_settings, g_response_settings;

static void on_event(uv_poll_t *h, int status, int events);
static void down_process(conn *d);
static void down_readable(conn *d);
static ssize_t io_write(conn *c, const char *p, size_t n);

static void set_events(conn *c, int events) {
  if (c->events == events) return;
  c->events = events;
  if (events) uv_poll_start(&c->poll, events, on_event);
  else uv_poll_stop(&c->poll);
}

static void free_conn(void *h) {
  conn *c = (conn *)((uv_poll_t *)h)->data;
  if (c->ssl) SSL_free(c->ssl);
  free(c->out);
  free(c);
}

static void close_conn(conn *c) {
  if (c->closing) return;
  c->closing = 1;
  if (c->kind == UP && c->peer == NULL) {  // drop it from its endpoint's idle list
    conn **p = &g_endpoints[c->endpoint].idle;
    while (*p && *p != c) p = &(*p)->next_idle;
    if (*p) *p = c->next_idle;
  }
  conn *peer = c->peer;
  c->peer = NULL;
  uv_poll_stop(&c->poll);
  close(c->fd);
  uv_close(&c->poll, free_conn);
  if (peer) {
    peer->peer = NULL;
    if (c->kind == UP && !peer->answered) {  // nothing of a response sent yet: 502
      static const char bad[] = "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
      (void)io_write(peer, bad, sizeof bad - 1);
    }
    close_conn(peer);
  }
}

static conn *new_conn(int fd, int kind) {
  conn *c = calloc(1, sizeof *c);
  c->fd = fd;
  c->kind = kind;
  c->poll.data = c;
  uv_poll_init(g_loop, &c->poll, fd);
  return c;
}


// read(2)/write(2), or their TLS counterparts: > 0 bytes, 0 end of stream, -1 would block, -2 failed.
static ssize_t io_read(conn *c, char *buf, size_t n) {
  if (!c->ssl) {
    ssize_t r = read(c->fd, buf, n);
    if (r >= 0) return r;
    return errno == EAGAIN || errno == EINTR ? -1 : -2;
  }
  size_t got = 0;
  int ok = SSL_read_ex(c->ssl, buf, n, &got);
  if (ok) return (ssize_t)got;
  int e = SSL_get_error(c->ssl, ok);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1 : e == SSL_ERROR_ZERO_RETURN ? 0 : -2;
}
static ssize_t io_write(conn *c, const char *p, size_t n) {
  if (!c->ssl) {
    for (;;) {
      ssize_t w = write(c->fd, p, n);
      if (w >= 0) return w;
      if (errno != EINTR) return errno == EAGAIN ? -1 : -2;
    }
  }
  size_t put = 0;
  int ok = SSL_write_ex(c->ssl, p, n, &put);
  if (ok) return (ssize_t)put;
  int e = SSL_get_error(c->ssl, ok);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -1 : -2;
}

// Writes now what the socket takes; keeps the rest and waits for it to become writable.
static void send_bytes(conn *c, const char *p, size_t n) {
  if (c->out_len == 0 && !c->connecting) {
    while (n > 0) {
      ssize_t w = io_write(c, p, n);
      if (w == -1) break;
      if (w < 0) {
        close_conn(c);
        return;
      }
      p += w;
      n -= (size_t)w;
    }
    if (n == 0) return;
  }
  if (c->out_len + n > c->out_cap) {
    c->out_cap = (c->out_len + n) * 2;
    c->out = realloc(c->out, c->out_cap);
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  set_events(c, c->events | UV_WRITABLE);
}

static void flush(conn *c) {
  size_t done = 0;
  while (done < c->out_len) {
    ssize_t w = io_write(c, c->out + done, c->out_len - done);
    if (w == -1) break;
    if (w < 0) {
      close_conn(c);
      return;
    }
    done += (size_t)w;
  }
  memmove(c->out, c->out + done, c->out_len - done);
  c->out_len -= done;
  if (c->out_len == 0) set_events(c, c->events & ~UV_WRITABLE);
}


// ------------------------------------------------------------------ heads mode

static void hdr_piece(headers *h, const char *at, size_t n) {
  if (!h->open) {
    if (h->count == 128) {
      h->overflow = 1;
      return;
    }
    h->off[h->count] = (uint32_t)h->len;
    h->n[h->count++] = 0;
    h->open = 1;
  }
  if (h->len + n > sizeof h->buf) {
    h->overflow = 1;
    return;
  }
  memcpy(h->buf + h->len, at, n);
  h->len += n;
  h->n[h->count - 1] += (uint32_t)n;
}
static int on_field(llhttp_t *p, const char *at, size_t n) {
  hdr_piece(&((conn *)p->data)->h, at, n);
  return 0;
}
static int on_value(llhttp_t *p, const char *at, size_t n) {
  hdr_piece(&((conn *)p->data)->h, at, n);
  return 0;
}
static int on_field_complete(llhttp_t *p) {
  ((conn *)p->data)->h.open = 0;
  return 0;
}
static int on_value_complete(llhttp_t *p) {
  headers *h = &((conn *)p->data)->h;
  if (h->count % 2 == 1) hdr_piece(h, "", 0);  // an empty value has no piece
  h->open = 0;
  return 0;
}

static napi_value header_array(headers *h) {
  napi_value arr, v;
  napi_create_array_with_length(g_env, (size_t)h->count, &arr);
  for (int i = 0; i < h->count; i++) {
    napi_create_string_latin1(g_env, h->buf + h->off[i], h->n[i], &v);
    napi_set_element(g_env, arr, (uint32_t)i, v);
  }
  h->count = 0;
  h->len = 0;
  h->open = 0;
  return arr;
}

// Calls fn(args) and writes the string it returns (element `at` of an array result when at >= 0) to `to`;
// returns the number result (element 0), or -1.
static int call_and_send(napi_ref ref, size_t argc, napi_value *argv, conn *to, int at) {
  napi_value fn, global, result, head = NULL, first;
  napi_get_reference_value(g_env, ref, &fn);
  napi_get_global(g_env, &global);
  if (napi_call_function(g_env, global, fn, argc, argv, &result) != napi_ok) {
    napi_value ignored;
    napi_get_and_clear_last_exception(g_env, &ignored);
    return -1;
  }
  int32_t index = 0;
  if (at >= 0) {
    napi_get_element(g_env, result, 0, &first);
    napi_get_value_int32(g_env, first, &index);
    napi_get_element(g_env, result, (uint32_t)at, &head);
  } else head = result;
  if (to) {
    char buf[16384];
    size_t len = 0;
    if (napi_get_value_string_latin1(g_env, head, buf, sizeof buf, &len) != napi_ok) return -1;
    send_bytes(to, buf, len);
  }
  return index;
}

// The head ends at the first CRLF CRLF after it began (llhttp, strict, accepted nothing else).
static size_t head_end(conn *c) {
  const char *start = c->read_at + c->head_from;
  const char *end = memmem(start, c->read_len - c->head_from, "\r\n\r\n", 4);
  return end ? (size_t)(end + 4 - c->read_at) : 0;
}

// ------------------------------------------------------------------ request side

static int req_on_header_field(llhttp_t *p, const char *at, size_t n) {
  conn *d = p->data;
  d->field_is_host = n == 4 && strncasecmp(at, "host", 4) == 0;  // fields split across reads: prototype
  return 0;
}
static int req_on_header_value(llhttp_t *p, const char *at, size_t n) {
  conn *d = p->data;
  if (d->field_is_host && d->host_len + n < sizeof d->host) memcpy(d->host + d->host_len, at, n), d->host_len += n;
  return 0;
}
static int req_on_url(llhttp_t *p, const char *at, size_t n) {
  conn *d = p->data;
  if (d->path_len + n < sizeof d->path) memcpy(d->path + d->path_len, at, n), d->path_len += n;
  return 0;
}

// The per-request decision, in JavaScript: route(host, path) -> endpoint index (or -1: 404).
static int decide(conn *d) {
  napi_handle_scope scope;
  napi_open_handle_scope(g_env, &scope);
  napi_value fn, global, argv[2], result;
  napi_get_reference_value(g_env, g_route, &fn);
  napi_get_global(g_env, &global);
  napi_create_string_latin1(g_env, d->host, d->host_len, &argv[0]);
  napi_create_string_latin1(g_env, d->path, d->path_len, &argv[1]);
  int32_t index = -1;
  if (napi_call_function(g_env, global, fn, 2, argv, &result) == napi_ok) napi_get_value_int32(g_env, result, &index);
  else {
    napi_value ignored;
    napi_get_and_clear_last_exception(g_env, &ignored);
  }
  napi_close_handle_scope(g_env, scope);
  return index;
}

static conn *upstream_for(int index) {
  endpoint *e = &g_endpoints[index];
  if (e->idle) {
    conn *u = e->idle;
    e->idle = u->next_idle;
    u->next_idle = NULL;
    return u;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&e->addr, sizeof e->addr) < 0 && errno != EINPROGRESS) {
    close(fd);
    return NULL;
  }
  conn *u = new_conn(fd, UP);
  u->endpoint = index;
  u->connecting = 1;
  if (g_client_tls) {
    u->ssl = SSL_new(g_client_tls);
    SSL_set_fd(u->ssl, fd);
    SSL_set_connect_state(u->ssl);
  }
  llhttp_init(&u->parser, HTTP_RESPONSE, &g_response_settings);
  u->parser.data = u;
  return u;
}


// Heads mode: request(method, path, headers) -> [endpoint, head]; the head replaces the client's.
static int heads_request(conn *d) {
  size_t end = head_end(d);
  if (!end || d->h.overflow) {
    d->no_route = 1;
    return -1;
  }
  napi_handle_scope scope;
  napi_open_handle_scope(g_env, &scope);
  napi_value argv[3];
  const char *method = llhttp_method_name(llhttp_get_method(&d->parser));
  napi_create_string_latin1(g_env, method, NAPI_AUTO_LENGTH, &argv[0]);
  napi_create_string_latin1(g_env, d->path, d->path_len, &argv[1]);
  argv[2] = header_array(&d->h);
  // the endpoint first: the upstream connection must exist before the head is written to it
  napi_value fn, global, result, first, head;
  napi_get_reference_value(g_env, g_route, &fn);
  napi_get_global(g_env, &global);
  int32_t index = -1;
  conn *u = NULL;
  if (napi_call_function(g_env, global, fn, 3, argv, &result) == napi_ok) {
    napi_get_element(g_env, result, 0, &first);
    napi_get_value_int32(g_env, first, &index);
    if (index >= 0 && index < g_endpoint_count && (u = upstream_for(index))) {
      char buf[16384];
      size_t len = 0;
      napi_get_element(g_env, result, 1, &head);
      napi_get_value_string_latin1(g_env, head, buf, sizeof buf, &len);
      u->peer = d;
      d->peer = u;
      set_events(u, UV_READABLE | (u->events & UV_WRITABLE));
      send_bytes(u, buf, len);
    }
  } else {
    napi_value ignored;
    napi_get_and_clear_last_exception(g_env, &ignored);
  }
  napi_close_handle_scope(g_env, scope);
  if (!u) {
    d->no_route = 1;
    return -1;
  }
  d->skip_to = end;  // the client's own head is not forwarded
  return 0;
}

static int req_on_headers_complete(llhttp_t *p) {
  conn *d = p->data;
  d->head_done = 1;
  d->keep_alive = llhttp_should_keep_alive(p);
  if (g_respond) return heads_request(d);
  int index = decide(d);
  conn *u = index < 0 || index >= g_endpoint_count ? NULL : upstream_for(index);
  if (!u) {
    d->no_route = 1;
    return -1;
  }
  u->peer = d;
  d->peer = u;
  set_events(u, UV_READABLE | (u->events & UV_WRITABLE));
  return 0;
}
static int req_on_message_complete(llhttp_t *p) {
  ((conn *)p->data)->msg_done = 1;
  return HPE_PAUSED;
}

static void down_process(conn *d) {
  while (!d->waiting && d->parsed < d->in_len && !d->closing) {
    const char *start = d->in + d->parsed;
    d->read_at = d->in;
    d->read_len = d->in_len;
    d->head_from = d->forwarded;
    llhttp_errno_t err = llhttp_execute(&d->parser, start, d->in_len - d->parsed);
    size_t consumed = err == HPE_OK ? d->in_len - d->parsed : (size_t)(llhttp_get_error_pos(&d->parser) - start);
    d->parsed += consumed;
    if (err != HPE_OK && err != HPE_PAUSED) {
      static const char bad[] = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
      static const char none[] = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
      if (d->no_route) (void)io_write(d, none, sizeof none - 1);
      else (void)io_write(d, bad, sizeof bad - 1);
      close_conn(d);
      return;
    }
    if (d->skip_to > d->forwarded) {
      d->forwarded = d->skip_to;
      d->skip_to = 0;
    }
    if (d->peer && d->parsed > d->forwarded) {
      send_bytes(d->peer, d->in + d->forwarded, d->parsed - d->forwarded);
      d->forwarded = d->parsed;
    }
    if (err == HPE_PAUSED) {
      llhttp_resume(&d->parser);
      // The request is out; read no more from this client until its response is complete.
      d->waiting = 1;
      set_events(d, d->events & ~UV_READABLE);
    }
  }
  if (d->forwarded == d->in_len && d->parsed == d->in_len) d->in_len = d->parsed = d->forwarded = 0;
  else if (d->forwarded > 0 && d->forwarded == d->parsed) {
    memmove(d->in, d->in + d->forwarded, d->in_len - d->forwarded);
    d->in_len -= d->forwarded;
    d->parsed = d->forwarded = 0;
  }
}

// ------------------------------------------------------------------ response side

// Heads mode: respond(status, headers) -> head; it replaces the upstream's.
static int res_on_headers_complete(llhttp_t *p) {
  conn *u = p->data;
  if (!g_respond || !u->peer) return 0;
  size_t end = head_end(u);
  if (!end || u->h.overflow) return -1;  // prototype: a response head split across reads is refused
  napi_handle_scope scope;
  napi_open_handle_scope(g_env, &scope);
  napi_value argv[2];
  napi_create_int32(g_env, llhttp_get_status_code(p), &argv[0]);
  argv[1] = header_array(&u->h);
  u->peer->answered = 1;
  int ok = call_and_send(g_respond, 2, argv, u->peer, -1) >= 0;
  napi_close_handle_scope(g_env, scope);
  if (!ok) return -1;
  u->skip_to = end;
  return 0;
}

static int res_on_message_complete(llhttp_t *p) {
  ((conn *)p->data)->msg_done = 1;
  return HPE_PAUSED;
}

static void response_done(conn *u) {
  conn *d = u->peer;
  int reuse = llhttp_should_keep_alive(&u->parser);
  llhttp_resume(&u->parser);
  u->msg_done = 0;
  u->peer = NULL;
  d->peer = NULL;
  if (reuse) {
    u->next_idle = g_endpoints[u->endpoint].idle;
    g_endpoints[u->endpoint].idle = u;
  } else close_conn(u);
  if (!d->keep_alive) {
    close_conn(d);
    return;
  }
  d->waiting = d->head_done = d->msg_done = d->answered = 0;
  d->host_len = d->path_len = 0;
  set_events(d, d->events | UV_READABLE);
  down_process(d);
  if (!d->closing && !d->waiting && d->ssl && SSL_pending(d->ssl) > 0) down_readable(d);
}

static void up_readable(conn *u) {
  char buf[BUF];
  if (u->ssl && u->out_len) flush(u);  // a TLS handshake in progress may have been waiting for this read
  if (u->closing) return;
  ssize_t n = io_read(u, buf, sizeof buf);
  if (n == -1) return;
  if (n <= 0) {
    close_conn(u);
    return;
  }
  conn *d = u->peer;
  if (!d) {  // an idle connection spoke: nothing to answer, so it is closed
    close_conn(u);
    return;
  }
  u->read_at = buf;
  u->read_len = (size_t)n;
  u->head_from = 0;
  u->skip_to = 0;
  llhttp_errno_t err = llhttp_execute(&u->parser, buf, (size_t)n);
  size_t consumed = err == HPE_OK ? (size_t)n : (size_t)(llhttp_get_error_pos(&u->parser) - buf);
  if (err != HPE_OK && err != HPE_PAUSED) {
    close_conn(u);
    return;
  }
  d->answered = 1;
  if (consumed > u->skip_to) send_bytes(d, buf + u->skip_to, consumed - u->skip_to);
  if (err == HPE_PAUSED && !d->closing) response_done(u);
}

// ------------------------------------------------------------------ events

static void down_readable(conn *d) {
  if (d->in_len == BUF) {  // a head larger than the buffer
    close_conn(d);
    return;
  }
  if (d->ssl && d->out_len) flush(d);
  if (d->closing) return;
  ssize_t n;
  // TLS: a record larger than the room left stays decrypted inside OpenSSL, where no poll sees it
  do {
    n = io_read(d, d->in + d->in_len, BUF - d->in_len);
    if (n == -1) break;
    if (n <= 0) {
      close_conn(d);
      return;
    }
    d->in_len += (size_t)n;
  } while (d->ssl && SSL_pending(d->ssl) > 0 && d->in_len < BUF);
  if (d->in_len) down_process(d);
}

static void accept_all(conn *l) {
  for (;;) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *d = new_conn(fd, DOWN);
    if (g_server_tls) {
      d->ssl = SSL_new(g_server_tls);
      SSL_set_fd(d->ssl, fd);
      SSL_set_accept_state(d->ssl);
    }
    llhttp_init(&d->parser, HTTP_REQUEST, &g_request_settings);
    d->parser.data = d;
    set_events(d, UV_READABLE);
  }
}

static void on_event(uv_poll_t *h, int status, int events) {
  conn *c = h->data;
  if (status < 0) {
    close_conn(c);
    return;
  }
  if (c->kind == LISTENER) return accept_all(c);
  if ((events & UV_WRITABLE) && c->connecting) {
    int error = 0;
    socklen_t len = sizeof error;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error) {
      close_conn(c);
      return;
    }
    c->connecting = 0;
  }
  if ((events & UV_WRITABLE) && !c->closing) flush(c);
  if ((events & UV_READABLE) && !c->closing) {
    if (c->kind == DOWN) down_readable(c);
    else up_readable(c);
  }
}

// ------------------------------------------------------------------ JavaScript API

static int parse_address(napi_env env, napi_value host, napi_value port, struct sockaddr_in *addr) {
  char ip[64];
  size_t len;
  int32_t p;
  napi_get_value_string_latin1(env, host, ip, sizeof ip, &len);
  napi_get_value_int32(env, port, &p);
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_port = htons((uint16_t)p);
  return inet_pton(AF_INET, ip, &addr->sin_addr) == 1 ? 0 : -1;
}

// addEndpoint(ip, port) -> index
static napi_value add_endpoint(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (g_endpoint_count == 64 || parse_address(env, argv[0], argv[1], &g_endpoints[g_endpoint_count].addr) < 0) {
    napi_throw_error(env, NULL, "addEndpoint(ip, port): a dotted IPv4 address and a port; at most 64");
    return NULL;
  }
  napi_create_int32(env, g_endpoint_count++, &result);
  return result;
}

// listen(ip, port, route[, respond]) -> bound port. With respond: heads mode, route(method, path,
// headers) -> [endpoint, head] and respond(status, headers) -> head, headers a flat [name, value, ...].
static napi_value listen_on(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct sockaddr_in addr;
  if (parse_address(env, argv[0], argv[1], &addr) < 0) {
    napi_throw_error(env, NULL, "listen(ip, port, route): a dotted IPv4 address");
    return NULL;
  }
  g_env = env;
  napi_create_reference(env, argv[2], 1, &g_route);
  napi_valuetype type = napi_undefined;
  if (argc == 4) napi_typeof(env, argv[3], &type);
  if (type == napi_function) {
    napi_create_reference(env, argv[3], 1, &g_respond);
    g_request_settings.on_header_field = on_field;
    g_request_settings.on_header_value = on_value;
    g_request_settings.on_header_field_complete = on_field_complete;
    g_request_settings.on_header_value_complete = on_value_complete;
    g_response_settings.on_header_field = on_field;
    g_response_settings.on_header_value = on_value;
    g_response_settings.on_header_field_complete = on_field_complete;
    g_response_settings.on_header_value_complete = on_value_complete;
    g_response_settings.on_headers_complete = res_on_headers_complete;
  }
  napi_get_uv_event_loop(env, (struct uv_loop_s **)&g_loop);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 511) < 0) {
    close(fd);
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  socklen_t len = sizeof addr;
  getsockname(fd, (struct sockaddr *)&addr, &len);
  conn *l = new_conn(fd, LISTENER);
  set_events(l, UV_READABLE);
  napi_create_int32(env, ntohs(addr.sin_port), &result);
  return result;
}


static SSL_CTX *tls_context(napi_env env, napi_value pem_value, napi_value ca_value, int server) {
  char pem[1024], ca[1024];
  size_t len;
  napi_get_value_string_utf8(env, pem_value, pem, sizeof pem, &len);
  napi_get_value_string_utf8(env, ca_value, ca, sizeof ca, &len);
  SSL_CTX *ctx = SSL_CTX_new(TLS_method());
  if (SSL_CTX_use_certificate_chain_file(ctx, pem) != 1 || SSL_CTX_use_PrivateKey_file(ctx, pem, SSL_FILETYPE_PEM) != 1 || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
    napi_throw_error(env, NULL, "tls: cannot load the certificate, key or CA file");
    return NULL;
  }
  // mutual TLS both ways, as the mesh hop's HAProxy pair (`verify required`)
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
  SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, NULL);
  if (server) SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"weft-native", 11);
  return ctx;
}

// tls(side, pemPath, caPath): side "listen" (accepted connections require a client certificate) or
// "upstream" (connections out present pemPath's certificate and verify the server's against caPath).
static napi_value tls(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char side[16];
  size_t len;
  napi_get_value_string_utf8(env, argv[0], side, sizeof side, &len);
  SSL_CTX *ctx = tls_context(env, argv[1], argv[2], strcmp(side, "listen") == 0);
  if (ctx && strcmp(side, "listen") == 0) g_server_tls = ctx;
  else if (ctx) g_client_tls = ctx;
  return NULL;
}

NAPI_MODULE_INIT() {
  llhttp_settings_init(&g_request_settings);
  g_request_settings.on_url = req_on_url;
  g_request_settings.on_header_field = req_on_header_field;
  g_request_settings.on_header_value = req_on_header_value;
  g_request_settings.on_headers_complete = req_on_headers_complete;
  g_request_settings.on_message_complete = req_on_message_complete;
  llhttp_settings_init(&g_response_settings);
  g_response_settings.on_message_complete = res_on_message_complete;
  napi_value fn;
  napi_create_function(env, "addEndpoint", NAPI_AUTO_LENGTH, add_endpoint, NULL, &fn);
  napi_set_named_property(env, exports, "addEndpoint", fn);
  napi_create_function(env, "listen", NAPI_AUTO_LENGTH, listen_on, NULL, &fn);
  napi_set_named_property(env, exports, "listen", fn);
  napi_create_function(env, "tls", NAPI_AUTO_LENGTH, tls, NULL, &fn);
  napi_set_named_property(env, exports, "tls", fn);
  return exports;
}
