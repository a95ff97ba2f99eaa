/* events.c: live progress of bulk runs as server-sent events (GET /api/runs/{id}/events), for
 * the web UI's progress bar. A browser's EventSource cannot send an Authorization header, so
 * the UI first asks for a ticket (POST /api/runs/{id}/events/ticket, bearer-authenticated):
 * 32 random bytes, kept in memory as their SHA-256 only, bound to the run and the user, good
 * for one stream within TICKET_TTL_S. A bearer header works as well (other clients).
 *
 * A stream is a libmicrohttpd response from callback (chunked, text/event-stream). Its reader
 * hands out what the hub thread queued in the stream's buffer; with nothing to say it suspends
 * the connection (MHD_suspend_connection from the reader, as libmicrohttpd allows) and returns
 * 0, so no MHD thread waits. The hub thread reads the runs of the open streams on a read-only
 * library connection of its own (never a lock the engine or the runs need) every TICK_MS,
 * queues an event when the progress changed or a second went by, resumes the suspended
 * connections it queued for, and queues the final "end" event once the run is no longer
 * running. A client that went away is found on the next write (at most a second later): MHD
 * closes the connection and frees the response, whose free callback takes the stream out of
 * the list. At most MAX_STREAMS streams at once (503 past that). */
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_int.h"
#include "events_int.h"
#include "tqhost/workflow.h"

#define MAX_STREAMS 64
#define MAX_TICKETS 256
#define TICKET_TTL_S 60
#define TICK_MS 250
#define HEARTBEAT_MS 1000
#define BUF_CAP 4096

typedef struct stream {
  struct tq_events *ev;
  struct stream *next;
  struct MHD_Connection *mc; /* set when the response is made */
  uint64_t serial;
  int64_t run_id;
  char buf[BUF_CAP]; /* queued text: buf[off..len) */
  size_t off, len;
  int suspended; /* the reader suspended the connection; the hub resumes it */
  int ended;     /* the final event is queued: end of stream once the buffer drains */
  int listed;    /* in ev->streams (the response exists) */
  int64_t last_ms;
  int64_t seq;
  char last[512]; /* the last event's data (to send changes at once) */
} stream;

typedef struct ticket {
  char hash[65]; /* "" : free slot */
  int64_t run_id;
  int64_t expires_ms;
  tq_principal who;
} ticket;

struct tq_events {
  char *db_path;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int started, stopping;
  stream *streams;  /* under mu */
  size_t n_streams; /* listed and reserved (made, not yet queued) */
  uint64_t next_serial;
  ticket tickets[MAX_TICKETS];
};

/* ---- events ---------------------------------------------------------------------------------- */

/* Whether the run is over (its stream ends). */
static int run_over(const tq_run_info *r) { return !r->live; }

/* The event's data: the run's progress as one line of JSON. */
static void progress_data(const tq_run_info *r, char *out, size_t n) {
  int64_t done = r->enriched + r->not_found + r->failed + r->skipped;
  const char *state = r->live                                          ? "running"
                      : r->cancelled && strcmp(r->status, "done") != 0 ? "cancelled"
                                                                       : r->state;
  double rate = r->seconds > 0 ? (double)done / r->seconds : 0;
  char eta[32] = "null";
  if (r->live && rate > 0 && r->total >= done)
    snprintf(eta, sizeof eta, "%.1f", (double)(r->total - done) / rate);
  cJSON *st = cJSON_CreateString(state); /* state text comes from the library: escape it */
  char *st_txt = st ? cJSON_PrintUnformatted(st) : NULL;
  snprintf(out, n,
           "{\"run_id\":%lld,\"state\":%s,\"done\":%lld,\"total\":%lld,\"ok\":%lld,"
           "\"not_found\":%lld,\"failed\":%lld,\"skipped\":%lld,\"rate\":%.2f,\"eta_s\":%s}",
           (long long)r->id, st_txt ? st_txt : "\"unknown\"", (long long)done, (long long)r->total,
           (long long)r->enriched, (long long)r->not_found, (long long)r->failed,
           (long long)r->skipped, rate, eta);
  free(st_txt);
  cJSON_Delete(st);
}

/* Queues one event (under mu); 0 when the buffer has no room (the client does not read). */
static int queue_event(stream *s, const char *name, const char *data) {
  char ev[700];
  int k = snprintf(ev, sizeof ev, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)(s->seq + 1),
                   name, data);
  if (k < 0 || (size_t)k >= sizeof ev)
    return 0;
  if (s->off > 0 && s->off == s->len)
    s->off = s->len = 0;
  if (s->len + (size_t)k > sizeof s->buf) {
    memmove(s->buf, s->buf + s->off, s->len - s->off);
    s->len -= s->off;
    s->off = 0;
    if (s->len + (size_t)k > sizeof s->buf)
      return 0;
  }
  memcpy(s->buf + s->len, ev, (size_t)k);
  s->len += (size_t)k;
  s->seq++;
  s->last_ms = tq_mono_ms();
  tq_strlcpy(s->last, data, sizeof s->last);
  return 1;
}

/* Resumes s when its reader suspended it (under mu: the connection cannot close meanwhile). */
static void wake(stream *s) {
  if (s->suspended && s->mc) {
    s->suspended = 0;
    MHD_resume_connection(s->mc);
  }
}

static void gauge(tq_events *ev) {
  tq_metric_set("tqhost_event_streams", "", (double)ev->n_streams);
}

/* ---- the hub ------------------------------------------------------------------------------- */

typedef struct probe {
  uint64_t serial;
  int64_t run_id;
  int found;
  tq_run_info info;
} probe;

static void *hub_main(void *arg) {
  tq_events *ev = arg;
  tq_lib *lib = NULL;
  probe *pv = NULL;
  size_t cap = 0;
  for (;;) {
    pthread_mutex_lock(&ev->mu);
    if (!ev->stopping) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += TICK_MS * 1000000L;
      ts.tv_sec += ts.tv_nsec / 1000000000L;
      ts.tv_nsec %= 1000000000L;
      pthread_cond_timedwait(&ev->cv, &ev->mu, &ts);
    }
    if (ev->stopping) {
      for (stream *s = ev->streams; s; s = s->next) {
        if (!s->ended) {
          s->ended = 1;
          queue_event(s, "end", "{\"state\":\"server stopping\"}");
        }
        wake(s);
      }
      pthread_mutex_unlock(&ev->mu);
      break;
    }
    /* What to read: the open streams' runs (read outside the lock). */
    size_t n = 0;
    for (stream *s = ev->streams; s; s = s->next)
      n += !s->ended;
    if (n > cap) {
      probe *np = realloc(pv, n * sizeof *np);
      if (np) {
        pv = np;
        cap = n;
      }
    }
    n = 0;
    for (stream *s = ev->streams; s && n < cap; s = s->next)
      if (!s->ended)
        pv[n++] = (probe){.serial = s->serial, .run_id = s->run_id};
    pthread_mutex_unlock(&ev->mu);
    if (n == 0)
      continue;
    tq_err err;
    if (lib == NULL && tq_lib_open(ev->db_path, TQ_LIB_OPEN_READONLY, &lib, &err) != TQ_OK) {
      tq_log(TQ_LOG_WARN, "server", "event streams: %s", err.msg);
      lib = NULL;
      continue;
    }
    for (size_t i = 0; i < n; i++) {
      for (size_t k = 0; k < i && !pv[i].found; k++) /* a run watched twice is read once */
        if (pv[k].run_id == pv[i].run_id && pv[k].found) {
          pv[i].info = pv[k].info;
          pv[i].found = 1;
        }
      if (!pv[i].found)
        pv[i].found = tq_run_get(lib, pv[i].run_id, &pv[i].info, &err) == TQ_OK;
    }
    int64_t now = tq_mono_ms();
    pthread_mutex_lock(&ev->mu);
    for (stream *s = ev->streams; s; s = s->next) {
      const probe *p = NULL;
      for (size_t i = 0; i < n && p == NULL; i++)
        if (pv[i].serial == s->serial && pv[i].found)
          p = &pv[i];
      if (p == NULL || s->ended)
        continue;
      char data[512];
      progress_data(&p->info, data, sizeof data);
      if (run_over(&p->info)) {
        if (queue_event(s, "end", data))
          s->ended = 1;
      } else if (strcmp(data, s->last) != 0 || now - s->last_ms >= HEARTBEAT_MS) {
        queue_event(s, "progress", data);
      }
      if (s->off < s->len || s->ended)
        wake(s);
    }
    pthread_mutex_unlock(&ev->mu);
  }
  free(pv);
  if (lib)
    tq_lib_close(lib);
  return NULL;
}

/* ---- the response --------------------------------------------------------------------------- */

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max) {
  stream *s = cls;
  (void)pos;
  pthread_mutex_lock(&s->ev->mu);
  if (s->off < s->len) {
    size_t k = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->buf + s->off, k);
    s->off += k;
    pthread_mutex_unlock(&s->ev->mu);
    return (ssize_t)k;
  }
  if (s->ended || s->ev->stopping) {
    pthread_mutex_unlock(&s->ev->mu);
    return MHD_CONTENT_READER_END_OF_STREAM;
  }
  s->suspended = 1;
  MHD_suspend_connection(s->mc);
  pthread_mutex_unlock(&s->ev->mu);
  return 0;
}

static void unlist(stream *s) {
  tq_events *ev = s->ev;
  pthread_mutex_lock(&ev->mu);
  if (s->listed)
    for (stream **pp = &ev->streams; *pp; pp = &(*pp)->next)
      if (*pp == s) {
        *pp = s->next;
        break;
      }
  ev->n_streams--;
  gauge(ev);
  pthread_mutex_unlock(&ev->mu);
  free(s);
}

static void reader_free(void *cls) { unlist(cls); }

void tq_events_stream_free(void *st) {
  if (st)
    unlist(st);
}

struct MHD_Response *tq_events_response(void *st, struct MHD_Connection *mc) {
  stream *s = st;
  pthread_mutex_lock(&s->ev->mu);
  s->mc = mc;
  s->listed = 1;
  s->next = s->ev->streams;
  s->ev->streams = s;
  pthread_mutex_unlock(&s->ev->mu);
  struct MHD_Response *r =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, reader, s, reader_free);
  if (r == NULL)
    unlist(s);
  return r;
}

/* ---- the hub's life ------------------------------------------------------------------------- */

tq_code tq_events_start(const char *db_path, tq_events **out, tq_err *err) {
  *out = NULL;
  tq_events *ev = calloc(1, sizeof *ev);
  if (ev == NULL || (ev->db_path = tq_strdup(db_path)) == NULL) {
    free(ev);
    return tq_err_set(err, TQ_ENOMEM, "server: out of memory");
  }
  pthread_mutex_init(&ev->mu, NULL);
  pthread_cond_init(&ev->cv, NULL);
  tq_metric_help("tqhost_event_streams", "gauge", "server-sent event streams open (run progress)");
  gauge(ev);
  if (pthread_create(&ev->thread, NULL, hub_main, ev) != 0) {
    pthread_mutex_destroy(&ev->mu);
    pthread_cond_destroy(&ev->cv);
    free(ev->db_path);
    free(ev);
    return tq_err_set(err, TQ_EIO, "server: cannot start the event stream thread");
  }
  ev->started = 1;
  *out = ev;
  return TQ_OK;
}

void tq_events_stop(tq_events *ev) {
  if (ev == NULL || !ev->started)
    return;
  pthread_mutex_lock(&ev->mu);
  ev->stopping = 1;
  pthread_cond_broadcast(&ev->cv);
  pthread_mutex_unlock(&ev->mu);
  pthread_join(ev->thread, NULL);
  ev->started = 0;
}

void tq_events_free(tq_events *ev) {
  if (ev == NULL)
    return;
  tq_events_stop(ev);
  /* MHD stopped: every response, and so every listed stream, is freed already. */
  pthread_mutex_destroy(&ev->mu);
  pthread_cond_destroy(&ev->cv);
  explicit_bzero(ev->tickets, sizeof ev->tickets);
  free(ev->db_path);
  free(ev);
}

/* ---- tickets -------------------------------------------------------------------------------- */

tq_code tq_events_ticket(tq_events *ev, int64_t run_id, const tq_principal *who,
                         char out[TQ_AUTH_TOKEN_LEN + 1], int64_t *ttl_s, tq_err *err) {
  int64_t now = tq_mono_ms();
  tq_auth_token_new(out);
  pthread_mutex_lock(&ev->mu);
  ticket *slot = NULL;
  for (size_t i = 0; i < MAX_TICKETS; i++) {
    ticket *t = &ev->tickets[i];
    if (t->hash[0] && t->expires_ms <= now)
      memset(t, 0, sizeof *t);
    if (slot == NULL && t->hash[0] == '\0')
      slot = t;
  }
  if (slot) {
    tq_auth_token_hash(out, slot->hash);
    slot->run_id = run_id;
    slot->expires_ms = now + TICKET_TTL_S * 1000;
    slot->who = *who;
  }
  pthread_mutex_unlock(&ev->mu);
  if (slot == NULL) {
    explicit_bzero(out, TQ_AUTH_TOKEN_LEN + 1);
    return tq_err_set(err, TQ_ELIMIT, "%d event tickets are waiting to be used: try again later",
                      MAX_TICKETS);
  }
  *ttl_s = TICKET_TTL_S;
  return TQ_OK;
}

int tq_events_ticket_take(tq_events *ev, const char *tk, int64_t *run_id, tq_principal *who) {
  if (!tq_auth_token_wellformed(tk))
    return 0;
  char hash[65];
  tq_auth_token_hash(tk, hash);
  int64_t now = tq_mono_ms();
  int ok = 0;
  pthread_mutex_lock(&ev->mu);
  for (size_t i = 0; i < MAX_TICKETS && !ok; i++) {
    ticket *t = &ev->tickets[i];
    if (t->hash[0] && strcmp(t->hash, hash) == 0) {
      ok = t->expires_ms > now;
      *run_id = t->run_id;
      *who = t->who;
      memset(t, 0, sizeof *t); /* single use: also when expired */
    }
  }
  pthread_mutex_unlock(&ev->mu);
  return ok;
}

/* ---- opening a stream ------------------------------------------------------------------------ */

void *tq_events_open(tq_events *ev, const tq_run_info *r, tq_err *err) {
  stream *s = calloc(1, sizeof *s);
  if (s == NULL) {
    tq_err_set(err, TQ_ENOMEM, "out of memory");
    return NULL;
  }
  pthread_mutex_lock(&ev->mu);
  if (ev->stopping || !ev->started) {
    pthread_mutex_unlock(&ev->mu);
    free(s);
    tq_err_set(err, TQ_ELIMIT, "the server is shutting down");
    return NULL;
  }
  if (ev->n_streams >= MAX_STREAMS) {
    pthread_mutex_unlock(&ev->mu);
    free(s);
    tq_err_set(err, TQ_ELIMIT, "%d event streams are open already: try again later", MAX_STREAMS);
    return NULL;
  }
  ev->n_streams++;
  gauge(ev);
  s->ev = ev;
  s->serial = ++ev->next_serial;
  s->run_id = r->id;
  /* The first event at once: the progress as it is (and the end when the run is over). */
  char data[512];
  progress_data(r, data, sizeof data);
  const char *hello = "retry: 3000\n\n";
  memcpy(s->buf, hello, strlen(hello));
  s->len = strlen(hello);
  queue_event(s, run_over(r) ? "end" : "progress", data);
  s->ended = run_over(r);
  pthread_mutex_unlock(&ev->mu);
  return s;
}
