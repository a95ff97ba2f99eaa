/* ids.c: the indicator types that are plain identifiers: file hashes (by length of their
 * hex text), CVE ids (CVE-YYYY-NNNN+) and autonomous system numbers (AS<number>). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ioc_int.h"

#define HASH_LENGTHS "MD5 32, SHA-1 40, SHA-256 64, SHA-384 96, SHA-512 128"

static tq_ioc_type hash_type_of_length(size_t n) {
  switch (n) {
  case 32: return TQ_IOC_MD5;
  case 40: return TQ_IOC_SHA1;
  case 64: return TQ_IOC_SHA256;
  case 96: return TQ_IOC_SHA384;
  case 128: return TQ_IOC_SHA512;
  default: return TQ_IOC_UNKNOWN;
  }
}

static size_t hash_length_of_type(tq_ioc_type t) {
  switch (t) {
  case TQ_IOC_MD5: return 32;
  case TQ_IOC_SHA1: return 40;
  case TQ_IOC_SHA256: return 64;
  case TQ_IOC_SHA384: return 96;
  case TQ_IOC_SHA512: return 128;
  default: return 0;
  }
}

/* "an MD5" but "a SHA-1": the article as the name is spoken. */
static const char *hash_article(tq_ioc_type t) { return t == TQ_IOC_MD5 ? "an" : "a"; }

/* Explains why s (n bytes) is not the hash wanted (or not any hash). */
static tq_code hash_reason(tq_ioc_type want, const char *s, size_t n, tq_err *err) {
  for (size_t i = 0; i < n; i++)
    if (!ioc_is_hex(s[i]))
      return ioc_reason(err, "'%c' at position %zu is not a hex digit (a hash is hex: %s)", s[i],
                        i + 1, HASH_LENGTHS);
  tq_ioc_type got = hash_type_of_length(n);
  if (want == TQ_IOC_UNKNOWN)
    return ioc_reason(err, "%zu hex digits is not a hash length (%s)", n, HASH_LENGTHS);
  if (got != TQ_IOC_UNKNOWN)
    return ioc_reason(err, "%s %s is %zu hex digits, found %zu (the length of a %s)",
                      hash_article(want), tq_ioc_type_name(want), hash_length_of_type(want), n,
                      tq_ioc_type_name(got));
  return ioc_reason(err, "%s %s is %zu hex digits, found %zu", hash_article(want),
                    tq_ioc_type_name(want), hash_length_of_type(want), n);
}

tq_code ioc_hash_normalize(tq_ioc_type want, const char *s, tq_ioc_type *found, char **out,
                           tq_err *err) {
  size_t n = strlen(s);
  tq_ioc_type got = hash_type_of_length(n);
  int hex = 1;
  for (size_t i = 0; i < n && hex; i++)
    hex = ioc_is_hex(s[i]);
  if (!hex || got == TQ_IOC_UNKNOWN || (want != TQ_IOC_UNKNOWN && got != want))
    return hash_reason(want, s, n, err);
  char *copy = malloc(n + 1);
  if (copy == NULL)
    return ioc_nomem(err);
  for (size_t i = 0; i <= n; i++)
    copy[i] = (char)ioc_lower((unsigned char)s[i]);
  *found = got;
  *out = copy;
  return TQ_OK;
}

/* Reads the whole digit run s[0..n) as an unsigned number without leading zeros;
 * what names it in the reason. */
static tq_code id_number(const char *s, size_t n, unsigned long long max, const char *what,
                         unsigned long long *out, tq_err *err) {
  if (n == 0)
    return ioc_reason(err, "%s is missing", what);
  for (size_t i = 0; i < n; i++)
    if (!ioc_is_digit(s[i]))
      return ioc_reason(err, "'%c' is not allowed in %s (digits only)", s[i], what);
  if (n > 1 && s[0] == '0')
    return ioc_reason(err, "%s '%.*s' has a leading zero", what, (int)n, s);
  unsigned long long v = 0;
  for (size_t i = 0; i < n; i++) {
    v = v * 10 + (unsigned)(s[i] - '0');
    if (v > max)
      return ioc_reason(err, "%s %.*s is out of range 0..%llu", what, (int)n, s, max);
  }
  *out = v;
  return TQ_OK;
}

/* The latest CVE year accepted: next year, since ids are reserved ahead of disclosure. */
static int cve_max_year(void) {
  time_t now = (time_t)tq_time_now();
  struct tm tm;
  if (gmtime_r(&now, &tm) == NULL)
    return 9999;
  return tm.tm_year + 1900 + 1;
}

/* Checks "YYYY" of a CVE id (s[0..n)). */
static tq_code cve_year(const char *s, size_t n, tq_err *err) {
  for (size_t i = 0; i < n; i++)
    if (!ioc_is_digit(s[i]))
      return ioc_reason(err, "CVE year '%.*s' is not a number", (int)n, s);
  if (n != 4)
    return ioc_reason(err, "CVE year '%.*s' is not 4 digits", (int)n, s);
  int year = atoi(s);
  if (year < 1999)
    return ioc_reason(err, "CVE year %d is before 1999, the first year of CVE ids", year);
  int max = cve_max_year();
  if (year > max)
    return ioc_reason(err, "CVE year %d is in the future (latest accepted %d)", year, max);
  return TQ_OK;
}

/* Checks the sequence number of a CVE id: at least 4 digits, zero-padded only to 4. */
static tq_code cve_sequence(const char *s, tq_err *err) {
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++)
    if (!ioc_is_digit(s[i]))
      return ioc_reason(err, "'%c' is not allowed in a CVE sequence number (digits only)", s[i]);
  if (n < 4)
    return ioc_reason(err, "CVE sequence number '%s' has fewer than 4 digits", s);
  if (n > 4 && s[0] == '0')
    return ioc_reason(err,
                      "CVE sequence number '%s' has a leading zero (only 4-digit numbers "
                      "are zero-padded)",
                      s);
  if (n > 19)
    return ioc_reason(err, "CVE sequence number '%.20s...' is longer than 19 digits", s);
  return TQ_OK;
}

tq_code ioc_cve_normalize(const char *s, char **out, tq_err *err) {
  if (strncasecmp(s, "CVE-", 4) != 0)
    return ioc_reason(err, "a CVE id is CVE-YYYY-NNNN");
  const char *year = s + 4;
  const char *dash = strchr(year, '-');
  if (dash == NULL)
    return ioc_reason(err, "a CVE id is CVE-YYYY-NNNN, the '-' after the year is missing");
  tq_code rc = cve_year(year, (size_t)(dash - year), err);
  if (rc == TQ_OK)
    rc = cve_sequence(dash + 1, err);
  if (rc != TQ_OK)
    return rc;
  char *copy = tq_strdup(s);
  if (copy == NULL)
    return ioc_nomem(err);
  memcpy(copy, "CVE", 3);
  *out = copy;
  return TQ_OK;
}

/* Length of an "AS", "ASN", "AS " or "ASN " prefix (any case) at s; 0 if none. */
static size_t asn_prefix(const char *s) {
  if (ioc_lower(s[0]) != 'a' || ioc_lower(s[1]) != 's')
    return 0;
  size_t n = 2;
  if (ioc_lower(s[n]) == 'n')
    n++;
  if (s[n] == ' ')
    n++;
  return n;
}

tq_code ioc_asn_normalize(const char *s, int bare_ok, char **out, tq_err *err) {
  size_t skip = asn_prefix(s);
  if (skip == 0 && !bare_ok)
    return ioc_reason(err, "an ASN is written AS<number>, e.g. AS13335");
  const char *num = s + skip;
  const char *dot = strchr(num, '.');
  unsigned long long v = 0, lo = 0;
  tq_code rc = TQ_OK;
  if (dot != NULL) { /* asdot notation (RFC 5396): high.low, each 16 bits */
    rc = id_number(num, (size_t)(dot - num), 65535, "the high part of an asdot ASN", &v, err);
    if (rc == TQ_OK)
      rc = id_number(dot + 1, strlen(dot + 1), 65535, "the low part of an asdot ASN", &lo, err);
    v = v * 65536 + lo;
  } else {
    rc = id_number(num, strlen(num), 4294967295ULL, "an AS number", &v, err);
  }
  if (rc != TQ_OK)
    return rc;
  if (v == 0)
    return ioc_reason(err, "AS0 is reserved (RFC 7607) and never an origin");
  char text[24];
  snprintf(text, sizeof text, "AS%llu", v);
  char *copy = tq_strdup(text);
  if (copy == NULL)
    return ioc_nomem(err);
  *out = copy;
  return TQ_OK;
}
