/* runtime.c: the lua_State of a tq_lua and its sandbox: the accounting allocator, the budget
 * hook, the read-only shared base (safe globals, frozen library tables), require limited to
 * host modules and the lib dir, text-only load, and script loading. The scheduler lives in
 * run.c, the modules in the bind files. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lualib.h>

#include "lua_int.h"

#define MAX_SCRIPT_BYTES (4u << 20)
#define MAX_MODULE_NAME 128
#define DEFAULT_STATE_MEMORY ((size_t)1 << 30)

static char frozen_key; /* light userdata key of the real table in a proxy's metatable */
static char view_key;   /* light userdata key of the real table inside a view */
static char name_key;   /* light userdata key of a view's name */

/* ---- allocator and budgets ---------------------------------------------------------------- */

/* Small blocks (strings, tables, closures: most of what a run allocates, and freed by the
 * thousand at each collection) are kept on free lists per 16-byte size class, up to
 * POOL_MAX_BYTES in all, rather than going back to malloc, whose own caches hold only a few
 * blocks per size. A block's class follows from the size Lua gives with it (osize is always
 * the block's current size). Sanitizer builds use malloc for every block, so that a use after
 * free is still caught. */
#define POOL_MAX_BYTES ((size_t)4 << 20)
#if defined(__SANITIZE_ADDRESS__)
#define POOL_ON 0
#else
#define POOL_ON 1
#endif

typedef struct pool_block {
  struct pool_block *next;
} pool_block;

static size_t pool_class(size_t n) { return (n + POOL_GRAIN - 1) / POOL_GRAIN; }

static void *pool_get(tq_lua *rt, size_t n) {
  size_t c = pool_class(n);
  pool_block *b = rt->pool[c];
  if (b) {
    rt->pool[c] = b->next;
    rt->pool_bytes -= c * POOL_GRAIN;
    /* The blocks were freed by a GC sweep a while ago: fetch the next one's link now, so the
     * next pop does not wait for memory (that miss was most of this function's time). */
    if (b->next)
      __builtin_prefetch(b->next, 1);
    return b;
  }
  return malloc(c * POOL_GRAIN);
}

static void pool_put(tq_lua *rt, void *p, size_t n) {
  size_t c = pool_class(n);
  if (!POOL_ON || rt->pool_bytes + c * POOL_GRAIN > POOL_MAX_BYTES) {
    free(p);
    return;
  }
  pool_block *b = p;
  b->next = rt->pool[c];
  rt->pool[c] = b;
  rt->pool_bytes += c * POOL_GRAIN;
}

static void pool_free_all(tq_lua *rt) {
  for (size_t c = 0; c <= POOL_CLASSES; c++) {
    while (rt->pool[c]) {
      pool_block *b = rt->pool[c];
      rt->pool[c] = b->next;
      free(b);
    }
  }
  rt->pool_bytes = 0;
}

/* free/malloc/realloc of a block of the State: small blocks through the pool. */
static void block_free(tq_lua *rt, void *p, size_t size) {
  if (POOL_ON && size <= POOL_MAX_BLOCK)
    pool_put(rt, p, size);
  else
    free(p);
}

static void *block_resize(tq_lua *rt, void *p, size_t old, size_t size) {
  if (!POOL_ON || (old > POOL_MAX_BLOCK && size > POOL_MAX_BLOCK) ||
      (p == NULL && size > POOL_MAX_BLOCK))
    return realloc(p, size);
  if (p && old <= POOL_MAX_BLOCK && size <= POOL_MAX_BLOCK && pool_class(old) == pool_class(size))
    return p;
  void *q = size <= POOL_MAX_BLOCK ? pool_get(rt, size) : malloc(size);
  if (q == NULL || p == NULL)
    return q;
  memcpy(q, p, old < size ? old : size);
  block_free(rt, p, old);
  return q;
}

/* Every allocation of the State goes through here: the State as a whole is capped, and while
 * a run executes (rt->cur) its net allocation is charged to it and capped by its budget. A
 * refused allocation becomes Lua's "not enough memory" error; the run is also marked killed so
 * that a pcall around the bomb cannot keep it alive. */
static void *rt_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  tq_lua *rt = ud;
  size_t old = ptr ? osize : 0;
  tq_lua_run *run = rt->cur;
  if (nsize == 0) {
    if (ptr)
      block_free(rt, ptr, old);
    rt->mem -= old;
    if (run)
      run->mem = run->mem > (int64_t)old ? run->mem - (int64_t)old : 0;
    return NULL;
  }
  if (nsize > old) {
    size_t grow = nsize - old;
    if (rt->mem + grow > rt->mem_cap)
      return NULL;
    if (run) {
      size_t cap = run->script ? run->script->limits.memory : 0;
      if (run->kill != KILL_NONE)
        cap += KILL_SLACK;
      if (cap && (size_t)run->mem + grow > cap) {
        if (run->kill == KILL_NONE)
          run_kill_now(run, KILL_MEMORY);
        return NULL;
      }
    }
  }
  void *p = block_resize(rt, ptr, old, nsize);
  if (p == NULL)
    return NULL;
  rt->mem = rt->mem - old + nsize;
  if (run) {
    run->mem += (int64_t)nsize - (int64_t)old;
    if (run->mem < 0)
      run->mem = 0;
  }
  return p;
}

static void budget_hook(lua_State *L, lua_Debug *ar);

void hook_arm(lua_State *co, tq_lua_run *run) {
  lua_sethook(co, budget_hook, LUA_MASKCOUNT, run->kill == KILL_NONE ? HOOK_COUNT : 1);
}

void hook_arm_count(lua_State *co) { lua_sethook(co, budget_hook, LUA_MASKCOUNT, HOOK_COUNT); }

/* Marks the run killed and re-arms its hook to fire on every instruction: from now on each
 * hook call raises the kill again, so no pcall can swallow it. lua_sethook is safe to call
 * from anywhere, the allocator included. */
void run_kill_now(tq_lua_run *run, run_kill kill) {
  if (run->kill == KILL_NONE)
    run->kill = kill;
  if (run->co)
    hook_arm(run->co, run);
}

/* Lua's own message for a memory error (MEMERRMSG in lstate.h). lua_error raises a value that
 * is this interned string as a memory error: luaD_throw(LUA_ERRMEM) without luaG_errormsg, so
 * no message handler runs (a handler called from the hook would run with hooks off, out of
 * every budget). kill_raise_works checks this at start. */
#define KILL_ERRMSG "not enough memory"

int run_kill_raise(lua_State *L, tq_lua_run *run, run_kill kill) {
  run_kill_now(run, kill);
  lua_pushliteral(L, KILL_ERRMSG);
  return lua_error(L);
}

static int kill_raise_probe(lua_State *L) {
  lua_pushliteral(L, KILL_ERRMSG);
  return lua_error(L);
}

/* Whether this Lua raises KILL_ERRMSG as a memory error (without a message handler). */
static int kill_raise_works(lua_State *L) {
  lua_pushcfunction(L, kill_raise_probe);
  int st = lua_pcall(L, 0, 0, 0);
  lua_pop(L, 1);
  return st == LUA_ERRMEM;
}

/* Memory C allocates for a run outside the State (cJSON trees, change-set copies, request
 * bodies) is charged here before it is allocated, with the allocator's rule: past the
 * budget the run is killed and the budget error raised, so nothing is allocated. */
void run_charge(lua_State *L, tq_lua_run *run, size_t n) {
  size_t cap = run->script ? run->script->limits.memory : 0;
  if (run->kill != KILL_NONE)
    cap += KILL_SLACK;
  if (cap && (n > cap || (size_t)run->mem > cap - n)) {
    run_kill_raise(L, run, KILL_MEMORY);
  }
  run->mem += (int64_t)n;
}

void run_uncharge(tq_lua_run *run, size_t n) {
  run->mem = run->mem > (int64_t)n ? run->mem - (int64_t)n : 0;
}

static void budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  tq_lua_run *run = run_of(L);
  if (run == NULL || run->script == NULL)
    return;
  run_kill kill = run->kill;
  if (kill == KILL_NONE) {
    run->instr += HOOK_COUNT;
    if (run->instr > run->script->limits.instructions)
      kill = KILL_INSTRUCTIONS;
    else if (tq_mono_ms() > run->deadline_ms)
      kill = KILL_TIMEOUT;
    else
      return;
  }
  run_kill_raise(L, run, kill);
}

tq_lua_run *run_check(lua_State *L, const char *what) {
  tq_lua_run *run = run_of(L);
  if (run == NULL)
    luaL_error(L, "%s: only available inside a run", what);
  return run;
}

/* ---- frozen tables -------------------------------------------------------------------------- */

static int ro_newindex(lua_State *L) {
  const char *name = "?";
  lua_pushlightuserdata(L, &name_key);
  if (lua_rawget(L, 1) == LUA_TSTRING)
    name = lua_tostring(L, -1);
  else if (lua_getmetatable(L, 1)) {
    lua_getfield(L, -1, "__name");
    if (lua_type(L, -1) == LUA_TSTRING)
      name = lua_tostring(L, -1);
  }
  return luaL_error(L, "attempt to modify read-only table '%s' (field '%s')", name,
                    luaL_tolstring(L, 2, NULL));
}

int unfreeze(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE)
    return 0;
  idx = lua_absindex(L, idx);
  if (lua_rawgetp(L, idx, &view_key) == LUA_TTABLE) {
    obj_materialize(L, idx, -1); /* a view with lists not yet built shows them all */
    return 1;
  }
  lua_pop(L, 1);
  if (!lua_getmetatable(L, idx))
    return 0;
  lua_pushlightuserdata(L, &frozen_key);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 2);
    return 0;
  }
  lua_remove(L, -2);
  return 1;
}

/* next(t, k), seeing through read-only tables (a view keeps its real table inside). */
static int sb_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (unfreeze(L, 1))
    lua_replace(L, 1);
  if (lua_next(L, 1))
    return 2;
  lua_pushnil(L);
  return 1;
}

/* pairs(t) of a read-only table: sb_next over t itself, so that the real table (shared by
 * every run) never reaches the script. */
static int ro_pairs(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushcfunction(L, sb_next);
  lua_insert(L, 1);
  lua_pushnil(L);
  return 3;
}

static int ro_len(lua_State *L) {
  if (!unfreeze(L, 1))
    return luaL_error(L, "#: not a read-only table");
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

/* The proxy is an empty table whose metatable reads through to the real table; writes raise
 * an error naming the table; the metatable is hidden from scripts (__metatable = false). All
 * functions are light C functions so that a proxy costs two tables and no closure. */
/* Pushes a new metatable with what every read-only proxy has: writes refused, pairs and # seen
 * through, the metatable hidden. The caller adds __index. */
static void push_ro_metatable(lua_State *L) {
  lua_createtable(L, 0, 7);
  lua_pushcfunction(L, ro_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, ro_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushcfunction(L, ro_len);
  lua_setfield(L, -2, "__len");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
}

void freeze_table(lua_State *L, int idx, const char *name) {
  idx = lua_absindex(L, idx);
  lua_createtable(L, 0, 0);
  push_ro_metatable(L);
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pushlightuserdata(L, &frozen_key);
  lua_pushvalue(L, idx);
  lua_rawset(L, -3);
  lua_setmetatable(L, -2);
}

/* A view is the cheap read-only table for per-run data (obj, tq.get results): one table
 * holding the real one under a light userdata key, with a metatable shared by all views.
 * Scripts cannot index with a light userdata, and next/pairs/rawset see through or refuse. */
static int view_index(lua_State *L) {
  lua_rawgetp(L, 1, &view_key);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

void freeze_view_mt(lua_State *L, int idx, const char *name, const void *mt_key) {
  idx = lua_absindex(L, idx);
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, idx);
  lua_rawsetp(L, -2, &view_key);
  lua_pushstring(L, name);
  lua_rawsetp(L, -2, &name_key);
  lua_rawgetp(L, LUA_REGISTRYINDEX, mt_key);
  lua_setmetatable(L, -2);
}

void freeze_view(lua_State *L, int idx, const char *name) {
  freeze_view_mt(L, idx, name, &view_key); /* the shared metatable lives under view_key */
}

void view_push_real(lua_State *L, int idx) { lua_rawgetp(L, idx, &view_key); }

void view_metatable_new(lua_State *L, lua_CFunction index) {
  push_ro_metatable(L);
  lua_pushcfunction(L, index);
  lua_setfield(L, -2, "__index");
}

static void view_register(lua_State *L) {
  view_metatable_new(L, view_index);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &view_key);
}

/* ---- safe base functions ----------------------------------------------------------------------
 */

/* rawset, except on read-only proxies (which would otherwise gain fields that shadow nothing
 * but confuse readers) and on the shared tables. */
static int sb_rawset(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  if (unfreeze(L, 1))
    return luaL_error(L, "rawset: attempt to modify a read-only table");
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

/* setmetatable without __gc: Lua runs finalisers with hooks off (no budget holds), inside
 * whichever run triggers the collection or in lua_close. An object is marked for finalisation
 * only here, when its metatable has __gc, so a __gc added to the metatable later never runs.
 * The check reads the field raw: no metamethod of the script runs for it. */
static int sb_setmetatable(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE && (lua_pushliteral(L, "__gc"), lua_rawget(L, 2)) != LUA_TNIL)
    return luaL_error(L, "setmetatable: __gc is not allowed in the sandbox");
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* load(text [, chunkname [, mode [, env]]]): text chunks only; the default environment is
 * the calling run's own _ENV, never the host's globals. */
static int sb_load(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  if (s == NULL)
    return luaL_error(L, "load: only string chunks are allowed in the sandbox");
  const char *name = luaL_optstring(L, 2, "=(load)");
  const char *mode = luaL_optstring(L, 3, "t");
  if (strcmp(mode, "t") != 0 || (len > 0 && s[0] == LUA_SIGNATURE[0])) {
    luaL_pushfail(L);
    lua_pushliteral(L, "load: binary chunks are not allowed in the sandbox");
    return 2;
  }
  int has_env = !lua_isnone(L, 4);
  if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  if (has_env)
    lua_pushvalue(L, 4);
  else {
    tq_lua_run *run = run_check(L, "load");
    lua_rawgeti(L, LUA_REGISTRYINDEX, run->env_ref);
  }
  lua_setupvalue(L, -2, 1);
  return 1;
}

static int sb_collectgarbage(lua_State *L) {
  const char *opt = luaL_optstring(L, 1, "collect");
  if (strcmp(opt, "count") != 0)
    return luaL_error(L, "collectgarbage: option '%s' is not allowed in the sandbox", opt);
  tq_lua_run *run = run_of(L);
  int64_t bytes = run ? run->mem : 0;
  lua_pushnumber(L, (lua_Number)bytes / 1024.0);
  return 1;
}

static int sb_print(lua_State *L) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addchar(&b, '\t');
    if (secret_test(L, i, NULL, NULL))
      luaL_addstring(&b, SECRET_MASK);
    else {
      luaL_tolstring(L, i, NULL);
      luaL_addvalue(&b);
    }
  }
  luaL_pushresult(&b);
  log_emit(L, TQ_LOG_INFO, lua_tostring(L, -1));
  return 0;
}

/* ---- require ----------------------------------------------------------------------------------
 */

static const char *const host_modules[] = {"http", "json", "ioc", "log", "stix", "tq", NULL};

/* A module name is dotted words of [A-Za-z0-9_-]: never a path, never "..". */
static int module_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > MAX_MODULE_NAME || name[0] == '.' || name[n - 1] == '.' ||
      strstr(name, "..") != NULL)
    return 0;
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
      return 0;
  return 1;
}

/* Pushes the compiled chunk of module name for the run's script, compiling it on first use
 * (once per script). Raises on a missing file or a syntax error. [-0, +1] */
static void module_compiled(lua_State *L, tq_lua_script *s, const char *name) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->modules_ref);
  if (lua_getfield(L, -1, name) == LUA_TFUNCTION) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  if (s->lib_dir == NULL)
    luaL_error(L, "require: module '%s' not found (no lib dir for plugin '%s')", name, s->name);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "@");
  luaL_addstring(&b, s->lib_dir);
  luaL_addchar(&b, '/');
  for (const char *p = name; *p; p++)
    luaL_addchar(&b, *p == '.' ? '/' : *p);
  luaL_addstring(&b, ".lua");
  luaL_pushresult(&b);
  const char *chunkname = lua_tostring(L, -1);
  char *src = NULL, *real = NULL;
  size_t len = 0;
  tq_err err;
  /* A symlink out of lib/ would hand any file of the host to the compiler (whose error
   * quotes it); the file is read through its canonical path. */
  tq_code rc = tq_path_inside(s->lib_dir, chunkname + 1, &real, &err);
  if (rc == TQ_OK)
    rc = read_file(real, MAX_SCRIPT_BYTES, &src, &len, &err);
  free(real);
  if (rc == TQ_EDENIED)
    luaL_error(L, "require: module '%s' refused: %s", name, err.msg);
  if (rc != TQ_OK)
    luaL_error(L, "require: module '%s' not found: %s", name, err.msg);
  int st = compile_chunk(L, src, len, chunkname);
  free(src);
  if (st != LUA_OK)
    lua_error(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, name);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* A write to a frozen module environment: module code keeps run-time state in locals. */
static int module_env_newindex(lua_State *L) {
  const char *name = "?";
  if (lua_getmetatable(L, 1) && lua_getfield(L, -1, "__name") == LUA_TSTRING)
    name = lua_tostring(L, -1);
  return luaL_error(L,
                    "%s: attempt to set global '%s' at run time (a module's globals are "
                    "frozen once it is loaded: keep state in locals)",
                    name, luaL_tolstring(L, 2, NULL));
}

/* Freezes the module environment at env in place once its chunk ran: its fields move to a
 * hidden table that also holds a copy of the base (one lookup for every global), env stays
 * empty, reads go through __index and writes raise. The closures of the module keep env as
 * their _ENV, so they see the frozen table. [-0, +0] */
static void module_env_freeze(lua_State *L, tq_lua *rt, int env, const char *name) {
  env = lua_absindex(L, env);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->base_ref);
  int base = lua_gettop(L);
  lua_createtable(L, 0, 48);
  int real = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, base)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, real);
  }
  lua_pushnil(L);
  while (lua_next(L, env)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, real);
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, env); /* clearing a field during traversal is allowed */
  }
  lua_pushvalue(L, env);
  lua_setfield(L, real, "_G");
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, real);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, module_env_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushfstring(L, "module '%s'", name);
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, env);
  lua_pop(L, 2);
}

/* Runs the compiled module chunk on top of the stack in a fresh environment of its own
 * (reading the base), freezes that environment and leaves the module's value (frozen when a
 * table; true for nil) in place of the chunk. The chunk runs with lua_pcall: it cannot
 * yield, so no other run ever sees a half-loaded module. Returns the pcall status; on error
 * the error value replaces the chunk. [-1, +1] */
static int module_run(lua_State *L, tq_lua *rt, const char *name) {
  lua_createtable(L, 0, 16);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->env_mt_ref);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "_G");
  lua_pushvalue(L, -1);
  lua_insert(L, -3); /* env, chunk, env */
  int st = lua_pcall(L, 1, 1, 0);
  if (st != LUA_OK) {
    lua_remove(L, -2);
    return st;
  }
  module_env_freeze(L, rt, -2, name);
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  } else if (lua_istable(L, -1)) {
    if (unfreeze(L, -1)) {
      lua_pop(L, 1); /* already read-only */
    } else {
      freeze_table(L, -1, name);
      lua_remove(L, -2);
    }
  }
  return LUA_OK;
}

/* require "a.b": host modules from the base; lib modules are loaded once per script (not
 * per run) and shared, read-only, by every run of it. */
static int sb_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  tq_lua_run *run = run_check(L, "require");
  for (int i = 0; host_modules[i]; i++) {
    if (strcmp(name, host_modules[i]) == 0) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, run->rt->base_ref);
      lua_getfield(L, -1, name);
      return 1;
    }
  }
  if (!module_name_ok(name))
    return luaL_error(L,
                      "require: '%s' is not a module name (paths, '..' and C modules are "
                      "refused; use dotted names such as \"rst.ioc\")",
                      name);
  tq_lua_script *s = run->script;
  lua_settop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->loaded_ref); /* 2: loaded */
  int t = lua_getfield(L, 2, name);
  if (t == LUA_TLIGHTUSERDATA)
    return luaL_error(L, "require: module '%s' requires itself (a loop)", name);
  if (t != LUA_TNIL)
    return 1;
  lua_pop(L, 1);
  module_compiled(L, s, name);
  lua_pushlightuserdata(L, &frozen_key); /* "loading" mark */
  lua_setfield(L, 2, name);
  if (module_run(L, run->rt, name) != LUA_OK) {
    lua_pushnil(L);
    lua_setfield(L, 2, name);
    return lua_error(L);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, 2, name);
  return 1;
}

/* ---- building the base ------------------------------------------------------------------------
 */

static const char *const safe_base[] = {
    "assert", "error",  "ipairs",   "pairs",  "pcall",  "select",       "tonumber", "tostring",
    "type",   "xpcall", "rawequal", "rawlen", "rawget", "getmetatable", "_VERSION", NULL};

static const luaL_Reg sandbox_fns[] = {{"rawset", sb_rawset}, {"setmetatable", sb_setmetatable},
                                       {"load", sb_load},     {"collectgarbage", sb_collectgarbage},
                                       {"print", sb_print},   {"require", sb_require},
                                       {"next", sb_next},     {NULL, NULL}};

/* Copies the fields of the table at idx except those named in skip into a new table and
 * pushes it. [-0, +1] */
static void copy_table(lua_State *L, int idx, const char *const *skip) {
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int skipped = 0;
    for (int i = 0; skip && skip[i] && lua_type(L, -2) == LUA_TSTRING; i++)
      skipped |= strcmp(lua_tostring(L, -2), skip[i]) == 0;
    if (skipped) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

/* Sets base[name] to the frozen proxy of the table on top, popping it. [-1, +0] */
static void base_set_frozen(lua_State *L, int base, const char *name) {
  freeze_table(L, -1, name);
  lua_setfield(L, base, name);
  lua_pop(L, 1);
}

/* The string table without dump and with the budgeted pattern functions, installed also as the
 * strings' method table so that
 * ("").dump cannot reach it; the strings' metatable is hidden (getmetatable("") -> false). */
static void base_add_string(lua_State *L, int base) {
  static const char *const skip[] = {"dump", NULL};
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
  copy_table(L, -1, skip);
  lua_remove(L, -2);
  pattern_install(L);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  base_set_frozen(L, base, "string");
}

static void base_add_libs(lua_State *L, int base) {
  static const char *const os_keep[] = {"time", "clock", "date", NULL};
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);
  base_set_frozen(L, base, "table");
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);
  base_set_frozen(L, base, "math");
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 0);
  base_set_frozen(L, base, "utf8");
  luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
  lua_newtable(L);
  for (int i = 0; os_keep[i]; i++) {
    lua_getfield(L, -2, os_keep[i]);
    lua_setfield(L, -2, os_keep[i]);
  }
  lua_remove(L, -2);
  base_set_frozen(L, base, "os");
  static const struct {
    const char *name;
    lua_CFunction open;
  } mods[] = {{"http", luaopen_tq_http}, {"json", luaopen_tq_json}, {"ioc", luaopen_tq_ioc},
              {"log", luaopen_tq_log},   {"stix", luaopen_tq_stix}, {"tq", luaopen_tq_tq}};
  for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
    mods[i].open(L);
    base_set_frozen(L, base, mods[i].name);
  }
}

/* Builds base (registry ref) and the shared _ENV metatable {__index = base}. Runs in a
 * protected call so that an allocation failure is an error, not a panic. */
static int build_base(lua_State *L) {
  tq_lua *rt = lua_touserdata(L, 1);
  view_register(L);
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  lua_pop(L, 1);
  lua_newtable(L);
  int base = lua_gettop(L);
  for (int i = 0; safe_base[i]; i++) {
    lua_getglobal(L, safe_base[i]);
    lua_setfield(L, base, safe_base[i]);
  }
  luaL_setfuncs(L, sandbox_fns, 0);
  base_add_string(L, base);
  base_add_libs(L, base);
  lua_getfield(L, base, "string");
  lua_getfield(L, -1, "format");
  rt->fmt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  ctx_register(L);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, base);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  rt->env_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rt->base_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* ---- runtime ----------------------------------------------------------------------------------
 */

void tq_lua_opts_init(tq_lua_opts *o) { memset(o, 0, sizeof *o); }

static int rt_panic(lua_State *L) {
  tq_log(TQ_LOG_ERROR, LUA_PART, "unprotected Lua error: %s", lua_tostring(L, -1));
  abort();
}

tq_code tq_lua_new(const tq_lua_opts *opts, tq_lua **out, tq_err *err) {
  tq_code rc = TQ_ENOMEM;
  tq_lua *rt = calloc(1, sizeof *rt);
  if (rt == NULL)
    return tq_err_set(err, TQ_ENOMEM, "lua: out of memory creating the runtime");
  if (opts)
    rt->opts = *opts;
  watch_init(rt);
  rt->mem_cap = rt->opts.state_memory ? rt->opts.state_memory : DEFAULT_STATE_MEMORY;
  rt->next_run_id = 1;
  rt->L = lua_newstate(rt_alloc, rt);
  if (rt->L == NULL) {
    tq_err_set(err, TQ_ENOMEM, "lua: cannot create a lua_State");
    goto fail;
  }
  lua_atpanic(rt->L, rt_panic);
  if (!kill_raise_works(rt->L)) {
    tq_err_set(err, TQ_EINVAL, "lua: %s cannot raise a kill past message handlers", LUA_RELEASE);
    goto fail;
  }
  *(tq_lua_run **)lua_getextraspace(rt->L) = NULL;
  lua_pushcfunction(rt->L, build_base);
  lua_pushlightuserdata(rt->L, rt);
  if (lua_pcall(rt->L, 1, 0, 0) != LUA_OK) {
    tq_err_set(err, TQ_ENOMEM, "lua: building the sandbox failed: %s", lua_tostring(rt->L, -1));
    goto fail;
  }
  /* Runs make many short-lived objects: generational mode, with a minor collection after the
   * heap grew by 60% (not the default 20%), which measured ~10% less CPU per run of rst.ioc
   * for a heap that stays a few MiB. */
  lua_gc(rt->L, LUA_GCGEN, 60, 0);
  if (rt->opts.replay_file) {
    rt->replay_file = tq_strdup(rt->opts.replay_file);
    rc = replay_load(rt, rt->replay_file, err);
    if (rc != TQ_OK)
      goto fail;
  }
  rt->opts.replay_file = rt->replay_file;
  *out = rt;
  return TQ_OK;
fail:
  tq_lua_free(rt);
  return err ? err->code : rc;
}

size_t tq_lua_memory(const tq_lua *rt) { return rt->mem; }

static void script_destroy(tq_lua_script *s);

void tq_lua_free(tq_lua *rt) {
  if (rt == NULL)
    return;
  watch_free(rt);
  if (rt->L)
    rt_kill_all(rt);
  while (rt->io_pending > 0 && rt->opts.net) {
    if (tq_net_run(rt->opts.net, 100, NULL) != TQ_OK)
      break;
  }
  while (rt->scripts)
    script_destroy(rt->scripts);
  if (rt->L)
    lua_close(rt->L);
  pool_free_all(rt);
  replay_free(rt);
  free(rt->replay_file);
  free(rt);
}

/* ---- files, chunks, redaction ------------------------------------------------------------------
 */

tq_code read_file(const char *path, size_t max, char **out, size_t *len, tq_err *err) {
  tq_code rc = TQ_OK;
  char *data = NULL;
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return tq_err_set(err, errno == ENOENT ? TQ_ENOTFOUND : TQ_EIO, "%s: cannot open: %s", path,
                      strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    rc = tq_err_set(err, TQ_EIO, "%s: not a regular file", path);
    goto fail;
  }
  if ((size_t)st.st_size > max) {
    rc = tq_err_set(err, TQ_ELIMIT, "%s: %lld bytes, over the %zu-byte cap", path,
                    (long long)st.st_size, max);
    goto fail;
  }
  data = malloc((size_t)st.st_size + 1);
  if (data == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
    goto fail;
  }
  size_t n = fread(data, 1, (size_t)st.st_size, f);
  if (n != (size_t)st.st_size) {
    rc = tq_err_set(err, TQ_EIO, "%s: short read", path);
    goto fail;
  }
  data[n] = '\0';
  fclose(f);
  *out = data;
  *len = n;
  return TQ_OK;
fail:
  free(data);
  fclose(f);
  return rc;
}

/* The source becomes the body of function(...) whose first statement binds _ENV to the first
 * argument, on the same line so that line numbers stay those of the file. A shebang line is
 * commented out. Each call with a fresh env gives closures bound to that env. */
int compile_chunk(lua_State *L, const char *src, size_t len, const char *chunkname) {
  static const char prefix[] = "local _ENV = ...; ";
  int shebang = len > 0 && src[0] == '#';
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, prefix);
  if (shebang)
    luaL_addstring(&b, "--");
  luaL_addlstring(&b, src, len);
  luaL_pushresult(&b);
  size_t n;
  const char *text = lua_tolstring(L, -1, &n);
  if (len > 0 && src[0] == LUA_SIGNATURE[0]) {
    lua_pop(L, 1);
    lua_pushfstring(L, "%s: binary chunks are not allowed", chunkname + 1);
    return LUA_ERRSYNTAX;
  }
  int st = luaL_loadbufferx(L, text, n, chunkname, "t");
  lua_remove(L, -2);
  return st;
}

/* ---- scripts ----------------------------------------------------------------------------------
 */

void tq_lua_script_opts_init(tq_lua_script_opts *o) { memset(o, 0, sizeof *o); }

static void script_destroy(tq_lua_script *s) {
  tq_lua *rt = s->rt;
  if (s->prev)
    s->prev->next = s->next;
  else
    rt->scripts = s->next;
  if (s->next)
    s->next->prev = s->prev;
  if (rt->L) {
    luaL_unref(rt->L, LUA_REGISTRYINDEX, s->chunk_ref);
    luaL_unref(rt->L, LUA_REGISTRYINDEX, s->modules_ref);
    luaL_unref(rt->L, LUA_REGISTRYINDEX, s->loaded_ref);
    luaL_unref(rt->L, LUA_REGISTRYINDEX, s->config_ref);
    luaL_unref(rt->L, LUA_REGISTRYINDEX, s->ctx_ref);
  }
  for (size_t i = 0; i < s->n_secrets; i++) {
    free((char *)s->secrets[i].key);
    char *v = (char *)s->secrets[i].value;
    if (v)
      explicit_bzero(v, strlen(v));
    free(v);
  }
  free(s->secrets);
  redact_set_free(s->redact);
  for (size_t i = 0; i < s->n_entries; i++)
    free(s->entries[i]);
  free(s->entries);
  free(s->name);
  free(s->path);
  free(s->lib_dir);
  free(s);
}

void tq_lua_script_free(tq_lua_script *s) {
  if (s && --s->refs <= 0)
    script_destroy(s);
}

int tq_lua_script_has_entry(const tq_lua_script *s, const char *entry) {
  for (size_t i = 0; i < s->n_entries; i++)
    if (strcmp(s->entries[i], entry) == 0)
      return 1;
  return 0;
}

const char *tq_lua_script_name(const tq_lua_script *s) { return s->name; }

static tq_code script_copy_opts(tq_lua_script *s, const tq_lua_script_opts *o, tq_err *err) {
  s->name = tq_strdup(o->name);
  s->path = tq_strdup(o->path);
  s->lib_dir = o->lib_dir ? tq_strdup(o->lib_dir) : NULL;
  s->provider = o->provider;
  s->outcome_only = o->outcome_only;
  s->obj_lists_later = o->obj_lists_later;
  s->limits = o->limits;
  if (s->limits.memory == 0)
    s->limits.memory = 32u << 20;
  if (s->limits.instructions == 0)
    s->limits.instructions = 50000000;
  if (s->limits.timeout_ms == 0)
    s->limits.timeout_ms = 30000;
  s->secrets = calloc(o->n_secrets ? o->n_secrets : 1, sizeof *s->secrets);
  if (!s->name || !s->path || (o->lib_dir && !s->lib_dir) || !s->secrets)
    return tq_err_set(err, TQ_ENOMEM, "lua: out of memory loading '%s'", o->path);
  for (size_t i = 0; i < o->n_secrets; i++) {
    s->secrets[i].key = tq_strdup(o->secrets[i].key);
    s->secrets[i].value = tq_strdup(o->secrets[i].value ? o->secrets[i].value : "");
    s->n_secrets++;
    if (!s->secrets[i].key || !s->secrets[i].value)
      return tq_err_set(err, TQ_ENOMEM, "lua: out of memory loading '%s'", o->path);
  }
  if (redact_set_new(s->secrets, s->n_secrets, &s->redact) != TQ_OK)
    return tq_err_set(err, TQ_ENOMEM, "lua: out of memory loading '%s'", o->path);
  return TQ_OK;
}

/* Pushes one config value as its kind says, or raises naming the key and the type. */
static void push_config_value(lua_State *L, const tq_lua_kv *kv, tq_lua_kind kind) {
  const char *v = kv->value;
  switch (kind) {
  case TQ_LUA_INTEGER:
  case TQ_LUA_NUMBER:
    if (lua_stringtonumber(L, v) == 0 || (kind == TQ_LUA_INTEGER && !lua_isinteger(L, -1)))
      luaL_error(L, "ctx.config.%s: '%s' is not %s", kv->key, v,
                 kind == TQ_LUA_INTEGER ? "an integer" : "a number");
    if (kind == TQ_LUA_NUMBER)
      lua_pushnumber(L, lua_tonumber(L, -1)), lua_remove(L, -2);
    return;
  case TQ_LUA_BOOLEAN:
    if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
      luaL_error(L, "ctx.config.%s: '%s' is not a boolean", kv->key, v);
    lua_pushboolean(L, strcmp(v, "true") == 0);
    return;
  case TQ_LUA_LIST: {
    lua_newtable(L);
    lua_Integer i = 0;
    for (const char *p = v; *p;) {
      size_t len = strcspn(p, ",");
      lua_pushlstring(L, p, len);
      lua_rawseti(L, -2, ++i);
      p += len + (p[len] == ',');
    }
    freeze_table(L, -1, "ctx.config list");
    lua_remove(L, -2);
    return;
  }
  case TQ_LUA_TEXT: break;
  }
  lua_pushstring(L, v);
}

/* Pushes the config as a frozen table of values typed by their kind. Secret keys are left out
 * even if the caller passed them in config too. [-0, +1] */
static int push_config(lua_State *L) {
  const tq_lua_script_opts *o = lua_touserdata(L, 1);
  lua_newtable(L);
  for (size_t i = 0; i < o->n_config; i++) {
    int secret = 0;
    for (size_t j = 0; j < o->n_secrets; j++)
      secret |= strcmp(o->secrets[j].key, o->config[i].key) == 0;
    if (secret || o->config[i].value == NULL)
      continue;
    push_config_value(L, &o->config[i], o->config_kinds ? o->config_kinds[i] : TQ_LUA_TEXT);
    lua_setfield(L, -2, o->config[i].key);
  }
  freeze_table(L, -1, "ctx.config");
  return 1;
}

typedef struct compile_args {
  tq_lua_script *s;
  const char *src;
  size_t len;
  const tq_lua_module *modules;
  size_t n_modules;
  int syntax; /* 1: the error is the script's (a syntax error), not memory */
} compile_args;

/* Under lua_pcall (an allocation failure raises, and outside a protected call Lua would
 * abort): compiles the chunk and keeps it, the module cache and the loaded table. */
static int compile_protected(lua_State *L) {
  compile_args *a = lua_touserdata(L, 1);
  lua_pushfstring(L, "@%s", a->s->path);
  if (compile_chunk(L, a->src, a->len, lua_tostring(L, -1)) != LUA_OK) {
    a->syntax = !strstr(lua_tostring(L, -1), "not enough memory");
    return lua_error(L);
  }
  a->s->chunk_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  a->s->modules_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  a->s->loaded_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* The modules given in memory, compiled now: a syntax error fails the load. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->s->modules_ref);
  for (size_t i = 0; i < a->n_modules; i++) {
    const tq_lua_module *m = &a->modules[i];
    if (!module_name_ok(m->name))
      return luaL_error(L, "%s: '%s' is not a module name", m->path, m->name);
    lua_pushfstring(L, "@%s", m->path);
    if (compile_chunk(L, m->text, m->len, lua_tostring(L, -1)) != LUA_OK) {
      a->syntax = !strstr(lua_tostring(L, -1), "not enough memory");
      return lua_error(L);
    }
    lua_setfield(L, -3, m->name);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

/* Compiles the file and keeps the chunk, the module cache and the config. */
static tq_code script_compile(tq_lua *rt, tq_lua_script *s, const tq_lua_script_opts *o,
                              tq_err *err) {
  char *src = NULL;
  size_t len = 0;
  tq_code rc = TQ_OK;
  if (o->source) {
    if (o->source_len > MAX_SCRIPT_BYTES)
      return tq_err_set(err, TQ_ELIMIT, "%s: larger than %u bytes", s->path, MAX_SCRIPT_BYTES);
    if ((src = malloc(o->source_len + 1)) == NULL)
      return tq_err_set(err, TQ_ENOMEM, "lua: out of memory loading '%s'", s->path);
    memcpy(src, o->source, o->source_len);
    src[len = o->source_len] = '\0';
  } else if ((rc = read_file(s->path, MAX_SCRIPT_BYTES, &src, &len, err)) != TQ_OK) {
    return rc;
  }
  lua_State *L = rt->L;
  compile_args args = {s, src, len, o->modules, o->n_modules, 0};
  lua_pushcfunction(L, compile_protected);
  lua_pushlightuserdata(L, &args);
  int st = lua_pcall(L, 1, 0, 0);
  free(src);
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (args.syntax)
      rc = tq_err_set(err, TQ_EINVAL, "%s", msg ? msg : "cannot compile");
    else
      rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory compiling the script", s->path);
    lua_pop(L, 1);
    return rc;
  }
  lua_pushcfunction(L, push_config);
  lua_pushlightuserdata(L, (void *)o);
  if ((st = lua_pcall(L, 1, 1, 0)) != LUA_OK) {
    if (st == LUA_ERRMEM)
      rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory building ctx.config", s->path);
    else
      rc = tq_err_set(err, TQ_EINVAL, "%s: %s", s->path, lua_tostring(L, -1));
    lua_pop(L, 1);
    return rc;
  }
  lua_pushvalue(L, -1);
  s->config_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushcfunction(L, ctx_new_protected);
  lua_insert(L, -2);
  lua_pushboolean(L, s->outcome_only);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    return tq_err_set(err, TQ_ENOMEM, "%s: out of memory building ctx", s->path);
  }
  s->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return TQ_OK;
}

tq_code run_probe_entries(tq_lua *rt, tq_lua_script *s, tq_err *err);

tq_code tq_lua_load(tq_lua *rt, const tq_lua_script_opts *opts, tq_lua_script **out, tq_err *err) {
  if (opts == NULL || opts->name == NULL || opts->path == NULL)
    return tq_err_set(err, TQ_EINVAL, "lua: a script needs a name and a path");
  tq_lua_script *s = calloc(1, sizeof *s);
  if (s == NULL)
    return tq_err_set(err, TQ_ENOMEM, "lua: out of memory loading '%s'", opts->path);
  s->rt = rt;
  s->refs = 1;
  s->chunk_ref = s->modules_ref = s->loaded_ref = s->config_ref = s->ctx_ref = LUA_NOREF;
  s->next = rt->scripts;
  if (rt->scripts)
    rt->scripts->prev = s;
  rt->scripts = s;
  tq_code rc = script_copy_opts(s, opts, err);
  if (rc == TQ_OK)
    rc = script_compile(rt, s, opts, err);
  if (rc == TQ_OK)
    rc = run_probe_entries(rt, s, err);
  if (rc != TQ_OK)
    goto fail;
  *out = s;
  return TQ_OK;
fail:
  script_destroy(s);
  return rc;
}

/* ---- syntax check --------------------------------------------------------------------------- */

typedef struct syntax_args {
  const char *path, *text;
  size_t len;
} syntax_args;

static int syntax_protected(lua_State *L) {
  syntax_args *a = lua_touserdata(L, 1);
  lua_pushfstring(L, "@%s", a->path);
  if (compile_chunk(L, a->text, a->len, lua_tostring(L, -1)) != LUA_OK)
    return lua_error(L);
  return 0;
}

tq_code tq_lua_syntax_check(const char *path, const char *text, size_t len, tq_err *err) {
  if (len > MAX_SCRIPT_BYTES)
    return tq_err_set(err, TQ_ELIMIT, "%s: larger than %u bytes", path, MAX_SCRIPT_BYTES);
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return tq_err_set(err, TQ_ENOMEM, "%s: out of memory compiling", path);
  syntax_args a = {path, text, len};
  lua_pushcfunction(L, syntax_protected);
  lua_pushlightuserdata(L, &a);
  tq_code rc = TQ_OK;
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    rc = msg && strstr(msg, "not enough memory")
             ? tq_err_set(err, TQ_ENOMEM, "%s: out of memory compiling", path)
             : tq_err_set(err, TQ_EINVAL, "%s", msg ? msg : "cannot compile");
  }
  lua_close(L);
  return rc;
}
