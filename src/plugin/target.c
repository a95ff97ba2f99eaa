/* target.c: what `tqhost op run` and the server's operation routes share: the object an
 * operation runs on (from the library, or a transient indicator for a value not there), the
 * JSON of a run's outcome and change set, and runs on a caller's warm runtime (a script
 * loaded once with its config and provider, many runs started on it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/ioc.h"
#include "tqhost/plugin.h"

/* ---- targets ----------------------------------------------------------------------------- */

void tq_plugin_target_free(tq_plugin_target *t) {
  tq_object_free(t->stored);
  free(t->type);
  free(t->value);
  memset(t, 0, sizeof *t);
}

const tq_object *tq_plugin_target_obj(const tq_plugin_target *t) {
  return t->stored ? t->stored : &t->view;
}

/* Types value without the library: the given type (validated when ioc knows it) or detected. */
static tq_code target_transient(const char *type, const char *value, tq_plugin_target *t,
                                tq_err *err) {
  const char *canon = type ? tq_lib_indicator_type_canon(type, NULL) : NULL;
  if (type && canon == NULL)
    return tq_err_set(err, TQ_EINVAL, "'%s' is not an indicator type (see tqhost indicator types)",
                      type);
  tq_ioc_type it = canon ? tq_ioc_type_from_name(canon) : TQ_IOC_UNKNOWN;
  tq_code rc;
  if (canon && it == TQ_IOC_UNKNOWN) {
    t->value = tq_strdup(value);
    rc = t->value ? TQ_OK : tq_err_set(err, TQ_ENOMEM, "out of memory");
  } else if (canon) {
    rc = tq_ioc_normalize(it, value, &t->value, err);
  } else {
    rc = tq_ioc_classify(value, &it, &t->value, err);
    if (rc != TQ_OK)
      tq_err_prefix(err, "cannot tell the indicator type (give --type): ");
  }
  if (rc != TQ_OK)
    return rc;
  t->type = tq_strdup(canon ? canon : tq_ioc_type_name(it));
  t->view = (tq_object){.object_type = "indicator",
                        .indicator_type = t->type,
                        .value = t->value,
                        .status = TQ_STATUS_ACTIVE,
                        .score_manual = -1};
  return t->type ? TQ_OK : tq_err_set(err, TQ_ENOMEM, "out of memory");
}

tq_code tq_plugin_target_resolve(tq_lib *lib, const char *type, const char *value,
                                 tq_plugin_target *t, tq_err *err) {
  memset(t, 0, sizeof *t);
  int64_t id = 0;
  tq_err miss;
  if (lib && tq_lib_object_find(lib, NULL, type, value, &id, &miss) == TQ_OK)
    return tq_lib_object_get(lib, id, &t->stored, err);
  tq_code rc = target_transient(type, value, t, err);
  if (rc != TQ_OK)
    tq_plugin_target_free(t);
  return rc;
}

tq_code tq_plugin_target_id(tq_lib *lib, int64_t id, tq_plugin_target *t, tq_err *err) {
  memset(t, 0, sizeof *t);
  return tq_lib_object_get(lib, id, &t->stored, err);
}

/* ---- JSON ----------------------------------------------------------------------------------- */

static cJSON *attrs_json(const tq_cs_attr *a, size_t n) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", a[i].name);
    cJSON_AddStringToObject(o, "value", a[i].value);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

cJSON *tq_changeset_json(const tq_changeset *cs) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "attributes", attrs_json(cs->attrs, cs->n_attrs));
  cJSON *tags = cJSON_AddArrayToObject(o, "tags");
  for (size_t i = 0; i < cs->n_tags; i++)
    cJSON_AddItemToArray(tags, cJSON_CreateString(cs->tags[i]));
  cJSON *links = cJSON_AddArrayToObject(o, "links");
  for (size_t i = 0; i < cs->n_links; i++) {
    cJSON *l = cJSON_CreateObject();
    cJSON_AddStringToObject(l, "object_type", cs->links[i].object_type);
    cJSON_AddStringToObject(l, "value", cs->links[i].value);
    if (cs->links[i].link_type)
      cJSON_AddStringToObject(l, "link_type", cs->links[i].link_type);
    if (cs->links[i].description)
      cJSON_AddStringToObject(l, "description", cs->links[i].description);
    cJSON_AddItemToArray(links, l);
  }
  cJSON *inds = cJSON_AddArrayToObject(o, "indicators");
  for (size_t i = 0; i < cs->n_indicators; i++) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "type", cs->indicators[i].indicator_type);
    cJSON_AddStringToObject(d, "value", cs->indicators[i].value);
    cJSON_AddItemToObject(d, "attributes",
                          attrs_json(cs->indicators[i].attrs, cs->indicators[i].n_attrs));
    cJSON_AddItemToArray(inds, d);
  }
  if (cs->score >= 0)
    cJSON_AddNumberToObject(o, "score", cs->score);
  else
    cJSON_AddNullToObject(o, "score");
  if (cs->status)
    cJSON_AddStringToObject(o, "status", cs->status);
  else
    cJSON_AddNullToObject(o, "status");
  return o;
}

/* A string member of o copied (NULL when absent and optional); 0 on a wrong type or no
 * memory. */
static int cs_str(const cJSON *o, const char *key, int optional, char **out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  *out = NULL;
  if ((v == NULL || cJSON_IsNull(v)) && optional)
    return 1;
  if (!cJSON_IsString(v) || strlen(v->valuestring) > TQ_LUA_MAX_VALUE)
    return 0;
  return (*out = tq_strdup(v->valuestring)) != NULL;
}

/* The array member key of o (at most TQ_LUA_MAX_ITEMS entries), its size in *n; NULL and
 * *n 0 on a wrong type. */
static const cJSON *cs_arr(const cJSON *o, const char *key, size_t *n, int *ok) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
  *n = 0;
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > TQ_LUA_MAX_ITEMS) {
    *ok = 0;
    return NULL;
  }
  *n = (size_t)cJSON_GetArraySize(a);
  return a;
}

static int attrs_from(const cJSON *o, tq_cs_attr **out, size_t *n_out) {
  int ok = 1;
  size_t n;
  const cJSON *a = cs_arr(o, "attributes", &n, &ok);
  if (!ok)
    return 0;
  if (n && (*out = calloc(n, sizeof **out)) == NULL)
    return 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, a) {
    tq_cs_attr *x = &(*out)[(*n_out)++];
    if (!cJSON_IsObject(e) || !cs_str(e, "name", 0, &x->name) || !cs_str(e, "value", 0, &x->value))
      return 0;
  }
  return 1;
}

tq_code tq_changeset_from_json(const cJSON *j, const cJSON *show, tq_changeset *cs, tq_err *err) {
  tq_changeset_init(cs);
  int ok = cJSON_IsObject(j) && attrs_from(j, &cs->attrs, &cs->n_attrs);
  size_t n = 0;
  const cJSON *a = ok ? cs_arr(j, "tags", &n, &ok) : NULL, *e;
  if (ok && n && (cs->tags = calloc(n, sizeof *cs->tags)) == NULL)
    ok = 0;
  if (!ok)
    a = NULL;
  cJSON_ArrayForEach(e, a) {
    if (!cJSON_IsString(e) || (cs->tags[cs->n_tags] = tq_strdup(e->valuestring)) == NULL) {
      ok = 0;
      break;
    }
    cs->n_tags++;
  }
  a = ok ? cs_arr(j, "links", &n, &ok) : NULL;
  if (ok && n && (cs->links = calloc(n, sizeof *cs->links)) == NULL)
    ok = 0;
  if (!ok)
    a = NULL;
  cJSON_ArrayForEach(e, a) {
    tq_cs_link *l = &cs->links[cs->n_links++];
    if (!cJSON_IsObject(e) || !cs_str(e, "object_type", 0, &l->object_type) ||
        !cs_str(e, "value", 0, &l->value) || !cs_str(e, "link_type", 1, &l->link_type) ||
        !cs_str(e, "description", 1, &l->description)) {
      ok = 0;
      break;
    }
  }
  a = ok ? cs_arr(j, "indicators", &n, &ok) : NULL;
  if (ok && n && (cs->indicators = calloc(n, sizeof *cs->indicators)) == NULL)
    ok = 0;
  if (!ok)
    a = NULL;
  cJSON_ArrayForEach(e, a) {
    tq_cs_indicator *d = &cs->indicators[cs->n_indicators++];
    if (!cJSON_IsObject(e) || !cs_str(e, "type", 0, &d->indicator_type) ||
        !cs_str(e, "value", 0, &d->value) || !attrs_from(e, &d->attrs, &d->n_attrs)) {
      ok = 0;
      break;
    }
  }
  const cJSON *score = ok ? cJSON_GetObjectItemCaseSensitive(j, "score") : NULL;
  if (ok && score && !cJSON_IsNull(score)) {
    if (!cJSON_IsNumber(score) || score->valuedouble < 0 || score->valuedouble > 10 ||
        score->valuedouble != (double)(int)score->valuedouble)
      ok = 0;
    else
      cs->score = (int)score->valuedouble;
  }
  if (ok && !cs_str(j, "status", 1, &cs->status))
    ok = 0;
  if (ok && show && !cJSON_IsNull(show) && (cs->show = cJSON_Duplicate(show, 1)) == NULL)
    ok = 0;
  if (!ok) {
    tq_changeset_free(cs);
    return tq_err_set(err, TQ_EINVAL,
                      "a change set as JSON: not the shape tq_changeset_json writes");
  }
  return TQ_OK;
}

cJSON *tq_op_outcome_json(const tq_op_outcome *o) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "plugin", o->plugin);
  cJSON_AddStringToObject(j, "operation", o->operation);
  cJSON *obj = cJSON_AddObjectToObject(j, "object");
  cJSON_AddStringToObject(obj, "type", o->obj->object_type ? o->obj->object_type : "indicator");
  if (o->obj->indicator_type)
    cJSON_AddStringToObject(obj, "indicator_type", o->obj->indicator_type);
  cJSON_AddStringToObject(obj, "value", o->obj->value);
  int64_t id = o->applied ? o->object_id : o->obj->id;
  if (id > 0)
    cJSON_AddNumberToObject(obj, "id", (double)id);
  else
    cJSON_AddNullToObject(obj, "id");
  cJSON_AddStringToObject(j, "status", tq_lua_status_name(o->res->status));
  cJSON_AddStringToObject(j, "message", o->res->message ? o->res->message : "");
  if (o->res->traceback && *o->res->traceback)
    cJSON_AddStringToObject(j, "traceback", o->res->traceback);
  cJSON_AddItemToObject(j, "show",
                        o->res->cs.show ? cJSON_Duplicate(o->res->cs.show, 1) : cJSON_CreateNull());
  cJSON_AddItemToObject(j, "changes", tq_changeset_json(&o->res->cs));
  cJSON_AddBoolToObject(j, "applied", o->applied);
  if (o->apply_error)
    cJSON_AddStringToObject(j, "apply_error", o->apply_error);
  return j;
}

/* ---- warm runs --------------------------------------------------------------------------------
 */

tq_code tq_plugin_script_load(tq_lua *rt, tq_net *net, const tq_plugin *p,
                              const tq_plugin_config *cfg, const char *plugins_dir,
                              const tq_host_config *host, tq_lua_script **out, tq_err *err) {
  return tq_plugin_script_load_src(rt, net, p, NULL, cfg, plugins_dir, host, out, err);
}

tq_code tq_plugin_script_load_src(tq_lua *rt, tq_net *net, const tq_plugin *p,
                                  const tq_plugin_src *src, const tq_plugin_config *cfg,
                                  const char *plugins_dir, const tq_host_config *host,
                                  tq_lua_script **out, tq_err *err) {
  tq_lua_limits limits = p->limits;
  tq_host_limits_clamp(host, p->name, &limits);
  tq_plugin_policy pp = {0};
  tq_net_provider *prov = NULL;
  tq_code rc = tq_plugin_policy_build(p, cfg, &pp, err);
  if (rc != TQ_OK)
    return rc;
  if (pp.policy.timeout_ms > limits.timeout_ms)
    pp.policy.timeout_ms = limits.timeout_ms;
  /* The provider is named after the plugin and its hosts: a new base_url is a new provider
   * (a provider keeps the policy it was made with). */
  tq_buf name;
  tq_buf_init(&name, 4096);
  rc = tq_buf_adds(&name, p->name);
  for (size_t i = 0; i < pp.n_hosts && rc == TQ_OK; i++) {
    rc = tq_buf_adds(&name, i ? "," : "@");
    if (rc == TQ_OK)
      rc = tq_buf_adds(&name, pp.hosts[i]);
  }
  char *pname = rc == TQ_OK ? tq_buf_take(&name) : NULL;
  tq_buf_free(&name);
  if (pname == NULL) {
    tq_plugin_policy_free(&pp);
    return tq_err_set(err, TQ_ENOMEM, "plugin %s: out of memory", p->name);
  }
  if (net)
    rc = tq_net_provider_get(net, pname, &pp.policy, &prov, err);
  free(pname);
  tq_plugin_policy_free(&pp);
  if (rc != TQ_OK)
    return rc;
  tq_plugin_script_spec spec = {.plugin = p,
                                .cfg = cfg,
                                .with_secrets = 1,
                                .provider = prov,
                                .plugins_dir = plugins_dir,
                                .limits = &limits,
                                .src = src};
  tq_plugin_script_opts o;
  if ((rc = tq_plugin_script_opts_build(&spec, &o, err)) != TQ_OK)
    return rc;
  rc = tq_lua_load(rt, &o.so, out, err);
  tq_plugin_script_opts_free(&o);
  return rc;
}

tq_code tq_plugin_op_start(tq_lua *rt, tq_lua_script *script, const tq_plugin *p,
                           const tq_plugin_op *op, const tq_object *obj, tq_lua_done_fn done,
                           void *ud, tq_lua_run **out, tq_err *err) {
  if (!tq_lua_script_has_entry(script, op->entry))
    return tq_err_set(err, TQ_ENOTFOUND, "%s: operation %s: the script has no entry '%s'",
                      p->script, op->name, op->entry);
  return tq_lua_run_start(rt, script, op->entry, obj, done, ud, out, err);
}

tq_code tq_op_result_take(tq_lua_run *run, tq_op_result *res, tq_err *err) {
  memset(res, 0, sizeof *res);
  tq_changeset_init(&res->cs);
  res->status = tq_lua_run_status(run);
  res->message = tq_strdup(tq_lua_run_message(run));
  res->traceback = tq_strdup(tq_lua_run_traceback(run));
  res->elapsed_us = tq_lua_run_elapsed_us(run);
  tq_lua_run_take_changeset(run, &res->cs);
  if (res->message == NULL || res->traceback == NULL) {
    tq_op_result_free(res);
    return tq_err_set(err, TQ_ENOMEM, "run result: out of memory");
  }
  return TQ_OK;
}
