/* feed_int.h: what the files of the feed part share: the ingest context with its prepared
 * statements, the summary helpers and the feed_state writes. Not a public header. */
#ifndef TQ_FEED_INT_H
#define TQ_FEED_INT_H

#include <sqlite3.h>
#include <stdio.h>

#include "tqhost/feed.h"

/* Statements of the ingest, prepared once per ingest context. */
typedef enum feed_stmt_id {
  FS_SEEN_GET,
  FS_SEEN_PUT,
  FS_REF_GET,
  FS_PENDING_PUT,
  FS_PENDING_DEL,
  FS_SEEN_PAGE,
  FS_SEEN_WRITE,
  FS_REF_WRITE,
  FS__COUNT
} feed_stmt_id;

/* A marking-definition of the feed that names a TLP level under a non-standard id. */
typedef struct feed_marking {
  char id[TQ_STIX_ID_MAX];
  int tlp;
} feed_marking;

struct tq_feed_ingest {
  tq_lib *lib;
  char feed[128];
  char source[128];
  tq_feed_summary *sum;
  sqlite3_stmt *st[FS__COUNT];
  feed_marking *markings;
  size_t n_markings, cap_markings;
  int64_t *ids; /* scratch: object ids of one STIX id */
  size_t n_ids, cap_ids;
  const char **page_ids; /* STIX ids mapped in the page being ingested (borrowed from it) */
  size_t n_page_ids, cap_page_ids;
  const char **set; /* page_ids as an open-addressing set (refs.c) */
  size_t cap_set, mask_set;
  /* The page being ingested (refs.c): the version of each of its objects the feed has seen
   * (read in one statement when the page begins), the next object of the page with the same
   * STIX id, and the stix_seen and stix_refs rows queued for one statement each. */
  struct feed_seen_slot {
    int has;
    tq_stix_time v;
    size_t next_same;
  } * page_seen;
  size_t cap_page_seen;
  size_t *slots; /* scratch hash of the page's ids */
  size_t cap_slots;
  tq_lib_rows look, seen_q, refs_q;
};

/* feed_db_err: err from the database's last error, naming what was being done. */
tq_code feed_db_err(tq_lib *lib, tq_err *err, const char *what);
/* schema.c: brings the feed tables to the part's level when the connection can (cheap once
 * current; a read-only connection or an open transaction is left as it is). */
tq_code feed_tables(tq_lib *lib, tq_err *err);
/* The checkpoint row of a feed, written in the caller's transaction. */
tq_code feed_state_put(tq_lib *lib, const char *feed, const char *checkpoint, const char *next,
                       tq_err *err);
/* The outcome of a poll, state a tq_feed_state (own statement; not inside a page
 * transaction). */
tq_code feed_record_poll(tq_lib *lib, const char *feed, int64_t at, int state, const char *error,
                         const char *summary, tq_err *err);

/* Summary helpers (summary.c). */
tq_code feed_count_add(tq_feed_count **v, size_t *n, const char *name, int64_t by);
void feed_bad_add(tq_feed_summary *s, const char *id, const char *reason);

/* STIX id bookkeeping (refs.c). The statement of id, reset, NULL on failure. */
sqlite3_stmt *feed_stmt(tq_feed_ingest *in, feed_stmt_id id, tq_err *err);
/* One key at a time, outside a page (Report Hub's report ids; pages use feed_page_seen): 1
 * when (id, version) was ingested by this feed already, 0 when it is new or newer; and the
 * write of it, at once. */
tq_code feed_seen(tq_feed_ingest *in, const char *id, tq_stix_time version, int *seen, tq_err *err);
tq_code feed_seen_put(tq_feed_ingest *in, const char *id, tq_stix_time version, tq_err *err);
/* Queues stix_id -> object_id (written by feed_page_write). */
tq_code feed_ref_put(tq_feed_ingest *in, const char *stix_id, int64_t object_id, tq_err *err);
/* Loads the object ids of stix_id into in->ids / in->n_ids (0 when unknown yet). */
tq_code feed_ref_get(tq_feed_ingest *in, const char *stix_id, tq_err *err);
/* Links every object of from_id with every object of to_id (link_type may be NULL); when one
 * end is not known yet the link waits in stix_pending. */
tq_code feed_link_refs(tq_feed_ingest *in, const char *from_id, const char *to_id,
                       const char *link_type, tq_err *err);
/* Starts a page: no STIX id mapped in it yet; reads the versions the feed has seen of every
 * object of the page in one statement. */
tq_code feed_page_begin(tq_feed_ingest *in, const tq_stix_page *page, tq_err *err);
/* 1 when object i of the page in that version was ingested already (before the page, or by an
 * earlier object of the page with the same id), 0 when it is new or newer. */
int feed_page_seen(const tq_feed_ingest *in, size_t i, tq_stix_time version);
/* Queues object i of the page as ingested in version (and tells the later objects of the page
 * with its id). */
tq_code feed_page_seen_put(tq_feed_ingest *in, const tq_stix_page *page, size_t i,
                           tq_stix_time version, tq_err *err);
/* Writes the queued stix_seen and stix_refs rows of the page (before its links are made). */
tq_code feed_page_write(tq_feed_ingest *in, tq_err *err);
/* Links the pending rows that the STIX ids mapped in this page complete. */
tq_code feed_resolve_pending(tq_feed_ingest *in, tq_err *err);

#endif
