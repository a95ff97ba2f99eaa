/* refs.c: the STIX bookkeeping of the ingest in the library's own database: which versions a
 * feed has ingested (stix_seen, the idempotency key), which library objects a STIX id became
 * (stix_refs, so that relationships and report refs resolve across pages and polls), and the
 * links still waiting for their other end (stix_pending). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feed_int.h"

static const char *const SQL[FS__COUNT] = {
    [FS_SEEN_GET] = "SELECT modified_s, modified_ns FROM stix_seen WHERE feed=?1 AND stix_id=?2",
    [FS_SEEN_PUT] = "INSERT INTO stix_seen(feed,stix_id,modified_s,modified_ns) VALUES(?1,?2,?3,?4)"
                    " ON CONFLICT(feed,stix_id) DO UPDATE SET modified_s=excluded.modified_s,"
                    " modified_ns=excluded.modified_ns",
    [FS_REF_GET] = "SELECT object_id FROM stix_refs WHERE stix_id=?1",
    [FS_PENDING_PUT] = "INSERT OR IGNORE INTO stix_pending(feed,from_id,to_id,link_type)"
                       " VALUES(?1,?2,?3,?4)",
    [FS_PENDING_DEL] = "DELETE FROM stix_pending WHERE feed=?1 AND from_id=?2 AND to_id=?3"
                       " AND link_type=?4",
    /* CROSS JOIN: the page outside, one index probe of stix_seen per object inside */
    [FS_SEEN_PAGE] = "SELECT r.c0, s.modified_s, s.modified_ns FROM tq_rows(?2) r CROSS"
                     " JOIN stix_seen s ON s.feed=?1 AND s.stix_id=r.c1",
    [FS_SEEN_WRITE] = "INSERT INTO stix_seen(feed,stix_id,modified_s,modified_ns)"
                      " SELECT ?1,c0,c1,c2 FROM tq_rows(?2) WHERE true"
                      " ON CONFLICT(feed,stix_id) DO UPDATE SET modified_s=excluded.modified_s,"
                      " modified_ns=excluded.modified_ns",
    [FS_REF_WRITE] = "INSERT OR IGNORE INTO stix_refs(stix_id,object_id)"
                     " SELECT c0,c1 FROM tq_rows(?1)",
};

sqlite3_stmt *feed_stmt(tq_feed_ingest *in, feed_stmt_id id, tq_err *err) {
  sqlite3_stmt *st = in->st[id];
  if (st == NULL) {
    if (sqlite3_prepare_v3(tq_lib_db(in->lib), SQL[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
        SQLITE_OK) {
      feed_db_err(in->lib, err, "preparing the ingest");
      return NULL;
    }
    in->st[id] = st;
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return st;
}

static uint64_t id_hash(const char *s);

/* next_same of every object of the page, through a scratch hash of the ids. */
static tq_code link_same_ids(tq_feed_ingest *in, const tq_stix_page *page, tq_err *err) {
  size_t n = page->n_objects, cap = 16;
  while (cap < 2 * n)
    cap *= 2;
  if (cap > in->cap_slots) {
    size_t *v = realloc(in->slots, cap * sizeof *v);
    if (v == NULL)
      return tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
    in->slots = v;
    in->cap_slots = cap;
  }
  memset(in->slots, 0, cap * sizeof *in->slots); /* slot = index + 1; 0 = empty */
  for (size_t i = n; i-- > 0;) {
    const char *id = page->objects[i].id;
    size_t k = id_hash(id) & (cap - 1);
    while (in->slots[k] && strcmp(page->objects[in->slots[k] - 1].id, id) != 0)
      k = (k + 1) & (cap - 1);
    in->page_seen[i].next_same = in->slots[k] ? in->slots[k] - 1 : SIZE_MAX;
    in->slots[k] = i + 1;
  }
  return TQ_OK;
}

tq_code feed_page_begin(tq_feed_ingest *in, const tq_stix_page *page, tq_err *err) {
  size_t n = page->n_objects;
  in->n_page_ids = 0;
  in->look.n = in->seen_q.n = in->refs_q.n = 0;
  in->look.ncol = 2;
  in->seen_q.ncol = 3;
  in->refs_q.ncol = 2;
  if (n > in->cap_page_seen) {
    struct feed_seen_slot *v = realloc(in->page_seen, n * sizeof *v);
    if (v == NULL)
      return tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
    in->page_seen = v;
    in->cap_page_seen = n;
  }
  tq_code rc = TQ_OK;
  for (size_t i = 0; rc == TQ_OK && i < n; i++) {
    in->page_seen[i].has = 0;
    tq_lib_cell row[2] = {{.i = (int64_t)i}, {.text = page->objects[i].id}};
    rc = tq_lib_rows_add(&in->look, row, err);
  }
  if (rc == TQ_OK && n)
    rc = link_same_ids(in, page, err);
  if (rc != TQ_OK || n == 0)
    return rc;
  sqlite3_stmt *st = feed_stmt(in, FS_SEEN_PAGE, err);
  if (st == NULL)
    return TQ_EDB;
  sqlite3_bind_text(st, 1, in->feed, -1, SQLITE_STATIC);
  tq_lib_rows_bind(st, 2, &in->look);
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t i = sqlite3_column_int64(st, 0);
    if (i < 0 || (size_t)i >= n)
      continue;
    in->page_seen[i].has = 1;
    in->page_seen[i].v = (tq_stix_time){sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2)};
  }
  sqlite3_reset(st);
  return step == SQLITE_DONE ? TQ_OK : feed_db_err(in->lib, err, "reading stix_seen");
}

int feed_page_seen(const tq_feed_ingest *in, size_t i, tq_stix_time version) {
  const struct feed_seen_slot *s = &in->page_seen[i];
  return s->has && tq_stix_time_cmp(version, s->v) <= 0;
}

tq_code feed_page_seen_put(tq_feed_ingest *in, const tq_stix_page *page, size_t i,
                           tq_stix_time version, tq_err *err) {
  tq_lib_cell row[3] = {
      {.text = page->objects[i].id}, {.i = version.seconds}, {.i = version.nanos}};
  tq_code rc = tq_lib_rows_add(&in->seen_q, row, err);
  for (size_t j = in->page_seen[i].next_same; rc == TQ_OK && j != SIZE_MAX;
       j = in->page_seen[j].next_same) {
    struct feed_seen_slot *s = &in->page_seen[j];
    if (!s->has || tq_stix_time_cmp(version, s->v) > 0) {
      s->has = 1;
      s->v = version;
    }
  }
  return rc;
}

tq_code feed_page_write(tq_feed_ingest *in, tq_err *err) {
  if (in->seen_q.n) {
    sqlite3_stmt *st = feed_stmt(in, FS_SEEN_WRITE, err);
    if (st == NULL)
      return TQ_EDB;
    sqlite3_bind_text(st, 1, in->feed, -1, SQLITE_STATIC);
    tq_lib_rows_bind(st, 2, &in->seen_q);
    if (sqlite3_step(st) != SQLITE_DONE)
      return feed_db_err(in->lib, err, "writing stix_seen");
    sqlite3_reset(st);
  }
  if (in->refs_q.n) {
    sqlite3_stmt *st = feed_stmt(in, FS_REF_WRITE, err);
    if (st == NULL)
      return TQ_EDB;
    tq_lib_rows_bind(st, 1, &in->refs_q);
    if (sqlite3_step(st) != SQLITE_DONE)
      return feed_db_err(in->lib, err, "writing stix_refs");
    sqlite3_reset(st);
  }
  in->seen_q.n = in->refs_q.n = 0;
  return TQ_OK;
}

/* Notes stix_id as mapped in this page (the pending links it may complete are looked up at
 * the end of the page). An object that became several library objects comes in a row. */
static tq_code note_page_id(tq_feed_ingest *in, const char *stix_id, tq_err *err) {
  if (in->n_page_ids && strcmp(in->page_ids[in->n_page_ids - 1], stix_id) == 0)
    return TQ_OK;
  if (in->n_page_ids == in->cap_page_ids) {
    size_t cap = in->cap_page_ids ? in->cap_page_ids * 2 : 256;
    const char **v = realloc(in->page_ids, cap * sizeof *v);
    if (v == NULL)
      return tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
    in->page_ids = v;
    in->cap_page_ids = cap;
  }
  in->page_ids[in->n_page_ids++] = stix_id;
  return TQ_OK;
}

tq_code feed_seen(tq_feed_ingest *in, const char *id, tq_stix_time version, int *seen,
                  tq_err *err) {
  sqlite3_stmt *st = feed_stmt(in, FS_SEEN_GET, err);
  if (st == NULL)
    return TQ_EDB;
  sqlite3_bind_text(st, 1, in->feed, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  *seen = 0;
  if (step == SQLITE_ROW) {
    tq_stix_time had = {sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1)};
    *seen = tq_stix_time_cmp(version, had) <= 0;
  } else if (step != SQLITE_DONE) {
    return feed_db_err(in->lib, err, "reading stix_seen");
  }
  sqlite3_reset(st);
  return TQ_OK;
}

tq_code feed_seen_put(tq_feed_ingest *in, const char *id, tq_stix_time version, tq_err *err) {
  sqlite3_stmt *st = feed_stmt(in, FS_SEEN_PUT, err);
  if (st == NULL)
    return TQ_EDB;
  sqlite3_bind_text(st, 1, in->feed, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, version.seconds);
  sqlite3_bind_int(st, 4, version.nanos);
  return sqlite3_step(st) == SQLITE_DONE ? TQ_OK : feed_db_err(in->lib, err, "writing stix_seen");
}

tq_code feed_ref_put(tq_feed_ingest *in, const char *stix_id, int64_t object_id, tq_err *err) {
  tq_lib_cell row[2] = {{.text = stix_id}, {.i = object_id}};
  tq_code rc = tq_lib_rows_add(&in->refs_q, row, err);
  return rc == TQ_OK ? note_page_id(in, stix_id, err) : rc;
}

tq_code feed_ref_get(tq_feed_ingest *in, const char *stix_id, tq_err *err) {
  sqlite3_stmt *st = feed_stmt(in, FS_REF_GET, err);
  if (st == NULL)
    return TQ_EDB;
  sqlite3_bind_text(st, 1, stix_id, -1, SQLITE_STATIC);
  in->n_ids = 0;
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (in->n_ids == in->cap_ids) {
      size_t cap = in->cap_ids ? in->cap_ids * 2 : 16;
      int64_t *v = realloc(in->ids, cap * sizeof *v);
      if (v == NULL)
        return tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
      in->ids = v;
      in->cap_ids = cap;
    }
    in->ids[in->n_ids++] = sqlite3_column_int64(st, 0);
  }
  sqlite3_reset(st);
  return step == SQLITE_DONE ? TQ_OK : feed_db_err(in->lib, err, "reading stix_refs");
}

static tq_code pending_op(tq_feed_ingest *in, feed_stmt_id id, const char *from, const char *to,
                          const char *link_type, tq_err *err) {
  sqlite3_stmt *st = feed_stmt(in, id, err);
  if (st == NULL)
    return TQ_EDB;
  sqlite3_bind_text(st, 1, in->feed, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, link_type ? link_type : "", -1, SQLITE_STATIC);
  return sqlite3_step(st) == SQLITE_DONE ? TQ_OK
                                         : feed_db_err(in->lib, err, "writing stix_pending");
}

/* Links both ends when they are known; *linked says whether they were. */
static tq_code link_known(tq_feed_ingest *in, const char *from_id, const char *to_id,
                          const char *link_type, int *linked, tq_err *err) {
  *linked = 0;
  tq_code rc = feed_ref_get(in, from_id, err);
  if (rc != TQ_OK || in->n_ids == 0)
    return rc;
  size_t n_from = in->n_ids;
  int64_t from_local[8], *from = n_from <= 8 ? from_local : malloc(n_from * sizeof *from);
  if (from == NULL)
    return tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
  memcpy(from, in->ids, n_from * sizeof *from);
  rc = feed_ref_get(in, to_id, err);
  for (size_t i = 0; rc == TQ_OK && in->n_ids && i < n_from; i++)
    for (size_t k = 0; rc == TQ_OK && k < in->n_ids; k++)
      if (from[i] != in->ids[k]) {
        rc = tq_lib_link(in->lib, from[i], in->ids[k], in->source,
                         link_type && *link_type ? link_type : NULL, err);
        in->sum->links += rc == TQ_OK;
      }
  if (rc == TQ_OK)
    *linked = in->n_ids > 0;
  if (from != from_local)
    free(from);
  return rc;
}

tq_code feed_link_refs(tq_feed_ingest *in, const char *from_id, const char *to_id,
                       const char *link_type, tq_err *err) {
  int linked = 0;
  tq_code rc = link_known(in, from_id, to_id, link_type, &linked, err);
  if (rc == TQ_OK && !linked)
    rc = pending_op(in, FS_PENDING_PUT, from_id, to_id, link_type, err);
  return rc;
}

typedef struct pending_row {
  char *from, *to, *type;
} pending_row;

/* The STIX ids mapped in this page as a JSON list, for one query over all of them. Ids are
 * checked to be "<type>--<uuid>" of [a-z0-9-] when parsed: nothing in them needs escaping. */
static tq_code page_ids_json(const tq_feed_ingest *in, tq_buf *out) {
  tq_code rc = tq_buf_addc(out, '[');
  for (size_t i = 0; rc == TQ_OK && i < in->n_page_ids; i++)
    rc = tq_buf_printf(out, "%s\"%s\"", i ? "," : "", in->page_ids[i]);
  return rc == TQ_OK ? tq_buf_addc(out, ']') : rc;
}

/* ---- the STIX ids of the page as a set ------------------------------------------------ */

static uint64_t id_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* An open-addressing set over in->page_ids (load <= 1/2), rebuilt for each page. */
static tq_code page_set_build(tq_feed_ingest *in, tq_err *err) {
  size_t cap = 16;
  while (cap < 2 * in->n_page_ids)
    cap *= 2;
  if (cap > in->cap_set) {
    const char **v = realloc(in->set, cap * sizeof *v);
    if (v == NULL)
      return tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
    in->set = v;
    in->cap_set = cap;
  }
  in->mask_set = cap - 1;
  memset(in->set, 0, cap * sizeof *in->set);
  for (size_t i = 0; i < in->n_page_ids; i++) {
    size_t k = id_hash(in->page_ids[i]) & in->mask_set;
    while (in->set[k] && strcmp(in->set[k], in->page_ids[i]) != 0)
      k = (k + 1) & in->mask_set;
    in->set[k] = in->page_ids[i];
  }
  return TQ_OK;
}

static int page_set_has(const tq_feed_ingest *in, const char *id) {
  for (size_t k = id_hash(id) & in->mask_set; in->set[k]; k = (k + 1) & in->mask_set)
    if (strcmp(in->set[k], id) == 0)
      return 1;
  return 0;
}

/* The pending links of the feed that an id of this page completes. While the feed has few
 * pending links (the usual case: the other end comes a page or two later) they are all read
 * and matched against the page's ids in memory; past that, the page's ids go to SQLite as
 * one JSON list, so that the cost stays with the page and not with the backlog. */
static tq_code pending_query(tq_feed_ingest *in, tq_buf *ids, sqlite3_stmt **out, int *scan,
                             tq_err *err) {
  sqlite3 *db = tq_lib_db(in->lib);
  sqlite3_stmt *st = NULL;
  int64_t few = 4 * (int64_t)in->n_page_ids + 64, n = 0;
  if (sqlite3_prepare_v2(db,
                         "SELECT count(*) FROM (SELECT 1 FROM stix_pending WHERE feed=?1"
                         " LIMIT ?2)",
                         -1, &st, NULL) != SQLITE_OK)
    return feed_db_err(in->lib, err, "counting stix_pending");
  sqlite3_bind_text(st, 1, in->feed, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, few);
  if (sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  *scan = n < few;
  if (*scan && page_set_build(in, err) != TQ_OK)
    return TQ_ENOMEM;
  if (!*scan && page_ids_json(in, ids) != TQ_OK)
    return tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
  const char *sql = *scan ? "SELECT from_id,to_id,link_type FROM stix_pending WHERE feed=?1"
                          : "SELECT from_id,to_id,link_type FROM stix_pending WHERE feed=?1 AND"
                            " from_id IN (SELECT value FROM json_each(?2)) UNION"
                            " SELECT from_id,to_id,link_type FROM stix_pending WHERE feed=?1 AND"
                            " to_id IN (SELECT value FROM json_each(?2))";
  if (sqlite3_prepare_v2(db, sql, -1, out, NULL) != SQLITE_OK)
    return feed_db_err(in->lib, err, "reading stix_pending");
  sqlite3_bind_text(*out, 1, in->feed, -1, SQLITE_STATIC);
  if (!*scan)
    sqlite3_bind_text(*out, 2, ids->data, (int)ids->len, SQLITE_STATIC);
  return TQ_OK;
}

/* Reads the pending rows that touch an id mapped in this page. */
static tq_code pending_candidates(tq_feed_ingest *in, pending_row **out, size_t *n, tq_err *err) {
  sqlite3_stmt *st = NULL;
  *out = NULL;
  *n = 0;
  if (in->n_page_ids == 0)
    return TQ_OK;
  tq_buf ids;
  tq_buf_init(&ids, (size_t)1 << 30);
  int scan = 0;
  tq_code qrc = pending_query(in, &ids, &st, &scan, err);
  if (qrc != TQ_OK) {
    sqlite3_finalize(st);
    tq_buf_free(&ids);
    return qrc;
  }
  pending_row *v = NULL;
  size_t len = 0, cap = 0;
  tq_code rc = TQ_OK;
  int step;
  while (rc == TQ_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
    if (scan && !page_set_has(in, (const char *)sqlite3_column_text(st, 0)) &&
        !page_set_has(in, (const char *)sqlite3_column_text(st, 1)))
      continue;
    if (len == cap) {
      cap = cap ? cap * 2 : 16;
      pending_row *nv = realloc(v, cap * sizeof *v);
      if (nv == NULL) {
        rc = tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
        break;
      }
      v = nv;
    }
    v[len].from = tq_strdup((const char *)sqlite3_column_text(st, 0));
    v[len].to = tq_strdup((const char *)sqlite3_column_text(st, 1));
    v[len].type = tq_strdup((const char *)sqlite3_column_text(st, 2));
    len++;
    if (!v[len - 1].from || !v[len - 1].to || !v[len - 1].type)
      rc = tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = feed_db_err(in->lib, err, "reading stix_pending");
  sqlite3_finalize(st);
  tq_buf_free(&ids);
  *out = v;
  *n = len;
  return rc;
}

tq_code feed_resolve_pending(tq_feed_ingest *in, tq_err *err) {
  pending_row *v = NULL;
  size_t n = 0;
  tq_code rc = pending_candidates(in, &v, &n, err);
  for (size_t i = 0; rc == TQ_OK && i < n; i++) {
    int linked = 0;
    rc = link_known(in, v[i].from, v[i].to, v[i].type, &linked, err);
    if (rc == TQ_OK && linked)
      rc = pending_op(in, FS_PENDING_DEL, v[i].from, v[i].to, v[i].type, err);
  }
  for (size_t i = 0; i < n; i++) {
    free(v[i].from);
    free(v[i].to);
    free(v[i].type);
  }
  free(v);
  return rc;
}
