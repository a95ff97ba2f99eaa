/* test_taxii.c: the TAXII 2.1 client (src/taxii) against the in-test server of
 * test_taxii_server.h: discovery and collections, the Accept header and Basic auth, clear
 * errors for 401 and 406, and the polling pass: ties across pages (with and without `next`),
 * an expired cursor, a server that repeats its cursor, the page cap, a garbled page, and the
 * timestamps sent as added_after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_taxii_server.h"
#include "tqhost/taxii.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static void add_indicators(int n, int first_second, int per_date) {
  for (int i = 0; i < n; i++) {
    char json[512];
    snprintf(json, sizeof json,
             "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--00000000-0000-"
             "4000-8000-%012d\",\"created\":\"2024-05-01T00:00:00.000Z\",\"modified\":\"2024-05-"
             "01T00:00:00.000Z\",\"pattern\":\"[ipv4-addr:value = '10.0.%d.%d']\",\"pattern_"
             "type\":\"stix\",\"valid_from\":\"2024-05-01T00:00:00Z\"}",
             (int)TS.n, (int)(TS.n / 250), (int)(TS.n % 250));
    ts_add(ts_date(first_second + i / per_date, 0), json);
  }
}

typedef struct seen_ids {
  char ids[2000][64];
  size_t n, total;
  char last_checkpoint[TQ_TAXII_TIME_LEN];
} seen_ids;

static tq_code collect(void *ud, const tq_stix_page *page, const char *checkpoint, tq_err *err) {
  (void)err;
  seen_ids *s = ud;
  for (size_t i = 0; i < page->n_objects; i++) {
    s->total++;
    size_t k = 0;
    while (k < s->n && strcmp(s->ids[k], page->objects[i].id) != 0)
      k++;
    if (k == s->n)
      snprintf(s->ids[s->n++], 64, "%s", page->objects[i].id);
  }
  snprintf(s->last_checkpoint, sizeof s->last_checkpoint, "%s", checkpoint);
  return TQ_OK;
}

typedef struct fixture {
  tq_net *net;
  tq_taxii *t;
  tq_taxii_collection col;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  tq_err err;
  ts_reset();
  if (tq_net_new(NULL, &f->net, &err) != TQ_OK)
    return -1;
  tq_taxii_opts o;
  tq_taxii_opts_init(&o);
  o.discovery_url = ts_discovery();
  o.retry_max = 0;
  if (tq_taxii_new(f->net, "test", &o, &f->t, &err) != TQ_OK)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tq_taxii_collection_clear(&f->col);
  tq_taxii_free(f->t);
  tq_net_free(f->net);
  free(f);
  ts_reset();
  return 0;
}

static const char *objects_url(fixture *f) {
  tq_err err;
  if (f->col.objects_url == NULL)
    assert_int_equal(tq_taxii_find_collection(f->t, TS_COLL_ID, &f->col, &err), TQ_OK);
  return f->col.objects_url;
}

static tq_code run_pass(fixture *f, tq_taxii_pass_opts *o, seen_ids *s, tq_taxii_pass_result *res,
                        tq_err *err) {
  return tq_taxii_pass(f->t, objects_url(f), o, collect, s, res, err);
}

/* ---- discovery and errors ------------------------------------------------------------------- */

static void test_discovery_resolves_relative_api_root(void **state) {
  fixture *f = *state;
  char **roots = NULL;
  size_t n = 0;
  tq_err err;
  assert_int_equal(tq_taxii_discover(f->t, &roots, &n, &err), TQ_OK);
  assert_int_equal(n, 1);
  char want[128];
  snprintf(want, sizeof want, "http://127.0.0.1:%u/api1/", TS.port);
  assert_string_equal(roots[0], want);
  free(roots[0]);
  free(roots);
  assert_string_equal(TS.last_accept, TQ_TAXII_MEDIA_TYPE);
}

static void test_collection_found_by_title_or_id(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_taxii_collection c;
  assert_int_equal(tq_taxii_find_collection(f->t, "test collection", &c, &err), TQ_OK);
  assert_string_equal(c.id, TS_COLL_ID);
  assert_non_null(strstr(c.objects_url, "/api1/collections/" TS_COLL_ID "/objects/"));
  tq_taxii_collection_clear(&c);
  assert_int_equal(tq_taxii_find_collection(f->t, "nope", &c, &err), TQ_ENOTFOUND);
  assert_non_null(strstr(err.msg, TS_COLL_TITLE)); /* says what the server offers */
}

static void test_wrong_credentials_are_a_clear_401(void **state) {
  fixture *f = *state;
  TS.user = "alice";
  TS.pass = "secret";
  tq_err err;
  tq_taxii_collection c;
  assert_int_equal(tq_taxii_find_collection(f->t, TS_COLL_ID, &c, &err), TQ_EDENIED);
  assert_non_null(strstr(err.msg, "401"));
  assert_non_null(strstr(err.msg, "/taxii2/"));
  assert_non_null(strstr(err.msg, "password"));
  /* The same server with the right Basic credentials. */
  tq_taxii_opts o;
  tq_taxii_opts_init(&o);
  o.discovery_url = ts_discovery();
  o.username = "alice";
  o.password = "secret";
  tq_taxii *t = NULL;
  assert_int_equal(tq_taxii_new(f->net, "auth", &o, &t, &err), TQ_OK);
  assert_int_equal(tq_taxii_find_collection(t, TS_COLL_ID, &c, &err), TQ_OK);
  tq_taxii_collection_clear(&c);
  tq_taxii_free(t);
}

static void test_wrong_media_type_is_a_clear_406(void **state) {
  fixture *f = *state;
  TS.only_taxii20 = 1;
  tq_err err;
  tq_taxii_collection c;
  assert_int_equal(tq_taxii_find_collection(f->t, TS_COLL_ID, &c, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "406"));
  assert_non_null(strstr(err.msg, "TAXII 2.1"));
  assert_non_null(strstr(err.msg, "Media type not acceptable")); /* the server's own words */
}

static void test_timestamps_are_normalised_to_microseconds(void **state) {
  (void)state;
  char out[TQ_TAXII_TIME_LEN];
  tq_err err;
  assert_int_equal(tq_taxii_time_norm("2024-05-01T10:00:00+00:00", 0, out, &err), TQ_OK);
  assert_string_equal(out, "2024-05-01T10:00:00.000000Z");
  assert_int_equal(tq_taxii_time_norm("2024-05-01T10:00:00.123456789Z", 0, out, &err), TQ_OK);
  assert_string_equal(out, "2024-05-01T10:00:00.123456Z");
  assert_int_equal(tq_taxii_time_norm("2024-05-01T00:00:00Z", 1, out, &err), TQ_OK);
  assert_string_equal(out, "2024-04-30T23:59:59.999999Z");
  assert_int_not_equal(tq_taxii_time_norm("undefined", 0, out, &err), TQ_OK);
}

/* ---- the pass ------------------------------------------------------------------------------ */

static void test_ties_across_pages_with_next_lose_nothing(void **state) {
  fixture *f = *state;
  add_indicators(25, 10, 25); /* all 25 share one date_added */
  tq_taxii_pass_opts o;
  tq_taxii_pass_opts_init(&o);
  o.limit = 10;
  seen_ids *s = calloc(1, sizeof *s);
  tq_taxii_pass_result res;
  tq_err err;
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_OK);
  assert_true(res.complete);
  assert_int_equal(res.pages, 3);
  assert_int_equal(s->n, 25);
  assert_string_equal(res.checkpoint, ts_date(10, 0));
  free(s);
}

static void test_ties_without_next_lose_nothing_and_do_not_loop(void **state) {
  fixture *f = *state;
  TS.no_next = 1;             /* the client must page by added_after = Date-Added-Last */
  add_indicators(12, 10, 4);  /* 3 dates of 4 */
  add_indicators(25, 20, 25); /* a tie bigger than the page */
  tq_taxii_pass_opts o;
  tq_taxii_pass_opts_init(&o);
  o.limit = 5;
  seen_ids *s = calloc(1, sizeof *s);
  tq_taxii_pass_result res;
  tq_err err;
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_OK);
  assert_true(res.complete);
  assert_int_equal(s->n, 37);
  assert_true(s->total >= 37);    /* ties are sent again and deduplicated by the caller */
  assert_true(TS.last_limit > 5); /* it grew to get past the tie */
  free(s);
}

static void test_tie_larger_than_any_page_fails_naming_the_date(void **state) {
  fixture *f = *state;
  TS.no_next = 1;
  TS.max_page = 5; /* the server caps every page: the tie of 12 can never be passed */
  add_indicators(12, 10, 12);
  tq_taxii_pass_opts o;
  tq_taxii_pass_opts_init(&o);
  o.limit = 5;
  o.limit_max = 20;
  seen_ids *s = calloc(1, sizeof *s);
  tq_taxii_pass_result res;
  tq_err err;
  /* Not a quiet stop: the objects of the tie past the first page would be lost for good. */
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_ELIMIT);
  assert_false(res.complete);
  assert_non_null(strstr(err.msg, "no progress"));
  assert_non_null(strstr(err.msg, ts_date(10, 0))); /* names the date_added */
  assert_true(res.pages < 10);
  assert_int_equal(s->n, 5); /* the pages before the failure were handed over */
  free(s);
}

static void test_expired_cursor_restarts_from_checkpoint(void **state) {
  fixture *f = *state;
  add_indicators(30, 10, 1);
  TS.expire_next_after = 2; /* the cursor of page 3 has expired */
  tq_taxii_pass_opts o;
  tq_taxii_pass_opts_init(&o);
  o.limit = 10;
  seen_ids *s = calloc(1, sizeof *s);
  tq_taxii_pass_result res;
  tq_err err;
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_OK);
  assert_true(res.complete);
  assert_int_equal(res.restarts, 1);
  assert_int_equal(s->n, 30);
  assert_string_equal(res.checkpoint, ts_date(39, 0));
  free(s);
}

static void test_constant_next_like_medallion_walks_every_page(void **state) {
  fixture *f = *state;
  TS.medallion = 1;          /* one next value for every page of the walk */
  add_indicators(95, 10, 7); /* ties of 7: groups that share date_added cross page edges */
  tq_taxii_pass_opts o;
  tq_taxii_pass_opts_init(&o);
  o.limit = 10;
  seen_ids *s = calloc(1, sizeof *s);
  tq_taxii_pass_result res;
  tq_err err;
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_OK);
  assert_true(res.complete);
  assert_string_equal(res.stopped, "");
  assert_int_equal(res.pages, 10);
  assert_int_equal(s->n, 95);
  assert_int_equal(s->total, 95);
  assert_string_equal(res.checkpoint, ts_date(10 + 94 / 7, 0));
  free(s);
}

static void test_same_next_again_stops_the_pass(void **state) {
  fixture *f = *state;
  add_indicators(30, 10, 1);
  TS.same_next = 1;
  tq_taxii_pass_opts o;
  tq_taxii_pass_opts_init(&o);
  o.limit = 10;
  seen_ids *s = calloc(1, sizeof *s);
  tq_taxii_pass_result res;
  tq_err err;
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_OK);
  assert_false(res.complete);
  assert_non_null(strstr(res.stopped, "same"));
  assert_int_equal(res.pages, 2);
  free(s);
}

static void test_page_cap_stops_with_the_checkpoint_kept(void **state) {
  fixture *f = *state;
  add_indicators(30, 10, 1);
  tq_taxii_pass_opts o;
  tq_taxii_pass_opts_init(&o);
  o.limit = 10;
  o.max_pages = 2;
  seen_ids *s = calloc(1, sizeof *s);
  tq_taxii_pass_result res;
  tq_err err;
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_OK);
  assert_false(res.complete);
  assert_non_null(strstr(res.stopped, "cap"));
  assert_string_equal(res.checkpoint, ts_date(29, 0));
  /* The next pass from that checkpoint gets the rest (and the last of page 2 again). */
  char cp[TQ_TAXII_TIME_LEN];
  memcpy(cp, res.checkpoint, sizeof cp); /* res is rewritten by the next pass */
  o.checkpoint = cp;
  o.max_pages = 0;
  memset(s, 0, sizeof *s);
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_OK);
  assert_true(res.complete);
  assert_int_equal(s->n, 11);
  free(s);
}

static void test_added_after_is_checkpoint_minus_overlap_in_taxii_form(void **state) {
  fixture *f = *state;
  add_indicators(3, 10, 1);
  tq_taxii_pass_opts o;
  tq_taxii_pass_opts_init(&o);
  o.checkpoint = "2024-05-01T00:00:12+00:00";
  o.overlap_us = 2000000;
  seen_ids *s = calloc(1, sizeof *s);
  tq_taxii_pass_result res;
  tq_err err;
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_OK);
  assert_string_equal(TS.last_after, "2024-05-01T00:00:10.000000Z");
  assert_int_equal(s->n, 2); /* the objects of seconds 11 and 12 are after 10 */
  o.overlap_us = 0; /* even without overlap, 1 us is taken off: the tie at 12 comes again */
  memset(s, 0, sizeof *s);
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_OK);
  assert_string_equal(TS.last_after, "2024-05-01T00:00:11.999999Z");
  assert_int_equal(s->n, 1);
  free(s);
}

static void test_garbled_page_is_asked_again(void **state) {
  fixture *f = *state;
  add_indicators(20, 10, 1);
  TS.garbled_page = 2;
  tq_taxii_pass_opts o;
  tq_taxii_pass_opts_init(&o);
  o.limit = 10;
  seen_ids *s = calloc(1, sizeof *s);
  tq_taxii_pass_result res;
  tq_err err;
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_OK);
  assert_true(res.complete);
  assert_int_equal(s->n, 20);
  free(s);
}

static void test_match_type_filters_on_the_server(void **state) {
  fixture *f = *state;
  add_indicators(3, 10, 1);
  ts_add(ts_date(20, 0), "{\"type\":\"malware\",\"spec_version\":\"2.1\",\"id\":\"malware--"
                         "00000000-0000-4000-8000-000000000099\",\"created\":\"2024-05-01T00:"
                         "00:00.000Z\",\"modified\":\"2024-05-01T00:00:00.000Z\",\"name\":\"x\","
                         "\"is_family\":true}");
  tq_taxii_pass_opts o;
  tq_taxii_pass_opts_init(&o);
  o.match_type = "malware";
  seen_ids *s = calloc(1, sizeof *s);
  tq_taxii_pass_result res;
  tq_err err;
  assert_int_equal(run_pass(f, &o, s, &res, &err), TQ_OK);
  assert_int_equal(s->n, 1);
  assert_non_null(strstr(s->ids[0], "malware--"));
  free(s);
}

int main(void) {
  if (ts_start() != 0)
    return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_discovery_resolves_relative_api_root),
      T(test_collection_found_by_title_or_id),
      T(test_wrong_credentials_are_a_clear_401),
      T(test_wrong_media_type_is_a_clear_406),
      T(test_timestamps_are_normalised_to_microseconds),
      T(test_ties_across_pages_with_next_lose_nothing),
      T(test_ties_without_next_lose_nothing_and_do_not_loop),
      T(test_tie_larger_than_any_page_fails_naming_the_date),
      T(test_expired_cursor_restarts_from_checkpoint),
      T(test_constant_next_like_medallion_walks_every_page),
      T(test_same_next_again_stops_the_pass),
      T(test_page_cap_stops_with_the_checkpoint_kept),
      T(test_added_after_is_checkpoint_minus_overlap_in_taxii_form),
      T(test_garbled_page_is_asked_again),
      T(test_match_type_filters_on_the_server),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_stop();
  return rc;
}
