/* log.c: the log module (log.debug/info/warn/error) and the line every script message goes
 * out as (print too): tq_log with the plugin, the run and the object. Secrets passed as
 * arguments print as "********", and the text of the script's secrets is masked again in
 * the final line in case it got there some other way. */
#include <stdlib.h>
#include <string.h>

#include "lua_int.h"

#define LOG_MAX_ARGS 64

void log_format(lua_State *L, int first) {
  int top = lua_gettop(L);
  if (top < first) {
    lua_pushliteral(L, "");
    return;
  }
  if (top - first + 1 > LOG_MAX_ARGS)
    luaL_error(L, "log: more than %d arguments", LOG_MAX_ARGS);
  tq_lua_run *run = run_of(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, run->rt->fmt_ref);
  for (int i = first; i <= top; i++) {
    if (secret_test(L, i, NULL, NULL))
      lua_pushliteral(L, SECRET_MASK);
    else if (i == first && lua_type(L, i) != LUA_TSTRING)
      luaL_tolstring(L, i, NULL);
    else
      lua_pushvalue(L, i);
  }
  lua_call(L, top - first + 1, 1);
}

void log_emit(lua_State *L, tq_log_level level, const char *text) {
  if (!tq_log_enabled(level))
    return;
  tq_lua_run *run = run_of(L);
  const tq_lua_script *s = run ? run->script : NULL;
  char *safe = redact_dup(s, text);
  tq_log(level, LUA_PART, "plugin=%s run=%llu object=%s %s", s ? s->name : "?",
         (unsigned long long)(run ? run->id : 0), run && run->object ? run->object : "",
         safe ? safe : "(out of memory)");
  free(safe);
}

static int log_at(lua_State *L, tq_log_level level) {
  run_check(L, "log");
  if (!tq_log_enabled(level))
    return 0;
  log_format(L, 1);
  log_emit(L, level, lua_tostring(L, -1));
  return 0;
}

static int l_log_debug(lua_State *L) { return log_at(L, TQ_LOG_DEBUG); }
static int l_log_info(lua_State *L) { return log_at(L, TQ_LOG_INFO); }
static int l_log_warn(lua_State *L) { return log_at(L, TQ_LOG_WARN); }
static int l_log_error(lua_State *L) { return log_at(L, TQ_LOG_ERROR); }

int luaopen_tq_log(lua_State *L) {
  static const luaL_Reg fns[] = {{"debug", l_log_debug},
                                 {"info", l_log_info},
                                 {"warn", l_log_warn},
                                 {"error", l_log_error},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
