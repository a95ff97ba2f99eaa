/* walk.c: one polling pass over a TAXII 2.1 collection, the checkpoint algorithm of the TAXII
 * facts (section 1.7, docs/taxii.md):
 *  - within a pass, follow `next` with the same added_after, limit and match[type];
 *  - `more` without `next`: continue from X-TAXII-Date-Added-Last minus 1 us (ties re-sent,
 *    deduplicated by the caller), raising limit when a page makes no progress;
 *  - the checkpoint handed to the caller with each page is the newest Date-Added-Last so
 *    far; the caller stores it in the same transaction as the page's objects;
 *  - a cursor the server no longer knows (400 to a `next`) restarts the pass from the last
 *    checkpoint;
 *  - guards: the same `next` twice, the same page twice, a page cap per pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/taxii.h"

void tq_taxii_pass_opts_init(tq_taxii_pass_opts *o) { memset(o, 0, sizeof *o); }

/* The walker's state between pages. */
typedef struct walk {
  tq_taxii *t;
  const char *url;
  const tq_taxii_pass_opts *o;
  tq_taxii_page_fn fn;
  void *ud;
  tq_taxii_pass_result *res;
  char after[TQ_TAXII_TIME_LEN]; /* added_after of the current stretch ("" none) */
  char *next;                    /* cursor to send, or NULL */
  uint64_t prev_hash;            /* FNV-1a of the previous page's body */
  int limit, limit_max, max_pages, max_restarts;
} walk;

static uint64_t fnv1a(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
  return h;
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

enum { STEP_CONTINUE, STEP_DONE };

/* After `more` without `next`: the next stretch starts 1 us before Date-Added-Last. Returns
 * STEP_DONE (with stopped set) when no progress is possible. */
static int fallback_after(walk *w, const tq_taxii_page_resp *r) {
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
      stop(w, "no progress past date_added %s even at the largest page size", r->date_last);
      return STEP_DONE;
    }
    w->limit = w->limit * 2 < w->limit_max ? w->limit * 2 : w->limit_max;
    return STEP_CONTINUE;
  }
  memcpy(w->after, nxt, sizeof nxt);
  return STEP_CONTINUE;
}

/* Decides what to request after a page. */
static int next_step(walk *w, const tq_stix_page *page, const tq_taxii_page_resp *r) {
  if (!page->more) {
    w->res->complete = 1;
    return STEP_DONE;
  }
  if (page->next == NULL) {
    /* The fallback has its own no-progress guard; a repeated page is expected there. */
    free(w->next);
    w->next = NULL;
    w->prev_hash = 0;
    return fallback_after(w, r);
  }
  if (w->next && strcmp(w->next, page->next) == 0) {
    stop(w, "the server answered a next cursor with the same cursor ('%.200s')", page->next);
    return STEP_DONE;
  }
  uint64_t h = fnv1a(r->body, r->len);
  if (page->n_objects + page->n_bad > 0 && w->prev_hash == h) {
    stop(w, "the server sent the same page twice%s", "");
    return STEP_DONE;
  }
  w->prev_hash = h;
  free(w->next);
  w->next = tq_strdup(page->next);
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
  w->prev_hash = 0;
  return start_after(w, err);
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
  rc = w->fn(w->ud, &page, w->res->checkpoint, err);
  if (rc == TQ_OK)
    *done = next_step(w, &page, &r) == STEP_DONE;
done:
  tq_stix_page_free(&page);
  tq_taxii_page_resp_clear(&r);
  return rc;
}

tq_code tq_taxii_pass(tq_taxii *t, const char *objects_url, const tq_taxii_pass_opts *o,
                      tq_taxii_page_fn fn, void *ud, tq_taxii_pass_result *res, tq_err *err) {
  memset(res, 0, sizeof *res);
  walk w = {.t = t, .url = objects_url, .o = o, .fn = fn, .ud = ud, .res = res};
  w.limit = o->limit > 0 ? o->limit : 1000;
  w.limit_max = o->limit_max > w.limit ? o->limit_max : w.limit * 8;
  w.max_pages = o->max_pages > 0 ? o->max_pages : 100000;
  w.max_restarts = o->max_restarts > 0 ? o->max_restarts : 3;
  if (o->checkpoint && *o->checkpoint) {
    /* The stored checkpoint in the fixed form, so later comparisons are textual. */
    tq_code rc = tq_taxii_time_norm(o->checkpoint, 0, res->checkpoint, err);
    if (rc != TQ_OK)
      return tq_err_prefix(err, "checkpoint: ");
  }
  tq_code rc = start_after(&w, err);
  int done = 0, bad_bodies = 0;
  while (rc == TQ_OK && !done) {
    if (res->pages >= w.max_pages) {
      char n[24];
      snprintf(n, sizeof n, "%d", w.max_pages);
      stop(&w, "reached the cap of %s pages per pass; the next poll continues", n);
      break;
    }
    rc = one_page(&w, &done, &bad_bodies, err);
  }
  free(w.next);
  return rc;
}
