/* net_redact.c: what a log line or a recording may show of a request. A URL keeps its
 * scheme, host, path and query, but the value of every query parameter whose name says it
 * holds a credential (key, token, secret, password, auth, session, signature, cookie...) and
 * the password of a user:password@ part are masked. The same name rule serves headers and
 * JSON fields (tq_net_secret_name). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

/* Words that mark a credential wherever they appear in a name, any case ("X-Api-Key",
 * "access_token", "apikey", "client_secret", "Authorization", "Set-Cookie", "sig"). */
static const char *const g_secret_words[] = {"key", "token",      "secret", "pass",
                                             "pwd", "auth",       "cookie", "session",
                                             "sig", "credential", "bearer", NULL};

int tq_net_secret_name(const char *name, size_t len) {
  char low[128];
  if (len >= sizeof low) /* a long name is judged by its start */
    len = sizeof low - 1;
  for (size_t i = 0; i < len; i++)
    low[i] = (char)tolower((unsigned char)name[i]);
  low[len] = '\0';
  for (const char *const *w = g_secret_words; *w; w++)
    if (strstr(low, *w))
      return 1;
  return 0;
}

/* The name of a query parameter, percent-decoded (api%5Fkey is api_key), into out. */
static size_t param_name(const char *p, size_t len, char *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < len && n + 1 < cap; i++) {
    if (p[i] == '%' && i + 2 < len && isxdigit((unsigned char)p[i + 1]) &&
        isxdigit((unsigned char)p[i + 2])) {
      char hex[3] = {p[i + 1], p[i + 2], 0};
      out[n++] = (char)strtol(hex, NULL, 16);
      i += 2;
    } else {
      out[n++] = p[i];
    }
  }
  out[n] = '\0';
  return n;
}

/* Appends the query q (len bytes, without '?') with credential values masked. */
static tq_code mask_query(tq_buf *b, const char *q, size_t len, const char *mask) {
  tq_code rc = TQ_OK;
  const char *end = q + len;
  while (rc == TQ_OK && q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    const char *stop = amp ? amp : end;
    const char *eq = memchr(q, '=', (size_t)(stop - q));
    char name[128];
    size_t nlen = param_name(q, (size_t)((eq ? eq : stop) - q), name, sizeof name);
    if (eq && tq_net_secret_name(name, nlen)) {
      rc = tq_buf_add(b, q, (size_t)(eq + 1 - q));
      if (rc == TQ_OK)
        rc = tq_buf_adds(b, mask);
    } else {
      rc = tq_buf_add(b, q, (size_t)(stop - q));
    }
    if (rc == TQ_OK && amp)
      rc = tq_buf_addc(b, '&');
    q = amp ? amp + 1 : end;
  }
  return rc;
}

char *tq_net_url_mask(const char *url, const char *mask) {
  tq_buf b;
  tq_buf_init(&b, 0);
  const char *p = url;
  tq_code rc = tq_buf_add(&b, "", 0);
  const char *auth = strstr(url, "://");
  if (auth) { /* user:password@host: the password goes */
    auth += 3;
    size_t span = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', span);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
      rc = tq_buf_add(&b, url, (size_t)(colon + 1 - url));
      if (rc == TQ_OK)
        rc = tq_buf_adds(&b, mask);
      p = at;
    }
  }
  const char *frag = strchr(p, '#');
  const char *q = strchr(p, '?');
  if (q && frag && q > frag)
    q = NULL;
  size_t qlen = q ? (size_t)((frag ? frag : p + strlen(p)) - q - 1) : 0;
  if (rc == TQ_OK)
    rc = tq_buf_add(&b, p, q ? (size_t)(q + 1 - p) : strlen(p));
  if (rc == TQ_OK && q) {
    rc = mask_query(&b, q + 1, qlen, mask);
    if (rc == TQ_OK && frag)
      rc = tq_buf_adds(&b, frag);
  }
  if (rc != TQ_OK) {
    tq_buf_free(&b);
    return NULL;
  }
  return tq_buf_take(&b);
}
