/* run_commit.c: writing a bulk run's results. The done prefix of the window is written in one
 * transaction together with the run's checkpoint (last committed id, counts, time spent) and
 * the run_items rows of not-found and failed items, so that a kill at any moment leaves a
 * library where every item up to last_id is written and accounted for, and none after it.
 * Also the write filters (which attributes, links, related indicators an action writes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_int.h"

/* ---- write filters ------------------------------------------------------------------------ */

static int keep_attr(const runner *r, const char *name) {
  if (r->no_attrs)
    return 0;
  if (r->keep_attrs == NULL)
    return 1;
  for (size_t i = 0; i < r->n_keep_attrs; i++)
    if (tq_str_ieq(r->keep_attrs[i], name))
      return 1;
  return 0;
}

static void drop_links(tq_changeset *cs) {
  for (size_t i = 0; i < cs->n_links; i++) {
    free(cs->links[i].object_type), free(cs->links[i].value);
    free(cs->links[i].link_type), free(cs->links[i].description);
  }
  cs->n_links = 0;
}

static void drop_indicators(tq_changeset *cs) {
  for (size_t i = 0; i < cs->n_indicators; i++) {
    tq_cs_indicator *ind = &cs->indicators[i];
    for (size_t k = 0; k < ind->n_attrs; k++)
      free(ind->attrs[k].name), free(ind->attrs[k].value);
    free(ind->attrs), free(ind->indicator_type), free(ind->value);
  }
  cs->n_indicators = 0;
}

void run_filter_changes(const runner *r, tq_changeset *cs) {
  size_t kept = 0;
  for (size_t i = 0; i < cs->n_attrs; i++) {
    if (keep_attr(r, cs->attrs[i].name)) {
      cs->attrs[kept++] = cs->attrs[i];
    } else {
      free(cs->attrs[i].name);
      free(cs->attrs[i].value);
    }
  }
  cs->n_attrs = kept;
  if (r->no_links)
    drop_links(cs);
  if (r->no_indicators)
    drop_indicators(cs);
}

/* ---- one batch ------------------------------------------------------------------------------- */

static size_t done_prefix(runner *r) {
  size_t k = 0;
  while (k < r->count && runner_slot(r, k)->state == SLOT_DONE)
    k++;
  return k;
}

static int has_changes(const tq_changeset *cs) {
  return cs->n_attrs || cs->n_tags || cs->n_links || cs->n_indicators || cs->score >= 0 ||
         cs->status;
}

static void mark_failed(slot *s, const char *what, const char *msg) {
  char *reason = NULL;
  if (asprintf(&reason, "%s: %s", what, msg) < 0)
    reason = NULL;
  free(s->reason);
  s->reason = reason;
  s->outcome = OUT_FAILED;
  tq_changeset_free(&s->cs);
  tq_changeset_init(&s->cs);
}

/* Writes slot s inside the open transaction. *rolled_back tells that the library rolled the
 * whole transaction back (tq_plugin_apply does on a write error): s is then marked failed and
 * the batch must be written again. */
static tq_code write_slot(runner *r, slot *s, int *rolled_back, tq_err *err) {
  if (s->outcome == OUT_ENRICHED && has_changes(&s->cs)) {
    tq_err e;
    if (tq_plugin_changeset_check(&s->cs, &e) != TQ_OK) {
      mark_failed(s, "invalid change set", e.msg);
    } else {
      tq_object obj = {.id = s->id, .object_type = "indicator"};
      tq_apply_summary sum;
      if (tq_plugin_apply(r->lib, &r->view, &obj, &s->cs, &sum, &e) != TQ_OK) {
        mark_failed(s, "writing to the library", e.msg);
        *rolled_back = 1;
        return TQ_OK;
      }
    }
  }
  if (s->outcome == OUT_ENRICHED)
    return TQ_OK;
  return run_store_item(r->lib, r->row.id, s->id,
                        s->outcome == OUT_NOT_FOUND ? "not_found" : "failed", s->reason, err);
}

static void count_into(run_row *row, const slot *s) {
  if (s->outcome == OUT_ENRICHED)
    row->enriched++;
  else if (s->outcome == OUT_NOT_FOUND)
    row->not_found++;
  else
    row->failed++;
}

/* One attempt at writing slots [0, k) with the checkpoint; *again when it must be redone. */
static tq_code write_batch(runner *r, size_t k, const char *status, run_row *next, int *again,
                           tq_err *err) {
  *again = 0;
  *next = r->row;
  tq_code rc = tq_lib_begin(r->lib, err);
  for (size_t i = 0; rc == TQ_OK && i < k; i++) {
    slot *s = runner_slot(r, i);
    rc = write_slot(r, s, again, err);
    if (*again)
      return TQ_OK; /* the library rolled back already */
    count_into(next, s);
  }
  if (k > 0)
    next->last_id = runner_slot(r, k - 1)->id;
  next->seconds = r->seconds_before + (double)(tq_mono_ms() - r->t0_ms) / 1000.0;
  if (rc == TQ_OK)
    rc = run_store_checkpoint(r->lib, next, status, status && r->has_fatal ? r->fatal.msg : NULL,
                              err);
  if (rc == TQ_OK)
    return tq_lib_commit(r->lib, err);
  tq_lib_rollback(r->lib);
  return rc;
}

static void pop(runner *r, size_t k) {
  for (size_t i = 0; i < k; i++)
    slot_clear(runner_slot(r, i));
  r->head = (r->head + k) % r->cap;
  r->count -= k;
}

tq_code run_commit_due(runner *r, int final, const char *status, tq_err *err) {
  size_t k = done_prefix(r);
  int64_t now = tq_mono_ms();
  /* Batches of batch_size, and at least once a second so that a kill loses little. */
  int due =
      k >= (size_t)r->a->batch_size || now - r->last_commit_ms >= 1000 || (r->eof && k == r->count);
  if (!final && (k == 0 || !due))
    return TQ_OK;
  r->last_commit_ms = now;
  if (r->o->dry_run) {
    for (size_t i = 0; i < k; i++)
      count_into(&r->row, runner_slot(r, i));
    if (k > 0)
      r->row.last_id = runner_slot(r, k - 1)->id;
    pop(r, k);
    return TQ_OK;
  }
  run_row next;
  int again = 1;
  tq_code rc = TQ_OK;
  /* Each redo has one more item marked failed, so this ends after at most k + 1 attempts. */
  while (rc == TQ_OK && again)
    rc = write_batch(r, k, status, &next, &again, err);
  if (rc != TQ_OK)
    return rc;
  r->row.enriched = next.enriched;
  r->row.not_found = next.not_found;
  r->row.failed = next.failed;
  r->row.last_id = next.last_id;
  r->row.seconds = next.seconds;
  pop(r, k);
  return TQ_OK;
}
