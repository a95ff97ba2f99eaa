/* package.c: plugin packages (.tqp): a gzip'd ustar archive written and read with libarchive,
 * holding a plugin's folder, the plugins/lib modules its manifest lists (requires.lib) under
 * lib/, MANIFEST.sha256 ("HEX  PATH" per file) and optionally MANIFEST.sha256.sig (Ed25519,
 * libsodium, hex). install checks everything in memory before writing one byte. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tqhost/plugin.h"

#define PKG_MAX_ENTRIES 1000
#define PKG_MAX_FILE (8u << 20)
#define PKG_MAX_TOTAL (32u << 20)
#define DIGESTS "MANIFEST.sha256"
#define SIG "MANIFEST.sha256.sig"
#define ORIGIN ".tqp-origin"

typedef struct pkg_file {
  char *path; /* inside the archive */
  unsigned char *data;
  size_t len;
} pkg_file;

typedef struct pkg {
  pkg_file *f;
  size_t n, cap;
} pkg;

static void pkg_free(pkg *k) {
  for (size_t i = 0; i < k->n; i++)
    free(k->f[i].path), free(k->f[i].data);
  free(k->f);
  memset(k, 0, sizeof *k);
}

static int pkg_add(pkg *k, const char *path, unsigned char *data, size_t len) {
  if (k->n == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 32;
    pkg_file *f = realloc(k->f, cap * sizeof *f);
    if (f == NULL)
      return -1;
    k->f = f, k->cap = cap;
  }
  k->f[k->n].path = strdup(path);
  if (k->f[k->n].path == NULL)
    return -1;
  k->f[k->n].data = data, k->f[k->n].len = len;
  k->n++;
  return 0;
}

static const pkg_file *pkg_get(const pkg *k, const char *path) {
  for (size_t i = 0; i < k->n; i++)
    if (strcmp(k->f[i].path, path) == 0)
      return &k->f[i];
  return NULL;
}

static void hex(const unsigned char *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", b[i]);
}

static int unhex(const char *s, size_t slen, unsigned char *out, size_t n) {
  size_t bin = 0;
  return sodium_hex2bin(out, n, s, slen, " \r\n", &bin, NULL) == 0 && bin == n ? 0 : -1;
}

static tq_code read_all(const char *path, size_t cap, unsigned char **out, size_t *len,
                        tq_err *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return tq_err_set(err, errno == ENOENT ? TQ_ENOTFOUND : TQ_EIO, "%s: %s", path,
                      strerror(errno));
  unsigned char *b = NULL;
  size_t n = 0, c = 0;
  for (;;) {
    if (n == c) {
      c = c ? c * 2 : 4096;
      unsigned char *nb = realloc(b, c + 1);
      if (nb == NULL) {
        free(b), fclose(f);
        return tq_err_set(err, TQ_ENOMEM, "out of memory reading %s", path);
      }
      b = nb;
    }
    size_t r = fread(b + n, 1, c - n, f);
    n += r;
    if (n > cap) {
      free(b), fclose(f);
      return tq_err_set(err, TQ_ELIMIT, "%s: larger than %zu bytes", path, cap);
    }
    if (r == 0)
      break;
  }
  fclose(f);
  b[n] = '\0';
  *out = b, *len = n;
  return TQ_OK;
}

static tq_code write_file(const char *path, const void *data, size_t len, mode_t mode,
                          tq_err *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return tq_err_set(err, TQ_EIO, "%s: %s", path, strerror(errno));
  const unsigned char *p = data;
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      close(fd);
      return tq_err_set(err, TQ_EIO, "%s: %s", path, strerror(errno));
    }
    p += w, len -= (size_t)w;
  }
  return close(fd) == 0 ? TQ_OK : tq_err_set(err, TQ_EIO, "%s: %s", path, strerror(errno));
}

static int mkdirs(const char *path) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
    return -1;
  for (char *s = tmp + 1; *s; s++)
    if (*s == '/') {
      *s = '\0';
      if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -1;
      *s = '/';
    }
  return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char *sub = NULL;
      if (asprintf(&sub, "%s/%s", path, e->d_name) >= 0)
        rm_rf(sub);
      free(sub);
    }
    if (d)
      closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* ---- pack --------------------------------------------------------------------------------- */

static int cmp_file(const void *a, const void *b) {
  return strcmp(((const pkg_file *)a)->path, ((const pkg_file *)b)->path);
}

/* Adds every regular file under root/rel (skipping dot files and .tqp files) as prefix/rel. */
static tq_code collect(pkg *k, const char *root, const char *rel, const char *prefix, tq_err *err) {
  char *dir = NULL;
  if (asprintf(&dir, "%s%s%s", root, *rel ? "/" : "", rel) < 0)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  struct stat st;
  if (lstat(dir, &st) != 0) {
    tq_code rc = tq_err_set(err, TQ_ENOTFOUND, "%s: %s", dir, strerror(errno));
    free(dir);
    return rc;
  }
  tq_code rc = TQ_OK;
  if (S_ISLNK(st.st_mode)) {
    rc = tq_err_set(err, TQ_EINVAL, "%s: a symbolic link; packages hold regular files only", dir);
  } else if (S_ISREG(st.st_mode)) {
    unsigned char *b = NULL;
    size_t n = 0;
    char *ap = NULL;
    if ((rc = read_all(dir, PKG_MAX_FILE, &b, &n, err)) == TQ_OK) {
      if (asprintf(&ap, "%s%s", prefix, rel) < 0 || pkg_add(k, ap, b, n) != 0)
        free(b), rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
      free(ap);
    }
  } else if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while (rc == TQ_OK && d && (e = readdir(d)) != NULL) {
      size_t l = strlen(e->d_name);
      if (e->d_name[0] == '.' || (l > 4 && strcmp(e->d_name + l - 4, ".tqp") == 0))
        continue;
      char *sub = NULL;
      if (asprintf(&sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) < 0)
        rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
      else
        rc = collect(k, root, sub, prefix, err);
      free(sub);
    }
    if (d)
      closedir(d);
  }
  free(dir);
  return rc;
}

/* The digest list of every file of k, sorted by path. Caller frees. */
static char *digest_list(pkg *k) {
  qsort(k->f, k->n, sizeof *k->f, cmp_file);
  tq_buf b;
  tq_buf_init(&b, PKG_MAX_TOTAL);
  tq_code rc = tq_buf_adds(&b, "");
  for (size_t i = 0; i < k->n && rc == TQ_OK; i++) {
    unsigned char h[crypto_hash_sha256_BYTES];
    char hx[2 * sizeof h + 1];
    crypto_hash_sha256(h, k->f[i].data, k->f[i].len);
    hex(h, sizeof h, hx);
    rc = tq_buf_printf(&b, "%s  %s\n", hx, k->f[i].path);
  }
  if (rc != TQ_OK) {
    tq_buf_free(&b);
    return NULL;
  }
  return tq_buf_take(&b);
}

tq_code tq_pkg_pack(const char *dir, const char *out_file, const char *key_file, char **written,
                    tq_err *err) {
  if (written)
    *written = NULL;
  if (sodium_init() < 0)
    return tq_err_set(err, TQ_EINTERNAL, "libsodium failed to start");
  tq_diags d = {0};
  tq_plugin *p = NULL;
  if (tq_plugin_load(dir, &p, &d, err) != TQ_OK) {
    tq_diags_free(&d);
    return err->code;
  }
  tq_diags_free(&d);
  pkg k = {0};
  tq_code rc = collect(&k, dir, "", "", err);
  /* requires.lib: module paths under the plugins folder's lib/ (a folder or a .lua file). */
  tq_ydoc *doc = NULL;
  if (rc == TQ_OK && (rc = tq_ydoc_load(p->manifest, &doc, err)) == TQ_OK) {
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(doc->root, "requires");
    const cJSON *libs = cJSON_GetObjectItemCaseSensitive(req, "lib"), *m;
    char *lib_root = NULL;
    if (asprintf(&lib_root, "%s/../lib", dir) < 0)
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
    cJSON_ArrayForEach(m, libs) {
      if (rc != TQ_OK)
        break;
      if (!cJSON_IsString(m) || strstr(m->valuestring, "..") || m->valuestring[0] == '/') {
        rc = tq_err_set(err, TQ_EINVAL, "%s: requires.lib: '%s' is not a path inside lib/",
                        p->manifest, cJSON_IsString(m) ? m->valuestring : "?");
        break;
      }
      /* An installed plugin carries its modules in its own lib/ (collected with the folder). */
      char *own = NULL;
      struct stat st;
      if (asprintf(&own, "%s/lib/%s", dir, m->valuestring) < 0)
        rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
      else if (lstat(own, &st) != 0)
        rc = collect(&k, lib_root, m->valuestring, "lib/", err);
      free(own);
    }
    free(lib_root);
  }
  tq_ydoc_free(doc);
  char *list = rc == TQ_OK ? digest_list(&k) : NULL;
  if (rc == TQ_OK && list == NULL)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  char sig_hex[2 * crypto_sign_BYTES + 2] = "";
  if (rc == TQ_OK && key_file) {
    unsigned char *kb = NULL, sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
    size_t kl = 0;
    if ((rc = read_all(key_file, 4096, &kb, &kl, err)) == TQ_OK) {
      if (unhex((char *)kb, kl, sk, sizeof sk) != 0)
        rc = tq_err_set(err, TQ_EINVAL, "%s: not a secret key made by `tqhost plugin keygen`",
                        key_file);
      else {
        crypto_sign_detached(sig, NULL, (unsigned char *)list, strlen(list), sk);
        hex(sig, sizeof sig, sig_hex);
        strcat(sig_hex, "\n");
      }
      sodium_memzero(sk, sizeof sk);
      sodium_memzero(kb, kl);
      free(kb);
    }
  }
  char *path = NULL;
  if (rc == TQ_OK) {
    if (out_file)
      path = strdup(out_file);
    else if (asprintf(&path, "%s-%s.tqp", p->name, p->version) < 0)
      path = NULL;
    if (path == NULL)
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  if (rc == TQ_OK) {
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK)
      rc = tq_err_set(err, TQ_EIO, "%s: %s", path, archive_error_string(a));
    const char *names[] = {DIGESTS, SIG};
    const char *bodies[] = {list, sig_hex};
    size_t extra = key_file ? 2 : 1;
    for (size_t i = 0; rc == TQ_OK && i < k.n + extra; i++) {
      const char *name = i < k.n ? k.f[i].path : names[i - k.n];
      const void *data = i < k.n ? (const void *)k.f[i].data : bodies[i - k.n];
      size_t len = i < k.n ? k.f[i].len : strlen(bodies[i - k.n]);
      struct archive_entry *e = archive_entry_new();
      archive_entry_set_pathname(e, name);
      archive_entry_set_size(e, (la_int64_t)len);
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, 0644);
      archive_entry_set_mtime(e, time(NULL), 0);
      if (archive_write_header(a, e) != ARCHIVE_OK ||
          (len && archive_write_data(a, data, len) != (la_ssize_t)len))
        rc = tq_err_set(err, TQ_EIO, "%s: %s: %s", path, name, archive_error_string(a));
      archive_entry_free(e);
    }
    if (archive_write_close(a) != ARCHIVE_OK && rc == TQ_OK)
      rc = tq_err_set(err, TQ_EIO, "%s: %s", path, archive_error_string(a));
    archive_write_free(a);
    if (rc != TQ_OK)
      unlink(path);
  }
  if (rc == TQ_OK && written)
    *written = path, path = NULL;
  free(path);
  free(list);
  pkg_free(&k);
  tq_plugin_free(p);
  return rc;
}

tq_code tq_pkg_keygen(const char *key_file, tq_err *err) {
  if (sodium_init() < 0)
    return tq_err_set(err, TQ_EINTERNAL, "libsodium failed to start");
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  char skh[2 * sizeof sk + 2], pkh[2 * sizeof pk + 2], *pub = NULL;
  crypto_sign_keypair(pk, sk);
  hex(sk, sizeof sk, skh), hex(pk, sizeof pk, pkh);
  strcat(skh, "\n"), strcat(pkh, "\n");
  if (asprintf(&pub, "%s.pub", key_file) < 0)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  tq_code rc = TQ_OK;
  if (access(key_file, F_OK) == 0)
    rc = tq_err_set(err, TQ_EEXIST, "%s: exists already; not overwritten", key_file);
  else if ((rc = write_file(key_file, skh, strlen(skh), 0600, err)) == TQ_OK)
    rc = write_file(pub, pkh, strlen(pkh), 0644, err);
  sodium_memzero(sk, sizeof sk), sodium_memzero(skh, sizeof skh);
  free(pub);
  return rc;
}

/* ---- install ------------------------------------------------------------------------------ */

const char *tq_pkg_trusted_dir(const char *plugins_dir, char *buf, size_t n) {
  const char *env = getenv("TQHOST_TRUSTED_KEYS");
  if (env && *env)
    return env;
  snprintf(buf, n, "%s/../trusted-keys", plugins_dir);
  return buf;
}

/* Reads the archive in data into k, checking each entry's header; file names it in errors. */
static tq_code pkg_read_mem(const void *data, size_t len, const char *file, pkg *k, tq_err *err) {
  struct archive *a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  tq_code rc = TQ_OK;
  if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
    rc = tq_err_set(err, TQ_EINVAL, "%s: not a package: %s", file, archive_error_string(a));
    archive_read_free(a);
    return rc;
  }
  struct archive_entry *e;
  size_t total = 0;
  int r;
  while (rc == TQ_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(e);
    mode_t type = archive_entry_filetype(e);
    if (name == NULL || *name == '\0') {
      rc = tq_err_set(err, TQ_EINVAL, "%s: an entry without a name", file);
      break;
    }
    if (k->n >= PKG_MAX_ENTRIES) {
      rc = tq_err_set(err, TQ_ELIMIT, "%s: more than %d entries", file, PKG_MAX_ENTRIES);
      break;
    }
    if (name[0] == '/') {
      rc = tq_err_set(err, TQ_EDENIED, "%s: entry '%s': an absolute path", file, name);
      break;
    }
    const char *s = name;
    while (s && *s) {
      if (strncmp(s, "..", 2) == 0 && (s[2] == '/' || s[2] == '\0'))
        rc = tq_err_set(err, TQ_EDENIED, "%s: entry '%s': a '..' path leading out", file, name);
      s = strchr(s, '/');
      s = s ? s + 1 : NULL;
    }
    if (rc != TQ_OK)
      break;
    if (archive_entry_hardlink(e) || type == AE_IFLNK) {
      rc = tq_err_set(err, TQ_EDENIED, "%s: entry '%s': a link; packages hold regular files only",
                      file, name);
      break;
    }
    if (type == AE_IFDIR)
      continue;
    if (type != AE_IFREG) {
      rc = tq_err_set(err, TQ_EDENIED, "%s: entry '%s': a device, FIFO or socket", file, name);
      break;
    }
    la_int64_t size = archive_entry_size(e);
    if (size < 0 || (uint64_t)size > PKG_MAX_FILE || total + (size_t)size > PKG_MAX_TOTAL) {
      rc = tq_err_set(err, TQ_ELIMIT, "%s: entry '%s': %lld bytes, over the size cap", file, name,
                      (long long)size);
      break;
    }
    if (pkg_get(k, name)) {
      rc = tq_err_set(err, TQ_EINVAL, "%s: entry '%s' appears twice", file, name);
      break;
    }
    unsigned char *b = malloc((size_t)size + 1);
    if (b == NULL || archive_read_data(a, b, (size_t)size) != size) {
      free(b);
      rc = tq_err_set(err, TQ_EINVAL, "%s: entry '%s': truncated", file, name);
      break;
    }
    b[size] = '\0';
    total += (size_t)size;
    if (pkg_add(k, name, b, (size_t)size) != 0)
      free(b), rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  if (rc == TQ_OK && r != ARCHIVE_EOF)
    rc = tq_err_set(err, TQ_EINVAL, "%s: damaged archive: %s", file, archive_error_string(a));
  archive_read_free(a);
  return rc;
}

/* Reads file (at most PKG_MAX_TOTAL bytes: compressed, it is smaller than its contents). */
static tq_code pkg_read(const char *file, pkg *k, tq_err *err) {
  unsigned char *b = NULL;
  size_t n = 0;
  tq_code rc = read_all(file, PKG_MAX_TOTAL, &b, &n, err);
  if (rc == TQ_OK)
    rc = pkg_read_mem(b, n, file, k, err);
  free(b);
  return rc;
}

/* Every file but the digest list and signature listed once with its digest, and nothing more. */
static tq_code pkg_digests(const char *file, const pkg *k, tq_err *err) {
  const pkg_file *m = pkg_get(k, DIGESTS);
  if (m == NULL)
    return tq_err_set(err, TQ_EINVAL, "%s: no %s", file, DIGESTS);
  size_t listed = 0;
  char *text = strndup((const char *)m->data, m->len), *save = NULL;
  if (text == NULL)
    return tq_err_set(err, TQ_ENOMEM, "out of memory");
  tq_code rc = TQ_OK;
  for (char *line = strtok_r(text, "\n", &save); line && rc == TQ_OK;
       line = strtok_r(NULL, "\n", &save)) {
    unsigned char want[crypto_hash_sha256_BYTES], got[crypto_hash_sha256_BYTES];
    if (strlen(line) < 67 || line[64] != ' ' || line[65] != ' ' || unhex(line, 64, want, 32)) {
      rc = tq_err_set(err, TQ_EINVAL, "%s: %s: malformed line '%.80s'", file, DIGESTS, line);
      break;
    }
    const pkg_file *f = pkg_get(k, line + 66);
    if (f == NULL) {
      rc = tq_err_set(err, TQ_EINVAL, "%s: entry '%s' listed in %s is missing", file, line + 66,
                      DIGESTS);
      break;
    }
    crypto_hash_sha256(got, f->data, f->len);
    if (sodium_memcmp(want, got, sizeof got) != 0)
      rc = tq_err_set(err, TQ_ECORRUPT, "%s: entry '%s': SHA-256 digest mismatch (tampered)", file,
                      line + 66);
    listed++;
  }
  free(text);
  if (rc == TQ_OK)
    for (size_t i = 0; i < k->n; i++)
      if (strcmp(k->f[i].path, DIGESTS) && strcmp(k->f[i].path, SIG)) {
        char needle[PATH_MAX + 4];
        snprintf(needle, sizeof needle, "  %s\n", k->f[i].path);
        if (strstr((const char *)m->data, needle) == NULL)
          return tq_err_set(err, TQ_ECORRUPT, "%s: entry '%s' is not in %s", file, k->f[i].path,
                            DIGESTS);
      }
  return rc;
}

static tq_code pkg_signature(const char *file, const pkg *k, const char *trusted,
                             int allow_unsigned, char *signer, size_t signer_n, tq_err *err) {
  const pkg_file *s = pkg_get(k, SIG), *m = pkg_get(k, DIGESTS);
  snprintf(signer, signer_n, "unsigned");
  if (s == NULL)
    return allow_unsigned
               ? TQ_OK
               : tq_err_set(err, TQ_EDENIED,
                            "%s: unsigned package refused (--allow-unsigned installs it)", file);
  unsigned char sig[crypto_sign_BYTES];
  if (unhex((const char *)s->data, s->len, sig, sizeof sig) != 0)
    return tq_err_set(err, TQ_EINVAL, "%s: %s: not a signature", file, SIG);
  DIR *d = opendir(trusted);
  struct dirent *e;
  int ok = 0;
  while (!ok && d && (e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l < 5 || strcmp(e->d_name + l - 4, ".pub") != 0)
      continue;
    char *kp = NULL;
    unsigned char *kb = NULL, pk[crypto_sign_PUBLICKEYBYTES];
    size_t kl = 0;
    tq_err ignored;
    if (asprintf(&kp, "%s/%s", trusted, e->d_name) >= 0 &&
        read_all(kp, 4096, &kb, &kl, &ignored) == TQ_OK &&
        unhex((char *)kb, kl, pk, sizeof pk) == 0 &&
        crypto_sign_verify_detached(sig, m->data, m->len, pk) == 0) {
      ok = 1;
      snprintf(signer, signer_n, "%s", e->d_name);
    }
    free(kp), free(kb);
  }
  if (d)
    closedir(d);
  if (ok)
    return TQ_OK;
  if (allow_unsigned)
    return tq_err_set(err, TQ_EDENIED,
                      "%s: signed by a key not in %s (a bad signature is refused "
                      "even with --allow-unsigned)",
                      file, trusted);
  return tq_err_set(err, TQ_EDENIED, "%s: signature by an untrusted key (no key of %s verifies it)",
                    file, trusted);
}

/* Compares dotted versions numerically: <0, 0, >0. */
static int version_cmp(const char *a, const char *b) {
  while (*a || *b) {
    long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);
    if (x != y)
      return x < y ? -1 : 1;
    if (*a == '.')
      a++;
    if (*b == '.')
      b++;
    if ((*a && *a != '.' && (*a < '0' || *a > '9')) || (*b && *b != '.' && (*b < '0' || *b > '9')))
      return strcmp(a, b);
  }
  return 0;
}

/* The checks of a package read into k: digests, signature, a manifest with a name that can
 * be a folder and a version. *doc gets the parsed manifest (name and version point into it). */
static tq_code pkg_check(const char *file, pkg *k, const char *trusted, int allow_unsigned,
                         tq_pkg_result *res, tq_ydoc **doc, const char **name, const char **version,
                         tq_err *err) {
  *doc = NULL;
  *name = *version = NULL;
  tq_code rc = pkg_digests(file, k, err);
  if (rc == TQ_OK)
    rc = pkg_signature(file, k, trusted, allow_unsigned, res->signer, sizeof res->signer, err);
  if (rc == TQ_OK && pkg_get(k, "manifest.yaml") == NULL)
    rc = tq_err_set(err, TQ_EINVAL, "%s: no manifest.yaml", file);
  /* The manifest's name decides the folder: read it before anything is written. "lib" is the
   * shared modules' folder, never a plugin's. */
  if (rc == TQ_OK) {
    const pkg_file *m = pkg_get(k, "manifest.yaml");
    if ((rc = tq_ydoc_parse("manifest.yaml", (const char *)m->data, m->len, doc, err)) == TQ_OK) {
      const cJSON *n = cJSON_GetObjectItemCaseSensitive((*doc)->root, "name");
      const cJSON *v = cJSON_GetObjectItemCaseSensitive((*doc)->root, "version");
      *name = cJSON_IsString(n) ? n->valuestring : NULL;
      *version = cJSON_IsString(v) ? v->valuestring : NULL;
      if (!*name || !*version || !**name || strchr(*name, '/') || (*name)[0] == '.' ||
          (*name)[0] == '-' || strlen(*name) > 100)
        rc = tq_err_set(err, TQ_EINVAL, "%s: manifest.yaml: name and version are required", file);
      else if (strcmp(*name, "lib") == 0)
        rc = tq_err_set(err, TQ_EINVAL, "%s: manifest.yaml: 'lib' is not a plugin name", file);
    }
  }
  return rc;
}

tq_code tq_pkg_verify(const void *data, size_t len, const char *label, const char *trusted_dir,
                      int allow_unsigned, tq_pkg_result *res, tq_err *err) {
  memset(res, 0, sizeof *res);
  if (sodium_init() < 0)
    return tq_err_set(err, TQ_EINTERNAL, "libsodium failed to start");
  pkg k = {0};
  tq_ydoc *doc = NULL;
  const char *name = NULL, *version = NULL;
  tq_code rc = pkg_read_mem(data, len, label, &k, err);
  if (rc == TQ_OK)
    rc = pkg_check(label, &k, trusted_dir, allow_unsigned, res, &doc, &name, &version, err);
  if (rc == TQ_OK) {
    snprintf(res->name, sizeof res->name, "%s", name);
    snprintf(res->version, sizeof res->version, "%s", version);
  }
  tq_ydoc_free(doc);
  pkg_free(&k);
  return rc;
}

tq_code tq_pkg_install(const char *plugins_dir, const char *file, const tq_pkg_install_opts *o,
                       tq_pkg_result *res, tq_err *err) {
  memset(res, 0, sizeof *res);
  if (sodium_init() < 0)
    return tq_err_set(err, TQ_EINTERNAL, "libsodium failed to start");
  pkg k = {0};
  char tbuf[PATH_MAX], tmp[PATH_MAX] = "";
  tq_ydoc *doc = NULL;
  const char *name = NULL, *version = NULL;
  tq_code rc = pkg_read(file, &k, err);
  if (rc == TQ_OK)
    rc = pkg_check(file, &k, tq_pkg_trusted_dir(plugins_dir, tbuf, sizeof tbuf), o->allow_unsigned,
                   res, &doc, &name, &version, err);
  char *dest = NULL;
  if (rc == TQ_OK && asprintf(&dest, "%s/%s", plugins_dir, name) < 0)
    rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  tq_plugin *old = NULL;
  if (rc == TQ_OK && access(dest, F_OK) == 0) {
    tq_err e2;
    if (tq_plugin_load(dest, &old, NULL, &e2) == TQ_OK) {
      snprintf(res->old_version, sizeof res->old_version, "%s", old->version);
      if (!o->force && version_cmp(version, old->version) < 0)
        rc = tq_err_set(
            err, TQ_EDENIED,
            "%s: %s %s is older than the installed %s: a downgrade (--force installs it)", file,
            name, version, old->version);
    }
  }
  /* Extract beside the plugin folder, check, then rename into place. */
  if (rc == TQ_OK) {
    snprintf(tmp, sizeof tmp, "%s/.tqp-install-XXXXXX", plugins_dir);
    if (mkdtemp(tmp) == NULL) {
      rc = tq_err_set(err, TQ_EIO, "%s: %s", tmp, strerror(errno));
      tmp[0] = '\0';
    }
  }
  for (size_t i = 0; rc == TQ_OK && i < k.n; i++) {
    /* lib/ stays inside the plugin's folder: its modules arrive with it in one rename. */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", tmp, name, k.f[i].path);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    if (mkdirs(path) != 0)
      rc = tq_err_set(err, TQ_EIO, "%s: %s", path, strerror(errno));
    *slash = '/';
    if (rc == TQ_OK)
      rc = write_file(path, k.f[i].data, k.f[i].len, 0644, err);
  }
  char pdir[PATH_MAX];
  snprintf(pdir, sizeof pdir, "%s/%s", tmp, name ? name : "");
  if (rc == TQ_OK) {
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    char opath[PATH_MAX + 32], line[PATH_MAX + 64];
    snprintf(opath, sizeof opath, "%s/%s", pdir, ORIGIN);
    snprintf(line, sizeof line, "%s\n%s\n", base, res->signer);
    rc = write_file(opath, line, strlen(line), 0644, err);
  }
  tq_diags d = {0};
  tq_plugin *np = NULL;
  if (rc == TQ_OK && tq_plugin_load(pdir, &np, &d, err) != TQ_OK)
    rc = err->code;
  tq_diags_free(&d);
  /* The specs run in a child: busted may end its process (os.exit), and the temporary folder
   * must still be removed by this one. Their report goes to stderr. */
  if (rc == TQ_OK && o->run_tests) {
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(STDERR_FILENO, STDOUT_FILENO); /* busted's report on stderr: stdout stays the answer */
      tq_err e2;
      int st = tq_plugin_test(pdir, &e2);
      if (st < 0)
        fprintf(stderr, "%s\n", e2.msg);
      fflush(stdout), fflush(stderr);
      _exit(st < 0 ? 125 : st);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid)
      rc = tq_err_set(err, TQ_EIO, "%s: could not run the specs: %s", file, strerror(errno));
    else if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
      rc = tq_err_set(err, TQ_EINVAL, "%s: the package's own specs failed (exit status %d)", file,
                      WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
  }
  if (rc == TQ_OK)
    pkg_free(&k);
  if (rc == TQ_OK) {
    char aside[PATH_MAX + 8];
    snprintf(aside, sizeof aside, "%s/old", tmp);
    int had = access(dest, F_OK) == 0;
    /* An upgrade swaps the two folders in one step (RENAME_EXCHANGE): a reader sees the old
     * folder or the new one, never none; where the file system cannot, two renames. */
    if (had && renameat2(AT_FDCWD, pdir, AT_FDCWD, dest, RENAME_EXCHANGE) == 0)
      had = 0, pdir[0] = '\0'; /* pdir (under tmp) now holds the old one */
    else if (had && rename(dest, aside) != 0)
      rc = tq_err_set(err, TQ_EIO, "%s: %s", dest, strerror(errno));
    else if (pdir[0] && rename(pdir, dest) != 0) {
      rc = tq_err_set(err, TQ_EIO, "%s: %s", dest, strerror(errno));
      if (had)
        rename(aside, dest);
    }
  }
  if (rc == TQ_OK) {
    snprintf(res->name, sizeof res->name, "%s", name);
    snprintf(res->version, sizeof res->version, "%s", version);
  }
  if (tmp[0])
    rm_rf(tmp);
  tq_plugin_free(np);
  tq_plugin_free(old);
  tq_ydoc_free(doc);
  free(dest);
  pkg_free(&k);
  return rc;
}

tq_code tq_pkg_remove(const char *plugins_dir, const char *name, tq_err *err) {
  if (!*name || strchr(name, '/') || name[0] == '.' || strcmp(name, "lib") == 0)
    return tq_err_set(err, TQ_EINVAL, "'%s' is not a plugin name", name);
  char path[PATH_MAX], man[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/%s", plugins_dir, name);
  snprintf(man, sizeof man, "%s/manifest.yaml", path);
  if (access(man, F_OK) != 0)
    return tq_err_set(err, TQ_ENOTFOUND, "no plugin '%s' in %s", name, plugins_dir);
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s/.tqp-remove-XXXXXX", plugins_dir);
  if (mkdtemp(tmp) == NULL)
    return tq_err_set(err, TQ_EIO, "%s: %s", tmp, strerror(errno));
  char aside[PATH_MAX + 8];
  snprintf(aside, sizeof aside, "%s/old", tmp);
  tq_code rc =
      rename(path, aside) == 0 ? TQ_OK : tq_err_set(err, TQ_EIO, "%s: %s", path, strerror(errno));
  rm_rf(tmp);
  return rc;
}

char *tq_pkg_origin(const tq_plugin *p) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", p->dir, ORIGIN);
  unsigned char *b = NULL;
  size_t n = 0;
  tq_err err;
  if (read_all(path, 4096, &b, &n, &err) != TQ_OK)
    return strdup("bundled");
  char *nl = strchr((char *)b, '\n');
  if (nl)
    *nl = '\0';
  char *out = NULL;
  if (asprintf(&out, "package %s", (char *)b) < 0)
    out = NULL;
  free(b);
  return out;
}
