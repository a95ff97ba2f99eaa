/* path.c: keeping file access inside a folder. A plugin's folder and plugins/lib are the only
 * places a plugin's files come from; a symlink (or "..") that leads out of them would let a
 * plugin read any file the host can (a compile error quotes the first bytes of what it read).
 * A path below root is first resolved by the kernel relative to an open handle of root
 * (openat2 with RESOLVE_BENEATH): that answer does not depend on root's name, so a folder
 * renamed or swapped meanwhile (a plugin upgrade, or root given as /proc/self/fd/N, whose
 * name the kernel gives as the folder's current one) is not taken for a link out. What that
 * refuses (an absolute link, or one that leaves and comes back) and kernels without openat2
 * fall back to comparing realpath(3)s, so symlinks at any depth are resolved. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tqhost/core.h"

#define TREE_MAX_DEPTH 16

/* Whether the canonical path sub is root or below it. */
static int below(const char *root, const char *sub) {
  size_t n = strlen(root);
  if (strncmp(root, sub, n) != 0)
    return 0;
  return sub[n] == '\0' || sub[n] == '/' || (n == 1 && root[0] == '/');
}

/* 1 when path (spelt root/...) resolves beneath root by the kernel's own walk from a handle
 * of root, 0 when that walk cannot tell (it left root, or no openat2): compare realpaths. */
static int beneath(const char *root, const char *path) {
#ifdef SYS_openat2
  size_t n = strlen(root);
  while (n > 1 && root[n - 1] == '/')
    n--;
  if (strncmp(root, path, n) != 0 || (path[n] != '/' && path[n] != '\0'))
    return 0;
  const char *rel = path[n] == '\0' ? "." : path + n + 1;
  while (*rel == '/')
    rel++;
  int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return 0;
  struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                         .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
  long fd = syscall(SYS_openat2, dfd, *rel ? rel : ".", &how, sizeof how);
  close(dfd);
  if (fd < 0)
    return 0;
  close((int)fd);
  return 1;
#else
  (void)root;
  (void)path;
  return 0;
#endif
}

tq_code tq_path_inside(const char *root, const char *path, char **resolved, tq_err *err) {
  char real_root[PATH_MAX], real[PATH_MAX];
  if (resolved)
    *resolved = NULL;
  if (resolved == NULL && beneath(root, path))
    return TQ_OK;
  if (realpath(root, real_root) == NULL)
    return tq_err_set(err, errno == ENOENT ? TQ_ENOTFOUND : TQ_EIO, "%s: %s", root,
                      strerror(errno));
  if (realpath(path, real) == NULL)
    return tq_err_set(err, errno == ENOENT ? TQ_ENOTFOUND : TQ_EIO, "%s: %s", path,
                      strerror(errno));
  if (!below(real_root, real))
    return tq_err_set(err, TQ_EDENIED,
                      "%s: resolves to %s, outside %s (a symlink out of the folder is refused)",
                      path, real, root);
  if (resolved && (*resolved = tq_strdup(real)) == NULL)
    return tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
  return TQ_OK;
}

static tq_code tree_walk(const char *real_root, const char *shown_root, const char *dir, int depth,
                         tq_err *err) {
  if (depth > TREE_MAX_DEPTH)
    return tq_err_set(err, TQ_ELIMIT, "%s: folders nested deeper than %d", dir, TREE_MAX_DEPTH);
  DIR *d = opendir(dir);
  if (d == NULL)
    return tq_err_set(err, TQ_EIO, "%s: %s", dir, strerror(errno));
  tq_code rc = TQ_OK;
  struct dirent *e;
  while (rc == TQ_OK && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char path[PATH_MAX], real[PATH_MAX];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
      rc = tq_err_set(err, TQ_ELIMIT, "%s/%s: path too long", dir, e->d_name);
      break;
    }
    if (lstat(path, &st) != 0)
      continue; /* gone meanwhile */
    if (S_ISLNK(st.st_mode)) {
      if (beneath(shown_root, path))
        continue;
      if (realpath(path, real) == NULL)
        continue; /* dangling: opening it fails anyway */
      if (!below(real_root, real))
        rc = tq_err_set(err, TQ_EDENIED,
                        "%s: a symlink to %s, outside %s (files of a plugin must stay in its "
                        "folder)",
                        path, real, shown_root);
    } else if (S_ISDIR(st.st_mode)) {
      rc = tree_walk(real_root, shown_root, path, depth + 1, err);
    }
  }
  closedir(d);
  return rc;
}

tq_code tq_path_tree_inside(const char *root, tq_err *err) {
  char real_root[PATH_MAX];
  if (realpath(root, real_root) == NULL)
    return tq_err_set(err, errno == ENOENT ? TQ_ENOTFOUND : TQ_EIO, "%s: %s", root,
                      strerror(errno));
  return tree_walk(real_root, root, root, 0, err);
}
