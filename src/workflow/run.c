/* run.c: the bulk runner of actions. It walks the input (a collection through the library's
 * keyset cursor, or explicit values resolved to ids) in id order, admits Lua runs under the
 * action's concurrency (the provider's token bucket and connection cap are tq_net's: a run
 * waits for a token, never fails for want of one), records each outcome in the window and lets
 * run_commit.c write the done prefix with the checkpoint. SIGINT/SIGTERM end the loop: runs in
 * flight are dropped (redone on resume), what is done is committed, the run is "interrupted".
 * The public entry points tq_action_run and tq_action_resume live at the end. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "run_int.h"

/* Set by the signal handlers while a run is active; signals force a global. */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

typedef struct sig_saved {
  struct sigaction intr, term;
} sig_saved;

static void signals_install(sig_saved *saved) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  g_stop = 0;
  sigaction(SIGINT, &sa, &saved->intr);
  sigaction(SIGTERM, &sa, &saved->term);
}

static void signals_restore(const sig_saved *saved) {
  sigaction(SIGINT, &saved->intr, NULL);
  sigaction(SIGTERM, &saved->term, NULL);
}

/* ---- the window -------------------------------------------------------------------------------
 */

slot *runner_slot(runner *r, size_t k) { return &r->slots[(r->head + k) % r->cap]; }

void slot_clear(slot *s) {
  free(s->reason);
  tq_object_free(s->obj);
  tq_changeset_free(&s->cs);
  memset(s, 0, sizeof *s);
}

void runner_fail(runner *r, const tq_err *err) {
  if (!r->has_fatal) {
    r->fatal = *err;
    r->has_fatal = 1;
  }
}

static slot *append(runner *r, int64_t id) {
  slot *s = &r->slots[(r->head + r->count) % r->cap];
  r->count++;
  memset(s, 0, sizeof *s);
  tq_changeset_init(&s->cs);
  s->id = id;
  s->r = r;
  return s;
}

static void finish_slot(runner *r, slot *s, int outcome, char *reason) {
  s->state = SLOT_DONE;
  s->outcome = outcome;
  free(s->reason);
  s->reason = reason;
  r->done_session++;
  r->failed_session += outcome == OUT_FAILED;
}

static void finish_slot_msg(runner *r, slot *s, int outcome, const char *fmt, const char *arg) {
  char *reason = NULL;
  if (asprintf(&reason, fmt, arg) < 0)
    reason = NULL;
  finish_slot(r, s, outcome, reason);
}

/* ---- the input ----------------------------------------------------------------------------------
 */

/* The next id of the input after after_id, 0 at the end. */
static int64_t next_id(runner *r, tq_err *err) {
  if (r->ids) {
    while (r->ids_i < r->n_ids && r->ids[r->ids_i] <= r->after_id)
      r->ids_i++;
    return r->ids_i < r->n_ids ? r->ids[r->ids_i++] : 0;
  }
  if (r->page_i == r->page_n) {
    r->page_i = r->page_n = 0;
    if (tq_lib_cursor_next(r->cur, r->page, sizeof r->page / sizeof r->page[0], &r->page_n, err) !=
        TQ_OK)
      return -1;
    if (r->page_n == 0)
      return 0;
  }
  return r->page[r->page_i++];
}

/* Why the action does not take obj, or NULL when it does. */
static const char *refuse(const runner *r, const tq_object *obj) {
  if (obj->object_type && strcmp(obj->object_type, "indicator") != 0)
    return obj->object_type;
  if (r->a->n_itypes == 0)
    return NULL;
  for (size_t i = 0; i < r->a->n_itypes; i++)
    if (obj->indicator_type && tq_str_ieq(r->a->itypes[i], obj->indicator_type))
      return NULL;
  return obj->indicator_type ? obj->indicator_type : "untyped";
}

/* ---- single runs --------------------------------------------------------------------------------
 */

/* An answered object's outcome from its change set (moved into s->cs): not found when its
 * show says found = false, else enriched. One path for a single run and a batch's item. */
static void take_changes(runner *r, slot *s) {
  const cJSON *found = cJSON_GetObjectItemCaseSensitive(s->cs.show, "found");
  if (cJSON_IsFalse(found)) {
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(s->cs.show, "message");
    finish_slot_msg(r, s, OUT_NOT_FOUND, "%s",
                    cJSON_IsString(msg) ? msg->valuestring : "not found");
    tq_changeset_free(&s->cs);
    tq_changeset_init(&s->cs);
    return;
  }
  cJSON_Delete(s->cs.show);
  s->cs.show = NULL;
  run_filter_changes(r, &s->cs);
  finish_slot(r, s, OUT_ENRICHED, NULL);
}

static void take_ok(runner *r, slot *s, tq_lua_run *run) {
  tq_lua_run_take_changeset(run, &s->cs);
  take_changes(r, s);
}

static void on_run_done(void *ud, tq_lua_run *run) {
  slot *s = ud;
  runner *r = s->r;
  tq_lua_status st = tq_lua_run_status(run);
  const char *msg = tq_lua_run_message(run);
  if (st == TQ_LUA_OK)
    take_ok(r, s, run);
  else if (st == TQ_LUA_ERROR)
    finish_slot_msg(r, s, OUT_FAILED, "script error: %s", msg);
  else
    finish_slot_msg(r, s, OUT_FAILED, "%s", *msg ? msg : tq_lua_status_name(st));
  tq_lua_run_free(run);
  s->run = NULL;
  r->active--;
}

static void heads_clear(runner *r) {
  for (size_t i = r->heads_i; i < r->heads_n; i++)
    tq_object_free(r->heads[i]);
  r->heads_n = r->heads_i = 0;
}

/* Reads the objects of id and of the input ids that follow it (up to TQ_LIB_HEADS_MAX, within
 * the cursor's page or the explicit ids) in one statement. */
static tq_code heads_fill(runner *r, int64_t id, tq_err *err) {
  heads_clear(r);
  size_t n = 0;
  r->head_ids[n++] = id;
  const int64_t *next = r->ids ? r->ids + r->ids_i : r->page + r->page_i;
  size_t left = r->ids ? r->n_ids - r->ids_i : r->page_n - r->page_i;
  for (size_t i = 0; i < left && n < TQ_LIB_HEADS_MAX; i++)
    if (next[i] > r->head_ids[n - 1]) /* ascending, as the statement's lookup needs */
      r->head_ids[n++] = next[i];
  tq_code rc = tq_lib_object_heads(r->lib, r->head_ids, n, r->heads, err);
  if (rc == TQ_OK)
    r->heads_n = n;
  return rc;
}

/* The object (its own row) of input id, NULL when it no longer exists. */
static tq_code head_take(runner *r, int64_t id, tq_object **obj, tq_err *err) {
  while (r->heads_i < r->heads_n && r->head_ids[r->heads_i] < id)
    tq_object_free(r->heads[r->heads_i++]);
  if (r->heads_i == r->heads_n || r->head_ids[r->heads_i] != id) {
    tq_code rc = heads_fill(r, id, err);
    if (rc != TQ_OK)
      return rc;
  }
  *obj = r->heads[r->heads_i];
  r->heads[r->heads_i++] = NULL;
  return TQ_OK;
}

/* Reads the slot's object (its own row, read ahead with the next ones: the script reads its
 * lists from the library if it uses them, see obj_lists_later) into *obj, or finishes the slot
 * (and leaves *obj NULL): failed when the object is gone, skipped when the action does not
 * accept its type. */
static tq_code read_accepted(runner *r, slot *s, tq_object **obj, tq_err *err) {
  tq_code rc = head_take(r, s->id, obj, err);
  if (rc != TQ_OK)
    return rc;
  if (*obj == NULL) {
    finish_slot_msg(r, s, OUT_FAILED, "%s", "the object no longer exists");
    return TQ_OK;
  }
  const char *refused = refuse(r, *obj);
  if (refused) {
    finish_slot_msg(r, s, OUT_SKIPPED, "the action does not accept %s objects", refused);
    tq_object_free(*obj);
    *obj = NULL;
  }
  return TQ_OK;
}

static tq_code start_single(runner *r, slot *s, tq_err *err) {
  tq_object *obj = NULL;
  tq_code rc = read_accepted(r, s, &obj, err);
  if (rc != TQ_OK || obj == NULL)
    return rc;
  s->state = SLOT_RUNNING;
  rc = tq_lua_run_start(r->rt, r->script, r->a->entry, obj, on_run_done, s, &s->run, err);
  if (rc == TQ_OK)
    r->active++;
  tq_object_free(obj);
  return rc;
}

/* ---- batch runs -------------------------------------------------------------------------------
 */

static void chunk_free(chunk *c) {
  for (size_t i = 0; i < c->n; i++)
    c->slots[i]->chunk = NULL;
  free(c->slots);
  free(c);
}

/* A batch run is over: each item's change set goes the way of a single run's (take_changes);
 * an item failed by the entry or never answered fails with its reason; a failed call fails
 * the whole chunk with the call's reason. */
static void on_chunk_done(void *ud, tq_lua_run *run) {
  chunk *c = ud;
  runner *r = c->r;
  tq_lua_status st = tq_lua_run_status(run);
  const char *msg = tq_lua_run_message(run);
  for (size_t i = 0; i < c->n; i++) {
    slot *s = c->slots[i];
    if (st != TQ_LUA_OK) {
      finish_slot_msg(r, s, OUT_FAILED, "batch lookup: %s", *msg ? msg : tq_lua_status_name(st));
      continue;
    }
    const char *why = tq_lua_run_take_item(run, i, &s->cs);
    if (why)
      finish_slot_msg(r, s, OUT_FAILED, "%s", why);
    else
      take_changes(r, s);
  }
  tq_lua_run_free(run);
  chunk_free(c);
  r->active--;
}

static const char *slot_itype(const slot *s) {
  return s->obj && s->obj->indicator_type ? s->obj->indicator_type : "";
}

/* Starts one batch entry call over up to batch_max waiting slots of indicator type itype:
 * entry(items, ctx) with the slots' objects, in window order. */
static tq_code start_chunk(runner *r, const char *itype, tq_err *err) {
  size_t max = (size_t)r->a->batch_max, n = 0;
  chunk *c = calloc(1, sizeof *c);
  const tq_object **objs = calloc(max, sizeof *objs);
  tq_code rc = TQ_OK;
  if (!c || !objs || (c->slots = calloc(max, sizeof *c->slots)) == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "batch: out of memory");
    goto done;
  }
  for (size_t k = 0; k < r->count && n < max; k++) {
    slot *s = runner_slot(r, k);
    if (s->state == SLOT_WAIT_BATCH && strcmp(slot_itype(s), itype) == 0) {
      c->slots[n] = s;
      objs[n++] = s->obj;
    }
  }
  c->r = r;
  c->n = n;
  rc = tq_lua_run_start_batch(r->rt, r->script, r->a->batch_entry, objs, n, on_chunk_done, c,
                              &c->run, err);
  if (rc == TQ_OK) {
    for (size_t i = 0; i < n; i++) {
      c->slots[i]->state = SLOT_RUNNING;
      c->slots[i]->chunk = c;
      tq_object_free(c->slots[i]->obj); /* copied into the run's views */
      c->slots[i]->obj = NULL;
    }
    r->active++;
    c = NULL;
  }
done:
  if (c) {
    free(c->slots);
    free(c);
  }
  free(objs);
  return rc;
}

/* A slot that waits for a batch: the object's row is kept until the chunk starts. */
static tq_code enqueue_batch(runner *r, slot *s, tq_err *err) {
  tq_object *obj = NULL;
  tq_code rc = read_accepted(r, s, &obj, err);
  if (rc != TQ_OK || obj == NULL)
    return rc;
  s->state = SLOT_WAIT_BATCH;
  s->obj = obj;
  return TQ_OK;
}

/* Starts chunks: full ones always; partial ones when the input is exhausted or the window is
 * full (nothing more could join them). */
static tq_code dispatch_chunks(runner *r, tq_err *err) {
  int flush = r->eof || r->count == r->cap;
  for (size_t k = 0; k < r->count && r->active < (size_t)r->conc; k++) {
    slot *s = runner_slot(r, k);
    if (s->state != SLOT_WAIT_BATCH)
      continue;
    size_t same = 0;
    for (size_t j = k; j < r->count && same < (size_t)r->a->batch_max; j++) {
      slot *t = runner_slot(r, j);
      same += t->state == SLOT_WAIT_BATCH && strcmp(slot_itype(t), slot_itype(s)) == 0;
    }
    if (!flush && same < (size_t)r->a->batch_max)
      continue;
    char *itype = tq_strdup(slot_itype(s)); /* s->obj is freed when the chunk starts */
    tq_code rc =
        itype ? start_chunk(r, itype, err) : tq_err_set(err, TQ_ENOMEM, "batch: out of memory");
    free(itype);
    if (rc != TQ_OK)
      return rc;
  }
  return TQ_OK;
}

/* ---- the loop -----------------------------------------------------------------------------------
 */

/* Whether another single run may start. The concurrency bounds the runs that hold or are about
 * to send a request: a run whose answer came back and that only waits for the CPU to map it
 * does not count, so the next item's request goes out at once instead of after the mapping of
 * a whole burst of answers (every run waits about as long, so answers come in bursts). Such
 * runs are bounded too (by the concurrency again), which bounds memory; the provider's
 * connection cap (the concurrency, see setup_lua) still bounds the requests in flight. */
static int single_slot_free(const runner *r) {
  size_t conc = (size_t)r->conc, waiting_cpu = tq_lua_resumable(r->rt);
  return r->active < conc + waiting_cpu && r->active < 2 * conc;
}

static tq_code admit(runner *r, tq_err *err) {
  tq_code rc = TQ_OK;
  while (rc == TQ_OK && !r->eof && r->count < r->cap && (r->batch_mode || single_slot_free(r))) {
    int64_t id = next_id(r, err);
    if (id < 0)
      return err->code ? err->code : TQ_EDB;
    if (id == 0) {
      r->eof = 1;
      break;
    }
    r->after_id = id;
    slot *s = append(r, id);
    rc = r->batch_mode ? enqueue_batch(r, s, err) : start_single(r, s, err);
  }
  if (rc == TQ_OK && r->batch_mode)
    rc = dispatch_chunks(r, err);
  return rc;
}

/* Drops the runs in flight: their items stay uncommitted and are redone on resume. Their
 * requests are cancelled rather than waited for (a stalled server would hold a Ctrl-C for
 * the whole request timeout, retries included). */
static void drop_in_flight(runner *r) {
  for (size_t k = 0; k < r->count; k++) {
    slot *s = runner_slot(r, k);
    if (s->run) {
      tq_lua_run_free(s->run);
      s->run = NULL;
    }
    if (s->chunk) {
      chunk *c = s->chunk;
      tq_lua_run_free(c->run);
      chunk_free(c);
    }
  }
  r->active = 0;
  if (r->net)
    tq_net_cancel_all(r->net, NULL);
}

/* An error when the provider's answers were 401/403 max_auth_failures times in a row: a bad
 * or revoked key fails every item, and each costs quota. */
static tq_code auth_check(runner *r, tq_err *err) {
  int max = r->o->max_auth_failures > 0 ? r->o->max_auth_failures : TQ_ACTION_AUTH_FAILURES_DEFAULT;
  const char *last = NULL;
  int n = tq_net_provider_auth_failures(r->prov, &last);
  if (n < max)
    return TQ_OK;
  return tq_err_set(err, TQ_EDENIED, "stopped after %d authentication failures: %s", n, last);
}

/* The heartbeat of the run's lease, when no checkpoint refreshed it lately (a run whose
 * requests stall commits nothing for a while). */
static void heartbeat(runner *r) {
  int64_t now = tq_mono_ms();
  if (r->o->dry_run || r->row.id == 0 || now - r->last_beat_ms < RUN_HEARTBEAT_S * 1000)
    return;
  r->last_beat_ms = now;
  tq_err e;
  run_store_heartbeat(r->lib, r->row.id, &e); /* a failure shows as a stale lease only */
}

static tq_code loop(runner *r, tq_err *err) {
  tq_code rc = TQ_OK;
  while (rc == TQ_OK && !g_stop && !(r->o->stop && *r->o->stop)) {
    rc = admit(r, err);
    if (rc != TQ_OK || (r->eof && r->count == 0))
      break;
    if (r->active > 0)
      rc = tq_lua_step(r->rt, 50, err);
    if (rc == TQ_OK)
      rc = auth_check(r, err);
    if (rc == TQ_OK)
      rc = run_commit_due(r, 0, NULL, err);
    heartbeat(r);
    run_progress_draw(r, 0);
  }
  return rc;
}

/* ---- setting up
 * ----------------------------------------------------------------------------------- */

/* write_attributes ("all", "none" or a comma-separated list), write_links,
 * write_related_indicators ("false" to leave them out). */
static tq_code setup_filters(runner *r, tq_err *err) {
  const char *attrs = tq_plugin_config_get(&r->cfg.pc, "write_attributes");
  const char *links = tq_plugin_config_get(&r->cfg.pc, "write_links");
  const char *inds = tq_plugin_config_get(&r->cfg.pc, "write_related_indicators");
  r->no_links = links && strcmp(links, "false") == 0;
  r->no_indicators = inds && strcmp(inds, "false") == 0;
  if (attrs == NULL || tq_str_ieq(attrs, "all"))
    return TQ_OK;
  if (tq_str_ieq(attrs, "none")) {
    r->no_attrs = 1;
    return TQ_OK;
  }
  char *copy = tq_strdup(attrs), *save = NULL;
  size_t cap = strlen(attrs) / 2 + 2;
  r->keep_attrs = calloc(cap, sizeof *r->keep_attrs);
  if (copy == NULL || r->keep_attrs == NULL) {
    free(copy);
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  for (char *t = strtok_r(copy, ",", &save); t && r->n_keep_attrs < cap;
       t = strtok_r(NULL, ",", &save)) {
    char *name = tq_str_trim(t);
    if (*name && (r->keep_attrs[r->n_keep_attrs] = tq_strdup(name)) != NULL)
      r->n_keep_attrs++;
  }
  free(copy);
  return TQ_OK;
}

static tq_code setup_lua(runner *r, const char *key_path, const tq_lua_kv *ovr, size_t n_ovr,
                         tq_err *err) {
  const tq_action *a = r->a;
  tq_code rc = action_cfg_build(r->lib, a, key_path, ovr, n_ovr, &r->cfg, err);
  if (rc == TQ_OK)
    rc = setup_filters(r, err);
  r->view = *a->plugin;
  r->view.net = a->net;
  r->view.limits = a->limits;
  tq_host_config host;
  if (rc == TQ_OK && (rc = tq_host_config_find(&host, err)) == TQ_OK) {
    tq_host_limits_clamp(&host, a->name, &r->view.limits);
    tq_host_config_free(&host);
  }
  if (rc == TQ_OK)
    rc = tq_plugin_policy_build(&r->view, &r->cfg.pc, &r->pp, err);
  if (rc != TQ_OK)
    return rc;
  if (r->o->rate_per_s > 0) {
    r->pp.policy.rate_per_s = r->o->rate_per_s;
    r->pp.policy.burst = r->o->rate_per_s < 1 ? 1 : r->o->rate_per_s;
  }
  r->pp.policy.max_conns = r->conc;
  tq_lua_opts lo;
  tq_lua_opts_init(&lo);
  if ((rc = tq_net_new(a->net.cache_ttl_ms > 0 ? r->lib : NULL, &r->net, err)) != TQ_OK ||
      (rc = tq_net_provider_get(r->net, a->plugin->name, &r->pp.policy, &r->prov, err)) != TQ_OK)
    return rc;
  if (r->o->dry_run)
    tq_net_cache_readonly(r->net); /* a dry run writes nothing, the cache included */
  lo.net = r->net;
  lo.lib = r->lib;
  if ((rc = tq_lua_new(&lo, &r->rt, err)) != TQ_OK)
    return rc;
  /* The plugin's texts: the host's registry's when it gave the plugin (its script when the
   * action runs the plugin's own), else read now; lib modules of the plugin's own lib/
   * compiled at load, so the whole run is on one version of them. */
  tq_plugin_script_spec spec = {.plugin = a->plugin,
                                .cfg = &r->cfg.pc,
                                .with_secrets = 1,
                                .provider = r->prov,
                                .plugins_dir = a->plugins_dir,
                                .script = a->script,
                                .limits = &r->view.limits, /* the action's, within the host's */
                                .src = a->plugin_src};
  tq_plugin_script_opts o;
  if ((rc = tq_plugin_script_opts_build(&spec, &o, err)) != TQ_OK)
    return rc;
  /* A run's outcome is all the runner reads of its show (found, message), a single run's as a
   * batch item's (c:show): the rest is never converted. */
  o.so.outcome_only = 1;
  o.so.obj_lists_later = 1; /* objects come from tq_lib_object_head */
  rc = tq_lua_load(r->rt, &o.so, &r->script, err);
  tq_plugin_script_opts_free(&o);
  if (rc != TQ_OK)
    return rc;
  const char *entry = r->batch_mode ? a->batch_entry : a->entry;
  if (!tq_lua_script_has_entry(r->script, entry))
    return tq_err_set(err, TQ_EINVAL, "%s: action %s: the script %s has no entry '%s'", a->path,
                      a->name, a->script, entry);
  return TQ_OK;
}

static int by_id(const void *x, const void *y) {
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return a < b ? -1 : a > b;
}

/* The plugin's source, kind "plugin", for indicators the run creates from values. */
static tq_code ensure_source(runner *r, tq_err *err) {
  tq_source s;
  tq_code rc = tq_lib_source_get(r->lib, r->a->plugin->label, &s, err);
  if (rc != TQ_ENOTFOUND)
    return rc;
  tq_source_opts so;
  tq_source_opts_init(&so);
  so.kind = "plugin";
  return tq_lib_source_put(r->lib, r->a->plugin->label, &so, 0, NULL, err);
}

/* Explicit values: found in the library, or created (as the plugin's) unless dry run. */
static tq_code resolve_values(runner *r, const char *const *values, size_t n, tq_err *err) {
  if ((r->ids = calloc(n ? n : 1, sizeof *r->ids)) == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  tq_code rc = r->o->dry_run ? TQ_OK : tq_lib_begin(r->lib, err);
  if (rc == TQ_OK && !r->o->dry_run)
    rc = ensure_source(r, err);
  const char *srcs[1] = {r->a->plugin->label};
  for (size_t i = 0; rc == TQ_OK && i < n; i++) {
    int64_t id = 0;
    tq_err e;
    rc = tq_lib_object_find(r->lib, NULL, NULL, values[i], &id, &e);
    if (rc == TQ_ENOTFOUND && r->o->dry_run) {
      rc = tq_err_set(err, TQ_ENOTFOUND, "'%s' is not in the library (a dry run creates nothing)",
                      values[i]);
    } else if (rc == TQ_ENOTFOUND || rc == TQ_EINVAL) {
      tq_object_in in = {.value = values[i], .sources = srcs, .n_sources = 1};
      rc = tq_lib_object_put(r->lib, &in, &id, NULL, err);
    } else if (rc != TQ_OK) {
      *err = e;
    }
    if (rc != TQ_OK)
      tq_err_prefix(err, "value '%s': ", values[i]);
    else
      r->ids[r->n_ids++] = id;
  }
  if (!r->o->dry_run) {
    if (rc == TQ_OK)
      rc = tq_lib_commit(r->lib, err);
    else
      tq_lib_rollback(r->lib);
  }
  if (rc != TQ_OK)
    return rc;
  qsort(r->ids, r->n_ids, sizeof *r->ids, by_id);
  size_t k = 0;
  for (size_t i = 0; i < r->n_ids; i++)
    if (k == 0 || r->ids[k - 1] != r->ids[i])
      r->ids[k++] = r->ids[i];
  r->n_ids = k;
  return TQ_OK;
}

/* The failed items of run retry_of, in id order (objects deleted since are left out). */
static tq_code setup_retry(runner *r, int64_t retry_of, tq_err *err) {
  tq_run_item_info *items = NULL;
  size_t n = 0;
  tq_code rc = tq_run_items(r->lib, retry_of, "failed", &items, &n, err);
  if (rc == TQ_OK && (r->ids = calloc(n ? n : 1, sizeof *r->ids)) == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  for (size_t i = 0; rc == TQ_OK && i < n; i++)
    if (items[i].value[0])
      r->ids[r->n_ids++] = items[i].object_id;
  tq_run_items_free(items, n);
  return rc;
}

static tq_code setup_collection(runner *r, const char *name, tq_err *err) {
  tq_code rc = tq_lib_collection_get(r->lib, name, &r->query, err);
  if (rc == TQ_OK && r->row.total == 0)
    rc = tq_lib_query_count(r->lib, &r->query, &r->row.total, err);
  if (rc == TQ_OK)
    rc = tq_lib_cursor_open(r->lib, &r->query, r->after_id, &r->cur, err);
  return rc;
}

static void runner_free(runner *r) {
  heads_clear(r);
  run_writer_stop(r);
  sqlite3_finalize(r->item_st);
  drop_in_flight(r);
  for (size_t k = 0; k < r->count; k++)
    slot_clear(runner_slot(r, k));
  free(r->slots);
  tq_lua_script_free(r->script);
  tq_lua_free(r->rt);
  tq_net_free(r->net);
  tq_plugin_policy_free(&r->pp);
  action_cfg_free(&r->cfg);
  for (size_t i = 0; i < r->n_keep_attrs; i++)
    free(r->keep_attrs[i]);
  free(r->keep_attrs);
  tq_lib_cursor_close(r->cur);
  tq_query_free(&r->query);
  free(r->ids);
}

/* ---- one session (a run or a resume) ----------------------------------------------------------
 */

typedef struct session_in {
  int64_t retry_of; /* the failed items of this run, or: */
  const char *collection;
  const char *const *values;
  size_t n_values;
  const tq_lua_kv *overrides;
  size_t n_overrides;
} session_in;

/* The overrides recorded for a resume, as stored settings (passwords sealed) into *out. A dry
 * run records nothing, so it seals nothing either. */
static tq_code settings_json(const tq_action *a, const tq_action_opts *o, const session_in *in,
                             char **out, tq_err *err) {
  cJSON *j = cJSON_CreateObject();
  char *key_path = tq_plugin_key_path(o->db_path ? o->db_path : "tqhost.db");
  tq_code rc = j && key_path ? TQ_OK : tq_err_set(err, TQ_ENOMEM, "out of memory");
  for (size_t i = 0; rc == TQ_OK && !o->dry_run && i < in->n_overrides; i++) {
    const tq_plugin_field *f = action_field(a, in->overrides[i].key);
    if (f)
      rc = settings_put(j, f, key_path, &in->overrides[i], err);
  }
  if (rc == TQ_OK && (*out = cJSON_PrintUnformatted(j)) == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  free(key_path);
  cJSON_Delete(j);
  return rc;
}

static char *input_json(const session_in *in) {
  cJSON *j = cJSON_CreateObject();
  if (j && in->retry_of > 0) {
    cJSON_AddNumberToObject(j, "retry_failed", (double)in->retry_of);
  } else if (j && in->collection) {
    cJSON_AddStringToObject(j, "collection", in->collection);
  } else if (j) {
    cJSON *arr = cJSON_AddArrayToObject(j, "values");
    for (size_t i = 0; arr && i < in->n_values; i++)
      cJSON_AddItemToArray(arr, cJSON_CreateString(in->values[i]));
  }
  char *s = j ? cJSON_PrintUnformatted(j) : NULL;
  cJSON_Delete(j);
  return s;
}

static tq_code setup_input(runner *r, const session_in *in, tq_err *err) {
  if (in->collection)
    return setup_collection(r, in->collection, err);
  tq_code rc = in->retry_of > 0 ? setup_retry(r, in->retry_of, err)
                                : resolve_values(r, in->values, in->n_values, err);
  if (rc == TQ_OK && r->row.total == 0)
    r->row.total = (int64_t)r->n_ids;
  return rc;
}

static void summarize(const runner *r, const char *status, tq_run_summary *out) {
  memset(out, 0, sizeof *out);
  out->run_id = r->row.id;
  tq_strlcpy(out->status, status, sizeof out->status);
  out->enriched = r->row.enriched;
  out->not_found = r->row.not_found;
  out->failed = r->row.failed;
  out->skipped = r->row.skipped;
  out->total = r->row.total;
  out->seconds = r->row.seconds;
  if (r->has_fatal)
    tq_strlcpy(out->error, r->fatal.msg, sizeof out->error);
}

/* Runs the loop and writes the final checkpoint. Errors inside the loop fail the run (status
 * "failed" with the error), they are not returned. */
static void execute(runner *r, tq_run_summary *out) {
  tq_err err;
  tq_err_clear(&err);
  sig_saved saved;
  int own_signals = r->o->stop == NULL; /* a host with its own stop flag keeps its handlers */
  if (own_signals)
    signals_install(&saved);
  if (loop(r, &err) != TQ_OK)
    runner_fail(r, &err);
  int stopped = own_signals ? g_stop : *r->o->stop;
  if (own_signals)
    signals_restore(&saved);
  drop_in_flight(r);
  const char *status = r->has_fatal ? "failed" : stopped ? "interrupted" : "done";
  tq_err_clear(&err);
  if (r->has_fatal)
    tq_lib_rollback(r->lib); /* a batch cut short by the error, if any */
  if (run_commit_due(r, 1, status, &err) != TQ_OK) {
    runner_fail(r, &err);
    status = "failed";
  }
  run_progress_end(r);
  summarize(r, status, out);
}

/* A resumed run is this process's and "running" again until its final checkpoint: taken over
 * only if nobody did meanwhile (run_store_claim). */
static tq_code mark_running(runner *r, tq_err *err) {
  return run_store_claim(r->lib, &r->row, err);
}

/* The runner's connection counts and reads the input in id order (cursor pages, object rows)
 * and the writer writes with its own connection: a small page cache does for the run, so that
 * the process's memory stays flat however large the library (the library's default, 64 MiB,
 * fills up on a library of a million objects, and the heap keeps that size once freed).
 * Returns the size to restore (0: none). */
static int64_t cache_shrink(tq_lib *lib) {
  sqlite3 *db = tq_lib_db(lib);
  sqlite3_stmt *st = NULL;
  int64_t old = 0; /* as the pragma gives it: -KiB, or pages */
  if (sqlite3_prepare_v2(db, "PRAGMA cache_size", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    old = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (old == 0 || (old < 0 && -old <= 8192))
    return 0;                                                    /* already small */
  sqlite3_exec(db, "PRAGMA cache_size=-8192", NULL, NULL, NULL); /* 8 MiB */
  return old;
}

static void cache_restore(tq_lib *lib, int64_t old) {
  if (old == 0)
    return;
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA cache_size=%lld", (long long)old);
  sqlite3_exec(tq_lib_db(lib), sql, NULL, NULL, NULL);
}

static tq_code session(tq_lib *lib, const tq_action *a, const tq_action_opts *o, run_row *row,
                       const session_in *in, tq_run_summary *out, tq_err *err) {
  runner r;
  memset(&r, 0, sizeof r);
  tq_query_init(&r.query);
  r.lib = lib, r.a = a, r.o = o, r.row = *row;
  r.after_id = row->last_id;
  r.conc = o->concurrency > 0     ? o->concurrency
           : row->concurrency > 0 ? row->concurrency
                                  : a->concurrency;
  r.seconds_before = row->seconds;
  r.committed_before = row->enriched + row->not_found + row->failed + row->skipped;
  r.failed_before = row->failed;
  int64_t cache = cache_shrink(lib); /* before the input's count reads every row */
  char *key_path = tq_plugin_key_path(o->db_path ? o->db_path : "tqhost.db");
  tq_code rc = key_path ? setup_input(&r, in, err) : tq_err_set(err, TQ_ENOMEM, "out of memory");
  r.batch_mode = a->batch_entry && r.row.total >= a->batch_threshold;
  size_t cap = (size_t)r.conc * 16;
  if (r.batch_mode)
    cap = (size_t)a->batch_max * (size_t)r.conc * 2;
  if (cap < (size_t)a->batch_size * 2)
    cap = (size_t)a->batch_size * 2;
  r.cap = cap > 65536 ? 65536 : cap;
  if (rc == TQ_OK && (r.slots = calloc(r.cap, sizeof *r.slots)) == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  if (rc == TQ_OK)
    rc = setup_lua(&r, key_path, in->overrides, in->n_overrides, err);
  free(key_path);
  if (rc == TQ_OK && !o->dry_run && r.row.id == 0) {
    r.row.concurrency = r.conc;
    rc = run_store_create(lib, &r.row, err);
  } else if (rc == TQ_OK && r.row.id != 0) {
    rc = mark_running(&r, err);
  }
  if (rc == TQ_OK)
    rc = run_writer_start(&r, err);
  if (rc == TQ_OK && o->started)
    o->started(o->started_ud, r.row.id);
  if (rc == TQ_OK) {
    r.t0_ms = r.last_commit_ms = r.last_draw_ms = tq_mono_ms();
    r.progress = o->progress && isatty(STDERR_FILENO);
    execute(&r, out);
    row->id = r.row.id;
  }
  runner_free(&r);
  cache_restore(lib, cache);
  return rc;
}

/* ---- public entry points ------------------------------------------------------------------------
 */

/* Recorded settings first (sealed ones opened), then the caller's overrides (which win:
 * later keys replace). *rec and *sealed hold the recorded pairs (settings_free them). */
static tq_code resume_overrides(const run_row *row, const tq_action_opts *o, tq_lua_kv **out,
                                size_t *n, tq_lua_kv **rec, int **sealed, size_t *n_rec,
                                tq_err *err) {
  cJSON *keep = cJSON_Parse(row->settings);
  char *key_path = tq_plugin_key_path(o->db_path ? o->db_path : "tqhost.db");
  tq_code rc = key_path ? settings_read(keep, key_path, rec, sealed, n_rec, err)
                        : tq_err_set(err, TQ_ENOMEM, "out of memory");
  free(key_path);
  cJSON_Delete(keep);
  if (rc != TQ_OK)
    return rc;
  *out = calloc(*n_rec + o->n_overrides + 1, sizeof **out);
  *n = 0;
  if (*out == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  for (size_t i = 0; i < *n_rec; i++)
    (*out)[(*n)++] = (*rec)[i];
  for (size_t i = 0; i < o->n_overrides; i++)
    (*out)[(*n)++] = o->overrides[i];
  return TQ_OK;
}

static tq_code resume_input(const run_row *row, cJSON **input, session_in *in, const char ***values,
                            tq_err *err) {
  *input = cJSON_Parse(row->input);
  const cJSON *coll = cJSON_GetObjectItemCaseSensitive(*input, "collection");
  const cJSON *vals = cJSON_GetObjectItemCaseSensitive(*input, "values");
  const cJSON *retry = cJSON_GetObjectItemCaseSensitive(*input, "retry_failed");
  if (cJSON_IsString(coll)) {
    in->collection = coll->valuestring;
    return TQ_OK;
  }
  if (cJSON_IsNumber(retry) && retry->valuedouble >= 1) {
    in->retry_of = (int64_t)retry->valuedouble;
    return TQ_OK;
  }
  int count = cJSON_GetArraySize(vals);
  if (!cJSON_IsArray(vals) || count == 0)
    return tq_err_set(err, TQ_ECORRUPT, "run %lld: its recorded input is damaged",
                      (long long)row->id);
  if ((*values = calloc((size_t)count, sizeof **values)) == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  const cJSON *e;
  cJSON_ArrayForEach(e, vals) {
    if (cJSON_IsString(e))
      (*values)[in->n_values++] = e->valuestring;
  }
  in->values = *values;
  return TQ_OK;
}

tq_code tq_action_run(tq_lib *lib, const tq_action *a, const tq_action_opts *o, tq_run_summary *out,
                      tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  memset(out, 0, sizeof *out);
  if ((o->collection != NULL) + (o->n_values != 0) + (o->retry_failed > 0) != 1)
    return tq_err_set(err, TQ_EINVAL,
                      "action %s: give a collection, values or a run to retry (one of them)",
                      a->name);
  session_in in = {.retry_of = o->retry_failed,
                   .collection = o->collection,
                   .values = o->values,
                   .n_values = o->n_values,
                   .overrides = o->overrides,
                   .n_overrides = o->n_overrides};
  run_row row, orig;
  memset(&row, 0, sizeof row);
  memset(&orig, 0, sizeof orig);
  tq_lua_kv *ovr = NULL, *rec = NULL;
  int *sealed = NULL;
  size_t n_rec = 0;
  tq_code rc = TQ_OK;
  if (o->retry_failed > 0) {
    /* The retried run's action and settings, the caller's overrides over them. */
    int64_t failed = 0;
    rc = run_store_load(lib, o->retry_failed, &orig, err);
    if (rc == TQ_OK && strcmp(orig.action, a->name) != 0)
      rc = tq_err_set(err, TQ_EINVAL, "run %lld ran action %s, not %s", (long long)o->retry_failed,
                      orig.action, a->name);
    if (rc == TQ_OK)
      rc = resume_overrides(&orig, o, &ovr, &in.n_overrides, &rec, &sealed, &n_rec, err);
    if (rc == TQ_OK) {
      in.overrides = ovr;
      failed = orig.failed;
      if (failed == 0)
        rc = tq_err_set(err, TQ_EINVAL, "run %lld has no failed items to retry",
                        (long long)o->retry_failed);
    }
  }
  row.action = a->name;
  row.workflow_id = o->workflow_id ? o->workflow_id : orig.workflow_id;
  row.retry_of = o->retry_failed;
  row.origin = o->origin;
  row.input = rc == TQ_OK ? input_json(&in) : NULL;
  if (rc == TQ_OK && row.input == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  if (rc == TQ_OK)
    rc = settings_json(a, o, &in, &row.settings, err);
  if (rc == TQ_OK)
    rc = session(lib, a, o, &row, &in, out, err);
  free(row.input);
  free(row.settings);
  free(ovr);
  settings_free(rec, sealed, n_rec);
  run_row_free(&orig);
  return rc;
}

tq_code tq_action_resume(tq_lib *lib, int64_t run_id, const tq_action_opts *o, tq_run_summary *out,
                         tq_err *err) {
  tq_code tables_rc = wf_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  memset(out, 0, sizeof *out);
  run_row row;
  tq_action *a = NULL;
  cJSON *input = NULL;
  tq_lua_kv *ovr = NULL, *rec = NULL;
  int *sealed = NULL;
  size_t n_rec = 0;
  const char **values = NULL;
  session_in in = {0};
  tq_code rc = run_store_load(lib, run_id, &row, err);
  if (rc != TQ_OK)
    return rc;
  if (strcmp(row.status, "done") == 0) {
    rc = tq_err_set(err, TQ_EINVAL, "run %lld is done already: nothing to resume",
                    (long long)run_id);
    goto fail;
  }
  int64_t now = tq_time_now();
  if (strcmp(row.status, "running") == 0 && run_owner_live(row.owner, row.updated_at, now)) {
    rc = tq_err_set(err, TQ_EDENIED,
                    "run %lld is running in another process (%s, heartbeat %lld s ago): not "
                    "resumed",
                    (long long)run_id, row.owner ? row.owner : "?",
                    (long long)(now - row.updated_at));
    goto fail;
  }
  if ((rc = tq_action_find(tq_action_dir(), row.action, &a, err)) != TQ_OK ||
      (rc = resume_overrides(&row, o, &ovr, &in.n_overrides, &rec, &sealed, &n_rec, err)) !=
          TQ_OK ||
      (rc = resume_input(&row, &input, &in, &values, err)) != TQ_OK)
    goto fail;
  in.overrides = ovr;
  tq_action_opts ro = *o;
  ro.dry_run = 0; /* a recorded run always writes */
  rc = session(lib, a, &ro, &row, &in, out, err);
fail:
  if (rc != TQ_OK)
    tq_err_prefix(err, "resuming run %lld: ", (long long)run_id);
  free(values);
  free(ovr);
  settings_free(rec, sealed, n_rec);
  cJSON_Delete(input);
  tq_action_free(a);
  run_row_free(&row);
  return rc;
}
