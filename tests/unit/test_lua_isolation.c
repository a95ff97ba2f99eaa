/* test_lua_isolation.c: two plugins in one runtime: each reaches only its own secrets, never
 * the other's, whichever key names it tries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_plugin_cannot_read_another_plugins_secret),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
