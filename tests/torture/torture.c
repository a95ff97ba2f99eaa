/* torture.c: allocation-failure ("torture") test, after curl's. The program defines malloc,
 * calloc, realloc, free and the aligned allocators itself (calling glibc's __libc_* functions),
 * so that every allocation of the process goes through it: ours, SQLite's, Lua's (our
 * lua_Alloc calls realloc), cJSON's, libyaml's. Each scenario is first run once to warm up
 * one-time global state (SQLite's and curl's initialisation) and to count its allocations A;
 * then, for N = 1..A, a forked child runs it again with the Nth allocation failing and must:
 *   - not crash (the parent sees how the child ended),
 *   - either succeed, or fail with an error that has a message,
 *   - leave no block allocated by the scenario alive once it has cleaned up.
 * Scenarios: the library (open and migrate a new file, put an indicator with attributes and a
 * tag, read it, save a collection and walk its cursor), a manifest (a real one through the
 * schema check), a Lua run (example-lookup's script to completion, HTTP replayed from its
 * fixture). TORTURE_MAX (default 100) caps the failure points per scenario: past it they are
 * spread evenly over 1..A (TORTURE_MAX=0 walks every one); TORTURE_POINT=N runs only failure
 * point N, without forking (for a debugger). Not built under ASan, which owns malloc itself.
 * Usage: torture [SCENARIO...] */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tqhost/library.h"
#include "tqhost/lua.h"
#include "tqhost/plugin.h"

/* ---- the allocator ------------------------------------------------------------------------ */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

#define LIVE_SLOTS (1u << 21) /* open addressing; far more than a scenario keeps alive */
#define TOMB ((uintptr_t)1)

static uintptr_t *live_tab; /* blocks allocated while armed and not freed yet */
static size_t live_n;       /* how many */
static atomic_flag live_lock = ATOMIC_FLAG_INIT;
static atomic_int armed;        /* counting allocations */
static atomic_long alloc_count; /* allocations since armed */
static long fail_at;            /* the allocation that fails (1-based); 0 = none */
static atomic_int failed_once;  /* the failure was injected */

static void lock(void) {
  while (atomic_flag_test_and_set_explicit(&live_lock, memory_order_acquire))
    ;
}
static void unlock(void) { atomic_flag_clear_explicit(&live_lock, memory_order_release); }

static size_t slot_of(uintptr_t p) {
  return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ull) & (LIVE_SLOTS - 1);
}

static void live_add(void *ptr) {
  uintptr_t p = (uintptr_t)ptr;
  lock();
  size_t i = slot_of(p);
  while (live_tab[i] != 0 && live_tab[i] != TOMB)
    i = (i + 1) & (LIVE_SLOTS - 1);
  live_tab[i] = p;
  live_n++;
  unlock();
}

/* Removes ptr if it is tracked; says whether it was. */
static int live_del(void *ptr) {
  uintptr_t p = (uintptr_t)ptr;
  int found = 0;
  if (live_tab == NULL) /* frees before main */
    return 0;
  lock();
  for (size_t i = slot_of(p); live_tab[i] != 0; i = (i + 1) & (LIVE_SLOTS - 1)) {
    if (live_tab[i] == p) {
      live_tab[i] = TOMB;
      live_n--;
      found = 1;
      break;
    }
  }
  unlock();
  return found;
}

static atomic_int skipped; /* the failure point was in a third-party site that is skipped */

/* Third-party code that cannot take a failed allocation, skipped (the allocation succeeds):
 * glibc's regcomp (2.36) frees its DFA twice ("double free detected", from free_dfa_content in
 * re_compile_internal) or leaks it when an allocation inside it fails. The schema validator
 * compiles each pattern it checks with regcomp. */
static int in_skipped_site(void) {
  void *frames[64];
  int n = backtrace(frames, 64);
  for (int i = 0; i < n; i++) {
    Dl_info info;
    if (dladdr(frames[i], &info) && info.dli_saddr == (void *)regcomp)
      return 1;
  }
  return 0;
}

/* Counts an allocation; 1 when this one must fail. */
static int must_fail(void) {
  if (!atomic_load(&armed))
    return 0;
  long n = atomic_fetch_add(&alloc_count, 1) + 1;
  if (fail_at && n == fail_at) {
    if (in_skipped_site()) {
      atomic_store(&skipped, 1);
      return 0;
    }
    atomic_store(&failed_once, 1);
    return 1;
  }
  return 0;
}

static void *track(void *p) {
  if (p && atomic_load(&armed))
    live_add(p);
  return p;
}

void *malloc(size_t n) {
  if (must_fail()) {
    errno = ENOMEM;
    return NULL;
  }
  return track(__libc_malloc(n));
}

void *calloc(size_t n, size_t size) {
  if (must_fail()) {
    errno = ENOMEM;
    return NULL;
  }
  return track(__libc_calloc(n, size));
}

void *realloc(void *old, size_t n) {
  if (old == NULL)
    return malloc(n);
  if (n == 0) {
    free(old);
    return NULL;
  }
  if (must_fail()) {
    errno = ENOMEM;
    return NULL;
  }
  int tracked = live_del(old);
  void *p = __libc_realloc(old, n);
  if (p == NULL) {
    if (tracked)
      live_add(old);
    return NULL;
  }
  /* a block from before the scenario stays untracked when it moves */
  if (tracked)
    live_add(p);
  return p;
}

void free(void *p) {
  if (p == NULL)
    return;
  live_del(p);
  __libc_free(p);
}

void *memalign(size_t align, size_t n) {
  if (must_fail()) {
    errno = ENOMEM;
    return NULL;
  }
  return track(__libc_memalign(align, n));
}

void *aligned_alloc(size_t align, size_t n) { return memalign(align, n); }

int posix_memalign(void **out, size_t align, size_t n) {
  void *p = memalign(align, n);
  if (p == NULL)
    return ENOMEM;
  *out = p;
  return 0;
}

void *valloc(size_t n) { return memalign((size_t)sysconf(_SC_PAGESIZE), n); }

void *pvalloc(size_t n) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return memalign(page, (n + page - 1) / page * page);
}

/* ---- scenarios ---------------------------------------------------------------------------- */

static char db_path[4096];
static char script_dir[4096];
static char lua_path[4096];

/* A scenario returns TQ_OK, or an error whose err->msg says why. */
typedef tq_code (*scenario_fn)(tq_err *err);

static tq_code sc_library(tq_err *err) {
  char side[4200];
  unlink(db_path);
  snprintf(side, sizeof side, "%s-wal", db_path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", db_path);
  unlink(side);
  tq_lib *lib = NULL;
  tq_cursor *cur = NULL;
  tq_object *obj = NULL;
  tq_query q, saved;
  tq_query_init(&q);
  tq_query_init(&saved);
  tq_code rc = tq_lib_open(db_path, TQ_LIB_OPEN_CREATE, &lib, err);
  if (rc != TQ_OK)
    goto done;
  static const char *sources[] = {"Torture Feed"};
  static const char *tags[] = {"c2"};
  static const tq_attr_in attrs[] = {{"Country", "DE", NULL, 0}, {"ASN", "AS64500", NULL, 0}};
  tq_object_in in = {.value = "45.83.122.166",
                     .sources = sources,
                     .n_sources = 1,
                     .attrs = attrs,
                     .n_attrs = 2,
                     .tags = tags,
                     .n_tags = 1};
  int64_t id = 0;
  rc = tq_lib_object_put(lib, &in, &id, NULL, err);
  if (rc != TQ_OK)
    goto done;
  rc = tq_lib_object_get(lib, id, &obj, err);
  if (rc != TQ_OK)
    goto done;
  if (obj->n_attrs != 2 || obj->n_tags != 1) {
    rc =
        tq_err_set(err, TQ_EINVAL, "read back %zu attributes, %zu tags", obj->n_attrs, obj->n_tags);
    goto done;
  }
  q.source = strdup("Torture Feed");
  if (q.source == NULL) {
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
    goto done;
  }
  rc = tq_lib_collection_put(lib, "torture", &q, 1, err);
  if (rc != TQ_OK)
    goto done;
  rc = tq_lib_collection_get(lib, "torture", &saved, err);
  if (rc != TQ_OK)
    goto done;
  rc = tq_lib_cursor_open(lib, &saved, 0, &cur, err);
  if (rc != TQ_OK)
    goto done;
  int64_t ids[8];
  size_t n = 0;
  rc = tq_lib_cursor_next(cur, ids, 8, &n, err);
  if (rc == TQ_OK && (n != 1 || ids[0] != id))
    rc = tq_err_set(err, TQ_EINVAL, "the collection gave %zu ids", n);
done:
  tq_lib_cursor_close(cur);
  tq_object_free(obj);
  tq_query_free(&q);
  tq_query_free(&saved);
  tq_lib_close(lib);
  return rc;
}

static tq_code sc_manifest(tq_err *err) {
  tq_plugin *p = NULL;
  tq_diags diags = {0};
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/plugins/rst-ioc-lookup", TQ_SOURCE_DIR);
  tq_code rc = tq_plugin_load(dir, &p, &diags, err);
  if (rc == TQ_OK && (p == NULL || tq_plugin_op_find(p, "lookup") == NULL))
    rc = tq_err_set(err, TQ_EINVAL, "the manifest loaded without its lookup operation");
  if (rc != TQ_OK && !err->msg[0] && diags.n > 0)
    tq_err_set(err, rc, "%s", diags.msgs[0]);
  tq_plugin_free(p);
  tq_diags_free(&diags);
  return rc;
}

static tq_code sc_lua(tq_err *err) {
  tq_lua *rt = NULL;
  tq_lua_script *s = NULL;
  tq_lua_run *run = NULL;
  char replay[4200], lib_dir[4200];
  snprintf(replay, sizeof replay, "%s/spec/fixtures/ip_hit.json", script_dir);
  snprintf(lib_dir, sizeof lib_dir, "%s/../lib", script_dir);
  tq_lua_opts o;
  tq_lua_opts_init(&o);
  o.replay_file = replay;
  tq_code rc = tq_lua_new(&o, &rt, err);
  if (rc != TQ_OK)
    return rc;
  static const tq_lua_kv config[] = {{"base_url", "https://api.example.test/v1"},
                                     {"update_score", "true"}};
  static const tq_lua_kv secrets[] = {{"api_key", "torture-key-123"}};
  tq_lua_script_opts so;
  tq_lua_script_opts_init(&so);
  so.name = "example-lookup";
  so.path = lua_path;
  so.lib_dir = lib_dir;
  so.config = config;
  so.n_config = 2;
  so.secrets = secrets;
  so.n_secrets = 1;
  rc = tq_lua_load(rt, &so, &s, err);
  if (rc != TQ_OK)
    goto done;
  tq_object obj = {.object_type = "indicator",
                   .indicator_type = "IP Address",
                   .value = "45.83.122.166",
                   .status = 1,
                   .score_manual = -1};
  rc = tq_lua_run_start(rt, s, "lookup", &obj, NULL, NULL, &run, err);
  if (rc != TQ_OK)
    goto done;
  rc = tq_lua_run_all(rt, err);
  if (rc != TQ_OK)
    goto done;
  if (tq_lua_run_status(run) != TQ_LUA_OK) {
    const char *msg = tq_lua_run_message(run);
    rc = tq_err_set(err, TQ_EINVAL, "run %s: %s", tq_lua_status_name(tq_lua_run_status(run)),
                    msg[0] ? msg : "");
    if (!msg[0]) /* a run that ends without a reason is a defect, whatever the cause */
      err->msg[0] = '\0';
    goto done;
  }
  if (tq_lua_run_changeset(run)->n_attrs != 1)
    rc = tq_err_set(err, TQ_EINVAL, "the run recorded %zu attributes",
                    tq_lua_run_changeset(run)->n_attrs);
done:
  tq_lua_run_free(run);
  tq_lua_script_free(s);
  tq_lua_free(rt);
  return rc;
}

static const struct {
  const char *name;
  scenario_fn fn;
} scenarios[] = {{"library", sc_library}, {"manifest", sc_manifest}, {"lua", sc_lua}};

/* ---- the walk ----------------------------------------------------------------------------- */

enum {
  CHILD_OK = 0,
  CHILD_ERROR = 1,
  CHILD_NO_MESSAGE = 2,
  CHILD_LEAK = 3,
  CHILD_NOT_HIT = 4,
  CHILD_SKIPPED = 5
};

/* In a child: runs fn with allocation n failing; the exit status says what happened. */
static void leave(int status) {
  fflush(stdout);
  _exit(status);
}

static void child(scenario_fn fn, long n) {
  tq_err err = {0};
  int quiet = open("/dev/null", O_WRONLY); /* the runs' own error logs */
  if (quiet >= 0)
    dup2(quiet, 2);
  fail_at = n;
  atomic_store(&alloc_count, 0);
  atomic_store(&armed, 1);
  tq_code rc = fn(&err);
  atomic_store(&armed, 0);
  size_t leaked = live_n;
  if (leaked) {
    fprintf(stdout, "  allocation %ld failing: %zu block(s) leaked (%s)\n", n, leaked,
            rc == TQ_OK ? "succeeded" : err.msg);
    leave(CHILD_LEAK);
  }
  if (rc != TQ_OK && !err.msg[0]) {
    fprintf(stdout, "  allocation %ld failing: error %d without a message\n", n, (int)rc);
    leave(CHILD_NO_MESSAGE);
  }
  if (rc != TQ_OK && !atomic_load(&failed_once)) {
    fprintf(stdout, "  allocation %ld: failed with no allocation failing: %s\n", n, err.msg);
    leave(CHILD_ERROR + 10);
  }
  if (atomic_load(&skipped))
    leave(CHILD_SKIPPED);
  if (!atomic_load(&failed_once))
    leave(CHILD_NOT_HIT);
  leave(rc == TQ_OK ? CHILD_OK : CHILD_ERROR);
}

/* Forks a child for failure point n; returns its exit status, or 100 + the signal. */
static int try_point(scenario_fn fn, long n) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0)
    child(fn, n);
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid)
    return 99;
  if (WIFSIGNALED(st))
    return 100 + WTERMSIG(st);
  return WEXITSTATUS(st);
}

static long env_long(const char *name, long dflt) {
  const char *v = getenv(name);
  return v && *v ? strtol(v, NULL, 10) : dflt;
}

/* Walks one scenario; returns the number of bad failure points. */
static int walk(const char *name, scenario_fn fn) {
  tq_err err = {0};
  /* warm-up: one-time global state, and the allocation count of a clean run */
  if (fn(&err) != TQ_OK) {
    fprintf(stderr, "%s: the scenario fails without any allocation failing: %s\n", name, err.msg);
    return 1;
  }
  fail_at = 0;
  atomic_store(&alloc_count, 0);
  atomic_store(&armed, 1);
  tq_code rc = fn(&err);
  atomic_store(&armed, 0);
  long total = atomic_load(&alloc_count);
  if (rc != TQ_OK || live_n != 0) {
    fprintf(stderr, "%s: clean run: %s, %zu block(s) left\n", name, rc == TQ_OK ? "ok" : err.msg,
            live_n);
    return 1;
  }
  long only = env_long("TORTURE_POINT", 0); /* one failure point, in this process (for gdb) */
  if (only > 0)
    child(fn, only);
  long max = env_long("TORTURE_MAX", 100);
  long step = max > 0 && total > max ? (total + max - 1) / max : 1;
  int bad = 0, errors = 0, oks = 0, tried = 0, skips = 0;
  for (long n = 1; n <= total + 1; n += (n <= 64 ? 1 : step)) {
    int st = try_point(fn, n);
    tried++;
    if (st == CHILD_OK)
      oks++;
    else if (st == CHILD_ERROR)
      errors++;
    else if (st == CHILD_SKIPPED)
      skips++;
    else if (st == CHILD_NOT_HIT)
      break; /* the scenario made fewer allocations this time: a full pass succeeded */
    else {
      bad++;
      if (st >= 100)
        fprintf(stdout, "  allocation %ld failing: the child died of signal %d\n", n, st - 100);
    }
  }
  printf("%-9s %ld allocations, %d failure points: %d clear errors, %d tolerated, %d skipped "
         "(third-party), %d bad\n",
         name, total, tried, errors, oks, skips, bad);
  return bad;
}

int main(int argc, char **argv) {
  live_tab = mmap(NULL, LIVE_SLOTS * sizeof *live_tab, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (live_tab == MAP_FAILED)
    return 2;
  void *warm[4]; /* backtrace loads libgcc_s on its first call: not inside a scenario */
  backtrace(warm, 4);
  setenv("TQHOST_SCHEMAS", TQ_SOURCE_DIR "/schemas", 1);
  setenv("TQHOST_LOG", "error", 0);
  snprintf(db_path, sizeof db_path, "/dev/shm/tq-torture-%d.db", (int)getpid());
  if (access("/dev/shm", W_OK) != 0)
    snprintf(db_path, sizeof db_path, "/tmp/tq-torture-%d.db", (int)getpid());
  snprintf(script_dir, sizeof script_dir, "%s/tests/data/plugins/example-lookup", TQ_SOURCE_DIR);
  snprintf(lua_path, sizeof lua_path, "%s/operation.lua", script_dir);
  int bad = 0;
  for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++) {
    int wanted = argc < 2;
    for (int a = 1; a < argc; a++)
      wanted |= strcmp(argv[a], scenarios[i].name) == 0;
    if (wanted)
      bad += walk(scenarios[i].name, scenarios[i].fn);
  }
  char side[4200];
  unlink(db_path);
  snprintf(side, sizeof side, "%s-wal", db_path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", db_path);
  unlink(side);
  return bad ? 1 : 0;
}
