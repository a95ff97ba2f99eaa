/* action.c: Action files actions/<name>.yaml read into a tq_action: YAML with positions,
 * validated against schemas/action.schema.json, then the checks a schema cannot express
 * (known indicator types, durations, the plugin and its script exist, defaults fit their
 * field, the action stays within its plugin: its script, hosts and host-building defaults;
 * that the entries exist in the script is left to the runner, which compiles it). Every
 * error names file:line:col and the field path. The folder listing lives here too. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "action_int.h"

static const cJSON *get(const cJSON *obj, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static int int_of(const cJSON *obj, const char *key, int def) {
  const cJSON *v = get(obj, key);
  return cJSON_IsNumber(v) ? v->valueint : def;
}

/* ---- config fields ------------------------------------------------------------------------- */

/* ---- input, network, limits ---------------------------------------------------------------- */

static void load_input(tq_docload *m, const cJSON *in, tq_action *a) {
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
      tq_docload_error(m, e, path, "'%s' is not an indicator type",
                       cJSON_IsString(e) ? e->valuestring : "?");
    else if (a->itypes && (a->itypes[a->n_itypes] = tq_strdup(canon)) != NULL)
      a->n_itypes++;
  }
  a->batch_size = int_of(in, "batch_size", 100);
  a->concurrency = int_of(in, "concurrency", 8);
  a->batch_entry = tq_docload_str(m, in, "batch_entry");
  a->batch_threshold = int_of(in, "batch_threshold", 0);
  a->batch_max = int_of(in, "batch_max", 1000);
  if ((a->batch_entry == NULL) != (a->batch_threshold == 0))
    tq_docload_error(m, in, "input", "batch_entry and batch_threshold go together");
}

/* The plugin's network section, copied (the action then owns it). */
static void copy_network(tq_docload *m, const tq_plugin_network *src, tq_plugin_network *n) {
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

/* ---- plugin and script ------------------------------------------------------------------------
 */

/* ---- what binds an action to its plugin --------------------------------------------------
 * An action runs with its plugin's stored secrets, so it may do only what the plugin's own
 * operations may: run a script of the plugin's folder or of plugins/lib, reach only hosts of
 * the plugin's allow-list, and not point those hosts elsewhere through a config default. */

/* The script must resolve inside <plugins>/<plugin> or <plugins>/lib. */
static void check_script_home(tq_docload *m, const cJSON *node, const tq_action *a) {
  char lib[4096];
  snprintf(lib, sizeof lib, "%s/lib", a->plugins_dir);
  tq_err e;
  if (tq_path_inside(a->plugin->dir, a->script, NULL, &e) == TQ_OK ||
      tq_path_inside(lib, a->script, NULL, &e) == TQ_OK)
    return;
  tq_docload_error(m, node, "script",
                   "'%s' is neither in plugin %s's folder nor in %s: an action bound to a plugin "
                   "(and its secrets) runs only that plugin's scripts",
                   node->valuestring, a->plugin_name, lib);
}

static int plugin_has_host(const tq_plugin *p, const char *host) {
  for (size_t i = 0; i < p->net.n_hosts; i++)
    if (strcmp(p->net.hosts[i], host) == 0)
      return 1;
  return 0;
}

/* Every host of the action's network must be one of the plugin's, as written. */
static void check_hosts_subset(tq_docload *m, const cJSON *net, const tq_action *a) {
  const cJSON *arr = get(net, "hosts");
  for (size_t i = 0; i < a->net.n_hosts; i++) {
    if (plugin_has_host(a->plugin, a->net.hosts[i]))
      continue;
    char path[64];
    snprintf(path, sizeof path, "network.hosts[%zu]", i);
    tq_docload_error(m, cJSON_GetArrayItem(arr, (int)i), path,
                     "'%s' is not in plugin %s's network.hosts: an action may reach only hosts "
                     "its plugin allows",
                     a->net.hosts[i], a->plugin_name);
  }
}

/* Whether one of the plugin's hosts names {config.key}. */
static int host_uses_key(const tq_plugin *p, const char *key) {
  char ref[160];
  snprintf(ref, sizeof ref, "{config.%s}", key);
  for (size_t i = 0; i < p->net.n_hosts; i++)
    if (strstr(p->net.hosts[i], ref))
      return 1;
  return 0;
}

/* A field the plugin's hosts are built from keeps the plugin's default. */
static void check_host_fields(tq_docload *m, const cJSON *root, const tq_action *a) {
  const cJSON *arr = get(root, "config");
  for (size_t i = 0; i < a->n_fields; i++) {
    const tq_plugin_field *f = &a->fields[i];
    const tq_plugin_field *pf = f->key ? tq_plugin_field_find(a->plugin, f->key) : NULL;
    if (pf == NULL || f->def == NULL || !host_uses_key(a->plugin, f->key) ||
        (pf->def && strcmp(pf->def, f->def) == 0))
      continue;
    char path[64];
    snprintf(path, sizeof path, "config[%zu].default", i);
    tq_docload_error(m, get(cJSON_GetArrayItem(arr, (int)i), "default"), path,
                     "'%s' differs from plugin %s's default '%s': %s builds the plugin's "
                     "network.hosts, which an action cannot move",
                     f->def, a->plugin_name, pf->def ? pf->def : "(none)", f->key);
  }
}

static tq_action_plugin_get_fn g_plugin_get;
static void (*g_plugin_release)(void *hold);

void tq_action_plugin_source(tq_action_plugin_get_fn get, void (*release)(void *hold)) {
  g_plugin_get = get;
  g_plugin_release = release;
}

static void load_plugin(tq_docload *m, const cJSON *root, tq_action *a) {
  const cJSON *node = get(root, "plugin");
  tq_err e;
  tq_err_clear(&e);
  const tq_plugin *held = NULL;
  if (g_plugin_get && strchr(a->plugin_name, '/') == NULL &&
      g_plugin_get(a->plugins_dir, a->plugin_name, &held, &a->plugin_src, &a->plugin_hold)) {
    a->plugin = (tq_plugin *)held; /* the registry's active version: not freed by the action */
  } else if (tq_plugin_find(a->plugins_dir, a->plugin_name, &a->plugin, &e) != TQ_OK) {
    tq_docload_error(m, node, "plugin", "%s", e.msg);
    return;
  }
  const cJSON *script = get(root, "script");
  if (cJSON_IsString(script)) {
    if (strstr(script->valuestring, "..") || script->valuestring[0] == '/') {
      tq_docload_error(m, script, "script", "must be a path inside the plugins folder");
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
  if (stat(a->script, &st) != 0) {
    tq_docload_error(m, cJSON_IsString(script) ? script : node,
                     cJSON_IsString(script) ? "script" : "plugin", "script '%s' does not exist",
                     a->script);
    return;
  }
  if (cJSON_IsString(script))
    check_script_home(m, script, a);
}

/* The file's base name must be the action's name: actions are found by file. */
static void check_file_name(tq_docload *m, const cJSON *root, const tq_action *a) {
  const char *slash = strrchr(a->path, '/');
  const char *base = slash ? slash + 1 : a->path;
  size_t len = strlen(base);
  if (a->name && (len < 5 || strcmp(base + len - 5, ".yaml") != 0 || strlen(a->name) != len - 5 ||
                  strncmp(base, a->name, len - 5) != 0))
    tq_docload_error(m, get(root, "name"), "name",
                     "'%s' differs from the file name '%s' (expected %s.yaml)", a->name, base,
                     a->name);
}

static void load_doc(tq_docload *m, const cJSON *root, tq_action *a) {
  a->name = tq_docload_str(m, root, "name");
  a->label = tq_docload_str(m, root, "label");
  a->version = tq_docload_str(m, root, "version");
  a->description = tq_docload_str(m, root, "description");
  a->plugin_name = tq_docload_str(m, root, "plugin");
  a->entry = tq_docload_str(m, root, "entry");
  load_input(m, get(root, "input"), a);
  tq_docload_fields(m, get(root, "config"), &a->fields, &a->n_fields);
  check_file_name(m, root, a);
  load_plugin(m, root, a);
  if (a->plugin == NULL)
    return;
  if (get(root, "network")) {
    tq_docload_network(m, get(root, "network"), &a->net);
    tq_docload_hosts_check(m, get(root, "network"), &a->net, a->fields, a->n_fields,
                           a->plugin->fields, a->plugin->n_fields);
    check_hosts_subset(m, get(root, "network"), a);
  } else {
    copy_network(m, &a->plugin->net, &a->net);
  }
  check_host_fields(m, root, a);
  a->limits = a->plugin->limits;
  if (get(root, "limits"))
    tq_docload_limits(m, get(root, "limits"), &a->limits);
}

/* ---- action check: what a run would find only when it starts -------------------------------- */

/* The plugin operation the action stands for: the one with the same entry, else NULL (any). */
static const tq_plugin_op *op_of(const tq_action *a) {
  for (size_t i = 0; a->entry && i < a->plugin->n_ops; i++)
    if (strcmp(a->plugin->ops[i].entry, a->entry) == 0)
      return &a->plugin->ops[i];
  return NULL;
}

/* Every indicator type of input must be one the plugin's operation accepts. */
static void check_itypes(tq_docload *m, const cJSON *root, const tq_action *a) {
  const tq_plugin_op *op = op_of(a);
  const cJSON *arr = get(get(root, "input"), "indicator_types");
  for (size_t i = 0; i < a->n_itypes; i++) {
    int ok = 0;
    char accepted[600] = "";
    for (size_t k = 0; k < a->plugin->n_ops && !ok; k++) {
      const tq_plugin_op *o = &a->plugin->ops[k];
      if (op && o != op)
        continue;
      ok = tq_plugin_op_accepts(o, "indicator", a->itypes[i]);
      for (size_t t = 0; t < o->n_indicator_types; t++) {
        size_t len = strlen(accepted);
        snprintf(accepted + len, sizeof accepted - len, "%s%s", len ? ", " : "",
                 o->indicator_types[t]);
      }
    }
    if (ok)
      continue;
    char path[64];
    snprintf(path, sizeof path, "input.indicator_types[%zu]", i);
    tq_docload_error(m, cJSON_GetArrayItem(arr, (int)i), path,
                     "'%s' is not an indicator type plugin %s's operation%s%s accepts (%s)",
                     a->itypes[i], a->plugin_name, op ? " " : "s", op ? op->name : "",
                     *accepted ? accepted : "no indicators");
  }
}

/* A setting of the action that is a field of the plugin has the plugin's type. */
static void check_setting_types(tq_docload *m, const cJSON *root, const tq_action *a) {
  const cJSON *arr = get(root, "config");
  for (size_t i = 0; i < a->n_fields; i++) {
    const tq_plugin_field *f = &a->fields[i];
    const tq_plugin_field *pf = f->key ? tq_plugin_field_find(a->plugin, f->key) : NULL;
    if (pf == NULL || pf->type == f->type)
      continue;
    char path[64];
    snprintf(path, sizeof path, "config[%zu].type", i);
    tq_docload_error(m, get(cJSON_GetArrayItem(arr, (int)i), "type"), path,
                     "%s is %s here but %s in plugin %s's config (the plugin's script reads it "
                     "as %s)",
                     f->key, tq_field_type_name(f->type), tq_field_type_name(pf->type),
                     a->plugin_name, tq_field_type_name(pf->type));
  }
}

/* Compiles the action's script (its top level runs once, no network) and checks that it
 * returns entry and batch_entry. */
static void check_entries(tq_docload *m, const cJSON *root, const tq_action *a) {
  tq_lua *rt = NULL;
  tq_lua_script *s = NULL;
  tq_lua_opts lo;
  tq_lua_opts_init(&lo);
  tq_err e;
  tq_plugin_config cfg;
  if (tq_plugin_config_load(NULL, a->plugin, NULL, 0, &cfg, &e) != TQ_OK) {
    tq_docload_error(m, get(root, "plugin"), "plugin", "%s", e.msg);
    return;
  }
  /* As a run loads it (workflow/run.c), but with the default config, without secrets and
   * without network, under the action's limits within the host's ceilings. */
  tq_lua_limits limits = a->limits;
  tq_plugin_check_limits(&limits);
  tq_plugin_script_spec spec = {.plugin = a->plugin,
                                .cfg = &cfg,
                                .plugins_dir = a->plugins_dir,
                                .script = a->script,
                                .limits = &limits,
                                .src = a->plugin_src};
  tq_plugin_script_opts o;
  if (tq_plugin_script_opts_build(&spec, &o, &e) != TQ_OK || tq_lua_new(&lo, &rt, &e) != TQ_OK ||
      tq_lua_load(rt, &o.so, &s, &e) != TQ_OK) {
    tq_docload_error(m, get(root, "script") ? get(root, "script") : get(root, "plugin"),
                     get(root, "script") ? "script" : "plugin", "%s", e.msg);
  } else {
    const char *names[] = {a->entry, a->batch_entry};
    for (size_t i = 0; i < 2; i++) {
      if (names[i] == NULL || tq_lua_script_has_entry(s, names[i]))
        continue;
      const cJSON *node = i == 0 ? get(root, "entry") : get(get(root, "input"), "batch_entry");
      tq_docload_error(m, node, i == 0 ? "entry" : "input.batch_entry",
                       "%s does not return an entry '%s'", a->script, names[i]);
    }
  }
  tq_lua_script_free(s);
  tq_lua_free(rt);
  tq_plugin_script_opts_free(&o);
  tq_plugin_config_free(&cfg);
}

static tq_code action_load(const char *path, const char *plugins_dir, int deep, tq_action **out,
                           tq_diags *diags, tq_err *err) {
  tq_diags local = {0};
  tq_diags *d = diags ? diags : &local;
  size_t first = d->n;
  tq_ydoc *doc = NULL;
  tq_action *a = calloc(1, sizeof *a);
  tq_code rc;
  if (a == NULL || (a->path = tq_strdup(path)) == NULL ||
      (a->plugins_dir = tq_strdup(plugins_dir ? plugins_dir : tq_plugin_dir())) == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
    goto fail;
  }
  size_t n_schema = 0;
  if ((rc = tq_docload_read(path, "action.schema.json", d, &doc, &n_schema, err)) != TQ_OK)
    goto fail;
  if (n_schema > 0) {
    tq_err_set(err, TQ_EINVAL, "%s", d->msgs[first]);
    rc = TQ_EINVAL;
    goto fail;
  }
  tq_docload m = {.doc = doc, .diags = d, .err = err};
  load_doc(&m, doc->root, a);
  if (deep && a->plugin && m.n_errors == 0 && !m.oom) {
    check_itypes(&m, doc->root, a);
    check_setting_types(&m, doc->root, a);
    check_entries(&m, doc->root, a);
  }
  if (m.oom)
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
  else
    rc = m.n_errors > 0 ? TQ_EINVAL : TQ_OK;
  if (rc != TQ_OK)
    goto fail;
  tq_ydoc_free(doc);
  tq_diags_free(&local);
  *out = a;
  return TQ_OK;
fail:
  tq_ydoc_free(doc);
  tq_diags_free(&local);
  tq_action_free(a);
  return rc;
}

tq_code tq_action_load(const char *path, tq_action **out, tq_diags *diags, tq_err *err) {
  return action_load(path, NULL, 0, out, diags, err);
}

tq_code tq_action_check(const char *path, const char *plugins_dir, tq_diags *diags, tq_err *err) {
  tq_action *a = NULL;
  tq_code rc = action_load(path, plugins_dir, 1, &a, diags, err);
  tq_action_free(a);
  return rc;
}

size_t tq_action_check_dir(const char *dir, tq_diags *d) {
  char sub[4200], parent[4200];
  snprintf(sub, sizeof sub, "%s/actions", dir);
  snprintf(parent, sizeof parent, "%s/..", dir);
  DIR *dh = opendir(sub);
  size_t n = 0;
  if (dh == NULL)
    return 0;
  struct dirent *e;
  while ((e = readdir(dh)) != NULL) {
    size_t len = strlen(e->d_name);
    if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
      continue;
    char path[8400];
    tq_err err;
    snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
    size_t before = d->n;
    if (tq_action_check(path, parent, d, &err) != TQ_OK && d->n == before)
      tq_diags_add(d, "%s", err.msg);
    n++;
  }
  closedir(dh);
  return n;
}

void tq_action_free(tq_action *a) {
  if (a == NULL)
    return;
  tq_docload_fields_free(a->fields, a->n_fields);
  tq_docload_list_free(a->itypes, a->n_itypes);
  tq_docload_network_free(&a->net);
  if (a->plugin_hold && g_plugin_release)
    g_plugin_release(a->plugin_hold);
  else
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
const char *tq_action_entry(const tq_action *a) { return a->entry; }
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

const char *tq_action_dir(void) { return tq_host_dir(TQ_DIR_ACTIONS); }

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
  cJSON *schema = NULL; /* without it no action loads: a setup failure, not skipped actions */
  tq_code schema_rc = tq_schema_load("action.schema.json", &schema, err);
  if (schema_rc != TQ_OK) {
    closedir(dir);
    return schema_rc;
  }
  cJSON_Delete(schema);
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
