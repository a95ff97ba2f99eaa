/* test_collection_edit.c (uicoll): a data collection edited in place (tq_lib_collection_update:
 * the id kept, the name and the query each optional, a taken name or an unknown id refused with
 * nothing written, a name with SQL metacharacters stored as it is) and capped counts
 * (tq_lib_collection_count: exact under the cap, the cap and "capped" over it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h> /* after the headers it needs */

#include "tqhost/library.h"

static tq_lib *open_with(int n_a, int n_b) {
  tq_lib *lib = NULL;
  tq_err err;
  assert_int_equal(tq_lib_open(":memory:", TQ_LIB_OPEN_CREATE, &lib, &err), TQ_OK);
  for (int i = 0; i < n_a + n_b; i++) {
    char v[32];
    snprintf(v, sizeof v, "10.9.%d.%d", i / 250, i % 250 + 1);
    const char *src = i < n_a ? "A" : "B";
    tq_object_in in = {0};
    in.value = v;
    in.sources = &src;
    in.n_sources = 1;
    int64_t id = 0;
    if (tq_lib_object_put(lib, &in, &id, NULL, &err) != TQ_OK)
      fail_msg("put %s: %s", v, err.msg);
  }
  return lib;
}

static int64_t save(tq_lib *lib, const char *name, const char *doc) {
  tq_query q;
  tq_err err;
  tq_query_init(&q);
  q.criteria = strdup(doc);
  assert_int_equal(tq_lib_collection_put(lib, name, &q, 1, &err), TQ_OK);
  tq_query_free(&q);
  tq_collection_row *rows = NULL;
  size_t n = 0;
  int64_t id = 0;
  assert_int_equal(tq_lib_collection_rows(lib, 0, &rows, &n, &err), TQ_OK);
  for (size_t i = 0; i < n; i++)
    if (strcmp(rows[i].name, name) == 0)
      id = rows[i].id;
  tq_collection_rows_free(rows, n);
  assert_true(id > 0);
  return id;
}

static int64_t count(tq_lib *lib, const char *name, int64_t cap, int *capped) {
  tq_collection_row *rows = NULL;
  size_t n = 0;
  tq_err err;
  assert_int_equal(tq_lib_collection_rows(lib, 0, &rows, &n, &err), TQ_OK);
  int64_t c = -1;
  for (size_t i = 0; i < n; i++)
    if (strcmp(rows[i].name, name) == 0 &&
        tq_lib_collection_count(lib, rows[i].query, cap, 0, &c, capped, &err) != TQ_OK)
      fail_msg("count %s: %s", name, err.msg);
  tq_collection_rows_free(rows, n);
  return c;
}

static void test_update_in_place(void **state) {
  (void)state;
  tq_lib *lib = open_with(7, 3);
  tq_err err;
  int64_t a = save(lib, "ca", "{\"criteria\":{\"source\":\"A\"}}");
  save(lib, "cb", "{\"criteria\":{\"source\":\"B\"}}");
  int capped = -1;
  assert_int_equal(count(lib, "ca", 1000, &capped), 7);
  assert_int_equal(capped, 0);

  /* New criteria: the same id and name, the new count; a cursor over it walks them. */
  tq_query q;
  tq_query_init(&q);
  q.criteria = strdup("{\"criteria\":{\"source\":\"B\"}}");
  assert_int_equal(tq_lib_collection_update(lib, a, NULL, &q, &err), TQ_OK);
  tq_query_free(&q);
  assert_int_equal(count(lib, "ca", 1000, &capped), 3);
  tq_collection_row *rows = NULL;
  size_t n = 0;
  assert_int_equal(tq_lib_collection_rows(lib, a, &rows, &n, &err), TQ_OK);
  assert_string_equal(rows[0].name, "ca");
  tq_collection_rows_free(rows, n);
  assert_int_equal(tq_lib_collection_get(lib, "ca", &q, &err), TQ_OK);
  int64_t total = 0;
  assert_int_equal(tq_lib_query_count(lib, &q, &total, &err), TQ_OK);
  assert_int_equal(total, 3);
  tq_query_free(&q);

  /* Refusals, nothing written: a taken name, an unknown id, bad criteria, nothing to change,
   * an empty name, a control character. */
  assert_int_equal(tq_lib_collection_update(lib, a, "cb", NULL, &err), TQ_EEXIST);
  assert_int_equal(tq_lib_collection_update(lib, 9999, "zz", NULL, &err), TQ_ENOTFOUND);
  q.criteria = strdup("{\"criteria\":{\"nope\":1}}");
  assert_int_equal(tq_lib_collection_update(lib, a, "other", &q, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "criteria.nope"));
  tq_query_free(&q);
  assert_int_equal(tq_lib_collection_update(lib, a, NULL, NULL, &err), TQ_EINVAL);
  assert_int_equal(tq_lib_collection_update(lib, a, "", NULL, &err), TQ_EINVAL);
  assert_int_equal(tq_lib_collection_update(lib, a, "a\001b", NULL, &err), TQ_EINVAL);
  assert_int_equal(tq_lib_collection_rows(lib, a, &rows, &n, &err), TQ_OK);
  assert_string_equal(rows[0].name, "ca");
  assert_non_null(strstr(rows[0].query, "\"B\""));
  tq_collection_rows_free(rows, n);

  /* A name with SQL metacharacters is only a name. */
  const char *meta = "x'\"; DROP TABLE collections;--%_\\";
  assert_int_equal(tq_lib_collection_update(lib, a, meta, NULL, &err), TQ_OK);
  assert_int_equal(tq_lib_collection_get(lib, meta, &q, &err), TQ_OK);
  tq_query_free(&q);
  assert_int_equal(count(lib, meta, 1000, &capped), 3);
  assert_int_equal(count(lib, "cb", 1000, &capped), 3);
  tq_lib_close(lib);
}

static void test_count_capped(void **state) {
  (void)state;
  tq_lib *lib = open_with(40, 0);
  save(lib, "all", "{\"criteria\":{\"source\":\"A\"}}");
  int capped = -1;
  assert_int_equal(count(lib, "all", 40, &capped), 40); /* exactly the cap: not capped */
  assert_int_equal(capped, 0);
  assert_int_equal(count(lib, "all", 39, &capped), 39);
  assert_int_equal(capped, 1);
  assert_int_equal(count(lib, "all", 1, &capped), 1);
  assert_int_equal(capped, 1);
  int64_t c = 0;
  tq_err err;
  const char *all = "{\"object_type\":\"indicator\"}";
  assert_int_equal(tq_lib_collection_count(lib, all, 0, 0, &c, &capped, &err), TQ_EINVAL);
  assert_int_not_equal(tq_lib_collection_count(lib, "{not json", 10, 0, &c, &capped, &err), TQ_OK);
  /* In time: a deadline far off counts; one passed is TQ_ETIMEOUT with nothing counted. */
  assert_int_equal(tq_lib_collection_count(lib, all, 100, tq_mono_ms() + 60000, &c, &capped, &err),
                   TQ_OK);
  assert_int_equal(c, 40);
  assert_int_equal(tq_lib_collection_count(lib, all, 100, tq_mono_ms() - 1, &c, &capped, &err),
                   TQ_ETIMEOUT);
  assert_int_equal(c, 0);
  tq_lib_close(lib);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_update_in_place),
      cmocka_unit_test(test_count_capped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
