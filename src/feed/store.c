/* store.c: feed definitions in the library (tables feeds and feed_state of migration 2), the
 * RST presets, and the checks that make a bad definition an error at `feed add` time rather
 * than at the first poll. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "feed_int.h"

/* Example settings from rst-cloud-api.md 5.3 and 6: scores 5/3/1 per risk level, revoked
 * decrease 8. The spec gives no expiration per collection: ours follow XSOAR's RST defaults
 * (section 8.8: 7..365 days by type) collapsed to one value per risk level, and Report Hub
 * content (reports, actors, TTPs) does not expire. The discovery URL is not public (gap 1):
 * the placeholder must be replaced with --discovery by subscribers. */
static const tq_feed_preset PRESETS[] = {
    {"rst-high", "taxii", "https://taxii.rstcloud.net/taxii2/",
     "689709ee-8496-4da2-997d-e9face24eee9", "RST Threat Feed High", 5, 30, 8,
     "RST Threat Feed: High Risk Indicators"},
    {"rst-medium", "taxii", "https://taxii.rstcloud.net/taxii2/",
     "98ab279c-a6cc-4efc-9442-87bd8a9b4577", "RST Threat Feed Medium", 3, 14, 8,
     "RST Threat Feed: Medium Risk Indicators"},
    {"rst-low", "taxii", "https://taxii.rstcloud.net/taxii2/",
     "b2e8fa09-1389-4fab-be65-ba337b190f92", "RST Threat Feed Low", 1, 7, 8,
     "RST Threat Feed: Low Risk Indicators"},
    {"rst-report-hub", "taxii", "https://taxii.rstcloud.net/taxii2/", "RST Report Hub",
     "RST Report Hub", 3, TQ_EXPIRE_NEVER, 8, "RST Report Hub TAXII collection"},
};
#define N_PRESETS (sizeof PRESETS / sizeof PRESETS[0])

const tq_feed_preset *tq_feed_preset_find(const char *name) {
  for (size_t i = 0; name && i < N_PRESETS; i++)
    if (strcmp(PRESETS[i].name, name) == 0)
      return &PRESETS[i];
  return NULL;
}

const tq_feed_preset *tq_feed_preset_at(size_t i) { return i < N_PRESETS ? &PRESETS[i] : NULL; }

void tq_feed_init(tq_feed *f) {
  memset(f, 0, sizeof *f);
  strcpy(f->kind, "taxii");
  f->verify = 1;
  f->page_size = 1000;
  f->every_s = 3600;
  f->enabled = 1;
  f->last_ok = TQ_FEED_NEVER;
}

static int valid_name(const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s; s++)
    if (!(*s == '-' || *s == '_' || *s == '.' || (*s >= '0' && *s <= '9') ||
          (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
      return 0;
  return 1;
}

static tq_code check_feed(const tq_feed *f, tq_err *err) {
  if (!valid_name(f->name))
    return tq_err_set(err, TQ_EINVAL, "feed name '%s' must be letters, digits, '-', '_' or '.'",
                      f->name);
  if (strcmp(f->kind, "taxii") && strcmp(f->kind, "rst-reports"))
    return tq_err_set(err, TQ_EINVAL, "feed %s: kind '%s' is not taxii or rst-reports", f->name,
                      f->kind);
  if (!tq_str_startswith(f->discovery, "https://") && !tq_str_startswith(f->discovery, "http://"))
    return tq_err_set(err, TQ_EINVAL, "feed %s: URL '%s' must start with https:// (or http://)",
                      f->name, f->discovery);
  if (strcmp(f->kind, "taxii") == 0 && f->collection[0] == '\0')
    return tq_err_set(err, TQ_EINVAL, "feed %s: a TAXII feed needs --collection (id or title)",
                      f->name);
  if (f->source[0] == '\0')
    return tq_err_set(err, TQ_EINVAL, "feed %s: needs --source NAME", f->name);
  if (f->username[0] && f->password_env[0] == '\0')
    return tq_err_set(err, TQ_EINVAL,
                      "feed %s: --username needs --password-env VAR (the password is read from "
                      "that variable at poll time and never stored)",
                      f->name);
  if (f->page_size < 1 || f->page_size > 100000)
    return tq_err_set(err, TQ_EINVAL, "feed %s: page size %d is not 1..100000", f->name,
                      f->page_size);
  if (f->overlap_s < 0 || f->every_s < 1)
    return tq_err_set(err, TQ_EINVAL, "feed %s: overlap must be >= 0 and every > 0", f->name);
  return TQ_OK;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
  if (s && *s)
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

tq_code tq_feed_put(tq_lib *lib, const tq_feed *f, int must_create, tq_err *err) {
  tq_code tables_rc = feed_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  tq_code rc = check_feed(f, err);
  if (rc != TQ_OK)
    return rc;
  const char *sql =
      must_create
          ? "INSERT INTO feeds(name,kind,discovery,collection,username,password_env,ca_file,"
            "verify,source,match_type,page_size,overlap_s,every_s,enabled,created_at)"
            " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"
          : "UPDATE feeds SET kind=?2,discovery=?3,collection=?4,username=?5,password_env=?6,"
            "ca_file=?7,verify=?8,source=?9,match_type=?10,page_size=?11,overlap_s=?12,"
            "every_s=?13,enabled=?14 WHERE name=?1";
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return feed_db_err(lib, err, "preparing a feed write");
  sqlite3_bind_text(st, 1, f->name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, f->kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, f->discovery, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, f->collection, -1, SQLITE_STATIC);
  bind_text_or_null(st, 5, f->username);
  bind_text_or_null(st, 6, f->password_env);
  bind_text_or_null(st, 7, f->ca_file);
  sqlite3_bind_int(st, 8, f->verify ? 1 : 0);
  sqlite3_bind_text(st, 9, f->source, -1, SQLITE_STATIC);
  bind_text_or_null(st, 10, f->match_type);
  sqlite3_bind_int(st, 11, f->page_size);
  sqlite3_bind_int64(st, 12, f->overlap_s);
  sqlite3_bind_int64(st, 13, f->every_s);
  sqlite3_bind_int(st, 14, f->enabled ? 1 : 0);
  sqlite3_bind_int64(st, 15, tq_time_now());
  int step = sqlite3_step(st);
  sqlite3_finalize(st);
  if (step == SQLITE_CONSTRAINT)
    return tq_err_set(err, TQ_EEXIST, "feed '%s' exists already (delete it first)", f->name);
  if (step != SQLITE_DONE)
    return feed_db_err(lib, err, "writing a feed");
  if (!must_create && sqlite3_changes(db) == 0)
    return tq_err_set(err, TQ_ENOTFOUND, "no feed '%s'", f->name);
  return TQ_OK;
}

static const char SELECT_FEED[] =
    "SELECT f.name,f.kind,f.discovery,f.collection,coalesce(f.username,''),"
    "coalesce(f.password_env,''),coalesce(f.ca_file,''),f.verify,f.source,"
    "coalesce(f.match_type,''),f.page_size,f.overlap_s,f.every_s,f.enabled,f.created_at,"
    "coalesce(f.last_poll_at,0),coalesce(f.last_ok,-1),coalesce(f.last_error,''),"
    "coalesce(f.last_summary,''),coalesce(s.checkpoint,''),coalesce(s.last_next,'')"
    " FROM feeds f LEFT JOIN feed_state s ON s.feed=f.name";

static void col_copy(sqlite3_stmt *st, int i, char *dst, size_t n) {
  const unsigned char *s = sqlite3_column_text(st, i);
  tq_strlcpy(dst, s ? (const char *)s : "", n);
}

static void feed_from_row(sqlite3_stmt *st, tq_feed *f) {
  tq_feed_init(f);
  col_copy(st, 0, f->name, sizeof f->name);
  col_copy(st, 1, f->kind, sizeof f->kind);
  col_copy(st, 2, f->discovery, sizeof f->discovery);
  col_copy(st, 3, f->collection, sizeof f->collection);
  col_copy(st, 4, f->username, sizeof f->username);
  col_copy(st, 5, f->password_env, sizeof f->password_env);
  col_copy(st, 6, f->ca_file, sizeof f->ca_file);
  f->verify = sqlite3_column_int(st, 7);
  col_copy(st, 8, f->source, sizeof f->source);
  col_copy(st, 9, f->match_type, sizeof f->match_type);
  f->page_size = sqlite3_column_int(st, 10);
  f->overlap_s = sqlite3_column_int64(st, 11);
  f->every_s = sqlite3_column_int64(st, 12);
  f->enabled = sqlite3_column_int(st, 13);
  f->created_at = sqlite3_column_int64(st, 14);
  f->last_poll_at = sqlite3_column_int64(st, 15);
  f->last_ok = sqlite3_column_int(st, 16);
  col_copy(st, 17, f->last_error, sizeof f->last_error);
  col_copy(st, 18, f->last_summary, sizeof f->last_summary);
  col_copy(st, 19, f->checkpoint, sizeof f->checkpoint);
  col_copy(st, 20, f->last_next, sizeof f->last_next);
}

tq_code tq_feed_get(tq_lib *lib, const char *name, tq_feed *out, tq_err *err) {
  tq_code tables_rc = feed_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  sqlite3_stmt *st = NULL;
  char sql[sizeof SELECT_FEED + 32];
  snprintf(sql, sizeof sql, "%s WHERE f.name=?1", SELECT_FEED);
  if (sqlite3_prepare_v2(tq_lib_db(lib), sql, -1, &st, NULL) != SQLITE_OK)
    return feed_db_err(lib, err, "reading a feed");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  tq_code rc = TQ_OK;
  if (step == SQLITE_ROW)
    feed_from_row(st, out);
  else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "no feed '%s' (see 'tqhost feed list')", name);
  else
    rc = feed_db_err(lib, err, "reading a feed");
  sqlite3_finalize(st);
  return rc;
}

tq_code tq_feed_list(tq_lib *lib, tq_feed **out, size_t *n, tq_err *err) {
  tq_code tables_rc = feed_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  sqlite3_stmt *st = NULL;
  char sql[sizeof SELECT_FEED + 32];
  snprintf(sql, sizeof sql, "%s ORDER BY f.name", SELECT_FEED);
  if (sqlite3_prepare_v2(tq_lib_db(lib), sql, -1, &st, NULL) != SQLITE_OK)
    return feed_db_err(lib, err, "listing feeds");
  tq_feed *v = NULL;
  size_t len = 0, cap = 0;
  tq_code rc = TQ_OK;
  int step;
  while (rc == TQ_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
    if (len == cap) {
      cap = cap ? cap * 2 : 8;
      tq_feed *nv = realloc(v, cap * sizeof *v);
      if (nv == NULL) {
        rc = tq_err_set(err, TQ_ENOMEM, "out of memory listing feeds");
        break;
      }
      v = nv;
    }
    feed_from_row(st, &v[len++]);
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = feed_db_err(lib, err, "listing feeds");
  sqlite3_finalize(st);
  if (rc != TQ_OK) {
    free(v);
    return rc;
  }
  *out = v;
  *n = len;
  return TQ_OK;
}

/* Runs a write with the feed name as ?1; TQ_ENOTFOUND when it changed nothing and must. */
static tq_code exec_named(tq_lib *lib, const char *sql, const char *name, int must_change,
                          tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib), sql, -1, &st, NULL) != SQLITE_OK)
    return feed_db_err(lib, err, "preparing a feed update");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int step = sqlite3_step(st);
  sqlite3_finalize(st);
  if (step != SQLITE_DONE)
    return feed_db_err(lib, err, "updating a feed");
  if (must_change && sqlite3_changes(tq_lib_db(lib)) == 0)
    return tq_err_set(err, TQ_ENOTFOUND, "no feed '%s' (see 'tqhost feed list')", name);
  return TQ_OK;
}

tq_code tq_feed_set_enabled(tq_lib *lib, const char *name, int enabled, tq_err *err) {
  tq_code tables_rc = feed_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  return exec_named(lib,
                    enabled ? "UPDATE feeds SET enabled=1 WHERE name=?1"
                            : "UPDATE feeds SET enabled=0 WHERE name=?1",
                    name, 1, err);
}

tq_code tq_feed_delete(tq_lib *lib, const char *name, tq_err *err) {
  tq_code tables_rc = feed_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  tq_code rc = tq_lib_begin(lib, err);
  if (rc == TQ_OK)
    rc = exec_named(lib, "DELETE FROM feed_state WHERE feed=?1", name, 0, err);
  if (rc == TQ_OK)
    rc = exec_named(lib, "DELETE FROM stix_seen WHERE feed=?1", name, 0, err);
  if (rc == TQ_OK)
    rc = exec_named(lib, "DELETE FROM stix_pending WHERE feed=?1", name, 0, err);
  if (rc == TQ_OK)
    rc = exec_named(lib, "DELETE FROM feeds WHERE name=?1", name, 1, err);
  if (rc != TQ_OK) {
    tq_lib_rollback(lib);
    return rc;
  }
  return tq_lib_commit(lib, err);
}

/* The checkpoint only moves forward: two polls of one feed that overlap (a scheduled one and a
 * manual one) each commit the checkpoint of their own pages, and the one that commits last
 * must not take the feed back to an earlier point (which would re-fetch, or with a skewed
 * overlap skip, what the other committed). Both forms stored here (the TAXII timestamp
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ" and Report Hub's YYYYMMDD) are fixed-width, so text order is
 * time order. */
tq_code feed_state_put(tq_lib *lib, const char *feed, const char *checkpoint, const char *next,
                       tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib),
                         "INSERT INTO feed_state(feed,checkpoint,last_next,updated_at)"
                         " VALUES(?1,?2,?3,?4) ON CONFLICT(feed) DO UPDATE SET"
                         " checkpoint=excluded.checkpoint, last_next=excluded.last_next,"
                         " updated_at=excluded.updated_at"
                         " WHERE feed_state.checkpoint IS NULL OR"
                         " excluded.checkpoint >= feed_state.checkpoint",
                         -1, &st, NULL) != SQLITE_OK)
    return feed_db_err(lib, err, "preparing the feed checkpoint");
  sqlite3_bind_text(st, 1, feed, -1, SQLITE_STATIC);
  bind_text_or_null(st, 2, checkpoint);
  bind_text_or_null(st, 3, next);
  sqlite3_bind_int64(st, 4, tq_time_now());
  int step = sqlite3_step(st);
  sqlite3_finalize(st);
  return step == SQLITE_DONE ? TQ_OK : feed_db_err(lib, err, "writing the feed checkpoint");
}

tq_code feed_record_poll(tq_lib *lib, const char *feed, int64_t at, int state, const char *error,
                         const char *summary, tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib),
                         "UPDATE feeds SET last_poll_at=?2, last_ok=?3, last_error=?4,"
                         " last_summary=?5 WHERE name=?1",
                         -1, &st, NULL) != SQLITE_OK)
    return feed_db_err(lib, err, "preparing the poll record");
  sqlite3_bind_text(st, 1, feed, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, at);
  sqlite3_bind_int(st, 3, state);
  bind_text_or_null(st, 4, error);
  bind_text_or_null(st, 5, summary);
  int step = sqlite3_step(st);
  sqlite3_finalize(st);
  return step == SQLITE_DONE ? TQ_OK : feed_db_err(lib, err, "recording the poll");
}

tq_code feed_db_err(tq_lib *lib, tq_err *err, const char *what) {
  sqlite3 *db = tq_lib_db(lib);
  int code = sqlite3_errcode(db);
  return tq_err_set(err, code == SQLITE_BUSY ? TQ_ETIMEOUT : TQ_EDB, "feed: %s: %s", what,
                    sqlite3_errmsg(db));
}

tq_code tq_feed_preset_apply(const char *name, tq_feed *f, tq_source_opts *src, tq_err *err) {
  const tq_feed_preset *p = tq_feed_preset_find(name);
  if (p == NULL)
    return tq_err_set(err, TQ_EINVAL,
                      "preset: '%s' is not rst-high, rst-medium, rst-low or rst-report-hub",
                      name ? name : "");
  tq_strlcpy(f->kind, p->kind, sizeof f->kind);
  tq_strlcpy(f->discovery, p->discovery, sizeof f->discovery);
  tq_strlcpy(f->collection, p->collection, sizeof f->collection);
  tq_strlcpy(f->source, p->source, sizeof f->source);
  if (src) {
    src->score = p->score;
    src->expire_days = p->expire_days;
    src->revoked_decrease = p->revoked_decrease;
  }
  return TQ_OK;
}

tq_code tq_feed_add(tq_lib *lib, const tq_feed *f, const tq_source_opts *src, tq_err *err) {
  tq_source_opts so = *src;
  so.kind = "feed";
  tq_code rc = tq_lib_begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  if ((rc = tq_feed_put(lib, f, 1, err)) != TQ_OK ||
      (rc = tq_lib_source_put(lib, f->source, &so, 0, NULL, err)) != TQ_OK ||
      (rc = tq_lib_commit(lib, err)) != TQ_OK) {
    tq_lib_rollback(lib);
    return rc;
  }
  return TQ_OK;
}
