/* email.c: email addresses (addr-spec of RFC 5322 in its dot-atom form). The local part is
 * kept as written (only the receiving server may fold its case); the domain becomes a
 * canonical FQDN. Quoted local parts and IP-literal domains are refused: they do not occur
 * as indicators and would need a parser of their own. */
#include <stdlib.h>
#include <string.h>

#include "ioc_int.h"

#define LOCAL_MAX 64
#define EMAIL_MAX 254

/* Checks a dot-atom local part of n bytes (UTF-8 allowed, RFC 6531). */
static tq_code email_local(const char *p, size_t n, tq_err *err) {
  if (n == 0)
    return ioc_reason(err, "an email address needs a local part before '@'");
  if (n > LOCAL_MAX)
    return ioc_reason(err, "the local part of an email address is at most %d bytes, found %zu",
                      LOCAL_MAX, n);
  if (p[0] == '.' || p[n - 1] == '.' || memmem(p, n, "..", 2) != NULL)
    return ioc_reason(err, "the local part of an email address cannot start or end with '.' "
                           "or hold '..'");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (ioc_is_space(c))
      return ioc_reason(err, "white space in an email address");
    if (c < 0x20 || c == 0x7f)
      return ioc_reason(err, "control character 0x%02x in an email address", c);
    if (c < 0x80 && !ioc_is_alpha(c) && !ioc_is_digit(c) && !strchr("!#$%&'*+-/=?^_`{|}~.", c))
      return ioc_reason(err, "'%c' is not allowed in the local part of an email address", c);
  }
  return TQ_OK;
}

tq_code ioc_email_normalize(const char *s, char **out, tq_err *err) {
  const char *at = strrchr(s, '@');
  if (at == NULL)
    return ioc_reason(err, "an email address needs an '@'");
  size_t local_len = (size_t)(at - s);
  if (memchr(s, '@', local_len) != NULL)
    return ioc_reason(err, "an email address has one '@', found more");
  tq_code rc = email_local(s, local_len, err);
  if (rc != TQ_OK)
    return rc;
  if (at[1] == '[')
    return ioc_reason(err, "an email address with an IP-literal domain is not accepted");
  char *domain = NULL;
  rc = ioc_fqdn_normalize(at + 1, &domain, err);
  if (rc != TQ_OK)
    return tq_err_prefix(err, "email domain '%.100s': ", at + 1);
  size_t total = local_len + 1 + strlen(domain);
  char *addr = total <= EMAIL_MAX ? malloc(total + 1) : NULL;
  if (addr != NULL) {
    memcpy(addr, s, local_len + 1);
    strcpy(addr + local_len + 1, domain);
    *out = addr;
  } else if (total > EMAIL_MAX) {
    rc = ioc_reason(err, "an email address is at most %d bytes, found %zu", EMAIL_MAX, total);
  } else {
    rc = ioc_nomem(err);
  }
  free(domain);
  return rc;
}
