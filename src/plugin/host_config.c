/* host_config.c: the host configuration file (schemas/host.schema.json): what the operator
 * decides whatever a plugin asks for. Found at $TQHOST_CONFIG, else /etc/tqhost/tqhost.yaml;
 * when the default file is absent the built-in values hold. Read with the same YAML and
 * schema code as manifests, so every error names file:line:col. It holds the budget ceilings
 * (applied by tq_host_limits_clamp to every run's limits), the library, the log level, the
 * folders (read by tq_host_dir, datadir.c) and the settings of tqhost serve. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tqhost/plugin.h"

/* The runtime's defaults for a limit of 0 (include/tqhost/lua.h, tq_lua_limits). */
#define RUNTIME_MEMORY ((size_t)32 << 20)
#define RUNTIME_INSTRUCTIONS 50000000ULL
#define RUNTIME_TIMEOUT_MS 30000

void tq_host_config_defaults(tq_host_config *c) {
  memset(c, 0, sizeof *c);
  c->log_level = -1;
  c->max_limits.memory = TQ_HOST_MAX_MEMORY;
  c->max_limits.instructions = TQ_HOST_MAX_INSTRUCTIONS;
  c->max_limits.timeout_ms = TQ_HOST_MAX_TIMEOUT_MS;
}

const char *tq_host_config_path(int *named) {
  const char *env = getenv("TQHOST_CONFIG");
  *named = env && *env;
  return *named ? env : TQ_HOST_CONFIG_DEFAULT;
}

/* limits: values the file gives replace the built-in ceilings. */
static void load_limits(tq_docload *m, const cJSON *lim, tq_lua_limits *max) {
  tq_lua_limits l = {0};
  tq_docload_limits(m, lim, &l);
  if (l.memory)
    max->memory = l.memory;
  if (l.instructions)
    max->instructions = l.instructions;
  if (l.timeout_ms > 0)
    max->timeout_ms = l.timeout_ms;
}

/* obj[key], a path: absolute as given, a relative one from the folder of the file (base). */
static char *load_path(tq_docload *m, const cJSON *obj, const char *key, const char *base) {
  char *v = tq_docload_str(m, obj, key);
  if (v == NULL || v[0] == '/')
    return v;
  const char *slash = strrchr(base, '/');
  char *abs = NULL;
  if (slash == NULL) {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == NULL || asprintf(&abs, "%s/%s", cwd, v) < 0)
      abs = NULL;
  } else if (asprintf(&abs, "%.*s/%s", (int)(slash - base), base, v) < 0) {
    abs = NULL;
  }
  m->oom |= abs == NULL;
  free(v);
  return abs;
}

/* server: settings of tqhost serve. */
static void load_server(tq_docload *m, const cJSON *srv, const char *base, tq_host_config *out) {
  out->listen = tq_docload_str(m, srv, "listen");
  out->tls_cert = load_path(m, srv, "tls_cert", base);
  out->tls_key = load_path(m, srv, "tls_key", base);
  if ((out->tls_cert == NULL) != (out->tls_key == NULL))
    tq_docload_error(m, srv, "server", "tls_cert and tls_key go together: give both or neither");
  int64_t ms = tq_docload_duration(m, srv, "token_ttl", "server.token_ttl", 0);
  if (ms == 0)
    return;
  if (ms < 1000 || ms > 30LL * 86400000)
    tq_docload_error(m, cJSON_GetObjectItemCaseSensitive(srv, "token_ttl"), "server.token_ttl",
                     "must be between 1s and 30d");
  else
    out->token_ttl_s = ms / 1000;
}

/* Whether the file holds nothing but blank lines and comments (the packaged default, every
 * setting commented out): the built-in values, not an error. -1: it cannot be read. */
static int only_comments(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  int c, bol = 1, in_comment = 0, empty = 1;
  while (empty && (c = getc(f)) != EOF) {
    if (c == '\n')
      bol = 1, in_comment = 0;
    else if (in_comment || c == ' ' || c == '\t' || c == '\r')
      continue;
    else if (c == '#' && bol)
      in_comment = 1;
    else
      empty = 0;
  }
  fclose(f);
  return empty;
}

tq_code tq_host_config_load(const char *path, int must_exist, tq_host_config *out, tq_diags *diags,
                            tq_err *err) {
  tq_host_config_defaults(out);
  struct stat st;
  if (!must_exist && stat(path, &st) != 0)
    return TQ_OK; /* no file: the built-in values */
  if (only_comments(path) == 1) {
    if ((out->path = tq_strdup(path)) == NULL)
      return tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
    return TQ_OK;
  }
  tq_diags local = {0};
  tq_diags *d = diags ? diags : &local;
  size_t first = d->n, n_schema = 0;
  tq_ydoc *doc = NULL;
  tq_code rc = tq_docload_read(path, "host.schema.json", d, &doc, &n_schema, err);
  if (rc != TQ_OK)
    goto done;
  tq_docload m = {.doc = doc, .diags = d, .err = err, .n_errors = n_schema};
  if (n_schema == 0 && cJSON_IsObject(doc->root)) {
    load_limits(&m, cJSON_GetObjectItemCaseSensitive(doc->root, "limits"), &out->max_limits);
    const cJSON *root = doc->root;
    load_server(&m, cJSON_GetObjectItemCaseSensitive(root, "server"), path, out);
    out->library = load_path(&m, root, "library", path);
    const cJSON *fold = cJSON_GetObjectItemCaseSensitive(root, "folders");
    for (int k = TQ_DIR_PLUGINS; k < TQ_DIR_N; k++)
      out->folders[k] = load_path(&m, fold, tq_host_dir_name((tq_host_dir_kind)k), path);
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(root, "log_level");
    static const char *const LEVELS[] = {"debug", "info", "warn", "error"};
    for (int k = 0; cJSON_IsString(lv) && k < 4; k++)
      if (strcmp(lv->valuestring, LEVELS[k]) == 0)
        out->log_level = k;
  }
  if (d->n > first)
    tq_err_set(err, TQ_EINVAL, "%s", d->msgs[first]);
  if (m.oom)
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
  else if (m.n_errors > 0)
    rc = TQ_EINVAL;
  else if ((out->path = tq_strdup(path)) == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
done:
  if (rc != TQ_OK) {
    tq_host_config_free(out);
    tq_host_config_defaults(out);
  }
  tq_ydoc_free(doc);
  tq_diags_free(&local);
  return rc;
}

tq_code tq_host_config_find(tq_host_config *out, tq_err *err) {
  int named = 0;
  const char *path = tq_host_config_path(&named);
  return tq_host_config_load(path, named, out, NULL, err);
}

void tq_host_config_free(tq_host_config *c) {
  free(c->path);
  free(c->library);
  free(c->listen);
  free(c->tls_cert);
  free(c->tls_key);
  for (int k = 0; k < TQ_DIR_N; k++)
    free(c->folders[k]);
  c->path = c->library = c->listen = c->tls_cert = c->tls_key = NULL;
  for (int k = 0; k < TQ_DIR_N; k++)
    c->folders[k] = NULL;
}

static const char *source_of(const tq_host_config *c) {
  return c->path ? c->path : "the built-in ceiling";
}

/* who NULL: quietly (a check, which runs nothing of the plugin's work). */
static void limits_clamp(const tq_host_config *c, const char *who, tq_lua_limits *l) {
  const tq_lua_limits *max = &c->max_limits;
  size_t mem = l->memory ? l->memory : RUNTIME_MEMORY;
  uint64_t ins = l->instructions ? l->instructions : RUNTIME_INSTRUCTIONS;
  int64_t ms = l->timeout_ms > 0 ? l->timeout_ms : RUNTIME_TIMEOUT_MS;
  if (mem > max->memory) {
    if (l->memory && who)
      tq_log(TQ_LOG_WARN, "plugin",
             "%s asks for limits.memory %zu bytes, over the host's %zu (%s): clamped", who,
             l->memory, max->memory, source_of(c));
    l->memory = max->memory;
  }
  if (ins > max->instructions) {
    if (l->instructions && who)
      tq_log(TQ_LOG_WARN, "plugin",
             "%s asks for limits.instructions %llu, over the host's %llu (%s): clamped", who,
             (unsigned long long)l->instructions, (unsigned long long)max->instructions,
             source_of(c));
    l->instructions = max->instructions;
  }
  if (ms > max->timeout_ms) {
    if (l->timeout_ms > 0 && who)
      tq_log(TQ_LOG_WARN, "plugin",
             "%s asks for limits.timeout %lld ms, over the host's %lld ms (%s): clamped", who,
             (long long)l->timeout_ms, (long long)max->timeout_ms, source_of(c));
    l->timeout_ms = max->timeout_ms;
  }
}

void tq_host_limits_clamp(const tq_host_config *c, const char *who, tq_lua_limits *l) {
  limits_clamp(c, who ? who : "?", l);
}

void tq_plugin_check_limits(tq_lua_limits *l) {
  tq_host_config host;
  tq_err err;
  /* On an error host holds the built-in ceilings: a check needs no valid host file. */
  (void)tq_host_config_find(&host, &err);
  limits_clamp(&host, NULL, l);
  tq_host_config_free(&host);
}
