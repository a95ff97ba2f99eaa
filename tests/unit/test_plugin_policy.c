/* test_plugin_policy.c: what the host allows a plugin whatever its manifest says: the network
 * (default deny, the host's own networks only when named, no Host override) and the budgets
 * (clamped to the host configuration's ceilings). */
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
  char root[64];     /* /tmp/tq_ppol_XXXXXX */
  char plugins[128]; /* root/plugins */
} fx;

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    fail_msg("cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

/* plugins/<name> with the manifest's tail (network, limits...) and the script. */
static void make_plugin(fx *f, const char *name, const char *tail, const char *script) {
  char path[512], text[2048];
  snprintf(path, sizeof path, "%s/%s", f->plugins, name);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/%s/manifest.yaml", f->plugins, name);
  snprintf(text, sizeof text,
           "name: %s\nlabel: X\nversion: 1.0.0\nscript: op.lua\n"
           "config:\n  - { key: base_url, type: url, default: \"http://127.0.0.1:1/v1\" }\n"
           "operations:\n  - { name: a, entry: a, object_types: [indicator] }\n%s",
           name, tail);
  write_file(path, text);
  snprintf(path, sizeof path, "%s/%s/op.lua", f->plugins, name);
  write_file(path, script);
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  strcpy(f->root, "/tmp/tq_ppol_XXXXXX");
  if (f == NULL || mkdtemp(f->root) == NULL)
    return -1;
  snprintf(f->plugins, sizeof f->plugins, "%s/plugins", f->root);
  mkdir(f->plugins, 0700);
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

static tq_plugin *load(fx *f, const char *name) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/%s", f->plugins, name);
  tq_plugin *p = NULL;
  tq_err err = {0};
  if (tq_plugin_load(dir, &p, NULL, &err) != TQ_OK)
    fail_msg("load: %s", err.msg);
  return p;
}

/* Runs entry a (no replay: the real net) with base_url = base; returns the result. */
static void run_a(fx *f, const char *name, const char *base, tq_op_result *res) {
  tq_plugin *p = load(f, name);
  tq_lua_kv config[] = {{"base_url", base}};
  tq_plugin_config cfg = {.config = config, .n_config = 1};
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
  tq_err err = {0};
  if (tq_plugin_op_run(&rq, res, &err) != TQ_OK)
    fail_msg("run: %s", err.msg);
  tq_plugin_free(p);
}

/* The script asks url and fails with "kind: message" (connection refused on port 1 is what
 * an allowed request gets: nobody listens there). */
static const char FETCH[] = "return { a = function(o, ctx)\n"
                            "  local r, err = http.get(ctx.config.base_url .. '/x')\n"
                            "  if r then return end\n"
                            "  return nil, err.kind .. ': ' .. err.message\n"
                            "end }\n";

static void a_plugin_without_network_hosts_reaches_no_host(void **state) {
  fx *f = *state;
  make_plugin(f, "no-hosts", "", FETCH);
  tq_op_result res;
  run_a(f, "no-hosts", "http://127.0.0.1:1/v1", &res);
  print_message("%s\n", res.message);
  assert_int_equal(res.status, TQ_LUA_FAILED);
  assert_non_null(strstr(res.message, "blocked: "));
  assert_non_null(strstr(res.message, "allows no host"));
  tq_op_result_free(&res);
}

static void a_configured_loopback_base_url_counts_as_named(void **state) {
  fx *f = *state;
  make_plugin(f, "named", "network:\n  hosts: [\"{config.base_url}\"]\n", FETCH);
  tq_op_result res;
  run_a(f, "named", "http://127.0.0.1:1/v1", &res);
  print_message("%s\n", res.message);
  assert_int_equal(res.status, TQ_LUA_FAILED);
  assert_non_null(strstr(res.message, "refused: ")); /* it connected: nobody listens */
  tq_op_result_free(&res);
}

static void a_name_that_resolves_to_loopback_is_blocked(void **state) {
  fx *f = *state;
  make_plugin(f, "rebind", "network:\n  hosts: [\"{config.base_url}\"]\n", FETCH);
  tq_op_result res;
  run_a(f, "rebind", "http://metadata.localhost:1/v1", &res);
  print_message("%s\n", res.message);
  assert_int_equal(res.status, TQ_LUA_FAILED);
  assert_non_null(strstr(res.message, "blocked: "));
  assert_non_null(strstr(res.message, "is loopback"));
  tq_op_result_free(&res);
}

static void a_host_header_is_an_error_of_the_script(void **state) {
  fx *f = *state;
  make_plugin(f, "host-override", "network:\n  hosts: [\"{config.base_url}\"]\n",
              "return { a = function(o, ctx)\n"
              "  http.get(ctx.config.base_url, { headers = { Host = '169.254.169.254' } })\n"
              "end }\n");
  tq_op_result res;
  run_a(f, "host-override", "http://127.0.0.1:1/v1", &res);
  assert_int_equal(res.status, TQ_LUA_ERROR);
  assert_non_null(strstr(res.message, "header 'Host' cannot be set"));
  tq_op_result_free(&res);
}

/* ---- host configuration: budget ceilings ---------------------------------------------------- */

static const char *host_file(fx *f, const char *text) {
  static char path[200];
  snprintf(path, sizeof path, "%s/tqhost.yaml", f->root);
  write_file(path, text);
  return path;
}

static void the_host_file_sets_the_ceilings(void **state) {
  fx *f = *state;
  const char *path =
      host_file(f, "# the operator's file\nlimits: { memory: 8MiB, instructions: 2000000, "
                   "timeout: 2s }\n");
  tq_host_config hc;
  tq_err err = {0};
  assert_int_equal(tq_host_config_load(path, 1, &hc, NULL, &err), TQ_OK);
  assert_string_equal(hc.path, path);
  assert_int_equal(hc.max_limits.memory, 8u << 20);
  assert_int_equal(hc.max_limits.instructions, 2000000);
  assert_int_equal(hc.max_limits.timeout_ms, 2000);
  tq_host_config_free(&hc);
  /* What the file leaves out keeps the built-in ceiling. */
  path = host_file(f, "limits: { timeout: 1m }\n");
  assert_int_equal(tq_host_config_load(path, 1, &hc, NULL, &err), TQ_OK);
  assert_int_equal(hc.max_limits.memory, TQ_HOST_MAX_MEMORY);
  assert_int_equal(hc.max_limits.timeout_ms, 60000);
  tq_host_config_free(&hc);
}

static void host_file_errors_name_file_line_and_column(void **state) {
  fx *f = *state;
  const char *path = host_file(f, "limits:\n  memory: lots\n  timeout: 5s\nlisten: x\n");
  tq_host_config hc;
  tq_err err = {0};
  tq_diags d = {0};
  assert_int_equal(tq_host_config_load(path, 1, &hc, &d, &err), TQ_EINVAL);
  for (size_t i = 0; i < d.n; i++)
    print_message("%s\n", d.msgs[i]);
  assert_int_equal(d.n, 2);
  assert_non_null(strstr(d.msgs[0], "tqhost.yaml:2:11: limits.memory: 'lots' does not match"));
  assert_non_null(strstr(d.msgs[1], "tqhost.yaml:4:9: listen: unknown field 'listen'"));
  assert_string_equal(err.msg, d.msgs[0]);
  assert_int_equal(hc.max_limits.memory, TQ_HOST_MAX_MEMORY); /* built-in values on error */
  tq_diags_free(&d);
  path = host_file(f, "limits: { memory: 1KiB }\n");
  assert_int_equal(tq_host_config_load(path, 1, &hc, NULL, &err), TQ_EINVAL);
  assert_non_null(
      strstr(err.msg, "tqhost.yaml:1:19: limits.memory: '1KiB' is below the minimum of 64KiB"));
}

static void a_missing_host_file_is_the_built_in_values_unless_named(void **state) {
  fx *f = *state;
  char path[200];
  snprintf(path, sizeof path, "%s/absent.yaml", f->root);
  tq_host_config hc;
  tq_err err = {0};
  assert_int_equal(tq_host_config_load(path, 0, &hc, NULL, &err), TQ_OK);
  assert_null(hc.path);
  assert_int_equal(hc.max_limits.instructions, TQ_HOST_MAX_INSTRUCTIONS);
  setenv("TQHOST_CONFIG", path, 1);
  int named = 0;
  assert_string_equal(tq_host_config_path(&named), path);
  assert_true(named);
  assert_int_equal(tq_host_config_find(&hc, &err), TQ_ENOTFOUND);
  assert_non_null(strstr(err.msg, "absent.yaml"));
  unsetenv("TQHOST_CONFIG");
  assert_string_equal(tq_host_config_path(&named), "/etc/tqhost/tqhost.yaml");
  assert_false(named);
}

static void limits_over_a_ceiling_are_clamped_and_defaults_fit_under_it(void **state) {
  (void)state;
  tq_host_config hc;
  tq_host_config_defaults(&hc);
  hc.max_limits = (tq_lua_limits){.memory = 1u << 20, .instructions = 100000, .timeout_ms = 500};
  tq_lua_limits asks = {.memory = 64u << 20, .instructions = 1000, .timeout_ms = 0};
  tq_host_limits_clamp(&hc, "greedy", &asks);
  assert_int_equal(asks.memory, 1u << 20);
  assert_int_equal(asks.instructions, 1000); /* under the ceiling: kept */
  assert_int_equal(asks.timeout_ms, 500);    /* the runtime's 30 s default is over it */
  tq_host_config_defaults(&hc);
  tq_lua_limits none = {0};
  tq_host_limits_clamp(&hc, "modest", &none);
  assert_int_equal(none.memory, 0); /* the runtime's defaults are under the built-in ceilings */
  assert_int_equal(none.instructions, 0);
  assert_int_equal(none.timeout_ms, 0);
}

/* A plugin that asks for 100 million instructions and burns some 10 million: within its own
 * budget it finishes; under a host ceiling of 1 million it is killed. */
static void a_run_gets_the_host_ceiling_not_the_manifests_budget(void **state) {
  fx *f = *state;
  make_plugin(f, "greedy", "limits: { instructions: 100000000 }\n",
              "return { a = function() local x = 0 for i = 1, 5000000 do x = x + i end end }\n");
  tq_plugin *p = load(f, "greedy");
  tq_plugin_config cfg = {0};
  tq_object obj = {.object_type = "indicator",
                   .indicator_type = "FQDN",
                   .value = "example.com",
                   .status = TQ_STATUS_ACTIVE,
                   .score_manual = -1};
  tq_host_config hc;
  tq_host_config_defaults(&hc);
  tq_op_request rq = {.plugin = p,
                      .op = tq_plugin_op_find(p, "a"),
                      .obj = &obj,
                      .cfg = &cfg,
                      .plugins_dir = f->plugins,
                      .host = &hc};
  tq_op_result res;
  tq_err err = {0};
  assert_int_equal(tq_plugin_op_run(&rq, &res, &err), TQ_OK);
  assert_int_equal(res.status, TQ_LUA_OK);
  tq_op_result_free(&res);
  hc.max_limits.instructions = 1000000;
  assert_int_equal(tq_plugin_op_run(&rq, &res, &err), TQ_OK);
  assert_int_equal(res.status, TQ_LUA_KILLED);
  print_message("%s\n", res.message);
  tq_op_result_free(&res);
  /* The same through $TQHOST_CONFIG (rq.host NULL: the file is found). */
  setenv("TQHOST_CONFIG", host_file(f, "limits: { instructions: 1000000 }\n"), 1);
  rq.host = NULL;
  assert_int_equal(tq_plugin_op_run(&rq, &res, &err), TQ_OK);
  assert_int_equal(res.status, TQ_LUA_KILLED);
  tq_op_result_free(&res);
  host_file(f, "limits: { instructions: lots }\n");
  assert_int_equal(tq_plugin_op_run(&rq, &res, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "tqhost.yaml:1:25: limits.instructions"));
  unsetenv("TQHOST_CONFIG");
  tq_plugin_free(p);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(a_plugin_without_network_hosts_reaches_no_host),
      T(a_configured_loopback_base_url_counts_as_named),
      T(a_name_that_resolves_to_loopback_is_blocked),
      T(a_host_header_is_an_error_of_the_script),
      T(the_host_file_sets_the_ceilings),
      T(host_file_errors_name_file_line_and_column),
      T(a_missing_host_file_is_the_built_in_values_unless_named),
      T(limits_over_a_ceiling_are_clamped_and_defaults_fit_under_it),
      T(a_run_gets_the_host_ceiling_not_the_manifests_budget),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
