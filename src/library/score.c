/* score.c: the generated score and the expiration date of objects, recomputed set-wise for
 * the objects a transaction touched (DESIGN.md section 5):
 *   score = clamp(max source sensitivity + sum of attribute rule deltas
 *                 - revoked decrease of each source that says Revoked, 0, 10)
 *   expires = the per-object exception if any; else never if a source says never; else the
 *             latest (reported_at + expire_days) over sources with a policy; else none.
 * A manual score overrides the generated one (the stored `score` column does that). */
#include "internal.h"

/* One pass over the touched objects: an aggregate per object joined back into the UPDATE,
 * rather than one correlated subquery per rule and row. Attribute rules and revoked
 * decreases are looked at only when some exist (uncorrelated EXISTS is evaluated once). */
static const char RECOMPUTE_SQL[] =
    "WITH agg AS (SELECT t.id AS oid,"
    "   coalesce(max(s.score), 0) AS smax,"
    "   coalesce(max(s.expire_days = -2), 0) AS never,"
    "   max(CASE WHEN s.expire_days > 0 THEN os.reported_at + s.expire_days * 86400 END)"
    "     AS exp"
    "  FROM temp.touched t LEFT JOIN object_sources os ON os.object_id = t.id"
    "  LEFT JOIN sources s ON s.id = os.source_id GROUP BY t.id)"
    " UPDATE objects SET"
    " score_gen = max(0.0, min(10.0, agg.smax"
    " + CASE WHEN EXISTS(SELECT 1 FROM score_rules) THEN"
    "   coalesce((SELECT sum(r.delta) FROM (SELECT DISTINCT name, value FROM attributes"
    "             WHERE object_id=objects.id) a JOIN score_rules r ON r.name=a.name"
    "             AND (r.value IS NULL OR r.value=a.value)), 0) ELSE 0 END"
    " - CASE WHEN EXISTS(SELECT 1 FROM sources WHERE revoked_decrease > 0) THEN"
    "   coalesce((SELECT sum(s.revoked_decrease) FROM sources s WHERE s.id IN"
    "             (SELECT source_id FROM attributes WHERE object_id=objects.id"
    "              AND name='Revoked' AND lower(value) IN ('true','yes','1'))), 0) ELSE 0 END)),"
    " expires_at = CASE"
    "   WHEN expire_exception = -2 THEN NULL"
    "   WHEN expire_exception > 0 THEN expire_exception"
    "   WHEN agg.never THEN NULL"
    "   ELSE agg.exp END"
    " FROM agg WHERE objects.id = agg.oid";

static const char CLEAR_TOUCHED_SQL[] = "DELETE FROM temp.touched";

/* Both statements are cached: a bulk run commits every few hundred items. */
static tq_code run_cached(tq_lib *lib, const char *sql, tq_err *err) {
  sqlite3_stmt *st = lib_stmt_sql(lib, sql, err);
  if (st == NULL)
    return err && err->code ? err->code : TQ_EDB;
  int step = sqlite3_step(st);
  sqlite3_reset(st);
  return step == SQLITE_DONE ? TQ_OK : lib_db_err(lib, err, "recomputing scores");
}

tq_code lib_recompute_touched(tq_lib *lib, tq_err *err) {
  tq_code rc = run_cached(lib, RECOMPUTE_SQL, err);
  if (rc == TQ_OK)
    rc = run_cached(lib, CLEAR_TOUCHED_SQL, err);
  if (rc == TQ_OK)
    lib->touched = 0;
  return rc;
}

/* Runs a one-statement write in its own transaction unless one is open. */
static tq_code write_one(tq_lib *lib, const char *sql, int64_t a, int64_t b, int has_b,
                         int64_t *changes, tq_err *err) {
  tq_code rc = tq_lib_begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_stmt *st = lib_stmt_sql(lib, sql, err);
  if (st == NULL) {
    rc = TQ_EDB;
    goto fail;
  }
  sqlite3_bind_int64(st, 1, a);
  if (has_b)
    sqlite3_bind_int64(st, 2, b);
  if (sqlite3_step(st) != SQLITE_DONE) {
    rc = lib_db_err(lib, err, "writing");
    goto fail;
  }
  if (changes)
    *changes = sqlite3_changes64(lib->db);
  sqlite3_reset(st);
  return tq_lib_commit(lib, err);
fail:
  tq_lib_rollback(lib);
  return rc;
}

/* Fails with TQ_ENOTFOUND unless object id exists. */
static tq_code object_exists(tq_lib *lib, int64_t id, tq_err *err) {
  static const char sql[] = "SELECT 1 FROM objects WHERE id=?1";
  sqlite3_stmt *st = lib_stmt_sql(lib, sql, err);
  if (st == NULL)
    return TQ_EDB;
  sqlite3_bind_int64(st, 1, id);
  int found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_reset(st);
  return found ? TQ_OK : tq_err_set(err, TQ_ENOTFOUND, "no object with id %lld", (long long)id);
}

tq_code tq_lib_status_set(tq_lib *lib, int64_t object_id, int status, tq_err *err) {
  if (tq_lib_status_name(status) == NULL)
    return tq_err_set(err, TQ_EINVAL, "status id %d is not one of 1..5", status);
  tq_code rc = object_exists(lib, object_id, err);
  if (rc != TQ_OK)
    return rc;
  return write_one(lib, "UPDATE objects SET status=?2, updated_at=strftime('%s','now') WHERE id=?1",
                   object_id, status, 1, NULL, err);
}

tq_code tq_lib_score_set(tq_lib *lib, int64_t object_id, int manual, tq_err *err) {
  if (manual < -1 || manual > 10)
    return tq_err_set(err, TQ_EINVAL, "manual score %d is not in 0..10 (or -1 to clear)", manual);
  tq_code rc = object_exists(lib, object_id, err);
  if (rc != TQ_OK)
    return rc;
  if (manual < 0)
    return write_one(lib, "UPDATE objects SET score_manual=NULL WHERE id=?1", object_id, 0, 0, NULL,
                     err);
  return write_one(lib, "UPDATE objects SET score_manual=?2 WHERE id=?1", object_id, manual, 1,
                   NULL, err);
}

tq_code tq_lib_expire_exception_set(tq_lib *lib, int64_t object_id, int64_t when, tq_err *err) {
  tq_code rc = object_exists(lib, object_id, err);
  if (rc != TQ_OK)
    return rc;
  rc = tq_lib_begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  if (when == TQ_EXPIRE_NONE)
    rc = write_one(lib, "UPDATE objects SET expire_exception=NULL WHERE id=?1", object_id, 0, 0,
                   NULL, err);
  else
    rc = write_one(lib, "UPDATE objects SET expire_exception=?2 WHERE id=?1", object_id, when, 1,
                   NULL, err);
  if (rc == TQ_OK)
    rc = lib_touch(lib, object_id, err);
  if (rc != TQ_OK) {
    tq_lib_rollback(lib);
    return rc;
  }
  return tq_lib_commit(lib, err);
}

tq_code tq_lib_score_rule_put(tq_lib *lib, const char *name, const char *value, double delta,
                              tq_err *err) {
  sqlite3_stmt *st = NULL;
  tq_code rc = tq_lib_begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  if (sqlite3_prepare_v2(
          lib->db,
          "INSERT INTO score_rules(name,value,delta) VALUES(?1,?2,?3)"
          " ON CONFLICT(name, coalesce(value,'')) DO UPDATE SET delta=excluded.delta",
          -1, &st, NULL) != SQLITE_OK) {
    rc = lib_db_err(lib, err, "preparing a score rule");
    goto fail;
  }
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  if (value)
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 3, delta);
  if (sqlite3_step(st) != SQLITE_DONE) {
    rc = lib_db_err(lib, err, "writing a score rule");
    goto fail;
  }
  sqlite3_finalize(st);
  st = NULL;
  /* Every object carrying that attribute is rescored. */
  if (sqlite3_prepare_v2(lib->db,
                         "INSERT OR IGNORE INTO temp.touched(id) SELECT DISTINCT object_id FROM"
                         " attributes WHERE name=?1",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = lib_db_err(lib, err, "preparing a rescore");
    goto fail;
  }
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) {
    rc = lib_db_err(lib, err, "marking objects for rescore");
    goto fail;
  }
  sqlite3_finalize(st);
  lib->touched = 1;
  return tq_lib_commit(lib, err);
fail:
  sqlite3_finalize(st);
  tq_lib_rollback(lib);
  return rc;
}

tq_code tq_lib_expire_due(tq_lib *lib, int64_t now, int64_t *n_out, tq_err *err) {
  int64_t n = 0;
  tq_code rc = write_one(lib,
                         "UPDATE objects SET status=2, updated_at=?1 WHERE expires_at IS NOT NULL"
                         " AND expires_at <= ?1 AND status NOT IN (2,5)",
                         now, 0, 0, &n, err);
  if (rc == TQ_OK && n_out)
    *n_out = n;
  return rc;
}
