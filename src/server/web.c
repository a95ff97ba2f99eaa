/* web.c: the web UI's static files (the repository's web/, or `serve --web DIR`) at "/":
 * GET and HEAD only, "/" and folders as their index.html, never a listing. Every other path
 * than /api/... and /metrics comes here.
 *
 * Hostile paths are refused before the file system is asked: a bad or encoded '/', '\' or NUL,
 * control characters, "." and ".." segments, empty segments, names starting with '.' (hidden
 * files), anything but [A-Za-z0-9._~-] in a name, over WEB_PATH_MAX bytes or WEB_DEPTH_MAX
 * segments. What is left is resolved with tq_path_inside: a symlink out of the folder is
 * refused. Files are read once and kept (with their ETag, a hash of the content) until their
 * size, mtime or inode changes; answers carry ETag and Cache-Control: no-cache, and a matching
 * If-None-Match gets 304. The strict headers (CSP and friends) are added to every answer of
 * the server by server.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server_int.h"
#include "tqhost/plugin.h"

#define WEB_PATH_MAX 1024           /* bytes of the raw (encoded) path */
#define WEB_DEPTH_MAX 16            /* segments */
#define WEB_FILE_MAX (16u << 20)    /* bytes of one file */
#define WEB_CACHE_MAX 512           /* files kept */
#define WEB_CACHE_BYTES (64u << 20) /* bytes kept */

typedef struct web_file {
  char *path; /* resolved */
  char *data;
  size_t len;
  dev_t dev;
  ino_t ino;
  struct timespec mtime;
  char etag[40];
} web_file;

struct tq_web {
  char root[PATH_MAX]; /* canonical */
  pthread_mutex_t mu;
  web_file files[WEB_CACHE_MAX];
  size_t n, bytes;
};

const char *tq_web_root(const tq_web *w) { return w ? w->root : NULL; }

/* ---- finding the folder -------------------------------------------------------------------- */

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The default web folder: the host's lookup for its data folders (plugin/datadir.c:
 * $TQHOST_WEB, the host configuration's folders.web, beside the executable or a build tree's
 * source web/, the installed data folder). */
static int default_dir(char *out, size_t n, char *searched, size_t sn) {
  char cand[TQ_HOST_DIR_MAX][4096];
  const char *from[TQ_HOST_DIR_MAX];
  int nc = 0;
  tq_host_dir_candidates(TQ_DIR_WEB, cand, &nc, from);
  size_t used = 0;
  searched[0] = '\0';
  for (int i = 0; i < nc; i++) {
    if (is_dir(cand[i])) {
      snprintf(out, n, "%s", cand[i]);
      return 1;
    }
    int w = snprintf(searched + used, sn - used, "%s%s (%s)", i ? ", " : "", cand[i],
                     from[i] ? from[i] : "?");
    if (w > 0 && (size_t)w < sn - used)
      used += (size_t)w;
  }
  return 0;
}

tq_code tq_web_open(const char *dir, tq_web **out, tq_err *err) {
  char found[PATH_MAX], searched[2048];
  *out = NULL;
  if (dir == NULL) {
    if (!default_dir(found, sizeof found, searched, sizeof searched)) {
      tq_log(TQ_LOG_WARN, "server",
             "no web UI: its folder was not found (searched: %s); give serve --web DIR",
             searched[0] ? searched : "nothing");
      return TQ_OK;
    }
    dir = found;
  }
  tq_web *w = calloc(1, sizeof *w);
  if (w == NULL)
    return tq_err_set(err, TQ_ENOMEM, "--web: out of memory");
  if (realpath(dir, w->root) == NULL || !is_dir(w->root)) {
    int e = errno;
    free(w);
    return tq_err_set(err, TQ_ENOTFOUND, "--web '%s': %s", dir, e ? strerror(e) : "not a folder");
  }
  pthread_mutex_init(&w->mu, NULL);
  tq_log(TQ_LOG_INFO, "server", "web UI from %s", w->root);
  *out = w;
  return TQ_OK;
}

void tq_web_free(tq_web *w) {
  if (w == NULL)
    return;
  for (size_t i = 0; i < w->n; i++) {
    free(w->files[i].path);
    free(w->files[i].data);
  }
  pthread_mutex_destroy(&w->mu);
  free(w);
}

/* ---- which paths are ours ------------------------------------------------------------------ */

int tq_web_claims(const char *raw_path) {
  if (strncmp(raw_path, "/api", 4) == 0 && (raw_path[4] == '/' || raw_path[4] == '\0'))
    return 0;
  if (strcmp(raw_path, "/metrics") == 0)
    return 0;
  return 1;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '~';
}

/* Decodes and checks raw (no query string) into out ("" for "/"): 0, or the status of the
 * refusal with why filled (400 malformed, 404 a name never served, 414 too long). */
static int clean_path(const char *raw, char *out, size_t n, char *why, size_t wn) {
  size_t len = strlen(raw), o = 0;
  if (len > WEB_PATH_MAX) {
    snprintf(why, wn, "the path is over %d bytes", WEB_PATH_MAX);
    return 414;
  }
  if (raw[0] != '/') {
    snprintf(why, wn, "the path does not start with '/'");
    return 400;
  }
  int depth = 0;
  const char *p = raw + 1;
  while (*p) {
    const char *seg = out + o;
    size_t seg_start = o;
    while (*p && *p != '/') {
      int c = (unsigned char)*p;
      if (c == '%') {
        int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
        if (hi < 0 || lo < 0) {
          snprintf(why, wn, "a bad %%-escape in the path");
          return 400;
        }
        c = hi * 16 + lo;
        p += 3;
        if (c == 0 || c == '/' || c == '\\') {
          snprintf(why, wn, "an encoded %s in the path",
                   c == 0     ? "NUL"
                   : c == '/' ? "'/'"
                              : "'\\'");
          return 400;
        }
      } else
        p++;
      if (c < 0x20 || c == 0x7f || c == '\\') {
        snprintf(why, wn, "a control character or '\\' in the path");
        return 400;
      }
      if (o + 2 >= n) {
        snprintf(why, wn, "the path is too long");
        return 414;
      }
      out[o++] = (char)c;
    }
    out[o] = '\0';
    size_t sl = o - seg_start;
    if (sl == 0 && *p == '/') {
      snprintf(why, wn, "an empty segment in the path");
      return 400;
    }
    if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.')) {
      snprintf(why, wn, "a '.' or '..' segment in the path");
      return 400;
    }
    if (sl > 0) {
      if (++depth > WEB_DEPTH_MAX) {
        snprintf(why, wn, "the path is over %d segments deep", WEB_DEPTH_MAX);
        return 414;
      }
      if (seg[0] == '.') {
        snprintf(why, wn, "no such file");
        return 404;
      }
      for (size_t i = 0; i < sl; i++)
        if (!name_char((unsigned char)seg[i])) {
          snprintf(why, wn, "no such file");
          return 404;
        }
    }
    if (*p == '/') {
      if (o + 2 >= n) {
        snprintf(why, wn, "the path is too long");
        return 414;
      }
      out[o++] = '/';
      p++;
    }
  }
  out[o] = '\0';
  return 0;
}

/* ---- content types --------------------------------------------------------------------------- */

static const char *ctype_of(const char *path) {
  static const struct {
    const char *ext, *ctype;
  } types[] = {
      {".html", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".webmanifest", "application/manifest+json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
  };
  const char *dot = strrchr(path, '.');
  const char *slash = strrchr(path, '/');
  if (dot && (!slash || dot > slash))
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
      if (strcmp(dot, types[i].ext) == 0)
        return types[i].ctype;
  return "application/octet-stream";
}

/* ---- the cache ---------------------------------------------------------------------------------
 */

static void etag_of(const char *data, size_t len, char out[40]) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)data[i];
    h *= 1099511628211ull;
  }
  snprintf(out, 40, "\"%016llx-%zx\"", (unsigned long long)h, len);
}

static int same_file(const web_file *f, const struct stat *st) {
  return f->dev == st->st_dev && f->ino == st->st_ino && (off_t)f->len == st->st_size &&
         f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Reads the regular file at path (resolved) into a copy for the answer: *data malloc'd. */
static tq_code read_file(const char *path, char **data, size_t *len, struct stat *st, tq_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return tq_err_set(err, TQ_ENOTFOUND, "no such file");
  if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
    close(fd);
    return tq_err_set(err, TQ_ENOTFOUND, "no such file");
  }
  if ((size_t)st->st_size > WEB_FILE_MAX) {
    close(fd);
    return tq_err_set(err, TQ_ELIMIT, "the file is over %u bytes", WEB_FILE_MAX);
  }
  size_t n = (size_t)st->st_size, got = 0;
  char *buf = malloc(n + 1);
  if (buf == NULL) {
    close(fd);
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  close(fd);
  buf[got] = '\0';
  *data = buf;
  *len = got;
  return TQ_OK;
}

/* Fills rs with the file at resolved (from the cache when unchanged). */
static void answer_file(tq_web *w, const char *resolved, const char *if_none_match, tq_resp *rs) {
  struct stat st;
  if (stat(resolved, &st) != 0 || !S_ISREG(st.st_mode)) {
    tq_resp_fail(rs, 404, "no such file");
    return;
  }
  char etag[40] = "";
  char *body = NULL;
  size_t len = 0;
  pthread_mutex_lock(&w->mu);
  web_file *hit = NULL;
  for (size_t i = 0; i < w->n; i++)
    if (strcmp(w->files[i].path, resolved) == 0) {
      hit = &w->files[i];
      break;
    }
  if (hit && same_file(hit, &st)) {
    snprintf(etag, sizeof etag, "%s", hit->etag);
    body = malloc(hit->len + 1);
    if (body) {
      memcpy(body, hit->data, hit->len);
      len = hit->len;
    }
  }
  pthread_mutex_unlock(&w->mu);
  if (body == NULL) {
    tq_err err;
    tq_err_clear(&err);
    struct stat rst;
    if (read_file(resolved, &body, &len, &rst, &err) != TQ_OK) {
      tq_resp_err(rs, NULL, &err);
      return;
    }
    etag_of(body, len, etag);
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->n; i++) /* another thread may have read it meanwhile */
      if (strcmp(w->files[i].path, resolved) == 0) {
        hit = &w->files[i];
        break;
      }
    if (hit == NULL && w->n < WEB_CACHE_MAX && w->bytes + len <= WEB_CACHE_BYTES) {
      hit = &w->files[w->n];
      memset(hit, 0, sizeof *hit);
      if ((hit->path = tq_strdup(resolved)) != NULL)
        w->n++;
      else
        hit = NULL;
    }
    char *copy = hit ? malloc(len + 1) : NULL;
    if (copy) {
      memcpy(copy, body, len);
      copy[len] = '\0';
      w->bytes -= hit->len;
      free(hit->data);
      hit->data = copy;
      hit->len = len;
      w->bytes += len;
      hit->dev = rst.st_dev;
      hit->ino = rst.st_ino;
      hit->mtime = rst.st_mtim;
      snprintf(hit->etag, sizeof hit->etag, "%s", etag);
    }
    pthread_mutex_unlock(&w->mu);
  }
  rs->etag = tq_strdup(etag);
  rs->cache_control = "no-cache";
  if (if_none_match && (strstr(if_none_match, etag) || strcmp(if_none_match, "*") == 0)) {
    free(body);
    tq_resp_raw(rs, 304, ctype_of(resolved), "", 0);
    return;
  }
  tq_resp_raw(rs, 200, ctype_of(resolved), "", 0);
  free(rs->body);
  rs->body = body;
  rs->body_len = len;
}

void tq_web_serve(tq_web *w, const char *method, const char *raw_path, const char *if_none_match,
                  tq_resp *rs) {
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    tq_resp_fail(rs, 405, "the web UI's files answer GET and HEAD only");
    return;
  }
  if (w == NULL) {
    tq_resp_fail(rs, 404, "no web UI: its folder was not found; give serve --web DIR");
    return;
  }
  char rel[WEB_PATH_MAX + 16], why[128];
  int st = clean_path(raw_path, rel, sizeof rel, why, sizeof why);
  if (st == 400) {
    tq_resp_invalid(rs, "path", "%s", why);
    return;
  }
  if (st != 0) {
    tq_resp_fail(rs, st, "%s", why);
    return;
  }
  char full[PATH_MAX + WEB_PATH_MAX + 32], *resolved = NULL;
  snprintf(full, sizeof full, "%s/%s", w->root, rel);
  tq_err err;
  tq_err_clear(&err);
  tq_code rc = tq_path_inside(w->root, full, &resolved, &err);
  if (rc == TQ_OK && is_dir(resolved)) {
    free(resolved);
    resolved = NULL;
    snprintf(full, sizeof full, "%s/%s%sindex.html", w->root, rel,
             rel[0] && rel[strlen(rel) - 1] != '/' ? "/" : "");
    rc = tq_path_inside(w->root, full, &resolved, &err);
  }
  if (rc == TQ_EDENIED) {
    tq_log(TQ_LOG_WARN, "server", "web: %s", err.msg);
    tq_resp_fail(rs, 403, "the path leads out of the web UI's folder");
  } else if (rc != TQ_OK)
    tq_resp_fail(rs, 404, "no such file");
  else
    answer_file(w, resolved, if_none_match, rs);
  free(resolved);
}
