/* url.c: URLs to their RFC 3986 normal form (section 6.2.2): scheme and host lower-case,
 * host as a canonical FQDN or IP (IDNA A-labels), percent-encoding in upper-case hex with
 * unreserved characters decoded, dot-segments removed, empty path "/", default port dropped.
 * libcurl's URL API parses the URL and removes dot-segments; this file only finds the host
 * text (to validate it with the same rules as a bare FQDN or IP, which curl does not: it
 * reads "010.1.1.1" as octal) and normalises percent-encoding before curl sees the text. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "ioc_int.h"

/* The schemes an indicator URL may have, with their default ports (curl may not know all
 * of them, so the default port is dropped here rather than by curl). */
static const struct {
  const char *name;
  const char *port;
} url_schemes[] = {{"http", "80"}, {"https", "443"}, {"ftp", "21"}, {"ftps", "990"},
                   {"sftp", "22"}, {"ws", "80"},     {"wss", "443"}};
#define URL_SCHEMES_TEXT "http, https, ftp, ftps, sftp, ws, wss"
#define URL_NSCHEMES (sizeof url_schemes / sizeof url_schemes[0])

/* The parts of a URL as found in its text (pointers into the input, not terminated). */
typedef struct url_text {
  char scheme[8];
  const char *user, *host, *port, *rest;
  size_t user_len, host_len, port_len;
} url_text;

static int url_scheme_index(const char *scheme) {
  for (size_t i = 0; i < URL_NSCHEMES; i++)
    if (strcmp(url_schemes[i].name, scheme) == 0)
      return (int)i;
  return -1;
}

/* Reads "scheme://" at the start of s into t->scheme (lower-case); a value without one gets
 * "http". Sets *after to the text after "://". */
static tq_code url_scheme(const char *s, url_text *t, const char **after, tq_err *err) {
  const char *sep = strstr(s, "://");
  size_t n = sep ? (size_t)(sep - s) : 0;
  for (size_t i = 0; sep && i < n; i++)
    if (!(ioc_is_alpha(s[i]) || (i > 0 && (ioc_is_digit(s[i]) || strchr("+-.", s[i])))))
      sep = NULL; /* "://" inside a path or query of a scheme-less URL */
  if (sep == NULL || n == 0) {
    const char *colon = strchr(s, ':');
    char head[8] = {0};
    for (size_t i = 0; colon && i < (size_t)(colon - s) && i + 1 < sizeof head; i++)
      head[i] = (char)ioc_lower((unsigned char)s[i]);
    if (colon && (size_t)(colon - s) < sizeof head && url_scheme_index(head) >= 0)
      return ioc_reason(err, "URL scheme '%s:' must be followed by '//'", head);
    strcpy(t->scheme, "http");
    *after = s;
    return TQ_OK;
  }
  char scheme[32] = {0};
  for (size_t i = 0; i < n && i + 1 < sizeof scheme; i++)
    scheme[i] = (char)ioc_lower((unsigned char)s[i]);
  if (n >= sizeof t->scheme || url_scheme_index(scheme) < 0)
    return ioc_reason(err, "unknown URL scheme '%.*s' (known: " URL_SCHEMES_TEXT ")", (int)n, s);
  strcpy(t->scheme, scheme);
  *after = sep + 3;
  return TQ_OK;
}

/* Splits the authority at the start of p into user info, host and port. */
static tq_code url_authority(const char *p, url_text *t, tq_err *err) {
  size_t n = strcspn(p, "/?#");
  t->rest = p + n;
  const char *at = NULL;
  for (size_t i = 0; i < n; i++)
    if (p[i] == '@')
      at = p + i;
  if (at != NULL) {
    t->user = p;
    t->user_len = (size_t)(at - p);
    n -= t->user_len + 1;
    p = at + 1;
  }
  const char *colon = memchr(p, ':', n);
  if (n > 0 && p[0] == '[') {
    const char *close = memchr(p, ']', n);
    if (close == NULL)
      return ioc_reason(err, "URL host '[' has no closing ']'");
    colon = close + 1 < p + n ? close + 1 : NULL;
    if (colon != NULL && *colon != ':')
      return ioc_reason(err, "unexpected '%c' after the ']' of a URL host", *colon);
  } else if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon + 1 - p)) != NULL) {
    return ioc_reason(err, "an IPv6 address in a URL must be in brackets: http://[2001:db8::1]/");
  }
  t->host = p;
  t->host_len = colon ? (size_t)(colon - p) : n;
  if (colon != NULL) {
    t->port = colon + 1;
    t->port_len = n - t->host_len - 1;
  }
  if (t->host_len == 0)
    return ioc_reason(err, "a URL needs a host");
  return TQ_OK;
}

/* "[2001:DB8:0::1]" -> "[2001:db8::1]". */
static tq_code url_host_ipv6(const char *text, char **out, tq_err *err) {
  char *bare = NULL;
  tq_code rc = ioc_ipv6_normalize(text, &bare, err);
  if (rc != TQ_OK)
    return rc;
  size_t n = strlen(bare);
  char *canon = malloc(n + 3);
  if (canon != NULL) {
    canon[0] = '[';
    memcpy(canon + 1, bare, n);
    memcpy(canon + 1 + n, "]", 2);
    *out = canon;
  }
  free(bare);
  return canon != NULL ? TQ_OK : ioc_nomem(err);
}

/* The canonical text of the URL's host: "[v6]", dotted quad or FQDN. */
static tq_code url_host(const url_text *t, char **out, tq_err *err) {
  char *text = tq_strndup(t->host, t->host_len);
  char *canon = NULL;
  tq_code rc = TQ_OK;
  if (text == NULL)
    return ioc_nomem(err);
  if (text[0] == '[')
    rc = url_host_ipv6(text, &canon, err);
  else if (ioc_looks_ipv4(text))
    rc = ioc_ipv4_normalize(text, &canon, err);
  else
    rc = ioc_fqdn_normalize(text, &canon, err);
  if (rc != TQ_OK) {
    tq_err_prefix(err, "URL host '%.100s': ", text);
    goto fail;
  }
  *out = canon;
fail:
  free(text);
  return rc;
}

/* Appends p[0..n) with percent-encoding normalised: hex digits upper-case, unreserved
 * characters decoded, bytes that may not appear in a URI (non-ASCII, "<>{}|\^`) encoded. */
static tq_code url_pct(const char *p, size_t n, tq_buf *b, tq_err *err) {
  static const char hex[] = "0123456789ABCDEF";
  tq_code rc = TQ_OK;
  for (size_t i = 0; i < n && rc == TQ_OK; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '%') {
      if (i + 2 >= n || !ioc_is_hex(p[i + 1]) || !ioc_is_hex(p[i + 2]))
        return ioc_reason(err,
                          "'%.3s' in a URL is not a percent-encoding (a '%%' needs two "
                          "hex digits)",
                          p + i);
      char h1 = p[i + 1], h2 = p[i + 2];
      int hi = ioc_is_digit(h1) ? h1 - '0' : ioc_lower(h1) - 'a' + 10;
      int lo = ioc_is_digit(h2) ? h2 - '0' : ioc_lower(h2) - 'a' + 10;
      int d = hi * 16 + lo;
      i += 2;
      if (ioc_is_alpha(d) || ioc_is_digit(d) || d == '-' || d == '.' || d == '_' || d == '~') {
        rc = tq_buf_addc(b, (char)d);
        continue;
      }
      c = (unsigned char)d;
    } else if (c < 0x80 && strchr("\"<>\\^`{|}", c) == NULL) {
      rc = tq_buf_addc(b, (char)c);
      continue;
    }
    char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
    rc = tq_buf_add(b, enc, 3);
  }
  return rc == TQ_OK ? TQ_OK : ioc_nomem(err);
}

/* Refuses what no URL may hold anywhere: white space and control characters. */
static tq_code url_scan(const char *s, tq_err *err) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (ioc_is_space(*p))
      return ioc_reason(err, "white space in a URL");
    if (*p < 0x20 || *p == 0x7f)
      return ioc_reason(err, "control character 0x%02x in a URL", *p);
  }
  return TQ_OK;
}

/* Writes the URL text that curl will parse: known-good scheme and host, normalised rest. */
static tq_code url_rebuild(const url_text *t, const char *host, tq_buf *b, tq_err *err) {
  tq_code rc = tq_buf_printf(b, "%s://", t->scheme);
  if (rc == TQ_OK && t->user_len > 0) { /* an empty user info ("http://@host/") is dropped */
    rc = url_pct(t->user, t->user_len, b, err);
    if (rc == TQ_OK)
      rc = tq_buf_addc(b, '@');
  }
  if (rc == TQ_OK)
    rc = tq_buf_adds(b, host);
  if (rc == TQ_OK && t->port != NULL) {
    rc = tq_buf_addc(b, ':');
    if (rc == TQ_OK)
      rc = tq_buf_add(b, t->port, t->port_len);
  }
  if (rc == TQ_OK)
    rc = url_pct(t->rest, strlen(t->rest), b, err);
  if (rc == TQ_ENOMEM || rc == TQ_ELIMIT)
    return ioc_nomem(err);
  return rc;
}

/* Lets curl parse text, drops the scheme's default port and returns the URL in *out. */
static tq_code url_curl(const char *text, const char *scheme, char **out, tq_err *err) {
  CURLU *h = curl_url();
  char *port = NULL, *url = NULL;
  tq_code rc = TQ_OK;
  if (h == NULL)
    return ioc_nomem(err);
  CURLUcode uc = curl_url_set(h, CURLUPART_URL, text, CURLU_NON_SUPPORT_SCHEME);
  if (uc != CURLUE_OK) {
    rc = ioc_reason(err, "not a valid URL (%s)", curl_url_strerror(uc));
    goto fail;
  }
  if (curl_url_get(h, CURLUPART_PORT, &port, 0) == CURLUE_OK) {
    if (strcmp(port, "0") == 0) {
      rc = ioc_reason(err, "URL port 0 is not a port a server can listen on");
      goto fail;
    }
    if (strcmp(port, url_schemes[url_scheme_index(scheme)].port) == 0)
      curl_url_set(h, CURLUPART_PORT, NULL, 0);
  }
  uc = curl_url_get(h, CURLUPART_URL, &url, CURLU_NO_DEFAULT_PORT);
  if (uc != CURLUE_OK) {
    rc = uc == CURLUE_OUT_OF_MEMORY
             ? ioc_nomem(err)
             : ioc_reason(err, "not a valid URL (%s)", curl_url_strerror(uc));
    goto fail;
  }
  /* curl's memory may come from another allocator: hand the caller a malloc'd copy. */
  *out = tq_strdup(url);
  if (*out == NULL)
    rc = ioc_nomem(err);
fail:
  curl_free(port);
  curl_free(url);
  curl_url_cleanup(h);
  return rc;
}

tq_code ioc_url_normalize(const char *s, char **out, char **host_out, tq_err *err) {
  url_text t = {0};
  const char *after = NULL;
  char *host = NULL, *url = NULL;
  tq_buf b;
  tq_buf_init(&b, 4 * IOC_MAX_VALUE);
  tq_code rc = url_scan(s, err);
  if (rc == TQ_OK)
    rc = url_scheme(s, &t, &after, err);
  if (rc == TQ_OK)
    rc = url_authority(after, &t, err);
  if (rc == TQ_OK)
    rc = url_host(&t, &host, err);
  if (rc == TQ_OK)
    rc = url_rebuild(&t, host, &b, err);
  if (rc == TQ_OK)
    rc = url_curl(b.data, t.scheme, &url, err);
  if (rc != TQ_OK)
    goto fail;
  if (host_out != NULL && host[0] == '[') { /* "[2001:db8::1]" -> "2001:db8::1" */
    size_t len = strlen(host);
    memmove(host, host + 1, len - 2);
    host[len - 2] = '\0';
  }
  *out = url;
  if (host_out != NULL) {
    *host_out = host;
    host = NULL;
  }
fail:
  free(host);
  tq_buf_free(&b);
  return rc;
}

tq_code tq_ioc_url_host(const char *url, char **host, tq_err *err) {
  tq_err_clear(err);
  if (url == NULL)
    return tq_err_set(err, TQ_EINVAL, "URL host: no URL given");
  char *value = tq_ioc_refang(url);
  char *canon = NULL;
  if (value == NULL)
    return ioc_nomem(err);
  tq_code rc = ioc_url_normalize(value, &canon, host, err);
  if (rc != TQ_OK)
    ioc_prefix_value(err, url);
  free(canon);
  free(value);
  return rc;
}
