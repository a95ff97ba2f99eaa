/* object.c: writing and reading objects: identity (type + canonical value), sources,
 * attributes, tags and links. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tqhost/ioc.h"

tq_code lib_indicator_identity(const char *itype, const char *value, const char **itype_out,
                               char **out, tq_err *err) {
  if (value == NULL || *value == '\0')
    return tq_err_set(err, TQ_EINVAL, "empty indicator value");
  if (itype == NULL || *itype == '\0') {
    tq_ioc_type t = TQ_IOC_UNKNOWN;
    tq_code rc = tq_ioc_classify(value, &t, out, err);
    if (rc != TQ_OK)
      return rc;
    *itype_out = tq_lib_indicator_type_canon(tq_ioc_type_name(t), NULL);
    return TQ_OK;
  }
  const char *canon = tq_lib_indicator_type_canon(itype, NULL);
  if (canon == NULL)
    return tq_err_set(err, TQ_EINVAL,
                      "'%s' is not an indicator type (see 'tqhost indicator types')", itype);
  *itype_out = canon;
  tq_ioc_type t = tq_ioc_type_from_name(canon);
  if (t != TQ_IOC_UNKNOWN)
    return tq_ioc_normalize(t, value, out, err);
  *out = strdup(value);
  if (*out == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  tq_str_trim(*out);
  if (**out == '\0') {
    free(*out);
    *out = NULL;
    return tq_err_set(err, TQ_EINVAL, "empty indicator value");
  }
  return TQ_OK;
}

tq_code lib_text_check(const char *what, const char *text, size_t max, tq_err *err) {
  if (text == NULL)
    return TQ_OK;
  size_t n = strlen(text);
  if (n > max)
    return tq_err_set(err, TQ_EINVAL, "%s is %zu bytes; the limit is %zu", what, n, max);
  size_t bad = tq_utf8_invalid_at(text, n);
  if (bad < n)
    return tq_err_set(err, TQ_EINVAL, "%s is not valid UTF-8 (byte %zu)", what, bad + 1);
  return TQ_OK;
}

/* The size and encoding checks of an object's own texts (names are checked where they are
 * resolved). */
static tq_code check_texts(const tq_object_in *in, tq_err *err) {
  tq_code rc = lib_text_check("value", in->value, TQ_LIB_MAX_VALUE, err);
  if (rc == TQ_OK)
    rc = lib_text_check("description", in->description, TQ_LIB_MAX_DESCRIPTION, err);
  if (rc == TQ_OK)
    rc = lib_text_check("indicator type", in->indicator_type, TQ_LIB_MAX_NAME, err);
  if (rc == TQ_OK)
    rc = lib_text_check("object type", in->object_type, TQ_LIB_MAX_NAME, err);
  if (rc == TQ_OK)
    rc = lib_text_check("status", in->status, TQ_LIB_MAX_NAME, err);
  return rc;
}

/* Resolves the identity of an object to write or find: (type, itype id, canonical value). */
static tq_code identity(const char *object_type, const char *itype, const char *value,
                        const char **type_out, int64_t *itype_id, char **canonical, tq_err *err) {
  const char *type = object_type ? object_type : "indicator";
  if (!tq_lib_object_type_valid(type))
    return tq_err_set(err, TQ_EINVAL, "'%s' is not an object type", type);
  *type_out = type;
  if (strcmp(type, "indicator") == 0) {
    const char *canon = NULL;
    tq_code rc = lib_indicator_identity(itype, value, &canon, canonical, err);
    if (rc != TQ_OK)
      return rc;
    *itype_id = lib_itype_id(canon);
    return TQ_OK;
  }
  *itype_id = 0;
  if (value == NULL || *value == '\0')
    return tq_err_set(err, TQ_EINVAL, "empty %s value", type);
  *canonical = strdup(value);
  return *canonical ? TQ_OK : tq_err_set(err, TQ_ENOMEM, "out of memory");
}

static tq_code tag_id(tq_lib *lib, const char *name, int64_t *id, tq_err *err) {
  if (*name == '\0')
    return tq_err_set(err, TQ_EINVAL, "empty tag");
  if (tq_lib_name_check("tag", name, err) != TQ_OK)
    return TQ_EINVAL;
  tq_code rc = lib_text_check("tag", name, TQ_LIB_MAX_NAME, err);
  if (rc != TQ_OK)
    return rc;
  return lib_named_id(lib, &lib->tags, ST_TAG_ID, ST_TAG_INSERT, name, NULL, id, err);
}

/* The checks of an attribute to write, done before anything of its object is written. */
static tq_code check_attr(const tq_attr_in *a, tq_err *err) {
  if (a->name == NULL || *a->name == '\0' || a->value == NULL)
    return tq_err_set(err, TQ_EINVAL, "attribute without a name or value");
  if (tq_lib_name_check("attribute name", a->name, err) != TQ_OK)
    return TQ_EINVAL;
  if (a->tlp < 0 || a->tlp > 4)
    return tq_err_set(err, TQ_EINVAL, "attribute %s: TLP %d is not 0..4", a->name, a->tlp);
  tq_code rc = lib_text_check("attribute name", a->name, TQ_LIB_MAX_ATTR_NAME, err);
  if (rc == TQ_OK)
    rc = lib_text_check("attribute value", a->value, TQ_LIB_MAX_ATTR_VALUE, err);
  if (rc != TQ_OK && tq_utf8_invalid_at(a->name, strlen(a->name)) == strlen(a->name))
    tq_err_prefix(err, "attribute '%.64s%s': ", a->name, strlen(a->name) > 64 ? "..." : "");
  return rc;
}

/* The attributes, tags and source links of an object are queued (rows.c) and written with
 * those of the objects put after it, one statement per table. sids[i] is the source of
 * attrs[i]. */
static tq_code put_attrs(tq_lib *lib, int64_t object_id, const tq_attr_in *attrs,
                         const int64_t *sids, size_t n, int64_t now, tq_err *err) {
  tq_code rc = TQ_OK;
  for (size_t i = 0; rc == TQ_OK && i < n; i++) {
    tq_lib_cell row[6] = {{.i = object_id}, {.text = attrs[i].name}, {.text = attrs[i].value},
                          {.i = sids[i]},   {.i = attrs[i].tlp},     {.i = now}};
    rc = lib_queue_row(lib, LQ_ATTRS, row, err);
  }
  return rc;
}

static tq_code put_tag_ids(tq_lib *lib, int64_t object_id, const int64_t *tids, size_t n,
                           tq_err *err) {
  tq_code rc = TQ_OK;
  for (size_t i = 0; rc == TQ_OK && i < n; i++) {
    tq_lib_cell row[2] = {{.i = object_id}, {.i = tids[i]}};
    rc = lib_queue_row(lib, LQ_TAGS, row, err);
  }
  return rc;
}

static tq_code put_object_source(tq_lib *lib, int64_t object_id, int64_t source_id,
                                 int64_t reported_at, int tlp, tq_err *err) {
  tq_lib_cell row[4] = {{.i = object_id}, {.i = source_id}, {.i = reported_at}, {.i = tlp}};
  return lib_queue_row(lib, LQ_SOURCES, row, err);
}

/* The upsert itself: creates or merges the row and gives its id. */
static tq_code upsert_row(tq_lib *lib, const tq_object_in *in, const char *type, int64_t itype_id,
                          const char *value, int64_t now, int64_t *id, int *created, tq_err *err) {
  int status = 0;
  if (in->status) {
    status = tq_lib_status_from_name(in->status);
    if (status == 0)
      return tq_err_set(err, TQ_EINVAL,
                        "'%s' is not a status (Active, Expired, Indirect, Review, Whitelisted)",
                        in->status);
  }
  /* New objects (the bulk case) take one plain insert; an existing one is merged. */
  for (int pass = 0; pass < 2; pass++) {
    sqlite3_stmt *st = lib_stmt_put(lib, pass ? ST_OBJ_MERGE : ST_OBJ_INSERT, err);
    if (st == NULL)
      return TQ_EDB;
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, itype_id);
    sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    if (status)
      sqlite3_bind_int(st, 4, status);
    if (in->description)
      sqlite3_bind_text(st, 5, in->description, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, in->published_at ? in->published_at : now);
    sqlite3_bind_int64(st, 7, now);
    int step = sqlite3_step(st);
    if (pass == 0 && step == SQLITE_DONE && sqlite3_changes(lib->db) == 1) {
      *id = sqlite3_last_insert_rowid(lib->db);
      *created = 1;
      return TQ_OK;
    }
    if (pass == 1 && step == SQLITE_ROW) {
      *id = sqlite3_column_int64(st, 0);
      *created = 0;
      sqlite3_reset(st);
      return TQ_OK;
    }
    if (step != SQLITE_DONE)
      return lib_db_err(lib, err, "writing an object");
  }
  return tq_err_set(err, TQ_EINTERNAL, "object '%s' neither inserted nor found", value);
}

/* Ids of the names an object refers to (its sources, the sources of its attributes, its
 * tags), resolved and checked before anything of the object is written, so that a refused
 * object leaves no half of itself behind. */
typedef struct put_ids {
  int64_t local[48];
  int64_t *v; /* local or malloc'd: n_sources, then n_attrs, then n_tags ids */
} put_ids;

static tq_code resolve_ids(tq_lib *lib, const tq_object_in *in, put_ids *ids, tq_err *err) {
  size_t n = in->n_sources + in->n_attrs + in->n_tags;
  ids->v = n <= sizeof ids->local / sizeof *ids->local ? ids->local : malloc(n * sizeof *ids->v);
  if (ids->v == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  int64_t *sid = ids->v, *aid = sid + in->n_sources, *tid = aid + in->n_attrs;
  tq_code rc = TQ_OK;
  if (in->source_tlp < 0 || in->source_tlp > 4)
    rc = tq_err_set(err, TQ_EINVAL, "source TLP %d is not 0..4", in->source_tlp);
  for (size_t i = 0; rc == TQ_OK && i < in->n_sources; i++)
    rc = lib_source_id(lib, in->sources[i], NULL, &sid[i], err);
  for (size_t i = 0; rc == TQ_OK && i < in->n_attrs; i++) {
    const tq_attr_in *a = &in->attrs[i];
    rc = check_attr(a, err);
    if (rc == TQ_OK && a->source)
      rc = lib_source_id(lib, a->source, NULL, &aid[i], err);
    else if (rc == TQ_OK && in->n_sources > 0)
      aid[i] = sid[0];
    else if (rc == TQ_OK)
      rc = lib_source_id(lib, "tqhost", NULL, &aid[i], err);
  }
  for (size_t i = 0; rc == TQ_OK && i < in->n_tags; i++)
    rc = tag_id(lib, in->tags[i], &tid[i], err);
  return rc;
}

static tq_code object_put_in_tx(tq_lib *lib, const tq_object_in *in, int64_t *id_out,
                                int *created_out, char **value_out, tq_err *err) {
  const char *type = NULL;
  int64_t itype_id = 0, id = 0;
  char *value = NULL;
  int created = 0;
  int64_t now = tq_time_now();
  int64_t reported = in->reported_at ? in->reported_at : now;
  put_ids ids = {.v = NULL};
  tq_code rc = check_texts(in, err);
  if (rc == TQ_OK)
    rc = identity(in->object_type, in->indicator_type, in->value, &type, &itype_id, &value, err);
  if (rc == TQ_OK)
    rc = resolve_ids(lib, in, &ids, err);
  if (rc == TQ_OK)
    rc = upsert_row(lib, in, type, itype_id, value, now, &id, &created, err);
  for (size_t i = 0; rc == TQ_OK && i < in->n_sources; i++)
    rc = put_object_source(lib, id, ids.v[i], reported, in->source_tlp, err);
  if (rc == TQ_OK)
    rc = put_attrs(lib, id, in->attrs, ids.v + in->n_sources, in->n_attrs, now, err);
  if (rc == TQ_OK)
    rc = put_tag_ids(lib, id, ids.v + in->n_sources + in->n_attrs, in->n_tags, err);
  if (rc == TQ_OK)
    rc = lib_touch(lib, id, err);
  if (ids.v != ids.local)
    free(ids.v);
  if (rc == TQ_OK && value_out) {
    *value_out = value;
    value = NULL;
  }
  free(value);
  if (rc == TQ_OK) {
    if (id_out)
      *id_out = id;
    if (created_out)
      *created_out = created;
  }
  return rc;
}

tq_code lib_object_put_value(tq_lib *lib, const tq_object_in *in, int64_t *id_out, int *created,
                             char **value_out, tq_err *err) {
  return object_put_in_tx(lib, in, id_out, created, value_out, err);
}

tq_code tq_lib_object_put(tq_lib *lib, const tq_object_in *in, int64_t *id_out, int *created,
                          tq_err *err) {
  if (lib->depth > 0)
    return object_put_in_tx(lib, in, id_out, created, NULL, err);
  tq_code rc = tq_lib_begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  rc = object_put_in_tx(lib, in, id_out, created, NULL, err);
  if (rc != TQ_OK) {
    tq_lib_rollback(lib);
    return rc;
  }
  return tq_lib_commit(lib, err);
}

tq_code tq_lib_annotate(tq_lib *lib, int64_t object_id, const tq_attr_in *attrs, size_t n_attrs,
                        const char *const *tags, size_t n_tags, tq_err *err) {
  /* the same checks and name resolution as a put, without the object row or sources */
  tq_object_in in = {.attrs = attrs, .n_attrs = n_attrs, .tags = tags, .n_tags = n_tags};
  put_ids ids = {.v = NULL};
  tq_code rc = tq_lib_begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  rc = resolve_ids(lib, &in, &ids, err);
  if (rc == TQ_OK)
    rc = put_attrs(lib, object_id, attrs, ids.v, n_attrs, tq_time_now(), err);
  if (rc == TQ_OK)
    rc = put_tag_ids(lib, object_id, ids.v + n_attrs, n_tags, err);
  if (rc == TQ_OK && n_attrs)
    rc = lib_touch(lib, object_id, err);
  if (ids.v != ids.local)
    free(ids.v);
  if (rc != TQ_OK) {
    tq_lib_rollback(lib);
    return rc;
  }
  return tq_lib_commit(lib, err);
}

tq_code tq_lib_attribute_add(tq_lib *lib, int64_t object_id, const tq_attr_in *attr, tq_err *err) {
  return tq_lib_annotate(lib, object_id, attr, 1, NULL, 0, err);
}

tq_code tq_lib_tag_add(tq_lib *lib, int64_t object_id, const char *tag, tq_err *err) {
  return tq_lib_annotate(lib, object_id, NULL, 0, &tag, 1, err);
}

tq_code tq_lib_link(tq_lib *lib, int64_t a, int64_t b, const char *source, const char *link_type,
                    tq_err *err) {
  if (a == b)
    return tq_err_set(err, TQ_EINVAL, "an object cannot be linked to itself (id %lld)",
                      (long long)a);
  if (tq_lib_name_check("link type", link_type, err) != TQ_OK)
    return TQ_EINVAL;
  int64_t lo = a < b ? a : b, hi = a < b ? b : a, sid = 0;
  tq_code rc = lib_text_check("link type", link_type, TQ_LIB_MAX_NAME, err);
  if (rc != TQ_OK)
    return rc;
  rc = tq_lib_begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  rc = lib_source_id(lib, source ? source : "tqhost", NULL, &sid, err);
  if (rc != TQ_OK)
    goto fail;
  /* links touch none of the queued tables: no need to write the queues first */
  sqlite3_stmt *st = lib_stmt_put(lib, ST_LINK_PUT, err);
  if (st == NULL) {
    rc = TQ_EDB;
    goto fail;
  }
  sqlite3_bind_int64(st, 1, lo);
  sqlite3_bind_int64(st, 2, hi);
  sqlite3_bind_int64(st, 3, sid);
  sqlite3_bind_text(st, 4, link_type ? link_type : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, tq_time_now());
  if (sqlite3_step(st) != SQLITE_DONE) {
    rc = lib_db_err(lib, err, "linking objects");
    goto fail;
  }
  return tq_lib_commit(lib, err);
fail:
  tq_lib_rollback(lib);
  return rc;
}

tq_code tq_lib_object_find(tq_lib *lib, const char *object_type, const char *indicator_type,
                           const char *value, int64_t *id_out, tq_err *err) {
  const char *type = NULL;
  int64_t itype_id = 0;
  char *canonical = NULL;
  tq_code rc = identity(object_type, indicator_type, value, &type, &itype_id, &canonical, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_stmt *st = lib_stmt(lib, ST_OBJ_FIND, err);
  if (st == NULL) {
    free(canonical);
    return TQ_EDB;
  }
  sqlite3_bind_text(st, 1, canonical, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, itype_id);
  sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW)
    *id_out = sqlite3_column_int64(st, 0);
  else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no %s '%s' in the library", type, canonical);
  else
    rc = lib_db_err(lib, err, "finding an object");
  sqlite3_reset(st);
  free(canonical);
  return rc;
}

tq_code tq_lib_count(tq_lib *lib, const char *object_type, int64_t *n, tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lib->db, "SELECT count(*) FROM objects WHERE ?1 IS NULL OR type=?1", -1,
                         &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "counting objects");
  if (object_type)
    sqlite3_bind_text(st, 1, object_type, -1, SQLITE_STATIC);
  tq_code rc = TQ_OK;
  if (sqlite3_step(st) == SQLITE_ROW)
    *n = sqlite3_column_int64(st, 0);
  else
    rc = lib_db_err(lib, err, "counting objects");
  sqlite3_finalize(st);
  return rc;
}
