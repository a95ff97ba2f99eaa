/* action.c: Action files actions/<name>.yaml read into a tq_action: YAML with positions,
 * validated against schemas/action.schema.json, then the checks a schema cannot express
 * (known indicator types, durations, the plugin and its script exist, defaults fit their
 * field, the entries exist in the script is left to the runner, which compiles it). Every
 * error names file:line:col and the field path. The folder listing lives here too. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "action_int.h"

typedef struct aload {
  const tq_ydoc *doc;
  tq_diags *diags;
  size_t n_errors;
  tq_err *err;
  int oom;
} aload;

static void aerr(aload *m, const cJSON *node, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void aerr(aload *m, const cJSON *node, const char *path, const char *fmt, ...) {
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

static const cJSON *get(const cJSON *obj, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static char *dup_str(aload *m, const cJSON *obj, const char *key) {
  const cJSON *v = get(obj, key);
  if (!cJSON_IsString(v))
    return NULL;
  char *s = tq_strdup(v->valuestring);
  m->oom |= s == NULL;
  return s;
}

/* A scalar as text ("true", "42", "x"); NULL for other nodes. */
static char *scalar_dup(aload *m, const cJSON *v) {
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

static void free_list(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static int64_t duration_of(aload *m, const cJSON *obj, const char *key, const char *path,
                           int64_t def) {
  const cJSON *v = get(obj, key);
  int64_t ms = 0;
  tq_err e;
  if (!cJSON_IsString(v))
    return def;
  if (tq_parse_duration_ms(v->valuestring, &ms, &e) != TQ_OK) {
    aerr(m, v, path, "%s", e.msg);
    return def;
  }
  return ms;
}

static int int_of(const cJSON *obj, const char *key, int def) {
  const cJSON *v = get(obj, key);
  return cJSON_IsNumber(v) ? v->valueint : def;
}

/* ---- config fields ------------------------------------------------------------------------- */

static void load_field(aload *m, const cJSON *j, tq_plugin_field *f, const char *path) {
  static const char *const names[] = {"string", "url", "integer", "boolean", "select", "password"};
  f->key = dup_str(m, j, "key");
  f->label = dup_str(m, j, "label");
  const cJSON *t = get(j, "type");
  for (size_t i = 0; cJSON_IsString(t) && i < sizeof names / sizeof names[0]; i++)
    if (strcmp(names[i], t->valuestring) == 0)
      f->type = (tq_field_type)i;
  f->required = cJSON_IsTrue(get(j, "required"));
  const cJSON *opts = get(j, "options"), *e;
  int n_opts = cJSON_GetArraySize(opts);
  if (n_opts > 0 && (f->options = calloc((size_t)n_opts, sizeof *f->options)) == NULL)
    m->oom = 1;
  cJSON_ArrayForEach(e, opts) {
    if (f->options && cJSON_IsString(e) && (f->options[f->n_options] = tq_strdup(e->valuestring)))
      f->n_options++;
  }
  const cJSON *d = get(j, "default");
  f->def = scalar_dup(m, d);
  if (f->type == TQ_FIELD_SELECT && f->n_options == 0)
    aerr(m, j, path, "a select field needs options");
  if (f->type == TQ_FIELD_PASSWORD && f->def)
    aerr(m, d, path, "a password field cannot have a default (it would be stored in clear)");
  if (f->def && f->type != TQ_FIELD_PASSWORD) {
    char *norm = NULL;
    tq_err e2;
    if (tq_plugin_field_check(f, f->def, &norm, &e2) != TQ_OK) {
      aerr(m, d, path, "default: %s", e2.msg);
    } else {
      free(f->def);
      f->def = norm;
    }
  }
}

static void load_fields(aload *m, const cJSON *arr, tq_action *a) {
  int n = cJSON_GetArraySize(arr);
  if (n <= 0 || (a->fields = calloc((size_t)n, sizeof *a->fields)) == NULL) {
    m->oom |= n > 0;
    return;
  }
  const cJSON *j;
  cJSON_ArrayForEach(j, arr) {
    char path[64];
    snprintf(path, sizeof path, "config[%zu]", a->n_fields);
    tq_plugin_field *f = &a->fields[a->n_fields++];
    load_field(m, j, f, path);
    for (size_t i = 0; f->key && i + 1 < a->n_fields; i++)
      if (a->fields[i].key && strcmp(a->fields[i].key, f->key) == 0)
        aerr(m, get(j, "key"), path, "key '%s' is defined twice", f->key);
  }
}

/* ---- input, network, limits ---------------------------------------------------------------- */

static void load_input(aload *m, const cJSON *in, tq_action *a) {
  const cJSON *types = get(in, "indicator_types"), *e;
  int n = cJSON_GetArraySize(types);
  if (n > 0 && (a->itypes = calloc((size_t)n, sizeof *a->itypes)) == NULL)
    m->oom = 1;
  cJSON_ArrayForEach(e, types) {
    char path[64];
    snprintf(path, sizeof path, "input.indicator_types[%zu]", a->n_itypes);
    const char *canon =
        cJSON_IsString(e) ? tq_lib_indicator_type_canon(e->valuestring, NULL) : NULL;
    if (canon == NULL)
      aerr(m, e, path, "'%s' is not an indicator type", cJSON_IsString(e) ? e->valuestring : "?");
    else if (a->itypes && (a->itypes[a->n_itypes] = tq_strdup(canon)) != NULL)
      a->n_itypes++;
  }
  a->batch_size = int_of(in, "batch_size", 100);
  a->concurrency = int_of(in, "concurrency", 8);
  a->batch_entry = dup_str(m, in, "batch_entry");
  a->batch_threshold = int_of(in, "batch_threshold", 0);
  a->batch_max = int_of(in, "batch_max", 1000);
  if ((a->batch_entry == NULL) != (a->batch_threshold == 0))
    aerr(m, in, "input", "batch_entry and batch_threshold go together");
}

static void load_network(aload *m, const cJSON *net, tq_plugin_network *n) {
  const cJSON *hosts = get(net, "hosts"), *e;
  int nh = cJSON_GetArraySize(hosts);
  if (nh > 0 && (n->hosts = calloc((size_t)nh, sizeof *n->hosts)) == NULL)
    m->oom = 1;
  cJSON_ArrayForEach(e, hosts) {
    if (n->hosts && cJSON_IsString(e) && (n->hosts[n->n_hosts] = tq_strdup(e->valuestring)))
      n->n_hosts++;
  }
  const cJSON *rl = get(net, "rate_limit");
  if (cJSON_IsNumber(get(rl, "requests"))) {
    n->rate_requests = get(rl, "requests")->valueint;
    n->rate_per_ms = duration_of(m, rl, "per", "network.rate_limit.per", 1000);
    if (n->rate_per_ms <= 0)
      aerr(m, get(rl, "per"), "network.rate_limit.per", "must be longer than 0");
  }
  const cJSON *retry = get(net, "retry");
  const cJSON *on = get(retry, "on");
  int n_on = cJSON_GetArraySize(on);
  if (n_on > 0 && (n->retry_on = calloc((size_t)n_on, sizeof(int))) == NULL)
    m->oom = 1;
  cJSON_ArrayForEach(e, on) {
    if (n->retry_on && cJSON_IsNumber(e))
      n->retry_on[n->n_retry_on++] = e->valueint;
  }
  n->retry_max = int_of(retry, "max", 0);
  n->cache_ttl_ms = duration_of(m, net, "cache_ttl", "network.cache_ttl", 0);
}

/* The plugin's network section, copied (the action then owns it). */
static void copy_network(aload *m, const tq_plugin_network *src, tq_plugin_network *n) {
  *n = *src;
  n->hosts = NULL, n->n_hosts = 0, n->retry_on = NULL, n->n_retry_on = 0;
  if (src->n_hosts && (n->hosts = calloc(src->n_hosts, sizeof *n->hosts)) == NULL)
    m->oom = 1;
  for (size_t i = 0; n->hosts && i < src->n_hosts; i++)
    if ((n->hosts[n->n_hosts] = tq_strdup(src->hosts[i])) != NULL)
      n->n_hosts++;
  if (src->n_retry_on && (n->retry_on = calloc(src->n_retry_on, sizeof(int))) == NULL)
    m->oom = 1;
  for (size_t i = 0; n->retry_on && i < src->n_retry_on; i++)
    n->retry_on[n->n_retry_on++] = src->retry_on[i];
}

static void load_limits(aload *m, const cJSON *lim, tq_lua_limits *l) {
  const cJSON *mem = get(lim, "memory");
  char *text = scalar_dup(m, mem);
  if (text) {
    uint64_t bytes = 0;
    tq_err e;
    if (tq_parse_size(text, &bytes, &e) != TQ_OK || bytes < 64 * 1024)
      aerr(m, mem, "limits.memory", "%s", bytes ? "must be at least 64KiB" : e.msg);
    l->memory = (size_t)bytes;
    free(text);
  }
  const cJSON *ins = get(lim, "instructions");
  if (cJSON_IsNumber(ins))
    l->instructions = (uint64_t)ins->valuedouble;
  l->timeout_ms = duration_of(m, lim, "timeout", "limits.timeout", 0);
}

/* ---- plugin and script ------------------------------------------------------------------------
 */

static void load_plugin(aload *m, const cJSON *root, tq_action *a) {
  const cJSON *node = get(root, "plugin");
  tq_err e;
  tq_err_clear(&e);
  if (tq_plugin_find(a->plugins_dir, a->plugin_name, &a->plugin, &e) != TQ_OK) {
    aerr(m, node, "plugin", "%s", e.msg);
    return;
  }
  const cJSON *script = get(root, "script");
  if (cJSON_IsString(script)) {
    if (strstr(script->valuestring, "..") || script->valuestring[0] == '/') {
      aerr(m, script, "script", "must be a path inside the plugins folder");
      return;
    }
    if (asprintf(&a->script, "%s/%s", a->plugins_dir, script->valuestring) < 0) {
      a->script = NULL;
      m->oom = 1;
      return;
    }
  } else if ((a->script = tq_strdup(a->plugin->script)) == NULL) {
    m->oom = 1;
    return;
  }
  struct stat st;
  if (stat(a->script, &st) != 0)
    aerr(m, cJSON_IsString(script) ? script : node, cJSON_IsString(script) ? "script" : "plugin",
         "script '%s' does not exist", a->script);
}

/* The file's base name must be the action's name: actions are found by file. */
static void check_file_name(aload *m, const cJSON *root, const tq_action *a) {
  const char *slash = strrchr(a->path, '/');
  const char *base = slash ? slash + 1 : a->path;
  size_t len = strlen(base);
  if (a->name && (len < 5 || strcmp(base + len - 5, ".yaml") != 0 || strlen(a->name) != len - 5 ||
                  strncmp(base, a->name, len - 5) != 0))
    aerr(m, get(root, "name"), "name", "'%s' differs from the file name '%s' (expected %s.yaml)",
         a->name, base, a->name);
}

static void load_doc(aload *m, const cJSON *root, tq_action *a) {
  a->name = dup_str(m, root, "name");
  a->label = dup_str(m, root, "label");
  a->version = dup_str(m, root, "version");
  a->description = dup_str(m, root, "description");
  a->plugin_name = dup_str(m, root, "plugin");
  a->entry = dup_str(m, root, "entry");
  load_input(m, get(root, "input"), a);
  load_fields(m, get(root, "config"), a);
  check_file_name(m, root, a);
  load_plugin(m, root, a);
  if (a->plugin == NULL)
    return;
  if (get(root, "network"))
    load_network(m, get(root, "network"), &a->net);
  else
    copy_network(m, &a->plugin->net, &a->net);
  a->limits = a->plugin->limits;
  if (get(root, "limits"))
    load_limits(m, get(root, "limits"), &a->limits);
}

tq_code tq_action_load(const char *path, tq_action **out, tq_diags *diags, tq_err *err) {
  tq_diags local = {0};
  tq_diags *d = diags ? diags : &local;
  size_t first = d->n;
  tq_ydoc *doc = NULL;
  cJSON *schema = NULL;
  tq_action *a = calloc(1, sizeof *a);
  tq_code rc;
  if (a == NULL || (a->path = tq_strdup(path)) == NULL ||
      (a->plugins_dir = tq_strdup(tq_plugin_dir())) == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
    goto fail;
  }
  if ((rc = tq_ydoc_load(path, &doc, err)) != TQ_OK) {
    tq_diags_add(d, "%s", err->msg);
    goto fail;
  }
  if ((rc = tq_schema_load("action.schema.json", &schema, err)) != TQ_OK)
    goto fail;
  if (tq_schema_check_ydoc(schema, doc, d) > 0) {
    tq_err_set(err, TQ_EINVAL, "%s", d->msgs[first]);
    rc = TQ_EINVAL;
    goto fail;
  }
  aload m = {.doc = doc, .diags = d, .err = err};
  load_doc(&m, doc->root, a);
  if (m.oom)
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
  else
    rc = m.n_errors > 0 ? TQ_EINVAL : TQ_OK;
  if (rc != TQ_OK)
    goto fail;
  tq_ydoc_free(doc);
  cJSON_Delete(schema);
  tq_diags_free(&local);
  *out = a;
  return TQ_OK;
fail:
  tq_ydoc_free(doc);
  cJSON_Delete(schema);
  tq_diags_free(&local);
  tq_action_free(a);
  return rc;
}

void tq_action_free(tq_action *a) {
  if (a == NULL)
    return;
  for (size_t i = 0; i < a->n_fields; i++) {
    tq_plugin_field *f = &a->fields[i];
    free(f->key), free(f->label), free(f->def);
    free_list(f->options, f->n_options);
  }
  free(a->fields);
  free_list(a->itypes, a->n_itypes);
  free_list(a->net.hosts, a->net.n_hosts);
  free(a->net.retry_on);
  tq_plugin_free(a->plugin);
  free(a->path), free(a->name), free(a->label), free(a->version), free(a->description);
  free(a->plugin_name), free(a->entry), free(a->batch_entry), free(a->plugins_dir);
  free(a->script);
  free(a);
}

/* ---- accessors ------------------------------------------------------------------------------ */

const char *tq_action_name(const tq_action *a) { return a->name; }
const char *tq_action_label(const tq_action *a) { return a->label; }
const char *tq_action_version(const tq_action *a) { return a->version; }
const char *tq_action_description(const tq_action *a) {
  return a->description ? a->description : "";
}
const char *tq_action_plugin_name(const tq_action *a) { return a->plugin_name; }
int tq_action_concurrency(const tq_action *a) { return a->concurrency; }
int tq_action_batch_size(const tq_action *a) { return a->batch_size; }

const tq_plugin_field *tq_action_fields(const tq_action *a, size_t *n) {
  *n = a->n_fields;
  return a->fields;
}

const char *const *tq_action_indicator_types(const tq_action *a, size_t *n) {
  *n = a->n_itypes;
  return (const char *const *)a->itypes;
}

/* ---- the folder -------------------------------------------------------------------------------
 */

const char *tq_action_dir(void) {
  const char *env = getenv("TQHOST_ACTIONS");
  return env && *env ? env : "actions";
}

tq_code tq_action_find(const char *actions_dir, const char *name, tq_action **out, tq_err *err) {
  char path[4096];
  if (name[0] == '\0' || strchr(name, '/') || strstr(name, ".."))
    return tq_err_set(err, TQ_EINVAL, "'%s' is not an action name", name);
  snprintf(path, sizeof path, "%s/%s.yaml", actions_dir, name);
  struct stat st;
  if (stat(path, &st) != 0)
    return tq_err_set(err, TQ_ENOTFOUND, "no action '%s' (no file %s)", name, path);
  return tq_action_load(path, out, NULL, err);
}

static int by_name(const void *x, const void *y) {
  return strcmp((*(tq_action *const *)x)->name, (*(tq_action *const *)y)->name);
}

static int is_yaml(const char *name) {
  size_t len = strlen(name);
  return len > 5 && name[0] != '.' && strcmp(name + len - 5, ".yaml") == 0;
}

tq_code tq_action_list(const char *actions_dir, tq_action ***out, size_t *n, tq_diags *diags,
                       tq_err *err) {
  *out = NULL;
  *n = 0;
  DIR *dir = opendir(actions_dir);
  if (dir == NULL)
    return tq_err_set(err, TQ_ENOTFOUND, "actions folder '%s' cannot be read", actions_dir);
  tq_action **list = NULL;
  size_t cap = 0;
  tq_code rc = TQ_OK;
  struct dirent *de;
  while (rc == TQ_OK && (de = readdir(dir)) != NULL) {
    if (!is_yaml(de->d_name))
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", actions_dir, de->d_name);
    tq_action *a = NULL;
    tq_err e;
    if (tq_action_load(path, &a, diags, &e) != TQ_OK)
      continue; /* reported in diags */
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      tq_action **grown = realloc(list, cap * sizeof *grown);
      if (grown == NULL) {
        tq_action_free(a);
        rc = tq_err_set(err, TQ_ENOMEM, "actions: out of memory");
        break;
      }
      list = grown;
    }
    list[(*n)++] = a;
  }
  closedir(dir);
  if (rc != TQ_OK) {
    tq_action_list_free(list, *n);
    *n = 0;
    return rc;
  }
  if (*n)
    qsort(list, *n, sizeof *list, by_name);
  *out = list;
  return TQ_OK;
}

void tq_action_list_free(tq_action **list, size_t n) {
  for (size_t i = 0; i < n; i++)
    tq_action_free(list[i]);
  free(list);
}
