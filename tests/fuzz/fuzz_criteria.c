/* fuzz_criteria.c: libFuzzer harness for the criteria compiler (library/criteria.c): any
 * input compiles or is refused with TQ_EINVAL naming a place; whatever compiles is ONE valid
 * SQL expression whose '?' match the parameters, and runs against a small library. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/library.h"

static tq_lib *lib;

static void setup(void) {
  tq_err err;
  if (tq_lib_open(":memory:", TQ_LIB_OPEN_CREATE, &lib, &err) != TQ_OK) {
    fprintf(stderr, "%s\n", err.msg);
    abort();
  }
  const char *values[] = {"1.2.3.4", "evil.com", "a_b.example.com", "b.example.org"};
  const char *src = "Feed";
  const char *tag = "apt";
  tq_attr_in attr = {"Country", "RU", NULL, 0};
  for (size_t i = 0; i < 4; i++) {
    tq_object_in in = {0};
    in.value = values[i];
    in.sources = &src;
    in.n_sources = 1;
    in.tags = &tag;
    in.n_tags = i % 2;
    in.attrs = &attr;
    in.n_attrs = i % 2;
    if (tq_lib_object_put(lib, &in, NULL, NULL, &err) != TQ_OK) {
      fprintf(stderr, "%s\n", err.msg);
      abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (lib == NULL)
    setup();
  tq_criteria *c = NULL;
  char where[256];
  tq_err err;
  tq_code rc = tq_criteria_compile((const char *)data, size, &c, where, sizeof where, &err);
  if (rc != TQ_OK) {
    /* Refused: EINVAL (or ENOMEM), the message starting with the place. */
    if (c != NULL || (rc != TQ_EINVAL && rc != TQ_ENOMEM))
      abort();
    if (rc == TQ_EINVAL && (where[0] == '\0' || strncmp(err.msg, where, strlen(where)) != 0))
      abort();
    return 0;
  }
  int64_t *ids = NULL, total = 0;
  size_t n = 0;
  if (tq_lib_criteria_ids(lib, c, NULL, NULL, 0, 10, 0, &ids, &n, &total, &err) != TQ_OK) {
    fprintf(stderr, "compiled SQL failed: %s\n%s\n", err.msg, tq_criteria_sql(c));
    abort();
  }
  if ((int64_t)n > total || total > 4)
    abort();
  /* The page as planned (terms probed and rewritten) is the page of the plain SQL. */
  sqlite3_stmt *pl = NULL;
  char *plain = NULL;
  if (asprintf(&plain, "SELECT o.id FROM objects o WHERE o.type='indicator' AND %s ORDER BY o.id",
               tq_criteria_sql(c)) < 0 ||
      sqlite3_prepare_v2(tq_lib_db(lib), plain, -1, &pl, NULL) != SQLITE_OK)
    abort();
  tq_criteria_bind(c, pl, 1);
  size_t k = 0;
  while (sqlite3_step(pl) == SQLITE_ROW) {
    if (k >= n || ids[k] != sqlite3_column_int64(pl, 0))
      abort();
    k++;
  }
  if (k != n)
    abort();
  sqlite3_finalize(pl);
  free(plain);
  free(ids);
  /* The parameters are exactly the '?' of the expression. */
  sqlite3_stmt *st = NULL;
  char *sql = NULL;
  if (asprintf(&sql, "SELECT 1 FROM objects o WHERE %s", tq_criteria_sql(c)) < 0)
    abort();
  if (sqlite3_prepare_v2(tq_lib_db(lib), sql, -1, &st, NULL) != SQLITE_OK ||
      (size_t)sqlite3_bind_parameter_count(st) != tq_criteria_params(c))
    abort();
  sqlite3_finalize(st);
  free(sql);
  tq_criteria_free(c);
  return 0;
}
