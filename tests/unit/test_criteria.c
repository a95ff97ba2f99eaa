/* test_criteria.c: the criteria compiler (library/criteria.c): what SQL and parameters a
 * document becomes, that values never reach the SQL text, the JSON path every refusal names,
 * the limits, the canonical form, pages and keyset walks over a library in memory, a
 * collection holding criteria walked by the cursor, and the score explanation against the
 * stored generated score. */
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h> /* after the headers it needs */

#include "tqhost/library.h"

static tq_criteria *compile_ok(const char *doc) {
  tq_criteria *c = NULL;
  char where[256];
  tq_err err;
  tq_code rc = tq_criteria_compile(doc, strlen(doc), &c, where, sizeof where, &err);
  if (rc != TQ_OK)
    fail_msg("%s: %s", doc, err.msg);
  return c;
}

/* The document is refused with where == path. */
static void refused(const char *doc, const char *path) {
  tq_criteria *c = NULL;
  char where[256] = "";
  tq_err err;
  tq_code rc = tq_criteria_compile(doc, strlen(doc), &c, where, sizeof where, &err);
  if (rc != TQ_EINVAL)
    fail_msg("%.80s: accepted (or not EINVAL): %d", doc, rc);
  assert_null(c);
  if (strcmp(where, path) != 0)
    fail_msg("%.80s: where '%s', expected '%s' (%s)", doc, where, path, err.msg);
  assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
}

static void test_sql_shape_and_parameters(void **state) {
  (void)state;
  tq_criteria *c = compile_ok("{\"criteria\": {\"value\": \"evil.com\", \"score\": {\"+gte\": 4,"
                              " \"+lte\": 8}}, \"filters\": {\"+or\": [{\"type_name\": \"FQDN\"},"
                              " {\"status_name\": \"Review\"}]}}");
  const char *sql = tq_criteria_sql(c);
  assert_non_null(strstr(sql, "o.value = ?"));
  assert_non_null(strstr(sql, "o.score >= ?"));
  assert_non_null(strstr(sql, "o.score <= ?"));
  assert_non_null(strstr(sql, " OR "));
  assert_null(strstr(sql, "evil"));
  assert_int_equal(tq_criteria_params(c), 5);
  tq_criteria_free(c);
}

static void test_values_never_reach_the_sql(void **state) {
  (void)state;
  const char *doc = "{\"criteria\": {\"value\": \"x' OR 1=1; DROP TABLE objects;--\","
                    " \"source\": \"a'\\\"b\", \"tag\": {\"+not\": \"');--\"},"
                    " \"attribute\": {\"name\": \"n'\", \"value\": {\"+like\": \"%'%\"}}}}";
  tq_criteria *c = compile_ok(doc);
  const char *sql = tq_criteria_sql(c);
  assert_null(strstr(sql, "DROP"));
  assert_null(strstr(sql, "'\""));
  assert_null(strstr(sql, "n'"));
  /* Only the ESCAPE clause's literal has quotes. */
  for (const char *p = strchr(sql, '\''); p; p = strchr(p + 1, '\''))
    assert_true(strncmp(p - 7, "ESCAPE '\\'", 10) == 0 || strncmp(p - 9, "ESCAPE '\\'", 10) == 0);
  tq_criteria_free(c);
}

static void test_refusals_name_the_path(void **state) {
  (void)state;
  refused("{\"criteria\": {\"bogus\": 1}}", "criteria.bogus");
  refused("{\"filters\": {\"+or\": [{\"value\": \"x\"}, {\"score\": {\"+near\": 3}}]}}",
          "filters.+or[1].score.+near");
  refused("{\"criteria\": {\"+and\": [{\"+or\": [{\"type_name\": \"Nope\"}]}]}}",
          "criteria.+and[0].+or[0].type_name");
  refused("{\"criteria\": {\"score\": \"high\"}}", "criteria.score");
  refused("{\"criteria\": {\"score\": {\"+gte\": 1e300}}}", "criteria.score.+gte");
  refused("{\"criteria\": {\"value\": {\"+gt\": \"a\"}}}", "criteria.value.+gt");
  refused("{\"criteria\": {\"value\": true}}", "criteria.value");
  refused("{\"criteria\": {\"value\": null}}", "criteria.value");
  refused("{\"criteria\": {\"value\": [\"a\", 3]}}", "criteria.value[1]");
  refused("{\"criteria\": {\"value\": []}}", "criteria.value");
  refused("{\"criteria\": {\"status_name\": \"Dead\"}}", "criteria.status_name");
  refused("{\"criteria\": {\"status_id\": 9}}", "criteria.status_id");
  refused("{\"criteria\": {\"created_at\": {\"+gte\": \"soon\"}}}", "criteria.created_at.+gte");
  refused("{\"criteria\": {\"updated_at\": {\"+gte\": \"now-3 fortnights\"}}}",
          "criteria.updated_at.+gte");
  refused("{\"criteria\": {\"attribute\": {\"nme\": \"x\"}}}", "criteria.attribute.nme");
  refused("{\"criteria\": {\"attribute\": {\"name\": {\"+gt\": \"x\"}}}}",
          "criteria.attribute.name.+gt");
  refused("{\"criteria\": {\"+xor\": []}}", "criteria.+xor");
  refused("{\"criteria\": {\"+and\": 3}}", "criteria.+and");
  refused("{\"criteria\": {\"+and\": [3]}}", "criteria.+and[0]");
  refused("{\"criteria\": 5}", "criteria");
  refused("{\"where\": {}}", "where");
  refused("[1]", "criteria");
  refused("{\"criteria\": {", "criteria");
  refused("", "criteria");
  refused("{\"criteria\": {\"value\": \"a\\u0000b\"}}", "criteria");
}

static void test_limits(void **state) {
  (void)state;
  /* Depth: 13 nested +and is one too many; 12 pass. */
  char doc[4096];
  for (int depth = 11; depth <= 13; depth++) {
    size_t o = (size_t)snprintf(doc, sizeof doc, "{\"criteria\": ");
    for (int i = 0; i < depth; i++)
      o += (size_t)snprintf(doc + o, sizeof doc - o, "{\"+and\": [");
    o += (size_t)snprintf(doc + o, sizeof doc - o, "{\"value\": \"x\"}");
    for (int i = 0; i < depth; i++)
      o += (size_t)snprintf(doc + o, sizeof doc - o, "]}");
    snprintf(doc + o, sizeof doc - o, "}");
    tq_criteria *c = NULL;
    tq_err err;
    tq_code rc = tq_criteria_compile(doc, strlen(doc), &c, NULL, 0, &err);
    assert_int_equal(rc, depth < TQ_CRITERIA_MAX_DEPTH ? TQ_OK : TQ_EINVAL);
    tq_criteria_free(c);
  }
  /* A deep document is refused before it is parsed. */
  size_t n = 200000;
  char *big = malloc(2 * n + 64);
  size_t o = 0;
  o += (size_t)sprintf(big, "{\"criteria\":");
  for (size_t i = 0; i < n / 2; i++)
    big[o++] = '[';
  big[o] = '\0';
  refused(big, "criteria");
  free(big);
  /* Terms. */
  tq_buf b;
  tq_buf_init(&b, 0);
  tq_buf_adds(&b, "{\"criteria\": {\"+or\": [");
  for (int i = 0; i < TQ_CRITERIA_MAX_TERMS + 1; i++)
    tq_buf_printf(&b, "%s{\"value\": \"v%d\"}", i ? "," : "", i);
  tq_buf_adds(&b, "]}}");
  tq_criteria *c = NULL;
  tq_err err;
  assert_int_equal(tq_criteria_compile(b.data, b.len, &c, NULL, 0, &err), TQ_EINVAL);
  tq_buf_free(&b);
  /* A long string. */
  char *s = malloc(TQ_CRITERIA_MAX_STRING + 64);
  o = (size_t)sprintf(s, "{\"criteria\": {\"value\": \"");
  memset(s + o, 'a', TQ_CRITERIA_MAX_STRING + 1);
  strcpy(s + o + TQ_CRITERIA_MAX_STRING + 1, "\"}}");
  refused(s, "criteria.value");
  free(s);
}

static void test_canonical_ignores_order_and_spacing(void **state) {
  (void)state;
  tq_criteria *a = compile_ok("{\"filters\": {\"score\": {\"+lte\": 8, \"+gte\": 4}},"
                              " \"criteria\": {\"value\": \"x\"}, \"fields\": [\"id\"]}");
  tq_criteria *b = compile_ok("{\"criteria\":{\"value\":\"x\"},\"filters\":{\"score\":{\"+gte\":"
                              "4,\"+lte\":8}}}");
  assert_string_equal(tq_criteria_canonical(a), tq_criteria_canonical(b));
  tq_criteria *c = compile_ok("{\"criteria\":{\"value\":\"y\"}}");
  assert_string_not_equal(tq_criteria_canonical(a), tq_criteria_canonical(c));
  tq_criteria_free(a);
  tq_criteria_free(b);
  tq_criteria_free(c);
}

/* ---- against a library ------------------------------------------------------------------- */

static int64_t put(tq_lib *lib, const char *value, const char *source, const char *tag) {
  tq_object_in in = {0};
  in.value = value;
  in.sources = &source;
  in.n_sources = 1;
  if (tag) {
    in.tags = &tag;
    in.n_tags = 1;
  }
  int64_t id = 0;
  tq_err err;
  if (tq_lib_object_put(lib, &in, &id, NULL, &err) != TQ_OK)
    fail_msg("put %s: %s", value, err.msg);
  return id;
}

static size_t run(tq_lib *lib, const char *doc, const char *sort, int64_t *out, size_t max) {
  tq_criteria *c = compile_ok(doc);
  int64_t *ids = NULL, total = -1;
  size_t n = 0;
  tq_err err;
  if (tq_lib_criteria_ids(lib, c, NULL, sort, 0, 1000, 0, &ids, &n, &total, &err) != TQ_OK)
    fail_msg("%s: %s", doc, err.msg);
  assert_int_equal(total, (int64_t)n);
  for (size_t i = 0; i < n && i < max; i++)
    out[i] = ids[i];
  free(ids);
  tq_criteria_free(c);
  return n;
}

static void test_against_a_library(void **state) {
  (void)state;
  tq_lib *lib = NULL;
  tq_err err;
  assert_int_equal(tq_lib_open(":memory:", TQ_LIB_OPEN_CREATE, &lib, &err), TQ_OK);
  int64_t a = put(lib, "a_b.example.com", "S1", "t1");
  int64_t b = put(lib, "axb.example.com", "S2", NULL);
  int64_t c = put(lib, "1.2.3.4", "S1", "t2");
  int64_t ids[16];
  assert_int_equal(run(lib, "{\"criteria\":{\"value\":\"a_b%\"}}", NULL, ids, 16), 1);
  assert_int_equal(ids[0], a);
  assert_int_equal(run(lib, "{\"criteria\":{\"value\":\"a%b%\"}}", NULL, ids, 16), 2);
  assert_int_equal(run(lib, "{\"criteria\":{\"source\":\"S1\"}}", "-id", ids, 16), 2);
  assert_int_equal(ids[0], c);
  assert_int_equal(ids[1], a);
  assert_int_equal(run(lib, "{\"criteria\":{\"tag\":{\"+not\":\"t1\"}}}", NULL, ids, 16), 2);
  assert_int_equal(ids[0], b);
  assert_int_equal(run(lib, "{\"criteria\":{\"type_name\":\"IP Address\"}}", NULL, ids, 16), 1);
  assert_int_equal(ids[0], c);
  assert_int_equal(
      run(lib, "{\"criteria\":{\"+or\":{\"tag\":\"t2\",\"source\":\"S2\"}}}", "value", ids, 16), 2);
  assert_int_equal(ids[0], c); /* "1.2.3.4" < "axb..." */
  assert_int_equal(ids[1], b);
  /* "is"/"like" as ThreatQ's clients send them; +not with a list is none of them. */
  assert_int_equal(run(lib, "{\"criteria\":{\"value\":{\"is\":\"1.2.3.4\"}}}", NULL, ids, 16), 1);
  assert_int_equal(ids[0], c);
  assert_int_equal(run(lib, "{\"criteria\":{\"value\":{\"like\":\"%example%\"}}}", NULL, ids, 16),
                   2);
  assert_int_equal(
      run(lib, "{\"criteria\":{\"source\":{\"+not\":[\"S1\",\"S9\"]}}}", NULL, ids, 16), 1);
  assert_int_equal(ids[0], b);
  assert_int_equal(
      run(lib, "{\"criteria\":{\"type_name\":{\"+not\":[\"FQDN\",\"MD5\"]}}}", NULL, ids, 16), 1);
  assert_int_equal(ids[0], c);
  assert_int_equal(run(lib, "{\"filters\":{\"+or\":[]},\"criteria\":{\"+and\":[]}}", NULL, ids, 16),
                   3);
  /* A keyset walk after an id. */
  tq_criteria *all = compile_ok("{}");
  int64_t *page = NULL;
  size_t n = 0;
  assert_int_equal(tq_lib_criteria_ids(lib, all, NULL, NULL, a, 1, 0, &page, &n, NULL, &err),
                   TQ_OK);
  assert_int_equal(n, 1);
  assert_int_equal(page[0], b);
  free(page);
  assert_int_equal(tq_lib_criteria_ids(lib, all, NULL, "-score", a, 1, 0, &page, &n, NULL, &err),
                   TQ_EINVAL);
  assert_int_equal(tq_lib_criteria_ids(lib, all, NULL, "bogus';--", 0, 1, 0, &page, &n, NULL, &err),
                   TQ_EINVAL);
  assert_int_equal(strncmp(err.msg, "sort:", 5), 0);
  tq_criteria_free(all);
  /* A collection holding criteria: the cursor and the count walk it. */
  tq_query q;
  tq_query_init(&q);
  q.criteria = strdup("{\"criteria\":{\"value\":{\"+like\":\"%.example.com\"}}}");
  assert_int_equal(tq_lib_collection_put(lib, "crit", &q, 1, &err), TQ_OK);
  tq_query_free(&q);
  assert_int_equal(tq_lib_collection_get(lib, "crit", &q, &err), TQ_OK);
  assert_non_null(q.criteria);
  int64_t count = 0;
  assert_int_equal(tq_lib_query_count(lib, &q, &count, &err), TQ_OK);
  assert_int_equal(count, 2);
  tq_cursor *cur = NULL;
  assert_int_equal(tq_lib_cursor_open(lib, &q, 0, &cur, &err), TQ_OK);
  size_t got = 0;
  int64_t walk[4];
  assert_int_equal(tq_lib_cursor_next(cur, walk, 1, &got, &err), TQ_OK);
  assert_int_equal(got, 1);
  assert_int_equal(walk[0], a);
  assert_int_equal(tq_lib_cursor_next(cur, walk, 4, &got, &err), TQ_OK);
  assert_int_equal(got, 1);
  assert_int_equal(walk[0], b);
  tq_lib_cursor_close(cur);
  /* Criteria and flat fields together: AND. */
  q.tag = strdup("t1");
  assert_int_equal(tq_lib_query_count(lib, &q, &count, &err), TQ_OK);
  assert_int_equal(count, 1);
  tq_query_free(&q);
  /* A collection with bad criteria is refused, naming the path. */
  q.criteria = strdup("{\"criteria\":{\"nope\":1}}");
  assert_int_equal(tq_lib_collection_put(lib, "bad", &q, 1, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "criteria.nope"));
  tq_query_free(&q);
  tq_lib_close(lib);
}

/* ---- score terms told to the planner ----------------------------------------------------------
 * A page query wraps each score comparison that few objects pass in likelihood(term, share)
 * (so that SQLite reads them from objects_score): the pages must be exactly those of the plain
 * query, for sparse, middling and wide comparisons, inside +or, with every sort. */
#define PLAN_N 12000
static int plan_score[PLAN_N + 1];
static char plan_value[PLAN_N + 1][24];
static int plan_sort_key; /* 0 id, 1 -id, 2 value, 3 -score */

static int plan_cmp(const void *x, const void *y) {
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  switch (plan_sort_key) {
  case 1: return a < b ? 1 : a > b ? -1 : 0;
  case 2: {
    int c = strcmp(plan_value[a], plan_value[b]);
    return c ? c : (a > b) - (a < b);
  }
  case 3:
    if (plan_score[a] != plan_score[b])
      return plan_score[a] < plan_score[b] ? 1 : -1;
    return a < b ? 1 : a > b ? -1 : 0;
  default: return (a > b) - (a < b);
  }
}

/* Every page of doc (limit 700) against the objects pass() says match, sorted by sort. */
static void plan_check(tq_lib *lib, const char *doc, int (*pass)(int64_t), int key) {
  static const char *const SORT[] = {NULL, "-id", "value", "-score"};
  static int64_t want[PLAN_N], got[PLAN_N];
  size_t nw = 0, ng = 0;
  for (int64_t id = 1; id <= PLAN_N; id++)
    if (pass(id))
      want[nw++] = id;
  plan_sort_key = key;
  qsort(want, nw, sizeof *want, plan_cmp);
  tq_criteria *c = compile_ok(doc);
  tq_err err;
  int64_t total = -1;
  for (int64_t off = 0;; off += 700) {
    int64_t *ids = NULL;
    size_t n = 0;
    if (tq_lib_criteria_ids(lib, c, NULL, SORT[key], 0, 700, off, &ids, &n, off ? NULL : &total,
                            &err) != TQ_OK)
      fail_msg("%s: %s", doc, err.msg);
    for (size_t i = 0; i < n && ng < PLAN_N; i++)
      got[ng++] = ids[i];
    free(ids);
    if (n < 700)
      break;
  }
  tq_criteria_free(c);
  if (total != (int64_t)nw || ng != nw)
    fail_msg("%s sort %s: %zu objects (count %lld), expected %zu", doc,
             SORT[key] ? SORT[key] : "id", ng, (long long)total, nw);
  for (size_t i = 0; i < nw; i++)
    if (got[i] != want[i])
      fail_msg("%s sort %s: [%zu] is %lld, expected %lld", doc, SORT[key] ? SORT[key] : "id", i,
               (long long)got[i], (long long)want[i]);
}

static int p_sparse(int64_t id) { return plan_score[id] >= 8; }
static int p_middle(int64_t id) { return plan_score[id] >= 3 && plan_score[id] <= 8; }
static int p_wide(int64_t id) { return plan_score[id] <= 3; }
static int p_or(int64_t id) {
  return plan_score[id] == 9 || strcmp(plan_value[id], "10.0.0.7") == 0;
}
static int p_two(int64_t id) { return plan_score[id] > 2 && plan_score[id] < 4 && id > 11000; }
static int p_all(int64_t id) { return id > 0; }
static int p_few_low(int64_t id) { return id % 1000 == 0 && plan_score[id] <= 3; }
static int p_many(int64_t id) { return id % 1000 != 0; }
static int p_few_or_9(int64_t id) { return id % 1000 == 0 || plan_score[id] == 9; }
static int p_many_sparse(int64_t id) { return id % 1000 != 0 && plan_score[id] >= 8; }
static int p_none(int64_t id) { return id < 0; }
static int p_severe_sparse(int64_t id) { return id % 3 == 0 && plan_score[id] >= 8; }
static int p_rare(int64_t id) { return id % 1000 == 500; }
static int p_any_attr_low(int64_t id) { return id % 3 != 0; }

static void test_score_terms_planned(void **state) {
  (void)state;
  tq_lib *lib = NULL;
  tq_err err;
  assert_int_equal(tq_lib_open(":memory:", TQ_LIB_OPEN_CREATE, &lib, &err), TQ_OK);
  for (int i = 1; i <= PLAN_N; i++) {
    snprintf(plan_value[i], sizeof plan_value[i], "10.0.%d.%d", i / 250, i % 250);
    /* every object from S1 (a large set), 12 tagged "few", the others "many" */
    assert_int_equal(put(lib, plan_value[i], "S1", i % 1000 == 0 ? "few" : "many"), i);
    /* 12 objects of 9 (the last ids), 6,000 of 3, the rest 0 */
    plan_score[i] = i % 1000 == 999 ? 9 : i % 2 == 0 ? 3 : 0;
    if (plan_score[i])
      assert_int_equal(tq_lib_score_set(lib, i, plan_score[i], &err), TQ_OK);
    /* an attribute on all (Severity: high on every third), a rare one on 12 */
    tq_attr_in at = {.name = "Severity", .value = i % 3 == 0 ? "high" : "low"};
    assert_int_equal(tq_lib_attribute_add(lib, i, &at, &err), TQ_OK);
    if (i % 1000 == 500) {
      tq_attr_in rare = {.name = "Rare", .value = "yes"};
      assert_int_equal(tq_lib_attribute_add(lib, i, &rare, &err), TQ_OK);
    }
  }
  for (int key = 0; key < 4; key++) {
    plan_check(lib, "{\"criteria\":{\"score\":{\"+gte\":8}}}", p_sparse, key);
    plan_check(lib, "{\"criteria\":{\"score\":{\"+gte\":3,\"+lte\":8}}}", p_middle, key);
    plan_check(lib, "{\"criteria\":{\"score\":{\"+lte\":3}}}", p_wide, key);
    plan_check(lib, "{\"criteria\":{\"+or\":[{\"score\":9},{\"value\":\"10.0.0.7\"}]}}", p_or, key);
    plan_check(lib,
               "{\"criteria\":{\"score\":{\"+gt\":2.5,\"+lt\":4}},\"filters\":{\"id\":{\"+gt\":"
               "11000}}}",
               p_two, key);
    plan_check(lib, "{\"criteria\":{\"source\":\"S1\"}}", p_all, key);
    plan_check(lib, "{\"criteria\":{\"+and\":[{\"score\":{\"+gte\":8}},{\"source\":\"S1\"}]}}",
               p_sparse, key);
    plan_check(lib, "{\"criteria\":{\"+and\":[{\"tag\":\"few\"},{\"score\":{\"+lte\":3}}]}}",
               p_few_low, key);
    plan_check(lib, "{\"criteria\":{\"tag\":[\"many\",\"nope\"]}}", p_many, key);
    plan_check(lib, "{\"criteria\":{\"+or\":[{\"tag\":\"few\"},{\"score\":9}]}}", p_few_or_9, key);
    plan_check(lib,
               "{\"criteria\":{\"+and\":[{\"tag\":{\"+like\":\"ma%\"}},{\"source\":\"S1\"},"
               "{\"score\":{\"+gt\":7}}]}}",
               p_many_sparse, key);
    plan_check(lib, "{\"criteria\":{\"source\":{\"+not\":\"S1\"}}}", p_none, key);
    plan_check(
        lib,
        "{\"criteria\":{\"+and\":[{\"attribute\":{\"name\":\"Severity\",\"value\":\"high\"}},"
        "{\"score\":{\"+gte\":8}}]}}",
        p_severe_sparse, key);
    plan_check(lib, "{\"criteria\":{\"attribute\":\"Rare\"}}", p_rare, key);
    plan_check(lib, "{\"criteria\":{\"attribute\":{\"value\":[\"low\",\"none\"]}}}", p_any_attr_low,
               key);
  }
  tq_lib_close(lib);
}

static void explain_matches(tq_lib *lib, int64_t id, double want) {
  tq_score_explain x;
  tq_err err;
  assert_int_equal(tq_lib_score_explain(lib, id, &x, &err), TQ_OK);
  double sum = 0;
  for (size_t i = 0; i < x.n_terms; i++)
    sum += x.terms[i].delta;
  if (sum != x.stored || x.generated != x.stored || x.stored != want)
    fail_msg("object %lld: terms sum %g, computed %g, stored %g, expected %g", (long long)id, sum,
             x.generated, x.stored, want);
  tq_score_explain_free(&x);
}

static void test_score_explained(void **state) {
  (void)state;
  tq_lib *lib = NULL;
  tq_err err;
  assert_int_equal(tq_lib_open(":memory:", TQ_LIB_OPEN_CREATE, &lib, &err), TQ_OK);
  tq_source_opts o;
  tq_source_opts_init(&o);
  o.score = 6;
  o.revoked_decrease = 4;
  assert_int_equal(tq_lib_source_put(lib, "Six", &o, 1, NULL, &err), TQ_OK);
  o.score = 9;
  o.revoked_decrease = 0;
  assert_int_equal(tq_lib_source_put(lib, "Nine", &o, 1, NULL, &err), TQ_OK);
  assert_int_equal(tq_lib_score_rule_put(lib, "Severity", "high", 2.5, &err), TQ_OK);
  assert_int_equal(tq_lib_score_rule_put(lib, "Noise", NULL, -1.25, &err), TQ_OK);
  int64_t plain = put(lib, "10.0.0.1", "Six", NULL);
  int64_t ruled = put(lib, "10.0.0.2", "Six", NULL);
  tq_attr_in sev = {"Severity", "high", NULL, 0}, noise = {"Noise", "x", NULL, 0},
             rev = {"Revoked", "true", "Six", 0};
  assert_int_equal(tq_lib_attribute_add(lib, ruled, &sev, &err), TQ_OK);
  assert_int_equal(tq_lib_attribute_add(lib, ruled, &noise, &err), TQ_OK);
  int64_t revoked = put(lib, "10.0.0.3", "Six", NULL);
  assert_int_equal(tq_lib_attribute_add(lib, revoked, &rev, &err), TQ_OK);
  assert_int_equal(tq_lib_attribute_add(lib, revoked, &noise, &err), TQ_OK);
  int64_t clamped = put(lib, "10.0.0.4", "Nine", NULL);
  put(lib, "10.0.0.4", "Six", NULL);
  assert_int_equal(tq_lib_attribute_add(lib, clamped, &sev, &err), TQ_OK);
  int64_t none = 0;
  tq_object_in in = {0};
  in.value = "10.0.0.5";
  assert_int_equal(tq_lib_object_put(lib, &in, &none, NULL, &err), TQ_OK);
  explain_matches(lib, plain, 6);
  explain_matches(lib, ruled, 6 + 2.5 - 1.25);
  explain_matches(lib, revoked, 6 - 1.25 - 4);
  explain_matches(lib, clamped, 10);
  explain_matches(lib, none, 0);
  tq_score_explain x;
  assert_int_equal(tq_lib_score_explain(lib, clamped, &x, &err), TQ_OK);
  assert_int_equal(x.n_terms, 4); /* Nine (counted), Six (not), Severity=high, clamp */
  assert_string_equal(x.terms[0].name, "Nine");
  assert_true(x.terms[0].counted && !x.terms[1].counted);
  assert_string_equal(x.terms[3].kind, "clamp");
  tq_score_explain_free(&x);
  assert_int_equal(tq_lib_score_explain(lib, 999, &x, &err), TQ_ENOTFOUND);
  tq_lib_close(lib);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sql_shape_and_parameters),
      cmocka_unit_test(test_values_never_reach_the_sql),
      cmocka_unit_test(test_refusals_name_the_path),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_canonical_ignores_order_and_spacing),
      cmocka_unit_test(test_against_a_library),
      cmocka_unit_test(test_score_explained),
      cmocka_unit_test(test_score_terms_planned),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
