/* lua_overhead.c: host overhead of a Lua run with no I/O: start (coroutine, _ENV, obj view,
 * ctx), one resume, finish and free, on one runtime; batches of runs in flight at once as an
 * action runner would keep them. Prints microseconds per run. Not a test: no pass/fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqhost/lua.h"

#define BATCH 256

static const char *script_path(void) {
  static char buf[4096];
  const char *here = __FILE__;
  const char *slash = strrchr(here, '/');
  snprintf(buf, sizeof buf, "%.*s/../lua/bench.lua", slash ? (int)(slash - here) : 1,
           slash ? here : ".");
  return buf;
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
  o.path = script_path();
  tq_lua_script *s = NULL;
  if (tq_lua_load(rt, &o, &s, &err) != TQ_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  char *tags[] = {"c2"};
  tq_attr attrs[] = {{"Country", "DE", "RST Cloud", 0}, {"ASN", "64500", "RST Cloud", 0}};
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
  return 0;
}
