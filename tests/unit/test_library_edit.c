/* test_library_edit.c: changing one object piece by piece (edit.c) and the batched writer
 * (writer.c) as the service uses them: ids of attribute rows, sources and tags, edits that
 * keep identity unique, deletes that leave nothing behind, recompute after every change, pages
 * with '%' as the only wildcard, and a writer whose rollback keeps committed batches. */
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h> /* after the headers it needs */

#include <sqlite3.h>

#include "tqhost/library.h"

typedef struct fixture {
  char path[64];
  tq_lib *lib;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->path, sizeof f->path, "/tmp/tq_test_edit_%d.db", (int)getpid());
  unlink(f->path);
  tq_err err;
  if (tq_lib_open(f->path, TQ_LIB_OPEN_CREATE, &f->lib, &err) != TQ_OK) {
    fprintf(stderr, "open: %s\n", err.msg);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tq_lib_close(f->lib);
  char p[80];
  unlink(f->path);
  snprintf(p, sizeof p, "%s-wal", f->path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", f->path);
  unlink(p);
  free(f);
  return 0;
}

static int64_t put(tq_lib *lib, const char *type, const char *value, const char *source) {
  const char *srcs[1] = {source};
  tq_attr_in attrs[2] = {{.name = "Country", .value = "DE"}, {.name = "ASN", .value = "64500"}};
  const char *tags[1] = {"c2"};
  tq_object_in in = {.object_type = type,
                     .value = value,
                     .sources = srcs,
                     .n_sources = source ? 1 : 0,
                     .attrs = attrs,
                     .n_attrs = 2,
                     .tags = tags,
                     .n_tags = 1};
  int64_t id = 0;
  tq_err err;
  assert_int_equal(tq_lib_object_put(lib, &in, &id, NULL, &err), TQ_OK);
  return id;
}

static tq_object *get(tq_lib *lib, int64_t id) {
  tq_object *o = NULL;
  tq_err err;
  assert_int_equal(tq_lib_object_get(lib, id, &o, &err), TQ_OK);
  return o;
}

static void test_rows_carry_ids(void **state) {
  fixture *f = *state;
  int64_t id = put(f->lib, NULL, "198.51.100.1", "Feed");
  tq_object *o = get(f->lib, id);
  assert_int_equal(o->n_attrs, 2);
  assert_true(o->attrs[0].id > 0 && o->attrs[1].id > 0 && o->attrs[0].id != o->attrs[1].id);
  assert_true(o->attrs[0].source_id > 0);
  assert_int_equal(o->n_sources, 1);
  assert_true(o->source_ids[0] > 0);
  assert_int_equal(o->n_tags, 1);
  assert_true(o->tag_ids[0] > 0);
  tq_object_free(o);
}

static void test_attribute_edit_and_delete_by_id(void **state) {
  fixture *f = *state;
  tq_err err;
  int64_t id = put(f->lib, NULL, "198.51.100.2", "Feed");
  int64_t other = put(f->lib, NULL, "198.51.100.3", "Feed");
  tq_object *o = get(f->lib, id);
  int64_t aid = o->attrs[0].id;
  tq_object_free(o);
  assert_int_equal(tq_lib_attribute_edit(f->lib, id, aid, "FR", NULL, 2, &err), TQ_OK);
  o = get(f->lib, id);
  assert_string_equal(o->attrs[0].value, "FR");
  assert_int_equal(o->attrs[0].tlp, 2);
  tq_object_free(o);
  /* the row belongs to id: through another object it is not found */
  assert_int_equal(tq_lib_attribute_edit(f->lib, other, aid, "IT", NULL, -1, &err), TQ_ENOTFOUND);
  assert_int_equal(tq_lib_attribute_delete(f->lib, other, aid, &err), TQ_ENOTFOUND);
  /* a change that duplicates another row is refused */
  tq_attr_in de = {.name = "Country", .value = "DE", .source = "Feed"};
  assert_int_equal(tq_lib_attribute_add(f->lib, id, &de, &err), TQ_OK);
  o = get(f->lib, id);
  int64_t asn = o->attrs[1].id, de_id = o->attrs[2].id;
  assert_string_equal(o->attrs[2].value, "DE");
  tq_object_free(o);
  assert_int_equal(tq_lib_attribute_edit(f->lib, id, de_id, "FR", NULL, -1, &err), TQ_EEXIST);
  assert_int_equal(tq_lib_attribute_delete(f->lib, id, de_id, &err), TQ_OK);
  assert_int_equal(tq_lib_attribute_delete(f->lib, id, aid, &err), TQ_OK);
  assert_int_equal(tq_lib_attribute_delete(f->lib, id, aid, &err), TQ_ENOTFOUND);
  o = get(f->lib, id);
  assert_int_equal(o->n_attrs, 1);
  assert_int_equal(o->attrs[0].id, asn);
  tq_object_free(o);
}

static void test_edit_keeps_identity_unique(void **state) {
  fixture *f = *state;
  tq_err err;
  int64_t a = put(f->lib, NULL, "a.example.com", "Feed");
  put(f->lib, NULL, "b.example.com", "Feed");
  tq_object_edit e;
  tq_object_edit_init(&e);
  e.value = "B.EXAMPLE.COM"; /* canonically b.example.com: taken */
  assert_int_equal(tq_lib_object_edit(f->lib, a, &e, &err), TQ_EEXIST);
  e.value = "C.example.com";
  e.status = "Review";
  e.description = "x'; DROP TABLE objects;--";
  assert_int_equal(tq_lib_object_edit(f->lib, a, &e, &err), TQ_OK);
  tq_object *o = get(f->lib, a);
  assert_string_equal(o->value, "c.example.com");
  assert_int_equal(o->status, TQ_STATUS_REVIEW);
  assert_string_equal(o->description, "x'; DROP TABLE objects;--");
  tq_object_free(o);
  tq_object_edit_init(&e);
  e.status = "Nope";
  assert_int_equal(tq_lib_object_edit(f->lib, a, &e, &err), TQ_EINVAL);
  assert_int_equal(tq_lib_object_edit(f->lib, 99999, &e, &err), TQ_ENOTFOUND);
}

static void test_delete_leaves_nothing(void **state) {
  fixture *f = *state;
  tq_err err;
  int64_t a = put(f->lib, NULL, "203.0.113.5", "Feed");
  int64_t b = put(f->lib, "adversary", "APT 1", "Feed");
  assert_int_equal(tq_lib_link(f->lib, a, b, "Feed", NULL, &err), TQ_OK);
  assert_int_equal(tq_lib_object_delete(f->lib, a, &err), TQ_OK);
  tq_object *o = NULL;
  assert_int_equal(tq_lib_object_get(f->lib, a, &o, &err), TQ_ENOTFOUND);
  o = get(f->lib, b);
  assert_int_equal(o->n_links, 0);
  tq_object_free(o);
  /* the same value again is a new object without the old rows */
  int64_t again = put(f->lib, NULL, "203.0.113.5", NULL);
  o = get(f->lib, again);
  assert_int_equal(o->n_sources, 0);
  assert_int_equal(o->n_attrs, 2);
  tq_object_free(o);
  assert_int_equal(tq_lib_object_delete(f->lib, 424242, &err), TQ_ENOTFOUND);
}

static void test_source_add_remove_recomputes(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_source_opts so;
  tq_source_opts_init(&so);
  so.score = 8;
  assert_int_equal(tq_lib_source_put(f->lib, "Strong", &so, 1, NULL, &err), TQ_OK);
  int64_t id = put(f->lib, NULL, "198.51.100.9", "Weak");
  tq_object *o = get(f->lib, id);
  assert_int_equal(o->score, 0);
  tq_object_free(o);
  assert_int_equal(tq_lib_object_source_add(f->lib, id, "Strong", 1, &err), TQ_OK);
  o = get(f->lib, id);
  assert_int_equal(o->score, 8);
  int64_t strong = 0;
  for (size_t i = 0; i < o->n_sources; i++)
    if (strcmp(o->sources[i], "Strong") == 0) {
      strong = o->source_ids[i];
      assert_int_equal(o->source_tlps[i], 1);
    }
  tq_object_free(o);
  assert_true(strong > 0);
  assert_int_equal(tq_lib_object_source_remove(f->lib, id, strong, &err), TQ_OK);
  o = get(f->lib, id);
  assert_int_equal(o->score, 0);
  assert_int_equal(o->n_sources, 1);
  int64_t tag = o->tag_ids[0];
  tq_object_free(o);
  assert_int_equal(tq_lib_object_source_remove(f->lib, id, strong, &err), TQ_ENOTFOUND);
  assert_int_equal(tq_lib_tag_remove(f->lib, id, tag, &err), TQ_OK);
  assert_int_equal(tq_lib_tag_remove(f->lib, id, tag, &err), TQ_ENOTFOUND);
}

static void test_pages_with_percent_only_wildcard(void **state) {
  fixture *f = *state;
  tq_err err;
  put(f->lib, "report", "Report 100%_done", NULL);
  put(f->lib, "report", "Report 100x done", NULL);
  put(f->lib, "report", "Other", NULL);
  int64_t *ids = NULL, total = 0;
  size_t n = 0;
  assert_int_equal(tq_lib_object_page(f->lib, "report", NULL, 2, 0, &ids, &n, &total, &err), TQ_OK);
  assert_int_equal(n, 2);
  assert_int_equal(total, 3);
  free(ids);
  assert_int_equal(
      tq_lib_object_page(f->lib, "report", "Report 100%", 10, 0, &ids, &n, &total, &err), TQ_OK);
  assert_int_equal(total, 2);
  free(ids);
  assert_int_equal(
      tq_lib_object_page(f->lib, "report", "Report 100%_d%", 10, 0, &ids, &n, &total, &err), TQ_OK);
  assert_int_equal(total, 1); /* '_' is itself, not any character */
  free(ids);
  assert_int_equal(
      tq_lib_object_page(f->lib, "report", "Report 100%_done", 10, 5, &ids, &n, &total, &err),
      TQ_OK);
  assert_int_equal(n, 0);
  free(ids);
  assert_int_equal(tq_lib_object_page(f->lib, "nope", NULL, 10, 0, &ids, &n, &total, &err),
                   TQ_EINVAL);
}

static void test_writer_batches_and_rolls_back(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_lib_writer *w = NULL;
  assert_int_equal(tq_lib_writer_open(f->lib, 3, &w, &err), TQ_OK);
  char v[32];
  for (int i = 0; i < 7; i++) {
    snprintf(v, sizeof v, "192.0.2.%d", i + 1);
    tq_object_in in = {.value = v};
    char *canon = NULL;
    assert_int_equal(tq_lib_writer_put(w, &in, NULL, NULL, &canon, &err), TQ_OK);
    assert_string_equal(canon, v);
    free(canon);
  }
  tq_object_in bad = {.value = "not an ip", .indicator_type = "IP Address"};
  assert_int_equal(tq_lib_writer_put(w, &bad, NULL, NULL, NULL, &err), TQ_EINVAL);
  const tq_lib_writer_stats *st = tq_lib_writer_stats_get(w);
  assert_int_equal(st->added, 7);
  assert_int_equal(st->refused, 1);
  assert_int_equal(st->committed, 6);
  /* closing without commit drops the 7th only: the batches of 3 were committed */
  assert_int_equal(tq_lib_writer_close(w, 0, &err), TQ_OK);
  int64_t n = 0;
  assert_int_equal(tq_lib_count(f->lib, "indicator", &n, &err), TQ_OK);
  assert_int_equal(n, 6);
}

/* A library made before attribute rows had ids (schema 4: attributes WITHOUT ROWID) keeps its
 * attributes through migration 5 and gets ids for them. */
static void test_schema_4_attributes_migrate(void **state) {
  fixture *f = *state;
  int64_t id = put(f->lib, NULL, "198.51.100.77", "Feed");
  tq_lib_close(f->lib);
  f->lib = NULL;
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  const char *v4 =
      "BEGIN;"
      "CREATE TABLE attributes_v4(object_id INTEGER NOT NULL, name TEXT NOT NULL,"
      " value TEXT NOT NULL, source_id INTEGER NOT NULL, tlp INTEGER NOT NULL DEFAULT 0,"
      " created_at INTEGER NOT NULL, PRIMARY KEY(object_id, name, value, source_id))"
      " WITHOUT ROWID;"
      "INSERT INTO attributes_v4 SELECT object_id,name,value,source_id,tlp,created_at"
      " FROM attributes;"
      "DROP TABLE attributes;"
      "ALTER TABLE attributes_v4 RENAME TO attributes;"
      "PRAGMA user_version=4;"
      "COMMIT;";
  assert_int_equal(sqlite3_exec(db, v4, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  tq_err err;
  assert_int_equal(tq_lib_open(f->path, TQ_LIB_OPEN_EXISTING, &f->lib, &err), TQ_OK);
  assert_int_equal(tq_lib_schema_version(f->lib), 6);
  tq_object *o = get(f->lib, id);
  assert_int_equal(o->n_attrs, 2);
  assert_true(o->attrs[0].id > 0 && o->attrs[1].id > 0 && o->attrs[0].id != o->attrs[1].id);
  int64_t aid = o->attrs[0].id;
  tq_object_free(o);
  /* identity still holds: the same attribute again is merged, not doubled */
  put(f->lib, NULL, "198.51.100.77", "Feed");
  o = get(f->lib, id);
  assert_int_equal(o->n_attrs, 2);
  tq_object_free(o);
  assert_int_equal(tq_lib_attribute_delete(f->lib, id, aid, &err), TQ_OK);
}

/* Another part's table that says its rows go with an object (as feed/'s stix_refs does):
 * deleting the object deletes them; a table without ON DELETE CASCADE is left alone. */
static void test_delete_cascades_into_part_tables(void **state) {
  fixture *f = *state;
  tq_err err;
  sqlite3 *db = tq_lib_db(f->lib);
  assert_int_equal(sqlite3_exec(db,
                                "CREATE TABLE part_refs(k TEXT, oid INTEGER NOT NULL"
                                " REFERENCES objects(id) ON DELETE CASCADE);"
                                "CREATE TABLE part_notes(k TEXT, oid INTEGER)",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  int64_t a = put(f->lib, NULL, "198.51.100.7", "Feed");
  int64_t b = put(f->lib, NULL, "198.51.100.8", "Feed");
  char *sql = sqlite3_mprintf("INSERT INTO part_refs VALUES('x',%lld),('y',%lld);"
                              "INSERT INTO part_notes VALUES('x',%lld)",
                              (long long)a, (long long)b, (long long)a);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_free(sql);
  assert_int_equal(tq_lib_object_delete(f->lib, a, &err), TQ_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat(k) FROM part_refs", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "y");
  sqlite3_finalize(st);
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM part_notes", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), 1);
  sqlite3_finalize(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
      T(test_rows_carry_ids),
      T(test_attribute_edit_and_delete_by_id),
      T(test_edit_keeps_identity_unique),
      T(test_delete_leaves_nothing),
      T(test_delete_cascades_into_part_tables),
      T(test_source_add_remove_recomputes),
      T(test_pages_with_percent_only_wildcard),
      T(test_writer_batches_and_rolls_back),
      T(test_schema_4_attributes_migrate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
