/* fuzz_api_input.c: libFuzzer harness for the parsers that turn an API request's JSON body
 * into library inputs (server/api_input.h), without the HTTP server. Input: one selector byte
 * then the body, parsed by the server's tq_req_json. The selector picks the
 * parser (sel % 9: object create/consume items, attributes, object edit, source settings,
 * workflow create, workflow change, attribute edit, an object's sources, its tags) and the
 * route's object type (sel / 9); from 0xF0 on, the bodies of one handler each: 0xF8 manual
 * score, 0xF9 relations, 0xFA action run start (settings over FIELDS below), 0xFB plugin
 * operation run, 0xFC its apply, 0xFD plugin config (a plugin with FIELDS), 0xFE a saved search
 * created, 0xFF one changed; the rest (0xF0..0xF7) the feed body. Checks: no crash or leak; a
 * refusal is a 400 whose errors name exactly one non-empty field with a non-empty message (an
 * apply's run_id that is none: a 404 with a message); an acceptance leaves the answer untouched and
 * gives inputs that hold what the parser promised. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_input.h"

static const char *const TYPES[] = {"indicator", "adversary", "event",    "report",
                                    "malware",   "note",      "signature"};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

static int utf8(const char *s) { return tq_utf8_invalid_at(s, strlen(s)) >= strlen(s); }

/* A refusal names one field: {"data": {"errors": {FIELD: ["message"]}}}, both UTF-8 (the
 * answer is JSON). */
static void check_refusal(const tq_resp *rs) {
  if (rs->status != 400 || rs->json == NULL)
    abort();
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(rs->json, "data");
  const cJSON *errors = cJSON_GetObjectItemCaseSensitive(data, "errors");
  if (!cJSON_IsObject(errors) || cJSON_GetArraySize(errors) != 1)
    abort();
  const cJSON *field = errors->child;
  if (field->string == NULL || field->string[0] == '\0' || !cJSON_IsArray(field) ||
      cJSON_GetArraySize(field) != 1)
    abort();
  const cJSON *msg = field->child;
  if (!cJSON_IsString(msg) || msg->valuestring[0] == '\0' || !utf8(field->string) ||
      !utf8(msg->valuestring))
    abort();
}

static void check_tlp(int tlp) {
  if (tlp < 0 || tlp > 4)
    abort();
}

static int objects(const cJSON *body, const char *type, tq_resp *rs) {
  int list = cJSON_IsArray(body);
  size_t n = list ? (size_t)cJSON_GetArraySize(body) : 1;
  const cJSON *it = list ? body->child : body;
  int ok = 1;
  for (size_t i = 0; ok && i < n; i++, it = it->next) {
    tq_api_obj_in o;
    ok = tq_api_parse_object(it, type, list ? (long)i : -1, &o, rs);
    if (ok) {
      if (o.in.value == NULL || o.in.value[0] == '\0' || strcmp(o.in.object_type, type) != 0)
        abort();
      check_tlp(o.in.source_tlp);
      for (size_t k = 0; k < o.in.n_sources; k++)
        if (o.in.sources[k] == NULL || o.in.sources[k][0] == '\0')
          abort();
      for (size_t k = 0; k < o.in.n_attrs; k++) {
        check_tlp(o.in.attrs[k].tlp);
        if (o.in.attrs[k].name[0] == '\0' || o.in.attrs[k].value == NULL)
          abort();
      }
      for (size_t k = 0; k < o.in.n_tags; k++)
        if (o.in.tags[k] == NULL || o.in.tags[k][0] == '\0')
          abort();
    }
    tq_api_obj_in_free(&o);
  }
  return ok;
}

static int attrs(cJSON *body, tq_resp *rs) {
  cJSON *list = body;
  if (!cJSON_IsArray(body)) { /* one attribute: a list of one, as api_attrs_post does */
    list = cJSON_CreateArray();
    cJSON_AddItemReferenceToArray(list, body);
  }
  size_t n = (size_t)cJSON_GetArraySize(list), got = 0;
  tq_attr_in *out = calloc(n + 1, sizeof *out);
  int ok = tq_api_parse_attrs(list, out, &got, rs);
  if (ok && got != n)
    abort();
  for (size_t k = 0; ok && k < got; k++)
    check_tlp(out[k].tlp);
  free(out);
  if (list != body)
    cJSON_Delete(list);
  return ok;
}

static int names(const cJSON *body, int sources, tq_resp *rs) {
  size_t max = cJSON_IsArray(body) ? (size_t)cJSON_GetArraySize(body) : 1, n = 0;
  const char **out = calloc(max + 1, sizeof *out);
  int tlp = 0;
  int ok = tq_api_names(body, sources, out, &n, &tlp, rs);
  if (ok && (n != max || tlp == 0 || tlp > 4 || (!sources && tlp != -1)))
    abort();
  for (size_t k = 0; ok && k < n; k++)
    if (out[k] == NULL || out[k][0] == '\0')
      abort();
  free(out);
  return ok;
}

/* A workflow as load_workflow gives it, for the change (PUT) case. */
static tq_workflow *stored_workflow(void) {
  tq_workflow *w = calloc(1, sizeof *w);
  w->name = strdup("wf");
  w->collection = strdup("c");
  w->actions = calloc(2, sizeof *w->actions);
  w->actions[0] = strdup("a");
  w->n_actions = 1;
  w->settings = calloc(1, sizeof *w->settings);
  w->settings[0].key = strdup("k");
  w->settings[0].value = strdup("v");
  w->sealed = calloc(1, sizeof *w->sealed);
  w->n_settings = 1;
  return w;
}

static int workflow(const cJSON *body, int creating, tq_resp *rs) {
  tq_workflow *w = creating ? calloc(1, sizeof *w) : stored_workflow();
  int with_settings = 0;
  int ok = tq_api_workflow_from_body(body, creating, w, &with_settings, rs);
  if (ok && (w->name == NULL || w->collection == NULL || w->n_actions < 1 || w->n_actions > 16 ||
             (creating && !with_settings)))
    abort();
  for (size_t k = 0; ok && k < w->n_settings; k++) /* each setting once */
    for (size_t m = 0; m < k; m++)
      if (strcmp(w->settings[m].key, w->settings[k].key) == 0)
        abort();
  tq_workflow_free(w);
  return ok;
}

/* One config field of each type, as an action or a plugin declares them. */
static char *OPTS[] = {"low", "high"};
static tq_plugin_field FIELDS[] = {
    {"s", NULL, TQ_FIELD_STRING, 0, NULL, NULL, 0},
    {"u", NULL, TQ_FIELD_URL, 0, NULL, NULL, 0},
    {"i", NULL, TQ_FIELD_INTEGER, 1, "5", NULL, 0},
    {"b", NULL, TQ_FIELD_BOOLEAN, 0, "false", NULL, 0},
    {"sel", NULL, TQ_FIELD_SELECT, 0, "low", OPTS, 2},
    {"pw", NULL, TQ_FIELD_PASSWORD, 0, NULL, NULL, 0},
    {"n", NULL, TQ_FIELD_NUMBER, 0, NULL, NULL, 0},
    {"l", NULL, TQ_FIELD_LIST, 0, NULL, NULL, 0},
};
#define N_FIELDS (sizeof FIELDS / sizeof FIELDS[0])

/* An accepted setting names a field once and holds a value. */
static void check_kvs(const tq_lua_kv *kvs, size_t n) {
  for (size_t k = 0; k < n; k++) {
    int known = 0;
    for (size_t f = 0; f < N_FIELDS; f++)
      known |= strcmp(kvs[k].key, FIELDS[f].key) == 0;
    if (!known || kvs[k].value == NULL)
      abort();
    for (size_t m = 0; m < k; m++)
      if (strcmp(kvs[m].key, kvs[k].key) == 0)
        abort();
  }
}

static int score(const cJSON *body, tq_resp *rs) {
  int manual = -5;
  if (!cJSON_IsObject(body)) /* body_json refuses the rest before */
    return 1;
  int ok = tq_api_score(body, &manual, rs);
  if (ok && (manual < -1 || manual > 10))
    abort();
  return ok;
}

static int relate(const cJSON *body, tq_resp *rs) {
  if (!cJSON_IsObject(body) && !cJSON_IsArray(body)) /* body_json refuses the rest before */
    return 1;
  size_t max = cJSON_IsArray(body) ? (size_t)cJSON_GetArraySize(body) : 1, n = 0;
  int64_t *ids = calloc(max + 1, sizeof *ids);
  int ok = tq_api_relate_ids(body, ids, &n, rs);
  if (ok && n != max)
    abort();
  for (size_t k = 0; ok && k < n; k++)
    if (ids[k] < 1 || ids[k] > 9007199254740991LL)
      abort();
  free(ids);
  return ok;
}

static int run_start(const cJSON *body, tq_resp *rs) {
  tq_runs_start_req q = {0};
  const char *coll = NULL;
  int ok = tq_api_run_start(body, FIELDS, N_FIELDS, &q, &coll, rs);
  if (ok) {
    if ((coll == NULL) == (q.n_values == 0) || q.concurrency < 0 || q.concurrency > 256 ||
        q.n_sets > 64 || q.n_values > 100000)
      abort();
    if (coll && (coll[0] == '\0' || strlen(coll) > 256))
      abort();
    for (size_t k = 0; k < q.n_values; k++)
      if (q.values[k] == NULL || q.values[k][0] == '\0' || strlen(q.values[k]) > 2048)
        abort();
    check_kvs(q.sets, q.n_sets);
  }
  tq_runs_req_free(&q);
  return ok;
}

static int op_run(const cJSON *body, tq_resp *rs) {
  tq_api_op_run_in in;
  int ok = tq_api_op_run(body, &in, rs);
  if (ok) {
    if (in.object_id < 0 || in.object_id > 9007199254740991LL ||
        (in.object_id != 0) == (in.value != NULL) || (in.object_id && in.type) ||
        (in.apply != 0 && in.apply != 1))
      abort();
    if (in.value && (in.value[0] == '\0' || strlen(in.value) > 4096))
      abort();
    if (in.type && (in.type[0] == '\0' || strlen(in.type) > 4096))
      abort();
  }
  free(in.value);
  free(in.type);
  return ok;
}

static int plugin_config(const cJSON *body, tq_resp *rs) {
  tq_plugin p = {0};
  p.name = "fuzz";
  p.fields = FIELDS;
  p.n_fields = N_FIELDS;
  tq_lua_kv *kvs = NULL;
  size_t n = 0;
  int ok = tq_api_plugin_config(body, &p, &kvs, &n, rs);
  if (ok && (n < 1 || n > N_FIELDS))
    abort();
  if (ok)
    check_kvs(kvs, n);
  tq_api_kvs_free(kvs, n);
  return ok;
}

static int saved_search(const cJSON *body, int creating, tq_resp *rs) {
  char *name = NULL, *doc = NULL, hash[33] = "x";
  int ok = tq_api_saved_search(body, creating, &name, &doc, hash, rs);
  if (ok) {
    if ((creating && (name == NULL || doc == NULL)) || (name == NULL && doc == NULL))
      abort();
    if (name && (name[0] == '\0' || strlen(name) > 1024 || !utf8(name)))
      abort();
    if (doc && (strlen(hash) != 32 || strspn(hash, "0123456789abcdef") != 32))
      abort();
  }
  free(name);
  free(doc);
  return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  unsigned sel = data[0];
  size_t n = size - 1;
  char *text = malloc(n + 1);
  if (text == NULL)
    return 0;
  memcpy(text, data + 1, n);
  text[n] = '\0';
  /* the server's own parse of a body (tq_req_json reads only body and body_len); a body it
   * refuses is a refusal like any other */
  tq_req rq;
  memset(&rq, 0, sizeof rq);
  rq.body = text;
  rq.body_len = n;
  tq_resp pre = {0};
  cJSON *body = tq_req_json(&rq, &pre);
  if (body == NULL) {
    check_refusal(&pre);
    tq_resp_free(&pre);
    free(text);
    return 0;
  }
  const char *type = TYPES[(sel / 9) % N_TYPES];
  tq_resp rs = {0};
  int ok = 1, not_found_ok = 0;
  switch (sel >= 0xF0 ? (sel >= 0xF8 ? 10 + (int)(sel - 0xF8) : 9) : (int)(sel % 9)) {
  case 0: ok = objects(body, type, &rs); break;
  case 1: ok = attrs(body, &rs); break;
  case 2: {
    tq_object_edit e;
    if (cJSON_IsObject(body)) /* body_json refuses the rest before */
      ok = tq_api_object_edit(body, type, &e, &rs);
    break;
  }
  case 3: {
    tq_source_opts o;
    if (cJSON_IsObject(body))
      ok = tq_api_source_opts(body, &o, &rs);
    if (ok && cJSON_IsObject(body) && o.tlp != TQ_UNSET)
      check_tlp(o.tlp);
    break;
  }
  case 4: ok = workflow(body, 1, &rs); break;
  case 5: ok = workflow(body, 0, &rs); break;
  case 6: {
    const char *value, *source;
    int tlp;
    if (cJSON_IsObject(body)) {
      ok = tq_api_attr_edit(body, &value, &source, &tlp, &rs);
      if (ok && ((value == NULL && source == NULL && tlp < 0) || tlp == 0 || tlp > 4))
        abort();
    }
    break;
  }
  case 7:
  case 8: ok = names(body, sel % 9 == 7, &rs); break;
  case 10: ok = score(body, &rs); break;
  case 11: ok = relate(body, &rs); break;
  case 12: ok = run_start(body, &rs); break;
  case 13: ok = op_run(body, &rs); break;
  case 14: {
    const char *id = NULL;
    ok = tq_api_apply_run_id(body, &id, &rs);
    if (ok && (id == NULL || strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32))
      abort();
    not_found_ok = 1;
    break;
  }
  case 15: ok = plugin_config(body, &rs); break;
  case 16:
  case 17: ok = saved_search(body, sel == 0xFE, &rs); break;
  default: {
    tq_feed f;
    tq_source_opts src;
    ok = tq_api_feed_from_body(body, &f, &src, &rs);
    if (ok && (f.name[0] == '\0' || f.source[0] == '\0' || f.page_size < 1 || f.every_s < 60 ||
               (f.collection[0] == '\0' && strncmp(f.kind, "rst", 3) != 0)))
      abort();
    break;
  }
  }
  if (ok) {
    if (rs.status != 0 || rs.json != NULL)
      abort();
  } else if (not_found_ok && rs.status == 404) {
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(rs.json, "errors");
    if (cJSON_GetArraySize(errs) != 1 || !cJSON_IsString(errs->child) ||
        errs->child->valuestring[0] == '\0')
      abort();
  } else {
    check_refusal(&rs);
  }
  tq_resp_free(&rs);
  cJSON_Delete(body);
  free(text);
  return 0;
}
