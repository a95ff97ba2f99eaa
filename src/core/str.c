/* str.c: small string and number parsing helpers shared by every part. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tqhost/core.h"

char *tq_strdup(const char *s) { return s ? strdup(s) : NULL; }

char *tq_strndup(const char *s, size_t n) { return s ? strndup(s, n) : NULL; }

size_t tq_strlcpy(char *dst, const char *src, size_t n) {
  size_t len = strlen(src);
  if (n) {
    size_t k = len < n - 1 ? len : n - 1;
    memcpy(dst, src, k);
    dst[k] = '\0';
  }
  return len;
}

size_t tq_utf8_invalid_at(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      lo = c == 0xE0 ? 0xA0 : 0x80; /* overlong */
      hi = c == 0xED ? 0x9F : 0xBF; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      lo = c == 0xF0 ? 0x90 : 0x80; /* overlong */
      hi = c == 0xF4 ? 0x8F : 0xBF; /* above U+10FFFF */
    } else
      return i;
    if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
      return i;
    for (size_t k = 2; k < len; k++)
      if ((p[i + k] & 0xC0) != 0x80)
        return i;
    i += len;
  }
  return n;
}

char *tq_str_trim(char *s) {
  char *p = s;
  while (*p && isspace((unsigned char)*p))
    p++;
  size_t n = strlen(p);
  while (n && isspace((unsigned char)p[n - 1]))
    n--;
  memmove(s, p, n);
  s[n] = '\0';
  return s;
}

int tq_str_ieq(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

int tq_str_startswith(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

tq_code tq_parse_int(const char *s, long long lo, long long hi, long long *out, const char *what,
                     tq_err *err) {
  char *end = NULL;
  errno = 0;
  long long v = (s && *s) ? strtoll(s, &end, 10) : 0;
  if (s == NULL || *s == '\0' || *end != '\0' || errno != 0)
    return tq_err_set(err, TQ_EINVAL, "%s: '%s' is not a whole number", what, s ? s : "");
  if (v < lo || v > hi)
    return tq_err_set(err, TQ_EINVAL, "%s: %lld is out of range %lld..%lld", what, v, lo, hi);
  *out = v;
  return TQ_OK;
}

tq_code tq_parse_duration_ms(const char *s, int64_t *out_ms, tq_err *err) {
  char *end = NULL;
  errno = 0;
  double v = (s && *s) ? strtod(s, &end) : -1;
  if (s == NULL || *s == '\0' || errno != 0 || !(v >= 0) || !isfinite(v) || end == s)
    return tq_err_set(err, TQ_EINVAL, "'%s' is not a duration (e.g. 500ms, 30s, 5m, 1h, 2d)",
                      s ? s : "");
  double mul;
  if (strcmp(end, "ms") == 0)
    mul = 1;
  else if (strcmp(end, "s") == 0 || *end == '\0')
    mul = 1000;
  else if (strcmp(end, "m") == 0)
    mul = 60000;
  else if (strcmp(end, "h") == 0)
    mul = 3600000;
  else if (strcmp(end, "d") == 0)
    mul = 86400000;
  else
    return tq_err_set(err, TQ_EINVAL, "'%s': unknown duration unit '%s' (ms, s, m, h, d)", s, end);
  if (v * mul > TQ_DURATION_MAX_MS) /* also keeps the conversion below defined */
    return tq_err_set(err, TQ_EINVAL, "'%s' is too long a duration (at most 100 years)", s);
  *out_ms = (int64_t)(v * mul);
  return TQ_OK;
}

tq_code tq_parse_size(const char *s, uint64_t *out, tq_err *err) {
  char *end = NULL;
  errno = 0;
  double v = (s && *s) ? strtod(s, &end) : -1;
  if (s == NULL || *s == '\0' || errno != 0 || !(v >= 0) || !isfinite(v) || end == s)
    return tq_err_set(err, TQ_EINVAL, "'%s' is not a size (e.g. 32MiB)", s ? s : "");
  double mul;
  if (*end == '\0' || strcasecmp(end, "B") == 0)
    mul = 1;
  else if (strcasecmp(end, "KiB") == 0 || strcasecmp(end, "K") == 0)
    mul = 1024.0;
  else if (strcasecmp(end, "MiB") == 0 || strcasecmp(end, "M") == 0)
    mul = 1024.0 * 1024;
  else if (strcasecmp(end, "GiB") == 0 || strcasecmp(end, "G") == 0)
    mul = 1024.0 * 1024 * 1024;
  else if (strcasecmp(end, "KB") == 0)
    mul = 1000.0;
  else if (strcasecmp(end, "MB") == 0)
    mul = 1e6;
  else if (strcasecmp(end, "GB") == 0)
    mul = 1e9;
  else
    return tq_err_set(err, TQ_EINVAL, "'%s': unknown size unit '%s' (B, KiB, MiB, GiB)", s, end);
  if (v * mul > TQ_SIZE_MAX_BYTES) /* also keeps the conversion below defined */
    return tq_err_set(err, TQ_EINVAL, "'%s' is too large a size (at most 1TiB)", s);
  *out = (uint64_t)(v * mul);
  return TQ_OK;
}

/* ---- escaping for terminals and log lines -------------------------------------------------- */

/* The length of the escape of the character at s (0: kept as it is), and its text in esc. A
 * C1 control is UTF-8 C2 80..C2 9F (0x9b is a CSI on many terminals); *len gets how many
 * bytes of s the escape stands for. */
static size_t escape_of(const unsigned char *s, int flags, char esc[8], size_t *len) {
  unsigned char c = s[0];
  *len = 1;
  if (c == '\n' && !(flags & TQ_ESC_LINES))
    return (size_t)snprintf(esc, 8, "\\n");
  if (c == '\t' && !(flags & TQ_ESC_LINES))
    return (size_t)snprintf(esc, 8, "\\t");
  if (c == '\n' || c == '\t')
    return 0;
  if (c == '\r')
    return (size_t)snprintf(esc, 8, "\\r");
  if ((c == '\\' || c == '"') && (flags & TQ_ESC_QUOTE))
    return (size_t)snprintf(esc, 8, "\\%c", c);
  if (c < 0x20 || c == 0x7f)
    return (size_t)snprintf(esc, 8, "\\x%02x", c);
  if (c == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
    *len = 2;
    return (size_t)snprintf(esc, 8, "\\u%04x", s[1]);
  }
  return 0;
}

int tq_str_needs_escape(const char *s, int flags) {
  char esc[8];
  size_t len;
  for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
    if (escape_of(p, flags, esc, &len))
      return 1;
  return 0;
}

size_t tq_str_escape(char *out, size_t n, const char *s, int flags) {
  size_t need = 0;
  char esc[8];
  for (const unsigned char *p = (const unsigned char *)s; p && *p;) {
    size_t len, e = escape_of(p, flags, esc, &len);
    const char *piece = e ? esc : (const char *)p;
    size_t plen = e ? e : 1;
    if (need + plen < n)
      memcpy(out + need, piece, plen);
    else if (need < n)
      n = need + 1; /* truncated: never half an escape */
    need += plen;
    p += len;
  }
  if (n)
    out[need < n ? need : n - 1] = '\0';
  return need;
}

char *tq_str_escape_dup(const char *s, int flags) {
  size_t n = tq_str_escape(NULL, 0, s, flags) + 1;
  char *out = malloc(n);
  if (out)
    tq_str_escape(out, n, s, flags);
  return out;
}
