/* snapshot.c: a plugin read whole (manifest, script, its own lib/ modules) and the registry a
 * long-lived host (tqhost serve) keeps of the plugins folder.
 *
 * A snapshot is read between two stamps of the plugin's folder (the folder's own device and
 * inode, and every entry's name, inode, size and mtime); when they differ the folder changed
 * during the read (a package install swapped it, an editor wrote a file) and the read starts
 * again, so a snapshot is never half old, half new. Runs load their script from the snapshot's
 * texts (tq_plugin_src_opts), never from the folder again.
 *
 * The registry is one shared, reference-counted value per process: tq_plugin_reg_get checks
 * the folder's stamps at most every TQ_PLUGIN_REG_CHECK_MS and builds a new registry when one
 * changed, reading again only the plugins whose stamp changed. A new version that fails (its
 * manifest against the schema, a script or module that does not compile, a symlink, a folder
 * that keeps changing) leaves the version loaded before active, with the failure as the
 * slot's error; a run holds the registry it started with (its entry lives as long). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tqhost/plugin.h"

#define SRC_MAX_MODULES 256
#define SRC_MAX_FILE (4u << 20)
#define SRC_MAX_DEPTH 8
#define SNAP_TRIES 5
#define STAMP_DEPTH 4
#define SETTLE_NS 20000000LL        /* 20 ms: over a tick of the kernel's coarse file clock */
#define SETTLE_WAIT_NS 2000000000LL /* a folder written to for 2 s: "kept changing" */

/* ---- the texts of a plugin ------------------------------------------------------------------ */

void tq_plugin_src_free(tq_plugin_src *s) {
  if (s == NULL)
    return;
  free(s->script);
  for (size_t i = 0; i < s->n_mods; i++)
    free(s->mods[i].name), free(s->mods[i].path), free(s->mods[i].text);
  free(s->mods);
  memset(s, 0, sizeof *s);
}

/* Reads a regular file of at most SRC_MAX_FILE bytes; a symlink is refused unless follow. */
static tq_code read_text(const char *path, int follow, char **out, size_t *len, tq_err *err) {
  int fd = open(path, O_RDONLY | (follow ? 0 : O_NOFOLLOW) | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return tq_err_set(err,
                      errno == ENOENT  ? TQ_ENOTFOUND
                      : errno == ELOOP ? TQ_EDENIED
                                       : TQ_EIO,
                      "%s: %s", path,
                      errno == ELOOP ? "a symbolic link; refused" : strerror(errno));
  struct stat st;
  tq_code rc = TQ_OK;
  char *b = NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    rc = tq_err_set(err, TQ_EDENIED, "%s: not a regular file", path);
  else if ((uint64_t)st.st_size > SRC_MAX_FILE)
    rc = tq_err_set(err, TQ_ELIMIT, "%s: larger than %u bytes", path, SRC_MAX_FILE);
  else if ((b = malloc((size_t)st.st_size + 1)) == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "%s: out of memory", path);
  size_t n = 0;
  while (rc == TQ_OK && n < (size_t)st.st_size) {
    ssize_t r = read(fd, b + n, (size_t)st.st_size - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      rc = tq_err_set(err, TQ_EIO, "%s: short read (changed while read)", path);
    else
      n += (size_t)r;
  }
  close(fd);
  if (rc != TQ_OK) {
    free(b);
    return rc;
  }
  b[n] = '\0';
  *out = b, *len = n;
  return TQ_OK;
}

/* A module name for rel ("rst/ioc.lua" -> "rst.ioc"); 0 when rel is not one require can name. */
static int module_name(const char *rel, char *out, size_t n) {
  size_t l = strlen(rel);
  if (l < 5 || l - 4 >= n || strcmp(rel + l - 4, ".lua") != 0)
    return 0;
  for (size_t i = 0; i < l - 4; i++) {
    char c = rel[i];
    if (c == '/')
      c = '.';
    else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-'))
      return 0;
    out[i] = c;
  }
  out[l - 4] = '\0';
  return out[0] != '.' && strstr(out, "..") == NULL;
}

static int by_module(const void *a, const void *b) {
  return strcmp(((const tq_lua_module *)a)->name, ((const tq_lua_module *)b)->name);
}

/* Adds every module under root/rel (depth levels down). A symlink anywhere is refused. */
static tq_code read_modules(const char *root, const char *rel, int depth, tq_plugin_src *s,
                            tq_err *err) {
  char dir[PATH_MAX];
  if (snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof dir)
    return tq_err_set(err, TQ_ELIMIT, "%s: path too long", root);
  DIR *d = opendir(dir);
  if (d == NULL)
    return tq_err_set(err, TQ_EIO, "%s: %s", dir, strerror(errno));
  tq_code rc = TQ_OK;
  struct dirent *e;
  while (rc == TQ_OK && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[PATH_MAX], sub[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= (int)sizeof sub) {
      rc = tq_err_set(err, TQ_ELIMIT, "%s: path too long", dir);
      break;
    }
    struct stat st;
    if (lstat(path, &st) != 0) {
      rc = tq_err_set(err, TQ_EIO, "%s: %s (changed while read)", path, strerror(errno));
    } else if (S_ISLNK(st.st_mode)) {
      rc = tq_err_set(err, TQ_EDENIED, "%s: a symbolic link in lib/; refused", path);
    } else if (S_ISDIR(st.st_mode)) {
      rc = depth > 0 ? read_modules(root, sub, depth - 1, s, err)
                     : tq_err_set(err, TQ_ELIMIT, "%s: folders nested too deep", path);
    } else if (S_ISREG(st.st_mode)) {
      char name[256];
      if (!module_name(sub, name, sizeof name))
        continue; /* not a module require could name: not loaded */
      if (s->n_mods >= SRC_MAX_MODULES) {
        rc = tq_err_set(err, TQ_ELIMIT, "%s: more than %d modules", root, SRC_MAX_MODULES);
        break;
      }
      tq_lua_module *grown = realloc(s->mods, (s->n_mods + 1) * sizeof *grown);
      if (grown == NULL) {
        rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
        break;
      }
      s->mods = grown;
      tq_lua_module *m = &s->mods[s->n_mods];
      memset(m, 0, sizeof *m);
      if ((rc = read_text(path, 0, &m->text, &m->len, err)) != TQ_OK)
        break;
      m->name = strdup(name);
      m->path = strdup(path);
      s->n_mods++;
      if (m->name == NULL || m->path == NULL)
        rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
    }
  }
  closedir(d);
  return rc;
}

tq_code tq_plugin_src_read(const tq_plugin *p, tq_plugin_src *out, tq_err *err) {
  memset(out, 0, sizeof *out);
  /* The script stays inside the folder even when a link was planted after the manifest was
   * checked (a link inside the folder is fine, as for the manifest loader; one retargeted
   * after the check changes the folder's stamp). The text is read through p->script, which
   * may name the folder by a handle that a rename does not move. */
  tq_code rc = tq_path_inside(p->dir, p->script, NULL, err);
  if (rc == TQ_OK)
    rc = read_text(p->script, 1, &out->script, &out->script_len, err);
  char lib[PATH_MAX];
  struct stat st;
  snprintf(lib, sizeof lib, "%s/lib", p->dir);
  if (rc == TQ_OK && lstat(lib, &st) == 0) {
    if (S_ISLNK(st.st_mode))
      rc = tq_err_set(err, TQ_EDENIED, "%s: a symbolic link; refused", lib);
    else if (S_ISDIR(st.st_mode))
      rc = read_modules(lib, "", SRC_MAX_DEPTH, out, err);
  }
  if (rc == TQ_OK && out->n_mods > 1)
    qsort(out->mods, out->n_mods, sizeof *out->mods, by_module);
  if (rc != TQ_OK)
    tq_plugin_src_free(out);
  return rc;
}

void tq_plugin_src_opts(const tq_plugin_src *s, tq_lua_script_opts *so) {
  if (s == NULL)
    return;
  so->source = s->script;
  so->source_len = s->script_len;
  so->modules = s->mods;
  so->n_modules = s->n_mods;
}

/* ---- stamps --------------------------------------------------------------------------------- */

/* Hashes the names, inodes, sizes and mtimes of dir's entries, depth levels down (lstat: a
 * link counts as itself). */
static void stamp_dir(crypto_generichash_state *h, const char *dir, int depth, int64_t *newest) {
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
      continue;
    struct stat st;
    if (lstat(path, &st) != 0)
      continue;
    int64_t v[5] = {(int64_t)st.st_ino, (int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
                    (int64_t)st.st_mtim.tv_nsec, (int64_t)st.st_mode};
    crypto_generichash_update(h, (const unsigned char *)path, strlen(path) + 1);
    crypto_generichash_update(h, (const unsigned char *)v, sizeof v);
    int64_t m = v[2] * 1000000000 + v[3];
    if (m > *newest)
      *newest = m;
    if (S_ISDIR(st.st_mode) && depth > 0)
      stamp_dir(h, path, depth - 1, newest);
  }
  closedir(d);
}

/* The stamp of a folder: its own identity and its entries'. 0 when it is not a folder. */
static int stamp_of2(const char *dir, unsigned char out[32], int64_t *newest) {
  struct stat st;
  memset(out, 0, 32);
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) /* stat: dir may be /proc/self/fd/N */
    return 0;
  crypto_generichash_state h;
  crypto_generichash_init(&h, NULL, 0, 32);
  int64_t id[4] = {(int64_t)st.st_dev, (int64_t)st.st_ino, (int64_t)st.st_mtim.tv_sec,
                   (int64_t)st.st_mtim.tv_nsec};
  crypto_generichash_update(&h, (const unsigned char *)id, sizeof id);
  *newest = id[2] * 1000000000 + id[3];
  stamp_dir(&h, dir, STAMP_DEPTH, newest);
  crypto_generichash_final(&h, out, 32);
  return 1;
}

static int stamp_of(const char *dir, unsigned char out[32]) {
  int64_t newest = 0;
  return stamp_of2(dir, out, &newest);
}

static int64_t real_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- a snapshot ------------------------------------------------------------------------------ */

/* The first diagnostic (file:line:col: path: what) or err's message. */
static void first_error(const tq_diags *d, const tq_err *err, char *out, size_t n) {
  snprintf(out, n, "%s", d->n ? d->msgs[0] : err->msg);
}

/* s with its prefix from replaced by to (a new string; s freed), or s when it lacks it. */
static char *reprefix(char *s, const char *from, const char *to) {
  size_t n = strlen(from);
  if (s == NULL || strncmp(s, from, n) != 0)
    return s;
  char *out = NULL;
  if (asprintf(&out, "%s%s", to, s + n) < 0)
    return s;
  free(s);
  return out;
}

/* Every occurrence of from in buf (of size n) replaced by to, in place (truncated to fit). */
static void replace_in(char *buf, size_t n, const char *from, const char *to) {
  char out[2048];
  size_t k = 0, fl = strlen(from), tl = strlen(to);
  for (const char *p = buf; *p && k + 1 < sizeof out;) {
    if (strncmp(p, from, fl) == 0) {
      size_t c = tl < sizeof out - 1 - k ? tl : sizeof out - 1 - k;
      memcpy(out + k, to, c);
      k += c, p += fl;
    } else {
      out[k++] = *p++;
    }
  }
  out[k] = '\0';
  snprintf(buf, n, "%s", out);
}

tq_code tq_plugin_snap_load(const char *dir, tq_plugin **out, tq_plugin_src *src, char *why,
                            size_t why_n, tq_err *err) {
  *out = NULL;
  memset(src, 0, sizeof *src);
  int64_t waited = 0;
  for (int tries = 0; tries < SNAP_TRIES; tries++) {
    /* Everything is read through one open folder (/proc/self/fd/N): a folder renamed or
     * swapped meanwhile does not change what is read (the stamps then catch writes inside). */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      snprintf(why, why_n, "%s: %s", dir, strerror(errno));
      return tq_err_set(err, errno == ENOENT ? TQ_ENOTFOUND : TQ_EIO, "%s", why);
    }
    char at[64];
    struct stat st;
    snprintf(at, sizeof at, "/proc/self/fd/%d", fd);
    const char *rd = stat(at, &st) == 0 && S_ISDIR(st.st_mode) ? at : dir; /* no /proc: dir */
    unsigned char before[32], after[32];
    int64_t t0 = real_ns(), newest0 = 0, newest = 0;
    stamp_of2(rd, before, &newest0);
    tq_diags d = {0};
    tq_plugin *p = NULL;
    tq_code rc = tq_plugin_load_as(rd, dir, &p, &d, err);
    if (rc != TQ_OK)
      first_error(&d, err, why, why_n);
    tq_diags_free(&d);
    if (rc == TQ_OK && (rc = tq_plugin_src_read(p, src, err)) != TQ_OK)
      snprintf(why, why_n, "%s", err->msg);
    stamp_of2(rd, after, &newest);
    /* Whether dir names another folder now (swapped in during the read): an error then may
     * come from the swap (a path resolved by name on one side of it), not from the version. */
    struct stat fst, dst;
    int swapped = fstat(fd, &fst) != 0 || stat(dir, &dst) != 0 || fst.st_ino != dst.st_ino ||
                  fst.st_dev != dst.st_dev;
    close(fd);
    if (rd != dir) { /* the plugin's own paths from here on */
      replace_in(why, why_n, at, dir);
      if (p) {
        p->dir = reprefix(p->dir, at, dir);
        p->manifest = reprefix(p->manifest, at, dir);
        p->script = reprefix(p->script, at, dir);
      }
      for (size_t i = 0; i < src->n_mods; i++)
        src->mods[i].path = reprefix(src->mods[i].path, at, dir);
    }
    if (rc == TQ_OK &&
        (rc = tq_lua_syntax_check(p->script, src->script, src->script_len, err)) != TQ_OK)
      snprintf(why, why_n, "%s", err->msg);
    for (size_t i = 0; rc == TQ_OK && i < src->n_mods; i++)
      if ((rc = tq_lua_syntax_check(src->mods[i].path, src->mods[i].text, src->mods[i].len, err)) !=
          TQ_OK)
        snprintf(why, why_n, "%s", err->msg);
    /* Equal stamps do not prove that nothing was written meanwhile: a file rewritten with
     * the same size inside one tick of the kernel's file clock keeps its stamp. A file
     * modified less than SETTLE_NS before the read began may still be being written (an
     * editor saving several files), so the read waits for the folder to settle and starts
     * again. A writer that pauses longer between its files cannot be told from two finished
     * edits by any reader: that state is loaded, and the final one at the next check.
     * Installs are not affected: their folder is complete before it is renamed in, and it
     * is read through one handle. */
    int settled = newest < t0 - SETTLE_NS;
    if (!settled && waited < SETTLE_WAIT_NS) {
      tq_plugin_free(p);
      tq_plugin_src_free(src);
      int64_t ns = newest + SETTLE_NS + 1000000 - real_ns();
      ns = ns < 1000000 ? 1000000 : ns > SETTLE_NS * 2 ? SETTLE_NS * 2 : ns;
      usleep((useconds_t)(ns / 1000));
      waited += ns;
      tries--; /* settling is not a failed try */
      continue;
    }
    if (memcmp(before, after, 32) == 0 && settled && (rc == TQ_OK || !swapped)) {
      if (rc == TQ_OK) {
        *out = p;
        return TQ_OK;
      }
      tq_plugin_free(p);
      tq_plugin_src_free(src);
      return rc; /* this version, read whole, is broken */
    }
    tq_plugin_free(p); /* written to during the read: again */
    tq_plugin_src_free(src);
    usleep(2000u << tries);
  }
  snprintf(why, why_n, "%s: kept changing while read (%d tries)", dir, SNAP_TRIES);
  return tq_err_set(err, TQ_EIO, "%s", why);
}

/* ---- the registry --------------------------------------------------------------------------- */

typedef struct tq_plugin_entry {
  int refs; /* under g_mu */
  tq_plugin *p;
  tq_plugin_src src;
  uint64_t gen;
} tq_plugin_entry;

typedef struct slot_priv {
  tq_plugin_entry *e;
  unsigned char stamp[32];
} slot_priv;

struct tq_plugin_reg {
  int refs; /* under g_mu */
  char *dir;
  tq_plugin_slot *slots; /* by name */
  slot_priv *priv;
  size_t n;
  unsigned char stamp[32]; /* of every slot's stamp and the shared lib/ */
  unsigned char quick[32]; /* of the folder's and its plugin folders' identities and mtimes */
  char error[512];         /* why the folder could not be listed; "" */
  uint64_t gen;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_reload_mu = PTHREAD_MUTEX_INITIALIZER; /* one reload at a time */
static tq_plugin_reg *g_reg;
static int64_t g_checked_ms;
static uint64_t g_gen, g_entry_gen;

/* Drops a reference to e; *dead gets e when it was the last (freed outside the lock). */
static void entry_put_locked(tq_plugin_entry *e, tq_plugin_entry **dead) {
  if (e && --e->refs == 0)
    *dead = e;
}

static void entry_free(tq_plugin_entry *e) {
  if (e == NULL)
    return;
  tq_plugin_free(e->p);
  tq_plugin_src_free(&e->src);
  free(e);
}

/* Frees r (its refs reached 0): entries whose last holder it was too. */
static void reg_free(tq_plugin_reg *r) {
  for (size_t i = 0; i < r->n; i++) {
    tq_plugin_entry *dead = NULL;
    pthread_mutex_lock(&g_mu);
    entry_put_locked(r->priv[i].e, &dead);
    pthread_mutex_unlock(&g_mu);
    entry_free(dead);
    free((char *)r->slots[i].name);
    free((char *)r->slots[i].error);
  }
  free(r->slots);
  free(r->priv);
  free(r->dir);
  free(r);
}

void tq_plugin_reg_put(tq_plugin_reg *r) {
  if (r == NULL)
    return;
  pthread_mutex_lock(&g_mu);
  int last = --r->refs == 0;
  pthread_mutex_unlock(&g_mu);
  if (last)
    reg_free(r);
}

const tq_plugin_slot *tq_plugin_reg_slots(const tq_plugin_reg *r, size_t *n) {
  *n = r->n;
  return r->slots;
}

const tq_plugin_slot *tq_plugin_reg_find(const tq_plugin_reg *r, const char *name) {
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->slots[i].name, name) == 0)
      return &r->slots[i];
  return NULL;
}

const char *tq_plugin_reg_error(const tq_plugin_reg *r) { return r->error[0] ? r->error : NULL; }

uint64_t tq_plugin_reg_gen(const tq_plugin_reg *r) { return r->gen; }

/* Whether plugins_dir/name may be a plugin's folder (a folder, not lib/, not hidden). */
static int is_candidate(const char *dir, const char *name) {
  if (name[0] == '.' || strcmp(name, "lib") == 0)
    return 0;
  char path[PATH_MAX];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

typedef struct cand {
  char *name;
  unsigned char stamp[32];
} cand;

static int by_cand(const void *a, const void *b) {
  return strcmp(((const cand *)a)->name, ((const cand *)b)->name);
}

/* The folders of dir with their stamps (each mixed with the shared lib/'s, whose modules the
 * plugins require from disk), sorted, and the overall stamp. -1: dir cannot be listed. */
static int scan(const char *dir, cand **out, size_t *n, unsigned char all[32], char *why,
                size_t why_n) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (d == NULL) {
    snprintf(why, why_n, "plugins folder %s: %s (set TQHOST_PLUGINS)", dir, strerror(errno));
    return -1;
  }
  unsigned char lib[32];
  char lp[PATH_MAX];
  snprintf(lp, sizeof lp, "%s/lib", dir);
  stamp_of(lp, lib);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!is_candidate(dir, e->d_name))
      continue;
    cand *g = realloc(*out, (*n + 1) * sizeof *g);
    if (g == NULL)
      break;
    *out = g;
    cand *c = &g[*n];
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if ((c->name = strdup(e->d_name)) == NULL)
      break;
    unsigned char own[32];
    stamp_of(path, own);
    crypto_generichash(c->stamp, 32, own, 32, lib, 32);
    (*n)++;
  }
  closedir(d);
  if (*n > 1)
    qsort(*out, *n, sizeof **out, by_cand);
  crypto_generichash_state h;
  crypto_generichash_init(&h, NULL, 0, 32);
  crypto_generichash_update(&h, (const unsigned char *)dir, strlen(dir) + 1);
  for (size_t i = 0; i < *n; i++) {
    crypto_generichash_update(&h, (const unsigned char *)(*out)[i].name,
                              strlen((*out)[i].name) + 1);
    crypto_generichash_update(&h, (*out)[i].stamp, 32);
  }
  crypto_generichash_final(&h, all, 32);
  return 0;
}

static void cands_free(cand *c, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(c[i].name);
  free(c);
}

/* A new registry from the scan, reusing old's entries whose stamp did not change. */
static tq_plugin_reg *build(const char *dir, tq_plugin_reg *old, cand *c, size_t n,
                            const unsigned char all[32]) {
  tq_plugin_reg *r = calloc(1, sizeof *r);
  if (r == NULL || (r->dir = strdup(dir)) == NULL ||
      (n && ((r->slots = calloc(n, sizeof *r->slots)) == NULL ||
             (r->priv = calloc(n, sizeof *r->priv)) == NULL))) {
    if (r)
      free(r->slots), free(r->priv), free(r->dir);
    free(r);
    return NULL;
  }
  memcpy(r->stamp, all, 32);
  r->refs = 1;
  for (size_t i = 0; i < n; i++) {
    const tq_plugin_slot *os = old ? tq_plugin_reg_find(old, c[i].name) : NULL;
    const slot_priv *op = os ? &old->priv[os - old->slots] : NULL;
    tq_plugin_slot *s = &r->slots[r->n];
    slot_priv *sp = &r->priv[r->n];
    char path[PATH_MAX], man[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", dir, c[i].name);
    snprintf(man, sizeof man, "%s/manifest.yaml", path);
    struct stat st;
    int has_manifest = lstat(man, &st) == 0;
    if (!has_manifest && os == NULL)
      continue; /* not a plugin (and never was one) */
    if ((s->name = strdup(c[i].name)) == NULL)
      continue;
    memcpy(sp->stamp, c[i].stamp, 32);
    if (op && memcmp(op->stamp, c[i].stamp, 32) == 0) { /* unchanged */
      sp->e = op->e;
      s->error = os->error ? strdup(os->error) : NULL;
    } else {
      tq_plugin *p = NULL;
      tq_plugin_src src;
      tq_err err;
      char why[1024] = "";
      tq_err_clear(&err);
      if (tq_plugin_snap_load(path, &p, &src, why, sizeof why, &err) == TQ_OK) {
        tq_plugin_entry *e = calloc(1, sizeof *e);
        if (e == NULL) {
          tq_plugin_free(p);
          tq_plugin_src_free(&src);
          sp->e = op ? op->e : NULL;
          s->error = strdup("out of memory loading the new version");
        } else {
          e->p = p;
          e->src = src;
          e->refs = 0;
          pthread_mutex_lock(&g_mu);
          e->gen = ++g_entry_gen;
          pthread_mutex_unlock(&g_mu);
          sp->e = e;
          tq_log(TQ_LOG_INFO, "plugin", "plugin %s %s loaded from %s%s%s", p->name, p->version,
                 path, op && op->e ? " (was " : "", op && op->e ? op->e->p->version : "");
          if (op && op->e)
            tq_log(TQ_LOG_INFO, "plugin", "plugin %s: runs started before go on with %s", p->name,
                   op->e->p->version);
        }
      } else {
        sp->e = op ? op->e : NULL; /* the version before stays active */
        s->error = strdup(why[0] ? why : err.msg);
        if (sp->e)
          tq_log(TQ_LOG_WARN, "plugin",
                 "plugin %s: the new version was not loaded, %s stays "
                 "active: %s",
                 c[i].name, sp->e->p->version, s->error ? s->error : "");
        else
          tq_log(TQ_LOG_WARN, "plugin", "plugin %s was not loaded: %s", c[i].name,
                 s->error ? s->error : "");
      }
    }
    if (sp->e) {
      pthread_mutex_lock(&g_mu);
      sp->e->refs++;
      pthread_mutex_unlock(&g_mu);
      s->p = sp->e->p;
      s->src = &sp->e->src;
      s->gen = sp->e->gen;
    }
    r->n++;
  }
  return r;
}

/* The quick stamp: the folder's and each known plugin folder's inode and mtime (n + 1
 * lstat calls). An install (a folder renamed or swapped in) changes it, so the next call
 * after an install reloads without waiting for the full check. */
static void quick_of(const char *dir, const tq_plugin_reg *r, unsigned char out[32]) {
  crypto_generichash_state h;
  crypto_generichash_init(&h, NULL, 0, 32);
  struct stat st;
  for (size_t i = 0; i <= (r ? r->n : 0); i++) {
    char path[PATH_MAX];
    if (i == 0)
      snprintf(path, sizeof path, "%s", dir);
    else
      snprintf(path, sizeof path, "%s/%s", dir, r->slots[i - 1].name);
    int64_t v[4] = {0, 0, 0, 0};
    if (lstat(path, &st) == 0) {
      v[0] = (int64_t)st.st_ino, v[1] = (int64_t)st.st_mtim.tv_sec;
      v[2] = (int64_t)st.st_mtim.tv_nsec, v[3] = (int64_t)st.st_dev;
    }
    crypto_generichash_update(&h, (const unsigned char *)v, sizeof v);
  }
  crypto_generichash_final(&h, out, 32);
}

tq_plugin_reg *tq_plugin_reg_get(const char *dir) {
  int64_t now = tq_mono_ms();
  pthread_mutex_lock(&g_mu);
  int fresh = g_reg && strcmp(g_reg->dir, dir) == 0 && now - g_checked_ms < TQ_PLUGIN_REG_CHECK_MS;
  if (fresh) { /* within the period: only the quick stamp (g_reg's slots are immutable) */
    unsigned char q[32];
    quick_of(dir, g_reg, q);
    fresh = memcmp(q, g_reg->quick, 32) == 0;
    if (!fresh)
      g_checked_ms = 0; /* a full check now, also for the thread that takes the reload */
  }
  if (fresh) {
    g_reg->refs++;
    tq_plugin_reg *r = g_reg;
    pthread_mutex_unlock(&g_mu);
    return r;
  }
  /* One thread reloads; meanwhile the others take the current registry (the next call after
   * the reload sees the new one). */
  if (pthread_mutex_trylock(&g_reload_mu) != 0) {
    if (g_reg && strcmp(g_reg->dir, dir) == 0) {
      g_reg->refs++;
      tq_plugin_reg *r = g_reg;
      pthread_mutex_unlock(&g_mu);
      return r;
    }
    pthread_mutex_unlock(&g_mu);
    pthread_mutex_lock(&g_reload_mu);
  } else {
    pthread_mutex_unlock(&g_mu);
  }
  pthread_mutex_lock(&g_mu);
  tq_plugin_reg *old = g_reg && strcmp(g_reg->dir, dir) == 0 ? g_reg : NULL;
  if (old && g_checked_ms && tq_mono_ms() - g_checked_ms < TQ_PLUGIN_REG_CHECK_MS) {
    old->refs++;
    pthread_mutex_unlock(&g_mu);
    pthread_mutex_unlock(&g_reload_mu);
    return old;
  }
  if (old)
    old->refs++; /* held while building */
  pthread_mutex_unlock(&g_mu);
  cand *c = NULL;
  size_t n = 0;
  unsigned char all[32];
  char why[512] = "";
  tq_plugin_reg *r = NULL;
  unsigned char quick[32];
  quick_of(dir, old, quick);
  int listed = scan(dir, &c, &n, all, why, sizeof why) == 0;
  if (listed && old && memcmp(all, old->stamp, 32) == 0 && old->error[0] == '\0') {
    r = old; /* nothing changed: old's reference is the caller's */
    old = NULL;
  } else {
    r = build(dir, listed ? old : NULL, c, n, all);
    if (r && !listed)
      snprintf(r->error, sizeof r->error, "%s", why);
  }
  cands_free(c, n);
  pthread_mutex_lock(&g_mu);
  if (r) /* taken before the scan: a change during it shows at the next call */
    memcpy(r->quick, quick, 32);
  g_checked_ms = tq_mono_ms();
  tq_plugin_reg *drop = NULL;
  if (r && r != g_reg) {
    r->gen = ++g_gen;
    r->refs++; /* the global's */
    drop = g_reg;
    g_reg = r;
  }
  tq_plugin_reg *dead[2] = {NULL, NULL};
  if (drop && --drop->refs == 0)
    dead[0] = drop;
  if (old && --old->refs == 0)
    dead[1] = old;          /* old and drop may be one: only one decrement reaches 0 */
  if (r == NULL && g_reg) { /* out of memory: the current one */
    r = g_reg;
    r->refs++;
  }
  pthread_mutex_unlock(&g_mu);
  pthread_mutex_unlock(&g_reload_mu);
  for (int i = 0; i < 2; i++)
    if (dead[i])
      reg_free(dead[i]);
  return r;
}
