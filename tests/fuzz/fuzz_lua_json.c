/* fuzz_lua_json.c: libFuzzer harness for the Lua json module (lua/json.c) in a Lua state:
 * json.decode of the input, and when it decodes, encode then decode again gives the same
 * encoding (a round trip is stable). */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_int.h"

static lua_State *L;

/* decode, encode, decode: the two decoded values are equal (key order is Lua's and may differ
 * between the two encodings). */
static const char ROUND_TRIP[] =
    "local json, text = ...\n"
    "local function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) == 'number' then\n"
    "    -- cJSON prints a float with 15 digits when that reads back within DBL_EPSILON\n"
    "    return a == b or math.abs(a - b) <= 4e-16 * math.max(math.abs(a), math.abs(b))\n"
    "  end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local v, why = json.decode(text)\n"
    "if v == nil then return 'refused' end\n"
    "local ok, a = pcall(json.encode, v)\n"
    "if not ok then return 'unencodable' end\n"
    "local v2 = json.decode(a)\n"
    "if not same(v, v2) then error('round trip changed the value: ' .. a) end\n"
    "if json.encode(v2) == nil then error('re-encoding failed') end\n"
    "return 'ok'\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = luaL_newstate();
  luaL_openlibs(L);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int top = lua_gettop(L);
  if (luaL_loadbuffer(L, ROUND_TRIP, sizeof ROUND_TRIP - 1, "=round_trip") != LUA_OK)
    abort();
  luaL_requiref(L, "json", luaopen_tq_json, 0);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, top);
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
