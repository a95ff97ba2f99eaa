/* poll.c: one poll of a feed, and the schedule. A TAXII feed runs one pass of the TAXII
 * walker; every page is mapped and committed together with the new checkpoint in one
 * transaction. An rst-reports feed lists Report Hub's days from its checkpoint day to today
 * (GET {base}/reports?date=YYYYMMDD) and ingests each report's STIX bundle
 * (GET {base}/reports?id=...&format=stix) in a transaction of its own. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "feed_int.h"
#include "tqhost/taxii.h"

void tq_feed_poll_opts_init(tq_feed_poll_opts *o) {
  memset(o, 0, sizeof *o);
  o->retry_max = -1;
}

typedef struct poll_ctx {
  tq_lib *lib;
  tq_net *net;
  const tq_feed *f;
  const tq_feed_poll_opts *o;
  tq_feed_ingest *in;
  tq_feed_summary *sum;
  int64_t now;
  int committed; /* pages mapped in this poll (committed or in the open transaction) */
  /* The open transaction of a group of pages, and the summary as it was before it. */
  int in_tx;
  int64_t tx_objects, tx_started_ms;
  tq_feed_summary tx_snap;
} poll_ctx;

/* ---- summary snapshots: a rolled-back page must not count --------------------------------- */

static tq_code dup_counts(tq_feed_count **dst, const tq_feed_count *src, size_t n) {
  *dst = NULL;
  if (n == 0)
    return TQ_OK;
  *dst = malloc(n * sizeof **dst);
  if (*dst == NULL)
    return TQ_ENOMEM;
  memcpy(*dst, src, n * sizeof **dst);
  return TQ_OK;
}

static tq_code snapshot(tq_feed_summary *snap, const tq_feed_summary *s) {
  *snap = *s;
  snap->bad = NULL;
  snap->n_bad = s->n_bad; /* the listing keeps growing; restoring cuts it back */
  if (dup_counts(&snap->by_type, s->by_type, s->n_by_type) != TQ_OK ||
      dup_counts(&snap->unknown_types, s->unknown_types, s->n_unknown_types) != TQ_OK) {
    free(snap->by_type);
    return TQ_ENOMEM;
  }
  return TQ_OK;
}

static void restore(tq_feed_summary *s, tq_feed_summary *snap) {
  tq_feed_bad *bad = s->bad;
  free(s->by_type);
  free(s->unknown_types);
  *s = *snap;
  s->bad = bad;
}

static void snapshot_drop(tq_feed_summary *snap) {
  free(snap->by_type);
  free(snap->unknown_types);
}

/* ---- pages, grouped into transactions ----------------------------------------------------- */

/* A transaction holds consecutive pages, each with its checkpoint, and is committed once it
 * holds POLL_TX_OBJECTS objects or has been open POLL_TX_MS: one commit per page costs more
 * than the page (every commit writes each index page it dirtied to the WAL, and a page of
 * objects dirties one page of every random-keyed index per object). A crash loses the open
 * group and its checkpoints together, so the next poll asks for those pages again. */
#define POLL_TX_OBJECTS 10000
#define POLL_TX_MS 2000

static tq_code group_commit(poll_ctx *p, tq_err *err) {
  if (!p->in_tx)
    return TQ_OK;
  p->in_tx = 0;
  tq_code rc = tq_lib_commit(p->lib, err);
  if (rc != TQ_OK)
    restore(p->sum, &p->tx_snap);
  else
    snapshot_drop(&p->tx_snap);
  return rc;
}

static void group_rollback(poll_ctx *p) {
  if (!p->in_tx)
    return;
  p->in_tx = 0;
  tq_lib_rollback(p->lib);
  restore(p->sum, &p->tx_snap);
}

/* Maps page and stores checkpoint (and seen_key as seen, for Report Hub) in the group's
 * transaction, committing the group when it is full. */
static tq_code commit_page(poll_ctx *p, const tq_stix_page *page, const char *checkpoint,
                           const char *seen_key, tq_err *err) {
  tq_code rc = TQ_OK;
  if (!p->in_tx) {
    if (snapshot(&p->tx_snap, p->sum) != TQ_OK)
      return tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
    rc = tq_lib_begin(p->lib, err);
    if (rc != TQ_OK) {
      snapshot_drop(&p->tx_snap);
      return rc;
    }
    p->in_tx = 1;
    p->tx_objects = 0;
    p->tx_started_ms = tq_mono_ms();
  }
  rc = tq_feed_ingest_page(p->in, page, err);
  if (rc == TQ_OK && seen_key)
    rc = feed_seen_put(p->in, seen_key, (tq_stix_time){0, 0}, err);
  if (rc == TQ_OK)
    rc = feed_state_put(p->lib, p->f->name, checkpoint, page->next, err);
  if (rc == TQ_OK && p->o->abort_after_pages > 0 && p->committed >= p->o->abort_after_pages)
    rc = tq_err_set(err, TQ_EINTERNAL, "feed %s: aborted by the test hook after %d page(s)",
                    p->f->name, p->committed);
  if (rc != TQ_OK) {
    group_rollback(p);
    return rc;
  }
  p->committed++;
  p->sum->pages++;
  p->sum->objects += (int64_t)(page->n_objects + page->n_bad);
  tq_strlcpy(p->sum->checkpoint, checkpoint ? checkpoint : "", sizeof p->sum->checkpoint);
  p->tx_objects += (int64_t)(page->n_objects + page->n_bad);
  int64_t group = p->o->tx_objects > 0 ? p->o->tx_objects : POLL_TX_OBJECTS;
  if (p->tx_objects >= group || tq_mono_ms() - p->tx_started_ms >= POLL_TX_MS)
    return group_commit(p, err);
  return TQ_OK;
}

static tq_code on_taxii_page(void *ud, const tq_stix_page *page, const char *checkpoint,
                             tq_err *err) {
  return commit_page(ud, page, checkpoint, NULL, err);
}

/* ---- TAXII ------------------------------------------------------------------------------- */

/* The secret named by the feed's variable; NULL with an error when it is named but unset. */
static tq_code secret_from_env(const tq_feed *f, const char **out, tq_err *err) {
  *out = NULL;
  if (f->password_env[0] == '\0')
    return TQ_OK;
  *out = getenv(f->password_env);
  if (*out == NULL)
    return tq_err_set(err, TQ_EINVAL, "feed %s: environment variable %s (its %s) is not set",
                      f->name, f->password_env,
                      strcmp(f->kind, "taxii") == 0 ? "password" : "API key");
  return TQ_OK;
}

static tq_code poll_taxii(poll_ctx *p, tq_err *err) {
  const tq_feed *f = p->f;
  const char *password = NULL;
  tq_code rc = f->username[0] ? secret_from_env(f, &password, err) : TQ_OK;
  if (rc != TQ_OK)
    return rc;
  tq_taxii_opts to;
  tq_taxii_opts_init(&to);
  to.discovery_url = f->discovery;
  to.username = f->username[0] ? f->username : NULL;
  to.password = password;
  to.ca_file = f->ca_file[0] ? f->ca_file : NULL;
  to.verify_tls = f->verify;
  to.timeout_ms = p->o->timeout_ms;
  to.retry_max = p->o->retry_max;
  tq_taxii *t = NULL;
  tq_taxii_collection col;
  memset(&col, 0, sizeof col);
  rc = tq_taxii_new(p->net, f->name, &to, &t, err);
  if (rc == TQ_OK)
    rc = tq_taxii_find_collection(t, f->collection, &col, err);
  if (rc == TQ_OK) {
    tq_taxii_pass_opts po;
    tq_taxii_pass_opts_init(&po);
    po.checkpoint = f->checkpoint;
    po.overlap_us = f->overlap_s * 1000000;
    po.limit = f->page_size;
    po.max_pages = p->o->max_pages;
    po.match_type = f->match_type[0] ? f->match_type : NULL;
    tq_taxii_pass_result res;
    rc = tq_taxii_pass(t, col.objects_url, &po, on_taxii_page, p, &res, err);
    if (rc == TQ_ELIMIT) /* a tie group no page gets past: the message names its date */
      tq_err_prefix(err, "feed %s: ", f->name);
    p->sum->restarts = res.restarts;
    p->sum->complete = rc == TQ_OK && res.complete;
    tq_strlcpy(p->sum->stopped, res.stopped, sizeof p->sum->stopped);
    if (p->sum->checkpoint[0] == '\0')
      tq_strlcpy(p->sum->checkpoint, f->checkpoint, sizeof p->sum->checkpoint);
  }
  tq_taxii_collection_clear(&col);
  tq_taxii_free(t);
  return rc;
}

/* ---- RST Report Hub over REST ------------------------------------------------------------ */

typedef struct hub {
  poll_ctx *p;
  tq_net_provider *prov;
  const char *headers[3];
  size_t n_headers;
  char base[1024];
} hub;

/* GET url; *resp is the response for statuses < 400 and for 404 (no reports that day). */
static tq_code hub_get(hub *h, const char *url, tq_net_response **resp, tq_err *err) {
  tq_net_request req = {
      .url = url, .headers = h->headers, .n_headers = h->n_headers, .no_cache = 1};
  tq_code rc = tq_net_fetch(h->p->net, h->prov, &req, resp, err);
  if (rc != TQ_OK)
    return rc;
  tq_net_response *r = *resp;
  if (r->fail == TQ_NET_OK || r->status == 404)
    return TQ_OK;
  const char *hint =
      r->status == 401 || r->status == 403 ? ": check the API key in the feed's variable" : "";
  rc = tq_err_set(err, r->status == 401 || r->status == 403 ? TQ_EDENIED : TQ_ENET, "feed %s: %s%s",
                  h->p->f->name, r->error, hint);
  tq_net_response_free(r);
  *resp = NULL;
  return rc;
}

static tq_code hub_report(hub *h, const char *id, const char *date, tq_err *err) {
  poll_ctx *p = h->p;
  char key[300], url[2048];
  snprintf(key, sizeof key, "rst-report:%s", id);
  int seen = 0;
  tq_code rc = feed_seen(p->in, key, (tq_stix_time){0, 0}, &seen, err);
  if (rc != TQ_OK || seen) {
    p->sum->skipped += seen;
    return rc;
  }
  char *esc = curl_easy_escape(NULL, id, 0);
  if (esc == NULL)
    return tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
  snprintf(url, sizeof url, "%s/reports?id=%s&format=stix&lang=eng", h->base, esc);
  curl_free(esc);
  tq_net_response *r = NULL;
  rc = hub_get(h, url, &r, err);
  if (rc == TQ_OK && r->status == 404) {
    feed_bad_add(p->sum, id, "Report Hub answered 404 for a report of its own list");
    p->sum->malformed++;
  } else if (rc == TQ_OK) {
    tq_stix_page page;
    rc = tq_stix_page_parse(r->body, r->body_len, 0, &page, err);
    if (rc == TQ_OK) {
      rc = commit_page(p, &page, date, key, err);
      tq_stix_page_free(&page);
    } else {
      /* A report whose bundle does not parse is reported and left for the next poll. */
      feed_bad_add(p->sum, id, err ? err->msg : "bundle does not parse");
      p->sum->malformed++;
      rc = TQ_OK;
    }
  }
  tq_net_response_free(r);
  return rc;
}

static tq_code hub_day(hub *h, const char *date, tq_err *err) {
  char url[1200];
  snprintf(url, sizeof url, "%s/reports?date=%s&lang=eng", h->base, date);
  tq_net_response *r = NULL;
  tq_code rc = hub_get(h, url, &r, err);
  if (rc != TQ_OK)
    return rc;
  cJSON *list = r->status == 404 ? NULL : cJSON_ParseWithLength(r->body, r->body_len);
  if (r->status != 404 && !cJSON_IsArray(list))
    rc = tq_err_set(err, TQ_EINVAL, "feed %s: %s: the answer is not a JSON list of reports",
                    h->p->f->name, url);
  const cJSON *it = NULL;
  cJSON_ArrayForEach(it, list) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    if (rc == TQ_OK && cJSON_IsString(id))
      rc = hub_report(h, id->valuestring, date, err);
  }
  cJSON_Delete(list);
  tq_net_response_free(r);
  /* The day is listed: its date is the checkpoint even when it had nothing new. */
  if (rc == TQ_OK) {
    rc = tq_lib_begin(h->p->lib, err);
    if (rc == TQ_OK)
      rc = feed_state_put(h->p->lib, h->p->f->name, date, NULL, err);
    rc = rc == TQ_OK ? tq_lib_commit(h->p->lib, err) : (tq_lib_rollback(h->p->lib), rc);
    if (rc == TQ_OK)
      tq_strlcpy(h->p->sum->checkpoint, date, sizeof h->p->sum->checkpoint);
  }
  return rc;
}

static void ymd(int64_t t, char out[9]) {
  char buf[20];
  tq_time_format(t, buf); /* "YYYY-MM-DD HH:MM:SS" */
  snprintf(out, 9, "%.4s%.2s%.2s", buf, buf + 5, buf + 8);
}

/* The first day to list: the checkpoint's, else a week back (as RST's own connector). */
static tq_code hub_start(const poll_ctx *p, int64_t *day, tq_err *err) {
  const char *cp = p->f->checkpoint;
  if (cp[0] == '\0') {
    *day = p->now - 7 * 86400;
  } else {
    char iso[11];
    snprintf(iso, sizeof iso, "%.4s-%.2s-%.2s", cp, cp + 4, cp + 6);
    if (strlen(cp) != 8 || tq_time_parse(iso, day, NULL, err) != TQ_OK)
      return tq_err_set(err, TQ_ECORRUPT, "feed %s: checkpoint '%s' is not YYYYMMDD", p->f->name,
                        cp);
  }
  *day -= *day % 86400;
  return TQ_OK;
}

static tq_code poll_reports(poll_ctx *p, tq_err *err) {
  hub h = {.p = p};
  const char *key = NULL;
  tq_code rc = secret_from_env(p->f, &key, err);
  if (rc != TQ_OK)
    return rc;
  tq_strlcpy(h.base, p->f->discovery, sizeof h.base);
  for (size_t n = strlen(h.base); n > 0 && h.base[n - 1] == '/'; n--)
    h.base[n - 1] = '\0';
  char key_header[512] = "";
  h.headers[h.n_headers++] = "Accept: application/json";
  h.headers[h.n_headers++] = "User-Agent: tqhost/0.1";
  if (key) {
    snprintf(key_header, sizeof key_header, "X-Api-Key: %s", key);
    h.headers[h.n_headers++] = key_header;
  }
  static const int retry_on[] = {429, 500, 502, 503, 504};
  const char *allow[] = {h.base};
  tq_net_policy pol;
  tq_net_policy_init(&pol);
  pol.allow_hosts = allow;
  pol.n_allow_hosts = 1;
  pol.retry_on = retry_on;
  pol.n_retry_on = 5;
  pol.retry_max = p->o->retry_max >= 0 ? p->o->retry_max : 4;
  pol.timeout_ms = p->o->timeout_ms > 0 ? p->o->timeout_ms : 60000;
  pol.ca_file = p->f->ca_file[0] ? p->f->ca_file : NULL;
  pol.verify_tls = p->f->verify;
  char pname[200];
  snprintf(pname, sizeof pname, "rst-reports:%s", p->f->name);
  rc = tq_net_provider_get(p->net, pname, &pol, &h.prov, err);
  int64_t day = 0;
  if (rc == TQ_OK)
    rc = hub_start(p, &day, err);
  for (; rc == TQ_OK && day <= p->now; day += 86400) {
    char date[9];
    ymd(day, date);
    rc = hub_day(&h, date, err);
  }
  p->sum->complete = rc == TQ_OK;
  explicit_bzero(key_header, sizeof key_header);
  return rc;
}

/* ---- poll ---------------------------------------------------------------------------------- */

static tq_code ensure_source(tq_lib *lib, const char *name, tq_err *err) {
  tq_source s;
  tq_code rc = tq_lib_source_get(lib, name, &s, err);
  if (rc != TQ_ENOTFOUND)
    return rc;
  tq_source_opts o;
  tq_source_opts_init(&o);
  o.kind = "feed";
  return tq_lib_source_put(lib, name, &o, 0, NULL, err);
}

static tq_code count_pending(tq_lib *lib, const char *feed, int64_t *n) {
  sqlite3_stmt *st = NULL;
  *n = 0;
  if (sqlite3_prepare_v2(tq_lib_db(lib), "SELECT count(*) FROM stix_pending WHERE feed=?1", -1, &st,
                         NULL) != SQLITE_OK)
    return TQ_EDB;
  sqlite3_bind_text(st, 1, feed, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW)
    *n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return TQ_OK;
}

/* After a pass that reached the end of the collection, the links still waiting for an end
 * have no page left to bring it (a type that is not ingested, an id the feed never sends):
 * they are counted, a few logged, and dropped, so that stix_pending does not grow forever.
 * An incomplete pass keeps them for the poll that finishes the walk. */
static tq_code drop_unresolved(poll_ctx *p, tq_err *err) {
  sqlite3 *db = tq_lib_db(p->lib);
  sqlite3_stmt *st = NULL;
  tq_code rc = tq_lib_begin(p->lib, err);
  if (rc != TQ_OK)
    return rc;
  if (sqlite3_prepare_v2(db,
                         "SELECT from_id,to_id,link_type FROM stix_pending WHERE feed=?1"
                         " ORDER BY from_id LIMIT 3",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, p->f->name, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW)
      tq_log(TQ_LOG_WARN, "feed", "%s: dropping the link %s -> %s (%s): an end never came",
             p->f->name, (const char *)sqlite3_column_text(st, 0),
             (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2));
  }
  sqlite3_finalize(st);
  st = NULL;
  if (sqlite3_prepare_v2(db, "DELETE FROM stix_pending WHERE feed=?1", -1, &st, NULL) != SQLITE_OK)
    rc = feed_db_err(p->lib, err, "dropping unresolved links");
  if (rc == TQ_OK) {
    sqlite3_bind_text(st, 1, p->f->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = feed_db_err(p->lib, err, "dropping unresolved links");
  }
  int64_t n = rc == TQ_OK ? sqlite3_changes(db) : 0;
  sqlite3_finalize(st);
  if (rc == TQ_OK)
    rc = tq_lib_commit(p->lib, err);
  else
    tq_lib_rollback(p->lib);
  if (rc == TQ_OK)
    p->sum->links_dropped = n;
  return rc;
}

/* Records the poll's outcome on the feed row; its own failure is only logged. A pass that
 * stopped before the end is recorded as incomplete (last_ok 2) with the reason. */
static void record(poll_ctx *p, tq_code rc, const tq_err *err) {
  cJSON *j = tq_feed_summary_json(p->sum, 1);
  char *text = j ? cJSON_PrintUnformatted(j) : NULL;
  cJSON_Delete(j);
  tq_err e;
  char why[sizeof p->sum->stopped + 64];
  int state = rc != TQ_OK ? TQ_FEED_FAILED : p->sum->complete ? TQ_FEED_OK : TQ_FEED_INCOMPLETE;
  snprintf(why, sizeof why, "incomplete: %s; the next poll continues from the checkpoint",
           p->sum->stopped[0] ? p->sum->stopped : "the pass stopped before the end");
  const char *error = state == TQ_FEED_OK           ? NULL
                      : state == TQ_FEED_INCOMPLETE ? why
                      : err && err->msg[0]          ? err->msg
                                                    : tq_code_name(rc);
  if (feed_record_poll(p->lib, p->f->name, p->now, state, error,
                       text && strlen(text) < sizeof p->f->last_summary ? text : NULL, &e) != TQ_OK)
    tq_log(TQ_LOG_WARN, "feed", "%s", e.msg);
  free(text);
}

static tq_code poll_feed_run(poll_ctx *p, tq_err *err) {
  tq_code rc = ensure_source(p->lib, p->f->source, err);
  if (rc == TQ_OK)
    rc = tq_feed_ingest_new(p->lib, p->f->name, p->f->source, p->sum, &p->in, err);
  if (rc == TQ_OK) {
    rc = strcmp(p->f->kind, "taxii") == 0 ? poll_taxii(p, err) : poll_reports(p, err);
    /* what was mapped before a failure of the pass (network, server) is kept */
    tq_err e;
    tq_code crc = group_commit(p, rc == TQ_OK ? err : &e);
    if (rc == TQ_OK)
      rc = crc;
    if (rc == TQ_OK && p->sum->complete)
      rc = drop_unresolved(p, err);
  }
  count_pending(p->lib, p->f->name, &p->sum->links_pending);
  tq_feed_ingest_free(p->in);
  p->in = NULL;
  return rc;
}

/* WAL frames after a commit that start a background checkpoint during a poll: a group of
 * pages writes thousands of frames, copied back by the checkpoint thread while the next group
 * is mapped (tq_lib_checkpointer). */
#define POLL_WAL_FRAMES 4096

static tq_code poll_feed(poll_ctx *p, tq_err *err) {
  tq_lib_checkpointer *ck = NULL;
  tq_err e;
  if (tq_lib_checkpointer_start(p->lib, POLL_WAL_FRAMES, &ck, &e) != TQ_OK)
    tq_log(TQ_LOG_WARN, "feed", "%s (checkpoints stay in the poll)", e.msg);
  tq_code rc = poll_feed_run(p, err);
  tq_lib_checkpointer_stop(ck);
  return rc;
}

tq_code tq_feed_poll(tq_lib *lib, tq_net *net, const char *name, const tq_feed_poll_opts *o,
                     tq_feed_summary *out, tq_err *err) {
  tq_code tables_rc = feed_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  tq_feed_poll_opts defaults;
  if (o == NULL) {
    tq_feed_poll_opts_init(&defaults);
    o = &defaults;
  }
  memset(out, 0, sizeof *out);
  tq_strlcpy(out->feed, name, sizeof out->feed);
  int64_t t0 = tq_mono_ms();
  tq_feed f;
  tq_code rc = tq_feed_get(lib, name, &f, err);
  if (rc != TQ_OK)
    return rc;
  tq_net *own = NULL;
  if (net == NULL && (rc = tq_net_new(NULL, &own, err)) != TQ_OK)
    return rc;
  poll_ctx p = {.lib = lib, .net = net ? net : own, .f = &f, .o = o, .sum = out};
  p.now = o->now ? o->now : tq_time_now();
  rc = poll_feed(&p, err);
  out->duration_ms = tq_mono_ms() - t0;
  record(&p, rc, err);
  tq_net_free(own);
  return rc;
}

/* Names of the enabled feeds due at now. */
static tq_code due_names(tq_lib *lib, int64_t now, char ***out, size_t *n, tq_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib),
                         "SELECT name FROM feeds WHERE enabled=1 AND (last_poll_at IS NULL OR"
                         " last_poll_at + every_s <= ?1) ORDER BY name",
                         -1, &st, NULL) != SQLITE_OK)
    return feed_db_err(lib, err, "listing due feeds");
  sqlite3_bind_int64(st, 1, now);
  char **v = NULL;
  size_t len = 0;
  tq_code rc = TQ_OK;
  int step;
  while (rc == TQ_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
    char **nv = realloc(v, (len + 1) * sizeof *nv);
    char *s = tq_strdup((const char *)sqlite3_column_text(st, 0));
    if (nv)
      v = nv;
    if (nv == NULL || s == NULL) {
      free(s);
      rc = tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
    } else {
      v[len++] = s;
    }
  }
  if (rc == TQ_OK && step != SQLITE_DONE)
    rc = feed_db_err(lib, err, "listing due feeds");
  sqlite3_finalize(st);
  *out = v;
  *n = len;
  return rc;
}

/* Takes due feed name for this poller: one conditional update moves its last poll to now, so
 * that of two pollers at once (cron ticks overlapping) only one polls it. 1: taken. */
static int claim_due(tq_lib *lib, const char *name, int64_t now) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(tq_lib_db(lib),
                         "UPDATE feeds SET last_poll_at=?2 WHERE name=?1 AND enabled=1 AND"
                         " (last_poll_at IS NULL OR last_poll_at + every_s <= ?2)",
                         -1, &st, NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  int taken = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(tq_lib_db(lib)) == 1;
  sqlite3_finalize(st);
  return taken;
}

tq_code tq_feed_poll_due(tq_lib *lib, tq_net *net, int64_t now, tq_feed_polled_fn done, void *ud,
                         size_t *n_polled, size_t *n_failed, tq_err *err) {
  tq_code tables_rc = feed_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  char **names = NULL;
  size_t n = 0, failed = 0;
  tq_net *own = NULL;
  tq_code rc = due_names(lib, now, &names, &n, err);
  if (rc == TQ_OK && n > 0 && net == NULL)
    rc = tq_net_new(NULL, &own, err);
  size_t polled = 0;
  for (size_t i = 0; rc == TQ_OK && i < n; i++) {
    if (!claim_due(lib, names[i], now))
      continue; /* another poller took it */
    polled++;
    tq_feed_poll_opts o;
    tq_feed_poll_opts_init(&o);
    o.now = now;
    tq_feed_summary sum;
    tq_err e;
    tq_err_clear(&e);
    tq_code prc = tq_feed_poll(lib, net ? net : own, names[i], &o, &sum, &e);
    failed += prc != TQ_OK;
    if (done)
      done(ud, names[i], prc, &e, &sum);
    tq_feed_summary_free(&sum);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  tq_net_free(own);
  if (n_polled)
    *n_polled = rc == TQ_OK ? polled : 0;
  if (n_failed)
    *n_failed = failed;
  return rc;
}
