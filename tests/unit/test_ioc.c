/* test_ioc.c: indicator typing and normalisation (src/ioc). Most behaviour is in tables: a
 * value, the type it must be detected as and its canonical form, or the failure and a piece
 * of the reason a user reads. Each table test reports every wrong row, then fails. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tqhost/ioc.h"

#define A63 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define MD5_EMPTY "d41d8cd98f00b204e9800998ecf8427e"
#define SHA1_EMPTY "da39a3ee5e6b4b0d3255bfef95601890afd80709"
#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA384_EMPTY                                                                               \
  "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b"  \
  "95b"
#define SHA512_EMPTY                                                                               \
  "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877ee"  \
  "c2f63b931bd47417a81a538327af927da3e"

/* A row: canonical set means "valid, of type"; otherwise "TQ_EINVAL, reason contains". */
typedef struct ioc_case {
  const char *value;
  tq_ioc_type type;
  const char *canonical;
  const char *reason;
} ioc_case;

#define OK(v, t, c)                                                                                \
  { v, t, c, NULL }
#define BAD(v, r)                                                                                  \
  { v, TQ_IOC_UNKNOWN, NULL, r }

static const ioc_case classify_cases[] = {
    /* IPv4 */
    OK("1.2.3.4", TQ_IOC_IPV4, "1.2.3.4"),
    OK("0.0.0.0", TQ_IOC_IPV4, "0.0.0.0"),
    OK("255.255.255.255", TQ_IOC_IPV4, "255.255.255.255"),
    OK(" 8.8.8.8\n", TQ_IOC_IPV4, "8.8.8.8"),
    OK("192.168.1[.]1", TQ_IOC_IPV4, "192.168.1.1"),
    OK("10(.)0(.)0(.)1", TQ_IOC_IPV4, "10.0.0.1"),
    OK("10[dot]0[DOT]0[dot]1", TQ_IOC_IPV4, "10.0.0.1"),
    OK("10{.}0{.}0{.}1", TQ_IOC_IPV4, "10.0.0.1"),
    OK("1\\.2\\.3\\.4", TQ_IOC_IPV4, "1.2.3.4"),
    BAD("1.2.3.999", "IPv4 octet 999 is out of range 0..255"),
    BAD("256.1.1.1", "octet 256 is out of range"),
    BAD("1.2.3.1000", "octet 1000 is out of range"),
    BAD("010.1.1.1", "octet '010' has a leading zero"),
    BAD("1.2.3.04", "leading zero"),
    BAD("1.2.3", "4 dot-separated octets, found 3"),
    BAD("1.2.3.4.5", "found 5"),
    BAD("1..2.3", "empty octet"),
    /* IPv6 */
    OK("2001:0db8:0000:0000:0000:0000:0000:0001", TQ_IOC_IPV6, "2001:db8::1"),
    OK("2001:DB8::1", TQ_IOC_IPV6, "2001:db8::1"),
    OK("::1", TQ_IOC_IPV6, "::1"),
    OK("::", TQ_IOC_IPV6, "::"),
    OK("[2001:db8::1]", TQ_IOC_IPV6, "2001:db8::1"),
    OK("2001:db8:0:0:1:0:0:1", TQ_IOC_IPV6, "2001:db8::1:0:0:1"),
    OK("2001:db8:0:1:1:1:1:1", TQ_IOC_IPV6, "2001:db8:0:1:1:1:1:1"),
    OK("2001:db8:0000:0:0:0:0:ABCD", TQ_IOC_IPV6, "2001:db8::abcd"),
    OK("::ffff:1.2.3.4", TQ_IOC_IPV6, "::ffff:1.2.3.4"),
    OK("2001:db8[:][:]1", TQ_IOC_IPV6, "2001:db8::1"),
    BAD("fe80::1%eth0", "zone index ('%eth0')"),
    BAD("2001:db8::1::2", "'::' may appear only once"),
    BAD("2001:db8:12345::1", "group '12345' has more than 4 hex digits"),
    BAD("2001:db8:1:2:3:4:5", "8 groups (or '::'), found 7"),
    BAD("1:2:3:4:5:6:7:8:9", "found 9"),
    BAD("2001:db8:g::1", "'g' is not allowed in an IPv6 address"),
    BAD(":1:2::3", "single ':'"),
    BAD("1:2:::3", "':::'"),
    BAD("::ffff:1.2.3.256", "embedded IPv4 in an IPv6 address: IPv4 octet 256"),
    /* CIDR */
    OK("1.2.3.0/24", TQ_IOC_CIDR, "1.2.3.0/24"),
    OK("10.0.0.0/8", TQ_IOC_CIDR, "10.0.0.0/8"),
    OK("0.0.0.0/0", TQ_IOC_CIDR, "0.0.0.0/0"),
    OK("1.2.3.4/32", TQ_IOC_CIDR, "1.2.3.4/32"),
    OK("192.168.0[.]0/16", TQ_IOC_CIDR, "192.168.0.0/16"),
    OK("2001:DB8::/32", TQ_IOC_CIDR, "2001:db8::/32"),
    OK("2001:0db8:0:0::1/128", TQ_IOC_CIDR, "2001:db8::1/128"),
    BAD("1.2.3.4/24", "host bits are set after the /24 prefix (the network is 1.2.3.0/24)"),
    BAD("10.1.0.0/8", "the network is 10.0.0.0/8"),
    BAD("2001:db8::1/32", "host bits are set after the /32 prefix (the network is 2001:db8::/32)"),
    BAD("1.2.3.0/33", "prefix length 33 is out of range 0..32"),
    BAD("2001:db8::/129", "out of range 0..128"),
    BAD("1.2.3.0/024", "prefix length '024' has a leading zero"),
    BAD("1.2.3.999/24", "octet 999 is out of range"),
    /* FQDN */
    OK("example.com", TQ_IOC_FQDN, "example.com"),
    OK("EXAMPLE.COM", TQ_IOC_FQDN, "example.com"),
    OK("www.Example.com.", TQ_IOC_FQDN, "www.example.com"),
    OK("evil[.]example[.]com", TQ_IOC_FQDN, "evil.example.com"),
    OK("evil[dot]com", TQ_IOC_FQDN, "evil.com"),
    OK("evil(dot)com", TQ_IOC_FQDN, "evil.com"),
    OK("a_b.example.com", TQ_IOC_FQDN, "a_b.example.com"),
    OK("_dmarc.example.com", TQ_IOC_FQDN, "_dmarc.example.com"),
    OK("3com.com", TQ_IOC_FQDN, "3com.com"),
    OK("1.2.3.4.example", TQ_IOC_FQDN, "1.2.3.4.example"),
    OK("xn--bcher-kva.example", TQ_IOC_FQDN, "xn--bcher-kva.example"),
    OK("bücher.example", TQ_IOC_FQDN, "xn--bcher-kva.example"),
    OK("BÜCHER.Example", TQ_IOC_FQDN, "xn--bcher-kva.example"),
    OK("münchen.de", TQ_IOC_FQDN, "xn--mnchen-3ya.de"),
    OK("faß.de", TQ_IOC_FQDN, "xn--fa-hia.de"),
    OK("例え.jp", TQ_IOC_FQDN, "xn--r8jz45g.jp"),
    OK("xn--n3h.com", TQ_IOC_FQDN, "xn--n3h.com"),
    OK(A63 ".com", TQ_IOC_FQDN, A63 ".com"),
    BAD("exa mple.com", "white space in a domain name"),
    BAD("localhost", "an FQDN needs at least two labels"),
    BAD("a..com", "empty label"),
    BAD(".example.com", "empty label"),
    BAD("-a.com", "domain label '-a' starts or ends with '-'"),
    BAD("a-.com", "domain label 'a-' starts or ends with '-'"),
    BAD("example.123", "top-level domain '123' is all digits"),
    BAD("exam!ple.com", "'!' is not allowed in a domain name"),
    BAD("ex\x01"
        "ample.com",
        "control character 0x01"),
    BAD("a" A63 ".com", "is 64 characters (at most 63)"),
    BAD(A63 "." A63 "." A63 "." A63 ".com", "at most 253 characters, found 259"),
    BAD("☃.com", "not a valid internationalised domain name (IDNA"),
    BAD("[.]", "empty domain name"),
    /* URL */
    OK("http://example.com", TQ_IOC_URL, "http://example.com/"),
    OK("HTTP://EXAMPLE.COM/Path", TQ_IOC_URL, "http://example.com/Path"),
    OK("http://example.com:80/", TQ_IOC_URL, "http://example.com/"),
    OK("https://example.com:443/a", TQ_IOC_URL, "https://example.com/a"),
    OK("https://example.com:8443/a", TQ_IOC_URL, "https://example.com:8443/a"),
    OK("http://example.com:443/", TQ_IOC_URL, "http://example.com:443/"),
    OK("http://example.com:080/", TQ_IOC_URL, "http://example.com/"),
    OK("http://example.com/a/./b/../c", TQ_IOC_URL, "http://example.com/a/c"),
    OK("http://example.com/a/../../../b", TQ_IOC_URL, "http://example.com/b"),
    OK("http://example.com/%7euser", TQ_IOC_URL, "http://example.com/~user"),
    OK("http://example.com/a%2fb", TQ_IOC_URL, "http://example.com/a%2Fb"),
    OK("http://example.com/a%20b", TQ_IOC_URL, "http://example.com/a%20b"),
    OK("http://example.com/%41%42c", TQ_IOC_URL, "http://example.com/ABc"),
    OK("http://example.com/a/%2E%2E/x", TQ_IOC_URL, "http://example.com/x"),
    OK("http://example.com?q=1", TQ_IOC_URL, "http://example.com/?q=1"),
    OK("http://example.com/?q=%3d%3D", TQ_IOC_URL, "http://example.com/?q=%3D%3D"),
    OK("http://example.com/#Frag", TQ_IOC_URL, "http://example.com/#Frag"),
    OK("http://example.com/ü", TQ_IOC_URL, "http://example.com/%C3%BC"),
    OK("http://example.com/<x>", TQ_IOC_URL, "http://example.com/%3Cx%3E"),
    OK("http://bücher.example/", TQ_IOC_URL, "http://xn--bcher-kva.example/"),
    OK("http://Example.COM./", TQ_IOC_URL, "http://example.com/"),
    OK("http://[2001:DB8:0::1]:8080/x", TQ_IOC_URL, "http://[2001:db8::1]:8080/x"),
    OK("http://1.2.3.4:80/x", TQ_IOC_URL, "http://1.2.3.4/x"),
    OK("http://user:Secret@example.com/", TQ_IOC_URL, "http://user:Secret@example.com/"),
    OK("http://@example.com/", TQ_IOC_URL, "http://example.com/"),
    OK("http://evil.com/a?u=http://b.com", TQ_IOC_URL, "http://evil.com/a?u=http://b.com"),
    OK("hxxp://evil[.]com/a", TQ_IOC_URL, "http://evil.com/a"),
    OK("hXXps://evil[.]com", TQ_IOC_URL, "https://evil.com/"),
    OK("hxxps[:]//evil[.]com[/]x", TQ_IOC_URL, "https://evil.com/x"),
    OK("hxxp[://]evil[.]com", TQ_IOC_URL, "http://evil.com/"),
    OK("fxp://files.example.org/a", TQ_IOC_URL, "ftp://files.example.org/a"),
    OK("ftp://files.example.org:21/a", TQ_IOC_URL, "ftp://files.example.org/a"),
    OK("wss://a.example:443/", TQ_IOC_URL, "wss://a.example/"),
    OK("example.com/path", TQ_IOC_URL, "http://example.com/path"),
    OK("example.com/a/../b?x", TQ_IOC_URL, "http://example.com/b?x"),
    OK("1.1.1.1/malware.exe", TQ_IOC_URL, "http://1.1.1.1/malware.exe"),
    OK("example.com:8080", TQ_IOC_URL, "http://example.com:8080/"),
    OK("[::1]:8080", TQ_IOC_URL, "http://[::1]:8080/"),
    BAD("meow://x.com", "unknown URL scheme 'meow'"),
    BAD("tcp://1.2.3.4:80", "unknown URL scheme 'tcp'"),
    BAD("http://exa mple.com/", "white space in a URL"),
    BAD("http://010.1.1.1/", "URL host '010.1.1.1': IPv4 octet '010' has a leading zero"),
    BAD("http://1.2.3.999/", "URL host '1.2.3.999': IPv4 octet 999"),
    BAD("http://0x7f.0.0.1/", "top-level domain '1' is all digits"),
    BAD("http://localhost/", "URL host 'localhost': an FQDN needs at least two labels"),
    BAD("http://2001:db8::1/", "must be in brackets"),
    BAD("http://example.com:99999/", "not a valid URL"),
    BAD("http://example.com:0/", "port 0"),
    BAD("http:example.com", "URL scheme 'http:' must be followed by '//'"),
    BAD("http://example.com/%zz", "'%zz' in a URL is not a percent-encoding"),
    BAD("http:///path", "a URL needs a host"),
    BAD("http://[::1/", "no closing ']'"),
    /* Email Address */
    OK("user@example.com", TQ_IOC_EMAIL, "user@example.com"),
    OK("User.Name+tag@Example.COM", TQ_IOC_EMAIL, "User.Name+tag@example.com"),
    OK("user[@]example[.]com", TQ_IOC_EMAIL, "user@example.com"),
    OK("user[at]example[dot]com", TQ_IOC_EMAIL, "user@example.com"),
    OK("user(at)example(.)com", TQ_IOC_EMAIL, "user@example.com"),
    OK("o'brien@example.ie", TQ_IOC_EMAIL, "o'brien@example.ie"),
    OK("user@bücher.example", TQ_IOC_EMAIL, "user@xn--bcher-kva.example"),
    BAD("a@b@example.com", "one '@', found more"),
    BAD("@example.com", "needs a local part"),
    BAD(".user@example.com", "cannot start or end with '.'"),
    BAD("us..er@example.com", "or hold '..'"),
    BAD("us(er@example.com", "'(' is not allowed in the local part"),
    BAD("user@localhost", "email domain 'localhost': an FQDN needs at least two labels"),
    BAD("user@1.2.3.4", "top-level domain '4' is all digits"),
    BAD("user@[1.2.3.4]", "IP-literal"),
    BAD("user@exa mple.com", "white space in a domain name"),
    /* hashes */
    OK(MD5_EMPTY, TQ_IOC_MD5, MD5_EMPTY),
    OK("D41D8CD98F00B204E9800998ECF8427E", TQ_IOC_MD5, MD5_EMPTY),
    OK(" " MD5_EMPTY "\t", TQ_IOC_MD5, MD5_EMPTY),
    OK(SHA1_EMPTY, TQ_IOC_SHA1, SHA1_EMPTY),
    OK(SHA256_EMPTY, TQ_IOC_SHA256, SHA256_EMPTY),
    OK("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", TQ_IOC_SHA256,
       SHA256_EMPTY),
    OK(SHA384_EMPTY, TQ_IOC_SHA384, SHA384_EMPTY),
    OK(SHA512_EMPTY, TQ_IOC_SHA512, SHA512_EMPTY),
    BAD("d41d8cd98f00b204e9800998ecf8427", "31 hex digits is not a hash length (MD5 32, SHA-1 40"),
    BAD("d41d8cd98f00b204e9800998ecf8427ee", "33 hex digits is not a hash length"),
    BAD("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", "63 hex digits"),
    BAD("d41d8cd98f00b204e9800998ecf8427g", "'g' at position 32 is not a hex digit"),
    /* CVE */
    OK("CVE-2021-44228", TQ_IOC_CVE, "CVE-2021-44228"),
    OK("cve-2021-44228", TQ_IOC_CVE, "CVE-2021-44228"),
    OK("CVE-1999-0001", TQ_IOC_CVE, "CVE-1999-0001"),
    OK("Cve-2014-0160", TQ_IOC_CVE, "CVE-2014-0160"),
    OK("CVE-2021-1234567", TQ_IOC_CVE, "CVE-2021-1234567"),
    BAD("CVE-1998-0001", "CVE year 1998 is before 1999"),
    BAD("CVE-21-1234", "CVE year '21' is not 4 digits"),
    BAD("CVE-20x1-1234", "CVE year '20x1' is not a number"),
    BAD("CVE-2999-1234", "CVE year 2999 is in the future"),
    BAD("CVE-2021-123", "sequence number '123' has fewer than 4 digits"),
    BAD("CVE-2021-01234", "sequence number '01234' has a leading zero"),
    BAD("CVE-2021-12a4", "'a' is not allowed in a CVE sequence number"),
    BAD("CVE-2021", "the '-' after the year is missing"),
    /* ASN */
    OK("AS13335", TQ_IOC_ASN, "AS13335"),
    OK("as13335", TQ_IOC_ASN, "AS13335"),
    OK("AS 13335", TQ_IOC_ASN, "AS13335"),
    OK("ASN13335", TQ_IOC_ASN, "AS13335"),
    OK("asn 13335", TQ_IOC_ASN, "AS13335"),
    OK("AS1.10", TQ_IOC_ASN, "AS65546"),
    OK("AS4294967295", TQ_IOC_ASN, "AS4294967295"),
    BAD("AS4294967296", "an AS number 4294967296 is out of range"),
    BAD("AS0", "AS0 is reserved"),
    BAD("AS013335", "has a leading zero"),
    BAD("AS65536.1", "high part of an asdot ASN 65536 is out of range 0..65535"),
    BAD("13335", "a bare number is not an indicator (an ASN is written AS<number>)"),
    /* neither */
    BAD("", "empty value"),
    BAD("   \t", "empty value"),
    BAD("foo bar", "not an indicator tqhost recognises"),
    BAD("hello", "an FQDN needs at least two labels"),
};

/* Runs one row through classify; returns 1 when it behaves as the row says. */
static int classify_row_ok(const ioc_case *c) {
  tq_ioc_type type = TQ_IOC_UNKNOWN;
  char *canon = NULL;
  tq_err err = {0};
  tq_code rc = tq_ioc_classify(c->value, &type, &canon, &err);
  int ok;
  if (c->canonical != NULL) {
    ok = rc == TQ_OK && type == c->type && canon != NULL && strcmp(canon, c->canonical) == 0;
    if (!ok)
      print_error("classify('%s'): want %s '%s', got rc=%d %s '%s' %s\n", c->value,
                  tq_ioc_type_name(c->type), c->canonical, rc, tq_ioc_type_name(type),
                  canon ? canon : "", rc ? err.msg : "");
  } else {
    ok = rc == TQ_EINVAL && err.code == TQ_EINVAL && strstr(err.msg, c->reason) != NULL &&
         canon == NULL;
    if (!ok)
      print_error("classify('%s'): want failure with '%s', got rc=%d '%s' (%s)\n", c->value,
                  c->reason, rc, rc ? err.msg : canon, tq_ioc_type_name(type));
  }
  free(canon);
  return ok;
}

static void classify_table_gives_type_and_canonical_form_or_reason(void **state) {
  (void)state;
  size_t n = sizeof classify_cases / sizeof classify_cases[0], bad = 0;
  for (size_t i = 0; i < n; i++)
    bad += !classify_row_ok(&classify_cases[i]);
  print_message("%zu classify rows, %zu wrong\n", n, bad);
  assert_int_equal(bad, 0);
}

/* Normalising a canonical form changes nothing and keeps the type: the library can compare
 * stored values with fresh ones byte for byte. */
static void canonical_form_is_a_fixed_point(void **state) {
  (void)state;
  size_t n = sizeof classify_cases / sizeof classify_cases[0], bad = 0;
  for (size_t i = 0; i < n; i++) {
    const ioc_case *c = &classify_cases[i];
    if (c->canonical == NULL)
      continue;
    tq_ioc_type type = TQ_IOC_UNKNOWN;
    char *again = NULL, *as_type = NULL;
    tq_code rc1 = tq_ioc_classify(c->canonical, &type, &again, NULL);
    tq_code rc2 = tq_ioc_normalize(c->type, c->canonical, &as_type, NULL);
    if (rc1 != TQ_OK || type != c->type || strcmp(again, c->canonical) != 0 || rc2 != TQ_OK ||
        strcmp(as_type, c->canonical) != 0) {
      print_error("'%s' is not a fixed point: '%s' / '%s'\n", c->canonical, again ? again : "",
                  as_type ? as_type : "");
      bad++;
    }
    free(again);
    free(as_type);
  }
  assert_int_equal(bad, 0);
}

/* A failure message starts with the value as given, so a user sees which line it was. */
static void failure_reason_starts_with_the_quoted_value(void **state) {
  (void)state;
  char *canon = NULL;
  tq_err err;
  assert_int_equal(tq_ioc_classify(" 1.2.3.999 ", NULL, &canon, &err), TQ_EINVAL);
  assert_string_equal(err.msg, "' 1.2.3.999 ': IPv4 octet 999 is out of range 0..255");
  assert_null(canon);
}

/* tq_ioc_normalize validates a value as the type given, not as the type it looks like. */
typedef struct norm_case {
  tq_ioc_type type;
  const char *value;
  const char *canonical; /* NULL: must fail with reason */
  const char *reason;
} norm_case;

static const norm_case normalize_cases[] = {
    {TQ_IOC_MD5, "abc", NULL, "an MD5 is 32 hex digits, found 3"},
    {TQ_IOC_MD5, SHA1_EMPTY, NULL, "an MD5 is 32 hex digits, found 40 (the length of a SHA-1)"},
    {TQ_IOC_SHA1, MD5_EMPTY, NULL, "a SHA-1 is 40 hex digits, found 32"},
    {TQ_IOC_MD5, "zz1d8cd98f00b204e9800998ecf8427e", NULL, "'z' at position 1 is not a hex"},
    {TQ_IOC_MD5, "D41D8CD98F00B204E9800998ECF8427E", MD5_EMPTY, NULL},
    {TQ_IOC_SHA1, SHA1_EMPTY, SHA1_EMPTY, NULL},
    {TQ_IOC_SHA384, SHA384_EMPTY, SHA384_EMPTY, NULL},
    {TQ_IOC_SHA512, SHA512_EMPTY, SHA512_EMPTY, NULL},
    {TQ_IOC_IPV4, " 1[.]2[.]3[.]4 ", "1.2.3.4", NULL},
    {TQ_IOC_IPV4, "2001:db8::1", NULL, "':' is not allowed in an IPv4 address"},
    {TQ_IOC_IPV4, "1.2.3.4/32", NULL, "'/' is not allowed in an IPv4 address"},
    {TQ_IOC_IPV4, "example.com", NULL, "'e' is not allowed in an IPv4 address"},
    {TQ_IOC_IPV6, "1.2.3.4", NULL, "an IPv6 address has 8 groups"},
    {TQ_IOC_IPV6, "2001:db8::0:1", "2001:db8::1", NULL},
    {TQ_IOC_FQDN, "1.2.3.4", NULL, "top-level domain '4' is all digits"},
    {TQ_IOC_FQDN, "http://example.com", NULL, "':' is not allowed in a domain name"},
    {TQ_IOC_FQDN, "Evil[.]COM", "evil.com", NULL},
    {TQ_IOC_URL, "example.com", "http://example.com/", NULL},
    {TQ_IOC_URL, "Example.com/A", "http://example.com/A", NULL},
    {TQ_IOC_CIDR, "1.2.3.4", NULL, "'/' is missing"},
    {TQ_IOC_CIDR, "10.0.0.0/8", "10.0.0.0/8", NULL},
    {TQ_IOC_CIDR, "10.0.0.0/", NULL, "needs a prefix length after '/'"},
    {TQ_IOC_ASN, "13335", "AS13335", NULL},
    {TQ_IOC_ASN, "AS 13335", "AS13335", NULL},
    {TQ_IOC_ASN, "AS", NULL, "an AS number is missing"},
    {TQ_IOC_CVE, "cve-2020-0601", "CVE-2020-0601", NULL},
    {TQ_IOC_CVE, "2020-0601", NULL, "a CVE id is CVE-YYYY-NNNN"},
    {TQ_IOC_EMAIL, "example.com", NULL, "an email address needs an '@'"},
    {TQ_IOC_EMAIL, "a[at]b[.]org", "a@b.org", NULL},
    {TQ_IOC_IPV4, "", NULL, "empty value"},
};

static void normalize_table_validates_as_the_given_type(void **state) {
  (void)state;
  size_t n = sizeof normalize_cases / sizeof normalize_cases[0], bad = 0;
  for (size_t i = 0; i < n; i++) {
    const norm_case *c = &normalize_cases[i];
    char *canon = NULL;
    tq_err err = {0};
    tq_code rc = tq_ioc_normalize(c->type, c->value, &canon, &err);
    int ok = c->canonical ? rc == TQ_OK && strcmp(canon, c->canonical) == 0
                          : rc == TQ_EINVAL && strstr(err.msg, c->reason) != NULL;
    if (!ok) {
      print_error("normalize(%s, '%s'): want '%s', got rc=%d '%s'\n", tq_ioc_type_name(c->type),
                  c->value, c->canonical ? c->canonical : c->reason, rc, rc ? err.msg : canon);
      bad++;
    }
    free(canon);
  }
  print_message("%zu normalize rows, %zu wrong\n", n, bad);
  assert_int_equal(bad, 0);
}

static const struct {
  const char *in, *out;
} refang_cases[] = {
    {"hxxp://evil[.]com", "http://evil.com"},
    {"hxxps://evil[.]com", "https://evil.com"},
    {"HXXPS[:]//evil(.)com", "httpS://evil.com"},
    {"hxtp://a[.]b", "http://a.b"},
    {"fxp://a[.]b", "ftp://a.b"},
    {"hxxp[://]a[.]b", "http://a.b"},
    {"evil[dot]com", "evil.com"},
    {"a[DOT]b", "a.b"},
    {"evil{.}com", "evil.com"},
    {"a\\.b", "a.b"},
    {"user[at]mail(.)ru", "user@mail.ru"},
    {"user[@]mail[.]ru", "user@mail.ru"},
    {"user(@)mail{dot}ru", "user@mail.ru"},
    {"example.com[/]path", "example.com/path"},
    {"  1.2.3.4 \n", "1.2.3.4"},
    {"hxxpfoo.com", "hxxpfoo.com"},
    {"[2001:db8::1]", "[2001:db8::1]"},
    {"plain.example", "plain.example"},
    {"evil[[.]]com", "evil.com"},               /* a marker hiding a marker: refanged to the end */
    {"hxxp://a[[[.]]]b/[[.]]", "http://a.b/."}, /* (found by fuzz_ioc in a URL's path) */
    {"", ""},
};

static void refang_table_undoes_defanging(void **state) {
  (void)state;
  size_t n = sizeof refang_cases / sizeof refang_cases[0], bad = 0;
  for (size_t i = 0; i < n; i++) {
    char *out = tq_ioc_refang(refang_cases[i].in);
    assert_non_null(out);
    if (strcmp(out, refang_cases[i].out) != 0) {
      print_error("refang('%s'): want '%s', got '%s'\n", refang_cases[i].in, refang_cases[i].out,
                  out);
      bad++;
    }
    free(out);
  }
  assert_int_equal(bad, 0);
}

static const struct {
  const char *host, *want, *reason;
} regdom_cases[] = {
    {"a.b.example.co.uk", "example.co.uk", NULL},
    {"www.example.com", "example.com", NULL},
    {"example.com", "example.com", NULL},
    {"WWW.Example.COM.", "example.com", NULL},
    {"foo.bar.github.io", "bar.github.io", NULL},
    {"a.b.city.kawasaki.jp", "city.kawasaki.jp", NULL},
    {"www.bücher.de", "xn--bcher-kva.de", NULL},
    {"www[.]evil[.]co[.]uk", NULL, "'www[.]evil[.]co[.]uk': '[' is not allowed"},
    {"co.uk", NULL, "'co.uk' is a public suffix"},
    {"github.io", NULL, "is a public suffix"},
    {"1.2.3.4", NULL, "'1.2.3.4' is an IP address"},
    {"2001:db8::1", NULL, "is an IP address"},
    {"com", NULL, "an FQDN needs at least two labels"},
};

static void registered_domain_table_uses_the_public_suffix_list(void **state) {
  (void)state;
  size_t n = sizeof regdom_cases / sizeof regdom_cases[0], bad = 0;
  for (size_t i = 0; i < n; i++) {
    char *out = NULL;
    tq_err err = {0};
    tq_code rc = tq_ioc_registered_domain(regdom_cases[i].host, &out, &err);
    int ok = regdom_cases[i].want
                 ? rc == TQ_OK && strcmp(out, regdom_cases[i].want) == 0
                 : rc == TQ_EINVAL && strstr(err.msg, regdom_cases[i].reason) != NULL && !out;
    if (!ok) {
      print_error("registered_domain('%s'): got rc=%d '%s'\n", regdom_cases[i].host, rc,
                  rc ? err.msg : out);
      bad++;
    }
    free(out);
  }
  assert_int_equal(bad, 0);
}

static const struct {
  const char *url, *want, *reason;
} url_host_cases[] = {
    {"http://WWW.Example.com:8080/x", "www.example.com", NULL},
    {"hxxps://evil[.]com/a", "evil.com", NULL},
    {"https://[2001:DB8::1]/", "2001:db8::1", NULL},
    {"https://bücher.example/", "xn--bcher-kva.example", NULL},
    {"https://user@1.2.3.4:8443/", "1.2.3.4", NULL},
    {"example.com/path", "example.com", NULL},
    {"gopher://example.com/", NULL, "unknown URL scheme 'gopher'"},
    {"http://exa mple.com/", NULL, "white space in a URL"},
};

static void url_host_table_gives_the_canonical_host(void **state) {
  (void)state;
  size_t n = sizeof url_host_cases / sizeof url_host_cases[0], bad = 0;
  for (size_t i = 0; i < n; i++) {
    char *host = NULL;
    tq_err err = {0};
    tq_code rc = tq_ioc_url_host(url_host_cases[i].url, &host, &err);
    int ok = url_host_cases[i].want
                 ? rc == TQ_OK && strcmp(host, url_host_cases[i].want) == 0
                 : rc == TQ_EINVAL && strstr(err.msg, url_host_cases[i].reason) != NULL && !host;
    if (!ok) {
      print_error("url_host('%s'): got rc=%d '%s'\n", url_host_cases[i].url, rc,
                  rc ? err.msg : host);
      bad++;
    }
    free(host);
  }
  assert_int_equal(bad, 0);
}

static void type_names_round_trip(void **state) {
  (void)state;
  for (int t = TQ_IOC_UNKNOWN + 1; t < TQ_IOC__COUNT; t++)
    assert_int_equal(tq_ioc_type_from_name(tq_ioc_type_name((tq_ioc_type)t)), t);
  assert_string_equal(tq_ioc_type_name(TQ_IOC_IPV4), "IP Address");
  assert_string_equal(tq_ioc_type_name(TQ_IOC_SHA256), "SHA-256");
  assert_string_equal(tq_ioc_type_name(TQ_IOC_EMAIL), "Email Address");
  assert_string_equal(tq_ioc_type_name(TQ_IOC_UNKNOWN), "");
}

static void type_from_name_ignores_case_but_not_spacing(void **state) {
  (void)state;
  assert_int_equal(tq_ioc_type_from_name("ip address"), TQ_IOC_IPV4);
  assert_int_equal(tq_ioc_type_from_name("cidr block"), TQ_IOC_CIDR);
  assert_int_equal(tq_ioc_type_from_name("IPAddress"), TQ_IOC_UNKNOWN);
  assert_int_equal(tq_ioc_type_from_name("Filename"), TQ_IOC_UNKNOWN);
  assert_int_equal(tq_ioc_type_from_name(NULL), TQ_IOC_UNKNOWN);
}

static void normalize_refuses_an_unknown_type(void **state) {
  (void)state;
  char *canon = NULL;
  tq_err err;
  assert_int_equal(tq_ioc_normalize(TQ_IOC_UNKNOWN, "1.2.3.4", &canon, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "not an indicator type"));
  assert_int_equal(tq_ioc_normalize(TQ_IOC__COUNT, "1.2.3.4", &canon, &err), TQ_EINVAL);
  assert_null(canon);
}

static void classify_refuses_a_null_value(void **state) {
  (void)state;
  char *canon = NULL;
  tq_err err;
  assert_int_equal(tq_ioc_classify(NULL, NULL, &canon, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "no value"));
  assert_null(tq_ioc_refang(NULL));
}

static void classify_refuses_a_value_over_8_kib(void **state) {
  (void)state;
  char *big = malloc(8194);
  assert_non_null(big);
  memset(big, 'a', 8193);
  big[8193] = '\0';
  char *canon = NULL;
  tq_err err;
  assert_int_equal(tq_ioc_classify(big, NULL, &canon, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "at most 8192 bytes"));
  /* the value in the message is cut, so the reason still fits */
  assert_non_null(strstr(err.msg, "...': "));
  free(big);
}

static void classify_accepts_a_null_err(void **state) {
  (void)state;
  char *canon = NULL;
  assert_int_equal(tq_ioc_classify("1.2.3.999", NULL, &canon, NULL), TQ_EINVAL);
  assert_int_equal(tq_ioc_classify("1.2.3.4", NULL, &canon, NULL), TQ_OK);
  assert_string_equal(canon, "1.2.3.4");
  free(canon);
}

/* Same inputs from several threads at once give the same answers (no shared mutable state;
 * under ASan/TSan a race would show). */
static void *classify_worker(void *arg) {
  int *bad = arg;
  size_t n = sizeof classify_cases / sizeof classify_cases[0];
  for (int round = 0; round < 20; round++)
    for (size_t i = 0; i < n; i++) {
      tq_ioc_type type;
      char *canon = NULL;
      tq_err err;
      const ioc_case *c = &classify_cases[i];
      tq_code rc = tq_ioc_classify(c->value, &type, &canon, &err);
      if (c->canonical ? (rc != TQ_OK || strcmp(canon, c->canonical) != 0) : rc != TQ_EINVAL)
        (*bad)++;
      free(canon);
    }
  return NULL;
}

static void classify_gives_the_same_answers_from_many_threads(void **state) {
  (void)state;
  pthread_t th[4];
  int bad[4] = {0};
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, classify_worker, &bad[i]), 0);
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(bad[i], 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(classify_table_gives_type_and_canonical_form_or_reason),
      cmocka_unit_test(canonical_form_is_a_fixed_point),
      cmocka_unit_test(failure_reason_starts_with_the_quoted_value),
      cmocka_unit_test(normalize_table_validates_as_the_given_type),
      cmocka_unit_test(refang_table_undoes_defanging),
      cmocka_unit_test(registered_domain_table_uses_the_public_suffix_list),
      cmocka_unit_test(url_host_table_gives_the_canonical_host),
      cmocka_unit_test(type_names_round_trip),
      cmocka_unit_test(type_from_name_ignores_case_but_not_spacing),
      cmocka_unit_test(normalize_refuses_an_unknown_type),
      cmocka_unit_test(classify_refuses_a_null_value),
      cmocka_unit_test(classify_refuses_a_value_over_8_kib),
      cmocka_unit_test(classify_accepts_a_null_err),
      cmocka_unit_test(classify_gives_the_same_answers_from_many_threads),
  };
  return cmocka_run_group_tests_name("ioc", tests, NULL, NULL);
}
