/* rows.c: writes batched across objects. Putting an object inserts its row at once (its id is
 * needed) but only queues its source links, attributes, tags and its mark for recompute;
 * the queues go to the database in one INSERT ... SELECT per table, reading the queued rows
 * from C memory through "tq_rows", an eponymous virtual table bound to a row array with
 * sqlite3_bind_pointer (SQLite's carray extension is the model). A statement per row costs
 * about twice the row itself; a page of feed objects queues some twenty thousand rows.
 *
 * The queues are written before any other statement of the library runs (lib_stmt,
 * lib_stmt_sql, tq_lib_db), at commit, and when they grow past LIB_QUEUE_FLUSH rows; a
 * rollback drops them. So no reader ever sees the library without them. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- the virtual table ---------------------------------------------------------------------- */

#define ROWS_PTR_TYPE "tq_rows"
#define ROWS_COLS 8 /* c0..c7; the hidden column 8 takes the bound tq_lib_rows */

typedef struct rows_cursor {
  sqlite3_vtab_cursor base;
  const tq_lib_rows *q;
  size_t i;
} rows_cursor;

static int rows_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **errp) {
  (void)aux;
  (void)argc;
  (void)argv;
  (void)errp;
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(c0,c1,c2,c3,c4,c5,c6,c7,rows HIDDEN)");
  if (rc != SQLITE_OK)
    return rc;
  *out = sqlite3_malloc(sizeof **out);
  if (*out == NULL)
    return SQLITE_NOMEM;
  memset(*out, 0, sizeof **out);
  sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
  return SQLITE_OK;
}

static int rows_disconnect(sqlite3_vtab *vt) {
  sqlite3_free(vt);
  return SQLITE_OK;
}

/* Only usable with the row array given: tq_rows(?). */
static int rows_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  (void)vt;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (c->iColumn == ROWS_COLS && c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->usable) {
      info->aConstraintUsage[i].argvIndex = 1;
      info->aConstraintUsage[i].omit = 1;
      info->estimatedCost = 1;
      info->estimatedRows = 1000;
      return SQLITE_OK;
    }
  }
  return SQLITE_CONSTRAINT;
}

static int rows_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
  (void)vt;
  rows_cursor *c = sqlite3_malloc(sizeof *c);
  if (c == NULL)
    return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  *out = &c->base;
  return SQLITE_OK;
}

static int rows_close(sqlite3_vtab_cursor *cur) {
  sqlite3_free(cur);
  return SQLITE_OK;
}

static int rows_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc,
                       sqlite3_value **argv) {
  (void)idx;
  (void)idx_str;
  rows_cursor *c = (rows_cursor *)cur;
  c->q = argc == 1 ? sqlite3_value_pointer(argv[0], ROWS_PTR_TYPE) : NULL;
  c->i = 0;
  return SQLITE_OK;
}

static int rows_next(sqlite3_vtab_cursor *cur) {
  ((rows_cursor *)cur)->i++;
  return SQLITE_OK;
}

static int rows_eof(sqlite3_vtab_cursor *cur) {
  const rows_cursor *c = (const rows_cursor *)cur;
  return c->q == NULL || c->i >= c->q->n;
}

static int rows_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  const rows_cursor *c = (const rows_cursor *)cur;
  if (col >= c->q->ncol) {
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  }
  const tq_lib_cell *cell = &c->q->cells[c->i * (size_t)c->q->ncol + (size_t)col];
  if (cell->text)
    sqlite3_result_text(ctx, cell->text, -1, SQLITE_STATIC);
  else
    sqlite3_result_int64(ctx, cell->i);
  return SQLITE_OK;
}

static int rows_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid) {
  *rowid = (sqlite3_int64)((const rows_cursor *)cur)->i;
  return SQLITE_OK;
}

static const sqlite3_module ROWS_MODULE = {
    .iVersion = 0,
    .xConnect = rows_connect, /* eponymous only: no xCreate */
    .xBestIndex = rows_best_index,
    .xDisconnect = rows_disconnect,
    .xOpen = rows_open,
    .xClose = rows_close,
    .xFilter = rows_filter,
    .xNext = rows_next,
    .xEof = rows_eof,
    .xColumn = rows_column,
    .xRowid = rows_rowid,
};

tq_code lib_rows_register(tq_lib *lib, tq_err *err) {
  if (sqlite3_create_module_v2(lib->db, "tq_rows", &ROWS_MODULE, NULL, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "registering tq_rows");
  return TQ_OK;
}

/* ---- the queues --------------------------------------------------------------------------------
 */

/* The write of each queue: tq_rows(?1) gives its rows. */
static const char *const QUEUE_SQL[LQ__COUNT] = {
    [LQ_SOURCES] = ("INSERT INTO object_sources(object_id,source_id,reported_at,tlp)"
                    " SELECT c0,c1,c2,c3 FROM tq_rows(?1) WHERE true ON CONFLICT DO UPDATE SET"
                    " reported_at=max(reported_at,excluded.reported_at),"
                    " tlp=CASE WHEN excluded.tlp > 0 THEN excluded.tlp ELSE tlp END"),
    [LQ_ATTRS] = ("INSERT OR IGNORE INTO attributes(object_id,name,value,source_id,tlp,created_at)"
                  " SELECT c0,c1,c2,c3,c4,c5 FROM tq_rows(?1)"),
    [LQ_TAGS] = "INSERT OR IGNORE INTO object_tags(object_id,tag_id) SELECT c0,c1 FROM tq_rows(?1)",
    [LQ_TOUCHED] = "INSERT OR IGNORE INTO temp.touched(id) SELECT c0 FROM tq_rows(?1)",
};
static const int QUEUE_COLS[LQ__COUNT] = {
    [LQ_SOURCES] = 4, [LQ_ATTRS] = 6, [LQ_TAGS] = 2, [LQ_TOUCHED] = 1};

/* A copy of s in the queues' arena (kept until the queues are written or dropped). */
static const char *arena_strdup(lib_arena *a, const char *s) {
  size_t n = strlen(s) + 1;
  if (a->head == NULL || a->head->used + n > a->head->size) {
    size_t size = n > LIB_ARENA_CHUNK ? n : LIB_ARENA_CHUNK;
    lib_chunk *c = malloc(sizeof *c + size);
    if (c == NULL)
      return NULL;
    c->size = size;
    c->used = 0;
    c->next = a->head;
    a->head = c;
  }
  char *p = a->head->data + a->head->used;
  memcpy(p, s, n);
  a->head->used += n;
  return p;
}

/* Frees every chunk but the newest, which is emptied for reuse. */
static void arena_reset(lib_arena *a) {
  if (a->head == NULL)
    return;
  lib_chunk *c = a->head->next;
  while (c) {
    lib_chunk *next = c->next;
    free(c);
    c = next;
  }
  a->head->next = NULL;
  a->head->used = 0;
}

tq_code tq_lib_rows_add(tq_lib_rows *r, const tq_lib_cell *row, tq_err *err) {
  if (r->ncol < 1 || r->ncol > ROWS_COLS)
    return tq_err_set(err, TQ_EINTERNAL, "tq_rows: %d columns (1..%d)", r->ncol, ROWS_COLS);
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 1024;
    tq_lib_cell *v = realloc(r->cells, cap * (size_t)r->ncol * sizeof *v);
    if (v == NULL)
      return tq_err_set(err, TQ_ENOMEM, "out of memory");
    r->cells = v;
    r->cap = cap;
  }
  memcpy(&r->cells[r->n * (size_t)r->ncol], row, (size_t)r->ncol * sizeof *row);
  r->n++;
  return TQ_OK;
}

void tq_lib_rows_free(tq_lib_rows *r) {
  free(r->cells);
  r->cells = NULL;
  r->n = r->cap = 0;
}

int tq_lib_rows_bind(sqlite3_stmt *st, int param, const tq_lib_rows *r) {
  return sqlite3_bind_pointer(st, param, (void *)r, ROWS_PTR_TYPE, NULL);
}

tq_code lib_queue_row(tq_lib *lib, lib_queue_id id, const tq_lib_cell *cells, tq_err *err) {
  tq_lib_rows *q = &lib->queues[id];
  tq_lib_cell row[ROWS_COLS];
  q->ncol = QUEUE_COLS[id];
  for (int i = 0; i < q->ncol; i++) {
    row[i] = cells[i];
    if (cells[i].text && (row[i].text = arena_strdup(&lib->arena, cells[i].text)) == NULL)
      return tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  tq_code rc = tq_lib_rows_add(q, row, err);
  if (rc != TQ_OK)
    return rc;
  lib->queued++;
  if (lib->queued >= LIB_QUEUE_FLUSH)
    return lib_queues_settle(lib, err);
  return TQ_OK;
}

/* Writes every non-empty queue with its one statement, then empties them all. */
static tq_code queues_flush(tq_lib *lib, tq_err *err) {
  tq_code rc = TQ_OK;
  for (int id = 0; rc == TQ_OK && id < LQ__COUNT; id++) {
    tq_lib_rows *q = &lib->queues[id];
    if (q->n == 0)
      continue;
    sqlite3_stmt **st = &lib->queue_stmts[id];
    if (*st == NULL && sqlite3_prepare_v3(lib->db, QUEUE_SQL[id], -1, SQLITE_PREPARE_PERSISTENT, st,
                                          NULL) != SQLITE_OK) {
      rc = lib_db_err(lib, err, "preparing a batched write");
      break;
    }
    tq_lib_rows_bind(*st, 1, q);
    if (sqlite3_step(*st) != SQLITE_DONE)
      rc = lib_db_err(lib, err, "writing a batch of rows");
    sqlite3_reset(*st);
    sqlite3_clear_bindings(*st);
  }
  lib_queues_drop(lib);
  return rc;
}

void lib_queues_drop(tq_lib *lib) {
  for (int id = 0; id < LQ__COUNT; id++)
    lib->queues[id].n = 0;
  lib->queued = 0;
  arena_reset(&lib->arena);
}

void lib_queues_free(tq_lib *lib) {
  for (int id = 0; id < LQ__COUNT; id++) {
    tq_lib_rows_free(&lib->queues[id]);
    sqlite3_finalize(lib->queue_stmts[id]);
  }
  arena_reset(&lib->arena);
  free(lib->arena.head);
  lib->arena.head = NULL;
}

tq_code lib_queues_settle(tq_lib *lib, tq_err *err) {
  if (lib->queued > 0 && !lib->queue_failed && queues_flush(lib, &lib->queue_err) != TQ_OK)
    lib->queue_failed = 1;
  if (!lib->queue_failed)
    return TQ_OK;
  if (err)
    *err = lib->queue_err;
  return lib->queue_err.code ? lib->queue_err.code : TQ_EDB;
}
