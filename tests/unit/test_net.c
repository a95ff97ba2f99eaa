/* test_net.c: the HTTP client (src/net) against an in-test libmicrohttpd server on 127.0.0.1:
 * retries and Retry-After, timeouts, size caps, redirects and the allow-list, refused
 * connections, per-provider connection caps and rate limits, callback rules, in-flight
 * merging and the response cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tqhost/library.h"
#include <sqlite3.h>

#include "tqhost/net.h"

/* ---- the server ---------------------------------------------------------------------------- */

#define HUGE_LEN (1024 * 1024)

static const char *const g_routes[] = {"/json",      "/r429", "/r503date", "/e500",
                                       "/stall",     "/huge", "/stream",   "/redir",
                                       "/redir-off", "/slow", "/count",    "/method"};
#define N_ROUTES (sizeof g_routes / sizeof g_routes[0])

static struct {
  struct MHD_Daemon *d;
  unsigned port;
  pthread_mutex_t mu;
  int hits[N_ROUTES];
  int active, max_active;
  volatile int stopping;
  char *huge;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int route_index(const char *url) {
  for (size_t i = 0; i < N_ROUTES; i++)
    if (strcmp(url, g_routes[i]) == 0)
      return (int)i;
  return -1;
}

static int hits(const char *route) {
  pthread_mutex_lock(&S.mu);
  int n = S.hits[route_index(route)];
  pthread_mutex_unlock(&S.mu);
  return n;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
                             const char *hname, const char *hvalue) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (hname)
    MHD_add_response_header(r, hname, hvalue);
  MHD_add_response_header(r, "Content-Type", "application/json");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* Streams HUGE_LEN bytes without a Content-Length (chunked). */
static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)cls;
  if (pos >= HUGE_LEN)
    return MHD_CONTENT_READER_END_OF_STREAM;
  size_t n = max < 4096 ? max : 4096;
  memset(buf, 'y', n);
  return (ssize_t)n;
}

static void slow_enter(void) {
  pthread_mutex_lock(&S.mu);
  if (++S.active > S.max_active)
    S.max_active = S.active;
  pthread_mutex_unlock(&S.mu);
  sleep_ms(20);
  pthread_mutex_lock(&S.mu);
  S.active--;
  pthread_mutex_unlock(&S.mu);
}

static enum MHD_Result serve(struct MHD_Connection *c, int route, int n, const char *method,
                             size_t body_len) {
  char buf[256];
  switch (route) {
  case 0: return reply(c, 200, "{\"ok\":true}", NULL, NULL);
  case 1:
    return n == 1 ? reply(c, 429, "slow down", "Retry-After", "1")
                  : reply(c, 200, "after-429", NULL, NULL);
  case 2: {
    time_t t = time(NULL) + 2;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return n == 1 ? reply(c, 503, "busy", "Retry-After", buf)
                  : reply(c, 200, "after-503", NULL, NULL);
  }
  case 3: return reply(c, 500, "boom", NULL, NULL);
  case 4:
    for (int i = 0; i < 300 && !S.stopping; i++)
      sleep_ms(10);
    return reply(c, 200, "late", NULL, NULL);
  case 5: {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(HUGE_LEN, S.huge, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
  }
  case 6: {
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_cb, NULL, NULL);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
  }
  case 7: return reply(c, 302, "", "Location", "/json");
  case 8:
    snprintf(buf, sizeof buf, "http://localhost:%u/json", S.port);
    return reply(c, 302, "", "Location", buf);
  case 9: slow_enter(); return reply(c, 200, "slow", NULL, NULL);
  case 10:
    sleep_ms(100);
    snprintf(buf, sizeof buf, "n=%d", n);
    return reply(c, 200, buf, NULL, NULL);
  case 11:
    snprintf(buf, sizeof buf, "%s %zu", method, body_len);
    return reply(c, 200, buf, NULL, NULL);
  }
  return reply(c, 404, "no such route", NULL, NULL);
}

typedef struct conn_state {
  size_t body_len;
} conn_state;

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  free(*con_cls);
  *con_cls = NULL;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls) {
  (void)cls;
  (void)version;
  (void)upload;
  conn_state *st = *con_cls;
  if (st == NULL) {
    *con_cls = calloc(1, sizeof(conn_state));
    return *con_cls ? MHD_YES : MHD_NO;
  }
  if (*upload_size) {
    st->body_len += *upload_size;
    *upload_size = 0;
    return MHD_YES;
  }
  int route = route_index(url);
  int n = 0;
  if (route >= 0) {
    pthread_mutex_lock(&S.mu);
    n = ++S.hits[route];
    pthread_mutex_unlock(&S.mu);
  }
  return serve(c, route, n, method, st->body_len);
}

static int server_start(void **state) {
  (void)state;
  setenv("no_proxy", "127.0.0.1,localhost", 1); /* a proxy in the environment must not interfere */
  memset(S.hits, 0, sizeof S.hits);
  S.active = S.max_active = 0;
  S.stopping = 0;
  if (S.huge == NULL) {
    S.huge = malloc(HUGE_LEN);
    memset(S.huge, 'x', HUGE_LEN);
  }
  S.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, handler, NULL, MHD_OPTION_SOCK_ADDR,
                         (const struct sockaddr *)&(struct sockaddr_in){
                             .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
                         MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL, MHD_OPTION_END);
  if (S.d == NULL)
    return -1;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(S.d, MHD_DAEMON_INFO_BIND_PORT);
  S.port = info->port;
  return 0;
}

static int server_stop(void **state) {
  (void)state;
  S.stopping = 1;
  MHD_stop_daemon(S.d);
  S.d = NULL;
  return 0;
}

/* ---- client helpers -------------------------------------------------------------------------- */

static char *url_of(const char *path) {
  static char buf[8][256];
  static int next;
  char *b = buf[next++ % 8];
  snprintf(b, 256, "http://127.0.0.1:%u%s", S.port, path);
  return b;
}

static tq_net *new_net(void) {
  tq_net *net = NULL;
  tq_err err;
  assert_int_equal(tq_net_new(NULL, &net, &err), TQ_OK);
  return net;
}

static tq_net_provider *provider(tq_net *net, const char *name, const tq_net_policy *pol) {
  tq_net_provider *p = NULL;
  tq_err err;
  assert_int_equal(tq_net_provider_get(net, name, pol, &p, &err), TQ_OK);
  return p;
}

static tq_net_response *fetch(tq_net *net, tq_net_provider *p, const char *url) {
  tq_net_request req = {.url = url};
  tq_net_response *resp = NULL;
  tq_err err;
  assert_int_equal(tq_net_fetch(net, p, &req, &resp, &err), TQ_OK);
  assert_non_null(resp);
  return resp;
}

static const int retry_on[] = {429, 500, 503};

static void retry_policy(tq_net_policy *pol, int retry_max) {
  tq_net_policy_init(pol);
  pol->retry_max = retry_max;
  pol->retry_on = retry_on;
  pol->n_retry_on = 3;
  pol->backoff_ms = 5;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_get_returns_status_body_and_headers(void **state) {
  (void)state;
  tq_net *net = new_net();
  tq_net_response *r = fetch(net, provider(net, "p", NULL), url_of("/json"));
  assert_int_equal(r->fail, TQ_NET_OK);
  assert_int_equal(r->status, 200);
  assert_string_equal(r->body, "{\"ok\":true}");
  assert_int_equal(r->body_len, 11);
  assert_int_equal(r->attempts, 1);
  char *ct = tq_net_response_header(r, "content-type");
  assert_string_equal(ct, "application/json");
  free(ct);
  assert_null(tq_net_response_header(r, "X-Absent"));
  tq_net_response_free(r);
  assert_int_equal(tq_net_pending(net), 0);
  tq_net_free(net);
}

static void test_429_retry_after_seconds_is_honoured(void **state) {
  (void)state;
  tq_net_policy pol;
  retry_policy(&pol, 3);
  tq_net *net = new_net();
  int64_t t0 = now_ms();
  tq_net_response *r = fetch(net, provider(net, "p", &pol), url_of("/r429"));
  int64_t took = now_ms() - t0;
  assert_int_equal(r->fail, TQ_NET_OK);
  assert_int_equal(r->status, 200);
  assert_string_equal(r->body, "after-429");
  assert_int_equal(r->attempts, 2);
  assert_int_equal(hits("/r429"), 2);
  assert_true(took >= 950); /* Retry-After: 1, while the backoff alone is <= 5 ms */
  tq_net_response_free(r);
  tq_net_free(net);
}

static void test_503_retry_after_http_date_is_honoured(void **state) {
  (void)state;
  tq_net_policy pol;
  retry_policy(&pol, 3);
  tq_net *net = new_net();
  int64_t t0 = now_ms();
  tq_net_response *r = fetch(net, provider(net, "p", &pol), url_of("/r503date"));
  int64_t took = now_ms() - t0;
  assert_int_equal(r->status, 200);
  assert_int_equal(r->attempts, 2);
  assert_true(took >= 900); /* the date is 2 s ahead at 1 s resolution */
  tq_net_response_free(r);
  tq_net_free(net);
}

static void test_500_gives_up_after_retry_max(void **state) {
  (void)state;
  tq_net_policy pol;
  retry_policy(&pol, 2);
  tq_net *net = new_net();
  tq_net_response *r = fetch(net, provider(net, "p", &pol), url_of("/e500"));
  assert_int_equal(r->fail, TQ_NET_HTTP);
  assert_int_equal(r->status, 500);
  assert_string_equal(r->body, "boom");
  assert_int_equal(r->attempts, 3);
  assert_int_equal(hits("/e500"), 3);
  assert_non_null(strstr(r->error, "HTTP 500"));
  tq_net_response_free(r);
  tq_net_free(net);
}

static void test_stalled_response_times_out(void **state) {
  (void)state;
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.timeout_ms = 300;
  tq_net *net = new_net();
  int64_t t0 = now_ms();
  tq_net_response *r = fetch(net, provider(net, "p", &pol), url_of("/stall"));
  int64_t took = now_ms() - t0;
  assert_int_equal(r->fail, TQ_NET_TIMEOUT);
  assert_true(took >= 250 && took < 2500);
  assert_string_equal(tq_net_fail_name(r->fail), "timeout");
  tq_net_response_free(r);
  tq_net_free(net);
}

static void check_too_large(const char *path) {
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.max_body = 64 * 1024;
  tq_net *net = new_net();
  tq_net_response *r = fetch(net, provider(net, "p", &pol), url_of(path));
  assert_int_equal(r->fail, TQ_NET_TOO_LARGE);
  assert_true(r->body_len <= 64 * 1024);
  assert_non_null(strstr(r->error, "larger than 65536"));
  tq_net_response_free(r);
  tq_net_free(net);
}

static void test_body_past_cap_with_length_is_too_large(void **state) {
  (void)state;
  check_too_large("/huge");
}

static void test_streamed_body_past_cap_is_too_large(void **state) {
  (void)state;
  check_too_large("/stream");
}

static void test_relative_redirect_is_followed(void **state) {
  (void)state;
  const char *allow[] = {"127.0.0.1"};
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.allow_hosts = allow;
  pol.n_allow_hosts = 1;
  tq_net *net = new_net();
  tq_net_response *r = fetch(net, provider(net, "p", &pol), url_of("/redir"));
  assert_int_equal(r->fail, TQ_NET_OK);
  assert_int_equal(r->status, 200);
  assert_string_equal(r->body, "{\"ok\":true}");
  assert_int_equal(hits("/redir"), 1);
  assert_int_equal(hits("/json"), 1);
  tq_net_response_free(r);
  tq_net_free(net);
}

static void test_redirect_off_allow_list_is_blocked(void **state) {
  (void)state;
  const char *allow[] = {"127.0.0.1"};
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.allow_hosts = allow;
  pol.n_allow_hosts = 1;
  tq_net *net = new_net();
  tq_net_response *r = fetch(net, provider(net, "p", &pol), url_of("/redir-off"));
  assert_int_equal(r->fail, TQ_NET_BLOCKED);
  assert_non_null(strstr(r->error, "localhost"));
  assert_int_equal(hits("/redir-off"), 1);
  assert_int_equal(hits("/json"), 0); /* never re-issued to the other host */
  tq_net_response_free(r);
  tq_net_free(net);
}

static void test_request_off_allow_list_is_blocked(void **state) {
  (void)state;
  char allow_url[64];
  snprintf(allow_url, sizeof allow_url, "http://127.0.0.1:%u/v1", S.port);
  const char *allow[] = {allow_url}; /* a manifest's "{config.base_url}" form */
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.allow_hosts = allow;
  pol.n_allow_hosts = 1;
  tq_net *net = new_net();
  tq_net_provider *p = provider(net, "p", &pol);
  char off[64];
  snprintf(off, sizeof off, "http://localhost:%u/json", S.port);
  tq_net_response *r = fetch(net, p, off);
  assert_int_equal(r->fail, TQ_NET_BLOCKED);
  assert_int_equal(r->attempts, 0);
  tq_net_response_free(r);
  assert_int_equal(hits("/json"), 0);
  r = fetch(net, p, url_of("/json"));
  assert_int_equal(r->fail, TQ_NET_OK);
  tq_net_response_free(r);
  tq_net_free(net);
}

static unsigned closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd); /* nobody listens there now */
  return ntohs(a.sin_port);
}

static void test_closed_port_is_refused_after_retries(void **state) {
  (void)state;
  tq_net_policy pol;
  retry_policy(&pol, 1);
  tq_net *net = new_net();
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/x", closed_port());
  tq_net_response *r = fetch(net, provider(net, "p", &pol), url);
  assert_int_equal(r->fail, TQ_NET_REFUSED);
  assert_int_equal(r->status, 0);
  assert_int_equal(r->attempts, 2); /* connection errors are retried */
  tq_net_response_free(r);
  tq_net_free(net);
}

static void test_tls_handshake_failure_is_tls(void **state) {
  (void)state;
  tq_net *net = new_net();
  char url[64];
  snprintf(url, sizeof url, "https://127.0.0.1:%u/json", S.port); /* the server speaks plain */
  tq_net_response *r = fetch(net, provider(net, "p", NULL), url);
  assert_int_equal(r->fail, TQ_NET_TLS);
  assert_int_equal(r->attempts, 1); /* TLS failures are not retried */
  tq_net_response_free(r);
  tq_net_free(net);
}

typedef struct counter {
  int done, ok;
} counter;

static void count_done(void *ud, tq_net_response *resp) {
  counter *c = ud;
  c->done++;
  c->ok += resp->fail == TQ_NET_OK && resp->status == 200;
  tq_net_response_free(resp);
}

static void run_all(tq_net *net, counter *c, int n) {
  tq_err err;
  int64_t give_up = now_ms() + 30000;
  while (c->done < n && now_ms() < give_up)
    assert_int_equal(tq_net_run(net, 1000, &err), TQ_OK);
  assert_int_equal(c->done, n);
}

static void submit_n(tq_net *net, tq_net_provider *p, const char *url, int n, counter *c) {
  tq_net_request req = {.url = url, .no_cache = 1};
  tq_err err;
  for (int i = 0; i < n; i++)
    assert_int_equal(tq_net_submit(net, p, &req, count_done, c, &err), TQ_OK);
}

static void test_provider_caps_connections(void **state) {
  (void)state;
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.max_conns = 4;
  tq_net *net = new_net();
  counter c = {0};
  submit_n(net, provider(net, "p", &pol), url_of("/slow"), 100, &c);
  assert_int_equal(tq_net_pending(net), 100);
  run_all(net, &c, 100);
  assert_int_equal(c.ok, 100);
  assert_int_equal(hits("/slow"), 100);
  assert_true(S.max_active <= 4);
  assert_true(S.max_active >= 2);
  tq_net_free(net);
}

/* tq_net_flush writes a request on an open connection at once, with no tq_net_run, and runs
 * no callback: the server sees the request while the caller is still busy elsewhere. */
static void test_flush_writes_requests_without_callbacks(void **state) {
  (void)state;
  tq_net *net = new_net();
  tq_net_provider *p = provider(net, "p", NULL);
  tq_net_response_free(fetch(net, p, url_of("/count"))); /* opens the connection */
  counter c = {0};
  tq_err err;
  submit_n(net, p, url_of("/json"), 1, &c);
  assert_int_equal(hits("/json"), 0);
  assert_int_equal(tq_net_flush(net, &err), TQ_OK);
  for (int i = 0; i < 200 && hits("/json") == 0; i++)
    sleep_ms(5);
  assert_int_equal(hits("/json"), 1); /* without the flush nothing drives curl: 0 */
  assert_int_equal(c.done, 0);        /* the answer waits for tq_net_run */
  run_all(net, &c, 1);
  assert_int_equal(c.ok, 1);
  tq_net_free(net);
}

static void test_provider_rate_limit_spaces_requests(void **state) {
  (void)state;
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.rate_per_s = 50;
  pol.burst = 1;
  tq_net *net = new_net();
  tq_net_provider *p = provider(net, "rst", &pol);
  assert_ptr_equal(provider(net, "rst", NULL), p); /* shared by name */
  counter c = {0};
  int64_t t0 = now_ms();
  submit_n(net, p, url_of("/json"), 100, &c);
  run_all(net, &c, 100);
  int64_t took = now_ms() - t0;
  assert_int_equal(c.ok, 100);
  assert_true(took >= 1700); /* 99 token waits of 20 ms */
  tq_net_free(net);
}

/* One thread's share of the next test: its own tq_net (as each bulk run has), the provider
 * "shared" at 50/s, n requests. No cmocka assert here: they must run on the test's thread. */
typedef struct rate_thread {
  int n, ok;
  int64_t took_ms;
} rate_thread;

static void *rate_thread_main(void *arg) {
  rate_thread *rt = arg;
  tq_net *net = NULL;
  tq_net_provider *p = NULL;
  tq_err err;
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.rate_per_s = 50;
  pol.burst = 1;
  if (tq_net_new(NULL, &net, &err) != TQ_OK)
    return NULL;
  if (tq_net_provider_get(net, "shared", &pol, &p, &err) == TQ_OK) {
    counter c = {0};
    char url[64]; /* not url_of: its ring of buffers is for one thread */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/json", S.port);
    tq_net_request req = {.url = url, .no_cache = 1};
    int64_t t0 = now_ms();
    for (int i = 0; i < rt->n; i++)
      if (tq_net_submit(net, p, &req, count_done, &c, &err) != TQ_OK)
        c.done++;
    int64_t give_up = now_ms() + 30000;
    while (c.done < rt->n && now_ms() < give_up)
      tq_net_run(net, 100, &err);
    rt->ok = c.ok;
    rt->took_ms = now_ms() - t0;
  }
  tq_net_free(net);
  return NULL;
}

/* Two threads, two nets, one provider name and rate: they share one token bucket, so 2 x 25
 * requests at 50/s take about a second together (two private buckets: half a second). */
static void test_rate_limit_is_shared_across_nets(void **state) {
  (void)state;
  rate_thread a = {.n = 25}, b = {.n = 25};
  pthread_t ta, tb;
  int64_t t0 = now_ms();
  assert_int_equal(pthread_create(&ta, NULL, rate_thread_main, &a), 0);
  assert_int_equal(pthread_create(&tb, NULL, rate_thread_main, &b), 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  int64_t took = now_ms() - t0;
  assert_int_equal(a.ok + b.ok, 50);
  assert_true(took >= 900); /* 49 token waits of 20 ms between them */
  /* the bucket went with the last provider: a new one starts full again (burst 1) */
  rate_thread c = {.n = 1};
  rate_thread_main(&c);
  assert_int_equal(c.ok, 1);
  assert_true(c.took_ms < 500);
}

typedef struct order_state {
  tq_net *net;
  tq_net_provider *prov;
  int calls, nested_rc, second_done;
} order_state;

static void second_done(void *ud, tq_net_response *resp) {
  order_state *o = ud;
  o->second_done = resp->status == 200;
  tq_net_response_free(resp);
}

static void first_done(void *ud, tq_net_response *resp) {
  order_state *o = ud;
  tq_err err;
  o->calls++;
  o->nested_rc = tq_net_run(o->net, 10, &err); /* refused: we are inside tq_net_run */
  tq_net_request req = {.url = url_of("/json")};
  assert_int_equal(tq_net_submit(o->net, o->prov, &req, second_done, o, &err), TQ_OK);
  tq_net_response_free(resp);
}

static void test_callbacks_run_from_tq_net_run_only(void **state) {
  (void)state;
  const char *allow[] = {"127.0.0.1"};
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.allow_hosts = allow;
  pol.n_allow_hosts = 1;
  tq_net *net = new_net();
  order_state o = {.net = net, .prov = provider(net, "p", &pol)};
  tq_net_request blocked = {.url = "http://localhost:1/never"};
  tq_err err;
  /* Even a request that fails at once completes through a later tq_net_run. */
  assert_int_equal(tq_net_submit(net, o.prov, &blocked, first_done, &o, &err), TQ_OK);
  assert_int_equal(o.calls, 0);
  assert_int_equal(tq_net_pending(net), 1);
  assert_int_equal(tq_net_run(net, 1000, &err), TQ_OK);
  assert_int_equal(o.calls, 1);
  assert_int_equal(o.nested_rc, TQ_EINTERNAL);
  assert_int_equal(o.second_done, 0); /* submitted from the callback: completes later */
  while (!o.second_done)
    assert_int_equal(tq_net_run(net, 1000, &err), TQ_OK);
  assert_int_equal(tq_net_pending(net), 0);
  tq_net_free(net);
}

typedef struct merged {
  int n;
  char bodies[3][32];
  int order[3];
} merged;

static void merged_done(void *ud, tq_net_response *resp) {
  merged *m = ud;
  snprintf(m->bodies[m->n], sizeof m->bodies[0], "%s", resp->body ? resp->body : "");
  m->n++;
  tq_net_response_free(resp);
}

static void test_identical_gets_in_flight_are_merged(void **state) {
  (void)state;
  tq_net *net = new_net();
  tq_net_provider *p = provider(net, "p", NULL);
  const char *h1[] = {"X-Api-Key: one"};
  const char *h2[] = {"X-Api-Key: two"};
  tq_net_request a = {.url = url_of("/count"), .headers = h1, .n_headers = 1};
  tq_net_request b = {.url = url_of("/count"), .headers = h2, .n_headers = 1};
  merged m = {0};
  tq_err err;
  assert_int_equal(tq_net_submit(net, p, &a, merged_done, &m, &err), TQ_OK);
  assert_int_equal(tq_net_submit(net, p, &a, merged_done, &m, &err), TQ_OK);
  assert_int_equal(tq_net_pending(net), 2);
  while (m.n < 2)
    assert_int_equal(tq_net_run(net, 1000, &err), TQ_OK);
  assert_int_equal(hits("/count"), 1);
  assert_string_equal(m.bodies[0], "n=1");
  assert_string_equal(m.bodies[1], "n=1");
  /* Another header value is another request. */
  assert_int_equal(tq_net_submit(net, p, &b, merged_done, &m, &err), TQ_OK);
  while (m.n < 3)
    assert_int_equal(tq_net_run(net, 1000, &err), TQ_OK);
  assert_int_equal(hits("/count"), 2);
  tq_net_free(net);
}

static void test_cache_key_hides_secrets_and_normalises(void **state) {
  (void)state;
  const char *h1[] = {"X-Api-Key: s3cr3t-value"};
  const char *h1b[] = {"x-api-key:   s3cr3t-value  "};
  const char *h2[] = {"X-Api-Key: other"};
  tq_net_request r1 = {.url = "HTTP://API.Example.COM:80/v1/ioc?value=1.2.3.4&apikey=qs3cr3t",
                       .headers = h1,
                       .n_headers = 1};
  tq_net_request r1b = {.url = "http://api.example.com/v1/ioc?value=1.2.3.4&apikey=qs3cr3t",
                        .headers = h1b,
                        .n_headers = 1};
  tq_net_request r2 = r1b;
  r2.headers = h2;
  char *k1, *k1b, *k2;
  tq_err err;
  assert_int_equal(tq_net_cache_key(&r1, &k1, &err), TQ_OK);
  assert_int_equal(tq_net_cache_key(&r1b, &k1b, &err), TQ_OK);
  assert_int_equal(tq_net_cache_key(&r2, &k2, &err), TQ_OK);
  assert_true(tq_str_startswith(k1, "GET http://api.example.com/v1/ioc "));
  assert_int_equal(strlen(k1), strlen("GET http://api.example.com/v1/ioc ") + 64);
  assert_null(strstr(k1, "s3cr3t"));
  assert_string_equal(k1, k1b);
  assert_string_not_equal(k1, k2);
  free(k1);
  free(k1b);
  free(k2);
  tq_net_request bad = {.url = "ftp://example.com/x"};
  assert_int_equal(tq_net_cache_key(&bad, &k1, &err), TQ_EINVAL);
}

static void test_bad_requests_are_rejected_at_submit(void **state) {
  (void)state;
  tq_net *net = new_net();
  tq_net_provider *p = provider(net, "p", NULL);
  counter c = {0};
  tq_err err;
  tq_net_request ftp = {.url = "ftp://127.0.0.1/x"};
  assert_int_equal(tq_net_submit(net, p, &ftp, count_done, &c, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "http or https"));
  tq_net_request junk = {.url = "http://exa mple.com/"};
  assert_int_equal(tq_net_submit(net, p, &junk, count_done, &c, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "exa mple.com"));
  const char *hdr[] = {"NoColonHere"};
  tq_net_request badh = {.url = url_of("/json"), .headers = hdr, .n_headers = 1};
  assert_int_equal(tq_net_submit(net, p, &badh, count_done, &c, &err), TQ_EINVAL);
  tq_net_request badm = {.method = "GE T", .url = url_of("/json")};
  assert_int_equal(tq_net_submit(net, p, &badm, count_done, &c, &err), TQ_EINVAL);
  assert_int_equal(tq_net_pending(net), 0);
  const char *allow[] = {"bad host/"};
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.allow_hosts = allow;
  pol.n_allow_hosts = 1;
  tq_net_provider *q = NULL;
  assert_int_equal(tq_net_provider_get(net, "q", &pol, &q, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "bad host/"));
  tq_net_free(net);
}

static void test_post_sends_body(void **state) {
  (void)state;
  tq_net *net = new_net();
  tq_net_request req = {.method = "post", .url = url_of("/method"), .body = "hello", .body_len = 5};
  tq_net_response *r = NULL;
  tq_err err;
  assert_int_equal(tq_net_fetch(net, provider(net, "p", NULL), &req, &r, &err), TQ_OK);
  assert_int_equal(r->status, 200);
  assert_string_equal(r->body, "POST 5");
  tq_net_response_free(r);
  tq_net_free(net);
}

/* Uses the library's cache table: a second identical GET within the TTL is served from it. */
static void test_cached_get_is_served_without_the_network(void **state) {
  (void)state;
  char path[] = "/tmp/tq_net_cache_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  unlink(path);
  tq_lib *lib = NULL;
  tq_net *net = NULL;
  tq_err err;
  assert_int_equal(tq_lib_open(path, TQ_LIB_OPEN_CREATE, &lib, &err), TQ_OK);
  assert_int_equal(tq_net_new(lib, &net, &err), TQ_OK);
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.cache_ttl_ms = 60000;
  tq_net_provider *p = provider(net, "p", &pol);
  tq_net_response *r1 = fetch(net, p, url_of("/count"));
  tq_net_response *r2 = fetch(net, p, url_of("/count"));
  assert_int_equal(hits("/count"), 1);
  assert_int_equal(r1->from_cache, 0);
  assert_int_equal(r2->from_cache, 1);
  assert_int_equal(r2->status, 200);
  assert_string_equal(r2->body, "n=1");
  tq_net_request fresh = {.url = url_of("/count"), .no_cache = 1};
  tq_net_response *r3 = NULL;
  assert_int_equal(tq_net_fetch(net, p, &fresh, &r3, &err), TQ_OK);
  assert_string_equal(r3->body, "n=2");
  assert_int_equal(hits("/count"), 2);
  tq_net_response *r4 = fetch(net, p, url_of("/e500")); /* >= 400: never cached */
  tq_net_response *r5 = fetch(net, p, url_of("/e500"));
  assert_int_equal(r5->from_cache, 0);
  assert_int_equal(hits("/e500"), 2);
  tq_net_response_free(r1);
  tq_net_response_free(r2);
  tq_net_response_free(r3);
  tq_net_response_free(r4);
  tq_net_response_free(r5);
  tq_net_free(net);
  tq_lib_close(lib);
  char side[64];
  unlink(path);
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
}

/* A library in a fresh temporary file, for the cache tests; lib_gone removes it. */
static tq_lib *lib_temp(char *path) {
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  unlink(path);
  tq_lib *lib = NULL;
  tq_err err;
  assert_int_equal(tq_lib_open(path, TQ_LIB_OPEN_CREATE, &lib, &err), TQ_OK);
  return lib;
}

static void lib_gone(tq_lib *lib, const char *path) {
  tq_lib_close(lib);
  char side[64];
  unlink(path);
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
}

static int64_t sql_int(tq_lib *lib, const char *sql) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(tq_lib_db(lib), sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static tq_net_provider *cached_provider(tq_net *net) {
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.cache_ttl_ms = 60000;
  return provider(net, "p", &pol);
}

static void test_cache_key_ignores_header_order(void **state) {
  (void)state;
  const char *ab[] = {"X-Api-Key: k1", "Accept: application/json", "X-Trace: 1"};
  const char *ba[] = {"X-Trace: 1", "accept:application/json ", "X-Api-Key: k1"};
  const char *other[] = {"X-Trace: 2", "Accept: application/json", "X-Api-Key: k1"};
  tq_net_request r1 = {.url = "http://h/x", .headers = ab, .n_headers = 3};
  tq_net_request r2 = {.url = "http://h/x", .headers = ba, .n_headers = 3};
  tq_net_request r3 = {.url = "http://h/x", .headers = other, .n_headers = 3};
  char *k1, *k2, *k3;
  tq_err err;
  assert_int_equal(tq_net_cache_key(&r1, &k1, &err), TQ_OK);
  assert_int_equal(tq_net_cache_key(&r2, &k2, &err), TQ_OK);
  assert_int_equal(tq_net_cache_key(&r3, &k3, &err), TQ_OK);
  assert_string_equal(k1, k2);
  assert_string_not_equal(k1, k3);
  free(k1);
  free(k2);
  free(k3);
}

/* A Lua headers table gives its lines in any order: the second order must hit the cache. */
static void test_headers_in_another_order_hit_the_cache(void **state) {
  (void)state;
  char path[] = "/tmp/tq_net_cache_XXXXXX";
  tq_lib *lib = lib_temp(path);
  tq_net *net = NULL;
  tq_err err;
  assert_int_equal(tq_net_new(lib, &net, &err), TQ_OK);
  tq_net_provider *p = cached_provider(net);
  const char *ab[] = {"X-Api-Key: k1", "Accept: application/json"};
  const char *ba[] = {"Accept: application/json", "X-Api-Key: k1"};
  tq_net_request r1 = {.url = url_of("/count"), .headers = ab, .n_headers = 2};
  tq_net_request r2 = {.url = url_of("/count"), .headers = ba, .n_headers = 2};
  tq_net_response *a = NULL, *b = NULL;
  assert_int_equal(tq_net_fetch(net, p, &r1, &a, &err), TQ_OK);
  assert_int_equal(tq_net_fetch(net, p, &r2, &b, &err), TQ_OK);
  assert_int_equal(hits("/count"), 1);
  assert_int_equal(b->from_cache, 1);
  assert_string_equal(b->body, "n=1");
  tq_net_response_free(a);
  tq_net_response_free(b);
  tq_net_free(net);
  lib_gone(lib, path);
}

static int count_commit(void *ud) {
  (*(int *)ud)++;
  return 0;
}

/* Twenty answers in flight at once are stored in one transaction, not twenty autocommits. */
static void test_cache_writes_are_batched(void **state) {
  (void)state;
  char path[] = "/tmp/tq_net_cache_XXXXXX";
  tq_lib *lib = lib_temp(path);
  tq_net *net = NULL;
  tq_err err;
  assert_int_equal(tq_net_new(lib, &net, &err), TQ_OK);
  tq_net_provider *p = cached_provider(net);
  int commits = 0;
  sqlite3_commit_hook(tq_lib_db(lib), count_commit, &commits);
  counter c = {0};
  char url[20][256];
  for (int i = 0; i < 20; i++) {
    snprintf(url[i], sizeof url[i], "%s?i=%d", url_of("/count"), i);
    tq_net_request req = {.url = url[i]};
    assert_int_equal(tq_net_submit(net, p, &req, count_done, &c, &err), TQ_OK);
  }
  while (tq_net_pending(net) > 0)
    assert_int_equal(tq_net_run(net, 1000, &err), TQ_OK);
  tq_net_free(net); /* writes whatever is still queued */
  sqlite3_commit_hook(tq_lib_db(lib), NULL, NULL);
  assert_int_equal(c.ok, 20);
  assert_int_equal(sql_int(lib, "SELECT count(*) FROM http_cache"), 20);
  print_message("20 responses stored in %d commits\n", commits);
  assert_true(commits >= 1 && commits <= 10); /* not one per response (20 before) */
  lib_gone(lib, path);
}

static void test_expired_rows_are_removed(void **state) {
  (void)state;
  char path[] = "/tmp/tq_net_cache_XXXXXX";
  tq_lib *lib = lib_temp(path);
  tq_err err;
  int64_t now = tq_time_now();
  tq_lib_cache_row old[] = {
      {.key = "GET http://h/a 00", .status = 200, .body = "a", .len = 1, .expires_at = now - 10},
      {.key = "GET http://h/b 00", .status = 200, .body = "b", .len = 1, .expires_at = now - 1},
      {.key = "GET http://h/c 00", .status = 200, .body = "c", .len = 1, .expires_at = now + 3600}};
  assert_int_equal(tq_lib_cache_put(lib, old, 3, NULL, NULL, &err), TQ_OK);
  assert_int_equal(sql_int(lib, "SELECT count(*) FROM http_cache"), 3);
  tq_net *net = NULL;
  assert_int_equal(tq_net_new(lib, &net, &err), TQ_OK);
  tq_net_response_free(fetch(net, cached_provider(net), url_of("/count")));
  tq_net_free(net);
  /* the first write of a tq_net purged the expired rows: c and the new answer remain */
  assert_int_equal(sql_int(lib, "SELECT count(*) FROM http_cache"), 2);
  assert_int_equal(sql_int(lib, "SELECT count(*) FROM http_cache WHERE expires_at <= "
                                "strftime('%s','now')"),
                   0);
  lib_gone(lib, path);
}

static void test_the_cache_is_capped(void **state) {
  (void)state;
  char path[] = "/tmp/tq_net_cache_XXXXXX";
  tq_lib *lib = lib_temp(path);
  tq_err err;
  int64_t now = tq_time_now();
  tq_lib_cache_row rows[10];
  char keys[10][32];
  for (int i = 0; i < 10; i++) {
    snprintf(keys[i], sizeof keys[i], "GET http://h/%d 00", i);
    rows[i] = (tq_lib_cache_row){.key = keys[i],
                                 .status = 200,
                                 .body = "0123456789",
                                 .len = 10,
                                 .expires_at = now + 100 + i};
  }
  int64_t purged = -1;
  tq_lib_cache_caps rows_cap = {.now = now, .max_rows = 6, .max_bytes = 1000};
  assert_int_equal(tq_lib_cache_put(lib, rows, 10, &rows_cap, &purged, &err), TQ_OK);
  assert_int_equal(purged, 4);
  /* the rows that expire first went */
  assert_int_equal(sql_int(lib, "SELECT min(expires_at) FROM http_cache"), now + 104);
  tq_lib_cache_caps bytes_cap = {.now = now, .max_rows = 100, .max_bytes = 35};
  assert_int_equal(tq_lib_cache_put(lib, NULL, 0, &bytes_cap, &purged, &err), TQ_OK);
  assert_int_equal(purged, 3);
  assert_int_equal(sql_int(lib, "SELECT count(*) FROM http_cache"), 3);
  lib_gone(lib, path);
}

/* A dry run's tq_net reads the cache and never writes it. */
static void test_a_read_only_cache_is_read_but_never_written(void **state) {
  (void)state;
  char path[] = "/tmp/tq_net_cache_XXXXXX";
  tq_lib *lib = lib_temp(path);
  tq_net *net = NULL;
  tq_err err;
  assert_int_equal(tq_net_new(lib, &net, &err), TQ_OK);
  tq_net_cache_readonly(net);
  tq_net_provider *p = cached_provider(net);
  tq_net_response_free(fetch(net, p, url_of("/count")));
  tq_net_response_free(fetch(net, p, url_of("/count")));
  assert_int_equal(hits("/count"), 2);
  tq_net_free(net);
  assert_int_equal(sql_int(lib, "SELECT count(*) FROM http_cache"), 0);
  /* what a writing run stored is read */
  assert_int_equal(tq_net_new(lib, &net, &err), TQ_OK);
  tq_net_response_free(fetch(net, cached_provider(net), url_of("/count")));
  tq_net_free(net);
  assert_int_equal(tq_net_new(lib, &net, &err), TQ_OK);
  tq_net_cache_readonly(net);
  tq_net_response *r = fetch(net, cached_provider(net), url_of("/count"));
  assert_int_equal(r->from_cache, 1);
  assert_string_equal(r->body, "n=3");
  tq_net_response_free(r);
  tq_net_free(net);
  assert_int_equal(hits("/count"), 3);
  lib_gone(lib, path);
}

/* Not a timed test: prints the client thread's CPU per request at concurrency 64. */
static void test_cpu_per_request_is_reported(void **state) {
  (void)state;
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.max_conns = 64;
  tq_net *net = new_net();
  tq_net_provider *p = provider(net, "p", &pol);
  counter c = {0};
  struct rusage a, b;
  int n = 2000;
  int64_t t0 = now_ms();
  getrusage(RUSAGE_THREAD, &a);
  submit_n(net, p, url_of("/json"), n, &c);
  run_all(net, &c, n);
  getrusage(RUSAGE_THREAD, &b);
  int64_t took = now_ms() - t0;
  double user = ((double)(b.ru_utime.tv_sec - a.ru_utime.tv_sec) * 1e6 +
                 (double)(b.ru_utime.tv_usec - a.ru_utime.tv_usec)) /
                n;
  double sys = ((double)(b.ru_stime.tv_sec - a.ru_stime.tv_sec) * 1e6 +
                (double)(b.ru_stime.tv_usec - a.ru_stime.tv_usec)) /
               n;
  printf("net: %d requests in %lld ms; client thread CPU per request: %.1f us user + %.1f us "
         "system (loopback TCP of both ends included)\n",
         n, (long long)took, user, sys);
  assert_int_equal(c.ok, n);
  tq_net_free(net);
}

/* A plugin's provider: an empty allow-list allows nothing, and loopback, private and
 * link-local addresses only when named literally. */
static tq_net_policy strict_policy(const char *const *allow, size_t n) {
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.allow_hosts = allow;
  pol.n_allow_hosts = n;
  pol.deny_unlisted = 1;
  pol.block_private = 1;
  return pol;
}

static void test_an_empty_allow_list_that_denies_unlisted_allows_no_host(void **state) {
  (void)state;
  tq_net_policy pol = strict_policy(NULL, 0);
  tq_net *net = new_net();
  tq_net_response *r = fetch(net, provider(net, "none", &pol), url_of("/json"));
  assert_int_equal(r->fail, TQ_NET_BLOCKED);
  assert_non_null(strstr(r->error, "provider 'none' allows no host"));
  assert_int_equal(r->attempts, 0);
  assert_int_equal(hits("/json"), 0);
  tq_net_response_free(r);
  tq_net_free(net);
}

/* curl resolves every *.localhost name to loopback without DNS: a named host whose address
 * is loopback, which is what a rebinding DNS answer looks like. The check is on the
 * address curl connects to, so it is refused though the name is on the allow-list. */
static void test_a_named_host_that_resolves_to_loopback_is_refused_at_connect(void **state) {
  (void)state;
  char entry[64], url[96];
  snprintf(entry, sizeof entry, "api.localhost:%u", S.port);
  snprintf(url, sizeof url, "http://api.localhost:%u/json", S.port);
  const char *allow[] = {entry};
  tq_net_policy pol = strict_policy(allow, 1);
  pol.retry_max = 2;
  tq_net *net = new_net();
  tq_net_response *r = fetch(net, provider(net, "rebind", &pol), url);
  assert_int_equal(r->fail, TQ_NET_BLOCKED);
  print_message("%s\n", r->error);
  assert_non_null(strstr(r->error, "is loopback: reached only when network.hosts names it"));
  assert_int_equal(r->attempts, 1); /* a refusal by policy is not retried */
  assert_int_equal(hits("/json"), 0);
  tq_net_response_free(r);
  /* Without block_private the same provider reaches it. */
  pol.block_private = 0;
  r = fetch(net, provider(net, "rebind-open", &pol), url);
  assert_int_equal(r->fail, TQ_NET_OK);
  tq_net_response_free(r);
  tq_net_free(net);
}

static void test_a_loopback_address_named_literally_is_reached(void **state) {
  (void)state;
  char entry[64];
  snprintf(entry, sizeof entry, "http://127.0.0.1:%u/v1", S.port); /* {config.base_url} */
  const char *allow[] = {entry};
  tq_net_policy pol = strict_policy(allow, 1);
  tq_net *net = new_net();
  tq_net_response *r = fetch(net, provider(net, "named", &pol), url_of("/json"));
  assert_int_equal(r->fail, TQ_NET_OK);
  tq_net_response_free(r);
  /* A literal with a port names that port only. */
  char name[64], url[96];
  snprintf(name, sizeof name, "api.localhost:%u", S.port);
  snprintf(url, sizeof url, "http://api.localhost:%u/json", S.port);
  const char *other[] = {"127.0.0.1:1", "[::1]:1", name};
  pol = strict_policy(other, 3);
  r = fetch(net, provider(net, "other-port", &pol), url);
  assert_int_equal(r->fail, TQ_NET_BLOCKED);
  tq_net_response_free(r);
  /* "localhost" names loopback. */
  snprintf(url, sizeof url, "http://localhost:%u/json", S.port);
  const char *local[] = {"localhost"};
  pol = strict_policy(local, 1);
  r = fetch(net, provider(net, "localhost", &pol), url);
  assert_int_equal(r->fail, TQ_NET_OK);
  tq_net_response_free(r);
  tq_net_free(net);
}

static void test_a_host_header_is_refused_at_submit(void **state) {
  (void)state;
  tq_net *net = new_net();
  tq_net_provider *p = provider(net, "p", NULL);
  static const char *const bad[][1] = {{"Host: 169.254.169.254"}, {"host:evil"}, {" HOST : x"}};
  for (size_t i = 0; i < 3; i++) {
    tq_net_request req = {.url = url_of("/json"), .headers = bad[i], .n_headers = 1};
    tq_net_response *resp = NULL;
    tq_err err = {0};
    assert_int_equal(tq_net_fetch(net, p, &req, &resp, &err), TQ_EINVAL);
    assert_non_null(strstr(err.msg, "header 'Host' cannot be set"));
  }
  static const char *const fine[] = {"X-Host: a", "Hostname: b"};
  tq_net_request req = {.url = url_of("/json"), .headers = fine, .n_headers = 2};
  tq_net_response *resp = NULL;
  tq_err err = {0};
  assert_int_equal(tq_net_fetch(net, p, &req, &resp, &err), TQ_OK);
  assert_int_equal(resp->fail, TQ_NET_OK);
  tq_net_response_free(resp);
  tq_net_free(net);
}

#define T(f) cmocka_unit_test_setup_teardown(f, server_start, server_stop)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_get_returns_status_body_and_headers),
      T(test_429_retry_after_seconds_is_honoured),
      T(test_503_retry_after_http_date_is_honoured),
      T(test_500_gives_up_after_retry_max),
      T(test_stalled_response_times_out),
      T(test_body_past_cap_with_length_is_too_large),
      T(test_streamed_body_past_cap_is_too_large),
      T(test_relative_redirect_is_followed),
      T(test_redirect_off_allow_list_is_blocked),
      T(test_request_off_allow_list_is_blocked),
      T(test_an_empty_allow_list_that_denies_unlisted_allows_no_host),
      T(test_a_named_host_that_resolves_to_loopback_is_refused_at_connect),
      T(test_a_loopback_address_named_literally_is_reached),
      T(test_a_host_header_is_refused_at_submit),
      T(test_closed_port_is_refused_after_retries),
      T(test_tls_handshake_failure_is_tls),
      T(test_provider_caps_connections),
      T(test_flush_writes_requests_without_callbacks),
      T(test_provider_rate_limit_spaces_requests),
      T(test_rate_limit_is_shared_across_nets),
      T(test_callbacks_run_from_tq_net_run_only),
      T(test_identical_gets_in_flight_are_merged),
      cmocka_unit_test(test_cache_key_hides_secrets_and_normalises),
      T(test_bad_requests_are_rejected_at_submit),
      T(test_post_sends_body),
      T(test_cached_get_is_served_without_the_network),
      cmocka_unit_test(test_cache_key_ignores_header_order),
      T(test_headers_in_another_order_hit_the_cache),
      T(test_cache_writes_are_batched),
      T(test_expired_rows_are_removed),
      cmocka_unit_test(test_the_cache_is_capped),
      T(test_a_read_only_cache_is_read_but_never_written),
      T(test_cpu_per_request_is_reported),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
