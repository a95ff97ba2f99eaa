/* docload.c: reading a schema-checked YAML document into C structs, shared by the Operation
 * manifest loader (manifest.c) and the Action file loader (workflow/action.c): errors with
 * file:line:col and the field path, scalars as text, and the blocks both formats have
 * (config fields, network, limits). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/plugin.h"

tq_code tq_docload_read(const char *path, const char *schema_name, tq_diags *diags, tq_ydoc **doc,
                        size_t *n_schema_errors, tq_err *err) {
  cJSON *schema = NULL;
  *n_schema_errors = 0;
  tq_code rc = tq_ydoc_load(path, doc, err);
  if (rc != TQ_OK) {
    tq_diags_add(diags, "%s", err->msg);
    return rc;
  }
  if ((rc = tq_schema_load(schema_name, &schema, err)) != TQ_OK) {
    tq_ydoc_free(*doc);
    *doc = NULL;
    return rc;
  }
  *n_schema_errors = tq_schema_check_ydoc(schema, *doc, diags);
  cJSON_Delete(schema);
  return TQ_OK;
}

void tq_docload_error(tq_docload *m, const cJSON *node, const char *path, const char *fmt, ...) {
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

char *tq_docload_str(tq_docload *m, const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsString(v))
    return NULL;
  char *s = tq_strdup(v->valuestring);
  m->oom |= s == NULL;
  return s;
}

char *tq_docload_scalar(tq_docload *m, const cJSON *v) {
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

char **tq_docload_list(tq_docload *m, const cJSON *arr, size_t *n) {
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
    if (!cJSON_IsString(e))
      continue;
    if ((out[*n] = tq_strdup(e->valuestring)) == NULL)
      m->oom = 1;
    else
      (*n)++;
  }
  return out;
}

void tq_docload_list_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

int64_t tq_docload_duration(tq_docload *m, const cJSON *obj, const char *key, const char *path,
                            int64_t def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsString(v))
    return def;
  int64_t ms = 0;
  tq_err e;
  if (tq_parse_duration_ms(v->valuestring, &ms, &e) != TQ_OK) {
    tq_docload_error(m, v, path, "%s", e.msg);
    return def;
  }
  return ms;
}

static void load_field(tq_docload *m, const cJSON *j, tq_plugin_field *f, const char *path) {
  f->key = tq_docload_str(m, j, "key");
  f->label = tq_docload_str(m, j, "label");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
  int ti = cJSON_IsString(t) ? tq_field_type_parse(t->valuestring) : -1;
  if (ti >= 0)
    f->type = (tq_field_type)ti;
  f->required = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "required"));
  f->options = tq_docload_list(m, cJSON_GetObjectItemCaseSensitive(j, "options"), &f->n_options);
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "default");
  f->def = tq_docload_scalar(m, d);
  if (f->type == TQ_FIELD_SELECT && f->n_options == 0)
    tq_docload_error(m, j, path, "a select field needs options");
  if (f->type == TQ_FIELD_PASSWORD && f->def)
    tq_docload_error(m, d, path,
                     "a password field cannot have a default (it would be stored in clear)");
  if (f->def && f->type != TQ_FIELD_PASSWORD) {
    char *norm = NULL;
    tq_err e;
    if (tq_plugin_field_check(f, f->def, &norm, &e) != TQ_OK) {
      tq_docload_error(m, d, path, "default: %s", e.msg);
    } else {
      free(f->def);
      f->def = norm;
    }
  }
}

void tq_docload_fields(tq_docload *m, const cJSON *arr, tq_plugin_field **out, size_t *n) {
  int count = cJSON_GetArraySize(arr);
  *n = 0;
  if (!cJSON_IsArray(arr) || count == 0)
    return;
  tq_plugin_field *fields = calloc((size_t)count, sizeof *fields);
  if (fields == NULL) {
    m->oom = 1;
    return;
  }
  *out = fields;
  const cJSON *j;
  char path[64];
  cJSON_ArrayForEach(j, arr) {
    snprintf(path, sizeof path, "config[%zu]", *n);
    tq_plugin_field *f = &fields[(*n)++];
    load_field(m, j, f, path);
    for (size_t i = 0; f->key && i + 1 < *n; i++)
      if (fields[i].key && strcmp(fields[i].key, f->key) == 0)
        tq_docload_error(m, j, path, "config key '%s' is defined twice", f->key);
  }
}

void tq_docload_network(tq_docload *m, const cJSON *net, tq_plugin_network *n) {
  n->hosts = tq_docload_list(m, cJSON_GetObjectItemCaseSensitive(net, "hosts"), &n->n_hosts);
  const cJSON *rl = cJSON_GetObjectItemCaseSensitive(net, "rate_limit");
  const cJSON *req = cJSON_GetObjectItemCaseSensitive(rl, "requests");
  if (cJSON_IsNumber(req)) {
    n->rate_requests = req->valueint;
    n->rate_per_ms = tq_docload_duration(m, rl, "per", "network.rate_limit.per", 1000);
    if (n->rate_per_ms <= 0)
      tq_docload_error(m, cJSON_GetObjectItemCaseSensitive(rl, "per"), "network.rate_limit.per",
                       "must be longer than 0");
  }
  const cJSON *retry = cJSON_GetObjectItemCaseSensitive(net, "retry");
  const cJSON *on = cJSON_GetObjectItemCaseSensitive(retry, "on");
  int n_on = cJSON_GetArraySize(on);
  if (cJSON_IsArray(on) && n_on > 0) {
    if ((n->retry_on = calloc((size_t)n_on, sizeof(int))) == NULL)
      m->oom = 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, on) {
      if (n->retry_on && cJSON_IsNumber(e))
        n->retry_on[n->n_retry_on++] = e->valueint;
    }
  }
  const cJSON *max = cJSON_GetObjectItemCaseSensitive(retry, "max");
  n->retry_max = cJSON_IsNumber(max) ? max->valueint : 0;
  n->cache_ttl_ms = tq_docload_duration(m, net, "cache_ttl", "network.cache_ttl", 0);
}

/* The field of key in a (then b), or NULL. */
static const tq_plugin_field *field_in(const tq_plugin_field *a, size_t na,
                                       const tq_plugin_field *b, size_t nb, const char *key) {
  for (size_t i = 0; i < na + nb; i++) {
    const tq_plugin_field *f = i < na ? &a[i] : &b[i - na];
    if (f->key && strcmp(f->key, key) == 0)
      return f;
  }
  return NULL;
}

void tq_docload_hosts_check(tq_docload *m, const cJSON *net, const tq_plugin_network *n,
                            const tq_plugin_field *fields, size_t n_fields,
                            const tq_plugin_field *more, size_t n_more) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(net, "hosts");
  for (size_t i = 0; i < n->n_hosts; i++) {
    const cJSON *node = cJSON_GetArrayItem(arr, (int)i);
    char path[64];
    snprintf(path, sizeof path, "network.hosts[%zu]", i);
    for (const char *s = n->hosts[i]; (s = strstr(s, "{config.")) != NULL;) {
      const char *close = strchr(s, '}');
      if (close == NULL) {
        tq_docload_error(m, node, path, "'%s': unclosed '{'", n->hosts[i]);
        break;
      }
      char key[128];
      snprintf(key, sizeof key, "%.*s", (int)(close - s - 8), s + 8);
      const tq_plugin_field *f = field_in(fields, n_fields, more, n_more, key);
      if (f == NULL)
        tq_docload_error(m, node, path,
                         "'{config.%s}' names no config field: '%s' is not a key "
                         "of config",
                         key, key);
      else if (f->type == TQ_FIELD_PASSWORD)
        tq_docload_error(m, node, path,
                         "'{config.%s}' is a password field: a secret cannot be "
                         "a host",
                         key);
      s = close + 1;
    }
  }
}

void tq_docload_limits(tq_docload *m, const cJSON *lim, tq_lua_limits *l) {
  const cJSON *mem = cJSON_GetObjectItemCaseSensitive(lim, "memory");
  char *text = tq_docload_scalar(m, mem);
  if (text) {
    uint64_t bytes = 0;
    tq_err e;
    if (tq_parse_size(text, &bytes, &e) != TQ_OK)
      tq_docload_error(m, mem, "limits.memory", "%s", e.msg);
    else if (bytes < 64 * 1024)
      tq_docload_error(m, mem, "limits.memory", "'%s' is below the minimum of 64KiB", text);
    else
      l->memory = (size_t)bytes;
    free(text);
  }
  const cJSON *ins = cJSON_GetObjectItemCaseSensitive(lim, "instructions");
  if (cJSON_IsNumber(ins)) {
    double n = ins->valuedouble; /* checked before the conversion: 1e300 or NaN are UB there */
    if (!(n >= 1 && n <= TQ_INSTRUCTIONS_MAX) || n != floor(n))
      tq_docload_error(m, ins, "limits.instructions", "must be a whole number from 1 to %.0f",
                       TQ_INSTRUCTIONS_MAX);
    else
      l->instructions = (uint64_t)n;
  }
  l->timeout_ms = tq_docload_duration(m, lim, "timeout", "limits.timeout", 0);
}

void tq_docload_fields_free(tq_plugin_field *fields, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(fields[i].key);
    free(fields[i].label);
    free(fields[i].def);
    tq_docload_list_free(fields[i].options, fields[i].n_options);
  }
  free(fields);
}

void tq_docload_network_free(tq_plugin_network *n) {
  tq_docload_list_free(n->hosts, n->n_hosts);
  free(n->retry_on);
}
