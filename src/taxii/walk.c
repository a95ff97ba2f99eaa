/* walk.c: one polling pass over a TAXII 2.1 collection, the checkpoint algorithm of the TAXII
 * facts (section 1.7, docs/taxii.md):
 *  - within a pass, follow `next` with the same added_after, limit and match[type];
 *  - `more` without `next`: continue from X-TAXII-Date-Added-Last minus 1 us (ties re-sent,
 *    deduplicated by the caller), raising limit when a page makes no progress;
 *  - the checkpoint handed to the caller with each page is the newest Date-Added-Last so
 *    far; the caller stores it in the same transaction as the page's objects;
 *  - a cursor the server no longer knows (400 to a `next`) restarts the pass from the last
 *    checkpoint;
 *  - guards: a page seen before in the stretch (the same `next` with the same objects: `next`
 *    is opaque, and a server may answer one constant value for every page, as medallion
 *    does, so a repeated cursor alone is no loop), a tie group no page size gets past (an
 *    error naming the date_added), and a page cap per pass.
 * The requests and the parsing run on a thread of their own, one page ahead of the caller's
 * callback (which in a feed writes the library): the two overlap, and at most two pages are
 * in memory whatever the size of the collection (one in the callback, one fetched or being
 * fetched). Pages are freed on the fetching thread, where they were allocated. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/taxii.h"

void tq_taxii_pass_opts_init(tq_taxii_pass_opts *o) { memset(o, 0, sizeof *o); }

/* A fetched and parsed page on its way from the fetching thread to the callback, with the
 * checkpoint to store with it; or the end of the pass (last set) with its outcome. */
typedef struct item {
  struct item *next;
  int last;
  tq_code rc; /* last: how the fetching ended */
  tq_err err;
  tq_stix_page page;
  char checkpoint[TQ_TAXII_TIME_LEN];
} item;

/* The hand-over between the fetching thread and the caller's: a queue of at most one ready
 * page, and the pages the callback is done with, to be freed by the fetching thread. */
typedef struct handover {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  item *ready, *ready_tail;
  size_t n_ready;
  item *used; /* done with, to free */
  int cancel; /* the caller stopped: fetch no more */
} handover;

/* The walker's state between pages (owned by the fetching thread while the pass runs). */
typedef struct walk {
  tq_taxii *t;
  const char *url;
  const tq_taxii_pass_opts *o;
  handover *h;
  tq_taxii_pass_result *res;     /* the fetching thread's own: pages fetched, its checkpoint */
  char after[TQ_TAXII_TIME_LEN]; /* added_after of the current stretch ("" none) */
  char *next;                    /* cursor to send, or NULL */
  uint64_t *sigs;                /* signatures of the pages of this stretch (an open set) */
  size_t n_sigs, cap_sigs;
  int limit, limit_max, max_pages, max_restarts;
} walk;

static uint64_t fnv1a(uint64_t h, const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
  return h;
}

/* What makes a page the same page: the cursor it gave and the versions it held. Never 0 (the
 * empty slot of the set). */
static uint64_t page_signature(const tq_stix_page *page) {
  uint64_t h = 1469598103934665603ULL;
  const char *next = page->next ? page->next : "";
  h = fnv1a(h, next, strlen(next) + 1);
  for (size_t i = 0; i < page->n_objects; i++) {
    const tq_stix_object *o = &page->objects[i];
    h = fnv1a(h, o->id, strlen(o->id) + 1);
    h = fnv1a(h, (const char *)&o->modified, sizeof o->modified);
  }
  for (size_t i = 0; i < page->n_bad; i++)
    h = fnv1a(h, (const char *)&page->bad[i].index, sizeof page->bad[i].index);
  return h ? h : 1;
}

/* Adds sig to the stretch's set; 1 when it was there already, -1 without memory. */
static int sig_seen(walk *w, uint64_t sig) {
  if (2 * (w->n_sigs + 1) > w->cap_sigs) {
    size_t cap = w->cap_sigs ? 2 * w->cap_sigs : 64;
    uint64_t *v = calloc(cap, sizeof *v);
    if (v == NULL)
      return -1;
    for (size_t i = 0; i < w->cap_sigs; i++) {
      size_t k = w->sigs[i] & (cap - 1);
      while (w->sigs[i] && v[k])
        k = (k + 1) & (cap - 1);
      v[k] = w->sigs[i];
    }
    free(w->sigs);
    w->sigs = v;
    w->cap_sigs = cap;
  }
  size_t k = sig & (w->cap_sigs - 1);
  for (; w->sigs[k]; k = (k + 1) & (w->cap_sigs - 1))
    if (w->sigs[k] == sig)
      return 1;
  w->sigs[k] = sig;
  w->n_sigs++;
  return 0;
}

/* A new stretch (from added_after, after a fallback or a restart): no page seen yet. */
static void sigs_reset(walk *w) {
  if (w->sigs)
    memset(w->sigs, 0, w->cap_sigs * sizeof *w->sigs);
  w->n_sigs = 0;
}

/* Where a stretch starts from the committed checkpoint: minus the overlap, and never less
 * than 1 us, because objects sharing the checkpoint's date_added may not all have come. */
static tq_code start_after(walk *w, tq_err *err) {
  w->after[0] = '\0';
  const char *cp = w->res->checkpoint[0] ? w->res->checkpoint : w->o->checkpoint;
  if (cp == NULL || *cp == '\0')
    return TQ_OK;
  int64_t minus = w->o->overlap_us > 1 ? w->o->overlap_us : 1;
  tq_code rc = tq_taxii_time_norm(cp, minus, w->after, err);
  return rc == TQ_OK ? TQ_OK : tq_err_prefix(err, "checkpoint: ");
}

/* Advances res->checkpoint to the page's Date-Added-Last when that is later. A header that
 * does not parse (servers send "undefined" or Date.toString() text) leaves it unchanged. */
static void advance_checkpoint(walk *w, const tq_taxii_page_resp *r, size_t n_objects) {
  char last[TQ_TAXII_TIME_LEN];
  if (n_objects == 0 || r->date_last == NULL || tq_taxii_time_norm(r->date_last, 0, last, NULL))
    return;
  /* Same fixed-width form: text order is time order. */
  if (strcmp(last, w->res->checkpoint) > 0)
    memcpy(w->res->checkpoint, last, sizeof last);
}

static void stop(walk *w, const char *fmt, const char *arg) {
  snprintf(w->res->stopped, sizeof w->res->stopped, fmt, arg);
  tq_log(TQ_LOG_WARN, "taxii", "pass over %s stopped: %s", w->url, w->res->stopped);
}

enum { STEP_CONTINUE, STEP_DONE, STEP_FAIL };

/* After `more` without `next`: the next stretch starts 1 us before Date-Added-Last. Returns
 * STEP_DONE (with stopped set) when the server gave nothing to go on, and STEP_FAIL (with err
 * set) when a tie group is larger than any page the server sends: the objects of that
 * date_added past the first page cannot be fetched, and stopping quietly would lose them. */
static int fallback_after(walk *w, const tq_taxii_page_resp *r, size_t n_objects, tq_err *err) {
  char nxt[TQ_TAXII_TIME_LEN];
  if (r->date_last == NULL || tq_taxii_time_norm(r->date_last, 1, nxt, NULL) != TQ_OK) {
    stop(w,
         "more is true but the server gave neither next nor a usable "
         "X-TAXII-Date-Added-Last%s",
         "");
    return STEP_DONE;
  }
  if (w->after[0] && strcmp(nxt, w->after) <= 0) {
    /* Every object of the page shares one date_added: only a larger page gets past it. */
    if (w->limit >= w->limit_max) {
      tq_err_set(err, TQ_ELIMIT,
                 "%.300s: no progress past date_added %.40s: %zu or more objects share it, the "
                 "server's pages hold at most %zu (asked for %d) and it gives no next cursor, so "
                 "the rest of them cannot be fetched; ask the provider for next cursors or a "
                 "larger page cap",
                 w->url, r->date_last, n_objects, n_objects, w->limit);
      tq_log(TQ_LOG_ERROR, "taxii", "%s", err ? err->msg : "tie group larger than any page");
      return STEP_FAIL;
    }
    w->limit = w->limit * 2 < w->limit_max ? w->limit * 2 : w->limit_max;
    return STEP_CONTINUE;
  }
  memcpy(w->after, nxt, sizeof nxt);
  return STEP_CONTINUE;
}

/* Decides what to request after a page. */
static int next_step(walk *w, const tq_stix_page *page, const tq_taxii_page_resp *r, tq_err *err) {
  if (!page->more) {
    w->res->complete = 1;
    return STEP_DONE;
  }
  if (page->next == NULL) {
    /* The fallback has its own no-progress guard; a repeated page is expected there. */
    free(w->next);
    w->next = NULL;
    sigs_reset(w);
    return fallback_after(w, r, page->n_objects + page->n_bad, err);
  }
  int seen = sig_seen(w, page_signature(page));
  if (seen < 0) {
    tq_err_set(err, TQ_ENOMEM, "taxii: out of memory walking %s", w->url);
    return STEP_FAIL;
  }
  if (seen) {
    stop(w, "the server sent the same page again (the same next '%.200s' and the same objects)",
         page->next);
    return STEP_DONE;
  }
  free(w->next);
  w->next = tq_strdup(page->next);
  if (w->next == NULL) {
    tq_err_set(err, TQ_ENOMEM, "taxii: out of memory walking %s", w->url);
    return STEP_FAIL;
  }
  return STEP_CONTINUE;
}

/* Restarts the pass from the committed checkpoint after the server refused a cursor. */
static tq_code restart(walk *w, tq_err *err) {
  if (w->res->restarts >= w->max_restarts)
    return tq_err_prefix(err, "gave up after %d restarts from the checkpoint: ", w->max_restarts);
  w->res->restarts++;
  tq_log(TQ_LOG_WARN, "taxii", "%s: next cursor refused (%s); restarting from checkpoint '%s'",
         w->url, err ? err->msg : "", w->res->checkpoint);
  free(w->next);
  w->next = NULL;
  sigs_reset(w);
  return start_after(w, err);
}

/* ---- the hand-over ------------------------------------------------------------------------ */

static void item_free(item *it) {
  tq_stix_page_free(&it->page);
  free(it);
}

/* Frees the pages the callback is done with (on the fetching thread). */
static void free_used(handover *h) {
  pthread_mutex_lock(&h->mu);
  item *used = h->used;
  h->used = NULL;
  pthread_mutex_unlock(&h->mu);
  while (used) {
    item *next = used->next;
    item_free(used);
    used = next;
  }
}

/* Waits until no page waits for the caller, so that the next request starts while the
 * caller works on the page before (and no more pages are held). 0 when the caller stopped. */
static int wait_room(handover *h) {
  pthread_mutex_lock(&h->mu);
  while (!h->cancel && h->n_ready > 0)
    pthread_cond_wait(&h->cv, &h->mu);
  int ok = !h->cancel;
  pthread_mutex_unlock(&h->mu);
  return ok;
}

/* Queues it for the caller, waiting while a page is queued already. 0 (it freed) when the
 * caller has stopped. */
static int enqueue(handover *h, item *it) {
  pthread_mutex_lock(&h->mu);
  while (!h->cancel && !it->last && h->n_ready >= 1)
    pthread_cond_wait(&h->cv, &h->mu);
  int ok = !h->cancel;
  if (ok) {
    it->next = NULL;
    if (h->ready_tail)
      h->ready_tail->next = it;
    else
      h->ready = it;
    h->ready_tail = it;
    h->n_ready++;
    pthread_cond_broadcast(&h->cv);
  }
  pthread_mutex_unlock(&h->mu);
  if (!ok)
    item_free(it);
  return ok;
}

/* Hands page (moved out, left empty) to the caller with the checkpoint to store. *wanted is
 * 0 when the caller has stopped and nothing more is wanted. */
static tq_code deliver(walk *w, tq_stix_page *page, int *wanted, tq_err *err) {
  free_used(w->h);
  item *it = calloc(1, sizeof *it);
  if (it == NULL)
    return tq_err_set(err, TQ_ENOMEM, "taxii: out of memory walking %s", w->url);
  it->page = *page;
  memset(page, 0, sizeof *page);
  memcpy(it->checkpoint, w->res->checkpoint, sizeof it->checkpoint);
  *wanted = enqueue(w->h, it);
  return TQ_OK;
}

/* The next item for the caller, waiting for it. */
static item *dequeue(handover *h) {
  pthread_mutex_lock(&h->mu);
  while (h->ready == NULL)
    pthread_cond_wait(&h->cv, &h->mu);
  item *it = h->ready;
  h->ready = it->next;
  if (h->ready == NULL)
    h->ready_tail = NULL;
  h->n_ready--;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
  return it;
}

/* Gives a page the callback is done with back to the fetching thread to free. */
static void give_back(handover *h, item *it) {
  pthread_mutex_lock(&h->mu);
  it->next = h->used;
  h->used = it;
  pthread_mutex_unlock(&h->mu);
}

static void cancel(handover *h) {
  pthread_mutex_lock(&h->mu);
  h->cancel = 1;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

/* Requests, parses and hands over one page. *done is set when the pass is over. */
static tq_code one_page(walk *w, int *done, int *bad_bodies, tq_err *err) {
  tq_taxii_query q = {.added_after = w->after[0] ? w->after : NULL,
                      .limit = w->limit,
                      .match_type = w->o->match_type,
                      .next = w->next};
  tq_taxii_page_resp r;
  tq_stix_page page;
  memset(&page, 0, sizeof page);
  tq_code rc = tq_taxii_get_objects(w->t, w->url, &q, &r, err);
  if (rc != TQ_OK && r.status == 400 && w->next) {
    tq_taxii_page_resp_clear(&r);
    return restart(w, err);
  }
  if (rc != TQ_OK)
    goto done;
  rc = tq_stix_page_parse(r.body, r.len, 0, &page, err);
  if (rc != TQ_OK) {
    /* A truncated or garbled body: ask once more, then give up on this pass. */
    tq_err_prefix(err, "%s: page %lld: ", w->url, (long long)w->res->pages + 1);
    if (++*bad_bodies < 2) {
      tq_log(TQ_LOG_WARN, "taxii", "%s; asking again", err ? err->msg : "bad page");
      rc = TQ_OK;
    }
    goto done;
  }
  *bad_bodies = 0;
  w->res->pages++;
  w->res->objects += (int64_t)(page.n_objects + page.n_bad);
  advance_checkpoint(w, &r, page.n_objects + page.n_bad);
  /* Decided before the hand-over, which gives the page away; the body is not needed past
   * here (the page's strings are the tree's own), so it goes before the page waits. */
  int step = next_step(w, &page, &r, err);
  *done = step != STEP_CONTINUE;
  tq_taxii_page_resp_clear(&r);
  int wanted = 1;
  /* The page that showed the failure is delivered all the same: its objects are good. */
  tq_err derr;
  rc = deliver(w, &page, &wanted, step == STEP_FAIL ? &derr : err);
  if (rc != TQ_OK && step == STEP_FAIL && err)
    *err = derr;
  else if (rc == TQ_OK && step == STEP_FAIL)
    rc = err ? err->code : TQ_ELIMIT;
  if (!wanted)
    *done = 1; /* the caller stopped */
done:
  tq_stix_page_free(&page);
  tq_taxii_page_resp_clear(&r);
  return rc;
}

/* The fetching thread: the walk of the pass, every page handed over, then an item that says
 * how the walk ended. */
static void *fetch_main(void *arg) {
  walk *w = arg;
  item *end = calloc(1, sizeof *end);
  tq_err err;
  tq_err_clear(&err);
  tq_code rc = start_after(w, &err);
  int done = 0, bad_bodies = 0;
  while (rc == TQ_OK && !done) {
    if (w->res->pages >= w->max_pages) {
      char n[24];
      snprintf(n, sizeof n, "%d", w->max_pages);
      stop(w, "reached the cap of %s pages per pass; the next poll continues", n);
      break;
    }
    if (!wait_room(w->h))
      break;
    free_used(w->h);
    rc = one_page(w, &done, &bad_bodies, &err);
  }
  free(w->next);
  w->next = NULL;
  free(w->sigs);
  w->sigs = NULL;
  free_used(w->h);
  if (end == NULL) {
    /* Without memory for the last item the caller still has to be told: it waits on the
     * cancel flag instead, which the end of the walk raises. */
    cancel(w->h);
    return NULL;
  }
  end->last = 1;
  end->rc = rc;
  end->err = err;
  enqueue(w->h, end);
  return NULL;
}

/* Takes the pages from the fetching thread and hands each to fn, in order. Returns the first
 * failure of fn, else how the walk ended. */
static tq_code consume(walk *w, tq_taxii_page_fn fn, void *ud, tq_taxii_pass_result *res,
                       tq_err *err) {
  handover *h = w->h;
  for (;;) {
    item *it = NULL;
    pthread_mutex_lock(&h->mu);
    while (h->ready == NULL && !h->cancel)
      pthread_cond_wait(&h->cv, &h->mu);
    int lost = h->ready == NULL; /* the fetching thread ended without its last item */
    pthread_mutex_unlock(&h->mu);
    if (lost)
      return tq_err_set(err, TQ_ENOMEM, "taxii: out of memory walking %s", w->url);
    it = dequeue(h);
    if (it->last) {
      tq_code rc = it->rc;
      if (rc != TQ_OK && err)
        *err = it->err;
      free(it);
      return rc;
    }
    res->pages++;
    res->objects += (int64_t)(it->page.n_objects + it->page.n_bad);
    memcpy(res->checkpoint, it->checkpoint, sizeof res->checkpoint);
    tq_code rc = fn(ud, &it->page, it->checkpoint, err);
    give_back(h, it);
    if (rc != TQ_OK)
      return rc;
  }
}

tq_code tq_taxii_pass(tq_taxii *t, const char *objects_url, const tq_taxii_pass_opts *o,
                      tq_taxii_page_fn fn, void *ud, tq_taxii_pass_result *res, tq_err *err) {
  memset(res, 0, sizeof *res);
  /* The fetching thread keeps its own count and checkpoint: it runs ahead of fn. */
  tq_taxii_pass_result ahead;
  memset(&ahead, 0, sizeof ahead);
  handover h = {.ready = NULL};
  walk w = {.t = t, .url = objects_url, .o = o, .h = &h, .res = &ahead};
  w.limit = o->limit > 0 ? o->limit : 1000;
  w.limit_max = o->limit_max > w.limit ? o->limit_max : w.limit * 8;
  w.max_pages = o->max_pages > 0 ? o->max_pages : 100000;
  w.max_restarts = o->max_restarts > 0 ? o->max_restarts : 3;
  if (o->checkpoint && *o->checkpoint) {
    /* The stored checkpoint in the fixed form, so later comparisons are textual. */
    tq_code rc = tq_taxii_time_norm(o->checkpoint, 0, ahead.checkpoint, err);
    if (rc != TQ_OK)
      return tq_err_prefix(err, "checkpoint: ");
    memcpy(res->checkpoint, ahead.checkpoint, sizeof res->checkpoint);
  }
  pthread_t th;
  if (pthread_mutex_init(&h.mu, NULL) != 0)
    return tq_err_set(err, TQ_ENOMEM, "taxii: cannot start walking %s", objects_url);
  if (pthread_cond_init(&h.cv, NULL) != 0) {
    pthread_mutex_destroy(&h.mu);
    return tq_err_set(err, TQ_ENOMEM, "taxii: cannot start walking %s", objects_url);
  }
  tq_code rc = TQ_OK;
  if (pthread_create(&th, NULL, fetch_main, &w) != 0) {
    rc = tq_err_set(err, TQ_ENOMEM, "taxii: cannot start a thread walking %s", objects_url);
    goto fail;
  }
  rc = consume(&w, fn, ud, res, err);
  cancel(&h); /* when fn failed: the fetching thread stops at its next hand-over */
  pthread_join(th, NULL);
  free_used(&h);
  while (h.ready)
    item_free(dequeue(&h));
  res->restarts = ahead.restarts;
  if (rc == TQ_OK) {
    res->complete = ahead.complete;
    memcpy(res->stopped, ahead.stopped, sizeof res->stopped);
  }
fail:
  pthread_cond_destroy(&h.cv);
  pthread_mutex_destroy(&h.mu);
  return rc;
}
