/* test_server_auth.c: users, API clients, tokens and the audit log of the server part
 * (src/server/auth.c): passwords are kept as Argon2id hashes and verified, wrong and unknown
 * names are refused alike, bad names/roles/passwords are refused with nothing written,
 * deleting a user or changing a password revokes its tokens, tokens expire, refresh rotates
 * and a reused refresh token revokes its family, and the library file never holds a password,
 * a client secret or a token in clear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/server/auth_int.h"
#include "tqhost/server.h"

typedef struct fixture {
  char path[128];
  tq_lib *lib;
} fixture;

static void remove_db(const char *path) {
  char p[160];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->path, sizeof f->path, "/tmp/tq_test_auth_%d.db", (int)getpid());
  remove_db(f->path);
  tq_err err;
  if (tq_lib_open(f->path, TQ_LIB_OPEN_CREATE, &f->lib, &err) != TQ_OK ||
      tq_auth_migrate(f->lib, &err) != TQ_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->lib)
    tq_lib_close(f->lib);
  remove_db(f->path);
  free(f);
  unsetenv("TQHOST_NOW");
  return 0;
}

static int64_t count(tq_lib *lib, const char *sql) {
  sqlite3_stmt *st = NULL;
  int64_t n = -1;
  if (sqlite3_prepare_v2(tq_lib_db(lib), sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

/* The stored text of one column of the first row of sql (static buffer). */
static const char *text(tq_lib *lib, const char *sql) {
  static char out[512];
  sqlite3_stmt *st = NULL;
  out[0] = '\0';
  if (sqlite3_prepare_v2(tq_lib_db(lib), sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    snprintf(out, sizeof out, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return out;
}

static void set_now(int64_t t) {
  char s[20];
  tq_time_format(t, s);
  setenv("TQHOST_NOW", s, 1);
}

static void test_roles_by_name(void **state) {
  (void)state;
  assert_int_equal(tq_role_from_name("admin"), TQ_ROLE_ADMIN);
  assert_int_equal(tq_role_from_name("analyst"), TQ_ROLE_ANALYST);
  assert_int_equal(tq_role_from_name("read-only"), TQ_ROLE_READONLY);
  assert_int_equal(tq_role_from_name("root"), TQ_ROLE_NONE);
  assert_int_equal(tq_role_from_name("Admin"), TQ_ROLE_NONE);
  assert_int_equal(tq_role_from_name(NULL), TQ_ROLE_NONE);
  assert_string_equal(tq_role_name(TQ_ROLE_READONLY), "read-only");
  assert_string_equal(tq_role_name((tq_role)42), "none");
}

static void test_password_is_stored_as_argon2id_and_verified(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_user u;
  assert_int_equal(tq_auth_user_add(f->lib, "alice", TQ_ROLE_ANALYST, "correct horse", &err),
                   TQ_OK);
  const char *h = text(f->lib, "SELECT pwhash FROM users WHERE name='alice'");
  assert_true(strncmp(h, "$argon2id$", 10) == 0);
  assert_null(strstr(h, "correct horse"));
  assert_int_equal(tq_auth_check_login(f->lib, "alice", "correct horse", &u, &err), TQ_OK);
  assert_string_equal(u.name, "alice");
  assert_int_equal(u.role, TQ_ROLE_ANALYST);
  assert_false(u.is_client);
  assert_true(u.id > 0);
}

static void test_wrong_password_and_unknown_user_are_refused_alike(void **state) {
  fixture *f = *state;
  tq_err err, err2;
  tq_user u;
  assert_int_equal(tq_auth_user_add(f->lib, "bob", TQ_ROLE_READONLY, "s3cret!", &err), TQ_OK);
  assert_int_equal(tq_auth_check_login(f->lib, "bob", "s3cret", &u, &err), TQ_EDENIED);
  assert_int_equal(tq_auth_check_login(f->lib, "nobody", "s3cret!", &u, &err2), TQ_EDENIED);
  assert_string_equal(err.msg, err2.msg);
  assert_null(strstr(err.msg, "s3cret"));
  assert_int_equal(tq_auth_check_login(f->lib, "bob", "", &u, &err), TQ_EDENIED);
  assert_int_equal(tq_auth_check_login(f->lib, "bob", NULL, &u, &err), TQ_EDENIED);
  assert_int_equal(u.id, 0);
}

static void test_bad_names_roles_and_passwords_are_refused(void **state) {
  fixture *f = *state;
  tq_err err;
  char longname[200];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  const char *bad_names[] = {"",         "a\nb",  "esc\x1b[31m", "tab\there", "del\x7f",
                             "\xff\xfe", " lead", "trail ",      longname};
  for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
    assert_int_equal(tq_auth_user_add(f->lib, bad_names[i], TQ_ROLE_ADMIN, "pw", &err), TQ_EINVAL);
    assert_non_null(strstr(err.msg, "user name"));
    assert_null(strchr(err.msg, '\x1b'));
  }
  assert_int_equal(tq_auth_user_add(f->lib, NULL, TQ_ROLE_ADMIN, "pw", &err), TQ_EINVAL);
  assert_int_equal(tq_auth_user_add(f->lib, "carol", TQ_ROLE_NONE, "pw", &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "role"));
  assert_int_equal(tq_auth_user_add(f->lib, "carol", (tq_role)9, "pw", &err), TQ_EINVAL);
  assert_int_equal(tq_auth_user_add(f->lib, "carol", TQ_ROLE_ADMIN, "", &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "password"));
  char *huge = malloc(TQ_AUTH_MAX_PASSWORD + 2);
  memset(huge, 'p', TQ_AUTH_MAX_PASSWORD + 1);
  huge[TQ_AUTH_MAX_PASSWORD + 1] = '\0';
  assert_int_equal(tq_auth_user_add(f->lib, "carol", TQ_ROLE_ADMIN, huge, &err), TQ_EINVAL);
  free(huge);
  assert_int_equal(count(f->lib, "SELECT count(*) FROM users"), 0);
  char *id = NULL, *secret = NULL;
  assert_int_equal(tq_auth_client_add(f->lib, "a\rb", TQ_ROLE_ADMIN, &id, &secret, &err),
                   TQ_EINVAL);
  assert_null(id);
  assert_null(secret);
  assert_int_equal(tq_auth_user_role(f->lib, "nobody", TQ_ROLE_ADMIN, &err), TQ_ENOTFOUND);
  assert_non_null(strstr(err.msg, "nobody"));
  assert_int_equal(tq_auth_user_passwd(f->lib, "nobody", "pw", &err), TQ_ENOTFOUND);
  assert_int_equal(tq_auth_user_delete(f->lib, "nobody", &err), TQ_ENOTFOUND);
}

static void test_existing_name_is_refused(void **state) {
  fixture *f = *state;
  tq_err err;
  assert_int_equal(tq_auth_user_add(f->lib, "dave", TQ_ROLE_ADMIN, "one", &err), TQ_OK);
  assert_int_equal(tq_auth_user_add(f->lib, "dave", TQ_ROLE_READONLY, "two", &err), TQ_EEXIST);
  assert_non_null(strstr(err.msg, "dave"));
  char *id = NULL, *secret = NULL;
  assert_int_equal(tq_auth_client_add(f->lib, "dave", TQ_ROLE_ADMIN, &id, &secret, &err),
                   TQ_EEXIST);
  tq_user u;
  assert_int_equal(tq_auth_check_login(f->lib, "dave", "one", &u, &err), TQ_OK);
  assert_int_equal(u.role, TQ_ROLE_ADMIN);
}

static void test_sql_metacharacters_in_names_are_plain_text(void **state) {
  fixture *f = *state;
  tq_err err;
  const char *name = "x'); DROP TABLE users;-- \"%_\\";
  assert_int_equal(tq_auth_user_add(f->lib, name, TQ_ROLE_READONLY, "pw'--", &err), TQ_OK);
  assert_int_equal(tq_auth_user_add(f->lib, "x%", TQ_ROLE_READONLY, "pw", &err), TQ_OK);
  tq_user *all = NULL;
  size_t n = 0;
  assert_int_equal(tq_auth_user_list(f->lib, &all, &n, &err), TQ_OK);
  assert_int_equal(n, 2);
  assert_string_equal(all[0].name, "x%");
  assert_string_equal(all[1].name, name);
  free(all);
  tq_user u;
  assert_int_equal(tq_auth_check_login(f->lib, name, "pw'--", &u, &err), TQ_OK);
  assert_int_equal(tq_auth_check_login(f->lib, "x_", "pw", &u, &err), TQ_EDENIED);
  assert_int_equal(tq_auth_user_delete(f->lib, "x%", &err), TQ_OK);
  assert_int_equal(count(f->lib, "SELECT count(*) FROM users"), 1);
}

static void test_role_change_takes_effect_on_live_tokens(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_user u;
  tq_auth_pair p;
  assert_int_equal(tq_auth_user_add(f->lib, "erin", TQ_ROLE_READONLY, "pw", &err), TQ_OK);
  assert_int_equal(tq_auth_check_login(f->lib, "erin", "pw", &u, &err), TQ_OK);
  assert_int_equal(tq_auth_issue(f->lib, u.id, 3600, 7200, &p, &err), TQ_OK);
  assert_int_equal(p.expires_in, 3600);
  assert_true(tq_auth_token_wellformed(p.access));
  assert_true(tq_auth_token_wellformed(p.refresh));
  assert_string_not_equal(p.access, p.refresh);
  assert_int_equal(tq_auth_lookup(f->lib, p.access, &u, &err), TQ_OK);
  assert_int_equal(u.role, TQ_ROLE_READONLY);
  assert_int_equal(tq_auth_user_role(f->lib, "erin", TQ_ROLE_ADMIN, &err), TQ_OK);
  assert_int_equal(tq_auth_lookup(f->lib, p.access, &u, &err), TQ_OK);
  assert_int_equal(u.role, TQ_ROLE_ADMIN);
  /* a refresh token is not an access token */
  assert_int_equal(tq_auth_lookup(f->lib, p.refresh, &u, &err), TQ_ENOTFOUND);
  assert_int_equal(tq_auth_lookup(f->lib, "garbage", &u, &err), TQ_ENOTFOUND);
  assert_int_equal(tq_auth_lookup(f->lib, NULL, &u, &err), TQ_ENOTFOUND);
}

static void test_delete_revokes_tokens(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_user u;
  tq_auth_pair p;
  assert_int_equal(tq_auth_user_add(f->lib, "frank", TQ_ROLE_ANALYST, "pw", &err), TQ_OK);
  assert_int_equal(tq_auth_user_get(f->lib, 0, "frank", &u, &err), TQ_OK);
  assert_int_equal(tq_auth_issue(f->lib, u.id, 3600, 7200, &p, &err), TQ_OK);
  assert_int_equal(count(f->lib, "SELECT count(*) FROM tokens"), 2);
  assert_int_equal(tq_auth_user_delete(f->lib, "frank", &err), TQ_OK);
  assert_int_equal(count(f->lib, "SELECT count(*) FROM tokens"), 0);
  assert_int_equal(tq_auth_lookup(f->lib, p.access, &u, &err), TQ_ENOTFOUND);
  int reused = 0;
  tq_auth_pair p2;
  assert_int_equal(tq_auth_refresh(f->lib, p.refresh, 3600, 7200, &u, &p2, &reused, &err),
                   TQ_ENOTFOUND);
  assert_int_equal(tq_auth_check_login(f->lib, "frank", "pw", &u, &err), TQ_EDENIED);
}

static void test_passwd_replaces_the_password_and_revokes_tokens(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_user u;
  tq_auth_pair p;
  assert_int_equal(tq_auth_user_add(f->lib, "gina", TQ_ROLE_ANALYST, "old", &err), TQ_OK);
  assert_int_equal(tq_auth_check_login(f->lib, "gina", "old", &u, &err), TQ_OK);
  assert_int_equal(tq_auth_issue(f->lib, u.id, 3600, 7200, &p, &err), TQ_OK);
  assert_int_equal(tq_auth_user_passwd(f->lib, "gina", "", &err), TQ_EINVAL);
  assert_int_equal(tq_auth_lookup(f->lib, p.access, &u, &err), TQ_OK); /* nothing changed */
  assert_int_equal(tq_auth_user_passwd(f->lib, "gina", "new", &err), TQ_OK);
  assert_int_equal(tq_auth_check_login(f->lib, "gina", "old", &u, &err), TQ_EDENIED);
  assert_int_equal(tq_auth_check_login(f->lib, "gina", "new", &u, &err), TQ_OK);
  assert_int_equal(tq_auth_lookup(f->lib, p.access, &u, &err), TQ_ENOTFOUND);
}

static void test_tokens_expire(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_user u;
  tq_auth_pair p, p2;
  int reused = 0;
  int64_t now = tq_time_now();
  set_now(now); /* the clock stands still: hashing a password may take seconds on a busy host */
  assert_int_equal(tq_auth_user_add(f->lib, "hank", TQ_ROLE_ANALYST, "pw", &err), TQ_OK);
  assert_int_equal(tq_auth_user_get(f->lib, 0, "hank", &u, &err), TQ_OK);
  int64_t id = u.id;
  assert_int_equal(tq_auth_issue(f->lib, id, 60, 600, &p, &err), TQ_OK);
  set_now(now + 61);
  assert_int_equal(tq_auth_lookup(f->lib, p.access, &u, &err), TQ_ETIMEOUT);
  assert_non_null(strstr(err.msg, "expired"));
  /* the refresh token still works, and makes a working access token */
  assert_int_equal(tq_auth_refresh(f->lib, p.refresh, 60, 600, &u, &p2, &reused, &err), TQ_OK);
  assert_int_equal(u.id, id);
  assert_int_equal(tq_auth_lookup(f->lib, p2.access, &u, &err), TQ_OK);
  set_now(now + 61 + 601);
  assert_int_equal(tq_auth_refresh(f->lib, p2.refresh, 60, 600, &u, &p, &reused, &err),
                   TQ_ETIMEOUT);
  assert_int_equal(reused, 0);
}

static void test_refresh_rotates_and_reuse_revokes_the_family(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_user u;
  tq_auth_pair a, b, c, other;
  int reused = 0;
  assert_int_equal(tq_auth_user_add(f->lib, "ivy", TQ_ROLE_ANALYST, "pw", &err), TQ_OK);
  assert_int_equal(tq_auth_user_get(f->lib, 0, "ivy", &u, &err), TQ_OK);
  int64_t id = u.id;
  assert_int_equal(tq_auth_issue(f->lib, id, 3600, 7200, &a, &err), TQ_OK);
  assert_int_equal(tq_auth_issue(f->lib, id, 3600, 7200, &other, &err), TQ_OK); /* 2nd login */
  assert_int_equal(tq_auth_refresh(f->lib, a.refresh, 3600, 7200, &u, &b, &reused, &err), TQ_OK);
  assert_string_not_equal(a.refresh, b.refresh);
  /* the old refresh token again: refused, and the whole family with it */
  assert_int_equal(tq_auth_refresh(f->lib, a.refresh, 3600, 7200, &u, &c, &reused, &err),
                   TQ_EDENIED);
  assert_int_equal(reused, 1);
  assert_int_equal(u.id, id);
  assert_int_equal(tq_auth_lookup(f->lib, b.access, &u, &err), TQ_ENOTFOUND);
  assert_int_equal(tq_auth_lookup(f->lib, a.access, &u, &err), TQ_ENOTFOUND);
  assert_int_equal(tq_auth_refresh(f->lib, b.refresh, 3600, 7200, &u, &c, &reused, &err),
                   TQ_EDENIED);
  /* the other login's family is untouched */
  assert_int_equal(tq_auth_lookup(f->lib, other.access, &u, &err), TQ_OK);
  assert_int_equal(tq_auth_refresh(f->lib, other.refresh, 3600, 7200, &u, &c, &reused, &err),
                   TQ_OK);
  assert_int_equal(reused, 0);
  /* an access token is not a refresh token; garbage is unknown */
  assert_int_equal(tq_auth_refresh(f->lib, c.access, 3600, 7200, &u, &b, &reused, &err),
                   TQ_ENOTFOUND);
  assert_int_equal(tq_auth_refresh(f->lib, "x' OR 1=1 --", 3600, 7200, &u, &b, &reused, &err),
                   TQ_ENOTFOUND);
}

static void test_client_credentials(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_user u;
  char *id = NULL, *secret = NULL;
  assert_int_equal(tq_auth_client_add(f->lib, "soar", TQ_ROLE_ANALYST, &id, &secret, &err), TQ_OK);
  assert_int_equal(strlen(id), 32);
  assert_true(tq_auth_token_wellformed(secret)); /* 256 bits */
  assert_int_equal(tq_auth_check_client(f->lib, id, secret, &u, &err), TQ_OK);
  assert_string_equal(u.name, "soar");
  assert_true(u.is_client);
  assert_int_equal(u.role, TQ_ROLE_ANALYST);
  assert_int_equal(tq_auth_check_client(f->lib, id, "wrong", &u, &err), TQ_EDENIED);
  assert_int_equal(tq_auth_check_client(f->lib, "nope", secret, &u, &err), TQ_EDENIED);
  /* a client is not a person: no password login by its name, no passwd */
  assert_int_equal(tq_auth_check_login(f->lib, "soar", secret, &u, &err), TQ_EDENIED);
  assert_int_equal(tq_auth_user_passwd(f->lib, "soar", "pw", &err), TQ_EINVAL);
  assert_int_equal(tq_auth_check_client(f->lib, id, secret, &u, &err), TQ_OK);
  free(id);
  free(secret);
}

static void test_audit_rows_are_escaped(void **state) {
  fixture *f = *state;
  tq_err err;
  assert_int_equal(
      tq_auth_audit(f->lib, NULL, "login_failed", "ev\nil\x1b[2J\xff", "d", "1.2.3.4", &err),
      TQ_OK);
  assert_string_equal(text(f->lib, "SELECT who FROM audit"), "-");
  assert_string_equal(text(f->lib, "SELECT target FROM audit"), "ev\\nil\\x1b[2J\\xff");
  assert_string_equal(text(f->lib, "SELECT addr FROM audit"), "1.2.3.4");
  assert_int_equal(tq_auth_audit(f->lib, "a", "", NULL, NULL, NULL, &err), TQ_EINVAL);
  /* within the caller's transaction: rolled back with it */
  assert_int_equal(tq_lib_begin(f->lib, &err), TQ_OK);
  assert_int_equal(tq_auth_audit(f->lib, "a", "user.add", "b", NULL, NULL, &err), TQ_OK);
  tq_lib_rollback(f->lib);
  assert_int_equal(count(f->lib, "SELECT count(*) FROM audit"), 1);
}

/* Whether the bytes of file hold needle. */
static int file_holds(const char *path, const char *needle) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return 0;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, fp);
  fclose(fp);
  int found = memmem(buf, got, needle, strlen(needle)) != NULL;
  free(buf);
  return found;
}

static void test_library_file_holds_no_secret_in_clear(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_user u;
  tq_auth_pair p, p2;
  int reused;
  char *id = NULL, *secret = NULL;
  const char *pw = "Tr0ub4dor&3-unique-password";
  assert_int_equal(tq_auth_user_add(f->lib, "jane", TQ_ROLE_ADMIN, "first-unique-password", &err),
                   TQ_OK);
  assert_int_equal(tq_auth_user_passwd(f->lib, "jane", pw, &err), TQ_OK);
  assert_int_equal(tq_auth_client_add(f->lib, "bot", TQ_ROLE_READONLY, &id, &secret, &err), TQ_OK);
  assert_int_equal(tq_auth_user_get(f->lib, 0, "jane", &u, &err), TQ_OK);
  assert_int_equal(tq_auth_issue(f->lib, u.id, 3600, 7200, &p, &err), TQ_OK);
  assert_int_equal(tq_auth_refresh(f->lib, p.refresh, 3600, 7200, &u, &p2, &reused, &err), TQ_OK);
  assert_int_equal(tq_auth_audit(f->lib, "jane", "login", "jane", NULL, NULL, &err), TQ_OK);
  /* the file and its WAL, before and after a checkpoint */
  char wal[160];
  snprintf(wal, sizeof wal, "%s-wal", f->path);
  const char *needles[] = {
      pw, "first-unique-password", secret, p.access, p.refresh, p2.access, p2.refresh};
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++) {
      assert_false(file_holds(f->path, needles[i]));
      assert_false(file_holds(wal, needles[i]));
    }
    if (f->lib)
      tq_lib_close(f->lib);
    f->lib = NULL;
  }
  /* the hashes are there (the check above can find what is in the file) */
  char hex[65];
  tq_auth_token_hash(p2.access, hex);
  assert_true(file_holds(f->path, hex) || file_holds(wal, hex));
  assert_true(file_holds(f->path, id) || file_holds(wal, id));
  free(id);
  free(secret);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roles_by_name),
      cmocka_unit_test_setup_teardown(test_password_is_stored_as_argon2id_and_verified, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_wrong_password_and_unknown_user_are_refused_alike, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bad_names_roles_and_passwords_are_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_existing_name_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sql_metacharacters_in_names_are_plain_text, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_role_change_takes_effect_on_live_tokens, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_delete_revokes_tokens, setup, teardown),
      cmocka_unit_test_setup_teardown(test_passwd_replaces_the_password_and_revokes_tokens, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_tokens_expire, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refresh_rotates_and_reuse_revokes_the_family, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_credentials, setup, teardown),
      cmocka_unit_test_setup_teardown(test_audit_rows_are_escaped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_library_file_holds_no_secret_in_clear, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
