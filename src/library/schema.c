/* schema.c: the library's schema as a list of versioned migrations, and ThreatQ's reference
 * data (object types, the 34 indicator types with their class, the five statuses). A database
 * is tqhost's when its application_id says so; its user_version is the migration level. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

const unsigned int LIB_APPLICATION_ID = 0x54514853; /* "TQHS" */

static const struct {
  const char *name;
  const char *klass;
} ITYPES[] = {
    {"ASN", "network"},
    {"Binary String", "host"},
    {"CIDR Block", "network"},
    {"CVE", "host"},
    {"Email Address", "network"},
    {"Email Attachment", "network"},
    {"Email Subject", "network"},
    {"File Mapping", "host"},
    {"File Path", "host"},
    {"Filename", "host"},
    {"FQDN", "network"},
    {"Fuzzy Hash", "host"},
    {"GOST Hash", "host"},
    {"Hash ION", "host"},
    {"IP Address", "network"},
    {"IPv6 Address", "network"},
    {"MAC Address", "network"},
    {"MD5", "host"},
    {"Mutex", "host"},
    {"Password", "host"},
    {"Registry Key", "host"},
    {"Service Name", "host"},
    {"SHA-1", "host"},
    {"SHA-256", "host"},
    {"SHA-384", "host"},
    {"SHA-512", "host"},
    {"String", "host"},
    {"x509 Serial", "network"},
    {"x509 Subject", "network"},
    {"URL", "network"},
    {"URL Path", "network"},
    {"User-agent", "network"},
    {"Username", "host"},
    {"X-Mailer", "network"},
};
#define N_ITYPES (sizeof ITYPES / sizeof ITYPES[0])

static const char *const OBJECT_TYPES[][3] = {
    /* name, display name, API collection (ThreatQ's spelling) */
    {"indicator", "Indicator", "indicators"},
    {"adversary", "Adversary", "adversaries"},
    {"malware", "Malware", "malware"},
    {"attack_pattern", "Attack Pattern", "attack_pattern"},
    {"vulnerability", "Vulnerability", "vulnerability"},
    {"report", "Report", "report"},
    {"campaign", "Campaign", "campaign"},
    {"tool", "Tool", "tool"},
    {"intrusion_set", "Intrusion Set", "intrusion_set"},
    {"identity", "Identity", "identity"},
    {"event", "Event", "events"},
    {"note", "Note", "note"},
    {"signature", "Signature", "signatures"},
    {"location", "Location", "location"},
    {"course_of_action", "Course of Action", "course_of_action"},
};
#define N_OBJECT_TYPES (sizeof OBJECT_TYPES / sizeof OBJECT_TYPES[0])

static const char *const STATUSES[][2] = {
    {"Active", "Poses a threat and is being exported to detection tools."},
    {"Expired", "No longer poses a serious threat."},
    {"Indirect", "Associated to an active indicator or event (i.e. pDNS)."},
    {"Review", "Requires further analysis."},
    {"Whitelisted", "Poses NO risk and should never be deployed."},
};

const char *tq_lib_indicator_type_canon(const char *name, const char **class_out) {
  if (name == NULL)
    return NULL;
  for (size_t i = 0; i < N_ITYPES; i++) {
    if (strcasecmp(ITYPES[i].name, name) == 0) {
      if (class_out)
        *class_out = ITYPES[i].klass;
      return ITYPES[i].name;
    }
  }
  return NULL;
}

const char *tq_lib_indicator_type_at(size_t i) { return i < N_ITYPES ? ITYPES[i].name : NULL; }

int64_t lib_itype_id(const char *canonical_name) {
  for (size_t i = 0; i < N_ITYPES; i++)
    if (strcmp(ITYPES[i].name, canonical_name) == 0)
      return (int64_t)i + 1;
  return 0;
}

/* Plural spellings accepted beside ThreatQ's collection names (which are partly singular). */
static const char *const OBJECT_PLURALS[][2] = {
    {"attack_pattern", "attack_patterns"},
    {"vulnerability", "vulnerabilities"},
    {"report", "reports"},
    {"campaign", "campaigns"},
    {"tool", "tools"},
    {"intrusion_set", "intrusion_sets"},
    {"identity", "identities"},
    {"note", "notes"},
    {"location", "locations"},
    {"course_of_action", "courses_of_action"},
};

int tq_lib_object_type_info(size_t i, const char **name, const char **display,
                            const char **collection, const char **plural) {
  if (i >= N_OBJECT_TYPES)
    return 0;
  if (name)
    *name = OBJECT_TYPES[i][0];
  if (display)
    *display = OBJECT_TYPES[i][1];
  if (collection)
    *collection = OBJECT_TYPES[i][2];
  if (plural) {
    *plural = OBJECT_TYPES[i][2];
    for (size_t k = 0; k < sizeof OBJECT_PLURALS / sizeof OBJECT_PLURALS[0]; k++)
      if (strcmp(OBJECT_PLURALS[k][0], OBJECT_TYPES[i][0]) == 0)
        *plural = OBJECT_PLURALS[k][1];
  }
  return 1;
}

const char *tq_lib_object_type_by_collection(const char *collection) {
  const char *name, *coll, *plural;
  for (size_t i = 0; collection && tq_lib_object_type_info(i, &name, NULL, &coll, &plural); i++)
    if (strcmp(coll, collection) == 0 || strcmp(plural, collection) == 0)
      return name;
  return NULL;
}

int tq_lib_object_type_valid(const char *name) {
  for (size_t i = 0; name && i < N_OBJECT_TYPES; i++)
    if (strcmp(OBJECT_TYPES[i][0], name) == 0)
      return 1;
  return 0;
}

const char *tq_lib_status_name(int status) {
  return status >= 1 && status <= 5 ? STATUSES[status - 1][0] : NULL;
}

int tq_lib_status_from_name(const char *name) {
  for (int i = 0; name && i < 5; i++)
    if (strcasecmp(STATUSES[i][0], name) == 0)
      return i + 1;
  return 0;
}

const char *tq_lib_tlp_name(int tlp) {
  static const char *names[] = {"", "red", "amber", "green", "white"};
  return tlp >= 0 && tlp <= 4 ? names[tlp] : "";
}

int tq_lib_tlp_from_name(const char *s) {
  if (s == NULL)
    return -1;
  if (strncasecmp(s, "TLP:", 4) == 0)
    s += 4;
  if (strcasecmp(s, "red") == 0)
    return 1;
  if (strcasecmp(s, "amber") == 0 || strcasecmp(s, "amber+strict") == 0)
    return 2;
  if (strcasecmp(s, "green") == 0)
    return 3;
  if (strcasecmp(s, "white") == 0 || strcasecmp(s, "clear") == 0)
    return 4;
  if (strcasecmp(s, "none") == 0 || *s == '\0')
    return 0;
  return -1;
}

/* Migration 1: ThreatQ's data model. Times are Unix seconds. */
static const char MIGRATION_1[] =
    "CREATE TABLE object_types(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " display_name TEXT NOT NULL, collection TEXT NOT NULL);"
    "CREATE TABLE indicator_types(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " class TEXT NOT NULL CHECK(class IN ('network','host')));"
    "CREATE TABLE statuses(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " description TEXT NOT NULL);"
    "CREATE TABLE sources(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL DEFAULT 'user' CHECK(kind IN ('user','feed','plugin')),"
    " tlp INTEGER NOT NULL DEFAULT 0 CHECK(tlp BETWEEN 0 AND 4),"
    " score INTEGER NOT NULL DEFAULT 0 CHECK(score BETWEEN 0 AND 10),"
    " expire_days INTEGER NOT NULL DEFAULT -1,"
    " revoked_decrease INTEGER NOT NULL DEFAULT 0 CHECK(revoked_decrease BETWEEN 0 AND 10),"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE objects(id INTEGER PRIMARY KEY,"
    " type TEXT NOT NULL, itype_id INTEGER NOT NULL DEFAULT 0, value TEXT NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 1 REFERENCES statuses(id), description TEXT,"
    " score_gen REAL NOT NULL DEFAULT 0, score_manual INTEGER,"
    " score INTEGER GENERATED ALWAYS AS (coalesce(score_manual, CAST(score_gen AS INTEGER)))"
    " STORED,"
    " published_at INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " expires_at INTEGER, expire_exception INTEGER, rev INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX objects_identity ON objects(value, itype_id, type);"
    "CREATE INDEX objects_expiry ON objects(expires_at) WHERE expires_at IS NOT NULL;"
    "CREATE TABLE object_sources(object_id INTEGER NOT NULL REFERENCES objects(id)"
    " ON DELETE CASCADE, source_id INTEGER NOT NULL REFERENCES sources(id),"
    " reported_at INTEGER NOT NULL, tlp INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(object_id, source_id)) WITHOUT ROWID;"
    "CREATE INDEX object_sources_by_source ON object_sources(source_id, object_id);"
    "CREATE TABLE attributes(object_id INTEGER NOT NULL REFERENCES objects(id)"
    " ON DELETE CASCADE, name TEXT NOT NULL, value TEXT NOT NULL,"
    " source_id INTEGER NOT NULL REFERENCES sources(id), tlp INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL, PRIMARY KEY(object_id, name, value, source_id))"
    " WITHOUT ROWID;"
    "CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE object_tags(object_id INTEGER NOT NULL REFERENCES objects(id)"
    " ON DELETE CASCADE, tag_id INTEGER NOT NULL REFERENCES tags(id),"
    " PRIMARY KEY(object_id, tag_id)) WITHOUT ROWID;"
    "CREATE INDEX object_tags_by_tag ON object_tags(tag_id, object_id);"
    "CREATE TABLE links(id INTEGER PRIMARY KEY, a INTEGER NOT NULL REFERENCES objects(id)"
    " ON DELETE CASCADE, b INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,"
    " source_id INTEGER NOT NULL REFERENCES sources(id), link_type TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL, CHECK(a < b));"
    "CREATE UNIQUE INDEX links_identity ON links(a, b, source_id, link_type);"
    "CREATE INDEX links_b ON links(b);"
    "CREATE TABLE link_attributes(link_id INTEGER NOT NULL REFERENCES links(id)"
    " ON DELETE CASCADE, name TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY(link_id, name, value)) WITHOUT ROWID;"
    "CREATE TABLE score_rules(id INTEGER PRIMARY KEY, name TEXT NOT NULL, value TEXT,"
    " delta REAL NOT NULL);"
    "CREATE UNIQUE INDEX score_rules_identity ON score_rules(name, coalesce(value, ''));"
    "CREATE TABLE collections(name TEXT PRIMARY KEY, query TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE http_cache(key TEXT PRIMARY KEY, status INTEGER NOT NULL, body BLOB,"
    " expires_at INTEGER NOT NULL);"
    "CREATE TABLE settings(scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " secret INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(scope, key)) WITHOUT ROWID;";

/* Migrations 2 and 3 made the feed tables and the workflow tables; those now belong to the
 * parts (src/feed/schema.c, src/workflow/schema.c: tq_lib_part_migrate), which make them where
 * missing and keep them where a library made by an earlier tqhost has them. The steps stay,
 * empty, so that a library's version keeps its meaning. */
static const char MIGRATION_2[] = "";
static const char MIGRATION_3[] = "";

/* Migration 4 (hardening): ThreatQ's Course of Action object type, which STIX
 * course-of-action objects map to (threatq-model.md: object code course_of_action; a database
 * made by this build has it from migration 1 already). (Its changes to runs and run_items are
 * the workflow part's now.) */
static const char MIGRATION_4[] =
    "INSERT OR IGNORE INTO object_types(name,display_name,collection)"
    " VALUES('course_of_action','Course of Action','course_of_action');";

/* Migration 5 (the service): attribute rows get an id, the handle ThreatQ's API gives them
 * (PUT/DELETE /api/indicators/{id}/attributes/{aid}); identity stays (object, name, value,
 * source) as a unique index. */
static const char MIGRATION_5[] =
    "CREATE TABLE attributes_v5(id INTEGER PRIMARY KEY, object_id INTEGER NOT NULL"
    " REFERENCES objects(id) ON DELETE CASCADE, name TEXT NOT NULL, value TEXT NOT NULL,"
    " source_id INTEGER NOT NULL REFERENCES sources(id), tlp INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL);"
    "INSERT INTO attributes_v5(object_id,name,value,source_id,tlp,created_at)"
    " SELECT object_id,name,value,source_id,tlp,created_at FROM attributes"
    " ORDER BY object_id, created_at;"
    "DROP TABLE attributes;"
    "ALTER TABLE attributes_v5 RENAME TO attributes;"
    "CREATE UNIQUE INDEX attributes_identity ON attributes(object_id, name, value, source_id);";

/* Migration 6 (the web UI): an index on the score, so that a score filter that few objects
 * pass ("score >= 8" among a million) is read from the index, not by a scan of every object;
 * sorting by score walks it too. SQLite's planner gets no statistics for a range (Debian's
 * SQLite has no STAT4), so a page query tells it how selective a score term is
 * (criteria.c: likelihood()); a count uses the index as it is. */
static const char MIGRATION_6[] = "CREATE INDEX IF NOT EXISTS objects_score ON objects(score);";

static const char *const MIGRATIONS[] = {MIGRATION_1, MIGRATION_2, MIGRATION_3,
                                         MIGRATION_4, MIGRATION_5, MIGRATION_6};
#define N_MIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

/* Fills the reference tables (migration 1 only). */
static tq_code seed_reference(tq_lib *lib, tq_err *err) {
  sqlite3_stmt *st = NULL;
  tq_code rc = TQ_OK;
  if (sqlite3_prepare_v2(lib->db,
                         "INSERT INTO object_types(name,display_name,collection)"
                         " VALUES(?,?,?)",
                         -1, &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "seeding object types");
  for (size_t i = 0; i < N_OBJECT_TYPES && rc == TQ_OK; i++) {
    for (int k = 0; k < 3; k++)
      sqlite3_bind_text(st, k + 1, OBJECT_TYPES[i][k], -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = lib_db_err(lib, err, "seeding object types");
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  if (rc != TQ_OK)
    return rc;
  if (sqlite3_prepare_v2(lib->db, "INSERT INTO indicator_types(id,name,class) VALUES(?,?,?)", -1,
                         &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "seeding indicator types");
  for (size_t i = 0; i < N_ITYPES && rc == TQ_OK; i++) {
    sqlite3_bind_int64(st, 1, (int64_t)i + 1);
    sqlite3_bind_text(st, 2, ITYPES[i].name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ITYPES[i].klass, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = lib_db_err(lib, err, "seeding indicator types");
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  if (rc != TQ_OK)
    return rc;
  if (sqlite3_prepare_v2(lib->db, "INSERT INTO statuses(id,name,description) VALUES(?,?,?)", -1,
                         &st, NULL) != SQLITE_OK)
    return lib_db_err(lib, err, "seeding statuses");
  for (int i = 0; i < 5 && rc == TQ_OK; i++) {
    sqlite3_bind_int(st, 1, i + 1);
    sqlite3_bind_text(st, 2, STATUSES[i][0], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, STATUSES[i][1], -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = lib_db_err(lib, err, "seeding statuses");
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  return rc;
}

static int pragma_int(tq_lib *lib, const char *sql) {
  sqlite3_stmt *st = NULL;
  int v = -1;
  if (sqlite3_prepare_v2(lib->db, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

int tq_lib_schema_version(tq_lib *lib) { return pragma_int(lib, "PRAGMA user_version"); }

/* Brings the schema to N_MIGRATIONS, each step in its own transaction with the version bump.
 * A database at a newer version than this build knows is refused rather than touched. */
int lib_schema_current(void) { return N_MIGRATIONS; }

tq_code lib_migrate(tq_lib *lib, tq_err *err) {
  int version = tq_lib_schema_version(lib);
  if (version > N_MIGRATIONS)
    return tq_err_set(err, TQ_ECORRUPT,
                      "%s: library schema version %d is newer than this tqhost knows (%d)",
                      lib->path, version, N_MIGRATIONS);
  for (int v = version; v < N_MIGRATIONS; v++) {
    tq_code rc = lib_exec(lib, "BEGIN IMMEDIATE", err);
    if (rc != TQ_OK)
      return rc;
    /* Another process may have migrated while we waited for the lock. */
    if (tq_lib_schema_version(lib) > v) {
      lib_exec(lib, "COMMIT", NULL);
      continue;
    }
    char bump[64];
    snprintf(bump, sizeof bump, "PRAGMA user_version=%d", v + 1);
    rc = lib_exec(lib, MIGRATIONS[v], err);
    if (rc == TQ_OK && v == 0) {
      char appid[64];
      snprintf(appid, sizeof appid, "PRAGMA application_id=%d", (int)LIB_APPLICATION_ID);
      rc = lib_exec(lib, appid, err);
      if (rc == TQ_OK)
        rc = seed_reference(lib, err);
    }
    if (rc == TQ_OK)
      rc = lib_exec(lib, bump, err);
    if (rc == TQ_OK)
      rc = lib_exec(lib, "COMMIT", err);
    if (rc != TQ_OK) {
      lib_exec(lib, "ROLLBACK", NULL);
      return tq_err_prefix(err, "%s: migration %d: ", lib->path, v + 1);
    }
  }
  return TQ_OK;
}

/* ---- a part's own tables -------------------------------------------------------------------
 * Each part above the library (feed/, workflow/, server/) keeps its tables' SQL beside its
 * code and brings them to its level here, as an SQLite module would: the level of each part
 * is a row of tq_parts, each step runs in its own transaction with the row's update, and a
 * level newer than the part's code knows is refused, never touched. */
static const char PARTS_TABLE[] =
    "CREATE TABLE IF NOT EXISTS tq_parts(name TEXT PRIMARY KEY, version INTEGER NOT NULL)";

/* The statement is cached once tq_parts exists (the server asks on every request); before,
 * each call tries to prepare it. */
static int part_version(tq_lib *lib, const char *name) {
  sqlite3_stmt *st = lib_stmt_sql(lib, "SELECT version FROM tq_parts WHERE name=?", NULL);
  int v = 0;
  if (st == NULL)
    return 0; /* no table yet */
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_reset(st);
  return v;
}

tq_code tq_lib_part_migrate(tq_lib *lib, const tq_lib_part *part, tq_err *err) {
  if (!part || !part->name || !*part->name || part->n_migrations < 0)
    return tq_err_set(err, TQ_EINVAL, "tq_lib_part_migrate: a part needs a name");
  int have = part_version(lib, part->name);
  if (have > part->n_migrations)
    return tq_err_set(err, TQ_ECORRUPT,
                      "%s: the tables of %s are at version %d, newer than this tqhost knows (%d)",
                      lib->path, part->name, have, part->n_migrations);
  for (int v = have; v < part->n_migrations; v++) {
    tq_code rc = lib_exec(lib, "BEGIN IMMEDIATE", err);
    if (rc != TQ_OK)
      return tq_err_prefix(err, "%s: %s tables: ", lib->path, part->name);
    rc = lib_exec(lib, PARTS_TABLE, err);
    if (rc == TQ_OK && part_version(lib, part->name) > v) { /* another process did it */
      lib_exec(lib, "COMMIT", NULL);
      continue;
    }
    if (rc == TQ_OK)
      rc = lib_exec(lib, part->migrations[v], err);
    if (rc == TQ_OK) {
      sqlite3_stmt *st = NULL;
      if (sqlite3_prepare_v2(lib->db,
                             "INSERT INTO tq_parts(name,version) VALUES(?1,?2) "
                             "ON CONFLICT(name) DO UPDATE SET version=?2",
                             -1, &st, NULL) != SQLITE_OK)
        rc = lib_db_err(lib, err, "recording the part's version");
      else {
        sqlite3_bind_text(st, 1, part->name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, v + 1);
        if (sqlite3_step(st) != SQLITE_DONE)
          rc = lib_db_err(lib, err, "recording the part's version");
        sqlite3_finalize(st);
      }
    }
    if (rc == TQ_OK)
      rc = lib_exec(lib, "COMMIT", err);
    if (rc != TQ_OK) {
      lib_exec(lib, "ROLLBACK", NULL);
      return tq_err_prefix(err, "%s: %s tables, migration %d: ", lib->path, part->name, v + 1);
    }
  }
  return TQ_OK;
}

int tq_lib_part_version(tq_lib *lib, const char *name) { return part_version(lib, name); }
