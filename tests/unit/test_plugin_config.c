/* test_plugin_config.c: plugin configuration: values checked by field type, stored in the
 * library, passwords sealed under the key file and never readable without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tqhost/plugin.h"

typedef struct fx {
  char dir[64];
  char db[128];
  char key[128];
  tq_lib *lib;
  tq_plugin *p;
} fx;

static const char *data_dir(const char *name) {
  static char buf[4096];
  const char *here = __FILE__;
  const char *slash = strrchr(here, '/');
  snprintf(buf, sizeof buf, "%.*s/../data/plugins/%s", (int)(slash - here), here, name);
  return buf;
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  tq_err err = {0};
  strcpy(f->dir, "/tmp/tq_pconf_XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(f->db, sizeof f->db, "%s/lib.db", f->dir);
  snprintf(f->key, sizeof f->key, "%s/lib.db.key", f->dir);
  if (tq_lib_open(f->db, TQ_LIB_OPEN_CREATE, &f->lib, &err) != TQ_OK ||
      tq_plugin_load(data_dir("example-lookup"), &f->p, NULL, &err) != TQ_OK) {
    fprintf(stderr, "setup: %s\n", err.msg);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  tq_lib_close(f->lib);
  tq_plugin_free(f->p);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  if (system(cmd) != 0)
    return -1;
  free(f);
  return 0;
}

static tq_code check_field(const tq_plugin *p, const char *key, const char *v, char **norm) {
  tq_err err;
  *norm = NULL;
  return tq_plugin_field_check(tq_plugin_field_find(p, key), v, norm, &err);
}

static void values_are_checked_by_field_type(void **state) {
  fx *f = *state;
  char *n = NULL;
  assert_int_equal(check_field(f->p, "base_url", "http://127.0.0.1:80/v1", &n), TQ_OK);
  free(n);
  assert_int_equal(check_field(f->p, "base_url", "ftp://x", &n), TQ_EINVAL);
  assert_int_equal(check_field(f->p, "base_url", "https://", &n), TQ_EINVAL);
  assert_int_equal(check_field(f->p, "max_related", "12", &n), TQ_OK);
  free(n);
  assert_int_equal(check_field(f->p, "max_related", "12x", &n), TQ_EINVAL);
  assert_int_equal(check_field(f->p, "update_score", "Yes", &n), TQ_OK);
  assert_string_equal(n, "true");
  free(n);
  assert_int_equal(check_field(f->p, "update_score", "maybe", &n), TQ_EINVAL);
  assert_int_equal(check_field(f->p, "mode", "full", &n), TQ_OK);
  free(n);
  tq_err err;
  assert_int_equal(tq_plugin_field_check(tq_plugin_field_find(f->p, "mode"), "slow", &n, &err),
                   TQ_EINVAL);
  assert_string_equal(err.msg, "mode: 'slow' is not one of: fast, full");
  assert_int_equal(check_field(f->p, "api_key", "", &n), TQ_EINVAL);
}

/* number and list fields, and the messages name the field and the type. */
static void typed_fields_are_checked_and_named(void **state) {
  (void)state;
  tq_plugin_field num = {.key = "ratio", .type = TQ_FIELD_NUMBER};
  tq_plugin_field list = {.key = "tags", .type = TQ_FIELD_LIST};
  tq_plugin_field in = {.key = "max", .type = TQ_FIELD_INTEGER};
  tq_plugin_field yes = {.key = "on", .type = TQ_FIELD_BOOLEAN};
  char *n = NULL;
  tq_err err;
  assert_int_equal(tq_plugin_field_check(&num, "-1.5e3", &n, &err), TQ_OK);
  assert_string_equal(n, "-1.5e3");
  free(n);
  static const char *const bad_nums[] = {"", "1.5x", " 1", "nan", "inf", "0x10", "1e999"};
  for (size_t i = 0; i < sizeof bad_nums / sizeof bad_nums[0]; i++) {
    assert_int_equal(tq_plugin_field_check(&num, bad_nums[i], &n, &err), TQ_EINVAL);
    assert_non_null(strstr(err.msg, "ratio: "));
    assert_non_null(strstr(err.msg, "is not a number"));
  }
  assert_int_equal(tq_plugin_field_check(&list, " a , b c,d ", &n, &err), TQ_OK);
  assert_string_equal(n, "a,b c,d");
  free(n);
  assert_int_equal(tq_plugin_field_check(&list, "a,,b", &n, &err), TQ_EINVAL);
  assert_string_equal(err.msg, "tags: 'a,,b' is not a list (comma-separated items, none empty)");
  assert_int_equal(tq_plugin_field_check(&list, "", &n, &err), TQ_EINVAL);
  assert_int_equal(tq_plugin_field_check(&in, "1.5", &n, &err), TQ_EINVAL);
  assert_string_equal(err.msg, "max: '1.5' is not an integer");
  assert_int_equal(tq_plugin_field_check(&yes, "'; DROP TABLE x;--", &n, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "on: "));
  assert_non_null(strstr(err.msg, "is not a boolean"));
  assert_int_equal(tq_field_type_parse("number"), TQ_FIELD_NUMBER);
  assert_int_equal(tq_field_type_parse("list"), TQ_FIELD_LIST);
  assert_int_equal(tq_field_type_parse("float"), -1);
  assert_int_equal(tq_field_kind(TQ_FIELD_INTEGER), TQ_LUA_INTEGER);
  assert_int_equal(tq_field_kind(TQ_FIELD_SELECT), TQ_LUA_TEXT);
}

/* A stored value that no longer parses as its field's type fails the load, naming both. */
static void a_stored_value_of_the_wrong_type_fails_the_load(void **state) {
  fx *f = *state;
  tq_err err = {0};
  tq_lua_kv kvs[] = {{"max_related", "7"}, {"update_score", "off"}};
  assert_int_equal(tq_plugin_configure(f->lib, f->p, f->key, kvs, 2, &err), TQ_OK);
  tq_plugin_config c;
  assert_int_equal(tq_plugin_config_load(f->lib, f->p, f->key, 0, &c, &err), TQ_OK);
  assert_string_equal(tq_plugin_config_get(&c, "update_score"), "false");
  tq_lua_kind *kinds = NULL;
  assert_int_equal(tq_plugin_config_kinds(f->p, &c, &kinds, &err), TQ_OK);
  for (size_t i = 0; i < c.n_config; i++) {
    if (strcmp(c.config[i].key, "max_related") == 0)
      assert_int_equal(kinds[i], TQ_LUA_INTEGER);
    if (strcmp(c.config[i].key, "update_score") == 0)
      assert_int_equal(kinds[i], TQ_LUA_BOOLEAN);
    if (strcmp(c.config[i].key, "base_url") == 0)
      assert_int_equal(kinds[i], TQ_LUA_TEXT);
  }
  free(kinds);
  tq_plugin_config_free(&c);
  /* the stored text changed behind the host's back (an older version, a hand edit) */
  assert_int_equal(
      tq_lib_setting_put(f->lib, "plugin:example-lookup", "max_related", "seven", 0, &err), TQ_OK);
  assert_int_equal(tq_plugin_config_load(f->lib, f->p, f->key, 0, &c, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "max_related"));
  assert_non_null(strstr(err.msg, "integer"));
  assert_non_null(strstr(err.msg, "'seven'"));
  /* configure refuses it up front, naming the field and the type, and writes nothing */
  tq_lua_kv bad[] = {{"max_related", "7"}, {"update_score", "maybe"}};
  assert_int_equal(tq_plugin_configure(f->lib, f->p, f->key, bad, 2, &err), TQ_EINVAL);
  assert_string_equal(err.msg, "update_score: 'maybe' is not a boolean (true or false)");
  char *v = NULL;
  assert_int_equal(
      tq_lib_setting_get(f->lib, "plugin:example-lookup", "max_related", &v, NULL, &err), TQ_OK);
  assert_string_equal(v, "seven");
  free(v);
}

static void a_sealed_secret_opens_only_with_its_key_file(void **state) {
  fx *f = *state;
  char *sealed = NULL, *plain = NULL;
  tq_err err = {0};
  assert_int_equal(tq_plugin_secret_seal(f->key, "s3cret-value", &sealed, &err), TQ_OK);
  assert_null(strstr(sealed, "s3cret"));
  assert_true(strncmp(sealed, "sb1:", 4) == 0);
  struct stat st;
  assert_int_equal(stat(f->key, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(st.st_size, 32);
  assert_int_equal(tq_plugin_secret_open(f->key, sealed, &plain, &err), TQ_OK);
  assert_string_equal(plain, "s3cret-value");
  free(plain);
  /* Another key file cannot open it. */
  char other[160];
  snprintf(other, sizeof other, "%s/other.key", f->dir);
  char *sealed2 = NULL;
  assert_int_equal(tq_plugin_secret_seal(other, "x", &sealed2, &err), TQ_OK);
  assert_int_equal(tq_plugin_secret_open(other, sealed, &plain, &err), TQ_ECORRUPT);
  /* A damaged box does not open either. */
  sealed[strlen(sealed) - 3] = sealed[strlen(sealed) - 3] == 'A' ? 'B' : 'A';
  assert_int_equal(tq_plugin_secret_open(f->key, sealed, &plain, &err), TQ_ECORRUPT);
  free(sealed);
  free(sealed2);
  /* A key file others can read is refused. */
  chmod(f->key, 0644);
  assert_int_equal(tq_plugin_secret_seal(f->key, "x", &sealed, &err), TQ_EDENIED);
  assert_non_null(strstr(err.msg, "chmod 600"));
}

static void configure_stores_values_and_seals_passwords(void **state) {
  fx *f = *state;
  tq_lua_kv kvs[] = {{"api_key", "key-123456"}, {"mode", "full"}, {"update_score", "no"}};
  tq_err err = {0};
  assert_int_equal(tq_plugin_configure(f->lib, f->p, f->key, kvs, 3, &err), TQ_OK);
  char *v = NULL;
  int secret = 0;
  assert_int_equal(
      tq_lib_setting_get(f->lib, "plugin:example-lookup", "api_key", &v, &secret, &err), TQ_OK);
  assert_true(secret);
  assert_null(strstr(v, "key-123456"));
  free(v);
  tq_plugin_config cfg;
  assert_int_equal(tq_plugin_config_load(f->lib, f->p, f->key, 1, &cfg, &err), TQ_OK);
  assert_int_equal(cfg.n_missing, 0);
  assert_int_equal(cfg.n_secrets, 1);
  assert_string_equal(tq_plugin_config_get(&cfg, "api_key"), "key-123456");
  assert_string_equal(tq_plugin_config_get(&cfg, "mode"), "full");
  assert_string_equal(tq_plugin_config_get(&cfg, "update_score"), "false");
  assert_string_equal(tq_plugin_config_get(&cfg, "base_url"), "https://api.example.test/v1");
  tq_plugin_config_free(&cfg);
  /* Without want_secrets the secret is only the mask (no key file needed). */
  assert_int_equal(tq_plugin_config_load(f->lib, f->p, NULL, 0, &cfg, &err), TQ_OK);
  assert_string_equal(tq_plugin_config_get(&cfg, "api_key"), TQ_SECRET_MASK);
  tq_plugin_config_free(&cfg);
}

static void a_bad_pair_writes_nothing(void **state) {
  fx *f = *state;
  tq_lua_kv kvs[] = {{"mode", "full"}, {"colour", "blue"}};
  tq_err err = {0};
  assert_int_equal(tq_plugin_configure(f->lib, f->p, f->key, kvs, 2, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "'colour' is not a config field of plugin example-lookup "
                                  "(fields: api_key, base_url, update_score, mode, max_related)"));
  char *v = NULL;
  assert_int_equal(tq_lib_setting_get(f->lib, "plugin:example-lookup", "mode", &v, NULL, &err),
                   TQ_ENOTFOUND);
}

static void a_required_field_without_value_is_missing(void **state) {
  fx *f = *state;
  tq_plugin_config cfg;
  tq_err err = {0};
  assert_int_equal(tq_plugin_config_load(f->lib, f->p, f->key, 1, &cfg, &err), TQ_OK);
  assert_int_equal(cfg.n_missing, 1);
  assert_string_equal(cfg.missing[0], "api_key");
  assert_int_equal(cfg.n_secrets, 0);
  tq_plugin_config_free(&cfg);
}

static void the_key_file_sits_beside_the_library_unless_overridden(void **state) {
  (void)state;
  unsetenv("TQHOST_KEY_FILE");
  char *k = tq_plugin_key_path("/var/lib/tq.db");
  assert_string_equal(k, "/var/lib/tq.db.key");
  free(k);
  setenv("TQHOST_KEY_FILE", "/etc/tq.key", 1);
  k = tq_plugin_key_path("/var/lib/tq.db");
  assert_string_equal(k, "/etc/tq.key");
  free(k);
  unsetenv("TQHOST_KEY_FILE");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(values_are_checked_by_field_type, setup, teardown),
      cmocka_unit_test(typed_fields_are_checked_and_named),
      cmocka_unit_test_setup_teardown(a_stored_value_of_the_wrong_type_fails_the_load, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_sealed_secret_opens_only_with_its_key_file, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(configure_stores_values_and_seals_passwords, setup, teardown),
      cmocka_unit_test_setup_teardown(a_bad_pair_writes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(a_required_field_without_value_is_missing, setup, teardown),
      cmocka_unit_test(the_key_file_sits_beside_the_library_unless_overridden),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
