/* api_plugins.c: the routes of plugins and their config, the operations of an indicator,
 * operation runs and apply.
 *
 *   GET  /api/plugins                                  read-only  plugins, ops, masked config
 *   GET  /api/plugins/{name}                           read-only  one of them
 *   PUT  /api/plugins/{name}/config                    admin      tq_plugin_configure (engine)
 *   GET  /api/indicators/{id}/operations               read-only  ops accepting its type
 *   POST /api/plugins/{name}/operations/{op}           analyst    a run on the engine
 *   POST /api/plugins/{name}/operations/{op}/apply     analyst    writes a kept run's changes
 *
 * The registry (plugin/snapshot.c: each plugin's manifest, script and lib modules read whole)
 * is one shared snapshot, reloaded when a plugin's folder changes (checked at most every
 * TQ_PLUGIN_REG_CHECK_MS); a newer version that fails to load leaves the one before active
 * with its error shown here and in tqhost_plugin_load_error. The engine side (its slot)
 * keeps each plugin's script loaded in the engine's runtime with its config ("warm": loaded
 * again from the registry's texts when the version or its config changes). The successful runs
 * are kept for apply in the library (table op_runs of store.c: the caller's user, the target,
 * the change set as JSON; RUNS_MAX at most, RUN_TTL_MS each), so that a restart loses none:
 * written by the run's completion on the engine, read back by apply. A run is a coroutine on the
 * engine's runtime: the job starts it and returns; the engine keeps serving other jobs while it
 * waits on the network; its completion answers the suspended connection. */
#include <dirent.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api_input.h"
#include "auth_int.h"
#include "server_int.h"
#include "tqhost/plugin.h"

#define RUNS_MAX 1024
#define RUN_TTL_MS (60 * 60 * 1000)
#define VALUE_MAX 4096
/* A run with "apply": true that finishes this late is not applied: the engine answers a job
 * 504 at 120 s, and a client told 504 must not find its change set written. */
#define APPLY_LATE_MS 110000

/* ---- the registry (any thread): tq_plugin_reg of plugin/snapshot.c ------------------------ */

typedef tq_plugin_reg reg;

static pthread_once_t g_help_once = PTHREAD_ONCE_INIT;
static void help_once(void);

/* The gauge of plugins whose newest version failed to load, set when the registry changed. */
static void reg_metrics(const reg *r) {
  static _Atomic uint64_t seen;
  uint64_t gen = tq_plugin_reg_gen(r);
  if (atomic_exchange(&seen, gen) == gen)
    return;
  pthread_once(&g_help_once, help_once);
  size_t n;
  const tq_plugin_slot *sl = tq_plugin_reg_slots(r, &n);
  char(*labels)[200] = calloc(n ? n : 1, sizeof *labels);
  const char **keep = calloc(n ? n : 1, sizeof *keep);
  for (size_t i = 0; labels && keep && i < n; i++) {
    snprintf(labels[i], sizeof labels[i], "plugin=\"%.100s\"", sl[i].name);
    for (char *c = labels[i] + 8; *c; c++)
      if (*c == '"' || *c == '\\' || *c == '\n')
        *c = '_';
    labels[i][strlen(labels[i]) - 1] = '"';
    tq_metric_set("tqhost_plugin_load_error", labels[i], sl[i].error ? 1 : 0);
    keep[i] = labels[i];
  }
  /* a plugin removed has no gauge left (a stale 1 would alert forever) */
  if (labels && keep)
    tq_metric_keep("tqhost_plugin_load_error", keep, n);
  free(labels);
  free(keep);
}

/* The current registry, reloaded when a plugin's folder changed, with a reference (reg_put);
 * NULL only when out of memory. */
static reg *reg_get(void) {
  reg *r = tq_plugin_reg_get(tq_plugin_dir());
  if (r)
    reg_metrics(r);
  return r;
}

static void reg_put(reg *r) { tq_plugin_reg_put(r); }

/* The active version of plugin name; NULL when none. */
static const tq_plugin *reg_find(const reg *r, const char *name) {
  const tq_plugin_slot *sl = tq_plugin_reg_find(r, name);
  return sl ? sl->p : NULL;
}

/* ---- metrics ---------------------------------------------------------------------------- */

static void help_once(void) {
  tq_metric_help("tqhost_plugin_load_error", "gauge",
                 "1 when a plugin's newest version failed to load (the one before stays active)");
  tq_metric_help("tqhost_operation_runs_total", "counter",
                 "operation runs by plugin and outcome (ok, failed, error, killed, refused)");
  tq_metric_help("tqhost_operation_run_seconds", "histogram", "operation run time by plugin");
  tq_metric_help("tqhost_operation_applies_total", "counter", "change sets applied by plugin");
  tq_metric_help("tqhost_lua_kills_total", "counter",
                 "operation runs killed by a Lua budget (memory, instructions, timeout)");
}

/* A label value: the plugin names are [a-z0-9-] by the manifest schema; anything else is
 * dropped rather than escaped. */
static void label_safe(char *out, size_t n, const char *s) {
  size_t k = 0;
  for (; *s && k + 1 < n; s++)
    if ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
        (*s >= 'A' && *s <= 'Z'))
      out[k++] = *s;
  out[k] = '\0';
}

static void metric_run(const char *plugin, const char *outcome, double seconds) {
  pthread_once(&g_help_once, help_once);
  char p[128], labels[256];
  label_safe(p, sizeof p, plugin);
  snprintf(labels, sizeof labels, "plugin=\"%s\",outcome=\"%s\"", p, outcome);
  tq_metric_add("tqhost_operation_runs_total", labels, 1);
  if (seconds >= 0) {
    snprintf(labels, sizeof labels, "plugin=\"%s\"", p);
    tq_metric_observe("tqhost_operation_run_seconds", labels, seconds);
  }
}

/* ---- JSON of a plugin ---------------------------------------------------------------------- */

static cJSON *ops_json(const tq_plugin *p, const char *only_type) {
  cJSON *arr = cJSON_CreateArray();
  for (size_t k = 0; k < p->n_ops; k++) {
    const tq_plugin_op *op = &p->ops[k];
    if (only_type && !tq_plugin_op_accepts(op, "indicator", only_type))
      continue;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", op->name);
    if (only_type)
      cJSON_AddStringToObject(o, "plugin", p->name);
    cJSON_AddStringToObject(o, "label", op->label ? op->label : op->name);
    cJSON *ot = cJSON_AddArrayToObject(o, "object_types");
    for (size_t i = 0; i < op->n_object_types; i++)
      cJSON_AddItemToArray(ot, cJSON_CreateString(op->object_types[i]));
    cJSON *it = cJSON_AddArrayToObject(o, "indicator_types");
    for (size_t i = 0; i < op->n_indicator_types; i++)
      cJSON_AddItemToArray(it, cJSON_CreateString(op->indicator_types[i]));
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

/* The plugin with its config as stored (cfg loaded without secrets: a set password field
 * shows the mask, an unset one null). */
static cJSON *plugin_json(const tq_plugin *p, const tq_plugin_config *cfg) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", p->name);
  cJSON_AddStringToObject(o, "label", p->label ? p->label : p->name);
  cJSON_AddStringToObject(o, "version", p->version ? p->version : "");
  if (p->description)
    cJSON_AddStringToObject(o, "description", p->description);
  if (p->author)
    cJSON_AddStringToObject(o, "author", p->author);
  cJSON_AddItemToObject(o, "operations", ops_json(p, NULL));
  cJSON *fields = cJSON_AddArrayToObject(o, "config");
  for (size_t i = 0; i < p->n_fields; i++) {
    const tq_plugin_field *f = &p->fields[i];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "key", f->key);
    cJSON_AddStringToObject(j, "label", f->label ? f->label : f->key);
    cJSON_AddStringToObject(j, "type", tq_field_type_name(f->type));
    cJSON_AddBoolToObject(j, "required", f->required);
    if (f->n_options) {
      cJSON *opts = cJSON_AddArrayToObject(j, "options");
      for (size_t k = 0; k < f->n_options; k++)
        cJSON_AddItemToArray(opts, cJSON_CreateString(f->options[k]));
    }
    const char *v = cfg ? tq_plugin_config_get(cfg, f->key) : NULL;
    if (f->type == TQ_FIELD_PASSWORD)
      v = v ? TQ_SECRET_MASK : NULL; /* never the value, whatever cfg holds */
    if (v)
      cJSON_AddStringToObject(j, "value", v);
    else
      cJSON_AddNullToObject(j, "value");
    cJSON_AddItemToArray(fields, j);
  }
  cJSON_AddBoolToObject(o, "configured", cfg && cfg->n_missing == 0);
  return o;
}

/* plugin_json with the config read from lib (secrets masked). */
static cJSON *plugin_json_lib(tq_lib *lib, const tq_plugin *p, const char *key_path) {
  tq_plugin_config cfg;
  tq_err err;
  tq_err_clear(&err);
  cJSON *o;
  if (tq_plugin_config_load(lib, p, key_path, 0, &cfg, &err) == TQ_OK) {
    o = plugin_json(p, &cfg);
    tq_plugin_config_free(&cfg);
  } else {
    o = plugin_json(p, NULL);
    cJSON_AddStringToObject(o, "config_error", err.msg);
  }
  return o;
}

/* ---- GET /api/plugins, GET /api/plugins/{name} ------------------------------------------- */

static reg *reg_or_fail(tq_resp *rs) {
  reg *r = reg_get();
  if (r == NULL)
    tq_resp_fail(rs, 503, "out of memory");
  return r;
}

/* A slot's JSON: its active version, and the error of a newer one that failed to load. */
static cJSON *slot_json(tq_lib *lib, const tq_plugin_slot *sl, const char *key_path) {
  cJSON *o = plugin_json_lib(lib, sl->p, key_path);
  if (sl->error)
    cJSON_AddStringToObject(o, "error", sl->error);
  return o;
}

static void api_plugins_list(tq_req *rq, tq_resp *rs) {
  reg *r = reg_or_fail(rs);
  if (r == NULL)
    return;
  cJSON *arr = cJSON_CreateArray();
  size_t n, k = 0;
  const tq_plugin_slot *sl = tq_plugin_reg_slots(r, &n);
  for (size_t i = 0; i < n; i++)
    if (sl[i].p) { /* a plugin no version of which ever loaded has nothing to show but 404 */
      cJSON_AddItemToArray(arr, slot_json(rq->rd, &sl[i], tq_srv_key_path(rq->srv)));
      k++;
    }
  tq_resp_list(rs, arr, (int64_t)k, (int64_t)k, 0);
  /* The plugins no version of which loads, each with its error ("NAME/manifest.yaml:L:C: ...",
   * relative to the plugins folder): the UI shows them as broken. */
  cJSON *broken = cJSON_AddArrayToObject(rs->json, "broken");
  const char *dir = tq_plugin_dir();
  size_t dn = strlen(dir);
  for (size_t i = 0; broken && i < n; i++) {
    if (sl[i].p || sl[i].error == NULL)
      continue;
    const char *m = sl[i].error;
    if (strncmp(m, dir, dn) == 0 && m[dn] == '/')
      m += dn + 1;
    char *clean = tq_auth_clean(m, 600);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "name", sl[i].name);
    cJSON_AddStringToObject(b, "error", clean ? clean : "unreadable manifest");
    free(clean);
    cJSON_AddItemToArray(broken, b);
  }
  reg_put(r);
}

static void api_plugin_get(tq_req *rq, tq_resp *rs) {
  reg *r = reg_or_fail(rs);
  if (r == NULL)
    return;
  const tq_plugin_slot *sl = tq_plugin_reg_find(r, rq->params[0]);
  if (sl && sl->p)
    tq_resp_data(rs, 200, slot_json(rq->rd, sl, tq_srv_key_path(rq->srv)));
  else if (sl && sl->error)
    tq_resp_fail(rs, 404, "plugin '%s' not found: it failed to load: %s", rq->params[0], sl->error);
  else
    tq_resp_fail(rs, 404, "plugin '%s' not found", rq->params[0]);
  reg_put(r);
}

/* ---- GET /api/indicators/{id}/operations -------------------------------------------------- */

static void api_indicator_ops(tq_req *rq, tq_resp *rs) {
  int64_t id = tq_req_id(rq, 0, rs);
  if (id == 0)
    return;
  tq_object *o = NULL;
  tq_err err;
  tq_err_clear(&err);
  tq_code rc = tq_lib_object_head(rq->rd, id, &o, &err);
  if (rc == TQ_ENOTFOUND ||
      (rc == TQ_OK && (o->object_type == NULL || strcmp(o->object_type, "indicator") != 0))) {
    tq_object_free(o);
    tq_resp_fail(rs, 404, "indicator %lld not found", (long long)id);
    return;
  }
  if (rc != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  reg *r = reg_or_fail(rs);
  if (r == NULL) {
    tq_object_free(o);
    return;
  }
  cJSON *arr = cJSON_CreateArray();
  size_t n_slots;
  const tq_plugin_slot *sl = tq_plugin_reg_slots(r, &n_slots);
  for (size_t i = 0; i < n_slots; i++) {
    if (sl[i].p == NULL)
      continue;
    cJSON *ops = ops_json(sl[i].p, o->indicator_type ? o->indicator_type : "");
    cJSON *e;
    while ((e = cJSON_DetachItemFromArray(ops, 0)) != NULL)
      cJSON_AddItemToArray(arr, e);
    cJSON_Delete(ops);
  }
  int64_t n = cJSON_GetArraySize(arr);
  tq_resp_list(rs, arr, n, n, 0);
  tq_object_free(o);
  reg_put(r);
}

/* ---- the engine's state ------------------------------------------------------------------- */

typedef struct warm { /* a plugin's script loaded in the engine's runtime */
  struct warm *next;
  char *name;
  unsigned char key[32]; /* registry generation + config */
  tq_lua_script *script;
} warm;

typedef struct kept { /* a run kept for apply (a row of op_runs while it is handled) */
  char id[33];
  char *plugin, *label, *op;
  tq_plugin_target t;
  tq_op_result res;
  int applied;
  int64_t user_id; /* whose run: only they apply it */
} kept;

typedef struct run_req run_req;

typedef struct pl_state {
  tq_host_config host;
  warm *scripts;
  run_req *pending; /* runs started, not finished */
  int migrated;
} pl_state;

static void kept_free(kept *k) {
  if (k == NULL)
    return;
  free(k->plugin);
  free(k->label);
  free(k->op);
  tq_plugin_target_free(&k->t);
  tq_op_result_free(&k->res);
  free(k);
}

/* ---- a run request (the job's ud) ---------------------------------------------------------- */

struct run_req {
  run_req *next; /* the state's pending list */
  reg *reg;
  char *plugin, *op, *value, *type;
  int64_t object_id;
  int apply;
  char who[128], addr[64];
  int64_t user_id; /* the caller's: the run kept is theirs */
  /* engine side */
  tq_engine *eng;
  tq_job *job;
  pl_state *st;
  tq_lua_run *run;
  tq_plugin_target t;
  int64_t queued_ms, started_ms;
};

static void run_req_free(void *ud) {
  run_req *r = ud;
  if (r == NULL)
    return;
  reg_put(r->reg);
  free(r->plugin);
  free(r->op);
  free(r->value);
  free(r->type);
  tq_plugin_target_free(&r->t);
  free(r);
}

static void state_destroy(void *ud) {
  pl_state *st = ud;
  /* Runs still in flight: killed without their callbacks (their jobs are answered 503 and
   * freed by the engine, with their run_req). */
  for (run_req *r = st->pending; r; r = r->next) {
    tq_lua_run_free(r->run);
    r->run = NULL;
  }
  for (warm *w = st->scripts, *next; w; w = next) {
    next = w->next;
    tq_lua_script_free(w->script);
    free(w->name);
    free(w);
  }
  tq_host_config_free(&st->host);
  free(st);
}

static pl_state *state_of(tq_engine *eng) {
  void (*destroy)(void *) = state_destroy;
  void **slot = tq_engine_slot(eng, &destroy);
  if (*slot == NULL) {
    pl_state *st = calloc(1, sizeof *st);
    if (st == NULL)
      return NULL;
    tq_err err;
    tq_err_clear(&err);
    if (tq_host_config_find(&st->host, &err) != TQ_OK) {
      tq_log(TQ_LOG_WARN, "server", "plugins: %s (built-in budget ceilings hold)", err.msg);
      tq_host_config_defaults(&st->host);
    }
    *slot = st;
  }
  return *slot;
}

/* ---- the runs kept for apply, in the library (engine thread) ------------------------------- */

static int64_t wall_ms(void) { return tq_time_now_us() / 1000; }

static tq_code kept_db_err(tq_lib *lib, const char *what, tq_err *err) {
  return tq_err_set(err, TQ_EDB, "the runs kept for apply: %s: %s", what,
                    sqlite3_errmsg(tq_lib_db(lib)));
}

/* k as op_runs' body: the target (the library's object id, or its type and value) and what
 * the run returned (message, traceback, change set, what the analyst sees). malloc'd. */
static char *kept_body(const kept *k) {
  const tq_object *o = tq_plugin_target_obj(&k->t);
  cJSON *j = cJSON_CreateObject(), *obj = cJSON_AddObjectToObject(j, "object");
  if (o->id > 0)
    cJSON_AddNumberToObject(obj, "id", (double)o->id);
  cJSON_AddStringToObject(obj, "type", o->indicator_type ? o->indicator_type : "");
  cJSON_AddStringToObject(obj, "value", o->value ? o->value : "");
  cJSON_AddStringToObject(j, "message", k->res.message ? k->res.message : "");
  cJSON_AddStringToObject(j, "traceback", k->res.traceback ? k->res.traceback : "");
  cJSON_AddItemToObject(j, "changes", tq_changeset_json(&k->res.cs));
  cJSON_AddItemToObject(j, "show",
                        k->res.cs.show ? cJSON_Duplicate(k->res.cs.show, 1) : cJSON_CreateNull());
  char *out = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return out;
}

/* Keeps k (applied as k->applied says), then drops the runs past their time and the oldest
 * beyond RUNS_MAX. Within the caller's transaction if one is open. */
static tq_code kept_store(tq_lib *lib, const kept *k, tq_err *err) {
  sqlite3 *db = tq_lib_db(lib);
  char *body = kept_body(k);
  if (body == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  sqlite3_stmt *st = NULL;
  int64_t now = wall_ms();
  tq_code rc = TQ_OK;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO op_runs(id,user_id,plugin,op,label,made_ms,applied,body)"
                         " VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                         -1, &st, NULL) != SQLITE_OK)
    rc = kept_db_err(lib, "keeping a run", err);
  else {
    sqlite3_bind_text(st, 1, k->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, k->user_id);
    sqlite3_bind_text(st, 3, k->plugin, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, k->op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, k->label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int(st, 7, k->applied);
    sqlite3_bind_text(st, 8, body, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = kept_db_err(lib, "keeping a run", err);
  }
  sqlite3_finalize(st);
  free(body);
  st = NULL;
  if (rc == TQ_OK &&
      sqlite3_prepare_v2(db,
                         "DELETE FROM op_runs WHERE made_ms < ?1 OR seq <= (SELECT seq FROM"
                         " op_runs ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, now - RUN_TTL_MS);
    sqlite3_bind_int(st, 2, RUNS_MAX);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = kept_db_err(lib, "dropping old runs", err);
  } else if (rc == TQ_OK)
    rc = kept_db_err(lib, "dropping old runs", err);
  sqlite3_finalize(st);
  return rc;
}

/* The run id kept within RUN_TTL_MS (TQ_ENOTFOUND when unknown or past its time), its target
 * as it is now (the library's object read again: TQ_ENOTFOUND when deleted since). */
static tq_code kept_load(tq_lib *lib, const char *id, kept **out, tq_err *err) {
  *out = NULL;
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db,
                         "SELECT user_id,plugin,op,label,applied,body FROM op_runs"
                         " WHERE id=?1 AND made_ms >= ?2",
                         -1, &st, NULL) != SQLITE_OK)
    return kept_db_err(lib, "reading a run", err);
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, wall_ms() - RUN_TTL_MS);
  int step = sqlite3_step(st);
  if (step != SQLITE_ROW) {
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? tq_err_set(err, TQ_ENOTFOUND, "run '%s' not found", id)
                               : kept_db_err(lib, "reading a run", err);
  }
  kept *k = calloc(1, sizeof *k);
  cJSON *body = cJSON_Parse((const char *)sqlite3_column_text(st, 5));
  tq_code rc = TQ_OK;
  if (k == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  else {
    tq_strlcpy(k->id, id, sizeof k->id);
    k->user_id = sqlite3_column_int64(st, 0);
    k->plugin = tq_strdup((const char *)sqlite3_column_text(st, 1));
    k->op = tq_strdup((const char *)sqlite3_column_text(st, 2));
    k->label = tq_strdup((const char *)sqlite3_column_text(st, 3));
    k->applied = sqlite3_column_int(st, 4) != 0;
    tq_changeset_init(&k->res.cs);
    k->res.status = TQ_LUA_OK;
    if (k->plugin == NULL || k->op == NULL || k->label == NULL)
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  sqlite3_finalize(st);
  const cJSON *obj = cJSON_GetObjectItemCaseSensitive(body, "object");
  const cJSON *oid = cJSON_GetObjectItemCaseSensitive(obj, "id");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
  const cJSON *value = cJSON_GetObjectItemCaseSensitive(obj, "value");
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(body, "message");
  const cJSON *tb = cJSON_GetObjectItemCaseSensitive(body, "traceback");
  if (rc == TQ_OK && (!cJSON_IsString(type) || !cJSON_IsString(value) || !cJSON_IsString(msg) ||
                      !cJSON_IsString(tb) ||
                      (oid && (!cJSON_IsNumber(oid) || oid->valuedouble < 1 ||
                               oid->valuedouble > 9007199254740991.0))))
    rc = tq_err_set(err, TQ_ECORRUPT, "the kept run '%s' is not as the server wrote it", id);
  if (rc == TQ_OK && ((k->res.message = tq_strdup(msg->valuestring)) == NULL ||
                      (k->res.traceback = tq_strdup(tb->valuestring)) == NULL))
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  if (rc == TQ_OK && tq_changeset_from_json(cJSON_GetObjectItemCaseSensitive(body, "changes"),
                                            cJSON_GetObjectItemCaseSensitive(body, "show"),
                                            &k->res.cs, err) != TQ_OK) {
    char why[sizeof err->msg];
    tq_strlcpy(why, err->msg, sizeof why);
    rc = tq_err_set(err, TQ_ECORRUPT, "the kept run '%s': %s", id, why);
  }
  if (rc == TQ_OK) {
    if (oid && oid->valuedouble > 0) {
      rc = tq_plugin_target_id(lib, (int64_t)oid->valuedouble, &k->t, err);
      if (rc == TQ_ENOTFOUND)
        tq_err_set(err, TQ_ENOTFOUND, "object %lld of run '%s' was deleted since",
                   (long long)oid->valuedouble, id);
    } else
      rc = tq_plugin_target_resolve(NULL, type->valuestring[0] ? type->valuestring : NULL,
                                    value->valuestring, &k->t, err);
  }
  cJSON_Delete(body);
  if (rc != TQ_OK) {
    kept_free(k);
    return rc;
  }
  *out = k;
  return TQ_OK;
}

/* The script of the slot's active version loaded with cfg from the texts the registry read
 * with its manifest, loaded again when the version (its gen) or the config changed. */
static tq_code warm_script(tq_engine *eng, pl_state *st, const tq_plugin_slot *sl,
                           const tq_plugin_config *cfg, tq_lua_script **out, tq_err *err) {
  const tq_plugin *p = sl->p;
  uint64_t gen = sl->gen;
  unsigned char key[32];
  crypto_generichash_state h;
  crypto_generichash_init(&h, NULL, 0, 32);
  crypto_generichash_update(&h, (const unsigned char *)&gen, sizeof gen);
  const tq_lua_kv *lists[2] = {cfg->config, cfg->secrets};
  size_t ns[2] = {cfg->n_config, cfg->n_secrets};
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; i < ns[l]; i++) {
      crypto_generichash_update(&h, (const unsigned char *)lists[l][i].key,
                                strlen(lists[l][i].key) + 1);
      crypto_generichash_update(&h, (const unsigned char *)lists[l][i].value,
                                strlen(lists[l][i].value) + 1);
    }
  crypto_generichash_final(&h, key, 32);
  warm *w = st->scripts;
  while (w && strcmp(w->name, p->name) != 0)
    w = w->next;
  if (w && memcmp(w->key, key, 32) == 0 && w->script) {
    *out = w->script;
    return TQ_OK;
  }
  if (w == NULL) {
    if ((w = calloc(1, sizeof *w)) == NULL || (w->name = tq_strdup(p->name)) == NULL) {
      free(w);
      return tq_err_set(err, TQ_ENOMEM, "out of memory");
    }
    w->next = st->scripts;
    st->scripts = w;
  }
  tq_lua_script_free(w->script); /* runs of the old one finish on it */
  w->script = NULL;
  tq_code rc = tq_plugin_script_load_src(tq_engine_lua(eng), tq_engine_net(eng), p, sl->src, cfg,
                                         tq_plugin_dir(), &st->host, &w->script, err);
  if (rc != TQ_OK)
    return rc;
  memcpy(w->key, key, 32);
  *out = w->script;
  return TQ_OK;
}

/* ---- POST /api/plugins/{name}/operations/{op}[/apply] on the engine ------------------------ */

/* Applies k's change set in one transaction with its audit line and its row in op_runs marked
 * applied (made, when store: a run with "apply": true); fills sum. */
static tq_code apply_kept(tq_lib *lib, kept *k, int store, const char *who, const char *addr,
                          tq_apply_summary *sum, tq_err *err) {
  tq_plugin pl = {0};
  pl.name = k->plugin;
  pl.label = k->label;
  tq_code rc = tq_auth_ensure(lib, err);
  if (rc == TQ_OK)
    rc = tq_lib_begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  rc = tq_plugin_apply(lib, &pl, tq_plugin_target_obj(&k->t), &k->res.cs, sum, err);
  if (rc == TQ_OK) {
    const tq_object *o = tq_plugin_target_obj(&k->t);
    char target[512], detail[256];
    snprintf(target, sizeof target, "%s:%s", k->plugin, k->op);
    snprintf(detail, sizeof detail,
             "run %s on %s %lld: %zu attributes, %zu tags, %zu links, %zu indicators%s%s", k->id,
             o->indicator_type ? o->indicator_type : o->object_type, (long long)sum->object_id,
             sum->attrs, sum->tags, sum->links, sum->indicators, sum->score_set ? ", score" : "",
             sum->status_set ? ", status" : "");
    rc = tq_auth_audit(lib, who, "operation.apply", target, detail, addr, err);
  }
  if (rc == TQ_OK && store) {
    k->applied = 1;
    rc = kept_store(lib, k, err);
    k->applied = rc == TQ_OK;
  } else if (rc == TQ_OK) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(tq_lib_db(lib), "UPDATE op_runs SET applied=1 WHERE id=?1", -1, &st,
                           NULL) != SQLITE_OK)
      rc = kept_db_err(lib, "marking a run applied", err);
    else {
      sqlite3_bind_text(st, 1, k->id, -1, SQLITE_STATIC);
      if (sqlite3_step(st) != SQLITE_DONE)
        rc = kept_db_err(lib, "marking a run applied", err);
    }
    sqlite3_finalize(st);
  }
  if (rc == TQ_OK)
    rc = tq_lib_commit(lib, err);
  if (rc != TQ_OK)
    tq_lib_rollback(lib);
  if (rc == TQ_OK) {
    char labels[160], p[128];
    label_safe(p, sizeof p, k->plugin);
    snprintf(labels, sizeof labels, "plugin=\"%s\"", p);
    pthread_once(&g_help_once, help_once);
    tq_metric_add("tqhost_operation_applies_total", labels, 1);
  }
  return rc;
}

/* The answer for a kept run: the outcome as `op run --json` prints it, with run_id and
 * result (what the analyst sees). */
static cJSON *kept_json(const kept *k, int applied, int64_t object_id, const char *apply_error) {
  tq_op_outcome o = {.plugin = k->plugin,
                     .operation = k->op,
                     .obj = tq_plugin_target_obj(&k->t),
                     .res = &k->res,
                     .applied = applied,
                     .object_id = object_id,
                     .apply_error = apply_error};
  cJSON *j = tq_op_outcome_json(&o);
  cJSON_AddStringToObject(j, "run_id", k->id);
  cJSON_AddItemToObject(j, "result",
                        k->res.cs.show ? cJSON_Duplicate(k->res.cs.show, 1) : cJSON_CreateNull());
  return j;
}

/* Why a run did not succeed, as an answer: budgets 422 (timeout 504), a provider's failure
 * 502 (a timeout 504), a script error 502. */
static void run_failed(tq_resp *rs, const run_req *r, const tq_op_result *res) {
  const char *msg = res->message && *res->message ? res->message : "(no reason given)";
  if (res->status == TQ_LUA_KILLED) {
    const char *budget = strstr(msg, "memory")        ? "memory"
                         : strstr(msg, "instruction") ? "instructions"
                         : strstr(msg, "timeout")     ? "timeout"
                                                      : "other";
    char labels[200], p[128];
    label_safe(p, sizeof p, r->plugin);
    snprintf(labels, sizeof labels, "plugin=\"%s\",budget=\"%s\"", p, budget);
    pthread_once(&g_help_once, help_once);
    tq_metric_add("tqhost_lua_kills_total", labels, 1);
    tq_resp_fail(rs, strcmp(budget, "timeout") == 0 ? 504 : 422, "%s:%s was killed: %s", r->plugin,
                 r->op, msg);
  } else if (res->status == TQ_LUA_FAILED) {
    int timeout = strstr(msg, "timeout") || strstr(msg, "timed out") || strstr(msg, "Timeout");
    tq_resp_fail(rs, timeout ? 504 : 502, "%s:%s failed: %s", r->plugin, r->op, msg);
  } else {
    tq_resp_fail(rs, 502, "%s:%s raised an error: %s", r->plugin, r->op, msg);
  }
}

static void pending_remove(pl_state *st, run_req *r) {
  for (run_req **pp = &st->pending; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      return;
    }
}

/* A run finished (from tq_lua_step on the engine thread). */
static void run_done(void *ud, tq_lua_run *run) {
  run_req *r = ud;
  pl_state *st = r->st;
  tq_resp *rs = tq_job_resp(r->job);
  pending_remove(st, r);
  r->run = NULL;
  tq_err err;
  tq_err_clear(&err);
  kept *k = calloc(1, sizeof *k);
  tq_code rc = k ? tq_op_result_take(run, &k->res, &err) : TQ_ENOMEM;
  tq_lua_run_free(run);
  double secs = (double)(tq_mono_ms() - r->started_ms) / 1000.0;
  if (rc != TQ_OK) {
    free(k);
    metric_run(r->plugin, "refused", secs);
    tq_resp_fail(rs, 503, "out of memory");
    tq_job_done(r->job);
    return;
  }
  metric_run(r->plugin, tq_lua_status_name(k->res.status), secs);
  if (k->res.status != TQ_LUA_OK) {
    run_failed(rs, r, &k->res);
    kept_free(k);
    tq_job_done(r->job);
    return;
  }
  unsigned char raw[16];
  randombytes_buf(raw, sizeof raw);
  sodium_bin2hex(k->id, sizeof k->id, raw, sizeof raw);
  k->plugin = tq_strdup(r->plugin);
  k->op = tq_strdup(r->op);
  const tq_plugin *p = reg_find(r->reg, r->plugin);
  k->label = tq_strdup(p && p->label ? p->label : r->plugin);
  k->t = r->t; /* moved */
  memset(&r->t, 0, sizeof r->t);
  k->user_id = r->user_id;
  if (k->plugin == NULL || k->op == NULL || k->label == NULL) {
    kept_free(k);
    tq_resp_fail(rs, 503, "out of memory");
    tq_job_done(r->job);
    return;
  }
  int64_t object_id = 0;
  const char *apply_error = NULL;
  if (r->apply && tq_mono_ms() - r->queued_ms > APPLY_LATE_MS) {
    tq_resp_fail(rs, 504, "%s:%s finished too late to apply; nothing written (run_id %s: apply it)",
                 r->plugin, r->op, k->id);
    if (tq_auth_ensure(tq_engine_lib(r->eng), &err) != TQ_OK ||
        kept_store(tq_engine_lib(r->eng), k, &err) != TQ_OK)
      tq_log(TQ_LOG_ERROR, "server", "run %s: %s", k->id, err.msg);
    kept_free(k);
    tq_job_done(r->job);
    return;
  }
  if (r->apply) {
    tq_apply_summary sum;
    if (apply_kept(tq_engine_lib(r->eng), k, 1, r->who, r->addr, &sum, &err) == TQ_OK) {
      object_id = sum.object_id;
    } else {
      apply_error = err.msg;
    }
  }
  if (r->apply && !k->applied) {
    /* Nothing written: the answer says why, as apply would (a change set refused is 422). */
    if (err.code == TQ_EINVAL)
      tq_resp_fail(rs, 422, "%s:%s: nothing written: %s", r->plugin, r->op, apply_error);
    else
      tq_resp_err(rs, NULL, &err);
    kept_free(k);
    tq_job_done(r->job);
    return;
  }
  /* Kept for apply (a run applied at once is kept too: applying it again is 409). */
  if (!k->applied && (tq_auth_ensure(tq_engine_lib(r->eng), &err) != TQ_OK ||
                      kept_store(tq_engine_lib(r->eng), k, &err) != TQ_OK))
    tq_resp_err(rs, NULL, &err);
  else
    tq_resp_data(rs, 200, kept_json(k, k->applied, object_id, NULL));
  kept_free(k);
  tq_job_done(r->job);
}

static void run_job(tq_engine *eng, tq_job *job) {
  run_req *r = tq_job_ud(job);
  tq_resp *rs = tq_job_resp(job);
  tq_lib *lib = tq_engine_lib(eng);
  tq_err err;
  tq_err_clear(&err);
  r->eng = eng;
  r->job = job;
  r->started_ms = tq_mono_ms();
  pl_state *st = r->st = state_of(eng);
  const tq_plugin *p = reg_find(r->reg, r->plugin);
  const tq_plugin_op *op = p ? tq_plugin_op_find(p, r->op) : NULL;
  tq_plugin_config cfg = {0};
  tq_lua_script *script = NULL;
  if (st == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    goto done;
  }
  if (op == NULL) {
    tq_resp_fail(rs, 404, "plugin '%s' has no operation '%s'", r->plugin, r->op);
    goto done;
  }
  tq_code rc = r->object_id ? tq_plugin_target_id(lib, r->object_id, &r->t, &err)
                            : tq_plugin_target_resolve(lib, r->type, r->value, &r->t, &err);
  if (rc == TQ_ENOTFOUND && r->object_id) {
    tq_resp_fail(rs, 404, "object %lld not found", (long long)r->object_id);
    goto done;
  }
  if (rc == TQ_EINVAL) {
    tq_resp_invalid(rs, r->type && strstr(err.msg, "not an indicator type") ? "type" : "value",
                    "%s", err.msg);
    goto done;
  }
  if (rc != TQ_OK) {
    tq_resp_err(rs, NULL, &err);
    goto done;
  }
  const tq_object *obj = tq_plugin_target_obj(&r->t);
  if (!tq_plugin_op_accepts(op, obj->object_type, obj->indicator_type)) {
    tq_resp_invalid(rs, r->object_id ? "object_id" : "type", "%s:%s does not accept %s %s",
                    r->plugin, r->op, obj->object_type ? obj->object_type : "indicator",
                    obj->indicator_type ? obj->indicator_type : "");
    goto done;
  }
  if (tq_plugin_config_load(lib, p, tq_srv_key_path(tq_engine_srv(eng)), 1, &cfg, &err) != TQ_OK) {
    tq_resp_err(rs, NULL, &err);
    goto done;
  }
  if (cfg.n_missing) {
    char fields[512] = "";
    size_t n = 0;
    for (size_t i = 0; i < cfg.n_missing && n < sizeof fields; i++)
      n += (size_t)snprintf(fields + n, sizeof fields - n, "%s%s", i ? ", " : "", cfg.missing[i]);
    tq_resp_fail(rs, 409,
                 "plugin %s is not configured: required field%s %s ha%s no value (PUT "
                 "/api/plugins/%s/config)",
                 p->name, cfg.n_missing == 1 ? "" : "s", fields, cfg.n_missing == 1 ? "s" : "ve",
                 p->name);
    goto done;
  }
  if (warm_script(eng, st, tq_plugin_reg_find(r->reg, r->plugin), &cfg, &script, &err) != TQ_OK) {
    metric_run(r->plugin, "refused", -1);
    tq_resp_fail(rs, err.code == TQ_ENOMEM ? 503 : 422, "plugin %s cannot run: %s", p->name,
                 err.msg);
    goto done;
  }
  if (tq_plugin_op_start(tq_engine_lua(eng), script, p, op, obj, run_done, r, &r->run, &err) !=
      TQ_OK) {
    metric_run(r->plugin, "refused", -1);
    tq_resp_fail(rs, err.code == TQ_ENOMEM ? 503 : 422, "plugin %s cannot run: %s", p->name,
                 err.msg);
    goto done;
  }
  r->next = st->pending;
  st->pending = r;
  tq_plugin_config_free(&cfg);
  return; /* run_done answers */
done:
  tq_plugin_config_free(&cfg);
  tq_job_done(job);
}

/* ---- the run request's body ---------------------------------------------------------------- */

static run_req *run_req_new(tq_req *rq, tq_resp *rs) {
  run_req *r = calloc(1, sizeof *r);
  if (r == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    return NULL;
  }
  r->plugin = tq_strdup(rq->params[0]);
  r->op = tq_strdup(rq->params[1]);
  tq_strlcpy(r->who, rq->who.name[0] ? rq->who.name : "-", sizeof r->who);
  tq_strlcpy(r->addr, rq->remote ? rq->remote : "", sizeof r->addr);
  r->user_id = rq->who.user_id;
  if (r->plugin == NULL || r->op == NULL) {
    run_req_free(r);
    tq_resp_fail(rs, 503, "out of memory");
    return NULL;
  }
  return r;
}

/* The plugin and operation of the path, checked against the registry (404). */
static int path_check(tq_req *rq, tq_resp *rs, run_req *r) {
  if ((r->reg = reg_or_fail(rs)) == NULL)
    return 0;
  const tq_plugin *p = reg_find(r->reg, r->plugin);
  if (p == NULL) {
    tq_resp_fail(rs, 404, "plugin '%s' not found", r->plugin);
    return 0;
  }
  if (tq_plugin_op_find(p, r->op) == NULL) {
    tq_resp_fail(rs, 404, "plugin '%s' has no operation '%s'", r->plugin, r->op);
    return 0;
  }
  (void)rq;
  return 1;
}

static int text_field(const cJSON *body, const char *name, char **out, tq_resp *rs) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
  if (v == NULL || cJSON_IsNull(v))
    return 1;
  if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
    tq_resp_invalid(rs, name, "must be a non-empty string");
    return 0;
  }
  if (strlen(v->valuestring) > VALUE_MAX) {
    tq_resp_invalid(rs, name, "is longer than %d bytes", VALUE_MAX);
    return 0;
  }
  if ((*out = tq_strdup(v->valuestring)) == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    return 0;
  }
  return 1;
}

static int bool_field(const cJSON *body, const char *name, int *out, tq_resp *rs) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
  if (v == NULL || cJSON_IsNull(v))
    return 1;
  if (!cJSON_IsBool(v)) {
    tq_resp_invalid(rs, name, "must be true or false");
    return 0;
  }
  *out = cJSON_IsTrue(v);
  return 1;
}

/* The body of an operation run into in; 0 after a 400. */
int tq_api_op_run(const cJSON *body, tq_api_op_run_in *in, tq_resp *rs) {
  memset(in, 0, sizeof *in);
  if (!cJSON_IsObject(body)) {
    tq_resp_invalid(rs, "request", "the body must be a JSON object");
    return 0;
  }
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "object_id");
  if (id && !cJSON_IsNull(id)) {
    if (!cJSON_IsNumber(id) || id->valuedouble < 1 || id->valuedouble > 9007199254740991.0 ||
        id->valuedouble != (double)(int64_t)id->valuedouble) {
      tq_resp_invalid(rs, "object_id", "must be a positive integer");
      return 0;
    }
    in->object_id = (int64_t)id->valuedouble;
  }
  if (!text_field(body, "value", &in->value, rs) || !text_field(body, "type", &in->type, rs) ||
      !bool_field(body, "apply", &in->apply, rs))
    return 0;
  if (in->object_id && (in->value || in->type)) {
    tq_resp_invalid(rs, "object_id", "give object_id or value (with type), not both");
    return 0;
  }
  if (!in->object_id && !in->value) {
    tq_resp_invalid(rs, in->type ? "value" : "object_id",
                    "give object_id (an object of the library) or value (with type)");
    return 0;
  }
  return 1;
}

static void api_op_run(tq_req *rq, tq_resp *rs) {
  run_req *r = run_req_new(rq, rs);
  if (r == NULL)
    return;
  cJSON *body = NULL;
  tq_api_op_run_in in = {0};
  if (!path_check(rq, rs, r) || (body = tq_req_json(rq, rs)) == NULL)
    goto fail;
  if (!tq_api_op_run(body, &in, rs)) {
    free(in.value);
    free(in.type);
    goto fail;
  }
  r->object_id = in.object_id;
  r->value = in.value;
  r->type = in.type;
  r->apply = in.apply;
  cJSON_Delete(body);
  r->queued_ms = tq_mono_ms();
  tq_req_engine(rq, rs, run_job, r, run_req_free);
  return;
fail:
  cJSON_Delete(body);
  run_req_free(r);
}

/* ---- apply ------------------------------------------------------------------------------------
 */

typedef struct apply_req {
  char run_id[33];
  char *plugin, *op;
  char who[128], addr[64];
  int64_t user_id; /* the caller: another user's run is not found */
} apply_req;

static void apply_req_free(void *ud) {
  apply_req *a = ud;
  if (a) {
    free(a->plugin);
    free(a->op);
    free(a);
  }
}

static void apply_job(tq_engine *eng, tq_job *job) {
  apply_req *a = tq_job_ud(job);
  tq_resp *rs = tq_job_resp(job);
  tq_lib *lib = tq_engine_lib(eng);
  kept *k = NULL;
  tq_err err;
  tq_err_clear(&err);
  tq_apply_summary sum;
  tq_code rc = tq_auth_ensure(lib, &err);
  if (rc == TQ_OK)
    rc = kept_load(lib, a->run_id, &k, &err);
  /* Unknown, past its time, of another operation or of another user: the same 404. */
  if (rc == TQ_ENOTFOUND && k == NULL && strstr(err.msg, "was deleted since"))
    tq_resp_fail(rs, 404, "%s", err.msg);
  else if (rc == TQ_ENOTFOUND ||
           (rc == TQ_OK && (strcmp(k->plugin, a->plugin) != 0 || strcmp(k->op, a->op) != 0 ||
                            k->user_id != a->user_id)))
    tq_resp_fail(rs, 404, "run '%s' of %s:%s not found (runs are kept %d minutes)", a->run_id,
                 a->plugin, a->op, RUN_TTL_MS / 60000);
  else if (rc == TQ_ECORRUPT) /* the library's row was changed behind the server's back */
    tq_resp_fail(rs, 422, "%s:%s: nothing written: %s", a->plugin, a->op, err.msg);
  else if (rc != TQ_OK)
    tq_resp_err(rs, NULL, &err);
  else if (k->applied)
    tq_resp_fail(rs, 409, "run '%s' was applied already", a->run_id);
  else if (apply_kept(lib, k, 0, a->who, a->addr, &sum, &err) != TQ_OK) {
    if (err.code == TQ_EINVAL)
      tq_resp_fail(rs, 422, "%s:%s: nothing written: %s", k->plugin, k->op, err.msg);
    else
      tq_resp_err(rs, NULL, &err);
  } else {
    k->applied = 1;
    tq_resp_data(rs, 200, kept_json(k, 1, sum.object_id, NULL));
  }
  kept_free(k);
  tq_job_done(job);
}

/* {"run_id": 32 lowercase hex digits}; 0 after a 400 (or a 404 for no run_id at all). */
int tq_api_apply_run_id(const cJSON *body, const char **run_id, tq_resp *rs) {
  const cJSON *id = cJSON_IsObject(body) ? cJSON_GetObjectItemCaseSensitive(body, "run_id") : NULL;
  *run_id = NULL;
  if (!cJSON_IsObject(body)) {
    tq_resp_invalid(rs, "request", "the body must be a JSON object");
    return 0;
  }
  if (!cJSON_IsString(id)) {
    tq_resp_invalid(rs, "run_id", "must be the run_id a run answered (a string)");
    return 0;
  }
  size_t len = strlen(id->valuestring);
  int hex = len == 32;
  for (size_t i = 0; hex && i < len; i++)
    hex = (id->valuestring[i] >= '0' && id->valuestring[i] <= '9') ||
          (id->valuestring[i] >= 'a' && id->valuestring[i] <= 'f');
  if (!hex) {
    tq_resp_fail(rs, 404, "run not found: a run_id is 32 lowercase hex digits");
    return 0;
  }
  *run_id = id->valuestring;
  return 1;
}

static void api_op_apply(tq_req *rq, tq_resp *rs) {
  run_req *r = run_req_new(rq, rs);
  if (r == NULL)
    return;
  cJSON *body = NULL;
  apply_req *a = NULL;
  if (!path_check(rq, rs, r) || (body = tq_req_json(rq, rs)) == NULL)
    goto done;
  const char *run_id = NULL;
  if (!tq_api_apply_run_id(body, &run_id, rs))
    goto done;
  if ((a = calloc(1, sizeof *a)) == NULL || (a->plugin = tq_strdup(r->plugin)) == NULL ||
      (a->op = tq_strdup(r->op)) == NULL) {
    apply_req_free(a);
    tq_resp_fail(rs, 503, "out of memory");
    goto done;
  }
  memcpy(a->run_id, run_id, 33);
  memcpy(a->who, r->who, sizeof a->who);
  memcpy(a->addr, r->addr, sizeof a->addr);
  a->user_id = r->user_id;
  tq_req_engine(rq, rs, apply_job, a, apply_req_free);
done:
  cJSON_Delete(body);
  run_req_free(r);
}

/* ---- PUT /api/plugins/{name}/config ------------------------------------------------------- */

typedef struct config_req {
  reg *reg;
  char *plugin;
  tq_lua_kv *kvs; /* keys and normalised values, owned */
  size_t n;
  char who[128], addr[64];
} config_req;

void tq_api_kvs_free(tq_lua_kv *kvs, size_t n) {
  for (size_t i = 0; kvs && i < n; i++) {
    free((char *)kvs[i].key);
    if (kvs[i].value) {
      sodium_memzero((char *)kvs[i].value, strlen(kvs[i].value));
      free((char *)kvs[i].value);
    }
  }
  free(kvs);
}

static void config_req_free(void *ud) {
  config_req *c = ud;
  if (c == NULL)
    return;
  tq_api_kvs_free(c->kvs, c->n);
  free(c->plugin);
  reg_put(c->reg);
  free(c);
}

static void config_job(tq_engine *eng, tq_job *job) {
  config_req *c = tq_job_ud(job);
  tq_resp *rs = tq_job_resp(job);
  tq_lib *lib = tq_engine_lib(eng);
  const char *key_path = tq_srv_key_path(tq_engine_srv(eng));
  const tq_plugin *p = reg_find(c->reg, c->plugin);
  tq_err err;
  tq_err_clear(&err);
  char keys[512] = "";
  size_t n = 0;
  for (size_t i = 0; i < c->n && n < sizeof keys; i++)
    n += (size_t)snprintf(keys + n, sizeof keys - n, "%s%s", i ? ", " : "", c->kvs[i].key);
  if (tq_lib_begin(lib, &err) != TQ_OK) {
    tq_resp_err(rs, NULL, &err);
  } else if (tq_plugin_configure(lib, p, key_path, c->kvs, c->n, &err) != TQ_OK ||
             tq_auth_audit(lib, c->who, "plugin.config", p->name, keys, c->addr, &err) != TQ_OK ||
             tq_lib_commit(lib, &err) != TQ_OK) {
    tq_lib_rollback(lib);
    tq_resp_err(rs, NULL, &err);
  } else {
    tq_resp_data(rs, 200, plugin_json_lib(lib, p, key_path));
  }
  tq_job_done(job);
}

/* A config body's FIELD: value pairs, each checked against p's field; 0 after a 400. */
int tq_api_plugin_config(const cJSON *body, const tq_plugin *p, tq_lua_kv **kvs, size_t *n,
                         tq_resp *rs) {
  *kvs = NULL;
  *n = 0;
  if (!cJSON_IsObject(body)) {
    tq_resp_invalid(rs, "request", "the body must be a JSON object of config fields and values");
    return 0;
  }
  int count = cJSON_GetArraySize(body);
  if (count == 0) {
    tq_resp_invalid(rs, "request", "no config field given");
    return 0;
  }
  if (count > (int)p->n_fields) { /* then one is unknown or given twice: name it below */
    count = (int)p->n_fields;
  }
  if ((*kvs = calloc((size_t)count + 1, sizeof **kvs)) == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    return 0;
  }
  const cJSON *e;
  cJSON_ArrayForEach(e, body) {
    /* the key as the client gave it, made fit for the answer (found by fuzz_api_input: an
     * empty, overlong or control-character key was answered as it came) */
    char *key = tq_auth_clean(e->string, 64);
    const tq_plugin_field *f = tq_plugin_field_find(p, e->string);
    int ok = 0;
    if (key == NULL) {
      tq_resp_fail(rs, 503, "out of memory");
    } else if (f == NULL) {
      char names[512] = "";
      size_t w = 0;
      for (size_t i = 0; i < p->n_fields && w < sizeof names; i++)
        w += (size_t)snprintf(names + w, sizeof names - w, "%s%s", i ? ", " : "", p->fields[i].key);
      tq_resp_invalid(rs, key[0] ? key : "request",
                      "%snot a config field of plugin %s (fields: %s)",
                      key[0] ? "" : "an empty name is ", p->name, names);
    } else {
      ok = 1;
      for (size_t i = 0; ok && i < *n; i++)
        if (strcmp((*kvs)[i].key, e->string) == 0) {
          tq_resp_invalid(rs, key, "given twice");
          ok = 0;
        }
    }
    if (!ok) {
      free(key);
      return 0;
    }
    char num[64];
    const char *text = NULL;
    if (cJSON_IsString(e))
      text = e->valuestring;
    else if (cJSON_IsBool(e))
      text = cJSON_IsTrue(e) ? "true" : "false";
    else if (cJSON_IsNumber(e) && e->valuedouble > -9223372036854775808.0 &&
             e->valuedouble < 9223372036854775808.0 && /* cast only inside the range */
             e->valuedouble == (double)(int64_t)e->valuedouble) {
      snprintf(num, sizeof num, "%lld", (long long)e->valuedouble);
      text = num;
    }
    if (text == NULL) {
      tq_resp_invalid(rs, key, "must be a string (or a number or boolean for such fields)");
      free(key);
      return 0;
    }
    tq_err err;
    tq_err_clear(&err);
    char *norm = NULL;
    if (tq_plugin_field_check(f, text, &norm, &err) != TQ_OK) {
      char *m = tq_auth_clean(err.msg, 200);
      tq_resp_invalid(rs, key, "%s", m ? m : "bad value");
      free(m);
      free(key);
      return 0;
    }
    free(key);
    (*kvs)[*n].value = norm;
    if (((*kvs)[*n].key = tq_strdup(e->string)) == NULL) {
      (*n)++;
      tq_resp_fail(rs, 503, "out of memory");
      return 0;
    }
    (*n)++;
  }
  return 1;
}

static void api_plugin_config(tq_req *rq, tq_resp *rs) {
  config_req *c = calloc(1, sizeof *c);
  cJSON *body = NULL;
  if (c == NULL || (c->plugin = tq_strdup(rq->params[0])) == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    goto fail;
  }
  tq_strlcpy(c->who, rq->who.name[0] ? rq->who.name : "-", sizeof c->who);
  tq_strlcpy(c->addr, rq->remote ? rq->remote : "", sizeof c->addr);
  if ((c->reg = reg_or_fail(rs)) == NULL)
    goto fail;
  const tq_plugin *p = reg_find(c->reg, c->plugin);
  if (p == NULL) {
    tq_resp_fail(rs, 404, "plugin '%s' not found", c->plugin);
    goto fail;
  }
  if ((body = tq_req_json(rq, rs)) == NULL || !tq_api_plugin_config(body, p, &c->kvs, &c->n, rs))
    goto fail;
  cJSON_Delete(body);
  tq_req_engine(rq, rs, config_job, c, config_req_free);
  return;
fail:
  cJSON_Delete(body);
  config_req_free(c);
}

const tq_route tq_routes_plugins[] = {
    {"GET", "/api/plugins", TQ_ROLE_READONLY, api_plugins_list},
    {"GET", "/api/plugins/{name}", TQ_ROLE_READONLY, api_plugin_get},
    {"PUT", "/api/plugins/{name}/config", TQ_ROLE_ADMIN, api_plugin_config},
    {"GET", "/api/indicators/{id}/operations", TQ_ROLE_READONLY, api_indicator_ops},
    {"POST", "/api/plugins/{name}/operations/{op}", TQ_ROLE_ANALYST, api_op_run},
    {"POST", "/api/plugins/{name}/operations/{op}/apply", TQ_ROLE_ANALYST, api_op_apply},
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
