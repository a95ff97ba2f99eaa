/* query.c: data collections (saved queries), their JSON form, and keyset cursors that walk a
 * query's result one page at a time in id order, so a collection of millions is never loaded
 * whole. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void tq_query_init(tq_query *q) {
  memset(q, 0, sizeof *q);
  q->score_min = -1;
  q->score_max = -1;
}

void tq_query_free(tq_query *q) {
  free(q->object_type);
  for (size_t i = 0; i < q->n_indicator_types; i++)
    free(q->indicator_types[i]);
  free(q->indicator_types);
  free(q->statuses);
  free(q->source);
  free(q->tag);
  free(q->attr_name);
  free(q->attr_value);
  free(q->criteria);
  tq_query_init(q);
}

char *tq_query_to_json(const tq_query *q) {
  cJSON *j = cJSON_CreateObject();
  if (j == NULL)
    return NULL;
  cJSON_AddStringToObject(j, "object_type", q->object_type ? q->object_type : "indicator");
  if (q->n_indicator_types) {
    cJSON *a = cJSON_AddArrayToObject(j, "indicator_types");
    for (size_t i = 0; a && i < q->n_indicator_types; i++)
      cJSON_AddItemToArray(a, cJSON_CreateString(q->indicator_types[i]));
  }
  if (q->n_statuses) {
    cJSON *a = cJSON_AddArrayToObject(j, "statuses");
    for (size_t i = 0; a && i < q->n_statuses; i++)
      cJSON_AddItemToArray(a, cJSON_CreateString(tq_lib_status_name(q->statuses[i])));
  }
  if (q->score_min >= 0)
    cJSON_AddNumberToObject(j, "score_min", q->score_min);
  if (q->score_max >= 0)
    cJSON_AddNumberToObject(j, "score_max", q->score_max);
  if (q->source)
    cJSON_AddStringToObject(j, "source", q->source);
  if (q->tag)
    cJSON_AddStringToObject(j, "tag", q->tag);
  if (q->attr_name)
    cJSON_AddStringToObject(j, "attribute", q->attr_name);
  if (q->attr_value)
    cJSON_AddStringToObject(j, "attribute_value", q->attr_value);
  if (q->updated_since)
    cJSON_AddNumberToObject(j, "updated_since", (double)q->updated_since);
  if (q->criteria) {
    cJSON *c = cJSON_Parse(q->criteria);
    if (c == NULL || !cJSON_AddItemToObject(j, "criteria", c)) {
      cJSON_Delete(c);
      cJSON_Delete(j);
      return NULL;
    }
  }
  char *s = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return s;
}

static tq_code dup_str(cJSON *j, const char *key, char **out, tq_err *err) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  if (v == NULL)
    return TQ_OK;
  if (!cJSON_IsString(v))
    return tq_err_set(err, TQ_EINVAL, "query field '%s' must be a string", key);
  *out = strdup(v->valuestring);
  return *out ? TQ_OK : tq_err_set(err, TQ_ENOMEM, "out of memory");
}

static tq_code get_int(cJSON *j, const char *key, long long lo, long long hi, long long *out,
                       tq_err *err) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  if (v == NULL)
    return TQ_OK;
  if (!cJSON_IsNumber(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi)
    return tq_err_set(err, TQ_EINVAL, "query field '%s' must be a number in %lld..%lld", key, lo,
                      hi);
  *out = (long long)v->valuedouble;
  return TQ_OK;
}

static tq_code parse_lists(cJSON *j, tq_query *q, tq_err *err) {
  cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "indicator_types");
  if (a && !cJSON_IsArray(a))
    return tq_err_set(err, TQ_EINVAL, "query field 'indicator_types' must be a list");
  size_t n = a ? (size_t)cJSON_GetArraySize(a) : 0;
  if (n) {
    q->indicator_types = calloc(n, sizeof(char *));
    if (q->indicator_types == NULL)
      return tq_err_set(err, TQ_ENOMEM, "out of memory");
    cJSON *it;
    cJSON_ArrayForEach(it, a) {
      if (!cJSON_IsString(it))
        return tq_err_set(err, TQ_EINVAL, "query field 'indicator_types' must list strings");
      if ((q->indicator_types[q->n_indicator_types++] = strdup(it->valuestring)) == NULL)
        return tq_err_set(err, TQ_ENOMEM, "out of memory");
    }
  }
  a = cJSON_GetObjectItemCaseSensitive(j, "statuses");
  if (a && !cJSON_IsArray(a))
    return tq_err_set(err, TQ_EINVAL, "query field 'statuses' must be a list");
  n = a ? (size_t)cJSON_GetArraySize(a) : 0;
  if (n) {
    q->statuses = calloc(n, sizeof(int));
    if (q->statuses == NULL)
      return tq_err_set(err, TQ_ENOMEM, "out of memory");
    cJSON *it;
    cJSON_ArrayForEach(it, a) {
      int s = cJSON_IsString(it) ? tq_lib_status_from_name(it->valuestring) : 0;
      if (s == 0)
        return tq_err_set(err, TQ_EINVAL, "query field 'statuses': '%s' is not a status",
                          cJSON_IsString(it) ? it->valuestring : "?");
      q->statuses[q->n_statuses++] = s;
    }
  }
  return TQ_OK;
}

tq_code tq_query_from_json(const char *json, tq_query *q, tq_err *err) {
  tq_query_init(q);
  cJSON *j = cJSON_Parse(json);
  if (j == NULL || !cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return tq_err_set(err, TQ_EINVAL, "a query must be a JSON object");
  }
  long long smin = -1, smax = -1, since = 0;
  tq_code rc = dup_str(j, "object_type", &q->object_type, err);
  if (rc == TQ_OK)
    rc = parse_lists(j, q, err);
  if (rc == TQ_OK)
    rc = get_int(j, "score_min", 0, 10, &smin, err);
  if (rc == TQ_OK)
    rc = get_int(j, "score_max", 0, 10, &smax, err);
  if (rc == TQ_OK)
    rc = get_int(j, "updated_since", 0, INT64_MAX / 2, &since, err);
  if (rc == TQ_OK)
    rc = dup_str(j, "source", &q->source, err);
  if (rc == TQ_OK)
    rc = dup_str(j, "tag", &q->tag, err);
  if (rc == TQ_OK)
    rc = dup_str(j, "attribute", &q->attr_name, err);
  if (rc == TQ_OK)
    rc = dup_str(j, "attribute_value", &q->attr_value, err);
  cJSON *crit = cJSON_GetObjectItemCaseSensitive(j, "criteria");
  if (rc == TQ_OK && crit) {
    if (!cJSON_IsObject(crit))
      rc = tq_err_set(err, TQ_EINVAL, "query field 'criteria' must be an object");
    else if ((q->criteria = cJSON_PrintUnformatted(crit)) == NULL)
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  cJSON_Delete(j);
  q->score_min = (int)smin;
  q->score_max = (int)smax;
  q->updated_since = since;
  if (rc != TQ_OK)
    tq_query_free(q);
  return rc;
}

tq_code tq_query_validate(tq_lib *lib, const tq_query *q, tq_err *err) {
  const char *type = q->object_type ? q->object_type : "indicator";
  if (!tq_lib_object_type_valid(type))
    return tq_err_set(err, TQ_EINVAL, "'%s' is not an object type", type);
  for (size_t i = 0; i < q->n_indicator_types; i++)
    if (tq_lib_indicator_type_canon(q->indicator_types[i], NULL) == NULL)
      return tq_err_set(err, TQ_EINVAL, "'%s' is not an indicator type", q->indicator_types[i]);
  if (q->score_min > 10 || q->score_max > 10 ||
      (q->score_min >= 0 && q->score_max >= 0 && q->score_min > q->score_max))
    return tq_err_set(err, TQ_EINVAL, "score range %d..%d is empty or outside 0..10", q->score_min,
                      q->score_max);
  if (q->source) {
    tq_source s;
    if (tq_lib_source_get(lib, q->source, &s, err) != TQ_OK)
      return err ? err->code : TQ_ENOTFOUND;
  }
  if (q->attr_value && q->attr_name == NULL)
    return tq_err_set(err, TQ_EINVAL, "an attribute value needs an attribute name");
  if (q->criteria) {
    tq_criteria *c = NULL;
    tq_code rc = tq_criteria_compile(q->criteria, strlen(q->criteria), &c, NULL, 0, err);
    tq_criteria_free(c);
    if (rc != TQ_OK)
      return rc;
  }
  return TQ_OK;
}

/* ---- collections ---------------------------------------------------------------------- */

tq_code tq_lib_collection_put(tq_lib *lib, const char *name, const tq_query *q, int must_create,
                              tq_err *err) {
  if (name == NULL || *name == '\0')
    return tq_err_set(err, TQ_EINVAL, "a collection needs a name");
  if (tq_lib_name_check("collection name", name, err) != TQ_OK)
    return TQ_EINVAL;
  tq_code rc = tq_query_validate(lib, q, err);
  if (rc != TQ_OK)
    return tq_err_prefix(err, "collection '%s': ", name);
  char *json = tq_query_to_json(q);
  if (json == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  sqlite3_stmt *st = NULL;
  const char *sql = must_create ? "INSERT INTO collections(name,query,created_at,updated_at)"
                                  " VALUES(?1,?2,?3,?3)"
                                : "INSERT INTO collections(name,query,created_at,updated_at)"
                                  " VALUES(?1,?2,?3,?3) ON CONFLICT(name) DO UPDATE SET"
                                  " query=excluded.query, updated_at=excluded.updated_at";
  if (sqlite3_prepare_v2(lib->db, sql, -1, &st, NULL) != SQLITE_OK) {
    free(json);
    return lib_db_err(lib, err, "saving a collection");
  }
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, tq_time_now());
  int step = sqlite3_step(st);
  if (step == SQLITE_DONE)
    rc = TQ_OK;
  else if ((sqlite3_errcode(lib->db) & 0xff) == SQLITE_CONSTRAINT)
    rc = tq_err_set(err, TQ_EEXIST, "collection '%s' exists already", name);
  else
    rc = lib_db_err(lib, err, "saving a collection");
  sqlite3_finalize(st);
  free(json);
  return rc;
}

tq_code tq_lib_collection_get(tq_lib *lib, const char *name, tq_query *q, tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lib->db, "SELECT query FROM collections WHERE name=?1", -1, &st, NULL) !=
      SQLITE_OK)
    return lib_db_err(lib, err, "reading a collection");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  tq_code rc;
  if (step == SQLITE_ROW)
    rc = tq_query_from_json((const char *)sqlite3_column_text(st, 0), q, err);
  else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no collection named '%s'", name);
  else
    rc = lib_db_err(lib, err, "reading a collection");
  sqlite3_finalize(st);
  return rc;
}

tq_code tq_lib_collection_delete(tq_lib *lib, const char *name, tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lib->db, "DELETE FROM collections WHERE name=?1", -1, &st, NULL) !=
      SQLITE_OK)
    return lib_db_err(lib, err, "deleting a collection");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  tq_code rc = TQ_OK;
  if (sqlite3_step(st) != SQLITE_DONE)
    rc = lib_db_err(lib, err, "deleting a collection");
  else if (sqlite3_changes(lib->db) == 0)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no collection named '%s'", name);
  sqlite3_finalize(st);
  return rc;
}

tq_code tq_lib_collection_list(tq_lib *lib, char ***names, size_t *n, tq_err *err) {
  sqlite3_stmt *st = NULL;
  char **arr = NULL;
  size_t len = 0;
  if (sqlite3_prepare_v2(lib->db, "SELECT name FROM collections ORDER BY name", -1, &st, NULL) !=
      SQLITE_OK)
    return lib_db_err(lib, err, "listing collections");
  while (sqlite3_step(st) == SQLITE_ROW) {
    char **p = realloc(arr, (len + 1) * sizeof *p);
    if (p == NULL)
      break;
    arr = p;
    arr[len] = strdup((const char *)sqlite3_column_text(st, 0));
    if (arr[len] == NULL)
      break;
    len++;
  }
  sqlite3_finalize(st);
  *names = arr;
  *n = len;
  return TQ_OK;
}

tq_code tq_lib_collection_rows(tq_lib *lib, int64_t id, tq_collection_row **rows, size_t *n,
                               tq_err *err) {
  *rows = NULL;
  *n = 0;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lib->db,
                         "SELECT rowid, name, query, created_at, updated_at FROM collections"
                         " WHERE ?1 = 0 OR rowid = ?1 ORDER BY rowid",
                         -1, &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "reading collections");
  sqlite3_bind_int64(st, 1, id);
  tq_collection_row *arr = NULL;
  size_t len = 0;
  tq_code rc = TQ_OK;
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    tq_collection_row *p = realloc(arr, (len + 1) * sizeof *p);
    if (p == NULL) {
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
      break;
    }
    arr = p;
    tq_collection_row *r = &arr[len++];
    r->id = sqlite3_column_int64(st, 0);
    r->name = strdup((const char *)sqlite3_column_text(st, 1));
    r->query = strdup((const char *)sqlite3_column_text(st, 2));
    r->created_at = sqlite3_column_int64(st, 3);
    r->updated_at = sqlite3_column_int64(st, 4);
    if (r->name == NULL || r->query == NULL) {
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
      break;
    }
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = lib_db_err(lib, err, "reading collections");
  sqlite3_finalize(st);
  if (rc == TQ_OK && id > 0 && len == 0)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no collection with id %lld", (long long)id);
  if (rc != TQ_OK) {
    tq_collection_rows_free(arr, len);
    return rc;
  }
  *rows = arr;
  *n = len;
  return TQ_OK;
}

void tq_collection_rows_free(tq_collection_row *rows, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(rows[i].name);
    free(rows[i].query);
  }
  free(rows);
}

/* ---- cursors ----------------------------------------------------------------------------- */

struct tq_cursor {
  tq_lib *lib;
  sqlite3_stmt *st;
  int64_t last_id;
  int done;
};

/* Builds the WHERE clause of q; parameters are bound by bind_where in the same order. A
 * criteria document is compiled into *crit (freed by the caller after binding). */
static tq_code build_where(tq_lib *lib, const tq_query *q, tq_buf *sql, tq_criteria **crit,
                           tq_err *err) {
  *crit = NULL;
  if (q->criteria &&
      tq_criteria_compile(q->criteria, strlen(q->criteria), crit, NULL, 0, err) != TQ_OK)
    return err && err->code ? err->code : TQ_EINVAL;
  tq_code rc = tq_buf_adds(sql, " FROM objects o WHERE o.type=?");
  if (q->n_indicator_types) {
    rc |= tq_buf_adds(sql, " AND o.itype_id IN (");
    for (size_t i = 0; i < q->n_indicator_types; i++)
      rc |= tq_buf_adds(sql, i ? ",?" : "?");
    rc |= tq_buf_adds(sql, ")");
  }
  if (q->n_statuses) {
    rc |= tq_buf_adds(sql, " AND o.status IN (");
    for (size_t i = 0; i < q->n_statuses; i++)
      rc |= tq_buf_adds(sql, i ? ",?" : "?");
    rc |= tq_buf_adds(sql, ")");
  }
  if (q->score_min >= 0)
    rc |= tq_buf_adds(sql, " AND o.score >= ?");
  if (q->score_max >= 0)
    rc |= tq_buf_adds(sql, " AND o.score <= ?");
  /* Correlated EXISTS probes on each table's (object_id, ...) key: a page costs the rows it
   * scans, never a materialisation of the whole filter set. */
  if (q->source)
    rc |= tq_buf_adds(sql, " AND EXISTS(SELECT 1 FROM object_sources os WHERE os.object_id=o.id"
                           " AND os.source_id=(SELECT id FROM sources WHERE name=?))");
  if (q->tag)
    rc |= tq_buf_adds(sql, " AND EXISTS(SELECT 1 FROM object_tags ot WHERE ot.object_id=o.id"
                           " AND ot.tag_id=(SELECT id FROM tags WHERE name=?))");
  if (q->attr_name)
    rc |= tq_buf_adds(sql, q->attr_value ? " AND EXISTS(SELECT 1 FROM attributes a WHERE"
                                           " a.object_id=o.id AND a.name=? AND a.value=?)"
                                         : " AND EXISTS(SELECT 1 FROM attributes a WHERE"
                                           " a.object_id=o.id AND a.name=?)");
  if (q->updated_since)
    rc |= tq_buf_adds(sql, " AND o.updated_at >= ?");
  if (*crit) {
    rc |= tq_buf_adds(sql, " AND ");
    rc |= lib_criteria_sql_planned(lib, *crit, sql);
  }
  return rc ? tq_err_set(err, TQ_ENOMEM, "out of memory") : TQ_OK;
}

static int bind_where(sqlite3_stmt *st, const tq_query *q, const tq_criteria *crit) {
  int i = 1;
  sqlite3_bind_text(st, i++, q->object_type ? q->object_type : "indicator", -1, SQLITE_TRANSIENT);
  for (size_t k = 0; k < q->n_indicator_types; k++) {
    const char *canon = tq_lib_indicator_type_canon(q->indicator_types[k], NULL);
    sqlite3_bind_int64(st, i++, canon ? lib_itype_id(canon) : -1);
  }
  for (size_t k = 0; k < q->n_statuses; k++)
    sqlite3_bind_int(st, i++, q->statuses[k]);
  if (q->score_min >= 0)
    sqlite3_bind_int(st, i++, q->score_min);
  if (q->score_max >= 0)
    sqlite3_bind_int(st, i++, q->score_max);
  if (q->source)
    sqlite3_bind_text(st, i++, q->source, -1, SQLITE_TRANSIENT);
  if (q->tag)
    sqlite3_bind_text(st, i++, q->tag, -1, SQLITE_TRANSIENT);
  if (q->attr_name)
    sqlite3_bind_text(st, i++, q->attr_name, -1, SQLITE_TRANSIENT);
  if (q->attr_name && q->attr_value)
    sqlite3_bind_text(st, i++, q->attr_value, -1, SQLITE_TRANSIENT);
  if (q->updated_since)
    sqlite3_bind_int64(st, i++, q->updated_since);
  if (crit)
    i = tq_criteria_bind(crit, st, i);
  return i;
}

/* The statement holds its own copies of the query's strings (SQLITE_TRANSIENT), so the
 * cursor may outlive q. */
tq_code tq_lib_cursor_open(tq_lib *lib, const tq_query *q, int64_t after_id, tq_cursor **out,
                           tq_err *err) {
  tq_buf sql;
  tq_buf_init(&sql, 0);
  tq_criteria *crit = NULL;
  tq_code rc = tq_buf_adds(&sql, "SELECT o.id");
  if (rc == TQ_OK)
    rc = build_where(lib, q, &sql, &crit, err);
  else
    tq_err_set(err, TQ_ENOMEM, "out of memory");
  if (rc == TQ_OK && tq_buf_adds(&sql, " AND o.id > ? ORDER BY o.id LIMIT ?") != TQ_OK)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  tq_cursor *c = rc == TQ_OK ? calloc(1, sizeof *c) : NULL;
  if (rc == TQ_OK && c == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  if (rc != TQ_OK) {
    tq_criteria_free(crit);
    tq_buf_free(&sql);
    return rc;
  }
  c->lib = lib;
  c->last_id = after_id;
  if (sqlite3_prepare_v2(lib->db, sql.data, -1, &c->st, NULL) != SQLITE_OK) {
    rc = lib_db_err(lib, err, "preparing a cursor");
    tq_criteria_free(crit);
    tq_buf_free(&sql);
    free(c);
    return rc;
  }
  tq_buf_free(&sql);
  bind_where(c->st, q, crit);
  tq_criteria_free(crit);
  *out = c;
  return TQ_OK;
}

tq_code tq_lib_cursor_next(tq_cursor *c, int64_t *ids, size_t max, size_t *n, tq_err *err) {
  *n = 0;
  if (c->done || max == 0)
    return TQ_OK;
  int np = sqlite3_bind_parameter_count(c->st);
  sqlite3_reset(c->st);
  sqlite3_bind_int64(c->st, np - 1, c->last_id);
  sqlite3_bind_int64(c->st, np, (int64_t)max);
  int step;
  while ((step = sqlite3_step(c->st)) == SQLITE_ROW)
    ids[(*n)++] = sqlite3_column_int64(c->st, 0);
  if (step != SQLITE_DONE)
    return lib_db_err(c->lib, err, "walking a collection");
  sqlite3_reset(c->st);
  if (*n)
    c->last_id = ids[*n - 1];
  if (*n < max)
    c->done = 1;
  return TQ_OK;
}

void tq_lib_cursor_close(tq_cursor *c) {
  if (c == NULL)
    return;
  sqlite3_finalize(c->st);
  free(c);
}

tq_code tq_lib_query_count(tq_lib *lib, const tq_query *q, int64_t *n, tq_err *err) {
  tq_buf sql;
  tq_buf_init(&sql, 0);
  sqlite3_stmt *st = NULL;
  tq_criteria *crit = NULL;
  if (tq_buf_adds(&sql, "SELECT count(*)") != TQ_OK) {
    tq_buf_free(&sql);
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  tq_code brc = build_where(lib, q, &sql, &crit, err);
  if (brc != TQ_OK) {
    tq_buf_free(&sql);
    return brc;
  }
  if (sqlite3_prepare_v2(lib->db, sql.data, -1, &st, NULL) != SQLITE_OK) {
    tq_criteria_free(crit);
    tq_buf_free(&sql);
    return lib_db_err(lib, err, "counting a query");
  }
  tq_buf_free(&sql);
  bind_where(st, q, crit);
  tq_criteria_free(crit);
  tq_code rc = TQ_OK;
  if (sqlite3_step(st) == SQLITE_ROW)
    *n = sqlite3_column_int64(st, 0);
  else
    rc = lib_db_err(lib, err, "counting a query");
  sqlite3_finalize(st);
  return rc;
}

/* ---- uicoll: edit in place, capped counts ------------------------------------------------- */

tq_code tq_lib_collection_update(tq_lib *lib, int64_t id, const char *name, const tq_query *q,
                                 tq_err *err) {
  if (id <= 0)
    return tq_err_set(err, TQ_ENOTFOUND, "no collection with id %lld", (long long)id);
  if (name == NULL && q == NULL)
    return tq_err_set(err, TQ_EINVAL, "nothing to change: give a name or a query");
  if (name && *name == '\0')
    return tq_err_set(err, TQ_EINVAL, "a collection needs a name");
  if (name && tq_lib_name_check("collection name", name, err) != TQ_OK)
    return TQ_EINVAL;
  tq_code rc = TQ_OK;
  char *json = NULL;
  if (q) {
    if ((rc = tq_query_validate(lib, q, err)) != TQ_OK)
      return tq_err_prefix(err, "collection #%lld: ", (long long)id);
    if ((json = tq_query_to_json(q)) == NULL)
      return tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(lib->db,
                         "UPDATE collections SET name=coalesce(?1,name), query=coalesce(?2,query),"
                         " updated_at=?3 WHERE rowid=?4",
                         -1, &st, NULL) != SQLITE_OK) {
    free(json);
    return lib_db_err(lib, err, "updating a collection");
  }
  if (name)
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  if (json)
    sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, tq_time_now());
  sqlite3_bind_int64(st, 4, id);
  int step = sqlite3_step(st);
  if (step == SQLITE_DONE)
    rc = sqlite3_changes(lib->db) == 0
             ? tq_err_set(err, TQ_ENOTFOUND, "no collection with id %lld", (long long)id)
             : TQ_OK;
  else if ((sqlite3_errcode(lib->db) & 0xff) == SQLITE_CONSTRAINT)
    rc = tq_err_set(err, TQ_EEXIST, "collection '%s' exists already", name ? name : "?");
  else
    rc = lib_db_err(lib, err, "updating a collection");
  sqlite3_finalize(st);
  free(json);
  return rc;
}

/* sqlite3_progress_handler's callback: non-zero (interrupt) once the deadline has passed. */
static int count_past_deadline(void *ud) { return tq_mono_ms() >= *(const int64_t *)ud; }

tq_code tq_lib_collection_count(tq_lib *lib, const char *query_json, int64_t cap,
                                int64_t deadline_ms, int64_t *n, int *capped, tq_err *err) {
  *n = 0;
  *capped = 0;
  if (cap <= 0)
    return tq_err_set(err, TQ_EINVAL, "a count's cap is at least 1");
  if (deadline_ms > 0 && tq_mono_ms() >= deadline_ms)
    return tq_err_set(err, TQ_ETIMEOUT, "counting a collection: out of time");
  tq_query q;
  tq_query_init(&q);
  tq_code rc = tq_query_from_json(query_json, &q, err);
  if (rc != TQ_OK)
    return rc;
  tq_buf sql;
  tq_buf_init(&sql, 0);
  tq_criteria *crit = NULL;
  if (tq_buf_adds(&sql, "SELECT count(*) FROM (SELECT 1") != TQ_OK)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  if (rc == TQ_OK)
    rc = build_where(lib, &q, &sql, &crit, err);
  if (rc == TQ_OK && tq_buf_adds(&sql, " LIMIT ?)") != TQ_OK)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  sqlite3_stmt *st = NULL;
  if (rc == TQ_OK && sqlite3_prepare_v2(lib->db, sql.data, -1, &st, NULL) != SQLITE_OK)
    rc = lib_db_err(lib, err, "counting a collection");
  tq_buf_free(&sql);
  if (rc == TQ_OK) {
    /* One row past the cap tells "more" from "exactly cap". */
    int i = bind_where(st, &q, crit);
    sqlite3_bind_int64(st, i, cap + 1);
    if (deadline_ms > 0)
      sqlite3_progress_handler(lib->db, 10000, count_past_deadline, &deadline_ms);
    int step = sqlite3_step(st);
    if (deadline_ms > 0)
      sqlite3_progress_handler(lib->db, 0, NULL, NULL);
    if (step == SQLITE_ROW) {
      int64_t got = sqlite3_column_int64(st, 0);
      *capped = got > cap;
      *n = got > cap ? cap : got;
    } else if (step == SQLITE_INTERRUPT)
      rc = tq_err_set(err, TQ_ETIMEOUT, "counting a collection: out of time");
    else
      rc = lib_db_err(lib, err, "counting a collection");
  }
  sqlite3_finalize(st);
  tq_criteria_free(crit);
  tq_query_free(&q);
  return rc;
}
