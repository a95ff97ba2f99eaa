/* read.c: reading one object whole: its row, sources, attributes, tags and links. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static char *col_dup(sqlite3_stmt *st, int i) {
  const unsigned char *s = sqlite3_column_text(st, i);
  return s ? strdup((const char *)s) : NULL;
}

/* Runs the cached statement sid bound to id and calls row(st, obj) per row; row returns
 * non-zero on ENOMEM. */
static tq_code each_row(tq_lib *lib, lib_stmt_id sid, int64_t id, tq_object *obj,
                        int (*row)(sqlite3_stmt *, tq_object *), tq_err *err) {
  sqlite3_stmt *st = lib_stmt(lib, sid, err);
  if (st == NULL)
    return TQ_EDB;
  sqlite3_bind_int64(st, 1, id);
  int step;
  tq_code rc = TQ_OK;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (row(st, obj)) {
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory reading object %lld", (long long)id);
      break;
    }
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = lib_db_err(lib, err, "reading an object");
  sqlite3_reset(st);
  return rc;
}

/* Grows *arr (of elements of size sz) to hold one more than n. */
static int grow(void **arr, size_t n, size_t sz) {
  if ((n & (n - 1)) != 0 && n != 0)
    return 0; /* capacity is the next power of two: room left */
  size_t cap = n ? n * 2 : 4;
  void *p = realloc(*arr, cap * sz);
  if (p == NULL)
    return 1;
  *arr = p;
  return 0;
}

static int row_source(sqlite3_stmt *st, tq_object *o) {
  if (grow((void **)&o->sources, o->n_sources, sizeof(char *)) ||
      grow((void **)&o->source_ids, o->n_sources, sizeof(int64_t)) ||
      grow((void **)&o->source_tlps, o->n_sources, sizeof(int)))
    return 1;
  o->source_ids[o->n_sources] = sqlite3_column_int64(st, 1);
  o->source_tlps[o->n_sources] = sqlite3_column_int(st, 2);
  o->sources[o->n_sources] = col_dup(st, 0);
  return o->sources[o->n_sources++] == NULL;
}

static int row_tag(sqlite3_stmt *st, tq_object *o) {
  if (grow((void **)&o->tags, o->n_tags, sizeof(char *)) ||
      grow((void **)&o->tag_ids, o->n_tags, sizeof(int64_t)))
    return 1;
  o->tag_ids[o->n_tags] = sqlite3_column_int64(st, 1);
  o->tags[o->n_tags] = col_dup(st, 0);
  return o->tags[o->n_tags++] == NULL;
}

static int row_attr(sqlite3_stmt *st, tq_object *o) {
  if (grow((void **)&o->attrs, o->n_attrs, sizeof(tq_attr)))
    return 1;
  tq_attr *a = &o->attrs[o->n_attrs++];
  a->name = col_dup(st, 0);
  a->value = col_dup(st, 1);
  a->source = col_dup(st, 2);
  a->tlp = sqlite3_column_int(st, 3);
  a->id = sqlite3_column_int64(st, 4);
  a->source_id = sqlite3_column_int64(st, 5);
  return a->name == NULL || a->value == NULL || a->source == NULL;
}

static int row_link(sqlite3_stmt *st, tq_object *o) {
  if (grow((void **)&o->links, o->n_links, sizeof(tq_link)))
    return 1;
  tq_link *l = &o->links[o->n_links++];
  memset(l, 0, sizeof *l);
  l->id = sqlite3_column_int64(st, 0);
  l->other_id = sqlite3_column_int64(st, 1);
  l->other_type = col_dup(st, 2);
  l->other_value = col_dup(st, 3);
  l->other_indicator_type = col_dup(st, 4);
  const unsigned char *lt = sqlite3_column_text(st, 5);
  l->link_type = lt && *lt ? strdup((const char *)lt) : NULL;
  l->source = col_dup(st, 6);
  return l->other_type == NULL || l->other_value == NULL || l->source == NULL;
}

int lib_object_row(sqlite3_stmt *st, tq_object *o) {
  o->id = sqlite3_column_int64(st, 0);
  o->object_type = col_dup(st, 1);
  o->indicator_type = col_dup(st, 2);
  o->indicator_class = col_dup(st, 3);
  o->value = col_dup(st, 4);
  o->description = col_dup(st, 5);
  o->status = sqlite3_column_int(st, 6);
  o->score_generated = sqlite3_column_double(st, 7);
  o->score_manual = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 8);
  o->score = sqlite3_column_int(st, 9);
  o->published_at = sqlite3_column_int64(st, 10);
  o->created_at = sqlite3_column_int64(st, 11);
  o->updated_at = sqlite3_column_int64(st, 12);
  o->expires_at = sqlite3_column_int64(st, 13);
  o->expire_exception = sqlite3_column_int64(st, 14);
  int oom = (sqlite3_column_type(st, 2) != SQLITE_NULL && o->indicator_type == NULL) ||
            (sqlite3_column_type(st, 3) != SQLITE_NULL && o->indicator_class == NULL) ||
            (sqlite3_column_type(st, 5) != SQLITE_NULL && o->description == NULL);
  return oom || o->object_type == NULL || o->value == NULL;
}

static tq_code read_row(tq_lib *lib, int64_t id, tq_object *o, tq_err *err) {
  sqlite3_stmt *st = lib_stmt(lib, ST_READ_OBJECT, err);
  if (st == NULL)
    return TQ_EDB;
  sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st);
  tq_code rc = TQ_OK;
  if (step == SQLITE_ROW) {
    if (lib_object_row(st, o))
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory reading object %lld", (long long)id);
  } else if (step == SQLITE_DONE) {
    rc = tq_err_set(err, TQ_ENOTFOUND, "no object with id %lld", (long long)id);
  } else {
    rc = lib_db_err(lib, err, "reading an object");
  }
  sqlite3_reset(st);
  return rc;
}

/* Runs one of the cached BEGIN/COMMIT statements. */
static tq_code read_txn(tq_lib *lib, lib_stmt_id sid, tq_err *err) {
  sqlite3_stmt *st = lib_stmt(lib, sid, err);
  if (st == NULL)
    return TQ_EDB;
  int step = sqlite3_step(st);
  sqlite3_reset(st);
  return step == SQLITE_DONE ? TQ_OK : lib_db_err(lib, err, "a read transaction");
}

static tq_code object_read(tq_lib *lib, int64_t id, unsigned parts, tq_object *o, tq_err *err) {
  tq_code rc = read_row(lib, id, o, err);
  if (rc == TQ_OK && (parts & TQ_LIB_PART_SOURCES))
    rc = each_row(lib, ST_READ_SOURCES, id, o, row_source, err);
  if (rc == TQ_OK && (parts & TQ_LIB_PART_ATTRS))
    rc = each_row(lib, ST_READ_ATTRS, id, o, row_attr, err);
  if (rc == TQ_OK && (parts & TQ_LIB_PART_TAGS))
    rc = each_row(lib, ST_READ_TAGS, id, o, row_tag, err);
  if (rc == TQ_OK && (parts & TQ_LIB_PART_LINKS))
    rc = each_row(lib, ST_READ_LINKS, id, o, row_link, err);
  return rc;
}

tq_code tq_lib_object_get(tq_lib *lib, int64_t id, tq_object **out, tq_err *err) {
  return tq_lib_object_get_parts(lib, id, TQ_LIB_PART_ALL, out, err);
}

/* Outside a write transaction the reads share one read transaction: one consistent snapshot,
 * and one round of file locking instead of five. */
tq_code tq_lib_object_get_parts(tq_lib *lib, int64_t id, unsigned parts, tq_object **out,
                                tq_err *err) {
  tq_object *o = calloc(1, sizeof *o);
  if (o == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  int own = lib->depth == 0 && sqlite3_get_autocommit(lib->db);
  tq_code rc = own ? read_txn(lib, ST_READ_BEGIN, err) : TQ_OK;
  if (rc == TQ_OK)
    rc = object_read(lib, id, parts, o, err);
  if (own && rc == TQ_OK)
    rc = read_txn(lib, ST_READ_END, err);
  else if (own)
    sqlite3_exec(lib->db, "ROLLBACK", NULL, NULL, NULL);
  if (rc != TQ_OK) {
    tq_object_free(o);
    return rc;
  }
  *out = o;
  return TQ_OK;
}

void tq_object_free(tq_object *o) {
  if (o == NULL)
    return;
  free(o->object_type);
  free(o->indicator_type);
  free(o->indicator_class);
  free(o->value);
  free(o->description);
  for (size_t i = 0; i < o->n_sources; i++)
    free(o->sources[i]);
  free(o->sources);
  free(o->source_ids);
  free(o->source_tlps);
  free(o->tag_ids);
  for (size_t i = 0; i < o->n_tags; i++)
    free(o->tags[i]);
  free(o->tags);
  for (size_t i = 0; i < o->n_attrs; i++) {
    free(o->attrs[i].name);
    free(o->attrs[i].value);
    free(o->attrs[i].source);
  }
  free(o->attrs);
  for (size_t i = 0; i < o->n_links; i++) {
    free(o->links[i].other_type);
    free(o->links[i].other_value);
    free(o->links[i].other_indicator_type);
    free(o->links[i].link_type);
    free(o->links[i].source);
  }
  free(o->links);
  free(o);
}
