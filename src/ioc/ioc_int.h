/* ioc_int.h: what the files of src/ioc share and nobody else sees. Each validator takes a
 * NUL-terminated, already refanged and trimmed string, and on failure sets err to TQ_EINVAL
 * with the bare reason ("IPv4 octet 999 is out of range 0..255"); the public functions in
 * ioc.c put the quoted input value in front of it. Every char ** out is malloc'd (caller
 * frees) and left untouched on failure. */
#ifndef TQHOST_IOC_INT_H
#define TQHOST_IOC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "tqhost/ioc.h"

/* Longest value the part looks at; anything longer is refused before any parsing so that
 * work per value stays bounded. */
#define IOC_MAX_VALUE 8192

/* Sets err to TQ_EINVAL with the formatted reason; returns TQ_EINVAL. */
tq_code ioc_reason(tq_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Puts "'value': " in front of the reason in err (long values cut with "..."); returns
 * err->code. */
tq_code ioc_prefix_value(tq_err *err, const char *value);
/* Sets err to TQ_ENOMEM; returns TQ_ENOMEM. */
tq_code ioc_nomem(tq_err *err);

static inline int ioc_is_digit(int c) { return c >= '0' && c <= '9'; }
static inline int ioc_is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static inline int ioc_is_hex(int c) {
  return ioc_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static inline int ioc_is_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
static inline int ioc_lower(int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

/* ip.c: strict text forms. IPv4 is exactly four decimal octets without leading zeros;
 * IPv6 is what inet_pton accepts (optionally in brackets), without a zone index. */
tq_code ioc_ipv4_parse(const char *s, uint8_t addr[4], tq_err *err);
tq_code ioc_ipv6_parse(const char *s, uint8_t addr[16], tq_err *err);
tq_code ioc_ipv4_normalize(const char *s, char **out, tq_err *err);
tq_code ioc_ipv6_normalize(const char *s, char **out, tq_err *err);
tq_code ioc_cidr_normalize(const char *s, char **out, tq_err *err);
/* 1 when s is only digits and dots, with at least one of each (what an IPv4 attempt looks
 * like). */
int ioc_looks_ipv4(const char *s);

/* domain.c: a host name to lower-case A-labels without a trailing dot; IDNA (libidn2,
 * non-transitional) only when a byte is not ASCII. */
tq_code ioc_fqdn_normalize(const char *s, char **out, tq_err *err);

/* url.c: RFC 3986 normalisation with libcurl's URL API. A value without "scheme://" gets
 * "http://". *host_out (may be NULL) receives the canonical host, IPv6 without brackets. */
tq_code ioc_url_normalize(const char *s, char **out, char **host_out, tq_err *err);

/* email.c */
tq_code ioc_email_normalize(const char *s, char **out, tq_err *err);

/* ids.c: hashes (type is the hash type wanted, or TQ_IOC_UNKNOWN for "any hash length";
 * *found gets the type by length), CVE ids and AS numbers. */
tq_code ioc_hash_normalize(tq_ioc_type want, const char *s, tq_ioc_type *found, char **out,
                           tq_err *err);
tq_code ioc_cve_normalize(const char *s, char **out, tq_err *err);
/* bare_ok: accept a number without the "AS" prefix (when the caller said it is an ASN). */
tq_code ioc_asn_normalize(const char *s, int bare_ok, char **out, tq_err *err);

#endif
