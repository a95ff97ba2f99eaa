/* schedule.c: ThreatQ's workflow schedules (every 1h..30d, daily at a time, weekly on a day
 * at a time; UTC), their stored and spoken forms, and the next due time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tqhost/workflow.h"

static const char *const DAYS[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                    "Thursday", "Friday", "Saturday"};
static const struct {
  const char *text;
  int64_t seconds;
} PERIODS[] = {{"1h", 3600},   {"6h", 21600},    {"24h", 86400},
               {"2d", 172800}, {"14d", 1209600}, {"30d", 2592000}};

static tq_code parse_hhmm(const char *s, int *h, int *m, tq_err *err) {
  int a = -1, b = -1, used = 0;
  if (s == NULL || sscanf(s, "%2d:%2d%n", &a, &b, &used) != 2 || s[used] != '\0' || a < 0 ||
      a > 23 || b < 0 || b > 59)
    return tq_err_set(err, TQ_EINVAL, "'%s' is not a time of day HH:MM (00:00-23:59, UTC)",
                      s ? s : "");
  *h = a;
  *m = b;
  return TQ_OK;
}

static int parse_day(const char *s) {
  for (int i = 0; i < 7; i++)
    if (strcasecmp(s, DAYS[i]) == 0 || (strncasecmp(s, DAYS[i], 3) == 0 && strlen(s) == 3))
      return i;
  if (s[0] >= '0' && s[0] <= '6' && s[1] == '\0')
    return s[0] - '0';
  return -1;
}

tq_code tq_schedule_from_cli(const char *every, const char *daily, const char *weekly_day,
                             const char *weekly_time, tq_schedule *out, tq_err *err) {
  memset(out, 0, sizeof *out);
  int given = (every != NULL) + (daily != NULL) + (weekly_day != NULL);
  if (given > 1)
    return tq_err_set(err, TQ_EINVAL, "give one of --every, --daily or --weekly");
  if (every) {
    for (size_t i = 0; i < sizeof PERIODS / sizeof PERIODS[0]; i++)
      if (strcmp(every, PERIODS[i].text) == 0) {
        out->kind = TQ_SCHED_EVERY;
        out->every_s = PERIODS[i].seconds;
        return TQ_OK;
      }
    return tq_err_set(err, TQ_EINVAL, "--every '%s': one of 1h, 6h, 24h, 2d, 14d, 30d", every);
  }
  if (daily) {
    out->kind = TQ_SCHED_DAILY;
    return parse_hhmm(daily, &out->hour, &out->minute, err);
  }
  if (weekly_day) {
    out->kind = TQ_SCHED_WEEKLY;
    out->weekday = parse_day(weekly_day);
    if (out->weekday < 0)
      return tq_err_set(err, TQ_EINVAL, "--weekly '%s': a day name (Monday...) or 0-6", weekly_day);
    return parse_hhmm(weekly_time, &out->hour, &out->minute, err);
  }
  return TQ_OK;
}

tq_code tq_schedule_parse(const char *text, tq_schedule *out, tq_err *err) {
  memset(out, 0, sizeof *out);
  if (text == NULL || *text == '\0')
    return TQ_OK;
  long long secs = 0;
  int d = 0, h = 0, m = 0, used = 0;
  if (sscanf(text, "every:%lld%n", &secs, &used) == 1 && text[used] == '\0' && secs > 0) {
    out->kind = TQ_SCHED_EVERY;
    out->every_s = secs;
    return TQ_OK;
  }
  if (sscanf(text, "daily:%d:%d%n", &h, &m, &used) == 2 && text[used] == '\0' && h >= 0 && h < 24 &&
      m >= 0 && m < 60) {
    out->kind = TQ_SCHED_DAILY;
    out->hour = h;
    out->minute = m;
    return TQ_OK;
  }
  if (sscanf(text, "weekly:%d:%d:%d%n", &d, &h, &m, &used) == 3 && text[used] == '\0' && d >= 0 &&
      d < 7 && h >= 0 && h < 24 && m >= 0 && m < 60) {
    out->kind = TQ_SCHED_WEEKLY;
    out->weekday = d;
    out->hour = h;
    out->minute = m;
    return TQ_OK;
  }
  return tq_err_set(err, TQ_ECORRUPT, "stored schedule '%s' is not understood", text);
}

void tq_schedule_format(const tq_schedule *s, char *out, size_t n) {
  switch (s->kind) {
  case TQ_SCHED_EVERY: snprintf(out, n, "every:%lld", (long long)s->every_s); break;
  case TQ_SCHED_DAILY: snprintf(out, n, "daily:%02d:%02d", s->hour, s->minute); break;
  case TQ_SCHED_WEEKLY:
    snprintf(out, n, "weekly:%d:%02d:%02d", s->weekday, s->hour, s->minute);
    break;
  default: snprintf(out, n, "%s", "");
  }
}

void tq_schedule_describe(const tq_schedule *s, char *out, size_t n) {
  switch (s->kind) {
  case TQ_SCHED_EVERY:
    if (s->every_s % 86400 == 0 && s->every_s >= 172800)
      snprintf(out, n, "every %lldd", (long long)(s->every_s / 86400));
    else
      snprintf(out, n, "every %lldh", (long long)(s->every_s / 3600));
    break;
  case TQ_SCHED_DAILY: snprintf(out, n, "daily at %02d:%02d UTC", s->hour, s->minute); break;
  case TQ_SCHED_WEEKLY:
    snprintf(out, n, "weekly on %s at %02d:%02d UTC", DAYS[s->weekday], s->hour, s->minute);
    break;
  default: snprintf(out, n, "manual");
  }
}

int64_t tq_schedule_next(const tq_schedule *s, int64_t after) {
  if (s->kind == TQ_SCHED_EVERY)
    return after + s->every_s;
  if (s->kind != TQ_SCHED_DAILY && s->kind != TQ_SCHED_WEEKLY)
    return 0;
  int64_t day = after >= 0 ? after / 86400 : (after - 86399) / 86400;
  int64_t at = (int64_t)s->hour * 3600 + (int64_t)s->minute * 60;
  for (int64_t k = 0; k <= 8; k++) {
    int64_t t = (day + k) * 86400 + at;
    int weekday = (int)(((day + k) % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    if (t > after && (s->kind == TQ_SCHED_DAILY || weekday == s->weekday))
      return t;
  }
  return 0; /* not reached */
}
