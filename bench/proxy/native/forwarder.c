// Issue 14's "native byte path", a prototype for measurement only: an HTTP/1.1 forwarder whose bytes
// never become JavaScript objects, with each request's decision still made by a TypeScript function. It
// answers one question: if the proxy kept its decisions in TypeScript and moved reading, parsing, pooling,
// TLS and writing into native code, what would a hop cost? (bench/proxy/native-floor.ts loads it; hop.ts
// measures it beside weft-proxy, HAProxy and the other floors; packages/proxy/README.md has the numbers.)
//
// - Parsing: llhttp, the parser Node's own http module uses, from Debian's node-llhttp sources
//   (/usr/share/llhttp), strict, both directions, so message boundaries (Content-Length, chunked) are the
//   parser's, not ours. Built with -fvisibility=hidden -Wl,-Bsymbolic: Node's binary exports its own
//   (newer) llhttp, and without them this library's calls bind to Node's copy, whose structures differ (no
//   callback ever fires).
// - I/O: non-blocking sockets, read(2)/write(2) straight from and to per-connection buffers, idle upstream
//   connections pooled per endpoint; TLS (mutual, `tls()`) through OpenSSL (the copy Node exports; on Bun,
//   Debian's libssl3). Waiting: uv_poll on Node's own loop (napi_get_uv_event_loop), or in thread mode an
//   epoll thread of its own (for Bun, which has no libuv).
// - Decisions, per request, in JavaScript: route(host, path) -> endpoint; in heads mode route(method, path,
//   headers) -> [endpoint, head] and respond(status, headers) -> head; in plan mode route(...) -> [endpoint,
//   head, response header lines], the response head rebuilt here. Called synchronously on Node's loop, or
//   handed to the JS thread and back in thread mode.
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
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
  int field_is_host;
  headers h;            // heads mode: this message's headers
  const char *read_at;  // heads mode: the read buffer being parsed, and where this message's head began in it
  size_t read_len, head_from, skip_to;
  int registered, job_pending, resumed;  // thread mode: on the epoll set; a decision outstanding; parse once more
  char *plan;       // plan mode (DOWN): the response header lines its request's decision returned
  size_t plan_len;
  char *rest;                             // thread mode: response bytes read after a head awaiting its decision
  size_t rest_len;
};

typedef struct { struct sockaddr_in addr; conn *idle; } endpoint;

static napi_env g_env;
static napi_ref g_route, g_respond;  // g_respond set: heads mode (TypeScript rewrites both heads)
// Heads (request side): with respond, or in plan mode (listen(..., 'plan')), where route returns
// [endpoint, head, response header lines] and C rewrites each response head from that plan (hop-by-hop
// headers dropped, the plan's lines added) and counts responses by class (stats()), with no JS call.
static int g_heads, g_plan;
static uint64_t g_status_classes[6];
static uv_loop_t *g_loop;
static endpoint g_endpoints[64];
static int g_endpoint_count;
static llhttp_settings_t g_request_settings, g_response_settings;

// Thread mode (listen(ip, port, route, respond or 'plan', true)): for a runtime without libuv (Bun), the connections live on
// a thread of their own with its own epoll set, and each decision is a job handed to the JS thread
// through a thread-safe function; its answer comes back through a queue and an eventfd.
// A decision: which connection's message it is about (its parser is paused until the answer, so the
// method, path and headers are read from the connection), and the answer: endpoint (-1: none), the head
// to send, in plan mode the response's header lines.
typedef struct job {
  conn *c;
  int response, status;
  int32_t endpoint;
  char *head, *plan;
  size_t head_len, plan_len;
  struct job *next;
} job;
static int g_threaded, g_epoll = -1, g_wake = -1;
static napi_threadsafe_function g_tsfn;
static pthread_mutex_t g_done_lock = PTHREAD_MUTEX_INITIALIZER;
static job *g_done;
static conn *g_dead;  // thread mode: closed during this epoll batch, freed after it

static void on_event(uv_poll_t *h, int status, int events);
static void send_bytes(conn *c, const char *p, size_t n);
static conn *upstream_for(int index);
static size_t head_end(conn *c);
static napi_value header_array(headers *h);
static void post(conn *c, job *j);
static void down_process(conn *d);
static void down_readable(conn *d);
static ssize_t io_write(conn *c, const char *p, size_t n);

static void set_events(conn *c, int events) {
  if (c->events == events) return;
  c->events = events;
  if (g_threaded) {
    struct epoll_event ev = { .events = (events & UV_READABLE ? EPOLLIN : 0) | (events & UV_WRITABLE ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(g_epoll, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
    c->registered = 1;
    return;
  }
  if (events) uv_poll_start(&c->poll, events, on_event);
  else uv_poll_stop(&c->poll);
}

static void free_conn(void *h) {
  conn *c = (conn *)((uv_poll_t *)h)->data;
  if (c->ssl) SSL_free(c->ssl);
  free(c->out);
  free(c->rest);
  free(c->plan);
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
  if (g_threaded) {
    epoll_ctl(g_epoll, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (!c->job_pending) {  // else when its job comes back
      c->next_idle = g_dead;
      g_dead = c;
    }
  } else {
    uv_poll_stop(&c->poll);
    close(c->fd);
    uv_close(&c->poll, free_conn);
  }
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
  if (!g_threaded) uv_poll_init(g_loop, &c->poll, fd);
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

static void hdr_reset(headers *h) {
  h->count = 0;
  h->len = 0;
  h->open = 0;
  h->overflow = 0;
}

static napi_value header_array(headers *h) {
  napi_value arr, v;
  napi_create_array_with_length(g_env, (size_t)h->count, &arr);
  for (int i = 0; i < h->count; i++) {
    napi_create_string_latin1(g_env, h->buf + h->off[i], h->n[i], &v);
    napi_set_element(g_env, arr, (uint32_t)i, v);
  }
  hdr_reset(h);
  return arr;
}

// Calls the function `ref` holds; false (its exception cleared) when it threw.
static bool call(napi_env env, napi_ref ref, size_t argc, napi_value *argv, napi_value *result) {
  napi_value fn, global;
  napi_get_reference_value(env, ref, &fn);
  napi_get_global(env, &global);
  if (napi_call_function(env, global, fn, argc, argv, result) == napi_ok) return true;
  napi_value ignored;
  napi_get_and_clear_last_exception(env, &ignored);
  return false;
}

static char *copy_string(napi_env env, napi_value v, size_t *len) {
  *len = 0;
  if (napi_get_value_string_latin1(env, v, NULL, 0, len) != napi_ok) return NULL;
  char *out = malloc(*len + 1);
  napi_get_value_string_latin1(env, v, out, *len + 1, len);
  return out;
}

// Asks JavaScript for decision `j`, on the JS thread (inside a handle scope): the default mode calls it from
// the parser's callback, thread mode from the thread-safe function. route(host, path) -> endpoint; heads and
// plan modes route(method, path, headers) -> [endpoint, head(, response lines)]; respond(status, headers) -> head.
static void decide(napi_env env, job *j) {
  conn *c = j->c;
  napi_value argv[3], result, v;
  size_t argc = 2;
  j->endpoint = -1;
  if (j->response) {
    napi_create_int32(env, j->status, &argv[0]);
    argv[1] = header_array(&c->h);
  } else if (g_heads) {
    napi_create_string_latin1(env, llhttp_method_name(llhttp_get_method(&c->parser)), NAPI_AUTO_LENGTH, &argv[0]);
    napi_create_string_latin1(env, c->path, c->path_len, &argv[1]);
    argv[2] = header_array(&c->h);
    argc = 3;
  } else {
    napi_create_string_latin1(env, c->host, c->host_len, &argv[0]);
    napi_create_string_latin1(env, c->path, c->path_len, &argv[1]);
  }
  if (!call(env, j->response ? g_respond : g_route, argc, argv, &result)) return;
  if (j->response) {
    j->head = copy_string(env, result, &j->head_len);
    j->endpoint = j->head ? 0 : -1;
  } else if (g_heads) {
    napi_get_element(env, result, 0, &v);
    napi_get_value_int32(env, v, &j->endpoint);
    napi_get_element(env, result, 1, &v);
    j->head = copy_string(env, v, &j->head_len);
    if (g_plan) {
      napi_get_element(env, result, 2, &v);
      j->plan = copy_string(env, v, &j->plan_len);
    }
  } else napi_get_value_int32(env, result, &j->endpoint);
}

// Gives a request the upstream connection its decision chose and writes the decided head to it (without one,
// the client's own bytes follow); false when there is none.
static bool attach(conn *d, job *j) {
  conn *u = j->endpoint >= 0 && j->endpoint < g_endpoint_count ? upstream_for(j->endpoint) : NULL;
  if (!u) return false;
  u->peer = d;
  d->peer = u;
  set_events(u, UV_READABLE | (u->events & UV_WRITABLE));
  if (j->head) send_bytes(u, j->head, j->head_len);
  free(d->plan);
  d->plan = j->plan;
  d->plan_len = j->plan_len;
  j->plan = NULL;
  return true;
}

// The head ends at the first CRLF CRLF after it began (llhttp, strict, accepted nothing else).
static size_t head_end(conn *c) {
  const char *start = c->read_at + c->head_from;
  const char *end = memmem(start, c->read_len - c->head_from, "\r\n\r\n", 4);
  return end ? (size_t)(end + 4 - c->read_at) : 0;
}


// ------------------------------------------------------------------ thread mode: decisions as jobs

static void post(conn *c, job *j) {
  j->c = c;
  c->job_pending = 1;
  // read nothing more until the decision (as the default mode, which decides before it reads again): a
  // client's end of stream read meanwhile would close the connection under its own request
  set_events(c, c->events & ~UV_READABLE);
  napi_call_threadsafe_function(g_tsfn, j, napi_tsfn_nonblocking);
}

// On the JS thread: the decision, then the job back to the connections' thread.
static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)context;
  job *j = data;
  j->endpoint = -1;
  if (env) decide(env, j);
  pthread_mutex_lock(&g_done_lock);
  j->next = g_done;
  g_done = j;
  pthread_mutex_unlock(&g_done_lock);
  uint64_t one = 1;
  (void)!write(g_wake, &one, sizeof one);
}

static void parse_response(conn *u, char *buf, size_t n);

static void apply(job *j) {
  conn *c = j->c;
  c->job_pending = 0;
  if (c->closing) {
    c->next_idle = g_dead;
    g_dead = c;
    return;
  }
  if (j->response) {
    conn *d = c->peer;
    if (!d || j->endpoint < 0) {
      close_conn(c);
      return;
    }
    d->answered = 1;
    send_bytes(d, j->head, j->head_len);
    if (c->closing) return;
    llhttp_resume(&c->parser);
    set_events(c, c->events | UV_READABLE);
    char *rest = c->rest;
    size_t len = c->rest_len;
    c->rest = NULL;
    c->rest_len = 0;
    parse_response(c, rest ? rest : "", len);
    free(rest);
    return;
  }
  if (!attach(c, j)) {
    static const char none[] = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    (void)io_write(c, none, sizeof none - 1);
    close_conn(c);
    return;
  }
  llhttp_resume(&c->parser);
  set_events(c, c->events | UV_READABLE);
  c->resumed = 1;  // parse on, even with no byte left: a request without a body completes now
  down_process(c);
}

static void *connections_thread(void *arg) {
  (void)arg;
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(g_epoll, events, 256, -1);
    for (int i = 0; i < n; i++) {
      conn *c = events[i].data.ptr;
      if (!c) {  // jobs are back
        uint64_t count;
        (void)!read(g_wake, &count, sizeof count);
        pthread_mutex_lock(&g_done_lock);
        job *list = g_done;
        g_done = NULL;
        pthread_mutex_unlock(&g_done_lock);
        while (list) {
          job *next = list->next;
          apply(list);
          free(list->head);
          free(list->plan);
          free(list);
          list = next;
        }
        continue;
      }
      if (c->closing) continue;
      uint32_t e = events[i].events;
      int ev = (e & (EPOLLIN | EPOLLHUP | EPOLLERR) ? UV_READABLE : 0) | (e & (EPOLLOUT | EPOLLHUP | EPOLLERR) ? UV_WRITABLE : 0);
      on_event(&c->poll, 0, ev & (c->events | (e & (EPOLLHUP | EPOLLERR) ? UV_READABLE : 0)));
    }
    while (g_dead) {
      conn *c = g_dead;
      g_dead = c->next_idle;
      free_conn(&c->poll);
    }
  }
  return NULL;
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


// The request's decision: in thread mode handed to the JS thread (the parser pauses until it is back), else
// asked now. In heads and plan modes the client's own head is not forwarded (skip_to), the decided one is.
static int req_on_headers_complete(llhttp_t *p) {
  conn *d = p->data;
  d->head_done = 1;
  d->keep_alive = llhttp_should_keep_alive(p);
  size_t end = 0;
  if (g_heads && (d->h.overflow || !(end = head_end(d)))) {
    d->no_route = 1;
    return -1;
  }
  d->skip_to = end;
  if (g_threaded) {
    post(d, calloc(1, sizeof(job)));
    return HPE_PAUSED;
  }
  job j = { .c = d };
  napi_handle_scope scope;
  napi_open_handle_scope(g_env, &scope);
  decide(g_env, &j);
  napi_close_handle_scope(g_env, scope);
  bool ok = attach(d, &j);
  free(j.head);
  free(j.plan);
  if (ok) return 0;
  d->no_route = 1;
  return -1;
}
static int req_on_message_complete(llhttp_t *p) {
  ((conn *)p->data)->msg_done = 1;
  return HPE_PAUSED;
}

static void down_process(conn *d) {
  while (!d->waiting && !d->job_pending && (d->parsed < d->in_len || d->resumed) && !d->closing) {
    d->resumed = 0;
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
    if (err == HPE_PAUSED && d->job_pending) break;  // thread mode: at a head, until its decision
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


// Plan mode: the response head rebuilt in C from its status line, its headers minus hop-by-hop ones and
// the lines its request's decision returned; its class counted.
static int plan_response(conn *u) {
  conn *d = u->peer;
  size_t end = head_end(u);
  headers *h = &u->h;
  if (!end || h->overflow) return -1;  // prototype: a response head split across reads is refused
  const char *status_end = memmem(u->read_at + u->head_from, end - u->head_from, "\r\n", 2);
  char buf[16384];
  size_t len = (size_t)(status_end + 2 - (u->read_at + u->head_from));
  if (len > sizeof buf) return -1;
  memcpy(buf, u->read_at + u->head_from, len);
  static const char *hop[] = { "connection", "keep-alive", "proxy-connection", "te", "upgrade" };
  for (int i = 0; i + 1 < h->count; i += 2) {
    const char *name = h->buf + h->off[i];
    size_t nlen = h->n[i], vlen = h->n[i + 1];
    int skip = 0;
    for (size_t k = 0; k < sizeof hop / sizeof *hop; k++) skip |= strlen(hop[k]) == nlen && strncasecmp(hop[k], name, nlen) == 0;
    if (skip) continue;
    if (len + nlen + vlen + 4 > sizeof buf) return -1;
    memcpy(buf + len, name, nlen), len += nlen;
    buf[len++] = ':', buf[len++] = ' ';
    memcpy(buf + len, h->buf + h->off[i + 1], vlen), len += vlen;
    buf[len++] = '\r', buf[len++] = '\n';
  }
  hdr_reset(h);
  if (len + d->plan_len + 2 > sizeof buf) return -1;
  memcpy(buf + len, d->plan, d->plan_len), len += d->plan_len;
  buf[len++] = '\r', buf[len++] = '\n';
  int status = llhttp_get_status_code(&u->parser);
  __atomic_fetch_add(&g_status_classes[status / 100 < 6 ? status / 100 : 0], 1, __ATOMIC_RELAXED);
  d->answered = 1;
  send_bytes(d, buf, len);
  u->skip_to = end;
  return 0;
}

// stats() -> [other, 1xx, 2xx, 3xx, 4xx, 5xx] responses so far (plan mode)
static napi_value stats(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value arr, v;
  napi_create_array_with_length(env, 6, &arr);
  for (uint32_t i = 0; i < 6; i++) {
    napi_create_double(env, (double)__atomic_load_n(&g_status_classes[i], __ATOMIC_RELAXED), &v);
    napi_set_element(env, arr, i, v);
  }
  return arr;
}

// Heads mode: respond(status, headers) -> head; it replaces the upstream's.
static int res_on_headers_complete(llhttp_t *p) {
  conn *u = p->data;
  if (g_plan && u->peer) return plan_response(u);
  if (!g_respond || !u->peer) return 0;
  size_t end = g_threaded ? 0 : head_end(u);  // thread mode keeps what follows the head (rest) instead
  if (u->h.overflow || (!g_threaded && !end)) return -1;  // prototype: a response head split across reads is refused
  job *j = calloc(1, sizeof *j);
  j->response = 1;
  j->status = llhttp_get_status_code(p);
  if (g_threaded) {
    post(u, j);
    return HPE_PAUSED;
  }
  j->c = u;
  napi_handle_scope scope;
  napi_open_handle_scope(g_env, &scope);
  decide(g_env, j);
  napi_close_handle_scope(g_env, scope);
  bool ok = j->head != NULL;
  if (ok) {
    u->peer->answered = 1;
    send_bytes(u->peer, j->head, j->head_len);
    u->skip_to = end;
  }
  free(j->head);
  free(j);
  return ok ? 0 : -1;
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
  parse_response(u, buf, (size_t)n);
}

static void parse_response(conn *u, char *buf, size_t n) {
  conn *d = u->peer;
  u->read_at = buf;
  u->read_len = n;
  u->head_from = 0;
  u->skip_to = 0;
  llhttp_errno_t err = llhttp_execute(&u->parser, buf, n);
  size_t consumed = err == HPE_OK ? n : (size_t)(llhttp_get_error_pos(&u->parser) - buf);
  if (err != HPE_OK && err != HPE_PAUSED) {
    close_conn(u);
    return;
  }
  if (u->job_pending) {  // thread mode: paused at the head; what follows waits for its decision
    u->rest = malloc(n - consumed + 1);
    memcpy(u->rest, buf + consumed, n - consumed);
    u->rest_len = n - consumed;
    set_events(u, u->events & ~UV_READABLE);
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
// listen(ip, port, route, 'plan'[, thread]): plan mode (see g_plan).
// listen(ip, port, route, respond, true): thread mode (see above).
static napi_value listen_on(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct sockaddr_in addr;
  if (parse_address(env, argv[0], argv[1], &addr) < 0) {
    napi_throw_error(env, NULL, "listen(ip, port, route): a dotted IPv4 address");
    return NULL;
  }
  g_env = env;
  napi_create_reference(env, argv[2], 1, &g_route);
  napi_valuetype type = napi_undefined;
  if (argc >= 4) napi_typeof(env, argv[3], &type);
  bool threaded = false;
  if (argc == 5) napi_get_value_bool(env, argv[4], &threaded);
  if (type == napi_string) g_plan = g_heads = 1;
  if (type == napi_function) g_heads = 1, napi_create_reference(env, argv[3], 1, &g_respond);
  if (g_heads) {
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
  if (threaded) {
    g_threaded = 1;
    g_epoll = epoll_create1(EPOLL_CLOEXEC);
    g_wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(g_epoll, EPOLL_CTL_ADD, g_wake, &ev);
    napi_value name;
    napi_create_string_utf8(env, "weft-native-decisions", NAPI_AUTO_LENGTH, &name);
    napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, call_js, &g_tsfn);
  } else napi_get_uv_event_loop(env, (struct uv_loop_s **)&g_loop);
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
  if (threaded) {
    pthread_t thread;
    pthread_create(&thread, NULL, connections_thread, NULL);
  }
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
  napi_create_function(env, "stats", NAPI_AUTO_LENGTH, stats, NULL, &fn);
  napi_set_named_property(env, exports, "stats", fn);
  return exports;
}
