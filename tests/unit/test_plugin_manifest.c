/* test_plugin_manifest.c: manifests loaded into tq_plugin, their errors (file:line:col and
 * field path), picking operations and building the network policy. */
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

/* tests/data/plugins/<name>, from this file's path. */
static const char *data_dir(const char *name) {
  static char buf[4096];
  const char *here = __FILE__;
  const char *slash = strrchr(here, '/');
  snprintf(buf, sizeof buf, "%.*s/../data/plugins/%s", (int)(slash - here), here, name);
  return buf;
}

/* Writes text as <tmp>/<name>/manifest.yaml; returns the plugin folder (static buffer). */
static const char *write_manifest(const char *name, const char *text) {
  static char dir[256];
  static char root[] = "/tmp/tq_manifest_XXXXXX";
  static int made = 0;
  if (!made && mkdtemp(root) == NULL)
    fail_msg("mkdtemp");
  made = 1;
  snprintf(dir, sizeof dir, "%s/%s", root, name);
  mkdir(dir, 0700);
  char path[300];
  snprintf(path, sizeof path, "%s/manifest.yaml", dir);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  return dir;
}

static void the_example_manifest_loads_every_section(void **state) {
  (void)state;
  tq_plugin *p = NULL;
  tq_err err = {0};
  assert_int_equal(tq_plugin_load(data_dir("example-lookup"), &p, NULL, &err), TQ_OK);
  assert_string_equal(p->name, "example-lookup");
  assert_string_equal(p->label, "Example Lookup");
  assert_int_equal(p->n_fields, 5);
  const tq_plugin_field *f = tq_plugin_field_find(p, "api_key");
  assert_int_equal(f->type, TQ_FIELD_PASSWORD);
  assert_true(f->required);
  assert_string_equal(tq_plugin_field_find(p, "update_score")->def, "true");
  assert_string_equal(tq_plugin_field_find(p, "max_related")->def, "5");
  assert_int_equal(tq_plugin_field_find(p, "mode")->n_options, 2);
  assert_int_equal(p->n_ops, 2);
  assert_string_equal(p->ops[1].indicator_types[1], "SHA-256");
  assert_int_equal(p->net.rate_requests, 50);
  assert_int_equal(p->net.rate_per_ms, 1000);
  assert_int_equal(p->net.retry_max, 1);
  assert_int_equal(p->net.n_retry_on, 5);
  assert_int_equal(p->net.cache_ttl_ms, 3600000);
  assert_int_equal(p->limits.memory, 16u << 20);
  assert_int_equal(p->limits.instructions, 10000000);
  assert_int_equal(p->limits.timeout_ms, 5000);
  tq_plugin_free(p);
}

static const char BROKEN[] = "name: broken\n"
                             "label: Broken\n"
                             "version: 1.0\n"
                             "script: op.lua\n"
                             "colour: blue\n"
                             "config:\n"
                             "  - { key: mode, type: select }\n"
                             "operations:\n"
                             "  - name: lookup\n"
                             "    entry: lookup\n"
                             "    object_types: [indicator]\n"
                             "    indicator_types: [IP Adress]\n"
                             "limits: { timeout: 30 }\n";

static void every_manifest_error_names_file_line_column_and_field(void **state) {
  (void)state;
  const char *dir = write_manifest("broken", BROKEN);
  tq_plugin *p = NULL;
  tq_err err = {0};
  tq_diags d = {0};
  assert_int_equal(tq_plugin_load(dir, &p, &d, &err), TQ_EINVAL);
  assert_null(p);
  for (size_t i = 0; i < d.n; i++)
    print_message("%s\n", d.msgs[i]);
  assert_int_equal(d.n, 5);
  char want[512];
  snprintf(want, sizeof want, "%s/manifest.yaml:3:10: version: is integer, expected \"string\"",
           dir);
  assert_non_null(strstr(d.msgs[0], want));
  assert_non_null(strstr(d.msgs[1], "manifest.yaml:5:9: colour: unknown field 'colour'"));
  assert_non_null(strstr(d.msgs[2], "manifest.yaml:13:20: limits.timeout: is integer"));
  assert_non_null(strstr(d.msgs[3], "manifest.yaml:7:5: config[0]: a select field needs options"));
  assert_non_null(strstr(d.msgs[4], "manifest.yaml:12:23: operations[0].indicator_types[0]: "
                                    "'IP Adress' is not an indicator type"));
  assert_string_equal(err.msg, d.msgs[0]);
  tq_diags_free(&d);
}

static void a_missing_manifest_is_not_found(void **state) {
  (void)state;
  tq_plugin *p = NULL;
  tq_err err = {0};
  assert_int_equal(tq_plugin_load("/nonexistent/plugin", &p, NULL, &err), TQ_ENOTFOUND);
  assert_non_null(strstr(err.msg, "/nonexistent/plugin/manifest.yaml"));
}

static void the_folder_must_carry_the_package_name(void **state) {
  (void)state;
  const char *dir =
      write_manifest("other-name", "name: real-name\nlabel: X\nversion: 1.0.0\n"
                                   "script: op.lua\noperations:\n"
                                   "  - { name: a, entry: a, object_types: [indicator] }\n");
  tq_plugin *p = NULL;
  tq_err err = {0};
  assert_int_equal(tq_plugin_load(dir, &p, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "manifest.yaml:1:7: name: 'real-name' differs from the "
                                  "plugin's folder name 'other-name'"));
}

static tq_plugin *two_ops_plugin(void) {
  const char *dir = write_manifest(
      "twins",
      "name: twins\nlabel: Twins\nversion: 1.0.0\nscript: op.lua\noperations:\n"
      "  - { name: a, entry: a, object_types: [indicator], indicator_types: [FQDN] }\n"
      "  - { name: b, entry: b, object_types: [indicator], indicator_types: [fqdn, URL] }\n");
  tq_plugin *p = NULL;
  tq_err err = {0};
  if (tq_plugin_load(dir, &p, NULL, &err) != TQ_OK)
    fail_msg("%s", err.msg);
  return p;
}

static void an_operation_is_picked_by_name_or_by_type(void **state) {
  (void)state;
  tq_plugin *p = two_ops_plugin();
  const tq_plugin_op *op = NULL;
  tq_err err = {0};
  assert_string_equal(p->ops[1].indicator_types[0], "FQDN"); /* canonical spelling */
  assert_int_equal(tq_plugin_op_pick(p, NULL, "indicator", "URL", &op, &err), TQ_OK);
  assert_string_equal(op->name, "b");
  assert_int_equal(tq_plugin_op_pick(p, "a", "indicator", "FQDN", &op, &err), TQ_OK);
  assert_string_equal(op->name, "a");
  assert_int_equal(tq_plugin_op_pick(p, NULL, "indicator", "FQDN", &op, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "several operations for FQDN: name one of twins:a, twins:b"));
  assert_int_equal(tq_plugin_op_pick(p, NULL, "indicator", "MD5", &op, &err), TQ_ENOTFOUND);
  assert_int_equal(tq_plugin_op_pick(p, "c", "indicator", "URL", &op, &err), TQ_ENOTFOUND);
  assert_int_equal(tq_plugin_op_pick(p, "a", "indicator", "URL", &op, &err), TQ_EINVAL);
  tq_plugin_free(p);
}

static void the_policy_substitutes_config_into_hosts(void **state) {
  (void)state;
  tq_plugin *p = NULL;
  tq_err err = {0};
  assert_int_equal(tq_plugin_load(data_dir("example-lookup"), &p, NULL, &err), TQ_OK);
  tq_lua_kv config[] = {{"base_url", "http://127.0.0.1:8123/v1"}};
  tq_plugin_config cfg = {.config = config, .n_config = 1};
  tq_plugin_policy pp;
  assert_int_equal(tq_plugin_policy_build(p, &cfg, &pp, &err), TQ_OK);
  assert_int_equal(pp.policy.n_allow_hosts, 1);
  assert_string_equal(pp.policy.allow_hosts[0], "127.0.0.1");
  assert_true(pp.policy.rate_per_s > 49.9 && pp.policy.rate_per_s < 50.1);
  assert_int_equal(pp.policy.retry_max, 1);
  assert_int_equal(pp.policy.timeout_ms, 5000);
  assert_int_equal(pp.policy.cache_ttl_ms, 3600000);
  tq_plugin_policy_free(&pp);
  cfg.n_config = 0;
  assert_int_equal(tq_plugin_policy_build(p, &cfg, &pp, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "config field 'base_url' has no value"));
  tq_plugin_free(p);
}

static void the_registry_lists_plugins_and_skips_lib(void **state) {
  (void)state;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", data_dir(""));
  tq_plugin **list = NULL;
  size_t n = 0;
  tq_err err = {0};
  assert_int_equal(tq_plugin_list(dir, &list, &n, NULL, &err), TQ_OK);
  assert_int_equal(n, 1);
  assert_string_equal(list[0]->name, "example-lookup");
  tq_plugin_list_free(list, n);
  tq_plugin *p = NULL;
  assert_int_equal(tq_plugin_find(dir, "nope", &p, &err), TQ_ENOTFOUND);
  assert_non_null(strstr(err.msg, "no plugin 'nope'"));
  assert_int_equal(tq_plugin_find(dir, "lib", &p, &err), TQ_ENOTFOUND);
}

static void a_host_naming_an_unknown_config_field_is_refused_at_its_position(void **state) {
  (void)state;
  const char *dir = write_manifest(
      "typo-host", "name: typo-host\nlabel: X\nversion: 1.0.0\nscript: op.lua\n"
                   "config:\n  - { key: base_url, type: url }\n  - { key: key, type: password }\n"
                   "operations:\n  - { name: a, entry: a, object_types: [indicator] }\n"
                   "network:\n  hosts: [\"{config.base_url}\", \"{config.baseurl}\", "
                   "\"{config.key}\"]\n");
  tq_plugin *p = NULL;
  tq_err err = {0};
  tq_diags d = {0};
  assert_int_equal(tq_plugin_load(dir, &p, &d, &err), TQ_EINVAL);
  for (size_t i = 0; i < d.n; i++)
    print_message("%s\n", d.msgs[i]);
  assert_int_equal(d.n, 2);
  assert_non_null(strstr(d.msgs[0], "manifest.yaml:11:32: network.hosts[1]: '{config.baseurl}' "
                                    "names no config field"));
  assert_non_null(strstr(d.msgs[1], "manifest.yaml:11:52: network.hosts[2]: '{config.key}' is a "
                                    "password field"));
  tq_diags_free(&d);
}

/* A mapping of n keys "kI: I" (one per line), optionally repeating key k0 at the end. */
static char *many_keys(size_t n, int dup, size_t *len) {
  tq_buf b;
  tq_buf_init(&b, 64u << 20);
  char line[64];
  for (size_t i = 0; i < n; i++) {
    snprintf(line, sizeof line, "k%zu: %zu\n", i, i);
    assert_int_equal(tq_buf_adds(&b, line), TQ_OK);
  }
  if (dup)
    assert_int_equal(tq_buf_adds(&b, "k0: again\n"), TQ_OK);
  *len = b.len;
  return tq_buf_take(&b);
}

/* Some 3 MB of keys: the duplicate check is a hash set, so this takes milliseconds (it took half
 * a minute with a scan of the keys read so far; see docs/plugins.md). */
static void a_mapping_of_many_keys_loads_and_a_duplicate_is_still_refused(void **state) {
  (void)state;
  size_t len = 0;
  char *text = many_keys(200000, 0, &len);
  assert_true(len > 2u << 20); /* some 2.9 MB */
  tq_ydoc *doc = NULL;
  tq_err err = {0};
  assert_int_equal(tq_ydoc_parse("big.yaml", text, len, &doc, &err), TQ_OK);
  assert_int_equal(cJSON_GetArraySize(doc->root), 200000);
  const cJSON *last = cJSON_GetObjectItemCaseSensitive(doc->root, "k199999");
  assert_int_equal(last->valueint, 199999);
  int line = 0, col = 0;
  assert_true(tq_ydoc_pos(doc, last, &line, &col));
  assert_int_equal(line, 200000);
  assert_int_equal(col, 10);
  tq_ydoc_free(doc);
  free(text);
  text = many_keys(200000, 1, &len);
  assert_int_equal(tq_ydoc_parse("big.yaml", text, len, &doc, &err), TQ_EINVAL);
  assert_string_equal(err.msg, "big.yaml:200001:1: duplicate key 'k0'");
  free(text);
}

static void a_duplicate_key_in_a_nested_mapping_names_its_line_and_column(void **state) {
  (void)state;
  static const char text[] = "a:\n  b: 1\n  c: 2\n  b: 3\n";
  tq_ydoc *doc = NULL;
  tq_err err = {0};
  assert_int_equal(tq_ydoc_parse("n.yaml", text, sizeof text - 1, &doc, &err), TQ_EINVAL);
  assert_string_equal(err.msg, "n.yaml:4:3: duplicate key 'b'");
  static const char ok[] = "a: {b: 1}\nb: {b: 2}\n"; /* the same key in two mappings */
  assert_int_equal(tq_ydoc_parse("n.yaml", ok, sizeof ok - 1, &doc, &err), TQ_OK);
  tq_ydoc_free(doc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_example_manifest_loads_every_section),
      cmocka_unit_test(every_manifest_error_names_file_line_column_and_field),
      cmocka_unit_test(a_missing_manifest_is_not_found),
      cmocka_unit_test(the_folder_must_carry_the_package_name),
      cmocka_unit_test(an_operation_is_picked_by_name_or_by_type),
      cmocka_unit_test(the_policy_substitutes_config_into_hosts),
      cmocka_unit_test(the_registry_lists_plugins_and_skips_lib),
      cmocka_unit_test(a_host_naming_an_unknown_config_field_is_refused_at_its_position),
      cmocka_unit_test(a_mapping_of_many_keys_loads_and_a_duplicate_is_still_refused),
      cmocka_unit_test(a_duplicate_key_in_a_nested_mapping_names_its_line_and_column),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
