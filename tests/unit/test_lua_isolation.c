/* test_lua_isolation.c: two plugins in one runtime: each reaches only its own secrets, never
 * the other's, whichever key names it tries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h> /* after the headers it needs */

#include "../lua/lua_test.h"

static const char *shown_secrets(tq_lua_run *run) {
  const tq_changeset *cs = tq_lua_run_changeset(run);
  assert_non_null(cs);
  assert_non_null(cs->show);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cs->show, "secrets");
  assert_true(cJSON_IsString(v));
  return v->valuestring;
}

static void test_a_plugin_cannot_read_another_plugins_secret(void **state) {
  (void)state;
  tq_lua_opts o;
  tq_lua_opts_init(&o);
  tq_lua *rt = NULL;
  tq_err err;
  assert_int_equal(tq_lua_new(&o, &rt, &err), TQ_OK);
  tq_lua_limits lim = {0};
  const tq_lua_kv alpha[] = {{"api_key", "alpha-secret-111111"}};
  const tq_lua_kv bravo[] = {{"token", "bravo-secret-222222"}};
  tq_lua_script *a = lt_load(rt, "alpha", "isolation.lua", lim, alpha, 1, NULL);
  tq_lua_script *b = lt_load(rt, "bravo", "isolation.lua", lim, bravo, 1, NULL);
  assert_non_null(a);
  assert_non_null(b);
  tq_lua_run *ra = lt_start(rt, a, "probe", NULL);
  tq_lua_run *rb = lt_start(rt, b, "probe", NULL);
  assert_int_equal(tq_lua_run_all(rt, &err), TQ_OK);
  assert_int_equal(tq_lua_run_status(ra), TQ_LUA_OK);
  assert_int_equal(tq_lua_run_status(rb), TQ_LUA_OK);
  assert_string_equal(shown_secrets(ra), "api_key");
  assert_string_equal(shown_secrets(rb), "token");
  tq_lua_run_free(ra);
  tq_lua_run_free(rb);
  tq_lua_script_free(a);
  tq_lua_script_free(b);
  tq_lua_free(rt);
}

/* Runs entry of script s alone and writes its shown field key as text into out (a string
 * as it is, a number in decimal, a boolean as true/false). */
static void shown_field(tq_lua *rt, tq_lua_script *s, const char *entry, const char *key, char *out,
                        size_t n) {
  tq_lua_run *run = lt_start(rt, s, entry, NULL);
  tq_err err;
  assert_int_equal(tq_lua_run_all(rt, &err), TQ_OK);
  if (tq_lua_run_status(run) != TQ_LUA_OK)
    fail_msg("%s: %s %s", entry, tq_lua_status_name(tq_lua_run_status(run)),
             tq_lua_run_message(run));
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(tq_lua_run_changeset(run)->show, key);
  if (cJSON_IsString(v))
    snprintf(out, n, "%s", v->valuestring);
  else if (cJSON_IsNumber(v))
    snprintf(out, n, "%d", v->valueint);
  else
    snprintf(out, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
  tq_lua_run_free(run);
}

/* pairs on string, json, http, table, math and ctx.config hands out nothing writable: a run
 * cannot change them for the runs after it. */
static void test_pairs_hands_out_no_shared_table(void **state) {
  (void)state;
  tq_lua *rt = NULL;
  tq_err err;
  assert_int_equal(tq_lua_new(NULL, &rt, &err), TQ_OK);
  tq_lua_limits lim = {0};
  tq_lua_script *s = lt_load(rt, "alpha", "isolation.lua", lim, NULL, 0, NULL);
  assert_non_null(s);
  char written[256], seen[256];
  shown_field(rt, s, "pairs_backdoor", "written", written, sizeof written);
  shown_field(rt, s, "pairs_check", "seen", seen, sizeof seen);
  assert_string_equal(written, "");
  assert_string_equal(seen, "");
  tq_lua_script_free(s);
  tq_lua_free(rt);
}

/* The responses' metatable is hidden: a run can neither poison resp:json for later runs nor
 * give responses a finaliser that would hang the runtime's close. */
static void test_the_response_metatable_is_out_of_reach(void **state) {
  (void)state;
  alarm(120); /* a finaliser that loops would hang tq_lua_free */
  char replay[4096];
  snprintf(replay, sizeof replay, "%s", lt_path("replay.json"));
  tq_lua_opts o;
  tq_lua_opts_init(&o);
  o.replay_file = replay;
  tq_lua *rt = NULL;
  tq_err err;
  assert_int_equal(tq_lua_new(&o, &rt, &err), TQ_OK);
  tq_lua_limits lim = {0};
  tq_lua_script *s = lt_load(rt, "alpha", "isolation.lua", lim, NULL, 0, NULL);
  assert_non_null(s);
  char reached[16], score[64];
  shown_field(rt, s, "resp_poison", "reached", reached, sizeof reached);
  shown_field(rt, s, "resp_check", "score", score, sizeof score);
  assert_string_equal(reached, "false");
  assert_string_equal(score, "8");
  tq_lua_script_free(s);
  tq_lua_free(rt);
  alarm(0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_plugin_cannot_read_another_plugins_secret),
      cmocka_unit_test(test_pairs_hands_out_no_shared_table),
      cmocka_unit_test(test_the_response_metatable_is_out_of_reach),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
