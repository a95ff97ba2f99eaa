/* ip.c: IPv4 and IPv6 addresses and CIDR blocks in their strict text forms. Canonical text
 * comes from inet_ntop (RFC 5952 for IPv6); inet_pton says yes or no, and when it says no
 * the small checks here find a reason a person can act on. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ioc_int.h"

int ioc_looks_ipv4(const char *s) {
  int dots = 0, digits = 0;
  for (; *s; s++) {
    if (*s == '.')
      dots++;
    else if (ioc_is_digit(*s))
      digits++;
    else
      return 0;
  }
  return dots > 0 && digits > 0;
}

/* Parses one octet of n digits at p. Leading zeros are refused because inet_aton and many
 * tools read "010" as octal 8 while others read decimal 10: two hosts for one text. */
static tq_code ipv4_octet(const char *p, size_t n, uint8_t *out, tq_err *err) {
  if (n == 0)
    return ioc_reason(err, "IPv4 address has an empty octet");
  if (n > 1 && p[0] == '0')
    return ioc_reason(err, "IPv4 octet '%.*s' has a leading zero (ambiguous: octal or decimal)",
                      (int)n, p);
  if (n > 3)
    return ioc_reason(err, "IPv4 octet %.*s is out of range 0..255", (int)n, p);
  unsigned v = 0;
  for (size_t i = 0; i < n; i++)
    v = v * 10 + (unsigned)(p[i] - '0');
  if (v > 255)
    return ioc_reason(err, "IPv4 octet %u is out of range 0..255", v);
  *out = (uint8_t)v;
  return TQ_OK;
}

tq_code ioc_ipv4_parse(const char *s, uint8_t addr[4], tq_err *err) {
  int parts = 1;
  for (const char *p = s; *p; p++) {
    if (!ioc_is_digit(*p) && *p != '.')
      return ioc_reason(err, "'%c' is not allowed in an IPv4 address (digits and dots only)", *p);
    parts += *p == '.';
  }
  if (parts != 4)
    return ioc_reason(err, "an IPv4 address has 4 dot-separated octets, found %d", parts);
  const char *p = s;
  for (int i = 0; i < 4; i++) {
    const char *end = strchr(p, '.');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    tq_code rc = ipv4_octet(p, n, &addr[i], err);
    if (rc != TQ_OK)
      return rc;
    p += n + 1;
  }
  return TQ_OK;
}

/* Counts the groups of an IPv6 text (an embedded IPv4 counts as two) and checks each one;
 * called only to explain why inet_pton refused s. */
static tq_code ipv6_groups(const char *s, int *groups, tq_err *err) {
  *groups = 0;
  const char *p = s;
  while (*p) {
    const char *end = strchr(p, ':');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n > 0 && memchr(p, '.', n) != NULL) {
      uint8_t v4[4];
      if (end != NULL)
        return ioc_reason(err, "an embedded IPv4 address must be the last part of an IPv6 "
                               "address");
      if (ioc_ipv4_parse(p, v4, err) != TQ_OK)
        return tq_err_prefix(err, "embedded IPv4 in an IPv6 address: ");
      *groups += 2;
    } else if (n > 4) {
      return ioc_reason(err, "IPv6 group '%.*s' has more than 4 hex digits", (int)n, p);
    } else if (n > 0) {
      *groups += 1;
    }
    if (end == NULL)
      break;
    p = end + 1;
  }
  return TQ_OK;
}

/* Finds why inet_pton refused s (no brackets, no zone). */
static tq_code ipv6_reason(const char *s, tq_err *err) {
  for (const char *p = s; *p; p++)
    if (!ioc_is_hex(*p) && *p != ':' && *p != '.')
      return ioc_reason(err, "'%c' is not allowed in an IPv6 address", *p);
  if (strstr(s, ":::") != NULL)
    return ioc_reason(err, "':::' is not valid in an IPv6 address");
  const char *dbl = strstr(s, "::");
  if (dbl != NULL && strstr(dbl + 2, "::") != NULL)
    return ioc_reason(err, "'::' may appear only once in an IPv6 address");
  size_t n = strlen(s);
  if ((s[0] == ':' && s[1] != ':') || (n > 1 && s[n - 1] == ':' && s[n - 2] != ':'))
    return ioc_reason(err, "an IPv6 address cannot start or end with a single ':'");
  int groups = 0;
  tq_code rc = ipv6_groups(s, &groups, err);
  if (rc != TQ_OK)
    return rc;
  if (dbl == NULL && groups != 8)
    return ioc_reason(err, "an IPv6 address has 8 groups (or '::'), found %d", groups);
  if (dbl != NULL && groups > 7)
    return ioc_reason(err, "an IPv6 address with '::' has at most 7 groups, found %d", groups);
  return ioc_reason(err, "not a valid IPv6 address");
}

tq_code ioc_ipv6_parse(const char *s, uint8_t addr[16], tq_err *err) {
  char text[64];
  size_t n = strlen(s);
  if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
    s++;
    n -= 2;
  }
  if (n == 0)
    return ioc_reason(err, "empty IPv6 address");
  const char *zone = memchr(s, '%', n);
  if (zone != NULL)
    return ioc_reason(err, "an IPv6 zone index ('%.*s') is local to one host and not allowed",
                      (int)(n - (size_t)(zone - s)), zone);
  if (n >= sizeof text)
    return ioc_reason(err, "an IPv6 address is at most 45 characters, found %zu", n);
  memcpy(text, s, n);
  text[n] = '\0';
  if (inet_pton(AF_INET6, text, addr) == 1)
    return TQ_OK;
  return ipv6_reason(text, err);
}

/* Formats an address of family af (AF_INET or AF_INET6), with "/prefix" when prefix >= 0. */
static tq_code ip_format(int af, const uint8_t *addr, int prefix, char **out, tq_err *err) {
  char text[INET6_ADDRSTRLEN + 16];
  if (inet_ntop(af, addr, text, INET6_ADDRSTRLEN) == NULL)
    return tq_err_set(err, TQ_EINTERNAL, "inet_ntop refused a parsed address");
  if (prefix >= 0)
    snprintf(text + strlen(text), 16, "/%d", prefix);
  char *copy = tq_strdup(text);
  if (copy == NULL)
    return ioc_nomem(err);
  *out = copy;
  return TQ_OK;
}

tq_code ioc_ipv4_normalize(const char *s, char **out, tq_err *err) {
  uint8_t addr[4];
  tq_code rc = ioc_ipv4_parse(s, addr, err);
  return rc != TQ_OK ? rc : ip_format(AF_INET, addr, -1, out, err);
}

tq_code ioc_ipv6_normalize(const char *s, char **out, tq_err *err) {
  uint8_t addr[16];
  tq_code rc = ioc_ipv6_parse(s, addr, err);
  return rc != TQ_OK ? rc : ip_format(AF_INET6, addr, -1, out, err);
}

/* Parses the text after '/' as a prefix length in 0..max. */
static tq_code cidr_prefix(const char *p, int max, int *out, tq_err *err) {
  if (*p == '\0')
    return ioc_reason(err, "a CIDR block needs a prefix length after '/'");
  size_t n = strlen(p);
  for (size_t i = 0; i < n; i++)
    if (!ioc_is_digit(p[i]))
      return ioc_reason(err, "CIDR prefix length '%s' is not a number", p);
  if (n > 1 && p[0] == '0')
    return ioc_reason(err, "CIDR prefix length '%s' has a leading zero", p);
  int v = n > 3 ? 1000 : atoi(p);
  if (v > max)
    return ioc_reason(err, "CIDR prefix length %s is out of range 0..%d", p, max);
  *out = v;
  return TQ_OK;
}

/* Clears the host bits of addr (nbytes long) under prefix; returns 1 if any was set. */
static int cidr_clear_host_bits(uint8_t *addr, int nbytes, int prefix) {
  int had = 0;
  for (int i = 0; i < nbytes; i++) {
    int keep = prefix - i * 8;
    uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    had |= (addr[i] & (uint8_t)~mask) != 0;
    addr[i] &= mask;
  }
  return had;
}

tq_code ioc_cidr_normalize(const char *s, char **out, tq_err *err) {
  const char *slash = strrchr(s, '/');
  if (slash == NULL)
    return ioc_reason(err, "a CIDR block is address/prefix-length, '/' is missing");
  size_t n = (size_t)(slash - s);
  if (n == 0 || n >= 64)
    return ioc_reason(err, "a CIDR block needs an address before '/'");
  char text[64];
  memcpy(text, s, n);
  text[n] = '\0';
  int v6 = memchr(text, ':', n) != NULL;
  uint8_t addr[16];
  tq_code rc = v6 ? ioc_ipv6_parse(text, addr, err) : ioc_ipv4_parse(text, addr, err);
  if (rc != TQ_OK)
    return rc;
  int prefix = 0;
  rc = cidr_prefix(slash + 1, v6 ? 128 : 32, &prefix, err);
  if (rc != TQ_OK)
    return rc;
  if (cidr_clear_host_bits(addr, v6 ? 16 : 4, prefix)) {
    char *net = NULL;
    rc = ip_format(v6 ? AF_INET6 : AF_INET, addr, prefix, &net, err);
    if (rc != TQ_OK)
      return rc;
    rc = ioc_reason(err, "host bits are set after the /%d prefix (the network is %s)", prefix, net);
    free(net);
    return rc;
  }
  return ip_format(v6 ? AF_INET6 : AF_INET, addr, prefix, out, err);
}
