/* stix.c: the stix module: STIX identifiers through include/tqhost/stix.h. stix.id(type)
 * mints a random UUIDv4 id; stix.id(type, name) a deterministic UUIDv5 one in tqhost's
 * namespace; stix.sco_id(type, value [, property]) the id STIX 2.1 prescribes for a simple
 * cyber observable. */
#include "tqhost/stix.h"

#include "lua_int.h"

static int push_id(lua_State *L, tq_code rc, const char *id, const tq_err *err) {
  if (rc != TQ_OK) {
    lua_pushnil(L);
    lua_pushstring(L, err->msg);
    return 2;
  }
  lua_pushstring(L, id);
  return 1;
}

static int l_stix_id(lua_State *L) {
  const char *type = luaL_checkstring(L, 1);
  const char *name = luaL_optstring(L, 2, NULL);
  char id[TQ_STIX_ID_MAX];
  tq_err err;
  tq_code rc = name ? tq_stix_id_tqhost(type, name, id, &err) : tq_stix_id_random(type, id, &err);
  return push_id(L, rc, id, &err);
}

static int l_stix_sco_id(lua_State *L) {
  const char *type = luaL_checkstring(L, 1);
  const char *value = luaL_checkstring(L, 2);
  const char *prop = luaL_optstring(L, 3, "value");
  char id[TQ_STIX_ID_MAX];
  tq_err err;
  tq_code rc = tq_stix_id_sco_value(type, prop, value, id, &err);
  return push_id(L, rc, id, &err);
}

int luaopen_tq_stix(lua_State *L) {
  static const luaL_Reg fns[] = {{"id", l_stix_id}, {"sco_id", l_stix_sco_id}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
