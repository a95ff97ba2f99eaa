/* lua_overhead.c: host overhead of a Lua run with no I/O: start (coroutine, _ENV, obj view,
 * ctx), one resume, finish and free, on one runtime; batches of runs in flight at once as an
 * action runner would keep them. Then the rst-ioc-lookup plugin's lookup entry on a recorded
 * answer (replay mode: the plugin's ip_hit fixture), as a bulk run calls it (outcome only):
 * JSON decode, mapping and change set with no network, the Lua share of bulk_bench's CPU per
 * item. Prints microseconds per run. Not a test: no pass/fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/lua.h"

#define BATCH 256

/* A path relative to the source tree's root. */
static const char *src_path(const char *rel) {
  static char buf[4][4096];
  static int next;
  char *b = buf[next++ % 4];
  const char *here = __FILE__;
  const char *slash = strrchr(here, '/');
  snprintf(b, sizeof buf[0], "%.*s/../../%s", slash ? (int)(slash - here) : 1, slash ? here : ".",
           rel);
  return b;
}

/* Runs n runs of entry in batches; returns µs per run. */
static double bench(tq_lua *rt, tq_lua_script *s, const char *entry, const tq_object *obj, int n) {
  tq_lua_run *runs[BATCH];
  int64_t t0 = tq_time_now_us();
  for (int done = 0; done < n; done += BATCH) {
    for (int i = 0; i < BATCH; i++) {
      tq_err err;
      if (tq_lua_run_start(rt, s, entry, obj, NULL, NULL, &runs[i], &err) != TQ_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
      }
    }
    if (tq_lua_run_all(rt, NULL) != TQ_OK)
      exit(1);
    for (int i = 0; i < BATCH; i++) {
      if (tq_lua_run_status(runs[i]) != TQ_LUA_OK) {
        fprintf(stderr, "run failed: %s\n", tq_lua_run_message(runs[i]));
        exit(1);
      }
      tq_lua_run_free(runs[i]);
    }
  }
  return (double)(tq_time_now_us() - t0) / n;
}

/* us/run of rst-ioc-lookup's lookup entry on the recorded ip_hit answer; < 0 on an error. */
static double rst_lookup(int n) {
  tq_lua_opts lo;
  tq_lua_opts_init(&lo);
  lo.replay_file = src_path("plugins/rst-ioc-lookup/spec/fixtures/ip_hit.json");
  tq_lua *rt = NULL;
  tq_err err;
  if (tq_lua_new(&lo, &rt, &err) != TQ_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return -1;
  }
  tq_lua_kv secret = {"api_key", "bench-key-0123456789"};
  tq_lua_script_opts o;
  tq_lua_script_opts_init(&o);
  o.name = "rst-ioc-lookup";
  o.path = src_path("plugins/rst-ioc-lookup/operation.lua");
  o.lib_dir = src_path("plugins/lib");
  o.secrets = &secret;
  o.n_secrets = 1;
  o.outcome_only = 1;
  tq_lua_script *s = NULL;
  double per = -1;
  if (tq_lua_load(rt, &o, &s, &err) != TQ_OK) {
    fprintf(stderr, "%s\n", err.msg);
  } else {
    tq_object obj = {.object_type = "indicator",
                     .indicator_type = "IP Address",
                     .value = "185.220.101.5",
                     .status = 1};
    bench(rt, s, "lookup", &obj, BATCH * 4); /* warm up */
    per = bench(rt, s, "lookup", &obj, n);
    tq_lua_script_free(s);
  }
  tq_lua_free(rt);
  return per;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 100000;
  n = (n + BATCH - 1) / BATCH * BATCH;
  tq_lua *rt = NULL;
  tq_err err;
  if (tq_lua_new(NULL, &rt, &err) != TQ_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  tq_lua_script_opts o;
  tq_lua_script_opts_init(&o);
  o.name = "bench";
  o.path = src_path("tests/lua/bench.lua");
  tq_lua_script *s = NULL;
  if (tq_lua_load(rt, &o, &s, &err) != TQ_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  char *tags[] = {"c2"};
  tq_attr attrs[] = {{"Country", "DE", "RST Cloud", 0, 0, 0},
                     {"ASN", "64500", "RST Cloud", 0, 0, 0}};
  tq_object obj = {.object_type = "indicator",
                   .indicator_type = "IP Address",
                   .value = "45.83.122.166",
                   .status = 1,
                   .score = 5,
                   .tags = tags,
                   .n_tags = 1,
                   .attrs = attrs,
                   .n_attrs = 2};
  bench(rt, s, "noop", NULL, BATCH * 4); /* warm up */
  printf("lua run overhead, no object, empty entry: %.2f us/run\n", bench(rt, s, "noop", NULL, n));
  printf("lua run overhead, object view + ctx:tag:  %.2f us/run\n", bench(rt, s, "tag", &obj, n));
  printf("lua state memory after %d runs: %zu KiB\n", 2 * n, tq_lua_memory(rt) / 1024);
  tq_lua_script_free(s);
  tq_lua_free(rt);
  double per = rst_lookup(n / 4);
  if (per < 0)
    return 1;
  printf("rst-ioc-lookup lookup on a recorded hit (JSON decode, mapping, change set; no "
         "network): %.1f us/run\n",
         per);
  return 0;
}
