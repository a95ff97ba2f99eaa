/* net_int.h: what the files of src/net share and nobody else sees: the request, provider and
 * loop structures, and the helpers each file exports to the others.
 *
 *   net.c        tq_net_new/free, submit, fetch, the life of one request
 *   net_loop.c   epoll + curl multi socket API, timers, tq_net_run, the backoff heap
 *   net_policy.c policies, providers, the allow-list, the token bucket
 *   net_key.c    URL normalisation and the cache / in-flight merge key (SHA-256)
 *   net_cache.c  the response cache's writes: queued, batched, purged
 *   net_resp.c   responses: free, header lookup, copies, Retry-After
 *   net_redact.c what logs and recordings may show of a URL (credential values masked) */
#ifndef TQ_NET_INT_H
#define TQ_NET_INT_H

#include <curl/curl.h>
#include <time.h>

#include "tqhost/net.h"

#define NET_DEFAULT_MAX_CONNS 16
#define NET_DEFAULT_BACKOFF_MS 200
#define NET_DEFAULT_TIMEOUT_MS 30000
#define NET_DEFAULT_MAX_BODY ((size_t)16 << 20)
#define NET_DEFAULT_REDIRECTS 5
#define NET_BACKOFF_CAP_MS 30000         /* full jitter draws from [0, min(cap, base*2^n)] */
#define NET_RETRY_AFTER_MAX_MS 300000    /* a longer Retry-After gives up instead of waiting */
#define NET_MAX_HEADER_BYTES (64 * 1024) /* response header block cap */
#define NET_EASY_POOL_MAX 256            /* idle easy handles kept for reuse */

typedef struct net_req net_req;
typedef struct net_cache_row net_cache_row;

struct tq_net_provider {
  tq_net_provider *next;
  char *name;
  char **allow; /* normalised, lower-case "host" or "host:port"; n_allow 0 = any (none
                   when deny_unlisted) */
  size_t n_allow;
  int deny_unlisted, block_private;
  struct net_named_addr *named; /* allow-list entries that are IP literals (block_private) */
  size_t n_named;
  int named_loopback; /* "localhost" is on the allow-list */
  int *retry_on;
  size_t n_retry_on;
  char *ca_file;
  double rate_per_s, burst;
  int max_conns, retry_max, verify_tls, follow_redirects;
  int64_t backoff_ms, timeout_ms, cache_ttl_ms;
  size_t max_body;
  /* Token bucket (shared by the providers of every tq_net of the process with the same name,
   * rate and burst: net_policy.c; NULL when unlimited) and admission state. */
  struct net_bucket *bucket;
  int active;               /* attempts holding a connection slot */
  net_req *q_head, *q_tail; /* waiting for a slot or a token, FIFO */
  int64_t wake_us;          /* when the next token is due while q_head waits for one; 0 none */
  int rate_waiting;         /* q_head waits for a token: its wait was logged */
  int auth_streak;          /* final answers 401/403 in a row (any other answer resets it) */
  tq_net_stats stats;       /* counters since the provider was made (tq_net_each_provider) */
  char auth_error[256];     /* the last of them */
};

/* One submitted request. Pooled: recycled after its callback ran. A follower is a request
 * merged into an identical one in flight (its leader); it never reaches curl. */
struct net_req {
  tq_net *net;
  tq_net_provider *prov;
  net_req *next;                  /* provider queue, done queue, follower list or free list */
  net_req *live_prev, *live_next; /* every request not yet recycled (for tq_net_free) */
  net_req *map_next;              /* in-flight merge table chain */
  net_req *followers, *followers_tail;
  tq_net_done_fn done;
  void *ud;
  char *method; /* upper case */
  char *url;    /* current URL: changes on redirects */
  char *body;
  size_t body_len;
  struct curl_slist *hdrs;
  char *key; /* merge / cache key; NULL when the request is neither merged nor cached */
  int cacheable;
  int64_t timeout_ms;
  int attempts, retries, redirects;
  int status;      /* of the last response */
  int in_map;      /* registered as the leader of its key */
  int64_t wake_us; /* backoff deadline while in the heap */
  size_t heap_idx;
  CURL *easy;
  tq_buf resp_body, resp_hdrs;
  int write_fail; /* 1: body or headers past the cap, 2: out of memory (aborts the transfer) */
  char addr_refused[200]; /* why the last attempt's address was refused (block_private); "" */
  tq_net_response *resp;  /* set when complete, handed to done */
  char errbuf[CURL_ERROR_SIZE];
};

struct tq_net {
  CURLM *multi;
  int epfd;
  int wakefd;         /* eventfd in epfd: tq_net_wakeup ends a wait */
  volatile int woken; /* set by the wait that drained wakefd; tq_net_run returns */
  tq_lib *cache;
  tq_net_provider *providers;
  int64_t curl_deadline_us; /* from curl's timer callback; -1 none */
  net_req **heap;           /* backoff waits, min-heap on wake_us */
  size_t heap_len, heap_cap;
  net_req *done_head, *done_tail; /* completed, callbacks not yet run */
  net_req *free_reqs;
  net_req *live;
  CURL **easy_pool;
  size_t n_easy;
  net_req **map; /* in-flight merge table: key -> leader, chained, power-of-two buckets */
  size_t map_cap, map_len;
  size_t pending;
  int in_run, in_curl;
  uint64_t rng;
  /* net_cache.c: responses waiting to be stored */
  net_cache_row *cache_q;
  size_t cache_n, cache_cap, cache_bytes;
  int64_t cache_first_us;    /* when the oldest queued row came */
  int64_t cache_since_purge; /* rows written since the last purge */
  int cache_purged;          /* purged once since tq_net_new */
  int cache_readonly;        /* tq_net_cache_readonly: lookups only */
};

/* net.c */
int64_t net_now_us(void);
void net_attempt_start(tq_net *net, net_req *req);
void net_req_recycle(tq_net *net, net_req *req);
void net_transfer_done(tq_net *net, CURL *easy, CURLcode res);
void net_finish(tq_net *net, net_req *req, tq_net_fail fail, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* net_loop.c */
tq_code net_loop_init(tq_net *net, tq_err *err);
void net_loop_free(tq_net *net);
tq_code net_heap_push(tq_net *net, net_req *req);
void net_heap_clear(tq_net *net);

/* net_policy.c */
tq_code net_provider_new(const char *name, const tq_net_policy *pol, tq_net_provider **out,
                         tq_err *err);
void net_provider_free(tq_net_provider *p);
/* Whether the URL held by u may be fetched under p's allow-list; host_out (>= 256 bytes)
 * gets "host:port" (the port explicit or the scheme's) for messages. */
int net_host_allowed(const tq_net_provider *p, CURLU *u, char *host_out, size_t host_len);
int net_retry_status(const tq_net_provider *p, int status);
/* Whether curl may connect to sa (len bytes) for p: always unless p->block_private and the
 * address is special (loopback, private...) and not named by the allow-list. When not, why
 * (>= 160 bytes) says which address and why. */
struct sockaddr;
int net_addr_allowed(const tq_net_provider *p, const struct sockaddr *sa, size_t len, char *why,
                     size_t why_len);
/* Starts queued requests of p while slots and tokens allow. */
void net_provider_pump(tq_net *net, tq_net_provider *p, int64_t now_us);
void net_provider_enqueue(tq_net_provider *p, net_req *req, int front);

/* net_key.c */
/* The key of a request whose parsed URL is u (see docs/net.md). *out malloc'd. */
tq_code net_key_build(CURLU *u, const char *method, const char *const *headers, size_t n_headers,
                      const char *body, size_t body_len, char **out, tq_err *err);
/* A parsed http(s) URL, or TQ_EINVAL naming it. */
tq_code net_url_parse(const char *url, CURLU **out, tq_err *err);
/* "scheme://host[:port]/path" of u, without query (which may carry secrets), for messages. */
void net_url_display(CURLU *u, char *out, size_t n);

/* net_cache.c */
/* Queues a response to store (copied); writes the queue when it is full. */
void net_cache_queue(tq_net *net, const char *key, int status, const char *body, size_t len,
                     int64_t expires_at);
/* A queued row of key not expired at now: 1 with *body malloc'd, else 0. */
int net_cache_queued(const tq_net *net, const char *key, int64_t now, int *status, char **body,
                     size_t *len);
/* Writes the queue in one transaction (and purges the table when due). */
void net_cache_flush(tq_net *net);
/* At the end of tq_net_run: writes the queue if its oldest row waited long enough or nothing
 * is pending. */
void net_cache_tick(tq_net *net);
/* Writes what is queued and frees the queue. */
void net_cache_free(tq_net *net);

/* net_resp.c */
tq_net_response *net_resp_copy(const tq_net_response *r);
/* Retry-After of a raw header block in ms (seconds or an HTTP date, against now); -1 none. */
int64_t net_retry_after_ms(const char *hdrs, time_t now);
/* Value of header name in a raw block into out (trimmed); 0 if absent. */
int net_header_find(const char *hdrs, const char *name, const char **val, size_t *len);

#endif
