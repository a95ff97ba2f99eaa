/* action_config.c: the configuration one action run uses. Precedence, lowest first: the
 * plugin's manifest defaults, the action's defaults, what the user stored for the plugin
 * (`tqhost plugin configure`: the API key and every shared key), the run's overrides
 * (`--set KEY=VALUE`, workflow settings). Values are checked against their field's type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action_int.h"

const tq_plugin_field *action_field(const tq_action *a, const char *key) {
  for (size_t i = 0; i < a->n_fields; i++)
    if (a->fields[i].key && strcmp(a->fields[i].key, key) == 0)
      return &a->fields[i];
  return a->plugin ? tq_plugin_field_find(a->plugin, key) : NULL;
}

/* Sets key in the list (replacing a value there); strings are copied. */
static tq_code kv_set(tq_lua_kv **arr, size_t *n, const char *key, const char *value) {
  char *v = tq_strdup(value);
  if (v == NULL)
    return TQ_ENOMEM;
  for (size_t i = 0; i < *n; i++) {
    if (strcmp((*arr)[i].key, key) == 0) {
      free((char *)(*arr)[i].value);
      (*arr)[i].value = v;
      return TQ_OK;
    }
  }
  tq_lua_kv *grown = realloc(*arr, (*n + 1) * sizeof *grown);
  char *k = tq_strdup(key);
  if (grown)
    *arr = grown;
  if (grown == NULL || k == NULL) {
    free(v);
    free(k);
    return TQ_ENOMEM;
  }
  (*arr)[*n].key = k;
  (*arr)[*n].value = v;
  (*n)++;
  return TQ_OK;
}

/* Whether the user stored a value for key under the plugin's scope. */
static int stored(tq_lib *lib, const tq_plugin *p, const char *key) {
  char scope[200], *v = NULL;
  tq_err e;
  snprintf(scope, sizeof scope, "plugin:%s", p->name);
  int found = tq_lib_setting_get(lib, scope, key, &v, NULL, &e) == TQ_OK;
  free(v);
  return found;
}

static tq_code apply_defaults(tq_lib *lib, const tq_action *a, action_cfg *c) {
  for (size_t i = 0; i < a->n_fields; i++) {
    const tq_plugin_field *f = &a->fields[i];
    if (f->def == NULL ||
        (tq_plugin_field_find(a->plugin, f->key) && stored(lib, a->plugin, f->key)))
      continue;
    if (kv_set(&c->pc.config, &c->pc.n_config, f->key, f->def) != TQ_OK)
      return TQ_ENOMEM;
  }
  return TQ_OK;
}

static tq_code apply_override(const tq_action *a, const tq_lua_kv *kv, action_cfg *c, tq_err *err) {
  const tq_plugin_field *f = action_field(a, kv->key);
  if (f == NULL) {
    char keys[600] = "";
    for (size_t i = 0; i < a->n_fields + a->plugin->n_fields; i++) {
      const char *k = i < a->n_fields ? a->fields[i].key : a->plugin->fields[i - a->n_fields].key;
      size_t len = strlen(keys);
      if (i >= a->n_fields && action_field(a, k) != &a->plugin->fields[i - a->n_fields])
        continue; /* shadowed by the action's field of the same key */
      snprintf(keys + len, sizeof keys - len, "%s%s", len ? ", " : "", k);
    }
    return tq_err_set(err, TQ_EINVAL, "'%s' is not a setting of action %s (settings: %s)", kv->key,
                      a->name, keys);
  }
  char *norm = NULL;
  tq_code rc = tq_plugin_field_check(f, kv->value, &norm, err);
  if (rc != TQ_OK)
    return tq_err_prefix(err, "action %s: ", a->name);
  if (f->type == TQ_FIELD_PASSWORD)
    rc = kv_set(&c->pc.secrets, &c->pc.n_secrets, f->key, norm);
  else
    rc = kv_set(&c->pc.config, &c->pc.n_config, f->key, norm);
  free(norm);
  return rc == TQ_ENOMEM ? tq_err_set(err, rc, "config: out of memory") : rc;
}

static int has_value(const action_cfg *c, const char *key) {
  return tq_plugin_config_get(&c->pc, key) != NULL;
}

/* A required field without a value: say how to give one. */
static tq_code check_required(const tq_action *a, const action_cfg *c, tq_err *err) {
  for (size_t i = 0; i < a->n_fields + a->plugin->n_fields; i++) {
    const tq_plugin_field *f =
        i < a->n_fields ? &a->fields[i] : &a->plugin->fields[i - a->n_fields];
    if (!f->required || has_value(c, f->key))
      continue;
    return tq_err_set(err, TQ_EINVAL,
                      "action %s: '%s' has no value: store it with `tqhost plugin configure %s "
                      "%s=...` or give it with --set %s=...",
                      a->name, f->key, a->plugin->name, f->key, f->key);
  }
  return TQ_OK;
}

tq_code action_cfg_build(tq_lib *lib, const tq_action *a, const char *key_path,
                         const tq_lua_kv *ovr, size_t n_ovr, action_cfg *out, tq_err *err) {
  memset(out, 0, sizeof *out);
  tq_code rc = tq_plugin_config_load(lib, a->plugin, key_path, 1, &out->pc, err);
  if (rc != TQ_OK)
    return tq_err_prefix(err, "action %s: ", a->name);
  out->pc.own_fields = a->fields;
  out->pc.n_own_fields = a->n_fields;
  if (apply_defaults(lib, a, out) != TQ_OK)
    rc = tq_err_set(err, TQ_ENOMEM, "config: out of memory");
  for (size_t i = 0; rc == TQ_OK && i < n_ovr; i++)
    rc = apply_override(a, &ovr[i], out, err);
  if (rc == TQ_OK)
    rc = check_required(a, out, err);
  if (rc != TQ_OK)
    action_cfg_free(out);
  return rc;
}

void action_cfg_free(action_cfg *c) { tq_plugin_config_free(&c->pc); }

/* ---- settings as stored (a workflow's, a run's) ------------------------------------------- */

#define SEALED_KEY "sealed"

tq_code settings_put(cJSON *obj, const tq_plugin_field *f, const char *key_path,
                     const tq_lua_kv *kv, tq_err *err) {
  cJSON_DeleteItemFromObjectCaseSensitive(obj, kv->key); /* a later --set of a key wins */
  if (f == NULL || f->type != TQ_FIELD_PASSWORD) {
    if (cJSON_AddStringToObject(obj, kv->key, kv->value) == NULL)
      return tq_err_set(err, TQ_ENOMEM, "settings: out of memory");
    return TQ_OK;
  }
  char *sealed = NULL;
  tq_code rc = tq_plugin_secret_seal(key_path, kv->value, &sealed, err);
  if (rc != TQ_OK)
    return tq_err_prefix(err, "setting %s: ", kv->key);
  cJSON *box = cJSON_AddObjectToObject(obj, kv->key);
  if (box == NULL || cJSON_AddStringToObject(box, SEALED_KEY, sealed) == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "settings: out of memory");
  free(sealed);
  return rc;
}

tq_code settings_read(const cJSON *obj, const char *key_path, tq_lua_kv **out, int **sealed,
                      size_t *n, tq_err *err) {
  size_t cap = (size_t)cJSON_GetArraySize(obj) + 1;
  *out = calloc(cap, sizeof **out);
  *sealed = calloc(cap, sizeof **sealed);
  *n = 0;
  if (*out == NULL || *sealed == NULL)
    return tq_err_set(err, TQ_ENOMEM, "settings: out of memory");
  const cJSON *e;
  tq_code rc = TQ_OK;
  cJSON_ArrayForEach(e, obj) {
    const cJSON *box = cJSON_GetObjectItemCaseSensitive(e, SEALED_KEY);
    char *v = NULL;
    if (cJSON_IsString(e))
      v = tq_strdup(e->valuestring);
    else if (cJSON_IsString(box) && key_path)
      rc = tq_plugin_secret_open(key_path, box->valuestring, &v, err);
    else if (cJSON_IsString(box))
      v = tq_strdup(box->valuestring);
    else
      continue; /* not ours: left alone */
    if (rc != TQ_OK)
      return tq_err_prefix(err, "setting %s: ", e->string);
    char *k = tq_strdup(e->string);
    (*out)[*n] = (tq_lua_kv){k, v};
    (*sealed)[(*n)++] = cJSON_IsString(box);
    if (k == NULL || v == NULL)
      return tq_err_set(err, TQ_ENOMEM, "settings: out of memory");
  }
  return rc;
}

void settings_free(tq_lua_kv *kvs, int *sealed, size_t n) {
  for (size_t i = 0; kvs && i < n; i++) {
    if (kvs[i].value)
      explicit_bzero((char *)kvs[i].value, strlen(kvs[i].value));
    free((char *)kvs[i].key);
    free((char *)kvs[i].value);
  }
  free(kvs);
  free(sealed);
}
