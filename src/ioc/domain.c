/* domain.c: host names (FQDN) to one canonical form, and registered domains. ASCII names are
 * checked and lower-cased here without any library call (the import path sees millions);
 * a name with a non-ASCII byte goes through libidn2 (IDNA2008, UTS #46 non-transitional) to
 * become A-labels. Registered domains come from libpsl's built-in list (read-only data). */
#include <idn2.h>
#include <libpsl.h>
#include <stdlib.h>
#include <string.h>

#include "ioc_int.h"

#define DOMAIN_MAX 253
#define LABEL_MAX 63

/* Checks the bytes of an input name: white space and punctuation are refused with their
 * own reason; *non_ascii is set when IDNA is needed. */
static tq_code domain_scan(const char *s, size_t n, int *non_ascii, tq_err *err) {
  *non_ascii = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x80)
      *non_ascii = 1;
    else if (ioc_is_space(c))
      return ioc_reason(err, "white space in a domain name");
    else if (c < 0x20 || c == 0x7f)
      return ioc_reason(err, "control character 0x%02x in a domain name", c);
    else if (!ioc_is_alpha(c) && !ioc_is_digit(c) && c != '-' && c != '_' && c != '.')
      return ioc_reason(err,
                        "'%c' is not allowed in a domain name (letters, digits, '-', '_', "
                        "'.')",
                        c);
  }
  return TQ_OK;
}

/* Checks one label of a lower-case ASCII name. */
static tq_code domain_label(const char *p, size_t n, tq_err *err) {
  if (n == 0)
    return ioc_reason(err, "a domain name has an empty label (two dots in a row or a leading "
                           "dot)");
  if (n > LABEL_MAX)
    return ioc_reason(err, "domain label '%.20s...' is %zu characters (at most %d)", p, n,
                      LABEL_MAX);
  if (p[0] == '-' || p[n - 1] == '-')
    return ioc_reason(err, "domain label '%.*s' starts or ends with '-'", (int)n, p);
  return TQ_OK;
}

/* Checks the label structure of a lower-case ASCII name of n bytes (no trailing dot). */
static tq_code domain_check(const char *s, size_t n, tq_err *err) {
  if (n > DOMAIN_MAX)
    return ioc_reason(err, "a domain name is at most %d characters, found %zu", DOMAIN_MAX, n);
  int labels = 0;
  const char *p = s, *end = s + n, *last = s;
  while (p <= end) {
    const char *dot = memchr(p, '.', (size_t)(end - p));
    size_t len = dot ? (size_t)(dot - p) : (size_t)(end - p);
    tq_code rc = domain_label(p, len, err);
    if (rc != TQ_OK)
      return rc;
    labels++;
    last = p;
    p += len + 1;
  }
  if (labels < 2)
    return ioc_reason(err, "an FQDN needs at least two labels (a name and a top-level domain)");
  size_t tld = (size_t)(end - last);
  int digits = 1;
  for (size_t i = 0; i < tld; i++)
    digits &= ioc_is_digit(last[i]);
  if (digits)
    return ioc_reason(err,
                      "top-level domain '%.*s' is all digits (not a domain name; an IP "
                      "address?)",
                      (int)tld, last);
  return TQ_OK;
}

/* Converts a name with non-ASCII bytes to A-labels; *out is malloc'd. */
static tq_code domain_idna(const char *s, size_t n, char **out, tq_err *err) {
  char *in = tq_strndup(s, n);
  if (in == NULL)
    return ioc_nomem(err);
  char *ascii = NULL;
  int rc = idn2_lookup_u8((const uint8_t *)in, (uint8_t **)&ascii,
                          IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
  free(in);
  if (rc == IDN2_MALLOC)
    return ioc_nomem(err);
  if (rc != IDN2_OK)
    return ioc_reason(err, "not a valid internationalised domain name (IDNA: %s)",
                      idn2_strerror(rc));
  /* idn2 allocates with malloc, so the caller's free() is right. */
  *out = ascii;
  return TQ_OK;
}

tq_code ioc_fqdn_normalize(const char *s, char **out, tq_err *err) {
  size_t n = strlen(s);
  if (n > 0 && s[n - 1] == '.') /* the root label: same name, so not part of the value */
    n--;
  if (n == 0)
    return ioc_reason(err, "empty domain name");
  int non_ascii = 0;
  tq_code rc = domain_scan(s, n, &non_ascii, err);
  if (rc != TQ_OK)
    return rc;
  char *name = non_ascii ? NULL : tq_strndup(s, n);
  if (non_ascii) {
    rc = domain_idna(s, n, &name, err);
    if (rc != TQ_OK)
      return rc;
  } else if (name == NULL) {
    return ioc_nomem(err);
  }
  size_t len = strlen(name);
  for (size_t i = 0; i < len; i++)
    name[i] = (char)ioc_lower((unsigned char)name[i]);
  if (len > 0 && name[len - 1] == '.') /* IDNA may map a non-ASCII full stop at the end */
    name[--len] = '\0';
  /* UTS #46 maps some non-ASCII characters (full-width '@') to ASCII punctuation. */
  rc = non_ascii ? domain_scan(name, len, &non_ascii, err) : TQ_OK;
  if (rc == TQ_OK)
    rc = domain_check(name, len, err);
  if (rc != TQ_OK) {
    free(name);
    return rc;
  }
  *out = name;
  return TQ_OK;
}

tq_code tq_ioc_registered_domain(const char *host, char **out, tq_err *err) {
  tq_err_clear(err);
  if (host == NULL)
    return tq_err_set(err, TQ_EINVAL, "registered domain: no host given");
  char *name = NULL;
  tq_code rc = TQ_OK;
  const psl_ctx_t *psl = psl_builtin();
  if (psl == NULL) {
    rc = tq_err_set(err, TQ_EINTERNAL, "libpsl has no built-in public suffix list");
    goto fail;
  }
  uint8_t addr[16];
  if (ioc_ipv4_parse(host, addr, NULL) == TQ_OK || ioc_ipv6_parse(host, addr, NULL) == TQ_OK) {
    rc = tq_err_set(err, TQ_EINVAL,
                    "'%.200s' is an IP address; only a domain name has a "
                    "registered domain",
                    host);
    goto fail;
  }
  rc = ioc_fqdn_normalize(host, &name, err);
  if (rc != TQ_OK) {
    ioc_prefix_value(err, host);
    goto fail;
  }
  const char *reg = psl_registrable_domain(psl, name);
  if (reg == NULL) {
    rc = tq_err_set(err, TQ_EINVAL, "'%.200s' is a public suffix; it has no registered domain",
                    host);
    goto fail;
  }
  char *copy = tq_strdup(reg);
  if (copy == NULL) {
    rc = ioc_nomem(err);
    goto fail;
  }
  *out = copy;
fail:
  free(name);
  return rc;
}
