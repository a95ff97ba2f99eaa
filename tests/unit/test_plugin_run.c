/* test_plugin_run.c: one operation run on recorded HTTP (the real runtime in replay mode) and
 * its change set applied to the library in one transaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tqhost/plugin.h"

typedef struct fx {
  char dir[64];
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
  char db[128];
  tq_err err = {0};
  strcpy(f->dir, "/tmp/tq_prun_XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(db, sizeof db, "%s/lib.db", f->dir);
  if (tq_lib_open(db, TQ_LIB_OPEN_CREATE, &f->lib, &err) != TQ_OK ||
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

static void run_ip_at(fx *f, const char *value, const char *replay, tq_op_result *res);

/* Runs operation op of example-lookup on an IP with the given fixture. */
static void run_ip(fx *f, const char *value, const char *fixture, tq_op_result *res) {
  char replay[4096];
  snprintf(replay, sizeof replay, "%s/spec/fixtures/%s", data_dir("example-lookup"), fixture);
  run_ip_at(f, value, replay, res);
}

/* The same with a fixture file at any path. */
static void run_ip_at(fx *f, const char *value, const char *replay, tq_op_result *res) {
  static tq_lua_kv config[] = {{"base_url", "https://api.example.test/v1"},
                               {"update_score", "true"}};
  static tq_lua_kv secrets[] = {{"api_key", "run-test-key"}};
  tq_plugin_config cfg = {.config = config, .n_config = 2, .secrets = secrets, .n_secrets = 1};
  tq_object obj = {.object_type = "indicator",
                   .indicator_type = "IP Address",
                   .value = (char *)value,
                   .status = TQ_STATUS_ACTIVE,
                   .score_manual = -1};
  tq_op_request rq = {.plugin = f->p,
                      .op = tq_plugin_op_find(f->p, "lookup"),
                      .obj = &obj,
                      .cfg = &cfg,
                      .replay_file = replay,
                      .lib = f->lib};
  tq_err err = {0};
  if (tq_plugin_op_run(&rq, res, &err) != TQ_OK)
    fail_msg("run: %s", err.msg);
}

static void a_run_returns_its_change_set_and_show(void **state) {
  fx *f = *state;
  tq_op_result res;
  run_ip(f, "45.83.122.166", "ip_hit.json", &res);
  assert_int_equal(res.status, TQ_LUA_OK);
  assert_int_equal(res.cs.n_attrs, 1);
  assert_string_equal(res.cs.attrs[0].name, "Example Score");
  assert_int_equal(res.cs.n_tags, 2);
  assert_int_equal(res.cs.n_links, 1);
  assert_int_equal(res.cs.n_indicators, 1);
  assert_int_equal(res.cs.score, 7);
  assert_non_null(res.cs.show);
  assert_string_equal(cJSON_GetObjectItem(res.cs.show, "value")->valuestring, "45.83.122.166");
  tq_op_result_free(&res);
}

/* Runs on a one-exchange fixture whose URL is url; returns the run's status. */
static tq_lua_status run_on_url(fx *f, const char *value, const char *url) {
  char path[256];
  snprintf(path, sizeof path, "%s/marker.json", f->dir);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fprintf(fp, "[{\"url\": \"%s\", \"json\": {\"score\": 7}}]", url);
  fclose(fp);
  tq_op_result res;
  run_ip_at(f, value, path, &res);
  tq_lua_status st = res.status;
  if (st != TQ_LUA_OK)
    assert_non_null(strstr(res.message, "no recorded response"));
  tq_op_result_free(&res);
  return st;
}

/* The markers `plugin test --record` writes: {{redacted}} stands for any value inside one
 * query value or path segment, {{secret:KEY}} for the run's own secret KEY as sent. */
static void a_recorded_marker_matches_a_value_but_not_across_a_separator(void **state) {
  fx *f = *state;
  const char *base = "https://api.example.test/v1";
  char url[512];
  snprintf(url, sizeof url, "%s/ioc?value={{redacted}}", base);
  assert_int_equal(run_on_url(f, "45.83.122.166", url), TQ_LUA_OK);
  snprintf(url, sizeof url, "%s/{{redacted}}?value=45.83.122.166", base);
  assert_int_equal(run_on_url(f, "45.83.122.166", url), TQ_LUA_OK);
  snprintf(url, sizeof url, "%s{{redacted}}?value=45.83.122.166", base); /* would cross '/' */
  assert_int_equal(run_on_url(f, "45.83.122.166", url), TQ_LUA_ERROR);
  snprintf(url, sizeof url, "%s/ioc?{{redacted}}", base); /* would cross '=' */
  assert_int_equal(run_on_url(f, "45.83.122.166", url), TQ_LUA_ERROR);
  snprintf(url, sizeof url, "%s/ioc?value={{secret:api_key}}", base);
  assert_int_equal(run_on_url(f, "run-test-key", url), TQ_LUA_OK);
  assert_int_equal(run_on_url(f, "another-value", url), TQ_LUA_ERROR);
  snprintf(url, sizeof url, "%s/ioc?value={{secret:nope}}", base); /* no such secret */
  assert_int_equal(run_on_url(f, "run-test-key", url), TQ_LUA_ERROR);
}

/* ctx.config is typed by the manifest; a value that does not parse as its type fails the
 * load naming the key and the type, before the entry runs (never a silent string). */
static void a_config_value_of_the_wrong_type_fails_the_load(void **state) {
  fx *f = *state;
  static tq_lua_kv config[] = {{"base_url", "https://api.example.test/v1"},
                               {"max_related", "many"}};
  static tq_lua_kv secrets[] = {{"api_key", "run-test-key"}};
  tq_plugin_config cfg = {.config = config, .n_config = 2, .secrets = secrets, .n_secrets = 1};
  tq_object obj = {.object_type = "indicator",
                   .indicator_type = "IP Address",
                   .value = "45.83.122.166",
                   .status = TQ_STATUS_ACTIVE,
                   .score_manual = -1};
  tq_op_request rq = {
      .plugin = f->p, .op = tq_plugin_op_find(f->p, "lookup"), .obj = &obj, .cfg = &cfg};
  tq_op_result res;
  memset(&res, 0, sizeof res);
  tq_err err = {0};
  assert_int_equal(tq_plugin_op_run(&rq, &res, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "ctx.config.max_related: 'many' is not an integer"));
  tq_op_result_free(&res);
}

static void a_failure_carries_the_scripts_reason(void **state) {
  fx *f = *state;
  tq_op_result res;
  run_ip(f, "10.1.1.1", "not_found.json", &res);
  assert_int_equal(res.status, TQ_LUA_FAILED);
  assert_string_equal(res.message, "not found");
  assert_true(tq_changeset_empty(&res.cs));
  tq_op_result_free(&res);
}

static void apply_writes_everything_under_the_plugins_source(void **state) {
  fx *f = *state;
  tq_op_result res;
  run_ip(f, "45.83.122.166", "ip_hit.json", &res);
  tq_object view = {.object_type = "indicator",
                    .indicator_type = "IP Address",
                    .value = "45.83.122.166",
                    .score_manual = -1};
  tq_apply_summary sum;
  tq_err err = {0};
  assert_int_equal(tq_plugin_apply(f->lib, f->p, &view, &res.cs, &sum, &err), TQ_OK);
  assert_true(sum.object_created);
  assert_int_equal(sum.attrs, 1);
  assert_int_equal(sum.tags, 2);
  assert_int_equal(sum.links, 1);
  assert_int_equal(sum.indicators, 1);
  assert_true(sum.score_set);
  tq_object *o = NULL;
  assert_int_equal(tq_lib_object_get(f->lib, sum.object_id, &o, &err), TQ_OK);
  assert_string_equal(o->sources[0], "Example Lookup");
  assert_string_equal(o->attrs[0].source, "Example Lookup");
  assert_string_equal(o->attrs[0].value, "7");
  assert_int_equal(o->score_manual, 7);
  assert_int_equal(o->n_links, 2);
  tq_object_free(o);
  tq_source src;
  assert_int_equal(tq_lib_source_get(f->lib, "Example Lookup", &src, &err), TQ_OK);
  assert_string_equal(src.kind, "plugin");
  int64_t id = 0;
  assert_int_equal(tq_lib_object_find(f->lib, NULL, "FQDN", "evil.example.com", &id, &err), TQ_OK);
  assert_int_equal(tq_lib_object_get(f->lib, id, &o, &err), TQ_OK);
  assert_int_equal(o->status, TQ_STATUS_INDIRECT);
  assert_string_equal(o->attrs[0].name, "Example Relation");
  tq_object_free(o);
  assert_int_equal(tq_lib_object_find(f->lib, "malware", NULL, "Cobalt Strike", &id, &err), TQ_OK);
  tq_op_result_free(&res);
}

static void a_bad_change_set_writes_nothing(void **state) {
  fx *f = *state;
  tq_op_result res;
  run_ip(f, "45.83.122.166", "ip_hit.json", &res);
  free(res.cs.indicators[0].value);
  res.cs.indicators[0].value = strdup("not a domain!");
  tq_object view = {.object_type = "indicator",
                    .indicator_type = "IP Address",
                    .value = "45.83.122.166",
                    .score_manual = -1};
  tq_apply_summary sum;
  tq_err err = {0};
  assert_int_equal(tq_plugin_apply(f->lib, f->p, &view, &res.cs, &sum, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "change set: related indicator"));
  int64_t id = 0;
  assert_int_equal(tq_lib_object_find(f->lib, NULL, NULL, "45.83.122.166", &id, &err),
                   TQ_ENOTFOUND);
  /* A link to an unknown type is refused as well, before anything is written. */
  free(res.cs.indicators[0].value);
  res.cs.indicators[0].value = strdup("evil.example.com");
  free(res.cs.links[0].object_type);
  res.cs.links[0].object_type = strdup("spaceship");
  assert_int_equal(tq_plugin_apply(f->lib, f->p, &view, &res.cs, &sum, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "'spaceship' is neither an object type nor an indicator type"));
  assert_int_equal(tq_lib_object_find(f->lib, NULL, NULL, "45.83.122.166", &id, &err),
                   TQ_ENOTFOUND);
  tq_op_result_free(&res);
}

static void an_existing_related_indicator_keeps_its_status(void **state) {
  fx *f = *state;
  const char *srcs[] = {"Analyst"};
  tq_object_in in = {
      .indicator_type = "FQDN", .value = "evil.example.com", .sources = srcs, .n_sources = 1};
  int64_t id = 0;
  tq_err err = {0};
  assert_int_equal(tq_lib_object_put(f->lib, &in, &id, NULL, &err), TQ_OK);
  tq_op_result res;
  run_ip(f, "45.83.122.166", "ip_hit.json", &res);
  tq_object view = {.object_type = "indicator",
                    .indicator_type = "IP Address",
                    .value = "45.83.122.166",
                    .score_manual = -1};
  tq_apply_summary sum;
  assert_int_equal(tq_plugin_apply(f->lib, f->p, &view, &res.cs, &sum, &err), TQ_OK);
  tq_object *o = NULL;
  assert_int_equal(tq_lib_object_get(f->lib, id, &o, &err), TQ_OK);
  assert_int_equal(o->status, TQ_STATUS_ACTIVE);
  tq_object_free(o);
  tq_op_result_free(&res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_run_returns_its_change_set_and_show, setup, teardown),
      cmocka_unit_test_setup_teardown(a_recorded_marker_matches_a_value_but_not_across_a_separator,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(a_failure_carries_the_scripts_reason, setup, teardown),
      cmocka_unit_test_setup_teardown(a_config_value_of_the_wrong_type_fails_the_load, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(apply_writes_everything_under_the_plugins_source, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_bad_change_set_writes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(an_existing_related_indicator_keeps_its_status, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
