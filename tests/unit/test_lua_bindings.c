/* test_lua_bindings.c: the ioc, stix and tq modules as a script sees them (tests/lua/
 * bindings.lua), tq against a fresh library in a temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../lua/lua_test.h"

static tq_lua_status run_entry(tq_lib *lib, const char *entry, char *msg, size_t n) {
  tq_lua_opts o;
  tq_lua_opts_init(&o);
  o.lib = lib;
  tq_lua *rt = NULL;
  assert_int_equal(tq_lua_new(&o, &rt, NULL), TQ_OK);
  tq_lua_limits lim = {0};
  tq_lua_script *s = lt_load(rt, "bindings-test", "bindings.lua", lim, NULL, 0, NULL);
  assert_non_null(s);
  tq_lua_run *run = lt_start(rt, s, entry, NULL);
  assert_int_equal(tq_lua_run_all(rt, NULL), TQ_OK);
  tq_lua_status st = tq_lua_run_status(run);
  snprintf(msg, n, "%s", tq_lua_run_message(run));
  tq_lua_run_free(run);
  tq_lua_script_free(s);
  tq_lua_free(rt);
  return st;
}

static void expect_ok(tq_lib *lib, const char *entry) {
  char msg[1024];
  if (run_entry(lib, entry, msg, sizeof msg) != TQ_LUA_OK)
    fail_msg("%s: %s", entry, msg);
}

static void test_ioc_module(void **state) {
  (void)state;
  expect_ok(NULL, "ioc");
}

static void test_stix_ids(void **state) {
  (void)state;
  expect_ok(NULL, "stix");
}

static void test_tq_reads_the_library(void **state) {
  (void)state;
  char path[] = "/tmp/tq_lua_lib_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  unlink(path);
  tq_lib *lib = NULL;
  tq_err err = {0};
  if (tq_lib_open(path, TQ_LIB_OPEN_CREATE, &lib, &err) != TQ_OK)
    fail_msg("%s", err.msg);
  const char *sources[] = {"lua-test"};
  tq_object_in in = {.value = "45.83.122.166", .sources = sources, .n_sources = 1};
  if (tq_lib_object_put(lib, &in, NULL, NULL, &err) != TQ_OK)
    fail_msg("%s", err.msg);
  expect_ok(lib, "tq_read");
  tq_lib_close(lib);
  unlink(path);
}

static void test_tq_without_a_library_is_a_clear_error(void **state) {
  (void)state;
  char msg[1024];
  assert_int_equal(run_entry(NULL, "tq_without_library", msg, sizeof msg), TQ_LUA_ERROR);
  assert_non_null(strstr(msg, "tq.get: no threat library in this runtime"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ioc_module),
      cmocka_unit_test(test_stix_ids),
      cmocka_unit_test(test_tq_reads_the_library),
      cmocka_unit_test(test_tq_without_a_library_is_a_clear_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
