/* store.c: the server part's own tables in the library, as migrations run through
 * tq_lib_part_migrate (part "server"). Only appended to: a helper needing another server table
 * adds a migration at the END of the list, never edits an earlier one (a library that ran it
 * keeps its level in tq_parts).
 *
 *   users   people and API clients; pwhash is crypto_pwhash_str (Argon2id) of the password or
 *           client secret; client_id is set for clients only.
 *   tokens  access and refresh tokens by the hex SHA-256 of the token (the token itself is never
 *           stored); a login's tokens share a family: refresh rotates inside it, and the reuse
 *           of a rotated (revoked) refresh token revokes the whole family.
 *   audit   who did what to what, when, from where (no secret ever).
 *   login_brake  the failed-login brake's counters (auth_api.c), so that a restart does not
 *           lift a lock: per key ("u:<name>", "c:<client id>", "a:<address>"), wall-clock ms;
 *           rows past their lock and window are removed, at most 1024 kept (the newest).
 *   op_runs the successful operation runs kept for apply (api_plugins.c): the caller's user,
 *           plugin, operation, target and change set as JSON; one hour each, 1024 at most. */
#include <sqlite3.h>

#include "auth_int.h"

static const char *const MIGRATIONS[] = {
    /* 1: users, tokens, audit */
    "CREATE TABLE users("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL CHECK(role IN ('read-only','analyst','admin')),"
    " kind TEXT NOT NULL CHECK(kind IN ('person','client')),"
    " pwhash TEXT NOT NULL,"
    " client_id TEXT UNIQUE,"
    " created_at INTEGER NOT NULL,"
    " disabled INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE tokens("
    " hash TEXT PRIMARY KEY,"
    " user_id INTEGER NOT NULL,"
    " kind TEXT NOT NULL CHECK(kind IN ('access','refresh')),"
    " family TEXT NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " revoked_at INTEGER) WITHOUT ROWID;"
    "CREATE INDEX tokens_user ON tokens(user_id);"
    "CREATE INDEX tokens_family ON tokens(family);"
    "CREATE INDEX tokens_expires ON tokens(expires_at);"
    "CREATE TABLE audit("
    " id INTEGER PRIMARY KEY,"
    " at INTEGER NOT NULL,"
    " who TEXT NOT NULL,"
    " what TEXT NOT NULL,"
    " target TEXT,"
    " detail TEXT,"
    " addr TEXT);"
    "CREATE INDEX audit_who ON audit(who, id);"
    "CREATE INDEX audit_what ON audit(what, id);",
    /* 2: what a restart must not lose: the login brake, the runs kept for apply */
    "CREATE TABLE login_brake("
    " key TEXT PRIMARY KEY,"
    " fails INTEGER NOT NULL,"
    " level INTEGER NOT NULL,"
    " first_ms INTEGER NOT NULL,"
    " last_ms INTEGER NOT NULL,"
    " until_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX login_brake_last ON login_brake(last_ms);"
    "CREATE TABLE op_runs("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " user_id INTEGER NOT NULL,"
    " plugin TEXT NOT NULL,"
    " op TEXT NOT NULL,"
    " label TEXT NOT NULL,"
    " made_ms INTEGER NOT NULL,"
    " applied INTEGER NOT NULL DEFAULT 0,"
    " body TEXT NOT NULL);"
    "CREATE INDEX op_runs_made ON op_runs(made_ms);",
};

static const tq_lib_part SERVER_PART = {"server", MIGRATIONS,
                                        (int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0])};

tq_code tq_auth_migrate(tq_lib *lib, tq_err *err) {
  return tq_lib_part_migrate(lib, &SERVER_PART, err);
}

tq_code tq_auth_ensure(tq_lib *lib, tq_err *err) {
  int have = tq_lib_part_version(lib, SERVER_PART.name);
  if (have == SERVER_PART.n_migrations)
    return TQ_OK;
  if (have < SERVER_PART.n_migrations && !sqlite3_get_autocommit(tq_lib_db(lib)))
    return tq_err_set(
        err, TQ_EINTERNAL,
        "the server's tables are not made yet (tq_auth_migrate before a transaction)");
  return tq_auth_migrate(lib, err);
}
