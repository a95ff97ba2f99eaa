/* test_lua_pattern.c: the sandbox's budgeted string.find, match, gmatch and gsub
 * (src/lua/pattern.c) give what Lua's own give, on random subjects and patterns (errors
 * included), so that a plugin sees no difference. The budget itself is tested in
 * test_lua_sandbox.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>

#include "../lua/lua_test.h"

void pattern_install(lua_State *L); /* src/lua/lua_int.h */

static void test_the_budgeted_matcher_agrees_with_lua(void **state) {
  (void)state;
  lua_State *L = luaL_newstate();
  assert_non_null(L);
  *(void **)lua_getextraspace(L) = NULL; /* not a run: nothing charged */
  luaL_openlibs(L);
  if (luaL_loadfile(L, lt_path("pattern_diff.lua")) != LUA_OK)
    fail_msg("%s", lua_tostring(L, -1));
  lua_getglobal(L, "string");
  lua_newtable(L);
  pattern_install(L);
  lua_pushinteger(L, 20000);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK)
    fail_msg("%s", lua_tostring(L, -1));
  if (!lua_isnil(L, -1))
    fail_msg("%s", lua_tostring(L, -1));
  lua_close(L);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_the_budgeted_matcher_agrees_with_lua),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
