/* test_server_router.c: how the server finds a request's route (tq_route_find): literal
 * segments beat {param} segments whatever the tables' order, params are captured and
 * percent-decoded one segment at a time, a path known with another method is 405, and
 * paths that try to climb ('..', '.', encoded or not) or hide a NUL or a '/' are refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/server/server_int.h"

static void h(tq_req *rq, tq_resp *rs) {
  (void)rq;
  (void)rs;
}

/* Deliberately the {param} routes first: the order of the tables must not matter. */
static const tq_route t_params[] = {
    {"GET", "/api/indicators/{id}", TQ_ROLE_READONLY, h},
    {"PUT", "/api/indicators/{id}", TQ_ROLE_ANALYST, h},
    {"GET", "/api/indicators/{id}/attributes/{aid}", TQ_ROLE_READONLY, h},
    {"GET", "/api/{collection}/{id}", TQ_ROLE_READONLY, h},
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
static const tq_route t_literals[] = {
    {"POST", "/api/indicators/query", TQ_ROLE_READONLY, h},
    {"GET", "/api/indicators/query/hash/{hash}", TQ_ROLE_READONLY, h},
    {"GET", "/api/indicators/{id}/score", TQ_ROLE_READONLY, h},
    {"GET", "/api/health", TQ_ROLE_NONE, h},
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
static const tq_route *const tables[] = {t_params, t_literals, NULL};
static const tq_route *const tables_rev[] = {t_literals, t_params, NULL};

static tq_route_match m;

static int find(const char *method, const char *path) {
  return tq_route_find(tables, method, path, &m);
}

static void test_literal_segment_beats_param(void **state) {
  (void)state;
  assert_int_equal(find("POST", "/api/indicators/query"), 200);
  assert_string_equal(m.route->pattern, "/api/indicators/query");
  assert_int_equal(find("GET", "/api/indicators/7/score"), 200);
  assert_string_equal(m.route->pattern, "/api/indicators/{id}/score");
  /* "/api/indicators/{id}" beats "/api/{collection}/{id}": its first differing segment is
   * literal. */
  assert_int_equal(find("GET", "/api/indicators/7"), 200);
  assert_string_equal(m.route->pattern, "/api/indicators/{id}");
  assert_int_equal(find("GET", "/api/adversaries/7"), 200);
  assert_string_equal(m.route->pattern, "/api/{collection}/{id}");
  /* same answers with the tables the other way round */
  assert_int_equal(tq_route_find(tables_rev, "GET", "/api/indicators/7", &m), 200);
  assert_string_equal(m.route->pattern, "/api/indicators/{id}");
  assert_int_equal(tq_route_find(tables_rev, "GET", "/api/indicators/7/score", &m), 200);
  assert_string_equal(m.route->pattern, "/api/indicators/{id}/score");
}

static void test_params_are_captured_in_order(void **state) {
  (void)state;
  assert_int_equal(find("GET", "/api/indicators/12/attributes/34"), 200);
  assert_int_equal(m.n_params, 2);
  assert_string_equal(m.params[0], "12");
  assert_string_equal(m.params[1], "34");
  assert_string_equal(m.path, "/api/indicators/12/attributes/34");
  assert_int_equal(find("GET", "/api/indicators/query/hash/abc"), 200);
  assert_int_equal(m.n_params, 1);
  assert_string_equal(m.params[0], "abc");
}

static void test_params_are_percent_decoded_per_segment(void **state) {
  (void)state;
  assert_int_equal(find("GET", "/api/indicators/%E2%9C%93%20x"), 200);
  assert_string_equal(m.params[0], "\xe2\x9c\x93 x");
  /* an encoded literal still matches the literal route */
  assert_int_equal(find("POST", "/api/indicators/%71uery"), 200);
  assert_string_equal(m.route->pattern, "/api/indicators/query");
}

static void test_other_method_is_405_unknown_path_404(void **state) {
  (void)state;
  assert_int_equal(find("DELETE", "/api/indicators/7"), 405);
  assert_non_null(strstr(m.why, "DELETE"));
  assert_null(m.route);
  assert_int_equal(find("GET", "/api/indicators/query"), 200); /* GET {id} takes it */
  assert_int_equal(find("POST", "/api/health"), 405);
  assert_int_equal(find("GET", "/api/nothing/here/at/all"), 404);
  assert_int_equal(find("GET", "/api/health/"), 404); /* an empty segment matches nothing */
  assert_int_equal(find("GET", "/api/indicators//score"), 404);
  assert_int_equal(find("GET", "/"), 404);
  assert_int_equal(find("HEAD", "/api/health"), 200); /* HEAD answers as GET */
}

static void test_traversal_and_bad_escapes_are_refused(void **state) {
  (void)state;
  const char *bad[] = {"/api/../health",   "/api/./health",       "/api/%2e%2e/health",
                       "/api/%2E./health", "/api/indicators/..",  "/api/indicators/%2e",
                       "/api/health%00",   "/api/indicators/%zz", "/api/indicators/%4",
                       "api/health",       "/api/indicators/1%"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int st = find("GET", bad[i]);
    if (st != 400)
      fail_msg("%s: %d, wanted 400", bad[i], st);
    assert_null(m.route);
    assert_true(m.why[0] != '\0');
  }
  /* Found by fuzz_route: an encoded '/' used to stay inside its segment, handing a handler
   * a {param} such as "..%2F..%2Fetc" decoded to "../../etc" (names of plugins, actions,
   * feeds). It is refused like an encoded NUL, whatever its case or place. */
  const char *slash[] = {"/api/indicators/a%2Fb", "/api/plugins/..%2F..%2Fetc",
                         "/api/feeds/x%2f/poll", "/api/health%2F", "/api/%2Fhealth"};
  for (size_t i = 0; i < sizeof slash / sizeof slash[0]; i++) {
    int st = find(i == 2 ? "POST" : "GET", slash[i]);
    if (st != 400)
      fail_msg("%s: %d, wanted 400", slash[i], st);
    assert_null(m.route);
    assert_non_null(strstr(m.why, "'/'"));
  }
  /* dots inside a segment are fine */
  assert_int_equal(find("GET", "/api/indicators/..a"), 200);
  assert_string_equal(m.params[0], "..a");
}

static void test_long_paths_are_refused_not_overflowed(void **state) {
  (void)state;
  char path[8192];
  size_t n = 0;
  while (n + 3 < sizeof path) {
    path[n++] = '/';
    path[n++] = 'a';
  }
  path[n] = '\0';
  assert_int_equal(find("GET", path), 400);
  memset(path, 'a', sizeof path - 1);
  path[0] = '/';
  path[sizeof path - 1] = '\0';
  assert_int_equal(find("GET", path), 400);
}

/* A JSON body is taken whole: a document followed by text, or cut by a NUL, is refused with
 * the byte where it went wrong; a plain document parses. */
static void test_json_body_whole_or_refused(void **state) {
  (void)state;
  static const struct {
    const char *body;
    size_t len;
    int ok;
  } cases[] = {{"{\"a\":1}", 7, 1},     {" [1,2] \n", 8, 1}, {"{\"a\":1} x", 9, 0},
               {"{\"a\":1}\0{}", 9, 0}, {"{\"a\":", 5, 0},   {"", 0, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[32];
    memcpy(buf, cases[i].body, cases[i].len);
    buf[cases[i].len] = 0;
    tq_req rq;
    memset(&rq, 0, sizeof rq);
    rq.body = buf;
    rq.body_len = cases[i].len;
    tq_resp rs;
    memset(&rs, 0, sizeof rs);
    cJSON *j = tq_req_json(&rq, &rs);
    if (cases[i].ok) {
      assert_non_null(j);
      assert_int_equal(rs.status, 0);
    } else {
      assert_null(j);
      assert_int_equal(rs.status, 400);
    }
    cJSON_Delete(j);
    tq_resp_free(&rs);
  }
}

/* The server's serialiser (tq_resp_print) writes exactly what cJSON_PrintUnformatted writes,
 * for integers (its fast path), other numbers, -0, NaN, escapes, nesting and raw items. */
static void test_answer_text_is_cjsons(void **state) {
  (void)state;
  cJSON *root = cJSON_CreateObject();
  const double nums[] = {0,
                         1,
                         -1,
                         42,
                         999999999999999.0,
                         1e15,
                         -1e15,
                         1e16,
                         9007199254740993.0,
                         -0.0,
                         0.1,
                         1.0 / 3,
                         2.5,
                         -7.25,
                         1e300,
                         -1e-300,
                         123456789012.5,
                         NAN,
                         INFINITY,
                         -INFINITY};
  cJSON *arr = cJSON_AddArrayToObject(root, "nums");
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(nums[i]));
  cJSON_AddStringToObject(root, "esc", "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f \xc3\xa9 end");
  cJSON_AddStringToObject(root, "", "");
  cJSON_AddStringToObject(root, "k\"ey\n", "v");
  cJSON_AddNullToObject(root, "null");
  cJSON_AddTrueToObject(root, "t");
  cJSON_AddFalseToObject(root, "f");
  cJSON_AddObjectToObject(root, "empty_obj");
  cJSON_AddArrayToObject(root, "empty_arr");
  cJSON_AddRawToObject(root, "raw", "{\"a\":[1,2]}");
  cJSON *deep = cJSON_AddObjectToObject(root, "deep"); /* {"x":[{"x":[...{}...]}]} */
  for (int i = 0; i < 20; i++) {
    cJSON *list = cJSON_AddArrayToObject(deep, "x");
    deep = cJSON_CreateObject();
    cJSON_AddItemToArray(list, deep);
  }
  char *want = cJSON_PrintUnformatted(root);
  size_t len = 0;
  char *got = tq_resp_print(root, &len);
  assert_non_null(want);
  assert_non_null(got);
  assert_string_equal(got, want);
  assert_int_equal(len, strlen(want));
  cJSON_free(want);
  free(got);
  cJSON_Delete(root);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_literal_segment_beats_param),
      cmocka_unit_test(test_params_are_captured_in_order),
      cmocka_unit_test(test_params_are_percent_decoded_per_segment),
      cmocka_unit_test(test_other_method_is_405_unknown_path_404),
      cmocka_unit_test(test_traversal_and_bad_escapes_are_refused),
      cmocka_unit_test(test_long_paths_are_refused_not_overflowed),
      cmocka_unit_test(test_json_body_whole_or_refused),
      cmocka_unit_test(test_answer_text_is_cjsons),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
