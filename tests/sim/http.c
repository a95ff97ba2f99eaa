/* http.c: rstsim's libmicrohttpd glue. Reads the raw request target (so that query values
 * arrive exactly as the client sent them), finds the route, checks X-Api-Key, the rate limit
 * and the quota, rolls the seeded fault dice, calls the route's handler and sends its reply,
 * after a delay when --latency-ms / --jitter-ms / --fault-stall ask for one (the connection is
 * suspended meanwhile and timer.c resumes it, so no thread waits). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <microhttpd.h>

#include "sim.h"

#define SIM_MAX_ROUTES 64
#define SIM_MAX_BODY (8u << 20) /* request bodies beyond this get 413 */
/* MHD clears a connection's memory pool for every request: a small pool is cheaper, and
 * 16 KiB still holds any sane request line and headers. */
#define SIM_CONN_MEMORY (16u << 10)

enum fault_kind {
  FAULT_RESET,
  FAULT_STALL,
  FAULT_429,
  FAULT_500,
  FAULT_503,
  FAULT_TRUNCATE,
  FAULT_MALFORMED,
  FAULT_COUNT
};
static const char *const fault_names[FAULT_COUNT] = {"reset", "stall",    "429",      "500",
                                                     "503",   "truncate", "malformed"};

struct sim_server {
  const sim_config *cfg;
  struct MHD_Daemon *daemon;
  const sim_route *routes[SIM_MAX_ROUTES];
  size_t n_routes;
  atomic_ulong route_hits[SIM_MAX_ROUTES];
  atomic_ulong fault_hits[FAULT_COUNT];
  atomic_ulong requests, no_route, forbidden, rate_limited, quota_exceeded, handler_errors;
  atomic_ulong seq;      /* requests that reached the fault dice, in arrival order */
  atomic_long suspended; /* connections waiting in timer.c */
  int dice;              /* some fault or jitter is configured */
};

/* Per-request state, created by the URI log callback and freed when MHD completes it. */
typedef struct sim_req {
  sim_server *srv;
  char *uri; /* the raw request target: path?query, percent-encoding untouched */
  tq_buf body;
  int headers_seen;
  int too_large;
  int delayed;
  int prepared; /* prepare() ran: the request is counted and its reply made, once */
  int reset;
  sim_reply reply;
} sim_req;

/* ---- replies ---------------------------------------------------------------------------- */
/* Prints json through a per-thread scratch buffer, then copies the exact size: cJSON's own
 * printer grows its buffer by doubling from 256 bytes, and big malloc/free pairs made glibc
 * consolidate its small-chunk bins on every request (both showed in the profile). */
static char *print_json(const cJSON *json) {
  static _Thread_local char scratch[1 << 16];
  if (!cJSON_PrintPreallocated((cJSON *)json, scratch, (int)sizeof scratch, 0))
    return cJSON_PrintUnformatted(json); /* over 64 KiB: rare (large batch results) */
  return tq_strdup(scratch);
}

tq_code sim_reply_json(sim_reply *out, unsigned status, cJSON *json, tq_err *err) {
  char *text = json ? print_json(json) : NULL;
  cJSON_Delete(json);
  if (text == NULL)
    return tq_err_set(err, TQ_ENOMEM, "reply: cannot build the JSON body (status %u)", status);
  free(out->body);
  out->status = status;
  out->body = text;
  out->body_len = strlen(text);
  out->content_type = "application/json";
  return TQ_OK;
}

tq_code sim_reply_message(sim_reply *out, unsigned status, const char *msg, tq_err *err) {
  cJSON *obj = cJSON_CreateObject();
  if (obj && !cJSON_AddStringToObject(obj, "message", msg)) {
    cJSON_Delete(obj);
    obj = NULL;
  }
  return sim_reply_json(out, status, obj, err);
}

tq_code sim_reply_bytes(sim_reply *out, unsigned status, const char *ctype, const char *p, size_t n,
                        tq_err *err) {
  char *copy = malloc(n + 1);
  if (copy == NULL)
    return tq_err_set(err, TQ_ENOMEM, "reply: no memory for a %zu-byte body", n);
  memcpy(copy, p, n);
  copy[n] = '\0';
  free(out->body);
  out->status = status;
  out->body = copy;
  out->body_len = n;
  out->content_type = ctype;
  return TQ_OK;
}

void sim_reply_header(sim_reply *out, const char *name, const char *value) {
  if (out->n_headers == SIM_MAX_HEADERS)
    return;
  out->hdr_name[out->n_headers] = name;
  tq_strlcpy(out->hdr_value[out->n_headers], value, sizeof out->hdr_value[0]);
  out->n_headers++;
}

void sim_reply_free(sim_reply *out) {
  free(out->body);
  memset(out, 0, sizeof *out);
}

const char *sim_request_header(const sim_request *rq, const char *name) {
  return rq->conn ? MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name) : NULL;
}

/* ---- query strings ---------------------------------------------------------------------- */
static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

char *sim_url_decode(const char *s, size_t n) {
  char *out = malloc(n + 1);
  if (out == NULL)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n) {
      int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out[o++] = s[i]; /* '+' stays '+': raw clients send it literally (README) */
  }
  out[o] = '\0';
  return out;
}

char *sim_query_get(const char *query, const char *name) {
  size_t name_len = strlen(name);
  const char *p = query;
  while (p && *p) {
    const char *end = strchr(p, '&');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > name_len && strncmp(p, name, name_len) == 0 && p[name_len] == '=')
      return sim_url_decode(p + name_len + 1, len - name_len - 1);
    if (len == name_len && strncmp(p, name, name_len) == 0)
      return tq_strdup("");
    p = end ? end + 1 : NULL;
  }
  return NULL;
}

/* ---- routing ---------------------------------------------------------------------------- */
static int path_matches(const sim_route *r, const char *path) {
  if (r->match == SIM_EXACT)
    return strcmp(path, r->path) == 0;
  return tq_str_startswith(path, r->path) && path[strlen(r->path)] != '\0';
}

/* Finds the route for (method, path); *path_known tells a 405 from a 404 when none fits. */
static ssize_t route_find(const sim_server *srv, const char *method, const char *path,
                          int *path_known) {
  *path_known = 0;
  for (size_t i = 0; i < srv->n_routes; i++) {
    if (!path_matches(srv->routes[i], path))
      continue;
    *path_known = 1;
    if (strcmp(srv->routes[i]->method, method) == 0)
      return (ssize_t)i;
  }
  return -1;
}

/* ---- the request pipeline --------------------------------------------------------------- */
static tq_code reply_forbidden(sim_reply *out, const char *why, tq_err *err) {
  /* The body mirrors an API-gateway refusal; the header says which check failed. */
  tq_code code = sim_reply_message(out, MHD_HTTP_FORBIDDEN, "Forbidden", err);
  sim_reply_header(out, "X-Rstsim-Error", why);
  return code;
}

static tq_code reply_throttled(const sim_config *cfg, sim_reply *out, unsigned status,
                               const char *msg, tq_err *err) {
  char secs[16];
  snprintf(secs, sizeof secs, "%u", cfg->retry_after_s);
  tq_code code = sim_reply_message(out, status, msg, err);
  sim_reply_header(out, "Retry-After", secs);
  return code;
}

/* Checks the key, the rate limit and the quota; returns 1 when the request may proceed and
 * 0 when out already holds the refusal. */
static int admit(sim_server *srv, struct MHD_Connection *conn, const char **key, sim_reply *out,
                 tq_err *err) {
  const sim_config *cfg = srv->cfg;
  *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Api-Key");
  if (*key == NULL || **key == '\0') {
    atomic_fetch_add(&srv->forbidden, 1);
    reply_forbidden(out, "missing X-Api-Key header", err);
    return 0;
  }
  if (cfg->api_key && strcmp(*key, cfg->api_key) != 0) {
    atomic_fetch_add(&srv->forbidden, 1);
    reply_forbidden(out, "API key not accepted", err);
    return 0;
  }
  sim_admit verdict = sim_keys_admit(cfg, *key);
  if (verdict == SIM_ADMIT_RATE) {
    atomic_fetch_add(&srv->rate_limited, 1);
    reply_throttled(cfg, out, MHD_HTTP_TOO_MANY_REQUESTS, "Too Many Requests", err);
    return 0;
  }
  if (verdict == SIM_ADMIT_QUOTA) {
    atomic_fetch_add(&srv->quota_exceeded, 1);
    reply_throttled(cfg, out, MHD_HTTP_TOO_MANY_REQUESTS, "Limit Exceeded", err);
    return 0;
  }
  return 1;
}

/* The dice of one request: which faults fire and its jitter, from (seed, sequence number). */
typedef struct fault_roll {
  int fired[FAULT_COUNT];
  unsigned jitter_ms;
} fault_roll;

static void roll_faults(sim_server *srv, fault_roll *roll) {
  const sim_config *cfg = srv->cfg;
  const double p[FAULT_COUNT] = {cfg->fault_reset,    cfg->fault_stall, cfg->fault_429,
                                 cfg->fault_500,      cfg->fault_503,   cfg->fault_truncate,
                                 cfg->fault_malformed};
  unsigned long n = atomic_fetch_add(&srv->seq, 1);
  memset(roll, 0, sizeof *roll);
  if (!srv->dice)
    return; /* no fault and no jitter configured: spare the hot path */
  char seq[24];
  snprintf(seq, sizeof seq, "%lu", n);
  sim_stream s;
  sim_stream_init(&s, cfg->seed, "fault", seq);
  for (int i = 0; i < FAULT_COUNT; i++) {
    roll->fired[i] = sim_unit(&s) < p[i];
    if (roll->fired[i])
      atomic_fetch_add(&srv->fault_hits[i], 1);
  }
  roll->jitter_ms = cfg->jitter_ms ? (unsigned)sim_range(&s, 0, cfg->jitter_ms) : 0;
}

/* Replaces a built reply by a damaged copy: cut in the middle, or not JSON at all. */
static void damage_reply(const fault_roll *roll, sim_reply *out) {
  if (roll->fired[FAULT_MALFORMED]) {
    static const char garbage[] = "{\"ioc_value\": \"\x01\", \"score\": {total: 4,, ]]<html>";
    char *copy = tq_strdup(garbage);
    if (copy) {
      free(out->body);
      out->body = copy;
      out->body_len = sizeof garbage - 1;
    }
  } else if (roll->fired[FAULT_TRUNCATE] && out->body_len > 1) {
    out->body_len /= 2; /* any proper prefix of a JSON object or array is invalid JSON */
    out->body[out->body_len] = '\0';
  }
}

static void reply_no_route(sim_server *srv, const char *method, const char *path, int path_known,
                           sim_reply *out) {
  tq_err err = {0};
  char msg[300];
  atomic_fetch_add(&srv->no_route, 1);
  snprintf(msg, sizeof msg, "%s %.200s: %s", method, path,
           path_known ? "method not allowed" : "no such route");
  sim_reply_message(out, path_known ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND, msg, &err);
}

/* Answers for the faults that replace the route's reply; returns 1 when one fired. */
static int fault_reply(const sim_config *cfg, const fault_roll *roll, sim_req *req) {
  tq_err err = {0};
  if (roll->fired[FAULT_RESET])
    req->reset = 1;
  else if (roll->fired[FAULT_429])
    reply_throttled(cfg, &req->reply, MHD_HTTP_TOO_MANY_REQUESTS, "Too Many Requests", &err);
  else if (roll->fired[FAULT_503])
    reply_throttled(cfg, &req->reply, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable", &err);
  else if (roll->fired[FAULT_500])
    sim_reply_message(&req->reply, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal server error", &err);
  else
    return 0;
  return 1;
}

/* Calls the route's handler; a failing handler becomes a 500 naming what failed. */
static void run_handler(sim_server *srv, struct MHD_Connection *conn, const sim_route *route,
                        const char *method, const char *query, const char *key, sim_req *req) {
  tq_err err = {0};
  if (req->too_large) {
    sim_reply_message(&req->reply, MHD_HTTP_CONTENT_TOO_LARGE, "request body over 8 MiB", &err);
    return;
  }
  sim_request rq = {.method = method,
                    .path = req->uri,
                    .tail = req->uri + strlen(route->path),
                    .query = query,
                    .body = req->body.data ? req->body.data : "",
                    .body_len = req->body.len,
                    .api_key = key,
                    .conn = conn};
  if (route->fn(srv->cfg, &rq, &req->reply, &err) == TQ_OK)
    return;
  atomic_fetch_add(&srv->handler_errors, 1);
  tq_log(TQ_LOG_ERROR, "rstsim", "route %s: %s", route->name, err.msg);
  char msg[sizeof err.msg];
  tq_strlcpy(msg, err.msg, sizeof msg);
  sim_reply_message(&req->reply, MHD_HTTP_INTERNAL_SERVER_ERROR, msg, &err);
}

/* Builds the reply of req (or marks it for a reset) and returns its delay in ms. Order:
 * route, key/rate/quota, fault dice, handler, damage (truncate/malformed). */
static unsigned prepare(sim_server *srv, struct MHD_Connection *conn, const char *method,
                        sim_req *req) {
  tq_err err = {0};
  char *qmark = strchr(req->uri, '?');
  const char *query = qmark ? qmark + 1 : "";
  if (qmark)
    *qmark = '\0'; /* req->uri is now the path */
  unsigned latency = srv->cfg->latency_ms;
  int path_known = 0;
  ssize_t r = route_find(srv, method, req->uri, &path_known);
  if (r < 0) {
    reply_no_route(srv, method, req->uri, path_known, &req->reply);
    return latency;
  }
  const sim_route *route = srv->routes[r];
  atomic_fetch_add(&srv->route_hits[r], 1);
  const char *key = NULL;
  if (route->auth == SIM_AUTH_APIKEY && !admit(srv, conn, &key, &req->reply, &err))
    return latency;
  fault_roll roll;
  roll_faults(srv, &roll);
  latency = roll.fired[FAULT_STALL] ? srv->cfg->stall_ms : latency + roll.jitter_ms;
  if (fault_reply(srv->cfg, &roll, req))
    return latency;
  run_handler(srv, conn, route, method, query, key, req);
  damage_reply(&roll, &req->reply);
  return latency;
}

/* Sends req's reply, or refuses to answer at all (reset: MHD closes the socket). */
static enum MHD_Result finish(struct MHD_Connection *conn, sim_req *req) {
  if (req->reset || req->reply.body == NULL)
    return MHD_NO;
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(req->reply.body_len, req->reply.body, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL)
    return MHD_NO;
  req->reply.body = NULL; /* owned by resp now */
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->reply.content_type);
  for (int i = 0; i < req->reply.n_headers; i++)
    MHD_add_response_header(resp, req->reply.hdr_name[i], req->reply.hdr_value[i]);
  enum MHD_Result ret = MHD_queue_response(conn, req->reply.status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static sim_req *req_new(sim_server *srv, const char *uri) {
  sim_req *req = calloc(1, sizeof *req);
  if (req == NULL)
    return NULL;
  req->srv = srv;
  req->uri = tq_strdup(uri);
  if (req->uri == NULL) {
    free(req);
    return NULL;
  }
  tq_buf_init(&req->body, SIM_MAX_BODY);
  return req;
}

/* MHD_OPTION_URI_LOG_CALLBACK: sees the request target before MHD decodes it. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
  (void)conn;
  return req_new(cls, uri);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)conn, (void)toe;
  sim_req *req = *con_cls;
  if (req == NULL)
    return;
  tq_buf_free(&req->body);
  sim_reply_free(&req->reply);
  free(req->uri);
  free(req);
  *con_cls = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)version;
  sim_server *srv = cls;
  sim_req *req = *con_cls;
  if (req == NULL) { /* the URI callback ran out of memory: fall back to the decoded path */
    req = req_new(srv, url);
    if (req == NULL)
      return MHD_NO;
    *con_cls = req;
  }
  if (!req->headers_seen) {
    req->headers_seen = 1;
    atomic_fetch_add(&srv->requests, 1);
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    if (tq_buf_add(&req->body, upload_data, *upload_data_size) != TQ_OK)
      req->too_large = 1;
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (req->delayed) { /* resumed by timer.c */
    req->delayed = 0;
    atomic_fetch_sub(&srv->suspended, 1);
    return finish(conn, req);
  }
  if (req->prepared) /* called again after its answer (seen at shutdown): nothing new to do */
    return finish(conn, req);
  req->prepared = 1;
  unsigned delay = prepare(srv, conn, method, req);
  if (delay == 0)
    return finish(conn, req);
  req->delayed = 1;
  atomic_fetch_add(&srv->suspended, 1);
  MHD_suspend_connection(conn);
  tq_err err = {0};
  /* + 1: the clock is in whole milliseconds, so never answer before the full delay */
  if (sim_timer_add(conn, tq_mono_ms() + delay + 1, &err) != TQ_OK)
    tq_log(TQ_LOG_WARN, "rstsim", "%s", err.msg);
  return MHD_YES;
}

/* ---- daemon ----------------------------------------------------------------------------- */
static tq_code collect_routes(sim_server *srv, tq_err *err) {
  for (size_t f = 0; sim_route_families[f]; f++)
    for (const sim_route *r = sim_route_families[f]; r->fn; r++) {
      if (srv->n_routes == SIM_MAX_ROUTES)
        return tq_err_set(err, TQ_ELIMIT, "routes: more than %d routes", SIM_MAX_ROUTES);
      srv->routes[srv->n_routes++] = r;
    }
  return TQ_OK;
}

tq_code sim_http_start(const sim_config *cfg, sim_server **out, unsigned *port, tq_err *err) {
  tq_code code = TQ_OK;
  sim_server *srv = calloc(1, sizeof *srv);
  if (srv == NULL)
    return tq_err_set(err, TQ_ENOMEM, "server: no memory");
  srv->cfg = cfg;
  srv->dice = cfg->jitter_ms || cfg->fault_429 > 0 || cfg->fault_500 > 0 || cfg->fault_503 > 0 ||
              cfg->fault_reset > 0 || cfg->fault_stall > 0 || cfg->fault_truncate > 0 ||
              cfg->fault_malformed > 0;
  code = collect_routes(srv, err);
  if (code != TQ_OK)
    goto fail;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only, by design */
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                   MHD_USE_ERROR_LOG | MHD_USE_TURBO;
  /* --tls-cert/--tls-key: MHD (GnuTLS in Debian) serves HTTPS on the same port instead. */
  struct MHD_OptionItem tls[] = {
      {MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
  if (cfg->tls_cert_pem && cfg->tls_key_pem) {
    flags |= MHD_USE_TLS;
    tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cfg->tls_cert_pem};
    tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, cfg->tls_key_pem};
  }
  srv->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)4096, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)300, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SIM_CONN_MEMORY,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
  if (srv->daemon == NULL) {
    code = tq_err_set(err, TQ_EIO, "server: cannot listen on 127.0.0.1:%u (port in use%s?)",
                      cfg->port, cfg->tls_cert_pem ? ", or a bad TLS certificate or key" : "");
    goto fail;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
  *port = info ? info->port : cfg->port;
  *out = srv;
  return TQ_OK;
fail:
  free(srv);
  return code;
}

static void print_stats(const sim_server *srv, FILE *f);

void sim_http_stop(sim_server *srv, FILE *stats) {
  if (srv == NULL)
    return;
  MHD_quiesce_daemon(srv->daemon);
  sim_timer_stop(); /* resumes every delayed connection */
  /* MHD must not be stopped with suspended connections: give resumed ones time to leave. */
  int64_t deadline = tq_mono_ms() + 2000;
  while (atomic_load(&srv->suspended) > 0 && tq_mono_ms() < deadline) {
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 5000000};
    nanosleep(&ts, NULL);
  }
  MHD_stop_daemon(srv->daemon);
  if (stats)
    print_stats(srv, stats);
  free(srv);
}

static void print_stats(const sim_server *srv, FILE *f) {
  fprintf(f, "rstsim stats: requests %lu\n", atomic_load(&srv->requests));
  for (size_t i = 0; i < srv->n_routes; i++)
    fprintf(f, "  route %-16s %lu\n", srv->routes[i]->name, atomic_load(&srv->route_hits[i]));
  for (int i = 0; i < FAULT_COUNT; i++)
    fprintf(f, "  fault %-16s %lu\n", fault_names[i], atomic_load(&srv->fault_hits[i]));
  fprintf(f, "  no-route %lu forbidden %lu rate-limited %lu quota-exceeded %lu errors %lu\n",
          atomic_load(&srv->no_route), atomic_load(&srv->forbidden),
          atomic_load(&srv->rate_limited), atomic_load(&srv->quota_exceeded),
          atomic_load(&srv->handler_errors));
}
