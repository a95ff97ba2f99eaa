/* net_policy.c: network policies and the providers that hold them: the host allow-list, the
 * retried statuses, the token bucket and the connection slots. Admission happens here
 * (net_provider_pump): a request waits in its provider's FIFO until a slot and a token are
 * both free; it never fails for want of either. */
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net_int.h"

void tq_net_policy_init(tq_net_policy *p) {
  memset(p, 0, sizeof *p);
  p->max_conns = NET_DEFAULT_MAX_CONNS;
  p->backoff_ms = NET_DEFAULT_BACKOFF_MS;
  p->timeout_ms = NET_DEFAULT_TIMEOUT_MS;
  p->max_body = NET_DEFAULT_MAX_BODY;
  p->verify_tls = 1;
  p->follow_redirects = NET_DEFAULT_REDIRECTS;
}

static void str_lower(char *s) {
  for (; *s; s++)
    *s = (char)tolower((unsigned char)*s);
}

/* An allow-list entry is a host, "host:port", or a URL (a manifest writes
 * "{config.base_url}"), of which the host and any explicit port are kept. */
static tq_code allow_entry(const char *in, char **out, tq_err *err) {
  CURLU *u = NULL;
  char *host = NULL, *port = NULL;
  tq_code rc = TQ_OK;
  if (strstr(in, "://") == NULL) {
    if (*in == '\0' || strpbrk(in, "/ @?#\t\r\n") != NULL)
      return tq_err_set(err, TQ_EINVAL, "net: allow-list entry '%.200s' is not a host", in);
    if ((*out = tq_strdup(in)) == NULL)
      return tq_err_set(err, TQ_ENOMEM, "net: out of memory");
    str_lower(*out);
    return TQ_OK;
  }
  rc = net_url_parse(in, &u, err);
  if (rc != TQ_OK)
    return tq_err_prefix(err, "allow-list entry: ");
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    rc = tq_err_set(err, TQ_EINVAL, "net: allow-list entry '%.200s' has no host", in);
    goto fail;
  }
  curl_url_get(u, CURLUPART_PORT, &port, 0);
  size_t n = strlen(host) + (port ? strlen(port) + 1 : 0) + 1;
  if ((*out = malloc(n)) == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "net: out of memory");
    goto fail;
  }
  snprintf(*out, n, "%s%s%s", host, port ? ":" : "", port ? port : "");
  str_lower(*out);
fail:
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

/* ---- special addresses ----------------------------------------------------------------------
 * A plugin names the hosts it talks to; an address inside the host's own networks (loopback,
 * RFC 1918, link-local where cloud metadata services live, CGNAT, multicast, unspecified) is
 * reached only when the allow-list names it literally. */

struct net_named_addr {
  int family;             /* AF_INET or AF_INET6 */
  unsigned char addr[16]; /* 4 or 16 bytes */
  unsigned short port;    /* 0: any port */
};

static int v4_special(const unsigned char a[4]) {
  return a[0] == 0 || a[0] == 10 || a[0] == 127 || (a[0] == 169 && a[1] == 254) ||
         (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
         (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] >= 224;
}

static int v4_loopback(const unsigned char a[4]) { return a[0] == 127; }

static int v6_special(const unsigned char a[16], int *loopback) {
  static const unsigned char zero[16] = {0};
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  *loopback = memcmp(a, zero, 15) == 0 && a[15] == 1;
  if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0) {
    *loopback = v4_loopback(a + 12);
    return v4_special(a + 12);
  }
  return memcmp(a, zero, 15) == 0 /* :: and ::1 */ || (a[0] & 0xfe) == 0xfc /* fc00::/7 */ ||
         (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) /* fe80::/10 */ || a[0] == 0xff;
}

/* An allow-list entry ("host" or "host:port", IPv6 in brackets) that is an IP literal. */
static int named_parse(const char *entry, struct net_named_addr *out) {
  char host[64];
  const char *port = NULL;
  memset(out, 0, sizeof *out);
  if (entry[0] == '[') {
    const char *close = strchr(entry, ']');
    if (close == NULL || (size_t)(close - entry) >= sizeof host)
      return 0;
    snprintf(host, sizeof host, "%.*s", (int)(close - entry - 1), entry + 1);
    port = close[1] == ':' ? close + 2 : NULL;
  } else {
    const char *colon = strchr(entry, ':');
    size_t n = colon ? (size_t)(colon - entry) : strlen(entry);
    if (n >= sizeof host)
      return 0;
    snprintf(host, sizeof host, "%.*s", (int)n, entry);
    port = colon ? colon + 1 : NULL;
  }
  if (inet_pton(AF_INET, host, out->addr) == 1)
    out->family = AF_INET;
  else if (inet_pton(AF_INET6, host, out->addr) == 1)
    out->family = AF_INET6;
  else
    return 0;
  out->port = port ? (unsigned short)atoi(port) : 0;
  return 1;
}

static tq_code named_collect(tq_net_provider *p, tq_err *err) {
  if (p->n_allow == 0)
    return TQ_OK;
  if ((p->named = calloc(p->n_allow, sizeof *p->named)) == NULL)
    return tq_err_set(err, TQ_ENOMEM, "net: out of memory");
  for (size_t i = 0; i < p->n_allow; i++) {
    if (strcmp(p->allow[i], "localhost") == 0 || strncmp(p->allow[i], "localhost:", 10) == 0)
      p->named_loopback = 1;
    else if (named_parse(p->allow[i], &p->named[p->n_named]))
      p->n_named++;
  }
  return TQ_OK;
}

int net_addr_allowed(const tq_net_provider *p, const struct sockaddr *sa, size_t len, char *why,
                     size_t why_len) {
  const unsigned char *a = NULL;
  unsigned short port = 0;
  int family = sa->sa_family, special = 0, loopback = 0;
  if (!p->block_private)
    return 1;
  if (family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    a = (const unsigned char *)&in->sin_addr;
    port = ntohs(in->sin_port);
    special = v4_special(a);
    loopback = v4_loopback(a);
  } else if (family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    a = (const unsigned char *)&in6->sin6_addr;
    port = ntohs(in6->sin6_port);
    special = v6_special(a, &loopback);
  } else {
    snprintf(why, why_len, "address family %d is not IP", family);
    return 0;
  }
  if (!special || (loopback && p->named_loopback))
    return 1;
  size_t n = family == AF_INET ? 4 : 16;
  for (size_t i = 0; i < p->n_named; i++)
    if (p->named[i].family == family && memcmp(p->named[i].addr, a, n) == 0 &&
        (p->named[i].port == 0 || p->named[i].port == port))
      return 1;
  char text[INET6_ADDRSTRLEN] = "?";
  inet_ntop(family, a, text, sizeof text);
  snprintf(why, why_len,
           "address %s is %s: reached only when network.hosts names it (as an IP literal or "
           "localhost)",
           text, loopback ? "loopback" : "private, link-local or reserved");
  return 0;
}

static tq_code provider_copy_lists(tq_net_provider *p, const tq_net_policy *pol, tq_err *err) {
  if (pol->n_allow_hosts && pol->allow_hosts) {
    p->allow = calloc(pol->n_allow_hosts, sizeof *p->allow);
    if (p->allow == NULL)
      return tq_err_set(err, TQ_ENOMEM, "net: out of memory");
    for (size_t i = 0; i < pol->n_allow_hosts; i++) {
      tq_code rc = allow_entry(pol->allow_hosts[i] ? pol->allow_hosts[i] : "", &p->allow[i], err);
      if (rc != TQ_OK)
        return rc;
      p->n_allow++;
    }
  }
  if (pol->n_retry_on && pol->retry_on) {
    p->retry_on = malloc(pol->n_retry_on * sizeof *p->retry_on);
    if (p->retry_on == NULL)
      return tq_err_set(err, TQ_ENOMEM, "net: out of memory");
    memcpy(p->retry_on, pol->retry_on, pol->n_retry_on * sizeof *p->retry_on);
    p->n_retry_on = pol->n_retry_on;
  }
  if (pol->ca_file && (p->ca_file = tq_strdup(pol->ca_file)) == NULL)
    return tq_err_set(err, TQ_ENOMEM, "net: out of memory");
  return named_collect(p, err);
}

static tq_code policy_check(const char *name, const tq_net_policy *pol, tq_err *err) {
  if (pol->rate_per_s < 0 || pol->burst < 0 || pol->max_conns < 0 || pol->retry_max < 0 ||
      pol->backoff_ms < 0 || pol->timeout_ms < 0 || pol->cache_ttl_ms < 0 ||
      pol->follow_redirects < 0 || isnan(pol->rate_per_s) || isnan(pol->burst))
    return tq_err_set(err, TQ_EINVAL, "net: provider '%s': negative value in its policy", name);
  return TQ_OK;
}

/* ---- token buckets shared across threads ------------------------------------------------------
 * One tq_net per thread, but a provider's rate limit is the API's, not the thread's: the
 * engine's operations and each bulk run's own net (a thread of its own) must draw from one
 * bucket, or together they send N times the rate. So buckets live here, process-wide, found
 * by (name, rate, burst) and counted by reference; a provider of the same name with another
 * rate (a test's copy, a changed manifest) gets a bucket of its own. One mutex guards them
 * all: a take is a few arithmetic operations. */
typedef struct net_bucket {
  struct net_bucket *next;
  char *name;
  double rate, burst;
  double tokens;
  int64_t refill_us; /* when tokens was last brought up to date */
  int refs;
} net_bucket;

static pthread_mutex_t g_buckets_mu = PTHREAD_MUTEX_INITIALIZER;
static net_bucket *g_buckets;

static net_bucket *bucket_ref(const char *name, double rate, double burst) {
  pthread_mutex_lock(&g_buckets_mu);
  net_bucket *b = g_buckets;
  while (b && !(b->rate == rate && b->burst == burst && strcmp(b->name, name) == 0))
    b = b->next;
  if (b == NULL && (b = calloc(1, sizeof *b)) != NULL) {
    if ((b->name = tq_strdup(name)) == NULL) {
      free(b);
      b = NULL;
    } else {
      b->rate = rate;
      b->burst = burst;
      b->tokens = burst;
      b->refill_us = net_now_us();
      b->next = g_buckets;
      g_buckets = b;
    }
  }
  if (b)
    b->refs++;
  pthread_mutex_unlock(&g_buckets_mu);
  return b;
}

static void bucket_unref(net_bucket *b) {
  if (b == NULL)
    return;
  pthread_mutex_lock(&g_buckets_mu);
  if (--b->refs == 0) {
    net_bucket **pp = &g_buckets;
    while (*pp != b)
      pp = &(*pp)->next;
    *pp = b->next;
    free(b->name);
    free(b);
  }
  pthread_mutex_unlock(&g_buckets_mu);
}

tq_code net_provider_new(const char *name, const tq_net_policy *pol, tq_net_provider **out,
                         tq_err *err) {
  tq_code rc = policy_check(name, pol, err);
  if (rc != TQ_OK)
    return rc;
  tq_net_provider *p = calloc(1, sizeof *p);
  if (p == NULL || (p->name = tq_strdup(name)) == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "net: out of memory");
    goto fail;
  }
  rc = provider_copy_lists(p, pol, err);
  if (rc != TQ_OK)
    goto fail;
  p->rate_per_s = pol->rate_per_s;
  p->burst = pol->burst > 0 ? pol->burst : (pol->rate_per_s > 1 ? pol->rate_per_s : 1);
  if (p->rate_per_s > 0 && (p->bucket = bucket_ref(name, p->rate_per_s, p->burst)) == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "net: out of memory");
    goto fail;
  }
  p->max_conns = pol->max_conns ? pol->max_conns : NET_DEFAULT_MAX_CONNS;
  p->retry_max = pol->retry_max;
  p->verify_tls = pol->verify_tls;
  p->follow_redirects = pol->follow_redirects;
  p->backoff_ms = pol->backoff_ms ? pol->backoff_ms : NET_DEFAULT_BACKOFF_MS;
  p->timeout_ms = pol->timeout_ms ? pol->timeout_ms : NET_DEFAULT_TIMEOUT_MS;
  p->cache_ttl_ms = pol->cache_ttl_ms;
  p->max_body = pol->max_body ? pol->max_body : NET_DEFAULT_MAX_BODY;
  p->deny_unlisted = pol->deny_unlisted;
  p->block_private = pol->block_private;
  *out = p;
  return TQ_OK;
fail:
  if (p)
    tq_err_prefix(err, "provider '%s': ", name);
  net_provider_free(p);
  return rc;
}

void net_provider_free(tq_net_provider *p) {
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->n_allow; i++)
    free(p->allow[i]);
  free(p->allow);
  free(p->named);
  free(p->retry_on);
  free(p->ca_file);
  free(p->name);
  bucket_unref(p->bucket);
  free(p);
}

int net_host_allowed(const tq_net_provider *p, CURLU *u, char *host_out, size_t host_len) {
  char *host = NULL, *port = NULL;
  int ok = 0;
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
    goto done;
  str_lower(host);
  curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
  snprintf(host_out, host_len, "%s:%s", host, port ? port : "");
  ok = p->n_allow == 0 && !p->deny_unlisted;
  for (size_t i = 0; i < p->n_allow && !ok; i++)
    ok = strcmp(p->allow[i], host) == 0 || strcmp(p->allow[i], host_out) == 0;
done:
  curl_free(host);
  curl_free(port);
  return ok;
}

int net_retry_status(const tq_net_provider *p, int status) {
  for (size_t i = 0; i < p->n_retry_on; i++)
    if (p->retry_on[i] == status)
      return 1;
  return 0;
}

void net_provider_enqueue(tq_net_provider *p, net_req *req, int front) {
  req->next = NULL;
  if (p->q_head == NULL) {
    p->q_head = p->q_tail = req;
  } else if (front) {
    req->next = p->q_head;
    p->q_head = req;
  } else {
    p->q_tail->next = req;
    p->q_tail = req;
  }
}

/* Brings the (shared) bucket up to now and takes one token if there is one; otherwise sets
 * wake_us to when the next token is due (another thread may take it first: this one then
 * finds none at its wake-up and waits for the next). */
static int bucket_take(tq_net_provider *p, int64_t now_us) {
  net_bucket *b = p->bucket;
  if (b == NULL)
    return 1;
  int took = 0;
  pthread_mutex_lock(&g_buckets_mu);
  if (now_us > b->refill_us) {
    b->tokens += (double)(now_us - b->refill_us) * b->rate / 1e6;
    if (b->tokens > b->burst)
      b->tokens = b->burst;
    b->refill_us = now_us;
  }
  if (b->tokens >= 1.0) {
    b->tokens -= 1.0;
    took = 1;
  } else {
    p->wake_us = now_us + (int64_t)ceil((1.0 - b->tokens) * 1e6 / b->rate);
  }
  pthread_mutex_unlock(&g_buckets_mu);
  return took;
}

/* A request at the head of p's queue starts waiting for a token: said once per wait. */
static void rate_wait_log(tq_net_provider *p, int64_t now_us) {
  int said = p->rate_waiting;
  p->rate_waiting = 1;
  if (said || !tq_log_enabled(TQ_LOG_DEBUG))
    return;
  size_t queued = 0;
  for (const net_req *r = p->q_head; r; r = r->next)
    queued++;
  tq_log(TQ_LOG_DEBUG, "net",
         "provider=%s rate limit: waiting %lld ms for a token (%g requests/s, %zu queued)", p->name,
         (long long)((p->wake_us - now_us + 999) / 1000), p->rate_per_s, queued);
}

void net_provider_pump(tq_net *net, tq_net_provider *p, int64_t now_us) {
  p->wake_us = 0;
  while (p->q_head && p->active < p->max_conns) {
    if (!bucket_take(p, now_us)) {
      rate_wait_log(p, now_us);
      break;
    }
    p->rate_waiting = 0;
    net_req *req = p->q_head;
    p->q_head = req->next;
    if (p->q_head == NULL)
      p->q_tail = NULL;
    req->next = NULL;
    p->active++;
    net_attempt_start(net, req);
  }
}
