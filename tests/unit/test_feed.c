/* test_feed.c: feeds (src/feed) end to end against the in-test TAXII server: a poll maps STIX
 * into the library (simple and complex patterns, attributes, tags, TLP, links from
 * relationships and report refs across pages), survives a crash in the middle without loss
 * or duplicates, treats re-delivered versions as no-ops, lowers the score of revoked
 * versions, reports malformed and unknown objects, records errors, follows its schedule, and
 * ingests Report Hub over REST. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>

#include "test_taxii_server.h"
#include "tqhost/feed.h"

/* ---- STIX builders --------------------------------------------------------------------------- */

static char *uid(const char *type, int n) {
  static char buf[16][96];
  static int k;
  char *b = buf[k++ % 16];
  snprintf(b, 96, "%s--00000000-0000-4000-8000-%012d", type, n);
  return b;
}

/* An indicator with pattern; extra is more JSON members (",\"revoked\":true") or "". */
static void add_indicator(int date_s, int n, const char *pattern, const char *modified,
                          const char *extra) {
  char json[2048];
  snprintf(json, sizeof json,
           "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"%s\",\"created\":\"2024-"
           "05-01T00:00:00.000Z\",\"modified\":\"%s\",\"pattern\":\"%s\",\"pattern_type\":\"stix\","
           "\"valid_from\":\"2024-05-01T00:00:00Z\"%s}",
           uid("indicator", n), modified, pattern, extra);
  ts_add(ts_date(date_s, 0), json);
}

static void add_ip_indicators(int count, int first_date) {
  for (int i = 0; i < count; i++) {
    char pattern[64];
    int k = (int)TS.n; /* unique across calls */
    snprintf(pattern, sizeof pattern, "[ipv4-addr:value = '10.1.%d.%d']", k / 200, k % 200 + 1);
    add_indicator(first_date + i, 1000 + k, pattern, "2024-05-01T00:00:00.000Z", "");
  }
}

static void add_sdo(int date_s, const char *type, int n, const char *extra) {
  char json[2048];
  snprintf(json, sizeof json,
           "{\"type\":\"%s\",\"spec_version\":\"2.1\",\"id\":\"%s\",\"created\":\"2024-05-01T00:"
           "00:00.000Z\",\"modified\":\"2024-05-01T00:00:00.000Z\"%s}",
           type, uid(type, n), extra);
  ts_add(ts_date(date_s, 0), json);
}

/* ---- fixture --------------------------------------------------------------------------------- */

typedef struct fixture {
  char path[64];
  tq_lib *lib;
  tq_net *net;
  tq_feed_summary sum;
} fixture;

static void make_feed(fixture *f, const char *name, int page_size) {
  tq_feed feed;
  tq_feed_init(&feed);
  snprintf(feed.name, sizeof feed.name, "%s", name);
  snprintf(feed.discovery, sizeof feed.discovery, "%s", ts_discovery());
  snprintf(feed.collection, sizeof feed.collection, "%s", TS_COLL_TITLE);
  snprintf(feed.source, sizeof feed.source, "RST Test");
  feed.page_size = page_size;
  tq_err err;
  assert_int_equal(tq_feed_put(f->lib, &feed, 1, &err), TQ_OK);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  tq_err err;
  ts_reset();
  snprintf(f->path, sizeof f->path, "/tmp/tq-feed-test-%d.db", (int)getpid());
  unlink(f->path);
  if (tq_lib_open(f->path, TQ_LIB_OPEN_CREATE, &f->lib, &err) != TQ_OK ||
      tq_net_new(NULL, &f->net, &err) != TQ_OK)
    return -1;
  tq_source_opts so;
  tq_source_opts_init(&so);
  so.kind = "feed";
  so.score = 5;
  so.revoked_decrease = 8;
  if (tq_lib_source_put(f->lib, "RST Test", &so, 1, NULL, &err) != TQ_OK)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tq_feed_summary_free(&f->sum);
  tq_net_free(f->net);
  tq_lib_close(f->lib);
  char wal[80];
  unlink(f->path);
  snprintf(wal, sizeof wal, "%s-wal", f->path);
  unlink(wal);
  snprintf(wal, sizeof wal, "%s-shm", f->path);
  unlink(wal);
  free(f);
  ts_reset();
  return 0;
}

/* Objects per transaction of the next polls (1: every page commits on its own). */
static int64_t tx_objects = 1;

static tq_code poll(fixture *f, const char *name, int abort_after, tq_err *err) {
  tq_feed_poll_opts o;
  tq_feed_poll_opts_init(&o);
  o.retry_max = 0;
  o.abort_after_pages = abort_after;
  o.tx_objects = tx_objects;
  tq_feed_summary_free(&f->sum);
  return tq_feed_poll(f->lib, f->net, name, &o, &f->sum, err);
}

static int64_t sql_int(fixture *f, const char *sql) {
  sqlite3_stmt *st = NULL;
  int64_t v = -1;
  if (sqlite3_prepare_v2(tq_lib_db(f->lib), sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static tq_object *get(fixture *f, const char *type, const char *itype, const char *value) {
  int64_t id = 0;
  tq_object *o = NULL;
  tq_err err;
  assert_int_equal(tq_lib_object_find(f->lib, type, itype, value, &id, &err), TQ_OK);
  assert_int_equal(tq_lib_object_get(f->lib, id, &o, &err), TQ_OK);
  return o;
}

static const tq_attr *attr(const tq_object *o, const char *name) {
  for (size_t i = 0; i < o->n_attrs; i++)
    if (strcmp(o->attrs[i].name, name) == 0)
      return &o->attrs[i];
  return NULL;
}

static const tq_link *link_to(const tq_object *o, const char *value) {
  for (size_t i = 0; i < o->n_links; i++)
    if (strcmp(o->links[i].other_value, value) == 0)
      return &o->links[i];
  return NULL;
}

static int64_t count_of(const tq_feed_count *v, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].name, name) == 0)
      return v[i].n;
  return 0;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_simple_pattern_gives_one_indicator_per_ored_value(void **state) {
  fixture *f = *state;
  add_indicator(1, 1, "[domain-name:value = 'Evil.Example' OR ipv4-addr:value = '192.0.2.7']",
                "2024-05-01T00:00:00.000Z", ",\"labels\":[\"c2\"],\"confidence\":80");
  add_indicator(
      2, 2,
      "[file:hashes.'SHA-256' = 'AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F' "
      "AND file:name = 'a.exe']",
      "2024-05-01T00:00:00.000Z", "");
  make_feed(f, "f1", 100);
  tq_err err;
  assert_int_equal(poll(f, "f1", 0, &err), TQ_OK);
  assert_int_equal(f->sum.indicators_created, 2);
  tq_object *o = get(f, "indicator", "FQDN", "evil.example"); /* normalised by the library */
  assert_int_equal(o->score, 5);
  assert_string_equal(attr(o, "Confidence")->value, "80");
  assert_int_equal(o->n_tags, 1);
  assert_string_equal(o->tags[0], "c2");
  tq_object_free(o);
  o = get(f, "indicator", "IP Address", "192.0.2.7");
  tq_object_free(o);
  /* The AND pattern is kept whole. */
  o = get(
      f, "signature", NULL,
      "[file:hashes.'SHA-256' = 'AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F' "
      "AND file:name = 'a.exe']");
  assert_string_equal(attr(o, "Pattern Type")->value, "stix");
  tq_object_free(o);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_refs"), 3);
}

static void test_crash_mid_poll_then_poll_again_has_every_object_once(void **state) {
  fixture *f = *state;
  add_ip_indicators(50, 100);
  make_feed(f, "crash", 10);
  tq_err err;
  assert_int_equal(poll(f, "crash", 2, &err), TQ_EINTERNAL);
  assert_non_null(strstr(err.msg, "test hook"));
  int64_t n = 0;
  assert_int_equal(tq_lib_count(f->lib, "indicator", &n, &err), TQ_OK);
  assert_int_equal(n, 20); /* two pages committed, the third rolled back */
  assert_int_equal(f->sum.pages, 2);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_seen"), 20);
  tq_feed feed;
  assert_int_equal(tq_feed_get(f->lib, "crash", &feed, &err), TQ_OK);
  assert_string_equal(feed.checkpoint, ts_date(119, 0));
  assert_int_equal(feed.last_ok, 0);
  assert_non_null(strstr(feed.last_error, "test hook"));

  assert_int_equal(poll(f, "crash", 0, &err), TQ_OK);
  assert_int_equal(tq_lib_count(f->lib, "indicator", &n, &err), TQ_OK);
  assert_int_equal(n, 50);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_seen"), 50);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_refs"), 50);
  assert_int_equal(f->sum.indicators_created, 30);
  assert_int_equal(f->sum.skipped, 1); /* the tie guard asks again for the checkpoint's object */
  assert_true(f->sum.complete);
}

/* Pages grouped into transactions: a crash loses the open group and its checkpoints, never
 * a committed one, and the next poll asks for the lost pages again. */
static void test_crash_mid_group_loses_only_the_open_group(void **state) {
  fixture *f = *state;
  add_ip_indicators(50, 100);
  make_feed(f, "group", 10);
  tq_err err;
  tx_objects = 25; /* pages of 10: pages 1-3 commit together, 4-5 are the open group */
  assert_int_equal(poll(f, "group", 4, &err), TQ_EINTERNAL);
  int64_t n = 0;
  assert_int_equal(tq_lib_count(f->lib, "indicator", &n, &err), TQ_OK);
  assert_int_equal(n, 30);
  assert_int_equal(f->sum.pages, 3);
  assert_int_equal(f->sum.indicators_created, 30);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_seen"), 30);
  tq_feed feed;
  assert_int_equal(tq_feed_get(f->lib, "group", &feed, &err), TQ_OK);
  assert_string_equal(feed.checkpoint, ts_date(129, 0));

  assert_int_equal(poll(f, "group", 0, &err), TQ_OK);
  tx_objects = 1;
  assert_int_equal(tq_lib_count(f->lib, "indicator", &n, &err), TQ_OK);
  assert_int_equal(n, 50);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_seen"), 50);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_refs"), 50);
  assert_int_equal(f->sum.indicators_created, 20);
  assert_true(f->sum.complete);
}

static void test_redelivered_versions_are_no_ops(void **state) {
  fixture *f = *state;
  add_ip_indicators(12, 100);
  make_feed(f, "again", 5);
  tq_err err;
  assert_int_equal(poll(f, "again", 0, &err), TQ_OK);
  assert_int_equal(f->sum.indicators_created, 12);
  /* A big overlap sends everything again on the next poll. */
  tq_feed feed;
  assert_int_equal(tq_feed_get(f->lib, "again", &feed, &err), TQ_OK);
  feed.overlap_s = 3600;
  assert_int_equal(tq_feed_put(f->lib, &feed, 0, &err), TQ_OK);
  assert_int_equal(poll(f, "again", 0, &err), TQ_OK);
  assert_int_equal(f->sum.objects, 12);
  assert_int_equal(f->sum.skipped, 12);
  assert_int_equal(f->sum.indicators_created + f->sum.indicators_updated, 0);
  int64_t n = 0;
  assert_int_equal(tq_lib_count(f->lib, "indicator", &n, &err), TQ_OK);
  assert_int_equal(n, 12);
}

static void test_revoked_version_lowers_score_by_source_decrease(void **state) {
  fixture *f = *state;
  tq_source_opts so;
  tq_source_opts_init(&so);
  so.score = 9;
  so.revoked_decrease = 4;
  tq_err err;
  assert_int_equal(tq_lib_source_put(f->lib, "RST Test", &so, 0, NULL, &err), TQ_OK);
  add_indicator(1, 7, "[url:value = 'http://bad.example/x']", "2024-05-01T00:00:00.000Z", "");
  make_feed(f, "rev", 10);
  assert_int_equal(poll(f, "rev", 0, &err), TQ_OK);
  tq_object *o = get(f, "indicator", "URL", "http://bad.example/x");
  assert_int_equal(o->score, 9);
  tq_object_free(o);
  /* The producer revokes it: a new version, added later. */
  add_indicator(50, 7, "[url:value = 'http://bad.example/x']", "2024-05-02T00:00:00.000Z",
                ",\"revoked\":true");
  assert_int_equal(poll(f, "rev", 0, &err), TQ_OK);
  assert_int_equal(f->sum.revoked, 1);
  o = get(f, "indicator", "URL", "http://bad.example/x");
  assert_int_equal(o->score, 5);
  assert_string_equal(attr(o, "Revoked")->value, "true");
  assert_string_equal(attr(o, "Revoked")->source, "RST Test");
  tq_object_free(o);
}

/* Two versions of one STIX id in the same page: the newer one wins whatever their order, an
 * older one after a newer one is skipped as seen, and the feed remembers the newer version. */
static void test_versions_of_one_id_in_a_page(void **state) {
  fixture *f = *state;
  tq_err err;
  /* id 8: the revoked (newer) version first, then the older one */
  add_indicator(1, 8, "[url:value = 'http://a.example/x']", "2024-05-02T00:00:00.000Z",
                ",\"revoked\":true");
  add_indicator(2, 8, "[url:value = 'http://a.example/x']", "2024-05-01T00:00:00.000Z", "");
  /* id 9: the older version first, then the newer (revoked) one */
  add_indicator(3, 9, "[url:value = 'http://b.example/y']", "2024-05-01T00:00:00.000Z", "");
  add_indicator(4, 9, "[url:value = 'http://b.example/y']", "2024-05-02T00:00:00.000Z",
                ",\"revoked\":true");
  make_feed(f, "versions", 10);
  assert_int_equal(poll(f, "versions", 0, &err), TQ_OK);
  assert_int_equal(f->sum.skipped, 1); /* id 8's older version */
  assert_int_equal(f->sum.revoked, 2); /* both newer versions were ingested */
  assert_int_equal(f->sum.indicators_created, 2);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_seen WHERE modified_s ="
                              " strftime('%s','2024-05-02')"),
                   2);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_seen"), 2);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_refs"), 2);
  tq_object *o = get(f, "indicator", "URL", "http://a.example/x");
  assert_string_equal(attr(o, "Revoked")->value, "true");
  tq_object_free(o);
  /* polling again changes nothing */
  assert_int_equal(poll(f, "versions", 0, &err), TQ_OK);
  assert_int_equal(f->sum.indicators_created, 0);
  assert_int_equal(f->sum.indicators_updated, 0);
}

static void test_relationships_and_report_refs_link_across_pages(void **state) {
  fixture *f = *state;
  char extra[512];
  /* Page 1: the report and the relationship, before what they refer to. */
  snprintf(extra, sizeof extra,
           ",\"name\":\"Lumma report\",\"published\":\"2024-05-01T00:00:00Z\",\"object_refs\":"
           "[\"%s\",\"%s\",\"%s\"]",
           uid("malware", 1), uid("indicator", 3), uid("relationship", 1));
  add_sdo(1, "report", 1, extra);
  snprintf(extra, sizeof extra,
           ",\"relationship_type\":\"indicates\",\"source_ref\":\"%s\",\"target_ref\":\"%s\"",
           uid("indicator", 3), uid("malware", 1));
  add_sdo(2, "relationship", 1, extra);
  /* Page 2. */
  add_sdo(3, "malware", 1, ",\"name\":\"Lumma\",\"is_family\":true");
  add_indicator(4, 3, "[domain-name:value = 'lumma.example']", "2024-05-01T00:00:00.000Z", "");
  make_feed(f, "links", 2);
  tq_err err;
  assert_int_equal(poll(f, "links", 0, &err), TQ_OK);
  assert_int_equal(f->sum.pages, 2);
  assert_int_equal(f->sum.links_pending, 0);
  tq_object *m = get(f, "malware", NULL, "Lumma");
  const tq_link *l = link_to(m, "lumma.example");
  assert_non_null(l);
  assert_string_equal(l->link_type, "indicates");
  assert_non_null(link_to(m, "Lumma report"));
  tq_object_free(m);
  tq_object *r = get(f, "report", NULL, "Lumma report");
  assert_non_null(link_to(r, "lumma.example"));
  tq_object_free(r);
}

static void test_tlp_markings_map_to_attribute_and_source_tlp(void **state) {
  fixture *f = *state;
  add_indicator(1, 1, "[ipv4-addr:value = '198.51.100.1']", "2024-05-01T00:00:00.000Z",
                ",\"confidence\":50,\"object_marking_refs\":[\"marking-definition--55d920b0-5e8b-"
                "4f79-9ee9-91f868d9b421\"]"); /* TLP 2.0 amber */
  add_indicator(2, 2, "[ipv4-addr:value = '198.51.100.2']", "2024-05-01T00:00:00.000Z",
                ",\"confidence\":50,\"object_marking_refs\":[\"marking-definition--5e57c739-391a-"
                "4eb3-b6be-7d15ca92d5ed\"]"); /* TLP 1.0 red */
  make_feed(f, "tlp", 10);
  tq_err err;
  assert_int_equal(poll(f, "tlp", 0, &err), TQ_OK);
  tq_object *o = get(f, "indicator", "IP Address", "198.51.100.1");
  assert_int_equal(attr(o, "Confidence")->tlp, 2);
  tq_object_free(o);
  o = get(f, "indicator", "IP Address", "198.51.100.2");
  assert_int_equal(attr(o, "Confidence")->tlp, 1);
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT tlp FROM object_sources WHERE object_id=%lld",
           (long long)o->id);
  assert_int_equal(sql_int(f, sql), 1);
  tq_object_free(o);
}

static void test_malformed_objects_are_reported_and_the_rest_ingested(void **state) {
  fixture *f = *state;
  add_ip_indicators(3, 10);
  ts_add(ts_date(20, 0), "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--"
                         "00000000-0000-4000-8000-000000000777\",\"created\":\"2024-05-01T00:00:"
                         "00.000Z\",\"modified\":\"2024-05-01T00:00:00.000Z\",\"pattern_type\":"
                         "\"stix\",\"valid_from\":\"2024-05-01T00:00:00Z\"}");
  add_indicator(21, 778, "[ipv4-addr:value = ]", "2024-05-01T00:00:00.000Z", "");
  add_ip_indicators(2, 30);
  make_feed(f, "bad", 100);
  tq_err err;
  assert_int_equal(poll(f, "bad", 0, &err), TQ_OK);
  assert_int_equal(f->sum.malformed, 2);
  assert_int_equal(f->sum.n_bad, 2);
  assert_string_equal(f->sum.bad[0].id, uid("indicator", 777));
  assert_non_null(strstr(f->sum.bad[0].reason, "pattern"));
  assert_string_equal(f->sum.bad[1].id, uid("indicator", 778));
  int64_t n = 0;
  assert_int_equal(tq_lib_count(f->lib, "indicator", &n, &err), TQ_OK);
  assert_int_equal(n, 5);
}

static void test_unknown_types_are_counted_not_dropped_silently(void **state) {
  fixture *f = *state;
  add_sdo(1, "x-acme-widget", 1, ",\"name\":\"w\"");
  add_sdo(2, "x-acme-widget", 2, ",\"name\":\"w2\"");
  add_sdo(3, "attack-pattern", 1,
          ",\"name\":\"Command and Scripting Interpreter\",\"external_references\":[{\"source_"
          "name\":\"mitre-attack\",\"external_id\":\"T1059\",\"url\":\"https://attack.mitre.org/"
          "techniques/T1059\"}],\"kill_chain_phases\":[{\"kill_chain_name\":\"mitre-attack\","
          "\"phase_name\":\"execution\"}],\"x_acme_rank\":7");
  make_feed(f, "unk", 10);
  tq_err err;
  assert_int_equal(poll(f, "unk", 0, &err), TQ_OK);
  assert_int_equal(f->sum.unknown, 2);
  assert_int_equal(count_of(f->sum.unknown_types, f->sum.n_unknown_types, "x-acme-widget"), 2);
  assert_int_equal(count_of(f->sum.by_type, f->sum.n_by_type, "attack-pattern"), 1);
  tq_object *o = get(f, "attack_pattern", NULL, "Command and Scripting Interpreter");
  assert_string_equal(attr(o, "MITRE ID")->value, "T1059");
  assert_string_equal(attr(o, "Kill Chain Phase")->value, "mitre-attack:execution");
  assert_string_equal(attr(o, "x_acme_rank")->value, "7");
  tq_object_free(o);
  cJSON *j = tq_feed_summary_json(&f->sum, 0);
  assert_int_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(j, "unknown_types"), "x-acme-widget")->valueint, 2);
  cJSON_Delete(j);
}

static void test_wrong_credentials_are_recorded_on_the_feed(void **state) {
  fixture *f = *state;
  TS.user = "alice";
  TS.pass = "right";
  tq_feed feed;
  tq_feed_init(&feed);
  snprintf(feed.name, sizeof feed.name, "auth");
  snprintf(feed.discovery, sizeof feed.discovery, "%s", ts_discovery());
  snprintf(feed.collection, sizeof feed.collection, "%s", TS_COLL_ID);
  snprintf(feed.source, sizeof feed.source, "RST Test");
  snprintf(feed.username, sizeof feed.username, "alice");
  snprintf(feed.password_env, sizeof feed.password_env, "TQ_TEST_FEED_PASSWORD");
  tq_err err;
  assert_int_equal(tq_feed_put(f->lib, &feed, 1, &err), TQ_OK);
  unsetenv("TQ_TEST_FEED_PASSWORD");
  assert_int_equal(poll(f, "auth", 0, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "TQ_TEST_FEED_PASSWORD"));
  setenv("TQ_TEST_FEED_PASSWORD", "wrong", 1);
  assert_int_equal(poll(f, "auth", 0, &err), TQ_EDENIED);
  assert_non_null(strstr(err.msg, "401"));
  assert_int_equal(tq_feed_get(f->lib, "auth", &feed, &err), TQ_OK);
  assert_non_null(strstr(feed.last_error, "401"));
  setenv("TQ_TEST_FEED_PASSWORD", "right", 1);
  add_ip_indicators(1, 10);
  assert_int_equal(poll(f, "auth", 0, &err), TQ_OK);
  assert_int_equal(f->sum.indicators_created, 1);
  unsetenv("TQ_TEST_FEED_PASSWORD");
}

static void count_polled(void *ud, const char *feed, tq_code rc, const tq_err *err,
                         const tq_feed_summary *sum) {
  (void)feed, (void)err, (void)sum;
  *(int *)ud += rc == TQ_OK;
}

static void test_poll_due_follows_every_and_enabled(void **state) {
  fixture *f = *state;
  add_ip_indicators(3, 10);
  make_feed(f, "a", 10);
  make_feed(f, "b", 10);
  tq_err err;
  assert_int_equal(tq_feed_set_enabled(f->lib, "b", 0, &err), TQ_OK);
  int64_t now = tq_time_now();
  size_t polled = 0, failed = 0;
  int ok = 0;
  assert_int_equal(tq_feed_poll_due(f->lib, f->net, now, count_polled, &ok, &polled, &failed, &err),
                   TQ_OK);
  assert_int_equal(polled, 1);
  assert_int_equal(ok, 1);
  assert_int_equal(tq_feed_poll_due(f->lib, f->net, now + 60, NULL, NULL, &polled, &failed, &err),
                   TQ_OK);
  assert_int_equal(polled, 0); /* every 1 h has not elapsed */
  assert_int_equal(tq_feed_poll_due(f->lib, f->net, now + 3600, NULL, NULL, &polled, &failed, &err),
                   TQ_OK);
  assert_int_equal(polled, 1);
}

static void test_report_hub_rest_feed_ingests_bundles_once(void **state) {
  fixture *f = *state;
  tq_feed feed;
  tq_feed_init(&feed);
  snprintf(feed.name, sizeof feed.name, "hub");
  snprintf(feed.kind, sizeof feed.kind, "rst-reports");
  snprintf(feed.discovery, sizeof feed.discovery, "http://127.0.0.1:%u/v1/", TS.port);
  snprintf(feed.source, sizeof feed.source, "RST Report Hub");
  snprintf(feed.password_env, sizeof feed.password_env, "TQ_TEST_HUB_KEY");
  tq_err err;
  assert_int_equal(tq_feed_put(f->lib, &feed, 1, &err), TQ_OK);
  setenv("TQ_TEST_HUB_KEY", "hub-key", 1);
  tq_feed_poll_opts o;
  tq_feed_poll_opts_init(&o);
  o.retry_max = 0;
  assert_int_equal(tq_time_parse("2024-05-02 12:00:00", &o.now, NULL, &err), TQ_OK);
  tq_feed_summary_free(&f->sum);
  assert_int_equal(tq_feed_poll(f->lib, f->net, "hub", &o, &f->sum, &err), TQ_OK);
  assert_int_equal(f->sum.pages, 1);
  assert_string_equal(f->sum.checkpoint, "20240502");
  tq_object *m = get(f, "malware", NULL, "Lumma");
  assert_non_null(link_to(m, "Lumma returns"));
  tq_object_free(m);
  /* Polled again: the day is listed again but the report is not fetched again. */
  int before = TS.objects_requests;
  tq_feed_summary_free(&f->sum);
  assert_int_equal(tq_feed_poll(f->lib, f->net, "hub", &o, &f->sum, &err), TQ_OK);
  assert_int_equal(f->sum.pages, 0);
  assert_int_equal(TS.objects_requests - before, 1); /* one list, 2024-05-02 only */
  setenv("TQ_TEST_HUB_KEY", "bad", 1);
  tq_feed_summary_free(&f->sum);
  assert_int_equal(tq_feed_poll(f->lib, f->net, "hub", &o, &f->sum, &err), TQ_EDENIED);
  assert_non_null(strstr(err.msg, "API key"));
  unsetenv("TQ_TEST_HUB_KEY");
}

static void test_definitions_are_checked_and_presets_exist(void **state) {
  fixture *f = *state;
  tq_feed feed;
  tq_feed_init(&feed);
  snprintf(feed.name, sizeof feed.name, "x");
  snprintf(feed.discovery, sizeof feed.discovery, "ftp://nope/");
  snprintf(feed.collection, sizeof feed.collection, "c");
  snprintf(feed.source, sizeof feed.source, "s");
  tq_err err;
  assert_int_equal(tq_feed_put(f->lib, &feed, 1, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "https://"));
  const tq_feed_preset *p = tq_feed_preset_find("rst-high");
  assert_non_null(p);
  assert_string_equal(p->collection, "689709ee-8496-4da2-997d-e9face24eee9");
  assert_int_equal(p->score, 5);
  assert_int_equal(tq_feed_preset_find("rst-low")->score, 1);
  assert_int_equal(tq_feed_preset_find("rst-medium")->revoked_decrease, 8);
  make_feed(f, "gone", 10);
  assert_int_equal(tq_feed_delete(f->lib, "gone", &err), TQ_OK);
  assert_int_equal(tq_feed_get(f->lib, "gone", &feed, &err), TQ_ENOTFOUND);
}

static void test_incomplete_poll_is_recorded_and_the_next_poll_finishes(void **state) {
  fixture *f = *state;
  add_ip_indicators(30, 10);
  make_feed(f, "capped", 10);
  tq_feed_poll_opts o;
  tq_feed_poll_opts_init(&o);
  o.retry_max = 0;
  o.max_pages = 1;
  tq_err err;
  tq_feed_summary_free(&f->sum);
  assert_int_equal(tq_feed_poll(f->lib, f->net, "capped", &o, &f->sum, &err), TQ_OK);
  assert_false(f->sum.complete);
  assert_non_null(strstr(f->sum.stopped, "cap"));
  tq_feed feed;
  assert_int_equal(tq_feed_get(f->lib, "capped", &feed, &err), TQ_OK);
  assert_int_equal(feed.last_ok, TQ_FEED_INCOMPLETE); /* not "ok" */
  assert_non_null(strstr(feed.last_error, "incomplete"));
  assert_int_equal(sql_int(f, "SELECT count(*) FROM objects WHERE type='indicator'"), 10);
  /* The next poll continues from the checkpoint and reaches the end. */
  assert_int_equal(poll(f, "capped", 0, &err), TQ_OK);
  assert_true(f->sum.complete);
  assert_int_equal(tq_feed_get(f->lib, "capped", &feed, &err), TQ_OK);
  assert_int_equal(feed.last_ok, TQ_FEED_OK);
  assert_string_equal(feed.last_error, "");
  assert_int_equal(sql_int(f, "SELECT count(*) FROM objects WHERE type='indicator'"), 30);
}

static void test_tie_larger_than_any_page_fails_naming_feed_and_date(void **state) {
  fixture *f = *state;
  TS.no_next = 1;  /* paging by added_after only ... */
  TS.max_page = 5; /* ... and no page holds the 12 objects of one date_added */
  for (int i = 0; i < 12; i++) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "[ipv4-addr:value = '10.9.0.%d']", i + 1);
    add_indicator(40, 500 + i, pattern, "2024-05-01T00:00:00.000Z", "");
  }
  make_feed(f, "tied", 5);
  tq_err err;
  assert_int_equal(poll(f, "tied", 0, &err), TQ_ELIMIT);
  assert_non_null(strstr(err.msg, "feed tied"));
  assert_non_null(strstr(err.msg, ts_date(40, 0)));
  tq_feed feed;
  assert_int_equal(tq_feed_get(f->lib, "tied", &feed, &err), TQ_OK);
  assert_int_equal(feed.last_ok, TQ_FEED_FAILED);
  assert_non_null(strstr(feed.last_error, ts_date(40, 0)));
}

/* Poll A of the overlap test: its first page waits at the server's gate. */
typedef struct overlap_poll {
  const char *path;
  tq_code rc;
} overlap_poll;

static void *poll_in_thread(void *arg) {
  overlap_poll *a = arg;
  tq_lib *lib = NULL;
  tq_net *net = NULL;
  tq_err err;
  a->rc = tq_lib_open(a->path, 0, &lib, &err);
  if (a->rc == TQ_OK)
    a->rc = tq_net_new(NULL, &net, &err);
  tq_feed_poll_opts o;
  tq_feed_poll_opts_init(&o);
  o.retry_max = 0;
  o.max_pages = 1;
  o.tx_objects = 1;
  tq_feed_summary sum;
  memset(&sum, 0, sizeof sum);
  if (a->rc == TQ_OK)
    a->rc = tq_feed_poll(lib, net, "both", &o, &sum, &err);
  tq_feed_summary_free(&sum);
  tq_net_free(net);
  tq_lib_close(lib);
  return NULL;
}

static void test_checkpoint_never_moves_back_when_polls_overlap(void **state) {
  fixture *f = *state;
  add_ip_indicators(30, 10);
  make_feed(f, "both", 10);
  TS.gate_request = 1; /* poll A's first page is held ... */
  overlap_poll a = {.path = f->path};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, poll_in_thread, &a), 0);
  pthread_mutex_lock(&TS.mu);
  while (!TS.gate_waiting)
    pthread_cond_wait(&TS.cv, &TS.mu);
  pthread_mutex_unlock(&TS.mu);
  tq_err err; /* ... while poll B reads the whole collection */
  assert_int_equal(poll(f, "both", 0, &err), TQ_OK);
  tq_feed feed;
  assert_int_equal(tq_feed_get(f->lib, "both", &feed, &err), TQ_OK);
  assert_string_equal(feed.checkpoint, ts_date(39, 0));
  pthread_mutex_lock(&TS.mu);
  TS.gate_open = 1; /* A now commits its first page, with the checkpoint of that page */
  pthread_cond_broadcast(&TS.cv);
  pthread_mutex_unlock(&TS.mu);
  pthread_join(th, NULL);
  assert_int_equal(a.rc, TQ_OK);
  assert_int_equal(tq_feed_get(f->lib, "both", &feed, &err), TQ_OK);
  assert_string_equal(feed.checkpoint, ts_date(39, 0)); /* not ts_date(19, 0) */
}

static void test_asn_pattern_is_an_asn_indicator(void **state) {
  fixture *f = *state;
  add_indicator(1, 1, "[autonomous-system:number = 15169]", "2024-05-01T00:00:00.000Z", "");
  make_feed(f, "asn", 10);
  tq_err err;
  assert_int_equal(poll(f, "asn", 0, &err), TQ_OK);
  tq_object *o = get(f, "indicator", "ASN", "AS15169");
  tq_object_free(o);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM objects WHERE type='signature'"), 0);
}

static void test_course_of_action_maps_to_its_threatq_type(void **state) {
  fixture *f = *state;
  add_sdo(1, "course-of-action", 1,
          ",\"name\":\"Block outbound SMB\",\"description\":\"At the perimeter.\"");
  add_sdo(2, "malware", 2, ",\"name\":\"Wannacry\",\"is_family\":true");
  char extra[400];
  snprintf(extra, sizeof extra,
           ",\"relationship_type\":\"mitigates\",\"source_ref\":\"%s\",\"target_ref\":\"%s\"",
           uid("course-of-action", 1), uid("malware", 2));
  add_sdo(3, "relationship", 3, extra);
  make_feed(f, "coa", 10);
  tq_err err;
  assert_int_equal(poll(f, "coa", 0, &err), TQ_OK);
  assert_int_equal(f->sum.unknown, 0);
  assert_int_equal(count_of(f->sum.by_type, f->sum.n_by_type, "course-of-action"), 1);
  tq_object *o = get(f, "course_of_action", NULL, "Block outbound SMB");
  assert_string_equal(o->description, "At the perimeter.");
  const tq_link *l = link_to(o, "Wannacry");
  assert_non_null(l);
  assert_string_equal(l->link_type, "mitigates");
  tq_object_free(o);
}

static void test_links_whose_end_never_comes_are_counted_and_dropped(void **state) {
  fixture *f = *state;
  char extra[400];
  add_sdo(1, "malware", 1, ",\"name\":\"Lumma\",\"is_family\":true");
  /* an end of a type that is not ingested, and one the feed never sends */
  snprintf(extra, sizeof extra,
           ",\"relationship_type\":\"related-to\",\"source_ref\":\"%s\",\"target_ref\":\"%s\"",
           uid("malware", 1), uid("x-acme-widget", 9));
  add_sdo(2, "relationship", 1, extra);
  snprintf(extra, sizeof extra,
           ",\"relationship_type\":\"uses\",\"source_ref\":\"%s\",\"target_ref\":\"%s\"",
           uid("malware", 1), uid("tool", 404));
  add_sdo(3, "relationship", 2, extra);
  add_ip_indicators(20, 10);
  make_feed(f, "dangling", 5);
  tq_feed_poll_opts o;
  tq_feed_poll_opts_init(&o);
  o.retry_max = 0;
  o.max_pages = 1; /* an incomplete pass keeps them: later pages may bring the ends */
  tq_err err;
  tq_feed_summary_free(&f->sum);
  assert_int_equal(tq_feed_poll(f->lib, f->net, "dangling", &o, &f->sum, &err), TQ_OK);
  assert_false(f->sum.complete);
  assert_int_equal(f->sum.links_dropped, 0);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_pending"), 2);
  /* the pass that reaches the end drops and counts them */
  assert_int_equal(poll(f, "dangling", 0, &err), TQ_OK);
  assert_true(f->sum.complete);
  assert_int_equal(f->sum.links_dropped, 2);
  assert_int_equal(f->sum.links_pending, 0);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM stix_pending"), 0);
  cJSON *j = tq_feed_summary_json(&f->sum, 1);
  assert_int_equal(cJSON_GetObjectItem(j, "links_dropped")->valueint, 2);
  cJSON_Delete(j);
}

static void test_revoked_and_deprecated_objects_stay_apart_from_current_ones(void **state) {
  fixture *f = *state;
  /* ATT&CK: the old technique revoked (and another deprecated) under the current one's name */
  add_sdo(1, "attack-pattern", 1,
          ",\"name\":\"Phishing\",\"revoked\":true,\"external_references\":[{\"source_name\":"
          "\"mitre-attack\",\"external_id\":\"T1192\"}]");
  add_sdo(2, "attack-pattern", 2,
          ",\"name\":\"Phishing\",\"x_mitre_deprecated\":true,\"external_references\":[{"
          "\"source_name\":\"mitre-attack\",\"external_id\":\"T1193\"}]");
  add_sdo(3, "attack-pattern", 3,
          ",\"name\":\"Phishing\",\"external_references\":[{\"source_name\":\"mitre-attack\","
          "\"external_id\":\"T1566\"}]");
  make_feed(f, "attack", 10);
  tq_err err;
  assert_int_equal(poll(f, "attack", 0, &err), TQ_OK);
  tq_object *cur = get(f, "attack_pattern", NULL, "Phishing");
  assert_null(attr(cur, "Revoked"));
  assert_string_equal(attr(cur, "MITRE ID")->value, "T1566");
  for (size_t i = 0; i < cur->n_attrs; i++)
    if (strcmp(cur->attrs[i].name, "MITRE ID") == 0)
      assert_string_equal(cur->attrs[i].value, "T1566"); /* no other technique's id */
  tq_object_free(cur);
  tq_object *rev = get(f, "attack_pattern", NULL, "Phishing (revoked)");
  assert_string_equal(attr(rev, "Revoked")->value, "true");
  assert_string_equal(attr(rev, "MITRE ID")->value, "T1192");
  tq_object_free(rev);
  tq_object *dep = get(f, "attack_pattern", NULL, "Phishing (deprecated)");
  assert_string_equal(attr(dep, "MITRE ID")->value, "T1193");
  tq_object_free(dep);
}

/* Type names, ids and reasons in a poll's summary come from the feed: a newline or a terminal
 * escape in them is printed escaped, so a feed cannot forge summary lines. */
static void test_feed_text_in_the_summary_is_escaped(void **state) {
  (void)state;
  tq_feed_bad bad = {.id = "indicator--x\nfeed forged: 0 page(s)", .reason = "bad\x1b[31m red"};
  tq_feed_count unknown = {.name = "x-evil\r\x1b]0;title\x07", .n = 1};
  tq_feed_summary s = {.feed = "f",
                       .bad = &bad,
                       .n_bad = 1,
                       .malformed = 1,
                       .unknown_types = &unknown,
                       .n_unknown_types = 1,
                       .stopped = "page cap\nforged line"};
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  tq_feed_summary_print(&s, out);
  fclose(out);
  assert_null(strchr(text, '\x1b'));
  assert_null(strchr(text, '\r'));
  assert_null(strchr(text, '\x07'));
  assert_null(strstr(text, "\nfeed forged"));
  assert_null(strstr(text, "\nforged line"));
  assert_non_null(strstr(text, "indicator--x\\nfeed forged"));
  assert_non_null(strstr(text, "bad\\x1b[31m red"));
  free(text);
}

int main(void) {
  if (ts_start() != 0)
    return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_simple_pattern_gives_one_indicator_per_ored_value),
      T(test_crash_mid_poll_then_poll_again_has_every_object_once),
      T(test_crash_mid_group_loses_only_the_open_group),
      T(test_redelivered_versions_are_no_ops),
      T(test_revoked_version_lowers_score_by_source_decrease),
      T(test_versions_of_one_id_in_a_page),
      T(test_relationships_and_report_refs_link_across_pages),
      T(test_tlp_markings_map_to_attribute_and_source_tlp),
      T(test_malformed_objects_are_reported_and_the_rest_ingested),
      T(test_unknown_types_are_counted_not_dropped_silently),
      T(test_wrong_credentials_are_recorded_on_the_feed),
      T(test_poll_due_follows_every_and_enabled),
      T(test_report_hub_rest_feed_ingests_bundles_once),
      T(test_definitions_are_checked_and_presets_exist),
      T(test_incomplete_poll_is_recorded_and_the_next_poll_finishes),
      T(test_tie_larger_than_any_page_fails_naming_feed_and_date),
      T(test_checkpoint_never_moves_back_when_polls_overlap),
      T(test_asn_pattern_is_an_asn_indicator),
      T(test_course_of_action_maps_to_its_threatq_type),
      T(test_links_whose_end_never_comes_are_counted_and_dropped),
      T(test_revoked_and_deprecated_objects_stay_apart_from_current_ones),
      cmocka_unit_test(test_feed_text_in_the_summary_is_escaped),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_stop();
  return rc;
}
