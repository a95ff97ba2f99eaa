/* json.c: the json module (json.decode, json.encode, json.null), the direct JSON text -> Lua
 * decoder, the direct Lua -> JSON text encoder (json.encode, http json bodies) and the
 * Lua <-> cJSON conversions the other bindings share (ctx:show, replay files). A table is
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

/* ---- text -> Lua ---------------------------------------------------------------------------
 * A direct decoder: tables and strings are made as the text is read, with no cJSON tree in
 * between (a response of a hundred values was a hundred mallocs and frees before). It reads
 * what cJSON reads: whitespace is any byte <= ' ', text after the value is ignored, a key
 * given twice keeps its last value, numbers are integers when integral and below 2^53. */

typedef struct jdec {
  lua_State *L;
  const char *p, *end;
  const char *bad; /* where the text stopped being JSON (set before raising) */
  int too_deep;    /* ... because it nests deeper than JSON_MAX_DEPTH there */
} jdec;

static char jd_sentinel; /* the error value of a syntax error: the caller reports d->bad */

static void jd_syntax(jdec *d, const char *at) {
  d->bad = at;
  lua_pushlightuserdata(d->L, &jd_sentinel);
  lua_error(d->L);
}

static void jd_ws(jdec *d) {
  while (d->p < d->end && (unsigned char)*d->p <= ' ')
    d->p++;
}

static int jd_hex4(jdec *d, const char *at, unsigned *out) {
  if (d->end - at < 4)
    return 0;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = at[i];
    int h = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (h < 0)
      return 0;
    v = v * 16 + (unsigned)h;
  }
  *out = v;
  return 1;
}

static void jd_utf8(luaL_Buffer *b, unsigned cp) {
  if (cp < 0x80) {
    luaL_addchar(b, (char)cp);
  } else if (cp < 0x800) {
    luaL_addchar(b, (char)(0xC0 | (cp >> 6)));
    luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    luaL_addchar(b, (char)(0xE0 | (cp >> 12)));
    luaL_addchar(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
  } else {
    luaL_addchar(b, (char)(0xF0 | (cp >> 18)));
    luaL_addchar(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
    luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
  }
}

/* One escape after the backslash at *pp; advances *pp past it. */
static void jd_escape(jdec *d, luaL_Buffer *b, const char **pp) {
  const char *q = *pp + 1;
  if (q >= d->end)
    jd_syntax(d, q);
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *hit = memchr(from, *q, sizeof from - 1);
  if (hit) {
    luaL_addchar(b, to[hit - from]);
    *pp = q + 1;
    return;
  }
  unsigned cp = 0, lo = 0;
  if (*q != 'u' || !jd_hex4(d, q + 1, &cp))
    jd_syntax(d, q);
  q += 5;
  if (cp >= 0xDC00 && cp <= 0xDFFF)
    jd_syntax(d, q - 6);
  if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high surrogate needs its low half */
    if (d->end - q < 6 || q[0] != '\\' || q[1] != 'u' || !jd_hex4(d, q + 2, &lo) || lo < 0xDC00 ||
        lo > 0xDFFF)
      jd_syntax(d, q);
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    q += 6;
  }
  jd_utf8(b, cp);
  *pp = q;
}

/* A string at d->p (on its opening quote). [-0, +1] */
/* Whether c ends a run of plain string bytes: a quote, an escape, or a control character
 * (RFC 8259 section 7: U+0000..U+001F must be escaped; a raw NUL would also cut the text short
 * wherever it is read as a C string). */
static int jd_stop(char c) { return c == '"' || c == '\\' || (unsigned char)c < 0x20; }

static void jd_string(jdec *d) {
  const char *q = d->p + 1, *run = q;
  while (q < d->end && !jd_stop(*q))
    q++;
  if (q < d->end && *q == '"') { /* no escape: the common case, one copy */
    lua_pushlstring(d->L, run, (size_t)(q - run));
    d->p = q + 1;
    return;
  }
  luaL_Buffer b;
  luaL_buffinit(d->L, &b);
  for (;;) {
    luaL_addlstring(&b, run, (size_t)(q - run));
    if (q >= d->end || (unsigned char)*q < 0x20)
      jd_syntax(d, q);
    if (*q == '"')
      break;
    jd_escape(d, &b, &q);
    run = q;
    while (q < d->end && !jd_stop(*q))
      q++;
  }
  luaL_pushresult(&b);
  d->p = q + 1;
}

static void jd_number(jdec *d) {
  const char *q = d->p;
  char buf[64];
  size_t n = 0;
  while (q < d->end && n < sizeof buf - 1 && *q && strchr("0123456789+-eE.", *q))
    buf[n++] = *q++;
  buf[n] = '\0';
  char *stop = NULL;
  double v = strtod(buf, &stop);
  if (n == 0 || stop == buf)
    jd_syntax(d, d->p);
  d->p += stop - buf;
  if (v == floor(v) && fabs(v) < 9007199254740992.0)
    lua_pushinteger(d->L, (lua_Integer)v);
  else
    lua_pushnumber(d->L, v);
}

static void jd_value(jdec *d, int depth);

static void jd_literal(jdec *d, const char *word, size_t len) {
  if ((size_t)(d->end - d->p) < len || memcmp(d->p, word, len) != 0)
    jd_syntax(d, d->p);
  d->p += len;
}

/* Members a container keeps on the Lua stack before they go into its table: the table is made
 * once, with room for all of them, instead of growing (and rehashing) member by member. */
#define JD_CHUNK 64

/* Moves the n members on the stack above the table at t into it (pairs for an object, in
 * order, so that a repeated name keeps its last value; elements from index *next for an
 * array) and pops them. */
static void jd_fill(lua_State *L, int t, int object, int n, lua_Integer *next) {
  int first = t + 1;
  for (int k = 0; k < n; k++) {
    if (object) {
      lua_pushvalue(L, first + 2 * k);
      lua_pushvalue(L, first + 2 * k + 1);
      lua_rawset(L, t);
    } else {
      lua_pushvalue(L, first + k);
      lua_rawseti(L, t, (*next)++);
    }
  }
  lua_settop(L, t);
}

/* An array or object at d->p (on '[' or '{'). [-0, +1] */
static void jd_container(jdec *d, int depth) {
  lua_State *L = d->L;
  int object = *d->p == '{';
  char close = object ? '}' : ']';
  if (depth > JSON_MAX_DEPTH) {
    d->too_deep = 1; /* bad input, like a syntax error: nil, message */
    jd_syntax(d, d->p);
  }
  d->p++;
  jd_ws(d);
  if (d->p < d->end && *d->p == close) {
    d->p++;
    lua_createtable(L, 0, 0);
    return;
  }
  int t = lua_gettop(L) + 1; /* where the table ends up */
  int made = 0, n = 0;
  lua_Integer next = 1;
  for (;;) {
    /* a name and a value, the table, and the two copies jd_fill pushes */
    luaL_checkstack(L, 6, "json: nesting too deep");
    jd_ws(d);
    if (object) {
      if (d->p >= d->end || *d->p != '"')
        jd_syntax(d, d->p);
      jd_string(d);
      jd_ws(d);
      if (d->p >= d->end || *d->p != ':')
        jd_syntax(d, d->p);
      d->p++;
      jd_ws(d);
    }
    jd_value(d, depth + 1);
    jd_ws(d);
    int more = d->p < d->end && *d->p == ',';
    if (!more && (d->p >= d->end || *d->p != close))
      jd_syntax(d, d->p);
    d->p++;
    if (++n < JD_CHUNK && more)
      continue;
    if (!made) { /* the table, below its first members, sized for them */
      lua_createtable(L, object ? 0 : n, object ? n : 0);
      lua_insert(L, t);
      made = 1;
    }
    jd_fill(L, t, object, n, &next);
    n = 0;
    if (!more)
      return;
  }
}

static void jd_value(jdec *d, int depth) {
  if (d->p >= d->end)
    jd_syntax(d, d->p);
  switch (*d->p) {
  case '"': jd_string(d); return;
  case '{':
  case '[': jd_container(d, depth); return;
  case 't':
    jd_literal(d, "true", 4);
    lua_pushboolean(d->L, 1);
    return;
  case 'f':
    jd_literal(d, "false", 5);
    lua_pushboolean(d->L, 0);
    return;
  case 'n':
    jd_literal(d, "null", 4);
    push_null(d->L);
    return;
  default: jd_number(d); return;
  }
}

static int decode_protected(lua_State *L) {
  jdec *d = lua_touserdata(L, 1);
  d->L = L;
  if (d->end - d->p >= 3 && memcmp(d->p, "\xEF\xBB\xBF", 3) == 0)
    d->p += 3; /* a UTF-8 byte order mark */
  jd_ws(d);
  jd_value(d, 0);
  return 1;
}

int json_decode_push(lua_State *L, const char *text, size_t len) {
  jdec d = {.p = text, .end = text + len};
  lua_pushcfunction(L, decode_protected);
  lua_pushlightuserdata(L, &d);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK)
    return 1;
  if (lua_touserdata(L, -1) != &jd_sentinel)
    return lua_error(L); /* memory (or a kill): raised */
  lua_pop(L, 1);
  lua_pushnil(L);
  if (d.too_deep)
    lua_pushfstring(L, "json: nesting deeper than %d at byte %d", JSON_MAX_DEPTH,
                    (int)(d.bad - text) + 1);
  else
    lua_pushfstring(L, "json: invalid JSON at byte %d", (int)(d.bad - text) + 1);
  return 2;
}

/* ---- Lua -> JSON -----------------------------------------------------------------------------
 * One walker, two outputs: JSON text (json.encode, http json bodies) written straight into a
 * buffer from the State's allocator, so that every byte is charged to the run and nothing
 * leaks when an error unwinds; or a cJSON tree (ctx:show), built top-down (each item attached
 * to its parent before its children are encoded, so that freeing the root frees everything)
 * with each node charged to the run before it is allocated (run_charge). */

typedef struct enc {
  lua_State *L;
  tq_lua_run *run; /* charged for the tree; NULL outside a run */
  const char *what;
  int seen; /* stack index of the set of tables being encoded (cycle check) */
  int text; /* 1: text into out; 0: a tree at root */
  cJSON *root;
  size_t charged; /* bytes run_charge'd for the tree */
  lua_Alloc alloc;
  void *alloc_ud;
  char *out;
  size_t len, cap;
  char path[256];
} enc;

static void enc_fail(enc *e, const char *why) {
  luaL_error(e->L, "%s: %s at %s", e->what, why, e->path);
}

/* ---- the text ---- */

static void out_reserve(enc *e, size_t n) {
  if (e->cap - e->len >= n)
    return;
  if (n > ((size_t)1 << 40) - e->len)
    enc_fail(e, "text too large");
  size_t cap = e->cap ? e->cap : 256;
  while (cap - e->len < n)
    cap *= 2;
  char *p = e->alloc(e->alloc_ud, e->out, e->cap, cap);
  if (p == NULL)
    enc_fail(e, "not enough memory for the text");
  e->out = p;
  e->cap = cap;
}

static void out_add(enc *e, const char *s, size_t n) {
  out_reserve(e, n);
  memcpy(e->out + e->len, s, n);
  e->len += n;
}

static void out_char(enc *e, char c) { out_add(e, &c, 1); }

/* A JSON string: escapes as cJSON writes them (quote, backslash, \b\f\n\r\t, other control
 * bytes as \u00XX); other bytes as they are. */
static void out_string(enc *e, const char *s, size_t n) {
  out_char(e, '"');
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out_add(e, s + run, i - run);
    run = i + 1;
    char esc[8];
    const char *short_esc = c == '"'    ? "\\\""
                            : c == '\\' ? "\\\\"
                            : c == '\b' ? "\\b"
                            : c == '\f' ? "\\f"
                            : c == '\n' ? "\\n"
                            : c == '\r' ? "\\r"
                            : c == '\t' ? "\\t"
                                        : NULL;
    if (short_esc)
      out_add(e, short_esc, 2);
    else {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      out_add(e, esc, 6);
    }
  }
  out_add(e, s + run, n - run);
  out_char(e, '"');
}

/* A number as cJSON prints it (integral doubles in int range as integers, else the shortest
 * of %.15g and %.17g that reads back the same), but Lua integers exactly. */
static void out_number(enc *e, int idx) {
  char buf[64];
  int n;
  if (lua_isinteger(e->L, idx))
    n = snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(e->L, idx));
  else {
    double d = (double)lua_tonumber(e->L, idx);
    if (d == floor(d) && fabs(d) <= 2147483647.0)
      n = snprintf(buf, sizeof buf, "%d", (int)d);
    else {
      n = snprintf(buf, sizeof buf, "%1.15g", d);
      if (strtod(buf, NULL) != d)
        n = snprintf(buf, sizeof buf, "%1.17g", d);
    }
  }
  out_add(e, buf, (size_t)n);
}

/* ---- the tree ---- */

static void enc_charge(enc *e, size_t n) {
  if (e->run == NULL)
    return;
  run_charge(e->L, e->run, n);
  e->charged += n;
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

/* Charges a node of the tree (its key copy and string value of vlen bytes included). */
static void enc_charge_node(enc *e, const char *key, size_t vlen) {
  size_t n = C_COST(sizeof(cJSON));
  if (key)
    n += C_COST(strlen(key) + 1);
  if (vlen)
    n += C_COST(vlen);
  enc_charge(e, n);
}

/* ---- the walk ---- */

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
  size_t n = 0;
  int array = enc_is_array(L, idx, &n);
  cJSON *out = NULL;
  if (e->text)
    out_char(e, array ? '[' : '{');
  else {
    enc_charge_node(e, key, 0);
    out = array ? cJSON_CreateArray() : cJSON_CreateObject();
    enc_attach(e, parent, key, out);
  }
  for (size_t i = 1; array && i <= n; i++) {
    if (e->text && i > 1)
      out_char(e, ',');
    lua_rawgeti(L, idx, (lua_Integer)i);
    size_t old = enc_path_push(e, NULL, (lua_Integer)i);
    enc_into(e, lua_gettop(L), depth + 1, out, NULL);
    e->path[old] = '\0';
    lua_pop(L, 1);
  }
  if (!array)
    lua_pushnil(L);
  for (int first = 1; !array && lua_next(L, idx); first = 0) {
    int kt = lua_type(L, -2);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
      enc_fail(e, "a key that is not a string or a number");
    lua_pushvalue(L, -2);
    size_t klen;
    const char *k = lua_tolstring(L, -1, &klen); /* converts the copy, never the key itself */
    if (!e->text && strlen(k) != klen)
      enc_fail(e, "a key with a NUL byte"); /* cJSON's keys end at a NUL: refused, never cut */
    if (e->text) {
      if (!first)
        out_char(e, ',');
      out_string(e, k, klen);
      out_char(e, ':');
    }
    size_t old = enc_path_push(e, k, 0);
    enc_into(e, lua_gettop(L) - 1, depth + 1, out, k);
    e->path[old] = '\0';
    lua_pop(L, 2);
  }
  if (e->text)
    out_char(e, array ? ']' : '}');
  lua_pushvalue(L, idx);
  lua_pushnil(L);
  lua_rawset(L, e->seen);
}

static void enc_null(enc *e, cJSON *parent, const char *key) {
  if (e->text)
    out_add(e, "null", 4);
  else {
    enc_charge_node(e, key, 0);
    enc_attach(e, parent, key, cJSON_CreateNull());
  }
}

static void enc_into(enc *e, int idx, int depth, cJSON *parent, const char *key) {
  lua_State *L = e->L;
  luaL_checkstack(L, 8, "json: nesting too deep");
  switch (lua_type(L, idx)) {
  case LUA_TNIL: enc_null(e, parent, key); return;
  case LUA_TBOOLEAN:
    if (e->text) {
      if (lua_toboolean(L, idx))
        out_add(e, "true", 4);
      else
        out_add(e, "false", 5);
    } else {
      enc_charge_node(e, key, 0);
      enc_attach(e, parent, key, cJSON_CreateBool(lua_toboolean(L, idx)));
    }
    return;
  case LUA_TNUMBER: {
    lua_Number d = lua_tonumber(L, idx);
    if (!lua_isinteger(L, idx) && !isfinite(d))
      enc_fail(e, "a number that is not finite");
    if (e->text)
      out_number(e, idx);
    else {
      enc_charge_node(e, key, 0);
      enc_attach(e, parent, key, cJSON_CreateNumber(d));
    }
    return;
  }
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (e->text)
      out_string(e, s, len);
    else {
      if (strlen(s) != len) /* cJSON's strings end at a NUL: refused, never cut short */
        enc_fail(e, "a string with a NUL byte");
      enc_charge_node(e, key, strlen(s) + 1);
      enc_attach(e, parent, key, cJSON_CreateString(s));
    }
    return;
  }
  case LUA_TLIGHTUSERDATA:
    if (is_null(L, idx)) {
      enc_null(e, parent, key);
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

/* Argument 1: the enc; argument 2: the value. Text: pushes the text (its push failing is an
 * error of this protected call too, so that the caller frees the buffer whatever happens). */
static int enc_protected(lua_State *L) {
  enc *e = lua_touserdata(L, 1);
  lua_newtable(L);
  e->seen = lua_gettop(L);
  enc_into(e, 2, 0, NULL, NULL);
  if (!e->text)
    return 0;
  lua_pushlstring(L, e->out ? e->out : "", e->len);
  return 1;
}

/* Runs the walk of the value at idx under a pcall; raises its error after cleaning up. */
static void enc_run(enc *e, int idx) {
  lua_State *L = e->L;
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, enc_protected);
  lua_pushlightuserdata(L, e);
  lua_pushvalue(L, idx);
  int st = lua_pcall(L, 2, e->text, 0);
  if (e->out)
    e->alloc(e->alloc_ud, e->out, e->cap, 0);
  e->out = NULL;
  if (st == LUA_OK)
    return;
  cJSON_Delete(e->root);
  e->root = NULL;
  if (e->run)
    run_uncharge(e->run, e->charged);
  lua_error(L);
}

void json_encode_push(lua_State *L, int idx, const char *what) {
  enc e = {.L = L, .what = what, .text = 1, .path = "$"};
  e.alloc = lua_getallocf(L, &e.alloc_ud);
  enc_run(&e, idx);
}

cJSON *json_from_lua(lua_State *L, int idx, const char *what, size_t *charged) {
  enc e = {.L = L, .run = run_of(L), .what = what, .path = "$"};
  enc_run(&e, idx);
  *charged = e.charged;
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
  json_encode_push(L, 1, "json.encode");
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
