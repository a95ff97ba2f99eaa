/* fuzz_package.c: libFuzzer harness for the package reader (plugin/package.c): the input is a
 * .tqp as it would arrive (gzip'd or plain tar), checked in memory by tq_pkg_verify (entries'
 * types, paths and sizes, MANIFEST.sha256, the Ed25519 signature against a trusted key, the
 * manifest's name and version), both signed-only and with unsigned packages allowed; an input
 * that passes is also installed for real (tq_pkg_install from a temporary file into a
 * temporary plugins folder: extraction, the manifest against its schema, the rename into
 * place) and removed again. An input starting "TQF1" is a list of entries (NAME \0 CONTENT \0
 * ...) that the harness packs with matching digests itself, so that fuzzed names and contents
 * reach the checks behind the digests. The trusted key is fixed, so the seed signed with its secret
 * key (corpus/fuzz_package/signed.tqp) reaches the signature's success path. */
#include <archive.h>
#include <archive_entry.h>
#include <ftw.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tqhost/plugin.h"

/* The public half of the key the signed seed was made with (tqhost plugin keygen). */
#define FUZZ_PUBKEY "5bd46b12129beb5db202b0c1bcebac307a5051f0701c470dd8ae74e700117102"

static char root[64], plugins[96], keys[96], file[96];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path) == 0 ? 0 : -1;
}

/* Removes path and everything under it, in process (no shell per input). */
static void rm_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) == 0 && nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  snprintf(root, sizeof root, "/tmp/tq_fuzz_pkg_%d", (int)getpid());
  snprintf(plugins, sizeof plugins, "%s/plugins", root);
  snprintf(keys, sizeof keys, "%s/trusted-keys", root);
  snprintf(file, sizeof file, "%s/in.tqp", root);
  rm_tree(root);
  if (mkdir(root, 0700) != 0 || mkdir(plugins, 0700) != 0 || mkdir(keys, 0700) != 0)
    abort();
  char kp[160];
  snprintf(kp, sizeof kp, "%s/fuzz.pub", keys);
  FILE *f = fopen(kp, "w");
  if (f == NULL)
    abort();
  fputs(FUZZ_PUBKEY "\n", f);
  fclose(f);
  setenv("TQHOST_TRUSTED_KEYS", keys, 1);
  return 0;
}

/* "TQF1" + NAME \0 CONTENT \0 ...: a plain tar of those entries with a MANIFEST.sha256 that
 * matches them, made here, so that fuzzed names and contents get past the digests to the
 * path checks, the manifest and the install. Returns a malloc'd archive or NULL. */
static unsigned char *assemble(const uint8_t *data, size_t size, size_t *out_len) {
  const char *p = (const char *)data + 4, *end = (const char *)data + size;
  const char *names[64], *bodies[64];
  size_t lens[64], n = 0;
  while (p < end && n < 64) {
    const char *z = memchr(p, '\0', (size_t)(end - p));
    if (z == NULL)
      break;
    names[n] = p;
    bodies[n] = z + 1;
    const char *z2 = bodies[n] < end ? memchr(bodies[n], '\0', (size_t)(end - bodies[n])) : NULL;
    lens[n] = (size_t)((z2 ? z2 : end) - bodies[n]);
    n++;
    p = z2 ? z2 + 1 : end;
  }
  size_t cap = size * 2 + 64 * 1024 + 65 * 200, used = 0;
  unsigned char *buf = malloc(cap);
  char *digests = malloc(64 * (64 + 2 + 4096 + 1) + 1);
  if (buf == NULL || digests == NULL) {
    free(buf), free(digests);
    return NULL;
  }
  size_t dl = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)bodies[i], lens[i]);
    for (size_t k = 0; k < sizeof h; k++)
      dl += (size_t)sprintf(digests + dl, "%02x", h[k]);
    dl += (size_t)sprintf(digests + dl, "  %.4096s\n", names[i]);
  }
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_none(a);
  archive_write_set_bytes_in_last_block(a, 1);
  int ok = archive_write_open_memory(a, buf, cap, &used) == ARCHIVE_OK;
  for (size_t i = 0; ok && i <= n; i++) {
    const char *name = i < n ? names[i] : "MANIFEST.sha256";
    const void *body = i < n ? (const void *)bodies[i] : digests;
    size_t len = i < n ? lens[i] : dl;
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        (len && archive_write_data(a, body, len) != (la_ssize_t)len))
      ok = 0;
    archive_entry_free(e);
  }
  if (archive_write_close(a) != ARCHIVE_OK)
    ok = 0;
  archive_write_free(a);
  free(digests);
  if (!ok) {
    free(buf);
    return NULL;
  }
  *out_len = used;
  return buf;
}

static int one(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size >= 4 && memcmp(data, "TQF1", 4) == 0) {
    size_t len = 0;
    unsigned char *tar = assemble(data, size, &len);
    if (tar)
      one(tar, len);
    free(tar);
    return 0;
  }
  return one(data, size);
}

static int one(const uint8_t *data, size_t size) {
  tq_pkg_result res;
  tq_err err;
  tq_code signed_rc = tq_pkg_verify(data, size, "fuzz.tqp", keys, 0, &res, &err);
  tq_code rc = tq_pkg_verify(data, size, "fuzz.tqp", keys, 1, &res, &err);
  if (signed_rc == TQ_OK && rc != TQ_OK)
    abort(); /* allowing unsigned packages never refuses a package that passed signed */
  if (getenv("FUZZ_PACKAGE_DEBUG")) /* to see where a seed stops */
    fprintf(stderr, "verify: %s\n", rc == TQ_OK ? "ok" : err.msg);
  if (rc != TQ_OK)
    return 0;
  FILE *f = fopen(file, "wb");
  if (f == NULL)
    abort();
  fwrite(data, 1, size, f);
  fclose(f);
  tq_pkg_install_opts o = {.force = 1, .allow_unsigned = 1};
  tq_pkg_result ir;
  if (tq_pkg_install(plugins, file, &o, &ir, &err) == TQ_OK) {
    if (strcmp(ir.name, res.name) != 0)
      abort(); /* installed under another name than the one checked */
    char dest[256];
    struct stat st;
    snprintf(dest, sizeof dest, "%s/%s", plugins, ir.name);
    if (lstat(dest, &st) != 0 || !S_ISDIR(st.st_mode))
      abort();
  }
  /* Whatever happened, nothing but plugin folders is left, and none outside plugins/. */
  rm_tree(plugins);
  if (mkdir(plugins, 0700) != 0)
    abort();
  return 0;
}
