/* test_schedule.c: workflow schedules: ThreatQ's periods, daily and weekly times in UTC, the
 * stored form, and the next due time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h> /* after the headers it needs */

#include "tqhost/workflow.h"

static int64_t at(const char *s) {
  int64_t t = 0;
  assert_int_equal(tq_time_parse(s, &t, NULL, NULL), TQ_OK);
  return t;
}

static void test_periods_are_threatqs_six(void **state) {
  (void)state;
  tq_schedule s;
  tq_err err;
  const char *ok[] = {"1h", "6h", "24h", "2d", "14d", "30d"};
  const int64_t secs[] = {3600, 21600, 86400, 172800, 1209600, 2592000};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(tq_schedule_from_cli(ok[i], NULL, NULL, NULL, &s, &err), TQ_OK);
    assert_int_equal(s.every_s, secs[i]);
  }
  assert_int_equal(tq_schedule_from_cli("5h", NULL, NULL, NULL, &s, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "1h, 6h, 24h, 2d, 14d, 30d"));
}

static void test_every_is_due_one_period_after(void **state) {
  (void)state;
  tq_schedule s = {.kind = TQ_SCHED_EVERY, .every_s = 21600};
  assert_int_equal(tq_schedule_next(&s, at("2026-03-02 10:00:00")), at("2026-03-02 16:00:00"));
}

static void test_daily_is_today_or_tomorrow(void **state) {
  (void)state;
  tq_schedule s;
  tq_err err;
  assert_int_equal(tq_schedule_from_cli(NULL, "02:30", NULL, NULL, &s, &err), TQ_OK);
  assert_int_equal(tq_schedule_next(&s, at("2026-03-02 01:00:00")), at("2026-03-02 02:30:00"));
  assert_int_equal(tq_schedule_next(&s, at("2026-03-02 02:30:00")), at("2026-03-03 02:30:00"));
  assert_int_equal(tq_schedule_next(&s, at("2026-12-31 23:00:00")), at("2027-01-01 02:30:00"));
  assert_int_equal(tq_schedule_from_cli(NULL, "24:00", NULL, NULL, &s, &err), TQ_EINVAL);
}

static void test_weekly_finds_the_next_weekday(void **state) {
  (void)state;
  tq_schedule s;
  tq_err err;
  /* 2026-03-02 is a Monday */
  assert_int_equal(tq_schedule_from_cli(NULL, NULL, "friday", "08:00", &s, &err), TQ_OK);
  assert_int_equal(tq_schedule_next(&s, at("2026-03-02 10:00:00")), at("2026-03-06 08:00:00"));
  assert_int_equal(tq_schedule_from_cli(NULL, NULL, "Mon", "08:00", &s, &err), TQ_OK);
  assert_int_equal(tq_schedule_next(&s, at("2026-03-02 07:59:00")), at("2026-03-02 08:00:00"));
  assert_int_equal(tq_schedule_next(&s, at("2026-03-02 08:00:00")), at("2026-03-09 08:00:00"));
  assert_int_equal(tq_schedule_from_cli(NULL, NULL, "0", "00:00", &s, &err), TQ_OK);
  assert_int_equal(s.weekday, 0); /* Sunday */
  assert_int_equal(tq_schedule_from_cli(NULL, NULL, "someday", "08:00", &s, &err), TQ_EINVAL);
}

static void test_stored_form_round_trips(void **state) {
  (void)state;
  tq_schedule in[3] = {{.kind = TQ_SCHED_EVERY, .every_s = 3600},
                       {.kind = TQ_SCHED_DAILY, .hour = 2, .minute = 5},
                       {.kind = TQ_SCHED_WEEKLY, .weekday = 3, .hour = 23, .minute = 59}};
  for (int i = 0; i < 3; i++) {
    char text[32];
    tq_schedule back;
    tq_schedule_format(&in[i], text, sizeof text);
    assert_int_equal(tq_schedule_parse(text, &back, NULL), TQ_OK);
    assert_int_equal(back.kind, in[i].kind);
    assert_int_equal(back.every_s, in[i].every_s);
    assert_int_equal(back.weekday, in[i].weekday);
    assert_int_equal(back.hour, in[i].hour);
    assert_int_equal(back.minute, in[i].minute);
  }
  tq_schedule none;
  assert_int_equal(tq_schedule_parse(NULL, &none, NULL), TQ_OK);
  assert_int_equal(tq_schedule_next(&none, 12345), 0);
  assert_int_equal(tq_schedule_parse("hourly-ish", &none, NULL), TQ_ECORRUPT);
}

static void test_two_schedules_at_once_are_refused(void **state) {
  (void)state;
  tq_schedule s;
  tq_err err;
  assert_int_equal(tq_schedule_from_cli("1h", "02:00", NULL, NULL, &s, &err), TQ_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_periods_are_threatqs_six),
      cmocka_unit_test(test_every_is_due_one_period_after),
      cmocka_unit_test(test_daily_is_today_or_tomorrow),
      cmocka_unit_test(test_weekly_finds_the_next_weekday),
      cmocka_unit_test(test_stored_form_round_trips),
      cmocka_unit_test(test_two_schedules_at_once_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
