/* test_lua_ctx.c: what an entry sees and records: the read-only obj, ctx.config without
 * secrets, the change set, secrets that never leak (log, concatenation, json, show,
 * attributes, results), json, and http in replay mode (tests/lua/ctx.lua, replay.json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#include <cmocka.h>

#include "../lua/lua_test.h"

#define SECRET "S3cr3t-Value-XYZ"

typedef struct fixture {
  tq_lua *rt;
  tq_lua_script *s;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  tq_lua_opts o;
  tq_lua_opts_init(&o);
  char replay[4096];
  snprintf(replay, sizeof replay, "%s", lt_path("replay.json"));
  o.replay_file = replay;
  tq_err err = {0};
  if (tq_lua_new(&o, &f->rt, &err) != TQ_OK)
    fail_msg("%s", err.msg);
  static const tq_lua_kv secrets[] = {{"api_key", SECRET}};
  tq_lua_limits lim = {0};
  f->s = lt_load(f->rt, "ctx-test", "ctx.lua", lim, secrets, 1, NULL);
  assert_non_null(f->s);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tq_lua_script_free(f->s);
  tq_lua_free(f->rt);
  free(f);
  return 0;
}

static tq_object *sample_object(void) {
  static char *sources[] = {"RST Cloud"};
  static char *tags[] = {"c2"};
  static tq_attr attrs[] = {{"Confidence", "80", "RST Cloud", 0, 0, 0},
                            {"Country", "DE", "RST Cloud", 0, 0, 0}};
  static tq_object obj;
  memset(&obj, 0, sizeof obj);
  obj.id = 42;
  obj.object_type = "indicator";
  obj.indicator_type = "IP Address";
  obj.value = "45.83.122.166";
  obj.status = TQ_STATUS_ACTIVE;
  obj.score = 4;
  obj.sources = sources;
  obj.n_sources = 1;
  obj.tags = tags;
  obj.n_tags = 1;
  obj.attrs = attrs;
  obj.n_attrs = 2;
  return &obj;
}

/* Runs one entry on the sample object and returns the finished run. */
static tq_lua_run *run_one(fixture *f, const char *entry) {
  tq_lua_run *run = lt_start(f->rt, f->s, entry, sample_object());
  tq_err err = {0};
  assert_int_equal(tq_lua_run_all(f->rt, &err), TQ_OK);
  return run;
}

static void expect(fixture *f, const char *entry, tq_lua_status st, const char *want) {
  tq_lua_run *run = run_one(f, entry);
  if (tq_lua_run_status(run) != st || strstr(tq_lua_run_message(run), want) == NULL)
    fail_msg("%s: %s '%s' (wanted %s '%s')", entry, tq_lua_status_name(tq_lua_run_status(run)),
             tq_lua_run_message(run), tq_lua_status_name(st), want);
  tq_lua_run_free(run);
}

/* The secret text appears nowhere in what a run leaves behind. */
static void assert_no_secret(const tq_lua_run *run) {
  assert_null(strstr(tq_lua_run_message(run), SECRET));
  assert_null(strstr(tq_lua_run_traceback(run), SECRET));
  const tq_changeset *cs = tq_lua_run_changeset(run);
  for (size_t i = 0; i < cs->n_attrs; i++)
    assert_null(strstr(cs->attrs[i].value, SECRET));
  for (size_t i = 0; i < cs->n_tags; i++)
    assert_null(strstr(cs->tags[i], SECRET));
  if (cs->show) {
    char *text = cJSON_PrintUnformatted(cs->show);
    assert_null(strstr(text, SECRET));
    free(text);
  }
}

/* Whether text holds any 8-byte run of SECRET or of SECRET reversed, in any case: what the
 * masking rule promises never gets out. */
static int leaks(const char *text) {
  char fwd[] = SECRET, rev[sizeof SECRET];
  size_t n = strlen(fwd);
  for (size_t i = 0; i < n; i++)
    rev[i] = fwd[n - 1 - i];
  rev[n] = '\0';
  for (size_t t = 0; text[t]; t++)
    for (size_t k = 0; k + 8 <= n; k++)
      if (strncasecmp(text + t, fwd + k, 8) == 0 || strncasecmp(text + t, rev + k, 8) == 0)
        return 1;
  return 0;
}

static void assert_no_echo(const tq_lua_run *run) {
  assert_false(leaks(tq_lua_run_message(run)));
  assert_false(leaks(tq_lua_run_traceback(run)));
  const tq_changeset *cs = tq_lua_run_changeset(run);
  for (size_t i = 0; i < cs->n_attrs; i++) {
    assert_false(leaks(cs->attrs[i].name));
    assert_false(leaks(cs->attrs[i].value));
  }
  for (size_t i = 0; i < cs->n_tags; i++)
    assert_false(leaks(cs->tags[i]));
  if (cs->show) {
    char *text = cJSON_PrintUnformatted(cs->show);
    if (leaks(text))
      fail_msg("show leaks: %s", text);
    free(text);
  }
}

static void test_an_echoed_secret_is_masked_in_show(void **state) {
  fixture *f = *state;
  tq_lua_run *run = run_one(f, "echo_show");
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  const cJSON *show = tq_lua_run_changeset(run)->show;
  assert_non_null(show);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(show, "list"), 0)->valuestring,
                      "got ********");
  assert_non_null(cJSON_GetObjectItem(show, "key:********"));
  assert_no_echo(run);
  tq_lua_run_free(run);
  run = run_one(f, "echo_return");
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  assert_string_equal(cJSON_GetObjectItem(tq_lua_run_changeset(run)->show, "parts")->valuestring,
                      "******** ********");
  assert_no_echo(run);
  tq_lua_run_free(run);
}

static void test_an_echoed_secret_is_masked_in_logs(void **state) {
  fixture *f = *state;
  tq_log_set_level(TQ_LOG_INFO);
  lt_capture cap;
  lt_capture_begin(&cap);
  tq_lua_run *run = run_one(f, "echo_log");
  char *log = lt_capture_end(&cap);
  tq_log_set_level(TQ_LOG_WARN);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  if (leaks(log))
    fail_msg("log leaks: %s", log);
  assert_non_null(strstr(log, "echo ********"));
  assert_non_null(strstr(log, "echo ********-tail"));
  free(log);
  tq_lua_run_free(run);
}

static void test_an_echoed_secret_is_masked_in_attributes_and_tags(void **state) {
  fixture *f = *state;
  tq_lua_run *run = run_one(f, "echo_attribute");
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  const tq_changeset *cs = tq_lua_run_changeset(run);
  assert_string_equal(cs->attrs[1].value, "v=********");
  assert_string_equal(cs->attrs[2].value, "v=********");
  assert_string_equal(cs->tags[3], "t********");
  assert_no_echo(run);
  tq_lua_run_free(run);
}

static void test_an_echoed_secret_is_masked_in_errors(void **state) {
  fixture *f = *state;
  tq_lua_run *run = run_one(f, "echo_error");
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_ERROR);
  assert_non_null(strstr(tq_lua_run_message(run), "server said ******** / ********"));
  assert_no_echo(run);
  tq_lua_run_free(run);
  run = run_one(f, "echo_reason");
  assert_string_equal(tq_lua_run_message(run), "bad key ********+********");
  assert_no_echo(run);
  tq_lua_run_free(run);
}

static void test_text_sharing_only_short_runs_with_the_secret_is_kept(void **state) {
  fixture *f = *state;
  tq_lua_run *run = run_one(f, "echo_near_miss");
  assert_string_equal(tq_lua_run_changeset(run)->attrs[0].value, "S3cr3t- Value XYZ");
  assert_string_equal(tq_lua_run_message(run), "value-x and S3cr3t-");
  tq_lua_run_free(run);
}

static void test_changeset_records_every_kind(void **state) {
  fixture *f = *state;
  tq_lua_run *run = run_one(f, "changeset");
  if (tq_lua_run_status(run) != TQ_LUA_OK)
    fail_msg("%s", tq_lua_run_message(run));
  const tq_changeset *cs = tq_lua_run_changeset(run);
  assert_int_equal(cs->n_attrs, 2);
  assert_string_equal(cs->attrs[0].name, "Country");
  assert_string_equal(cs->attrs[1].value, "64500");
  assert_int_equal(cs->n_tags, 1);
  assert_int_equal(cs->score, 7);
  assert_string_equal(cs->status, "Review");
  assert_int_equal(cs->n_links, 1);
  assert_string_equal(cs->links[0].object_type, "malware");
  assert_string_equal(cs->links[0].link_type, "indicates");
  assert_string_equal(cs->links[0].description, "seen together");
  assert_int_equal(cs->n_indicators, 1);
  assert_string_equal(cs->indicators[0].indicator_type, "FQDN");
  assert_int_equal(cs->indicators[0].n_attrs, 3);
  assert_non_null(cs->show);
  assert_string_equal(cJSON_GetObjectItem(cs->show, "summary")->valuestring,
                      "enriched 45.83.122.166");
  tq_changeset taken;
  tq_lua_run_take_changeset(run, &taken);
  assert_true(tq_changeset_empty(tq_lua_run_changeset(run)));
  tq_lua_run_free(run);
  assert_int_equal(taken.score, 7);
  tq_changeset_free(&taken);
}

static void test_changeset_values_are_validated(void **state) {
  expect(*state, "bad_status", TQ_LUA_ERROR, "'Deleted' is not a status");
  expect(*state, "bad_score", TQ_LUA_ERROR, "out of range 0..10");
  expect(*state, "bad_link_type", TQ_LUA_ERROR, "'no-such-type' is not an object type");
}

static void test_control_characters_in_names_are_refused(void **state) {
  expect(*state, "bad_tag_name", TQ_LUA_ERROR, "ctx:tag: tag 'ok\\nlevel=error forged'");
  expect(*state, "bad_attribute_name", TQ_LUA_ERROR,
         "ctx:attribute: attribute name 'Country\\x1b[31m': control characters");
  expect(*state, "control_link_type", TQ_LUA_ERROR, "ctx:link: link type 'uses\\r'");
  expect(*state, "bad_indicator_attribute", TQ_LUA_ERROR, "ctx:indicator: attribute name 'x\\ty'");
  fixture *f = *state;
  tq_lua_run *run = run_one(f, "newline_in_value");
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  assert_string_equal(tq_lua_run_changeset(run)->attrs[0].value, "line one\nline two");
  tq_lua_run_free(run);
}

static void test_obj_is_a_readable_view(void **state) { expect(*state, "read_obj", TQ_LUA_OK, ""); }

static void test_obj_is_read_only(void **state) {
  expect(*state, "write_obj", TQ_LUA_ERROR, "read-only table 'obj' (field 'value')");
  expect(*state, "write_obj_attr", TQ_LUA_ERROR, "read-only table");
}

static void test_config_has_no_secret_and_is_read_only(void **state) {
  expect(*state, "config", TQ_LUA_OK, "");
  expect(*state, "write_config", TQ_LUA_ERROR, "read-only table 'ctx.config'");
}

static void test_a_secret_never_reaches_the_log(void **state) {
  fixture *f = *state;
  tq_log_set_level(TQ_LOG_INFO);
  lt_capture cap;
  lt_capture_begin(&cap);
  tq_lua_run *run = run_one(f, "secret_log");
  char *log = lt_capture_end(&cap);
  tq_log_set_level(TQ_LOG_WARN);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  assert_null(strstr(log, SECRET));
  assert_non_null(strstr(log, "key is ********"));
  assert_non_null(strstr(log, "print:\\t********")); /* tabs escaped in a log line */
  assert_non_null(strstr(log, "plugin=ctx-test"));
  assert_non_null(strstr(log, "object=45.83.122.166"));
  free(log);
  tq_lua_run_free(run);
}

static void test_a_script_cannot_forge_a_log_line(void **state) {
  fixture *f = *state;
  tq_log_set_level(TQ_LOG_INFO);
  lt_capture cap;
  lt_capture_begin(&cap);
  tq_lua_run *run = run_one(f, "log_injection");
  char *log = lt_capture_end(&cap);
  tq_log_set_level(TQ_LOG_WARN);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  int lines = 0;
  for (const char *p = log; (p = strchr(p, '\n')) != NULL; p++)
    lines++;
  if (lines != 2 || strchr(log, '\x1b') || strstr(log, "\nlevel=error"))
    fail_msg("forged: %s", log);
  assert_non_null(strstr(log, "ok\\\"\\nlevel=error part=auth msg=\\\"admin logged in\"\n"));
  assert_non_null(strstr(log, "clear\\x1b[2J screen"));
  free(log);
  tq_lua_run_free(run);
}

static void test_a_concatenated_secret_is_masked(void **state) {
  fixture *f = *state;
  tq_lua_run *run = run_one(f, "secret_concat");
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  const tq_changeset *cs = tq_lua_run_changeset(run);
  assert_string_equal(cs->attrs[0].value, "Bearer ********");
  assert_string_equal(cs->tags[0], "********!");
  assert_no_secret(run);
  tq_lua_run_free(run);
}

static void test_a_secret_cannot_be_stored_or_encoded(void **state) {
  fixture *f = *state;
  const char *entries[] = {"secret_attribute", "secret_show",  "secret_json",
                           "secret_return",    "secret_error", "secret_index"};
  lt_capture cap;
  lt_capture_begin(&cap);
  tq_lua_run *runs[6];
  for (int i = 0; i < 6; i++)
    runs[i] = lt_start(f->rt, f->s, entries[i], sample_object());
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  char *log = lt_capture_end(&cap);
  assert_null(strstr(log, SECRET));
  free(log);
  for (int i = 0; i < 6; i++) {
    assert_int_not_equal(tq_lua_run_status(runs[i]), TQ_LUA_OK);
    assert_no_secret(runs[i]);
    assert_true(tq_changeset_empty(tq_lua_run_changeset(runs[i])));
  }
  assert_non_null(strstr(tq_lua_run_message(runs[0]), "secrets cannot be stored"));
  assert_non_null(strstr(tq_lua_run_message(runs[1]), "a secret cannot be encoded"));
  assert_non_null(strstr(tq_lua_run_message(runs[2]), "a secret cannot be encoded"));
  assert_string_equal(tq_lua_run_message(runs[3]), "********");
  assert_string_equal(tq_lua_run_message(runs[4]), "********");
  assert_non_null(strstr(tq_lua_run_message(runs[5]), "a secret is opaque"));
  for (int i = 0; i < 6; i++)
    tq_lua_run_free(runs[i]);
}

static void test_json_roundtrips(void **state) { expect(*state, "json_roundtrip", TQ_LUA_OK, ""); }

static void test_json_refuses_cycles_and_functions(void **state) {
  expect(*state, "json_cycle", TQ_LUA_ERROR, "a cycle");
  expect(*state, "json_function", TQ_LUA_ERROR, "cannot encode a function value at $.f");
}

static void test_http_answers_from_the_replay_file(void **state) {
  fixture *f = *state;
  tq_lua_run *run = run_one(f, "http_replay");
  if (tq_lua_run_status(run) != TQ_LUA_OK)
    fail_msg("%s", tq_lua_run_message(run));
  assert_int_equal(tq_lua_run_changeset(run)->score, 8);
  tq_lua_run_free(run);
}

static void test_an_unrecorded_request_names_its_url(void **state) {
  expect(*state, "http_unrecorded", TQ_LUA_ERROR,
         "no recorded response for GET https://api.example.test/v1/other?q=a%20b%26c");
}

static void test_many_replayed_runs_interleave(void **state) {
  fixture *f = *state;
  tq_lua_run *runs[50];
  for (int i = 0; i < 50; i++)
    runs[i] = lt_start(f->rt, f->s, i % 2 ? "http_replay" : "changeset", sample_object());
  assert_int_equal(tq_lua_active(f->rt), 50);
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  for (int i = 0; i < 50; i++) {
    assert_int_equal(tq_lua_run_status(runs[i]), TQ_LUA_OK);
    tq_lua_run_free(runs[i]);
  }
}

static void test_a_bad_replay_file_is_refused(void **state) {
  (void)state;
  FILE *fp = fopen("/tmp/tq_lua_bad_replay.json", "w");
  fputs("[{\"url\": \"https://x\"}, {\"method\": \"GET\"}]", fp);
  fclose(fp);
  tq_lua_opts o;
  tq_lua_opts_init(&o);
  o.replay_file = "/tmp/tq_lua_bad_replay.json";
  tq_lua *rt = NULL;
  tq_err err = {0};
  assert_int_equal(tq_lua_new(&o, &rt, &err), TQ_EINVAL);
  assert_non_null(strstr(err.msg, "tq_lua_bad_replay.json: exchange 2: \"url\""));
  unlink("/tmp/tq_lua_bad_replay.json");
}

static void test_obj_lists_are_built_on_first_use(void **state) {
  expect(*state, "obj_lists_lazy", TQ_LUA_OK, "");
  expect(*state, "obj_lists_encode_first", TQ_LUA_OK, "");
}

static void test_json_decode_reads_every_form(void **state) {
  expect(*state, "json_decode_cases", TQ_LUA_OK, "");
}

/* Loads ctx.lua with one secret and outcome_only as given. */
static tq_lua_script *load_with(fixture *f, const char *secret, int outcome_only) {
  tq_lua_kv secrets[] = {{"api_key", secret}};
  tq_lua_script_opts o;
  tq_lua_script_opts_init(&o);
  char path[4096];
  snprintf(path, sizeof path, "%s", lt_path("ctx.lua"));
  o.name = "ctx-test-2";
  o.path = path;
  o.secrets = secrets;
  o.n_secrets = 1;
  o.outcome_only = outcome_only;
  tq_lua_script *s = NULL;
  tq_err err = {0};
  if (tq_lua_load(f->rt, &o, &s, &err) != TQ_OK)
    fail_msg("%s", err.msg);
  return s;
}

static void test_a_short_secret_does_not_corrupt_text(void **state) {
  fixture *f = *state;
  tq_lua_script *s = load_with(f, "k", 0);
  tq_lua_run *run = lt_start(f->rt, s, "short_secret_text", sample_object());
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  const tq_changeset *cs = tq_lua_run_changeset(run);
  assert_string_equal(cs->attrs[0].value, "attack_pattern");
  assert_string_equal(cs->tags[0], "kill chain");
  assert_string_equal(tq_lua_run_message(run), "lookup of attack_pattern failed");
  tq_lua_run_free(run);
  tq_lua_script_free(s);
}

static void test_a_secret_of_six_bytes_is_still_masked(void **state) {
  fixture *f = *state;
  tq_lua_script *s = load_with(f, "attack", 0);
  tq_lua_run *run = lt_start(f->rt, s, "short_secret_text", sample_object());
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_string_equal(tq_lua_run_changeset(run)->attrs[0].value, "********_pattern");
  assert_string_equal(tq_lua_run_message(run), "lookup of ********_pattern failed");
  tq_lua_run_free(run);
  tq_lua_script_free(s);
}

static void test_outcome_only_keeps_found_and_message(void **state) {
  fixture *f = *state;
  tq_lua_script *s = load_with(f, SECRET, 1);
  tq_lua_run *run = lt_start(f->rt, s, "show_outcome", sample_object());
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK); /* the function is never encoded */
  char *text = cJSON_PrintUnformatted(tq_lua_run_changeset(run)->show);
  assert_string_equal(text, "{\"found\":false,\"message\":\"not here\"}");
  free(text);
  tq_lua_run_free(run);
  tq_lua_script_free(s);
  expect(f, "show_outcome", TQ_LUA_ERROR, "cannot encode a function"); /* in full mode */
}

static void test_attributes_records_the_pairs_in_order(void **state) {
  fixture *f = *state;
  tq_lua_run *run = run_one(f, "attributes_batch");
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  const tq_changeset *cs = tq_lua_run_changeset(run);
  assert_int_equal(cs->n_attrs, 4);
  const char *want[][2] = {{"First", "1"}, {"Country", "NL"}, {"ASN", "64500"}, {"Country", "DE"}};
  for (size_t i = 0; i < 4; i++) {
    assert_string_equal(cs->attrs[i].name, want[i][0]);
    assert_string_equal(cs->attrs[i].value, want[i][1]);
  }
  tq_lua_run_free(run);
  expect(f, "attributes_uneven", TQ_LUA_ERROR, "ctx:attributes: 2 names but 1 values");
  expect(f, "attributes_secret", TQ_LUA_ERROR, "value is a secret");
}

/* The show's "found" of the outcome_flag entry with outcome_only as given. */
static int outcome_flag(fixture *f, int outcome_only) {
  tq_lua_script *s = load_with(f, SECRET, outcome_only);
  tq_lua_run *run = lt_start(f->rt, s, "outcome_flag", sample_object());
  assert_int_equal(tq_lua_run_all(f->rt, NULL), TQ_OK);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_OK);
  const cJSON *found = cJSON_GetObjectItemCaseSensitive(tq_lua_run_changeset(run)->show, "found");
  assert_true(cJSON_IsBool(found));
  int v = cJSON_IsTrue(found);
  tq_lua_run_free(run);
  tq_lua_script_free(s);
  return v;
}

static void test_ctx_tells_whether_only_the_outcome_is_read(void **state) {
  assert_true(outcome_flag(*state, 1));
  assert_false(outcome_flag(*state, 0));
}

/* A script with obj_lists_later gets objects without lists and reads them from the library
 * only when an entry uses them. */
static void test_obj_lists_are_read_from_the_library_when_used(void **state) {
  (void)state;
  tq_lib *lib = NULL;
  tq_err err = {0};
  assert_int_equal(tq_lib_open(":memory:", TQ_LIB_OPEN_CREATE, &lib, &err), TQ_OK);
  const char *srcs[] = {"RST Cloud"}, *tags[] = {"c2"};
  tq_attr_in attrs[] = {{.name = "Confidence", .value = "80", .source = "RST Cloud"},
                        {.name = "Country", .value = "DE", .source = "RST Cloud"}};
  tq_object_in in = {.value = "45.83.122.166",
                     .sources = srcs,
                     .n_sources = 1,
                     .attrs = attrs,
                     .n_attrs = 2,
                     .tags = tags,
                     .n_tags = 1};
  int64_t id = 0;
  assert_int_equal(tq_lib_object_put(lib, &in, &id, NULL, &err), TQ_OK);
  tq_object *head = NULL;
  assert_int_equal(tq_lib_object_head(lib, id, &head, &err), TQ_OK);
  assert_int_equal(head->n_attrs + head->n_sources + head->n_tags, 0);
  assert_string_equal(head->value, "45.83.122.166");
  assert_int_equal(tq_lib_object_head(lib, id + 1000, &(tq_object *){NULL}, &err), TQ_ENOTFOUND);
  /* several at once: each id gets its object, a missing one NULL */
  tq_object_in in2 = {.value = "evil.example", .sources = srcs, .n_sources = 1};
  int64_t id2 = 0;
  assert_int_equal(tq_lib_object_put(lib, &in2, &id2, NULL, &err), TQ_OK);
  int64_t ids[] = {id, id2, id2 + 500};
  tq_object *heads[3];
  assert_int_equal(tq_lib_object_heads(lib, ids, 3, heads, &err), TQ_OK);
  assert_string_equal(heads[0]->value, "45.83.122.166");
  assert_string_equal(heads[1]->value, "evil.example");
  assert_string_equal(heads[1]->indicator_type, "FQDN");
  assert_null(heads[2]);
  tq_object_free(heads[0]);
  tq_object_free(heads[1]);

  tq_lua_opts o;
  tq_lua_opts_init(&o);
  o.lib = lib;
  tq_lua *rt = NULL;
  assert_int_equal(tq_lua_new(&o, &rt, &err), TQ_OK);
  tq_lua_script_opts so;
  tq_lua_script_opts_init(&so);
  char path[4096];
  snprintf(path, sizeof path, "%s", lt_path("ctx.lua"));
  so.name = "ctx-lists";
  so.path = path;
  so.obj_lists_later = 1;
  tq_lua_script *s = NULL;
  assert_int_equal(tq_lua_load(rt, &so, &s, &err), TQ_OK);
  const char *entries[] = {"obj_lists_from_library", "obj_value_only"};
  for (size_t i = 0; i < 2; i++) {
    tq_lua_run *run = lt_start(rt, s, entries[i], head);
    assert_int_equal(tq_lua_run_all(rt, &err), TQ_OK);
    if (tq_lua_run_status(run) != TQ_LUA_OK)
      fail_msg("%s: %s", entries[i], tq_lua_run_message(run));
    tq_lua_run_free(run);
  }
  /* the object is gone by the time the lists are wanted: a clear error */
  head->id = id + 1000;
  tq_lua_run *run = lt_start(rt, s, "obj_lists_from_library", head);
  assert_int_equal(tq_lua_run_all(rt, &err), TQ_OK);
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_ERROR);
  assert_non_null(strstr(tq_lua_run_message(run), "reading the lists of object"));
  tq_lua_run_free(run);
  tq_lua_script_free(s);
  tq_lua_free(rt);
  tq_object_free(head);
  tq_lib_close(lib);
}

/* Starts a batch run of entry over three copies of the sample object and runs it. */
static tq_lua_run *run_batch(fixture *f, tq_lua_script *s, const char *entry) {
  const tq_object *objs[3] = {sample_object(), sample_object(), sample_object()};
  tq_lua_run *run = NULL;
  tq_err err = {0};
  if (tq_lua_run_start_batch(f->rt, s, entry, objs, 3, NULL, NULL, &run, &err) != TQ_OK)
    fail_msg("start %s: %s", entry, err.msg);
  assert_int_equal(tq_lua_run_all(f->rt, &err), TQ_OK);
  return run;
}

/* A batch item's change set is masked like a single run's, and so is the reason of a change
 * refused on it (which fails that item only). */
static void test_batch_items_are_masked_and_fail_alone(void **state) {
  fixture *f = *state;
  tq_lua_run *run = run_batch(f, f->s, "batch_echo");
  if (tq_lua_run_status(run) != TQ_LUA_OK)
    fail_msg("%s", tq_lua_run_message(run));
  assert_int_equal(tq_lua_run_items(run), 3);
  for (size_t i = 0; i < 3; i++) {
    tq_changeset cs;
    const char *why = tq_lua_run_take_item(run, i, &cs);
    if (i == 1) {
      assert_non_null(why);
      assert_non_null(strstr(why, "ctx:status: 'x********' is not a status"));
      assert_false(leaks(why));
      assert_int_equal(cs.n_attrs, 0);
      continue;
    }
    assert_null(why);
    assert_int_equal(cs.n_attrs, 1);
    assert_string_equal(cs.attrs[0].value, "v=********");
    assert_string_equal(cs.tags[0], "t********");
    tq_changeset_free(&cs);
  }
  tq_changeset cs;
  assert_non_null(strstr(tq_lua_run_take_item(run, 3, &cs), "no such item"));
  tq_lua_run_free(run);
  /* a single run has no items */
  run = run_one(f, "echo_attribute");
  assert_int_equal(tq_lua_run_items(run), 0);
  tq_lua_run_free(run);
}

/* Item changes are charged to the run: past its budget the run is killed (the item ctx does
 * not swallow the kill as a refused change). */
static void test_batch_item_changes_are_charged_to_the_run(void **state) {
  fixture *f = *state;
  tq_lua_run *run = run_batch(f, f->s, "batch_memory");
  assert_int_equal(tq_lua_run_status(run), TQ_LUA_KILLED);
  assert_non_null(strstr(tq_lua_run_message(run), "memory budget exceeded"));
  tq_lua_run_free(run);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_changeset_records_every_kind, setup, teardown),
      cmocka_unit_test_setup_teardown(test_changeset_values_are_validated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_control_characters_in_names_are_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_obj_lists_are_built_on_first_use, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_decode_reads_every_form, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_short_secret_does_not_corrupt_text, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_secret_of_six_bytes_is_still_masked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outcome_only_keeps_found_and_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_attributes_records_the_pairs_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ctx_tells_whether_only_the_outcome_is_read, setup,
                                      teardown),
      cmocka_unit_test(test_obj_lists_are_read_from_the_library_when_used),
      cmocka_unit_test_setup_teardown(test_obj_is_a_readable_view, setup, teardown),
      cmocka_unit_test_setup_teardown(test_obj_is_read_only, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_has_no_secret_and_is_read_only, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_secret_never_reaches_the_log, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_concatenated_secret_is_masked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_script_cannot_forge_a_log_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_secret_cannot_be_stored_or_encoded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_an_echoed_secret_is_masked_in_show, setup, teardown),
      cmocka_unit_test_setup_teardown(test_an_echoed_secret_is_masked_in_logs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_an_echoed_secret_is_masked_in_attributes_and_tags, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_an_echoed_secret_is_masked_in_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_sharing_only_short_runs_with_the_secret_is_kept,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_roundtrips, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_refuses_cycles_and_functions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_answers_from_the_replay_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_an_unrecorded_request_names_its_url, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_replayed_runs_interleave, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_items_are_masked_and_fail_alone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_item_changes_are_charged_to_the_run, setup,
                                      teardown),
      cmocka_unit_test(test_a_bad_replay_file_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
