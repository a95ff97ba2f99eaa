/* score.c: the generated score and the expiration date of objects, recomputed set-wise for
 * the objects a transaction touched (DESIGN.md section 5):
 *   score = clamp(max source sensitivity + sum of attribute rule deltas
 *                 - revoked decrease of each source that says Revoked, 0, 10)
 *   expires = the per-object exception if any; else never if a source says never; else the
 *             latest (reported_at + expire_days) over sources with a policy; else none.
 * A manual score overrides the generated one (the stored `score` column does that). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The terms of a generated score, written once and used by both the set-wise recompute
 * (OBJ is "objects.id") and the explanation of one object (OBJ is "?1"):
 *   RULE_TERMS     the attribute score rules an object's attributes meet, one row each
 *   REVOKED_TERMS  the sources that say Revoked (attribute "Revoked" true/yes/1), one row each
 * and their sums, combined by score_combine (the SQL function tq_score_gen). */
#define RULE_TERMS(OBJ)                                                                            \
  "SELECT a.name AS name, a.value AS value, r.value IS NULL AS any_value, r.delta AS delta"        \
  " FROM (SELECT DISTINCT name, value FROM attributes WHERE object_id=" OBJ ") a"                  \
  " JOIN score_rules r ON r.name=a.name AND (r.value IS NULL OR r.value=a.value)"
#define REVOKED_TERMS(OBJ)                                                                         \
  "SELECT s.name AS name, s.revoked_decrease AS delta FROM sources s WHERE s.id IN"                \
  " (SELECT source_id FROM attributes WHERE object_id=" OBJ                                        \
  " AND name='Revoked' AND lower(value) IN ('true','yes','1'))"

/* The generated score from its terms: the highest source sensitivity, plus the attribute
 * rules' deltas, minus the revoked decreases, clamped to 0..10. */
static double score_combine(double smax, double rules, double revoked) {
  double x = smax + rules - revoked;
  return x < 0.0 ? 0.0 : x > 10.0 ? 10.0 : x;
}

static void sql_score_gen(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3_result_double(ctx,
                        score_combine(sqlite3_value_double(argv[0]), sqlite3_value_double(argv[1]),
                                      sqlite3_value_double(argv[2])));
}

tq_code lib_score_register(tq_lib *lib, tq_err *err) {
  if (sqlite3_create_function(lib->db, "tq_score_gen", 3,
                              SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                              sql_score_gen, NULL, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "registering tq_score_gen");
  return TQ_OK;
}

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
    " score_gen = tq_score_gen(agg.smax,"
    " CASE WHEN EXISTS(SELECT 1 FROM score_rules) THEN"
    "   coalesce((SELECT sum(delta) FROM (" RULE_TERMS(
        "objects.id") ")), 0) ELSE 0 END,"
                      " CASE WHEN EXISTS(SELECT 1 FROM sources WHERE revoked_decrease > 0) THEN"
                      "   coalesce((SELECT sum(delta) FROM (" REVOKED_TERMS(
                          "objects.id") ")), 0) ELSE 0 END),"
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

/* ---- the score explained ------------------------------------------------------------------- */

void tq_score_explain_free(tq_score_explain *x) {
  if (x == NULL)
    return;
  for (size_t i = 0; i < x->n_terms; i++) {
    free(x->terms[i].name);
    free(x->terms[i].value);
  }
  free(x->terms);
  memset(x, 0, sizeof *x);
}

static tq_code add_term(tq_score_explain *x, const char *kind, const char *name, const char *value,
                        double delta, int counted, tq_err *err) {
  tq_score_term *t = realloc(x->terms, (x->n_terms + 1) * sizeof *t);
  if (t == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  x->terms = t;
  t = &x->terms[x->n_terms];
  memset(t, 0, sizeof *t);
  tq_strlcpy(t->kind, kind, sizeof t->kind);
  t->name = name ? strdup(name) : NULL;
  t->value = value ? strdup(value) : NULL;
  t->delta = delta;
  t->counted = counted;
  x->n_terms++;
  if ((name && t->name == NULL) || (value && t->value == NULL))
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  return TQ_OK;
}

/* Runs sql bound to id; per row calls row(). */
static tq_code each(tq_lib *lib, const char *sql, int64_t id, tq_score_explain *x,
                    tq_code (*row)(sqlite3_stmt *, tq_score_explain *, void *, tq_err *), void *ud,
                    tq_err *err) {
  sqlite3_stmt *st = lib_stmt_sql(lib, sql, err);
  if (st == NULL)
    return err && err->code ? err->code : TQ_EDB;
  sqlite3_bind_int64(st, 1, id);
  int step;
  tq_code rc = TQ_OK;
  while (rc == TQ_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
    rc = row(st, x, ud, err);
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = lib_db_err(lib, err, "explaining a score");
  sqlite3_reset(st);
  return rc;
}

static const char *col_text(sqlite3_stmt *st, int i) {
  return (const char *)sqlite3_column_text(st, i);
}

static tq_code row_source(sqlite3_stmt *st, tq_score_explain *x, void *ud, tq_err *err) {
  int *first = ud;
  /* Only the most sensitive source counts; the others are listed with delta 0. */
  tq_code rc = add_term(x, "source", col_text(st, 0), NULL,
                        *first ? sqlite3_column_double(st, 1) : 0.0, *first, err);
  if (*first)
    x->source_max = sqlite3_column_double(st, 1);
  x->terms[x->n_terms - 1].sensitivity = sqlite3_column_int(st, 1);
  *first = 0;
  return rc;
}

static tq_code row_rule(sqlite3_stmt *st, tq_score_explain *x, void *ud, tq_err *err) {
  (void)ud;
  return add_term(x, sqlite3_column_int(st, 2) ? "attribute" : "attribute_value", col_text(st, 0),
                  col_text(st, 1), sqlite3_column_double(st, 3), 1, err);
}

static tq_code row_revoked(sqlite3_stmt *st, tq_score_explain *x, void *ud, tq_err *err) {
  (void)ud;
  return add_term(x, "revoked", col_text(st, 0), NULL, -sqlite3_column_double(st, 1), 1, err);
}

static tq_code row_sum(sqlite3_stmt *st, tq_score_explain *x, void *ud, tq_err *err) {
  (void)x;
  (void)err;
  *(double *)ud = sqlite3_column_double(st, 0);
  return TQ_OK;
}

tq_code tq_lib_score_explain(tq_lib *lib, int64_t id, tq_score_explain *x, tq_err *err) {
  memset(x, 0, sizeof *x);
  static const char OBJ_SQL[] = "SELECT score_gen, score_manual, score FROM objects WHERE id=?1";
  static const char SRC_SQL[] = "SELECT s.name, s.score FROM object_sources os JOIN sources s"
                                " ON s.id=os.source_id WHERE os.object_id=?1"
                                " ORDER BY s.score DESC, s.name";
  static const char RULES_SQL[] = RULE_TERMS("?1") " ORDER BY 1, 2";
  static const char RULES_SUM_SQL[] = "SELECT coalesce(sum(delta), 0) FROM (" RULE_TERMS("?1") ")";
  static const char REVOKED_SQL[] = REVOKED_TERMS("?1") " ORDER BY 1";
  static const char REVOKED_SUM_SQL[] =
      "SELECT coalesce(sum(delta), 0) FROM (" REVOKED_TERMS("?1") ")";
  sqlite3_stmt *st = lib_stmt_sql(lib, OBJ_SQL, err);
  if (st == NULL)
    return err && err->code ? err->code : TQ_EDB;
  sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st);
  if (step != SQLITE_ROW) {
    sqlite3_reset(st);
    return step == SQLITE_DONE
               ? tq_err_set(err, TQ_ENOTFOUND, "no object with id %lld", (long long)id)
               : lib_db_err(lib, err, "explaining a score");
  }
  x->id = id;
  x->stored = sqlite3_column_double(st, 0);
  x->manual = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 1);
  x->score = sqlite3_column_int(st, 2);
  sqlite3_reset(st);
  int first = 1;
  double rules = 0, revoked = 0;
  tq_code rc = each(lib, SRC_SQL, id, x, row_source, &first, err);
  if (rc == TQ_OK)
    rc = each(lib, RULES_SQL, id, x, row_rule, NULL, err);
  if (rc == TQ_OK)
    rc = each(lib, RULES_SUM_SQL, id, x, row_sum, &rules, err);
  if (rc == TQ_OK)
    rc = each(lib, REVOKED_SQL, id, x, row_revoked, NULL, err);
  if (rc == TQ_OK)
    rc = each(lib, REVOKED_SUM_SQL, id, x, row_sum, &revoked, err);
  if (rc != TQ_OK) {
    tq_score_explain_free(x);
    return rc;
  }
  x->rules = rules;
  x->revoked = revoked;
  x->unclamped = x->source_max + rules - revoked;
  x->generated = score_combine(x->source_max, rules, revoked);
  if (x->generated != x->unclamped)
    rc = add_term(x, "clamp", NULL, NULL, x->generated - x->unclamped, 1, err);
  if (rc != TQ_OK)
    tq_score_explain_free(x);
  return rc;
}
