/* internal.h: what the files of the library part share: the handle, the statement cache,
 * the reference tables. Not a public header. */
#ifndef TQ_LIBRARY_INTERNAL_H
#define TQ_LIBRARY_INTERNAL_H

#include <sqlite3.h>
#include <sys/types.h>

#include "tqhost/library.h"

/* Prepared statements, compiled on first use and kept for the life of the handle. */
typedef enum lib_stmt_id {
  ST_OBJ_INSERT,
  ST_OBJ_MERGE,
  ST_OBJ_FIND,
  ST_SRC_BY_NAME,
  ST_SRC_INSERT,
  ST_TAG_ID,
  ST_TAG_INSERT,
  ST_ITYPE_ID,
  ST_READ_OBJECT,
  ST_READ_SOURCES,
  ST_READ_ATTRS,
  ST_READ_TAGS,
  ST_READ_LINKS,
  ST_LINK_PUT,
  ST_READ_BEGIN,
  ST_READ_END,
  ST__COUNT
} lib_stmt_id;

/* A small open-addressing map from a name to an id (sources, tags), reset on rollback since
 * rows created inside a rolled-back transaction vanish. */
typedef struct lib_name_map {
  char **names;
  int64_t *ids;
  size_t cap, len;
} lib_name_map;

#define LIB_ADHOC_MAX 64

/* Rows queued for batched writes (rows.c): tq_lib_rows whose texts are copies in the arena. */
typedef enum lib_queue_id { LQ_SOURCES, LQ_ATTRS, LQ_TAGS, LQ_TOUCHED, LQ__COUNT } lib_queue_id;
typedef struct lib_chunk {
  struct lib_chunk *next;
  size_t size, used;
  char data[];
} lib_chunk;
typedef struct lib_arena {
  lib_chunk *head;
} lib_arena;
#define LIB_ARENA_CHUNK (256u << 10)
/* Queued rows (all queues) that trigger a write. */
#define LIB_QUEUE_FLUSH 65536

/* SQLite's automatic checkpoint threshold (WAL frames), the library's default. */
#define LIB_WAL_AUTOCHECKPOINT 1000

struct tq_lib {
  sqlite3 *db;
  char *path;
  int depth;   /* nested begin count */
  int touched; /* objects touched in the open transaction need recompute */
  sqlite3_stmt *stmts[ST__COUNT];
  lib_name_map sources;
  lib_name_map tags;
  /* Statements of one-off writes (score.c), cached by the address of their SQL literal. */
  struct {
    const char *sql;
    sqlite3_stmt *st;
  } adhoc[LIB_ADHOC_MAX];
  int n_adhoc;
  /* Batched writes (rows.c). A failed batch write fails the transaction's commit. */
  tq_lib_rows queues[LQ__COUNT];
  sqlite3_stmt *queue_stmts[LQ__COUNT];
  lib_arena arena;
  size_t queued;
  int queue_failed;
  tq_err queue_err;
};

/* Sets err from the database's last error with context; returns TQ_EDB (or TQ_EBUSY-like
 * TQ_ETIMEOUT when the lock wait ran out). */
tq_code lib_db_err(tq_lib *lib, tq_err *err, const char *what);
/* The statement of the SQL literal sql, prepared once and kept (sql must be a string literal
 * or otherwise outlive the handle), reset and with bindings cleared. NULL on failure. */
sqlite3_stmt *lib_stmt_sql(tq_lib *lib, const char *sql, tq_err *err);
/* The cached prepared statement id, reset and with bindings cleared. NULL on failure. */
sqlite3_stmt *lib_stmt(tq_lib *lib, lib_stmt_id id, tq_err *err);
/* The cached statement id without writing the queued rows first: only for statements that
 * touch none of the queued tables (object rows, names), used while queueing. */
sqlite3_stmt *lib_stmt_put(tq_lib *lib, lib_stmt_id id, tq_err *err);

/* Batched writes (rows.c): registers tq_rows on the connection; queues one row (cells as
 * many as the queue's columns; texts are copied); empties the queues without writing them
 * (rollback); frees them (close). */
tq_code lib_rows_register(tq_lib *lib, tq_err *err);
tq_code lib_queue_row(tq_lib *lib, lib_queue_id id, const tq_lib_cell *cells, tq_err *err);
void lib_queues_drop(tq_lib *lib);
void lib_queues_free(tq_lib *lib);
/* Writes the queues (each in one statement) if any row waits; a failure is also kept for
 * the commit to report. */
tq_code lib_queues_settle(tq_lib *lib, tq_err *err);

/* The columns of an object's own row, and the FROM clause they need (ST_READ_OBJECT, the
 * heads of batch.c); lib_object_row fills o from a row of them and returns non-zero when out
 * of memory. */
#define LIB_OBJECT_ROW                                                                             \
  "SELECT o.id, o.type, t.name, t.class, o.value, o.description, o.status, o.score_gen,"           \
  " o.score_manual, o.score, o.published_at, o.created_at, o.updated_at, o.expires_at,"            \
  " o.expire_exception FROM objects o LEFT JOIN indicator_types t ON t.id=o.itype_id"
int lib_object_row(sqlite3_stmt *st, tq_object *o);

/* Runs SQL with no result rows. */
tq_code lib_exec(tq_lib *lib, const char *sql, tq_err *err);

/* Schema and reference data (schema.c). */
/* The schema version lib_migrate brings a library to. */
int lib_schema_current(void);
tq_code lib_migrate(tq_lib *lib, tq_err *err);
extern const unsigned int LIB_APPLICATION_ID;

/* Name maps (names.c). */
int64_t lib_map_get(const lib_name_map *m, const char *name);
tq_code lib_map_put(lib_name_map *m, const char *name, int64_t id);
void lib_map_clear(lib_name_map *m);

/* The id of name in a name table (sources, tags) through the map m: looked up with the get
 * statement, created with the insert statement (bound: name[, kind, now]) when missing. */
tq_code lib_named_id(tq_lib *lib, lib_name_map *m, lib_stmt_id get, lib_stmt_id insert,
                     const char *name, const char *kind, int64_t *id, tq_err *err);
/* The id of the source named name, created with defaults (kind) when missing. */
tq_code lib_source_id(tq_lib *lib, const char *name, const char *kind, int64_t *id, tq_err *err);
/* Marks an object for score and expiration recompute at commit. */
tq_code lib_touch(tq_lib *lib, int64_t object_id, tq_err *err);
/* Recomputes the score and expiration of every touched object (score.c). */
tq_code lib_recompute_touched(tq_lib *lib, tq_err *err);
/* The id of an indicator type name (canonical), 0 if unknown. */
int64_t lib_itype_id(const char *canonical_name);
/* c's SQL text as a query over a library runs it (criteria.c): terms whose plan depends on
 * their size (score comparisons, sets) probed and rewritten; the same parameters, in the same
 * order, bind it (tq_criteria_bind). Appended to out. */
tq_code lib_criteria_sql_planned(tq_lib *lib, const tq_criteria *c, tq_buf *out);
/* A user's value pattern (criteria.c): '%' a wildcard, "\\%" a literal percent, '_' and other
 * backslashes literal. Returns malloc'd LIKE text (ESCAPE '\\') when *wild, else the literal
 * value to compare for equality. */
char *lib_like_pattern(const char *s, size_t n, int *wild);
/* Registers the SQL function tq_score_gen(smax, rules, revoked) on the connection (score.c):
 * the one computation of a generated score, used by the recompute and the explanation. */
tq_code lib_score_register(tq_lib *lib, tq_err *err);
/* Canonical value of an indicator for identity, malloc'd into *out; *itype_out is the
 * canonical type name (static). */
tq_code lib_indicator_identity(const char *itype, const char *value, const char **itype_out,
                               char **out, tq_err *err);

/* tq_lib_object_put inside an open transaction, also giving the value as stored (canonical,
 * malloc'd into *value_out when non-NULL). */
tq_code lib_object_put_value(tq_lib *lib, const tq_object_in *in, int64_t *id_out, int *created,
                             char **value_out, tq_err *err);

/* TQ_EINVAL unless text (what names it in the message) is well-formed UTF-8 of at most max
 * bytes. NULL passes: whether a field may be missing is its caller's check. */
tq_code lib_text_check(const char *what, const char *text, size_t max, tq_err *err);

#endif
