/* time.c: clocks and the two text forms of time tqhost reads and writes. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tqhost/core.h"

int64_t tq_time_now(void) {
  const char *fixed = getenv("TQHOST_NOW");
  if (fixed && *fixed) {
    int64_t t = 0;
    if (tq_time_parse(fixed, &t, NULL, NULL) == TQ_OK)
      return t;
  }
  return (int64_t)time(NULL);
}

int64_t tq_time_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t tq_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly n digits at *p into *out and advances *p. */
static int read_digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i]))
      return 0;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 1;
}

static int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

tq_code tq_time_parse(const char *s, int64_t *out_s, int32_t *out_us, tq_err *err) {
  const char *p = s;
  int y, mo, d, h = 0, mi = 0, se = 0;
  int32_t us = 0;
  if (s == NULL || !read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &mo) ||
      *p++ != '-' || !read_digits(&p, 2, &d))
    goto bad;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    p++;
    if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi) || *p++ != ':' ||
        !read_digits(&p, 2, &se))
      goto bad;
    if (*p == '.') {
      p++;
      int ndig = 0;
      while (isdigit((unsigned char)*p)) {
        if (ndig < 6)
          us = us * 10 + (*p - '0');
        ndig++;
        p++;
      }
      if (ndig == 0)
        goto bad;
      for (int i = ndig; i < 6; i++)
        us *= 10;
    }
  }
  int offset = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p == '-' ? -1 : 1, oh, om;
    p++;
    if (!read_digits(&p, 2, &oh))
      goto bad;
    if (*p == ':')
      p++;
    if (!read_digits(&p, 2, &om))
      goto bad;
    offset = sign * (oh * 3600 + om * 60);
  }
  if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
    goto bad;
  *out_s = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
  if (out_us)
    *out_us = us;
  return TQ_OK;
bad:
  return tq_err_set(err, TQ_EINVAL,
                    "'%s' is not a time (expected YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or RFC 3339)",
                    s ? s : "");
}

void tq_time_format(int64_t t, char out[20]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm);
}

void tq_time_format_iso(int64_t t, int32_t us, char out[28]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  char base[20];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 28, "%s.%06dZ", base, (int)us);
}
