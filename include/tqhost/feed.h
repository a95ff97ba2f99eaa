/* feed.h: feeds of tqhost: TAXII 2.1 collections (and RST Report Hub's REST API) ingested
 * into the threat library. A feed definition lives in the library (table feeds, migration 2);
 * a poll walks the collection with the TAXII pass (taxii.h), maps every page of STIX to
 * library objects (docs/feeds.md has the table) and commits the page together with its
 * checkpoint, idempotent on (feed, STIX id, modified), so that a poll interrupted anywhere
 * loses nothing and duplicates nothing.
 *
 * Ownership: structs are filled by value (fixed-size strings); a tq_feed_summary owns its
 * arrays and is released with tq_feed_summary_free. Input pointers are borrowed for the call.
 * Threads: like the library, one tq_lib (and tq_net) per thread. */
#ifndef TQHOST_FEED_H
#define TQHOST_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "tqhost/core.h"
#include "tqhost/library.h"
#include "tqhost/net.h"
#include "tqhost/stix.h"

/* ---- definitions ------------------------------------------------------------------------ */

/* How a feed's last poll ended (tq_feed.last_ok). */
typedef enum tq_feed_state {
  TQ_FEED_NEVER = -1,
  TQ_FEED_FAILED = 0,
  TQ_FEED_OK = 1,        /* the pass reached the end of the collection */
  TQ_FEED_INCOMPLETE = 2 /* what came was committed, but the pass stopped before the end (page
                            cap, a server loop): the next poll continues from the checkpoint */
} tq_feed_state;

typedef struct tq_feed {
  char name[128];
  char kind[16];          /* "taxii" or "rst-reports" */
  char discovery[1024];   /* TAXII discovery URL; for rst-reports the API base (".../v1") */
  char collection[256];   /* TAXII collection id, alias or title ("" for rst-reports) */
  char username[128];     /* TAXII Basic user ("" none) */
  char password_env[128]; /* name of the variable with the password (taxii) or the X-Api-Key
                             (rst-reports); the secret itself is never stored */
  char ca_file[1024];     /* "" = system store */
  int verify;             /* TLS verification, 1 unless the user said --verify no */
  char source[128];       /* the library source the feed reports as */
  char match_type[256];   /* match[type] filter ("" all) */
  int page_size;          /* TAXII limit, 1..100000 */
  int64_t overlap_s;      /* subtracted from the checkpoint on the next poll */
  int64_t every_s;        /* schedule for tq_feed_poll_due */
  int enabled;
  int64_t created_at, last_poll_at; /* 0 = never polled */
  int last_ok;                      /* a tq_feed_state: how the last poll ended */
  char last_error[512];
  char last_summary[2048]; /* compact JSON of the last poll's counts ("" none) */
  char checkpoint[64];     /* feed_state: TAXII timestamp, or YYYYMMDD for rst-reports */
  char last_next[256];     /* feed_state: the last `next` seen (diagnostics only) */
} tq_feed;

/* The feed part's tables (feeds, feed_state, stix_refs, stix_seen, stix_pending) brought to
 * its level on a writable connection outside a transaction: made where missing, kept where a
 * library made before the part owned them has them. The feed functions below do it on first
 * use when they can; a server or a long-lived opener calls it once at start. A read-only
 * connection is left alone (TQ_OK). */
tq_code tq_feed_migrate(tq_lib *lib, tq_err *err);

/* A definition with the defaults: kind taxii, verify 1, page size 1000, overlap 0, every 1 h,
 * enabled. */
void tq_feed_init(tq_feed *f);

/* Settings of a preset for RST Cloud's collections (rst-cloud-api.md sections 5.3, 6). */
typedef struct tq_feed_preset {
  const char *name; /* "rst-high", "rst-medium", "rst-low", "rst-report-hub" */
  const char *kind;
  const char *discovery;  /* placeholder: RST gives the real URL to subscribers */
  const char *collection; /* collection id (threat feed) or title (report hub) */
  const char *source;     /* default source name */
  int score, expire_days, revoked_decrease;
  const char *description;
} tq_feed_preset;
/* The preset named name, or NULL. */
const tq_feed_preset *tq_feed_preset_find(const char *name);
/* The n-th preset (0-based), NULL past the end. */
const tq_feed_preset *tq_feed_preset_at(size_t i);
/* Fills f's kind, discovery, collection and source and src's score, expiration and revoked
 * decrease (src may be NULL) from the preset named name; TQ_EINVAL naming the presets when
 * there is none. */
tq_code tq_feed_preset_apply(const char *name, tq_feed *f, tq_source_opts *src, tq_err *err);

/* Checks f (names, URL scheme, kind, sizes) and stores it; TQ_EEXIST when must_create and
 * the name is taken. The checkpoint and poll fields are not written here. */
tq_code tq_feed_put(tq_lib *lib, const tq_feed *f, int must_create, tq_err *err);
tq_code tq_feed_get(tq_lib *lib, const char *name, tq_feed *out, tq_err *err);
/* A new feed and its source (made, or set to src's settings: kind "feed") in one transaction
 * (nested in the caller's when one is open); TQ_EEXIST when the name is taken. */
tq_code tq_feed_add(tq_lib *lib, const tq_feed *f, const tq_source_opts *src, tq_err *err);
/* All feeds by name; *out malloc'd (free()). */
tq_code tq_feed_list(tq_lib *lib, tq_feed **out, size_t *n, tq_err *err);
tq_code tq_feed_set_enabled(tq_lib *lib, const char *name, int enabled, tq_err *err);
/* Deletes the definition, its checkpoint and its record of versions seen (the objects it
 * brought stay in the library). */
tq_code tq_feed_delete(tq_lib *lib, const char *name, tq_err *err);

/* ---- poll summary ------------------------------------------------------------------------ */

typedef struct tq_feed_count {
  char name[64];
  int64_t n;
} tq_feed_count;

typedef struct tq_feed_bad {
  char id[128]; /* STIX id, or "page N object M" when it had none */
  char reason[400];
} tq_feed_bad;

#define TQ_FEED_MAX_BAD_KEPT 100 /* malformed objects listed; all are counted */

typedef struct tq_feed_summary {
  char feed[128];
  int64_t pages, objects; /* STIX objects received (good and bad) */
  int64_t indicators_created, indicators_updated;
  int64_t objects_created, objects_updated; /* every library object written */
  int64_t skipped;                          /* versions seen before: no-ops */
  int64_t revoked, links, links_pending;    /* pending: waiting for the other end */
  int64_t links_dropped; /* relationships and refs whose other end never came: after a pass
                            that reached the end they are dropped (not kept waiting forever) */
  int64_t malformed, unknown;
  tq_feed_count *by_type; /* STIX type -> objects ingested */
  size_t n_by_type;
  tq_feed_count *unknown_types; /* STIX types with no mapping -> how many */
  size_t n_unknown_types;
  tq_feed_bad *bad; /* the first TQ_FEED_MAX_BAD_KEPT malformed objects */
  size_t n_bad;
  int64_t restarts;  /* expired cursors recovered */
  int complete;      /* the server said there was no more */
  char stopped[320]; /* why the pass stopped early ("" when complete) */
  char checkpoint[64];
  int64_t duration_ms;
} tq_feed_summary;

void tq_feed_summary_free(tq_feed_summary *s);
/* The summary as JSON (caller owns it); compact leaves out the malformed list. */
cJSON *tq_feed_summary_json(const tq_feed_summary *s, int compact);
/* How a feed's last poll ended, as the CLI's --json and the API say it: "never", "ok",
 * "incomplete" or "failed". */
const char *tq_feed_state_name(int last_ok);
/* A feed as JSON, the one shape of `feed list/show --json` and GET /api/feeds (caller owns
 * it): its definition (never a password: only password_env, the variable's name), and its
 * state: last_poll_at, state, last_error, checkpoint (null when none) and counts (the last
 * poll's compact summary, null before any). */
cJSON *tq_feed_json(const tq_feed *f);
/* The summary for a person, a few lines. */
void tq_feed_summary_print(const tq_feed_summary *s, FILE *out);

/* ---- ingesting STIX ------------------------------------------------------------------------ */

/* Maps STIX pages to the library for one feed. Every write goes into the caller's open
 * transaction (tq_lib_begin); counts go into sum (borrowed, must outlive the ingest). */
typedef struct tq_feed_ingest tq_feed_ingest;
tq_code tq_feed_ingest_new(tq_lib *lib, const char *feed, const char *source, tq_feed_summary *sum,
                           tq_feed_ingest **out, tq_err *err);
void tq_feed_ingest_free(tq_feed_ingest *in);
/* Ingests one page (or bundle). A malformed object is counted and listed, never fatal;
 * fatal are only database errors. */
tq_code tq_feed_ingest_page(tq_feed_ingest *in, const tq_stix_page *page, tq_err *err);

/* ---- polling --------------------------------------------------------------------------- */

typedef struct tq_feed_poll_opts {
  int max_pages;      /* pages per pass; 0 = 100000 */
  int64_t now;        /* 0 = tq_time_now(); the poll's time (schedule, Report Hub dates) */
  int64_t timeout_ms; /* per HTTP attempt; 0 = 60000 */
  int retry_max;      /* -1 = 4 */
  /* Test hook: after this many committed pages, the next page is mapped but rolled back and
   * the poll fails as if the process had died (0 = off). */
  int abort_after_pages;
  /* Objects per transaction: consecutive pages are committed together (with the last one's
   * checkpoint) once they hold this many objects or after 2 s; 0 = 10000, 1 = every page. */
  int64_t tx_objects;
} tq_feed_poll_opts;
void tq_feed_poll_opts_init(tq_feed_poll_opts *o);

/* Polls the feed named name once. net may be NULL (one is made for the call). The summary is
 * filled even on failure (what was committed before it), and the outcome is recorded in the
 * feed's last_* fields. A pass that stops before the end returns TQ_OK with out->complete 0
 * (and out->stopped saying why) and is recorded as TQ_FEED_INCOMPLETE. A tie group (objects
 * sharing one date_added) larger than any page of a server without `next` cursors is
 * TQ_ELIMIT, with a message naming the feed and the date. */
tq_code tq_feed_poll(tq_lib *lib, tq_net *net, const char *name, const tq_feed_poll_opts *o,
                     tq_feed_summary *out, tq_err *err);

/* Called after each feed that tq_feed_poll_due polled; rc and err are that poll's outcome. */
typedef void (*tq_feed_polled_fn)(void *ud, const char *feed, tq_code rc, const tq_err *err,
                                  const tq_feed_summary *sum);

/* Polls every enabled feed whose last poll is at least its `every` before now (never polled
 * counts as due), in name order. Each is claimed first (one conditional update of its last
 * poll time), so that two pollers at once (cron ticks overlapping) never poll the same feed
 * twice: a feed another poller took is left out. One feed's failure does not stop the others;
 * *n_polled (may be NULL) gets how many were polled and *n_failed (may be NULL) how many failed.
 * Fails only when the feed list cannot be read. done may be NULL. */
tq_code tq_feed_poll_due(tq_lib *lib, tq_net *net, int64_t now, tq_feed_polled_fn done, void *ud,
                         size_t *n_polled, size_t *n_failed, tq_err *err);

#endif
