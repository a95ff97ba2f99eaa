/* server.c: `tqhost serve` over libmicrohttpd: the listening socket, TLS, the caps (body,
 * headers, connections, slow clients), one request's life (body, routing, answer, access
 * log, metrics), the suspension of a connection while the engine works for it, the HTTP
 * threads' read-only library connections, the core routes (health, metrics, openapi) and
 * the orderly stop on SIGTERM/SIGINT.
 *
 * Threads: MHD's pool threads run on_request and friends; the engine thread calls
 * tq_srv_conn_answer; the thread that called tq_server_run waits for the stop signal and
 * cuts connections that hold a request open past the timeout (a slow client sending a byte
 * a second is never idle, so MHD's own inactivity timeout does not catch it). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "events_int.h"
#include "server_int.h"
#include "tqhost/plugin.h"

#include "tq_version.h" /* TQ_VERSION, generated at build time (cmake/version.cmake) */

#define DEFAULT_LISTEN "127.0.0.1:8443"
#define HEADER_MEMORY (64 * 1024) /* per connection: headers and read buffer */
#define STOP_WAIT_MS 30000        /* in-flight requests get this long on SIGTERM */
#define CSP "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/* One connection, watched for requests held open past the timeout. */
typedef struct watch {
  struct watch *prev, *next;
  int fd;
  int64_t since_ms; /* when the current request (or the wait for it) began */
  int busy;         /* the request is complete: handled, suspended or being answered */
  int cut;
} watch;

struct tq_srv {
  tq_server_opts o;
  struct MHD_Daemon *mhd;
  tq_engine *eng;
  tq_runs *runs;     /* runs.c: bulk runs, polls, the scheduler */
  tq_events *events; /* events.c: run progress streams */
  tq_web *web;       /* web.c: the web UI's files; NULL when there is none */
  int listen_fd;
  int tls;
  char *key_path;             /* tq_plugin_key_path */
  atomic_int inflight;        /* requests read and not yet completed */
  const tq_route *tables[16]; /* tq_route_tables, plus the test hooks when enabled */
  pthread_mutex_t watch_mu;
  watch *watches;
};

enum { PH_NEW, PH_BODY, PH_RUN, PH_ANSWERED };

/* One request (MHD's con_cls), from its request line to its completion. */
typedef struct srv_conn {
  tq_srv *srv;
  struct MHD_Connection *mc;
  char *raw_uri;
  tq_buf body;
  int too_big;
  atomic_int phase;
  int suspended; /* went to the engine: only the resumed call answers */
  int counted;   /* in srv->inflight */
  tq_resp rs;
  tq_req rq;
  tq_route_match m;
  char method[16];
  char remote[64];
  int64_t t0_us;
} srv_conn;

/* ---- the process-wide stop signal ----------------------------------------------------------
 * The only global state of the part besides metrics: a signal handler has nothing else. */
static volatile sig_atomic_t g_stop;
static int g_stop_pipe[2] = {-1, -1};

void tq_server_stop(void) {
  g_stop = 1;
  if (g_stop_pipe[1] >= 0) {
    char b = 1;
    ssize_t w = write(g_stop_pipe[1], &b, 1);
    (void)w;
  }
}

static void on_signal(int sig) {
  (void)sig;
  tq_server_stop();
}

/* ---- the HTTP threads' read-only library connections -------------------------------------- */

static pthread_key_t rd_key;
static pthread_once_t rd_once = PTHREAD_ONCE_INIT;

static void rd_close(void *p) { tq_lib_close(p); }
static void rd_key_make(void) { pthread_key_create(&rd_key, rd_close); }

/* This thread's read connection, opened on first use; NULL (logged) when it cannot be. */
static tq_lib *thread_rd(tq_srv *srv, tq_err *err) {
  pthread_once(&rd_once, rd_key_make);
  tq_lib *lib = pthread_getspecific(rd_key);
  if (lib)
    return lib;
  if (tq_lib_open(srv->o.db_path, TQ_LIB_OPEN_READONLY, &lib, err) != TQ_OK) {
    tq_log(TQ_LOG_ERROR, "server", "read connection to %s: %s", srv->o.db_path, err->msg);
    return NULL;
  }
  pthread_setspecific(rd_key, lib);
  return lib;
}

/* ---- accessors ------------------------------------------------------------------------------ */

const tq_server_opts *tq_srv_opts(const tq_srv *srv) { return &srv->o; }
const char *tq_srv_key_path(const tq_srv *srv) { return srv->key_path; }
tq_runs *tq_srv_runs(tq_srv *srv) { return srv->runs; }
tq_events *tq_srv_events(tq_srv *srv) { return srv->events; }

tq_engine *tq_srv_engine(tq_srv *srv) { return srv->eng; }

const char *tq_req_arg(const tq_req *rq, const char *name) {
  const srv_conn *c = rq->conn;
  return c && c->mc ? MHD_lookup_connection_value(c->mc, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

const char *tq_req_header(const tq_req *rq, const char *name) {
  const srv_conn *c = rq->conn;
  return c && c->mc ? MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, name) : NULL;
}

void tq_server_opts_init(tq_server_opts *o) { memset(o, 0, sizeof *o); }

/* ---- suspension ----------------------------------------------------------------------------- */

void *tq_srv_conn_suspend(tq_req *rq) {
  srv_conn *c = rq->conn;
  c->suspended = 1;
  MHD_suspend_connection(c->mc);
  return c;
}

void tq_srv_conn_answer(void *conn, tq_resp *rs) {
  srv_conn *c = conn;
  tq_resp_free(&c->rs);
  c->rs = *rs;
  memset(rs, 0, sizeof *rs);
  atomic_store(&c->phase, PH_ANSWERED);
  MHD_resume_connection(c->mc);
}

/* ---- watching slow requests ------------------------------------------------------------------ */

static watch *conn_watch(struct MHD_Connection *mc) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

static void watch_busy(tq_srv *srv, struct MHD_Connection *mc, int busy) {
  watch *w = conn_watch(mc);
  if (w == NULL)
    return;
  pthread_mutex_lock(&srv->watch_mu);
  w->busy = busy;
  w->since_ms = tq_mono_ms();
  pthread_mutex_unlock(&srv->watch_mu);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  tq_srv *srv = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    watch *w = calloc(1, sizeof *w);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (w == NULL || ci == NULL) {
      free(w);
      return;
    }
    w->fd = ci->connect_fd;
    w->since_ms = tq_mono_ms();
    pthread_mutex_lock(&srv->watch_mu);
    w->next = srv->watches;
    if (srv->watches)
      srv->watches->prev = w;
    srv->watches = w;
    pthread_mutex_unlock(&srv->watch_mu);
    *socket_context = w;
    return;
  }
  watch *w = *socket_context;
  if (w == NULL)
    return;
  pthread_mutex_lock(&srv->watch_mu);
  if (w->prev)
    w->prev->next = w->next;
  else
    srv->watches = w->next;
  if (w->next)
    w->next->prev = w->prev;
  pthread_mutex_unlock(&srv->watch_mu);
  free(w);
  *socket_context = NULL;
}

/* Cuts (shutdown, MHD then closes it) every connection whose request has taken longer than
 * the timeout to arrive: headers or body trickled in, or a TLS handshake never finished. */
static void cut_slow(tq_srv *srv) {
  int64_t now = tq_mono_ms(), limit = (int64_t)srv->o.conn_timeout_s * 1000;
  pthread_mutex_lock(&srv->watch_mu);
  for (watch *w = srv->watches; w; w = w->next)
    if (!w->busy && !w->cut && now - w->since_ms > limit) {
      w->cut = 1;
      shutdown(w->fd, SHUT_RDWR);
      tq_metric_add("tqhost_http_connections_cut_total", "", 1);
    }
  pthread_mutex_unlock(&srv->watch_mu);
}

/* ---- one request --------------------------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc) {
  srv_conn *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->srv = cls;
  c->mc = mc;
  c->raw_uri = strdup(uri ? uri : "/");
  c->t0_us = tq_time_now_us();
  tq_buf_init(&c->body, c->srv->o.max_body);
  atomic_init(&c->phase, PH_NEW);
  return c;
}

static void conn_free(srv_conn *c) {
  tq_buf_free(&c->body);
  tq_resp_free(&c->rs);
  free(c->raw_uri);
  free(c);
}

static void client_addr(struct MHD_Connection *mc, char *out, size_t n) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(out, n, "-");
  if (ci == NULL || ci->client_addr == NULL)
    return;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

/* The response for rs, with the headers every answer carries. */
static enum MHD_Result queue(srv_conn *c) {
  tq_resp *rs = &c->rs;
  if (rs->status == 0)
    tq_resp_fail(rs, 500, "internal error: no answer");
  char *body = NULL;
  size_t len = 0;
  const char *ctype = rs->ctype;
  struct MHD_Response *r = NULL;
  if (rs->stream) { /* server-sent events: the stream's reader feeds the body */
    void *st = rs->stream;
    rs->stream = NULL;
    r = tq_events_response(st, c->mc);
    if (r == NULL)
      return MHD_NO;
    ctype = "text/event-stream";
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
  } else if (rs->body) {
    body = rs->body;
    len = rs->body_len;
    rs->body = NULL;
  } else {
    body = rs->json ? tq_resp_print(rs->json, &len) : strdup("");
    len = body ? len : 0;
    ctype = "application/json";
  }
  if (ctype == NULL)
    ctype = "application/json";
  if (r == NULL)
    r = MHD_create_response_from_buffer(len, body ? body : (void *)"",
                                        body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (r == NULL) {
    free(body);
    return MHD_NO;
  }
  if (rs->status != 304)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  /* Strict headers on every answer: the web UI runs no inline script or style, loads nothing
   * from elsewhere and is never framed; API answers are never cached. */
  MHD_add_response_header(r, "Content-Security-Policy", CSP);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "X-Frame-Options", "DENY");
  MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
                          rs->cache_control ? rs->cache_control : "no-store");
  if (rs->etag)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, rs->etag);
  if (rs->www_authenticate)
    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, rs->www_authenticate);
  else if (rs->status == 401)
    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"tqhost\"");
  if (rs->retry_after_s > 0) {
    char v[24];
    snprintf(v, sizeof v, "%d", rs->retry_after_s);
    MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
  }
  if (rs->status == 413 || c->too_big)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result ret = MHD_queue_response(c->mc, (unsigned)rs->status, r);
  MHD_destroy_response(r);
  return ret;
}

/* Routes the complete request and runs its handler (which may hand it to the engine). */
static void dispatch(srv_conn *c) {
  tq_srv *srv = c->srv;
  char *q = strchr(c->raw_uri, '?');
  if (q)
    *q = '\0';
  if (tq_web_claims(c->raw_uri)) { /* the web UI's files (web.c) */
    const char *inm = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, "If-None-Match");
    tq_web_serve(srv->web, c->method, c->raw_uri, inm, &c->rs);
    if (q)
      *q = '?';
    return;
  }
  int st = tq_route_find(srv->tables, c->method, c->raw_uri, &c->m);
  if (q)
    *q = '?';
  if (st == 400) {
    tq_resp_invalid(&c->rs, "path", "%s", c->m.why);
    return;
  }
  if (st != 200) {
    char *esc = tq_str_escape_dup(c->m.why, TQ_ESC_QUOTE);
    tq_resp_fail(&c->rs, st, "%s", esc ? esc : "no such route");
    free(esc);
    return;
  }
  if (c->too_big) {
    tq_resp_fail(&c->rs, 413, "the request body is over the cap of %zu bytes", srv->o.max_body);
    return;
  }
  tq_req *rq = &c->rq;
  rq->srv = srv;
  rq->method = c->method;
  rq->path = c->m.path;
  memcpy(rq->params, c->m.params, sizeof rq->params);
  rq->n_params = c->m.n_params;
  rq->body = c->body.data ? c->body.data : "";
  rq->body_len = c->body.len;
  rq->remote = c->remote;
  rq->conn = c;
  tq_err err = {0};
  rq->rd = thread_rd(srv, &err);
  if (rq->rd == NULL && c->m.route->fn != tq_routes_core[0].fn) {
    tq_resp_fail(&c->rs, 503, "the library cannot be read; see the server's log");
    c->rs.retry_after_s = 5;
    return;
  }
  tq_route_dispatch(rq, &c->rs, &c->m);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  tq_srv *srv = cls;
  srv_conn *c = *con_cls;
  (void)url;
  (void)version;
  if (c == NULL || c->raw_uri == NULL)
    return MHD_NO;
  c->mc = mc;
  int phase = atomic_load(&c->phase);
  if (phase == PH_NEW) {
    atomic_store(&c->phase, PH_BODY);
    tq_strlcpy(c->method, method, sizeof c->method);
    client_addr(mc, c->remote, sizeof c->remote);
    c->counted = 1;
    atomic_fetch_add(&srv->inflight, 1);
    const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > srv->o.max_body) {
      c->too_big = 1;
      atomic_store(&c->phase, PH_ANSWERED);
      tq_resp_fail(&c->rs, 413, "the request body is over the cap of %zu bytes", srv->o.max_body);
      watch_busy(srv, mc, 1);
      return queue(c);
    }
    return MHD_YES;
  }
  if (phase == PH_BODY) {
    if (*upload_data_size > 0) {
      if (!c->too_big && tq_buf_add(&c->body, upload_data, *upload_data_size) != TQ_OK)
        c->too_big = 1;
      *upload_data_size = 0;
      return MHD_YES;
    }
    atomic_store(&c->phase, PH_RUN);
    watch_busy(srv, mc, 1);
    dispatch(c);
    if (c->suspended)
      return MHD_YES; /* the engine answers; the resumed call queues it */
    atomic_store(&c->phase, PH_ANSWERED);
    return queue(c);
  }
  if (phase == PH_ANSWERED && c->suspended) {
    c->suspended = 0;
    return queue(c);
  }
  return MHD_YES;
}

/* A method as a metric label: the standard ones, anything else "other" (bounded series). */
static const char *metric_method(const char *m) {
  static const char *known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(m, known[i]) == 0)
      return known[i];
  return "other";
}

/* The access log line and the request metrics, once per request. */
static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  tq_srv *srv = cls;
  srv_conn *c = *con_cls;
  *con_cls = NULL;
  if (c == NULL)
    return;
  if (c->counted) {
    double secs = (double)(tq_time_now_us() - c->t0_us) / 1e6;
    const char *route = c->m.route ? c->m.route->pattern : "(none)";
    int status = c->rs.status;
    char labels[512];
    snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",status=\"%d\"", route,
             metric_method(c->method), status);
    tq_metric_add("tqhost_http_requests_total", labels, 1);
    snprintf(labels, sizeof labels, "route=\"%s\"", route);
    tq_metric_observe("tqhost_http_request_duration_seconds", labels, secs);
    tq_log(TQ_LOG_INFO, "http", "%s %s %d %.1fms user=%s addr=%s%s", c->method, route, status,
           secs * 1000, c->rq.who.name[0] ? c->rq.who.name : "-", c->remote,
           toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
    atomic_fetch_sub(&srv->inflight, 1);
  }
  watch_busy(srv, mc, 0);
  conn_free(c);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  char msg[512];
  (void)cls;
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  tq_log(TQ_LOG_INFO, "http", "libmicrohttpd: %s", msg);
}

/* ---- the core routes ------------------------------------------------------------------------ */

static void route_health(tq_req *rq, tq_resp *rs) {
  cJSON *d = cJSON_CreateObject();
  cJSON_AddStringToObject(d, "version", TQ_VERSION);
  if (rq->rd) {
    cJSON_AddStringToObject(d, "library", "ok");
  } else {
    tq_err err = {0};
    tq_lib *probe = NULL;
    if (tq_lib_open(rq->srv->o.db_path, TQ_LIB_OPEN_READONLY, &probe, &err) == TQ_OK) {
      tq_lib_close(probe);
      cJSON_AddStringToObject(d, "library", "ok");
    } else {
      cJSON_AddStringToObject(d, "library", tq_code_name(err.code));
    }
  }
  cJSON_AddStringToObject(d, "engine", "ok");
  tq_resp_data(rs, 200, d);
}

static void route_metrics(tq_req *rq, tq_resp *rs) {
  tq_metric_set("tqhost_engine_queue_depth", "", (double)tq_engine_depth(rq->srv->eng));
  char *text = tq_metrics_text();
  if (text == NULL) {
    tq_resp_fail(rs, 500, "out of memory");
    return;
  }
  rs->status = 200;
  rs->body = text;
  rs->body_len = strlen(text);
  rs->ctype = "text/plain; version=0.0.4; charset=utf-8";
}

static void route_openapi(tq_req *rq, tq_resp *rs) {
  char path[PATH_MAX];
  tq_err err = {0};
  (void)rq;
  if (tq_schema_path("openapi.yaml", path, sizeof path, &err) != TQ_OK) {
    tq_resp_fail(rs, 404, "openapi.yaml is not installed");
    return;
  }
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    tq_resp_fail(rs, 404, "openapi.yaml is not installed");
    return;
  }
  tq_buf b;
  tq_buf_init(&b, 16u << 20);
  char chunk[8192];
  size_t n;
  int bad = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (tq_buf_add(&b, chunk, n) != TQ_OK) {
      bad = 1;
      break;
    }
  fclose(f);
  if (bad) {
    tq_buf_free(&b);
    tq_resp_fail(rs, 500, "openapi.yaml is too large");
    return;
  }
  rs->status = 200;
  rs->body_len = b.len;
  rs->body = tq_buf_take(&b);
  rs->ctype = "application/yaml";
}

/* route_health first: dispatch lets it answer when the library cannot be read. */
const tq_route tq_routes_core[] = {
    {"GET", "/api/health", TQ_ROLE_NONE, route_health},
    {"GET", "/metrics", TQ_ROLE_NONE, route_metrics},
    {"GET", "/api/openapi.yaml", TQ_ROLE_NONE, route_openapi},
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};

/* ---- test hooks ------------------------------------------------------------------------------
 * Enabled by TQHOST_SERVER_TEST_HOOKS=1 in the environment at start (the integration tests),
 * never listed by --print-routes. A job that holds the engine thread for ms milliseconds
 * stands in for a long write: the tests stop the server while it is in flight. */
static void hook_sleep_job(tq_engine *eng, tq_job *job) {
  long ms = (long)(intptr_t)tq_job_ud(job);
  (void)eng;
  tq_log(TQ_LOG_INFO, "server", "test hook: the engine sleeps %ld ms", ms);
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
  cJSON *d = cJSON_CreateObject();
  cJSON_AddNumberToObject(d, "slept_ms", (double)ms);
  tq_resp_data(tq_job_resp(job), 200, d);
  tq_job_done(job);
}

static void hook_sleep(tq_req *rq, tq_resp *rs) {
  const char *s = tq_req_arg(rq, "ms");
  long long ms = 0;
  tq_err err = {0};
  if (s && tq_parse_int(s, 0, 60000, &ms, "ms", &err) != TQ_OK) {
    tq_resp_invalid(rs, "ms", "%s", err.msg);
    return;
  }
  tq_req_engine(rq, rs, hook_sleep_job, (void *)(intptr_t)ms, NULL);
}

static const tq_route test_routes[] = {
    {"POST", "/api/_test/engine-sleep", TQ_ROLE_NONE, hook_sleep},
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};

static void make_tables(tq_srv *srv) {
  size_t n = 0;
  for (size_t i = 0; tq_route_tables[i] && n + 2 < sizeof srv->tables / sizeof srv->tables[0]; i++)
    srv->tables[n++] = tq_route_tables[i];
  const char *hooks = getenv("TQHOST_SERVER_TEST_HOOKS");
  if (hooks && strcmp(hooks, "1") == 0) {
    srv->tables[n++] = test_routes;
    tq_log(TQ_LOG_WARN, "server", "test hooks enabled (TQHOST_SERVER_TEST_HOOKS=1)");
  }
  srv->tables[n] = NULL;
}

/* ---- listening ------------------------------------------------------------------------------ */

/* Splits "ADDR:PORT" / "[V6]:PORT" into host and port. */
static tq_code split_listen(const char *listen, char *host, size_t hn, char *port, size_t pn,
                            tq_err *err) {
  const char *colon;
  if (listen[0] == '[') {
    const char *end = strchr(listen, ']');
    if (end == NULL || end[1] != ':')
      return tq_err_set(err, TQ_EINVAL, "--listen '%s': expected [ADDR]:PORT", listen);
    snprintf(host, hn, "%.*s", (int)(end - listen - 1), listen + 1);
    colon = end + 1;
  } else {
    colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen)
      return tq_err_set(err, TQ_EINVAL, "--listen '%s': expected ADDR:PORT", listen);
    snprintf(host, hn, "%.*s", (int)(colon - listen), listen);
  }
  long long p;
  if (tq_parse_int(colon + 1, 0, 65535, &p, "--listen port", err) != TQ_OK)
    return err ? err->code : TQ_EINVAL;
  snprintf(port, pn, "%lld", p);
  return TQ_OK;
}

static int is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
  if (sa->sa_family == AF_INET6)
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
  return 0;
}

/* Binds and listens; *url gets the base URL with the port resolved. */
static tq_code open_listener(tq_srv *srv, char *url, size_t un, tq_err *err) {
  const char *listen_s = srv->o.listen ? srv->o.listen : DEFAULT_LISTEN;
  char host[256], port[16];
  tq_code rc = split_listen(listen_s, host, sizeof host, port, sizeof port, err);
  if (rc != TQ_OK)
    return rc;
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  int gai = getaddrinfo(host, port, &hints, &ai);
  if (gai != 0)
    return tq_err_set(err, TQ_EINVAL, "--listen '%s': %s", listen_s, gai_strerror(gai));
  if (!srv->tls && srv->o.insecure_http < 2 && !is_loopback(ai->ai_addr)) {
    freeaddrinfo(ai);
    return tq_err_set(err, TQ_EDENIED,
                      "plain HTTP on %s would expose tokens to the network: --insecure-http "
                      "serves loopback addresses only; give it twice to serve %s anyway",
                      listen_s, host);
  }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0)
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    freeaddrinfo(ai);
    return tq_err_set(err, TQ_EIO, "--listen '%s': %s", listen_s, strerror(e));
  }
  freeaddrinfo(ai);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  unsigned p = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  int v6 = strchr(host, ':') != NULL;
  snprintf(url, un, "%s://%s%s%s:%u", srv->tls ? "https" : "http", v6 ? "[" : "", host,
           v6 ? "]" : "", p);
  srv->listen_fd = fd;
  return TQ_OK;
}

/* ---- run ----------------------------------------------------------------------------------- */

static void fill_defaults(tq_server_opts *o) {
  if (o->http_threads <= 0)
    o->http_threads = 4;
  if (o->max_body == 0)
    o->max_body = 8u << 20;
  if (o->max_conns == 0)
    o->max_conns = 256;
  if (o->conn_timeout_s == 0)
    o->conn_timeout_s = 30;
}

static tq_code start_mhd(tq_srv *srv, const char *cert, const char *key, tq_err *err) {
  unsigned flags =
      MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
  if (srv->tls)
    flags |= MHD_USE_TLS;
  struct MHD_OptionItem ops[16];
  size_t n = 0;
  ops[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, srv};
  ops[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, NULL};
  if (srv->o.http_threads > 1)
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, srv->o.http_threads, NULL};
  ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, srv->o.max_conns, NULL};
  ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, srv->o.conn_timeout_s, NULL};
  ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, HEADER_MEMORY, NULL};
  ops[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, srv};
  ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv};
  ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv};
  if (srv->tls) {
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                       (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"};
  }
  ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, ops,
                              MHD_OPTION_END);
  if (srv->mhd == NULL)
    return tq_err_set(err, TQ_EIO, "server: libmicrohttpd did not start (see the log above)");
  return TQ_OK;
}

/* Waits until the stop signal, cutting slow requests meanwhile. */
static void serve_until_stopped(tq_srv *srv) {
  while (!g_stop) {
    struct pollfd pfd = {g_stop_pipe[0], POLLIN, 0};
    poll(&pfd, 1, 250);
    cut_slow(srv);
  }
}

/* Stops accepting, lets requests in flight (and the engine's jobs) finish, then stops. */
static void shut_down(tq_srv *srv) {
  MHD_socket lfd = MHD_quiesce_daemon(srv->mhd);
  if (lfd != MHD_INVALID_SOCKET)
    close(lfd);
  srv->listen_fd = -1;
  tq_log(TQ_LOG_INFO, "server", "stopping: %d request(s) in flight", atomic_load(&srv->inflight));
  tq_runs_stop(srv->runs);     /* runs in flight stop, checkpointed; their requests are answered */
  tq_events_stop(srv->events); /* event streams get their final event and end */
  int64_t until = tq_mono_ms() + STOP_WAIT_MS;
  while (atomic_load(&srv->inflight) > 0 && tq_mono_ms() < until) {
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    cut_slow(srv);
  }
  tq_engine_stop(srv->eng, 5000); /* answers what is left: 503 */
  srv->eng = NULL;
  until = tq_mono_ms() + 5000;
  while (atomic_load(&srv->inflight) > 0 && tq_mono_ms() < until) {
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
  }
  MHD_stop_daemon(srv->mhd);
  srv->mhd = NULL;
}

tq_code tq_server_run(const tq_server_opts *opts, tq_err *err) {
  tq_srv *srv = calloc(1, sizeof *srv);
  char *cert = NULL, *key = NULL, url[512], fp[65] = "";
  tq_code rc = TQ_OK;
  struct sigaction sa = {0}, old_term, old_int;
  if (srv == NULL)
    return tq_err_set(err, TQ_ENOMEM, "server: out of memory");
  srv->o = *opts;
  fill_defaults(&srv->o);
  srv->listen_fd = -1;
  srv->tls = srv->o.insecure_http == 0;
  pthread_mutex_init(&srv->watch_mu, NULL);
  make_tables(srv);
  if (srv->o.db_path == NULL) {
    rc = tq_err_set(err, TQ_EINVAL, "server: no library path");
    goto done;
  }
  srv->key_path = tq_plugin_key_path(srv->o.db_path);
  if (srv->key_path == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "server: out of memory");
    goto done;
  }
  if (!srv->tls && (srv->o.tls_cert || srv->o.tls_key)) {
    rc = tq_err_set(err, TQ_EINVAL, "--insecure-http and --tls-cert/--tls-key exclude each other");
    goto done;
  }
  if (srv->tls) {
    rc = tq_tls_load(srv->o.db_path, srv->o.tls_cert, srv->o.tls_key, &cert, &key, fp, err);
    if (rc != TQ_OK)
      goto done;
  }
  rc = tq_web_open(srv->o.web_dir, &srv->web, err);
  if (rc != TQ_OK)
    goto done;
  rc = open_listener(srv, url, sizeof url, err);
  if (rc != TQ_OK)
    goto done;
  rc = tq_engine_start(srv, &srv->o, &srv->eng, err);
  if (rc != TQ_OK)
    goto done;
  rc = tq_runs_start(srv, &srv->runs, err);
  if (rc != TQ_OK)
    goto done;
  rc = tq_events_start(srv->o.db_path, &srv->events, err);
  if (rc != TQ_OK)
    goto done;
  tq_metric_help("tqhost_http_requests_total", "counter",
                 "HTTP requests by route, method and status");
  tq_metric_help("tqhost_http_request_duration_seconds", "histogram",
                 "HTTP request latency by route");
  tq_metric_help("tqhost_engine_queue_depth", "gauge", "jobs queued for the engine thread");
  tq_metric_set("tqhost_engine_queue_depth", "", 0);
  if (pipe2(g_stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    rc = tq_err_set(err, TQ_EIO, "server: pipe: %s", strerror(errno));
    goto done;
  }
  g_stop = 0;
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGINT, &sa, &old_int);
  signal(SIGPIPE, SIG_IGN);
  rc = start_mhd(srv, cert, key, err);
  if (rc == TQ_OK) {
    srv->listen_fd = -1; /* MHD owns it now; quiesce hands it back */
    if (srv->o.on_ready)
      srv->o.on_ready(srv->o.ud, url, fp);
    tq_log(TQ_LOG_INFO, "server", "serving on %s", url);
    serve_until_stopped(srv);
    shut_down(srv);
  }
  sigaction(SIGTERM, &old_term, NULL);
  sigaction(SIGINT, &old_int, NULL);
  close(g_stop_pipe[0]);
  close(g_stop_pipe[1]);
  g_stop_pipe[0] = g_stop_pipe[1] = -1;
done:
  tq_runs_stop(srv->runs);
  if (srv->mhd)
    MHD_stop_daemon(srv->mhd);
  tq_runs_free(srv->runs);
  srv->runs = NULL;
  tq_events_free(srv->events); /* MHD stopped: no response holds a stream */
  srv->events = NULL;
  if (srv->eng)
    tq_engine_stop(srv->eng, 0);
  if (srv->listen_fd >= 0)
    close(srv->listen_fd);
  if (key) {
    memset(key, 0, strlen(key));
    free(key);
  }
  free(cert);
  pthread_mutex_destroy(&srv->watch_mu);
  tq_web_free(srv->web);
  free(srv->key_path);
  free(srv);
  return rc;
}
