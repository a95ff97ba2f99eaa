/* net_resp.c: responses handed to callbacks: names of failures, freeing, header lookup in the
 * raw header block, copies for merged waiters, and the Retry-After header. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net_int.h"

const char *tq_net_fail_name(tq_net_fail f) {
  switch (f) {
  case TQ_NET_OK: return "ok";
  case TQ_NET_TIMEOUT: return "timeout";
  case TQ_NET_REFUSED: return "refused";
  case TQ_NET_TLS: return "tls";
  case TQ_NET_BLOCKED: return "blocked";
  case TQ_NET_TOO_LARGE: return "too_large";
  case TQ_NET_HTTP: return "http";
  case TQ_NET_CANCELLED: return "cancelled";
  }
  return "unknown";
}

void tq_net_response_free(tq_net_response *r) {
  if (r == NULL)
    return;
  free(r->headers);
  free(r->body);
  free(r);
}

/* Walks the CRLF lines of hdrs; the status line has no colon before its first space, so a
 * name never matches it. */
int net_header_find(const char *hdrs, const char *name, const char **val, size_t *len) {
  size_t nlen = strlen(name);
  const char *line = hdrs;
  while (line && *line) {
    const char *eol = strchr(line, '\n');
    size_t llen = eol ? (size_t)(eol - line) : strlen(line);
    if (llen > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
      const char *v = line + nlen + 1;
      const char *end = line + llen;
      while (v < end && (*v == ' ' || *v == '\t'))
        v++;
      while (end > v && isspace((unsigned char)end[-1]))
        end--;
      *val = v;
      *len = (size_t)(end - v);
      return 1;
    }
    line = eol ? eol + 1 : NULL;
  }
  return 0;
}

char *tq_net_response_header(const tq_net_response *r, const char *name) {
  const char *v;
  size_t len;
  if (r == NULL || r->headers == NULL || name == NULL)
    return NULL;
  if (!net_header_find(r->headers, name, &v, &len))
    return NULL;
  return tq_strndup(v, len);
}

tq_net_response *net_resp_copy(const tq_net_response *r) {
  tq_net_response *c = malloc(sizeof *c);
  if (c == NULL)
    return NULL;
  *c = *r;
  c->headers = NULL;
  c->body = NULL;
  if (r->headers && (c->headers = tq_strdup(r->headers)) == NULL)
    goto fail;
  if (r->body) {
    c->body = malloc(r->body_len + 1);
    if (c->body == NULL)
      goto fail;
    memcpy(c->body, r->body, r->body_len + 1);
  }
  return c;
fail:
  tq_net_response_free(c);
  return NULL;
}

/* RFC 9110 10.2.3: delay-seconds or an HTTP-date; curl_getdate reads the three date forms. */
int64_t net_retry_after_ms(const char *hdrs, time_t now) {
  const char *v;
  size_t len;
  char tmp[64];
  if (hdrs == NULL || !net_header_find(hdrs, "Retry-After", &v, &len) || len == 0 ||
      len >= sizeof tmp)
    return -1;
  memcpy(tmp, v, len);
  tmp[len] = '\0';
  size_t digits = strspn(tmp, "0123456789");
  if (digits == len) {
    if (len > 9) /* over 31 years: treat as "too long", capped by the caller */
      return INT64_MAX / 2;
    return strtoll(tmp, NULL, 10) * 1000;
  }
  time_t t = curl_getdate(tmp, NULL);
  if (t == (time_t)-1)
    return -1;
  return t <= now ? 0 : (int64_t)(t - now) * 1000;
}
