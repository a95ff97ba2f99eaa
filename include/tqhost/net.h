/* net.h: the HTTP client of tqhost, one curl multi event loop driving many requests at once.
 *
 * A *provider* is a named network policy shared by every run that uses it (an RST API key's
 * rate limit is one provider): host allow-list, token bucket, connection cap, retries,
 * timeouts, response size cap, TLS settings, cache TTL. Requests are submitted with a
 * completion callback; tq_net_run() drives the loop and calls the callbacks from its own
 * frame, never from inside a curl callback, so a callback may resume a Lua coroutine or
 * submit a new request.
 *
 * Ownership: a tq_net_response handed to a callback belongs to the callback, which frees it
 * with tq_net_response_free. Policies and requests are copied on submit; the caller's
 * strings may be freed as soon as the call returns.
 *
 * Threads: one tq_net per thread. */
#ifndef TQHOST_NET_H
#define TQHOST_NET_H

#include <stddef.h>
#include <stdint.h>

#include "tqhost/core.h"
#include "tqhost/library.h"

typedef struct tq_net tq_net;
typedef struct tq_net_provider tq_net_provider;

/* What went wrong with a request, for scripts (err.kind in Lua). */
typedef enum tq_net_fail {
  TQ_NET_OK = 0,
  TQ_NET_TIMEOUT,   /* "timeout" */
  TQ_NET_REFUSED,   /* "refused": connect failed, reset, DNS */
  TQ_NET_TLS,       /* "tls" */
  TQ_NET_BLOCKED,   /* "blocked": host off the allow-list (request or redirect) */
  TQ_NET_TOO_LARGE, /* "too_large": body past the cap */
  TQ_NET_HTTP,      /* "http": a final status >= 400 after retries */
  TQ_NET_CANCELLED  /* "cancelled": tq_net_cancel_all stopped it */
} tq_net_fail;
const char *tq_net_fail_name(tq_net_fail f);

typedef struct tq_net_policy {
  const char *const *allow_hosts; /* host names (or host:port); NULL/0 = any host */
  size_t n_allow_hosts;
  double rate_per_s;   /* token bucket refill; 0 = unlimited */
  double burst;        /* bucket size; 0 = max(1, rate_per_s) */
  int max_conns;       /* connections at once for this provider; 0 = 16 */
  int retry_max;       /* retries after the first attempt */
  const int *retry_on; /* statuses retried (429, 5xx...); connection errors and timeouts are
                          always retried while retry_max allows */
  size_t n_retry_on;
  int64_t backoff_ms;   /* base of the exponential backoff (with full jitter); 0 = 200 */
  int64_t timeout_ms;   /* per attempt; 0 = 30000 */
  size_t max_body;      /* response size cap; 0 = 16 MiB */
  int64_t cache_ttl_ms; /* 0 = no cache; GET responses with status < 400 are cached */
  const char *ca_file;  /* NULL: system store */
  int verify_tls;       /* 1 (default on: tq_net_policy_init) */
  int follow_redirects; /* max redirects followed, each checked against the allow-list;
                           0 = none (a 3xx is final); 5 from tq_net_policy_init */
  int deny_unlisted;    /* 1: an empty allow-list allows no host at all (plugins: default
                           deny); 0: an empty allow-list allows any host */
  int block_private;    /* 1: an address that is loopback, private, link-local, CGNAT,
                           multicast or unspecified is refused when curl is about to connect
                           to it (after DNS, so a name that resolves there is caught too),
                           unless an allow-list entry names that address literally
                           ("127.0.0.1", "[::1]:8080", "10.0.0.5:443") or is "localhost"
                           (loopback addresses) */
} tq_net_policy;
void tq_net_policy_init(tq_net_policy *p);

typedef struct tq_net_request {
  const char *method; /* NULL: GET */
  const char *url;
  const char *const *headers; /* "Name: value" lines; never Host (TQ_EINVAL): the host is
                                 the URL's, the one the allow-list checks */
  size_t n_headers;
  const char *body;
  size_t body_len;
  int64_t timeout_ms; /* 0: the provider's */
  int no_cache;
} tq_net_request;

typedef struct tq_net_response {
  tq_net_fail fail; /* TQ_NET_OK when a final response with status < 400 arrived;
                       TQ_NET_HTTP when it has status >= 400 (status, headers and body are
                       filled all the same); another value when no usable response came */
  int status;       /* HTTP status; 0 if none */
  char *headers;    /* raw header block of the final response (NUL-terminated); "" for a
                       response from the cache, which keeps status and body only */
  char *body;       /* NUL-terminated; body_len bytes */
  size_t body_len;
  int attempts; /* 1 + retries done */
  int from_cache;
  char error[256]; /* what failed, when fail != TQ_NET_OK */
} tq_net_response;
void tq_net_response_free(tq_net_response *r);
/* The value of a response header (case-insensitive name), malloc'd, or NULL. */
char *tq_net_response_header(const tq_net_response *r, const char *name);

typedef void (*tq_net_done_fn)(void *ud, tq_net_response *resp);

/* cache may be NULL (no response cache). Borrowed: must outlive the tq_net. Responses to
 * store are written in batches (docs/net.md); tq_net_free writes what is left. */
tq_code tq_net_new(tq_lib *cache, tq_net **out, tq_err *err);
/* The cache is read but never written (a dry run writes nothing). */
void tq_net_cache_readonly(tq_net *net);
void tq_net_free(tq_net *net);

/* The provider named name: created with policy on first use (NULL: tq_net_policy_init's
 * defaults), shared afterwards (policy then ignored). Borrowed: owned by net. (Named _get:
 * C does not allow a function named like the type tq_net_provider.) */
tq_code tq_net_provider_get(tq_net *net, const char *name, const tq_net_policy *policy,
                            tq_net_provider **out, tq_err *err);

/* Queues a request; done(ud, resp) is called from a later tq_net_run. A request that waits
 * for a token or a connection slot waits; it does not fail. Errors here are only for bad
 * arguments (unparseable URL). A URL whose host is off the allow-list completes with
 * TQ_NET_BLOCKED through done, like any other failure. */
tq_code tq_net_submit(tq_net *net, tq_net_provider *prov, const tq_net_request *req,
                      tq_net_done_fn done, void *ud, tq_err *err);
/* Drives the loop for up to timeout_ms (or until at least one callback ran). */
tq_code tq_net_run(tq_net *net, int64_t timeout_ms, tq_err *err);
/* Ends the current (or the next) wait of tq_net_run early: tq_net_run returns after the turn
 * in progress. The only function of this header that any thread may call, at any time
 * while net lives (async-signal-safe: one write to an eventfd). For an owner thread that
 * also serves a job queue: the producer queues, then wakes the net loop. */
void tq_net_wakeup(tq_net *net);
/* Puts the requests submitted since the last turn on the wire (those a token and a slot
 * admit) without waiting and without running callbacks (completions wait for tq_net_run).
 * For a caller about to spend a while on the CPU before its next tq_net_run. Not from
 * inside a callback (TQ_EINTERNAL). */
tq_code tq_net_flush(tq_net *net, tq_err *err);
/* Stops every request not yet completed, at once: transfers on the wire are taken off curl
 * (their connections closed), queued and backing-off requests are dropped; each completes
 * with TQ_NET_CANCELLED through its callback on the next tq_net_run. For a caller that stops
 * (Ctrl-C) and must not wait out stalled servers. Not from inside a callback (TQ_EINTERNAL). */
tq_code tq_net_cancel_all(tq_net *net, tq_err *err);
/* How many final answers in a row (over every request of p) were 401 or 403 (any other
 * answer from a server resets the count), and the error of the last of them in *last (may be
 * NULL; borrowed from p). A bulk caller stops rather than spend its quota on a bad key. */
int tq_net_provider_auth_failures(const tq_net_provider *p, const char **last);
/* A provider's counters since it was made: attempts put on the wire, answers 429 among them,
 * retries scheduled, requests answered from the response cache, and
 * requests that completed with a failure (any tq_net_fail but TQ_NET_OK). */
typedef struct tq_net_stats {
  uint64_t attempts, status_429, retries, cache_hits, failures;
} tq_net_stats;
/* Calls fn for every provider of net with its name and counters (borrowed for the call).
 * From net's owner thread. */
void tq_net_each_provider(const tq_net *net,
                          void (*fn)(void *ud, const char *name, const tq_net_stats *st), void *ud);
/* Requests submitted and not yet completed. */
size_t tq_net_pending(const tq_net *net);
/* Blocking convenience: submit and run until this request completes. Runs the callbacks of
 * other requests that complete meanwhile. Not from inside a callback (TQ_EINTERNAL), nor is
 * tq_net_run. */
tq_code tq_net_fetch(tq_net *net, tq_net_provider *prov, const tq_net_request *req,
                     tq_net_response **out, tq_err *err);

/* The key under which req is cached and merged with identical requests in flight:
 * "METHOD scheme://host[:port]/path <hex SHA-256 of query, headers and body>" (see
 * docs/net.md). No secret (header value, query) appears in clear. *out malloc'd (free()). */
tq_code tq_net_cache_key(const tq_net_request *req, char **out, tq_err *err);

/* ---- redaction (net_redact.c): what a log line or a recording may show of a request ---- */
/* Whether a query parameter, header or JSON field of that name (len bytes, any case) holds a
 * credential: it contains key, token, secret, pass, pwd, auth, cookie, session, sig,
 * credential or bearer ("X-Api-Key", "access_token", "Authorization", "Set-Cookie"). */
int tq_net_secret_name(const char *name, size_t len);
/* A malloc'd copy of url with the value of every query parameter of such a name, and the
 * password of a user:password@ part, replaced by mask; the rest as it is. NULL on ENOMEM. */
char *tq_net_url_mask(const char *url, const char *mask);

#endif
