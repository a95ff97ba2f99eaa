/* cache.c: the HTTP response cache and the key/value settings, both plain tables. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

tq_code tq_lib_cache_get(tq_lib *lib, const char *key, int64_t now, int *status, char **body,
                         size_t *len, tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lib->db,
                         "SELECT status, body FROM http_cache WHERE key=?1 AND"
                         " expires_at > ?2",
                         -1, &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "reading the HTTP cache");
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  int step = sqlite3_step(st);
  tq_code rc = TQ_OK;
  if (step == SQLITE_ROW) {
    size_t n = (size_t)sqlite3_column_bytes(st, 1);
    char *p = malloc(n + 1);
    if (p == NULL) {
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory reading the HTTP cache");
    } else {
      if (n)
        memcpy(p, sqlite3_column_blob(st, 1), n);
      p[n] = '\0';
      *status = sqlite3_column_int(st, 0);
      *body = p;
      *len = n;
    }
  } else if (step == SQLITE_DONE) {
    rc = tq_err_set(err, TQ_ENOTFOUND, "not cached");
  } else {
    rc = lib_db_err(lib, err, "reading the HTTP cache");
  }
  sqlite3_finalize(st);
  return rc;
}

/* The rows past the caps are those after max_rows rows, or after max_bytes of bodies, in the
 * order of their expiry, latest first: the rows that would go soonest anyway go first. */
static const char CACHE_PURGE_EXPIRED[] = "DELETE FROM http_cache WHERE expires_at <= ?1";
static const char CACHE_PURGE_OVER[] =
    "DELETE FROM http_cache WHERE key IN (SELECT key FROM (SELECT key,"
    " row_number() OVER w AS n, sum(length(body)) OVER w AS bytes FROM http_cache"
    " WINDOW w AS (ORDER BY expires_at DESC, key ROWS UNBOUNDED PRECEDING))"
    " WHERE n > ?1 OR bytes > ?2)";

static tq_code cache_rows(tq_lib *lib, const tq_lib_cache_row *rows, size_t n, tq_err *err) {
  sqlite3_stmt *st = NULL;
  tq_code rc = TQ_OK;
  if (n == 0)
    return TQ_OK;
  if (sqlite3_prepare_v2(lib->db,
                         "INSERT OR REPLACE INTO http_cache(key,status,body,expires_at)"
                         " VALUES(?1,?2,?3,?4)",
                         -1, &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "writing the HTTP cache");
  for (size_t i = 0; i < n && rc == TQ_OK; i++) {
    sqlite3_bind_text(st, 1, rows[i].key, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, rows[i].status);
    sqlite3_bind_blob64(st, 3, rows[i].body ? rows[i].body : "", rows[i].len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, rows[i].expires_at);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = lib_db_err(lib, err, "writing the HTTP cache");
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  return rc;
}

static tq_code cache_purge(tq_lib *lib, const tq_lib_cache_caps *caps, int64_t *purged,
                           tq_err *err) {
  for (int pass = 0; pass < 2; pass++) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(lib->db, pass == 0 ? CACHE_PURGE_EXPIRED : CACHE_PURGE_OVER, -1, &st,
                           NULL) != SQLITE_OK)
      return lib_db_err(lib, err, "purging the HTTP cache");
    sqlite3_bind_int64(st, 1, pass == 0 ? caps->now : caps->max_rows);
    if (pass == 1)
      sqlite3_bind_int64(st, 2, caps->max_bytes);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
      return lib_db_err(lib, err, "purging the HTTP cache");
    *purged += sqlite3_changes(lib->db);
  }
  return TQ_OK;
}

tq_code tq_lib_cache_put(tq_lib *lib, const tq_lib_cache_row *rows, size_t n,
                         const tq_lib_cache_caps *caps, int64_t *purged, tq_err *err) {
  int own = lib->depth == 0; /* else inside the caller's transaction, never rolled back here */
  int64_t gone = 0;
  tq_code rc = own ? tq_lib_begin(lib, err) : TQ_OK;
  if (rc != TQ_OK)
    return rc;
  rc = cache_rows(lib, rows, n, err);
  if (rc == TQ_OK && caps)
    rc = cache_purge(lib, caps, &gone, err);
  if (own && rc == TQ_OK)
    rc = tq_lib_commit(lib, err);
  else if (own)
    tq_lib_rollback(lib);
  if (rc == TQ_OK && purged)
    *purged = gone;
  return rc;
}

tq_code tq_lib_setting_put(tq_lib *lib, const char *scope, const char *key, const char *value,
                           int secret, tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lib->db,
                         "INSERT OR REPLACE INTO settings(scope,key,value,secret)"
                         " VALUES(?1,?2,?3,?4)",
                         -1, &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "writing a setting");
  sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, secret != 0);
  tq_code rc = sqlite3_step(st) == SQLITE_DONE ? TQ_OK : lib_db_err(lib, err, "writing a setting");
  sqlite3_finalize(st);
  return rc;
}

tq_code tq_lib_setting_get(tq_lib *lib, const char *scope, const char *key, char **value,
                           int *secret, tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lib->db, "SELECT value, secret FROM settings WHERE scope=?1 AND key=?2",
                         -1, &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "reading a setting");
  sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  tq_code rc = TQ_OK;
  if (step == SQLITE_ROW) {
    *value = strdup((const char *)sqlite3_column_text(st, 0));
    if (secret)
      *secret = sqlite3_column_int(st, 1);
    if (*value == NULL)
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  } else if (step == SQLITE_DONE) {
    rc = tq_err_set(err, TQ_ENOTFOUND, "no setting %s.%s", scope, key);
  } else {
    rc = lib_db_err(lib, err, "reading a setting");
  }
  sqlite3_finalize(st);
  return rc;
}
