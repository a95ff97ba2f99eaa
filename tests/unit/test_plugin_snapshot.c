/* test_plugin_snapshot.c: a plugin read whole (src/plugin/snapshot.c) and the registry:
 * manifest, script and own lib/ modules of one version, never mixed while the folder is
 * swapped back and forth during the reads; a symlink, a syntax error, a
 * half-written manifest refused with their position; the registry keeps the version before
 * active with the error, reloads what changed and keeps what did not. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tqhost/plugin.h"

typedef struct fx {
  char dir[64], plugins[96], p1[128];
} fx;

/* Writes dir/rel, making its folders (no process started: writes follow each other at once,
 * as an editor saving several files does). */
static void put(const char *dir, const char *rel, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  for (char *s = path + 1; *s; s++)
    if (*s == '/') {
      *s = '\0';
      mkdir(path, 0755);
      *s = '/';
    }
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    fprintf(stderr, "put %s: %s\n", path, strerror(errno));
    abort();
  }
  fputs(text, f);
  fclose(f);
}

static const char *MANIFEST = "name: p1\nlabel: P1\nversion: %s\nscript: operation.lua\n"
                              "operations:\n  - { name: look, entry: look, object_types: "
                              "[indicator], indicator_types: [FQDN] }\n";

/* Version v of p1 in dir: manifest version v.0.0, script and lib module marked v. */
static void version_in(const char *dir, int v) {
  char m[512], s[256], l[64], ver[16];
  snprintf(ver, sizeof ver, "%d.0.0", v);
  snprintf(m, sizeof m, MANIFEST, ver);
  snprintf(s, sizeof s,
           "local x = require \"m.x\"\nlocal MARK = \"%d\"\n"
           "return { look = function(obj, ctx) ctx:attribute(\"m\", MARK .. x) end }\n",
           v);
  snprintf(l, sizeof l, "return \"%d\"\n", v);
  put(dir, "manifest.yaml", m);
  put(dir, "operation.lua", s);
  put(dir, "lib/m/x.lua", l);
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/tq_snap_XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(f->plugins, sizeof f->plugins, "%s/plugins", f->dir);
  snprintf(f->p1, sizeof f->p1, "%s/p1", f->plugins);
  version_in(f->p1, 1);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  if (system(cmd) != 0)
    return -1;
  free(f);
  return 0;
}

/* The version a snapshot is of, checking that its three parts agree (0 when they do not). */
static int version_of(const tq_plugin *p, const tq_plugin_src *s) {
  int v = atoi(p->version);
  char want[32];
  snprintf(want, sizeof want, "MARK = \"%d\"", v);
  if (strstr(s->script, want) == NULL || s->n_mods != 1 || strcmp(s->mods[0].name, "m.x") != 0 ||
      atoi(s->mods[0].text + strlen("return \"")) != v)
    return 0;
  return v;
}

static void test_read_whole(void **state) {
  fx *f = *state;
  tq_plugin *p = NULL;
  tq_plugin_src s;
  tq_err err = {0};
  char why[1024] = "";
  assert_int_equal(tq_plugin_snap_load(f->p1, &p, &s, why, sizeof why, &err), TQ_OK);
  assert_int_equal(version_of(p, &s), 1);
  assert_string_equal(p->dir, f->p1); /* the plugin's path, not the folder handle read through */
  assert_non_null(strstr(s.mods[0].path, "/p1/lib/m/x.lua"));
  assert_null(strstr(p->script, "/proc/"));
  tq_plugin_free(p);
  tq_plugin_src_free(&s);
}

static void test_refused(void **state) {
  fx *f = *state;
  tq_plugin *p = NULL;
  tq_plugin_src s;
  tq_err err = {0};
  char why[1024] = "", link[256];
  /* a symlink in lib/ (even one to a file inside): refused, named */
  snprintf(link, sizeof link, "%s/lib/m/evil.lua", f->p1);
  assert_int_equal(symlink("/etc/passwd", link), 0);
  assert_int_not_equal(tq_plugin_snap_load(f->p1, &p, &s, why, sizeof why, &err), TQ_OK);
  assert_non_null(strstr(why, "evil.lua"));
  assert_null(strstr(why, "root:"));
  assert_null(p);
  unlink(link);
  /* a script that does not compile: file:line */
  put(f->p1, "operation.lua", "return {\n  look = function(obj, ctx)\n");
  assert_int_equal(tq_plugin_snap_load(f->p1, &p, &s, why, sizeof why, &err), TQ_EINVAL);
  assert_non_null(strstr(why, "p1/operation.lua:"));
  assert_null(strstr(why, "/proc/"));
  /* a lib module that does not compile */
  version_in(f->p1, 1);
  put(f->p1, "lib/m/x.lua", "return (\n");
  assert_int_equal(tq_plugin_snap_load(f->p1, &p, &s, why, sizeof why, &err), TQ_EINVAL);
  assert_non_null(strstr(why, "lib/m/x.lua:"));
  /* a half-written manifest: manifest.yaml:LINE:COL */
  version_in(f->p1, 1);
  put(f->p1, "manifest.yaml", "name: p1\nlabel: P1\nversion: 1.0.0\noperations:\n  - { name: ");
  assert_int_not_equal(tq_plugin_snap_load(f->p1, &p, &s, why, sizeof why, &err), TQ_OK);
  assert_non_null(strstr(why, "p1/manifest.yaml:"));
  assert_null(strstr(why, "/proc/"));
}

typedef struct swapper {
  const char *a, *b;
  atomic_int stop;
  long swaps;
} swapper;

static void *swap_main(void *arg) {
  swapper *w = arg;
  while (!atomic_load(&w->stop)) {
    if (renameat2(AT_FDCWD, w->a, AT_FDCWD, w->b, RENAME_EXCHANGE) != 0)
      break;
    w->swaps++;
    usleep(200); /* ~5,000 swaps a second: far above any real install rate, and the reader is
                    not starved on a machine with fewer free cores than threads */
  }
  return NULL;
}

/* Two versions swapped back and forth as fast as the kernel allows while snapshots are read:
 * every snapshot is one whole version (the same folder swapped back is the case a stamp alone
 * cannot tell). */
static void test_swapped_mid_read(void **state) {
  fx *f = *state;
  char other[160];
  snprintf(other, sizeof other, "%s/.other", f->plugins);
  version_in(other, 2);
  swapper w = {.a = f->p1, .b = other};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, swap_main, &w), 0);
  int seen[3] = {0, 0, 0}, mixed = 0, failed = 0, broken = 0;
  for (int i = 0; i < 300; i++) {
    tq_plugin *p = NULL;
    tq_plugin_src s;
    tq_err err = {0};
    char why[1024] = "";
    if (tq_plugin_snap_load(f->p1, &p, &s, why, sizeof why, &err) != TQ_OK) {
      failed++; /* "kept changing": never a mix, never taken for a broken version */
      if (!strstr(why, "kept changing")) {
        broken++;
        printf("# refused for: %s\n", why);
      }
      continue;
    }
    int v = version_of(p, &s);
    if (v == 0)
      mixed++;
    else
      seen[v]++;
    tq_plugin_free(p);
    tq_plugin_src_free(&s);
  }
  atomic_store(&w.stop, 1);
  pthread_join(th, NULL);
  printf("# %ld swaps; snapshots of 1.0.0: %d, of 2.0.0: %d, refused: %d, mixed: %d\n", w.swaps,
         seen[1], seen[2], failed, mixed);
  assert_int_equal(mixed, 0);
  assert_int_equal(broken, 0); /* a swap is not taken for a broken version */
  assert_true(w.swaps > 100);
  assert_true(seen[1] + seen[2] >= 100); /* swapped folders are still read */
}

static const tq_plugin_slot *slot(tq_plugin_reg *r) {
  const tq_plugin_slot *s = tq_plugin_reg_find(r, "p1");
  assert_non_null(s);
  return s;
}

static void test_registry(void **state) {
  fx *f = *state;
  tq_plugin_reg *r1 = tq_plugin_reg_get(f->plugins);
  assert_non_null(r1);
  assert_string_equal(slot(r1)->p->version, "1.0.0");
  assert_null(slot(r1)->error);
  uint64_t gen1 = slot(r1)->gen;
  /* unchanged: the same version (not read again) */
  usleep((TQ_PLUGIN_REG_CHECK_MS + 20) * 1000);
  tq_plugin_reg *r2 = tq_plugin_reg_get(f->plugins);
  assert_int_equal(slot(r2)->gen, gen1);
  tq_plugin_reg_put(r2);
  /* a new version installed by a swap: seen by the next call, without waiting */
  char next[160];
  snprintf(next, sizeof next, "%s/.next", f->plugins);
  version_in(next, 2);
  assert_int_equal(renameat2(AT_FDCWD, next, AT_FDCWD, f->p1, RENAME_EXCHANGE), 0);
  r2 = tq_plugin_reg_get(f->plugins);
  assert_string_equal(slot(r2)->p->version, "2.0.0");
  assert_true(slot(r2)->gen != gen1);
  /* r1, held by a run in flight, still has 1.0.0 whole */
  assert_int_equal(version_of(slot(r1)->p, slot(r1)->src), 1);
  tq_plugin_reg_put(r1);
  /* a broken version written in place: 2.0.0 stays active, with the error */
  put(f->p1, "operation.lua", "return {\n");
  usleep((TQ_PLUGIN_REG_CHECK_MS + 20) * 1000);
  tq_plugin_reg *r3 = tq_plugin_reg_get(f->plugins);
  assert_string_equal(slot(r3)->p->version, "2.0.0");
  assert_int_equal(version_of(slot(r3)->p, slot(r3)->src), 2);
  assert_non_null(slot(r3)->error);
  assert_non_null(strstr(slot(r3)->error, "operation.lua:"));
  tq_plugin_reg_put(r3);
  /* fixed: the new one active, no error */
  version_in(f->p1, 3);
  usleep((TQ_PLUGIN_REG_CHECK_MS + 20) * 1000);
  r3 = tq_plugin_reg_get(f->plugins);
  assert_string_equal(slot(r3)->p->version, "3.0.0");
  assert_null(slot(r3)->error);
  tq_plugin_reg_put(r3);
  /* removed: gone from the registry */
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", f->p1, next);
  assert_int_equal(system(cmd), 0);
  r3 = tq_plugin_reg_get(f->plugins);
  assert_null(tq_plugin_reg_find(r3, "p1"));
  tq_plugin_reg_put(r3);
  tq_plugin_reg_put(r2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_read_whole, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_swapped_mid_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
