/* fuzz_package.c: libFuzzer harness for the package reader (plugin/package.c): the input is a
 * .tqp as it would arrive (gzip'd or plain tar), checked in memory by tq_pkg_verify (entries'
 * types, paths and sizes, MANIFEST.sha256, the Ed25519 signature against a trusted key, the
 * manifest's name and version), both signed-only and with unsigned packages allowed; an input
 * that passes is also installed for real (tq_pkg_install from a temporary file into a
 * temporary plugins folder: extraction, the manifest against its schema, the rename into
 * place) and removed again. The trusted key is fixed, so the seed signed with its secret key
 * (corpus/fuzz_package/signed.tqp) reaches the signature's success path. */
#include <ftw.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tq_pkg_result res;
  tq_err err;
  tq_code signed_rc = tq_pkg_verify(data, size, "fuzz.tqp", keys, 0, &res, &err);
  tq_code rc = tq_pkg_verify(data, size, "fuzz.tqp", keys, 1, &res, &err);
  if (signed_rc == TQ_OK && rc != TQ_OK)
    abort(); /* allowing unsigned packages never refuses a package that passed signed */
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
