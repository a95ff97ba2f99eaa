/* ctx.c: what an entry receives besides the object: ctx (config, secrets, the change set
 * methods) and obj (a read-only view of the object), plus the tq_changeset they fill. A
 * secret is an opaque userdata: only http header values turn it back into its text. */
#include <stdlib.h>
#include <string.h>

#include "lua_int.h"

static const char ctx_magic = 'c'; /* its address marks a ctx userdata */
static char obj_mt_key;            /* registry key of the obj views' metatable */
static char obj_lazy_key;          /* view key of the packed lists not yet built */

/* ---- change set --------------------------------------------------------------------------- */

void tq_changeset_init(tq_changeset *cs) {
  memset(cs, 0, sizeof *cs);
  cs->score = -1;
}

static void attrs_free(tq_cs_attr *a, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(a[i].name);
    free(a[i].value);
  }
  free(a);
}

void tq_changeset_free(tq_changeset *cs) {
  attrs_free(cs->attrs, cs->n_attrs);
  for (size_t i = 0; i < cs->n_tags; i++)
    free(cs->tags[i]);
  free(cs->tags);
  for (size_t i = 0; i < cs->n_links; i++) {
    free(cs->links[i].object_type);
    free(cs->links[i].value);
    free(cs->links[i].link_type);
    free(cs->links[i].description);
  }
  free(cs->links);
  for (size_t i = 0; i < cs->n_indicators; i++) {
    free(cs->indicators[i].indicator_type);
    free(cs->indicators[i].value);
    attrs_free(cs->indicators[i].attrs, cs->indicators[i].n_attrs);
  }
  free(cs->indicators);
  free(cs->status);
  cJSON_Delete(cs->show);
  tq_changeset_init(cs);
}

int tq_changeset_empty(const tq_changeset *cs) {
  return cs->n_attrs == 0 && cs->n_tags == 0 && cs->n_links == 0 && cs->n_indicators == 0 &&
         cs->score < 0 && cs->status == NULL && cs->show == NULL;
}

/* ---- secrets ------------------------------------------------------------------------------ */

typedef struct secret_ud {
  const tq_lua_script *script;
  size_t index;
} secret_ud;

int secret_test(lua_State *L, int idx, const tq_lua_script *script, const char **real) {
  secret_ud *s = luaL_testudata(L, idx, SECRET_MT);
  if (s == NULL)
    return 0;
  if (real)
    *real = (script && s->script == script) ? script->secrets[s->index].value : NULL;
  return 1;
}

static int secret_tostring(lua_State *L) {
  lua_pushliteral(L, SECRET_MASK);
  return 1;
}

/* secret .. x and x .. secret give the mask in place of the secret. */
static int secret_concat(lua_State *L) {
  for (int i = 1; i <= 2; i++) {
    if (secret_test(L, i, NULL, NULL))
      lua_pushliteral(L, SECRET_MASK);
    else if (lua_type(L, i) == LUA_TSTRING || lua_type(L, i) == LUA_TNUMBER)
      lua_pushvalue(L, i);
    else
      return luaL_error(L, "attempt to concatenate a %s value", luaL_typename(L, i));
  }
  lua_concat(L, 2);
  return 1;
}

static int secret_index(lua_State *L) {
  return luaL_error(L, "a secret is opaque: it can only be used as an http header value");
}

/* ctx.secret(key): the plugin's own secret as an opaque value, or nil if it has none. */
static int ctx_secret(lua_State *L) {
  tq_lua_run *run = run_check(L, "ctx.secret");
  int arg = ctx_is(L, 1) ? 2 : 1;
  const char *key = luaL_checkstring(L, arg);
  const tq_lua_script *s = run->script;
  for (size_t i = 0; i < s->n_secrets; i++) {
    if (strcmp(s->secrets[i].key, key) == 0) {
      secret_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
      u->script = s;
      u->index = i;
      luaL_setmetatable(L, SECRET_MT);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

/* ---- change set methods ---------------------------------------------------------------------- */

/* The text of argument idx for the change set: strings and numbers (converted), capped,
 * with secret values masked, pushed as a Lua string (so that a later error leaks nothing)
 * and returned. Secrets and other types raise an error naming the method and the field.
 * [-0, +1] */
static const char *cs_park(lua_State *L, int idx, const char *method, const char *field) {
  idx = lua_absindex(L, idx);
  if (secret_test(L, idx, NULL, NULL))
    luaL_error(L, "%s: %s is a secret; secrets cannot be stored", method, field);
  int t = lua_type(L, idx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "%s: %s must be a string or a number (got %s)", method, field,
               luaL_typename(L, idx));
  size_t len;
  lua_pushvalue(L, idx);
  const char *s = lua_tolstring(L, -1, &len);
  if (len > TQ_LUA_MAX_VALUE)
    luaL_error(L, "%s: %s is %d bytes, over the %d-byte cap", method, field, (int)len,
               TQ_LUA_MAX_VALUE);
  if (strlen(s) != len)
    luaL_error(L, "%s: %s contains a NUL byte", method, field);
  if (!redact_needed(run_of(L)->script, s))
    return s; /* the common case: no copy */
  char *copy = redact_dup(run_of(L)->script, s);
  if (copy == NULL)
    luaL_error(L, "%s: out of memory", method);
  lua_pushstring(L, copy);
  free(copy);
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

/* Optional text field key of the table at idx, parked like cs_park; NULL (and nil pushed)
 * when absent. [-0, +1] */
static const char *cs_park_field(lua_State *L, int idx, const char *key, const char *method) {
  if (lua_isnoneornil(L, idx)) {
    lua_pushnil(L);
    return NULL;
  }
  lua_getfield(L, idx, key);
  if (lua_isnil(L, -1))
    return NULL;
  const char *v = cs_park(L, -1, method, key);
  lua_remove(L, -2);
  return v;
}

/* A malloc'd copy of s (NULL stays NULL), charged to the run first; raises on out of memory
 * or past the run's memory budget. */
static char *cs_dup(lua_State *L, const char *s, const char *method) {
  if (s == NULL)
    return NULL;
  run_charge(L, run_of(L), C_COST(strlen(s) + 1));
  char *d = tq_strdup(s);
  if (d == NULL)
    luaL_error(L, "%s: out of memory", method);
  return d;
}

/* Makes room for one more item in *arr (n items of size sz), refusing past
 * TQ_LUA_MAX_ITEMS, and returns the new slot zeroed. The caller counts it once filled. The
 * array doubles when n is 0 or a power of two (its capacity is then n), so that filling it
 * costs a few reallocations, not one per item; only the run appends to its arrays. */
static void *cs_grow(lua_State *L, void **arr, size_t n, size_t sz, const char *method) {
  if (n >= TQ_LUA_MAX_ITEMS)
    luaL_error(L, "%s: change set full (%d entries)", method, TQ_LUA_MAX_ITEMS);
  if ((n & (n - 1)) == 0) {
    run_charge(L, run_of(L), (n ? n : 1) * sz + (n ? 0 : 16)); /* the array's growth */
    void *p = realloc(*arr, (n ? 2 * n : 1) * sz);
    if (p == NULL)
      luaL_error(L, "%s: out of memory", method);
    *arr = p;
  }
  void *p = *arr;
  memset((char *)p + n * sz, 0, sz);
  return (char *)p + n * sz;
}

/* Methods take ctx as self (ctx:tag(x)); ctx.tag(x) is accepted too. Returns the index of
 * the first real argument. */
static int ctx_args(lua_State *L) { return ctx_is(L, 1) ? 2 : 1; }

/* The ctx of one item of a batch run (ctx:item(i)): the run's id and the item's index. Only
 * the run that made it may use it: a later run (an item ctx kept in a module's upvalue) is
 * refused, as is a run that is not the batch's. */
typedef struct item_ud {
  uint64_t run_id;
  size_t index;
} item_ud;

/* The item of the item ctx at idx, checked against the running run; raises naming what. */
static tq_lua_item *item_of(lua_State *L, tq_lua_run *run, int idx, const char *what) {
  const item_ud *u = luaL_testudata(L, idx, ITEM_MT);
  if (u == NULL)
    luaL_error(L, "%s: call it on an item ctx (c:%s(...), where c = ctx:item(i))", what,
               strchr(what, ':') ? strchr(what, ':') + 1 : what);
  if (u->run_id != run->id || u->index >= run->n_items)
    luaL_error(L,
               "%s: this item ctx belongs to run %I, not to this one (run %I): an item ctx is "
               "valid only during the batch run that made it",
               what, (lua_Integer)u->run_id, (lua_Integer)run->id);
  return &run->items[u->index];
}

/* Where a change method records: the change set of the item when self is an item ctx, else
 * the run's own (refused in a batch run: a batch entry records per item). Sets *a to the
 * index of the first real argument and *show_charge to the set's show charge. */
static tq_changeset *cs_target(lua_State *L, const char *what, int *a, size_t **show_charge) {
  tq_lua_run *run = run_check(L, what);
  if (luaL_testudata(L, 1, ITEM_MT)) {
    tq_lua_item *it = item_of(L, run, 1, what);
    *a = 2;
    if (show_charge)
      *show_charge = &it->show_charge;
    return &it->cs;
  }
  if (run->n_items > 0)
    luaL_error(L, "%s: a batch entry records per item: use ctx:item(i):%s(...)", what,
               strchr(what, ':') ? strchr(what, ':') + 1 : what);
  *a = ctx_args(L);
  if (show_charge)
    *show_charge = &run->show_charge;
  return &run->cs;
}

/* Fills slot with copies of name and value, charged to the run first; raises (the slot
 * left empty) past the budget or on no memory. */
static void cs_pair(lua_State *L, tq_lua_run *run, tq_cs_attr *slot, const char *name,
                    const char *value, const char *what) {
  run_charge(L, run, C_COST(strlen(name) + 1) + C_COST(strlen(value) + 1));
  slot->name = tq_strdup(name);
  slot->value = tq_strdup(value);
  if (slot->name == NULL || slot->value == NULL) {
    free(slot->name);
    free(slot->value);
    slot->name = slot->value = NULL;
    luaL_error(L, "%s: out of memory", what);
  }
}

/* Raises when name (a tag, an attribute name, a link type) holds a control character: the
 * library would refuse it when the change set is applied (tq_lib_name_check); a dry run says
 * so too, at the call that recorded it. */
static void cs_name_check(lua_State *L, const char *method, const char *field, const char *name) {
  tq_err e;
  if (name && tq_lib_name_check(field, name, &e) != TQ_OK)
    luaL_error(L, "%s: %s", method, e.msg);
}

/* Appends name = value (checked by cs_park) to the change set cs; raises on no memory. */
static void cs_add_attr(lua_State *L, tq_changeset *cs, const char *name, const char *value,
                        const char *what) {
  cs_name_check(L, what, "attribute name", name);
  cs_pair(L, run_of(L), cs_grow(L, (void **)&cs->attrs, cs->n_attrs, sizeof(tq_cs_attr), what),
          name, value, what);
  cs->n_attrs++;
}

static int ctx_attribute(lua_State *L) {
  int a;
  tq_changeset *cs = cs_target(L, "ctx:attribute", &a, NULL);
  const char *name = cs_park(L, a, "ctx:attribute", "name");
  const char *value = cs_park(L, a + 1, "ctx:attribute", "value");
  cs_add_attr(L, cs, name, value, "ctx:attribute");
  return 0;
}

/* ctx:attributes(names, values): ctx:attribute(names[i], values[i]) for i = 1..#names, in
 * one call (a mapper that records a few dozen attributes per object). The lists must have
 * the same length; each pair is checked as ctx:attribute checks it. */
static int ctx_attributes(lua_State *L) {
  int a;
  tq_changeset *cs = cs_target(L, "ctx:attributes", &a, NULL);
  luaL_checktype(L, a, LUA_TTABLE);
  luaL_checktype(L, a + 1, LUA_TTABLE);
  lua_Unsigned n = lua_rawlen(L, a);
  if (lua_rawlen(L, a + 1) != n)
    return luaL_error(L, "ctx:attributes: %d names but %d values", (int)n,
                      (int)lua_rawlen(L, a + 1));
  for (lua_Unsigned i = 1; i <= n; i++) {
    lua_rawgeti(L, a, (lua_Integer)i);
    lua_rawgeti(L, a + 1, (lua_Integer)i);
    const char *name = cs_park(L, -2, "ctx:attributes", "name");
    const char *value = cs_park(L, -2, "ctx:attributes", "value");
    cs_add_attr(L, cs, name, value, "ctx:attributes");
    lua_pop(L, 4);
  }
  return 0;
}

static int ctx_tag(lua_State *L) {
  int a;
  tq_changeset *cs = cs_target(L, "ctx:tag", &a, NULL);
  const char *tag = cs_park(L, a, "ctx:tag", "tag");
  cs_name_check(L, "ctx:tag", "tag", tag);
  char **slot = cs_grow(L, (void **)&cs->tags, cs->n_tags, sizeof *slot, "ctx:tag");
  *slot = cs_dup(L, tag, "ctx:tag");
  cs->n_tags++;
  return 0;
}

static int ctx_score(lua_State *L) {
  int a;
  tq_changeset *cs = cs_target(L, "ctx:score", &a, NULL);
  lua_Number n = luaL_checknumber(L, a);
  if (!(n >= 0 && n <= 10))
    return luaL_error(L, "ctx:score: %f is out of range 0..10", (double)n);
  cs->score = (int)n;
  return 0;
}

static int ctx_status(lua_State *L) {
  int a;
  tq_changeset *cs = cs_target(L, "ctx:status", &a, NULL);
  const char *name = luaL_checkstring(L, a);
  int id = tq_lib_status_from_name(name);
  if (id == 0)
    return luaL_error(L,
                      "ctx:status: '%s' is not a status (Active, Expired, Indirect, Review, "
                      "Whitelisted)",
                      name);
  char *copy = cs_dup(L, tq_lib_status_name(id), "ctx:status");
  if (cs->status)
    run_uncharge(run_of(L), C_COST(strlen(cs->status) + 1));
  free(cs->status);
  cs->status = copy;
  return 0;
}

/* ctx:link(object_type, value, {link_type = ..., description = ...}) */
static int ctx_link(lua_State *L) {
  int a;
  tq_changeset *cs = cs_target(L, "ctx:link", &a, NULL);
  if (!lua_isnoneornil(L, a + 2))
    luaL_checktype(L, a + 2, LUA_TTABLE);
  const char *type = cs_park(L, a, "ctx:link", "object type");
  const char *value = cs_park(L, a + 1, "ctx:link", "value");
  const char *link_type = cs_park_field(L, a + 2, "link_type", "ctx:link");
  const char *desc = cs_park_field(L, a + 2, "description", "ctx:link");
  cs_name_check(L, "ctx:link", "link type", link_type);
  if (!tq_lib_object_type_valid(type))
    return luaL_error(L, "ctx:link: '%s' is not an object type", type);
  tq_cs_link *slot = cs_grow(L, (void **)&cs->links, cs->n_links, sizeof *slot, "ctx:link");
  cs->n_links++; /* counted first: its members are freed with the set if a copy fails */
  slot->object_type = cs_dup(L, type, "ctx:link");
  slot->value = cs_dup(L, value, "ctx:link");
  slot->link_type = cs_dup(L, link_type, "ctx:link");
  slot->description = cs_dup(L, desc, "ctx:link");
  return 0;
}

/* Checks every {name = value} of the table at idx (value: string, number or a list of
 * them) and returns how many attributes it gives. */
static size_t indicator_attrs_check(lua_State *L, int idx) {
  size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "ctx:indicator: attribute names must be strings");
    const char *name = lua_tostring(L, -2);
    cs_name_check(L, "ctx:indicator", "attribute name", name);
    size_t n = lua_istable(L, -1) ? lua_rawlen(L, -1) : 1;
    for (size_t i = 1; i <= n; i++) {
      if (lua_istable(L, -1))
        lua_rawgeti(L, -1, (lua_Integer)i);
      else
        lua_pushvalue(L, -1);
      cs_park(L, -1, "ctx:indicator", name);
      lua_pop(L, 2);
      count++;
    }
    lua_pop(L, 1);
  }
  if (count > TQ_LUA_MAX_ITEMS)
    luaL_error(L, "ctx:indicator: %d attributes, over the cap of %d", (int)count, TQ_LUA_MAX_ITEMS);
  return count;
}

/* Fills ind->attrs from the table at idx, already checked. Each attribute is counted once
 * both copies exist, so that an out-of-memory error leaves a consistent entry. */
static void indicator_attrs_fill(lua_State *L, int idx, tq_cs_indicator *ind) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *name = lua_tostring(L, -2);
    size_t n = lua_istable(L, -1) ? lua_rawlen(L, -1) : 1;
    for (size_t i = 1; i <= n; i++) {
      if (lua_istable(L, -1))
        lua_rawgeti(L, -1, (lua_Integer)i);
      else
        lua_pushvalue(L, -1);
      const char *value = cs_park(L, -1, "ctx:indicator", name);
      cs_pair(L, run_of(L),
              cs_grow(L, (void **)&ind->attrs, ind->n_attrs, sizeof(tq_cs_attr), "ctx:indicator"),
              name, value, "ctx:indicator");
      ind->n_attrs++;
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
}

/* ctx:indicator(type, value, {attribute = value, ...}): a related indicator, linked to the
 * object of the run. */
static int ctx_indicator(lua_State *L) {
  int a;
  tq_changeset *cs = cs_target(L, "ctx:indicator", &a, NULL);
  int has_attrs = !lua_isnoneornil(L, a + 2);
  if (has_attrs) {
    luaL_checktype(L, a + 2, LUA_TTABLE);
    indicator_attrs_check(L, a + 2);
  }
  const char *type = cs_park(L, a, "ctx:indicator", "type");
  const char *value = cs_park(L, a + 1, "ctx:indicator", "value");
  if (tq_lib_indicator_type_canon(type, NULL) == NULL)
    return luaL_error(L, "ctx:indicator: '%s' is not an indicator type", type);
  tq_cs_indicator *slot =
      cs_grow(L, (void **)&cs->indicators, cs->n_indicators, sizeof *slot, "ctx:indicator");
  cs->n_indicators++;
  slot->indicator_type = cs_dup(L, tq_lib_indicator_type_canon(type, NULL), "ctx:indicator");
  slot->value = cs_dup(L, value, "ctx:indicator");
  if (has_attrs)
    indicator_attrs_fill(L, a + 2, slot);
  return 0;
}

/* ctx:show(value): what the analyst sees; any JSON-able value, replacing an earlier one. */
static int ctx_show(lua_State *L) {
  size_t *show_charge;
  int a;
  tq_changeset *cs = cs_target(L, "ctx:show", &a, &show_charge);
  tq_lua_run *run = run_of(L);
  luaL_checkany(L, a);
  size_t charged = 0;
  cJSON *show = show_from_lua(L, a, "ctx:show", &charged);
  cJSON_Delete(cs->show);
  run_uncharge(run, *show_charge);
  cs->show = show;
  *show_charge = charged;
  return 0;
}

/* The outcome part of a show value: an object with only its "found" (boolean) and
 * "message" (string, redacted) fields, read raw (through a read-only view to its real
 * table): the host also calls this on a table the entry returned, outside the run's budget,
 * where a metamethod of the script must not run. Charged to the run (*charged). NULL when
 * out of memory. [-0, +0] */
static cJSON *show_outcome(lua_State *L, int idx, size_t *charged) {
  tq_lua_run *run = run_of(L);
  int top = lua_gettop(L);
  int is_table = lua_istable(L, idx);
  if (is_table && unfreeze(L, idx))
    idx = lua_gettop(L);
  *charged = 3 * C_COST(sizeof(cJSON)) + C_COST(sizeof "message") + C_COST(sizeof "found");
  if (is_table) {
    lua_pushliteral(L, "message");
    if (lua_rawget(L, idx) == LUA_TSTRING)
      *charged += 2 * C_COST(lua_rawlen(L, -1) + 1); /* the redacted copy and cJSON's */
    lua_pop(L, 1);
  }
  run_charge(L, run, *charged);
  cJSON *out = cJSON_CreateObject();
  if (out == NULL || !is_table) {
    lua_settop(L, top);
    return out;
  }
  lua_pushliteral(L, "found");
  if (lua_rawget(L, idx) == LUA_TBOOLEAN)
    cJSON_AddBoolToObject(out, "found", lua_toboolean(L, -1));
  lua_pushliteral(L, "message");
  if (lua_rawget(L, idx) == LUA_TSTRING) {
    char *msg = redact_dup(run->script, lua_tostring(L, -1));
    if (msg)
      cJSON_AddStringToObject(out, "message", msg);
    free(msg);
  }
  lua_settop(L, top);
  return out;
}

cJSON *show_from_lua(lua_State *L, int idx, const char *what, size_t *charged) {
  tq_lua_run *run = run_of(L);
  *charged = 0;
  if (run && run->script && run->script->outcome_only) {
    cJSON *out = show_outcome(L, lua_absindex(L, idx), charged);
    if (out == NULL) {
      run_uncharge(run, *charged);
      luaL_error(L, "%s: out of memory", what);
    }
    return out;
  }
  cJSON *show = json_from_lua(L, idx, what, charged);
  if (redact_json(run ? run->script : NULL, show) != TQ_OK) {
    cJSON_Delete(show);
    run_uncharge(run, *charged);
    luaL_error(L, "%s: out of memory", what);
  }
  return show;
}

static int ctx_newindex(lua_State *L) {
  return luaL_error(L, "attempt to modify ctx (field '%s'): use its methods",
                    luaL_tolstring(L, 2, NULL));
}

static int ctx_tostring(lua_State *L) {
  tq_lua_run *run = run_of(L);
  lua_pushfstring(L, "ctx(run %I)", (lua_Integer)(run ? run->id : 0));
  return 1;
}

/* ---- items of a batch run ---------------------------------------------------------------------
 * A batch entry is called as entry(items, ctx) (tq_lua_run_start_batch); ctx:item(i) gives
 * the ctx of items[i], whose methods are the change methods above recording into that item's
 * own change set (same checks, same charging), plus c:fail(reason). A refused change fails
 * that item only: the method returns nil, reason and the item ends failed with it. */

/* ctx:item(i): the ctx of item i (1-based) of the batch. */
static int ctx_item(lua_State *L) {
  tq_lua_run *run = run_check(L, "ctx:item");
  int a = ctx_args(L);
  if (run->n_items == 0)
    return luaL_error(L, "ctx:item: this is not a batch run (only a batch entry has items)");
  lua_Integer i = luaL_checkinteger(L, a);
  if (i < 1 || (lua_Unsigned)i > run->n_items)
    return luaL_error(L, "ctx:item: item %I is out of range (the batch has %I items)", i,
                      (lua_Integer)run->n_items);
  item_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->run_id = run->id;
  u->index = (size_t)(i - 1);
  luaL_setmetatable(L, ITEM_MT);
  return 1;
}

/* Marks the item failed with reason (taken; NULL: out of memory) unless it failed already. */
static void item_fail(tq_lua_item *it, char *reason) {
  if (it->failed) {
    free(reason);
    return;
  }
  it->failed = reason ? reason : tq_strdup("out of memory recording the item's failure");
}

/* c:fail(reason): the item failed (the per-item "return nil, reason"); its change set is not
 * written. A later change to it is ignored. */
static int item_fail_method(lua_State *L) {
  tq_lua_run *run = run_check(L, "c:fail");
  tq_lua_item *it = item_of(L, run, 1, "c:fail");
  it->touched = 1;
  const char *reason =
      lua_isnoneornil(L, 2) ? "no reason given" : cs_park(L, 2, "c:fail", "reason");
  item_fail(it, tq_strdup(reason));
  return 0;
}

/* An item ctx's change method: the ctx method in upvalue 1 (named by upvalue 2) called
 * protected on the item's change set. A refused change (a bad value, a full set) fails the
 * item and returns nil, reason; a kill (the run's budget) goes on up as it would from ctx. */
static int item_method(lua_State *L) {
  const char *what = lua_tostring(L, lua_upvalueindex(2));
  tq_lua_run *run = run_check(L, what);
  tq_lua_item *it = item_of(L, run, 1, what);
  it->touched = 1;
  if (it->failed) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: item %I already failed: %s", what, (lua_Integer)(it - run->items) + 1,
                    it->failed);
    return 2;
  }
  int nargs = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  int st = lua_pcall(L, nargs, 0, 0);
  if (st == LUA_OK)
    return 0;
  if (st == LUA_ERRMEM || run->kill != KILL_NONE)
    return lua_error(L);
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "change refused";
  item_fail(it, redact_dup(run->script, msg));
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

static int item_tostring(lua_State *L) {
  const item_ud *u = luaL_checkudata(L, 1, ITEM_MT);
  lua_pushfstring(L, "ctx item %I (run %I)", (lua_Integer)u->index + 1, (lua_Integer)u->run_id);
  return 1;
}

static int item_newindex(lua_State *L) {
  return luaL_error(L, "attempt to modify an item ctx (field '%s'): use its methods",
                    luaL_tolstring(L, 2, NULL));
}

/* Names the metatable on top (__name) and hides it from scripts (__metatable = false), as
 * every host metatable is. [-0, +0] */
static void mt_seal(lua_State *L, const char *name) {
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
}

static const luaL_Reg item_changes[] = {{"c:attribute", ctx_attribute},
                                        {"c:attributes", ctx_attributes},
                                        {"c:tag", ctx_tag},
                                        {"c:score", ctx_score},
                                        {"c:status", ctx_status},
                                        {"c:link", ctx_link},
                                        {"c:indicator", ctx_indicator},
                                        {"c:show", ctx_show},
                                        {NULL, NULL}};

static void item_register(lua_State *L) {
  luaL_newmetatable(L, ITEM_MT);
  lua_createtable(L, 0, 9);
  for (const luaL_Reg *m = item_changes; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_pushstring(L, m->name);
    lua_pushcclosure(L, item_method, 2);
    lua_setfield(L, -2, m->name + 2);
  }
  lua_pushcfunction(L, item_fail_method);
  lua_setfield(L, -2, "fail");
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, item_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, item_tostring);
  lua_setfield(L, -2, "__tostring");
  mt_seal(L, "ctx item");
  lua_pop(L, 1);
}

static const luaL_Reg ctx_methods[] = {{"secret", ctx_secret},
                                       {"item", ctx_item},
                                       {"attribute", ctx_attribute},
                                       {"attributes", ctx_attributes},
                                       {"tag", ctx_tag},
                                       {"score", ctx_score},
                                       {"status", ctx_status},
                                       {"link", ctx_link},
                                       {"indicator", ctx_indicator},
                                       {"show", ctx_show},
                                       {NULL, NULL}};

int ctx_is(lua_State *L, int idx) {
  const void *const *p = lua_touserdata(L, idx);
  return p && lua_type(L, idx) == LUA_TUSERDATA && lua_rawlen(L, idx) == sizeof(void *) &&
         *p == &ctx_magic;
}

static void obj_register(lua_State *L);

void ctx_register(lua_State *L) {
  luaL_newmetatable(L, SECRET_MT);
  lua_pushcfunction(L, secret_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, secret_concat);
  lua_setfield(L, -2, "__concat");
  lua_pushcfunction(L, secret_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, secret_index);
  lua_setfield(L, -2, "__newindex");
  mt_seal(L, "secret");
  lua_pop(L, 1);
  item_register(L);
  obj_register(L);
}

/* The ctx of a script: a userdata holding only a marker, shared by every run of the script
 * (the methods find their run through the thread), whose __index is one table with the
 * methods, the frozen config and the outcome_only flag, so that ctx.config and ctx:tag are
 * plain lookups. Argument 1: the frozen config; argument 2: outcome_only. [-0, +1] */
int ctx_new_protected(lua_State *L) {
  int outcome_only = lua_toboolean(L, 2);
  const void **p = lua_newuserdatauv(L, sizeof(void *), 0);
  *p = &ctx_magic;
  lua_createtable(L, 0, 5);
  luaL_newlib(L, ctx_methods);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "config");
  lua_pushboolean(L, outcome_only);
  lua_setfield(L, -2, "outcome_only");
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, ctx_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, ctx_tostring);
  lua_setfield(L, -2, "__tostring");
  mt_seal(L, "ctx");
  lua_setmetatable(L, -2);
  return 1;
}

void ctx_push(lua_State *L, tq_lua_run *run) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, run->script->ctx_ref);
}

/* ---- obj ----------------------------------------------------------------------------------
 * obj is a view (read-only) whose scalar fields are set at start; its lists (attributes,
 * sources, tags) are packed into one string and built only when a script first reads one of
 * them, or iterates or encodes obj: most entries read obj.value and nothing else. For a
 * script with obj_lists_later, the object came without its lists (tq_lib_object_head) and
 * its id stands in for the packed string: the lists are read from the library then. */

static void set_str(lua_State *L, const char *key, const char *v) {
  if (v == NULL)
    return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, key);
}

/* Packing: three uint32 counts (attributes, sources, tags), then for each string one byte
 * (1 present, 0 NULL) and, when present, its text with its NUL. An attribute is three
 * strings: name, value, source. */
static void pack_str(luaL_Buffer *b, const char *v) {
  luaL_addchar(b, v ? 1 : 0);
  if (v)
    luaL_addlstring(b, v, strlen(v) + 1);
}

static void pack_lists(lua_State *L, const tq_object *obj) {
  uint32_t counts[3] = {(uint32_t)obj->n_attrs, (uint32_t)obj->n_sources, (uint32_t)obj->n_tags};
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, (const char *)counts, sizeof counts);
  for (size_t i = 0; i < obj->n_attrs; i++) {
    pack_str(&b, obj->attrs[i].name);
    pack_str(&b, obj->attrs[i].value);
    pack_str(&b, obj->attrs[i].source);
  }
  for (size_t i = 0; i < obj->n_sources; i++)
    pack_str(&b, obj->sources[i]);
  for (size_t i = 0; i < obj->n_tags; i++)
    pack_str(&b, obj->tags[i]);
  luaL_pushresult(&b);
}

/* pack_lists of the object in upvalue 1, as a lua_CFunction (so that the caller can free
 * the object whatever happens). [-0, +1] */
static int pack_lists_protected(lua_State *L) {
  pack_lists(L, lua_touserdata(L, lua_upvalueindex(1)));
  return 1;
}

/* The next packed string (NULL for an absent one); advances *p. The packing is ours, made
 * in pack_lists, so it is trusted. */
static const char *unpack_str(const char **p) {
  const char *at = *p;
  if (*at++ == 0) {
    *p = at;
    return NULL;
  }
  *p = at + strlen(at) + 1;
  return at;
}

/* Pushes a frozen list of n packed strings. [-0, +1] */
static void push_str_list(lua_State *L, const char **p, uint32_t n, const char *name) {
  lua_createtable(L, (int)n, 0);
  for (uint32_t i = 0; i < n; i++) {
    const char *v = unpack_str(p);
    lua_pushstring(L, v ? v : "");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  freeze_view(L, -1, name);
  lua_remove(L, -2);
}

static void push_attrs(lua_State *L, const char **p, uint32_t n) {
  lua_createtable(L, (int)n, 0);
  for (uint32_t i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    set_str(L, "name", unpack_str(p));
    set_str(L, "value", unpack_str(p));
    set_str(L, "source", unpack_str(p));
    freeze_view(L, -1, "obj.attributes[i]");
    lua_remove(L, -2);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  freeze_view(L, -1, "obj.attributes");
  lua_remove(L, -2);
}

/* Replaces the pending id (an integer at the top of the stack) with the packed lists of that
 * object, read from the runtime's library now. Raises when the read fails. [-1, +1] */
static void obj_read_lists(lua_State *L) {
  int64_t id = (int64_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  void *ud = NULL;
  lua_getallocf(L, &ud);
  tq_lua *rt = ud;
  tq_object *obj = NULL;
  tq_err e;
  tq_err_clear(&e);
  if (rt->opts.lib == NULL || tq_lib_object_get(rt->opts.lib, id, &obj, &e) != TQ_OK)
    luaL_error(L, "obj: reading the lists of object %I: %s", (lua_Integer)id,
               rt->opts.lib ? e.msg : "no library");
  lua_pushlightuserdata(L, obj);
  lua_pushcclosure(L, pack_lists_protected, 1);
  int st = lua_pcall(L, 0, 1, 0);
  tq_object_free(obj);
  if (st != LUA_OK)
    lua_error(L);
}

void obj_materialize(lua_State *L, int view, int real) {
  view = lua_absindex(L, view);
  real = lua_absindex(L, real);
  int t = lua_rawgetp(L, view, &obj_lazy_key);
  if (t == LUA_TNUMBER) {
    obj_read_lists(L);
    t = LUA_TSTRING;
  }
  if (t != LUA_TSTRING) {
    lua_pop(L, 1);
    return;
  }
  uint32_t counts[3];
  const char *p = lua_tostring(L, -1); /* anchored on the stack while we read */
  memcpy(counts, p, sizeof counts);
  p += sizeof counts;
  push_attrs(L, &p, counts[0]);
  lua_setfield(L, real, "attributes");
  push_str_list(L, &p, counts[1], "obj.sources");
  lua_setfield(L, real, "sources");
  push_str_list(L, &p, counts[2], "obj.tags");
  lua_setfield(L, real, "tags");
  lua_pushnil(L);
  lua_rawsetp(L, view, &obj_lazy_key);
  lua_pop(L, 1);
}

/* obj[k]: the field, building the lists on the first read of one of them. */
static int obj_index(lua_State *L) {
  view_push_real(L, 1);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) != LUA_TNIL)
    return 1;
  lua_pop(L, 1);
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  if (k && (strcmp(k, "attributes") == 0 || strcmp(k, "sources") == 0 || strcmp(k, "tags") == 0)) {
    obj_materialize(L, 1, -1);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

static void obj_register(lua_State *L) {
  view_metatable_new(L, obj_index);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &obj_mt_key);
}

void obj_push(lua_State *L, const tq_object *obj, int lists_later) {
  if (obj == NULL) {
    lua_pushnil(L);
    return;
  }
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, obj->id);
  lua_setfield(L, -2, "id");
  set_str(L, "value", obj->value);
  set_str(L, "type", obj->object_type ? obj->object_type : "indicator");
  set_str(L, "indicator_type", obj->indicator_type);
  set_str(L, "description", obj->description);
  set_str(L, "status", tq_lib_status_name(obj->status));
  lua_pushinteger(L, obj->score);
  lua_setfield(L, -2, "score");
  freeze_view_mt(L, -1, "obj", &obj_mt_key);
  lua_remove(L, -2);
  if (lists_later && obj->id > 0)
    lua_pushinteger(L, obj->id); /* the lists are read when first used */
  else
    pack_lists(L, obj);
  lua_rawsetp(L, -2, &obj_lazy_key);
}
