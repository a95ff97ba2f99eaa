/* manifest.c: an Operation package's manifest.yaml read into a tq_plugin: YAML with
 * positions, validated against schemas/operation.schema.json, then the checks a schema cannot
 * express (known indicator and object types, durations, unique keys, defaults that fit their
 * field). Every error names file:line:col and the field path. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/plugin.h"

static void check_types(tq_docload *m, const cJSON *j, tq_plugin_op *op, const char *path) {
  char sub[128];
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "object_types");
  for (size_t i = 0; i < op->n_object_types; i++) {
    if (!tq_lib_object_type_valid(op->object_types[i])) {
      snprintf(sub, sizeof sub, "%s.object_types[%zu]", path, i);
      tq_docload_error(m, cJSON_GetArrayItem(arr, (int)i), sub, "'%s' is not an object type",
                       op->object_types[i]);
    }
  }
  arr = cJSON_GetObjectItemCaseSensitive(j, "indicator_types");
  for (size_t i = 0; i < op->n_indicator_types; i++) {
    const char *canon = tq_lib_indicator_type_canon(op->indicator_types[i], NULL);
    snprintf(sub, sizeof sub, "%s.indicator_types[%zu]", path, i);
    if (canon == NULL) {
      tq_docload_error(m, cJSON_GetArrayItem(arr, (int)i), sub,
                       "'%s' is not an indicator type (see tqhost indicator types)",
                       op->indicator_types[i]);
    } else if (strcmp(canon, op->indicator_types[i]) != 0) {
      char *c = tq_strdup(canon);
      if (c) {
        free(op->indicator_types[i]);
        op->indicator_types[i] = c;
      }
    }
  }
}

static void load_ops(tq_docload *m, const cJSON *arr, tq_plugin *p) {
  int n = cJSON_GetArraySize(arr);
  if (!cJSON_IsArray(arr) || n == 0)
    return;
  if ((p->ops = calloc((size_t)n, sizeof *p->ops)) == NULL) {
    m->oom = 1;
    return;
  }
  const cJSON *j;
  char path[64];
  cJSON_ArrayForEach(j, arr) {
    snprintf(path, sizeof path, "operations[%zu]", p->n_ops);
    tq_plugin_op *op = &p->ops[p->n_ops++];
    op->name = tq_docload_str(m, j, "name");
    op->label = tq_docload_str(m, j, "label");
    op->entry = tq_docload_str(m, j, "entry");
    op->object_types = tq_docload_list(m, cJSON_GetObjectItemCaseSensitive(j, "object_types"),
                                       &op->n_object_types);
    op->indicator_types = tq_docload_list(m, cJSON_GetObjectItemCaseSensitive(j, "indicator_types"),
                                          &op->n_indicator_types);
    check_types(m, j, op, path);
    for (size_t i = 0; op->name && i + 1 < p->n_ops; i++)
      if (p->ops[i].name && strcmp(p->ops[i].name, op->name) == 0)
        tq_docload_error(m, j, path, "operation '%s' is defined twice", op->name);
  }
}

/* Fills p from a document that passed the schema. */
static void load_doc(tq_docload *m, const cJSON *root, tq_plugin *p) {
  p->name = tq_docload_str(m, root, "name");
  p->label = tq_docload_str(m, root, "label");
  p->version = tq_docload_str(m, root, "version");
  p->description = tq_docload_str(m, root, "description");
  p->author = tq_docload_str(m, root, "author");
  const cJSON *script = cJSON_GetObjectItemCaseSensitive(root, "script");
  if (cJSON_IsString(script)) {
    if (strstr(script->valuestring, "..") || script->valuestring[0] == '/')
      tq_docload_error(m, script, "script", "must be a path inside the plugin's folder");
    else if (asprintf(&p->script, "%s/%s", p->dir, script->valuestring) < 0)
      p->script = NULL, m->oom = 1;
  }
  tq_docload_fields(m, cJSON_GetObjectItemCaseSensitive(root, "config"), &p->fields, &p->n_fields);
  load_ops(m, cJSON_GetObjectItemCaseSensitive(root, "operations"), p);
  const cJSON *net = cJSON_GetObjectItemCaseSensitive(root, "network");
  tq_docload_network(m, net, &p->net);
  tq_docload_hosts_check(m, net, &p->net, p->fields, p->n_fields, NULL, 0);
  tq_docload_limits(m, cJSON_GetObjectItemCaseSensitive(root, "limits"), &p->limits);
}

/* The folder's own name must be the package name: the registry finds plugins by folder. */
static void check_folder_name(tq_docload *m, const cJSON *root, const tq_plugin *p,
                              const char *folder) {
  char *copy = tq_strdup(folder ? folder : p->dir);
  if (copy == NULL || p->name == NULL) {
    free(copy);
    return;
  }
  size_t len = strlen(copy);
  while (len > 1 && copy[len - 1] == '/')
    copy[--len] = '\0';
  const char *base = basename(copy);
  if (strcmp(base, p->name) != 0)
    tq_docload_error(m, cJSON_GetObjectItemCaseSensitive(root, "name"), "name",
                     "'%s' differs from the plugin's folder name '%s'", p->name, base);
  free(copy);
}

static void diag_to_err(const tq_diags *d, size_t from, tq_err *err) {
  if (d && d->n > from)
    tq_err_set(err, TQ_EINVAL, "%s", d->msgs[from]);
}

tq_code tq_plugin_load(const char *dir, tq_plugin **out, tq_diags *diags, tq_err *err) {
  return tq_plugin_load_as(dir, NULL, out, diags, err);
}

tq_code tq_plugin_load_as(const char *dir, const char *folder, tq_plugin **out, tq_diags *diags,
                          tq_err *err) {
  tq_diags local = {0};
  tq_diags *d = diags ? diags : &local;
  size_t first = d->n;
  tq_ydoc *doc = NULL;
  tq_plugin *p = calloc(1, sizeof *p);
  tq_code rc = TQ_ENOMEM;
  if (p == NULL || (p->dir = tq_strdup(dir)) == NULL ||
      asprintf(&p->manifest, "%s/manifest.yaml", dir) < 0) {
    if (p)
      p->manifest = NULL;
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", dir);
    goto fail;
  }
  /* Nothing of the folder (manifest, script, specs, fixtures) may lead out of it. */
  rc = tq_path_tree_inside(dir, err);
  if (rc != TQ_OK && rc != TQ_ENOTFOUND) { /* a missing folder: the manifest read says so */
    tq_diags_add(d, "%s", err->msg);
    goto fail;
  }
  size_t n_schema = 0;
  if ((rc = tq_docload_read(p->manifest, "operation.schema.json", d, &doc, &n_schema, err)) !=
      TQ_OK)
    goto fail;
  /* The semantic checks run even after schema errors (they skip ill-typed nodes) so that
   * one `plugin check` reports everything. */
  tq_docload m = {.doc = doc, .diags = d, .err = err, .n_errors = n_schema};
  if (cJSON_IsObject(doc->root)) {
    load_doc(&m, doc->root, p);
    check_folder_name(&m, doc->root, p, folder);
  }
  diag_to_err(d, first, err);
  if (m.oom)
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", p->manifest);
  else
    rc = m.n_errors > 0 ? TQ_EINVAL : TQ_OK;
  if (rc != TQ_OK)
    goto fail;
  tq_ydoc_free(doc);
  tq_diags_free(&local);
  *out = p;
  return TQ_OK;
fail:
  tq_ydoc_free(doc);
  tq_diags_free(&local);
  tq_plugin_free(p);
  return rc;
}

void tq_plugin_free(tq_plugin *p) {
  if (p == NULL)
    return;
  tq_docload_fields_free(p->fields, p->n_fields);
  for (size_t i = 0; i < p->n_ops; i++) {
    tq_plugin_op *op = &p->ops[i];
    free(op->name), free(op->label), free(op->entry);
    tq_docload_list_free(op->object_types, op->n_object_types);
    tq_docload_list_free(op->indicator_types, op->n_indicator_types);
  }
  free(p->ops);
  tq_docload_network_free(&p->net);
  free(p->dir), free(p->manifest), free(p->name), free(p->label), free(p->version);
  free(p->description), free(p->author), free(p->script);
  free(p);
}

const tq_plugin_field *tq_plugin_field_find(const tq_plugin *p, const char *key) {
  for (size_t i = 0; i < p->n_fields; i++)
    if (p->fields[i].key && strcmp(p->fields[i].key, key) == 0)
      return &p->fields[i];
  return NULL;
}

const tq_plugin_op *tq_plugin_op_find(const tq_plugin *p, const char *name) {
  for (size_t i = 0; i < p->n_ops; i++)
    if (p->ops[i].name && strcmp(p->ops[i].name, name) == 0)
      return &p->ops[i];
  return NULL;
}

int tq_plugin_op_accepts(const tq_plugin_op *op, const char *object_type,
                         const char *indicator_type) {
  const char *ot = object_type ? object_type : "indicator";
  int type_ok = 0;
  for (size_t i = 0; i < op->n_object_types && !type_ok; i++)
    type_ok = strcmp(op->object_types[i], ot) == 0;
  if (!type_ok)
    return 0;
  if (strcmp(ot, "indicator") != 0 || op->n_indicator_types == 0)
    return 1;
  for (size_t i = 0; indicator_type && i < op->n_indicator_types; i++)
    if (tq_str_ieq(op->indicator_types[i], indicator_type))
      return 1;
  return 0;
}

static const char *const field_names[] = {"string", "url",      "integer", "boolean",
                                          "select", "password", "number",  "list"};

const char *tq_field_type_name(tq_field_type t) {
  return (unsigned)t < sizeof field_names / sizeof field_names[0] ? field_names[t] : "?";
}

int tq_field_type_parse(const char *name) {
  for (size_t i = 0; name && i < sizeof field_names / sizeof field_names[0]; i++)
    if (strcmp(field_names[i], name) == 0)
      return (int)i;
  return -1;
}

tq_lua_kind tq_field_kind(tq_field_type t) {
  switch (t) {
  case TQ_FIELD_INTEGER: return TQ_LUA_INTEGER;
  case TQ_FIELD_NUMBER: return TQ_LUA_NUMBER;
  case TQ_FIELD_BOOLEAN: return TQ_LUA_BOOLEAN;
  case TQ_FIELD_LIST: return TQ_LUA_LIST;
  default: return TQ_LUA_TEXT;
  }
}
