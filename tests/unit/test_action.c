/* test_action.c: the bulk action runner against a local libmicrohttpd server that answers the
 * RST IoC Lookup route: values with "miss" are not found, with "fail" a 500 (after retries:
 * failed), others a hit. Checks the counts, what is written, the checkpoint rows, the write
 * filters, resume after a checkpoint, and the errors a user sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <microhttpd.h>
#include <sqlite3.h>

#include "tqhost/workflow.h"

typedef struct fx {
  char dir[64];
  char db[128];
  char url[64];
  tq_lib *lib;
  tq_action *a;
  struct MHD_Daemon *mhd;
} fx;

static char g_src[4096];

/* The routes /v1/item and /v1/done of the pace plugin (test_answered_runs_do_not_hold_slots):
 * the order in which the server saw them, "i<value>" or "d<value>". */
#define EVENTS_MAX 64
static char g_events[EVENTS_MAX][32];
static int g_n_events;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **ptr) {
  (void)cls, (void)method, (void)version, (void)data, (void)size, (void)ptr;
  const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "value");
  char body[512];
  int status = 200;
  int item = strcmp(url, "/v1/item") == 0, done = strcmp(url, "/v1/done") == 0;
  if ((item || done) && v) { /* one thread (MHD's internal polling thread) writes the log */
    if (g_n_events < EVENTS_MAX)
      snprintf(g_events[g_n_events++], sizeof g_events[0], "%c%s", item ? 'i' : 'd', v);
    snprintf(body, sizeof body, "{\"ok\":true}");
  } else if (v == NULL || strstr(v, "fail")) {
    status = 500;
    snprintf(body, sizeof body, "{\"message\":\"Internal server error\"}");
  } else if (strstr(v, "miss")) {
    snprintf(body, sizeof body, "{\"ioc_value\":\"%s\",\"error\":\"Not Found\"}", v);
  } else {
    snprintf(body, sizeof body,
             "{\"id\":\"7b72e456-adb4-3555-b298-32b57807d0e8\",\"ioc_value\":\"%s\","
             "\"ioc_type\":\"domain\",\"tags\":{\"str\":[\"c2\"]},\"score\":{\"total\":\"42\"},"
             "\"threat\":[\"emotet\"],\"fp\":{\"alarm\":\"false\"}}",
             v);
  }
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return rc;
}

static void add(fx *f, const char *value) {
  const char *srcs[1] = {"Test"};
  tq_object_in in = {.value = value, .sources = srcs, .n_sources = 1};
  tq_err err = {0};
  if (tq_lib_object_put(f->lib, &in, NULL, NULL, &err) != TQ_OK)
    fail_msg("add %s: %s", value, err.msg);
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  tq_err err = {0};
  strcpy(f->dir, "/tmp/tq_action_XXXXXX");
  if (f == NULL || mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(f->db, sizeof f->db, "%s/lib.db", f->dir);
  f->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer, NULL,
                            MHD_OPTION_END);
  if (f->mhd == NULL)
    return -1;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(f->mhd, MHD_DAEMON_INFO_BIND_PORT);
  snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u/v1", (unsigned)info->port);
  char path[4200];
  snprintf(path, sizeof path, "%s/actions/rst-ioc-lookup-action.yaml", g_src);
  if (tq_lib_open(f->db, TQ_LIB_OPEN_CREATE, &f->lib, &err) != TQ_OK ||
      tq_action_load(path, &f->a, NULL, &err) != TQ_OK) {
    fprintf(stderr, "setup: %s\n", err.msg);
    return -1;
  }
  tq_query q;
  tq_query_init(&q);
  q.source = tq_strdup("Test");
  tq_lib_begin(f->lib, &err);
  for (int i = 0; i < 30; i++) {
    char v[64];
    snprintf(v, sizeof v, "%s%d.example.org", i % 10 == 1 ? "miss" : i % 10 == 2 ? "fail" : "d", i);
    add(f, v);
  }
  if (tq_lib_commit(f->lib, &err) != TQ_OK ||
      tq_lib_collection_put(f->lib, "c", &q, 1, &err) != TQ_OK)
    return -1;
  tq_query_free(&q);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  tq_action_free(f->a);
  tq_lib_close(f->lib);
  MHD_stop_daemon(f->mhd);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  free(f);
  return system(cmd) == 0 ? 0 : -1;
}

static tq_lua_kv g_sets[4];

static tq_action_opts opts(fx *f, size_t n_extra, const tq_lua_kv *extra) {
  g_sets[0] = (tq_lua_kv){"api_key", "unit-test-key-0123456789"};
  g_sets[1] = (tq_lua_kv){"base_url", f->url};
  for (size_t i = 0; i < n_extra && i < 2; i++)
    g_sets[2 + i] = extra[i];
  tq_action_opts o = {.collection = "c",
                      .overrides = g_sets,
                      .n_overrides = 2 + n_extra,
                      .concurrency = 4,
                      .db_path = f->db,
                      .rate_per_s = 100000};
  return o;
}

static int64_t sql_int(fx *f, const char *sql) {
  sqlite3_stmt *st = NULL;
  int64_t v = -1;
  if (sqlite3_prepare_v2(tq_lib_db(f->lib), sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void run_ok(fx *f, const tq_action_opts *o, tq_run_summary *s) {
  tq_err err = {0};
  if (tq_action_run(f->lib, f->a, o, s, &err) != TQ_OK)
    fail_msg("run: %s", err.msg);
}

/* Every item ends enriched, not found or failed; the run row and run_items say the same. */
static void test_run_counts_every_item(void **state) {
  fx *f = *state;
  tq_action_opts o = opts(f, 0, NULL);
  tq_run_summary s;
  run_ok(f, &o, &s);
  assert_string_equal(s.status, "done");
  assert_int_equal(s.total, 30);
  assert_int_equal(s.enriched, 24);
  assert_int_equal(s.not_found, 3);
  assert_int_equal(s.failed, 3);
  assert_int_equal(sql_int(f, "SELECT enriched + not_found + failed FROM runs WHERE id = 1"), 30);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM run_items WHERE outcome = 'failed'"), 3);
  assert_int_equal(sql_int(f, "SELECT last_id FROM runs"), sql_int(f, "SELECT max(id) FROM "
                                                                      "objects WHERE value LIKE "
                                                                      "'%example.org'"));
  tq_run_reason *r = NULL;
  size_t n = 0;
  tq_err err = {0};
  assert_int_equal(tq_run_reasons(f->lib, s.run_id, &r, &n, &err), TQ_OK);
  assert_int_equal(n, 2);
  assert_string_equal(r[0].outcome, "failed"); /* ties: failed before not_found */
  assert_non_null(strstr(r[0].reason, "HTTP 500"));
  tq_run_reasons_free(r, n);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM attributes WHERE name = 'RST Score'"), 24);
  /* the plugin's label is the source: an operation and an action write the same */
  assert_int_equal(sql_int(f, "SELECT count(*) FROM sources WHERE name = 'RST IoC Lookup' AND "
                              "kind = 'plugin'"),
                   1);
  /* secrets given as overrides are never recorded */
  assert_int_equal(sql_int(f, "SELECT count(*) FROM runs WHERE settings LIKE '%unit-test-key%'"),
                   0);
}

/* write_attributes and write_links narrow down what is written. */
static void test_write_filters(void **state) {
  fx *f = *state;
  tq_lua_kv extra[2] = {{"write_attributes", "RST Score, Category"}, {"write_links", "false"}};
  tq_action_opts o = opts(f, 2, extra);
  tq_run_summary s;
  run_ok(f, &o, &s);
  assert_int_equal(s.enriched, 24);
  assert_int_equal(sql_int(f, "SELECT count(DISTINCT a.name) FROM attributes a JOIN sources s ON "
                              "s.id = a.source_id WHERE s.name = 'RST IoC Lookup'"),
                   2);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM links"), 0);
}

/* A dry run contacts the API but writes nothing, not even a run. */
static void test_dry_run_writes_nothing(void **state) {
  fx *f = *state;
  tq_action_opts o = opts(f, 0, NULL);
  o.dry_run = 1;
  tq_run_summary s;
  run_ok(f, &o, &s);
  assert_int_equal(s.enriched, 24);
  assert_int_equal(s.run_id, 0);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM runs"), 0);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM attributes"), 0);
}

/* Resume continues after the checkpoint: items up to last_id are not redone, the rest is. */
static void test_resume_after_checkpoint(void **state) {
  fx *f = *state;
  tq_action_opts o = opts(f, 0, NULL);
  tq_run_summary s;
  run_ok(f, &o, &s);
  /* As if killed after the first 10 items: their results stay, the rest is undone. */
  int64_t mid = sql_int(f, "SELECT id FROM objects WHERE value LIKE '%example.org' ORDER BY id "
                           "LIMIT 1 OFFSET 9");
  char sql[512];
  snprintf(sql, sizeof sql,
           "DELETE FROM attributes WHERE object_id > %lld; DELETE FROM run_items WHERE object_id "
           "> %lld; UPDATE runs SET status = 'running', last_id = %lld, enriched = 8, "
           "not_found = 1, failed = 1",
           (long long)mid, (long long)mid, (long long)mid);
  assert_int_equal(sqlite3_exec(tq_lib_db(f->lib), sql, NULL, NULL, NULL), SQLITE_OK);
  tq_err err = {0};
  tq_action_opts ro = opts(f, 0, NULL);
  ro.collection = NULL;
  ro.overrides = g_sets; /* the API key again: secrets are not recorded */
  ro.n_overrides = 1;
  /* "running", owned by a live process (this one) with a fresh heartbeat: not resumed. */
  int64_t run_id = s.run_id;
  assert_int_equal(tq_action_resume(f->lib, run_id, &ro, &s, &err), TQ_EDENIED);
  assert_non_null(strstr(err.msg, "is running in another process"));
  tq_run_info info;
  assert_int_equal(tq_run_get(f->lib, run_id, &info, &err), TQ_OK);
  assert_true(info.live);
  assert_string_equal(info.state, "running");
  /* Its process died (another host's, silent for longer than the lease): shown and resumed. */
  assert_int_equal(sqlite3_exec(tq_lib_db(f->lib),
                                "UPDATE runs SET owner = 'gone-host some-boot 4242',"
                                " updated_at = updated_at - 3600",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  assert_int_equal(tq_run_get(f->lib, run_id, &info, &err), TQ_OK);
  assert_false(info.live);
  assert_string_equal(info.state, "interrupted (process died)");
  assert_int_equal(tq_action_resume(f->lib, run_id, &ro, &s, &err), TQ_OK);
  assert_string_equal(s.status, "done");
  assert_int_equal(s.enriched, 24);
  assert_int_equal(s.not_found + s.failed, 6);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM attributes WHERE name = 'RST Score'"), 24);
  assert_int_equal(tq_action_resume(f->lib, s.run_id, &ro, &s, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "done already"));
}

/* Errors name what is wrong. */
static void test_errors_are_named(void **state) {
  fx *f = *state;
  tq_run_summary s;
  tq_err err = {0};
  tq_lua_kv bad[1] = {{"colour", "red"}};
  tq_action_opts o = opts(f, 1, bad);
  assert_int_equal(tq_action_run(f->lib, f->a, &o, &s, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "'colour' is not a setting"));
  o = opts(f, 0, NULL);
  o.overrides = g_sets + 1; /* no api_key, none stored */
  o.n_overrides = 1;
  assert_int_equal(tq_action_run(f->lib, f->a, &o, &s, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "tqhost plugin configure rst-ioc-lookup api_key="));
  o = opts(f, 0, NULL);
  o.collection = "nope";
  assert_int_not_equal(tq_action_run(f->lib, f->a, &o, &s, &err), TQ_OK);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM runs"), 0);
  tq_action *a = NULL;
  char path[200];
  snprintf(path, sizeof path, "%s/bad.yaml", f->dir);
  FILE *fp = fopen(path, "w");
  fputs("name: bad\nlabel: Bad\nversion: 1.0.0\nplugin: rst-ioc-lookup\nentry: lookup\n"
        "input:\n  object_types: [indicator]\n  indicator_types: [IP Adress]\n",
        fp);
  fclose(fp);
  assert_int_equal(tq_action_load(path, &a, NULL, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "bad.yaml:8:21: input.indicator_types[0]: 'IP Adress'"));
  assert_int_equal(tq_action_find(f->dir, "missing", &a, &err), TQ_ENOTFOUND);
}

/* Writes path (under dir) with text. */
static void write_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

/* The concurrency bounds the requests the API sees, not the runs: a run whose answer came
 * back and that is still mapping it holds no slot. The pace plugin asks /item, then maps for
 * a while (a loop of some 10 ms), then asks /done. At concurrency 4 the fifth item's /item
 * must reach the server before the first /done: the runs answered first free their slots at
 * once, and the new requests go on the wire before the answers are mapped. (Counting runs,
 * the fifth item would start only after the first run's /done was answered.) */
static void test_answered_runs_do_not_hold_slots(void **state) {
  fx *f = *state;
  char pdir[128], plug[160], path[200];
  snprintf(pdir, sizeof pdir, "%s/plugins", f->dir);
  snprintf(plug, sizeof plug, "%s/pace", pdir);
  assert_int_equal(mkdir(pdir, 0700), 0);
  assert_int_equal(mkdir(plug, 0700), 0);
  write_file(plug, "manifest.yaml",
             "name: pace\nlabel: Pace\nversion: 1.0.0\ndescription: asks, maps slowly, asks "
             "again\nauthor: tests\nscript: operation.lua\nconfig:\n"
             "  - { key: base_url, label: Base URL, type: url, default: \"http://127.0.0.1/v1\" }\n"
             "operations:\n  - { name: go, label: Go, entry: go, object_types: [indicator] }\n"
             "network:\n  hosts: [\"{config.base_url}\"]\n");
  write_file(plug, "operation.lua",
             "return { go = function(obj, ctx)\n"
             "  local base = ctx.config.base_url\n"
             "  local r, err = http.get(base .. '/item', { query = { value = obj.value } })\n"
             "  if not r then return nil, err.message end\n"
             "  local x = 0\n"
             "  for i = 1, 2000000 do x = x + i % 7 end\n"
             "  r, err = http.get(base .. '/done', { query = { value = obj.value } })\n"
             "  if not r then return nil, err.message end\n"
             "  ctx:attribute('Paced', tostring(x))\n"
             "end }\n");
  write_file(f->dir, "pace-action.yaml",
             "name: pace-action\nlabel: Pace\nversion: 1.0.0\nplugin: pace\nentry: go\n"
             "input:\n  object_types: [indicator]\n  concurrency: 4\n"
             "config:\n  - { key: base_url, label: Base URL, type: url }\n"
             "network:\n  hosts: [\"{config.base_url}\"]\n");
  char *old = tq_strdup(getenv("TQHOST_PLUGINS"));
  setenv("TQHOST_PLUGINS", pdir, 1);
  tq_action *a = NULL;
  tq_err err = {0};
  snprintf(path, sizeof path, "%s/pace-action.yaml", f->dir);
  tq_code rc = tq_action_load(path, &a, NULL, &err);
  setenv("TQHOST_PLUGINS", old, 1);
  free(old);
  if (rc != TQ_OK)
    fail_msg("load: %s", err.msg);
  g_n_events = 0;
  tq_action_opts o = opts(f, 0, NULL);
  o.overrides = g_sets + 1; /* base_url only */
  o.n_overrides = 1;
  tq_run_summary s;
  if (tq_action_run(f->lib, a, &o, &s, &err) != TQ_OK)
    fail_msg("run: %s", err.msg);
  tq_action_free(a);
  assert_int_equal(s.enriched, 30);
  int items = 0, first_done = -1;
  for (int i = 0; i < g_n_events && first_done < 0; i++) {
    if (g_events[i][0] == 'd')
      first_done = i;
    else
      items++;
  }
  assert_int_equal(g_n_events, 60);
  assert_true(first_done >= 0);
  if (items < 5)
    fail_msg("only %d /item requests before the first /done", items);
}

/* Loads the action file name (under dir) with TQHOST_PLUGINS=pdir; returns its code. */
static tq_code load_with(const char *pdir, const char *dir, const char *name, tq_err *err) {
  char path[300];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  char *old = tq_strdup(getenv("TQHOST_PLUGINS"));
  setenv("TQHOST_PLUGINS", pdir, 1);
  tq_action *a = NULL;
  tq_code rc = tq_action_load(path, &a, NULL, err);
  setenv("TQHOST_PLUGINS", old, 1);
  free(old);
  tq_action_free(a);
  return rc;
}

/* An action bound to plugin victim gets victim's stored secrets: it may not run another
 * plugin's script, reach a host victim does not allow, nor move victim's hosts through a
 * config default. Each is refused at load, naming the file, line, column and field. */
static void test_an_action_stays_within_its_plugin(void **state) {
  fx *f = *state;
  char pdir[128], dir[200];
  snprintf(pdir, sizeof pdir, "%s/plugins", f->dir);
  assert_int_equal(mkdir(pdir, 0700), 0);
  snprintf(dir, sizeof dir, "%s/lib", pdir);
  assert_int_equal(mkdir(dir, 0700), 0);
  write_file(dir, "shared.lua", "return { go = function() end }\n");
  static const char *const plugins[][2] = {{"victim", "{config.base_url}"},
                                           {"other", "collector.example"}};
  for (int i = 0; i < 2; i++) {
    snprintf(dir, sizeof dir, "%s/%s", pdir, plugins[i][0]);
    assert_int_equal(mkdir(dir, 0700), 0);
    char text[600];
    snprintf(text, sizeof text,
             "name: %s\nlabel: X\nversion: 1.0.0\nscript: operation.lua\nconfig:\n"
             "  - { key: api_key, type: password }\n"
             "  - { key: base_url, type: url, default: \"https://api.victim.example/v1\" }\n"
             "operations:\n  - { name: go, entry: go, object_types: [indicator] }\n"
             "network:\n  hosts: [\"%s\"]\n",
             plugins[i][0], plugins[i][1]);
    write_file(dir, "manifest.yaml", text);
    write_file(dir, "operation.lua", "return { go = function() end }\n");
  }
  static const char head[] = "name: %s\nlabel: X\nversion: 1.0.0\nplugin: victim\nentry: go\n"
                             "input:\n  object_types: [indicator]\n";
  char text[600];
  tq_err err = {0};
  snprintf(text, sizeof text, head, "steal-script");
  strcat(text, "script: other/operation.lua\n");
  write_file(f->dir, "steal-script.yaml", text);
  assert_int_equal(load_with(pdir, f->dir, "steal-script.yaml", &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "steal-script.yaml:8:9: script: 'other/operation.lua' is "
                                  "neither in plugin victim's folder nor in"));
  snprintf(text, sizeof text, head, "steal-hosts");
  strcat(text, "network:\n  hosts: [\"{config.base_url}\", collector.example]\n");
  write_file(f->dir, "steal-hosts.yaml", text);
  assert_int_equal(load_with(pdir, f->dir, "steal-hosts.yaml", &err), TQ_EINVAL);
  print_message("%s\n", err.msg);
  assert_non_null(strstr(err.msg, "steal-hosts.yaml:9:32: network.hosts[1]: 'collector.example' "
                                  "is not in plugin victim's network.hosts"));
  snprintf(text, sizeof text, head, "steal-default");
  strcat(text,
         "config:\n  - { key: base_url, type: url, default: \"https://collector.example\" }\n");
  write_file(f->dir, "steal-default.yaml", text);
  assert_int_equal(load_with(pdir, f->dir, "steal-default.yaml", &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "steal-default.yaml:9:42: config[0].default: "
                                  "'https://collector.example' differs from plugin victim's "
                                  "default"));
  /* What stays inside is fine: a lib script, the plugin's own hosts, the plugin's default. */
  snprintf(text, sizeof text, head, "fair");
  strcat(text, "script: lib/shared.lua\nnetwork:\n  hosts: [\"{config.base_url}\"]\n"
               "config:\n  - { key: base_url, type: url, default: "
               "\"https://api.victim.example/v1\" }\n");
  write_file(f->dir, "fair.yaml", text);
  if (load_with(pdir, f->dir, "fair.yaml", &err) != TQ_OK)
    fail_msg("fair: %s", err.msg);
}

/* Loads the action file name (under f->dir) with TQHOST_PLUGINS=pdir into *a. */
static void load_action(fx *f, const char *pdir, const char *name, tq_action **a) {
  char path[300];
  snprintf(path, sizeof path, "%s/%s", f->dir, name);
  char *old = tq_strdup(getenv("TQHOST_PLUGINS"));
  setenv("TQHOST_PLUGINS", pdir, 1);
  tq_err err = {0};
  tq_code rc = tq_action_load(path, a, NULL, &err);
  setenv("TQHOST_PLUGINS", old, 1);
  free(old);
  if (rc != TQ_OK)
    fail_msg("load %s: %s", name, err.msg);
}

/* Whether some reason of run_id (failed or not found) contains text. */
static int reason_has(fx *f, int64_t run_id, const char *outcome, const char *text) {
  tq_run_reason *r = NULL;
  size_t n = 0;
  tq_err err = {0};
  assert_int_equal(tq_run_reasons(f->lib, run_id, &r, &n, &err), TQ_OK);
  int found = 0;
  for (size_t i = 0; i < n; i++) {
    print_message("%s x%lld: %s\n", r[i].outcome, (long long)r[i].count, r[i].reason);
    found |= strcmp(r[i].outcome, outcome) == 0 && strstr(r[i].reason, text) != NULL;
  }
  tq_run_reasons_free(r, n);
  return found;
}

/* The batch protocol: entry(items, ctx) with the objects' views; each item's results go
 * through c = ctx:item(i) into its own change set, checked and written as a single run's.
 * A bad change (a tag with a control character, a set over the item cap) fails that item
 * only; an item the entry never touched fails with a clear reason. Hostile entries: an item
 * index out of range, and an item ctx kept (in a module's upvalue) past its run, are refused
 * and fail their call's items with the error. */
static void test_batch_items_get_their_own_change_sets(void **state) {
  fx *f = *state;
  char pdir[128], plug[160], lib[160];
  snprintf(pdir, sizeof pdir, "%s/plugins", f->dir);
  snprintf(plug, sizeof plug, "%s/bulk", pdir);
  snprintf(lib, sizeof lib, "%s/lib", pdir);
  assert_int_equal(mkdir(pdir, 0700), 0);
  assert_int_equal(mkdir(plug, 0700), 0);
  assert_int_equal(mkdir(lib, 0700), 0);
  write_file(plug, "manifest.yaml",
             "name: bulk\nlabel: Bulk\nversion: 1.0.0\ndescription: batch entries\n"
             "author: tests\nscript: operation.lua\n"
             "operations:\n  - { name: one, label: One, entry: one, object_types: [indicator] }\n");
  write_file(lib, "keep.lua",
             "local saved\nreturn { put = function(c) saved = c end, get = function() return "
             "saved end }\n");
  write_file(plug, "operation.lua",
             "local keep = require 'keep'\n"
             "return {\n"
             "one = function(obj, ctx) ctx:attribute('Single', obj.value) end,\n"
             "many = function(items, ctx)\n"
             "  assert(not pcall(ctx.tag, ctx, 'x'), 'the batch ctx records nothing itself')\n"
             "  for i, obj in ipairs(items) do\n"
             "    local c, v = ctx:item(i), obj.value\n"
             "    assert(obj.type == 'indicator' and obj.indicator_type and #obj.attributes == 0)\n"
             "    if v:find('^miss') then c:show({ found = false, message = 'not listed' })\n"
             "    elseif v:find('^fail') then c:fail('upstream refused ' .. v)\n"
             "    elseif v == 'd3.example.org' then\n"
             "      local ok, err = c:tag('bad\\1tag')\n"
             "      assert(ok == nil and err:find('control character'), tostring(err))\n"
             "      c:attribute('After', 'ignored')\n"
             "    elseif v == 'd4.example.org' then -- never touched\n"
             "    elseif v == 'd5.example.org' then for k = 1, 1001 do c:tag('t' .. k) end\n"
             "    else c:attribute('Batch Value', v); c:tag('batch-' .. obj.indicator_type) end\n"
             "  end\n"
             "end,\n"
             "beyond = function(items, ctx) ctx:item(#items + 1):tag('x') end,\n"
             "kept = function(items, ctx)\n"
             "  local old = keep.get()\n"
             "  keep.put(ctx:item(1))\n"
             "  if old then old:tag('stolen') end\n"
             "  for i = 1, #items do ctx:item(i):attribute('Kept', 'ok') end\n"
             "end }\n");
  static const char *const entries[] = {"many", "beyond", "kept"};
  int64_t run_ids[3];
  tq_run_summary sums[3];
  for (int k = 0; k < 3; k++) {
    char text[600], name[64];
    snprintf(name, sizeof name, "bulk-%s.yaml", entries[k]);
    snprintf(text, sizeof text,
             "name: bulk-%s\nlabel: Bulk\nversion: 1.0.0\nplugin: bulk\nentry: one\n"
             "input:\n  object_types: [indicator]\n  concurrency: 2\n  batch_entry: %s\n"
             "  batch_threshold: 10\n  batch_max: 8\n",
             entries[k], entries[k]);
    write_file(f->dir, name, text);
    tq_action *a = NULL;
    load_action(f, pdir, name, &a);
    tq_action_opts o = opts(f, 0, NULL);
    o.n_overrides = 0;
    tq_err err = {0};
    if (tq_action_run(f->lib, a, &o, &sums[k], &err) != TQ_OK)
      fail_msg("run %s: %s", entries[k], err.msg);
    tq_action_free(a);
    run_ids[k] = sums[k].run_id;
    assert_int_equal(sums[k].total, 30);
  }
  /* many: 24 d*, 3 miss*, 3 fail*; d3, d4, d5 fail on their own */
  assert_int_equal(sums[0].enriched, 21);
  assert_int_equal(sums[0].not_found, 3);
  assert_int_equal(sums[0].failed, 6);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM attributes a JOIN objects o ON o.id = "
                              "a.object_id WHERE a.name = 'Batch Value' AND a.value = o.value"),
                   21);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM attributes WHERE name = 'Batch Value'"), 21);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM attributes WHERE name = 'After'"), 0);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM object_tags ot JOIN tags t ON t.id = "
                              "ot.tag_id WHERE t.name LIKE 'batch-%'"),
                   21);
  assert_int_equal(sql_int(f, "SELECT count(*) FROM tags WHERE name = 't1'"), 0);
  assert_true(reason_has(f, run_ids[0], "not_found", "not listed"));
  assert_true(reason_has(f, run_ids[0], "failed", "upstream refused fail"));
  assert_true(reason_has(f, run_ids[0], "failed", "ctx:tag: tag"));
  assert_true(reason_has(f, run_ids[0], "failed", "change set full (1000 entries)"));
  assert_true(reason_has(f, run_ids[0], "failed", "the batch entry gave no result for this item"));
  /* out of range: every call refused */
  assert_int_equal(sums[1].failed, 30);
  assert_true(reason_has(f, run_ids[1], "failed",
                         "ctx:item: item 9 is out of range (the batch "
                         "has 8 items)"));
  /* kept: the first call is fine, every later one is refused at the stolen item ctx */
  assert_int_equal(sums[2].enriched, 8);
  assert_int_equal(sums[2].failed, 22);
  assert_true(reason_has(f, run_ids[2], "failed", "c:tag: this item ctx belongs to run"));
  assert_true(reason_has(f, run_ids[2], "failed", "valid only during the batch run that made it"));
  assert_int_equal(sql_int(f, "SELECT count(*) FROM tags WHERE name = 'stolen'"), 0);
}

int main(void) {
  const char *here = __FILE__;
  const char *slash = strrchr(here, '/');
  snprintf(g_src, sizeof g_src, "%.*s/../..", (int)(slash - here), here);
  char buf[4200];
  snprintf(buf, sizeof buf, "%s/plugins", g_src);
  setenv("TQHOST_PLUGINS", buf, 1);
  snprintf(buf, sizeof buf, "%s/schemas", g_src);
  setenv("TQHOST_SCHEMAS", buf, 1);
  snprintf(buf, sizeof buf, "%s/actions", g_src);
  setenv("TQHOST_ACTIONS", buf, 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_run_counts_every_item, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_filters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dry_run_writes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_after_checkpoint, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errors_are_named, setup, teardown),
      cmocka_unit_test_setup_teardown(test_answered_runs_do_not_hold_slots, setup, teardown),
      cmocka_unit_test_setup_teardown(test_an_action_stays_within_its_plugin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_items_get_their_own_change_sets, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
