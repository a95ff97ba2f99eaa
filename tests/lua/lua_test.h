/* lua_test.h: helpers shared by the C tests of the Lua runtime (tests/unit/test_lua_*.c):
 * paths of the test scripts, loading a script with limits, running a batch of entries and
 * capturing what tq_log writes to stderr. Header-only: each test program includes it once. */
#ifndef TQHOST_LUA_TEST_H
#define TQHOST_LUA_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tqhost/lua.h"

/* tests/lua/<name>, found from this header's own path. */
static inline const char *lt_path(const char *name) {
  static char buf[4096];
  const char *here = __FILE__;
  const char *slash = strrchr(here, '/');
  int n = slash ? (int)(slash - here) : 1;
  snprintf(buf, sizeof buf, "%.*s/%s", n, slash ? here : ".", name);
  return buf;
}

/* Loads tests/lua/<file> as plugin name with the given limits and secrets. */
static inline tq_lua_script *lt_load(tq_lua *rt, const char *name, const char *file,
                                     tq_lua_limits limits, const tq_lua_kv *secrets,
                                     size_t n_secrets, tq_net_provider *prov) {
  char path[4096], lib[4096];
  snprintf(path, sizeof path, "%s", lt_path(file));
  snprintf(lib, sizeof lib, "%s", lt_path("lib"));
  static const tq_lua_kv config[] = {{"base_url", "http://127.0.0.1"},
                                     {"api_key", "leak"},
                                     {"threshold", "5"},
                                     {"strict", "true"},
                                     {"ratio", "0.25"},
                                     {"tags", "a,b c"}};
  static const tq_lua_kind kinds[] = {TQ_LUA_TEXT,    TQ_LUA_TEXT,   TQ_LUA_INTEGER,
                                      TQ_LUA_BOOLEAN, TQ_LUA_NUMBER, TQ_LUA_LIST};
  tq_lua_script_opts o;
  tq_lua_script_opts_init(&o);
  o.name = name;
  o.path = path;
  o.lib_dir = lib;
  o.limits = limits;
  o.secrets = secrets;
  o.n_secrets = n_secrets;
  o.config = config;
  o.n_config = 6;
  o.config_kinds = kinds;
  o.provider = prov;
  tq_lua_script *s = NULL;
  tq_err err = {0};
  if (tq_lua_load(rt, &o, &s, &err) != TQ_OK) {
    fprintf(stderr, "load %s: %s\n", file, err.msg);
    return NULL;
  }
  return s;
}

/* Starts one run of entry (obj may be NULL); aborts the test program on a start error. */
static inline tq_lua_run *lt_start(tq_lua *rt, tq_lua_script *s, const char *entry,
                                   const tq_object *obj) {
  tq_lua_run *run = NULL;
  tq_err err = {0};
  if (tq_lua_run_start(rt, s, entry, obj, NULL, NULL, &run, &err) != TQ_OK) {
    fprintf(stderr, "start %s: %s\n", entry, err.msg);
    abort();
  }
  return run;
}

/* Redirects stderr (fd 2) into a temporary file until lt_capture_end, which returns what was
 * written (malloc'd). */
typedef struct lt_capture {
  int saved;
  FILE *tmp;
} lt_capture;

static inline void lt_capture_begin(lt_capture *c) {
  fflush(stderr);
  c->tmp = tmpfile();
  c->saved = dup(2);
  dup2(fileno(c->tmp), 2);
}

static inline char *lt_capture_end(lt_capture *c) {
  fflush(stderr);
  dup2(c->saved, 2);
  close(c->saved);
  long n = ftell(c->tmp);
  char *out = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
  rewind(c->tmp);
  if (n > 0 && fread(out, 1, (size_t)n, c->tmp) != (size_t)n)
    out[0] = '\0';
  fclose(c->tmp);
  return out;
}

#endif
