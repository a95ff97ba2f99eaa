/* library_bench.c: a benchmark, not a test. Imports N indicators (default 1,000,000), each
 * with two sources and three attributes, through the library API in batched transactions,
 * and the same rows through raw prepared statements in one transaction (the baseline,
 * measured in the same run). Prints indicators/s, peak RSS, the ratio to the baseline, and
 * the time to read a 1,000-row collection page over the whole set. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tqhost/library.h"

#define BATCH 100000

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The i-th value: IPs, domains and SHA-256 hashes in turn, all distinct. */
static void value_of(long i, char *out, size_t n) {
  switch (i % 3) {
  case 0:
    snprintf(out, n, "%ld.%ld.%ld.%ld", 1 + (i / 3 >> 24) % 223, (i / 3 >> 16) & 255,
             (i / 3 >> 8) & 255, (i / 3) & 255);
    break;
  case 1: snprintf(out, n, "host%ld.example%ld.com", i, i % 97); break;
  default:
    snprintf(out, n, "%016lx%016lx%016lx%016lx", (unsigned long)i * 2654435761UL, (unsigned long)i,
             (unsigned long)~i, (unsigned long)i * 40503UL);
  }
}

static const char *SRC[2] = {"RST Threat Feed High", "Analyst"};

static double run_tqhost(const char *path, long n, tq_lib **out) {
  tq_lib *lib = NULL;
  tq_err err;
  unlink(path);
  if (tq_lib_open(path, TQ_LIB_OPEN_CREATE, &lib, &err) != TQ_OK) {
    fprintf(stderr, "%s\n", err.msg);
    exit(1);
  }
  tq_source_opts o;
  tq_source_opts_init(&o);
  o.score = 5;
  o.expire_days = 30;
  tq_lib_source_put(lib, SRC[0], &o, 0, NULL, &err);
  double t0 = now_s();
  char v[160], a1[32], a2[32];
  for (long i = 0; i < n; i++) {
    if (i % BATCH == 0 && tq_lib_begin(lib, &err) != TQ_OK)
      goto fail;
    value_of(i, v, sizeof v);
    snprintf(a1, sizeof a1, "%ld", i % 100);
    snprintf(a2, sizeof a2, "AS%ld", 1000 + i % 5000);
    tq_attr_in attrs[3] = {{.name = "Category", .value = i % 2 ? "c2" : "phishing"},
                           {.name = "Confidence", .value = a1},
                           {.name = "ASN", .value = a2, .source = SRC[1]}};
    tq_object_in in = {.value = v, .sources = SRC, .n_sources = 2, .attrs = attrs, .n_attrs = 3};
    if (tq_lib_object_put(lib, &in, NULL, NULL, &err) != TQ_OK)
      goto fail;
    if ((i + 1) % BATCH == 0 || i + 1 == n)
      if (tq_lib_commit(lib, &err) != TQ_OK)
        goto fail;
  }
  *out = lib;
  return now_s() - t0;
fail:
  fprintf(stderr, "tqhost import: %s\n", err.msg);
  exit(1);
}

/* The baseline: the same rows, already canonical, inserted with plain prepared statements
 * in one transaction into tables of the same shape and indexes. */
static double run_raw(const char *path, long n) {
  sqlite3 *db = NULL;
  unlink(path);
  sqlite3_open(path, &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
               "CREATE TABLE objects(id INTEGER PRIMARY KEY, type TEXT, itype_id INTEGER, value"
               " TEXT, status INTEGER, score_gen REAL, published_at INTEGER, created_at INTEGER,"
               " updated_at INTEGER, expires_at INTEGER);"
               "CREATE UNIQUE INDEX oi ON objects(value, itype_id, type);"
               "CREATE TABLE object_sources(object_id INTEGER, source_id INTEGER, reported_at"
               " INTEGER, tlp INTEGER, PRIMARY KEY(object_id, source_id)) WITHOUT ROWID;"
               "CREATE INDEX osb ON object_sources(source_id, object_id);"
               "CREATE TABLE attributes(object_id INTEGER, name TEXT, value TEXT, source_id"
               " INTEGER, tlp INTEGER, created_at INTEGER,"
               " PRIMARY KEY(object_id, name, value, source_id)) WITHOUT ROWID;",
               NULL, NULL, NULL);
  sqlite3_stmt *so, *ss, *sa;
  sqlite3_prepare_v2(db,
                     "INSERT INTO objects(type,itype_id,value,status,score_gen,published_at,"
                     "created_at,updated_at,expires_at) VALUES('indicator',?,?,1,5,?,?,?,?)",
                     -1, &so, NULL);
  sqlite3_prepare_v2(db, "INSERT INTO object_sources VALUES(?,?,?,0)", -1, &ss, NULL);
  sqlite3_prepare_v2(db,
                     "INSERT INTO attributes(object_id,name,value,source_id,tlp,created_at)"
                     " VALUES(?,?,?,?,0,?)",
                     -1, &sa, NULL);
  double t0 = now_s();
  sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  char v[160], a1[32], a2[32];
  int64_t now = time(NULL);
  for (long i = 0; i < n; i++) {
    value_of(i, v, sizeof v);
    snprintf(a1, sizeof a1, "%ld", i % 100);
    snprintf(a2, sizeof a2, "AS%ld", 1000 + i % 5000);
    sqlite3_bind_int(so, 1, (int)(i % 3) + 1);
    sqlite3_bind_text(so, 2, v, -1, SQLITE_STATIC);
    for (int k = 3; k <= 5; k++)
      sqlite3_bind_int64(so, k, now);
    sqlite3_bind_int64(so, 6, now + 30 * 86400);
    sqlite3_step(so);
    sqlite3_reset(so);
    int64_t id = sqlite3_last_insert_rowid(db);
    for (int s = 1; s <= 2; s++) {
      sqlite3_bind_int64(ss, 1, id);
      sqlite3_bind_int(ss, 2, s);
      sqlite3_bind_int64(ss, 3, now);
      sqlite3_step(ss);
      sqlite3_reset(ss);
    }
    const char *names[3] = {"Category", "Confidence", "ASN"};
    const char *vals[3] = {i % 2 ? "c2" : "phishing", a1, a2};
    for (int k = 0; k < 3; k++) {
      sqlite3_bind_int64(sa, 1, id);
      sqlite3_bind_text(sa, 2, names[k], -1, SQLITE_STATIC);
      sqlite3_bind_text(sa, 3, vals[k], -1, SQLITE_STATIC);
      sqlite3_bind_int(sa, 4, k == 2 ? 2 : 1);
      sqlite3_bind_int64(sa, 5, now);
      sqlite3_step(sa);
      sqlite3_reset(sa);
    }
  }
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  double dt = now_s() - t0;
  sqlite3_finalize(so);
  sqlite3_finalize(ss);
  sqlite3_finalize(sa);
  sqlite3_close(db);
  return dt;
}

/* Mean time to read one 1,000-row page of a collection, at pages spread over the set. */
static double page_ms(tq_lib *lib, long n) {
  tq_query q;
  tq_query_init(&q);
  q.score_min = 5;
  q.source = strdup(SRC[0]);
  tq_err err;
  int64_t ids[1000];
  size_t got = 0;
  int pages = 50;
  double t0 = now_s();
  for (int p = 0; p < pages; p++) {
    tq_cursor *c = NULL;
    if (tq_lib_cursor_open(lib, &q, (int64_t)(n / pages) * p, &c, &err) != TQ_OK ||
        tq_lib_cursor_next(c, ids, 1000, &got, &err) != TQ_OK) {
      fprintf(stderr, "cursor: %s\n", err.msg);
      exit(1);
    }
    tq_lib_cursor_close(c);
    if (got != 1000 && (n / pages) * p + 1000 <= n) {
      fprintf(stderr, "page %d returned %zu rows\n", p, got);
      exit(1);
    }
  }
  tq_query_free(&q);
  return (now_s() - t0) * 1000 / pages;
}

/* Mean time to read one whole object (row, sources, attributes, tags, links) by id. */
static double read_us(tq_lib *lib, long n) {
  tq_err err;
  long reads = n < 100000 ? n : 100000;
  double t0 = now_s();
  for (long i = 0; i < reads; i++) {
    tq_object *o = NULL;
    if (tq_lib_object_get(lib, 1 + (i * 7919) % n, &o, &err) != TQ_OK) {
      fprintf(stderr, "read: %s\n", err.msg);
      exit(1);
    }
    tq_object_free(o);
  }
  return (now_s() - t0) * 1e6 / (double)reads;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  const char *dir = argc > 2 ? argv[2] : "/tmp";
  char p1[256], p2[256];
  snprintf(p1, sizeof p1, "%s/tq_bench_lib_%d.db", dir, (int)getpid());
  snprintf(p2, sizeof p2, "%s/tq_bench_raw_%d.db", dir, (int)getpid());
  tq_lib *lib = NULL;
  double t_tq = run_tqhost(p1, n, &lib);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double rss_mib = (double)ru.ru_maxrss / 1024.0;
  double ms = page_ms(lib, n);
  double rus = read_us(lib, n);
  tq_lib_close(lib);
  double t_raw = run_raw(p2, n);
  double r_tq = (double)n / t_tq, r_raw = (double)n / t_raw;
  printf("library_bench: %ld indicators, 2 sources and 3 attributes each\n", n);
  printf("  tqhost import     %10.0f indicators/s  (%.2f s)  aim >= 100000/s: ratio %.2f\n", r_tq,
         t_tq, r_tq / 100000.0);
  printf("  raw SQLite        %10.0f indicators/s  (%.2f s)\n", r_raw, t_raw);
  printf("  ratio to raw      %10.2f               aim >= 0.5\n", r_tq / r_raw);
  printf("  peak RSS          %10.1f MiB\n", rss_mib);
  printf("  collection page   %10.3f ms per 1,000 rows  aim < 5 ms: ratio %.2f\n", ms, ms / 5.0);
  printf("  object read       %10.2f us per whole object (sources, attributes, tags, links)\n",
         rus);
  for (int k = 0; k < 2; k++) {
    const char *base = k ? p2 : p1;
    char p[300];
    unlink(base);
    snprintf(p, sizeof p, "%s-wal", base);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", base);
    unlink(p);
  }
  return 0;
}
