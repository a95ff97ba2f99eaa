/* manifest.c: an Operation package's manifest.yaml read into a tq_plugin: YAML with
 * positions, validated against schemas/operation.schema.json, then the checks a schema cannot
 * express (known indicator and object types, durations, unique keys, defaults that fit their
 * field). Every error names file:line:col and the field path. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/plugin.h"

/* What the checks below need besides the plugin being filled. */
typedef struct mload {
  const tq_ydoc *doc;
  tq_diags *diags;
  size_t n_errors;
  tq_err *err; /* gets the first error */
  int oom;
} mload;

static void merr(mload *m, const cJSON *node, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void merr(mload *m, const cJSON *node, const char *path, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int line, col;
  tq_ydoc_pos(m->doc, node, &line, &col);
  if (m->n_errors++ == 0)
    tq_err_set(m->err, TQ_EINVAL, "%s:%d:%d: %s: %s", m->doc->path, line, col, path, msg);
  tq_diags_add(m->diags, "%s:%d:%d: %s: %s", m->doc->path, line, col, path, msg);
}

static char *dup_str(mload *m, const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsString(v))
    return NULL;
  char *s = tq_strdup(v->valuestring);
  m->oom |= s == NULL;
  return s;
}

/* A scalar as text ("true", "42", "x"); NULL for other nodes. */
static char *scalar_dup(mload *m, const cJSON *v) {
  char num[64];
  const char *s = NULL;
  if (cJSON_IsString(v))
    s = v->valuestring;
  else if (cJSON_IsBool(v))
    s = cJSON_IsTrue(v) ? "true" : "false";
  else if (cJSON_IsNumber(v)) {
    snprintf(num, sizeof num, "%.17g", v->valuedouble);
    s = num;
  }
  if (s == NULL)
    return NULL;
  char *d = tq_strdup(s);
  m->oom |= d == NULL;
  return d;
}

static char **dup_list(mload *m, const cJSON *arr, size_t *n) {
  *n = 0;
  int count = cJSON_GetArraySize(arr);
  if (!cJSON_IsArray(arr) || count == 0)
    return NULL;
  char **out = calloc((size_t)count, sizeof *out);
  if (out == NULL) {
    m->oom = 1;
    return NULL;
  }
  const cJSON *e;
  cJSON_ArrayForEach(e, arr) {
    if (cJSON_IsString(e) && (out[*n] = tq_strdup(e->valuestring)) != NULL)
      (*n)++;
  }
  return out;
}

static void free_list(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static int64_t duration_of(mload *m, const cJSON *obj, const char *key, const char *path,
                           int64_t def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsString(v))
    return def;
  int64_t ms = 0;
  tq_err e;
  if (tq_parse_duration_ms(v->valuestring, &ms, &e) != TQ_OK) {
    merr(m, v, path, "%s", e.msg);
    return def;
  }
  return ms;
}

static void load_field(mload *m, const cJSON *j, tq_plugin_field *f, const char *path) {
  static const char *const names[] = {"string", "url", "integer", "boolean", "select", "password"};
  f->key = dup_str(m, j, "key");
  f->label = dup_str(m, j, "label");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
  for (size_t i = 0; cJSON_IsString(t) && i < sizeof names / sizeof names[0]; i++)
    if (strcmp(names[i], t->valuestring) == 0)
      f->type = (tq_field_type)i;
  f->required = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "required"));
  f->options = dup_list(m, cJSON_GetObjectItemCaseSensitive(j, "options"), &f->n_options);
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "default");
  f->def = scalar_dup(m, d);
  if (f->type == TQ_FIELD_SELECT && f->n_options == 0)
    merr(m, j, path, "a select field needs options");
  if (f->type == TQ_FIELD_PASSWORD && f->def)
    merr(m, d, path, "a password field cannot have a default (it would be stored in clear)");
  if (f->def && f->type != TQ_FIELD_PASSWORD) {
    char *norm = NULL;
    tq_err e;
    if (tq_plugin_field_check(f, f->def, &norm, &e) != TQ_OK)
      merr(m, d, path, "default: %s", e.msg);
    else {
      free(f->def);
      f->def = norm;
    }
  }
}

static void load_fields(mload *m, const cJSON *arr, tq_plugin *p) {
  int n = cJSON_GetArraySize(arr);
  if (!cJSON_IsArray(arr) || n == 0)
    return;
  if ((p->fields = calloc((size_t)n, sizeof *p->fields)) == NULL) {
    m->oom = 1;
    return;
  }
  const cJSON *j;
  char path[64];
  cJSON_ArrayForEach(j, arr) {
    snprintf(path, sizeof path, "config[%zu]", p->n_fields);
    tq_plugin_field *f = &p->fields[p->n_fields++];
    load_field(m, j, f, path);
    for (size_t i = 0; f->key && i + 1 < p->n_fields; i++)
      if (p->fields[i].key && strcmp(p->fields[i].key, f->key) == 0)
        merr(m, j, path, "config key '%s' is defined twice", f->key);
  }
}

static void check_types(mload *m, const cJSON *j, tq_plugin_op *op, const char *path) {
  char sub[128];
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "object_types");
  for (size_t i = 0; i < op->n_object_types; i++) {
    if (!tq_lib_object_type_valid(op->object_types[i])) {
      snprintf(sub, sizeof sub, "%s.object_types[%zu]", path, i);
      merr(m, cJSON_GetArrayItem(arr, (int)i), sub, "'%s' is not an object type",
           op->object_types[i]);
    }
  }
  arr = cJSON_GetObjectItemCaseSensitive(j, "indicator_types");
  for (size_t i = 0; i < op->n_indicator_types; i++) {
    const char *canon = tq_lib_indicator_type_canon(op->indicator_types[i], NULL);
    snprintf(sub, sizeof sub, "%s.indicator_types[%zu]", path, i);
    if (canon == NULL) {
      merr(m, cJSON_GetArrayItem(arr, (int)i), sub,
           "'%s' is not an indicator type (see tqhost indicator types)", op->indicator_types[i]);
    } else if (strcmp(canon, op->indicator_types[i]) != 0) {
      char *c = tq_strdup(canon);
      if (c) {
        free(op->indicator_types[i]);
        op->indicator_types[i] = c;
      }
    }
  }
}

static void load_ops(mload *m, const cJSON *arr, tq_plugin *p) {
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
    op->name = dup_str(m, j, "name");
    op->label = dup_str(m, j, "label");
    op->entry = dup_str(m, j, "entry");
    op->object_types =
        dup_list(m, cJSON_GetObjectItemCaseSensitive(j, "object_types"), &op->n_object_types);
    op->indicator_types =
        dup_list(m, cJSON_GetObjectItemCaseSensitive(j, "indicator_types"), &op->n_indicator_types);
    check_types(m, j, op, path);
    for (size_t i = 0; op->name && i + 1 < p->n_ops; i++)
      if (p->ops[i].name && strcmp(p->ops[i].name, op->name) == 0)
        merr(m, j, path, "operation '%s' is defined twice", op->name);
  }
}

static void load_network(mload *m, const cJSON *net, tq_plugin *p) {
  tq_plugin_network *n = &p->net;
  n->hosts = dup_list(m, cJSON_GetObjectItemCaseSensitive(net, "hosts"), &n->n_hosts);
  const cJSON *rl = cJSON_GetObjectItemCaseSensitive(net, "rate_limit");
  const cJSON *req = cJSON_GetObjectItemCaseSensitive(rl, "requests");
  if (cJSON_IsNumber(req)) {
    n->rate_requests = req->valueint;
    n->rate_per_ms = duration_of(m, rl, "per", "network.rate_limit.per", 1000);
    if (n->rate_per_ms <= 0)
      merr(m, cJSON_GetObjectItemCaseSensitive(rl, "per"), "network.rate_limit.per",
           "must be longer than 0");
  }
  const cJSON *retry = cJSON_GetObjectItemCaseSensitive(net, "retry");
  const cJSON *on = cJSON_GetObjectItemCaseSensitive(retry, "on");
  int n_on = cJSON_GetArraySize(on);
  if (cJSON_IsArray(on) && n_on > 0 && (n->retry_on = calloc((size_t)n_on, sizeof(int)))) {
    const cJSON *e;
    cJSON_ArrayForEach(e, on) {
      if (cJSON_IsNumber(e))
        n->retry_on[n->n_retry_on++] = e->valueint;
    }
  }
  const cJSON *max = cJSON_GetObjectItemCaseSensitive(retry, "max");
  n->retry_max = cJSON_IsNumber(max) ? max->valueint : 0;
  n->cache_ttl_ms = duration_of(m, net, "cache_ttl", "network.cache_ttl", 0);
}

static void load_limits(mload *m, const cJSON *lim, tq_plugin *p) {
  const cJSON *mem = cJSON_GetObjectItemCaseSensitive(lim, "memory");
  char *text = scalar_dup(m, mem);
  if (text) {
    uint64_t bytes = 0;
    tq_err e;
    if (tq_parse_size(text, &bytes, &e) != TQ_OK || bytes < 64 * 1024)
      merr(m, mem, "limits.memory", "%s", bytes ? "must be at least 64KiB" : e.msg);
    p->limits.memory = (size_t)bytes;
    free(text);
  }
  const cJSON *ins = cJSON_GetObjectItemCaseSensitive(lim, "instructions");
  if (cJSON_IsNumber(ins))
    p->limits.instructions = (uint64_t)ins->valuedouble;
  p->limits.timeout_ms = duration_of(m, lim, "timeout", "limits.timeout", 0);
}

/* Fills p from a document that passed the schema. */
static void load_doc(mload *m, const cJSON *root, tq_plugin *p) {
  p->name = dup_str(m, root, "name");
  p->label = dup_str(m, root, "label");
  p->version = dup_str(m, root, "version");
  p->description = dup_str(m, root, "description");
  p->author = dup_str(m, root, "author");
  const cJSON *script = cJSON_GetObjectItemCaseSensitive(root, "script");
  if (cJSON_IsString(script)) {
    if (strstr(script->valuestring, "..") || script->valuestring[0] == '/')
      merr(m, script, "script", "must be a path inside the plugin's folder");
    else if (asprintf(&p->script, "%s/%s", p->dir, script->valuestring) < 0)
      p->script = NULL, m->oom = 1;
  }
  load_fields(m, cJSON_GetObjectItemCaseSensitive(root, "config"), p);
  load_ops(m, cJSON_GetObjectItemCaseSensitive(root, "operations"), p);
  load_network(m, cJSON_GetObjectItemCaseSensitive(root, "network"), p);
  load_limits(m, cJSON_GetObjectItemCaseSensitive(root, "limits"), p);
}

/* The folder's own name must be the package name: the registry finds plugins by folder. */
static void check_folder_name(mload *m, const cJSON *root, const tq_plugin *p) {
  char *copy = tq_strdup(p->dir);
  if (copy == NULL || p->name == NULL) {
    free(copy);
    return;
  }
  size_t len = strlen(copy);
  while (len > 1 && copy[len - 1] == '/')
    copy[--len] = '\0';
  const char *base = basename(copy);
  if (strcmp(base, p->name) != 0)
    merr(m, cJSON_GetObjectItemCaseSensitive(root, "name"), "name",
         "'%s' differs from the plugin's folder name '%s'", p->name, base);
  free(copy);
}

static void diag_to_err(const tq_diags *d, size_t from, tq_err *err) {
  if (d && d->n > from)
    tq_err_set(err, TQ_EINVAL, "%s", d->msgs[from]);
}

tq_code tq_plugin_load(const char *dir, tq_plugin **out, tq_diags *diags, tq_err *err) {
  tq_diags local = {0};
  tq_diags *d = diags ? diags : &local;
  size_t first = d->n;
  tq_ydoc *doc = NULL;
  cJSON *schema = NULL;
  tq_plugin *p = calloc(1, sizeof *p);
  tq_code rc = TQ_ENOMEM;
  if (p == NULL || (p->dir = tq_strdup(dir)) == NULL ||
      asprintf(&p->manifest, "%s/manifest.yaml", dir) < 0) {
    if (p)
      p->manifest = NULL;
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", dir);
    goto fail;
  }
  if ((rc = tq_ydoc_load(p->manifest, &doc, err)) != TQ_OK) {
    tq_diags_add(d, "%s", err->msg);
    goto fail;
  }
  if ((rc = tq_schema_load("operation.schema.json", &schema, err)) != TQ_OK)
    goto fail;
  /* The semantic checks run even after schema errors (they skip ill-typed nodes) so that
   * one `plugin check` reports everything. */
  size_t n_schema = tq_schema_check_ydoc(schema, doc, d);
  mload m = {.doc = doc, .diags = d, .err = err, .n_errors = n_schema};
  if (cJSON_IsObject(doc->root)) {
    load_doc(&m, doc->root, p);
    check_folder_name(&m, doc->root, p);
  }
  diag_to_err(d, first, err);
  if (m.oom)
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", p->manifest);
  else
    rc = m.n_errors > 0 ? TQ_EINVAL : TQ_OK;
  if (rc != TQ_OK)
    goto fail;
  tq_ydoc_free(doc);
  cJSON_Delete(schema);
  tq_diags_free(&local);
  *out = p;
  return TQ_OK;
fail:
  tq_ydoc_free(doc);
  cJSON_Delete(schema);
  tq_diags_free(&local);
  tq_plugin_free(p);
  return rc;
}

void tq_plugin_free(tq_plugin *p) {
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->n_fields; i++) {
    tq_plugin_field *f = &p->fields[i];
    free(f->key), free(f->label), free(f->def);
    free_list(f->options, f->n_options);
  }
  free(p->fields);
  for (size_t i = 0; i < p->n_ops; i++) {
    tq_plugin_op *op = &p->ops[i];
    free(op->name), free(op->label), free(op->entry);
    free_list(op->object_types, op->n_object_types);
    free_list(op->indicator_types, op->n_indicator_types);
  }
  free(p->ops);
  free_list(p->net.hosts, p->net.n_hosts);
  free(p->net.retry_on);
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

const char *tq_field_type_name(tq_field_type t) {
  static const char *const names[] = {"string", "url", "integer", "boolean", "select", "password"};
  return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}
