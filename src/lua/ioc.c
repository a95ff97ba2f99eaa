/* ioc.c: the ioc module, thin wrappers over include/tqhost/ioc.h: type detection,
 * normalisation, refanging, URL hosts and registered domains. Inputs are capped so that the
 * C side stays bounded. */
#include <stdlib.h>
#include <string.h>

#include "tqhost/ioc.h"

#include "lua_int.h"

#define IOC_MAX_INPUT 8192

static const char *ioc_arg(lua_State *L, int idx, const char *fn) {
  size_t len;
  const char *s = luaL_checklstring(L, idx, &len);
  if (len > IOC_MAX_INPUT)
    luaL_error(L, "%s: value of %d bytes is over the %d-byte cap", fn, (int)len, IOC_MAX_INPUT);
  return s;
}

/* Pushes a malloc'd result (freeing it) or nil, message. */
static int push_result(lua_State *L, tq_code rc, char *out, const tq_err *err) {
  if (rc != TQ_OK) {
    free(out);
    lua_pushnil(L);
    lua_pushstring(L, err->msg);
    return 2;
  }
  lua_pushstring(L, out);
  free(out);
  return 1;
}

/* ioc.type(v) -> ThreatQ type name, or nil, reason */
static int l_ioc_type(lua_State *L) {
  const char *v = ioc_arg(L, 1, "ioc.type");
  tq_ioc_type t = TQ_IOC_UNKNOWN;
  char *canon = NULL;
  tq_err err;
  tq_code rc = tq_ioc_classify(v, &t, &canon, &err);
  free(canon);
  if (rc != TQ_OK) {
    lua_pushnil(L);
    lua_pushstring(L, err.msg);
    return 2;
  }
  lua_pushstring(L, tq_ioc_type_name(t));
  return 1;
}

/* ioc.normalize(v [, type]) -> canonical, type name; or nil, reason */
static int l_ioc_normalize(lua_State *L) {
  const char *v = ioc_arg(L, 1, "ioc.normalize");
  const char *tname = luaL_optstring(L, 2, NULL);
  tq_ioc_type t = TQ_IOC_UNKNOWN;
  char *canon = NULL;
  tq_err err;
  tq_code rc;
  if (tname) {
    t = tq_ioc_type_from_name(tname);
    if (t == TQ_IOC_UNKNOWN) {
      lua_pushnil(L);
      lua_pushfstring(L, "ioc.normalize: '%s' is not a type tqhost can normalise", tname);
      return 2;
    }
    rc = tq_ioc_normalize(t, v, &canon, &err);
  } else
    rc = tq_ioc_classify(v, &t, &canon, &err);
  int n = push_result(L, rc, canon, &err);
  if (n == 1) {
    lua_pushstring(L, tq_ioc_type_name(t));
    n = 2;
  }
  return n;
}

static int l_ioc_refang(lua_State *L) {
  char *out = tq_ioc_refang(ioc_arg(L, 1, "ioc.refang"));
  if (out == NULL)
    return luaL_error(L, "ioc.refang: out of memory");
  lua_pushstring(L, out);
  free(out);
  return 1;
}

static int l_ioc_domain(lua_State *L) {
  char *host = NULL;
  tq_err err;
  tq_code rc = tq_ioc_url_host(ioc_arg(L, 1, "ioc.domain"), &host, &err);
  return push_result(L, rc, host, &err);
}

static int l_ioc_registered_domain(lua_State *L) {
  char *out = NULL;
  tq_err err;
  tq_code rc = tq_ioc_registered_domain(ioc_arg(L, 1, "ioc.registered_domain"), &out, &err);
  return push_result(L, rc, out, &err);
}

int luaopen_tq_ioc(lua_State *L) {
  static const luaL_Reg fns[] = {{"type", l_ioc_type},
                                 {"normalize", l_ioc_normalize},
                                 {"refang", l_ioc_refang},
                                 {"domain", l_ioc_domain},
                                 {"registered_domain", l_ioc_registered_domain},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
