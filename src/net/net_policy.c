/* net_policy.c: network policies and the providers that hold them: the host allow-list, the
 * retried statuses, the token bucket and the connection slots. Admission happens here
 * (net_provider_pump): a request waits in its provider's FIFO until a slot and a token are
 * both free; it never fails for want of either. */
#include <ctype.h>
#include <math.h>
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
  return TQ_OK;
}

static tq_code policy_check(const char *name, const tq_net_policy *pol, tq_err *err) {
  if (pol->rate_per_s < 0 || pol->burst < 0 || pol->max_conns < 0 || pol->retry_max < 0 ||
      pol->backoff_ms < 0 || pol->timeout_ms < 0 || pol->cache_ttl_ms < 0 ||
      pol->follow_redirects < 0 || isnan(pol->rate_per_s) || isnan(pol->burst))
    return tq_err_set(err, TQ_EINVAL, "net: provider '%s': negative value in its policy", name);
  return TQ_OK;
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
  p->tokens = p->burst;
  p->refill_us = net_now_us();
  p->max_conns = pol->max_conns ? pol->max_conns : NET_DEFAULT_MAX_CONNS;
  p->retry_max = pol->retry_max;
  p->verify_tls = pol->verify_tls;
  p->follow_redirects = pol->follow_redirects;
  p->backoff_ms = pol->backoff_ms ? pol->backoff_ms : NET_DEFAULT_BACKOFF_MS;
  p->timeout_ms = pol->timeout_ms ? pol->timeout_ms : NET_DEFAULT_TIMEOUT_MS;
  p->cache_ttl_ms = pol->cache_ttl_ms;
  p->max_body = pol->max_body ? pol->max_body : NET_DEFAULT_MAX_BODY;
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
  free(p->retry_on);
  free(p->ca_file);
  free(p->name);
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
  ok = p->n_allow == 0;
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

/* Brings the bucket up to now and takes one token if there is one; otherwise sets wake_us to
 * when the next token is due. */
static int bucket_take(tq_net_provider *p, int64_t now_us) {
  if (p->rate_per_s <= 0)
    return 1;
  if (now_us > p->refill_us) {
    p->tokens += (double)(now_us - p->refill_us) * p->rate_per_s / 1e6;
    if (p->tokens > p->burst)
      p->tokens = p->burst;
    p->refill_us = now_us;
  }
  if (p->tokens >= 1.0) {
    p->tokens -= 1.0;
    return 1;
  }
  p->wake_us = now_us + (int64_t)ceil((1.0 - p->tokens) * 1e6 / p->rate_per_s);
  return 0;
}

void net_provider_pump(tq_net *net, tq_net_provider *p, int64_t now_us) {
  p->wake_us = 0;
  while (p->q_head && p->active < p->max_conns && bucket_take(p, now_us)) {
    net_req *req = p->q_head;
    p->q_head = req->next;
    if (p->q_head == NULL)
      p->q_tail = NULL;
    req->next = NULL;
    p->active++;
    net_attempt_start(net, req);
  }
}
