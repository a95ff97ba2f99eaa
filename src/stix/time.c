/* time.c: STIX timestamps as instants with nanosecond precision (core's tq_time keeps only
 * microseconds). The lenient parser is for objects from feeds; stix_time_parse_strict is the
 * exact form that a pattern's t'...' literal must have. */
#include <stdio.h>
#include <string.h>

#include "stix_int.h"

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads exactly n digits at s[*pos] into *out. */
static int digits(const char *s, size_t len, size_t *pos, int n, int *out) {
  int v = 0;
  if (*pos + (size_t)n > len)
    return 0;
  for (int i = 0; i < n; i++) {
    char c = s[*pos + (size_t)i];
    if (!is_digit(c))
      return 0;
    v = v * 10 + (c - '0');
  }
  *pos += (size_t)n;
  *out = v;
  return 1;
}

static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : dm[m - 1];
}

/* The shared parser. strict: 'T', 1+ fraction digits when '.', 'Z' required (STIXPattern.g4
 * TimestampLiteral); lenient: see tq_stix_time_parse. Returns a static reason or NULL. */
const char *stix_time_scan(const char *s, size_t len, int strict, tq_stix_time *out) {
  size_t p = 0;
  int y, mo, d, h, mi, se;
  if (!digits(s, len, &p, 4, &y) || p >= len || s[p++] != '-' || !digits(s, len, &p, 2, &mo) ||
      p >= len || s[p++] != '-' || !digits(s, len, &p, 2, &d))
    return "expected YYYY-MM-DD";
  if (p >= len || !(s[p] == 'T' || (!strict && (s[p] == 't' || s[p] == ' '))))
    return "expected 'T' after the date";
  p++;
  if (!digits(s, len, &p, 2, &h) || p >= len || s[p++] != ':' || !digits(s, len, &p, 2, &mi) ||
      p >= len || s[p++] != ':' || !digits(s, len, &p, 2, &se))
    return "expected HH:MM:SS after 'T'";
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
    return "no such date";
  if (h > 23 || mi > 59 || se > 60)
    return "no such time of day";
  int32_t nanos = 0;
  if (p < len && s[p] == '.') {
    int nd = 0;
    for (p++; p < len && is_digit(s[p]); p++, nd++)
      if (nd < 9)
        nanos = nanos * 10 + (s[p] - '0');
    if (nd == 0)
      return "expected digits after '.'";
    for (; nd < 9; nd++)
      nanos *= 10;
  }
  int offset = 0;
  if (p < len && (s[p] == 'Z' || (!strict && s[p] == 'z'))) {
    p++;
  } else if (!strict && p < len && (s[p] == '+' || s[p] == '-')) {
    int sign = s[p] == '-' ? -1 : 1, oh, om;
    p++;
    if (!digits(s, len, &p, 2, &oh))
      return "expected HH:MM in the UTC offset";
    if (p < len && s[p] == ':')
      p++;
    if (!digits(s, len, &p, 2, &om) || oh > 23 || om > 59)
      return "expected HH:MM in the UTC offset";
    offset = sign * (oh * 3600 + om * 60);
  } else if (strict) {
    return "expected 'Z' (UTC) at the end";
  }
  if (p != len)
    return "unexpected text after the time";
  out->seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
  out->nanos = nanos;
  return NULL;
}

tq_code tq_stix_time_parse(const char *s, tq_stix_time *out, tq_err *err) {
  if (s == NULL)
    return tq_err_set(err, TQ_EINVAL, "timestamp is missing");
  const char *why = stix_time_scan(s, strlen(s), 0, out);
  if (why)
    return tq_err_set(err, TQ_EINVAL, "'%.64s' is not a STIX timestamp: %s", s, why);
  return TQ_OK;
}

int tq_stix_time_cmp(tq_stix_time a, tq_stix_time b) {
  if (a.seconds != b.seconds)
    return a.seconds < b.seconds ? -1 : 1;
  return (a.nanos > b.nanos) - (a.nanos < b.nanos);
}

/* civil_from_days by Howard Hinnant: the inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

void tq_stix_time_format(tq_stix_time t, char out[TQ_STIX_TIME_LEN]) {
  int64_t days = t.seconds / 86400, rem = t.seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t y;
  int m, d;
  civil_from_days(days, &y, &m, &d);
  int32_t ns = t.nanos;
  char frac[12];
  if (ns % 1000000 == 0)
    snprintf(frac, sizeof frac, "%03d", (int)(ns / 1000000));
  else if (ns % 1000 == 0)
    snprintf(frac, sizeof frac, "%06d", (int)(ns / 1000));
  else
    snprintf(frac, sizeof frac, "%09d", (int)ns);
  char text[80]; /* room for any int64 year; STIX years have 4 digits and fit out */
  snprintf(text, sizeof text, "%04lld-%02d-%02dT%02d:%02d:%02d.%sZ", (long long)y, m, d,
           (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), frac);
  tq_strlcpy(out, text, TQ_STIX_TIME_LEN);
}
