/* test_plugin_files.c: a plugin's files come from its own folder and plugins/lib only: a
 * symlink that leads out of them is refused, whether it is the manifest, the script, a spec
 * fixture or a module that `require` loads. */
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

#define SECRET_TEXT "KEYFILE-BYTES-THAT-MUST-NOT-LEAK"

typedef struct fx {
  char root[64];     /* /tmp/tq_pfiles_XXXXXX */
  char plugins[128]; /* root/plugins */
  char outside[128]; /* root/outside.txt: a file of the host, not of any plugin */
} fx;

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    fail_msg("cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

static void make_plugin(fx *f, const char *name, const char *script) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", f->plugins, name);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/%s/manifest.yaml", f->plugins, name);
  char text[512];
  snprintf(text, sizeof text,
           "name: %s\nlabel: X\nversion: 1.0.0\nscript: op.lua\n"
           "operations:\n  - { name: a, entry: a, object_types: [indicator] }\n",
           name);
  write_file(path, text);
  snprintf(path, sizeof path, "%s/%s/op.lua", f->plugins, name);
  write_file(path, script);
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  strcpy(f->root, "/tmp/tq_pfiles_XXXXXX");
  if (f == NULL || mkdtemp(f->root) == NULL)
    return -1;
  snprintf(f->plugins, sizeof f->plugins, "%s/plugins", f->root);
  snprintf(f->outside, sizeof f->outside, "%s/outside.txt", f->root);
  char lib[256];
  snprintf(lib, sizeof lib, "%s/lib", f->plugins);
  mkdir(f->plugins, 0700);
  mkdir(lib, 0700);
  write_file(f->outside, SECRET_TEXT "\n");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->root);
  int rc = system(cmd);
  free(f);
  return rc == 0 ? 0 : -1;
}

static void a_symlink_out_of_the_plugin_folder_is_refused_at_load(void **state) {
  fx *f = *state;
  make_plugin(f, "leaky", "return { a = function() end }\n");
  char link[512], dir[512];
  snprintf(dir, sizeof dir, "%s/leaky", f->plugins);
  snprintf(link, sizeof link, "%s/leaky/spec_fixture.json", f->plugins);
  assert_int_equal(symlink(f->outside, link), 0);
  tq_plugin *p = NULL;
  tq_err err = {0};
  tq_diags d = {0};
  assert_int_equal(tq_plugin_load(dir, &p, &d, &err), TQ_EDENIED);
  assert_null(p);
  assert_non_null(strstr(err.msg, "leaky/spec_fixture.json: a symlink to"));
  assert_non_null(strstr(err.msg, "outside.txt, outside"));
  assert_int_equal(d.n, 1);
  tq_diags_free(&d);
}

static void a_symlinked_script_out_of_the_folder_is_refused(void **state) {
  fx *f = *state;
  make_plugin(f, "linked-script", "");
  char link[512], dir[512];
  snprintf(dir, sizeof dir, "%s/linked-script", f->plugins);
  snprintf(link, sizeof link, "%s/linked-script/op.lua", f->plugins);
  unlink(link);
  assert_int_equal(symlink(f->outside, link), 0);
  tq_plugin *p = NULL;
  tq_err err = {0};
  assert_int_equal(tq_plugin_load(dir, &p, NULL, &err), TQ_EDENIED);
  assert_non_null(strstr(err.msg, "linked-script/op.lua: a symlink to"));
}

static void a_symlink_that_stays_inside_the_folder_is_fine(void **state) {
  fx *f = *state;
  make_plugin(f, "inner-link", "return { a = function() end }\n");
  char link[512], dir[512];
  snprintf(dir, sizeof dir, "%s/inner-link", f->plugins);
  snprintf(link, sizeof link, "%s/inner-link/alias.lua", f->plugins);
  assert_int_equal(symlink("op.lua", link), 0);
  tq_plugin *p = NULL;
  tq_err err = {0};
  assert_int_equal(tq_plugin_load(dir, &p, NULL, &err), TQ_OK);
  tq_plugin_free(p);
}

/* Runs entry a of the plugin (no network) and returns the result. */
static void run_a(fx *f, const char *name, tq_op_result *res) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/%s", f->plugins, name);
  tq_plugin *p = NULL;
  tq_err err = {0};
  if (tq_plugin_load(dir, &p, NULL, &err) != TQ_OK)
    fail_msg("load: %s", err.msg);
  tq_plugin_config cfg = {0};
  tq_object obj = {.object_type = "indicator",
                   .indicator_type = "FQDN",
                   .value = "example.com",
                   .status = TQ_STATUS_ACTIVE,
                   .score_manual = -1};
  tq_op_request rq = {.plugin = p,
                      .op = tq_plugin_op_find(p, "a"),
                      .obj = &obj,
                      .cfg = &cfg,
                      .plugins_dir = f->plugins};
  if (tq_plugin_op_run(&rq, res, &err) != TQ_OK)
    fail_msg("run: %s", err.msg);
  tq_plugin_free(p);
}

static void a_lib_module_that_links_out_of_lib_is_refused_unread(void **state) {
  fx *f = *state;
  char link[512];
  snprintf(link, sizeof link, "%s/lib/evil.lua", f->plugins);
  assert_int_equal(symlink(f->outside, link), 0);
  make_plugin(f, "requirer", "return { a = function() local m = require 'evil' end }\n");
  tq_op_result res;
  run_a(f, "requirer", &res);
  print_message("%s\n", res.message);
  assert_int_equal(res.status, TQ_LUA_ERROR);
  assert_non_null(strstr(res.message, "require: module 'evil' refused"));
  assert_non_null(strstr(res.message, "outside"));
  assert_null(strstr(res.message, SECRET_TEXT));
  assert_null(strstr(res.traceback, SECRET_TEXT));
  tq_op_result_free(&res);
}

static void a_lib_module_inside_lib_still_loads(void **state) {
  fx *f = *state;
  char path[512];
  snprintf(path, sizeof path, "%s/lib/good.lua", f->plugins);
  write_file(path, "return { n = 7 }\n");
  make_plugin(
      f, "good-requirer",
      "local m = require 'good'\nreturn { a = function(o, ctx) ctx:show{ n = m.n } end }\n");
  tq_op_result res;
  run_a(f, "good-requirer", &res);
  assert_int_equal(res.status, TQ_LUA_OK);
  tq_op_result_free(&res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_symlink_out_of_the_plugin_folder_is_refused_at_load, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_symlinked_script_out_of_the_folder_is_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_symlink_that_stays_inside_the_folder_is_fine, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_lib_module_that_links_out_of_lib_is_refused_unread, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_lib_module_inside_lib_still_loads, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
