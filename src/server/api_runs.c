/* api_runs.c: the routes of actions, bulk runs (start, progress, cancel, resume), workflows and
 * feeds. Reads run on the HTTP thread (rq->rd); definitions (workflows, feeds) and cancel marks
 * are written by the engine with their audit record in one transaction; runs and polls start
 * on threads of their own (runs.c), which answer the suspended request once the run exists. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_input.h"
#include "auth_int.h"
#include "events_int.h"
#include "runs_int.h"
#include "tqhost/feed.h"
#include "tqhost/workflow.h"

#define MAX_VALUES 100000
#define MAX_TEXT 2048
#define MAX_SETTINGS 64

/* ---- small helpers ----------------------------------------------------------------------- */

static void add_time(cJSON *o, const char *key, int64_t t) {
  char buf[20];
  if (t <= 0) {
    cJSON_AddNullToObject(o, key);
    return;
  }
  tq_time_format(t, buf);
  cJSON_AddStringToObject(o, key, buf);
}

/* A name fit for a file name and a URL segment: [A-Za-z0-9._-], not starting with '.'. */
static int name_ok(const char *s) {
  if (s == NULL || *s == '\0' || *s == '.' || strlen(s) > 128)
    return 0;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
      return 0;
  return 1;
}

/* Fails with 400 naming the first member of o not in allowed (NULL-terminated). */
static int only_keys(const cJSON *o, const char *const *allowed, tq_resp *rs) {
  const cJSON *it;
  cJSON_ArrayForEach(it, o) {
    int found = 0;
    for (size_t i = 0; allowed[i] && !found; i++)
      found = strcmp(it->string, allowed[i]) == 0;
    if (!found) {
      char *esc = tq_auth_clean(it->string, 64);
      tq_resp_invalid(rs, esc ? esc : "request", "unknown field");
      free(esc);
      return 0;
    }
  }
  return 1;
}

/* A string member: absent -> *out NULL and 1; present must be a string of 1..max bytes. */
static int get_str(const cJSON *o, const char *key, size_t max, const char **out, tq_resp *rs) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  *out = NULL;
  if (v == NULL || cJSON_IsNull(v))
    return 1;
  if (!cJSON_IsString(v)) {
    tq_resp_invalid(rs, key, "must be a string");
    return 0;
  }
  size_t n = strlen(v->valuestring);
  if (n == 0 || n > max) {
    tq_resp_invalid(rs, key, "must be 1 to %zu characters", max);
    return 0;
  }
  *out = v->valuestring;
  return 1;
}

/* A setting's value as text: strings as they are, numbers and booleans written out. A whole
 * number is cast only inside long long's range (found by fuzz_api_input: 1e300 was cast). */
static char *setting_text(const cJSON *v) {
  char buf[64];
  if (cJSON_IsString(v))
    return strlen(v->valuestring) <= MAX_TEXT ? tq_strdup(v->valuestring) : NULL;
  if (cJSON_IsBool(v))
    return tq_strdup(cJSON_IsTrue(v) ? "true" : "false");
  if (cJSON_IsNumber(v)) {
    if (v->valuedouble > -9223372036854775808.0 && v->valuedouble < 9223372036854775808.0 &&
        v->valuedouble == (double)(long long)v->valuedouble)
      snprintf(buf, sizeof buf, "%lld", (long long)v->valuedouble);
    else
      snprintf(buf, sizeof buf, "%g", v->valuedouble);
    return tq_strdup(buf);
  }
  return NULL;
}

/* "settings": {KEY: value} into q->sets, each key a field of one of acts (checked by type). */
static int get_settings(const cJSON *body, const tq_plugin_field *fs, size_t nf,
                        tq_runs_start_req *q, tq_resp *rs) {
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(body, "settings");
  if (s == NULL || cJSON_IsNull(s))
    return 1;
  if (!cJSON_IsObject(s)) {
    tq_resp_invalid(rs, "settings", "must be an object of KEY: value");
    return 0;
  }
  int n = cJSON_GetArraySize(s);
  if (n > MAX_SETTINGS) {
    tq_resp_invalid(rs, "settings", "at most %d settings", MAX_SETTINGS);
    return 0;
  }
  q->sets = calloc((size_t)n + 1, sizeof *q->sets);
  if (q->sets == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    return 0;
  }
  const cJSON *it;
  cJSON_ArrayForEach(it, s) {
    char field[96];
    char *key = tq_auth_clean(it->string, 48);
    snprintf(field, sizeof field, "settings.%s", key ? key : "?");
    free(key);
    const tq_plugin_field *f = NULL;
    for (size_t i = 0; i < nf && f == NULL; i++)
      if (strcmp(fs[i].key, it->string) == 0)
        f = &fs[i];
    if (f == NULL) {
      tq_resp_invalid(rs, field, "not a setting of the action (see GET /api/actions)");
      return 0;
    }
    for (size_t i = 0; i < q->n_sets; i++)
      if (strcmp(q->sets[i].key, it->string) == 0) { /* found by fuzz_api_input */
        tq_resp_invalid(rs, field, "given twice");
        return 0;
      }
    char *text = setting_text(it), *norm = NULL;
    tq_err err;
    if (text == NULL) {
      tq_resp_invalid(rs, field, "must be a string, a number or a boolean");
      return 0;
    }
    if (tq_plugin_field_check(f, text, &norm, &err) != TQ_OK) {
      free(text);
      char *m = tq_auth_clean(err.msg, 200);
      tq_resp_invalid(rs, field, "%s", m ? m : "bad value");
      free(m);
      return 0;
    }
    free(text);
    q->sets[q->n_sets].key = tq_strdup(it->string);
    q->sets[q->n_sets].value = norm;
    q->n_sets++;
  }
  return 1;
}

static tq_runs *runs_or_503(tq_req *rq, tq_resp *rs) {
  tq_runs *rn = tq_srv_runs(rq->srv);
  if (rn == NULL)
    tq_resp_fail(rs, 503, "runs are not available");
  return rn;
}

/* ---- actions ----------------------------------------------------------------------------- */

static cJSON *action_json(const tq_action *a) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", tq_action_name(a));
  cJSON_AddStringToObject(o, "label", tq_action_label(a) ? tq_action_label(a) : "");
  cJSON_AddStringToObject(o, "version", tq_action_version(a) ? tq_action_version(a) : "");
  cJSON_AddStringToObject(o, "description",
                          tq_action_description(a) ? tq_action_description(a) : "");
  cJSON_AddStringToObject(o, "plugin", tq_action_plugin_name(a));
  cJSON_AddStringToObject(o, "operation", tq_action_entry(a));
  cJSON_AddNumberToObject(o, "concurrency", tq_action_concurrency(a));
  cJSON_AddNumberToObject(o, "batch_size", tq_action_batch_size(a));
  size_t n = 0;
  const char *const *types = tq_action_indicator_types(a, &n);
  cJSON *ty = cJSON_AddArrayToObject(o, "indicator_types");
  for (size_t i = 0; i < n; i++)
    cJSON_AddItemToArray(ty, cJSON_CreateString(types[i]));
  const tq_plugin_field *f = tq_action_fields(a, &n);
  cJSON *fields = cJSON_AddArrayToObject(o, "fields");
  for (size_t i = 0; i < n; i++) {
    cJSON *fj = cJSON_CreateObject();
    cJSON_AddStringToObject(fj, "name", f[i].key);
    cJSON_AddStringToObject(fj, "label", f[i].label ? f[i].label : f[i].key);
    cJSON_AddStringToObject(fj, "type", tq_field_type_name(f[i].type));
    cJSON_AddBoolToObject(fj, "required", f[i].required);
    if (f[i].def && f[i].type != TQ_FIELD_PASSWORD)
      cJSON_AddStringToObject(fj, "default", f[i].def);
    else
      cJSON_AddNullToObject(fj, "default");
    if (f[i].n_options) {
      cJSON *opts = cJSON_AddArrayToObject(fj, "options");
      for (size_t k = 0; k < f[i].n_options; k++)
        cJSON_AddItemToArray(opts, cJSON_CreateString(f[i].options[k]));
    }
    cJSON_AddItemToArray(fields, fj);
  }
  return o;
}

static void route_actions(tq_req *rq, tq_resp *rs) {
  tq_action **list = NULL;
  size_t n = 0;
  tq_err err;
  if (tq_action_list(tq_action_dir(), &list, &n, NULL, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < n; i++)
    cJSON_AddItemToArray(arr, action_json(list[i]));
  tq_action_list_free(list, n);
  (void)rq;
  tq_resp_list(rs, arr, (int64_t)n, (int64_t)n, 0);
}

/* The body of POST /api/actions/{name}/runs into q and *coll; 0 after a 400. */
int tq_api_run_start(const cJSON *body, const tq_plugin_field *fields, size_t n_fields,
                     tq_runs_start_req *q, const char **coll, tq_resp *rs) {
  static const char *const KEYS[] = {"collection", "values", "settings", "concurrency", NULL};
  *coll = NULL;
  if (!cJSON_IsObject(body)) {
    tq_resp_invalid(rs, "request", "the body must be a JSON object");
    return 0;
  }
  if (!only_keys(body, KEYS, rs) || !get_str(body, "collection", 256, coll, rs))
    return 0;
  const cJSON *vals = cJSON_GetObjectItemCaseSensitive(body, "values");
  if (vals && cJSON_IsNull(vals))
    vals = NULL;
  if ((*coll != NULL) == (vals != NULL)) {
    tq_resp_invalid(rs, "collection", "give a collection or values (one of them)");
    return 0;
  }
  if (vals) {
    int n = cJSON_IsArray(vals) ? cJSON_GetArraySize(vals) : -1;
    if (n < 1 || n > MAX_VALUES) {
      tq_resp_invalid(rs, "values", "must be an array of 1 to %d strings", MAX_VALUES);
      return 0;
    }
    if ((q->values = calloc((size_t)n, sizeof *q->values)) == NULL) {
      tq_resp_fail(rs, 503, "out of memory");
      return 0;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, vals) {
      if (!cJSON_IsString(it) || it->valuestring[0] == '\0' || strlen(it->valuestring) > MAX_TEXT) {
        tq_resp_invalid(rs, "values", "item %zu: must be a string of 1 to %d characters",
                        q->n_values, MAX_TEXT);
        return 0;
      }
      if ((q->values[q->n_values] = tq_strdup(it->valuestring)) == NULL) {
        tq_resp_fail(rs, 503, "out of memory");
        return 0;
      }
      q->n_values++;
    }
  }
  const cJSON *conc = cJSON_GetObjectItemCaseSensitive(body, "concurrency");
  if (conc && !cJSON_IsNull(conc)) {
    if (!cJSON_IsNumber(conc) || conc->valuedouble < 1 || conc->valuedouble > 256 ||
        conc->valuedouble != (double)(int)conc->valuedouble) { /* the range before the cast */
      tq_resp_invalid(rs, "concurrency", "must be an integer from 1 to 256");
      return 0;
    }
    q->concurrency = (int)conc->valuedouble;
  }
  return get_settings(body, fields, n_fields, q, rs);
}

/* POST /api/actions/{name}/runs */
static void route_run_start(tq_req *rq, tq_resp *rs) {
  const char *name = rq->params[0];
  if (!name_ok(name))
    return tq_resp_fail(rs, 404, "no such action");
  if (runs_or_503(rq, rs) == NULL)
    return;
  tq_err err;
  tq_action *a = NULL;
  if (tq_action_find(tq_action_dir(), name, &a, &err) != TQ_OK) {
    if (err.code == TQ_ENOTFOUND)
      return tq_resp_fail(rs, 404, "no action named '%s'", name);
    return tq_resp_err(rs, NULL, &err);
  }
  tq_runs_start_req q = {0};
  cJSON *body = tq_req_json(rq, rs);
  const char *coll = NULL;
  size_t nf = 0;
  const tq_plugin_field *fs = tq_action_fields(a, &nf);
  if (body == NULL || !tq_api_run_start(body, fs, nf, &q, &coll, rs))
    goto out;
  if (coll) {
    tq_query qq;
    if (tq_lib_collection_get(rq->rd, coll, &qq, &err) != TQ_OK) {
      if (err.code == TQ_ENOTFOUND)
        tq_resp_invalid(rs, "collection", "no such collection");
      else
        tq_resp_err(rs, "collection", &err);
      goto out;
    }
    tq_query_free(&qq);
    if ((q.collection = tq_strdup(coll)) == NULL) {
      tq_resp_fail(rs, 503, "out of memory");
      goto out;
    }
  }
  if ((q.action = tq_strdup(name)) == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    goto out;
  }
  cJSON_Delete(body);
  tq_action_free(a);
  tq_runs_start_action(rq, rs, &q);
  return;
out:
  cJSON_Delete(body);
  tq_action_free(a);
  tq_runs_req_free(&q);
}

/* ---- runs -------------------------------------------------------------------------------------
 */

static cJSON *run_json(const tq_run_info *r) {
  cJSON *o = cJSON_CreateObject();
  int64_t done = r->enriched + r->not_found + r->failed + r->skipped;
  const char *state = r->live                                          ? "running"
                      : r->cancelled && strcmp(r->status, "done") != 0 ? "cancelled"
                                                                       : r->state;
  cJSON_AddNumberToObject(o, "id", (double)r->id);
  cJSON_AddStringToObject(o, "action", r->action);
  if (r->workflow_id)
    cJSON_AddNumberToObject(o, "workflow_id", (double)r->workflow_id);
  else
    cJSON_AddNullToObject(o, "workflow_id");
  cJSON_AddStringToObject(o, "state", state);
  cJSON_AddStringToObject(o, "status", r->status);
  cJSON_AddStringToObject(o, "input", r->input);
  cJSON_AddNumberToObject(o, "total", (double)r->total);
  cJSON_AddNumberToObject(o, "done", (double)done);
  cJSON_AddNumberToObject(o, "ok", (double)r->enriched);
  cJSON_AddNumberToObject(o, "enriched", (double)r->enriched);
  cJSON_AddNumberToObject(o, "not_found", (double)r->not_found);
  cJSON_AddNumberToObject(o, "failed", (double)r->failed);
  cJSON_AddNumberToObject(o, "skipped", (double)r->skipped);
  double rate = r->seconds > 0 ? (double)done / r->seconds : 0;
  cJSON_AddNumberToObject(o, "rate", rate);
  if (r->live && rate > 0 && r->total >= done)
    cJSON_AddNumberToObject(o, "eta_s", (double)(r->total - done) / rate);
  else
    cJSON_AddNullToObject(o, "eta_s");
  cJSON_AddNumberToObject(o, "seconds", r->seconds);
  add_time(o, "started_at", r->started_at);
  add_time(o, "updated_at", r->updated_at);
  add_time(o, "finished_at", r->finished_at);
  cJSON_AddStringToObject(o, "origin", r->origin[0] ? r->origin : "cli");
  if (r->retry_of)
    cJSON_AddNumberToObject(o, "retry_of", (double)r->retry_of);
  if (r->error[0])
    cJSON_AddStringToObject(o, "error", r->error);
  else
    cJSON_AddNullToObject(o, "error");
  return o;
}

static void route_runs(tq_req *rq, tq_resp *rs) {
  int64_t limit, offset;
  if (!tq_req_page(rq, 50, 1000, &limit, &offset, rs))
    return;
  tq_run_info *v = NULL;
  size_t n = 0;
  tq_err err;
  if (tq_run_list(rq->rd, 0, &v, &n, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = (size_t)offset; i < n && i < (size_t)(offset + limit); i++)
    cJSON_AddItemToArray(arr, run_json(&v[i]));
  free(v);
  tq_resp_list(rs, arr, (int64_t)n, limit, offset);
}

static int load_run(tq_req *rq, tq_resp *rs, tq_run_info *r) {
  int64_t id = tq_req_id(rq, 0, rs);
  if (id == 0)
    return 0;
  tq_err err;
  if (tq_run_get(rq->rd, id, r, &err) != TQ_OK) {
    if (err.code == TQ_ENOTFOUND)
      tq_resp_fail(rs, 404, "no run with id %lld", (long long)id);
    else
      tq_resp_err(rs, NULL, &err);
    return 0;
  }
  return 1;
}

static void route_run_get(tq_req *rq, tq_resp *rs) {
  tq_run_info r;
  if (load_run(rq, rs, &r))
    tq_resp_data(rs, 200, run_json(&r));
}

/* GET /api/runs/{id}/items?state=failed|not_found|skipped */
static void route_run_items(tq_req *rq, tq_resp *rs) {
  tq_run_info r;
  if (!load_run(rq, rs, &r))
    return;
  const char *state = tq_req_arg(rq, "state");
  if (state == NULL)
    state = "failed";
  if (strcmp(state, "failed") != 0 && strcmp(state, "not_found") != 0 &&
      strcmp(state, "skipped") != 0)
    return tq_resp_invalid(rs, "state", "must be failed, not_found or skipped");
  int64_t limit, offset;
  if (!tq_req_page(rq, 100, 10000, &limit, &offset, rs))
    return;
  tq_err err;
  tq_run_item_info *items = NULL;
  size_t n = 0;
  tq_run_reason *reasons = NULL;
  size_t nr = 0;
  if (tq_run_items(rq->rd, r.id, state, &items, &n, &err) != TQ_OK ||
      tq_run_reasons(rq->rd, r.id, &reasons, &nr, &err) != TQ_OK) {
    tq_run_items_free(items, n);
    return tq_resp_err(rs, NULL, &err);
  }
  cJSON *d = cJSON_CreateObject();
  cJSON_AddNumberToObject(d, "run_id", (double)r.id);
  cJSON_AddStringToObject(d, "state", state);
  cJSON_AddNumberToObject(d, "total", (double)n);
  cJSON *groups = cJSON_AddArrayToObject(d, "reasons");
  for (size_t i = 0; i < nr; i++) {
    if (strcmp(reasons[i].outcome, state) != 0)
      continue;
    cJSON *g = cJSON_CreateObject();
    cJSON_AddStringToObject(g, "reason", reasons[i].reason ? reasons[i].reason : "");
    cJSON_AddNumberToObject(g, "count", (double)reasons[i].count);
    cJSON_AddItemToArray(groups, g);
  }
  cJSON *arr = cJSON_AddArrayToObject(d, "items");
  for (size_t i = (size_t)offset; i < n && i < (size_t)(offset + limit); i++) {
    cJSON *it = cJSON_CreateObject();
    cJSON_AddNumberToObject(it, "object_id", (double)items[i].object_id);
    cJSON_AddStringToObject(it, "type", items[i].indicator_type ? items[i].indicator_type : "");
    cJSON_AddStringToObject(it, "value", items[i].value ? items[i].value : "");
    cJSON_AddStringToObject(it, "reason", items[i].reason ? items[i].reason : "");
    cJSON_AddItemToArray(arr, it);
  }
  cJSON_AddNumberToObject(d, "limit", (double)limit);
  cJSON_AddNumberToObject(d, "offset", (double)offset);
  tq_run_items_free(items, n);
  tq_run_reasons_free(reasons, nr);
  tq_resp_data(rs, 200, d);
}

/* ---- engine jobs: cancel marks, workflow and feed definitions --------------------------- */

typedef enum { J_CANCEL, J_WF_ADD, J_WF_PUT, J_WF_DELETE, J_FEED_ADD } job_kind;

typedef struct runs_job {
  job_kind kind;
  int64_t id;
  tq_workflow w; /* J_WF_ADD / J_WF_PUT (members malloc'd) */
  int with_settings;
  tq_feed f;
  tq_source_opts src;
  char target[160];
} runs_job;

static void wf_members_free(tq_workflow *w) {
  free(w->name);
  free(w->collection);
  for (size_t i = 0; i < w->n_actions; i++)
    free(w->actions[i]);
  free(w->actions);
  for (size_t i = 0; i < w->n_settings; i++) {
    free((char *)w->settings[i].key);
    if (w->settings[i].value)
      explicit_bzero((char *)w->settings[i].value, strlen(w->settings[i].value));
    free((char *)w->settings[i].value);
  }
  free(w->settings);
  free(w->sealed);
  memset(w, 0, sizeof *w);
}

static void runs_job_free(void *p) {
  runs_job *j = p;
  wf_members_free(&j->w);
  free(j);
}

static cJSON *workflow_json(const tq_workflow *w);

/* The workflow's error as the API says it: what the input got wrong is 400 naming the field. */
static void wf_fail(tq_resp *rs, const tq_err *err) {
  const char *field = "request";
  if (err->code == TQ_EEXIST)
    return tq_resp_err(rs, NULL, err);
  if (strstr(err->msg, "collection") || err->code == TQ_ENOTFOUND)
    field = strstr(err->msg, "action") ? "actions" : "collection";
  if (strstr(err->msg, "--set") || strstr(err->msg, "setting"))
    field = "settings";
  else if (strstr(err->msg, "action"))
    field = "actions";
  char *m = tq_auth_clean(err->msg, 400);
  tq_resp_invalid(rs, field, "%s", m ? m : "invalid");
  free(m);
}

static void job_main(tq_engine *eng, tq_job *job) {
  runs_job *j = tq_job_ud(job);
  tq_resp *rs = tq_job_resp(job);
  tq_lib *lib = tq_engine_lib(eng);
  const tq_principal *who = tq_job_who(job);
  const char *addr = tq_job_remote(job);
  tq_srv *srv = tq_engine_srv(eng);
  tq_err err;
  tq_err_clear(&err);
  char id[48];
  snprintf(id, sizeof id, "%lld", (long long)j->id);
  if (tq_auth_ensure(lib, &err) != TQ_OK || tq_lib_begin(lib, &err) != TQ_OK) {
    tq_resp_err(rs, NULL, &err);
    return tq_job_done(job);
  }
  tq_code rc = TQ_OK;
  tq_workflow *back = NULL;
  switch (j->kind) {
  case J_CANCEL:
    snprintf(id, sizeof id, "run %lld", (long long)j->id);
    rc = tq_run_set_cancelled(lib, j->id, 1, &err);
    if (rc == TQ_OK)
      rc = tq_auth_audit(lib, who->name, "run.cancel", id, NULL, addr, &err);
    break;
  case J_WF_ADD:
  case J_WF_PUT:
    rc = j->kind == J_WF_ADD
             ? tq_workflow_add(lib, &j->w, tq_srv_key_path(srv), &err)
             : tq_workflow_update(lib, &j->w, j->with_settings, tq_srv_key_path(srv), &err);
    if (rc == TQ_OK && j->kind == J_WF_ADD && !j->w.enabled)
      rc = tq_workflow_set_enabled(lib, j->w.name, 0, &err);
    if (rc == TQ_OK)
      rc = tq_workflow_get(lib, j->w.name, &back, &err);
    if (rc == TQ_OK)
      rc = tq_auth_audit(lib, who->name, j->kind == J_WF_ADD ? "workflow.add" : "workflow.update",
                         j->w.name, NULL, addr, &err);
    break;
  case J_WF_DELETE:
    rc = tq_auth_audit(lib, who->name, "workflow.delete", j->target, NULL, addr, &err);
    if (rc == TQ_OK)
      rc = tq_workflow_delete(lib, j->target, &err);
    break;
  case J_FEED_ADD:
    rc = tq_feed_add(lib, &j->f, &j->src, &err);
    if (rc == TQ_OK)
      rc = tq_auth_audit(lib, who->name, "feed.add", j->f.name, j->f.discovery, addr, &err);
    break;
  }
  if (rc == TQ_OK)
    rc = tq_lib_commit(lib, &err);
  if (rc != TQ_OK) {
    tq_lib_rollback(lib);
    tq_workflow_free(back);
    if ((j->kind == J_WF_ADD || j->kind == J_WF_PUT) && rc != TQ_EDB)
      wf_fail(rs, &err);
    else if (j->kind == J_FEED_ADD && rc == TQ_EINVAL) {
      char *m = tq_auth_clean(err.msg, 400);
      tq_resp_invalid(rs, "request", "%s", m ? m : "invalid");
      free(m);
    } else
      tq_resp_err(rs, NULL, &err);
    return tq_job_done(job);
  }
  switch (j->kind) {
  case J_CANCEL: {
    tq_runs *rn = tq_srv_runs(srv);
    int live = rn && tq_runs_cancel(rn, j->id);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "id", (double)j->id);
    cJSON_AddStringToObject(d, "state", live ? "cancelling" : "cancelled");
    tq_resp_data(rs, live ? 202 : 200, d);
    break;
  }
  case J_WF_ADD:
  case J_WF_PUT:
    tq_resp_data(rs, j->kind == J_WF_ADD ? 201 : 200, workflow_json(back));
    tq_workflow_free(back);
    break;
  case J_WF_DELETE: tq_resp_raw(rs, 204, "application/json", "", 0); break;
  case J_FEED_ADD: {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", j->f.name);
    cJSON_AddStringToObject(d, "discovery", j->f.discovery);
    cJSON_AddStringToObject(d, "collection", j->f.collection);
    cJSON_AddStringToObject(d, "source", j->f.source);
    tq_resp_data(rs, 201, d);
    break;
  }
  }
  tq_job_done(job);
}

/* POST /api/runs/{id}/cancel */
static void route_run_cancel(tq_req *rq, tq_resp *rs) {
  tq_run_info r;
  if (!load_run(rq, rs, &r))
    return;
  tq_runs *rn = runs_or_503(rq, rs);
  if (rn == NULL)
    return;
  if (strcmp(r.status, "done") == 0 || strcmp(r.status, "failed") == 0)
    return tq_resp_fail(rs, 409, "run %lld is %s: nothing to cancel", (long long)r.id, r.status);
  if (r.live && !tq_runs_live(rn, r.id))
    return tq_resp_fail(rs, 409, "run %lld is running in another process (%s): not cancelled",
                        (long long)r.id, r.owner);
  runs_job *j = calloc(1, sizeof *j);
  if (j == NULL)
    return tq_resp_fail(rs, 503, "out of memory");
  j->kind = J_CANCEL;
  j->id = r.id;
  tq_req_engine(rq, rs, job_main, j, runs_job_free);
}

/* POST /api/runs/{id}/resume */
static void route_run_resume(tq_req *rq, tq_resp *rs) {
  tq_run_info r;
  if (!load_run(rq, rs, &r))
    return;
  tq_runs *rn = runs_or_503(rq, rs);
  if (rn == NULL)
    return;
  if (strcmp(r.status, "done") == 0)
    return tq_resp_fail(rs, 409, "run %lld is done: nothing to resume", (long long)r.id);
  if (r.live)
    return tq_resp_fail(rs, 409, "run %lld is running: not resumed", (long long)r.id);
  tq_runs_start_req q = {0};
  q.run_id = r.id;
  tq_runs_start_resume(rq, rs, &q);
}

/* POST /api/runs/{id}/retry: a new run of the same action over the items that failed in this
 * one (the run's recorded settings apply). */
static void route_run_retry(tq_req *rq, tq_resp *rs) {
  tq_run_info r;
  if (!load_run(rq, rs, &r))
    return;
  if (runs_or_503(rq, rs) == NULL)
    return;
  if (r.live)
    return tq_resp_fail(rs, 409, "run %lld is running: retry its failed items once it ends",
                        (long long)r.id);
  if (r.failed <= 0)
    return tq_resp_fail(rs, 409, "run %lld has no failed items to retry", (long long)r.id);
  if (!name_ok(r.action))
    return tq_resp_fail(rs, 409, "run %lld's action '%s' cannot be run from the API",
                        (long long)r.id, r.action);
  tq_runs_start_req q = {0};
  q.action = tq_strdup(r.action);
  q.retry_of = r.id;
  tq_runs_start_action(rq, rs, &q);
}

/* ---- live progress: server-sent events ------------------------------------------------------ */

/* POST /api/runs/{id}/events/ticket: a single-use ticket for the run's event stream (a browser's
 * EventSource cannot send the Authorization header). */
static void route_run_events_ticket(tq_req *rq, tq_resp *rs) {
  tq_run_info r;
  if (!load_run(rq, rs, &r))
    return;
  tq_events *ev = tq_srv_events(rq->srv);
  if (ev == NULL)
    return tq_resp_fail(rs, 503, "event streams are not available");
  char tk[TQ_AUTH_TOKEN_LEN + 1];
  int64_t ttl = 0;
  tq_err err;
  if (tq_events_ticket(ev, r.id, &rq->who, tk, &ttl, &err) != TQ_OK) {
    tq_resp_fail(rs, 503, "%s", err.msg);
    rs->retry_after_s = 5;
    return;
  }
  char url[160];
  snprintf(url, sizeof url, "/api/runs/%lld/events?ticket=%s", (long long)r.id, tk);
  cJSON *d = cJSON_CreateObject();
  cJSON_AddStringToObject(d, "ticket", tk);
  cJSON_AddNumberToObject(d, "expires_in", (double)ttl);
  cJSON_AddStringToObject(d, "url", url);
  explicit_bzero(tk, sizeof tk);
  tq_resp_data(rs, 201, d);
}

/* GET /api/runs/{id}/events: text/event-stream of "progress" events (at least one a second
 * while the run goes on) and a final "end" event, then the stream ends. Authenticated by a
 * ticket (?ticket=, from the route above) or the Authorization header; the route itself is
 * open (TQ_ROLE_NONE) so that the ticket can stand in for the header. */
static void route_run_events(tq_req *rq, tq_resp *rs) {
  tq_events *ev = tq_srv_events(rq->srv);
  const char *tk = tq_req_arg(rq, "ticket");
  int64_t ticket_run = 0;
  if (tk) {
    if (ev == NULL || !tq_events_ticket_take(ev, tk, &ticket_run, &rq->who)) {
      tq_resp_fail(rs, 401,
                   "the event ticket is unknown, used or expired: ask "
                   "POST /api/runs/{id}/events/ticket for another");
      return;
    }
  } else if (!tq_auth_bearer(rq, rs)) {
    if (rs->status == 0)
      tq_resp_fail(rs, 401, "authentication required: a bearer token or ?ticket=");
    return;
  }
  if (rq->who.role < TQ_ROLE_READONLY)
    return tq_resp_fail(rs, 403, "GET /api/runs/{id}/events needs the role read-only");
  tq_run_info r;
  if (!load_run(rq, rs, &r))
    return;
  if (tk && ticket_run != r.id)
    return tq_resp_fail(rs, 403, "the ticket is for run %lld, not run %lld", (long long)ticket_run,
                        (long long)r.id);
  if (ev == NULL)
    return tq_resp_fail(rs, 503, "event streams are not available");
  tq_err err;
  void *st = tq_events_open(ev, &r, &err);
  if (st == NULL) {
    tq_resp_fail(rs, 503, "%s", err.msg);
    rs->retry_after_s = 5;
    return;
  }
  tq_resp_free(rs);
  rs->status = 200;
  rs->stream = st;
}

/* ---- workflows -------------------------------------------------------------------------- */

/* The schedule as the API writes it: "every 6h", "daily 02:30", "weekly monday 08:00", null. */
static void schedule_text(const tq_schedule *s, char *out, size_t n) {
  static const char *const DAYS[] = {"sunday",   "monday", "tuesday", "wednesday",
                                     "thursday", "friday", "saturday"};
  switch (s->kind) {
  case TQ_SCHED_EVERY:
    if (s->every_s >= 2 * 86400 && s->every_s % 86400 == 0)
      snprintf(out, n, "every %lldd", (long long)(s->every_s / 86400));
    else
      snprintf(out, n, "every %lldh", (long long)(s->every_s / 3600));
    break;
  case TQ_SCHED_DAILY: snprintf(out, n, "daily %02d:%02d", s->hour, s->minute); break;
  case TQ_SCHED_WEEKLY:
    snprintf(out, n, "weekly %s %02d:%02d", DAYS[s->weekday % 7], s->hour, s->minute);
    break;
  default: out[0] = '\0';
  }
}

static cJSON *workflow_json(const tq_workflow *w) {
  cJSON *o = cJSON_CreateObject();
  char buf[96];
  cJSON_AddNumberToObject(o, "id", (double)w->id);
  cJSON_AddStringToObject(o, "name", w->name);
  cJSON_AddStringToObject(o, "collection", w->collection);
  cJSON *a = cJSON_AddArrayToObject(o, "actions");
  for (size_t i = 0; i < w->n_actions; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(w->actions[i]));
  cJSON *s = cJSON_AddObjectToObject(o, "settings");
  for (size_t i = 0; i < w->n_settings; i++)
    cJSON_AddStringToObject(s, w->settings[i].key,
                            w->sealed && w->sealed[i] ? "********" : w->settings[i].value);
  schedule_text(&w->schedule, buf, sizeof buf);
  if (buf[0])
    cJSON_AddStringToObject(o, "schedule", buf);
  else
    cJSON_AddNullToObject(o, "schedule");
  tq_schedule_describe(&w->schedule, buf, sizeof buf);
  cJSON_AddStringToObject(o, "schedule_text", buf);
  cJSON_AddBoolToObject(o, "enabled", w->enabled);
  add_time(o, "last_run_at", w->last_run_at);
  add_time(o, "next_run_at", w->next_run_at);
  add_time(o, "created_at", w->created_at);
  return o;
}

static void route_workflows(tq_req *rq, tq_resp *rs) {
  tq_workflow **all = NULL;
  size_t n = 0;
  tq_err err;
  if (tq_workflow_list(rq->rd, &all, &n, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < n; i++) {
    cJSON_AddItemToArray(arr, workflow_json(all[i]));
    tq_workflow_free(all[i]);
  }
  free(all);
  tq_resp_list(rs, arr, (int64_t)n, (int64_t)n, 0);
}

static tq_workflow *load_workflow(tq_req *rq, tq_resp *rs) {
  int64_t id = tq_req_id(rq, 0, rs);
  if (id == 0)
    return NULL;
  tq_workflow *w = NULL;
  tq_err err;
  if (tq_workflow_get_id(rq->rd, id, &w, &err) != TQ_OK) {
    if (err.code == TQ_ENOTFOUND)
      tq_resp_fail(rs, 404, "no workflow with id %lld", (long long)id);
    else
      tq_resp_err(rs, NULL, &err);
    return NULL;
  }
  return w;
}

static void route_workflow_get(tq_req *rq, tq_resp *rs) {
  tq_workflow *w = load_workflow(rq, rs);
  if (w == NULL)
    return;
  cJSON *o = workflow_json(w);
  cJSON *act = cJSON_AddArrayToObject(o, "activity");
  tq_err err;
  tq_code rc = tq_workflow_activity(rq->rd, w->id, 20, act, &err);
  tq_workflow_free(w);
  if (rc != TQ_OK) {
    cJSON_Delete(o);
    return tq_resp_err(rs, NULL, &err);
  }
  tq_resp_data(rs, 200, o);
}

/* Parses "every 6h" / "daily 02:30" / "weekly monday 08:00" / null into s. */
static int get_schedule(const cJSON *body, tq_schedule *s, tq_resp *rs) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "schedule");
  memset(s, 0, sizeof *s);
  s->kind = TQ_SCHED_NONE;
  if (v == NULL || cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] == '\0'))
    return 1;
  if (!cJSON_IsString(v) || strlen(v->valuestring) > 64) {
    tq_resp_invalid(rs, "schedule",
                    "must be \"every 1h|6h|24h|2d|14d|30d\", \"daily HH:MM\", "
                    "\"weekly DAY HH:MM\" or null");
    return 0;
  }
  char buf[72], *words[4] = {0};
  tq_strlcpy(buf, v->valuestring, sizeof buf);
  size_t n = 0;
  for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && n < 4;
       t = strtok_r(NULL, " ", &save))
    words[n++] = t;
  tq_err err;
  tq_code rc = TQ_EINVAL;
  if (n == 2 && strcasecmp(words[0], "every") == 0)
    rc = tq_schedule_from_cli(words[1], NULL, NULL, NULL, s, &err);
  else if (n == 2 && strcasecmp(words[0], "daily") == 0)
    rc = tq_schedule_from_cli(NULL, words[1], NULL, NULL, s, &err);
  else if (n == 3 && strcasecmp(words[0], "weekly") == 0)
    rc = tq_schedule_from_cli(NULL, NULL, words[1], words[2], s, &err);
  else
    tq_err_set(&err, TQ_EINVAL, "not \"every P\", \"daily HH:MM\" or \"weekly DAY HH:MM\"");
  if (rc != TQ_OK) {
    char *m = tq_auth_clean(err.msg, 200);
    tq_resp_invalid(rs, "schedule", "%s", m ? m : "invalid");
    free(m);
    return 0;
  }
  return 1;
}

/* Fills w from body over its current values (PUT) or from nothing (POST). */
int tq_api_workflow_from_body(const cJSON *body, int creating, tq_workflow *w, int *with_settings,
                              tq_resp *rs) {
  static const char *const KEYS[] = {"name",     "collection", "actions", "settings",
                                     "schedule", "enabled",    NULL};
  if (!cJSON_IsObject(body)) {
    tq_resp_invalid(rs, "request", "the body must be a JSON object");
    return 0;
  }
  if (!only_keys(body, KEYS, rs))
    return 0;
  const char *name = NULL, *coll = NULL;
  if (!get_str(body, "name", 128, &name, rs) || !get_str(body, "collection", 256, &coll, rs))
    return 0;
  if (creating && name == NULL) {
    tq_resp_invalid(rs, "name", "required");
    return 0;
  }
  if (name && !name_ok(name)) {
    tq_resp_invalid(rs, "name", "letters, digits, '.', '_' and '-' only, not starting with '.'");
    return 0;
  }
  if (creating && coll == NULL) {
    tq_resp_invalid(rs, "collection", "required");
    return 0;
  }
  if (name) {
    free(w->name);
    w->name = tq_strdup(name);
  }
  if (coll) {
    free(w->collection);
    w->collection = tq_strdup(coll);
  }
  const cJSON *acts = cJSON_GetObjectItemCaseSensitive(body, "actions");
  if (acts || creating) {
    int n = cJSON_IsArray(acts) ? cJSON_GetArraySize(acts) : -1;
    if (n < 1 || n > 16) {
      tq_resp_invalid(rs, "actions", "must be an array of 1 to 16 action names");
      return 0;
    }
    for (size_t i = 0; i < w->n_actions; i++)
      free(w->actions[i]);
    free(w->actions);
    w->n_actions = 0;
    w->actions = calloc((size_t)n + 1, sizeof *w->actions);
    const cJSON *it;
    cJSON_ArrayForEach(it, acts) {
      if (!cJSON_IsString(it) || !name_ok(it->valuestring)) {
        tq_resp_invalid(rs, "actions", "item %zu: not an action name", w->n_actions);
        return 0;
      }
      w->actions[w->n_actions++] = tq_strdup(it->valuestring);
    }
  }
  const cJSON *sets = cJSON_GetObjectItemCaseSensitive(body, "settings");
  *with_settings = sets != NULL || creating;
  if (sets && !cJSON_IsNull(sets)) {
    if (!cJSON_IsObject(sets) || cJSON_GetArraySize(sets) > MAX_SETTINGS) {
      tq_resp_invalid(rs, "settings", "must be an object of at most %d KEY: value", MAX_SETTINGS);
      return 0;
    }
    for (size_t i = 0; i < w->n_settings; i++) {
      free((char *)w->settings[i].key);
      free((char *)w->settings[i].value);
    }
    free(w->settings);
    free(w->sealed);
    w->sealed = NULL;
    w->n_settings = 0;
    w->settings = calloc((size_t)cJSON_GetArraySize(sets) + 1, sizeof *w->settings);
    const cJSON *it;
    cJSON_ArrayForEach(it, sets) {
      int twice = 0;
      for (size_t i = 0; i < w->n_settings && !twice; i++)
        twice = strcmp(w->settings[i].key, it->string) == 0;
      char *text = twice ? NULL : setting_text(it);
      if (text == NULL) {
        char *k = tq_auth_clean(it->string, 48);
        char field[96];
        snprintf(field, sizeof field, "settings.%s", k ? k : "?");
        free(k);
        /* a key given twice was kept twice (found by fuzz_api_input's invariants) */
        tq_resp_invalid(rs, field,
                        twice ? "given twice" : "must be a string, a number or a boolean");
        return 0;
      }
      w->settings[w->n_settings].key = tq_strdup(it->string);
      w->settings[w->n_settings].value = text;
      w->n_settings++;
    }
  } else if (sets == NULL && !creating) {
    /* the stored ones stay (tq_workflow_update without settings) */
  }
  if (cJSON_GetObjectItemCaseSensitive(body, "schedule") || creating)
    if (!get_schedule(body, &w->schedule, rs))
      return 0;
  const cJSON *en = cJSON_GetObjectItemCaseSensitive(body, "enabled");
  if (en) {
    if (!cJSON_IsBool(en)) {
      tq_resp_invalid(rs, "enabled", "must be true or false");
      return 0;
    }
    w->enabled = cJSON_IsTrue(en);
  } else if (creating) {
    w->enabled = 1;
  }
  return 1;
}

static void route_workflow_post(tq_req *rq, tq_resp *rs) {
  cJSON *body = tq_req_json(rq, rs);
  if (body == NULL)
    return;
  runs_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    cJSON_Delete(body);
    return tq_resp_fail(rs, 503, "out of memory");
  }
  j->kind = J_WF_ADD;
  int ok = tq_api_workflow_from_body(body, 1, &j->w, &j->with_settings, rs);
  cJSON_Delete(body);
  if (!ok)
    return runs_job_free(j);
  tq_req_engine(rq, rs, job_main, j, runs_job_free);
}

static void route_workflow_put(tq_req *rq, tq_resp *rs) {
  tq_workflow *w = load_workflow(rq, rs);
  if (w == NULL)
    return;
  cJSON *body = tq_req_json(rq, rs);
  runs_job *j = calloc(1, sizeof *j);
  if (body == NULL || j == NULL) {
    if (j == NULL && body)
      tq_resp_fail(rs, 503, "out of memory");
    cJSON_Delete(body);
    free(j);
    tq_workflow_free(w);
    return;
  }
  j->kind = J_WF_PUT;
  j->w = *w; /* takes the members */
  free(w);
  int ok = tq_api_workflow_from_body(body, 0, &j->w, &j->with_settings, rs);
  cJSON_Delete(body);
  if (!ok)
    return runs_job_free(j);
  tq_req_engine(rq, rs, job_main, j, runs_job_free);
}

static void route_workflow_delete(tq_req *rq, tq_resp *rs) {
  tq_workflow *w = load_workflow(rq, rs);
  if (w == NULL)
    return;
  runs_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    tq_workflow_free(w);
    return tq_resp_fail(rs, 503, "out of memory");
  }
  j->kind = J_WF_DELETE;
  j->id = w->id;
  tq_strlcpy(j->target, w->name, sizeof j->target);
  tq_workflow_free(w);
  tq_req_engine(rq, rs, job_main, j, runs_job_free);
}

/* POST /api/workflows/{id}/run */
static void route_workflow_run(tq_req *rq, tq_resp *rs) {
  tq_workflow *w = load_workflow(rq, rs);
  if (w == NULL)
    return;
  if (runs_or_503(rq, rs) == NULL) {
    tq_workflow_free(w);
    return;
  }
  tq_runs_start_req q = {0};
  q.name = tq_strdup(w->name);
  tq_workflow_free(w);
  tq_runs_start_workflow(rq, rs, &q);
}

/* ---- feeds ------------------------------------------------------------------------------------
 */

static void route_feeds(tq_req *rq, tq_resp *rs) {
  tq_feed *v = NULL;
  size_t n = 0;
  tq_err err;
  if (tq_feed_list(rq->rd, &v, &n, &err) != TQ_OK)
    return tq_resp_err(rs, NULL, &err);
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < n; i++)
    cJSON_AddItemToArray(arr, tq_feed_json(&v[i]));
  free(v);
  tq_resp_list(rs, arr, (int64_t)n, (int64_t)n, 0);
}

static int copy_field(const cJSON *body, const char *key, size_t cap, char *dst, tq_resp *rs) {
  const char *v = NULL;
  if (!get_str(body, key, cap - 1, &v, rs))
    return 0;
  if (v)
    tq_strlcpy(dst, v, cap);
  return 1;
}

/* The body of POST /api/feeds into f and src (initialised here); see api_input.h. */
int tq_api_feed_from_body(const cJSON *body, tq_feed *f, tq_source_opts *src, tq_resp *rs) {
  static const char *const KEYS[] = {"name",         "preset",  "url",       "collection",
                                     "source",       "every_s", "page_size", "username",
                                     "password_env", "enabled", NULL};
  const char *preset = NULL, *name = NULL;
  const cJSON *v;
  tq_feed_init(f);
  tq_source_opts_init(src);
  src->kind = "feed";
  if (!cJSON_IsObject(body)) {
    tq_resp_invalid(rs, "request", "the body must be a JSON object");
    return 0;
  }
  if (!only_keys(body, KEYS, rs) || !get_str(body, "name", 127, &name, rs) ||
      !get_str(body, "preset", 64, &preset, rs))
    return 0;
  if (name == NULL || !name_ok(name)) {
    tq_resp_invalid(rs, "name", "required: letters, digits, '.', '_' and '-'");
    return 0;
  }
  tq_strlcpy(f->name, name, sizeof f->name);
  if (preset) {
    tq_err perr;
    if (tq_feed_preset_apply(preset, f, src, &perr) != TQ_OK) {
      tq_resp_invalid(rs, "preset", "must be rst-high, rst-medium, rst-low or rst-report-hub");
      return 0;
    }
  }
  if (!copy_field(body, "url", sizeof f->discovery, f->discovery, rs) ||
      !copy_field(body, "collection", sizeof f->collection, f->collection, rs) ||
      !copy_field(body, "source", sizeof f->source, f->source, rs) ||
      !copy_field(body, "username", sizeof f->username, f->username, rs) ||
      !copy_field(body, "password_env", sizeof f->password_env, f->password_env, rs))
    return 0;
  if (!preset &&
      (cJSON_GetObjectItemCaseSensitive(body, "url") == NULL || f->collection[0] == '\0')) {
    tq_resp_invalid(rs, "url", "give a preset, or a url and a collection");
    return 0;
  }
  if (f->source[0] == '\0')
    tq_strlcpy(f->source, f->name, sizeof f->source);
  if ((v = cJSON_GetObjectItemCaseSensitive(body, "every_s"))) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 60 || v->valuedouble > 30 * 86400.0) {
      tq_resp_invalid(rs, "every_s", "must be a number of seconds from 60 to 2592000");
      return 0;
    }
    f->every_s = (int64_t)v->valuedouble;
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(body, "page_size"))) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 100000) {
      tq_resp_invalid(rs, "page_size", "must be from 1 to 100000");
      return 0;
    }
    f->page_size = (int)v->valuedouble;
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(body, "enabled"))) {
    if (!cJSON_IsBool(v)) {
      tq_resp_invalid(rs, "enabled", "must be true or false");
      return 0;
    }
    f->enabled = cJSON_IsTrue(v);
  }
  return 1;
}

/* POST /api/feeds: {"name", "preset"} and/or {"url", "collection", "source"}, options. */
static void route_feed_post(tq_req *rq, tq_resp *rs) {
  cJSON *body = tq_req_json(rq, rs);
  if (body == NULL)
    return;
  runs_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    tq_resp_fail(rs, 503, "out of memory");
    goto fail;
  }
  j->kind = J_FEED_ADD;
  if (!tq_api_feed_from_body(body, &j->f, &j->src, rs))
    goto fail;
  tq_feed existing;
  tq_err err;
  if (tq_feed_get(rq->rd, j->f.name, &existing, &err) == TQ_OK) {
    tq_resp_fail(rs, 409, "feed '%s' exists already", j->f.name);
    goto fail;
  }
  cJSON_Delete(body);
  tq_req_engine(rq, rs, job_main, j, runs_job_free);
  return;
fail:
  cJSON_Delete(body);
  if (j)
    runs_job_free(j);
}

/* GET /api/feeds/presets: what "add from a preset" offers. */
static void route_feed_presets(tq_req *rq, tq_resp *rs) {
  (void)rq;
  cJSON *arr = cJSON_CreateArray();
  size_t n = 0;
  for (const tq_feed_preset *p; (p = tq_feed_preset_at(n)) != NULL; n++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddStringToObject(o, "kind", p->kind ? p->kind : "");
    cJSON_AddStringToObject(o, "url", p->discovery ? p->discovery : "");
    cJSON_AddStringToObject(o, "collection", p->collection ? p->collection : "");
    cJSON_AddStringToObject(o, "source", p->source ? p->source : "");
    cJSON_AddNumberToObject(o, "score", p->score);
    cJSON_AddNumberToObject(o, "expire_days", p->expire_days);
    cJSON_AddStringToObject(o, "description", p->description ? p->description : "");
    cJSON_AddItemToArray(arr, o);
  }
  tq_resp_list(rs, arr, (int64_t)n, (int64_t)n, 0);
}

/* POST /api/feeds/{name}/poll */
static void route_feed_poll(tq_req *rq, tq_resp *rs) {
  const char *name = rq->params[0];
  tq_feed f;
  tq_err err;
  if (!name_ok(name) || tq_feed_get(rq->rd, name, &f, &err) != TQ_OK)
    return tq_resp_fail(rs, 404, "no such feed");
  if (runs_or_503(rq, rs) == NULL)
    return;
  tq_runs_start_req q = {0};
  q.name = tq_strdup(name);
  tq_strlcpy(q.who, rq->who.name, sizeof q.who);
  tq_runs_start_poll(rq, rs, &q);
}

const tq_route tq_routes_runs[] = {
    {"GET", "/api/actions", TQ_ROLE_READONLY, route_actions},
    {"POST", "/api/actions/{name}/runs", TQ_ROLE_ANALYST, route_run_start},
    {"GET", "/api/runs", TQ_ROLE_READONLY, route_runs},
    {"GET", "/api/runs/{id}", TQ_ROLE_READONLY, route_run_get},
    {"GET", "/api/runs/{id}/items", TQ_ROLE_READONLY, route_run_items},
    {"POST", "/api/runs/{id}/cancel", TQ_ROLE_ANALYST, route_run_cancel},
    {"POST", "/api/runs/{id}/resume", TQ_ROLE_ANALYST, route_run_resume},
    {"POST", "/api/runs/{id}/retry", TQ_ROLE_ANALYST, route_run_retry},
    {"POST", "/api/runs/{id}/events/ticket", TQ_ROLE_READONLY, route_run_events_ticket},
    {"GET", "/api/runs/{id}/events", TQ_ROLE_NONE, route_run_events},
    {"GET", "/api/workflows", TQ_ROLE_READONLY, route_workflows},
    {"POST", "/api/workflows", TQ_ROLE_ANALYST, route_workflow_post},
    {"GET", "/api/workflows/{id}", TQ_ROLE_READONLY, route_workflow_get},
    {"PUT", "/api/workflows/{id}", TQ_ROLE_ANALYST, route_workflow_put},
    {"DELETE", "/api/workflows/{id}", TQ_ROLE_ANALYST, route_workflow_delete},
    {"POST", "/api/workflows/{id}/run", TQ_ROLE_ANALYST, route_workflow_run},
    {"GET", "/api/feeds", TQ_ROLE_READONLY, route_feeds},
    {"GET", "/api/feeds/presets", TQ_ROLE_READONLY, route_feed_presets},
    {"POST", "/api/feeds", TQ_ROLE_ADMIN, route_feed_post},
    {"POST", "/api/feeds/{name}/poll", TQ_ROLE_ANALYST, route_feed_poll},
    {NULL, NULL, TQ_ROLE_NONE, NULL},
};
