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

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(a_plugin_without_network_hosts_reaches_no_host),
      T(a_configured_loopback_base_url_counts_as_named),
      T(a_name_that_resolves_to_loopback_is_blocked),
      T(a_host_header_is_an_error_of_the_script),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
