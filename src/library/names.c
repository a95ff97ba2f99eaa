/* names.c: name -> id maps for sources and tags, so that a bulk import does not look a source
 * up once per row; and the check every name written to the library passes. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

tq_code tq_lib_name_check(const char *field, const char *name, tq_err *err) {
  if (name == NULL || !tq_str_needs_escape(name, 0))
    return TQ_OK;
  char shown[160];
  size_t need = tq_str_escape(shown, sizeof shown, name, 0);
  return tq_err_set(err, TQ_EINVAL,
                    "%s '%s%s': control characters (newline, tab, escape...) are "
                    "not allowed in a %s",
                    field, shown, need >= sizeof shown ? "..." : "", field);
}

static uint64_t name_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

int64_t lib_map_get(const lib_name_map *m, const char *name) {
  if (m->cap == 0)
    return 0;
  size_t i = name_hash(name) & (m->cap - 1);
  while (m->names[i]) {
    if (strcmp(m->names[i], name) == 0)
      return m->ids[i];
    i = (i + 1) & (m->cap - 1);
  }
  return 0;
}

static tq_code map_grow(lib_name_map *m) {
  size_t cap = m->cap ? m->cap * 2 : 64;
  char **names = calloc(cap, sizeof *names);
  int64_t *ids = calloc(cap, sizeof *ids);
  if (names == NULL || ids == NULL) {
    free(names);
    free(ids);
    return TQ_ENOMEM;
  }
  for (size_t j = 0; j < m->cap; j++) {
    if (m->names[j] == NULL)
      continue;
    size_t i = name_hash(m->names[j]) & (cap - 1);
    while (names[i])
      i = (i + 1) & (cap - 1);
    names[i] = m->names[j];
    ids[i] = m->ids[j];
  }
  free(m->names);
  free(m->ids);
  m->names = names;
  m->ids = ids;
  m->cap = cap;
  return TQ_OK;
}

tq_code lib_map_put(lib_name_map *m, const char *name, int64_t id) {
  if ((m->len + 1) * 2 > m->cap && map_grow(m) != TQ_OK)
    return TQ_ENOMEM;
  size_t i = name_hash(name) & (m->cap - 1);
  while (m->names[i]) {
    if (strcmp(m->names[i], name) == 0) {
      m->ids[i] = id;
      return TQ_OK;
    }
    i = (i + 1) & (m->cap - 1);
  }
  m->names[i] = strdup(name);
  if (m->names[i] == NULL)
    return TQ_ENOMEM;
  m->ids[i] = id;
  m->len++;
  return TQ_OK;
}

void lib_map_clear(lib_name_map *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->names[i]);
  free(m->names);
  free(m->ids);
  memset(m, 0, sizeof *m);
}

tq_code lib_named_id(tq_lib *lib, lib_name_map *m, lib_stmt_id get, lib_stmt_id insert,
                     const char *name, const char *kind, int64_t *id, tq_err *err) {
  int64_t found = lib_map_get(m, name);
  if (found) {
    *id = found;
    return TQ_OK;
  }
  sqlite3_stmt *st = lib_stmt(lib, get, err);
  if (st == NULL)
    return TQ_EDB;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW)
    found = sqlite3_column_int64(st, 0);
  sqlite3_reset(st); /* a statement left on a row would hold a read transaction open */
  if (step == SQLITE_DONE) {
    tq_code rc = lib_text_check("name", name, TQ_LIB_MAX_NAME, err);
    if (rc != TQ_OK)
      return rc;
    st = lib_stmt(lib, insert, err);
    if (st == NULL)
      return TQ_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(st) >= 3) {
      sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 3, tq_time_now());
    }
    if (sqlite3_step(st) != SQLITE_DONE)
      return lib_db_err(lib, err, "creating a name");
    found = sqlite3_last_insert_rowid(lib->db);
  } else if (step != SQLITE_ROW) {
    return lib_db_err(lib, err, "looking up a name");
  }
  if (lib_map_put(m, name, found) != TQ_OK)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  *id = found;
  return TQ_OK;
}
