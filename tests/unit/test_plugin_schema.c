/* test_plugin_schema.c: YAML with positions and the JSON Schema validator of the plugin part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tqhost/plugin.h"

static tq_ydoc *parse(const char *text) {
  tq_ydoc *d = NULL;
  tq_err err = {0};
  if (tq_ydoc_parse("t.yaml", text, strlen(text), &d, &err) != TQ_OK)
    fail_msg("parse: %s", err.msg);
  return d;
}

static void yaml_nodes_keep_line_and_column(void **state) {
  (void)state;
  tq_ydoc *d = parse("name: x\nops:\n  - entry: run\n    types: [a, b]\n");
  const cJSON *ops = cJSON_GetObjectItem(d->root, "ops");
  const cJSON *entry = cJSON_GetObjectItem(cJSON_GetArrayItem(ops, 0), "entry");
  const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(ops, 0), "types"), 1);
  int line, col;
  assert_true(tq_ydoc_pos(d, entry, &line, &col));
  assert_int_equal(line, 3);
  assert_int_equal(col, 12);
  assert_true(tq_ydoc_pos(d, b, &line, &col));
  assert_int_equal(line, 4);
  assert_int_equal(col, 16);
  tq_ydoc_free(d);
}

static void yaml_plain_scalars_follow_the_core_schema(void **state) {
  (void)state;
  tq_ydoc *d = parse("i: 42\nf: 1.5\nt: true\nn: ~\ns: '42'\non: yes\nv: 1.0.0\nz: 007\n");
  assert_true(cJSON_IsNumber(cJSON_GetObjectItem(d->root, "i")));
  assert_int_equal(cJSON_GetObjectItem(d->root, "i")->valueint, 42);
  assert_true(cJSON_IsNumber(cJSON_GetObjectItem(d->root, "f")));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d->root, "t")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(d->root, "n")));
  assert_true(cJSON_IsString(cJSON_GetObjectItem(d->root, "s")));
  assert_string_equal(cJSON_GetObjectItem(d->root, "on")->valuestring, "yes"); /* not YAML 1.1 */
  assert_string_equal(cJSON_GetObjectItem(d->root, "v")->valuestring, "1.0.0");
  assert_int_equal(cJSON_GetObjectItem(d->root, "z")->valueint, 7); /* 1.2: an integer */
  tq_ydoc_free(d);
}

static void yaml_errors_name_file_line_and_column(void **state) {
  (void)state;
  tq_ydoc *d = NULL;
  tq_err err = {0};
  const char *dup = "a: 1\nb: 2\na: 3\n";
  assert_int_equal(tq_ydoc_parse("m.yaml", dup, strlen(dup), &d, &err), TQ_EINVAL);
  assert_string_equal(err.msg, "m.yaml:3:1: duplicate key 'a'");
  const char *alias = "a: &x 1\nb: *x\n";
  assert_int_equal(tq_ydoc_parse("m.yaml", alias, strlen(alias), &d, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "m.yaml:2:4: aliases"));
  const char *bad = "a: [1, 2\nb: 3\n";
  assert_int_equal(tq_ydoc_parse("m.yaml", bad, strlen(bad), &d, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "m.yaml:"));
  assert_non_null(strstr(err.msg, "YAML syntax"));
}

/* Collects "path: msg" lines. */
static void collect(void *ud, const cJSON *node, const char *path, const char *msg) {
  (void)node;
  tq_diags_add(ud, "%s: %s", path, msg);
}

static size_t check(const char *schema, const char *instance, tq_diags *d) {
  cJSON *s = cJSON_Parse(schema), *x = cJSON_Parse(instance);
  assert_non_null(s);
  assert_non_null(x);
  size_t n = tq_schema_validate(s, x, collect, d);
  cJSON_Delete(s);
  cJSON_Delete(x);
  return n;
}

static const char OBJ_SCHEMA[] =
    "{\"type\":\"object\",\"required\":[\"name\",\"n\"],\"additionalProperties\":false,"
    "\"properties\":{\"name\":{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"},"
    "\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":5},"
    "\"kind\":{\"enum\":[\"a\",\"b\"]},\"v\":{\"const\":2},"
    "\"list\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"$ref\":\"#/$defs/item\"}}},"
    "\"$defs\":{\"item\":{\"type\":\"string\",\"minLength\":2}}}";

static void a_valid_instance_has_no_violation(void **state) {
  (void)state;
  tq_diags d = {0};
  assert_int_equal(check(OBJ_SCHEMA,
                         "{\"name\":\"ok\",\"n\":3,\"kind\":\"a\",\"v\":2,"
                         "\"list\":[\"xy\"]}",
                         &d),
                   0);
  tq_diags_free(&d);
}

static void every_violation_is_reported_with_its_path(void **state) {
  (void)state;
  tq_diags d = {0};
  size_t n = check(OBJ_SCHEMA,
                   "{\"name\":\"Bad1\",\"kind\":\"c\",\"v\":3,\"extra\":1,"
                   "\"list\":[\"xy\",\"z\"]}",
                   &d);
  assert_int_equal(n, 6);
  assert_string_equal(d.msgs[0], ": missing required field 'n'");
  assert_string_equal(d.msgs[1], "name: 'Bad1' does not match ^[a-z]+$");
  assert_string_equal(d.msgs[2], "kind: 'c' is not one of [\"a\",\"b\"]");
  assert_string_equal(d.msgs[3], "v: must be 2");
  assert_string_equal(d.msgs[4], "extra: unknown field 'extra'");
  assert_string_equal(d.msgs[5], "list[1]: is shorter than 2 characters");
  tq_diags_free(&d);
}

static void wrong_types_and_bounds_are_violations(void **state) {
  (void)state;
  tq_diags d = {0};
  assert_int_equal(check(OBJ_SCHEMA, "{\"name\":7,\"n\":9}", &d), 2);
  assert_string_equal(d.msgs[0], "name: is integer, expected \"string\"");
  assert_string_equal(d.msgs[1], "n: 9 is above the maximum 5");
  tq_diags_free(&d);
  assert_int_equal(check(OBJ_SCHEMA, "{\"name\":\"a\",\"n\":1.5,\"list\":[]}", &d), 2);
  assert_string_equal(d.msgs[0], "n: is number, expected \"integer\"");
  assert_string_equal(d.msgs[1], "list: has 0 items, at least 1 needed");
  tq_diags_free(&d);
}

static void an_unsupported_keyword_is_never_ignored(void **state) {
  (void)state;
  tq_diags d = {0};
  assert_int_equal(check("{\"type\":\"string\",\"format\":\"uri\"}", "\"x\"", &d), 1);
  assert_non_null(strstr(d.msgs[0], "'format' is not supported"));
  tq_diags_free(&d);
}

static void ydoc_check_names_file_line_column_and_path(void **state) {
  (void)state;
  tq_ydoc *doc = parse("name: ok\nn: 3\nlist:\n  - xy\n  - z\n");
  cJSON *s = cJSON_Parse(OBJ_SCHEMA);
  tq_diags d = {0};
  assert_int_equal(tq_schema_check_ydoc(s, doc, &d), 1);
  assert_string_equal(d.msgs[0], "t.yaml:5:5: list[1]: is shorter than 2 characters");
  tq_diags_free(&d);
  cJSON_Delete(s);
  tq_ydoc_free(doc);
}

static void the_operation_schema_loads_and_accepts_the_design_example(void **state) {
  (void)state;
  cJSON *s = NULL;
  tq_err err = {0};
  assert_int_equal(tq_schema_load("operation.schema.json", &s, &err), TQ_OK);
  tq_ydoc *doc = parse("name: rst-ioc-lookup\nlabel: RST IoC Lookup\nversion: 1.0.0\n"
                       "script: operation.lua\nconfig:\n"
                       "  - { key: api_key, label: API Key, type: password, required: true }\n"
                       "operations:\n  - name: lookup\n    entry: lookup\n"
                       "    object_types: [indicator]\n    indicator_types: [IP Address]\n"
                       "network:\n  hosts: [\"{config.base_url}\"]\n"
                       "  rate_limit: { requests: 20, per: 1s }\n"
                       "  retry: { on: [429, 500], max: 4 }\n  cache_ttl: 1h\n"
                       "limits: { memory: 32MiB, instructions: 50000000, timeout: 30s }\n");
  tq_diags d = {0};
  size_t n = tq_schema_check_ydoc(s, doc, &d);
  for (size_t i = 0; i < d.n; i++)
    print_message("%s\n", d.msgs[i]);
  assert_int_equal(n, 0);
  tq_diags_free(&d);
  tq_ydoc_free(doc);
  cJSON_Delete(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(yaml_nodes_keep_line_and_column),
      cmocka_unit_test(yaml_plain_scalars_follow_the_core_schema),
      cmocka_unit_test(yaml_errors_name_file_line_and_column),
      cmocka_unit_test(a_valid_instance_has_no_violation),
      cmocka_unit_test(every_violation_is_reported_with_its_path),
      cmocka_unit_test(wrong_types_and_bounds_are_violations),
      cmocka_unit_test(an_unsupported_keyword_is_never_ignored),
      cmocka_unit_test(ydoc_check_names_file_line_column_and_path),
      cmocka_unit_test(the_operation_schema_loads_and_accepts_the_design_example),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
