/* json.c: the json module (json.decode, json.encode, json.null) and the Lua <-> cJSON
 * conversions the other bindings share (ctx:show, http json bodies, replay files). A table is
 * an array when its keys are exactly 1..n (n > 0); an empty table is an object. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lua_int.h"

#define JSON_MAX_DEPTH 200

/* json.null is the NULL light userdata, so that `v == json.null` works everywhere. */
static void push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }
static int is_null(lua_State *L, int idx) {
  return lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == NULL;
}

/* ---- cJSON -> Lua ------------------------------------------------------------------------- */

static void to_lua_depth(lua_State *L, const cJSON *item, int depth) {
  luaL_checkstack(L, 4, "json: nesting too deep");
  if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
    if (depth > JSON_MAX_DEPTH)
      luaL_error(L, "json: nesting deeper than %d", JSON_MAX_DEPTH);
    int array = cJSON_IsArray(item);
    int n = cJSON_GetArraySize(item);
    lua_createtable(L, array ? n : 0, array ? 0 : n);
    lua_Integer i = 1;
    for (const cJSON *c = item->child; c; c = c->next) {
      to_lua_depth(L, c, depth + 1);
      if (array)
        lua_rawseti(L, -2, i++);
      else
        lua_setfield(L, -2, c->string ? c->string : "");
    }
  } else if (cJSON_IsString(item))
    lua_pushstring(L, item->valuestring);
  else if (cJSON_IsNumber(item)) {
    double d = item->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
      lua_pushinteger(L, (lua_Integer)d);
    else
      lua_pushnumber(L, d);
  } else if (cJSON_IsBool(item))
    lua_pushboolean(L, cJSON_IsTrue(item));
  else
    push_null(L);
}

void json_to_lua(lua_State *L, const cJSON *item) { to_lua_depth(L, item, 0); }

static int decode_protected(lua_State *L) {
  json_to_lua(L, lua_touserdata(L, 1));
  return 1;
}

int json_decode_push(lua_State *L, const char *text, size_t len) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (root == NULL) {
    lua_pushnil(L);
    size_t at = end && end >= text ? (size_t)(end - text) : 0;
    lua_pushfstring(L, "json: invalid JSON at byte %d", (int)at + 1);
    return 2;
  }
  /* json_to_lua may raise (depth, memory): convert under pcall so that root is freed. */
  lua_pushcfunction(L, decode_protected);
  lua_pushlightuserdata(L, root);
  int st = lua_pcall(L, 1, 1, 0);
  cJSON_Delete(root);
  if (st != LUA_OK)
    return lua_error(L);
  return 1;
}

/* ---- Lua -> cJSON ------------------------------------------------------------------------- */

/* The tree is built top-down: each new item is attached to its parent before its own
 * children are encoded, so that on an error freeing the root frees everything. */
typedef struct enc {
  lua_State *L;
  const char *what;
  int seen; /* stack index of the set of tables being encoded (cycle check) */
  cJSON *root;
  char path[256];
} enc;

static void enc_fail(enc *e, const char *why) {
  luaL_error(e->L, "%s: %s at %s", e->what, why, e->path);
}

/* Whether the table at idx is a sequence 1..n with n > 0; *n gets n. */
static int enc_is_array(lua_State *L, int idx, size_t *n) {
  size_t count = 0;
  lua_Integer max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return 0;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k > max)
      max = k;
    count++;
  }
  *n = count;
  return count > 0 && (size_t)max == count;
}

/* Appends ".key" or "[i]" to the path while a child is encoded; returns the old length. */
static size_t enc_path_push(enc *e, const char *key, lua_Integer i) {
  size_t len = strlen(e->path);
  if (key)
    snprintf(e->path + len, sizeof e->path - len, ".%s", key);
  else
    snprintf(e->path + len, sizeof e->path - len, "[%lld]", (long long)i);
  return len;
}

static void enc_attach(enc *e, cJSON *parent, const char *key, cJSON *item) {
  if (item == NULL)
    enc_fail(e, "out of memory");
  if (parent == NULL)
    e->root = item;
  else if (cJSON_IsArray(parent))
    cJSON_AddItemToArray(parent, item);
  else if (!cJSON_AddItemToObject(parent, key, item)) {
    cJSON_Delete(item);
    enc_fail(e, "out of memory");
  }
}

static void enc_into(enc *e, int idx, int depth, cJSON *parent, const char *key);

static void enc_table(enc *e, int idx, int depth, cJSON *parent, const char *key) {
  lua_State *L = e->L;
  if (depth > JSON_MAX_DEPTH)
    enc_fail(e, "nesting too deep");
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->seen) != LUA_TNIL)
    enc_fail(e, "a cycle (a table contains itself)");
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, e->seen);
  size_t n;
  int array = enc_is_array(L, idx, &n);
  cJSON *out = array ? cJSON_CreateArray() : cJSON_CreateObject();
  enc_attach(e, parent, key, out);
  for (size_t i = 1; array && i <= n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    size_t old = enc_path_push(e, NULL, (lua_Integer)i);
    enc_into(e, lua_gettop(L), depth + 1, out, NULL);
    e->path[old] = '\0';
    lua_pop(L, 1);
  }
  if (!array)
    lua_pushnil(L);
  while (!array && lua_next(L, idx)) {
    int kt = lua_type(L, -2);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
      enc_fail(e, "a key that is not a string or a number");
    lua_pushvalue(L, -2);
    const char *k = lua_tostring(L, -1); /* converts the copy, never the key itself */
    size_t old = enc_path_push(e, k, 0);
    enc_into(e, lua_gettop(L) - 1, depth + 1, out, k);
    e->path[old] = '\0';
    lua_pop(L, 2);
  }
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, e->seen);
}

static void enc_into(enc *e, int idx, int depth, cJSON *parent, const char *key) {
  lua_State *L = e->L;
  luaL_checkstack(L, 8, "json: nesting too deep");
  switch (lua_type(L, idx)) {
  case LUA_TNIL: enc_attach(e, parent, key, cJSON_CreateNull()); return;
  case LUA_TBOOLEAN: enc_attach(e, parent, key, cJSON_CreateBool(lua_toboolean(L, idx))); return;
  case LUA_TNUMBER: {
    lua_Number d = lua_tonumber(L, idx);
    if (!isfinite(d))
      enc_fail(e, "a number that is not finite");
    enc_attach(e, parent, key, cJSON_CreateNumber(d));
    return;
  }
  case LUA_TSTRING: enc_attach(e, parent, key, cJSON_CreateString(lua_tostring(L, idx))); return;
  case LUA_TLIGHTUSERDATA:
    if (is_null(L, idx)) {
      enc_attach(e, parent, key, cJSON_CreateNull());
      return;
    }
    break;
  case LUA_TTABLE:
    if (unfreeze(L, idx)) { /* a read-only view (obj, config): encode what it shows */
      enc_table(e, lua_gettop(L), depth, parent, key);
      lua_pop(L, 1);
    } else
      enc_table(e, lua_absindex(L, idx), depth, parent, key);
    return;
  case LUA_TUSERDATA:
    if (secret_test(L, idx, NULL, NULL))
      enc_fail(e, "a secret cannot be encoded");
    break;
  default: break;
  }
  enc_fail(e, lua_pushfstring(L, "cannot encode a %s value", luaL_typename(L, idx)));
}

/* Argument 1: the enc; argument 2: the value. */
static int enc_protected(lua_State *L) {
  enc *e = lua_touserdata(L, 1);
  lua_newtable(L);
  e->seen = lua_gettop(L);
  enc_into(e, 2, 0, NULL, NULL);
  return 0;
}

cJSON *json_from_lua(lua_State *L, int idx, const char *what) {
  enc e = {.L = L, .what = what, .path = "$"};
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, enc_protected);
  lua_pushlightuserdata(L, &e);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    cJSON_Delete(e.root);
    lua_error(L);
  }
  return e.root;
}

/* ---- the module --------------------------------------------------------------------------- */

static int l_json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  return json_decode_push(L, s, len);
}

static int l_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  cJSON *j = json_from_lua(L, 1, "json.encode");
  char *text = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  if (text == NULL)
    return luaL_error(L, "json.encode: out of memory");
  lua_pushstring(L, text);
  free(text);
  return 1;
}

int luaopen_tq_json(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"decode", l_json_decode}, {"encode", l_json_encode}, {NULL, NULL}};
  luaL_newlib(L, fns);
  push_null(L);
  lua_setfield(L, -2, "null");
  return 1;
}
