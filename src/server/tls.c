/* tls.c: the server's certificate. Either the PEM files the operator gives, or a self-signed
 * pair made with GnuTLS on first start and kept beside the library (<db>.tls.crt, and
 * <db>.tls.key with mode 0600), reused by later starts so that clients pinning its
 * fingerprint keep working. The fingerprint is SHA-256 over the DER certificate, as
 * `openssl x509 -fingerprint -sha256` and browsers show it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server_int.h"

#define PEM_MAX (1u << 20)
#define CERT_DAYS 365

/* Reads a whole PEM file (at most PEM_MAX bytes) into *out (malloc'd, NUL-terminated). */
static tq_code read_pem(const char *path, const char *what, char **out, tq_err *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return tq_err_set(err, errno == ENOENT ? TQ_ENOTFOUND : TQ_EIO, "%s %s: %s", what, path,
                      strerror(errno));
  tq_buf b;
  tq_buf_init(&b, PEM_MAX);
  char chunk[4096];
  size_t n;
  tq_code rc = TQ_OK;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (tq_buf_add(&b, chunk, n) != TQ_OK) {
      rc = tq_err_set(err, TQ_ELIMIT, "%s %s: larger than %u bytes", what, path, PEM_MAX);
      break;
    }
  fclose(f);
  if (rc == TQ_OK && b.len == 0)
    rc = tq_err_set(err, TQ_EINVAL, "%s %s: empty file", what, path);
  if (rc != TQ_OK) {
    tq_buf_free(&b);
    return rc;
  }
  *out = tq_buf_take(&b);
  return TQ_OK;
}

/* The SHA-256 fingerprint (hex) of the first certificate of a PEM text. */
static tq_code fingerprint(const char *pem, const char *where, char fp[65], tq_err *err) {
  gnutls_x509_crt_t crt = NULL;
  gnutls_datum_t in = {(unsigned char *)pem, (unsigned)strlen(pem)}, der = {NULL, 0};
  unsigned char dig[32];
  tq_code rc = TQ_OK;
  int g = gnutls_x509_crt_init(&crt);
  if (g >= 0)
    g = gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM);
  if (g >= 0)
    g = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der);
  if (g >= 0)
    g = gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, dig);
  if (g < 0)
    rc = tq_err_set(err, TQ_EINVAL, "certificate %s: %s", where, gnutls_strerror(g));
  else
    for (int i = 0; i < 32; i++)
      snprintf(fp + 2 * i, 3, "%02x", dig[i]);
  gnutls_free(der.data);
  if (crt)
    gnutls_x509_crt_deinit(crt);
  return rc;
}

/* Writes data to path through a temporary file and a rename, with mode. */
static tq_code write_file(const char *path, const void *data, size_t len, mode_t mode,
                          tq_err *err) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0)
    return tq_err_set(err, TQ_EIO, "cannot create %s: %s", tmp, strerror(errno));
  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int e = errno;
      close(fd);
      unlink(tmp);
      return tq_err_set(err, TQ_EIO, "cannot write %s: %s", tmp, strerror(e));
    }
    p += w;
    left -= (size_t)w;
  }
  if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return tq_err_set(err, TQ_EIO, "cannot write %s: %s", path, strerror(e));
  }
  return TQ_OK;
}

static int san_ip(gnutls_x509_crt_t crt, int family, const char *text) {
  unsigned char buf[16];
  if (inet_pton(family, text, buf) != 1)
    return GNUTLS_E_INVALID_REQUEST;
  return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, buf,
                                              family == AF_INET ? 4 : 16, GNUTLS_FSAN_APPEND);
}

/* A new self-signed ECDSA P-256 certificate for localhost, 127.0.0.1 and ::1 (PEM both). */
static tq_code make_self_signed(char **cert_pem, char **key_pem, tq_err *err) {
  gnutls_x509_privkey_t key = NULL;
  gnutls_x509_crt_t crt = NULL;
  gnutls_datum_t c = {NULL, 0}, k = {NULL, 0};
  unsigned char serial[16];
  time_t now = time(NULL);
  int g = gnutls_x509_privkey_init(&key);
  if (g >= 0)
    g = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
  if (g >= 0)
    g = gnutls_x509_crt_init(&crt);
  if (g >= 0)
    g = gnutls_x509_crt_set_key(crt, key);
  if (g >= 0)
    g = gnutls_x509_crt_set_version(crt, 3);
  if (g >= 0)
    g = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
  serial[0] &= 0x7f; /* a positive serial */
  serial[0] |= 0x01;
  if (g >= 0)
    g = gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
  if (g >= 0)
    g = gnutls_x509_crt_set_activation_time(crt, now - 300);
  if (g >= 0)
    g = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)CERT_DAYS * 86400);
  if (g >= 0)
    g = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost", 9);
  if (g >= 0)
    g = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0,
                                      "tqhost self-signed", 18);
  if (g >= 0)
    g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
                                             GNUTLS_FSAN_APPEND);
  if (g >= 0)
    g = san_ip(crt, AF_INET, "127.0.0.1");
  if (g >= 0)
    g = san_ip(crt, AF_INET6, "::1");
  if (g >= 0)
    g = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
  if (g >= 0)
    g = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
  if (g >= 0)
    g = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
  if (g >= 0) {
    unsigned char kid[64];
    size_t kid_len = sizeof kid;
    g = gnutls_x509_crt_get_key_id(crt, 0, kid, &kid_len);
    if (g >= 0)
      g = gnutls_x509_crt_set_subject_key_id(crt, kid, kid_len);
  }
  if (g >= 0)
    g = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
  if (g >= 0)
    g = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c);
  if (g >= 0)
    g = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &k);
  tq_code rc = TQ_OK;
  if (g < 0) {
    rc =
        tq_err_set(err, TQ_EINTERNAL, "making the self-signed certificate: %s", gnutls_strerror(g));
  } else {
    *cert_pem = tq_strndup((const char *)c.data, c.size);
    *key_pem = tq_strndup((const char *)k.data, k.size);
    if (*cert_pem == NULL || *key_pem == NULL)
      rc = tq_err_set(err, TQ_ENOMEM, "out of memory");
  }
  if (k.data) {
    gnutls_memset(k.data, 0, k.size);
    gnutls_free(k.data);
  }
  gnutls_free(c.data);
  if (crt)
    gnutls_x509_crt_deinit(crt);
  if (key)
    gnutls_x509_privkey_deinit(key);
  return rc;
}

/* The pair kept beside the library: read it, or make and save it on first start. */
static tq_code beside_library(const char *db_path, char **cert_pem, char **key_pem, tq_err *err) {
  char crt_path[PATH_MAX], key_path[PATH_MAX];
  snprintf(crt_path, sizeof crt_path, "%s.tls.crt", db_path);
  snprintf(key_path, sizeof key_path, "%s.tls.key", db_path);
  int have_crt = access(crt_path, F_OK) == 0, have_key = access(key_path, F_OK) == 0;
  if (have_crt && have_key) {
    struct stat st;
    if (stat(key_path, &st) == 0 && (st.st_mode & 077))
      return tq_err_set(err, TQ_EDENIED,
                        "%s: the key is readable by other users (mode %03o); chmod 600 it",
                        key_path, (unsigned)(st.st_mode & 0777));
    tq_code rc = read_pem(crt_path, "certificate", cert_pem, err);
    if (rc == TQ_OK)
      rc = read_pem(key_path, "key", key_pem, err);
    return rc;
  }
  if (have_crt != have_key)
    return tq_err_set(err, TQ_EINVAL,
                      "%s exists without %s: remove it to make a new pair, or give "
                      "--tls-cert and --tls-key",
                      have_crt ? crt_path : key_path, have_crt ? key_path : crt_path);
  tq_code rc = make_self_signed(cert_pem, key_pem, err);
  if (rc == TQ_OK)
    rc = write_file(key_path, *key_pem, strlen(*key_pem), 0600, err);
  if (rc == TQ_OK)
    rc = write_file(crt_path, *cert_pem, strlen(*cert_pem), 0644, err);
  if (rc == TQ_OK)
    tq_log(TQ_LOG_WARN, "server", "made a self-signed certificate: %s (key %s)", crt_path,
           key_path);
  return rc;
}

tq_code tq_tls_load(const char *db_path, const char *cert_file, const char *key_file,
                    char **cert_pem, char **key_pem, char fp[65], tq_err *err) {
  tq_code rc;
  *cert_pem = *key_pem = NULL;
  if ((cert_file == NULL) != (key_file == NULL))
    return tq_err_set(err, TQ_EINVAL, "--tls-cert and --tls-key go together: give both");
  if (cert_file) {
    rc = read_pem(cert_file, "certificate", cert_pem, err);
    if (rc == TQ_OK)
      rc = read_pem(key_file, "key", key_pem, err);
  } else {
    rc = beside_library(db_path, cert_pem, key_pem, err);
  }
  if (rc == TQ_OK)
    rc = fingerprint(*cert_pem, cert_file ? cert_file : "beside the library", fp, err);
  if (rc != TQ_OK) {
    free(*cert_pem);
    if (*key_pem) {
      memset(*key_pem, 0, strlen(*key_pem));
      free(*key_pem);
    }
    *cert_pem = *key_pem = NULL;
  }
  return rc;
}
