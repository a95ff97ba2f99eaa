/* test_plugin_check.c: tq_plugin_check (a plugin folder's manifest, its script compiled with the
 * default config under its budgets, without secrets and without network, every entry present)
 * and tq_plugin_script_opts_build (what every loader of a plugin's script hands the runtime).
 * Hostile scripts first: a top level that loops forever is killed by its budget and the error
 * says so; the network, os and io at the top level are refused and named; then a missing entry
 * at the manifest's file:line:col and a lib/ module's syntax error at its file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tqhost/plugin.h"
#include "tqhost/workflow.h"

static char g_root[] = "/tmp/tq_pcheck_XXXXXX";

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    fail_msg("cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

/* Makes <root>/<name>/ with a manifest (extra lines appended) and operation.lua = script.
 * Returns the folder (static). */
static const char *make_plugin(const char *name, const char *extra, const char *script) {
  static char dir[512];
  char path[700];
  snprintf(dir, sizeof dir, "%s/%s", g_root, name);
  mkdir(dir, 0700);
  snprintf(path, sizeof path, "%s/manifest.yaml", dir);
  char text[4096];
  snprintf(text, sizeof text,
           "name: %s\nlabel: Check\nversion: 1.2.3\nscript: operation.lua\n"
           "config:\n"
           "  - { key: n, label: N, type: integer, default: 5 }\n"
           "  - { key: api_key, label: Key, type: password }\n"
           "operations:\n"
           "  - { name: a, label: A, entry: a, object_types: [indicator] }\n"
           "  - { name: b, label: B, entry: b, object_types: [indicator] }\n%s",
           name, extra);
  write_file(path, text);
  snprintf(path, sizeof path, "%s/operation.lua", dir);
  write_file(path, script);
  return dir;
}

/* tq_plugin_check on dir: the diagnostics joined (static), "" when it passed. */
static const char *check(const char *dir, tq_plugin **keep) {
  static char out[16384];
  tq_diags d = {0};
  tq_plugin *p = NULL;
  tq_err err = {0};
  tq_code rc = tq_plugin_check(dir, &p, &d, &err);
  out[0] = '\0';
  for (size_t i = 0; i < d.n; i++) {
    strncat(out, d.msgs[i], sizeof out - strlen(out) - 2);
    strcat(out, "\n");
  }
  if ((rc == TQ_OK) != (d.n == 0))
    fail_msg("tq_plugin_check returned %d with %zu diagnostics", rc, d.n);
  if (rc != TQ_OK && strstr(out, err.msg) == NULL)
    fail_msg("err '%s' is not one of the diagnostics:\n%s", err.msg, out);
  tq_diags_free(&d);
  if (keep)
    *keep = p;
  else
    tq_plugin_free(p);
  return out;
}

static void expect(const char *got, const char *want) {
  if (strstr(got, want) == NULL)
    fail_msg("wanted '%s' in:\n%s", want, got);
}

#define HOST_BUILT_IN "limits: { memory: 64MiB, instructions: 1000000000, timeout: 120s }\n"

static const char *GOOD = "return { a = function(obj, ctx) end, b = function(obj, ctx) end }\n";

/* ---- hostile scripts --------------------------------------------------------------------------
 */

static void a_top_level_that_loops_forever_is_killed_by_its_budget(void **state) {
  (void)state;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const char *got = check(
      make_plugin("spin", "limits: { instructions: 2000000 }\n", "while true do end\nreturn {}\n"),
      NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  expect(got, "operation.lua: top level killed: instruction budget exceeded (2000000 "
              "instructions)");
  /* The manifest's budget, not the host's ceiling or the default, ended it. */
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  if (s > 10)
    fail_msg("the loop ran %.1f s", s);
  /* A loop that allocates meets the memory budget instead. */
  got = check(make_plugin("hog", "limits: { memory: 1MiB }\n",
                          "local t = {}\nwhile true do t[#t + 1] = {} end\nreturn {}\n"),
              NULL);
  expect(got, "operation.lua: top level killed: memory budget exceeded (1024 KiB)");
  /* And one that waits on the clock meets its timeout (the budget named). */
  got = check(make_plugin("slow", "limits: { timeout: 200ms, instructions: 1e15 }\n",
                          "while true do end\nreturn {}\n"),
              NULL);
  expect(got, "operation.lua: top level killed: timeout: run exceeded 200 ms");
}

static void a_manifest_asking_for_endless_budgets_is_held_to_the_host_ceilings(void **state) {
  (void)state;
  /* A hostile package asks for everything: the check (of the plugin and of its action) runs
   * its top level within the host's ceilings, not for the hour it asks. */
  char conf[600];
  snprintf(conf, sizeof conf, "%s/tqhost.yaml", g_root);
  write_file(conf, "limits: { instructions: 3000000, timeout: 5s }\n");
  const char *dir = make_plugin("greedy", "limits: { instructions: 1e15, timeout: 1h }\n",
                                "while true do end\nreturn {}\n");
  expect(check(dir, NULL),
         "operation.lua: top level killed: instruction budget exceeded (3000000 instructions)");
  char path[700];
  snprintf(path, sizeof path, "%s/actions", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/actions/greedy-action.yaml", dir);
  write_file(path, "name: greedy-action\nlabel: G\nversion: 1.0.0\nplugin: greedy\nentry: a\n"
                   "input: { object_types: [indicator] }\n"
                   "limits: { instructions: 1e15, timeout: 1h }\n");
  tq_diags d = {0};
  assert_int_equal(tq_action_check_dir(dir, &d), 1);
  assert_int_equal(d.n, 1);
  expect(d.msgs[0], "instruction budget exceeded (3000000 instructions)");
  tq_diags_free(&d);
  write_file(conf, HOST_BUILT_IN);
}

static void the_network_is_refused_at_the_top_level(void **state) {
  (void)state;
  const char *got = check(make_plugin("net", "network: { hosts: [\"http://127.0.0.1:9\"] }\n",
                                      "local r = http.get(\"http://127.0.0.1:9/x\")\n"
                                      "return { a = function() end, b = function() end }\n"),
                          NULL);
  expect(got, "operation.lua:1:");
  expect(got, "http: plugin 'net' has no network");
}

static void os_and_io_are_refused_at_the_top_level(void **state) {
  (void)state;
  const char *got =
      check(make_plugin("os", "", "os.execute(\"touch /tmp/tq_pwned\")\nreturn {}\n"), NULL);
  expect(got, "operation.lua:1:");
  expect(got, "'execute'"); /* os has only its harmless functions */
  got = check(make_plugin("io", "", "local f = io.open(\"/etc/passwd\")\nreturn {}\n"), NULL);
  expect(got, "operation.lua:1:");
  expect(got, "global 'io'");
  got = check(make_plugin("req", "", "local x = require \"os\"\nreturn {}\n"), NULL);
  expect(got, "operation.lua:1: require: module 'os' not found");
  assert_int_not_equal(access("/tmp/tq_pwned", F_OK), 0);
}

static void secrets_are_not_given_to_a_check(void **state) {
  (void)state;
  /* The check loads with the default config and no secrets: ctx.secret is nil at the top
   * level anyway, and the plugin's config holds no value for the password field. */
  const char *got = check(make_plugin("sec", "", GOOD), NULL);
  assert_string_equal(got, "");
}

/* ---- what a plugin author gets wrong ----------------------------------------------------------
 */

static void a_missing_entry_is_reported_at_the_manifest_position(void **state) {
  (void)state;
  char want[700];
  const char *dir = make_plugin("miss", "", "return { a = function(obj, ctx) end }\n");
  /* operations[1] is on line 10; its entry value at column 33. */
  snprintf(want, sizeof want,
           "%s/manifest.yaml:10:33: operations[1].entry: %s/operation.lua does not return an "
           "entry 'b'",
           dir, dir);
  const char *got = check(dir, NULL);
  expect(got, want);
  if (strstr(got, "entry 'a'"))
    fail_msg("entry a was there:\n%s", got);
}

static void a_lib_module_with_a_syntax_error_is_named_with_its_line(void **state) {
  (void)state;
  const char *dir =
      make_plugin("mod", "", "local m = require \"util.x\"\nreturn { a = m.a, b = m.a }\n");
  char path[700];
  snprintf(path, sizeof path, "%s/lib", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/lib/util", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/lib/util/x.lua", dir);
  write_file(path, "local M = {}\nfunction M.a() end\nfunction M.b(\nreturn M\n");
  char want[800];
  snprintf(want, sizeof want, "%s:4:", path);
  expect(check(dir, NULL), want);
  /* Fixed, it passes: the module is found in the plugin's own lib/. */
  write_file(path, "local M = {}\nfunction M.a() end\nreturn M\n");
  assert_string_equal(check(dir, NULL), "");
}

static void a_bad_manifest_is_reported_and_gives_no_plugin(void **state) {
  (void)state;
  char dir[600];
  snprintf(dir, sizeof dir, "%s/badman", g_root);
  mkdir(dir, 0700);
  char path[700];
  snprintf(path, sizeof path, "%s/manifest.yaml", dir);
  write_file(path, "name: badman\nlabel: x\n");
  tq_plugin *p = (tq_plugin *)1;
  const char *got = check(dir, &p);
  assert_null(p);
  expect(got, "manifest.yaml");
  snprintf(dir, sizeof dir, "%s/absent", g_root);
  got = check(dir, &p);
  assert_null(p);
  expect(got, "absent");
}

static void a_good_plugin_passes_and_is_returned(void **state) {
  (void)state;
  tq_plugin *p = NULL;
  assert_string_equal(check(make_plugin("good", "", GOOD), &p), "");
  assert_non_null(p);
  assert_string_equal(p->name, "good");
  assert_int_equal(p->n_ops, 2);
  tq_plugin_free(p);
}

/* ---- the options every loader uses ------------------------------------------------------------
 */

static void script_options_follow_the_spec(void **state) {
  (void)state;
  const char *dir = make_plugin("opts", "limits: { instructions: 1234567 }\n", GOOD);
  tq_plugin *p = NULL;
  tq_diags d = {0};
  tq_err err;
  assert_int_equal(tq_plugin_load(dir, &p, &d, &err), TQ_OK);
  tq_lua_kv config[] = {{"n", "7"}, {"other", "x"}};
  tq_lua_kv secrets[] = {{"api_key", "s3cret"}};
  tq_plugin_config cfg = {.config = config, .n_config = 2, .secrets = secrets, .n_secrets = 1};

  /* A check: no secrets, no provider, the manifest's limits, lib beside the plugin, the
   * script's text read now. */
  tq_plugin_script_spec spec = {.plugin = p, .cfg = &cfg};
  tq_plugin_script_opts o;
  assert_int_equal(tq_plugin_script_opts_build(&spec, &o, &err), TQ_OK);
  assert_string_equal(o.so.name, "opts");
  assert_string_equal(o.so.path, p->script);
  char want[700];
  snprintf(want, sizeof want, "%s/../lib", p->dir);
  assert_string_equal(o.so.lib_dir, want);
  assert_int_equal(o.so.n_secrets, 0);
  assert_null(o.so.secrets);
  assert_null(o.so.provider);
  assert_int_equal(o.so.limits.instructions, 1234567);
  assert_int_equal(o.so.n_config, 2);
  assert_int_equal(o.so.config_kinds[0], TQ_LUA_INTEGER);
  assert_int_equal(o.so.config_kinds[1], TQ_LUA_TEXT);
  assert_int_equal(o.so.source_len, strlen(GOOD));
  assert_memory_equal(o.so.source, GOOD, strlen(GOOD));
  tq_plugin_script_opts_free(&o);

  /* A run: secrets, the caller's (clamped) limits, the plugins folder's lib; an action's own
   * field types its key before the plugin's. */
  tq_lua_limits lim = {.memory = 1 << 20, .instructions = 99, .timeout_ms = 5};
  tq_plugin_field own[] = {{.key = "other", .type = TQ_FIELD_BOOLEAN}};
  cfg.own_fields = own;
  cfg.n_own_fields = 1;
  tq_plugin_script_spec run = {
      .plugin = p, .cfg = &cfg, .with_secrets = 1, .plugins_dir = "/x/plugins", .limits = &lim};
  assert_int_equal(tq_plugin_script_opts_build(&run, &o, &err), TQ_OK);
  assert_int_equal(o.so.n_secrets, 1);
  assert_string_equal(o.so.secrets[0].value, "s3cret");
  assert_string_equal(o.so.lib_dir, "/x/plugins/lib");
  assert_int_equal(o.so.limits.instructions, 99);
  assert_int_equal(o.so.limits.timeout_ms, 5);
  assert_int_equal(o.so.config_kinds[1], TQ_LUA_BOOLEAN);
  tq_plugin_script_opts_free(&o);

  /* An action's own script is read at load (not taken from the plugin's snapshot), the
   * snapshot's modules still given. */
  tq_plugin_src src = {.script = "return {}", .script_len = 9};
  tq_plugin_script_spec act = {.plugin = p, .cfg = &cfg, .script = "/x/act.lua", .src = &src};
  assert_int_equal(tq_plugin_script_opts_build(&act, &o, &err), TQ_OK);
  assert_string_equal(o.so.path, "/x/act.lua");
  assert_null(o.so.source);
  assert_null(o.own);
  tq_plugin_script_opts_free(&o);
  act.script = NULL;
  assert_int_equal(tq_plugin_script_opts_build(&act, &o, &err), TQ_OK);
  assert_ptr_equal(o.so.source, src.script);
  tq_plugin_script_opts_free(&o);

  /* A plugin whose script is a symlink: refused, nothing to free. */
  char path[700];
  snprintf(path, sizeof path, "%s/operation.lua", dir);
  unlink(path);
  assert_int_equal(symlink("/etc/passwd", path), 0);
  spec.cfg = &cfg;
  tq_code rc = tq_plugin_script_opts_build(&spec, &o, &err);
  assert_int_not_equal(rc, TQ_OK);
  assert_null(o.lib_dir);
  assert_null(o.kinds);
  tq_plugin_free(p);
  tq_diags_free(&d);
}

static void action_files_of_the_plugin_are_checked(void **state) {
  (void)state;
  const char *dir = make_plugin("withact", "", GOOD);
  char path[700];
  snprintf(path, sizeof path, "%s/actions", dir);
  mkdir(path, 0700);
  tq_diags d = {0};
  assert_int_equal(tq_action_check_dir(dir, &d), 0);
  snprintf(path, sizeof path, "%s/actions/good.yaml", dir);
  write_file(path, "name: good\nlabel: G\nversion: 1.0.0\nplugin: withact\nentry: a\n"
                   "input: { object_types: [indicator] }\n");
  snprintf(path, sizeof path, "%s/actions/bad.yaml", dir);
  write_file(path, "name: bad\nlabel: B\nversion: 1.0.0\nplugin: withact\nentry: zz\n"
                   "input: { object_types: [indicator] }\n");
  snprintf(path, sizeof path, "%s/actions/notes.txt", dir);
  write_file(path, "not an action\n");
  assert_int_equal(tq_action_check_dir(dir, &d), 2);
  assert_int_equal(d.n, 1);
  expect(d.msgs[0], "bad.yaml:5:8: entry:");
  expect(d.msgs[0], "does not return an entry 'zz'");
  tq_diags_free(&d);
}

static int setup(void **state) {
  (void)state;
  if (mkdtemp(g_root) == NULL)
    return -1;
  const char *here = __FILE__;
  const char *slash = strrchr(here, '/');
  char buf[4200];
  snprintf(buf, sizeof buf, "%.*s/../../schemas", (int)(slash - here), here);
  setenv("TQHOST_SCHEMAS", buf, 1);
  /* The host's ceilings as built in, whatever /etc/tqhost/tqhost.yaml says. */
  snprintf(buf, sizeof buf, "%s/tqhost.yaml", g_root);
  write_file(buf, HOST_BUILT_IN);
  setenv("TQHOST_CONFIG", buf, 1);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_top_level_that_loops_forever_is_killed_by_its_budget),
      cmocka_unit_test(a_manifest_asking_for_endless_budgets_is_held_to_the_host_ceilings),
      cmocka_unit_test(the_network_is_refused_at_the_top_level),
      cmocka_unit_test(os_and_io_are_refused_at_the_top_level),
      cmocka_unit_test(secrets_are_not_given_to_a_check),
      cmocka_unit_test(a_missing_entry_is_reported_at_the_manifest_position),
      cmocka_unit_test(a_lib_module_with_a_syntax_error_is_named_with_its_line),
      cmocka_unit_test(a_bad_manifest_is_reported_and_gives_no_plugin),
      cmocka_unit_test(a_good_plugin_passes_and_is_returned),
      cmocka_unit_test(script_options_follow_the_spec),
      cmocka_unit_test(action_files_of_the_plugin_are_checked),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
