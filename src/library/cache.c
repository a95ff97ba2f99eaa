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

tq_code tq_lib_cache_put(tq_lib *lib, const char *key, int status, const char *body, size_t len,
                         int64_t expires_at, tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lib->db,
                         "INSERT OR REPLACE INTO http_cache(key,status,body,expires_at)"
                         " VALUES(?1,?2,?3,?4)",
                         -1, &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "writing the HTTP cache");
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, status);
  sqlite3_bind_blob(st, 3, body, (int)len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, expires_at);
  tq_code rc =
      sqlite3_step(st) == SQLITE_DONE ? TQ_OK : lib_db_err(lib, err, "writing the HTTP cache");
  sqlite3_finalize(st);
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
