/* datadir.c: where the host's data folders are (schemas, plugins, actions, web files), one
 * lookup for all of them: the environment, the host configuration, beside the executable (an
 * install moved as a whole, or a binary of the build tree), the data folder compiled in. An
 * installed binary thus finds its files with no environment variable, and a build tree's
 * binary finds the source tree's. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tqhost/plugin.h"

#define DIR_LEN 4096

static const char *const NAMES[TQ_DIR_N] = {"schemas", "plugins", "actions", "web"};
static const char *const ENVS[TQ_DIR_N] = {"TQHOST_SCHEMAS", "TQHOST_PLUGINS", "TQHOST_ACTIONS",
                                           "TQHOST_WEB"};

const char *tq_host_dir_name(tq_host_dir_kind kind) { return NAMES[kind]; }
const char *tq_host_dir_env(tq_host_dir_kind kind) { return ENVS[kind]; }

/* The folder of the running executable, or "" when /proc/self/exe cannot be read. */
static void exe_dir(char *out, size_t n) {
  ssize_t len = readlink("/proc/self/exe", out, n - 1);
  out[len > 0 ? len : 0] = '\0';
  char *slash = strrchr(out, '/');
  if (slash)
    *slash = '\0';
  else
    out[0] = '\0';
}

/* Whether dir (a folder path) is inside tree (an absolute folder path). */
static int is_under(const char *dir, const char *tree) {
  size_t n = strlen(tree);
  return n > 0 && strncmp(dir, tree, n) == 0 && (dir[n] == '/' || dir[n] == '\0');
}

/* ---- the host configuration's folders, cached by the file's identity -------------------------
 * Read again when the file changes (or $TQHOST_CONFIG names another); a file that does not
 * load is logged once per version and names no folder (the commands that read it report it). */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_path[DIR_LEN];
static struct stat g_st;
static int g_have; /* g_path/g_st describe what g_dirs came from */
static char *g_dirs[TQ_DIR_N];

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int config_dir(tq_host_dir_kind kind, char *out, size_t n, const char **from) {
  int named = 0;
  const char *path = tq_host_config_path(&named);
  struct stat st;
  if (stat(path, &st) != 0)
    return 0;
  int found = 0;
  pthread_mutex_lock(&g_mu);
  if (!g_have || strcmp(g_path, path) != 0 || !same_file(&st, &g_st)) {
    for (int i = 0; i < TQ_DIR_N; i++) {
      free(g_dirs[i]);
      g_dirs[i] = NULL;
    }
    tq_host_config c;
    tq_err err;
    tq_err_clear(&err);
    if (tq_host_config_load(path, 1, &c, NULL, &err) == TQ_OK) {
      for (int i = 0; i < TQ_DIR_N; i++)
        g_dirs[i] = c.folders[i], c.folders[i] = NULL;
    } else {
      tq_log(TQ_LOG_WARN, "plugin", "%s", err.msg);
    }
    tq_host_config_free(&c);
    snprintf(g_path, sizeof g_path, "%s", path);
    g_st = st;
    g_have = 1;
  }
  if (g_dirs[kind]) {
    snprintf(out, n, "%s", g_dirs[kind]);
    *from = g_path;
    found = 1;
  }
  pthread_mutex_unlock(&g_mu);
  return found;
}

int tq_host_dir_candidates(tq_host_dir_kind kind, char dirs[TQ_HOST_DIR_MAX][DIR_LEN], int *n,
                           const char *from[TQ_HOST_DIR_MAX]) {
  const char *src[TQ_HOST_DIR_MAX] = {0};
  int named = 1;
  *n = 0;
  const char *env = getenv(ENVS[kind]);
  if (env && *env) {
    snprintf(dirs[0], DIR_LEN, "%s", env);
    src[(*n)++] = ENVS[kind];
  } else if (kind != TQ_DIR_SCHEMAS && config_dir(kind, dirs[0], DIR_LEN, &src[0])) {
    *n = 1;
  } else {
    named = 0;
    char exe[DIR_LEN];
    exe_dir(exe, sizeof exe);
#if defined(TQ_BUILD_DIR) && defined(TQ_SOURCE_DIR)
    if (exe[0] && is_under(exe, TQ_BUILD_DIR)) {
      snprintf(dirs[*n], DIR_LEN, "%s/%s", TQ_SOURCE_DIR, NAMES[kind]);
      src[(*n)++] = "the source tree of this build";
    }
#endif
    if (exe[0]) {
      snprintf(dirs[*n], DIR_LEN, "%s/../share/tqhost/%s", exe, NAMES[kind]);
      src[(*n)++] = "beside the executable";
    }
#ifdef TQ_DATA_DIR
    snprintf(dirs[*n], DIR_LEN, "%s/%s", TQ_DATA_DIR, NAMES[kind]);
    src[(*n)++] = "the installed data folder";
#endif
  }
  if (from)
    for (int i = 0; i < *n; i++)
      from[i] = src[i];
  return named;
}

const char *tq_host_dir(tq_host_dir_kind kind) {
  static _Thread_local char bufs[TQ_DIR_N][DIR_LEN];
  char dirs[TQ_HOST_DIR_MAX][DIR_LEN];
  const char *from[TQ_HOST_DIR_MAX];
  int n = 0;
  int named = tq_host_dir_candidates(kind, dirs, &n, from);
  char *out = bufs[kind];
  snprintf(out, DIR_LEN, "%s", NAMES[kind]);
  struct stat st;
  for (int i = 0; i < n; i++) {
    if (named || (stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode))) {
      snprintf(out, DIR_LEN, "%s", dirs[i]);
      break;
    }
  }
  return out;
}
