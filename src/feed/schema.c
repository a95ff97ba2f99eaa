/* schema.c: the feed part's own tables, as migrations run through tq_lib_part_migrate (part
 * "feed"), as an SQLite module keeps its own. Only appended to: a later change adds a migration
 * at the END of the list, never edits an earlier one.
 *
 *   feeds         feed definitions and how their last poll went
 *   feed_state    each feed's checkpoint (the TAXII added_after to continue from)
 *   stix_refs     STIX id -> library object (one id may map to several objects)
 *   stix_seen     the version of each STIX object a feed already ingested
 *   stix_pending  relationships whose other end has not arrived yet
 *
 * Migration 1 makes them only where missing: a library made before the part owned them
 * (library schema version 2..4, the same tables made by library/schema.c) keeps its rows and
 * is simply recorded at level 1. */
#include <sqlite3.h>

#include "feed_int.h"

static const char *const MIGRATIONS[] = {
    /* 1: the tables as library/schema.c's migration 2 made them */
    "CREATE TABLE IF NOT EXISTS feeds(name TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL CHECK(kind IN ('taxii','rst-reports')),"
    " discovery TEXT NOT NULL, collection TEXT NOT NULL DEFAULT '', username TEXT,"
    " password_env TEXT, ca_file TEXT, verify INTEGER NOT NULL DEFAULT 1,"
    " source TEXT NOT NULL, match_type TEXT, page_size INTEGER NOT NULL DEFAULT 1000,"
    " overlap_s INTEGER NOT NULL DEFAULT 0, every_s INTEGER NOT NULL DEFAULT 3600,"
    " enabled INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL,"
    " last_poll_at INTEGER, last_ok INTEGER, last_error TEXT, last_summary TEXT);"
    "CREATE TABLE IF NOT EXISTS feed_state(feed TEXT PRIMARY KEY REFERENCES feeds(name)"
    " ON DELETE CASCADE, checkpoint TEXT, last_next TEXT, updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS stix_refs(stix_id TEXT NOT NULL, object_id INTEGER NOT NULL"
    " REFERENCES objects(id) ON DELETE CASCADE, PRIMARY KEY(stix_id, object_id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stix_seen(feed TEXT NOT NULL, stix_id TEXT NOT NULL,"
    " modified_s INTEGER NOT NULL, modified_ns INTEGER NOT NULL,"
    " PRIMARY KEY(feed, stix_id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stix_pending(feed TEXT NOT NULL, from_id TEXT NOT NULL,"
    " to_id TEXT NOT NULL, link_type TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY(feed, from_id, to_id, link_type)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS stix_pending_to ON stix_pending(to_id);",
};

static const tq_lib_part FEED_PART = {"feed", MIGRATIONS,
                                      (int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0])};

tq_code tq_feed_migrate(tq_lib *lib, tq_err *err) {
  if (sqlite3_db_readonly(tq_lib_db(lib), "main") == 1)
    return TQ_OK; /* a reader reads what is there */
  return tq_lib_part_migrate(lib, &FEED_PART, err);
}

tq_code feed_tables(tq_lib *lib, tq_err *err) {
  if (tq_lib_part_version(lib, FEED_PART.name) == FEED_PART.n_migrations)
    return TQ_OK;
  sqlite3 *db = tq_lib_db(lib);
  /* A read-only connection reads what is there; a transaction in progress cannot take the
   * migration's own: both are the opener's to have migrated first (tq_feed_migrate). */
  if (sqlite3_db_readonly(db, "main") == 1 || !sqlite3_get_autocommit(db))
    return TQ_OK;
  return tq_feed_migrate(lib, err);
}
