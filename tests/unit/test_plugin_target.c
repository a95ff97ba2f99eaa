/* test_plugin_target.c: what `op run` and the server share (src/plugin/target.c): the target
 * of an operation (from the library, or a transient indicator typed and normalised), and the
 * JSON of a change set and of a run's outcome. */
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
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  char db[128];
  tq_err err = {0};
  strcpy(f->dir, "/tmp/tq_ptgt_XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(db, sizeof db, "%s/lib.db", f->dir);
  if (tq_lib_open(db, TQ_LIB_OPEN_CREATE, &f->lib, &err) != TQ_OK) {
    fprintf(stderr, "setup: %s\n", err.msg);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  tq_lib_close(f->lib);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  if (system(cmd) != 0)
    return -1;
  free(f);
  return 0;
}

/* A value not in the library: typed (detected or given) and normalised, no id. */
static void test_transient(void **state) {
  fx *f = *state;
  tq_plugin_target t;
  tq_err err = {0};
  assert_int_equal(tq_plugin_target_resolve(f->lib, NULL, "45.83.122.166", &t, &err), TQ_OK);
  const tq_object *o = tq_plugin_target_obj(&t);
  assert_string_equal(o->indicator_type, "IP Address");
  assert_string_equal(o->value, "45.83.122.166");
  assert_int_equal(o->id, 0);
  tq_plugin_target_free(&t);
  assert_int_equal(tq_plugin_target_resolve(f->lib, "FQDN", "Malware-CDN.Example.NET", &t, &err),
                   TQ_OK);
  assert_string_equal(tq_plugin_target_obj(&t)->value, "malware-cdn.example.net");
  tq_plugin_target_free(&t);
  /* Without a library too (op list before init). */
  assert_int_equal(tq_plugin_target_resolve(NULL, NULL, "CVE-2021-44228", &t, &err), TQ_OK);
  assert_string_equal(tq_plugin_target_obj(&t)->indicator_type, "CVE");
  tq_plugin_target_free(&t);
}

static void test_refused(void **state) {
  fx *f = *state;
  tq_plugin_target t;
  tq_err err = {0};
  assert_int_equal(tq_plugin_target_resolve(f->lib, "Nope'\";--", "1.2.3.4", &t, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "is not an indicator type"));
  assert_null(t.type);
  assert_int_equal(tq_plugin_target_resolve(f->lib, "IP Address", "not an ip", &t, &err),
                   TQ_EINVAL);
  assert_null(t.value);
  assert_int_equal(tq_plugin_target_id(f->lib, 424242, &t, &err), TQ_ENOTFOUND);
  tq_plugin_target_free(&t);
}

/* A value in the library: its object, by value and by id. */
static void test_stored(void **state) {
  fx *f = *state;
  tq_err err = {0};
  int64_t id = 0;
  tq_object_in in = {.value = "45.83.122.166"};
  assert_int_equal(tq_lib_object_put(f->lib, &in, &id, NULL, &err), TQ_OK);
  tq_plugin_target t;
  assert_int_equal(tq_plugin_target_resolve(f->lib, NULL, "45.83.122.166", &t, &err), TQ_OK);
  assert_int_equal(tq_plugin_target_obj(&t)->id, id);
  assert_non_null(t.stored);
  tq_plugin_target_free(&t);
  assert_int_equal(tq_plugin_target_id(f->lib, id, &t, &err), TQ_OK);
  assert_string_equal(tq_plugin_target_obj(&t)->value, "45.83.122.166");
  tq_plugin_target free_me = t; /* a target moves by value */
  tq_plugin_target_free(&free_me);
}

static void test_json(void **state) {
  (void)state;
  tq_changeset cs;
  tq_changeset_init(&cs);
  tq_cs_attr attr = {"Risk Score", "87"};
  cs.attrs = &attr;
  cs.n_attrs = 1;
  cs.score = 8;
  cJSON *j = tq_changeset_json(&cs);
  char *s = cJSON_PrintUnformatted(j);
  assert_string_equal(s, "{\"attributes\":[{\"name\":\"Risk Score\",\"value\":\"87\"}],\"tags\":[],"
                         "\"links\":[],\"indicators\":[],\"score\":8,\"status\":null}");
  free(s);
  cJSON_Delete(j);

  tq_plugin_target t;
  tq_err err = {0};
  assert_int_equal(tq_plugin_target_resolve(NULL, NULL, "45.83.122.166", &t, &err), TQ_OK);
  tq_op_result res = {.status = TQ_LUA_OK, .message = "", .traceback = "", .cs = cs};
  tq_op_outcome o = {
      .plugin = "p", .operation = "op", .obj = tq_plugin_target_obj(&t), .res = &res};
  j = tq_op_outcome_json(&o);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "object"), "id")));
  assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "ok");
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "applied")));
  assert_null(cJSON_GetObjectItem(j, "traceback"));
  cJSON_Delete(j);
  o.applied = 1;
  o.object_id = 7;
  j = tq_op_outcome_json(&o);
  assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "object"), "id")->valueint, 7);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "applied")));
  cJSON_Delete(j);
  tq_plugin_target_free(&t);
}

/* A change set read back from its JSON (the server's kept runs, persist): hostile shapes are
 * refused with nothing kept; a full change set comes back the same. */
static void test_json_back(void **state) {
  (void)state;
  tq_changeset cs;
  tq_err err = {0};
  static const char *const bad[] = {
      "[]",
      "{\"tags\":[],\"links\":[],\"indicators\":[]}",
      "{\"attributes\":{},\"tags\":[],\"links\":[],\"indicators\":[]}",
      "{\"attributes\":[{\"name\":5,\"value\":\"x\"}],\"tags\":[],\"links\":[],\"indicators\":[]}",
      "{\"attributes\":[{\"name\":\"a\"}],\"tags\":[],\"links\":[],\"indicators\":[]}",
      "{\"attributes\":[],\"tags\":[1],\"links\":[],\"indicators\":[]}",
      "{\"attributes\":[],\"tags\":[],\"links\":[{\"value\":\"x\"}],\"indicators\":[]}",
      "{\"attributes\":[],\"tags\":[],\"links\":[],\"indicators\":[{\"type\":\"FQDN\"}]}",
      "{\"attributes\":[],\"tags\":[],\"links\":[],\"indicators\":[],\"score\":11}",
      "{\"attributes\":[],\"tags\":[],\"links\":[],\"indicators\":[],\"score\":2.5}",
      "{\"attributes\":[],\"tags\":[],\"links\":[],\"indicators\":[],\"score\":\"8\"}",
      "{\"attributes\":[],\"tags\":[],\"links\":[],\"indicators\":[],\"status\":7}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cJSON *j = cJSON_Parse(bad[i]);
    assert_non_null(j);
    assert_int_equal(tq_changeset_from_json(j, NULL, &cs, &err), TQ_EINVAL);
    assert_int_equal(cs.n_attrs + cs.n_tags + cs.n_links + cs.n_indicators, 0);
    assert_null(cs.attrs);
    cJSON_Delete(j);
  }
  /* more tags than a change set may hold */
  cJSON *big = cJSON_Parse("{\"attributes\":[],\"links\":[],\"indicators\":[]}");
  cJSON *tags = cJSON_AddArrayToObject(big, "tags");
  for (int i = 0; i <= TQ_LUA_MAX_ITEMS; i++)
    cJSON_AddItemToArray(tags, cJSON_CreateString("t"));
  assert_int_equal(tq_changeset_from_json(big, NULL, &cs, &err), TQ_EINVAL);
  cJSON_Delete(big);
  assert_int_equal(tq_changeset_from_json(NULL, NULL, &cs, &err), TQ_EINVAL);

  const char *full =
      "{\"attributes\":[{\"name\":\"Risk Score\",\"value\":\"87\"}],\"tags\":[\"apt\",\"c2\"],"
      "\"links\":[{\"object_type\":\"adversary\",\"value\":\"APT1\",\"link_type\":\"uses\"},"
      "{\"object_type\":\"malware\",\"value\":\"x\",\"description\":\"d\"}],"
      "\"indicators\":[{\"type\":\"FQDN\",\"value\":\"a.example\",\"attributes\":[{\"name\":"
      "\"n\",\"value\":\"v\"}]}],\"score\":8,\"status\":\"Active\"}";
  cJSON *j = cJSON_Parse(full), *show = cJSON_Parse("{\"risk\":87}");
  assert_int_equal(tq_changeset_from_json(j, show, &cs, &err), TQ_OK);
  assert_int_equal(cs.n_tags, 2);
  assert_int_equal(cs.n_links, 2);
  assert_null(cs.links[0].description);
  assert_int_equal(cs.indicators[0].n_attrs, 1);
  assert_int_equal(cs.score, 8);
  assert_non_null(cs.show);
  cJSON *back = tq_changeset_json(&cs);
  char *a = cJSON_PrintUnformatted(j), *b = cJSON_PrintUnformatted(back);
  assert_string_equal(a, b);
  free(a);
  free(b);
  cJSON_Delete(back);
  cJSON_Delete(j);
  cJSON_Delete(show);
  tq_changeset_free(&cs);
  j = cJSON_Parse("{\"attributes\":[],\"tags\":[],\"links\":[],\"indicators\":[],\"score\":null,"
                  "\"status\":null}");
  assert_int_equal(tq_changeset_from_json(j, NULL, &cs, &err), TQ_OK);
  assert_true(tq_changeset_empty(&cs));
  assert_int_equal(cs.score, -1);
  cJSON_Delete(j);
  tq_changeset_free(&cs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_transient, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stored, setup, teardown),
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_json_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
