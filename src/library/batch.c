/* batch.c: reads and writes for the bulk runner, which handles one object after another at a
 * few thousand a second: here, the object's own row without its lists, one object or a
 * run of them at once. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char HEAD_SQL[] =
    "SELECT o.id, o.type, t.name, t.class, o.value, o.description, o.status, o.score_gen,"
    " o.score_manual, o.score, o.published_at, o.created_at, o.updated_at, o.expires_at,"
    " o.expire_exception FROM objects o LEFT JOIN indicator_types t ON t.id=o.itype_id"
    " WHERE o.id=?1";

#define P8 "?,?,?,?,?,?,?,?,"
static const char HEADS_SQL[] =
    "SELECT o.id, o.type, t.name, t.class, o.value, o.description, o.status, o.score_gen,"
    " o.score_manual, o.score, o.published_at, o.created_at, o.updated_at, o.expires_at,"
    " o.expire_exception FROM objects o LEFT JOIN indicator_types t ON t.id=o.itype_id"
    " WHERE o.id IN (" P8 P8 P8 P8 P8 P8 P8 "?,?,?,?,?,?,?,?)";
#undef P8

static char *col_dup(sqlite3_stmt *st, int i, int *oom) {
  const unsigned char *s = sqlite3_column_text(st, i);
  char *d = s ? strdup((const char *)s) : NULL;
  if (s && d == NULL)
    *oom = 1;
  return d;
}

/* The object of the row st is on, without its lists; NULL when out of memory. */
static tq_object *head_of(sqlite3_stmt *st) {
  tq_object *o = calloc(1, sizeof *o);
  if (o == NULL)
    return NULL;
  int oom = 0;
  o->id = sqlite3_column_int64(st, 0);
  o->object_type = col_dup(st, 1, &oom);
  o->indicator_type = col_dup(st, 2, &oom);
  o->indicator_class = col_dup(st, 3, &oom);
  o->value = col_dup(st, 4, &oom);
  o->description = col_dup(st, 5, &oom);
  o->status = sqlite3_column_int(st, 6);
  o->score_generated = sqlite3_column_double(st, 7);
  o->score_manual = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 8);
  o->score = sqlite3_column_int(st, 9);
  o->published_at = sqlite3_column_int64(st, 10);
  o->created_at = sqlite3_column_int64(st, 11);
  o->updated_at = sqlite3_column_int64(st, 12);
  o->expires_at = sqlite3_column_int64(st, 13);
  o->expire_exception = sqlite3_column_int64(st, 14);
  if (oom || o->object_type == NULL || o->value == NULL) {
    tq_object_free(o);
    return NULL;
  }
  return o;
}

tq_code tq_lib_object_head(tq_lib *lib, int64_t id, tq_object **out, tq_err *err) {
  sqlite3_stmt *st = lib_stmt_sql(lib, HEAD_SQL, err);
  if (st == NULL)
    return err && err->code ? err->code : TQ_EDB;
  sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st);
  tq_code rc = TQ_OK;
  if (step == SQLITE_ROW) {
    if ((*out = head_of(st)) == NULL)
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory reading object %lld", (long long)id);
  } else if (step == SQLITE_DONE) {
    rc = tq_err_set(err, TQ_ENOTFOUND, "no object with id %lld", (long long)id);
  } else {
    rc = lib_db_err(lib, err, "reading an object");
  }
  sqlite3_reset(st); /* a statement left on a row would hold a read transaction open */
  return rc;
}

static int by_id(const void *x, const void *y) {
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return a < b ? -1 : a > b;
}

tq_code tq_lib_object_heads(tq_lib *lib, const int64_t *ids, size_t n, tq_object **out,
                            tq_err *err) {
  memset(out, 0, n * sizeof *out);
  if (n > TQ_LIB_HEADS_MAX)
    return tq_err_set(err, TQ_EINVAL, "object heads: %zu ids, over %d", n, TQ_LIB_HEADS_MAX);
  sqlite3_stmt *st = lib_stmt_sql(lib, HEADS_SQL, err);
  if (st == NULL)
    return err && err->code ? err->code : TQ_EDB;
  for (size_t i = 0; i < n; i++)
    sqlite3_bind_int64(st, (int)i + 1, ids[i]);
  int step;
  tq_code rc = TQ_OK;
  while (rc == TQ_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    const int64_t *at = bsearch(&id, ids, n, sizeof *ids, by_id);
    if (at == NULL || out[at - ids])
      continue;
    if ((out[at - ids] = head_of(st)) == NULL)
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory reading object %lld", (long long)id);
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = lib_db_err(lib, err, "reading objects");
  sqlite3_reset(st);
  if (rc != TQ_OK) {
    for (size_t i = 0; i < n; i++) {
      tq_object_free(out[i]);
      out[i] = NULL;
    }
  }
  return rc;
}
