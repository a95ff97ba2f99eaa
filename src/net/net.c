/* net.c: the life of one request in a tq_net: submit (checks, cache lookup, in-flight merge),
 * attempts on pooled easy handles, completion (retry with backoff, manual redirects checked
 * against the allow-list, final response, cache store) and the recycling of both. The event
 * loop itself is in net_loop.c, admission in net_policy.c. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "net_int.h"

/* curl_global_init is not thread-safe and must run once per process: this is its one
 * place. curl_global_cleanup is never called; the process keeps curl until it exits. */
static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc;

static void curl_init_once(void) { g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int64_t net_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* xorshift64*: the jitter of backoffs needs spread, not secrecy. */
static uint64_t net_rand(tq_net *net) {
  uint64_t x = net->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  net->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* ---- in-flight merge table: key -> the leader request ------------------------------------ */

static size_t key_hash(const char *k) {
  uint64_t h = 1469598103934665603ULL;
  for (; *k; k++)
    h = (h ^ (unsigned char)*k) * 1099511628211ULL;
  return (size_t)h;
}

static net_req *map_find(tq_net *net, const char *key) {
  if (net->map_cap == 0)
    return NULL;
  net_req *r = net->map[key_hash(key) & (net->map_cap - 1)];
  while (r && strcmp(r->key, key) != 0)
    r = r->map_next;
  return r;
}

static tq_code map_grow(tq_net *net) {
  size_t cap = net->map_cap ? net->map_cap * 2 : 64;
  net_req **m = calloc(cap, sizeof *m);
  if (m == NULL)
    return TQ_ENOMEM;
  for (size_t i = 0; i < net->map_cap; i++) {
    net_req *r = net->map[i];
    while (r) {
      net_req *next = r->map_next;
      size_t b = key_hash(r->key) & (cap - 1);
      r->map_next = m[b];
      m[b] = r;
      r = next;
    }
  }
  free(net->map);
  net->map = m;
  net->map_cap = cap;
  return TQ_OK;
}

static tq_code map_insert(tq_net *net, net_req *req) {
  if (net->map_len >= net->map_cap && map_grow(net) != TQ_OK)
    return TQ_ENOMEM;
  size_t b = key_hash(req->key) & (net->map_cap - 1);
  req->map_next = net->map[b];
  net->map[b] = req;
  net->map_len++;
  req->in_map = 1;
  return TQ_OK;
}

static void map_remove(tq_net *net, net_req *req) {
  net_req **pp = &net->map[key_hash(req->key) & (net->map_cap - 1)];
  while (*pp && *pp != req)
    pp = &(*pp)->map_next;
  if (*pp)
    *pp = req->map_next;
  req->map_next = NULL;
  req->in_map = 0;
  net->map_len--;
}

/* ---- request records: pooled, so a busy loop does not allocate one per request ------------ */

static void req_clear(net_req *req) {
  free(req->method);
  free(req->url);
  free(req->body);
  free(req->key);
  curl_slist_free_all(req->hdrs);
  tq_buf_free(&req->resp_body);
  tq_buf_free(&req->resp_hdrs);
  tq_net_response_free(req->resp);
}

static net_req *req_alloc(tq_net *net) {
  net_req *req = net->free_reqs;
  if (req)
    net->free_reqs = req->next;
  else if ((req = malloc(sizeof *req)) == NULL)
    return NULL;
  memset(req, 0, offsetof(net_req, errbuf));
  req->errbuf[0] = '\0';
  req->net = net;
  tq_buf_init(&req->resp_body, 0);
  tq_buf_init(&req->resp_hdrs, NET_MAX_HEADER_BYTES);
  req->live_next = net->live;
  if (net->live)
    net->live->live_prev = req;
  net->live = req;
  return req;
}

void net_req_recycle(tq_net *net, net_req *req) {
  if (req->in_map)
    map_remove(net, req);
  if (req->live_prev)
    req->live_prev->live_next = req->live_next;
  else
    net->live = req->live_next;
  if (req->live_next)
    req->live_next->live_prev = req->live_prev;
  req_clear(req);
  req->next = net->free_reqs;
  net->free_reqs = req;
}

/* ---- easy handles: pooled; their connections live in the multi's cache ----------------- */

static CURL *easy_get(tq_net *net) {
  if (net->n_easy == 0)
    return curl_easy_init();
  CURL *e = net->easy_pool[--net->n_easy];
  curl_easy_reset(e);
  return e;
}

static void easy_put(tq_net *net, CURL *e) {
  if (net->n_easy < NET_EASY_POOL_MAX)
    net->easy_pool[net->n_easy++] = e;
  else
    curl_easy_cleanup(e);
}

/* ---- tq_net -------------------------------------------------------------------------------- */

tq_code tq_net_new(tq_lib *cache, tq_net **out, tq_err *err) {
  pthread_once(&g_curl_once, curl_init_once);
  if (g_curl_init_rc != CURLE_OK)
    return tq_err_set(err, TQ_ENET, "net: curl_global_init: %s",
                      curl_easy_strerror(g_curl_init_rc));
  tq_net *net = calloc(1, sizeof *net);
  if (net == NULL)
    return tq_err_set(err, TQ_ENOMEM, "net: out of memory");
  net->epfd = -1;
  net->wakefd = -1;
  net->cache = cache;
  net->rng = (uint64_t)net_now_us() ^ (uint64_t)(uintptr_t)net ^ 0x9E3779B97F4A7C15ULL;
  if (net->rng == 0)
    net->rng = 1;
  net->easy_pool = malloc(NET_EASY_POOL_MAX * sizeof *net->easy_pool);
  if (net->easy_pool == NULL) {
    tq_net_free(net);
    return tq_err_set(err, TQ_ENOMEM, "net: out of memory");
  }
  tq_code rc = net_loop_init(net, err);
  if (rc != TQ_OK) {
    tq_net_free(net);
    return rc;
  }
  *out = net;
  return TQ_OK;
}

void tq_net_free(tq_net *net) {
  if (net == NULL)
    return;
  net_cache_free(net);
  while (net->live) {
    net_req *req = net->live;
    net->live = req->live_next;
    if (req->easy) {
      curl_multi_remove_handle(net->multi, req->easy);
      curl_easy_cleanup(req->easy);
    }
    req_clear(req);
    free(req);
  }
  while (net->free_reqs) {
    net_req *req = net->free_reqs;
    net->free_reqs = req->next;
    free(req);
  }
  for (size_t i = 0; i < net->n_easy; i++)
    curl_easy_cleanup(net->easy_pool[i]);
  free(net->easy_pool);
  while (net->providers) {
    tq_net_provider *p = net->providers;
    net->providers = p->next;
    net_provider_free(p);
  }
  free(net->map);
  net_heap_clear(net);
  net_loop_free(net);
  free(net);
}

size_t tq_net_pending(const tq_net *net) { return net ? net->pending : 0; }

tq_code tq_net_provider_get(tq_net *net, const char *name, const tq_net_policy *policy,
                            tq_net_provider **out, tq_err *err) {
  tq_net_policy defaults;
  if (net == NULL || name == NULL || out == NULL)
    return tq_err_set(err, TQ_EINVAL, "net: tq_net_provider_get: NULL argument");
  tq_net_provider **pp = &net->providers;
  for (; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->name, name) == 0) {
      *out = *pp;
      return TQ_OK;
    }
  if (policy == NULL) {
    tq_net_policy_init(&defaults);
    policy = &defaults;
  }
  tq_code rc = net_provider_new(name, policy, pp, err);
  if (rc == TQ_OK)
    *out = *pp;
  return rc;
}

/* ---- completion ------------------------------------------------------------------------- */

static void done_push(tq_net *net, net_req *req) {
  req->next = NULL;
  if (net->done_tail)
    net->done_tail->next = req;
  else
    net->done_head = req;
  net->done_tail = req;
}

/* A waiter merged into req gets its own copy of req's response. */
static void follower_fill(net_req *f, const tq_net_response *r) {
  tq_net_response *fr = f->resp;
  *fr = *r;
  fr->headers = tq_strdup(r->headers);
  fr->body = r->body ? malloc(r->body_len + 1) : NULL;
  if (fr->body)
    memcpy(fr->body, r->body, r->body_len + 1);
  if ((r->headers && fr->headers == NULL) || (r->body && fr->body == NULL)) {
    free(fr->headers);
    free(fr->body);
    fr->headers = fr->body = NULL;
    fr->body_len = 0;
    fr->fail = TQ_NET_REFUSED;
    snprintf(fr->error, sizeof fr->error, "net: out of memory copying a merged response");
  }
}

static void cache_store(tq_net *net, net_req *req, const tq_net_response *r) {
  int64_t ttl_s = (req->prov->cache_ttl_ms + 999) / 1000;
  net_cache_queue(net, req->key, r->status, r->body, r->body_len, tq_time_now() + ttl_s);
}

void net_finish(tq_net *net, net_req *req, tq_net_fail fail, const char *fmt, ...) {
  tq_net_response *r = req->resp;
  va_list ap;
  r->fail = fail;
  r->status = req->status;
  r->attempts = req->attempts;
  if (fail != TQ_NET_OK)
    req->prov->stats.failures++;
  if (!r->from_cache) {
    r->body_len = req->resp_body.len;
    r->headers = tq_buf_take(&req->resp_hdrs);
    r->body = tq_buf_take(&req->resp_body);
  }
  va_start(ap, fmt);
  vsnprintf(r->error, sizeof r->error, fmt, ap);
  va_end(ap);
  if (req->cacheable && fail == TQ_NET_OK && r->status < 400 && !r->from_cache)
    cache_store(net, req, r);
  if (req->in_map)
    map_remove(net, req);
  if (fail == TQ_NET_HTTP && (r->status == 401 || r->status == 403)) {
    req->prov->auth_streak++;
    tq_strlcpy(req->prov->auth_error, r->error, sizeof req->prov->auth_error);
  } else if (fail == TQ_NET_OK || fail == TQ_NET_HTTP) {
    req->prov->auth_streak = 0;
  }
  done_push(net, req);
  while (req->followers) {
    net_req *f = req->followers;
    req->followers = f->next;
    follower_fill(f, r);
    done_push(net, f);
  }
  req->followers_tail = NULL;
}

/* "GET http://host:port/path" for messages: never the query, which may hold a secret. */
static void req_where(const net_req *req, char *out, size_t n) {
  char where[512] = "?";
  CURLU *u = curl_url();
  if (u && curl_url_set(u, CURLUPART_URL, req->url, 0) == CURLUE_OK)
    net_url_display(u, where, sizeof where);
  curl_url_cleanup(u);
  snprintf(out, n, "%s %s", req->method, where);
}

/* "GET http://host:port/path?query" for debug lines: the query with credential parameters
 * masked (tq_net_url_mask); secrets sent in headers never appear. */
static void req_shown(const net_req *req, char *out, size_t n) {
  char *m = tq_net_url_mask(req->url, "********");
  snprintf(out, n, "%s %s", req->method, m ? m : "(out of memory)");
  free(m);
}

static tq_net_fail classify(CURLcode res, int write_fail) {
  switch (res) {
  case CURLE_OPERATION_TIMEDOUT: return TQ_NET_TIMEOUT;
  case CURLE_FILESIZE_EXCEEDED: return TQ_NET_TOO_LARGE;
  case CURLE_WRITE_ERROR: return write_fail == 1 ? TQ_NET_TOO_LARGE : TQ_NET_REFUSED;
  case CURLE_UNSUPPORTED_PROTOCOL: return TQ_NET_BLOCKED;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_CLIENTCERT: return TQ_NET_TLS;
  default: return TQ_NET_REFUSED;
  }
}

/* Waits out max(Retry-After, full jitter over the exponential backoff), then requeues.
 * reason (why the attempt failed: "HTTP 429", a curl error) is for the debug log. */
static void schedule_retry(tq_net *net, net_req *req, int64_t retry_after_ms, const char *reason) {
  char where[600];
  if (retry_after_ms > NET_RETRY_AFTER_MAX_MS) {
    req_where(req, where, sizeof where);
    net_finish(net, req, TQ_NET_HTTP, "%s: HTTP %d, Retry-After %lld s is too long", where,
               req->status, (long long)(retry_after_ms / 1000));
    return;
  }
  int64_t cap = req->prov->backoff_ms;
  for (int i = 0; i < req->retries && cap < NET_BACKOFF_CAP_MS; i++)
    cap *= 2;
  if (cap > NET_BACKOFF_CAP_MS)
    cap = NET_BACKOFF_CAP_MS;
  int64_t delay = (int64_t)(net_rand(net) % (uint64_t)(cap + 1));
  if (retry_after_ms > delay)
    delay = retry_after_ms;
  req->retries++;
  req->prov->stats.retries++;
  if (tq_log_enabled(TQ_LOG_DEBUG)) {
    char shown[1200];
    req_shown(req, shown, sizeof shown);
    char ra[48] = "";
    if (retry_after_ms >= 0)
      snprintf(ra, sizeof ra, ", Retry-After %lld ms", (long long)retry_after_ms);
    tq_log(TQ_LOG_DEBUG, "net",
           "provider=%s %s: attempt %d failed (%s); retry %d of %d in %lld ms%s", req->prov->name,
           shown, req->attempts, reason, req->retries, req->prov->retry_max, (long long)delay, ra);
  }
  req->wake_us = net_now_us() + delay * 1000;
  if (net_heap_push(net, req) != TQ_OK) {
    req_where(req, where, sizeof where);
    net_finish(net, req, TQ_NET_REFUSED, "%s: out of memory scheduling a retry", where);
  }
}

static int is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* curl drops credentials when a redirect changes host; so do we, as the headers are ours. */
static struct curl_slist *headers_without_credentials(struct curl_slist *in) {
  struct curl_slist *out = NULL;
  for (struct curl_slist *h = in; h; h = h->next) {
    if (strncasecmp(h->data, "authorization:", 14) == 0 || strncasecmp(h->data, "cookie:", 7) == 0)
      continue;
    struct curl_slist *n = curl_slist_append(out, h->data);
    if (n == NULL) {
      curl_slist_free_all(out);
      return NULL;
    }
    out = n;
  }
  return out;
}

/* Points req at the redirect target; 0 on success, else fills msg and returns the failure. */
static tq_net_fail redirect_apply(net_req *req, CURLU *u, char *msg, size_t n) {
  char *target = NULL, *old_host = NULL, *new_host = NULL;
  char hostport[300];
  tq_net_fail fail = TQ_NET_OK;
  CURLU *old = curl_url();
  if (old == NULL || curl_url_set(old, CURLUPART_URL, req->url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_URL, &target, 0) != CURLUE_OK) {
    snprintf(msg, n, "out of memory following a redirect");
    fail = TQ_NET_REFUSED;
    goto done;
  }
  if (!net_host_allowed(req->prov, u, hostport, sizeof hostport)) {
    snprintf(msg, n, "redirect to %s: host off the allow-list of provider '%s'", hostport,
             req->prov->name);
    fail = TQ_NET_BLOCKED;
    goto done;
  }
  curl_url_get(old, CURLUPART_HOST, &old_host, 0);
  curl_url_get(u, CURLUPART_HOST, &new_host, 0);
  if (old_host && new_host && strcasecmp(old_host, new_host) != 0) {
    struct curl_slist *h = headers_without_credentials(req->hdrs);
    if (h == NULL && req->hdrs) {
      snprintf(msg, n, "out of memory following a redirect");
      fail = TQ_NET_REFUSED;
      goto done;
    }
    curl_slist_free_all(req->hdrs);
    req->hdrs = h;
  }
  free(req->url);
  req->url = tq_strdup(target);
  if (req->url == NULL) {
    snprintf(msg, n, "out of memory following a redirect");
    fail = TQ_NET_REFUSED;
  }
done:
  curl_free(target);
  curl_free(old_host);
  curl_free(new_host);
  curl_url_cleanup(old);
  return fail;
}

/* 303, and 301/302 after a POST, turn into a GET without body (what browsers and curl do). */
static void redirect_method(net_req *req) {
  if (req->status == 303 ||
      ((req->status == 301 || req->status == 302) && strcmp(req->method, "POST") == 0)) {
    if (strcmp(req->method, "HEAD") != 0) {
      free(req->method);
      req->method = tq_strdup("GET");
    }
    free(req->body);
    req->body = NULL;
    req->body_len = 0;
  }
}

/* Follows a 3xx by hand so that every hop is checked against the allow-list. Returns 0 when
 * the response is final (not a redirect, no Location, following disabled). */
static int handle_redirect(tq_net *net, net_req *req) {
  const char *loc;
  size_t len;
  char where[600], msg[400];
  if (!is_redirect(req->status) || req->prov->follow_redirects == 0 ||
      req->resp_hdrs.data == NULL ||
      !net_header_find(req->resp_hdrs.data, "Location", &loc, &len) || len == 0)
    return 0;
  req_where(req, where, sizeof where);
  if (req->redirects >= req->prov->follow_redirects) {
    net_finish(net, req, TQ_NET_HTTP, "%s: more than %d redirects", where,
               req->prov->follow_redirects);
    return 1;
  }
  char *target = tq_strndup(loc, len);
  CURLU *u = curl_url();
  tq_net_fail fail = TQ_NET_REFUSED;
  snprintf(msg, sizeof msg, "out of memory following a redirect");
  if (target && u && curl_url_set(u, CURLUPART_URL, req->url, 0) == CURLUE_OK) {
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, target, 0);
    char *scheme = NULL;
    if (uc != CURLUE_OK) {
      fail = TQ_NET_HTTP;
      snprintf(msg, sizeof msg, "bad redirect Location: %s", curl_url_strerror(uc));
    } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
               (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
      fail = TQ_NET_BLOCKED;
      snprintf(msg, sizeof msg, "redirect to a scheme other than http or https");
    } else if (strcmp(scheme, "http") == 0 && strncasecmp(req->url, "https:", 6) == 0) {
      /* A downgrade would send the request, its credentials included, in clear. */
      fail = TQ_NET_BLOCKED;
      snprintf(msg, sizeof msg, "redirect from https to http (%.200s) refused", target);
    } else {
      fail = redirect_apply(req, u, msg, sizeof msg);
    }
    curl_free(scheme);
  }
  free(target);
  curl_url_cleanup(u);
  if (fail != TQ_NET_OK) {
    net_finish(net, req, fail, "%s: %s", where, msg);
    return 1;
  }
  redirect_method(req);
  req->redirects++;
  net_provider_enqueue(req->prov, req, 1);
  return 1;
}

static void handle_curl_error(tq_net *net, net_req *req, CURLcode res) {
  char where[600];
  if (req->addr_refused[0] && res == CURLE_COULDNT_CONNECT) { /* policy, not the network */
    req_where(req, where, sizeof where);
    net_finish(net, req, TQ_NET_BLOCKED, "%s: %s", where, req->addr_refused);
    return;
  }
  tq_net_fail fail = classify(res, req->write_fail);
  int transient = (fail == TQ_NET_TIMEOUT || fail == TQ_NET_REFUSED) && req->write_fail == 0;
  if (transient && req->retries < req->prov->retry_max) {
    char reason[CURL_ERROR_SIZE + 64];
    snprintf(reason, sizeof reason, "%s: %s (curl %d)", tq_net_fail_name(fail),
             req->errbuf[0] ? req->errbuf : curl_easy_strerror(res), (int)res);
    schedule_retry(net, req, -1, reason);
    return;
  }
  req_where(req, where, sizeof where);
  if (req->write_fail == 1 || res == CURLE_FILESIZE_EXCEEDED)
    net_finish(net, req, TQ_NET_TOO_LARGE, "%s: response larger than %zu bytes", where,
               req->prov->max_body);
  else
    net_finish(net, req, fail, "%s: %s (%s) after %d attempt%s", where, tq_net_fail_name(fail),
               req->errbuf[0] ? req->errbuf : curl_easy_strerror(res), req->attempts,
               req->attempts == 1 ? "" : "s");
}

void net_transfer_done(tq_net *net, CURL *easy, CURLcode res) {
  net_req *req = NULL;
  long status = 0;
  char where[600];
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_multi_remove_handle(net->multi, easy);
  easy_put(net, easy);
  req->easy = NULL;
  req->prov->active--;
  req->status = (int)status;
  if (status == 429)
    req->prov->stats.status_429++;
  if (res != CURLE_OK) {
    handle_curl_error(net, req, res);
    return;
  }
  if (handle_redirect(net, req))
    return;
  if (net_retry_status(req->prov, req->status) && req->retries < req->prov->retry_max) {
    char reason[32];
    snprintf(reason, sizeof reason, "HTTP %d", req->status);
    schedule_retry(net, req, net_retry_after_ms(req->resp_hdrs.data, time(NULL)), reason);
    return;
  }
  if (req->status < 400) {
    net_finish(net, req, TQ_NET_OK, "%s", "");
    return;
  }
  req_where(req, where, sizeof where);
  net_finish(net, req, TQ_NET_HTTP, "%s: HTTP %d after %d attempt%s", where, req->status,
             req->attempts, req->attempts == 1 ? "" : "s");
}

int tq_net_provider_auth_failures(const tq_net_provider *p, const char **last) {
  if (last)
    *last = p->auth_error;
  return p->auth_streak;
}

/* ---- cancelling -------------------------------------------------------------------------- */

static void cancel_one(tq_net *net, net_req *req) {
  char where[600];
  req_where(req, where, sizeof where);
  net_finish(net, req, TQ_NET_CANCELLED, "%s: cancelled", where);
}

tq_code tq_net_cancel_all(tq_net *net, tq_err *err) {
  if (net->in_run)
    return tq_err_set(err, TQ_EINTERNAL, "net: tq_net_cancel_all called from a callback");
  /* Waiting for a slot or a token. */
  for (tq_net_provider *p = net->providers; p; p = p->next) {
    net_req *q = p->q_head;
    p->q_head = p->q_tail = NULL;
    p->wake_us = 0;
    while (q) {
      net_req *next = q->next;
      cancel_one(net, q);
      q = next;
    }
  }
  /* Waiting out a backoff. */
  size_t n = net->heap_len;
  net->heap_len = 0;
  for (size_t i = 0; i < n; i++)
    cancel_one(net, net->heap[i]);
  /* On the wire: off curl (closes the connection), then complete. Followers complete with
   * their leader in net_finish. */
  for (net_req *req = net->live; req; req = req->live_next) {
    if (req->easy == NULL)
      continue;
    curl_multi_remove_handle(net->multi, req->easy);
    curl_easy_cleanup(req->easy); /* not pooled: its transfer was cut short */
    req->easy = NULL;
    req->prov->active--;
    cancel_one(net, req);
  }
  return TQ_OK;
}

/* ---- attempts --------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  net_req *req = ud;
  size_t len = size * n;
  if (req->resp_body.len + len > req->prov->max_body) {
    req->write_fail = 1; /* returning short aborts with CURLE_WRITE_ERROR */
    return 0;
  }
  if (tq_buf_add(&req->resp_body, p, len) != TQ_OK) {
    req->write_fail = 2;
    return 0;
  }
  return len;
}

/* Keeps only the last header block: 1xx, proxy CONNECT and redirect responses start anew. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  net_req *req = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
    tq_buf_reset(&req->resp_hdrs);
  tq_code rc = tq_buf_add(&req->resp_hdrs, p, len);
  if (rc != TQ_OK) {
    req->write_fail = rc == TQ_ELIMIT ? 1 : 2;
    return 0;
  }
  return len;
}

static void easy_method(CURL *e, const net_req *req) {
  if (strcmp(req->method, "GET") == 0 && req->body == NULL) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(req->method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    if (strcmp(req->method, "POST") != 0)
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body || strcmp(req->method, "POST") == 0) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    }
  }
}

/* Connect-time address check (block_private): curl calls this with each address it resolved
 * for the request's host (or the proxy's), so a name that resolves to a loopback or
 * metadata address is refused whatever the DNS answered at check time. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *addr) {
  net_req *req = ud;
  (void)purpose;
  if (!net_addr_allowed(req->prov, &addr->addr, addr->addrlen, req->addr_refused,
                        sizeof req->addr_refused))
    return CURL_SOCKET_BAD;
  return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* Proxies: CURLOPT_PROXY is never set, so libcurl reads http_proxy, https_proxy, all_proxy and
 * no_proxy from the environment as it does by default. */
static void easy_setup(CURL *e, net_req *req) {
  tq_net_provider *p = req->prov;
  curl_easy_setopt(e, CURLOPT_URL, req->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)req);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)p->max_body);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "tqhost/0.1");
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, p->verify_tls ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, p->verify_tls ? 2L : 0L);
  if (p->ca_file)
    curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_file);
  if (req->hdrs)
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->hdrs);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, p->block_private ? open_socket : NULL);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, p->block_private ? (void *)req : NULL);
  easy_method(e, req);
}

void net_attempt_start(tq_net *net, net_req *req) {
  char where[600];
  tq_buf_reset(&req->resp_body);
  tq_buf_reset(&req->resp_hdrs);
  req->write_fail = 0;
  req->status = 0;
  req->errbuf[0] = '\0';
  req->addr_refused[0] = '\0';
  req->attempts++;
  req->prov->stats.attempts++;
  CURL *e = easy_get(net);
  if (e == NULL)
    goto fail;
  easy_setup(e, req);
  req->easy = e;
  if (curl_multi_add_handle(net->multi, e) != CURLM_OK) {
    req->easy = NULL;
    easy_put(net, e);
    goto fail;
  }
  return;
fail:
  req->prov->active--;
  req_where(req, where, sizeof where);
  net_finish(net, req, TQ_NET_REFUSED, "%s: cannot start a transfer (out of memory)", where);
}

/* ---- submit ------------------------------------------------------------------------------- */

/* Whether the header name of n bytes (surrounding blanks ignored) is Host. */
static int net_header_is_host(const char *name, size_t n) {
  while (n > 0 && (*name == ' ' || *name == '\t'))
    name++, n--;
  while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
    n--;
  return n == 4 && strncasecmp(name, "host", 4) == 0;
}

static tq_code check_request(const tq_net_request *req, char method[16], tq_err *err) {
  const char *m = req->method ? req->method : "GET";
  size_t i = 0;
  for (; m[i]; i++) {
    if (i >= 15 || !((m[i] >= 'A' && m[i] <= 'Z') || (m[i] >= 'a' && m[i] <= 'z')))
      return tq_err_set(err, TQ_EINVAL, "net: bad HTTP method '%.20s'", m);
    method[i] = (char)(m[i] & ~0x20);
  }
  method[i] = '\0';
  if (i == 0)
    return tq_err_set(err, TQ_EINVAL, "net: empty HTTP method");
  for (size_t h = 0; h < req->n_headers; h++) {
    const char *line = req->headers[h];
    const char *colon = line ? strchr(line, ':') : NULL;
    if (colon == NULL || colon == line || strpbrk(line, "\r\n") != NULL)
      return tq_err_set(err, TQ_EINVAL, "net: header %zu is not one 'Name: value' line", h + 1);
    if (net_header_is_host(line, (size_t)(colon - line)))
      return tq_err_set(err, TQ_EINVAL,
                        "net: header 'Host' cannot be set: the host is the URL's, which the "
                        "allow-list checks");
  }
  if (req->body_len && req->body == NULL)
    return tq_err_set(err, TQ_EINVAL, "net: body_len %zu with a NULL body", req->body_len);
  return TQ_OK;
}

/* Copies the caller's request into r (the caller's strings may go once submit returns). */
static tq_code req_copy(net_req *r, const tq_net_request *req, const char *method) {
  r->method = tq_strdup(method);
  r->url = tq_strdup(req->url);
  if (r->method == NULL || r->url == NULL)
    return TQ_ENOMEM;
  if (req->body) {
    r->body = malloc(req->body_len + 1);
    if (r->body == NULL)
      return TQ_ENOMEM;
    memcpy(r->body, req->body, req->body_len);
    r->body[req->body_len] = '\0';
    r->body_len = req->body_len;
  }
  for (size_t h = 0; h < req->n_headers; h++) {
    struct curl_slist *n = curl_slist_append(r->hdrs, req->headers[h]);
    if (n == NULL)
      return TQ_ENOMEM;
    r->hdrs = n;
  }
  /* A body up to 1 MiB would otherwise wait up to a second for "100 Continue". */
  if (r->body) {
    struct curl_slist *n = curl_slist_append(r->hdrs, "Expect:");
    if (n == NULL)
      return TQ_ENOMEM;
    r->hdrs = n;
  }
  r->resp = calloc(1, sizeof *r->resp);
  return r->resp ? TQ_OK : TQ_ENOMEM;
}

/* A cache hit completes r at once (its callback still waits for tq_net_run). */
static int cache_lookup(tq_net *net, net_req *r) {
  int status = 0;
  char *body = NULL;
  size_t len = 0;
  int64_t now = tq_time_now();
  if (!net_cache_queued(net, r->key, now, &status, &body, &len) &&
      tq_lib_cache_get(net->cache, r->key, now, &status, &body, &len, NULL) != TQ_OK)
    return 0;
  r->resp->from_cache = 1;
  r->prov->stats.cache_hits++;
  if (tq_log_enabled(TQ_LOG_DEBUG)) {
    char shown[1200];
    req_shown(r, shown, sizeof shown);
    tq_log(TQ_LOG_DEBUG, "net", "provider=%s %s: cache hit (status %d, %zu bytes)", r->prov->name,
           shown, status, len);
  }
  r->resp->body = body;
  r->resp->body_len = len;
  r->resp->headers = tq_strdup("");
  r->status = status;
  net_finish(net, r, TQ_NET_OK, "%s", "");
  return 1;
}

/* Routes a copied request: blocked, cached, merged into an identical one, or queued. */
static tq_code req_route(tq_net *net, net_req *r, CURLU *u, const tq_net_request *req,
                         tq_err *err) {
  char hostport[300];
  if (!net_host_allowed(r->prov, u, hostport, sizeof hostport)) {
    char where[600];
    req_where(r, where, sizeof where);
    if (r->prov->n_allow == 0)
      net_finish(net, r, TQ_NET_BLOCKED,
                 "%s: provider '%s' allows no host (its plugin's manifest lists no "
                 "network.hosts)",
                 where, r->prov->name);
    else
      net_finish(net, r, TQ_NET_BLOCKED, "%s: host %s is off the allow-list of provider '%s'",
                 where, hostport, r->prov->name);
    return TQ_OK;
  }
  if (strcmp(r->method, "GET") == 0 && !req->no_cache) {
    tq_code rc = net_key_build(u, r->method, req->headers, req->n_headers, req->body, req->body_len,
                               &r->key, err);
    if (rc != TQ_OK)
      return rc;
    r->cacheable = net->cache != NULL && r->prov->cache_ttl_ms > 0;
    if (r->cacheable && cache_lookup(net, r))
      return TQ_OK;
    net_req *leader = map_find(net, r->key);
    if (leader) {
      if (tq_log_enabled(TQ_LOG_DEBUG)) {
        char shown[1200];
        req_shown(r, shown, sizeof shown);
        tq_log(TQ_LOG_DEBUG, "net", "provider=%s %s: merged into the same request in flight",
               r->prov->name, shown);
      }
      if (leader->followers_tail)
        leader->followers_tail->next = r;
      else
        leader->followers = r;
      leader->followers_tail = r;
      r->next = NULL;
      r->cacheable = 0;
      return TQ_OK;
    }
    if (map_insert(net, r) != TQ_OK)
      return tq_err_set(err, TQ_ENOMEM, "net: out of memory");
  }
  net_provider_enqueue(r->prov, r, 0);
  return TQ_OK;
}

tq_code tq_net_submit(tq_net *net, tq_net_provider *prov, const tq_net_request *req,
                      tq_net_done_fn done, void *ud, tq_err *err) {
  char method[16];
  CURLU *u = NULL;
  net_req *r = NULL;
  if (net == NULL || prov == NULL || req == NULL || req->url == NULL || done == NULL)
    return tq_err_set(err, TQ_EINVAL, "net: tq_net_submit: NULL argument");
  tq_code rc = check_request(req, method, err);
  if (rc == TQ_OK)
    rc = net_url_parse(req->url, &u, err);
  if (rc != TQ_OK)
    return rc;
  r = req_alloc(net);
  if (r == NULL || req_copy(r, req, method) != TQ_OK) {
    rc = tq_err_set(err, TQ_ENOMEM, "net: out of memory submitting a request");
    goto fail;
  }
  r->prov = prov;
  r->done = done;
  r->ud = ud;
  r->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : prov->timeout_ms;
  rc = req_route(net, r, u, req, err);
  if (rc != TQ_OK)
    goto fail;
  net->pending++;
  curl_url_cleanup(u);
  return TQ_OK;
fail:
  if (r)
    net_req_recycle(net, r);
  curl_url_cleanup(u);
  return rc;
}

/* ---- blocking convenience ----------------------------------------------------------------- */

static void fetch_done(void *ud, tq_net_response *resp) { *(tq_net_response **)ud = resp; }

tq_code tq_net_fetch(tq_net *net, tq_net_provider *prov, const tq_net_request *req,
                     tq_net_response **out, tq_err *err) {
  tq_net_response *resp = NULL;
  if (net && net->in_run)
    return tq_err_set(err, TQ_EINTERNAL, "net: tq_net_fetch called from a completion callback");
  tq_code rc = tq_net_submit(net, prov, req, fetch_done, &resp, err);
  while (rc == TQ_OK && resp == NULL)
    rc = tq_net_run(net, 1000, err);
  if (rc == TQ_OK)
    *out = resp;
  return rc;
}

void tq_net_each_provider(const tq_net *net,
                          void (*fn)(void *ud, const char *name, const tq_net_stats *st),
                          void *ud) {
  for (const tq_net_provider *p = net->providers; p; p = p->next)
    fn(ud, p->name, &p->stats);
}
