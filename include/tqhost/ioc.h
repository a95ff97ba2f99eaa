/* ioc.h: indicator typing, refanging and normalisation to one canonical form.
 * Uses libcurl's URL API (URLs), libidn2 (IDNA) and libpsl (registered domains); no
 * hand-written URL parser. Pure functions: no state beyond libpsl's built-in list. */
#ifndef TQHOST_IOC_H
#define TQHOST_IOC_H

#include <stddef.h>

#include "tqhost/core.h"

/* The indicator types tqhost can detect and normalise (a subset of ThreatQ's 34 names; the
 * others are stored as given, trimmed). */
typedef enum tq_ioc_type {
  TQ_IOC_UNKNOWN = 0,
  TQ_IOC_IPV4,   /* "IP Address"   canonical dotted quad, no leading zeros */
  TQ_IOC_IPV6,   /* "IPv6 Address" RFC 5952 text (inet_ntop) */
  TQ_IOC_CIDR,   /* "CIDR Block"   network address/prefix, v4 or v6, host bits must be 0 */
  TQ_IOC_FQDN,   /* "FQDN"         lower-case, IDNA A-labels, no trailing dot */
  TQ_IOC_URL,    /* "URL"          RFC 3986 normalised, host as FQDN/IP */
  TQ_IOC_EMAIL,  /* "Email Address" local part kept, domain as FQDN */
  TQ_IOC_MD5,    /* "MD5"   32 hex, lower-case */
  TQ_IOC_SHA1,   /* "SHA-1" 40 hex */
  TQ_IOC_SHA256, /* "SHA-256" 64 hex */
  TQ_IOC_SHA384, /* "SHA-384" 96 hex */
  TQ_IOC_SHA512, /* "SHA-512" 128 hex */
  TQ_IOC_CVE,    /* "CVE"   CVE-YYYY-NNNN+, upper-case */
  TQ_IOC_ASN,    /* "ASN"   AS<number>, upper-case prefix, 1..4294967295 */
  TQ_IOC__COUNT
} tq_ioc_type;

/* ThreatQ's exact name for t ("IP Address", "SHA-256", ...); "" for TQ_IOC_UNKNOWN. */
const char *tq_ioc_type_name(tq_ioc_type t);
/* The type whose ThreatQ name is name (case-insensitive); TQ_IOC_UNKNOWN if none. */
tq_ioc_type tq_ioc_type_from_name(const char *name);

/* Undoes common defanging: "[.]" "(.)" "{.}" "[dot]" -> ".", "hxxp" -> "http", "[:]" -> ":",
 * "[@]" "[at]" -> "@", "fxp" -> "ftp"; trims white space. Returns a malloc'd string (caller
 * frees) or NULL when memory runs out. */
char *tq_ioc_refang(const char *value);

/* Refangs value, detects its type and returns its canonical form.
 * On success *type is set and *canonical is malloc'd (caller frees).
 * On failure returns TQ_EINVAL with a message that says why ("'1.2.3.999': IPv4 octet 999 is
 * out of range 0..255", "'exa mple.com': white space in a domain name", ...). */
tq_code tq_ioc_classify(const char *value, tq_ioc_type *type, char **canonical, tq_err *err);

/* Validates value (refanged first) as the given type and returns its canonical form in
 * *canonical (malloc'd, caller frees). TQ_EINVAL with the reason when it is not one. */
tq_code tq_ioc_normalize(tq_ioc_type type, const char *value, char **canonical, tq_err *err);

/* The host of a URL (lower-case, IDNA), malloc'd into *host. */
tq_code tq_ioc_url_host(const char *url, char **host, tq_err *err);
/* The registered domain (eTLD+1, libpsl) of a host name: "a.b.example.co.uk" ->
 * "example.co.uk". TQ_EINVAL for an IP address or a public suffix itself. */
tq_code tq_ioc_registered_domain(const char *host, char **out, tq_err *err);

#endif
