/* lib.c: opening a library file safely (a foreign or damaged file is refused, never
 * written), the statement cache, and write transactions with deferred recompute. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const char *const STMT_SQL[ST__COUNT] = {
    [ST_OBJ_INSERT] =
        "INSERT INTO objects(type,itype_id,value,status,description,published_at,created_at,"
        "updated_at) VALUES(?1,?2,?3,coalesce(?4,1),?5,?6,?7,?7)"
        " ON CONFLICT(value,itype_id,type) DO NOTHING",
    [ST_OBJ_MERGE] = "UPDATE objects SET updated_at=?7, status=coalesce(?4,status),"
                     " description=coalesce(?5,description), rev=rev+1"
                     " WHERE value=?3 AND itype_id=?2 AND type=?1"
                     " RETURNING id",
    [ST_OBJ_FIND] = "SELECT id FROM objects WHERE value=?1 AND itype_id=?2 AND type=?3",
    [ST_SRC_BY_NAME] = "SELECT id FROM sources WHERE name=?1",
    [ST_SRC_INSERT] = "INSERT INTO sources(name,kind,created_at) VALUES(?1,?2,?3)",
    [ST_TAG_ID] = "SELECT id FROM tags WHERE name=?1",
    [ST_TAG_INSERT] = "INSERT INTO tags(name) VALUES(?1)",
    [ST_ITYPE_ID] = "SELECT id FROM indicator_types WHERE name=?1",
    [ST_READ_OBJECT] = LIB_OBJECT_ROW " WHERE o.id=?1",
    [ST_READ_SOURCES] =
        "SELECT s.name, s.id, os.tlp FROM object_sources os JOIN sources s ON s.id=os.source_id"
        " WHERE os.object_id=?1 ORDER BY os.reported_at, s.name",
    [ST_READ_ATTRS] = "SELECT a.name, a.value, s.name, a.tlp, a.id, a.source_id FROM attributes a"
                      " JOIN sources s"
                      " ON s.id=a.source_id WHERE a.object_id=?1"
                      " ORDER BY a.created_at, a.id",
    [ST_READ_TAGS] = "SELECT t.name, t.id FROM object_tags ot JOIN tags t ON t.id=ot.tag_id"
                     " WHERE ot.object_id=?1 ORDER BY t.name",
    [ST_READ_LINKS] = "SELECT l.id, o.id, o.type, o.value, t.name, l.link_type, s.name FROM links l"
                      " JOIN objects o ON o.id = CASE WHEN l.a=?1 THEN l.b ELSE l.a END"
                      " LEFT JOIN indicator_types t ON t.id=o.itype_id"
                      " JOIN sources s ON s.id=l.source_id WHERE l.a=?1 OR l.b=?1 ORDER BY l.id",
    [ST_LINK_PUT] = "INSERT OR IGNORE INTO links(a,b,source_id,link_type,created_at)"
                    " SELECT ?1,?2,?3,?4,?5 WHERE EXISTS(SELECT 1 FROM objects WHERE id=?1)"
                    " AND EXISTS(SELECT 1 FROM objects WHERE id=?2)",
    [ST_READ_BEGIN] = "BEGIN",
    [ST_READ_END] = "COMMIT",
};

tq_code lib_db_err(tq_lib *lib, tq_err *err, const char *what) {
  int code = sqlite3_errcode(lib->db) & 0xff;
  tq_code c = TQ_EDB;
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
    c = TQ_ECORRUPT;
  else if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
    c = TQ_ETIMEOUT;
  else if (code == SQLITE_NOMEM)
    c = TQ_ENOMEM;
  else if (code == SQLITE_CONSTRAINT)
    c = TQ_EINVAL;
  if (code == SQLITE_READONLY)
    return tq_err_set(err, c, "%s: %s: the library is read-only here (%s)", lib->path, what,
                      sqlite3_errmsg(lib->db));
  return tq_err_set(err, c, "%s: %s: %s", lib->path, what, sqlite3_errmsg(lib->db));
}

tq_code lib_exec(tq_lib *lib, const char *sql, tq_err *err) {
  if (lib->queued && lib_queues_settle(lib, err) != TQ_OK)
    return err ? err->code : TQ_EDB;
  char *msg = NULL;
  if (sqlite3_exec(lib->db, sql, NULL, NULL, &msg) == SQLITE_OK)
    return TQ_OK;
  sqlite3_free(msg);
  return lib_db_err(lib, err, "executing SQL");
}

sqlite3_stmt *lib_stmt_sql(tq_lib *lib, const char *sql, tq_err *err) {
  if (lib->queued && lib_queues_settle(lib, err) != TQ_OK)
    return NULL;
  sqlite3_stmt *st = NULL;
  for (int i = 0; i < lib->n_adhoc; i++)
    if (lib->adhoc[i].sql == sql)
      st = lib->adhoc[i].st;
  if (st == NULL) {
    if (lib->n_adhoc == LIB_ADHOC_MAX) {
      tq_err_set(err, TQ_EINTERNAL, "%s: statement cache full (LIB_ADHOC_MAX)", lib->path);
      return NULL;
    }
    if (sqlite3_prepare_v3(lib->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
      lib_db_err(lib, err, "preparing a statement");
      return NULL;
    }
    lib->adhoc[lib->n_adhoc].sql = sql;
    lib->adhoc[lib->n_adhoc++].st = st;
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return st;
}

sqlite3_stmt *lib_stmt(tq_lib *lib, lib_stmt_id id, tq_err *err) {
  if (lib->queued && lib_queues_settle(lib, err) != TQ_OK)
    return NULL;
  return lib_stmt_put(lib, id, err);
}

sqlite3_stmt *lib_stmt_put(tq_lib *lib, lib_stmt_id id, tq_err *err) {
  sqlite3_stmt *st = lib->stmts[id];
  if (st == NULL) {
    if (sqlite3_prepare_v3(lib->db, STMT_SQL[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
        SQLITE_OK) {
      lib_db_err(lib, err, "preparing a statement");
      return NULL;
    }
    lib->stmts[id] = st;
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return st;
}

/* Says whether the library is new (missing, or empty and being created) and refuses what is
 * not a regular file; the content is checked by check_magic once SQLite has the file open. */
static tq_code check_header(const char *path, int flags, int *is_new, tq_err *err) {
  struct stat sb;
  *is_new = 0;
  if (stat(path, &sb) != 0) {
    if (errno != ENOENT)
      return tq_err_set(err, TQ_EIO, "%s: %s", path, strerror(errno));
    if (!(flags & TQ_LIB_OPEN_CREATE))
      return tq_err_set(err, TQ_ENOTFOUND, "%s: no library here (run 'tqhost init' first)", path);
    *is_new = 1;
    return TQ_OK;
  }
  if (!S_ISREG(sb.st_mode))
    return tq_err_set(err, TQ_EINVAL, "%s: not a regular file", path);
  if (sb.st_size == 0) {
    if (!(flags & TQ_LIB_OPEN_CREATE))
      return tq_err_set(err, TQ_ENOTFOUND,
                        "%s: an empty file, not a tqhost library (run 'tqhost init' to make it "
                        "one); left untouched",
                        path);
    *is_new = 1;
    return TQ_OK;
  }
  return TQ_OK;
}

/* Refuses, before anything is read or written through SQL, a non-empty file that is not an
 * SQLite database. The header is read through SQLite's own descriptor: opening and closing the
 * file ourselves would release every POSIX lock this process holds on it (close() drops them
 * all), so a second open while another connection is in use (the bulk runner's writer) would
 * let another process checkpoint and delete the WAL under that connection. */
static tq_code check_magic(tq_lib *lib, tq_err *err) {
  sqlite3_file *file = NULL;
  char head[16] = {0};
  if (sqlite3_file_control(lib->db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
      file == NULL || file->pMethods == NULL)
    return tq_err_set(err, TQ_EIO, "%s: cannot read the file", lib->path);
  int rc = file->pMethods->xRead(file, head, sizeof head, 0);
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
    return tq_err_set(err, TQ_EIO, "%s: cannot read the file (SQLite error %d)", lib->path, rc);
  if (rc != SQLITE_OK || memcmp(head, "SQLite format 3", 16) != 0)
    return tq_err_set(err, TQ_ECORRUPT,
                      "%s: not a tqhost library (not an SQLite database); left untouched",
                      lib->path);
  return TQ_OK;
}

/* An existing SQLite file must carry tqhost's application id, or be empty of tables. */
static tq_code check_identity(tq_lib *lib, tq_err *err) {
  sqlite3_stmt *st = NULL;
  int appid = -1, tables = -1;
  if (sqlite3_prepare_v2(lib->db, "PRAGMA application_id", -1, &st, NULL) != SQLITE_OK)
    goto damaged;
  if (sqlite3_step(st) == SQLITE_ROW)
    appid = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (sqlite3_prepare_v2(lib->db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL) != SQLITE_OK)
    goto damaged;
  if (sqlite3_step(st) == SQLITE_ROW)
    tables = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (appid < 0 || tables < 0)
    goto damaged;
  if ((unsigned int)appid == LIB_APPLICATION_ID || (appid == 0 && tables == 0))
    return TQ_OK;
  return tq_err_set(err, TQ_ECORRUPT,
                    "%s: an SQLite database but not a tqhost library (application id %#x, %d "
                    "tables); left untouched",
                    lib->path, (unsigned)appid, tables);
damaged:
  return tq_err_set(err, TQ_ECORRUPT, "%s: damaged or unreadable database: %s; left untouched",
                    lib->path, sqlite3_errmsg(lib->db));
}

static tq_code set_pragmas(tq_lib *lib, int readonly, tq_err *err) {
  sqlite3_busy_timeout(lib->db, 60000);
  /* A CLI process opens and closes the library for each command: checkpointing the WAL on
   * every close costs fsyncs (milliseconds) for nothing; the next writer's auto-checkpoint does
   * it. The WAL stays beside the database between commands. */
  sqlite3_db_config(lib->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  /* A reader cannot change the journal mode (a library is in WAL mode since its init). */
  tq_code rc = lib_exec(lib,
                        readonly ? "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;"
                                 : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                   " PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;",
                        err);
  if (rc == TQ_OK)
    rc = lib_exec(lib, "CREATE TEMP TABLE IF NOT EXISTS touched(id INTEGER PRIMARY KEY)", err);
  return rc;
}

/* The SQLite URI of a file read as immutable: every byte but [A-Za-z0-9/._-] escaped. */
static char *immutable_uri(const char *path) {
  size_t n = strlen(path);
  char *uri = malloc(3 * n + 32), *p = uri;
  if (uri == NULL)
    return NULL;
  p += sprintf(p, "file:");
  for (const unsigned char *s = (const unsigned char *)path; *s; s++)
    if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
        strchr("/._-", *s))
      *p++ = (char)*s;
    else
      p += sprintf(p, "%%%02X", *s);
  strcpy(p, "?immutable=1");
  return uri;
}

/* Opens lib->db and checks that it is tqhost's. A read-only file in WAL mode needs its -wal
 * and -shm files, or a folder where SQLite may create them; without either, and with no WAL
 * (so no committed page lives outside the file), it is read as immutable. */
static tq_code open_db(tq_lib *lib, int readonly, int is_new, tq_err *err) {
  int oflags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
  if (is_new && !readonly)
    oflags |= SQLITE_OPEN_CREATE;
  for (int attempt = 0; attempt < 2; attempt++) {
    char *uri = attempt ? immutable_uri(lib->path) : NULL;
    if (attempt && uri == NULL)
      return tq_err_set(err, TQ_ENOMEM, "out of memory opening %s", lib->path);
    int orc = sqlite3_open_v2(uri ? uri : lib->path, &lib->db, oflags | (uri ? SQLITE_OPEN_URI : 0),
                              NULL);
    free(uri);
    if (orc != SQLITE_OK)
      return tq_err_set(err, TQ_EIO, "%s: cannot open: %s", lib->path,
                        lib->db ? sqlite3_errmsg(lib->db) : "out of memory");
    sqlite3_extended_result_codes(lib->db, 0);
    /* Before the first read: another process's checkpoint or WAL recovery holds the lock for a
     * moment, and without the timeout the identity check would take that for damage. */
    sqlite3_busy_timeout(lib->db, 60000);
    tq_code rc = is_new ? TQ_OK : check_magic(lib, err);
    if (rc != TQ_OK)
      return rc;
    rc = check_identity(lib, err);
    int code = sqlite3_errcode(lib->db);
    if (rc == TQ_OK || !readonly || attempt || (code != SQLITE_READONLY && code != SQLITE_CANTOPEN))
      return rc;
    char wal[4096];
    struct stat sb;
    snprintf(wal, sizeof wal, "%s-wal", lib->path);
    if (stat(wal, &sb) == 0 && sb.st_size > 0)
      return tq_err_set(err, TQ_EIO,
                        "%s: read-only, and its write-ahead log %s cannot be read without write "
                        "access to the folder: %s",
                        lib->path, wal, sqlite3_errmsg(lib->db));
    sqlite3_close(lib->db);
    lib->db = NULL;
  }
  return TQ_EINTERNAL; /* not reached: the second attempt returns */
}

/* SQLite counts every allocation in global statistics under one mutex unless told not to
 * before it initialises; the library never reads them, and the server's HTTP threads, each
 * on its own connection, would all take that mutex on every allocation. */
static pthread_once_t SQLITE_SETUP = PTHREAD_ONCE_INIT;
static void sqlite_setup(void) { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

tq_code tq_lib_open(const char *path, int flags, tq_lib **out, tq_err *err) {
  pthread_once(&SQLITE_SETUP, sqlite_setup); /* SQLITE_MISUSE, harmless, if already set up */
  int is_new = 0;
  tq_code rc = check_header(path, flags, &is_new, err);
  if (rc != TQ_OK)
    return rc;
  int readonly = (flags & TQ_LIB_OPEN_READONLY) || (!is_new && access(path, W_OK) != 0);
  if (readonly && is_new)
    return tq_err_set(err, TQ_EINVAL, "%s: a library opened read only cannot be created", path);
  tq_lib *lib = calloc(1, sizeof *lib);
  if (lib == NULL || (lib->path = strdup(path)) == NULL) {
    free(lib);
    return tq_err_set(err, TQ_ENOMEM, "out of memory opening %s", path);
  }
  rc = open_db(lib, readonly, is_new, err);
  if (rc == TQ_OK && !is_new && !(flags & TQ_LIB_OPEN_CREATE) && tq_lib_schema_version(lib) == 0)
    rc = tq_err_set(err, TQ_ENOTFOUND, "%s: empty database (run 'tqhost init' first)", path);
  if (rc == TQ_OK && readonly && tq_lib_schema_version(lib) != lib_schema_current())
    rc = tq_err_set(err, TQ_EINVAL,
                    "%s: read-only, and its schema version %d is not this tqhost's (%d): open it "
                    "writable once to upgrade it",
                    path, tq_lib_schema_version(lib), lib_schema_current());
  if (rc == TQ_OK)
    rc = set_pragmas(lib, readonly, err);
  if (rc == TQ_OK)
    rc = lib_rows_register(lib, err);
  if (rc == TQ_OK)
    rc = lib_score_register(lib, err);
  if (rc == TQ_OK && !readonly)
    rc = lib_migrate(lib, err);
  if (rc != TQ_OK)
    goto fail;
  *out = lib;
  return TQ_OK;
fail:
  tq_lib_close(lib);
  return rc;
}

void tq_lib_close(tq_lib *lib) {
  if (lib == NULL)
    return;
  for (int i = 0; i < ST__COUNT; i++)
    sqlite3_finalize(lib->stmts[i]);
  for (int i = 0; i < lib->n_adhoc; i++)
    sqlite3_finalize(lib->adhoc[i].st);
  lib_queues_free(lib);
  sqlite3_close(lib->db);
  lib_map_clear(&lib->sources);
  lib_map_clear(&lib->tags);
  free(lib->path);
  free(lib);
}

struct sqlite3_stmt *tq_lib_stmt(tq_lib *lib, const char *sql, tq_err *err) {
  return lib_stmt_sql(lib, sql, err);
}

struct sqlite3 *tq_lib_db(tq_lib *lib) {
  if (lib->queued)
    lib_queues_settle(lib, NULL); /* a failure fails the commit */
  return lib->db;
}

/* The savepoint of nesting level depth (2 and deeper). */
static void savepoint_sql(char *buf, size_t cap, const char *verb, int depth) {
  snprintf(buf, cap, "%s tq_sp%d", verb, depth);
}

tq_code tq_lib_begin(tq_lib *lib, tq_err *err) {
  if (lib->depth > 0) {
    /* Nested: a savepoint. lib_exec writes the queued rows first, so every row still queued
     * at an inner rollback was queued inside it. */
    char sql[40];
    savepoint_sql(sql, sizeof sql, "SAVEPOINT", lib->depth + 1);
    tq_code rc = lib_exec(lib, sql, err);
    if (rc == TQ_OK)
      lib->depth++;
    return rc;
  }
  lib->queue_failed = 0;
  tq_code rc = lib_exec(lib, "BEGIN IMMEDIATE", err);
  if (rc == TQ_OK)
    lib->depth = 1;
  return rc;
}

/* Resets every cached statement. One left on a row (a lookup that read its one row and
 * stopped) keeps a read transaction open after the commit, and while one is open the WAL can
 * never be checkpointed: it then grows by every page each commit writes, and so do the cost
 * of reading through it and the disk it takes. */
static void lib_stmts_release(tq_lib *lib) {
  for (int i = 0; i < ST__COUNT; i++)
    if (lib->stmts[i])
      sqlite3_reset(lib->stmts[i]);
  for (int i = 0; i < lib->n_adhoc; i++)
    sqlite3_reset(lib->adhoc[i].st);
}

tq_code tq_lib_commit(tq_lib *lib, tq_err *err) {
  if (lib->depth <= 0)
    return tq_err_set(err, TQ_EINTERNAL, "commit without begin");
  if (lib->depth > 1) {
    char sql[40];
    savepoint_sql(sql, sizeof sql, "RELEASE", lib->depth);
    tq_code rc = lib_exec(lib, sql, err);
    if (rc != TQ_OK) {
      tq_lib_rollback(lib); /* undoes this level only; the outer one decides */
      return rc;
    }
    lib->depth--;
    return TQ_OK;
  }
  tq_code rc = lib_queues_settle(lib, err);
  if (rc == TQ_OK && lib->touched)
    rc = lib_recompute_touched(lib, err);
  if (rc == TQ_OK)
    rc = lib_exec(lib, "COMMIT", err);
  if (rc == TQ_OK)
    lib->depth = 0;
  else
    tq_lib_rollback(lib);
  lib_stmts_release(lib);
  return rc;
}

void tq_lib_rollback(tq_lib *lib) {
  if (lib->depth <= 0)
    return;
  /* Rows queued since the level began are dropped, not written (lib_exec would write them
   * before rolling back); names created inside it may vanish, so the name caches go too. */
  lib_queues_drop(lib);
  lib->queue_failed = 0;
  lib_map_clear(&lib->sources);
  lib_map_clear(&lib->tags);
  if (lib->depth > 1) {
    /* Nested: back to the level's savepoint, which leaves the outer writes (and the touched
     * rows of temp.touched written before it) as they were. */
    char sql[40];
    savepoint_sql(sql, sizeof sql, "ROLLBACK TO", lib->depth);
    lib_exec(lib, sql, NULL);
    savepoint_sql(sql, sizeof sql, "RELEASE", lib->depth);
    lib_exec(lib, sql, NULL);
    lib->depth--;
    return;
  }
  lib->depth = 0;
  lib->touched = 0;
  lib_exec(lib, "ROLLBACK", NULL);
  lib_exec(lib, "DELETE FROM temp.touched", NULL);
}

tq_code lib_touch(tq_lib *lib, int64_t object_id, tq_err *err) {
  tq_lib_cell c = {.i = object_id};
  tq_code rc = lib_queue_row(lib, LQ_TOUCHED, &c, err);
  if (rc == TQ_OK)
    lib->touched = 1; /* commit writes the queue before it recomputes */
  return rc;
}
