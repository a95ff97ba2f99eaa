/* test_lua_memory.c: memory that C spends on a run's behalf (json.encode's text, ctx:show's
 * tree, change-set copies, http json bodies) is charged to the run's budget: a run with a
 * 16 MiB budget that asks for hundreds of MiB is refused with the budget error and the
 * process's peak RSS stays far below what it asked for. And numbers past any sense (1e300,
 * -1, NaN, math.huge) handed to the host are refused or clamped, never converted undefined
 * (the sanitizer build aborts on that) (tests/lua/memory.lua). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>

#include "../lua/lua_test.h"

/* The process asks for 400 MiB in each wide entry; far below that passes. */
#define RSS_GROWTH_MAX_KB (150 * 1024)

typedef struct fixture {
  tq_lua *rt;
  tq_lua_script *s;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  tq_err err = {0};
  assert_int_equal(tq_lua_new(NULL, &f->rt, &err), TQ_OK);
  tq_lua_limits lim = {.memory = 16u << 20, .instructions = 500000000, .timeout_ms = 60000};
  f->s = lt_load(f->rt, "memory-test", "memory.lua", lim, NULL, 0, NULL);
  assert_non_null(f->s);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tq_lua_script_free(f->s);
  tq_lua_free(f->rt);
  free(f);
  return 0;
}

/* A field of /proc/self/status in kB. */
static long status_kb(const char *field) {
  FILE *fp = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  size_t n = strlen(field);
  while (fp && fgets(line, sizeof line, fp))
    if (strncmp(line, field, n) == 0 && line[n] == ':')
      kb = strtol(line + n + 1, NULL, 10);
  if (fp)
    fclose(fp);
  return kb;
}

/* Resets the peak RSS to the current one (Linux >= 4.0) and returns the current RSS. */
static long hwm_reset(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY);
  if (fd >= 0) {
    if (write(fd, "5", 1) != 1)
      fail_msg("cannot reset VmHWM");
    close(fd);
  }
  return status_kb("VmRSS");
}

/* Runs entry alone; returns it finished (the caller frees it). */
static tq_lua_run *run_one(fixture *f, const char *entry) {
  tq_lua_run *run = lt_start(f->rt, f->s, entry, NULL);
  tq_err err = {0};
  assert_int_equal(tq_lua_run_all(f->rt, &err), TQ_OK);
  return run;
}

/* entry must be killed by the memory budget while the peak RSS grows by less than
 * RSS_GROWTH_MAX_KB; a well-behaved run after it still works. */
static void expect_refused_bounded(fixture *f, const char *entry) {
  long base = hwm_reset();
  tq_lua_run *run = run_one(f, entry);
  long peak = status_kb("VmHWM");
  print_message("%s: peak RSS %ld kB over %ld kB\n", entry, peak - base, base);
  if (tq_lua_run_status(run) != TQ_LUA_KILLED ||
      strstr(tq_lua_run_message(run), "memory budget exceeded") == NULL)
    fail_msg("%s: status %s message '%s', wanted killed by the memory budget", entry,
             tq_lua_status_name(tq_lua_run_status(run)), tq_lua_run_message(run));
  tq_lua_run_free(run);
  assert_true(peak - base < RSS_GROWTH_MAX_KB);
  tq_lua_run *good = run_one(f, "ok");
  assert_int_equal(tq_lua_run_status(good), TQ_LUA_OK);
  tq_lua_run_free(good);
}

static void test_json_encode_past_the_budget_is_refused(void **state) {
  expect_refused_bounded(*state, "encode_wide");
}

static void test_ctx_show_past_the_budget_is_refused(void **state) {
  expect_refused_bounded(*state, "show_wide");
}

static void test_a_returned_show_past_the_budget_is_refused(void **state) {
  expect_refused_bounded(*state, "return_wide");
}

static void test_change_set_indicators_past_the_budget_are_refused(void **state) {
  expect_refused_bounded(*state, "changeset_wide");
}

static void test_change_set_attributes_and_tags_past_the_budget_are_refused(void **state) {
  expect_refused_bounded(*state, "attributes_wide");
}

static void test_an_http_json_body_past_the_budget_is_refused(void **state) {
  expect_refused_bounded(*state, "http_json_wide");
}

/* The sanitizer build's leak check at exit is what fails when the text is lost. */
static void test_json_encode_leaks_nothing_when_the_push_fails(void **state) {
  fixture *f = *state;
  const char *entries[] = {"encode_push_fails", "encode_push_fails_late"};
  for (int i = 0; i < 2; i++) {
    tq_lua_run *run = run_one(f, entries[i]);
    if (tq_lua_run_status(run) != TQ_LUA_KILLED ||
        strstr(tq_lua_run_message(run), "memory budget exceeded") == NULL)
      fail_msg("%s: status %s message '%s'", entries[i], tq_lua_status_name(tq_lua_run_status(run)),
               tq_lua_run_message(run));
    tq_lua_run_free(run);
  }
}

static void test_a_replaced_or_failed_show_gives_its_memory_back(void **state) {
  tq_lua_run *run = run_one(*state, "show_replaced");
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  tq_lua_run_free(run);
}

static void test_json_encode_writes_what_cjson_wrote(void **state) {
  tq_lua_run *run = run_one(*state, "encode_exact");
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  const cJSON *text = cJSON_GetObjectItem(tq_lua_run_changeset(run)->show, "text");
  assert_true(cJSON_IsString(text));
  cJSON *back = cJSON_Parse(text->valuestring);
  assert_non_null(back);
  assert_string_equal(cJSON_GetObjectItem(back, "a")->valuestring, "q\"\\\n\t\1z");
  assert_int_equal(cJSON_GetObjectItem(back, "n")->valueint, 3);
  assert_true(cJSON_GetObjectItem(back, "f")->valuedouble == 0.5);
  assert_true(cJSON_GetObjectItem(back, "neg")->valuedouble == -2.0);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(back, "list")), 3);
  assert_true(cJSON_IsNull(cJSON_GetArrayItem(cJSON_GetObjectItem(back, "list"), 2)));
  assert_true(cJSON_IsObject(cJSON_GetObjectItem(back, "empty")));
  assert_non_null(strstr(text->valuestring, "\"big\":1152921504606846976")); /* exact */
  assert_non_null(strstr(text->valuestring, "\"nul\":\"a\\u0000b\""));
  assert_non_null(strstr(text->valuestring, "\"neg\":-2"));
  cJSON_Delete(back);
  tq_lua_run_free(run);
}

/* The show of entry is a list of 4 strings; each must contain its want. */
static void expect_list(fixture *f, const char *entry, const char *const want[4]) {
  tq_lua_run *run = run_one(f, entry);
  if (tq_lua_run_status(run) != TQ_LUA_OK)
    fail_msg("%s: %s", entry, tq_lua_run_message(run));
  const cJSON *show = tq_lua_run_changeset(run)->show;
  assert_int_equal(cJSON_GetArraySize(show), 4);
  for (int i = 0; i < 4; i++) {
    const char *got = cJSON_GetArrayItem(show, i)->valuestring;
    if (got == NULL || strstr(got, want[i]) == NULL)
      fail_msg("%s[%d]: got '%s', wanted '%s'", entry, i + 1, got ? got : "?", want[i]);
  }
  tq_lua_run_free(run);
}

static void test_http_timeouts_past_any_sense_are_refused_or_clamped(void **state) {
  /* 1e300 and math.huge are "as long as the run": the request goes on (and finds no network
   * here); -1 and NaN are refused. */
  const char *const want[4] = {"has no network", "timeout must be a number of seconds >= 0",
                               "timeout must be a number of seconds >= 0", "has no network"};
  expect_list(*state, "http_timeouts", want);
}

static void test_sleeps_past_any_sense_are_refused(void **state) {
  const char *const want[4] = {"ms must be a number of milliseconds from 0 to 1e12",
                               "ms must be a number of milliseconds from 0 to 1e12",
                               "ms must be a number of milliseconds from 0 to 1e12",
                               "ms must be a number of milliseconds from 0 to 1e12"};
  expect_list(*state, "sleeps", want);
}

static void test_scores_past_any_sense_are_refused(void **state) {
  const char *const want[4] = {"out of range 0..10", "out of range 0..10", "out of range 0..10",
                               "out of range 0..10"};
  expect_list(*state, "scores", want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_json_encode_past_the_budget_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ctx_show_past_the_budget_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_returned_show_past_the_budget_is_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_change_set_indicators_past_the_budget_are_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_change_set_attributes_and_tags_past_the_budget_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_an_http_json_body_past_the_budget_is_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_json_encode_leaks_nothing_when_the_push_fails, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_a_replaced_or_failed_show_gives_its_memory_back, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_json_encode_writes_what_cjson_wrote, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_timeouts_past_any_sense_are_refused_or_clamped,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_sleeps_past_any_sense_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scores_past_any_sense_are_refused, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
