/* feed_bench.c: throughput of TAXII feed ingestion (ctest bench.feed, label bench). For each
 * collection size it starts rstsim with that many entries in its High Risk collection and
 * measures, in the same run, three legs over the same pages (limit 1000, following `next`):
 *   download  libcurl GETs of every page, nothing else;
 *   parse     cJSON_Parse + Delete of each downloaded page (timed apart from the download);
 *   e2e       `tqhost feed add ... --discovery http://127.0.0.1:PORT/taxii2/ --collection ID`
 *             then `tqhost feed poll NAME` into a fresh library: fetch, parse, map, commit.
 *   floor     SQLite alone writing the rows e2e wrote: every table of the polled library copied
 *             into an empty one with the same schema by INSERT ... SELECT in ingest order, in
 *             one transaction (rows staged in memory first, untimed): what this schema costs
 *             with no STIX, no mapping and no statement per object; the bound of e2e here.
 * It prints objects/s per leg, the ratios of e2e to the other three, and each leg's peak RSS
 * (every leg runs in its own child, so ru_maxrss is that leg's alone). Peak RSS should depend
 * on the page size, not on the collection size: compare the 50,000 and 200,000 rows.
 * Usage: feed_bench RSTSIM TQHOST [N...]   (default sizes: 50000 200000) */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sqlite3.h>

#include "tqhost/core.h"

#define HIGH "689709ee-8496-4da2-997d-e9face24eee9"
#define PAGE 1000
#define ACCEPT "Accept: application/taxii+json;version=2.1"

typedef struct leg {
  int ran;
  char why[256]; /* why the leg did not run */
  int64_t objects, pages, bytes;
  double dl_s, parse_s, e2e_s, floor_s;
  int64_t floor_rows;
  long rss_kb;
} leg;

/* ---- rstsim -------------------------------------------------------------------------------- */
/* Starts rstsim with n entries per collection; fills *pid and *port from its ready line. */
static tq_code sim_start(const char *sim, unsigned n, pid_t *pid, unsigned *port, tq_err *err) {
  int fds[2];
  char objects[16];
  snprintf(objects, sizeof objects, "%u", n);
  if (pipe(fds) != 0)
    return tq_err_set(err, TQ_EIO, "rstsim: pipe: %s", strerror(errno));
  fflush(stdout); /* a child must not inherit unwritten output */
  *pid = fork();
  if (*pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    execl(sim, sim, "--port", "0", "--threads", "2", "--taxii-objects", objects, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  FILE *f = fdopen(fds[0], "r");
  char line[128] = "";
  int ok = f && fgets(line, sizeof line, f) &&
           sscanf(line, "rstsim listening on 127.0.0.1:%u", port) == 1;
  if (f)
    fclose(f);
  if (!ok)
    return tq_err_set(err, TQ_EIO, "rstsim '%s' did not print its ready line (got '%s')", sim,
                      line);
  return TQ_OK;
}

/* ---- the download and parse legs (run in a child) ------------------------------------------ */
static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  return tq_buf_add(ud, p, size * n) == TQ_OK ? size * n : 0;
}

static double now_s(void) { return (double)tq_mono_ms() / 1000.0; }

/* Next cursor of a parsed page, copied into next ("" when the page says no more). */
static int64_t page_objects(const cJSON *page, char *next, size_t n) {
  const cJSON *more = cJSON_GetObjectItemCaseSensitive(page, "more");
  const cJSON *nx = cJSON_GetObjectItemCaseSensitive(page, "next");
  next[0] = '\0';
  if (cJSON_IsTrue(more) && cJSON_IsString(nx))
    tq_strlcpy(next, nx->valuestring, n);
  return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(page, "objects"));
}

static tq_code fetch_and_parse(unsigned port, leg *out, tq_err *err) {
  tq_code code = TQ_OK;
  char url[512], next[128] = "";
  tq_buf body;
  tq_buf_init(&body, 256u << 20);
  CURL *h = curl_easy_init();
  struct curl_slist *hdrs = curl_slist_append(NULL, ACCEPT);
  if (h == NULL || hdrs == NULL) {
    code = tq_err_set(err, TQ_ENOMEM, "curl: cannot start");
    goto fail;
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  do {
    snprintf(url, sizeof url,
             "http://127.0.0.1:%u/taxii2/api/collections/" HIGH "/objects/?limit=%d%s%s", port,
             PAGE, next[0] ? "&next=" : "", next);
    curl_easy_setopt(h, CURLOPT_URL, url);
    tq_buf_reset(&body);
    double t0 = now_s();
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    double t1 = now_s();
    if (rc != CURLE_OK || status != 200) {
      code =
          tq_err_set(err, TQ_ENET, "GET %s: %s, status %ld", url, curl_easy_strerror(rc), status);
      goto fail;
    }
    cJSON *page = cJSON_ParseWithLength(body.data, body.len);
    double t2 = now_s();
    if (page == NULL) {
      code = tq_err_set(err, TQ_ECORRUPT, "page %lld is not JSON", (long long)out->pages + 1);
      goto fail;
    }
    out->objects += page_objects(page, next, sizeof next);
    cJSON_Delete(page);
    out->parse_s += t2 - t1;
    out->dl_s += t1 - t0;
    out->bytes += (int64_t)body.len;
    out->pages++;
  } while (next[0]);
fail:
  curl_slist_free_all(hdrs);
  if (h)
    curl_easy_cleanup(h);
  tq_buf_free(&body);
  return code;
}

/* Runs leg_fn(arg, out) in a child so that the leg's peak RSS is its own (and nothing it
 * allocates stays in this process); the child sends the leg back through a pipe. what names
 * the leg in an error. */
static void in_child(void (*leg_fn)(const void *arg, leg *out), const void *arg, const char *what,
                     leg *out) {
  int fds[2];
  if (pipe(fds) != 0) {
    snprintf(out->why, sizeof out->why, "pipe: %s", strerror(errno));
    return;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    leg l = {0};
    close(fds[0]);
    leg_fn(arg, &l);
    ssize_t w = write(fds[1], &l, sizeof l);
    _exit(w == (ssize_t)sizeof l ? 0 : 1);
  }
  close(fds[1]);
  ssize_t got = read(fds[0], out, sizeof *out);
  close(fds[0]);
  struct rusage ru;
  int st = 0;
  wait4(pid, &st, 0, &ru);
  if (got != (ssize_t)sizeof *out)
    snprintf(out->why, sizeof out->why, "the %s child died (status %d)", what, st);
  out->rss_kb = ru.ru_maxrss;
}

/* The download+parse walk (in a child: in_child). */
static void fetch_leg(const void *arg, leg *out) {
  tq_err err = {0};
  mallopt(M_MMAP_THRESHOLD, 128 * 1024); /* as tqhost does (src/cli/main.c) */
  out->ran = fetch_and_parse(*(const unsigned *)arg, out, &err) == TQ_OK;
  if (!out->ran)
    tq_strlcpy(out->why, err.msg, sizeof out->why);
}

/* ---- the end-to-end leg ------------------------------------------------------------------- */
/* Runs argv with stdout/stderr to log; returns the exit status (-1 when it could not run). */
static int run(char *const argv[], const char *log, double *secs, long *rss_kb) {
  fflush(stdout);
  double t0 = now_s();
  pid_t pid = fork();
  if (pid == 0) {
    FILE *f = freopen(log, "a", stdout);
    if (f == NULL || dup2(1, 2) < 0)
      _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  struct rusage ru;
  int st = 0;
  if (pid < 0 || wait4(pid, &st, 0, &ru) < 0)
    return -1;
  if (secs)
    *secs = now_s() - t0;
  if (rss_kb)
    *rss_kb = ru.ru_maxrss;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void last_line(const char *path, char *out, size_t n) {
  FILE *f = fopen(path, "r");
  char line[512];
  out[0] = '\0';
  while (f && fgets(line, sizeof line, f))
    if (line[0] != '\n')
      tq_strlcpy(out, tq_str_trim(line), n);
  if (f)
    fclose(f);
}

static void run_e2e_leg(const char *tqhost, unsigned port, const char *dir, leg *out) {
  char db[512], log[512], disc[128];
  snprintf(db, sizeof db, "%s/bench.db", dir);
  snprintf(log, sizeof log, "%s/tqhost.log", dir);
  snprintf(disc, sizeof disc, "http://127.0.0.1:%u/taxii2/", port);
  char *add[] = {
      (char *)tqhost, "--db", db,         "feed",      "add",         "bench", "--discovery", disc,
      "--collection", HIGH,   "--source", "RST Bench", "--page-size", "1000",  NULL};
  char *poll[] = {(char *)tqhost, "--db", db, "feed", "poll", "bench", NULL};
  char *init[] = {(char *)tqhost, "--db", db, "init", NULL};
  int st = run(init, log, NULL, NULL);
  if (st == 0)
    st = run(add, log, NULL, NULL);
  if (st != 0) {
    char why[400];
    last_line(log, why, sizeof why);
    snprintf(out->why, sizeof out->why, "`tqhost init` or `feed add` exited %d: %s", st, why);
    return;
  }
  st = run(poll, log, &out->e2e_s, &out->rss_kb);
  if (st != 0) {
    char why[400];
    last_line(log, why, sizeof why);
    snprintf(out->why, sizeof out->why, "`tqhost feed poll` exited %d: %s", st, why);
    return;
  }
  out->ran = 1;
}

/* ---- the SQLite floor ------------------------------------------------------------------ */
static int sql_exec(sqlite3 *db, const char *sql, char *why, size_t n) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
    return 1;
  snprintf(why, n, "%s: %s", sql, msg ? msg : "?");
  sqlite3_free(msg);
  return 0;
}

/* The order the ingest wrote a table's rows in: by object, STIX ids by their first object. */
static const char *ingest_order(sqlite3 *db, const char *table) {
  if (strcmp(table, "objects") == 0)
    return " ORDER BY id";
  if (strcmp(table, "stix_seen") == 0)
    return " ORDER BY (SELECT min(r.object_id) FROM s.stix_refs r WHERE r.stix_id=t.stix_id)";
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT 1 FROM pragma_table_info('%s', 's') WHERE name='object_id'",
           table);
  sqlite3_stmt *st = NULL;
  int has =
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return has ? " ORDER BY object_id" : "";
}

/* Columns of table that an INSERT may name (generated ones left out), comma-separated. */
static void insert_columns(sqlite3 *db, const char *table, char *out, size_t n) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_xinfo('%s', 's') WHERE hidden=0", table);
  sqlite3_stmt *st = NULL;
  size_t len = 0;
  out[0] = '\0';
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK)
    while (sqlite3_step(st) == SQLITE_ROW && len < n)
      len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "," : "",
                              (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
}

/* Copies the polled library dir/bench.db into dir/floor.db (see the top of the file). */
static void run_floor_leg(const char *dir, leg *out) {
  char src[512], dst[512], sql[4096], cols[2048];
  snprintf(src, sizeof src, "%s/bench.db", dir);
  snprintf(dst, sizeof dst, "%s/floor.db", dir);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  char **tables = NULL;
  size_t n = 0;
  int ok = sqlite3_open(dst, &db) == SQLITE_OK;
  /* the library's own settings (src/library/lib.c) */
  ok = ok && sql_exec(db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                      " PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;",
                      out->why, sizeof out->why);
  snprintf(sql, sizeof sql, "ATTACH '%s' AS s", src);
  ok = ok && sql_exec(db, sql, out->why, sizeof out->why);
  ok = ok && sqlite3_prepare_v2(db,
                                "SELECT type, name, sql FROM s.sqlite_master WHERE sql IS NOT NULL"
                                " AND name NOT LIKE 'sqlite_%' ORDER BY type='index', rowid",
                                -1, &st, NULL) == SQLITE_OK;
  while (ok && sqlite3_step(st) == SQLITE_ROW) {
    const char *type = (const char *)sqlite3_column_text(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    ok = sql_exec(db, (const char *)sqlite3_column_text(st, 2), out->why, sizeof out->why);
    if (ok && strcmp(type, "table") == 0) {
      char **v = realloc(tables, (n + 1) * sizeof *v);
      ok = v != NULL && (v[n] = strdup(name)) != NULL;
      tables = v ? v : tables;
      n += ok;
    }
  }
  sqlite3_finalize(st);
  /* stage every table's rows in memory, in ingest order (untimed) */
  for (size_t i = 0; ok && i < n; i++) {
    insert_columns(db, tables[i], cols, sizeof cols);
    snprintf(sql, sizeof sql, "CREATE TEMP TABLE r_%s AS SELECT %s FROM s.%s t%s", tables[i], cols,
             tables[i], ingest_order(db, tables[i]));
    ok = sql_exec(db, sql, out->why, sizeof out->why);
  }
  double t0 = now_s();
  ok = ok && sql_exec(db, "BEGIN IMMEDIATE", out->why, sizeof out->why);
  for (size_t i = 0; ok && i < n; i++) {
    insert_columns(db, tables[i], cols, sizeof cols);
    /* a column list (not SELECT *) keeps SQLite from copying records without decoding them */
    snprintf(sql, sizeof sql, "INSERT INTO main.%s(%s) SELECT %s FROM temp.r_%s", tables[i], cols,
             cols, tables[i]);
    ok = sql_exec(db, sql, out->why, sizeof out->why);
    out->floor_rows += ok ? sqlite3_changes64(db) : 0;
  }
  ok = ok && sql_exec(db, "COMMIT", out->why, sizeof out->why);
  out->floor_s = now_s() - t0;
  out->ran = ok;
  for (size_t i = 0; i < n; i++)
    free(tables[i]);
  free(tables);
  sqlite3_close(db);
}

/* The floor leg, in a child too (in_child): SQLite's page cache would otherwise stay in this
 * process's heap and be counted in the RSS of the next size's fetch child (a fork shares its
 * pages). */
static void floor_leg(const void *arg, leg *out) { run_floor_leg(arg, out); }

/* ---- report --------------------------------------------------------------------------------- */
static void report(unsigned n, const leg *f, const leg *e, const leg *fl) {
  double dl = f->objects / f->dl_s, parse = f->objects / f->parse_s;
  printf("\n== %u entries in the collection: %lld objects served (latest versions), %lld pages "
         "of <= %d, %.1f MB\n",
         n, (long long)f->objects, (long long)f->pages, PAGE, f->bytes / 1e6);
  printf("  download only   %10.0f objects/s  (%.2f s)\n", dl, f->dl_s);
  printf("  parse only      %10.0f objects/s  (%.2f s, cJSON_Parse + Delete)\n", parse, f->parse_s);
  printf("  peak RSS of the download+parse child: %ld KiB\n", f->rss_kb);
  if (!e->ran) {
    printf("  end to end      not run: %s\n", e->why);
    return;
  }
  double e2e = f->objects / e->e2e_s;
  printf("  end to end      %10.0f objects/s  (%.2f s, tqhost feed poll)  target 50,000: %s\n", e2e,
         e->e2e_s, e2e >= 50000 ? "met" : "NOT met");
  printf("  ratio e2e / download %.3f, e2e / parse %.3f\n", e2e / dl, e2e / parse);
  if (fl->ran) {
    double floor = f->objects / fl->floor_s;
    printf("  SQLite floor    %10.0f objects/s  (%.2f s for the same %lld rows: INSERT ... SELECT,"
           " one transaction)\n",
           floor, fl->floor_s, (long long)fl->floor_rows);
    printf("  ratio e2e / floor %.3f; %.1f rows per object\n", e2e / floor,
           (double)fl->floor_rows / (double)f->objects);
  } else {
    printf("  SQLite floor    not run: %s\n", fl->why);
  }
  printf("  peak RSS of tqhost feed poll: %ld KiB\n", e->rss_kb);
}

static int bench_size(const char *sim, const char *tqhost, unsigned n) {
  tq_err err = {0};
  pid_t sim_pid = -1;
  unsigned port = 0;
  leg f = {0}, e = {0}, fl = {0};
  char dir[] = "/tmp/feed_bench.XXXXXX";
  if (mkdtemp(dir) == NULL) {
    fprintf(stderr, "feed_bench: mkdtemp: %s\n", strerror(errno));
    return 1;
  }
  int rc = 1;
  if (sim_start(sim, n, &sim_pid, &port, &err) != TQ_OK) {
    fprintf(stderr, "feed_bench: %s\n", err.msg);
    goto done;
  }
  in_child(fetch_leg, &port, "fetch", &f);
  if (!f.ran) {
    fprintf(stderr, "feed_bench: download leg failed: %s\n", f.why);
    goto done;
  }
  run_e2e_leg(tqhost, port, dir, &e);
  if (e.ran)
    in_child(floor_leg, dir, "floor", &fl);
  report(n, &f, &e, &fl);
  rc = 0;
done:
  if (sim_pid > 0) {
    kill(sim_pid, SIGTERM);
    waitpid(sim_pid, NULL, 0);
  }
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "feed_bench: could not remove %s\n", dir);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: feed_bench RSTSIM TQHOST [N...]\n");
    return 2;
  }
  unsigned sizes[8] = {50000, 200000};
  int n_sizes = 2;
  if (argc > 3) {
    n_sizes = 0;
    for (int i = 3; i < argc && n_sizes < 8; i++) {
      long long v;
      tq_err err;
      if (tq_parse_int(argv[i], 1, 10000000, &v, "N", &err) != TQ_OK) {
        fprintf(stderr, "feed_bench: %s\n", err.msg);
        return 2;
      }
      sizes[n_sizes++] = (unsigned)v;
    }
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  printf("feed_bench: TAXII pages of %d from rstsim (High Risk collection) into tqhost\n", PAGE);
  int rc = 0;
  for (int i = 0; i < n_sizes; i++)
    rc |= bench_size(argv[1], argv[2], sizes[i]);
  curl_global_cleanup();
  return rc;
}
