/* server_int.h: what the files of the server part share. A request is parsed and
 * authenticated on an HTTP thread, then routed to a handler (api_*.c) that answers at once
 * (reads, on the thread's own read-only library connection) or hands a job to the engine
 * thread (writes, operation runs) and the connection waits, suspended, for the job's answer.
 *
 * Files: server.c (libmicrohttpd, TLS, limits, dispatch), router.c (route tables, matching,
 * role checks), resp.c (answers, ThreatQ's envelope and errors), engine.c (the engine thread:
 * job queue, Lua runtime, curl multi loop, library writer), auth*.c (users, tokens, login,
 * audit), metrics.c (Prometheus counters), api_*.c (one file per route group), routes.c (the
 * list of route tables). */
#ifndef TQ_SERVER_INT_H
#define TQ_SERVER_INT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "tqhost/core.h"
#include "tqhost/library.h"
#include "tqhost/lua.h"
#include "tqhost/net.h"
#include "tqhost/server.h"

typedef struct tq_srv tq_srv;       /* the running server (server.c) */
typedef struct tq_engine tq_engine; /* the engine thread (engine.c) */
typedef struct tq_job tq_job;       /* one unit of work for the engine */

/* Who is calling: filled by authentication before the handler runs. */
typedef struct tq_principal {
  int64_t user_id; /* 0: nobody (open routes) */
  char name[128];  /* user or client name; "" for nobody */
  tq_role role;
  int is_client;
} tq_principal;

/* ---- answers --------------------------------------------------------------------------------
 * A handler fills exactly one answer. JSON answers are serialised by the server; every answer
 * a client sees is either ThreatQ's envelope {"data": ...} (plus "total", "limit", "offset"
 * for lists) or an error:
 *   400 (bad input: field-level)     {"data": {"errors": {"<field>": ["<message>"]}}}
 *   401 403 404 405 409 413 429 ...   {"errors": ["<message>"]}
 * Messages name what was wrong and where (the field, the id), never a secret. */
typedef struct tq_resp {
  int status;  /* 0 until filled */
  cJSON *json; /* owned; serialised when body is NULL */
  char *body;  /* owned raw body (metrics, openapi); with ctype */
  size_t body_len;
  const char *ctype;      /* static string; NULL: application/json */
  char *www_authenticate; /* owned; 401 answers get one */
  int retry_after_s;      /* > 0: a Retry-After header (429, 503) */
  void *stream; /* owned: a server-sent event stream (events_int.h); the body is streamed */
  /* web.c (static files): */
  char *etag;                /* owned; an ETag header when set */
  const char *cache_control; /* static string; NULL: "no-store" */
} tq_resp;
void tq_resp_free(tq_resp *rs); /* frees the members */
/* {"data": data} with status (data owned; NULL: null). */
void tq_resp_data(tq_resp *rs, int status, cJSON *data);
/* {"data": [...], "total": total, "limit": limit, "offset": offset}; list owned. */
void tq_resp_list(tq_resp *rs, cJSON *list, int64_t total, int64_t limit, int64_t offset);
/* 400 {"data": {"errors": {field: [message]}}}. */
void tq_resp_invalid(tq_resp *rs, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* status {"errors": [message]}. */
void tq_resp_fail(tq_resp *rs, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The answer for a tq_err: TQ_EINVAL 400 (field "request" unless the message starts with a
 * field name the caller gives: may be NULL), TQ_ENOTFOUND 404, TQ_EEXIST 409, TQ_EDENIED 403,
 * TQ_ELIMIT/TQ_ENOMEM 413, TQ_ETIMEOUT 504, TQ_EDB with "locked"/"busy" 503 + Retry-After,
 * others 500 with a generic message (the detail goes to the log only). */
void tq_resp_err(tq_resp *rs, const char *field, const tq_err *err);
/* A raw body (copied). */
void tq_resp_raw(tq_resp *rs, int status, const char *ctype, const char *body, size_t len);
/* json as cJSON_PrintUnformatted writes it (the same text), without its sprintf/sscanf per
 * number: malloc'd, NUL-terminated, its length in *len; NULL when memory runs out or the tree
 * is not printable (as cJSON: an invalid item). */
char *tq_resp_print(const cJSON *json, size_t *len);

/* ---- requests -------------------------------------------------------------------------------- */
#define TQ_REQ_MAX_PARAMS 4
typedef struct tq_req {
  tq_srv *srv;
  const char *method;                    /* "GET", "POST", ... */
  const char *path;                      /* decoded path, no query string */
  const char *params[TQ_REQ_MAX_PARAMS]; /* the route pattern's {x} segments, in order */
  size_t n_params;
  const char *body; /* NUL-terminated; body_len bytes (at most the body cap) */
  size_t body_len;
  const char *remote;           /* the client's address as text */
  const struct tq_route *route; /* the matched route */
  tq_principal who;
  tq_lib *rd; /* this HTTP thread's read-only connection to the library */
  void *conn; /* the server's connection state (server.c) */
} tq_req;
/* A query-string argument (decoded), NULL when absent; a repeated one: the first. */
const char *tq_req_arg(const tq_req *rq, const char *name);
/* A request header (case-insensitive), NULL when absent. */
const char *tq_req_header(const tq_req *rq, const char *name);
/* The body as JSON; NULL after filling rs with a 400 naming the position of a syntax error
 * (or an empty body, or a \u0000 escape in a string: cJSON would cut the C string there).
 * Owned by the caller. */
cJSON *tq_req_json(const tq_req *rq, tq_resp *rs);
/* {id} params and numeric args: a positive int64, else 400 naming the param (returns 0). */
int64_t tq_req_id(const tq_req *rq, size_t param, tq_resp *rs);
/* limit/offset: limit defaults to def and is clamped to [1, max] (limit=10^9 is max, not an
 * error); a non-number, or an offset past 2^53 - 1, is 400. Returns 0 after filling rs. */
int tq_req_page(const tq_req *rq, int64_t def, int64_t max, int64_t *limit, int64_t *offset,
                tq_resp *rs);

/* ---- routes ---------------------------------------------------------------------------------
 * A pattern is a path with {name} segments matching one non-empty segment each
 * ("/api/indicators/{id}/attributes/{aid}"). The method and the pattern together are unique.
 * role: the least role allowed (TQ_ROLE_NONE: no authentication at all). A handler runs on
 * an HTTP thread and must not wait on the network, Lua or the library writer: for those it
 * calls tq_req_engine. */
typedef void (*tq_route_fn)(tq_req *rq, tq_resp *rs);
typedef struct tq_route {
  const char *method;
  const char *pattern;
  tq_role role;
  tq_route_fn fn;
} tq_route;
/* Each api_*.c file exports one table ending with {NULL}; routes.c lists them. Matching:
 * the method and the segments must match; among matching routes the one whose first
 * differing segment is literal wins ("/api/indicators/query" over "/api/indicators/{id}"),
 * whatever the tables' order. A path that matches with another method is 405. */
extern const tq_route tq_routes_core[];         /* health, metrics, openapi (server.c) */
extern const tq_route tq_routes_auth[];         /* token, users, audit (auth_api.c) */
extern const tq_route tq_routes_objects[];      /* indicators, other objects, sources, lookups */
extern const tq_route tq_routes_search[];       /* search, criteria query, saved searches, score */
extern const tq_route tq_routes_plugins[];      /* plugins, operations, apply */
extern const tq_route tq_routes_runs[];         /* actions, bulk runs, workflows, feeds */
extern const tq_route tq_routes_ioc[];          /* what a typed value is (api_ioc.c, uicore) */
extern const tq_route *const tq_route_tables[]; /* NULL-terminated (routes.c) */

/* The outcome of matching a request line (router.c). Strings point into the struct. */
typedef struct tq_route_match {
  const tq_route *route;
  const char *params[TQ_REQ_MAX_PARAMS]; /* decoded {x} segments */
  size_t n_params;
  char path[2048]; /* the decoded path */
  char buf[2048];  /* the decoded segments */
  char why[256];   /* 400/404/405: what was wrong */
} tq_route_match;
/* Matches method and raw_path (percent-encoded, no query string) against tables: 200 with
 * m->route, 404 (no route has this path), 405 (only other methods have it) or 400 (a bad
 * escape, an encoded NUL or '/', a "." or ".." segment, too long); m->why says which. HEAD
 * matches GET routes. */
int tq_route_find(const tq_route *const *tables, const char *method, const char *raw_path,
                  tq_route_match *m);
/* Authenticates (routes above TQ_ROLE_NONE: tq_auth_bearer, 401), checks the role (403) and
 * runs the matched route's handler. */
void tq_route_dispatch(tq_req *rq, tq_resp *rs, const tq_route_match *m);

/* ---- the engine -------------------------------------------------------------------------------
 * One thread that owns the writable library connection, the Lua runtime, the curl multi loop
 * (tq_net, providers shared by every run) and the warm plugins. Jobs run there in order. */
typedef void (*tq_job_fn)(tq_engine *eng, tq_job *job);
/* From a handler: queues fn with ud (freed with free_ud, may be NULL, after the answer) and
 * suspends the connection; the job fills tq_job_resp(job) and calls tq_job_done, at once or
 * later (from a run's completion). A job that never answers is answered 504 at its
 * deadline by the engine. rs is not touched by the handler after this call. */
void tq_req_engine(tq_req *rq, tq_resp *rs, tq_job_fn fn, void *ud, void (*free_ud)(void *));
/* On the engine thread: */
void *tq_job_ud(tq_job *job);
const tq_principal *tq_job_who(const tq_job *job);
const char *tq_job_remote(const tq_job *job);
tq_resp *tq_job_resp(tq_job *job);
void tq_job_done(tq_job *job);         /* the answer is ready: the connection resumes */
tq_lib *tq_engine_lib(tq_engine *eng); /* the writer */
tq_lua *tq_engine_lua(tq_engine *eng);
tq_net *tq_engine_net(tq_engine *eng);
tq_srv *tq_engine_srv(tq_engine *eng);
/* Engine-side state of the plugins group (api_plugins.c), made on the engine thread on first
 * use and freed by the engine on shutdown with the destructor given. */
void **tq_engine_slot(tq_engine *eng, void (**destroy)(void *));

/* The engine's life (server.c): started before the HTTP threads (opens the library writer,
 * the net and the Lua runtime on its own thread; their errors come back here), stopped after
 * they stop accepting: jobs in flight get grace_ms to answer, then 503. */
tq_code tq_engine_start(tq_srv *srv, const tq_server_opts *opts, tq_engine **out, tq_err *err);
void tq_engine_stop(tq_engine *eng, int64_t grace_ms);
size_t tq_engine_depth(tq_engine *eng); /* jobs queued, not yet run (any thread) */

/* Between the engine and server.c: the server's engine; suspending the request's connection
 * (from its handler; returns the handle tq_srv_conn_answer takes); handing a suspended
 * connection its answer (moved from rs, any thread) and resuming it. */
tq_engine *tq_srv_engine(tq_srv *srv);
void *tq_srv_conn_suspend(tq_req *rq);
void tq_srv_conn_answer(void *conn, tq_resp *rs);

/* ---- long work (runs.c, owned by the runs group) ----------------------------------------------
 * Bulk runs, workflow runs, feed polls and the scheduler run on threads of their own, each with
 * its own library writer connection: the engine stays free. Started after the engine (makes the
 * feed and workflow tables, resumes the server's unfinished runs, ticks every TQHOST_TICK_S
 * seconds), stopped first at shutdown (runs in flight stop "interrupted", checkpointed). */
typedef struct tq_runs tq_runs;
tq_code tq_runs_start(tq_srv *srv, tq_runs **out, tq_err *err);
void tq_runs_stop(tq_runs *rn);    /* stops and joins every thread; new work is refused (503) */
void tq_runs_free(tq_runs *rn);    /* after the HTTP threads stopped */
tq_runs *tq_srv_runs(tq_srv *srv); /* borrowed; NULL before start and after stop */

/* ---- TLS (tls.c) ------------------------------------------------------------------------------
 * The certificate and key PEM (malloc'd) from the files given, or the self-signed pair kept
 * beside the library as <db>.tls.crt / <db>.tls.key (made on first start: ECDSA P-256, CN
 * and SAN localhost, 127.0.0.1, ::1, one year; key 0600), and the certificate's SHA-256
 * fingerprint as hex (65 bytes). */
tq_code tq_tls_load(const char *db_path, const char *cert_file, const char *key_file,
                    char **cert_pem, char **key_pem, char fingerprint[65], tq_err *err);

/* ---- the server's settings, for handlers ---------------------------------------------------- */
const tq_server_opts *tq_srv_opts(const tq_srv *srv);
const char *tq_srv_key_path(const tq_srv *srv); /* the library's secret key file */

/* ---- metrics (Prometheus text; metrics.c) -------------------------------------------------
 * A counter or gauge by name and a label set written as Prometheus labels
 * ("plugin=\"rst-ioc-lookup\",outcome=\"ok\""; "" for none). Thread-safe. */
void tq_metric_add(const char *name, const char *labels, double delta);
void tq_metric_set(const char *name, const char *labels, double value);
/* Drops every series of name whose labels are none of labels[0..n) (a plugin removed). */
void tq_metric_keep(const char *name, const char *const *labels, size_t n);
/* A latency observation (seconds) in the histogram name{labels}. */
void tq_metric_observe(const char *name, const char *labels, double seconds);
/* The providers' counters of the engine's net (tq_net_each_provider) as the series
 * tqhost_provider_{requests,429,retries,cache_hits,failures}_total{provider}. Engine thread. */
void tq_metrics_from_net(const tq_net *net);
/* The exposition text (malloc'd). HELP/TYPE lines from tq_metric_help. */
char *tq_metrics_text(void);
void tq_metric_help(const char *name, const char *type, const char *help);

/* ---- authentication (auth.c) ------------------------------------------------------------------
 */
/* Checks "Authorization: Bearer <token>" on the read connection: fills who, or fills rs with
 * 401 (and WWW-Authenticate) and returns 0. */
int tq_auth_bearer(tq_req *rq, tq_resp *rs);

/* ---- the web UI's static files (web.c) -----------------------------------------------------
 * The folder given (serve --web DIR; must exist) or, dir NULL, the default one ($TQHOST_WEB,
 * the install prefix's share/tqhost/web, beside bin/, a build tree's source web/): *out NULL
 * (and a warning logged) when no default folder exists. Thread-safe once open. */
typedef struct tq_web tq_web;
tq_code tq_web_open(const char *dir, tq_web **out, tq_err *err);
void tq_web_free(tq_web *w);
const char *tq_web_root(const tq_web *w); /* the canonical folder; NULL for NULL */
/* Whether a request's raw path (no query string) is the web UI's: all but /api, /api/... and
 * /metrics. */
int tq_web_claims(const char *raw_path);
/* Answers GET/HEAD of raw_path (percent-encoded) from w (NULL: 404 naming --web). Hostile
 * paths are refused (400/404/414, 403 for a symlink out of the folder); if_none_match may be
 * NULL. */
void tq_web_serve(tq_web *w, const char *method, const char *raw_path, const char *if_none_match,
                  tq_resp *rs);

#endif
