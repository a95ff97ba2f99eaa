/* taxii.h: the TAXII 2.1 client of tqhost: discovery, API roots, collections (found by id,
 * alias or title) and Get Objects pages, over the net part's curl multi loop; and the
 * polling *pass* that walks a collection with the checkpoint algorithm of the TAXII 2.1 facts
 * (docs/taxii.md): `next` within a pass with identical parameters, `added_after` from the
 * last committed X-TAXII-Date-Added-Last minus an overlap across passes, guards against tie
 * loss and endless loops, and recovery of an expired `next` by restarting from the checkpoint.
 *
 * Ownership: a tq_taxii borrows its tq_net (which must outlive it) and copies every option
 * string; the password is only ever kept inside the Authorization header it builds. Strings
 * returned through out-parameters are malloc'd and owned by the caller (free()).
 *
 * Threads: one tq_taxii per thread (it drives its tq_net with tq_net_fetch). */
#ifndef TQHOST_TAXII_H
#define TQHOST_TAXII_H

#include <stddef.h>
#include <stdint.h>

#include "tqhost/core.h"
#include "tqhost/net.h"
#include "tqhost/stix.h"

/* The one media type tqhost speaks; sent as Accept on every request. */
#define TQ_TAXII_MEDIA_TYPE "application/taxii+json;version=2.1"
/* Bytes of a TAXII timestamp "YYYY-MM-DDTHH:MM:SS.ffffffZ" with its NUL. */
#define TQ_TAXII_TIME_LEN 28

typedef struct tq_taxii tq_taxii;

typedef struct tq_taxii_opts {
  const char *discovery_url; /* ".../taxii2/" */
  const char *username;      /* NULL: no Basic auth */
  const char *password;      /* with username; used once to build the header, never stored */
  const char *ca_file;       /* NULL: the system store */
  int verify_tls;            /* 1 (tq_taxii_opts_init); 0 only when the user says --verify no */
  int64_t timeout_ms;        /* per attempt; 0 = 60000 */
  int retry_max;             /* retries of 429 / 5xx / connection errors; -1 = 4 */
  size_t max_body;           /* response cap; 0 = 256 MiB */
} tq_taxii_opts;
void tq_taxii_opts_init(tq_taxii_opts *o);

/* name labels the client's net providers ("taxii:<name>:<host>") and its messages. */
tq_code tq_taxii_new(tq_net *net, const char *name, const tq_taxii_opts *o, tq_taxii **out,
                     tq_err *err);
void tq_taxii_free(tq_taxii *t);

/* One collection as the server describes it. */
typedef struct tq_taxii_collection {
  char *id, *title, *alias; /* alias may be NULL */
  int can_read, can_write;
  char *objects_url; /* "{api-root}/collections/{id}/objects/" (absolute) */
} tq_taxii_collection;
void tq_taxii_collection_clear(tq_taxii_collection *c);

/* GET the discovery document: its API roots resolved to absolute URLs (relative ones against
 * the discovery URL with curl's URL API), the default first. *roots is a malloc'd array of
 * malloc'd strings. An https:// discovery document that lists a root that is not https:// is
 * TQ_EDENIED (TAXII 2.1 section 4.1.1; no downgrade to clear text). */
tq_code tq_taxii_discover(tq_taxii *t, char ***roots, size_t *n, tq_err *err);
/* GET {api_root}/collections/. *out is a malloc'd array (clear each, then free()). */
tq_code tq_taxii_collections(tq_taxii *t, const char *api_root, tq_taxii_collection **out,
                             size_t *n, tq_err *err);
/* Finds the collection named want (its id, else its alias, else its title, the last two
 * case-insensitively) through discovery and every API root, the default first.
 * TQ_ENOTFOUND lists what the server offers; a collection with can_read false is TQ_EDENIED. */
tq_code tq_taxii_find_collection(tq_taxii *t, const char *want, tq_taxii_collection *out,
                                 tq_err *err);

/* ---- Get Objects ---------------------------------------------------------------------- */

typedef struct tq_taxii_query {
  const char *added_after; /* a TAXII timestamp (sent as given), NULL: none */
  int limit;               /* > 0 */
  const char *match_type;  /* "indicator,report" or NULL */
  const char *next;        /* opaque cursor or NULL */
} tq_taxii_query;

typedef struct tq_taxii_page_resp {
  int status;
  char *body; /* malloc'd, NUL-terminated */
  size_t len;
  char *date_first, *date_last; /* X-TAXII-Date-Added-First/-Last as sent, NULL if absent */
} tq_taxii_page_resp;
void tq_taxii_page_resp_clear(tq_taxii_page_resp *r);

/* One GET of objects_url with q. A final status of 400 with a `next` sent is returned as
 * TQ_EINVAL with resp->status 400 (the walker takes it for an expired cursor); other HTTP
 * errors get a message naming the URL and what to check (401 credentials, 403 permissions,
 * 404 URL or credentials, 406 TAXII version). */
tq_code tq_taxii_get_objects(tq_taxii *t, const char *objects_url, const tq_taxii_query *q,
                             tq_taxii_page_resp *resp, tq_err *err);

/* ---- timestamps ------------------------------------------------------------------------ */

/* Parses a header or checkpoint leniently (Z, +00:00, 0..9 fraction digits), subtracts
 * minus_us microseconds and writes the exact TAXII form "YYYY-MM-DDTHH:MM:SS.ffffffZ"
 * (fraction digits past microseconds are dropped, which only moves the instant earlier). */
tq_code tq_taxii_time_norm(const char *text, int64_t minus_us, char out[TQ_TAXII_TIME_LEN],
                           tq_err *err);

/* ---- a polling pass ------------------------------------------------------------------ */

typedef struct tq_taxii_pass_opts {
  const char *checkpoint; /* the last committed Date-Added-Last; NULL/"": from the start */
  int64_t overlap_us;     /* subtracted from checkpoint; at least 1 us always is (ties) */
  int limit;              /* page size asked for; 0 = 1000 */
  int limit_max;          /* how far limit may grow when a page makes no progress; 0 = 8x */
  int max_pages;          /* cap of pages per pass; 0 = 100000 */
  int max_restarts;       /* expired-cursor restarts per pass; 0 = 3 */
  const char *match_type; /* match[type], NULL: all */
} tq_taxii_pass_opts;
void tq_taxii_pass_opts_init(tq_taxii_pass_opts *o);

/* Called for every page, in order (the next page may already be downloading on the walk's
 * fetch thread; the callback itself runs on the caller's thread). checkpoint is the value to store
 * atomically with the page's objects: the later of the previous checkpoint and the page's
 * Date-Added-Last, normalised (TQ_TAXII_TIME_LEN form), or "" while there is none. A non-OK
 * return stops the pass with that error. The page is the callback's to read, not to free. */
typedef tq_code (*tq_taxii_page_fn)(void *ud, const tq_stix_page *page, const char *checkpoint,
                                    tq_err *err);

typedef struct tq_taxii_pass_result {
  int64_t pages, objects, restarts;
  int complete;                       /* 1: the server said there is no more */
  char stopped[320];                  /* why the pass ended before the end ("" when complete) */
  char checkpoint[TQ_TAXII_TIME_LEN]; /* the last checkpoint handed to fn ("" none) */
} tq_taxii_pass_result;

/* Walks objects_url once from o->checkpoint. `next` is opaque: a server may answer one value
 * for every page (medallion does); only a page seen before in the walk (the same `next` and
 * the same objects) is a loop. Stops cleanly (TQ_OK, complete = 0, stopped says why) on such
 * a loop or the page cap; fails on HTTP and network errors, on a body that is not a TAXII
 * envelope twice in a row, and with TQ_ELIMIT (naming the date_added) on a tie group larger
 * than any page of a server that gives no `next`. res is filled in every case. */
tq_code tq_taxii_pass(tq_taxii *t, const char *objects_url, const tq_taxii_pass_opts *o,
                      tq_taxii_page_fn fn, void *ud, tq_taxii_pass_result *res, tq_err *err);

#endif
