/* source.c: sources (who reported what), with TLP, score sensitivity, expiration policy and
 * revoked score decrease. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void tq_source_opts_init(tq_source_opts *o) {
  o->kind = NULL;
  o->tlp = TQ_UNSET;
  o->score = TQ_UNSET;
  o->expire_days = TQ_UNSET;
  o->revoked_decrease = TQ_UNSET;
}

tq_code lib_source_id(tq_lib *lib, const char *name, const char *kind, int64_t *id, tq_err *err) {
  if (tq_lib_name_check("source name", name, err) != TQ_OK)
    return TQ_EINVAL;
  if (*name == '\0' || strlen(name) >= sizeof(((tq_source *)0)->name))
    return tq_err_set(err, TQ_EINVAL, "source name '%s' is empty or longer than 127 bytes", name);
  tq_code rc = lib_text_check("source name", name, TQ_LIB_MAX_NAME, err);
  if (rc != TQ_OK)
    return rc;
  return lib_named_id(lib, &lib->sources, ST_SRC_BY_NAME, ST_SRC_INSERT, name, kind ? kind : "user",
                      id, err);
}

tq_code tq_lib_source_ensure(tq_lib *lib, const char *name, const char *kind, int64_t *id_out,
                             tq_err *err) {
  int64_t id = 0;
  tq_code rc = tq_lib_begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  rc = lib_source_id(lib, name, kind, &id, err);
  if (rc != TQ_OK) {
    tq_lib_rollback(lib);
    return rc;
  }
  if (id_out)
    *id_out = id;
  return tq_lib_commit(lib, err);
}

static tq_code check_opts(const char *name, const tq_source_opts *o, tq_err *err) {
  if (o->kind && strcmp(o->kind, "user") && strcmp(o->kind, "feed") && strcmp(o->kind, "plugin"))
    return tq_err_set(err, TQ_EINVAL, "source %s: kind '%s' is not user, feed or plugin", name,
                      o->kind);
  if (o->tlp != TQ_UNSET && (o->tlp < 0 || o->tlp > 4))
    return tq_err_set(err, TQ_EINVAL, "source %s: TLP %d is not 0..4", name, o->tlp);
  if (o->score != TQ_UNSET && (o->score < 0 || o->score > 10))
    return tq_err_set(err, TQ_EINVAL, "source %s: score %d is not 0..10", name, o->score);
  if (o->revoked_decrease != TQ_UNSET && (o->revoked_decrease < 0 || o->revoked_decrease > 10))
    return tq_err_set(err, TQ_EINVAL, "source %s: revoked decrease %d is not 0..10", name,
                      o->revoked_decrease);
  if (o->expire_days != TQ_UNSET && o->expire_days <= 0 && o->expire_days != TQ_EXPIRE_NONE &&
      o->expire_days != TQ_EXPIRE_NEVER)
    return tq_err_set(err, TQ_EINVAL, "source %s: expiration must be a number of days > 0 or never",
                      name);
  return TQ_OK;
}

/* Binds an int option or NULL (so that coalesce keeps the column). */
static void bind_opt(sqlite3_stmt *st, int i, int v) {
  if (v == TQ_UNSET)
    sqlite3_bind_null(st, i);
  else
    sqlite3_bind_int(st, i, v);
}

tq_code tq_lib_source_put(tq_lib *lib, const char *name, const tq_source_opts *opts,
                          int must_create, int64_t *id_out, tq_err *err) {
  tq_source_opts none;
  if (opts == NULL) {
    tq_source_opts_init(&none);
    opts = &none;
  }
  tq_code rc = check_opts(name, opts, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_stmt *st = NULL;
  rc = tq_lib_begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  tq_source existing;
  tq_err e2;
  int exists = tq_lib_source_get(lib, name, &existing, &e2) == TQ_OK;
  if (exists && must_create) {
    rc = tq_err_set(err, TQ_EEXIST, "source '%s' exists already", name);
    goto fail;
  }
  int64_t id = 0;
  rc = lib_source_id(lib, name, opts->kind, &id, err);
  if (rc != TQ_OK)
    goto fail;
  if (sqlite3_prepare_v2(lib->db,
                         "UPDATE sources SET kind=coalesce(?2,kind), tlp=coalesce(?3,tlp),"
                         " score=coalesce(?4,score), expire_days=coalesce(?5,expire_days),"
                         " revoked_decrease=coalesce(?6,revoked_decrease) WHERE id=?1",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = lib_db_err(lib, err, "preparing a source update");
    goto fail;
  }
  sqlite3_bind_int64(st, 1, id);
  if (opts->kind)
    sqlite3_bind_text(st, 2, opts->kind, -1, SQLITE_STATIC);
  bind_opt(st, 3, opts->tlp);
  bind_opt(st, 4, opts->score);
  bind_opt(st, 5, opts->expire_days);
  bind_opt(st, 6, opts->revoked_decrease);
  if (sqlite3_step(st) != SQLITE_DONE) {
    rc = lib_db_err(lib, err, "updating a source");
    goto fail;
  }
  sqlite3_finalize(st);
  st = NULL;
  int rescore = exists && (opts->score != TQ_UNSET || opts->expire_days != TQ_UNSET ||
                           opts->revoked_decrease != TQ_UNSET);
  if (rescore) {
    if (sqlite3_prepare_v2(lib->db,
                           "INSERT OR IGNORE INTO temp.touched(id) SELECT object_id FROM"
                           " object_sources WHERE source_id=?1",
                           -1, &st, NULL) != SQLITE_OK ||
        (sqlite3_bind_int64(st, 1, id), sqlite3_step(st)) != SQLITE_DONE) {
      rc = lib_db_err(lib, err, "marking a source's objects for rescore");
      goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    lib->touched = 1;
  }
  if (id_out)
    *id_out = id;
  return tq_lib_commit(lib, err);
fail:
  sqlite3_finalize(st);
  tq_lib_rollback(lib);
  return rc;
}

static void source_from_row(sqlite3_stmt *st, tq_source *s) {
  s->id = sqlite3_column_int64(st, 0);
  tq_strlcpy(s->name, (const char *)sqlite3_column_text(st, 1), sizeof s->name);
  tq_strlcpy(s->kind, (const char *)sqlite3_column_text(st, 2), sizeof s->kind);
  s->tlp = sqlite3_column_int(st, 3);
  s->score = sqlite3_column_int(st, 4);
  s->expire_days = sqlite3_column_int(st, 5);
  s->revoked_decrease = sqlite3_column_int(st, 6);
  s->objects = sqlite3_column_int64(st, 7);
}

#define SOURCE_COLS                                                                                \
  "SELECT id,name,kind,tlp,score,expire_days,revoked_decrease,"                                    \
  "(SELECT count(*) FROM object_sources WHERE source_id=sources.id) FROM sources "

tq_code tq_lib_source_get(tq_lib *lib, const char *name, tq_source *out, tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lib->db, SOURCE_COLS "WHERE name=?1", -1, &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "preparing a source read");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  tq_code rc = TQ_OK;
  if (step == SQLITE_ROW)
    source_from_row(st, out);
  else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no source named '%s'", name);
  else
    rc = lib_db_err(lib, err, "reading a source");
  sqlite3_finalize(st);
  return rc;
}

tq_code tq_lib_source_list(tq_lib *lib, tq_source **out, size_t *n, tq_err *err) {
  sqlite3_stmt *st = NULL;
  tq_source *arr = NULL;
  size_t len = 0, cap = 0;
  if (sqlite3_prepare_v2(lib->db, SOURCE_COLS "ORDER BY name", -1, &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "preparing a source list");
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (len == cap) {
      cap = cap ? cap * 2 : 8;
      tq_source *p = realloc(arr, cap * sizeof *p);
      if (p == NULL) {
        free(arr);
        sqlite3_finalize(st);
        return tq_err_set(err, TQ_ENOMEM, "out of memory listing sources");
      }
      arr = p;
    }
    source_from_row(st, &arr[len++]);
  }
  sqlite3_finalize(st);
  if (step != SQLITE_DONE) {
    free(arr);
    return lib_db_err(lib, err, "listing sources");
  }
  *out = arr;
  *n = len;
  return TQ_OK;
}
