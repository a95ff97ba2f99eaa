/* summary.c: the poll summary: counters by name, the list of malformed objects, and its two
 * views (JSON for --json and the feeds table, a few lines for a person); plus the life of an
 * ingest context. */
#include <stdlib.h>
#include <string.h>

#include "feed_int.h"

tq_code feed_count_add(tq_feed_count **v, size_t *n, const char *name, int64_t by) {
  for (size_t i = 0; i < *n; i++)
    if (strcmp((*v)[i].name, name) == 0) {
      (*v)[i].n += by;
      return TQ_OK;
    }
  tq_feed_count *nv = realloc(*v, (*n + 1) * sizeof *nv);
  if (nv == NULL)
    return TQ_ENOMEM;
  *v = nv;
  tq_strlcpy(nv[*n].name, name, sizeof nv[*n].name);
  nv[*n].n = by;
  (*n)++;
  return TQ_OK;
}

void feed_bad_add(tq_feed_summary *s, const char *id, const char *reason) {
  tq_log(TQ_LOG_WARN, "feed", "feed %s: skipped %s: %s", s->feed, id, reason);
  if (s->n_bad >= TQ_FEED_MAX_BAD_KEPT)
    return;
  tq_feed_bad *v = realloc(s->bad, (s->n_bad + 1) * sizeof *v);
  if (v == NULL)
    return; /* the count is kept by the caller; only the listing is lost */
  s->bad = v;
  tq_strlcpy(v[s->n_bad].id, id, sizeof v[s->n_bad].id);
  tq_strlcpy(v[s->n_bad].reason, reason, sizeof v[s->n_bad].reason);
  s->n_bad++;
}

void tq_feed_summary_free(tq_feed_summary *s) {
  free(s->by_type);
  free(s->unknown_types);
  free(s->bad);
  s->by_type = s->unknown_types = NULL;
  s->bad = NULL;
  s->n_by_type = s->n_unknown_types = s->n_bad = 0;
}

static cJSON *counts_json(const tq_feed_count *v, size_t n) {
  cJSON *o = cJSON_CreateObject();
  for (size_t i = 0; i < n; i++)
    cJSON_AddNumberToObject(o, v[i].name, (double)v[i].n);
  return o;
}

cJSON *tq_feed_summary_json(const tq_feed_summary *s, int compact) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "feed", s->feed);
  cJSON_AddNumberToObject(j, "pages", (double)s->pages);
  cJSON_AddNumberToObject(j, "objects", (double)s->objects);
  cJSON_AddNumberToObject(j, "indicators_created", (double)s->indicators_created);
  cJSON_AddNumberToObject(j, "indicators_updated", (double)s->indicators_updated);
  cJSON_AddNumberToObject(j, "objects_created", (double)s->objects_created);
  cJSON_AddNumberToObject(j, "objects_updated", (double)s->objects_updated);
  cJSON_AddNumberToObject(j, "skipped", (double)s->skipped);
  cJSON_AddNumberToObject(j, "revoked", (double)s->revoked);
  cJSON_AddNumberToObject(j, "links", (double)s->links);
  cJSON_AddNumberToObject(j, "links_pending", (double)s->links_pending);
  cJSON_AddNumberToObject(j, "links_dropped", (double)s->links_dropped);
  cJSON_AddNumberToObject(j, "malformed", (double)s->malformed);
  cJSON_AddNumberToObject(j, "unknown", (double)s->unknown);
  cJSON_AddItemToObject(j, "by_type", counts_json(s->by_type, s->n_by_type));
  cJSON_AddItemToObject(j, "unknown_types", counts_json(s->unknown_types, s->n_unknown_types));
  if (!compact) {
    cJSON *bad = cJSON_AddArrayToObject(j, "malformed_objects");
    for (size_t i = 0; i < s->n_bad; i++) {
      cJSON *b = cJSON_CreateObject();
      cJSON_AddStringToObject(b, "id", s->bad[i].id);
      cJSON_AddStringToObject(b, "reason", s->bad[i].reason);
      cJSON_AddItemToArray(bad, b);
    }
  }
  cJSON_AddNumberToObject(j, "restarts", (double)s->restarts);
  cJSON_AddBoolToObject(j, "complete", s->complete);
  if (s->stopped[0])
    cJSON_AddStringToObject(j, "stopped", s->stopped);
  cJSON_AddStringToObject(j, "checkpoint", s->checkpoint);
  cJSON_AddNumberToObject(j, "duration_ms", (double)s->duration_ms);
  return j;
}

/* Prints text that came from the feed (type names, ids, reasons) with its control characters
 * escaped, so that a feed cannot forge lines or send terminal escapes. */
static void put_txt(FILE *out, const char *s) {
  if (!tq_str_needs_escape(s, 0)) {
    fputs(s, out);
    return;
  }
  char *e = tq_str_escape_dup(s, 0);
  fputs(e ? e : "(unprintable)", out);
  free(e);
}

static void print_counts(FILE *out, const char *label, const tq_feed_count *v, size_t n) {
  if (n == 0)
    return;
  fprintf(out, "  %-20s", label);
  for (size_t i = 0; i < n; i++) {
    fputs(i ? ", " : "", out);
    put_txt(out, v[i].name);
    fprintf(out, " %lld", (long long)v[i].n);
  }
  fprintf(out, "\n");
}

void tq_feed_summary_print(const tq_feed_summary *s, FILE *out) {
  double secs = (double)s->duration_ms / 1000.0;
  fprintf(out, "feed %s: %lld page(s), %lld object(s) in %.2f s%s\n", s->feed, (long long)s->pages,
          (long long)s->objects, secs, s->complete ? "" : " (incomplete)");
  fprintf(out, "  %-20s%lld created, %lld updated\n", "indicators",
          (long long)s->indicators_created, (long long)s->indicators_updated);
  fprintf(out, "  %-20s%lld created, %lld updated\n", "library objects",
          (long long)s->objects_created, (long long)s->objects_updated);
  fprintf(out, "  %-20s%lld already seen, %lld revoked, %lld link(s), %lld waiting\n", "other",
          (long long)s->skipped, (long long)s->revoked, (long long)s->links,
          (long long)s->links_pending);
  if (s->links_dropped)
    fprintf(out, "  %-20s%lld (an end that never came: not ingested or not in the feed)\n",
            "links dropped", (long long)s->links_dropped);
  print_counts(out, "by type", s->by_type, s->n_by_type);
  print_counts(out, "unknown types", s->unknown_types, s->n_unknown_types);
  if (s->malformed)
    fprintf(out, "  %-20s%lld skipped\n", "malformed", (long long)s->malformed);
  for (size_t i = 0; i < s->n_bad; i++) {
    fputs("    ", out);
    put_txt(out, s->bad[i].id);
    fputs(": ", out);
    put_txt(out, s->bad[i].reason);
    fputs("\n", out);
  }
  if (s->restarts)
    fprintf(out, "  %-20s%lld (expired next cursor)\n", "restarts", (long long)s->restarts);
  if (s->stopped[0]) {
    fprintf(out, "  %-20s", "stopped");
    put_txt(out, s->stopped);
    fputs("\n", out);
  }
  fprintf(out, "  %-20s%s\n", "checkpoint", s->checkpoint[0] ? s->checkpoint : "(none)");
}

tq_code tq_feed_ingest_new(tq_lib *lib, const char *feed, const char *source, tq_feed_summary *sum,
                           tq_feed_ingest **out, tq_err *err) {
  tq_code tables_rc = feed_tables(lib, err);
  if (tables_rc != TQ_OK)
    return tables_rc;
  tq_feed_ingest *in = calloc(1, sizeof *in);
  if (in == NULL)
    return tq_err_set(err, TQ_ENOMEM, "feed: out of memory");
  in->lib = lib;
  in->sum = sum;
  tq_strlcpy(in->feed, feed, sizeof in->feed);
  tq_strlcpy(in->source, source, sizeof in->source);
  *out = in;
  return TQ_OK;
}

void tq_feed_ingest_free(tq_feed_ingest *in) {
  if (in == NULL)
    return;
  for (int i = 0; i < FS__COUNT; i++)
    sqlite3_finalize(in->st[i]);
  free(in->markings);
  free(in->ids);
  free(in->page_ids);
  free(in->set);
  free(in->page_seen);
  free(in->slots);
  tq_lib_rows_free(&in->look);
  tq_lib_rows_free(&in->seen_q);
  tq_lib_rows_free(&in->refs_q);
  free(in);
}

const char *tq_feed_state_name(int last_ok) {
  switch (last_ok) {
  case TQ_FEED_NEVER: return "never";
  case TQ_FEED_OK: return "ok";
  case TQ_FEED_INCOMPLETE: return "incomplete";
  default: return "failed";
  }
}

/* A string, or null when empty. */
static void add_str_or_null(cJSON *o, const char *key, const char *v) {
  if (v && v[0])
    cJSON_AddStringToObject(o, key, v);
  else
    cJSON_AddNullToObject(o, key);
}

cJSON *tq_feed_json(const tq_feed *f) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  cJSON_AddStringToObject(o, "name", f->name);
  cJSON_AddStringToObject(o, "kind", f->kind);
  cJSON_AddStringToObject(o, "discovery", f->discovery);
  cJSON_AddStringToObject(o, "collection", f->collection);
  cJSON_AddStringToObject(o, "username", f->username);
  cJSON_AddStringToObject(o, "password_env", f->password_env);
  cJSON_AddStringToObject(o, "ca_file", f->ca_file);
  cJSON_AddBoolToObject(o, "verify", f->verify);
  cJSON_AddStringToObject(o, "source", f->source);
  cJSON_AddStringToObject(o, "match_type", f->match_type);
  cJSON_AddNumberToObject(o, "page_size", f->page_size);
  cJSON_AddNumberToObject(o, "overlap_s", (double)f->overlap_s);
  cJSON_AddNumberToObject(o, "every_s", (double)f->every_s);
  cJSON_AddBoolToObject(o, "enabled", f->enabled);
  if (f->last_poll_at > 0) {
    char t[20];
    tq_time_format(f->last_poll_at, t);
    cJSON_AddStringToObject(o, "last_poll_at", t);
  } else {
    cJSON_AddNullToObject(o, "last_poll_at");
  }
  cJSON_AddStringToObject(o, "state",
                          f->last_poll_at > 0 ? tq_feed_state_name(f->last_ok) : "never");
  add_str_or_null(o, "last_error", f->last_error);
  add_str_or_null(o, "checkpoint", f->checkpoint);
  cJSON *counts = f->last_summary[0] ? cJSON_Parse(f->last_summary) : NULL;
  if (counts)
    cJSON_AddItemToObject(o, "counts", counts);
  else
    cJSON_AddNullToObject(o, "counts");
  return o;
}
