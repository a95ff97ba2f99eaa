/* test.c: `tqhost plugin test DIR`: the plugin's busted specs run inside the host. Busted
 * (Debian's lua-busted for Lua 5.4) runs in a plain, unsandboxed lua_State of its own; the
 * specs reach the real runtime through require "tqhost.test", whose T.run loads the plugin's
 * script into a fresh tq_lua in replay mode, runs one entry to completion and returns what it
 * did as a Lua table (contract in docs/plugins.md). */
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record.h"
#include "tqhost/plugin.h"

#define BUSTED_PATH "/usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua"

/* What T.run needs, held by the module as a light userdata upvalue. */
typedef struct test_host {
  tq_plugin *plugin;           /* loaded from the absolute folder */
  char parent[PATH_MAX + 8];   /* <plugin folder>/..: its lib/ holds the shared modules */
  char own_lib[PATH_MAX + 8];  /* <plugin folder>/lib: an installed package's modules, first */
  char lib_dir[PATH_MAX + 16]; /* parent/lib */
  rec_session *rec;            /* --record: T.run records its replay file; NULL */
} test_host;

/* ---- Lua table -> C inputs --------------------------------------------------------------- */

/* Collected strings of one T.run call; everything is freed by spec_free. */
typedef struct spec_in {
  tq_lua_kv *config, *secrets;
  size_t n_config, n_secrets;
  tq_object obj;
  const char *entry;
  const char *replay;
} spec_in;

static void kv_list_free(tq_lua_kv *kv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free((char *)kv[i].key);
    free((char *)kv[i].value);
  }
  free(kv);
}

static void spec_free(spec_in *s) {
  kv_list_free(s->config, s->n_config);
  kv_list_free(s->secrets, s->n_secrets);
  for (size_t i = 0; i < s->obj.n_attrs; i++) {
    free(s->obj.attrs[i].name);
    free(s->obj.attrs[i].value);
  }
  free(s->obj.attrs);
}

/* The value at idx as text for ctx.config: strings, numbers, booleans. */
static const char *text_of(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TBOOLEAN)
    return lua_toboolean(L, idx) ? "true" : "false";
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER)
    return lua_tostring(L, idx);
  return NULL;
}

static void kv_set(lua_State *L, tq_lua_kv **arr, size_t *n, const char *key, const char *v) {
  for (size_t i = 0; i < *n; i++) {
    if (strcmp((*arr)[i].key, key) == 0) {
      free((char *)(*arr)[i].value);
      (*arr)[i].value = tq_strdup(v);
      return;
    }
  }
  tq_lua_kv *grown = realloc(*arr, (*n + 1) * sizeof *grown);
  if (grown == NULL)
    luaL_error(L, "T.run: out of memory");
  *arr = grown;
  grown[*n] = (tq_lua_kv){tq_strdup(key), tq_strdup(v)};
  (*n)++;
}

/* Reads the table field name of the table at idx (string keys -> text values) into arr. */
static void read_kv(lua_State *L, int idx, const char *name, tq_lua_kv **arr, size_t *n) {
  if (lua_getfield(L, idx, name) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const char *v = text_of(L, -1);
      if (lua_type(L, -2) != LUA_TSTRING || v == NULL)
        luaL_error(L, "T.run: %s.%s must be a string, number or boolean", name,
                   lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
      kv_set(L, arr, n, lua_tostring(L, -2), v);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "T.run: %s must be a table", name);
  }
  lua_pop(L, 1);
}

static const char *opt_field(lua_State *L, int idx, const char *name) {
  lua_getfield(L, idx, name);
  const char *s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1); /* strings of the spec table stay alive: the table is referenced */
  return s;
}

static void read_attrs(lua_State *L, int idx, tq_object *obj) {
  if (lua_getfield(L, idx, "attributes") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  size_t n = (size_t)luaL_len(L, -1);
  obj->attrs = calloc(n ? n : 1, sizeof *obj->attrs);
  if (obj->attrs == NULL)
    luaL_error(L, "T.run: out of memory");
  for (size_t i = 0; i < n; i++) {
    lua_geti(L, -1, (lua_Integer)i + 1);
    const char *name = lua_istable(L, -1) ? opt_field(L, -1, "name") : NULL;
    const char *value = lua_istable(L, -1) ? opt_field(L, -1, "value") : NULL;
    if (name == NULL || value == NULL)
      luaL_error(L, "T.run: object.attributes[%d] needs name and value", (int)i + 1);
    obj->attrs[obj->n_attrs++] = (tq_attr){.name = tq_strdup(name), .value = tq_strdup(value)};
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void read_object(lua_State *L, int idx, tq_object *obj) {
  if (lua_getfield(L, idx, "object") != LUA_TTABLE)
    luaL_error(L, "T.run: object must be a table");
  int o = lua_gettop(L);
  obj->object_type = (char *)opt_field(L, o, "type");
  obj->indicator_type = (char *)opt_field(L, o, "indicator_type");
  obj->value = (char *)opt_field(L, o, "value");
  obj->description = (char *)opt_field(L, o, "description");
  const char *status = opt_field(L, o, "status");
  obj->status = status ? tq_lib_status_from_name(status) : TQ_STATUS_ACTIVE;
  if (obj->status == 0)
    luaL_error(L, "T.run: object.status '%s' is not a status", status);
  lua_getfield(L, o, "score");
  obj->score = (int)luaL_optinteger(L, -1, 0);
  obj->score_manual = -1;
  obj->score_generated = obj->score;
  lua_pop(L, 1);
  if (obj->value == NULL)
    luaL_error(L, "T.run: object.value is required");
  read_attrs(L, o, obj);
  lua_pop(L, 1); /* the object table stays referenced by the spec table */
}

/* ---- C results -> Lua table --------------------------------------------------------------- */

static void push_json(lua_State *L, const cJSON *j);

static void push_json_container(lua_State *L, const cJSON *j) {
  lua_newtable(L);
  const cJSON *e;
  lua_Integer i = 1;
  cJSON_ArrayForEach(e, j) {
    if (cJSON_IsNull(e)) {
      i++;
      continue;
    }
    push_json(L, e);
    if (cJSON_IsArray(j))
      lua_rawseti(L, -2, i++);
    else
      lua_setfield(L, -2, e->string);
  }
}

static void push_json(lua_State *L, const cJSON *j) {
  luaL_checkstack(L, 4, "T.run: show is nested too deeply");
  if (cJSON_IsString(j))
    lua_pushstring(L, j->valuestring);
  else if (cJSON_IsBool(j))
    lua_pushboolean(L, cJSON_IsTrue(j));
  else if (cJSON_IsNumber(j) && j->valuedouble == floor(j->valuedouble) &&
           fabs(j->valuedouble) < 9007199254740992.0) /* 2^53: a defined conversion */
    lua_pushinteger(L, (lua_Integer)j->valuedouble);
  else if (cJSON_IsNumber(j))
    lua_pushnumber(L, j->valuedouble);
  else if (cJSON_IsArray(j) || cJSON_IsObject(j))
    push_json_container(L, j);
  else
    lua_pushnil(L);
}

static void set_s(lua_State *L, const char *key, const char *v) {
  if (v == NULL)
    return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, key);
}

static void push_attrs(lua_State *L, const tq_cs_attr *a, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 2);
    set_s(L, "name", a[i].name);
    set_s(L, "value", a[i].value);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static void push_changes(lua_State *L, const tq_changeset *cs) {
  lua_createtable(L, 0, 6);
  push_attrs(L, cs->attrs, cs->n_attrs);
  lua_setfield(L, -2, "attributes");
  lua_createtable(L, (int)cs->n_tags, 0);
  for (size_t i = 0; i < cs->n_tags; i++) {
    lua_pushstring(L, cs->tags[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "tags");
  lua_createtable(L, (int)cs->n_links, 0);
  for (size_t i = 0; i < cs->n_links; i++) {
    lua_createtable(L, 0, 4);
    set_s(L, "object_type", cs->links[i].object_type);
    set_s(L, "value", cs->links[i].value);
    set_s(L, "link_type", cs->links[i].link_type);
    set_s(L, "description", cs->links[i].description);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "links");
  lua_createtable(L, (int)cs->n_indicators, 0);
  for (size_t i = 0; i < cs->n_indicators; i++) {
    lua_createtable(L, 0, 3);
    set_s(L, "type", cs->indicators[i].indicator_type);
    set_s(L, "value", cs->indicators[i].value);
    push_attrs(L, cs->indicators[i].attrs, cs->indicators[i].n_attrs);
    lua_setfield(L, -2, "attributes");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "indicators");
  if (cs->score >= 0) {
    lua_pushinteger(L, cs->score);
    lua_setfield(L, -2, "score");
  }
  set_s(L, "status", cs->status);
}

static void push_result(lua_State *L, const tq_op_result *res) {
  lua_createtable(L, 0, 5);
  set_s(L, "status", tq_lua_status_name(res->status));
  set_s(L, "message", res->message && *res->message ? res->message : NULL);
  set_s(L, "traceback", res->traceback && *res->traceback ? res->traceback : NULL);
  push_changes(L, &res->cs);
  lua_setfield(L, -2, "changes");
  if (res->cs.show) {
    push_json(L, res->cs.show);
    lua_setfield(L, -2, "show");
  }
}

/* ---- T.run -------------------------------------------------------------------------------- */

/* Manifest defaults for the non-secret fields the spec did not give. */
static void apply_defaults(lua_State *L, const tq_plugin *p, spec_in *in) {
  for (size_t i = 0; i < p->n_fields; i++) {
    const tq_plugin_field *f = &p->fields[i];
    if (f->def == NULL || f->type == TQ_FIELD_PASSWORD)
      continue;
    int given = 0;
    for (size_t k = 0; k < in->n_config && !given; k++)
      given = strcmp(in->config[k].key, f->key) == 0;
    if (!given)
      kv_set(L, &in->config, &in->n_config, f->key, f->def);
  }
}

/* The spec's typed config (integer, number, boolean, list) checked and normalised as `plugin
 * configure` does ("yes" -> "true"), so that ctx.config has the manifest's types; a value of
 * the wrong type raises naming it. */
static void normalize_config(lua_State *L, const tq_plugin *p, spec_in *in) {
  for (size_t i = 0; i < in->n_config; i++) {
    const tq_plugin_field *f = tq_plugin_field_find(p, in->config[i].key);
    char *norm = NULL;
    tq_err e;
    if (f == NULL || tq_field_kind(f->type) == TQ_LUA_TEXT)
      continue; /* strings, urls and selects reach the script as given: specs test its checks */
    if (tq_plugin_field_check(f, in->config[i].value, &norm, &e) != TQ_OK)
      luaL_error(L, "T.run: config %s", e.msg);
    free((char *)in->config[i].value);
    in->config[i].value = norm;
  }
}

/* Reads the spec table (argument 3), runs and pushes the result table, or raises. Called
 * under lua_pcall by t_run so that spec_in is freed on every path. */
static int t_run_body(lua_State *L) {
  test_host *h = lua_touserdata(L, 1);
  spec_in *in = lua_touserdata(L, 2);
  const tq_plugin *p = h->plugin;
  in->entry = opt_field(L, 3, "entry");
  in->replay = opt_field(L, 3, "replay");
  if (in->entry == NULL)
    return luaL_error(L, "T.run: entry is required");
  tq_err perr;
  if (in->replay && tq_path_inside(p->dir, in->replay, NULL, &perr) == TQ_EDENIED)
    return luaL_error(L, "T.run: replay: %s", perr.msg);
  read_kv(L, 3, "config", &in->config, &in->n_config);
  read_kv(L, 3, "secrets", &in->secrets, &in->n_secrets);
  read_object(L, 3, &in->obj);
  apply_defaults(L, p, in);
  normalize_config(L, p, in);
  tq_plugin_config cfg = {.config = in->config,
                          .n_config = in->n_config,
                          .secrets = in->secrets,
                          .n_secrets = in->n_secrets};
  const tq_plugin_op *op = NULL;
  for (size_t i = 0; i < p->n_ops && op == NULL; i++)
    if (strcmp(p->ops[i].entry, in->entry) == 0)
      op = &p->ops[i];
  tq_plugin_op fallback = {.name = (char *)in->entry, .entry = (char *)in->entry};
  tq_op_request rq = {.plugin = p,
                      .op = op ? op : &fallback,
                      .obj = &in->obj,
                      .cfg = &cfg,
                      .plugins_dir = h->parent,
                      .replay_file = in->replay};
  tq_op_result res;
  tq_err err = {0};
  tq_code rc = h->rec ? rec_run(h->rec, &rq, &res, &err) : tq_plugin_op_run(&rq, &res, &err);
  if (rc != TQ_OK)
    return luaL_error(L, "T.run: %s", err.msg);
  push_result(L, &res);
  tq_op_result_free(&res);
  return 1;
}

static int t_run(lua_State *L) {
  test_host *h = lua_touserdata(L, lua_upvalueindex(1));
  luaL_checktype(L, 1, LUA_TTABLE);
  spec_in in = {0};
  lua_pushcfunction(L, t_run_body);
  lua_pushlightuserdata(L, h);
  lua_pushlightuserdata(L, &in);
  lua_pushvalue(L, 1);
  int st = lua_pcall(L, 3, 1, 0);
  spec_free(&in);
  if (st != LUA_OK)
    return lua_error(L);
  return 1;
}

static int open_test_module(lua_State *L) {
  test_host *h = lua_touserdata(L, lua_upvalueindex(1));
  lua_createtable(L, 0, 3);
  lua_pushlightuserdata(L, h);
  lua_pushcclosure(L, t_run, 1);
  lua_setfield(L, -2, "run");
  lua_createtable(L, 0, 3);
  set_s(L, "name", h->plugin->name);
  set_s(L, "label", h->plugin->label);
  set_s(L, "version", h->plugin->version);
  lua_setfield(L, -2, "plugin");
  return 1;
}

/* ---- the busted host ---------------------------------------------------------------------- */

/* package.path gets busted's folders and the plugins' lib/; preload gets tqhost.test. */
static void setup_state(lua_State *L, test_host *h) {
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushfstring(L, BUSTED_PATH ";%s/?.lua;%s/?/init.lua;%s/?.lua;%s/?/init.lua;", h->own_lib,
                  h->own_lib, h->lib_dir, h->lib_dir);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "preload");
  lua_pushlightuserdata(L, h);
  lua_pushcclosure(L, open_test_module, 1);
  lua_setfield(L, -2, "tqhost.test");
  lua_pop(L, 2);
  lua_createtable(L, 1, 1); /* arg: busted sees "busted spec" */
  lua_pushliteral(L, "busted");
  lua_rawseti(L, -2, 0);
  lua_pushliteral(L, "spec");
  lua_rawseti(L, -2, 1);
  lua_setglobal(L, "arg");
}

static int run_busted(lua_State *L, tq_err *err) {
  /* Not a tail call: busted's runner inspects its caller's frame (debug.getinfo(2)). */
  static const char boot[] = "local run = require('busted.runner')\nrun({standalone = false})\n";
  if (luaL_loadbuffer(L, boot, sizeof boot - 1, "=tqhost plugin test") != LUA_OK ||
      lua_pcall(L, 0, 0, 0) != LUA_OK) {
    tq_err_set(err, TQ_EINVAL, "busted: %s", lua_tostring(L, -1));
    return -1;
  }
  return 0; /* busted returns only when every test passed; it exits the process otherwise */
}

static int plugin_test(const char *dir, rec_session *rec, tq_err *err) {
  char abs[PATH_MAX], cwd[PATH_MAX];
  test_host h = {.rec = rec};
  if (realpath(dir, abs) == NULL || getcwd(cwd, sizeof cwd) == NULL) {
    tq_err_set(err, TQ_ENOTFOUND, "%s: no such plugin folder", dir);
    return -1;
  }
  if (access("/usr/share/lua/5.4/busted/runner.lua", R_OK) != 0) {
    tq_err_set(err, TQ_ENOTFOUND, "busted for Lua 5.4 is not installed (apt install lua-busted)");
    return -1;
  }
  if (tq_plugin_load(abs, &h.plugin, NULL, err) != TQ_OK)
    return -1;
  if (rec && rec_session_check(rec, h.plugin, err) != TQ_OK) {
    tq_plugin_free(h.plugin);
    return -1;
  }
  snprintf(h.parent, sizeof h.parent, "%s/..", abs);
  snprintf(h.lib_dir, sizeof h.lib_dir, "%s/lib", h.parent);
  /* Busted's own require reads lib/ unsandboxed: nothing there may lead out of it. */
  snprintf(h.own_lib, sizeof h.own_lib, "%s/lib", abs);
  tq_code rc = tq_path_tree_inside(h.lib_dir, err);
  if (rc == TQ_OK || rc == TQ_ENOTFOUND)
    rc = tq_path_tree_inside(h.own_lib, err);
  if (rc != TQ_OK && rc != TQ_ENOTFOUND) {
    tq_plugin_free(h.plugin);
    return -1;
  }
  int status = -1;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    tq_err_set(err, TQ_ENOMEM, "cannot create a Lua state for busted");
  } else if (chdir(abs) != 0) {
    tq_err_set(err, TQ_EIO, "%s: cannot enter the folder", abs);
  } else {
    setup_state(L, &h);
    status = run_busted(L, err);
    if (chdir(cwd) != 0)
      tq_log(TQ_LOG_WARN, "plugin", "cannot return to %s", cwd);
  }
  if (L)
    lua_close(L);
  tq_plugin_free(h.plugin);
  return status;
}

int tq_plugin_test(const char *dir, tq_err *err) { return plugin_test(dir, NULL, err); }

int tq_plugin_test_record(const char *dir, const tq_plugin_record_opts *o, tq_err *err) {
  rec_session *rec = NULL;
  if (o == NULL || o->base_url == NULL) {
    tq_err_set(err, TQ_EINVAL, "--record needs a BASE_URL");
    return -1;
  }
  if (rec_session_new(o->base_url, o->force, o->set, o->n_set, &rec, err) != TQ_OK)
    return -1;
  int status = plugin_test(dir, rec, err);
  rec_session_free(rec);
  return status;
}
