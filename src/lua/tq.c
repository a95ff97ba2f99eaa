/* tq.c: the tq module: read-only access to the threat library (include/tqhost/library.h)
 * through the tq_lib given to the runtime: tq.get, tq.search (a bounded subset of tq_query),
 * and the reference names (indicator types, statuses). Views are frozen tables shaped like
 * an entry's obj. */
#include <stdlib.h>
#include <string.h>

#include "lua_int.h"

#define SEARCH_DEFAULT 20
#define SEARCH_MAX 100

static tq_lib *lib_check(lua_State *L, const char *fn) {
  tq_lua_run *run = run_check(L, fn);
  if (run->rt->opts.lib == NULL)
    luaL_error(L, "%s: no threat library in this runtime", fn);
  return run->rt->opts.lib;
}

static int view_protected(lua_State *L) {
  obj_push(L, lua_touserdata(L, 1), 0);
  return 1;
}

/* Reads object id and pushes its view; on a library error frees everything and raises. */
static void push_view(lua_State *L, tq_lib *lib, int64_t id, const char *fn) {
  tq_object *obj = NULL;
  tq_err err;
  if (tq_lib_object_get(lib, id, &obj, &err) != TQ_OK)
    luaL_error(L, "%s: %s", fn, err.msg);
  /* obj_push may raise (memory): push under pcall so that obj is freed on every path */
  lua_pushcfunction(L, view_protected);
  lua_pushlightuserdata(L, obj);
  int st = lua_pcall(L, 1, 1, 0);
  tq_object_free(obj);
  if (st != LUA_OK)
    lua_error(L);
}

/* tq.get(type, value): type is an indicator type ("IP Address") or an object type
 * ("malware"). Returns the view or nil when absent. */
static int l_tq_get(lua_State *L) {
  tq_lib *lib = lib_check(L, "tq.get");
  const char *type = luaL_checkstring(L, 1);
  const char *value = luaL_checkstring(L, 2);
  const char *otype = NULL, *itype = NULL;
  if (tq_lib_object_type_valid(type))
    otype = type;
  else if ((itype = tq_lib_indicator_type_canon(type, NULL)) == NULL)
    return luaL_error(L, "tq.get: '%s' is neither an object type nor an indicator type", type);
  int64_t id = 0;
  tq_err err;
  tq_code rc = tq_lib_object_find(lib, otype, itype, value, &id, &err);
  if (rc == TQ_ENOTFOUND || rc == TQ_EINVAL) {
    lua_pushnil(L);
    return 1;
  }
  if (rc != TQ_OK)
    return luaL_error(L, "tq.get: %s", err.msg);
  push_view(L, lib, id, "tq.get");
  return 1;
}

/* Copies the search options (arg 1) into q; names are checked by tq_query_validate. Every
 * string is strdup'd so that tq_query_free owns it. Returns the limit, or -1 with msg set. */
static int search_query(lua_State *L, tq_query *q, char *msg, size_t msglen) {
  static const char *const known[] = {"type",   "indicator_type", "status",    "tag",
                                      "source", "score_min",      "score_max", "attribute",
                                      "value",  "limit",          NULL};
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    int ok = 0;
    for (int i = 0; known[i] && lua_type(L, -1) == LUA_TSTRING; i++)
      ok |= strcmp(known[i], lua_tostring(L, -1)) == 0;
    if (!ok) {
      snprintf(msg, msglen, "tq.search: unknown option '%s'", luaL_tolstring(L, -1, NULL));
      lua_pop(L, 2);
      return -1;
    }
  }
  const char *s;
#define OPT_STR(key) (lua_getfield(L, 1, key), s = lua_tostring(L, -1), lua_pop(L, 1), s)
  if (OPT_STR("type") && (q->object_type = tq_strdup(s)) == NULL)
    goto nomem;
  if (OPT_STR("indicator_type")) {
    q->indicator_types = calloc(1, sizeof *q->indicator_types);
    if (!q->indicator_types || !(q->indicator_types[0] = tq_strdup(s)))
      goto nomem;
    q->n_indicator_types = 1;
  }
  if (OPT_STR("status")) {
    int st = tq_lib_status_from_name(s);
    if (st == 0) {
      snprintf(msg, msglen, "tq.search: '%s' is not a status", s);
      return -1;
    }
    q->statuses = calloc(1, sizeof *q->statuses);
    if (!q->statuses)
      goto nomem;
    q->statuses[0] = st;
    q->n_statuses = 1;
  }
  if (OPT_STR("tag") && (q->tag = tq_strdup(s)) == NULL)
    goto nomem;
  if (OPT_STR("source") && (q->source = tq_strdup(s)) == NULL)
    goto nomem;
  if (OPT_STR("attribute") && (q->attr_name = tq_strdup(s)) == NULL)
    goto nomem;
  if (OPT_STR("value") && (q->attr_value = tq_strdup(s)) == NULL)
    goto nomem;
#undef OPT_STR
  lua_getfield(L, 1, "score_min");
  q->score_min = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : -1;
  lua_getfield(L, 1, "score_max");
  q->score_max = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : -1;
  lua_getfield(L, 1, "limit");
  lua_Integer limit = lua_isnumber(L, -1) ? lua_tointeger(L, -1) : SEARCH_DEFAULT;
  lua_pop(L, 3);
  if (limit < 1 || limit > SEARCH_MAX) {
    snprintf(msg, msglen, "tq.search: limit must be 1..%d", SEARCH_MAX);
    return -1;
  }
  return (int)limit;
nomem:
  snprintf(msg, msglen, "tq.search: out of memory");
  return -1;
}

/* The ids matching q, at most max. On error msg is set and -1 returned. */
static int search_ids(tq_lib *lib, const tq_query *q, int64_t *ids, size_t max, size_t *n,
                      char *msg, size_t msglen) {
  tq_err err;
  tq_cursor *c = NULL;
  if (tq_query_validate(lib, q, &err) != TQ_OK ||
      tq_lib_cursor_open(lib, q, 0, &c, &err) != TQ_OK ||
      tq_lib_cursor_next(c, ids, max, n, &err) != TQ_OK) {
    tq_lib_cursor_close(c);
    snprintf(msg, msglen, "tq.search: %.400s", err.msg);
    return -1;
  }
  tq_lib_cursor_close(c);
  return 0;
}

/* tq.search{indicator_type=, status=, tag=, source=, score_min=, score_max=, attribute=,
 * value=, type=, limit=} -> list of views (at most limit, default 20, max 100). */
static int l_tq_search(lua_State *L) {
  tq_lib *lib = lib_check(L, "tq.search");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  char msg[512];
  tq_query q;
  tq_query_init(&q);
  int64_t ids[SEARCH_MAX];
  size_t n = 0;
  int limit = search_query(L, &q, msg, sizeof msg);
  int rc = limit < 0 ? -1 : search_ids(lib, &q, ids, (size_t)limit, &n, msg, sizeof msg);
  tq_query_free(&q);
  if (rc < 0)
    return luaL_error(L, "%s", msg);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    push_view(L, lib, ids[i], "tq.search");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int l_tq_indicator_types(lua_State *L) {
  lua_newtable(L);
  const char *name;
  for (size_t i = 0; (name = tq_lib_indicator_type_at(i)) != NULL; i++) {
    lua_pushstring(L, name);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int l_tq_statuses(lua_State *L) {
  lua_newtable(L);
  const char *name;
  for (int i = 1; (name = tq_lib_status_name(i)) != NULL; i++) {
    lua_pushstring(L, name);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

int luaopen_tq_tq(lua_State *L) {
  static const luaL_Reg fns[] = {{"get", l_tq_get},
                                 {"search", l_tq_search},
                                 {"indicator_types", l_tq_indicator_types},
                                 {"statuses", l_tq_statuses},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
