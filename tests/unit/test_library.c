/* test_library.c: the threat library as a user of its C API sees it: identity and merging,
 * scoring and expiration rules case by case, collections and cursors, and safe opening. */
#include <fcntl.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h> /* after the headers it needs */

#include "tqhost/library.h"

#define DAY 86400

typedef struct fixture {
  char path[64];
  tq_lib *lib;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->path, sizeof f->path, "/tmp/tq_test_lib_%d.db", (int)getpid());
  unlink(f->path);
  tq_err err;
  if (tq_lib_open(f->path, TQ_LIB_OPEN_CREATE, &f->lib, &err) != TQ_OK) {
    fprintf(stderr, "open: %s\n", err.msg);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tq_lib_close(f->lib);
  char p[80];
  unlink(f->path);
  snprintf(p, sizeof p, "%s-wal", f->path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", f->path);
  unlink(p);
  free(f);
  return 0;
}

static void source(tq_lib *lib, const char *name, int score, int expire_days, int revoked) {
  tq_source_opts o;
  tq_source_opts_init(&o);
  o.score = score;
  o.expire_days = expire_days;
  o.revoked_decrease = revoked;
  tq_err err;
  assert_int_equal(tq_lib_source_put(lib, name, &o, 0, NULL, &err), TQ_OK);
}

/* Puts value reported by src at time `at` with optional attributes; returns its id. */
static int64_t put(tq_lib *lib, const char *value, const char *src, int64_t at,
                   const tq_attr_in *attrs, size_t n_attrs) {
  const char *srcs[1] = {src};
  tq_object_in in = {.value = value,
                     .sources = srcs,
                     .n_sources = src ? 1 : 0,
                     .attrs = attrs,
                     .n_attrs = n_attrs,
                     .reported_at = at};
  int64_t id = 0;
  tq_err err;
  tq_code rc = tq_lib_object_put(lib, &in, &id, NULL, &err);
  if (rc != TQ_OK)
    fail_msg("put %s: %s", value, err.msg);
  return id;
}

static tq_object *get(tq_lib *lib, int64_t id) {
  tq_object *o = NULL;
  tq_err err;
  assert_int_equal(tq_lib_object_get(lib, id, &o, &err), TQ_OK);
  return o;
}

static int score_of(tq_lib *lib, int64_t id) {
  tq_object *o = get(lib, id);
  int s = o->score;
  tq_object_free(o);
  return s;
}

static int64_t expiry_of(tq_lib *lib, int64_t id) {
  tq_object *o = get(lib, id);
  int64_t e = o->expires_at;
  tq_object_free(o);
  return e;
}

/* ---- identity ---- */

/* A second open of the library in the same process (the bulk runner's writer opens one) must
 * not drop the first connection's locks: a close() of any descriptor of the file releases every
 * POSIX lock the process holds on it, and another process (a `tqhost action runs`, the sqlite3
 * shell) would then take the WAL for unused, checkpoint it and delete it under the writer. */
static void test_a_second_open_keeps_the_first_ones_locks(void **state) {
  fixture *f = *state;
  tq_err err;
  assert_int_equal(tq_lib_source_ensure(f->lib, "Locks", "user", NULL, &err), TQ_OK);
  tq_lib *second = NULL;
  assert_int_equal(tq_lib_open(f->path, TQ_LIB_OPEN_EXISTING, &second, &err), TQ_OK);
  pid_t pid = fork();
  if (pid == 0) { /* another process asks whether it could lock the whole file */
    int fd = open(f->path, O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    _exit(fd >= 0 && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK ? 0 : 1);
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  tq_lib_close(second);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0); /* 1: nobody holds a lock on the library any more */
}

static void test_same_indicator_spelled_differently_merges(void **state) {
  fixture *f = *state;
  int64_t a = put(f->lib, "Example.COM", "A", 0, NULL, 0);
  int64_t b = put(f->lib, "example[.]com", "B", 0, NULL, 0);
  assert_int_equal(a, b);
  tq_object *o = get(f->lib, a);
  assert_string_equal(o->value, "example.com");
  assert_string_equal(o->indicator_type, "FQDN");
  assert_int_equal(o->n_sources, 2);
  tq_object_free(o);
}

static void test_invalid_value_is_refused_with_reason(void **state) {
  fixture *f = *state;
  const char *srcs[1] = {"A"};
  tq_object_in in = {.value = "1.2.3.999", .sources = srcs, .n_sources = 1};
  tq_err err;
  assert_int_equal(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "999"));
  int64_t n = -1;
  assert_int_equal(tq_lib_count(f->lib, "indicator", &n, &err), TQ_OK);
  assert_int_equal(n, 0);
}

static void test_explicit_type_must_be_a_threatq_name(void **state) {
  fixture *f = *state;
  tq_object_in in = {.value = "x", .indicator_type = "IPAddress"};
  tq_err err;
  assert_int_equal(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "IPAddress"));
  tq_object_in ok = {.value = "evil.exe", .indicator_type = "filename"};
  int64_t id = 0;
  assert_int_equal(tq_lib_object_put(f->lib, &ok, &id, NULL, &err), TQ_OK);
  tq_object *o = get(f->lib, id);
  assert_string_equal(o->indicator_type, "Filename");
  assert_string_equal(o->indicator_class, "host");
  tq_object_free(o);
}

/* ---- scoring ---- */

static void test_score_is_the_highest_source_sensitivity(void **state) {
  fixture *f = *state;
  source(f->lib, "low", 3, TQ_UNSET, TQ_UNSET);
  source(f->lib, "high", 7, TQ_UNSET, TQ_UNSET);
  int64_t id = put(f->lib, "10.0.0.1", "low", 0, NULL, 0);
  assert_int_equal(score_of(f->lib, id), 3);
  put(f->lib, "10.0.0.1", "high", 0, NULL, 0);
  assert_int_equal(score_of(f->lib, id), 7);
}

static void test_attribute_rules_add_deltas_and_clamp(void **state) {
  fixture *f = *state;
  tq_err err;
  source(f->lib, "s", 7, TQ_UNSET, TQ_UNSET);
  assert_int_equal(tq_lib_score_rule_put(f->lib, "Confidence", "high", 2, &err), TQ_OK);
  assert_int_equal(tq_lib_score_rule_put(f->lib, "Malware Family", NULL, 3, &err), TQ_OK);
  tq_attr_in conf = {.name = "Confidence", .value = "high"};
  int64_t id = put(f->lib, "10.0.0.2", "s", 0, &conf, 1);
  assert_int_equal(score_of(f->lib, id), 9);
  tq_attr_in fam = {.name = "Malware Family", .value = "Emotet"};
  put(f->lib, "10.0.0.2", "s", 0, &fam, 1);
  assert_int_equal(score_of(f->lib, id), 10); /* 7 + 2 + 3 clamped */
  assert_int_equal(tq_lib_score_rule_put(f->lib, "Benign", NULL, -10, &err), TQ_OK);
  tq_attr_in benign = {.name = "Benign", .value = "yes"};
  put(f->lib, "10.0.0.2", "s", 0, &benign, 1);
  assert_int_equal(score_of(f->lib, id), 2); /* 7 + 2 + 3 - 10 */
}

static void test_new_rule_rescores_existing_objects(void **state) {
  fixture *f = *state;
  tq_err err;
  source(f->lib, "s", 4, TQ_UNSET, TQ_UNSET);
  tq_attr_in a = {.name = "Category", .value = "c2"};
  int64_t id = put(f->lib, "10.0.0.3", "s", 0, &a, 1);
  assert_int_equal(score_of(f->lib, id), 4);
  assert_int_equal(tq_lib_score_rule_put(f->lib, "Category", "c2", 3, &err), TQ_OK);
  assert_int_equal(score_of(f->lib, id), 7);
}

static void test_manual_score_overrides_until_cleared(void **state) {
  fixture *f = *state;
  tq_err err;
  source(f->lib, "s", 6, TQ_UNSET, TQ_UNSET);
  int64_t id = put(f->lib, "10.0.0.4", "s", 0, NULL, 0);
  assert_int_equal(tq_lib_score_set(f->lib, id, 1, &err), TQ_OK);
  assert_int_equal(score_of(f->lib, id), 1);
  put(f->lib, "10.0.0.4", "s", 0, NULL, 0); /* a re-report does not undo it */
  assert_int_equal(score_of(f->lib, id), 1);
  assert_int_equal(tq_lib_score_set(f->lib, id, -1, &err), TQ_OK);
  assert_int_equal(score_of(f->lib, id), 6);
  assert_int_equal(tq_lib_score_set(f->lib, id, 11, &err), TQ_EINVAL);
}

static void test_revoked_applies_the_sources_decrease(void **state) {
  fixture *f = *state;
  source(f->lib, "feed", 5, TQ_UNSET, 3);
  source(f->lib, "other", 4, TQ_UNSET, 8);
  int64_t id = put(f->lib, "10.0.0.5", "feed", 0, NULL, 0);
  assert_int_equal(score_of(f->lib, id), 5);
  tq_attr_in rev = {.name = "Revoked", .value = "true"};
  put(f->lib, "10.0.0.5", "feed", 0, &rev, 1);
  assert_int_equal(score_of(f->lib, id), 2); /* 5 - feed's 3 */
  tq_attr_in rev2 = {.name = "Revoked", .value = "true", .source = "other"};
  put(f->lib, "10.0.0.5", "other", 0, &rev2, 1);
  assert_int_equal(score_of(f->lib, id), 0); /* 5 - 3 - 8 clamped */
}

static void test_source_change_rescores_its_objects(void **state) {
  fixture *f = *state;
  source(f->lib, "s", 2, TQ_UNSET, TQ_UNSET);
  int64_t id = put(f->lib, "10.0.0.6", "s", 0, NULL, 0);
  assert_int_equal(score_of(f->lib, id), 2);
  source(f->lib, "s", 8, TQ_UNSET, TQ_UNSET);
  assert_int_equal(score_of(f->lib, id), 8);
}

/* ---- expiration ---- */

static void test_no_policy_never_expires(void **state) {
  fixture *f = *state;
  int64_t id = put(f->lib, "10.1.0.1", "nopolicy", 1000000, NULL, 0);
  assert_int_equal(expiry_of(f->lib, id), 0);
}

static void test_policy_sets_date_from_report(void **state) {
  fixture *f = *state;
  source(f->lib, "d30", TQ_UNSET, 30, TQ_UNSET);
  int64_t t0 = 1700000000;
  int64_t id = put(f->lib, "10.1.0.2", "d30", t0, NULL, 0);
  assert_int_equal(expiry_of(f->lib, id), t0 + 30 * DAY);
}

static void test_latest_date_wins_across_sources(void **state) {
  fixture *f = *state;
  source(f->lib, "d30", TQ_UNSET, 30, TQ_UNSET);
  source(f->lib, "d10", TQ_UNSET, 10, TQ_UNSET);
  int64_t t0 = 1700000000;
  int64_t id = put(f->lib, "10.1.0.3", "d30", t0, NULL, 0);
  /* d10 reports 5 days later: t0+15d < t0+30d, the later date stays */
  put(f->lib, "10.1.0.3", "d10", t0 + 5 * DAY, NULL, 0);
  assert_int_equal(expiry_of(f->lib, id), t0 + 30 * DAY);
  /* d10 reports again 25 days later: t0+35d is now the latest */
  put(f->lib, "10.1.0.3", "d10", t0 + 25 * DAY, NULL, 0);
  assert_int_equal(expiry_of(f->lib, id), t0 + 35 * DAY);
}

static void test_never_expire_source_wins(void **state) {
  fixture *f = *state;
  source(f->lib, "d30", TQ_UNSET, 30, TQ_UNSET);
  source(f->lib, "forever", TQ_UNSET, TQ_EXPIRE_NEVER, TQ_UNSET);
  int64_t id = put(f->lib, "10.1.0.4", "d30", 1700000000, NULL, 0);
  assert_int_not_equal(expiry_of(f->lib, id), 0);
  put(f->lib, "10.1.0.4", "forever", 1700000000, NULL, 0);
  assert_int_equal(expiry_of(f->lib, id), 0);
}

static void test_exception_wins_over_all_sources(void **state) {
  fixture *f = *state;
  tq_err err;
  source(f->lib, "forever", TQ_UNSET, TQ_EXPIRE_NEVER, TQ_UNSET);
  source(f->lib, "d30", TQ_UNSET, 30, TQ_UNSET);
  int64_t a = put(f->lib, "10.1.0.5", "forever", 1700000000, NULL, 0);
  assert_int_equal(tq_lib_expire_exception_set(f->lib, a, 1800000000, &err), TQ_OK);
  assert_int_equal(expiry_of(f->lib, a), 1800000000);
  int64_t b = put(f->lib, "10.1.0.6", "d30", 1700000000, NULL, 0);
  assert_int_equal(tq_lib_expire_exception_set(f->lib, b, TQ_EXPIRE_NEVER, &err), TQ_OK);
  assert_int_equal(expiry_of(f->lib, b), 0);
  assert_int_equal(tq_lib_expire_exception_set(f->lib, b, TQ_EXPIRE_NONE, &err), TQ_OK);
  assert_int_equal(expiry_of(f->lib, b), 1700000000 + 30 * DAY);
}

static void test_expire_moves_due_indicators_only(void **state) {
  fixture *f = *state;
  tq_err err;
  source(f->lib, "d1", TQ_UNSET, 1, TQ_UNSET);
  int64_t t0 = 1700000000;
  int64_t due = put(f->lib, "10.2.0.1", "d1", t0, NULL, 0);
  int64_t later = put(f->lib, "10.2.0.2", "d1", t0 + 10 * DAY, NULL, 0);
  int64_t white = put(f->lib, "10.2.0.3", "d1", t0, NULL, 0);
  assert_int_equal(tq_lib_status_set(f->lib, white, TQ_STATUS_WHITELISTED, &err), TQ_OK);
  int64_t n = 0;
  assert_int_equal(tq_lib_expire_due(f->lib, t0 + 2 * DAY, &n, &err), TQ_OK);
  assert_int_equal(n, 1);
  tq_object *o = get(f->lib, due);
  assert_int_equal(o->status, TQ_STATUS_EXPIRED);
  tq_object_free(o);
  o = get(f->lib, later);
  assert_int_equal(o->status, TQ_STATUS_ACTIVE);
  tq_object_free(o);
  o = get(f->lib, white);
  assert_int_equal(o->status, TQ_STATUS_WHITELISTED);
  tq_object_free(o);
}

/* ---- collections and cursors ---- */

static void fill(tq_lib *lib, int n) {
  tq_err err;
  source(lib, "feed", 6, TQ_UNSET, TQ_UNSET);
  assert_int_equal(tq_lib_begin(lib, &err), TQ_OK);
  for (int i = 0; i < n; i++) {
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d.%d", 11, (i >> 16) & 255, (i >> 8) & 255, i & 255);
    const char *srcs[1] = {i % 2 ? "feed" : "analyst"};
    const char *tags[1] = {"even"};
    tq_attr_in attr = {.name = "Bucket", .value = i % 3 ? "b" : "a"};
    tq_object_in in = {.value = v,
                       .sources = srcs,
                       .n_sources = 1,
                       .attrs = &attr,
                       .n_attrs = 1,
                       .tags = tags,
                       .n_tags = i % 2 ? 0 : 1};
    assert_int_equal(tq_lib_object_put(lib, &in, NULL, NULL, &err), TQ_OK);
  }
  assert_int_equal(tq_lib_commit(lib, &err), TQ_OK);
}

static void walk(tq_lib *lib, const tq_query *q, size_t page, int64_t *total, int64_t *pages) {
  tq_cursor *c = NULL;
  tq_err err;
  int64_t ids[1000], last = 0;
  size_t n = 0;
  *total = *pages = 0;
  assert_int_equal(tq_lib_cursor_open(lib, q, 0, &c, &err), TQ_OK);
  for (;;) {
    assert_int_equal(tq_lib_cursor_next(c, ids, page, &n, &err), TQ_OK);
    if (n == 0)
      break;
    (*pages)++;
    for (size_t i = 0; i < n; i++) {
      assert_true(ids[i] > last); /* ascending, no repeats */
      last = ids[i];
    }
    *total += (int64_t)n;
  }
  tq_lib_cursor_close(c);
}

static void test_cursor_walks_every_match_once_in_pages(void **state) {
  fixture *f = *state;
  fill(f->lib, 2500);
  tq_query q;
  tq_query_init(&q);
  int64_t total, pages;
  walk(f->lib, &q, 1000, &total, &pages);
  assert_int_equal(total, 2500);
  assert_int_equal(pages, 3);
}

static void test_query_filters_combine(void **state) {
  fixture *f = *state;
  fill(f->lib, 300);
  tq_err err;
  int64_t n = 0;
  tq_query q;
  tq_query_init(&q);
  q.source = strdup("feed");
  assert_int_equal(tq_lib_query_count(f->lib, &q, &n, &err), TQ_OK);
  assert_int_equal(n, 150);
  q.score_min = 6;
  assert_int_equal(tq_lib_query_count(f->lib, &q, &n, &err), TQ_OK);
  assert_int_equal(n, 150);
  q.score_min = 7;
  assert_int_equal(tq_lib_query_count(f->lib, &q, &n, &err), TQ_OK);
  assert_int_equal(n, 0);
  tq_query_free(&q);
  q.tag = strdup("even");
  assert_int_equal(tq_lib_query_count(f->lib, &q, &n, &err), TQ_OK);
  assert_int_equal(n, 150);
  tq_query_free(&q);
  q.attr_name = strdup("Bucket");
  q.attr_value = strdup("a");
  assert_int_equal(tq_lib_query_count(f->lib, &q, &n, &err), TQ_OK);
  assert_int_equal(n, 100);
  tq_query_free(&q);
  q.indicator_types = calloc(1, sizeof(char *));
  q.indicator_types[0] = strdup("FQDN");
  q.n_indicator_types = 1;
  assert_int_equal(tq_lib_query_count(f->lib, &q, &n, &err), TQ_OK);
  assert_int_equal(n, 0);
  tq_query_free(&q);
}

static void test_cursor_resumes_after_an_id(void **state) {
  fixture *f = *state;
  fill(f->lib, 50);
  tq_query q;
  tq_query_init(&q);
  tq_cursor *c = NULL;
  tq_err err;
  int64_t ids[100];
  size_t n = 0;
  assert_int_equal(tq_lib_cursor_open(f->lib, &q, 20, &c, &err), TQ_OK);
  assert_int_equal(tq_lib_cursor_next(c, ids, 100, &n, &err), TQ_OK);
  assert_int_equal(n, 30);
  assert_int_equal(ids[0], 21);
  tq_lib_cursor_close(c);
}

/* A part's tables: each step once, a failing step leaves nothing and names the step, a level
 * newer than the part knows is refused. */
static void test_part_tables_migrate_once_and_refuse_newer(void **state) {
  fixture *f = *state;
  tq_err err;
  static const char *const m2[] = {"CREATE TABLE p_a(x)", "CREATE TABLE p_b(y)"};
  tq_lib_part p = {"p", m2, 1};
  assert_int_equal(tq_lib_part_version(f->lib, "p"), 0);
  assert_int_equal(tq_lib_part_migrate(f->lib, &p, &err), TQ_OK);
  assert_int_equal(tq_lib_part_migrate(f->lib, &p, &err), TQ_OK); /* again: nothing to do */
  assert_int_equal(tq_lib_part_version(f->lib, "p"), 1);
  p.n_migrations = 2;
  assert_int_equal(tq_lib_part_migrate(f->lib, &p, &err), TQ_OK);
  assert_int_equal(tq_lib_part_version(f->lib, "p"), 2);
  static const char *const bad[] = {"CREATE TABLE p_a(x)", "CREATE TABLE p_b(y)",
                                    "CREATE TABLE p_c(z); CREATE TABLE p_c(z)"};
  tq_lib_part pb = {"p", bad, 3};
  assert_int_not_equal(tq_lib_part_migrate(f->lib, &pb, &err), TQ_OK);
  assert_non_null(strstr(err.msg, "p tables, migration 3"));
  assert_int_equal(tq_lib_part_version(f->lib, "p"), 2);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(tq_lib_db(f->lib), "SELECT * FROM p_c", -1, &st, NULL),
                   SQLITE_ERROR); /* rolled back */
  sqlite3_finalize(st);
  tq_lib_part old = {"p", m2, 1};
  assert_int_equal(tq_lib_part_migrate(f->lib, &old, &err), TQ_ECORRUPT);
  assert_non_null(strstr(err.msg, "newer"));
}

static void test_collection_saves_and_reloads_its_query(void **state) {
  fixture *f = *state;
  fill(f->lib, 10);
  tq_err err;
  tq_query q, back;
  tq_query_init(&q);
  q.statuses = calloc(1, sizeof(int));
  q.statuses[0] = TQ_STATUS_ACTIVE;
  q.n_statuses = 1;
  q.score_min = 5;
  q.source = strdup("feed");
  assert_int_equal(tq_lib_collection_put(f->lib, "IPs to enrich", &q, 1, &err), TQ_OK);
  assert_int_equal(tq_lib_collection_put(f->lib, "IPs to enrich", &q, 1, &err), TQ_EEXIST);
  assert_int_equal(tq_lib_collection_get(f->lib, "IPs to enrich", &back, &err), TQ_OK);
  assert_int_equal(back.score_min, 5);
  assert_string_equal(back.source, "feed");
  assert_int_equal(back.n_statuses, 1);
  int64_t n = 0;
  assert_int_equal(tq_lib_query_count(f->lib, &back, &n, &err), TQ_OK);
  assert_int_equal(n, 5);
  tq_query_free(&q);
  tq_query_free(&back);
  assert_int_equal(tq_lib_collection_get(f->lib, "nope", &back, &err), TQ_ENOTFOUND);
}

static void test_collection_with_unknown_names_is_refused(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_query q;
  tq_query_init(&q);
  q.source = strdup("No Such Feed");
  assert_int_equal(tq_lib_collection_put(f->lib, "x", &q, 1, &err), TQ_ENOTFOUND);
  assert_non_null(strstr(err.msg, "No Such Feed"));
  tq_query_free(&q);
  assert_int_equal(tq_query_from_json("{\"statuses\":[\"Dead\"]}", &q, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "Dead"));
}

/* ---- opening ---- */

static void test_foreign_file_is_refused_and_untouched(void **state) {
  (void)state;
  const char *p = "/tmp/tq_test_foreign.txt";
  FILE *fp = fopen(p, "w");
  fputs("not a database, just notes\n", fp);
  fclose(fp);
  tq_lib *lib = NULL;
  tq_err err;
  assert_int_equal(tq_lib_open(p, TQ_LIB_OPEN_CREATE, &lib, &err), TQ_ECORRUPT);
  assert_non_null(strstr(err.msg, "not a tqhost library"));
  char buf[64] = {0};
  fp = fopen(p, "r");
  assert_non_null(fgets(buf, sizeof buf, fp));
  fclose(fp);
  assert_string_equal(buf, "not a database, just notes\n");
  unlink(p);
}

static void test_other_sqlite_database_is_refused(void **state) {
  (void)state;
  const char *p = "/tmp/tq_test_other.db";
  unlink(p);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(db, "CREATE TABLE notes(x); INSERT INTO notes VALUES(1)", NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  tq_lib *lib = NULL;
  tq_err err;
  assert_int_equal(tq_lib_open(p, TQ_LIB_OPEN_CREATE, &lib, &err), TQ_ECORRUPT);
  assert_non_null(strstr(err.msg, "not a tqhost library"));
  assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), 1); /* still only its own table */
  sqlite3_finalize(st);
  sqlite3_close(db);
  unlink(p);
}

static void test_missing_file_needs_init(void **state) {
  (void)state;
  tq_lib *lib = NULL;
  tq_err err;
  assert_int_equal(tq_lib_open("/tmp/tq_test_missing.db", TQ_LIB_OPEN_EXISTING, &lib, &err),
                   TQ_ENOTFOUND);
  assert_non_null(strstr(err.msg, "tqhost init"));
  assert_int_equal(access("/tmp/tq_test_missing.db", F_OK), -1);
}

static void test_zero_length_file_is_not_a_library(void **state) {
  (void)state;
  const char *p = "/tmp/tq_test_empty.db";
  FILE *fp = fopen(p, "w");
  fclose(fp);
  tq_lib *lib = NULL;
  tq_err err;
  assert_int_equal(tq_lib_open(p, TQ_LIB_OPEN_EXISTING, &lib, &err), TQ_ENOTFOUND);
  assert_non_null(strstr(err.msg, "empty file"));
  struct stat sb;
  assert_int_equal(stat(p, &sb), 0);
  assert_int_equal(sb.st_size, 0);                                         /* left untouched */
  assert_int_equal(tq_lib_open(p, TQ_LIB_OPEN_CREATE, &lib, &err), TQ_OK); /* init may */
  tq_lib_close(lib);
  unlink(p);
}

/* The library is closed after a checkpoint that leaves no WAL, as a copy on read-only media. */
static void test_read_only_open_reads_and_refuses_writes(void **state) {
  fixture *f = *state;
  tq_err err;
  put(f->lib, "203.0.113.9", "Analyst", 0, NULL, 0);
  tq_lib_close(f->lib);
  f->lib = NULL;
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  tq_lib *lib = NULL;
  assert_int_equal(tq_lib_open(f->path, TQ_LIB_OPEN_READONLY, &lib, &err), TQ_OK);
  int64_t id = 0;
  assert_int_equal(tq_lib_object_find(lib, NULL, NULL, "203.0.113.9", &id, &err), TQ_OK);
  assert_true(id > 0);
  const char *srcs[] = {"Analyst"};
  tq_object_in in = {.value = "198.51.100.77", .sources = srcs, .n_sources = 1};
  assert_int_not_equal(tq_lib_object_put(lib, &in, NULL, NULL, &err), TQ_OK);
  assert_non_null(strstr(err.msg, "read-only"));
  tq_lib_close(lib);
  f->lib = NULL;
  assert_int_equal(tq_lib_open(f->path, TQ_LIB_OPEN_EXISTING, &f->lib, &err), TQ_OK);
}

static void test_invalid_utf8_is_refused_at_every_text(void **state) {
  fixture *f = *state;
  tq_err err;
  const char *srcs[] = {"Analyst"}, *bad_srcs[] = {"An\xC3\x28lyst"};
  const char *bad_tags[] = {"c2\xFF"};
  tq_attr_in bad_attr = {.name = "Family", .value = "Emo\xED\xA0\x80tet"};
  tq_object_in in = {.value = "evil\xC0\xAF.example.com", .sources = srcs, .n_sources = 1};
  assert_int_equal(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "value is not valid UTF-8"));
  in.value = "utf8.example.com";
  in.description = "caf\xE9";
  assert_int_equal(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "description is not valid UTF-8 (byte 4)"));
  in.description = "caf\xC3\xA9 \xF0\x9F\x98\x80"; /* well-formed */
  in.attrs = &bad_attr;
  in.n_attrs = 1;
  assert_int_equal(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "attribute 'Family': attribute value is not valid UTF-8"));
  in.n_attrs = 0;
  in.tags = bad_tags;
  in.n_tags = 1;
  assert_int_equal(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "tag is not valid UTF-8"));
  in.n_tags = 0;
  in.sources = bad_srcs;
  assert_int_equal(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "source name is not valid UTF-8"));
  in.sources = srcs;
  int64_t id = 0;
  assert_int_equal(tq_lib_object_put(f->lib, &in, &id, NULL, &err), TQ_OK);
  assert_int_equal(tq_lib_tag_add(f->lib, id, "x\x80", &err), TQ_EINVAL);
  assert_int_equal(tq_lib_attribute_add(f->lib, id, &bad_attr, &err), TQ_EINVAL);
}

static void test_descriptions_and_attributes_are_capped(void **state) {
  fixture *f = *state;
  tq_err err;
  char *big = malloc(TQ_LIB_MAX_DESCRIPTION + 2);
  memset(big, 'a', TQ_LIB_MAX_DESCRIPTION + 1);
  big[TQ_LIB_MAX_DESCRIPTION + 1] = '\0';
  const char *srcs[] = {"Analyst"};
  tq_object_in in = {
      .value = "caps.example.com", .sources = srcs, .n_sources = 1, .description = big};
  assert_int_equal(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "description is 262145 bytes; the limit is 262144"));
  big[TQ_LIB_MAX_DESCRIPTION] = '\0'; /* exactly the limit is fine */
  assert_int_equal(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), TQ_OK);
  in.description = NULL;
  big[TQ_LIB_MAX_ATTR_VALUE + 1] = '\0';
  tq_attr_in a = {.name = "Raw", .value = big};
  in.attrs = &a;
  in.n_attrs = 1;
  assert_int_equal(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "attribute value is 65537 bytes; the limit is 65536"));
  a.value = "v";
  a.name = big;
  big[TQ_LIB_MAX_ATTR_NAME + 1] = '\0';
  assert_int_equal(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "attribute name is 257 bytes; the limit is 256"));
  free(big);
}

static void test_rollback_forgets_the_batch(void **state) {
  fixture *f = *state;
  tq_err err;
  assert_int_equal(tq_lib_begin(f->lib, &err), TQ_OK);
  put(f->lib, "10.9.9.9", "temporary source", 0, NULL, 0);
  tq_lib_rollback(f->lib);
  int64_t id;
  assert_int_equal(tq_lib_object_find(f->lib, NULL, NULL, "10.9.9.9", &id, &err), TQ_ENOTFOUND);
  tq_source s;
  assert_int_equal(tq_lib_source_get(f->lib, "temporary source", &s, &err), TQ_ENOTFOUND);
  /* the name cache was reset too: the source is created again, not dangling */
  int64_t id2 = put(f->lib, "10.9.9.9", "temporary source", 0, NULL, 0);
  tq_object *o = get(f->lib, id2);
  assert_string_equal(o->sources[0], "temporary source");
  tq_object_free(o);
}

/* A nested transaction is a savepoint: its rollback undoes its own writes only, and the
 * outer transaction keeps its earlier (and later) writes and commits them. */
static void test_inner_rollback_keeps_the_outer_transaction(void **state) {
  fixture *f = *state;
  tq_err err;
  assert_int_equal(tq_lib_begin(f->lib, &err), TQ_OK);
  int64_t outer = put(f->lib, "10.8.0.1", "outer source", 0, NULL, 0);
  assert_int_equal(tq_lib_tag_add(f->lib, outer, "kept", &err), TQ_OK);
  assert_int_equal(tq_lib_begin(f->lib, &err), TQ_OK);
  put(f->lib, "10.8.0.2", "inner source", 0, NULL, 0);
  assert_int_equal(tq_lib_tag_add(f->lib, outer, "undone", &err), TQ_OK);
  tq_lib_rollback(f->lib);
  /* an inner level that commits stays part of the outer transaction */
  assert_int_equal(tq_lib_begin(f->lib, &err), TQ_OK);
  int64_t later = put(f->lib, "10.8.0.3", "outer source", 0, NULL, 0);
  assert_int_equal(tq_lib_commit(f->lib, &err), TQ_OK);
  assert_int_equal(tq_lib_commit(f->lib, &err), TQ_OK);
  /* the outer transaction really committed: a further commit has nothing to commit */
  assert_int_equal(tq_lib_commit(f->lib, &err), TQ_EINTERNAL);
  int64_t id;
  assert_int_equal(tq_lib_object_find(f->lib, NULL, NULL, "10.8.0.1", &id, &err), TQ_OK);
  assert_int_equal(id, outer);
  assert_int_equal(tq_lib_object_find(f->lib, NULL, NULL, "10.8.0.3", &id, &err), TQ_OK);
  assert_int_equal(id, later);
  assert_int_equal(tq_lib_object_find(f->lib, NULL, NULL, "10.8.0.2", &id, &err), TQ_ENOTFOUND);
  tq_source s;
  assert_int_equal(tq_lib_source_get(f->lib, "inner source", &s, &err), TQ_ENOTFOUND);
  tq_object *o = get(f->lib, outer);
  assert_int_equal(o->n_tags, 1);
  assert_string_equal(o->tags[0], "kept");
  assert_int_equal(o->n_sources, 1);
  tq_object_free(o);
}

static void test_links_are_seen_from_both_ends(void **state) {
  fixture *f = *state;
  tq_err err;
  int64_t ip = put(f->lib, "10.3.0.1", "s", 0, NULL, 0);
  tq_object_in mal = {.object_type = "malware", .value = "Emotet"};
  int64_t m = 0;
  assert_int_equal(tq_lib_object_put(f->lib, &mal, &m, NULL, &err), TQ_OK);
  assert_int_equal(tq_lib_link(f->lib, ip, m, "s", "indicates", &err), TQ_OK);
  assert_int_equal(tq_lib_link(f->lib, m, ip, "s", "indicates", &err), TQ_OK); /* same link */
  tq_object *o = get(f->lib, ip);
  assert_int_equal(o->n_links, 1);
  assert_string_equal(o->links[0].other_value, "Emotet");
  assert_string_equal(o->links[0].link_type, "indicates");
  tq_object_free(o);
  o = get(f->lib, m);
  assert_int_equal(o->n_links, 1);
  assert_string_equal(o->links[0].other_value, "10.3.0.1");
  tq_object_free(o);
}

/* Attributes, tags and source links are queued and written in batches: a read inside the
 * same transaction sees them, a rollback drops them, and more rows than one batch holds all
 * arrive. */
static int64_t count_rows(tq_lib *lib, const char *sql) {
  sqlite3_stmt *st = NULL;
  int64_t n = -1;
  if (sqlite3_prepare_v2(tq_lib_db(lib), sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

static void test_queued_rows_are_seen_dropped_and_never_lost(void **state) {
  fixture *f = *state;
  tq_err err;
  source(f->lib, "batch", 4, 30, 0);
  assert_int_equal(tq_lib_begin(f->lib, &err), TQ_OK);
  tq_attr_in a[2] = {{.name = "Port", .value = "443"}, {.name = "Port", .value = "8443"}};
  const char *tags[] = {"c2"};
  const char *srcs[] = {"batch"};
  tq_object_in in = {.value = "10.7.0.1",
                     .sources = srcs,
                     .n_sources = 1,
                     .attrs = a,
                     .n_attrs = 2,
                     .tags = tags,
                     .n_tags = 1};
  int64_t id = 0;
  assert_int_equal(tq_lib_object_put(f->lib, &in, &id, NULL, &err), TQ_OK);
  /* a library read and a raw read in the same transaction see the queued rows */
  tq_object *o = get(f->lib, id);
  assert_int_equal(o->n_attrs, 2);
  assert_int_equal(o->n_tags, 1);
  assert_int_equal(o->n_sources, 1);
  tq_object_free(o);
  assert_int_equal(count_rows(f->lib, "SELECT count(*) FROM attributes"), 2);
  tq_lib_rollback(f->lib);
  assert_int_equal(count_rows(f->lib, "SELECT count(*) FROM attributes"), 0);

  /* 30,000 objects x 3 rows and more each: past the 65,536-row batch, in one transaction */
  assert_int_equal(tq_lib_begin(f->lib, &err), TQ_OK);
  for (int i = 0; i < 30000; i++) {
    char v[32], port[16];
    snprintf(v, sizeof v, "10.8.%d.%d", i / 256, i % 256);
    snprintf(port, sizeof port, "%d", i);
    tq_attr_in pa = {.name = "Port", .value = port};
    tq_object_in one = {.value = v,
                        .sources = srcs,
                        .n_sources = 1,
                        .attrs = &pa,
                        .n_attrs = 1,
                        .tags = tags,
                        .n_tags = 1};
    assert_int_equal(tq_lib_object_put(f->lib, &one, NULL, NULL, &err), TQ_OK);
  }
  assert_int_equal(tq_lib_commit(f->lib, &err), TQ_OK);
  assert_int_equal(count_rows(f->lib, "SELECT count(*) FROM attributes"), 30000);
  assert_int_equal(count_rows(f->lib, "SELECT count(*) FROM object_tags"), 30000);
  assert_int_equal(count_rows(f->lib, "SELECT count(*) FROM object_sources"), 30000);
  /* every object was recomputed: the source's score, 4 */
  assert_int_equal(count_rows(f->lib, "SELECT count(*) FROM objects WHERE score=4"), 30000);
  assert_int_equal(count_rows(f->lib, "SELECT count(*) FROM attributes WHERE value='29999'"), 1);
}

/* The background checkpointer keeps the WAL bounded while a writer commits back to back. */
static void test_background_checkpoints_keep_the_wal_bounded(void **state) {
  fixture *f = *state;
  tq_err err;
  tq_lib_checkpointer *ck = NULL;
  assert_int_equal(tq_lib_checkpointer_start(f->lib, 64, &ck, &err), TQ_OK);
  int64_t most = 0;
  for (int tx = 0; tx < 200; tx++) {
    assert_int_equal(tq_lib_begin(f->lib, &err), TQ_OK);
    for (int i = 0; i < 200; i++) {
      char v[32];
      snprintf(v, sizeof v, "10.%d.%d.%d", 20 + tx / 256, tx % 256, i);
      tq_attr_in pa = {.name = "Note", .value = "a value long enough to fill some pages quickly"};
      tq_object_in one = {.value = v, .attrs = &pa, .n_attrs = 1};
      assert_int_equal(tq_lib_object_put(f->lib, &one, NULL, NULL, &err), TQ_OK);
    }
    assert_int_equal(tq_lib_commit(f->lib, &err), TQ_OK);
    /* frames in the WAL now: the size of the log over the frame size */
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    FILE *w = fopen(wal, "rb");
    assert_non_null(w);
    fseek(w, 0, SEEK_END);
    long bytes = ftell(w);
    fclose(w);
    if (bytes / 4120 > most)
      most = bytes / 4120;
  }
  tq_lib_checkpointer_stop(ck);
  /* 200 commits of ~40 frames each would be 8,000 frames without checkpoints; the writer
   * finishes the copy past 4 x 64 frames, so the WAL never holds more than that and a commit */
  assert_true(most < 4 * 64 + 200);
  assert_true(most > 0);
  assert_int_equal(count_rows(f->lib, "SELECT count(*) FROM objects"), 40000);
}

/* ---- names: no control characters ---- */

/* Expects err to be TQ_EINVAL naming field, with the name shown escaped (no raw newline). */
static void expect_bad_name(tq_code rc, const tq_err *err, const char *field) {
  assert_int_equal(rc, TQ_EINVAL);
  if (strstr(err->msg, field) == NULL || strstr(err->msg, "control characters") == NULL)
    fail_msg("wanted an error naming %s: %s", field, err->msg);
  assert_null(strchr(err->msg, '\n'));
  assert_null(strchr(err->msg, '\x1b'));
}

static void test_control_characters_in_names_are_refused(void **state) {
  fixture *f = *state;
  tq_err err;
  int64_t id = put(f->lib, "198.51.100.7", "A", 0, NULL, 0);
  /* a tag that forges a log line, an attribute name with a terminal escape */
  expect_bad_name(tq_lib_tag_add(f->lib, id, "ok\nlevel=error msg=forged", &err), &err, "tag");
  assert_non_null(strstr(err.msg, "ok\\nlevel=error"));
  tq_attr_in a = {.name = "Country\x1b[31m", .value = "DE"};
  expect_bad_name(tq_lib_attribute_add(f->lib, id, &a, &err), &err, "attribute name");
  assert_non_null(strstr(err.msg, "\\x1b[31m"));
  const char *bad_src[1] = {"Feed\r"};
  tq_object_in in = {.value = "198.51.100.8", .sources = bad_src, .n_sources = 1};
  expect_bad_name(tq_lib_object_put(f->lib, &in, NULL, NULL, &err), &err, "source name");
  tq_source_opts o;
  tq_source_opts_init(&o);
  expect_bad_name(tq_lib_source_put(f->lib, "tab\there", &o, 0, NULL, &err), &err, "source name");
  int64_t other = put(f->lib, "198.51.100.9", "A", 0, NULL, 0);
  expect_bad_name(tq_lib_link(f->lib, id, other, "A", "uses\n", &err), &err, "link type");
  tq_query q;
  tq_query_init(&q);
  expect_bad_name(tq_lib_collection_put(f->lib, "IPs\x7f", &q, 1, &err), &err, "collection name");
  /* a C1 control (U+009B, a CSI on many terminals) too */
  expect_bad_name(tq_lib_tag_add(f->lib, id,
                                 "x\xc2\x9b"
                                 "2J",
                                 &err),
                  &err, "tag");
  /* nothing of the refused object was written */
  int64_t n = -1;
  assert_int_equal(tq_lib_count(f->lib, "indicator", &n, &err), TQ_OK);
  assert_int_equal(n, 2);
  tq_object *got = get(f->lib, id);
  assert_int_equal(got->n_tags, 0);
  assert_int_equal(got->n_attrs, 0);
  tq_object_free(got);
}

static void test_attribute_values_may_hold_newlines(void **state) {
  fixture *f = *state;
  tq_err err;
  int64_t id = put(f->lib, "198.51.100.7", "A", 0, NULL, 0);
  tq_attr_in a = {.name = "Description", .value = "line one\nline two\ttabbed"};
  assert_int_equal(tq_lib_attribute_add(f->lib, id, &a, &err), TQ_OK);
  assert_int_equal(tq_lib_tag_add(f->lib, id, "ünïcode tag", &err), TQ_OK);
  tq_object *got = get(f->lib, id);
  assert_int_equal(got->n_attrs, 1);
  assert_string_equal(got->attrs[0].value, "line one\nline two\ttabbed");
  assert_string_equal(got->tags[0], "ünïcode tag");
  tq_object_free(got);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
      T(test_a_second_open_keeps_the_first_ones_locks),
      T(test_same_indicator_spelled_differently_merges),
      T(test_invalid_value_is_refused_with_reason),
      T(test_control_characters_in_names_are_refused),
      T(test_attribute_values_may_hold_newlines),
      T(test_explicit_type_must_be_a_threatq_name),
      T(test_score_is_the_highest_source_sensitivity),
      T(test_attribute_rules_add_deltas_and_clamp),
      T(test_new_rule_rescores_existing_objects),
      T(test_manual_score_overrides_until_cleared),
      T(test_revoked_applies_the_sources_decrease),
      T(test_source_change_rescores_its_objects),
      T(test_no_policy_never_expires),
      T(test_policy_sets_date_from_report),
      T(test_latest_date_wins_across_sources),
      T(test_never_expire_source_wins),
      T(test_exception_wins_over_all_sources),
      T(test_expire_moves_due_indicators_only),
      T(test_cursor_walks_every_match_once_in_pages),
      T(test_query_filters_combine),
      T(test_cursor_resumes_after_an_id),
      T(test_collection_saves_and_reloads_its_query),
      T(test_part_tables_migrate_once_and_refuse_newer),
      T(test_collection_with_unknown_names_is_refused),
      T(test_rollback_forgets_the_batch),
      T(test_inner_rollback_keeps_the_outer_transaction),
      T(test_links_are_seen_from_both_ends),
      T(test_queued_rows_are_seen_dropped_and_never_lost),
      T(test_background_checkpoints_keep_the_wal_bounded),
      cmocka_unit_test(test_foreign_file_is_refused_and_untouched),
      cmocka_unit_test(test_other_sqlite_database_is_refused),
      cmocka_unit_test(test_missing_file_needs_init),
      cmocka_unit_test(test_zero_length_file_is_not_a_library),
      T(test_read_only_open_reads_and_refuses_writes),
      T(test_invalid_utf8_is_refused_at_every_text),
      T(test_descriptions_and_attributes_are_capped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
