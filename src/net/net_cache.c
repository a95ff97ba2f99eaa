/* net_cache.c: the response cache's writes. A response to store is queued here, not written
 * at once: the queue is written in one transaction when it holds NET_CACHE_BATCH rows or
 * NET_CACHE_BATCH_BYTES of bodies, at the end of a tq_net_run when its oldest row has waited
 * NET_CACHE_BATCH_AGE_US or nothing is pending any more, and at tq_net_free; an autocommit
 * per response cost a WAL commit on the loop thread each time. The writes also purge the
 * table (expired rows, then the caps), on the first write of a tq_net and every
 * NET_CACHE_PURGE_EVERY rows after. A lookup sees the queued rows too. A read-only cache
 * (dry runs) queues nothing. */
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

#define NET_CACHE_BATCH 64
#define NET_CACHE_BATCH_BYTES ((size_t)8 << 20)
#define NET_CACHE_BATCH_AGE_US 1000000
#define NET_CACHE_PURGE_EVERY 1024
#define NET_CACHE_MAX_ROWS 100000
#define NET_CACHE_MAX_BYTES ((int64_t)1 << 30)

struct net_cache_row {
  char *key;
  int status;
  char *body;
  size_t len;
  int64_t expires_at;
};

static void row_free(net_cache_row *r) {
  free(r->key);
  free(r->body);
}

void tq_net_cache_readonly(tq_net *net) { net->cache_readonly = 1; }

void net_cache_queue(tq_net *net, const char *key, int status, const char *body, size_t len,
                     int64_t expires_at) {
  if (net->cache == NULL || net->cache_readonly)
    return;
  if (net->cache_n == net->cache_cap) {
    size_t cap = net->cache_cap ? 2 * net->cache_cap : NET_CACHE_BATCH;
    net_cache_row *q = realloc(net->cache_q, cap * sizeof *q);
    if (q == NULL)
      goto nomem;
    net->cache_q = q;
    net->cache_cap = cap;
  }
  net_cache_row *r = &net->cache_q[net->cache_n];
  r->key = tq_strdup(key);
  r->body = malloc(len + 1);
  if (r->key == NULL || r->body == NULL) {
    row_free(r);
    goto nomem;
  }
  memcpy(r->body, body ? body : "", body ? len : 0);
  r->body[body ? len : 0] = '\0';
  r->len = body ? len : 0;
  r->status = status;
  r->expires_at = expires_at;
  if (net->cache_n++ == 0)
    net->cache_first_us = net_now_us();
  net->cache_bytes += r->len;
  if (net->cache_n >= NET_CACHE_BATCH || net->cache_bytes >= NET_CACHE_BATCH_BYTES)
    net_cache_flush(net);
  return;
nomem:
  tq_log(TQ_LOG_WARN, "net", "msg=\"cache store skipped: out of memory\"");
}

int net_cache_queued(const tq_net *net, const char *key, int64_t now, int *status, char **body,
                     size_t *len) {
  for (size_t i = net->cache_n; i-- > 0;) { /* the latest row of a key wins, as in the table */
    const net_cache_row *r = &net->cache_q[i];
    if (strcmp(r->key, key) != 0)
      continue;
    if (r->expires_at <= now)
      return 0;
    *body = malloc(r->len + 1);
    if (*body == NULL)
      return 0;
    memcpy(*body, r->body, r->len + 1);
    *len = r->len;
    *status = r->status;
    return 1;
  }
  return 0;
}

/* The queued rows, and the purge when it is due, in one transaction. */
static tq_code cache_write(tq_net *net, tq_err *err) {
  tq_lib_cache_row *rows = malloc(net->cache_n * sizeof *rows);
  if (rows == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  for (size_t i = 0; i < net->cache_n; i++)
    rows[i] = (tq_lib_cache_row){.key = net->cache_q[i].key,
                                 .status = net->cache_q[i].status,
                                 .body = net->cache_q[i].body,
                                 .len = net->cache_q[i].len,
                                 .expires_at = net->cache_q[i].expires_at};
  int purge = !net->cache_purged || net->cache_since_purge + net->cache_n >= NET_CACHE_PURGE_EVERY;
  tq_lib_cache_caps caps = {
      .now = tq_time_now(), .max_rows = NET_CACHE_MAX_ROWS, .max_bytes = NET_CACHE_MAX_BYTES};
  tq_code rc = tq_lib_cache_put(net->cache, rows, net->cache_n, purge ? &caps : NULL, NULL, err);
  free(rows);
  if (rc == TQ_OK && purge) {
    net->cache_purged = 1;
    net->cache_since_purge = 0;
  } else if (rc == TQ_OK)
    net->cache_since_purge += (int64_t)net->cache_n;
  return rc;
}

void net_cache_flush(tq_net *net) {
  if (net->cache_n == 0)
    return;
  tq_err e;
  tq_err_clear(&e);
  if (cache_write(net, &e) != TQ_OK)
    tq_log(TQ_LOG_WARN, "net", "msg=\"cache store of %zu responses failed: %s\"", net->cache_n,
           e.msg);
  for (size_t i = 0; i < net->cache_n; i++)
    row_free(&net->cache_q[i]);
  net->cache_n = 0;
  net->cache_bytes = 0;
}

void net_cache_tick(tq_net *net) {
  if (net->cache_n > 0 &&
      (net->pending == 0 || net_now_us() - net->cache_first_us >= NET_CACHE_BATCH_AGE_US))
    net_cache_flush(net);
}

void net_cache_free(tq_net *net) {
  net_cache_flush(net);
  free(net->cache_q);
  net->cache_q = NULL;
  net->cache_cap = 0;
}
