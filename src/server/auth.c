/* auth.c: users, API clients, tokens and the audit log in the library (tables of store.c).
 * Passwords and client secrets are kept as crypto_pwhash_str (Argon2id, INTERACTIVE limits);
 * tokens as their SHA-256. No function here logs or returns a password, secret or token
 * except the ones it makes for its caller (tq_auth_client_add, tq_auth_issue). Nothing here
 * touches HTTP: auth_api.c does. */
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "auth_int.h"

/* ---- roles --------------------------------------------------------------------------------- */

const char *tq_role_name(tq_role r) {
  switch (r) {
  case TQ_ROLE_READONLY: return "read-only";
  case TQ_ROLE_ANALYST: return "analyst";
  case TQ_ROLE_ADMIN: return "admin";
  default: return "none";
  }
}

tq_role tq_role_from_name(const char *s) {
  if (s == NULL)
    return TQ_ROLE_NONE;
  if (strcmp(s, "read-only") == 0)
    return TQ_ROLE_READONLY;
  if (strcmp(s, "analyst") == 0)
    return TQ_ROLE_ANALYST;
  if (strcmp(s, "admin") == 0)
    return TQ_ROLE_ADMIN;
  return TQ_ROLE_NONE;
}

static int role_valid(tq_role r) { return r >= TQ_ROLE_READONLY && r <= TQ_ROLE_ADMIN; }

/* ---- small SQL helpers ------------------------------------------------------------------- */

static tq_code db_err(sqlite3 *db, tq_err *err, const char *what) {
  int code = sqlite3_extended_errcode(db);
  return tq_err_set(err, TQ_EDB, "server tables: %s: %s%s", what, sqlite3_errmsg(db),
                    (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED
                        ? " (database is locked)"
                        : "");
}

static tq_code prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, tq_err *err) {
  if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
    return db_err(db, err, "preparing a statement");
  return TQ_OK;
}

/* Steps a statement that returns no row and finalizes it. */
static tq_code done(sqlite3 *db, sqlite3_stmt *st, tq_err *err, const char *what) {
  int rc = sqlite3_step(st);
  tq_code out = rc == SQLITE_DONE ? TQ_OK : db_err(db, err, what);
  sqlite3_finalize(st);
  return out;
}

static void bind_str(sqlite3_stmt *st, int i, const char *s) {
  if (s)
    sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, i);
}

static tq_code begin(tq_lib *lib, tq_err *err) {
  tq_code rc = tq_auth_ensure(lib, err);
  return rc == TQ_OK ? tq_lib_begin(lib, err) : rc;
}

static tq_code finish(tq_lib *lib, tq_code rc, tq_err *err) {
  if (rc == TQ_OK)
    rc = tq_lib_commit(lib, err);
  if (rc != TQ_OK)
    tq_lib_rollback(lib);
  return rc;
}

/* ---- checks ---------------------------------------------------------------------------------- */

tq_code tq_auth_check_name(const char *name, tq_err *err) {
  if (name == NULL || *name == '\0')
    return tq_err_set(err, TQ_EINVAL, "user name: empty");
  size_t n = strlen(name);
  if (n >= sizeof(((tq_user *)0)->name))
    return tq_err_set(err, TQ_EINVAL, "user name: longer than %zu bytes",
                      sizeof(((tq_user *)0)->name) - 1);
  size_t bad = tq_utf8_invalid_at(name, n);
  if (bad != n)
    return tq_err_set(err, TQ_EINVAL, "user name: not UTF-8 at byte %zu", bad);
  if (tq_lib_name_check("user name", name, err) != TQ_OK)
    return TQ_EINVAL;
  if (name[0] == ' ' || name[n - 1] == ' ')
    return tq_err_set(err, TQ_EINVAL, "user name '%s': leading or trailing space", name);
  return TQ_OK;
}

tq_code tq_auth_check_password(const char *password, tq_err *err) {
  if (password == NULL || *password == '\0')
    return tq_err_set(err, TQ_EINVAL, "password: empty");
  if (strlen(password) > TQ_AUTH_MAX_PASSWORD)
    return tq_err_set(err, TQ_EINVAL, "password: longer than %d bytes", TQ_AUTH_MAX_PASSWORD);
  return TQ_OK;
}

static tq_code check_role(tq_role role, tq_err *err) {
  if (!role_valid(role))
    return tq_err_set(err, TQ_EINVAL, "role: must be admin, analyst or read-only");
  return TQ_OK;
}

/* ---- hashing and tokens -------------------------------------------------------------------- */

_Static_assert(crypto_pwhash_STRBYTES == TQ_AUTH_HASH_MAX, "TQ_AUTH_HASH_MAX");

static pthread_once_t SODIUM_ONCE = PTHREAD_ONCE_INIT;
static char DUMMY_HASH[crypto_pwhash_STRBYTES];

/* sodium_init, and a hash of a random password that unknown names are verified against, so
 * that an unknown name costs what a wrong password costs. */
static void sodium_setup(void) {
  if (sodium_init() < 0)
    abort(); /* no usable random source: nothing in this file can be safe */
  char pw[TQ_AUTH_TOKEN_LEN + 1];
  tq_auth_token_new(pw);
  if (crypto_pwhash_str(DUMMY_HASH, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    DUMMY_HASH[0] = '\0';
  sodium_memzero(pw, sizeof pw);
}

static void setup(void) { pthread_once(&SODIUM_ONCE, sodium_setup); }

void tq_auth_token_new(char out[TQ_AUTH_TOKEN_LEN + 1]) {
  unsigned char raw[32];
  if (sodium_init() < 0)
    abort();
  randombytes_buf(raw, sizeof raw);
  sodium_bin2base64(out, TQ_AUTH_TOKEN_LEN + 1, raw, sizeof raw,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
}

void tq_auth_token_hash(const char *token, char hex[65]) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
  sodium_bin2hex(hex, 65, h, sizeof h);
}

int tq_auth_token_wellformed(const char *s) {
  if (s == NULL)
    return 0;
  size_t n = 0;
  for (; s[n]; n++) {
    char ch = s[n];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '_'))
      return 0;
  }
  return n == TQ_AUTH_TOKEN_LEN;
}

tq_code tq_auth_pw_hash(const char *password, char out[TQ_AUTH_HASH_MAX], tq_err *err) {
  tq_code rc = tq_auth_check_password(password, err);
  if (rc != TQ_OK)
    return rc;
  setup();
  if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    return tq_err_set(err, TQ_ENOMEM, "password hash: out of memory (Argon2id needs %zu MiB)",
                      (size_t)crypto_pwhash_MEMLIMIT_INTERACTIVE >> 20);
  return TQ_OK;
}

/* ---- text for the audit log ------------------------------------------------------------------ */

char *tq_auth_clean(const char *s, size_t max) {
  if (s == NULL)
    return NULL;
  size_t n = strnlen(s, max);
  tq_buf b;
  tq_buf_init(&b, 0);
  size_t at = 0;
  while (at < n) {
    size_t ok = at + tq_utf8_invalid_at(s + at, n - at);
    if (tq_buf_add(&b, s + at, ok - at) != TQ_OK)
      goto fail;
    if (ok < n && tq_buf_printf(&b, "\\x%02x", (unsigned char)s[ok]) != TQ_OK)
      goto fail;
    at = ok + 1;
  }
  char *raw = tq_buf_take(&b);
  char *out = raw ? tq_str_escape_dup(raw, 0) : NULL;
  free(raw);
  return out;
fail:
  tq_buf_free(&b);
  return NULL;
}

/* ---- users ------------------------------------------------------------------------------------
 */

static void user_row(sqlite3_stmt *st, tq_user *u) {
  memset(u, 0, sizeof *u);
  u->id = sqlite3_column_int64(st, 0);
  tq_strlcpy(u->name, (const char *)sqlite3_column_text(st, 1), sizeof u->name);
  u->role = tq_role_from_name((const char *)sqlite3_column_text(st, 2));
  const char *kind = (const char *)sqlite3_column_text(st, 3);
  u->is_client = kind && strcmp(kind, "client") == 0;
  u->created_at = sqlite3_column_int64(st, 4);
  const char *c5 = sqlite3_column_count(st) > 5 ? sqlite3_column_name(st, 5) : NULL;
  if (c5 && strcmp(c5, "disabled") == 0) /* USER_COLS_D */
    u->disabled = sqlite3_column_int(st, 5) != 0;
}

#define USER_COLS "id,name,role,kind,created_at"
#define USER_COLS_D USER_COLS ",disabled"

/* Inserts a user or client with a password hash; in the caller's transaction. */
static tq_code user_insert(tq_lib *lib, const char *name, tq_role role, const char *hash,
                           const char *client_id, tq_err *err) {
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  tq_code rc = prep(db,
                    "INSERT INTO users(name,role,kind,pwhash,client_id,created_at) "
                    "VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(name) DO NOTHING",
                    &st, err);
  if (rc != TQ_OK)
    return rc;
  bind_str(st, 1, name);
  bind_str(st, 2, tq_role_name(role));
  bind_str(st, 3, client_id ? "client" : "person");
  bind_str(st, 4, hash);
  bind_str(st, 5, client_id);
  sqlite3_bind_int64(st, 6, tq_time_now());
  if ((rc = done(db, st, err, "adding a user")) != TQ_OK)
    return rc;
  if (sqlite3_changes(db) == 0)
    return tq_err_set(err, TQ_EEXIST, "user '%s' exists already", name);
  return TQ_OK;
}

static int hash_valid(const char *hash) {
  return hash && strncmp(hash, "$argon2id$", 10) == 0 && strlen(hash) < crypto_pwhash_STRBYTES;
}

tq_code tq_auth_user_add_hashed(tq_lib *lib, const char *name, tq_role role, const char *hash,
                                tq_err *err) {
  tq_code rc;
  if ((rc = tq_auth_check_name(name, err)) != TQ_OK || (rc = check_role(role, err)) != TQ_OK)
    return rc;
  if (!hash_valid(hash))
    return tq_err_set(err, TQ_EINTERNAL, "user '%s': not a password hash", name);
  if ((rc = begin(lib, err)) != TQ_OK)
    return rc;
  return finish(lib, user_insert(lib, name, role, hash, NULL, err), err);
}

tq_code tq_auth_user_add(tq_lib *lib, const char *name, tq_role role, const char *password,
                         tq_err *err) {
  tq_code rc;
  char hash[crypto_pwhash_STRBYTES];
  if ((rc = tq_auth_check_name(name, err)) != TQ_OK || (rc = check_role(role, err)) != TQ_OK ||
      (rc = tq_auth_pw_hash(password, hash, err)) != TQ_OK)
    return rc;
  return tq_auth_user_add_hashed(lib, name, role, hash, err);
}

tq_code tq_auth_client_add(tq_lib *lib, const char *name, tq_role role, char **client_id,
                           char **secret, tq_err *err) {
  *client_id = *secret = NULL;
  tq_code rc;
  if ((rc = tq_auth_check_name(name, err)) != TQ_OK || (rc = check_role(role, err)) != TQ_OK)
    return rc;
  unsigned char raw[16];
  char id[33], sec[TQ_AUTH_TOKEN_LEN + 1];
  setup();
  randombytes_buf(raw, sizeof raw);
  sodium_bin2hex(id, sizeof id, raw, sizeof raw);
  tq_auth_token_new(sec);
  char hash[crypto_pwhash_STRBYTES];
  if ((rc = tq_auth_pw_hash(sec, hash, err)) != TQ_OK)
    goto out;
  if ((rc = begin(lib, err)) != TQ_OK)
    goto out;
  rc = finish(lib, user_insert(lib, name, role, hash, id, err), err);
  if (rc == TQ_OK) {
    *client_id = tq_strdup(id);
    *secret = tq_strdup(sec);
    if (*client_id == NULL || *secret == NULL) {
      free(*client_id);
      free(*secret);
      *client_id = *secret = NULL;
      rc = tq_err_set(err, TQ_ENOMEM, "client '%s': out of memory", name);
    }
  }
out:
  sodium_memzero(sec, sizeof sec);
  return rc;
}

tq_code tq_auth_user_get(tq_lib *lib, int64_t id, const char *name, tq_user *out, tq_err *err) {
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  tq_code rc = prep(db,
                    name ? "SELECT " USER_COLS_D " FROM users WHERE name=?1"
                         : "SELECT " USER_COLS_D " FROM users WHERE id=?1",
                    &st, err);
  if (rc != TQ_OK)
    return rc;
  if (name)
    bind_str(st, 1, name);
  else
    sqlite3_bind_int64(st, 1, id);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW)
    user_row(st, out);
  else if (step == SQLITE_DONE && name)
    rc = tq_err_set(err, TQ_ENOTFOUND, "user '%s' not found", name);
  else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "user %lld not found", (long long)id);
  else
    rc = db_err(db, err, "reading a user");
  sqlite3_finalize(st);
  return rc;
}

/* Runs sql (binding ?1 = the name, ?2 = arg when non-NULL) on the user named name, in the
 * caller's transaction; TQ_ENOTFOUND when it changed nothing. */
static tq_code user_update(tq_lib *lib, const char *sql, const char *name, const char *arg,
                           tq_err *err) {
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  tq_code rc = prep(db, sql, &st, err);
  if (rc != TQ_OK)
    return rc;
  bind_str(st, 1, name);
  if (arg)
    bind_str(st, 2, arg);
  if ((rc = done(db, st, err, "changing a user")) != TQ_OK)
    return rc;
  if (sqlite3_changes(db) == 0)
    return tq_err_set(err, TQ_ENOTFOUND, "user '%s' not found", name);
  return TQ_OK;
}

static tq_code revoke_user_tokens(tq_lib *lib, const char *name, tq_err *err) {
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  tq_code rc =
      prep(db, "DELETE FROM tokens WHERE user_id=(SELECT id FROM users WHERE name=?1)", &st, err);
  if (rc != TQ_OK)
    return rc;
  bind_str(st, 1, name);
  return done(db, st, err, "revoking tokens");
}

tq_code tq_auth_user_passwd_hashed(tq_lib *lib, const char *name, const char *hash, tq_err *err) {
  tq_code rc;
  tq_user u;
  if (!hash_valid(hash))
    return tq_err_set(err, TQ_EINTERNAL, "user '%s': not a password hash", name);
  if ((rc = begin(lib, err)) != TQ_OK)
    return rc;
  if ((rc = tq_auth_user_get(lib, 0, name, &u, err)) == TQ_OK && u.is_client)
    rc = tq_err_set(err, TQ_EINVAL,
                    "'%s' is an API client: its secret is made by 'client add', not set", name);
  if (rc == TQ_OK)
    rc = user_update(lib, "UPDATE users SET pwhash=?2 WHERE name=?1 AND kind='person'", name, hash,
                     err);
  if (rc == TQ_OK) /* a new password ends every session of the old one */
    rc = revoke_user_tokens(lib, name, err);
  return finish(lib, rc, err);
}

tq_code tq_auth_user_passwd(tq_lib *lib, const char *name, const char *password, tq_err *err) {
  char hash[crypto_pwhash_STRBYTES];
  tq_code rc = tq_auth_pw_hash(password, hash, err);
  if (rc != TQ_OK)
    return rc;
  return tq_auth_user_passwd_hashed(lib, name, hash, err);
}

tq_code tq_auth_user_role(tq_lib *lib, const char *name, tq_role role, tq_err *err) {
  tq_code rc;
  if ((rc = check_role(role, err)) != TQ_OK || (rc = begin(lib, err)) != TQ_OK)
    return rc;
  rc = user_update(lib, "UPDATE users SET role=?2 WHERE name=?1", name, tq_role_name(role), err);
  return finish(lib, rc, err);
}

tq_code tq_auth_user_set_disabled(tq_lib *lib, const char *name, int disabled, tq_err *err) {
  tq_code rc;
  if ((rc = begin(lib, err)) != TQ_OK)
    return rc;
  rc = user_update(lib, "UPDATE users SET disabled=CAST(?2 AS INTEGER) WHERE name=?1", name,
                   disabled ? "1" : "0", err);
  if (rc == TQ_OK && disabled)
    rc = revoke_user_tokens(lib, name, err);
  return finish(lib, rc, err);
}

tq_code tq_auth_user_delete(tq_lib *lib, const char *name, tq_err *err) {
  tq_code rc;
  if ((rc = begin(lib, err)) != TQ_OK)
    return rc;
  rc = revoke_user_tokens(lib, name, err);
  if (rc == TQ_OK) { /* and the runs kept for apply: a user made later may get the same id */
    sqlite3 *db = tq_lib_db(lib);
    sqlite3_stmt *st = NULL;
    rc = prep(db, "DELETE FROM op_runs WHERE user_id=(SELECT id FROM users WHERE name=?1)", &st,
              err);
    if (rc == TQ_OK) {
      bind_str(st, 1, name);
      rc = done(db, st, err, "dropping the user's kept runs");
    }
  }
  if (rc == TQ_OK)
    rc = user_update(lib, "DELETE FROM users WHERE name=?1", name, NULL, err);
  return finish(lib, rc, err);
}

tq_code tq_auth_user_list(tq_lib *lib, tq_user **out, size_t *n, tq_err *err) {
  *out = NULL;
  *n = 0;
  if (tq_lib_part_version(lib, "server") == 0)
    return TQ_OK; /* a library that never had a user (maybe read only) */
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  tq_code rc = prep(db, "SELECT " USER_COLS_D " FROM users ORDER BY name", &st, err);
  if (rc != TQ_OK)
    return rc;
  size_t cap = 0;
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      tq_user *grown = realloc(*out, ncap * sizeof **out);
      if (grown == NULL) {
        rc = tq_err_set(err, TQ_ENOMEM, "listing users: out of memory");
        break;
      }
      *out = grown;
      cap = ncap;
    }
    user_row(st, &(*out)[(*n)++]);
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = db_err(db, err, "listing users");
  sqlite3_finalize(st);
  if (rc != TQ_OK) {
    free(*out);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

tq_code tq_auth_admin_count(tq_lib *lib, int64_t *n, tq_err *err) {
  *n = 0;
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  tq_code rc = prep(db, "SELECT count(*) FROM users WHERE role='admin' AND disabled=0", &st, err);
  if (rc != TQ_OK)
    return rc;
  if (sqlite3_step(st) == SQLITE_ROW)
    *n = sqlite3_column_int64(st, 0);
  else
    rc = db_err(db, err, "counting admins");
  sqlite3_finalize(st);
  return rc;
}

/* ---- logins ------------------------------------------------------------------------------------
 */

/* Looks the account up by sql (?1 = key) and verifies secret against its hash; every failure
 * costs one verification. */
static tq_code check_secret(tq_lib *lib, const char *sql, const char *key, const char *secret,
                            tq_user *out, const char *fail_msg, tq_err *err) {
  setup();
  char hash[crypto_pwhash_STRBYTES];
  int found = 0, disabled = 0;
  tq_code rc = TQ_OK;
  sqlite3_stmt *st = NULL;
  sqlite3 *db = tq_lib_db(lib);
  if (key && secret && tq_lib_part_version(lib, "server") > 0) {
    if ((rc = prep(db, sql, &st, err)) != TQ_OK)
      return rc;
    bind_str(st, 1, key);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
      user_row(st, out);
      tq_strlcpy(hash, (const char *)sqlite3_column_text(st, 5), sizeof hash);
      disabled = sqlite3_column_int(st, 6);
      found = 1;
    } else if (step != SQLITE_DONE)
      rc = db_err(db, err, "reading a user");
    sqlite3_finalize(st);
    if (rc != TQ_OK)
      return rc;
  }
  const char *pw = secret ? secret : "";
  size_t len = strnlen(pw, TQ_AUTH_MAX_PASSWORD + 1);
  int ok = crypto_pwhash_str_verify(found ? hash : DUMMY_HASH, pw, len) == 0;
  sodium_memzero(hash, sizeof hash);
  if (!found || disabled || !ok || len > TQ_AUTH_MAX_PASSWORD) {
    memset(out, 0, sizeof *out);
    return tq_err_set(err, TQ_EDENIED, "%s", fail_msg);
  }
  return TQ_OK;
}

tq_code tq_auth_check_login(tq_lib *lib, const char *name, const char *password, tq_user *out,
                            tq_err *err) {
  return check_secret(lib,
                      "SELECT " USER_COLS ",pwhash,disabled FROM users "
                      "WHERE name=?1 AND kind='person'",
                      name, password, out, "wrong user name or password", err);
}

tq_code tq_auth_check_client(tq_lib *lib, const char *client_id, const char *secret, tq_user *out,
                             tq_err *err) {
  return check_secret(lib,
                      "SELECT " USER_COLS ",pwhash,disabled FROM users "
                      "WHERE client_id=?1 AND kind='client'",
                      client_id, secret, out, "wrong client credentials", err);
}

/* ---- tokens ------------------------------------------------------------------------------------
 */

tq_code tq_auth_lookup(tq_lib *lib, const char *token, tq_user *out, tq_err *err) {
  if (!tq_auth_token_wellformed(token))
    return tq_err_set(err, TQ_ENOTFOUND, "token: not a token");
  char hex[65];
  tq_auth_token_hash(token, hex);
  /* Every request asks: the statement is the connection's cached one (a prepare per request
   * cost more than the rest of a small read); it only fails to prepare before the server's
   * tables exist, when no token is known either. */
  tq_err perr;
  sqlite3_stmt *st =
      tq_lib_stmt(lib,
                  "SELECT u.id,u.name,u.role,u.kind,u.created_at,t.expires_at FROM tokens t "
                  "JOIN users u ON u.id=t.user_id WHERE t.hash=?1 AND t.kind='access' "
                  "AND t.revoked_at IS NULL AND u.disabled=0",
                  &perr);
  if (st == NULL) {
    if (tq_lib_part_version(lib, "server") == 0)
      return tq_err_set(err, TQ_ENOTFOUND, "token: unknown");
    return tq_err_set(err, perr.code, "%s", perr.msg);
  }
  sqlite3 *db = tq_lib_db(lib);
  tq_code rc = TQ_OK;
  bind_str(st, 1, hex);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW) {
    user_row(st, out);
    if (sqlite3_column_int64(st, 5) <= tq_time_now())
      rc = tq_err_set(err, TQ_ETIMEOUT, "token: expired");
  } else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "token: unknown");
  else
    rc = db_err(db, err, "reading a token");
  sqlite3_reset(st); /* cached: reset, not finalized, so no read transaction stays open */
  return rc;
}

static tq_code token_insert(tq_lib *lib, const char *token, int64_t user_id, const char *kind,
                            const char *family, int64_t expires_at, tq_err *err) {
  char hex[65];
  tq_auth_token_hash(token, hex);
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  tq_code rc = prep(db,
                    "INSERT INTO tokens(hash,user_id,kind,family,expires_at,created_at) "
                    "VALUES(?1,?2,?3,?4,?5,?6)",
                    &st, err);
  if (rc != TQ_OK)
    return rc;
  bind_str(st, 1, hex);
  sqlite3_bind_int64(st, 2, user_id);
  bind_str(st, 3, kind);
  bind_str(st, 4, family);
  sqlite3_bind_int64(st, 5, expires_at);
  sqlite3_bind_int64(st, 6, tq_time_now());
  return done(db, st, err, "storing a token");
}

/* A pair in family (in the caller's transaction); purges tokens past their expiry. */
static tq_code issue_in(tq_lib *lib, int64_t user_id, const char *family, int64_t access_ttl,
                        int64_t refresh_ttl, tq_auth_pair *out, tq_err *err) {
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  int64_t now = tq_time_now();
  tq_code rc = prep(db, "DELETE FROM tokens WHERE expires_at < ?1", &st, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3_bind_int64(st, 1, now);
  if ((rc = done(db, st, err, "purging expired tokens")) != TQ_OK)
    return rc;
  tq_auth_token_new(out->access);
  tq_auth_token_new(out->refresh);
  out->expires_in = access_ttl;
  rc = token_insert(lib, out->access, user_id, "access", family, now + access_ttl, err);
  if (rc == TQ_OK)
    rc = token_insert(lib, out->refresh, user_id, "refresh", family, now + refresh_ttl, err);
  if (rc != TQ_OK)
    sodium_memzero(out, sizeof *out);
  return rc;
}

tq_code tq_auth_issue(tq_lib *lib, int64_t user_id, int64_t access_ttl, int64_t refresh_ttl,
                      tq_auth_pair *out, tq_err *err) {
  unsigned char raw[16];
  char family[33];
  setup();
  randombytes_buf(raw, sizeof raw);
  sodium_bin2hex(family, sizeof family, raw, sizeof raw);
  tq_code rc = begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  return finish(lib, issue_in(lib, user_id, family, access_ttl, refresh_ttl, out, err), err);
}

/* Revokes every live token of family (in the caller's transaction). */
static tq_code revoke_family(tq_lib *lib, const char *family, tq_err *err) {
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  tq_code rc =
      prep(db, "UPDATE tokens SET revoked_at=?2 WHERE family=?1 AND revoked_at IS NULL", &st, err);
  if (rc != TQ_OK)
    return rc;
  bind_str(st, 1, family);
  sqlite3_bind_int64(st, 2, tq_time_now());
  return done(db, st, err, "revoking a token family");
}

tq_code tq_auth_revoke(tq_lib *lib, const char *access_token, tq_err *err) {
  if (!tq_auth_token_wellformed(access_token))
    return tq_err_set(err, TQ_ENOTFOUND, "token: not a token");
  char hex[65], family[65] = "";
  tq_auth_token_hash(access_token, hex);
  tq_code rc = begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  if ((rc = prep(db, "SELECT family FROM tokens WHERE hash=?1 AND kind='access'", &st, err)) !=
      TQ_OK)
    return finish(lib, rc, err);
  bind_str(st, 1, hex);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW)
    tq_strlcpy(family, (const char *)sqlite3_column_text(st, 0), sizeof family);
  else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "token: unknown");
  else
    rc = db_err(db, err, "reading a token");
  sqlite3_finalize(st);
  if (rc == TQ_OK)
    rc = revoke_family(lib, family, err);
  return finish(lib, rc, err);
}

tq_code tq_auth_refresh(tq_lib *lib, const char *refresh_token, int64_t access_ttl,
                        int64_t refresh_ttl, tq_user *who, tq_auth_pair *out, int *reused,
                        tq_err *err) {
  *reused = 0;
  memset(who, 0, sizeof *who);
  if (!tq_auth_token_wellformed(refresh_token))
    return tq_err_set(err, TQ_ENOTFOUND, "refresh_token: not a token");
  char hex[65], family[65] = "";
  tq_auth_token_hash(refresh_token, hex);
  tq_code rc = begin(lib, err);
  if (rc != TQ_OK)
    return rc;
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  int64_t user_id = 0, expires_at = 0;
  int revoked = 0;
  if ((rc = prep(db,
                 "SELECT user_id,family,expires_at,revoked_at IS NOT NULL FROM tokens "
                 "WHERE hash=?1 AND kind='refresh'",
                 &st, err)) != TQ_OK)
    return finish(lib, rc, err);
  bind_str(st, 1, hex);
  int step = sqlite3_step(st);
  if (step == SQLITE_ROW) {
    user_id = sqlite3_column_int64(st, 0);
    tq_strlcpy(family, (const char *)sqlite3_column_text(st, 1), sizeof family);
    expires_at = sqlite3_column_int64(st, 2);
    revoked = sqlite3_column_int(st, 3);
  } else if (step == SQLITE_DONE)
    rc = tq_err_set(err, TQ_ENOTFOUND, "refresh_token: unknown");
  else
    rc = db_err(db, err, "reading a token");
  sqlite3_finalize(st);
  if (rc != TQ_OK)
    return finish(lib, rc, err);
  if (revoked) {
    /* A rotated token used again: whoever holds the family's live token may be a thief. The
     * revocation is committed; the caller gets the refusal. */
    *reused = 1;
    tq_err e2;
    if (tq_auth_user_get(lib, user_id, NULL, who, &e2) != TQ_OK)
      memset(who, 0, sizeof *who);
    rc = finish(lib, revoke_family(lib, family, err), err);
    if (rc != TQ_OK)
      return rc;
    return tq_err_set(err, TQ_EDENIED,
                      "refresh_token: reused after rotation; its tokens are revoked");
  }
  if (expires_at <= tq_time_now())
    return finish(lib, tq_err_set(err, TQ_ETIMEOUT, "refresh_token: expired"), err);
  if ((rc = tq_auth_user_get(lib, user_id, NULL, who, err)) != TQ_OK)
    return finish(lib, tq_err_set(err, TQ_ENOTFOUND, "refresh_token: unknown"), err);
  if ((rc = prep(db, "UPDATE tokens SET revoked_at=?2 WHERE hash=?1", &st, err)) != TQ_OK)
    return finish(lib, rc, err);
  bind_str(st, 1, hex);
  sqlite3_bind_int64(st, 2, tq_time_now());
  rc = done(db, st, err, "rotating a refresh token");
  if (rc == TQ_OK)
    rc = issue_in(lib, user_id, family, access_ttl, refresh_ttl, out, err);
  return finish(lib, rc, err);
}

/* ---- audit -------------------------------------------------------------------------------------
 */

tq_code tq_auth_audit(tq_lib *lib, const char *who, const char *what, const char *target,
                      const char *detail, const char *addr, tq_err *err) {
  if (what == NULL || *what == '\0')
    return tq_err_set(err, TQ_EINVAL, "audit: what is empty");
  tq_code rc = tq_auth_ensure(lib, err);
  if (rc != TQ_OK)
    return rc;
  char *c_who = tq_auth_clean(who && *who ? who : "-", 256);
  char *c_what = tq_auth_clean(what, 128);
  char *c_target = tq_auth_clean(target, 1024);
  char *c_detail = tq_auth_clean(detail, 4096);
  char *c_addr = tq_auth_clean(addr, 128);
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  if (!c_who || !c_what || (target && !c_target) || (detail && !c_detail) || (addr && !c_addr))
    rc = tq_err_set(err, TQ_ENOMEM, "audit: out of memory");
  else if ((rc = prep(db,
                      "INSERT INTO audit(at,who,what,target,detail,addr) "
                      "VALUES(?1,?2,?3,?4,?5,?6)",
                      &st, err)) == TQ_OK) {
    sqlite3_bind_int64(st, 1, tq_time_now());
    bind_str(st, 2, c_who);
    bind_str(st, 3, c_what);
    bind_str(st, 4, c_target);
    bind_str(st, 5, c_detail);
    bind_str(st, 6, c_addr);
    rc = done(db, st, err, "writing the audit log");
  }
  free(c_who);
  free(c_what);
  free(c_target);
  free(c_detail);
  free(c_addr);
  return rc;
}
