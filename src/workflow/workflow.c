/* workflow.c: workflows (a data collection, actions run over it in order, settings that
 * override the actions' defaults, a schedule) stored in the library, run on demand or when
 * due by tq_workflow_tick. The runs themselves (and their activity log) are the action
 * runner's. */
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action_int.h"
#include "tqhost/feed.h"

void tq_workflow_free(tq_workflow *w) {
  if (w == NULL)
    return;
  free(w->name);
  free(w->collection);
  for (size_t i = 0; i < w->n_actions; i++)
    free(w->actions[i]);
  free(w->actions);
  settings_free(w->settings, w->sealed, w->n_settings);
  free(w);
}

static tq_code db_err(tq_lib *lib, tq_err *err, const char *what) {
  return tq_err_set(err, TQ_EDB, "%s: %s", what, sqlite3_errmsg(tq_lib_db(lib)));
}

static char *actions_json(const tq_workflow *w) {
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 0; a && i < w->n_actions; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(w->actions[i]));
  char *s = cJSON_PrintUnformatted(a);
  cJSON_Delete(a);
  return s;
}

/* The field of key in the first of the actions that has one, or NULL. */
static const tq_plugin_field *setting_field(tq_action *const *acts, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++) {
    const tq_plugin_field *f = action_field(acts[i], key);
    if (f)
      return f;
  }
  return NULL;
}

/* One setting checked against its field (so that a typo fails now) and stored in obj. */
static tq_code setting_store(const tq_workflow *w, tq_action *const *acts, const char *key_path,
                             const tq_lua_kv *kv, cJSON *obj, tq_err *err) {
  const tq_plugin_field *f = setting_field(acts, w->n_actions, kv->key);
  if (f == NULL)
    return tq_err_set(err, TQ_EINVAL,
                      "workflow '%s': --set %s: '%s' is not a setting of its actions (see "
                      "`tqhost action list`)",
                      w->name, kv->key, kv->key);
  char *norm = NULL;
  tq_code rc = tq_plugin_field_check(f, kv->value, &norm, err);
  if (rc != TQ_OK)
    return tq_err_prefix(err, "workflow '%s': --set ", w->name);
  tq_lua_kv checked = {kv->key, norm};
  rc = settings_put(obj, f, key_path, &checked, err);
  explicit_bzero(norm, strlen(norm));
  free(norm);
  return rc;
}

/* The settings to store: every one checked, passwords sealed. */
static tq_code settings_json(const tq_workflow *w, tq_action *const *acts, const char *key_path,
                             char **out, tq_err *err) {
  cJSON *o = cJSON_CreateObject();
  tq_code rc = o ? TQ_OK : tq_err_set(err, TQ_ENOMEM, "out of memory");
  for (size_t i = 0; rc == TQ_OK && i < w->n_settings; i++)
    rc = setting_store(w, acts, key_path, &w->settings[i], o, err);
  if (rc == TQ_OK && (*out = cJSON_PrintUnformatted(o)) == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  cJSON_Delete(o);
  return rc;
}

/* Checks that what the workflow names exists, so that a typo fails now, not at 3 a.m., and
 * gives its settings in their stored form. */
static tq_code check_refs(tq_lib *lib, const tq_workflow *w, const char *key_path, char **sets,
                          tq_err *err) {
  if (w->name == NULL || *w->name == '\0')
    return tq_err_set(err, TQ_EINVAL, "a workflow needs a name");
  if (w->n_actions == 0)
    return tq_err_set(err, TQ_EINVAL,
                      "workflow '%s': each workflow needs at least one action "
                      "(--action NAME)",
                      w->name);
  tq_query q;
  tq_code rc = tq_lib_collection_get(lib, w->collection, &q, err);
  if (rc != TQ_OK)
    return tq_err_prefix(err, "workflow '%s': ", w->name);
  tq_query_free(&q);
  tq_action **acts = calloc(w->n_actions, sizeof *acts);
  if (acts == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  for (size_t i = 0; rc == TQ_OK && i < w->n_actions; i++)
    if ((rc = tq_action_find(tq_action_dir(), w->actions[i], &acts[i], err)) != TQ_OK)
      tq_err_prefix(err, "workflow '%s': ", w->name);
  if (rc == TQ_OK)
    rc = settings_json(w, acts, key_path, sets, err);
  for (size_t i = 0; i < w->n_actions; i++)
    tq_action_free(acts[i]);
  free(acts);
  return rc;
}

tq_code tq_workflow_add(tq_lib *lib, const tq_workflow *w, const char *key_path, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  char *acts = NULL, *sets = NULL;
  tq_code rc = check_refs(lib, w, key_path, &sets, err);
  if (rc != TQ_OK)
    return rc;
  char sched[32];
  tq_schedule_format(&w->schedule, sched, sizeof sched);
  acts = actions_json(w);
  int64_t now = tq_time_now();
  sqlite3_stmt *st = NULL;
  if (acts == NULL || sets == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
    goto done;
  }
  if (sqlite3_prepare_v2(tq_lib_db(lib),
                         "INSERT INTO workflows(name,collection,actions,settings,schedule,enabled,"
                         "next_run_at,created_at) VALUES(?1,?2,?3,?4,nullif(?5,''),1,?6,?7)",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = db_err(lib, err, "adding a workflow");
    goto done;
  }
  sqlite3_bind_text(st, 1, w->name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, w->collection, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, acts, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, sets, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, sched, -1, SQLITE_STATIC);
  int64_t next = tq_schedule_next(&w->schedule, now);
  if (next)
    sqlite3_bind_int64(st, 6, next);
  sqlite3_bind_int64(st, 7, now);
  if (sqlite3_step(st) != SQLITE_DONE) {
    int constraint = (sqlite3_errcode(tq_lib_db(lib)) & 0xff) == SQLITE_CONSTRAINT;
    rc = constraint ? tq_err_set(err, TQ_EEXIST, "workflow '%s' exists already", w->name)
                    : db_err(lib, err, "adding a workflow");
  }
done:
  sqlite3_finalize(st);
  free(acts);
  free(sets);
  return rc;
}

/* Fills w's lists from the stored JSON. */
static tq_code parse_lists(tq_workflow *w, const char *acts, const char *sets, tq_err *err) {
  cJSON *a = cJSON_Parse(acts), *s = cJSON_Parse(sets), *it;
  tq_code rc = TQ_OK;
  if (!cJSON_IsArray(a) || !cJSON_IsObject(s)) {
    rc = tq_err_set(err, TQ_ECORRUPT, "workflow '%s': stored actions or settings are damaged",
                    w->name);
    goto done;
  }
  w->actions = calloc((size_t)cJSON_GetArraySize(a) + 1, sizeof(char *));
  if (w->actions == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
    goto done;
  }
  cJSON_ArrayForEach(it, a) if (cJSON_IsString(it)) w->actions[w->n_actions++] =
      strdup(it->valuestring);
  /* Sealed settings stay sealed until the workflow runs. */
  rc = settings_read(s, NULL, &w->settings, &w->sealed, &w->n_settings, err);
done:
  cJSON_Delete(a);
  cJSON_Delete(s);
  return rc;
}

#define WF_COLS                                                                                    \
  "SELECT id,name,collection,actions,settings,schedule,enabled,coalesce(last_run_at,0),"           \
  "coalesce(next_run_at,0),created_at FROM workflows "

static tq_code row_to_workflow(sqlite3_stmt *st, tq_workflow **out, tq_err *err) {
  tq_workflow *w = calloc(1, sizeof *w);
  if (w == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  w->id = sqlite3_column_int64(st, 0);
  w->name = strdup((const char *)sqlite3_column_text(st, 1));
  w->collection = strdup((const char *)sqlite3_column_text(st, 2));
  w->enabled = sqlite3_column_int(st, 6);
  w->last_run_at = sqlite3_column_int64(st, 7);
  w->next_run_at = sqlite3_column_int64(st, 8);
  w->created_at = sqlite3_column_int64(st, 9);
  tq_code rc = parse_lists(w, (const char *)sqlite3_column_text(st, 3),
                           (const char *)sqlite3_column_text(st, 4), err);
  if (rc == TQ_OK)
    rc = tq_schedule_parse((const char *)sqlite3_column_text(st, 5), &w->schedule, err);
  if (rc != TQ_OK) {
    tq_workflow_free(w);
    return rc;
  }
  *out = w;
  return TQ_OK;
}

tq_code tq_workflow_get(tq_lib *lib, const char *name, tq_workflow **out, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib), WF_COLS "WHERE name=?1", -1, &st, NULL) != SQLITE_OK)
    return db_err(lib, err, "reading a workflow");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  tq_code rc;
  if (step == SQLITE_ROW)
    rc = row_to_workflow(st, out, err);
  else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no workflow named '%s'", name);
  else
    rc = db_err(lib, err, "reading a workflow");
  sqlite3_finalize(st);
  return rc;
}

tq_code tq_workflow_get_id(tq_lib *lib, int64_t id, tq_workflow **out, tq_err *err) {
  tq_code rc = wf_tables(lib, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib), WF_COLS "WHERE id=?1", -1, &st, NULL) != SQLITE_OK)
    return db_err(lib, err, "reading a workflow");
  sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW)
    rc = row_to_workflow(st, out, err);
  else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no workflow with id %lld", (long long)id);
  else
    rc = db_err(lib, err, "reading a workflow");
  sqlite3_finalize(st);
  return rc;
}

tq_code tq_workflow_update(tq_lib *lib, const tq_workflow *w, int with_settings,
                           const char *key_path, tq_err *err) {
  tq_code rc = wf_tables(lib, err);
  if (rc != TQ_OK)
    return rc;
  tq_workflow *old = NULL;
  if ((rc = tq_workflow_get_id(lib, w->id, &old, err)) != TQ_OK)
    return rc;
  tq_workflow chk = *w;
  if (!with_settings)
    chk.n_settings = 0; /* the stored ones stay as they are */
  char *acts = NULL, *sets = NULL, sched[32], old_sched[32];
  rc = check_refs(lib, &chk, key_path, &sets, err);
  tq_schedule_format(&w->schedule, sched, sizeof sched);
  tq_schedule_format(&old->schedule, old_sched, sizeof old_sched);
  int64_t now = tq_time_now();
  int64_t next = old->next_run_at;
  /* A new schedule, or enabling again, counts from now (no burst of missed runs). */
  if (strcmp(sched, old_sched) != 0 || (w->enabled && !old->enabled))
    next = tq_schedule_next(&w->schedule, now);
  tq_workflow_free(old);
  if (rc != TQ_OK) {
    free(sets);
    return rc;
  }
  acts = actions_json(w);
  sqlite3_stmt *st = NULL;
  if (acts == NULL || sets == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  else if (sqlite3_prepare_v2(tq_lib_db(lib),
                              "UPDATE workflows SET name=?2, collection=?3, actions=?4,"
                              " settings=CASE WHEN ?5 THEN ?6 ELSE settings END,"
                              " schedule=nullif(?7,''), enabled=?8, next_run_at=?9 WHERE id=?1",
                              -1, &st, NULL) != SQLITE_OK)
    rc = db_err(lib, err, "changing a workflow");
  if (rc == TQ_OK) {
    sqlite3_bind_int64(st, 1, w->id);
    sqlite3_bind_text(st, 2, w->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, w->collection, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, acts, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, with_settings ? 1 : 0);
    sqlite3_bind_text(st, 6, sets, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, sched, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, w->enabled ? 1 : 0);
    if (next)
      sqlite3_bind_int64(st, 9, next);
    if (sqlite3_step(st) != SQLITE_DONE) {
      int constraint = (sqlite3_errcode(tq_lib_db(lib)) & 0xff) == SQLITE_CONSTRAINT;
      rc = constraint ? tq_err_set(err, TQ_EEXIST, "workflow '%s' exists already", w->name)
                      : db_err(lib, err, "changing a workflow");
    }
  }
  sqlite3_finalize(st);
  free(acts);
  free(sets);
  return rc;
}

/* Reads the workflows selected by where (bound to ?1 = now when it uses it). */
static tq_code select_workflows(tq_lib *lib, const char *where, int64_t now, tq_workflow ***out,
                                size_t *n, tq_err *err) {
  char sql[512];
  snprintf(sql, sizeof sql, WF_COLS "%s ORDER BY name", where);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib), sql, -1, &st, NULL) != SQLITE_OK)
    return db_err(lib, err, "listing workflows");
  if (sqlite3_bind_parameter_count(st) >= 1)
    sqlite3_bind_int64(st, 1, now);
  tq_workflow **arr = NULL;
  size_t len = 0;
  tq_code rc = TQ_OK;
  int step;
  while (rc == TQ_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
    tq_workflow **p = realloc(arr, (len + 1) * sizeof *p);
    if (p == NULL) {
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
      break;
    }
    arr = p;
    rc = row_to_workflow(st, &arr[len], err);
    if (rc == TQ_OK)
      len++;
  }
  sqlite3_finalize(st);
  if (rc != TQ_OK) {
    for (size_t i = 0; i < len; i++)
      tq_workflow_free(arr[i]);
    free(arr);
    return rc;
  }
  *out = arr;
  *n = len;
  return TQ_OK;
}

tq_code tq_workflow_list(tq_lib *lib, tq_workflow ***out, size_t *n, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  return select_workflows(lib, "", 0, out, n, err);
}

/* Runs one UPDATE/DELETE on the workflow named name; TQ_ENOTFOUND when none matched. */
static tq_code change_one(tq_lib *lib, const char *sql, const char *name, int64_t a, int64_t b,
                          tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib), sql, -1, &st, NULL) != SQLITE_OK)
    return db_err(lib, err, "changing a workflow");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  if (sqlite3_bind_parameter_count(st) >= 2)
    sqlite3_bind_int64(st, 2, a);
  if (sqlite3_bind_parameter_count(st) >= 3) {
    if (b)
      sqlite3_bind_int64(st, 3, b);
    else
      sqlite3_bind_null(st, 3);
  }
  tq_code rc = TQ_OK;
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = db_err(lib, err, "changing a workflow");
  else if (sqlite3_changes(tq_lib_db(lib)) == 0)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no workflow named '%s'", name);
  sqlite3_finalize(st);
  return rc;
}

tq_code tq_workflow_set_enabled(tq_lib *lib, const char *name, int enabled, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  tq_workflow *w = NULL;
  tq_code rc = tq_workflow_get(lib, name, &w, err);
  if (rc != TQ_OK)
    return rc;
  /* Enabling again counts the schedule from now: no burst of missed runs. */
  int64_t next = enabled ? tq_schedule_next(&w->schedule, tq_time_now()) : w->next_run_at;
  tq_workflow_free(w);
  return change_one(lib, "UPDATE workflows SET enabled=?2, next_run_at=?3 WHERE name=?1", name,
                    enabled != 0, next, err);
}

tq_code tq_workflow_delete(tq_lib *lib, const char *name, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  return change_one(lib, "DELETE FROM workflows WHERE name=?1", name, 0, 0, err);
}

/* The workflow's settings as its runs get them: sealed ones opened. A key file that cannot
 * open them fails the workflow (its actions would run without their secret). */
static tq_code settings_open(const tq_workflow *w, const char *db_path, tq_lua_kv **out,
                             tq_err *err) {
  char *key_path = tq_plugin_key_path(db_path ? db_path : "tqhost.db");
  *out = calloc(w->n_settings + 1, sizeof **out);
  tq_code rc = key_path && *out ? TQ_OK : tq_err_set(err, TQ_ENOMEM, "out of memory");
  for (size_t i = 0; rc == TQ_OK && i < w->n_settings; i++) {
    char *v = NULL;
    if (w->sealed[i])
      rc = tq_plugin_secret_open(key_path, w->settings[i].value, &v, err);
    else if ((v = tq_strdup(w->settings[i].value)) == NULL)
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
    (*out)[i] = (tq_lua_kv){w->settings[i].key, v};
  }
  free(key_path);
  if (rc != TQ_OK)
    tq_err_prefix(err, "workflow '%s': ", w->name);
  return rc;
}

static void settings_close(tq_lua_kv *kvs, size_t n) {
  for (size_t i = 0; kvs && i < n; i++) {
    if (kvs[i].value)
      explicit_bzero((char *)kvs[i].value, strlen(kvs[i].value));
    free((char *)kvs[i].value);
  }
  free(kvs);
}

/* ---- running, claims and resumes ----------------------------------------------------------
 * A workflow run is its actions' runs in order. The latest run of each action (for this
 * workflow) tells where the last workflow run stands: one whose process is alive means the
 * workflow is running elsewhere; one "interrupted" (Ctrl-C) or "running" with a dead process
 * (SIGKILL, crash) means the last workflow run stopped at that action, and the next one
 * resumes it there (the actions before it were done) instead of starting over. */

typedef struct wf_state {
  int live;         /* a run of the workflow is alive in some process */
  int64_t live_run; /* ... that one */
  size_t resume_at; /* the action to resume, when resume_run > 0 */
  int64_t resume_run;
} wf_state;

static tq_code wf_state_get(tq_lib *lib, const tq_workflow *w, int64_t now, wf_state *out,
                            tq_err *err) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(
          tq_lib_db(lib),
          "SELECT id, status, owner, updated_at, cancelled FROM runs WHERE workflow_id=?1"
          " AND action=?2 ORDER BY id DESC LIMIT 1",
          -1, &st, NULL) != SQLITE_OK)
    return db_err(lib, err, "reading the workflow's runs");
  tq_code rc = TQ_OK;
  for (size_t i = 0; i < w->n_actions && !out->live; i++) {
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, w->id);
    sqlite3_bind_text(st, 2, w->actions[i], -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE)
      continue;
    if (step != SQLITE_ROW) {
      rc = db_err(lib, err, "reading the workflow's runs");
      break;
    }
    int64_t id = sqlite3_column_int64(st, 0);
    const char *status = (const char *)sqlite3_column_text(st, 1);
    const char *owner = (const char *)sqlite3_column_text(st, 2);
    int running = strcmp(status, "running") == 0;
    if (running && run_owner_live(owner, sqlite3_column_int64(st, 3), now)) {
      out->live = 1;
      out->live_run = id;
    } else if ((running || strcmp(status, "interrupted") == 0) && out->resume_run == 0 &&
               sqlite3_column_int(st, 4) == 0) { /* a cancelled run is not resumed */
      out->resume_run = id;
      out->resume_at = i;
    }
  }
  sqlite3_finalize(st);
  return rc;
}

/* Records an action of the workflow that could not start (no run was created) as a failed
 * run with the error, so that the activity log shows it. */
static void record_failed_start(tq_lib *lib, const tq_workflow *w, const char *action,
                                const char *error) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib),
                         "INSERT INTO runs(action, workflow_id, status, input, started_at,"
                         " updated_at, finished_at, error, owner)"
                         " VALUES(?1, ?2, 'failed', json_object('collection', ?3), ?4, ?4, ?4,"
                         " ?5, ?6)",
                         -1, &st, NULL) != SQLITE_OK)
    return;
  int64_t now = tq_time_now();
  sqlite3_bind_text(st, 1, action, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, w->id);
  sqlite3_bind_text(st, 3, w->collection, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  sqlite3_bind_text(st, 5, error, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, run_owner_self(), -1, SQLITE_STATIC);
  sqlite3_step(st);
  sqlite3_finalize(st);
}

/* Runs the workflow's actions from where its state says. */
static tq_code wf_execute(tq_lib *lib, const tq_workflow *w, const tq_action_opts *base,
                          const wf_state *ws, tq_workflow_step_fn step, void *ud, size_t *n_failed,
                          tq_err *err) {
  size_t failed = 0;
  tq_lua_kv *settings = NULL;
  tq_code orc = settings_open(w, base->db_path, &settings, err);
  if (orc != TQ_OK) {
    settings_close(settings, w->n_settings);
    return orc;
  }
  size_t first = ws->resume_run ? ws->resume_at : 0;
  for (size_t i = first; i < w->n_actions; i++) {
    tq_action *a = NULL;
    tq_run_summary sum;
    tq_err aerr;
    memset(&sum, 0, sizeof sum);
    tq_err_clear(&aerr);
    tq_action_opts o = *base;
    o.collection = w->collection;
    o.values = NULL;
    o.n_values = 0;
    o.overrides = settings;
    o.n_overrides = w->n_settings;
    o.workflow_id = w->id;
    tq_code rc;
    if (i == first && ws->resume_run) {
      rc = tq_action_resume(lib, ws->resume_run, &o, &sum, &aerr);
      if (rc == TQ_EDENIED) {
        /* Another process took the run over meanwhile: the workflow is its now. */
        *err = aerr;
        settings_close(settings, w->n_settings);
        return rc;
      }
    } else {
      rc = tq_action_find(tq_action_dir(), w->actions[i], &a, &aerr);
      if (rc == TQ_OK)
        rc = tq_action_run(lib, a, &o, &sum, &aerr);
    }
    if (rc != TQ_OK && sum.run_id == 0)
      record_failed_start(lib, w, w->actions[i], aerr.msg);
    if (rc == TQ_OK && (strcmp(sum.status, "done") != 0 || sum.failed > 0))
      rc = TQ_EINTERNAL; /* interrupted, failed as a whole or with failed items */
    tq_action_free(a);
    if (rc != TQ_OK)
      failed++;
    if (step)
      step(ud, w, w->actions[i], rc, &aerr, &sum);
    if (strcmp(sum.status, "interrupted") == 0)
      break; /* Ctrl-C: the next workflow run resumes here */
  }
  settings_close(settings, w->n_settings);
  if (n_failed)
    *n_failed = failed;
  return TQ_OK;
}

tq_code tq_workflow_run(tq_lib *lib, const tq_workflow *w, const tq_action_opts *base, int64_t now,
                        tq_workflow_step_fn step, void *ud, size_t *n_failed, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  if (n_failed)
    *n_failed = 0;
  wf_state ws;
  tq_code rc = wf_state_get(lib, w, now, &ws, err);
  if (rc == TQ_OK && ws.live)
    rc = tq_err_set(err, TQ_EDENIED, "workflow '%s' is running in another process (run %lld)",
                    w->name, (long long)ws.live_run);
  /* Its last run is this one from the start, as for a scheduled run (claim_due): whoever
   * reads the workflow once its run is done, or failed, sees when it ran. */
  if (rc == TQ_OK)
    rc = change_one(lib, "UPDATE workflows SET last_run_at=?2, next_run_at=?3 WHERE name=?1",
                    w->name, now, tq_schedule_next(&w->schedule, now), err);
  if (rc == TQ_OK)
    rc = wf_execute(lib, w, base, &ws, step, ud, n_failed, err);
  return rc;
}

/* Takes a due workflow for this tick: one conditional update moves its schedule on, so that
 * of two ticks at once (cron overlapping) only one runs it. *taken 0: another tick did. */
static tq_code claim_due(tq_lib *lib, const tq_workflow *w, int64_t now, int *taken, tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib),
                         "UPDATE workflows SET last_run_at=?2, next_run_at=?3 WHERE id=?1 AND"
                         " enabled=1 AND next_run_at=?4",
                         -1, &st, NULL) != SQLITE_OK)
    return db_err(lib, err, "claiming a workflow");
  int64_t next = tq_schedule_next(&w->schedule, now);
  sqlite3_bind_int64(st, 1, w->id);
  sqlite3_bind_int64(st, 2, now);
  if (next)
    sqlite3_bind_int64(st, 3, next);
  sqlite3_bind_int64(st, 4, w->next_run_at);
  tq_code rc = TQ_OK;
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = db_err(lib, err, "claiming a workflow");
  *taken = rc == TQ_OK && sqlite3_changes(tq_lib_db(lib)) == 1;
  sqlite3_finalize(st);
  return rc;
}

tq_code tq_workflow_tick(tq_lib *lib, const tq_action_opts *base, int64_t now,
                         tq_feed_polled_fn feed_done, void *feed_ud, tq_workflow_step_fn step,
                         void *ud, tq_tick_counts *out, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  memset(out, 0, sizeof *out);
  /* Feeds first: each due feed is claimed before it is polled (tq_feed_poll_due). */
  tq_code rc =
      tq_feed_poll_due(lib, NULL, now, feed_done, feed_ud, &out->feeds, &out->feeds_failed, err);
  if (rc != TQ_OK)
    return rc;
  tq_workflow **all = NULL;
  size_t n = 0;
  rc = select_workflows(lib, "WHERE enabled=1", now, &all, &n, err);
  for (size_t i = 0; i < n && rc == TQ_OK; i++) {
    tq_workflow *w = all[i];
    wf_state ws;
    rc = wf_state_get(lib, w, now, &ws, err);
    if (rc != TQ_OK || ws.live)
      continue; /* running in another process: not due again while it runs */
    int due = w->next_run_at && w->next_run_at <= now;
    if (ws.resume_run == 0 && !due)
      continue;
    if (ws.resume_run == 0) {
      int taken = 0;
      rc = claim_due(lib, w, now, &taken, err);
      if (rc != TQ_OK || !taken)
        continue;
    }
    size_t f = 0;
    tq_err werr;
    tq_err_clear(&werr);
    tq_code wrc = wf_execute(lib, w, base, &ws, step, ud, &f, &werr);
    if (wrc == TQ_EDENIED)
      continue; /* another tick took the interrupted run over first */
    if (wrc != TQ_OK) {
      rc = wrc;
      *err = werr;
      break;
    }
    if (ws.resume_run && due) {
      /* A resume that was also due counts as the due run. */
      int taken = 0;
      rc = claim_due(lib, w, now, &taken, err);
    }
    out->workflows++;
    out->actions_failed += f;
  }
  for (size_t i = 0; i < n; i++)
    tq_workflow_free(all[i]);
  free(all);
  return rc;
}

tq_code tq_workflow_activity(tq_lib *lib, int64_t workflow_id, int limit, cJSON *out, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib),
                         "SELECT id, action, status, total, enriched, not_found, failed,"
                         " started_at, seconds, coalesce(error,''), skipped, owner, updated_at"
                         " FROM runs"
                         " WHERE workflow_id=?1 ORDER BY id DESC LIMIT ?2",
                         -1, &st, NULL) != SQLITE_OK)
    return db_err(lib, err, "reading the activity log");
  sqlite3_bind_int64(st, 1, workflow_id);
  sqlite3_bind_int(st, 2, limit);
  while (sqlite3_step(st) == SQLITE_ROW) {
    cJSON *j = cJSON_CreateObject();
    char t[20];
    tq_time_format(sqlite3_column_int64(st, 7), t);
    cJSON_AddNumberToObject(j, "run_id", (double)sqlite3_column_int64(st, 0));
    cJSON_AddStringToObject(j, "started_at", t);
    cJSON_AddStringToObject(j, "action", (const char *)sqlite3_column_text(st, 1));
    const char *status = (const char *)sqlite3_column_text(st, 2);
    if (strcmp(status, "running") == 0 &&
        !run_owner_live((const char *)sqlite3_column_text(st, 11), sqlite3_column_int64(st, 12),
                        tq_time_now()))
      status = "interrupted (process died)";
    cJSON_AddStringToObject(j, "status", status);
    cJSON_AddNumberToObject(j, "requested", (double)sqlite3_column_int64(st, 3));
    cJSON_AddNumberToObject(j, "enriched", (double)sqlite3_column_int64(st, 4));
    cJSON_AddNumberToObject(j, "not_found", (double)sqlite3_column_int64(st, 5));
    cJSON_AddNumberToObject(j, "failed", (double)sqlite3_column_int64(st, 6));
    cJSON_AddNumberToObject(j, "skipped", (double)sqlite3_column_int64(st, 10));
    cJSON_AddNumberToObject(j, "seconds", sqlite3_column_double(st, 8));
    const char *e = (const char *)sqlite3_column_text(st, 9);
    if (e && *e)
      cJSON_AddStringToObject(j, "error", e);
    cJSON_AddItemToArray(out, j);
  }
  sqlite3_finalize(st);
  return TQ_OK;
}
