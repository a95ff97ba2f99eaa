/* ioc.c: the public face of the ioc part: type names, detection of a value's type and
 * dispatch to the validator of each type (ip.c, domain.c, url.c, email.c, ids.c). Detection
 * looks only at the shape of a value (which characters, which separators) and picks one
 * type; that type's validator then accepts it or says why not, so a near miss such as
 * "1.2.3.999" is reported as a bad IP address rather than as "not an indicator". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ioc_int.h"

static const char *const ioc_names[TQ_IOC__COUNT] = {
    [TQ_IOC_UNKNOWN] = "",
    [TQ_IOC_IPV4] = "IP Address",
    [TQ_IOC_IPV6] = "IPv6 Address",
    [TQ_IOC_CIDR] = "CIDR Block",
    [TQ_IOC_FQDN] = "FQDN",
    [TQ_IOC_URL] = "URL",
    [TQ_IOC_EMAIL] = "Email Address",
    [TQ_IOC_MD5] = "MD5",
    [TQ_IOC_SHA1] = "SHA-1",
    [TQ_IOC_SHA256] = "SHA-256",
    [TQ_IOC_SHA384] = "SHA-384",
    [TQ_IOC_SHA512] = "SHA-512",
    [TQ_IOC_CVE] = "CVE",
    [TQ_IOC_ASN] = "ASN",
};

const char *tq_ioc_type_name(tq_ioc_type t) {
  return (t > TQ_IOC_UNKNOWN && t < TQ_IOC__COUNT) ? ioc_names[t] : "";
}

tq_ioc_type tq_ioc_type_from_name(const char *name) {
  if (name == NULL || *name == '\0')
    return TQ_IOC_UNKNOWN;
  for (int t = TQ_IOC_UNKNOWN + 1; t < TQ_IOC__COUNT; t++)
    if (strcasecmp(ioc_names[t], name) == 0)
      return (tq_ioc_type)t;
  return TQ_IOC_UNKNOWN;
}

tq_code ioc_reason(tq_err *err, const char *fmt, ...) {
  if (err == NULL)
    return TQ_EINVAL;
  err->code = TQ_EINVAL;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return TQ_EINVAL;
}

tq_code ioc_nomem(tq_err *err) { return tq_err_set(err, TQ_ENOMEM, "out of memory"); }

tq_code ioc_prefix_value(tq_err *err, const char *value) {
  size_t n = strlen(value);
  return tq_err_prefix(err, "'%.*s%s': ", n > 120 ? 117 : (int)n, value, n > 120 ? "..." : "");
}

/* Shape tests used by detection; each is a cheap scan. */
static int all_of(const char *s, int (*pred)(int)) {
  for (; *s; s++)
    if (!pred((unsigned char)*s))
      return 0;
  return 1;
}
static int is_cidr_addr_char(int c) { return ioc_is_hex(c) || c == ':' || c == '.'; }
static int is_host_char(int c) {
  return c >= 0x80 || ioc_is_alpha(c) || ioc_is_digit(c) || c == '-' || c == '_' || c == '.';
}
static int is_alnum(int c) { return ioc_is_alpha(c) || ioc_is_digit(c); }
static int is_digit_or_dot(int c) { return ioc_is_digit(c) || c == '.'; }

/* "AS123", "ASN 123", "as1.10": the prefix, an optional space, then digits (and dots). */
static int looks_asn(const char *s) {
  if (strncasecmp(s, "as", 2) != 0)
    return 0;
  s += 2;
  if (*s == 'n' || *s == 'N')
    s++;
  if (*s == ' ')
    s++;
  return ioc_is_digit(*s) && all_of(s, is_digit_or_dot);
}

/* "addr/len" where addr is made of IP characters and len of digits. */
static int looks_cidr(const char *s, const char *slash) {
  if (slash == s || slash[1] == '\0' || strchr(slash + 1, '/') != NULL)
    return 0;
  for (const char *p = s; p < slash; p++)
    if (!is_cidr_addr_char((unsigned char)*p))
      return 0;
  return all_of(slash + 1, ioc_is_digit) && (memchr(s, '.', (size_t)(slash - s)) != NULL ||
                                             memchr(s, ':', (size_t)(slash - s)) != NULL);
}

/* "host:port" (one colon, digits after it), "[v6]:port" or "http:..." (one colon after
 * letters only): a URL without its "scheme://", or with a broken one. */
static int looks_host_port(const char *s, const char *colon) {
  if (s[0] == '[')
    return strstr(s, "]:") != NULL;
  if (strchr(colon + 1, ':') != NULL)
    return 0;
  int scheme_like = colon > s;
  for (const char *p = s; p < colon; p++)
    scheme_like &= ioc_is_alpha((unsigned char)*p);
  return scheme_like || (colon[1] != '\0' && all_of(colon + 1, ioc_is_digit));
}

/* Picks the one type a refanged, trimmed, non-empty value is shaped like (see docs/ioc.md
 * for the order and why). TQ_IOC_UNKNOWN when it is shaped like none. */
static tq_ioc_type ioc_detect(const char *s) {
  size_t n = strlen(s);
  if (strstr(s, "://") != NULL)
    return TQ_IOC_URL;
  if (strncasecmp(s, "cve-", 4) == 0)
    return TQ_IOC_CVE;
  if (looks_asn(s))
    return TQ_IOC_ASN;
  const char *slash = strchr(s, '/');
  if (slash != NULL)
    return looks_cidr(s, slash) ? TQ_IOC_CIDR : TQ_IOC_URL;
  if (strchr(s, '@') != NULL)
    return TQ_IOC_EMAIL;
  const char *colon = strchr(s, ':');
  if (colon != NULL)
    return looks_host_port(s, colon) ? TQ_IOC_URL : TQ_IOC_IPV6;
  if (ioc_looks_ipv4(s))
    return TQ_IOC_IPV4;
  /* Any hash (ioc_hash_normalize picks the type by length): long hex runs, and values of a
   * hash's length with a stray letter, so that the reason names the bad digit. */
  int hash_len = n == 32 || n == 40 || n == 64 || n == 96 || n == 128;
  if ((n >= 24 && all_of(s, ioc_is_hex)) || (hash_len && all_of(s, is_alnum)))
    return TQ_IOC_MD5;
  if (strchr(s, '.') != NULL || (all_of(s, is_host_char) && !all_of(s, ioc_is_digit)))
    return TQ_IOC_FQDN;
  return TQ_IOC_UNKNOWN;
}

/* Validates s as type t and returns its canonical form; *found may differ from t only for
 * hashes when t is TQ_IOC_UNKNOWN (detected by length). */
static tq_code ioc_normalize_as(tq_ioc_type t, int detected, const char *s, tq_ioc_type *found,
                                char **out, tq_err *err) {
  *found = t;
  switch (t) {
  case TQ_IOC_IPV4: return ioc_ipv4_normalize(s, out, err);
  case TQ_IOC_IPV6: return ioc_ipv6_normalize(s, out, err);
  case TQ_IOC_CIDR: return ioc_cidr_normalize(s, out, err);
  case TQ_IOC_FQDN: return ioc_fqdn_normalize(s, out, err);
  case TQ_IOC_URL: return ioc_url_normalize(s, out, NULL, err);
  case TQ_IOC_EMAIL: return ioc_email_normalize(s, out, err);
  case TQ_IOC_MD5:
  case TQ_IOC_SHA1:
  case TQ_IOC_SHA256:
  case TQ_IOC_SHA384:
  case TQ_IOC_SHA512: return ioc_hash_normalize(detected ? TQ_IOC_UNKNOWN : t, s, found, out, err);
  case TQ_IOC_CVE: return ioc_cve_normalize(s, out, err);
  case TQ_IOC_ASN: return ioc_asn_normalize(s, !detected, out, err);
  default: break;
  }
  if (all_of(s, ioc_is_digit))
    return ioc_reason(err, "a bare number is not an indicator (an ASN is written AS<number>)");
  return ioc_reason(err, "not an indicator tqhost recognises (IP address, CIDR block, FQDN, "
                         "URL, email address, hash, CVE or ASN)");
}

/* Refangs value and checks what every type refuses: nothing, or too much. *out is
 * malloc'd. */
static tq_code ioc_prepare(const char *value, char **out, tq_err *err) {
  if (value == NULL)
    return tq_err_set(err, TQ_EINVAL, "no value given");
  size_t n = strnlen(value, IOC_MAX_VALUE + 1);
  if (n > IOC_MAX_VALUE)
    return ioc_reason(err, "a value is at most %d bytes", IOC_MAX_VALUE);
  char *s = tq_ioc_refang(value);
  if (s == NULL)
    return ioc_nomem(err);
  if (*s == '\0') {
    free(s);
    return ioc_reason(err, "empty value");
  }
  *out = s;
  return TQ_OK;
}

/* Shared body of classify and normalize: want is TQ_IOC_UNKNOWN to detect the type. */
static tq_code ioc_run(tq_ioc_type want, const char *value, tq_ioc_type *type, char **canonical,
                       tq_err *err) {
  tq_err_clear(err);
  char *s = NULL, *canon = NULL;
  tq_ioc_type found = TQ_IOC_UNKNOWN;
  tq_code rc = ioc_prepare(value, &s, err);
  if (rc != TQ_OK)
    goto fail;
  int detected = want == TQ_IOC_UNKNOWN;
  rc = ioc_normalize_as(detected ? ioc_detect(s) : want, detected, s, &found, &canon, err);
  if (rc != TQ_OK)
    goto fail;
  if (type != NULL)
    *type = found;
  *canonical = canon;
fail:
  if (rc != TQ_OK && value != NULL)
    ioc_prefix_value(err, value);
  free(s);
  return rc;
}

tq_code tq_ioc_classify(const char *value, tq_ioc_type *type, char **canonical, tq_err *err) {
  return ioc_run(TQ_IOC_UNKNOWN, value, type, canonical, err);
}

tq_code tq_ioc_normalize(tq_ioc_type type, const char *value, char **canonical, tq_err *err) {
  if (type <= TQ_IOC_UNKNOWN || type >= TQ_IOC__COUNT)
    return tq_err_set(err, TQ_EINVAL, "normalize: %d is not an indicator type tqhost knows",
                      (int)type);
  return ioc_run(type, value, NULL, canonical, err);
}
