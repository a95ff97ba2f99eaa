/* run_commit.c: writing a bulk run's results. The done prefix of the window is written in one
 * transaction together with the run's checkpoint (last committed id, counts, time spent) and
 * the run_items rows of not-found and failed items, so that a kill at any moment leaves a
 * library where every item up to last_id is written and accounted for, and none after it.
 * Batches are written by a writer thread on its own connection while the runner goes on (see
 * "one batch" below). Also the write filters (which attributes, links, related indicators an
 * action writes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

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

/* ---- one batch ------------------------------------------------------------------------------
 * A batch is the done prefix of the window, moved out of it (so that the window's slots are
 * free for new items at once) into a job: its items, the checkpoint it ends with (last id,
 * seconds) and, for the final one, the run's status. A job is written in one transaction,
 * either here on the runner's thread (the final one, dry runs, libraries without a file) or by
 * the writer thread on a connection of its own, while the runner's thread goes on with Lua
 * and I/O: the library's writes then use the second core. One job at a time is written; the
 * runner does not hand over the next one before the writer is done with the last, so at most
 * two batches are held (the window bounds the rest). */

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

/* Writes the change set of slot s inside the open transaction of lib (its run_items row, if
 * any, is written with the others of the job by write_items). *rolled_back tells that the
 * library rolled the whole transaction back (tq_plugin_apply does on a write error): s is
 * then marked failed and the batch must be written again. */
static void write_slot(const runner *r, tq_lib *lib, slot *s, int *rolled_back) {
  if (s->outcome == OUT_ENRICHED && has_changes(&s->cs)) {
    tq_err e;
    if (tq_plugin_changeset_check(&s->cs, &e) != TQ_OK) {
      mark_failed(s, "invalid change set", e.msg);
    } else {
      tq_object obj = {.id = s->id, .object_type = "indicator"};
      tq_apply_summary sum;
      if (tq_plugin_apply(lib, &r->view, &obj, &s->cs, &sum, &e) != TQ_OK) {
        mark_failed(s, "writing to the library", e.msg);
        *rolled_back = 1;
      }
    }
  }
}

/* The run_items rows of the job's not-found, failed and skipped items. */
static tq_code write_items(const runner *r, tq_lib *lib, sqlite3_stmt **cache, const run_job *j,
                           tq_err *err) {
  run_item local[256] = {{0}}, *items = local;
  size_t n = 0;
  if (j->n > sizeof local / sizeof local[0] && (items = malloc(j->n * sizeof *items)) == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory recording items");
  for (size_t i = 0; i < j->n; i++) {
    const slot *s = &j->slots[i];
    if (s->outcome != OUT_ENRICHED)
      items[n++] = (run_item){.object_id = s->id,
                              .outcome = s->outcome == OUT_NOT_FOUND ? "not_found"
                                         : s->outcome == OUT_SKIPPED ? "skipped"
                                                                     : "failed",
                              .reason = s->reason};
  }
  tq_code rc = n ? run_store_items(lib, cache, r->row.id, items, n, err) : TQ_OK;
  if (items != local)
    free(items);
  return rc;
}

static void count_into(run_row *row, const slot *s) {
  if (s->outcome == OUT_ENRICHED)
    row->enriched++;
  else if (s->outcome == OUT_NOT_FOUND)
    row->not_found++;
  else if (s->outcome == OUT_SKIPPED)
    row->skipped++;
  else
    row->failed++;
}

/* One attempt at writing job j after the checkpoint base; *again when it must be redone. */
static tq_code write_job(const runner *r, tq_lib *lib, sqlite3_stmt **cache, const run_job *j,
                         const run_row *base, run_row *next, int *again, tq_err *err) {
  *again = 0;
  *next = *base;
  tq_code rc = tq_lib_begin(lib, err);
  for (size_t i = 0; rc == TQ_OK && i < j->n; i++) {
    write_slot(r, lib, &j->slots[i], again);
    if (*again)
      return TQ_OK; /* the library rolled back already */
    count_into(next, &j->slots[i]);
  }
  if (rc == TQ_OK)
    rc = write_items(r, lib, cache, j, err);
  if (j->n > 0)
    next->last_id = j->last_id;
  next->seconds = j->seconds;
  if (rc == TQ_OK)
    rc = run_store_checkpoint(lib, next, j->status, j->error, err);
  if (rc == TQ_OK)
    return tq_lib_commit(lib, err);
  tq_lib_rollback(lib);
  return rc;
}

/* Writes job j and moves *row to the checkpoint it committed. Each redo has one more item
 * marked failed, so this ends after at most n + 1 attempts. */
static tq_code commit_job(const runner *r, tq_lib *lib, sqlite3_stmt **cache, const run_job *j,
                          run_row *row, tq_err *err) {
  run_row next;
  int again = 1;
  tq_code rc = TQ_OK;
  while (rc == TQ_OK && again)
    rc = write_job(r, lib, cache, j, row, &next, &again, err);
  if (rc != TQ_OK)
    return rc;
  row->enriched = next.enriched;
  row->not_found = next.not_found;
  row->skipped = next.skipped;
  row->failed = next.failed;
  row->last_id = next.last_id;
  row->seconds = next.seconds;
  return TQ_OK;
}

static void job_clear(run_job *j) {
  for (size_t i = 0; i < j->n; i++)
    slot_clear(&j->slots[i]);
  free(j->slots);
  memset(j, 0, sizeof *j);
}

/* Moves the first k slots of the window into job j (the window's slots are then free). */
static tq_code job_take(runner *r, size_t k, const char *status, run_job *j, tq_err *err) {
  memset(j, 0, sizeof *j);
  if (k > 0 && (j->slots = malloc(k * sizeof *j->slots)) == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory committing a batch");
  for (size_t i = 0; i < k; i++) {
    slot *s = runner_slot(r, i);
    j->slots[i] = *s;
    memset(s, 0, sizeof *s);
  }
  j->n = k;
  j->last_id = k > 0 ? j->slots[k - 1].id : 0;
  j->seconds = r->seconds_before + (double)(tq_mono_ms() - r->t0_ms) / 1000.0;
  j->status = status;
  j->error = status && r->has_fatal ? r->fatal.msg : NULL;
  r->head = (r->head + k) % r->cap;
  r->count -= k;
  return TQ_OK;
}

/* ---- the writer thread ------------------------------------------------------------------- */

static void *writer_main(void *arg) {
  runner *r = arg;
  run_writer *w = &r->writer;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->has_job && !w->stop)
      pthread_cond_wait(&w->cv, &w->mu);
    if (!w->has_job)
      break;
    run_row row = w->row;
    pthread_mutex_unlock(&w->mu);
    tq_err e;
    tq_err_clear(&e);
    tq_code rc = commit_job(r, w->lib, &w->item_st, &w->job, &row, &e);
    job_clear(&w->job);
    pthread_mutex_lock(&w->mu);
    w->row = row;
    if (rc != TQ_OK && !w->failed) {
      w->failed = 1;
      w->err = e;
    }
    w->has_job = 0;
    pthread_cond_broadcast(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

tq_code run_writer_start(runner *r, tq_err *err) {
  run_writer *w = &r->writer;
  const char *path = sqlite3_db_filename(tq_lib_db(r->lib), "main");
  if (r->o->dry_run || path == NULL || path[0] == '\0')
    return TQ_OK; /* nothing to write, or an in-memory library: the runner writes itself */
  tq_code rc = tq_lib_open(path, TQ_LIB_OPEN_EXISTING, &w->lib, err);
  if (rc != TQ_OK)
    return tq_err_prefix(err, "opening the writer's connection: ");
  /* The writer's page cache: 16 MiB rather than the library's 64, so that the two
   * connections of a bulk run keep its memory flat however large the library (the writes go
   * to the indexes' recent pages and the few link targets; older pages come back from the OS
   * cache when needed). */
  sqlite3_exec(tq_lib_db(w->lib), "PRAGMA cache_size=-16384", NULL, NULL, NULL);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->row = r->row;
  if (pthread_create(&w->thread, NULL, writer_main, r) != 0) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    tq_lib_close(w->lib);
    w->lib = NULL;
    return tq_err_set(err, TQ_EINTERNAL, "cannot start the writer thread");
  }
  w->started = 1;
  return TQ_OK;
}

/* Waits until the writer has no job; takes its checkpoint counts and its error. */
static tq_code writer_drain(runner *r, tq_err *err) {
  run_writer *w = &r->writer;
  if (!w->started)
    return TQ_OK;
  pthread_mutex_lock(&w->mu);
  while (w->has_job)
    pthread_cond_wait(&w->cv, &w->mu);
  tq_code rc = w->failed ? (*err = w->err, w->err.code ? w->err.code : TQ_EDB) : TQ_OK;
  r->row.enriched = w->row.enriched;
  r->row.not_found = w->row.not_found;
  r->row.skipped = w->row.skipped;
  r->row.failed = w->row.failed;
  r->row.last_id = w->row.last_id;
  r->row.seconds = w->row.seconds;
  pthread_mutex_unlock(&w->mu);
  return rc;
}

void run_writer_stop(runner *r) {
  run_writer *w = &r->writer;
  if (!w->started)
    return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  job_clear(&w->job);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  sqlite3_finalize(w->item_st);
  tq_lib_close(w->lib);
  memset(w, 0, sizeof *w);
}

/* Hands the first k slots to the writer when it is idle; 0 (nothing taken) when busy. Takes
 * the counts of the jobs it finished into r->row, and reports its error. */
static tq_code writer_offer(runner *r, size_t k, int *taken, tq_err *err) {
  run_writer *w = &r->writer;
  *taken = 0;
  pthread_mutex_lock(&w->mu);
  int busy = w->has_job;
  if (!busy) {
    r->row.enriched = w->row.enriched;
    r->row.not_found = w->row.not_found;
    r->row.skipped = w->row.skipped;
    r->row.failed = w->row.failed;
    r->row.last_id = w->row.last_id;
    r->row.seconds = w->row.seconds;
  }
  tq_code rc = w->failed ? (*err = w->err, w->err.code ? w->err.code : TQ_EDB) : TQ_OK;
  pthread_mutex_unlock(&w->mu);
  if (busy || rc != TQ_OK)
    return rc;
  run_job job;
  if ((rc = job_take(r, k, NULL, &job, err)) != TQ_OK)
    return rc;
  pthread_mutex_lock(&w->mu);
  w->job = job;
  w->has_job = 1;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  *taken = 1;
  return TQ_OK;
}

/* ---- the runner's side ------------------------------------------------------------------- */

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
  if (r->o->dry_run) {
    r->last_commit_ms = now;
    for (size_t i = 0; i < k; i++)
      count_into(&r->row, runner_slot(r, i));
    if (k > 0)
      r->row.last_id = runner_slot(r, k - 1)->id;
    pop(r, k);
    return TQ_OK;
  }
  tq_code rc = TQ_OK;
  if (!final && r->writer.started) {
    int taken = 0;
    rc = writer_offer(r, k, &taken, err);
    if (taken)
      r->last_commit_ms = now;
    return rc; /* a busy writer: the prefix waits and grows */
  }
  tq_code wrc = writer_drain(r, err);
  if (wrc != TQ_OK && !final)
    return wrc;
  if (wrc != TQ_OK) {
    /* The writer's last batch was not written: no later item may be, or the checkpoint would
     * pass over it. The run ends failed where the writer left it. */
    runner_fail(r, err);
    k = 0;
    status = "failed";
  }
  r->last_commit_ms = now;
  run_job job;
  if ((rc = job_take(r, k, status, &job, err)) != TQ_OK)
    return rc;
  rc = commit_job(r, r->lib, &r->item_st, &job, &r->row, err);
  job_clear(&job);
  return rc != TQ_OK ? rc : wrc;
}
