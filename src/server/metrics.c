/* metrics.c: the server's Prometheus counters, gauges and latency histograms, kept in one
 * mutex-guarded table (the process's only server metrics: a library forces no state here,
 * but every HTTP thread and the engine write the same series). Series are found by a linear
 * scan: there are tens of them, not thousands (labels are route patterns, not paths). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

enum { M_COUNTER, M_GAUGE, M_HIST };
static const double BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])
#define MAX_SERIES 4096

typedef struct series {
  char *name, *labels;
  int kind;
  double value;                /* counter, gauge; histogram: the sum */
  uint64_t count;              /* histogram */
  uint64_t buckets[N_BUCKETS]; /* histogram, not cumulative */
} series;

typedef struct help {
  char *name, *type, *text;
} help;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static series *all;
static size_t n_all, cap_all;
static help *helps;
static size_t n_helps;

/* The series name{labels}, created when missing; NULL when memory runs out or the table is
 * full (a metric is dropped rather than the request failed). Called with lock held. */
static series *find(const char *name, const char *labels, int kind) {
  if (labels == NULL)
    labels = "";
  for (size_t i = 0; i < n_all; i++)
    if (all[i].kind == kind && strcmp(all[i].name, name) == 0 && strcmp(all[i].labels, labels) == 0)
      return &all[i];
  if (n_all == MAX_SERIES)
    return NULL;
  if (n_all == cap_all) {
    size_t nc = cap_all ? cap_all * 2 : 64;
    series *na = realloc(all, nc * sizeof *na);
    if (na == NULL)
      return NULL;
    all = na;
    cap_all = nc;
  }
  series *s = &all[n_all];
  memset(s, 0, sizeof *s);
  s->name = strdup(name);
  s->labels = strdup(labels);
  if (s->name == NULL || s->labels == NULL) {
    free(s->name);
    free(s->labels);
    return NULL;
  }
  s->kind = kind;
  n_all++;
  return s;
}

void tq_metric_add(const char *name, const char *labels, double delta) {
  pthread_mutex_lock(&lock);
  series *s = find(name, labels, M_COUNTER);
  if (s)
    s->value += delta;
  pthread_mutex_unlock(&lock);
}

void tq_metric_set(const char *name, const char *labels, double value) {
  pthread_mutex_lock(&lock);
  series *s = find(name, labels, M_GAUGE);
  if (s)
    s->value = value;
  pthread_mutex_unlock(&lock);
}

void tq_metric_keep(const char *name, const char *const *labels, size_t n) {
  pthread_mutex_lock(&lock);
  size_t w = 0;
  for (size_t i = 0; i < n_all; i++) {
    int keep = strcmp(all[i].name, name) != 0;
    for (size_t k = 0; !keep && k < n; k++)
      keep = strcmp(all[i].labels, labels[k]) == 0;
    if (keep) {
      all[w++] = all[i];
    } else {
      free(all[i].name);
      free(all[i].labels);
    }
  }
  n_all = w;
  pthread_mutex_unlock(&lock);
}

void tq_metric_observe(const char *name, const char *labels, double seconds) {
  pthread_mutex_lock(&lock);
  series *s = find(name, labels, M_HIST);
  if (s) {
    s->value += seconds;
    s->count++;
    for (size_t i = 0; i < N_BUCKETS; i++)
      if (seconds <= BUCKETS[i]) {
        s->buckets[i]++;
        break;
      }
  }
  pthread_mutex_unlock(&lock);
}

void tq_metric_help(const char *name, const char *type, const char *text) {
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < n_helps; i++)
    if (strcmp(helps[i].name, name) == 0) {
      pthread_mutex_unlock(&lock);
      return;
    }
  help *nh = realloc(helps, (n_helps + 1) * sizeof *nh);
  if (nh) {
    helps = nh;
    helps[n_helps].name = strdup(name);
    helps[n_helps].type = strdup(type);
    helps[n_helps].text = strdup(text);
    if (helps[n_helps].name && helps[n_helps].type && helps[n_helps].text)
      n_helps++;
  }
  pthread_mutex_unlock(&lock);
}

/* name{labels,extra} with the braces only when something is inside. */
static void series_name(tq_buf *b, const char *name, const char *suffix, const char *labels,
                        const char *extra) {
  tq_buf_printf(b, "%s%s", name, suffix);
  int has_l = labels && *labels, has_e = extra && *extra;
  if (has_l || has_e)
    tq_buf_printf(b, "{%s%s%s}", has_l ? labels : "", has_l && has_e ? "," : "",
                  has_e ? extra : "");
}

static void write_help(tq_buf *b, const char *name, const char *kind) {
  for (size_t i = 0; i < n_helps; i++)
    if (strcmp(helps[i].name, name) == 0) {
      tq_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, helps[i].text, name, helps[i].type);
      return;
    }
  tq_buf_printf(b, "# TYPE %s %s\n", name, kind);
}

char *tq_metrics_text(void) {
  tq_buf b;
  tq_buf_init(&b, 0);
  pthread_mutex_lock(&lock);
  char *done = calloc(n_all ? n_all : 1, 1); /* series already written under their name */
  for (size_t i = 0; done && i < n_all; i++) {
    if (done[i])
      continue;
    static const char *kinds[] = {"counter", "gauge", "histogram"};
    write_help(&b, all[i].name, kinds[all[i].kind]);
    for (size_t j = i; j < n_all; j++) {
      series *s = &all[j];
      if (done[j] || s->kind != all[i].kind || strcmp(s->name, all[i].name) != 0)
        continue;
      done[j] = 1;
      if (s->kind != M_HIST) {
        series_name(&b, s->name, "", s->labels, NULL);
        tq_buf_printf(&b, " %.17g\n", s->value);
        continue;
      }
      uint64_t cum = 0;
      for (size_t k = 0; k < N_BUCKETS; k++) {
        char le[48];
        cum += s->buckets[k];
        snprintf(le, sizeof le, "le=\"%g\"", BUCKETS[k]);
        series_name(&b, s->name, "_bucket", s->labels, le);
        tq_buf_printf(&b, " %llu\n", (unsigned long long)cum);
      }
      series_name(&b, s->name, "_bucket", s->labels, "le=\"+Inf\"");
      tq_buf_printf(&b, " %llu\n", (unsigned long long)s->count);
      series_name(&b, s->name, "_sum", s->labels, NULL);
      tq_buf_printf(&b, " %.17g\n", s->value);
      series_name(&b, s->name, "_count", s->labels, NULL);
      tq_buf_printf(&b, " %llu\n", (unsigned long long)s->count);
    }
  }
  free(done);
  pthread_mutex_unlock(&lock);
  return tq_buf_take(&b);
}

/* A provider name as a label value: names come from manifests, so anything but
 * [A-Za-z0-9._-] becomes '_' (no quote, backslash or newline can break the exposition). */
static void provider_label(char *out, size_t n, const char *name) {
  size_t i = 0;
  for (; name[i] && i + 1 < n; i++) {
    char ch = name[i];
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '_' || ch == '-';
    out[i] = ok ? ch : '_';
  }
  out[i] = '\0';
}

static void provider_series(void *ud, const char *name, const tq_net_stats *st) {
  (void)ud;
  char p[128], labels[160];
  provider_label(p, sizeof p, name);
  snprintf(labels, sizeof labels, "provider=\"%s\"", p);
  tq_metric_set("tqhost_provider_requests_total", labels, (double)st->attempts);
  tq_metric_set("tqhost_provider_429_total", labels, (double)st->status_429);
  tq_metric_set("tqhost_provider_retries_total", labels, (double)st->retries);
  tq_metric_set("tqhost_provider_cache_hits_total", labels, (double)st->cache_hits);
  tq_metric_set("tqhost_provider_failures_total", labels, (double)st->failures);
}

void tq_metrics_from_net(const tq_net *net) {
  static int helped;
  if (!helped) {
    helped = 1;
    tq_metric_help("tqhost_provider_requests_total", "counter",
                   "HTTP attempts put on the wire, by provider");
    tq_metric_help("tqhost_provider_429_total", "counter",
                   "answers 429 (rate limited) among them, by provider");
    tq_metric_help("tqhost_provider_retries_total", "counter", "retries scheduled, by provider");
    tq_metric_help("tqhost_provider_cache_hits_total", "counter",
                   "requests answered from the response cache, by provider");
    tq_metric_help("tqhost_provider_failures_total", "counter",
                   "requests that failed after their retries, by provider");
  }
  tq_net_each_provider(net, provider_series, NULL);
}
