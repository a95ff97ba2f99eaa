/* path.c: keeping file access inside a folder. A plugin's folder and plugins/lib are the only
 * places a plugin's files come from; a symlink (or "..") that leads out of them would let a
 * plugin read any file the host can (a compile error quotes the first bytes of what it read).
 * Paths are compared after realpath(3), so symlinks at any depth are resolved. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tqhost/core.h"

#define TREE_MAX_DEPTH 16

/* Whether the canonical path sub is root or below it. */
static int below(const char *root, const char *sub) {
  size_t n = strlen(root);
  if (strncmp(root, sub, n) != 0)
    return 0;
  return sub[n] == '\0' || sub[n] == '/' || (n == 1 && root[0] == '/');
}

tq_code tq_path_inside(const char *root, const char *path, char **resolved, tq_err *err) {
  char real_root[PATH_MAX], real[PATH_MAX];
  if (resolved)
    *resolved = NULL;
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
