/* batch.c: reads for the bulk runner, which handles one object after another at a
 * few thousand a second: here, the object's own row without its lists, one object or a
 * run of them at once. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define P8 "?,?,?,?,?,?,?,?,"
static const char HEADS_SQL[] =
    LIB_OBJECT_ROW " WHERE o.id IN (" P8 P8 P8 P8 P8 P8 P8 "?,?,?,?,?,?,?,?)";
#undef P8

/* The object of the row st is on, without its lists; NULL when out of memory. */
static tq_object *head_of(sqlite3_stmt *st) {
  tq_object *o = calloc(1, sizeof *o);
  if (o != NULL && lib_object_row(st, o)) {
    tq_object_free(o);
    o = NULL;
  }
  return o;
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

tq_code tq_lib_object_head(tq_lib *lib, int64_t id, tq_object **out, tq_err *err) {
  tq_code rc = tq_lib_object_heads(lib, &id, 1, out, err);
  if (rc == TQ_OK && *out == NULL)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no object with id %lld", (long long)id);
  return rc;
}
