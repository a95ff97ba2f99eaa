/* test_host_dir.c: tq_host_dir, the one lookup of the host's folders (plugin/datadir.c): the
 * environment wins, then the host configuration's folders (relative to the file's folder, read
 * again when the file changes, ignored when it does not load), then beside the executable (a
 * build tree's binary: the source tree); schemas never come from the configuration. And the
 * configuration's new fields as tq_host_config_load reads them. */
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

static char g_root[] = "/tmp/tq_hostdir_XXXXXX";
static char g_conf[256];

static void write_conf(const char *text) {
  FILE *f = fopen(g_conf, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  if (mkdtemp(g_root) == NULL)
    return -1;
  snprintf(g_conf, sizeof g_conf, "%s/tqhost.yaml", g_root);
  setenv("TQHOST_CONFIG", g_conf, 1);
  for (int k = 0; k < TQ_DIR_N; k++)
    unsetenv(tq_host_dir_env((tq_host_dir_kind)k));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(g_conf);
  rmdir(g_root);
  return 0;
}

static void test_env_wins(void **state) {
  (void)state;
  write_conf("folders:\n  plugins: from-config\n");
  setenv("TQHOST_PLUGINS", "/nowhere/from-env", 1);
  char dirs[TQ_HOST_DIR_MAX][4096];
  const char *from[TQ_HOST_DIR_MAX];
  int n = 0;
  assert_int_equal(tq_host_dir_candidates(TQ_DIR_PLUGINS, dirs, &n, from), 1);
  assert_int_equal(n, 1);
  assert_string_equal(from[0], "TQHOST_PLUGINS");
  /* Named: taken even though it does not exist (the command then says so). */
  assert_string_equal(tq_host_dir(TQ_DIR_PLUGINS), "/nowhere/from-env");
  assert_string_equal(tq_plugin_dir(), "/nowhere/from-env");
  unsetenv("TQHOST_PLUGINS");
}

static void test_config_folders(void **state) {
  (void)state;
  write_conf("folders:\n  plugins: pl\n  actions: /srv/act\n");
  char want[512];
  snprintf(want, sizeof want, "%s/pl", g_root);
  assert_string_equal(tq_host_dir(TQ_DIR_PLUGINS), want);
  assert_string_equal(tq_host_dir(TQ_DIR_ACTIONS), "/srv/act");
  /* web not in the file: not named, found beside the executable (here: the source tree). */
  char dirs[TQ_HOST_DIR_MAX][4096];
  const char *from[TQ_HOST_DIR_MAX];
  int n = 0;
  assert_int_equal(tq_host_dir_candidates(TQ_DIR_WEB, dirs, &n, from), 0);
  assert_true(n >= 2);
  assert_string_equal(from[0], "the source tree of this build");
  assert_string_equal(from[n - 1], "the installed data folder");
  for (int i = 0; i < n; i++) {
    size_t len = strlen(dirs[i]);
    assert_true(len > 4 && strcmp(dirs[i] + len - 4, "/web") == 0);
  }
}

static void test_config_change_is_read(void **state) {
  (void)state;
  write_conf("folders:\n  plugins: first\n");
  char want[512];
  snprintf(want, sizeof want, "%s/first", g_root);
  assert_string_equal(tq_host_dir(TQ_DIR_PLUGINS), want);
  write_conf("folders:\n  plugins: the-second-one\n");
  snprintf(want, sizeof want, "%s/the-second-one", g_root);
  assert_string_equal(tq_host_dir(TQ_DIR_PLUGINS), want);
  unlink(g_conf); /* no file at all: the built-in order */
  char dirs[TQ_HOST_DIR_MAX][4096];
  int n = 0;
  assert_int_equal(tq_host_dir_candidates(TQ_DIR_PLUGINS, dirs, &n, NULL), 0);
}

static void test_bad_config_names_nothing(void **state) {
  (void)state;
  write_conf("folders:\n  plugins: [not, a, string]\n");
  char dirs[TQ_HOST_DIR_MAX][4096];
  int n = 0;
  assert_int_equal(tq_host_dir_candidates(TQ_DIR_PLUGINS, dirs, &n, NULL), 0);
  /* The file still fails where it is read for itself, naming file:line:col. */
  tq_host_config c;
  tq_err err = {0};
  assert_int_equal(tq_host_config_find(&c, &err), TQ_EINVAL);
  char want[300];
  snprintf(want, sizeof want, "%s:2:12", g_conf);
  assert_non_null(strstr(err.msg, want));
  tq_host_config_free(&c);
}

static void test_schemas_never_from_config(void **state) {
  (void)state;
  write_conf("folders:\n  plugins: pl\n");
  char dirs[TQ_HOST_DIR_MAX][4096], path[4200];
  int n = 0;
  assert_int_equal(tq_host_dir_candidates(TQ_DIR_SCHEMAS, dirs, &n, NULL), 0);
  tq_err err = {0};
  assert_int_equal(tq_schema_path("host.schema.json", path, sizeof path, &err), TQ_OK);
  assert_string_equal(path + strlen(path) - strlen("/schemas/host.schema.json"),
                      "/schemas/host.schema.json");
}

static void test_config_fields(void **state) {
  (void)state;
  write_conf("library: data/lib.db\nlog_level: info\nserver:\n  listen: '[::1]:9443'\n"
             "  tls_cert: /etc/x.crt\n  tls_key: x.key\n  token_ttl: 90s\n"
             "folders:\n  web: ../w\n");
  tq_host_config c;
  tq_err err = {0};
  assert_int_equal(tq_host_config_find(&c, &err), TQ_OK);
  char want[512];
  snprintf(want, sizeof want, "%s/data/lib.db", g_root);
  assert_string_equal(c.library, want);
  assert_int_equal(c.log_level, TQ_LOG_INFO);
  assert_string_equal(c.listen, "[::1]:9443");
  assert_string_equal(c.tls_cert, "/etc/x.crt");
  snprintf(want, sizeof want, "%s/x.key", g_root);
  assert_string_equal(c.tls_key, want);
  assert_int_equal(c.token_ttl_s, 90);
  snprintf(want, sizeof want, "%s/../w", g_root);
  assert_string_equal(c.folders[TQ_DIR_WEB], want);
  assert_null(c.folders[TQ_DIR_PLUGINS]);
  tq_host_config_free(&c);
  assert_null(c.library);

  write_conf("server:\n  tls_key: only.key\n");
  assert_int_equal(tq_host_config_find(&c, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "tls_cert and tls_key go together"));
  assert_null(c.tls_key); /* on an error: the built-in values, nothing half-read */
  assert_int_equal(c.log_level, -1);
  tq_host_config_free(&c);

  write_conf("# every line a comment\n  # indented too\n\n");
  assert_int_equal(tq_host_config_find(&c, &err), TQ_OK);
  assert_null(c.library);
  assert_non_null(c.path);
  tq_host_config_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_env_wins),
      cmocka_unit_test(test_config_folders),
      cmocka_unit_test(test_config_change_is_read),
      cmocka_unit_test(test_bad_config_names_nothing),
      cmocka_unit_test(test_schemas_never_from_config),
      cmocka_unit_test(test_config_fields),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
