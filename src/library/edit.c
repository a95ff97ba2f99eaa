/* edit.c: changing and removing what an object holds, one piece at a time (what the service's
 * routes do): its own fields (value, type, status, description), one attribute row, one
 * source, one tag; deleting an object whole; listing objects of a type a page at a time.
 * Each write runs in the caller's transaction when one is open, else in its own, and touches
 * the object so that its score and expiration are recomputed at commit. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A statement prepared for one use (these writes are rare: no cache slot), after the queued
 * rows are written so that it sees them. */
static sqlite3_stmt *one_stmt(tq_lib *lib, const char *sql, tq_err *err) {
  if (lib->queued && lib_queues_settle(lib, err) != TQ_OK)
    return NULL;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lib->db, sql, -1, &st, NULL) != SQLITE_OK) {
    lib_db_err(lib, err, "preparing a statement");
    sqlite3_finalize(st);
    return NULL;
  }
  return st;
}

/* Runs sql bound to up to three integers (n of them); *changes (may be NULL) gets the rows
 * changed. */
static tq_code run_ints(tq_lib *lib, const char *sql, const int64_t *v, int n, int64_t *changes,
                        tq_err *err) {
  sqlite3_stmt *st = one_stmt(lib, sql, err);
  if (st == NULL)
    return TQ_EDB;
  for (int i = 0; i < n; i++)
    sqlite3_bind_int64(st, i + 1, v[i]);
  tq_code rc = TQ_OK;
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = lib_db_err(lib, err, "writing an object");
  else if (changes)
    *changes = sqlite3_changes64(lib->db);
  sqlite3_finalize(st);
  return rc;
}

/* The object's type (malloc'd into *type, may be NULL) and whether it exists. */
static tq_code object_type_of(tq_lib *lib, int64_t id, char **type, tq_err *err) {
  sqlite3_stmt *st = one_stmt(lib, "SELECT type FROM objects WHERE id=?1", err);
  if (st == NULL)
    return TQ_EDB;
  sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st);
  tq_code rc = TQ_OK;
  if (step == SQLITE_ROW) {
    if (type && (*type = strdup((const char *)sqlite3_column_text(st, 0))) == NULL)
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  } else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no object with id %lld", (long long)id);
  else
    rc = lib_db_err(lib, err, "reading an object");
  sqlite3_finalize(st);
  return rc;
}

/* Begins (a savepoint inside an open transaction), runs fn, commits or rolls back. */
#define IN_TX(lib, err, body)                                                                      \
  do {                                                                                             \
    tq_code rc_ = tq_lib_begin(lib, err);                                                          \
    if (rc_ != TQ_OK)                                                                              \
      return rc_;                                                                                  \
    rc_ = (body);                                                                                  \
    if (rc_ != TQ_OK) {                                                                            \
      tq_lib_rollback(lib);                                                                        \
      return rc_;                                                                                  \
    }                                                                                              \
    return tq_lib_commit(lib, err);                                                                \
  } while (0)

void tq_object_edit_init(tq_object_edit *e) { memset(e, 0, sizeof *e); }

static tq_code edit_in_tx(tq_lib *lib, int64_t id, const tq_object_edit *e, tq_err *err) {
  char *type = NULL, *canonical = NULL;
  tq_code rc = object_type_of(lib, id, &type, err);
  if (rc != TQ_OK)
    return rc;
  int status = 0;
  if (e->status && (status = tq_lib_status_from_name(e->status)) == 0)
    rc = tq_err_set(err, TQ_EINVAL,
                    "status '%s' is not one of Active, Expired, Indirect, Review, Whitelisted",
                    e->status);
  if (rc == TQ_OK)
    rc = lib_text_check("description", e->description, TQ_LIB_MAX_DESCRIPTION, err);
  if (rc == TQ_OK)
    rc = lib_text_check("value", e->value, TQ_LIB_MAX_VALUE, err);
  if (rc == TQ_OK && e->indicator_type && strcmp(type, "indicator") != 0)
    rc = tq_err_set(err, TQ_EINVAL, "type: a %s has no indicator type", type);
  int64_t itype_id = -1;
  if (rc == TQ_OK && (e->value || e->indicator_type)) {
    /* a new identity: the current one fills what is not given */
    sqlite3_stmt *st = one_stmt(lib,
                                "SELECT o.value, t.name FROM objects o LEFT JOIN indicator_types t"
                                " ON t.id=o.itype_id WHERE o.id=?1",
                                err);
    if (st == NULL)
      rc = TQ_EDB;
    else {
      sqlite3_bind_int64(st, 1, id);
      if (sqlite3_step(st) != SQLITE_ROW)
        rc = lib_db_err(lib, err, "reading an object");
      else if (strcmp(type, "indicator") == 0) {
        const char *v = e->value ? e->value : (const char *)sqlite3_column_text(st, 0);
        const char *t =
            e->indicator_type ? e->indicator_type : (const char *)sqlite3_column_text(st, 1);
        const char *canon = NULL;
        rc = lib_indicator_identity(t, v, &canon, &canonical, err);
        if (rc == TQ_OK)
          itype_id = lib_itype_id(canon);
      } else if (*e->value == '\0') {
        rc = tq_err_set(err, TQ_EINVAL, "empty %s value", type);
      } else if ((canonical = strdup(e->value)) == NULL) {
        rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
      } else {
        itype_id = 0;
      }
      sqlite3_finalize(st);
    }
  }
  sqlite3_stmt *st = NULL;
  if (rc == TQ_OK) {
    st = one_stmt(lib,
                  "UPDATE objects SET value=coalesce(?2,value),"
                  " itype_id=CASE WHEN ?3 >= 0 THEN ?3 ELSE itype_id END,"
                  " status=coalesce(?4,status), description=coalesce(?5,description),"
                  " updated_at=?6, rev=rev+1 WHERE id=?1",
                  err);
    if (st == NULL)
      rc = TQ_EDB;
  }
  if (rc == TQ_OK) {
    sqlite3_bind_int64(st, 1, id);
    if (canonical)
      sqlite3_bind_text(st, 2, canonical, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, itype_id);
    if (status)
      sqlite3_bind_int(st, 4, status);
    if (e->description)
      sqlite3_bind_text(st, 5, e->description, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, tq_time_now());
    int step = sqlite3_step(st);
    if (step != SQLITE_DONE && (sqlite3_errcode(lib->db) & 0xff) == SQLITE_CONSTRAINT)
      rc = tq_err_set(err, TQ_EEXIST, "value: another %s '%s' exists already", type, canonical);
    else if (step != SQLITE_DONE)
      rc = lib_db_err(lib, err, "updating an object");
  }
  sqlite3_finalize(st);
  if (rc == TQ_OK)
    rc = lib_touch(lib, id, err);
  free(type);
  free(canonical);
  return rc;
}

tq_code tq_lib_object_edit(tq_lib *lib, int64_t id, const tq_object_edit *e, tq_err *err) {
  IN_TX(lib, err, edit_in_tx(lib, id, e, err));
}

/* The rows other parts keep about an object (feed/'s stix_refs, ...): every table whose
 * foreign key names objects(id) with ON DELETE CASCADE. The library does not know those
 * tables; their DDL says what goes with an object, and foreign_keys stays off (old rows of
 * other tables may not satisfy theirs), so the cascade is done here. */
static tq_code delete_part_rows(tq_lib *lib, int64_t id, tq_err *err) {
  sqlite3_stmt *st = one_stmt(lib,
                              "SELECT m.name, f.\"from\" FROM sqlite_schema m,"
                              " pragma_foreign_key_list(m.name) f WHERE m.type='table'"
                              " AND f.\"table\"='objects' AND f.on_delete='CASCADE'",
                              err);
  if (st == NULL)
    return TQ_EDB;
  tq_code rc = TQ_OK;
  int step;
  while (rc == TQ_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
    char *sql = sqlite3_mprintf("DELETE FROM \"%w\" WHERE \"%w\"=?1",
                                (const char *)sqlite3_column_text(st, 0),
                                (const char *)sqlite3_column_text(st, 1));
    if (sql == NULL)
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory deleting object %lld", (long long)id);
    else
      rc = run_ints(lib, sql, &id, 1, NULL, err);
    sqlite3_free(sql);
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = lib_db_err(lib, err, "reading the tables that refer to objects");
  sqlite3_finalize(st);
  return rc;
}

static tq_code delete_in_tx(tq_lib *lib, int64_t id, tq_err *err) {
  static const char *const SQL[] = {
      "DELETE FROM link_attributes WHERE link_id IN (SELECT id FROM links WHERE a=?1 OR b=?1)",
      "DELETE FROM links WHERE a=?1 OR b=?1",
      "DELETE FROM attributes WHERE object_id=?1",
      "DELETE FROM object_sources WHERE object_id=?1",
      "DELETE FROM object_tags WHERE object_id=?1",
      "DELETE FROM temp.touched WHERE id=?1",
      "DELETE FROM objects WHERE id=?1",
  };
  tq_code rc = object_type_of(lib, id, NULL, err);
  if (rc == TQ_OK)
    rc = delete_part_rows(lib, id, err);
  for (size_t i = 0; rc == TQ_OK && i < sizeof SQL / sizeof SQL[0]; i++)
    rc = run_ints(lib, SQL[i], &id, 1, NULL, err);
  return rc;
}

tq_code tq_lib_object_delete(tq_lib *lib, int64_t id, tq_err *err) {
  IN_TX(lib, err, delete_in_tx(lib, id, err));
}

static tq_code attr_edit_in_tx(tq_lib *lib, int64_t object_id, int64_t attr_id, const char *value,
                               const char *source, int tlp, tq_err *err) {
  tq_code rc = object_type_of(lib, object_id, NULL, err);
  int64_t sid = 0;
  if (rc == TQ_OK)
    rc = lib_text_check("attribute value", value, TQ_LIB_MAX_ATTR_VALUE, err);
  if (rc == TQ_OK && (tlp < -1 || tlp > 4))
    rc = tq_err_set(err, TQ_EINVAL, "tlp %d is not 0..4", tlp);
  if (rc == TQ_OK && source)
    rc = lib_source_id(lib, source, NULL, &sid, err);
  sqlite3_stmt *st = NULL;
  if (rc == TQ_OK && (st = one_stmt(lib,
                                    "UPDATE attributes SET value=coalesce(?3,value),"
                                    " source_id=CASE WHEN ?4 > 0 THEN ?4 ELSE source_id END,"
                                    " tlp=CASE WHEN ?5 >= 0 THEN ?5 ELSE tlp END"
                                    " WHERE id=?2 AND object_id=?1",
                                    err)) == NULL)
    rc = TQ_EDB;
  if (rc == TQ_OK) {
    sqlite3_bind_int64(st, 1, object_id);
    sqlite3_bind_int64(st, 2, attr_id);
    if (value)
      sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, sid);
    sqlite3_bind_int(st, 5, tlp);
    int step = sqlite3_step(st);
    if (step != SQLITE_DONE && (sqlite3_errcode(lib->db) & 0xff) == SQLITE_CONSTRAINT)
      rc = tq_err_set(err, TQ_EEXIST, "the object has this attribute from this source already");
    else if (step != SQLITE_DONE)
      rc = lib_db_err(lib, err, "updating an attribute");
    else if (sqlite3_changes64(lib->db) == 0)
      rc = tq_err_set(err, TQ_ENOTFOUND, "object %lld has no attribute %lld", (long long)object_id,
                      (long long)attr_id);
  }
  sqlite3_finalize(st);
  if (rc == TQ_OK)
    rc = lib_touch(lib, object_id, err);
  return rc;
}

tq_code tq_lib_attribute_edit(tq_lib *lib, int64_t object_id, int64_t attr_id, const char *value,
                              const char *source, int tlp, tq_err *err) {
  IN_TX(lib, err, attr_edit_in_tx(lib, object_id, attr_id, value, source, tlp, err));
}

/* Deletes the row (table, key column) id of object_id, TQ_ENOTFOUND naming what when none. */
static tq_code remove_in_tx(tq_lib *lib, const char *sql, int64_t object_id, int64_t id,
                            const char *what, tq_err *err) {
  tq_code rc = object_type_of(lib, object_id, NULL, err);
  int64_t v[2] = {object_id, id}, n = 0;
  if (rc == TQ_OK)
    rc = run_ints(lib, sql, v, 2, &n, err);
  if (rc == TQ_OK && n == 0)
    rc = tq_err_set(err, TQ_ENOTFOUND, "object %lld has no %s %lld", (long long)object_id, what,
                    (long long)id);
  if (rc == TQ_OK)
    rc = lib_touch(lib, object_id, err);
  return rc;
}

tq_code tq_lib_attribute_delete(tq_lib *lib, int64_t object_id, int64_t attr_id, tq_err *err) {
  IN_TX(lib, err,
        remove_in_tx(lib, "DELETE FROM attributes WHERE object_id=?1 AND id=?2", object_id, attr_id,
                     "attribute", err));
}

tq_code tq_lib_object_source_remove(tq_lib *lib, int64_t object_id, int64_t source_id,
                                    tq_err *err) {
  IN_TX(lib, err,
        remove_in_tx(lib, "DELETE FROM object_sources WHERE object_id=?1 AND source_id=?2",
                     object_id, source_id, "source", err));
}

tq_code tq_lib_tag_remove(tq_lib *lib, int64_t object_id, int64_t tag_id, tq_err *err) {
  IN_TX(lib, err,
        remove_in_tx(lib, "DELETE FROM object_tags WHERE object_id=?1 AND tag_id=?2", object_id,
                     tag_id, "tag", err));
}

static tq_code source_add_in_tx(tq_lib *lib, int64_t object_id, const char *name, int tlp,
                                tq_err *err) {
  int64_t sid = 0;
  tq_code rc = object_type_of(lib, object_id, NULL, err);
  if (rc == TQ_OK && (tlp < 0 || tlp > 4))
    rc = tq_err_set(err, TQ_EINVAL, "tlp %d is not 0..4", tlp);
  if (rc == TQ_OK)
    rc = lib_source_id(lib, name, NULL, &sid, err);
  if (rc == TQ_OK) {
    tq_lib_cell row[4] = {{.i = object_id}, {.i = sid}, {.i = tq_time_now()}, {.i = tlp}};
    rc = lib_queue_row(lib, LQ_SOURCES, row, err);
  }
  if (rc == TQ_OK)
    rc = lib_touch(lib, object_id, err);
  return rc;
}

tq_code tq_lib_object_source_add(tq_lib *lib, int64_t object_id, const char *name, int tlp,
                                 tq_err *err) {
  IN_TX(lib, err, source_add_in_tx(lib, object_id, name, tlp, err));
}

tq_code tq_lib_object_page(tq_lib *lib, const char *type, const char *value, int64_t limit,
                           int64_t offset, int64_t **ids, size_t *n, int64_t *total, tq_err *err) {
  *ids = NULL;
  *n = 0;
  *total = 0;
  if (!tq_lib_object_type_valid(type))
    return tq_err_set(err, TQ_EINVAL, "'%s' is not an object type", type);
  int like = value && strchr(value, '%') != NULL;
  char *pattern = NULL;
  if (like) { /* '%' is the wildcard; '_' and '\' stand for themselves */
    pattern = malloc(strlen(value) * 2 + 1);
    if (pattern == NULL)
      return tq_err_set(err, TQ_ENOMEM, "out of memory");
    char *p = pattern;
    for (const char *s = value; *s; s++) {
      if (*s == '_' || *s == '\\')
        *p++ = '\\';
      *p++ = *s;
    }
    *p = '\0';
  }
  const char *where = !value ? "type=?1"
                      : like ? "type=?1 AND value LIKE ?2 ESCAPE '\\'"
                             : "type=?1 AND value=?2";
  char sql[2][256];
  snprintf(sql[0], sizeof sql[0], "SELECT count(*) FROM objects WHERE %s", where);
  snprintf(sql[1], sizeof sql[1], "SELECT id FROM objects WHERE %s ORDER BY id LIMIT ?3 OFFSET ?4",
           where);
  tq_code rc = TQ_OK;
  size_t cap = 0;
  for (int q = 0; q < 2 && rc == TQ_OK; q++) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(lib->db, sql[q], -1, &st, NULL) != SQLITE_OK) {
      rc = lib_db_err(lib, err, "listing objects");
      break;
    }
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    if (value)
      sqlite3_bind_text(st, 2, like ? pattern : value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, limit);
    sqlite3_bind_int64(st, 4, offset);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
      if (q == 0) {
        *total = sqlite3_column_int64(st, 0);
        continue;
      }
      if (*n == cap) {
        cap = cap ? cap * 2 : 64;
        int64_t *v = realloc(*ids, cap * sizeof *v);
        if (v == NULL) {
          rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
          break;
        }
        *ids = v;
      }
      (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    if (rc == TQ_OK && step != SQLITE_DONE)
      rc = lib_db_err(lib, err, "listing objects");
    sqlite3_finalize(st);
  }
  free(pattern);
  if (rc != TQ_OK) {
    free(*ids);
    *ids = NULL;
    *n = 0;
  }
  return rc;
}
