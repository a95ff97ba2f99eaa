/* schema.c: the workflow part's own tables, as migrations run through tq_lib_part_migrate (part
 * "workflow"). Only appended to: a later change adds a migration at the END of the list, never
 * edits an earlier one.
 *
 *   workflows  definitions: collection, actions, settings (passwords sealed), schedule
 *   runs       bulk runs with their checkpoint (last committed object id, counts), owner and
 *              heartbeat (a live run is not resumed twice), retry_of
 *   run_items  the not-found, failed and skipped items of a run, with the reason
 *
 * Migration 1 makes them only where missing: a library made before the part owned them keeps
 * its rows. One made before library schema version 4 (runs without skipped, owner, retry_of)
 * gets those first (legacy_v4), as library/schema.c's migration 4 gave them. */
#include <sqlite3.h>
#include <string.h>

#include "action_int.h"

static const char *const MIGRATIONS[] = {
    /* 1: the tables as library/schema.c's migrations 3 and 4 made them */
    "CREATE TABLE IF NOT EXISTS workflows(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
    " collection TEXT NOT NULL, actions TEXT NOT NULL, settings TEXT NOT NULL DEFAULT '{}',"
    " schedule TEXT, enabled INTEGER NOT NULL DEFAULT 1, last_run_at INTEGER,"
    " next_run_at INTEGER, created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS runs(id INTEGER PRIMARY KEY, action TEXT NOT NULL,"
    " workflow_id INTEGER REFERENCES workflows(id) ON DELETE SET NULL,"
    " status TEXT NOT NULL CHECK(status IN ('running','done','interrupted','failed')),"
    " input TEXT NOT NULL, settings TEXT NOT NULL DEFAULT '{}',"
    " concurrency INTEGER NOT NULL DEFAULT 0, last_id INTEGER NOT NULL DEFAULT 0,"
    " total INTEGER NOT NULL DEFAULT 0, enriched INTEGER NOT NULL DEFAULT 0,"
    " not_found INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,"
    " started_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER,"
    " seconds REAL NOT NULL DEFAULT 0, error TEXT, skipped INTEGER NOT NULL DEFAULT 0,"
    " owner TEXT, retry_of INTEGER);"
    "CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs(workflow_id, id);"
    "CREATE TABLE IF NOT EXISTS run_items(run_id INTEGER NOT NULL REFERENCES runs(id)"
    " ON DELETE CASCADE, object_id INTEGER NOT NULL,"
    " outcome TEXT NOT NULL CHECK(outcome IN ('not_found','failed','skipped')),"
    " reason TEXT NOT NULL DEFAULT '', PRIMARY KEY(run_id, object_id)) WITHOUT ROWID;",
    /* 2: runs started by the server (origin 'api' or 'schedule'; NULL: the command line) are
     * resumed by the server when it starts again; a cancelled run is not. */
    "ALTER TABLE runs ADD COLUMN origin TEXT;"
    "ALTER TABLE runs ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;",
};

static const tq_lib_part WF_PART = {"workflow", MIGRATIONS,
                                    (int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0])};

/* library/schema.c's migration 4 as it touched runs and run_items, for a library made at
 * version 3 whose tables this part now owns. */
static const char LEGACY_V4[] =
    "ALTER TABLE runs ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE runs ADD COLUMN owner TEXT;"
    "ALTER TABLE runs ADD COLUMN retry_of INTEGER;"
    "CREATE TABLE run_items_v4(run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " object_id INTEGER NOT NULL,"
    " outcome TEXT NOT NULL CHECK(outcome IN ('not_found','failed','skipped')),"
    " reason TEXT NOT NULL DEFAULT '', PRIMARY KEY(run_id, object_id)) WITHOUT ROWID;"
    "INSERT INTO run_items_v4 SELECT run_id, object_id, outcome, reason FROM run_items;"
    "DROP TABLE run_items;"
    "ALTER TABLE run_items_v4 RENAME TO run_items;";

/* 1 when table runs exists without column skipped (made at library schema version 3). */
static int runs_before_v4(sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  int exists = 0, has = 0;
  if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('runs')", -1, &st, NULL) !=
      SQLITE_OK)
    return 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    exists = 1;
    const char *c = (const char *)sqlite3_column_text(st, 0);
    if (c && strcmp(c, "skipped") == 0)
      has = 1;
  }
  sqlite3_finalize(st);
  return exists && !has;
}

static tq_code legacy_v4(tq_lib *lib, tq_err *err) {
  sqlite3 *db = tq_lib_db(lib);
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return tq_err_set(err, TQ_EDB, "workflow tables: %s", sqlite3_errmsg(db));
  if (runs_before_v4(db) && sqlite3_exec(db, LEGACY_V4, NULL, NULL, NULL) != SQLITE_OK) {
    tq_err_set(err, TQ_EDB, "workflow tables: bringing runs to version 4: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return err ? err->code : TQ_EDB;
  }
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    tq_err_set(err, TQ_EDB, "workflow tables: %s", sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return TQ_EDB;
  }
  return TQ_OK;
}

tq_code tq_workflow_migrate(tq_lib *lib, tq_err *err) {
  if (sqlite3_db_readonly(tq_lib_db(lib), "main") == 1)
    return TQ_OK;                         /* a reader reads what is there */
  tq_code rc = tq_feed_migrate(lib, err); /* a workflow tick polls feeds */
  if (rc != TQ_OK)
    return rc;
  if (tq_lib_part_version(lib, WF_PART.name) == 0 && runs_before_v4(tq_lib_db(lib)) &&
      (rc = legacy_v4(lib, err)) != TQ_OK)
    return rc;
  return tq_lib_part_migrate(lib, &WF_PART, err);
}

tq_code wf_tables(tq_lib *lib, tq_err *err) {
  if (tq_lib_part_version(lib, WF_PART.name) == WF_PART.n_migrations &&
      tq_lib_part_version(lib, "feed") >= 1)
    return TQ_OK;
  sqlite3 *db = tq_lib_db(lib);
  /* A read-only connection reads what is there; a transaction in progress cannot take the
   * migration's own: both are the opener's to have migrated first (tq_workflow_migrate). */
  if (sqlite3_db_readonly(db, "main") == 1 || !sqlite3_get_autocommit(db))
    return TQ_OK;
  return tq_workflow_migrate(lib, err);
}
