/* run_store.c: the job history of bulk runs in the library's `runs` and `run_items` tables
 * (migration 3): a run's row is its checkpoint (last committed object id, counts, time spent),
 * written inside the same transaction as the change sets it accounts for; run_items keeps the
 * not-found and failed items with their reason. Also the read side for `tqhost action runs`. */
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "action_int.h"

static tq_code db_err(tq_lib *lib, tq_err *err, const char *what) {
  return tq_err_set(err, TQ_EDB, "runs: %s: %s", what, sqlite3_errmsg(tq_lib_db(lib)));
}

static tq_code prepare(tq_lib *lib, const char *sql, sqlite3_stmt **st, tq_err *err) {
  if (sqlite3_prepare_v2(tq_lib_db(lib), sql, -1, st, NULL) != SQLITE_OK)
    return db_err(lib, err, "prepare");
  return TQ_OK;
}

static char *col_dup(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return tq_strdup(t ? (const char *)t : "");
}

/* ---- owners and leases --------------------------------------------------------------------- */

static char g_self[320];

const char *run_owner_self(void) {
  if (g_self[0] == '\0') {
    char host[256] = "?", boot[64] = "?";
    if (gethostname(host, sizeof host) != 0)
      strcpy(host, "?");
    host[sizeof host - 1] = '\0';
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
      if (fgets(boot, sizeof boot, f) == NULL)
        strcpy(boot, "?");
      boot[strcspn(boot, "\n")] = '\0';
      fclose(f);
    }
    snprintf(g_self, sizeof g_self, "%s %s %ld", host, boot, (long)getpid());
  }
  return g_self;
}

/* Whether process pid exists and is not a zombie (a killed child its parent has not reaped). */
static int pid_alive(long pid) {
  if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM))
    return 0;
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *paren = strrchr(buf, ')');
  return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

int run_owner_live(const char *owner, int64_t updated_at, int64_t now) {
  int fresh = now - updated_at <= RUN_LEASE_S;
  const char *self = run_owner_self();
  const char *pid_at = owner ? strrchr(owner, ' ') : NULL;
  const char *self_pid = strrchr(self, ' ');
  if (pid_at == NULL || (size_t)(pid_at - owner) != (size_t)(self_pid - self) ||
      strncmp(owner, self, (size_t)(self_pid - self)) != 0)
    return fresh; /* another host or boot (or no owner recorded): the heartbeat tells */
  return fresh && pid_alive(strtol(pid_at + 1, NULL, 10));
}

tq_code run_store_claim(tq_lib *lib, const run_row *r, tq_err *err) {
  sqlite3_stmt *st = NULL;
  tq_code rc = prepare(lib,
                       "UPDATE runs SET owner=?1, updated_at=?2, status='running',"
                       " finished_at=NULL, cancelled=0 WHERE id=?3 AND status=?4 AND"
                       " coalesce(owner,'')=?5 AND updated_at=?6",
                       &st, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_bind_text(st, 1, run_owner_self(), -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, tq_time_now());
  sqlite3_bind_int64(st, 3, r->id);
  sqlite3_bind_text(st, 4, r->status, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, r->owner ? r->owner : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, r->updated_at);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = db_err(lib, err, "taking over the run");
  else if (sqlite3_changes(tq_lib_db(lib)) == 0)
    rc = tq_err_set(err, TQ_EDENIED,
                    "run %lld was taken over by another process meanwhile: not resumed",
                    (long long)r->id);
  sqlite3_finalize(st);
  return rc;
}

tq_code run_store_heartbeat(tq_lib *lib, int64_t id, tq_err *err) {
  sqlite3_stmt *st = NULL;
  tq_code rc = prepare(lib, "UPDATE runs SET updated_at=?1 WHERE id=?2", &st, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_bind_int64(st, 1, tq_time_now());
  sqlite3_bind_int64(st, 2, id);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = db_err(lib, err, "heartbeat");
  sqlite3_finalize(st);
  return rc;
}

/* ---- runs ------------------------------------------------------------------------------------ */

tq_code run_store_create(tq_lib *lib, run_row *r, tq_err *err) {
  sqlite3_stmt *st = NULL;
  tq_code rc = prepare(lib,
                       "INSERT INTO runs(action, workflow_id, status, input, settings,"
                       " concurrency, total, started_at, updated_at, owner, retry_of, origin)"
                       " VALUES(?,?,'running',?,?,?,?,?,?,?,?,?)",
                       &st, err);
  if (rc != TQ_OK)
    return rc;
  int64_t now = tq_time_now();
  sqlite3_bind_text(st, 1, r->action, -1, SQLITE_STATIC);
  if (r->workflow_id > 0)
    sqlite3_bind_int64(st, 2, r->workflow_id);
  sqlite3_bind_text(st, 3, r->input, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, r->settings, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 5, r->concurrency);
  sqlite3_bind_int64(st, 6, r->total);
  sqlite3_bind_int64(st, 7, now);
  sqlite3_bind_int64(st, 8, now);
  sqlite3_bind_text(st, 9, run_owner_self(), -1, SQLITE_STATIC);
  if (r->retry_of > 0)
    sqlite3_bind_int64(st, 10, r->retry_of);
  if (r->origin)
    sqlite3_bind_text(st, 11, r->origin, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = db_err(lib, err, "creating the run");
  else
    r->id = sqlite3_last_insert_rowid(tq_lib_db(lib));
  sqlite3_finalize(st);
  return rc;
}

tq_code run_store_load(tq_lib *lib, int64_t id, run_row *r, tq_err *err) {
  sqlite3_stmt *st = NULL;
  memset(r, 0, sizeof *r);
  tq_code rc = prepare(lib,
                       "SELECT action, status, input, settings, concurrency,"
                       " coalesce(workflow_id,0), last_id, total, enriched, not_found, failed,"
                       " seconds, skipped, coalesce(retry_of,0), owner, updated_at"
                       " FROM runs WHERE id=?",
                       &st, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW) {
    r->id = id;
    r->action = col_dup(st, 0);
    r->status = col_dup(st, 1);
    r->input = col_dup(st, 2);
    r->settings = col_dup(st, 3);
    r->concurrency = sqlite3_column_int(st, 4);
    r->workflow_id = sqlite3_column_int64(st, 5);
    r->last_id = sqlite3_column_int64(st, 6);
    r->total = sqlite3_column_int64(st, 7);
    r->enriched = sqlite3_column_int64(st, 8);
    r->not_found = sqlite3_column_int64(st, 9);
    r->failed = sqlite3_column_int64(st, 10);
    r->seconds = sqlite3_column_double(st, 11);
    r->skipped = sqlite3_column_int64(st, 12);
    r->retry_of = sqlite3_column_int64(st, 13);
    if (sqlite3_column_type(st, 14) != SQLITE_NULL)
      r->owner = col_dup(st, 14);
    r->updated_at = sqlite3_column_int64(st, 15);
    if (!r->action || !r->status || !r->input || !r->settings)
      rc = tq_err_set(err, TQ_ENOMEM, "runs: out of memory");
  } else if (step == SQLITE_DONE) {
    rc = tq_err_set(err, TQ_ENOTFOUND, "no run %lld", (long long)id);
  } else {
    rc = db_err(lib, err, "reading a run");
  }
  sqlite3_finalize(st);
  if (rc != TQ_OK)
    run_row_free(r);
  return rc;
}

void run_row_free(run_row *r) {
  free(r->action), free(r->status), free(r->input), free(r->settings), free(r->owner);
  r->action = r->status = r->input = r->settings = r->owner = NULL;
}

tq_code run_store_checkpoint(tq_lib *lib, const run_row *r, const char *status, const char *error,
                             tq_err *err) {
  sqlite3_stmt *st = NULL;
  tq_code rc = prepare(lib,
                       "UPDATE runs SET last_id=?1, total=?2, enriched=?3, not_found=?4,"
                       " failed=?5, seconds=?6, updated_at=?7, status=coalesce(?8, status),"
                       " skipped=?11,"
                       " error=coalesce(?9, error),"
                       " finished_at=CASE WHEN ?8 IS NULL THEN finished_at"
                       "   WHEN ?8 = 'running' THEN NULL ELSE ?7 END WHERE id=?10",
                       &st, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_bind_int64(st, 1, r->last_id);
  sqlite3_bind_int64(st, 2, r->total);
  sqlite3_bind_int64(st, 3, r->enriched);
  sqlite3_bind_int64(st, 4, r->not_found);
  sqlite3_bind_int64(st, 5, r->failed);
  sqlite3_bind_double(st, 6, r->seconds);
  sqlite3_bind_int64(st, 7, tq_time_now());
  if (status)
    sqlite3_bind_text(st, 8, status, -1, SQLITE_STATIC);
  if (error)
    sqlite3_bind_text(st, 9, error, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 10, r->id);
  sqlite3_bind_int64(st, 11, r->skipped);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = db_err(lib, err, "writing the checkpoint");
  sqlite3_finalize(st);
  return rc;
}

tq_code run_store_items(tq_lib *lib, sqlite3_stmt **cache, int64_t run_id, const run_item *items,
                        size_t n, tq_err *err) {
  if (*cache == NULL &&
      sqlite3_prepare_v3(tq_lib_db(lib),
                         "INSERT OR REPLACE INTO run_items(run_id, object_id, outcome, reason)"
                         " VALUES(?,?,?,?)",
                         -1, SQLITE_PREPARE_PERSISTENT, cache, NULL) != SQLITE_OK)
    return db_err(lib, err, "prepare");
  sqlite3_stmt *st = *cache;
  tq_code rc = TQ_OK;
  for (size_t i = 0; rc == TQ_OK && i < n; i++) {
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, items[i].object_id);
    sqlite3_bind_text(st, 3, items[i].outcome, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, items[i].reason ? items[i].reason : "", -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = db_err(lib, err, "recording an item");
    sqlite3_reset(st);
  }
  sqlite3_clear_bindings(st);
  return rc;
}

/* ---- reading the history ------------------------------------------------------------------------
 */

#define INFO_COLS                                                                                  \
  "SELECT id, coalesce(workflow_id,0), action, status, input, total, enriched, not_found,"         \
  " failed, last_id, started_at, updated_at, coalesce(finished_at,0), seconds,"                    \
  " coalesce(error,''), skipped, owner, coalesce(retry_of,0), coalesce(origin,''), cancelled"      \
  " FROM runs"

/* "collection NAME" or "N values" from the input JSON. */
static void input_text(const char *json, char *out, size_t n) {
  cJSON *j = cJSON_Parse(json);
  const cJSON *coll = cJSON_GetObjectItemCaseSensitive(j, "collection");
  const cJSON *vals = cJSON_GetObjectItemCaseSensitive(j, "values");
  const cJSON *retry = cJSON_GetObjectItemCaseSensitive(j, "retry_failed");
  if (cJSON_IsString(coll))
    snprintf(out, n, "collection %s", coll->valuestring);
  else if (cJSON_IsNumber(retry))
    snprintf(out, n, "failed items of run %.0f", retry->valuedouble);
  else
    snprintf(out, n, "%d values", cJSON_GetArraySize(vals));
  cJSON_Delete(j);
}

static void info_from(sqlite3_stmt *st, tq_run_info *r) {
  memset(r, 0, sizeof *r);
  r->id = sqlite3_column_int64(st, 0);
  r->workflow_id = sqlite3_column_int64(st, 1);
  tq_strlcpy(r->action, (const char *)sqlite3_column_text(st, 2), sizeof r->action);
  tq_strlcpy(r->status, (const char *)sqlite3_column_text(st, 3), sizeof r->status);
  input_text((const char *)sqlite3_column_text(st, 4), r->input, sizeof r->input);
  r->total = sqlite3_column_int64(st, 5);
  r->enriched = sqlite3_column_int64(st, 6);
  r->not_found = sqlite3_column_int64(st, 7);
  r->failed = sqlite3_column_int64(st, 8);
  r->last_id = sqlite3_column_int64(st, 9);
  r->started_at = sqlite3_column_int64(st, 10);
  r->updated_at = sqlite3_column_int64(st, 11);
  r->finished_at = sqlite3_column_int64(st, 12);
  r->seconds = sqlite3_column_double(st, 13);
  tq_strlcpy(r->error, (const char *)sqlite3_column_text(st, 14), sizeof r->error);
  r->skipped = sqlite3_column_int64(st, 15);
  r->retry_of = sqlite3_column_int64(st, 17);
  tq_strlcpy(r->origin, (const char *)sqlite3_column_text(st, 18), sizeof r->origin);
  r->cancelled = sqlite3_column_int(st, 19);
  const char *owner = (const char *)sqlite3_column_text(st, 16);
  tq_strlcpy(r->owner, owner ? owner : "", sizeof r->owner);
  tq_strlcpy(r->state, r->status, sizeof r->state);
  if (strcmp(r->status, "running") == 0) {
    r->live = run_owner_live(owner, r->updated_at, tq_time_now());
    if (!r->live)
      tq_strlcpy(r->state, "interrupted (process died)", sizeof r->state);
  }
}

tq_code tq_run_list(tq_lib *lib, size_t limit, tq_run_info **out, size_t *n, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  sqlite3_stmt *st = NULL;
  *out = NULL;
  *n = 0;
  tq_code rc = prepare(lib, INFO_COLS " ORDER BY id DESC LIMIT ?", &st, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_bind_int64(st, 1, limit ? (int64_t)limit : -1);
  size_t cap = 0;
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      tq_run_info *grown = realloc(*out, cap * sizeof *grown);
      if (grown == NULL) {
        rc = tq_err_set(err, TQ_ENOMEM, "runs: out of memory");
        break;
      }
      *out = grown;
    }
    info_from(st, &(*out)[(*n)++]);
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = db_err(lib, err, "listing runs");
  sqlite3_finalize(st);
  if (rc != TQ_OK) {
    free(*out);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

tq_code tq_run_get(tq_lib *lib, int64_t run_id, tq_run_info *out, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  sqlite3_stmt *st = NULL;
  tq_code rc = prepare(lib, INFO_COLS " WHERE id=?", &st, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_bind_int64(st, 1, run_id);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW)
    info_from(st, out);
  else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no run %lld", (long long)run_id);
  else
    rc = db_err(lib, err, "reading a run");
  sqlite3_finalize(st);
  return rc;
}

tq_code tq_run_reasons(tq_lib *lib, int64_t run_id, tq_run_reason **out, size_t *n, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  sqlite3_stmt *st = NULL;
  *out = NULL;
  *n = 0;
  tq_code rc = prepare(lib,
                       "SELECT outcome, reason, count(*), min(object_id) FROM run_items"
                       " WHERE run_id=? GROUP BY outcome, reason ORDER BY count(*) DESC,"
                       " outcome, reason",
                       &st, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_bind_int64(st, 1, run_id);
  size_t cap = 0;
  int step;
  while (rc == TQ_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      tq_run_reason *grown = realloc(*out, cap * sizeof *grown);
      if (grown == NULL) {
        rc = tq_err_set(err, TQ_ENOMEM, "runs: out of memory");
        break;
      }
      *out = grown;
    }
    tq_run_reason *r = &(*out)[*n];
    tq_strlcpy(r->outcome, (const char *)sqlite3_column_text(st, 0), sizeof r->outcome);
    r->reason = col_dup(st, 1);
    r->count = sqlite3_column_int64(st, 2);
    r->example_id = sqlite3_column_int64(st, 3);
    if (r->reason == NULL)
      rc = tq_err_set(err, TQ_ENOMEM, "runs: out of memory");
    else
      (*n)++;
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = db_err(lib, err, "reading run items");
  sqlite3_finalize(st);
  if (rc != TQ_OK) {
    tq_run_reasons_free(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

void tq_run_reasons_free(tq_run_reason *r, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(r[i].reason);
  free(r);
}

tq_code tq_run_items(tq_lib *lib, int64_t run_id, const char *outcome, tq_run_item_info **out,
                     size_t *n, tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  sqlite3_stmt *st = NULL;
  *out = NULL;
  *n = 0;
  tq_code rc = prepare(lib,
                       "SELECT ri.object_id, coalesce(t.name, o.type, ''), coalesce(o.value, ''),"
                       " ri.reason FROM run_items ri LEFT JOIN objects o ON o.id = ri.object_id"
                       " LEFT JOIN indicator_types t ON t.id = o.itype_id"
                       " WHERE ri.run_id=?1 AND ri.outcome=?2 ORDER BY ri.object_id",
                       &st, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_text(st, 2, outcome, -1, SQLITE_STATIC);
  size_t cap = 0;
  int step;
  while (rc == TQ_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      tq_run_item_info *grown = realloc(*out, cap * sizeof *grown);
      if (grown == NULL) {
        rc = tq_err_set(err, TQ_ENOMEM, "runs: out of memory");
        break;
      }
      *out = grown;
    }
    tq_run_item_info *it = &(*out)[*n];
    it->object_id = sqlite3_column_int64(st, 0);
    it->indicator_type = col_dup(st, 1);
    it->value = col_dup(st, 2);
    it->reason = col_dup(st, 3);
    (*n)++;
    if (!it->indicator_type || !it->value || !it->reason)
      rc = tq_err_set(err, TQ_ENOMEM, "runs: out of memory");
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = db_err(lib, err, "reading run items");
  sqlite3_finalize(st);
  if (rc != TQ_OK) {
    tq_run_items_free(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

void tq_run_items_free(tq_run_item_info *items, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(items[i].indicator_type), free(items[i].value), free(items[i].reason);
  free(items);
}

tq_code tq_run_set_cancelled(tq_lib *lib, int64_t run_id, int cancelled, tq_err *err) {
  tq_code rc = wf_tables(lib, err);
  sqlite3_stmt *st = NULL;
  if (rc == TQ_OK)
    rc = prepare(lib, "UPDATE runs SET cancelled=?1 WHERE id=?2", &st, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_bind_int(st, 1, cancelled ? 1 : 0);
  sqlite3_bind_int64(st, 2, run_id);
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = db_err(lib, err, "marking the run cancelled");
  else if (sqlite3_changes(tq_lib_db(lib)) == 0)
    rc = tq_err_set(err, TQ_ENOTFOUND, "run %lld: no such run", (long long)run_id);
  sqlite3_finalize(st);
  return rc;
}

tq_code tq_run_resumable(tq_lib *lib, int64_t **ids, size_t *n, tq_err *err) {
  *ids = NULL;
  *n = 0;
  tq_code rc = wf_tables(lib, err);
  sqlite3_stmt *st = NULL;
  if (rc == TQ_OK)
    rc = prepare(lib,
                 "SELECT id, status, owner, updated_at FROM runs WHERE origin IS NOT NULL AND"
                 " cancelled=0 AND workflow_id IS NULL AND status IN ('interrupted','running')"
                 " ORDER BY id",
                 &st, err);
  if (rc != TQ_OK)
    return rc;
  size_t cap = 0;
  int64_t now = tq_time_now();
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    const char *status = (const char *)sqlite3_column_text(st, 1);
    const char *owner = (const char *)sqlite3_column_text(st, 2);
    if (strcmp(status, "running") == 0 && run_owner_live(owner, sqlite3_column_int64(st, 3), now))
      continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      int64_t *grown = realloc(*ids, cap * sizeof *grown);
      if (grown == NULL) {
        rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
        break;
      }
      *ids = grown;
    }
    (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = db_err(lib, err, "reading the runs to resume");
  sqlite3_finalize(st);
  if (rc != TQ_OK) {
    free(*ids);
    *ids = NULL;
    *n = 0;
  }
  return rc;
}
